//! Which bridge a new conference goes to (protocol §4.3): one that is not
//! draining, in the participants' region when one is there, least loaded.
//!
//! ```
//! # use std::sync::Arc;
//! # fn run(a: Arc<dyn sfu::api::Colibri>, b: Arc<dyn sfu::api::Colibri>) {
//! let bridges = focus::selector::BridgeSelector::new(vec![a, b]);
//! let chosen = bridges.select(Some("eu-west"));
//! # }
//! ```

use std::sync::Arc;

use sfu::api::Colibri;

/// The bridges a focus may use.
pub struct BridgeSelector {
    bridges: Vec<Arc<dyn Colibri>>,
}

impl BridgeSelector {
    pub fn new(bridges: Vec<Arc<dyn Colibri>>) -> BridgeSelector {
        BridgeSelector { bridges }
    }

    /// The bridge for a new conference, `None` when every bridge drains.
    pub fn select(&self, region: Option<&str>) -> Option<Arc<dyn Colibri>> {
        let loads: Vec<_> = self.bridges.iter().map(|b| (b, b.load())).collect();
        let open = loads.iter().filter(|(_, l)| !l.draining);
        let in_region = open
            .clone()
            .filter(|(_, l)| region.is_some() && l.region.as_deref() == region)
            .min_by_key(|(_, l)| l.endpoints);
        in_region
            .or_else(|| open.min_by_key(|(_, l)| l.endpoints))
            .map(|(b, _)| Arc::clone(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::api::{ApiError, BridgeLoad, LocalTransport, RemoteTransport, Sources};

    struct Fixed(&'static str, BridgeLoad);

    impl Colibri for Fixed {
        fn id(&self) -> &str {
            self.0
        }
        fn create_endpoint(&self, _: &str, _: &str) -> Result<LocalTransport, ApiError> {
            Err(ApiError::Shutdown)
        }
        fn update_endpoint(
            &self,
            _: &str,
            _: &str,
            _: Option<RemoteTransport>,
            _: Option<Sources>,
        ) -> Result<(), ApiError> {
            Ok(())
        }
        fn expire_endpoint(&self, _: &str, _: &str) -> Result<(), ApiError> {
            Ok(())
        }
        fn expire_conference(&self, _: &str) -> Result<(), ApiError> {
            Ok(())
        }
        fn load(&self) -> BridgeLoad {
            self.1.clone()
        }
    }

    fn bridge(
        id: &'static str,
        endpoints: usize,
        draining: bool,
        region: &str,
    ) -> Arc<dyn Colibri> {
        Arc::new(Fixed(
            id,
            BridgeLoad {
                endpoints,
                draining,
                region: Some(region.into()),
            },
        ))
    }

    #[test]
    fn region_first_then_load_and_never_a_draining_bridge() {
        let s = BridgeSelector::new(vec![
            bridge("busy-eu", 40, false, "eu"),
            bridge("idle-us", 2, false, "us"),
            bridge("idle-eu-draining", 0, true, "eu"),
        ]);
        assert_eq!(s.select(Some("eu")).unwrap().id(), "busy-eu");
        assert_eq!(s.select(None).unwrap().id(), "idle-us");
        assert_eq!(s.select(Some("ap")).unwrap().id(), "idle-us");
        let all_draining = BridgeSelector::new(vec![bridge("d", 0, true, "eu")]);
        assert!(all_draining.select(None).is_none());
    }
}
