//! The control surface the focus drives, with Colibri2's semantics
//! (protocol §4.4): allocate an endpoint, update it with the client's answer
//! and sources, expire it. Shaped as plain data so a Colibri2-over-XMPP
//! adapter can translate to and from it.

use std::net::SocketAddr;

/// Why a request failed, by Colibri2's error reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("unknown endpoint {0}")]
    UnknownEndpoint(String),
    #[error("conference not found: {0}")]
    ConferenceNotFound(String),
    #[error("endpoint already exists: {0}")]
    EndpointExists(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("authentication failed")]
    Forbidden,
    #[error("the bridge is shutting down")]
    Shutdown,
    /// Draining: existing conferences go on, new ones belong on another bridge.
    #[error("the bridge is draining and takes no new conferences")]
    Draining,
    #[error("{0}")]
    Internal(String),
}

/// A candidate as Jingle's ice-udp transport carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportCandidate {
    pub foundation: String,
    pub component: u16,
    pub protocol: String,
    pub priority: u32,
    pub address: SocketAddr,
    /// `host`, `srflx`, …
    pub kind: String,
}

/// The bridge's side of an endpoint's transport, for the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransport {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint_hash: String,
    /// Colon-separated hex.
    pub fingerprint: String,
    pub candidates: Vec<TransportCandidate>,
    /// `<conference>/<endpoint>?pwd=<secret>`: the tail of the bridge-channel
    /// URL, after `/colibri-ws/<bridge id>/`.
    pub channel_path: String,
}

/// The DTLS role the client's answer takes (`setup` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The client connects: the bridge is the DTLS server.
    Active,
    /// The client waits: the bridge connects.
    Passive,
    /// Either; the bridge then acts as the DTLS server.
    Actpass,
}

/// Distinct candidates one endpoint's client may signal over the endpoint's
/// life; an update past it is refused. A browser gathers a handful per network
/// interface; without a bound, a client trickling ever new ones would grow its
/// ICE agent without end.
pub const MAX_REMOTE_CANDIDATES: usize = 64;

/// The client's side, from its session-accept or transport-info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTransport {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint_hash: String,
    pub fingerprint: String,
    pub setup: Setup,
    pub candidates: Vec<SocketAddr>,
}

/// An endpoint's complete current sources (each update replaces the last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub audio: Vec<u32>,
    /// One entry per video source: its simulcast layer SSRCs, lowest first
    /// (a single SSRC without simulcast).
    pub video: Vec<Vec<u32>>,
    /// FID pairs: a video SSRC and the SSRC of its retransmissions (RTX).
    pub rtx: Vec<(u32, u32)>,
}

impl Sources {
    /// The RTX SSRC paired with `ssrc`.
    pub fn rtx_of(&self, ssrc: u32) -> Option<u32> {
        self.rtx.iter().find(|(s, _)| *s == ssrc).map(|(_, r)| *r)
    }
}

/// How busy a bridge is and whether it takes new conferences, for choosing
/// among several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeLoad {
    pub endpoints: usize,
    pub draining: bool,
    /// Where the bridge runs (`jitsi_participant_region` matches it).
    pub region: Option<String>,
}

/// What a focus asks of a bridge, with Colibri2's semantics. The in-process
/// [`Bridge`](crate::bridge::Bridge) implements it; an adapter speaking
/// Colibri2 over XMPP to a remote bridge can too.
///
/// ```
/// fn offer_side(bridge: &dyn sfu::api::Colibri) -> Result<String, sfu::api::ApiError> {
///     let local = bridge.create_endpoint("conf-1", "ab12cd34")?;
///     Ok(format!("{}/{}", bridge.id(), local.channel_path))
/// }
/// ```
pub trait Colibri: Send + Sync {
    /// The id in this bridge's channel URLs (`/colibri-ws/<id>/…`).
    fn id(&self) -> &str;
    /// Allocates an endpoint (and its conference, with the first one).
    fn create_endpoint(&self, conference: &str, endpoint: &str)
    -> Result<LocalTransport, ApiError>;
    /// The client's transport and/or its complete current sources.
    fn update_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
        remote: Option<RemoteTransport>,
        sources: Option<Sources>,
    ) -> Result<(), ApiError>;
    fn expire_endpoint(&self, conference: &str, endpoint: &str) -> Result<(), ApiError>;
    fn expire_conference(&self, conference: &str) -> Result<(), ApiError>;
    fn load(&self) -> BridgeLoad;
}
