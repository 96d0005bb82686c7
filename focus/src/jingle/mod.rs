//! Jingle (XEP-0166) as Jitsi speaks it between the focus and a client
//! (protocol reference §3): builders for what the focus sends, parsers for
//! what the client answers. Wire only: no session state and no policy here;
//! the conference decides what to send and what to accept.
//!
//! - [`build_session_initiate`] from an [`Offer`]: the bridge's transport in
//!   every content, the codecs of a [`MediaProfile`], the other participants'
//!   sources (standard or JSON encoding, [`SourceEncoding`]).
//! - [`build_source_add`] / [`build_source_remove`] as sources come and go.
//! - [`build_session_terminate`], and [`wrap_iq`] for the IQ around any of them.
//! - [`parse_client`] for every Jingle IQ a client sends the focus, with
//!   [`parse_answer`] for its `session-accept`.

mod answer;
mod envelope;
mod json;
mod offer;
mod profile;
mod ssma;
mod terminate;
mod transport;

#[cfg(test)]
mod tests;

pub use answer::{Answer, ClientJingle, Incoming, TransportUpdate, parse_answer, parse_client};
pub use envelope::{jingle_of, wrap_iq};
pub use json::parse_json_sources;
pub use offer::{
    BridgeSession, Offer, RemoteSources, SourceEncoding, StartMuted, build_session_initiate,
    build_source_add, build_source_remove,
};
pub use profile::{HeaderExtension, MediaProfile, VideoCodec, Vintage};
pub use terminate::{Reason, SessionInfo, Termination, build_session_terminate};

/// Namespaces of the Jingle payloads Jitsi uses.
pub mod ns {
    pub const JINGLE: &str = "urn:xmpp:jingle:1";
    pub const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
    pub const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
    pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
    pub const RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
    pub const HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
    pub const GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
    pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
    pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
    pub const SCTP: &str = "urn:xmpp:jingle:transports:dtls-sctp:1";
    /// `ssrc-info`, `json-message`.
    pub const JITMEET: &str = "http://jitsi.org/jitmeet";
    /// `bridge-session`, `ice-state`.
    pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
    /// The bridge-channel `web-socket` element.
    pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
    pub const COLIBRI2: &str = "jitsi:colibri2";
    pub const START_MUTED: &str = "http://jitsi.org/jitmeet/start-muted";
}

/// Most contents, sources, groups or candidates one message may carry before
/// it is refused as absurd (well above any real client: Chrome signals 7 SSRCs
/// and 4 groups with simulcast, a handful of candidates per trickle batch).
pub const MAX_ITEMS: usize = 64;

/// The `action` of a `<jingle>` element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SessionInitiate,
    SessionAccept,
    SessionTerminate,
    SessionInfo,
    TransportInfo,
    TransportReplace,
    TransportAccept,
    TransportReject,
    SourceAdd,
    SourceRemove,
    ContentModify,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SessionInitiate => "session-initiate",
            Action::SessionAccept => "session-accept",
            Action::SessionTerminate => "session-terminate",
            Action::SessionInfo => "session-info",
            Action::TransportInfo => "transport-info",
            Action::TransportReplace => "transport-replace",
            Action::TransportAccept => "transport-accept",
            Action::TransportReject => "transport-reject",
            Action::SourceAdd => "source-add",
            Action::SourceRemove => "source-remove",
            Action::ContentModify => "content-modify",
        }
    }

    /// Also accepts the legacy `addsource` / `removesource` that Jicofo still takes.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "session-initiate" => Action::SessionInitiate,
            "session-accept" => Action::SessionAccept,
            "session-terminate" => Action::SessionTerminate,
            "session-info" => Action::SessionInfo,
            "transport-info" => Action::TransportInfo,
            "transport-replace" => Action::TransportReplace,
            "transport-accept" => Action::TransportAccept,
            "transport-reject" => Action::TransportReject,
            "source-add" | "addsource" => Action::SourceAdd,
            "source-remove" | "removesource" => Action::SourceRemove,
            "content-modify" => Action::ContentModify,
            _ => return None,
        })
    }
}

/// What is wrong with a Jingle payload a client sent. Each maps to an IQ
/// error `bad-request`, except where the conference knows better.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JingleError {
    #[error("the IQ carries no <jingle xmlns='urn:xmpp:jingle:1'> element")]
    NotJingle,
    #[error("<jingle> has no {0} attribute")]
    MissingJingleAttr(&'static str),
    #[error("unknown Jingle action '{0}'")]
    UnknownAction(String),
    #[error("<{element}> has no {attr} attribute")]
    MissingAttr {
        element: &'static str,
        attr: &'static str,
    },
    #[error("the answer carries no ice-udp <transport>")]
    MissingTransport,
    #[error("the transport has no ufrag or pwd")]
    MissingIceCredentials,
    #[error("the contents carry different ICE credentials, but they are bundled on one transport")]
    ConflictingTransports,
    #[error("the transport has no DTLS <fingerprint>")]
    MissingFingerprint,
    #[error("bad DTLS fingerprint: {0}")]
    BadFingerprint(String),
    #[error("unknown DTLS setup role '{0}' (expected active, passive or actpass)")]
    BadSetup(String),
    #[error("'{0}' is not an SSRC (a decimal number between 1 and 4294967295)")]
    BadSsrc(String),
    #[error("unknown media '{0}' of a content with sources")]
    BadMedia(String),
    #[error("more than {max} {what} in one message")]
    TooMany { what: &'static str, max: usize },
    #[error("bad JSON-encoded sources: {0}")]
    BadJson(String),
}

/// Parses an SSRC attribute: decimal, 1..=u32::MAX.
pub(crate) fn parse_ssrc(s: &str) -> Result<u32, JingleError> {
    match s.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err(JingleError::BadSsrc(s.to_owned())),
        Ok(v) => Ok(v),
    }
}

/// Refuses the message once a count passes [`MAX_ITEMS`].
pub(crate) fn bounded(what: &'static str, n: usize) -> Result<(), JingleError> {
    if n > MAX_ITEMS {
        return Err(JingleError::TooMany {
            what,
            max: MAX_ITEMS,
        });
    }
    Ok(())
}
