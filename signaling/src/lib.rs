//! oxbridge's XMPP server: the job Prosody does for Jitsi Meet.
//!
//! Clients connect over WebSocket (`/xmpp-websocket`), BOSH (`/http-bind`) or
//! TCP with STARTTLS; they authenticate (anonymous, password, or a Jitsi JWT),
//! bind, and meet in MUC rooms that follow Jitsi's rules. Stanzas for
//! `focus.<domain>` go to whatever component registered that domain (the
//! in-process focus, or an external XEP-0114 component).
//!
//! Layout: [`xml`] parses and writes, [`session`] is the per-client state
//! machine (sans-IO), [`muc`] the rooms (sans-IO cores in their own tasks),
//! [`hub`] routes, [`transport`] holds the IO shells, [`http`] the routes the
//! web front door mounts.
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! let (stop_tx, stop) = tokio::sync::watch::channel(false);
//! let server = signaling::Server::start(signaling::Config::for_domain("localhost"), None, stop).await?;
//! let routes = server.router(); // mount into the HTTP front door
//! # let _ = (routes, stop_tx); Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod host;
pub mod http;
pub mod hub;
pub mod jid;
pub mod metrics;
pub mod muc;
pub mod ns;
pub mod session;
pub mod stanza;
pub mod transport;
pub mod xml;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
pub use hub::Hub;
pub use jid::Jid;

/// A running signaling server: its routing hub and the HTTP routes to mount.
pub struct Server {
    pub hub: Arc<Hub>,
    state: http::AppState,
    /// Where the client TCP listener is bound.
    pub xmpp_addr: SocketAddr,
    /// Where the component listener is bound, if any.
    pub component_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds the TCP listeners of `config` and starts accepting. `tls` enables
    /// STARTTLS on client TCP. Everything stops when `shutdown` turns true.
    pub async fn start(
        config: Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Server, String> {
        let hub = Hub::new(config)?;
        let xmpp = tokio::net::TcpListener::bind(hub.config.xmpp.listen)
            .await
            .map_err(|e| format!("xmpp.listen {}: {e}", hub.config.xmpp.listen))?;
        let xmpp_addr = xmpp.local_addr().map_err(|e| e.to_string())?;
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(transport::tcp::serve(
            hub.clone(),
            xmpp,
            acceptor,
            shutdown.clone(),
        ));
        let mut component_addr = None;
        if let Some(addr) = hub.config.xmpp.component_listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("xmpp.component_listen {addr}: {e}"))?;
            component_addr = Some(l.local_addr().map_err(|e| e.to_string())?);
            tokio::spawn(transport::component::serve(
                hub.clone(),
                l,
                shutdown.clone(),
            ));
        }
        let state = http::AppState {
            hub: hub.clone(),
            bosh: Arc::default(),
            shutdown,
        };
        Ok(Server {
            hub,
            state,
            xmpp_addr,
            component_addr,
        })
    }

    /// The HTTP routes (`/xmpp-websocket`, `/http-bind`, `/room-size`, …).
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// Adds the server's metrics to `registry`.
    pub fn register_metrics(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        self.hub.metrics.register(registry)
    }
}
