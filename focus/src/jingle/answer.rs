//! What a client sends the focus: its `session-accept` (transport and
//! sources), trickled `transport-info`, `source-add` / `source-remove` as
//! tracks come and go, and `session-terminate` / `session-info`.

use std::net::SocketAddr;

use sfu::api::RemoteTransport;
use signaling::xml::Element;

use super::envelope::{header, jingle_of};
use super::terminate::{SessionInfo, Termination, parse_session_info, parse_terminate};
use super::{Action, JingleError, ns, ssma, transport};
use crate::source::SourceSet;

/// A client's `session-accept`, ready for the bridge and the conference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub transport: RemoteTransport,
    /// Every source the client sends, unvalidated: the conference merges them
    /// with [`crate::source::EndpointSources::add`].
    pub sources: SourceSet,
    /// `<initial-last-n>` (CUR with `channelLastN` configured), for the bridge.
    pub initial_last_n: Option<u32>,
}

/// Candidates (and possibly fresh credentials) from a `transport-info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportUpdate {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub candidates: Vec<SocketAddr>,
}

/// What one Jingle IQ from a client asks of the focus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientJingle {
    Accept(Answer),
    TransportInfo(TransportUpdate),
    SourceAdd(SourceSet),
    SourceRemove(SourceSet),
    Terminate(Termination),
    SessionInfo(SessionInfo),
    /// A valid action the focus does not take from a client
    /// (`session-initiate`, `content-modify`, …); answer `bad-request`, or
    /// for `transport-accept`/`transport-reject` note the outcome.
    Other(Action),
}

/// A client's Jingle IQ, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub sid: String,
    pub body: ClientJingle,
}

/// Parses any Jingle IQ (or bare `<jingle>`) a client sends the focus.
///
/// ```
/// use focus::jingle::{ClientJingle, parse_client};
/// use signaling::xml::Element;
/// let jingle = Element::new("jingle", "urn:xmpp:jingle:1")
///     .with_attr("action", "source-remove")
///     .with_attr("sid", "8qm9ifctuhqvs");
/// let incoming = parse_client(&jingle).unwrap();
/// assert_eq!(incoming.body, ClientJingle::SourceRemove(Default::default()));
/// ```
pub fn parse_client(el: &Element) -> Result<Incoming, JingleError> {
    let jingle = jingle_of(el)?;
    let (action, sid) = header(jingle)?;
    let body = match action {
        Action::SessionAccept => ClientJingle::Accept(parse_answer(jingle)?),
        Action::TransportInfo => {
            let t = transport::parse_contents(jingle)?;
            ClientJingle::TransportInfo(TransportUpdate {
                ufrag: t.ufrag,
                pwd: t.pwd,
                candidates: t.candidates,
            })
        }
        Action::SourceAdd => ClientJingle::SourceAdd(ssma::parse_contents(jingle)?),
        Action::SourceRemove => ClientJingle::SourceRemove(ssma::parse_contents(jingle)?),
        Action::SessionTerminate => ClientJingle::Terminate(parse_terminate(jingle)),
        Action::SessionInfo => ClientJingle::SessionInfo(parse_session_info(jingle)),
        other => ClientJingle::Other(other),
    };
    Ok(Incoming {
        sid: sid.to_owned(),
        body,
    })
}

/// Parses a `session-accept`: the client's bundled transport (credentials,
/// DTLS fingerprint and role, any candidates already gathered) and sources.
pub fn parse_answer(el: &Element) -> Result<Answer, JingleError> {
    let jingle = jingle_of(el)?;
    let t = transport::parse_contents(jingle)?;
    if !t.present {
        return Err(JingleError::MissingTransport);
    }
    let (Some(ufrag), Some(pwd)) = (t.ufrag, t.pwd) else {
        return Err(JingleError::MissingIceCredentials);
    };
    let fingerprint = t.fingerprint.ok_or(JingleError::MissingFingerprint)?;
    let initial_last_n = jingle
        .children()
        .filter(|c| c.name() == "content")
        .find_map(|c| c.child("initial-last-n", ns::COLIBRI2))
        .and_then(|n| n.attr("value"))
        .and_then(|v| v.trim().parse().ok());
    Ok(Answer {
        transport: RemoteTransport {
            ufrag,
            pwd,
            fingerprint_hash: fingerprint.hash,
            fingerprint: fingerprint.value,
            setup: fingerprint.setup,
            candidates: t.candidates,
        },
        sources: ssma::parse_contents(jingle)?,
        initial_last_n,
    })
}
