//! Namespaces the server speaks.

pub const CLIENT: &str = "jabber:client";
pub const COMPONENT: &str = "jabber:component:accept";
pub const STREAM: &str = "http://etherx.jabber.org/streams";
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
pub const BOSH: &str = "http://jabber.org/protocol/httpbind";
pub const XBOSH: &str = "urn:xmpp:xbosh";
pub const STREAMS_ERR: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const STANZAS_ERR: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const SM: &str = "urn:xmpp:sm:3";
pub const PING: &str = "urn:xmpp:ping";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const EXTDISCO_2: &str = "urn:xmpp:extdisco:2";
pub const EXTDISCO_1: &str = "urn:xmpp:extdisco:1";
pub const ROSTER: &str = "jabber:iq:roster";
pub const VERSION: &str = "jabber:iq:version";
pub const DATA_FORMS: &str = "jabber:x:data";
pub const MUC: &str = "http://jabber.org/protocol/muc";
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const COMPONENT_HANDSHAKE: &str = "jabber:component:accept";
