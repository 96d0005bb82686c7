//! One client's XMPP session as a sans-IO state machine.
//!
//! The transports (TCP, WebSocket, BOSH) parse bytes into stream events and
//! hand them in; the session answers with [`Output`]s and never touches a
//! socket or a clock. The loop a transport runs:
//!
//! 1. feed one input: [`Session::handle_open`], [`Session::handle_stanza`],
//!    [`Session::handle_close`], or [`Session::deliver`] for a stanza routed to
//!    this client;
//! 2. drain [`Session::poll_output`] until it returns `None`, writing what is
//!    for the client and routing what is for others;
//! 3. wait for the next input.
//!
//! States follow the stream: header expected, then features and SASL, then
//! (after the restart) bind, then bound. A stanza in the wrong state is a
//! stream error, not something a later handler has to guard against.

mod sasl;
mod sm;

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;

use crate::auth::{Authenticator, TokenClaims, room_allowed};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{self, StanzaError};
use crate::xml::Element;

pub use sasl::Mechanism;
use sasl::SaslState;
pub use sm::StreamManagement;

/// Which transport carries the session; it decides the features offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Client TCP; `tls` once STARTTLS is done, `tls_available` if it can be.
    Tcp {
        tls: bool,
        tls_available: bool,
    },
    WebSocket,
    Bosh,
}

/// Why a parked session could not be resumed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResumeError {
    #[error("the session had no stream management to resume")]
    NotResumable,
    #[error("the client acknowledged stanzas it was never sent")]
    BadAck,
}

/// Facts the session needs from the server, shared by all sessions.
pub struct SessionEnv {
    pub domain: String,
    pub auth_domain: String,
    pub muc_domain: String,
    pub auth: Authenticator,
}

/// What the transport knew when the client connected (BOSH/WebSocket URL query).
#[derive(Clone, Debug, Default)]
pub struct ConnectParams {
    /// `?token=`; never logged.
    pub token: Option<String>,
    /// `?previd=`: a resumption is coming.
    pub previd: Option<String>,
}

/// XMPP stream error conditions (RFC 6120 §4.9.3) the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    BadFormat,
    NotWellFormed,
    HostUnknown,
    InvalidNamespace,
    InvalidFrom,
    NotAuthorized,
    PolicyViolation,
    UnsupportedStanzaType,
    UnsupportedVersion,
    ResourceConstraint,
    Conflict,
    ConnectionTimeout,
    SystemShutdown,
    UndefinedCondition,
}

impl StreamError {
    pub fn condition(self) -> &'static str {
        match self {
            StreamError::BadFormat => "bad-format",
            StreamError::NotWellFormed => "not-well-formed",
            StreamError::HostUnknown => "host-unknown",
            StreamError::InvalidNamespace => "invalid-namespace",
            StreamError::InvalidFrom => "invalid-from",
            StreamError::NotAuthorized => "not-authorized",
            StreamError::PolicyViolation => "policy-violation",
            StreamError::UnsupportedStanzaType => "unsupported-stanza-type",
            StreamError::UnsupportedVersion => "unsupported-version",
            StreamError::ResourceConstraint => "resource-constraint",
            StreamError::Conflict => "conflict",
            StreamError::ConnectionTimeout => "connection-timeout",
            StreamError::SystemShutdown => "system-shutdown",
            StreamError::UndefinedCondition => "undefined-condition",
        }
    }

    /// `<stream:error>` as an element in the streams namespace.
    pub fn to_element(self, text: Option<&str>) -> Element {
        let mut e = Element::new("error", ns::STREAM)
            .with_child(Element::new(self.condition(), ns::STREAMS_ERR));
        if let Some(t) = text {
            e.push_child(Element::new("text", ns::STREAMS_ERR).with_text(t));
        }
        e
    }
}

/// What the session asks its transport to do.
#[derive(Debug)]
pub enum Output {
    /// Open (or re-open after a restart) the stream with this id, from `from`.
    Open { id: String, from: String },
    /// Write this element to the client (features, SASL, stanzas, SM).
    Send(Element),
    /// `<proceed/>` was written: upgrade to TLS, then expect a new stream header.
    StartTls,
    /// SASL succeeded: the client restarts the stream, a byte-stream parser starts over.
    Restart,
    /// Route this stanza from the client (its `from` stamped).
    Route(Element),
    /// The session now has this full JID: register it for delivery.
    Bound(Jid),
    /// The client asks to resume the detached session `previd` having seen `h`.
    Resume { previd: String, h: u32 },
    /// Close the stream, after a stream error if any.
    Close(Option<(StreamError, Option<String>)>),
}

