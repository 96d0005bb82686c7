//! Ending and restarting a session: `session-terminate` both ways, and the
//! client's `session-info` about failed ICE (§3.6).

use signaling::xml::Element;

use super::envelope::jingle_element;
use super::{Action, ns};

/// A Jingle reason condition (XEP-0166 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    AlternativeSession,
    Busy,
    Cancel,
    ConnectivityError,
    Decline,
    /// The single-participant timeout: the others left (§2.4).
    Expired,
    FailedApplication,
    FailedTransport,
    GeneralError,
    /// The participant was removed, or the focus is shutting down.
    Gone,
    IncompatibleParameters,
    MediaError,
    SecurityError,
    Success,
    Timeout,
    UnsupportedApplications,
    UnsupportedTransports,
}

const REASONS: [(Reason, &str); 17] = [
    (Reason::AlternativeSession, "alternative-session"),
    (Reason::Busy, "busy"),
    (Reason::Cancel, "cancel"),
    (Reason::ConnectivityError, "connectivity-error"),
    (Reason::Decline, "decline"),
    (Reason::Expired, "expired"),
    (Reason::FailedApplication, "failed-application"),
    (Reason::FailedTransport, "failed-transport"),
    (Reason::GeneralError, "general-error"),
    (Reason::Gone, "gone"),
    (Reason::IncompatibleParameters, "incompatible-parameters"),
    (Reason::MediaError, "media-error"),
    (Reason::SecurityError, "security-error"),
    (Reason::Success, "success"),
    (Reason::Timeout, "timeout"),
    (Reason::UnsupportedApplications, "unsupported-applications"),
    (Reason::UnsupportedTransports, "unsupported-transports"),
];

impl Reason {
    pub fn as_str(self) -> &'static str {
        REASONS
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, name)| *name)
            .unwrap_or("general-error")
    }

    pub fn parse(s: &str) -> Option<Reason> {
        REASONS.iter().find(|(_, name)| *name == s).map(|(r, _)| *r)
    }
}

/// Builds the focus's `session-terminate`; `text` is shown in client logs.
pub fn build_session_terminate(sid: &str, reason: Reason, text: Option<&str>) -> Element {
    let mut r =
        Element::new("reason", ns::JINGLE).with_child(Element::new(reason.as_str(), ns::JINGLE));
    if let Some(text) = text {
        r.push_child(Element::new("text", ns::JINGLE).with_text(text));
    }
    jingle_element(Action::SessionTerminate, sid, None).with_child(r)
}

/// A client's `session-terminate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    /// `None` when absent or not a condition Jingle defines.
    pub reason: Option<Reason>,
    pub text: Option<String>,
    /// The `id` of the `<bridge-session>` the client echoes.
    pub bridge_session: Option<String>,
    /// The client asks for a fresh session (its ICE failed); the focus
    /// answers with a new `session-initiate`, rate limited.
    pub restart: bool,
}

pub(crate) fn parse_terminate(jingle: &Element) -> Termination {
    let reason = jingle.child("reason", ns::JINGLE);
    let bridge = jingle.child("bridge-session", ns::FOCUS);
    Termination {
        reason: reason
            .and_then(|r| r.children().find(|c| c.name() != "text"))
            .and_then(|c| Reason::parse(c.name())),
        text: reason
            .and_then(|r| r.child("text", ns::JINGLE))
            .map(|t| t.text())
            .filter(|t| !t.is_empty()),
        bridge_session: bridge.and_then(|b| b.attr("id")).map(str::to_owned),
        restart: bridge.and_then(|b| b.attr("restart")) == Some("true"),
    }
}

/// A client's `session-info` about its bridge connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// `<ice-state>failed</ice-state>`: the legacy restart request (V21 when
    /// the focus does not advertise `support-terminate-restart`).
    pub ice_failed: bool,
    /// `<bridge-session ice-restart='true'/>`: newest clients ask for an
    /// in-place ICE restart instead.
    pub ice_restart: bool,
    pub bridge_session: Option<String>,
}

pub(crate) fn parse_session_info(jingle: &Element) -> SessionInfo {
    let bridge = jingle.child("bridge-session", ns::FOCUS);
    SessionInfo {
        ice_failed: jingle
            .child("ice-state", ns::FOCUS)
            .is_some_and(|s| s.text().trim() == "failed"),
        ice_restart: bridge.and_then(|b| b.attr("ice-restart")) == Some("true"),
        bridge_session: bridge.and_then(|b| b.attr("id")).map(str::to_owned),
    }
}
