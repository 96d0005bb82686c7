//! The bridge's Prometheus metrics, read from the workers when scraped.
//!
//! ```no_run
//! # let bridge = std::sync::Arc::new(sfu::bridge::Bridge::start(Default::default()).unwrap());
//! let registry = prometheus::Registry::new();
//! registry.register(Box::new(sfu::metrics::BridgeCollector::new(bridge))).unwrap();
//! ```

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::bridge::Bridge;

/// Asks the bridge for its counters on every scrape.
pub struct BridgeCollector {
    bridge: Arc<Bridge>,
    datagrams: IntCounterVec,
    bytes: IntCounterVec,
    dropped: IntCounterVec,
    forwarded: IntCounter,
    nacks: IntCounter,
    lost: IntCounter,
    keyframe_requests: IntCounter,
    ice_failures: IntCounter,
    conferences: IntGauge,
    endpoints: IntGauge,
    worker_endpoints: IntGaugeVec,
    draining: IntGauge,
    latency: prometheus::GaugeVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("oxbridge_sfu_{name}"), help)
}

impl BridgeCollector {
    pub fn new(bridge: Arc<Bridge>) -> BridgeCollector {
        let counter = |n: &str, h: &str| IntCounter::with_opts(opts(n, h)).expect("valid metric");
        let gauge = |n: &str, h: &str| IntGauge::with_opts(opts(n, h)).expect("valid metric");
        let dir = |n: &str, h: &str| {
            IntCounterVec::new(opts(n, h), &["direction"]).expect("valid metric")
        };
        BridgeCollector {
            bridge,
            datagrams: dir("datagrams_total", "UDP datagrams on the media port"),
            bytes: dir("bytes_total", "UDP payload bytes on the media port"),
            dropped: IntCounterVec::new(
                opts("datagrams_dropped_total", "Datagrams dropped, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
            forwarded: counter(
                "packets_forwarded_total",
                "RTP packets forwarded to receivers",
            ),
            nacks: counter("nacks_received_total", "NACKs receivers sent"),
            lost: counter(
                "packets_lost_reported_total",
                "Packets receivers reported lost",
            ),
            keyframe_requests: counter("keyframe_requests_total", "PLIs sent to senders"),
            ice_failures: counter("ice_failures_total", "Endpoints whose ICE failed"),
            conferences: gauge("conferences", "Conferences now"),
            endpoints: gauge("endpoints", "Endpoints now"),
            worker_endpoints: IntGaugeVec::new(
                opts("worker_endpoints", "Endpoints on each media worker"),
                &["worker"],
            )
            .expect("valid metric"),
            draining: gauge("draining", "1 while the bridge takes no new conferences"),
            latency: prometheus::GaugeVec::new(
                opts(
                    "forwarding_latency_seconds",
                    "Time from a datagram's receive to the end of the sends it caused, by quantile",
                ),
                &["quantile"],
            )
            .expect("valid metric"),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 13] {
        [
            &self.datagrams,
            &self.bytes,
            &self.dropped,
            &self.forwarded,
            &self.nacks,
            &self.lost,
            &self.keyframe_requests,
            &self.ice_failures,
            &self.conferences,
            &self.endpoints,
            &self.worker_endpoints,
            &self.draining,
            &self.latency,
        ]
    }
}

fn set(c: &IntCounter, v: u64) {
    c.reset();
    c.inc_by(v);
}

impl Collector for BridgeCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.collectors()
            .into_iter()
            .flat_map(|c| c.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(stats) = self.bridge.stats() else {
            return Vec::new();
        };
        let t = &stats.totals;
        set(&self.datagrams.with_label_values(&["in"]), t.datagrams_in);
        set(&self.datagrams.with_label_values(&["out"]), t.datagrams_out);
        set(&self.bytes.with_label_values(&["in"]), t.bytes_in);
        set(&self.bytes.with_label_values(&["out"]), t.bytes_out);
        set(
            &self.dropped.with_label_values(&["unroutable"]),
            t.unroutable,
        );
        set(&self.dropped.with_label_values(&["rejected"]), t.rejected);
        set(
            &self.dropped.with_label_values(&["no_consent"]),
            t.dropped_no_consent,
        );
        set(
            &self.dropped.with_label_values(&["overload"]),
            stats.overload_drops,
        );
        set(&self.forwarded, t.packets_forwarded);
        set(&self.nacks, t.nacks_received);
        set(&self.lost, t.packets_lost_reported);
        set(&self.keyframe_requests, t.keyframe_requests);
        set(&self.ice_failures, t.ice_failures);
        self.conferences.set(t.conferences as i64);
        self.endpoints.set(t.endpoints as i64);
        for (i, n) in stats.worker_endpoints.iter().enumerate() {
            self.worker_endpoints
                .with_label_values(&[&i.to_string()])
                .set(*n as i64);
        }
        self.draining.set(i64::from(self.bridge.is_draining()));
        for (label, q) in [("0.5", 0.5), ("0.99", 0.99)] {
            self.latency
                .with_label_values(&[label])
                .set(stats.latency.quantile(q).as_secs_f64());
        }
        self.collectors()
            .into_iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}
