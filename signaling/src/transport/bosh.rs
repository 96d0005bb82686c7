//! BOSH (XEP-0124 with XEP-0206): XMPP over HTTP long-polling at `/http-bind`.
//!
//! Each BOSH session runs an ordinary [`Session`] through [`drive`]; HTTP
//! requests feed its input channel and collect what it wrote. Request ids
//! (`rid`) are checked against a window of `requests` (2), requests that
//! arrive early wait for their predecessor, at most `hold` (1) request is held
//! open, and the last responses are kept for retransmission.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Notify, mpsc};

use super::{Link, LinkEvent, drive, write_stream_element};
use crate::http::AppState;
use crate::ns;
use crate::session::{ConnectParams, Output, Session, StreamError, TransportKind};
use crate::xml::{Element, Limits, StreamEvent, StreamParser, escape};

/// Longest `wait` we grant, in seconds.
const MAX_WAIT: u64 = 60;
/// Seconds without any request before the session is dropped.
const INACTIVITY: u64 = 60;
/// Concurrent requests a client may have open.
const REQUESTS: u64 = 2;

enum Input {
    Event(LinkEvent),
    /// A request arrived: the client is alive.
    Touch,
}

struct BoshState {
    /// The rid the next processed request must have.
    next_rid: u64,
    wait: u64,
    /// Rendered elements waiting for a response to carry them.
    queue: Vec<String>,
    /// The stream ended: condition for the terminate body (None: normal end).
    terminated: Option<Option<String>>,
    stream_id: String,
    /// rid -> response body, for retransmission.
    sent: VecDeque<(u64, String)>,
    /// Bumped whenever a request is held, so older held requests return.
    hold_gen: u64,
}

/// One BOSH session's shared state between HTTP requests and its session task.
struct BoshSession {
    state: Mutex<BoshState>,
    changed: Notify,
    input: mpsc::Sender<Input>,
}

/// All BOSH sessions by `sid`.
#[derive(Default)]
pub struct BoshSessions {
    map: papaya::HashMap<String, Arc<BoshSession>>,
}

impl BoshSessions {
    pub fn count(&self) -> usize {
        self.map.pin().len()
    }
}

/// The session task's side.
struct BoshLink {
    shared: Arc<BoshSession>,
    rx: mpsc::Receiver<Input>,
}

impl Link for BoshLink {
    fn kind(&self) -> TransportKind {
        TransportKind::Bosh
    }

