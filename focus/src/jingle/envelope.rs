//! The IQ around a Jingle payload, and the `<jingle>` element itself.

use signaling::ns::CLIENT;
use signaling::xml::Element;

use super::{Action, JingleError, ns};

/// Wraps a `<jingle>` payload in the IQ the focus sends (§3.1).
///
/// `from` is the focus's occupant JID `room@muc/focus`: lib-jitsi-meet treats a
/// `session-initiate` as a bridge session (not peer-to-peer) only when the
/// sender's resource is `focus`. `to` is the participant's occupant JID.
///
/// ```
/// use focus::jingle::{Reason, build_session_terminate, wrap_iq};
/// let jingle = build_session_terminate("8qm9ifctuhqvs", Reason::Expired, None);
/// let iq = wrap_iq(jingle, "room@muc.example/focus", "room@muc.example/3f2a9c1d", "jt1");
/// assert_eq!(iq.attr("type"), Some("set"));
/// ```
pub fn wrap_iq(jingle: Element, from: &str, to: &str, id: &str) -> Element {
    Element::new("iq", CLIENT)
        .with_attr("type", "set")
        .with_attr("id", id)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_child(jingle)
}

/// An empty `<jingle>` of `action` in session `sid`. `initiator` is the
/// focus's real JID on the actions that carry it; the client does not route by it.
pub(crate) fn jingle_element(action: Action, sid: &str, initiator: Option<&str>) -> Element {
    let mut j = Element::new("jingle", ns::JINGLE).with_attr("action", action.as_str());
    if let Some(initiator) = initiator {
        j.set_attr("initiator", initiator);
    }
    j.with_attr("sid", sid)
}

/// The `<jingle>` payload of an IQ (or the element itself when it already is one).
pub fn jingle_of(el: &Element) -> Result<&Element, JingleError> {
    if el.is("jingle", ns::JINGLE) {
        return Ok(el);
    }
    el.child("jingle", ns::JINGLE).ok_or(JingleError::NotJingle)
}

/// The action and sid every Jingle payload must carry.
pub(crate) fn header(jingle: &Element) -> Result<(Action, &str), JingleError> {
    let action = jingle
        .attr("action")
        .ok_or(JingleError::MissingJingleAttr("action"))?;
    let action =
        Action::parse(action).ok_or_else(|| JingleError::UnknownAction(action.to_owned()))?;
    let sid = jingle
        .attr("sid")
        .filter(|s| !s.is_empty())
        .ok_or(JingleError::MissingJingleAttr("sid"))?;
    Ok((action, sid))
}
