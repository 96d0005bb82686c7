//! What the server itself answers for its domain: disco, ping, XEP-0215
//! external services, an empty roster, software version.

use std::sync::Arc;

use crate::hub::Hub;
use crate::ns;
use crate::stanza::{self, StanzaError};
use crate::xml::Element;

/// Answers a stanza addressed to the domain (or the user's own bare JID).
pub fn handle(hub: &Arc<Hub>, stanza: Element) {
    if stanza.name() != "iq" {
        if stanza.name() == "message" {
            hub.bounce(&stanza, StanzaError::service_unavailable());
        }
        return;
    }
    let ty = stanza.attr("type");
    if !matches!(ty, Some("get") | Some("set")) {
        return;
    }
    let Some(payload) = stanza.first_child() else {
        return hub.bounce(&stanza, StanzaError::bad_request());
    };
    let reply = match (ty, payload.name(), payload.ns()) {
        (Some("get"), "ping", ns::PING) => None,
        // RFC 3921 session establishment: a no-op kept for old clients (Strophe).
        (Some("set"), "session", ns::SESSION) => None,
        (Some("get"), "query", ns::DISCO_INFO) => Some(disco_info()),
        (Some("get"), "query", ns::DISCO_ITEMS) => Some(disco_items(hub)),
        (Some("get"), "services", ns::EXTDISCO_2) => {
            Some(services(hub, ns::EXTDISCO_2, payload.attr("type")))
        }
        (Some("get"), "services", ns::EXTDISCO_1) => {
            Some(services(hub, ns::EXTDISCO_1, payload.attr("type")))
        }
        (Some("get"), "query", ns::ROSTER) => Some(Element::new("query", ns::ROSTER)),
        (Some("get"), "query", ns::VERSION) => Some(
            Element::new("query", ns::VERSION)
                .with_child(Element::new("name", ns::VERSION).with_text("oxbridge"))
                .with_child(
                    Element::new("version", ns::VERSION).with_text(env!("CARGO_PKG_VERSION")),
                ),
        ),
        _ => return hub.bounce(&stanza, StanzaError::service_unavailable()),
    };
    hub.deliver(stanza::iq_result(&stanza, reply));
}

fn disco_info() -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO)
        .with_child(stanza::identity("server", "im", "oxbridge"));
    for f in [
        ns::DISCO_INFO,
        ns::DISCO_ITEMS,
        ns::PING,
        ns::EXTDISCO_2,
        ns::EXTDISCO_1,
        ns::ROSTER,
        ns::VERSION,
        ns::SM,
    ] {
        q.push_child(stanza::feature(f));
    }
    q
}

fn disco_items(hub: &Hub) -> Element {
    Element::new("query", ns::DISCO_ITEMS).with_child(
        Element::new("item", ns::DISCO_ITEMS)
            .with_attr("jid", hub.muc.domain())
            .with_attr("name", "Conferences"),
    )
}

fn services(hub: &Hub, namespace: &str, only: Option<&str>) -> Element {
    let mut s = Element::new("services", namespace);
    for svc in &hub.config.xmpp.external_services {
        if only.is_some_and(|t| t != svc.kind) {
            continue;
        }
        let mut e = Element::new("service", namespace)
            .with_attr("type", svc.kind.clone())
            .with_attr("host", svc.host.clone())
            .with_attr("port", svc.port.to_string())
            .with_attr("transport", svc.transport.clone());
        if let Some(u) = &svc.username {
            e.set_attr("username", u.clone());
        }
        if let Some(p) = &svc.password {
            e.set_attr("password", p.clone());
        }
        s.push_child(e);
    }
    s
}