enum State {
    /// Waiting for `<stream:stream>` / `<open/>`.
    ExpectHeader,
    /// Features sent; STARTTLS or SASL expected.
    Unauthenticated(SaslState),
    /// SASL succeeded; waiting for the stream restart.
    Authenticated,
    /// Restarted after SASL; bind (or resume) expected.
    ExpectBind,
    Bound,
    Closed,
}

/// One client session. See the module docs for the loop.
pub struct Session {
    env: Arc<SessionEnv>,
    kind: TransportKind,
    params: ConnectParams,
    state: State,
    stream_id: String,
    host: String,
    /// The authenticated identity before binding (node@host).
    user: Option<Jid>,
    jid: Option<Jid>,
    claims: Option<TokenClaims>,
    sm: Option<StreamManagement>,
    /// Occupant JIDs this session joined, so leaving can be announced.
    joined: Vec<Jid>,
    out: VecDeque<Output>,
}

/// Rooms one session may be in at once (each a directed presence to remember).
const MAX_JOINED: usize = 64;

impl Session {
    pub fn new(env: Arc<SessionEnv>, kind: TransportKind, params: ConnectParams) -> Session {
        Session {
            env,
            kind,
            params,
            state: State::ExpectHeader,
            stream_id: random_id(),
            host: String::new(),
            user: None,
            jid: None,
            claims: None,
            sm: None,
            joined: Vec::new(),
            out: VecDeque::new(),
        }
    }

    /// The bound full JID.
    pub fn jid(&self) -> Option<&Jid> {
        self.jid.as_ref()
    }

    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Stream management state, when enabled.
    pub fn sm(&self) -> Option<&StreamManagement> {
        self.sm.as_ref()
    }

    /// Whether a dropped transport should leave this session waiting for resumption.
    pub fn resumable(&self) -> bool {
        matches!(self.state, State::Bound) && self.sm.as_ref().is_some_and(|s| s.resumable)
    }

    /// Whether the token made this user a moderator.
    pub fn token_moderator(&self) -> bool {
        self.claims.as_ref().is_some_and(|c| c.moderator)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn send(&mut self, e: Element) {
        self.out.push_back(Output::Send(e));
    }

    fn fail(&mut self, err: StreamError, text: Option<&str>) {
        if !matches!(self.state, State::Closed) {
            if matches!(self.state, State::ExpectHeader) {
                // RFC 6120 4.9.1.1: a stream error needs an open stream to travel in.
                self.out.push_back(Output::Open {
                    id: self.stream_id.clone(),
                    from: self.env.domain.clone(),
                });
            }
            self.state = State::Closed;
            self.out
                .push_back(Output::Close(Some((err, text.map(str::to_owned)))));
        }
    }

    /// A stream header (or WebSocket `<open/>`, or BOSH session start/restart).
    pub fn handle_open(&mut self, header: &Element) {
        match self.state {
            State::ExpectHeader | State::Authenticated => {}
            _ => return self.fail(StreamError::BadFormat, Some("unexpected stream header")),
        }
        let to = header.attr("to").unwrap_or("").to_lowercase();
        if to != self.env.domain && to != self.env.auth_domain {
            return self.fail(StreamError::HostUnknown, None);
        }
        if self.host.is_empty() {
            self.host = to.clone();
        }
        self.out.push_back(Output::Open {
            id: self.stream_id.clone(),
            from: self.host.clone(),
        });
        if header.attr("version") != Some("1.0") && self.kind != TransportKind::Bosh {
            return self.fail(StreamError::UnsupportedVersion, None);
        }
        let mut features = Element::new("features", ns::STREAM);
        match self.state {
            State::ExpectHeader => {
                if let TransportKind::Tcp {
                    tls: false,
                    tls_available: true,
                } = self.kind
                {
                    features.push_child(
                        Element::new("starttls", ns::TLS)
                            .with_child(Element::new("required", ns::TLS)),
                    );
                } else {
                    let mut mechs = Element::new("mechanisms", ns::SASL);
                    for m in self.mechanisms() {
                        mechs.push_child(Element::new("mechanism", ns::SASL).with_text(m.name()));
                    }
                    features.push_child(mechs);
                }
                self.state = State::Unauthenticated(SaslState::Idle);
            }
            _ => {
                features.push_child(Element::new("bind", ns::BIND));
                features.push_child(
                    Element::new("session", ns::SESSION)
                        .with_child(Element::new("optional", ns::SESSION)),
                );
                if self.kind != TransportKind::Bosh {
                    features.push_child(Element::new("sm", ns::SM));
                }
                self.state = State::ExpectBind;
            }
        }
        self.send(features);
    }

    /// SASL mechanisms offered on this host.
    fn mechanisms(&self) -> Vec<Mechanism> {
        let mut v = Vec::new();
        let anonymous_ok = self.env.auth.allow_anonymous || self.env.auth.jwt.is_some();
        if self.host == self.env.domain && anonymous_ok {
            v.push(Mechanism::Anonymous);
        }
        if self.env.auth.has_accounts_on(&self.host) {
            v.push(Mechanism::ScramSha1);
            v.push(Mechanism::Plain);
        }
        v
    }

    /// The client closed its stream.
    pub fn handle_close(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.state = State::Closed;
            self.out.push_back(Output::Close(None));
        }
    }

