//! Building the replies the server itself sends: IQ results and stanza errors.

use crate::ns;
use crate::xml::Element;

/// Error types of RFC 6120 §8.3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Modify,
    Wait,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// A stanza error: condition element name (RFC 6120 §8.3.3) plus optional text
/// and application-specific child.
#[derive(Clone, Debug)]
pub struct StanzaError {
    pub kind: ErrorType,
    pub condition: &'static str,
    pub text: Option<String>,
    pub extra: Option<Element>,
}

impl StanzaError {
    pub fn new(kind: ErrorType, condition: &'static str) -> Self {
        StanzaError {
            kind,
            condition,
            text: None,
            extra: None,
        }
    }
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
    pub fn with_extra(mut self, extra: Element) -> Self {
        self.extra = Some(extra);
        self
    }
    pub fn service_unavailable() -> Self {
        Self::new(ErrorType::Cancel, "service-unavailable")
    }
    pub fn bad_request() -> Self {
        Self::new(ErrorType::Modify, "bad-request")
    }
    pub fn not_allowed() -> Self {
        Self::new(ErrorType::Cancel, "not-allowed")
    }
    pub fn forbidden() -> Self {
        Self::new(ErrorType::Auth, "forbidden")
    }
    pub fn item_not_found() -> Self {
        Self::new(ErrorType::Cancel, "item-not-found")
    }
    pub fn feature_not_implemented() -> Self {
        Self::new(ErrorType::Cancel, "feature-not-implemented")
    }

    fn to_element(&self) -> Element {
        let mut e = Element::new("error", ns::CLIENT).with_attr("type", self.kind.as_str());
        e.push_child(Element::new(self.condition, ns::STANZAS_ERR));
        if let Some(t) = &self.text {
            e.push_child(Element::new("text", ns::STANZAS_ERR).with_text(t.clone()));
        }
        if let Some(x) = &self.extra {
            e.push_child(x.clone());
        }
        e
    }
}

/// Whether the stanza may be answered with an error (never errors to errors or
/// to IQ results, which would loop).
pub fn is_answerable(stanza: &Element) -> bool {
    let ty = stanza.attr("type");
    match stanza.name() {
        "iq" => matches!(ty, Some("get") | Some("set")),
        _ => ty != Some("error"),
    }
}

/// The error reply to `stanza`: addresses swapped, original payload kept for
/// messages and presence (RFC 6120 §8.3.1), the IQ payload dropped.
pub fn error_reply(stanza: &Element, err: &StanzaError) -> Element {
    let mut reply = Element::new(stanza.name(), ns::CLIENT).with_attr("type", "error");
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(to) = stanza.attr("to") {
        reply.set_attr("from", to);
    }
    if let Some(from) = stanza.attr("from") {
        reply.set_attr("to", from);
    }
    if stanza.name() != "iq" {
        for c in stanza.children() {
            if c.name() != "error" {
                reply.push_child(c.clone());
            }
        }
    }
    reply.push_child(err.to_element());
    reply
}

/// An empty IQ result to `iq`, optionally with a payload.
pub fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut reply = Element::new("iq", ns::CLIENT).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(to) = iq.attr("to") {
        reply.set_attr("from", to);
    }
    if let Some(from) = iq.attr("from") {
        reply.set_attr("to", from);
    }
    if let Some(p) = payload {
        reply.push_child(p);
    }
    reply
}

/// A `<feature var=…/>` for disco#info.
pub fn feature(var: &str) -> Element {
    Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
}

/// An `<identity/>` for disco#info.
pub fn identity(category: &str, ty: &str, name: &str) -> Element {
    Element::new("identity", ns::DISCO_INFO)
        .with_attr("category", category)
        .with_attr("type", ty)
        .with_attr("name", name)
}

/// A data-form field with one value.
pub fn form_field(var: &str, value: &str) -> Element {
    Element::new("field", ns::DATA_FORMS)
        .with_attr("var", var)
        .with_child(Element::new("value", ns::DATA_FORMS).with_text(value))
}