    async fn recv(&mut self) -> Option<LinkEvent> {
        loop {
            match tokio::time::timeout(Duration::from_secs(INACTIVITY + MAX_WAIT), self.rx.recv())
                .await
            {
                Ok(Some(Input::Event(ev))) => return Some(ev),
                Ok(Some(Input::Touch)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }

    async fn send(&mut self, out: &[Output]) -> std::io::Result<()> {
        let mut st = self.shared.state.lock().expect("bosh state");
        for o in out {
            match o {
                Output::Open { id, .. } => st.stream_id = id.clone(),
                Output::Send(el) => st.queue.push(render(el)),
                Output::Close(err) => {
                    let condition = err.as_ref().map(|(e, t)| {
                        st.queue.push(render(&e.to_element(t.as_deref())));
                        "remote-stream-error".to_owned()
                    });
                    st.terminated = Some(condition);
                }
                _ => {}
            }
        }
        drop(st);
        self.shared.changed.notify_waiters();
        Ok(())
    }
}

fn render(el: &Element) -> String {
    let mut s = String::new();
    if el.ns() == ns::STREAM {
        write_stream_element(&mut s, el, false);
    } else {
        el.write(&mut s, None);
    }
    s
}

fn cors(mut resp: Response, origin: Option<&HeaderValue>) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.cloned().unwrap_or(HeaderValue::from_static("*")),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("7200"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

fn body_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn terminate(condition: &str) -> String {
    format!(
        "<body xmlns='{}' type='terminate' condition='{}'/>",
        ns::BOSH,
        escape(condition)
    )
}

/// `OPTIONS /http-bind`: CORS preflight.
pub async fn options(headers: HeaderMap) -> Response {
    cors(StatusCode::OK.into_response(), headers.get(header::ORIGIN))
}

/// `GET /http-bind`: a human-readable note; BOSH itself is POST.
pub async fn get(headers: HeaderMap) -> Response {
    cors(
        (
            StatusCode::OK,
            "oxbridge BOSH endpoint: POST XEP-0124 bodies here\n",
        )
            .into_response(),
        headers.get(header::ORIGIN),
    )
}

/// `POST /http-bind`.
pub async fn post(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let resp = handle(state, query.get("token").cloned(), body).await;
    cors(resp, origin.as_ref())
}

async fn handle(state: AppState, token: Option<String>, body: Bytes) -> Response {
    let hub = &state.hub;
    if body.len() > hub.config.xmpp.limits.max_bosh_body_bytes {
        return body_response(StatusCode::PAYLOAD_TOO_LARGE, terminate("policy-violation"));
    }
    let limits = Limits {
        max_stanza_bytes: hub.config.xmpp.limits.max_bosh_body_bytes,
        max_depth: hub.config.xmpp.limits.max_depth + 1,
    };
    let mut parser = StreamParser::new(limits);
    let mut events = Vec::new();
    if parser.feed(&body, &mut events).is_err() || events.last() != Some(&StreamEvent::Close) {
        return body_response(StatusCode::BAD_REQUEST, terminate("bad-request"));
    }
    let mut events = events.into_iter();
    let Some(StreamEvent::Open(wrapper)) = events.next() else {
        return body_response(StatusCode::BAD_REQUEST, terminate("bad-request"));
    };
    if !wrapper.is("body", ns::BOSH) {
        return body_response(StatusCode::BAD_REQUEST, terminate("bad-request"));
    }
    let stanzas: Vec<Element> = events
        .filter_map(|e| match e {
            StreamEvent::Stanza(mut s) => {
                s.rename_ns(ns::BOSH, ns::CLIENT);
                Some(s)
            }
            _ => None,
        })
        .collect();
    let Some(rid) = wrapper.attr("rid").and_then(|r| r.parse::<u64>().ok()) else {
        return body_response(StatusCode::BAD_REQUEST, terminate("bad-request"));
    };
    match wrapper.attr("sid") {
        None => create(state.clone(), token, &wrapper, rid, stanzas).await,
        Some(sid) => {
            let session = state.bosh.map.pin().get(sid).cloned();
            match session {
                None => body_response(StatusCode::NOT_FOUND, terminate("item-not-found")),
                Some(s) => request(&state, sid, s, &wrapper, rid, stanzas).await,
            }
        }
    }
}

fn restart_header(domain: &str) -> Element {
    Element::new("stream", ns::STREAM)
        .with_attr("to", domain)
        .with_attr("version", "1.0")
}

async fn create(
    state: AppState,
    token: Option<String>,
    wrapper: &Element,
    rid: u64,
    stanzas: Vec<Element>,
) -> Response {
    let hub = state.hub.clone();
    let to = wrapper.attr("to").unwrap_or_default().to_owned();
    let wait = wrapper
        .attr("wait")
        .and_then(|w| w.parse::<u64>().ok())
        .unwrap_or(MAX_WAIT)
        .clamp(1, MAX_WAIT);
    let sid = crate::session::random_id();
    let (tx, rx) = mpsc::channel(256);
    let shared = Arc::new(BoshSession {
        state: Mutex::new(BoshState {
            next_rid: rid + 1,
            wait,
            queue: Vec::new(),
            terminated: None,
            stream_id: String::new(),
            sent: VecDeque::new(),
            hold_gen: 0,
        }),
        changed: Notify::new(),
        input: tx,
    });
    state.bosh.map.pin().insert(sid.clone(), shared.clone());
    let params = ConnectParams {
        token,
        previd: None,
    };
    let session = Session::new(hub.env.clone(), TransportKind::Bosh, params);
    let link = BoshLink {
        shared: shared.clone(),
        rx,
    };
    let bosh = state.bosh.clone();
    let sid_for_task = sid.clone();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        drive(hub, link, session, shutdown).await;
        bosh.map.pin().remove(&sid_for_task);
    });
    let _ = shared
        .input
        .send(Input::Event(LinkEvent::Open(restart_header(&to))))
        .await;
    for s in stanzas {
        let _ = shared.input.send(Input::Event(LinkEvent::Stanza(s))).await;
    }
    // The session answers the header with features at once.
    let body = collect(&shared, rid, Duration::from_secs(5), |st| {
        format!(
            " sid='{}' wait='{}' requests='{REQUESTS}' hold='1' inactivity='{INACTIVITY}' polling='2' maxpause='120' ver='1.6' from='{}' authid='{}' xmpp:version='1.0' xmlns:xmpp='{}' xmpp:restartlogic='true'",
            escape(&sid),
            st.wait,
            escape(&to),
            escape(&st.stream_id),
            ns::XBOSH
        )
    })
    .await;
    body_response(StatusCode::OK, body)
}

async fn request(
    state: &AppState,
    sid: &str,
    shared: Arc<BoshSession>,
    wrapper: &Element,
    rid: u64,
    stanzas: Vec<Element>,
) -> Response {
    let _ = shared.input.try_send(Input::Touch);
    // Wait (bounded) for the requests before this one, which may travel on another connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(MAX_WAIT);
    loop {
        let notified = shared.changed.notified();
        {
            let st = shared.state.lock().expect("bosh state");
            if rid < st.next_rid {
                // A retransmission: answer with what we sent, if we still have it.
                return match st.sent.iter().find(|(r, _)| *r == rid) {
                    Some((_, body)) => body_response(StatusCode::OK, body.clone()),
                    None => {
                        drop(st);
                        kill(state, sid, &shared);
                        body_response(StatusCode::NOT_FOUND, terminate("item-not-found"))
                    }
                };
            }
            if rid >= st.next_rid + REQUESTS {
                drop(st);
                kill(state, sid, &shared);
                return body_response(StatusCode::NOT_FOUND, terminate("item-not-found"));
            }
            if rid == st.next_rid {
                break;
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            kill(state, sid, &shared);
            return body_response(StatusCode::NOT_FOUND, terminate("item-not-found"));
        }
    }
    let (wait, gen_) = {
        let mut st = shared.state.lock().expect("bosh state");
        st.next_rid = rid + 1;
        st.hold_gen += 1;
        (st.wait, st.hold_gen)
    };
    shared.changed.notify_waiters();
    let restart = wrapper
        .attrs()
        .iter()
        .any(|a| a.name == "restart" && a.ns == ns::XBOSH && a.value == "true");
    if restart {
        let to = wrapper
            .attr("to")
            .unwrap_or(&state.hub.env.domain)
            .to_owned();
        let _ = shared
            .input
            .send(Input::Event(LinkEvent::Open(restart_header(&to))))
            .await;
    }
    for s in stanzas {
        if shared
            .input
            .send(Input::Event(LinkEvent::Stanza(s)))
            .await
            .is_err()
        {
            break;
        }
    }
    if wrapper.attr("type") == Some("terminate") {
        let _ = shared.input.send(Input::Event(LinkEvent::Close)).await;
    }
    let body = collect_held(&shared, rid, gen_, Duration::from_secs(wait)).await;
    body_response(StatusCode::OK, body)
}

fn kill(state: &AppState, sid: &str, shared: &BoshSession) {
    state.bosh.map.pin().remove(sid);
    let _ = shared.input.try_send(Input::Event(LinkEvent::Error(
        StreamError::PolicyViolation,
        "bad rid".into(),
    )));
}

/// Waits up to `wait` for output, returning early when a newer request is held.
async fn collect_held(shared: &BoshSession, rid: u64, gen_: u64, wait: Duration) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    // Give the session a moment to answer what this request carried.
    tokio::task::yield_now().await;
    loop {
        let notified = shared.changed.notified();
        {
            let st = shared.state.lock().expect("bosh state");
            if !st.queue.is_empty() || st.terminated.is_some() || st.hold_gen != gen_ {
                break;
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break;
        }
    }
    finish_body(shared, rid, |_| String::new())
}

async fn collect(
    shared: &BoshSession,
    rid: u64,
    wait: Duration,
    attrs: impl Fn(&BoshState) -> String,
) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = shared.changed.notified();
        {
            let st = shared.state.lock().expect("bosh state");
            if !st.queue.is_empty() || st.terminated.is_some() {
                break;
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break;
        }
    }
    finish_body(shared, rid, attrs)
}

fn finish_body(shared: &BoshSession, rid: u64, attrs: impl Fn(&BoshState) -> String) -> String {
    let mut st = shared.state.lock().expect("bosh state");
    let extra = attrs(&st);
    let items: Vec<String> = st.queue.drain(..).collect();
    let mut body = format!(
        "<body xmlns='{}' xmlns:stream='{}'{extra}",
        ns::BOSH,
        ns::STREAM
    );
    if let Some(condition) = &st.terminated {
        body.push_str(" type='terminate'");
        if let Some(c) = condition {
            body.push_str(&format!(" condition='{}'", escape(c)));
        }
    }
    if items.is_empty() {
        body.push_str("/>");
    } else {
        body.push('>');
        for i in items {
            body.push_str(&i);
        }
        body.push_str("</body>");
    }
    st.sent.push_back((rid, body.clone()));
    while st.sent.len() > REQUESTS as usize {
        st.sent.pop_front();
    }
    body
}