    /// A transport-level failure (bad XML, oversized stanza): close with `err`.
    pub fn handle_stream_error(&mut self, err: StreamError, text: &str) {
        self.fail(err, Some(text));
    }

    /// One top-level element from the client.
    pub fn handle_stanza(&mut self, el: Element) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Unauthenticated(sasl) => self.unauthenticated(sasl, el),
            State::ExpectBind => {
                self.state = State::ExpectBind;
                self.expect_bind(el)
            }
            State::Bound => {
                self.state = State::Bound;
                self.bound(el)
            }
            State::ExpectHeader | State::Authenticated => {
                self.state = State::Authenticated;
                self.fail(StreamError::NotAuthorized, Some("stream restart expected"))
            }
            State::Closed => {}
        }
    }

    fn unauthenticated(&mut self, sasl: SaslState, el: Element) {
        if el.is("starttls", ns::TLS) {
            if let TransportKind::Tcp {
                tls: false,
                tls_available: true,
            } = self.kind
            {
                self.send(Element::new("proceed", ns::TLS));
                self.kind = TransportKind::Tcp {
                    tls: true,
                    tls_available: true,
                };
                self.state = State::ExpectHeader;
                self.out.push_back(Output::StartTls);
                return;
            }
            self.state = State::Unauthenticated(sasl);
            return self.fail(StreamError::PolicyViolation, Some("STARTTLS not available"));
        }
        if let TransportKind::Tcp {
            tls: false,
            tls_available: true,
        } = self.kind
        {
            self.state = State::Unauthenticated(sasl);
            return self.fail(StreamError::PolicyViolation, Some("use STARTTLS first"));
        }
        if el.ns() != ns::SASL {
            self.state = State::Unauthenticated(sasl);
            return self.fail(StreamError::NotAuthorized, None);
        }
        let offered = self.mechanisms();
        let outcome = sasl::step(sasl, &el, &offered, &self.env, &self.host, &self.params);
        match outcome {
            sasl::Step::Continue(state, challenge) => {
                self.state = State::Unauthenticated(state);
                let data = base64::engine::general_purpose::STANDARD.encode(challenge);
                self.send(Element::new("challenge", ns::SASL).with_text(data));
            }
            sasl::Step::Success {
                node,
                claims,
                additional,
            } => {
                self.user = Some(Jid::new(Some(&node), &self.host, None));
                self.claims = claims.map(|c| *c);
                let mut ok = Element::new("success", ns::SASL);
                if let Some(a) = additional {
                    ok.push_text(base64::engine::general_purpose::STANDARD.encode(a));
                }
                self.send(ok);
                self.out.push_back(Output::Restart);
                self.stream_id = random_id();
                self.state = State::Authenticated;
            }
            sasl::Step::Failure { condition, text } => {
                self.state = State::Unauthenticated(SaslState::Idle);
                let mut f =
                    Element::new("failure", ns::SASL).with_child(Element::new(condition, ns::SASL));
                if let Some(t) = text {
                    f.push_child(Element::new("text", ns::SASL).with_text(t));
                }
                self.send(f);
            }
        }
    }

    fn expect_bind(&mut self, el: Element) {
        if el.is("resume", ns::SM) {
            let previd = el.attr("previd").unwrap_or("").to_owned();
            let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
            match h {
                Some(h) if !previd.is_empty() && self.kind != TransportKind::Bosh => {
                    self.out.push_back(Output::Resume { previd, h })
                }
                _ => self.send(sm_failed("bad-request")),
            }
            return;
        }
        if !el.is("iq", ns::CLIENT) {
            return self.fail(StreamError::NotAuthorized, Some("bind first"));
        }
        let Some(bind) = el.child("bind", ns::BIND) else {
            if el.child("session", ns::SESSION).is_some() {
                return self.send(stanza::iq_result(&el, None));
            }
            return self.send(stanza::error_reply(&el, &StanzaError::not_allowed()));
        };
        let Some(user) = self.user.clone() else {
            return self.fail(StreamError::NotAuthorized, None);
        };
        let requested = bind
            .child("resource", ns::BIND)
            .map(|r| r.text())
            .unwrap_or_default();
        let resource = if requested.is_empty()
            || requested.len() > 256
            || requested.chars().any(char::is_control)
        {
            random_id()[..12].to_owned()
        } else {
            requested
        };
        let jid = user.with_resource(&resource);
        let result = stanza::iq_result(
            &el,
            Some(
                Element::new("bind", ns::BIND)
                    .with_child(Element::new("jid", ns::BIND).with_text(jid.to_string())),
            ),
        );
        self.jid = Some(jid.clone());
        self.state = State::Bound;
        self.out.push_back(Output::Bound(jid));
        self.send(result);
    }

    fn bound(&mut self, mut el: Element) {
        if el.ns() == ns::SM {
            return self.stream_management(el);
        }
        if el.ns() != ns::CLIENT || !matches!(el.name(), "message" | "presence" | "iq") {
            return self.fail(StreamError::UnsupportedStanzaType, None);
        }
        if let Some(sm) = &mut self.sm {
            sm.inbound = sm.inbound.wrapping_add(1);
        }
        let jid = self.jid.clone().expect("bound session has a jid");
        if let Some(from) = el.attr("from") {
            let ok = Jid::parse(from).is_ok_and(|f| f == jid || f == jid.bare());
            if !ok {
                return self.fail(StreamError::InvalidFrom, None);
            }
        }
        el.set_attr("from", jid.to_string());
        let to = match el.attr("to").map(Jid::parse) {
            None => None,
            Some(Ok(to)) => Some(to),
            Some(Err(_)) => {
                if stanza::is_answerable(&el) {
                    let err = StanzaError::new(stanza::ErrorType::Modify, "jid-malformed");
                    let mut reply = stanza::error_reply(&el, &err);
                    reply.remove_attr("from");
                    self.deliver(reply);
                }
                return;
            }
        };
        if el.name() == "iq" && !valid_iq(&el) {
            let mut reply = stanza::error_reply(&el, &StanzaError::bad_request());
            reply.set_attr(
                "from",
                to.as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| self.env.domain.clone()),
            );
            return self.deliver(reply);
        }
        if el.name() == "presence" {
            match to {
                Some(to) if to.domain() == self.env.muc_domain && to.node().is_some() => {
                    if !self.presence_to_room(&mut el, &to) {
                        return;
                    }
                }
                // Broadcast presence: there is no roster to send it to.
                None => return,
                Some(_) => {}
            }
        }
        self.out.push_back(Output::Route(el));
    }

    /// Applies token rules to a MUC presence; false when it was refused here.
    fn presence_to_room(&mut self, el: &mut Element, to: &Jid) -> bool {
        let leaving = el.attr("type") == Some("unavailable");
        if to.resource().is_some() && !leaving && !self.joined.contains(to) {
            if let Some(claims) = &self.claims
                && !room_allowed(claims, to.node().unwrap_or(""))
            {
                let err = StanzaError::not_allowed().with_text("Room and token mismatched");
                let mut reply = stanza::error_reply(el, &err);
                reply.set_attr("from", to.to_string());
                self.deliver(reply);
                return false;
            }
            if self.joined.len() >= MAX_JOINED {
                let mut reply = stanza::error_reply(
                    el,
                    &StanzaError::new(stanza::ErrorType::Wait, "resource-constraint"),
                );
                reply.set_attr("from", to.to_string());
                self.deliver(reply);
                return false;
            }
            self.joined.push(to.clone());
        }
        if leaving {
            self.joined.retain(|j| j.bare() != to.bare());
        }
        // A client may not claim an identity; a token session gets its own.
        el.retain_children(|c| c.name() != "identity");
        if let Some(claims) = &self.claims {
            el.push_child(identity_element(claims));
        }
        true
    }

    fn stream_management(&mut self, el: Element) {
        match el.name() {
            "enable" if self.kind != TransportKind::Bosh && self.sm.is_none() => {
                let resumable = matches!(el.attr("resume"), Some("true") | Some("1"));
                let sm = StreamManagement::new(random_id() + &random_id(), resumable);
                let mut enabled = Element::new("enabled", ns::SM).with_attr("id", sm.id.clone());
                if resumable {
                    enabled.set_attr("resume", "true");
                    enabled.set_attr("max", "60");
                }
                self.sm = Some(sm);
                self.send(enabled);
            }
            "enable" => self.send(sm_failed("unexpected-request")),
            "r" => {
                if let Some(sm) = &self.sm {
                    let a = Element::new("a", ns::SM).with_attr("h", sm.inbound.to_string());
                    self.send(a);
                }
            }
            "a" => {
                let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
                match (h, &mut self.sm) {
                    (Some(h), Some(sm)) => {
                        if sm.acked(h).is_err() {
                            self.fail(
                                StreamError::UndefinedCondition,
                                Some("acknowledged more stanzas than were sent"),
                            );
                        }
                    }
                    _ => self.fail(StreamError::BadFormat, Some("bad <a/>")),
                }
            }
            _ => self.fail(StreamError::UnsupportedStanzaType, None),
        }
    }

    /// A stanza routed to this client.
    pub fn deliver(&mut self, mut stanza: Element) {
        if matches!(self.state, State::Closed) && self.sm.is_none() {
            return;
        }
        if stanza.attr("to").is_none()
            && let Some(j) = &self.jid
        {
            stanza.set_attr("to", j.to_string());
        }
        if let Some(sm) = &mut self.sm {
            sm.sent(&stanza);
            let request = sm.unacked_len() >= sm::ACK_REQUEST_AFTER && !sm.ack_requested;
            if request {
                sm.ack_requested = true;
            }
            self.out.push_back(Output::Send(stanza));
            if request {
                self.send(Element::new("r", ns::SM));
            }
        } else {
            self.out.push_back(Output::Send(stanza));
        }
    }

    /// Stanzas this session sent but the client has not acknowledged.
    pub fn unacked(&self) -> usize {
        self.sm.as_ref().map_or(0, StreamManagement::unacked_len)
    }

    /// Continues this (detached) session on a new transport whose client
    /// reports having received `h` stanzas: `<resumed/>`, then everything
    /// unacknowledged, again.
    pub fn resume(&mut self, kind: TransportKind, h: u32) -> Result<(), ResumeError> {
        let Some(sm) = &mut self.sm else {
            return Err(ResumeError::NotResumable);
        };
        if sm.acked(h).is_err() {
            return Err(ResumeError::BadAck);
        }
        let resumed = Element::new("resumed", ns::SM)
            .with_attr("previd", sm.id.clone())
            .with_attr("h", sm.inbound.to_string());
        let again = sm.take_unacked();
        self.out.clear();
        self.kind = kind;
        self.state = State::Bound;
        self.send(resumed);
        for s in again {
            self.deliver(s);
        }
        Ok(())
    }

    /// Tells the client a resumption failed (the transport found no session).
    pub fn resume_failed(&mut self) {
        self.send(sm_failed("item-not-found"));
    }

    /// Ends the session: unavailable presence to every room it is in.
    pub fn end(&mut self) -> Vec<Element> {
        self.state = State::Closed;
        let Some(jid) = &self.jid else {
            return Vec::new();
        };
        self.joined
            .drain(..)
            .map(|room| {
                Element::new("presence", ns::CLIENT)
                    .with_attr("type", "unavailable")
                    .with_attr("from", jid.to_string())
                    .with_attr("to", room.to_string())
            })
            .collect()
    }

    /// After the transport dropped: forget pending writes, keep the SM queue.
    pub fn detach(&mut self) {
        self.out.clear();
    }

    /// Moves a new connection's stream identity onto this resumed session.
    pub fn take_transport_state(&mut self, other: &Session) {
        self.stream_id = other.stream_id.clone();
        self.host = other.host.clone();
    }
}

fn sm_failed(condition: &'static str) -> Element {
    Element::new("failed", ns::SM).with_child(Element::new(condition, ns::STANZAS_ERR))
}

fn valid_iq(iq: &Element) -> bool {
    let n = iq.children().count();
    iq.attr("id").is_some()
        && match iq.attr("type") {
            Some("get") | Some("set") => n == 1,
            Some("result") => n <= 1,
            Some("error") => true,
            _ => false,
        }
}

/// `<identity>` as Jitsi's `mod_presence_identity` writes it.
fn identity_element(claims: &TokenClaims) -> Element {
    let mut user = Element::new("user", ns::CLIENT);
    for (k, v) in &claims.user {
        if k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        {
            user.push_child(Element::new(k.as_str(), ns::CLIENT).with_text(v.clone()));
        }
    }
    let mut id = Element::new("identity", ns::CLIENT).with_child(user);
    if let Some(g) = &claims.group {
        id.push_child(Element::new("group", ns::CLIENT).with_text(g.clone()));
    }
    id
}

/// A random lowercase-hex token, 32 characters (128 bits).
pub fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests;
