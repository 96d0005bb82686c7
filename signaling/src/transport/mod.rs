//! The IO shells around [`Session`]: client TCP (STARTTLS), WebSocket
//! (RFC 7395), BOSH (XEP-0124/0206), and XEP-0114 components.
//!
//! Every client transport implements [`Link`]; [`drive`] runs the session loop
//! over it, including XEP-0198 hibernation when the link drops.

pub mod bosh;
pub mod component;
pub mod tcp;
pub mod websocket;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::hub::{Hub, Mailbox, MailboxRx, Takeover};
use crate::muc::Origin;
use crate::ns;
use crate::session::{Output, Session, StreamError, TransportKind};
use crate::xml::{Element, ParseError, escape};

/// What a transport read from its client.
#[derive(Debug)]
pub enum LinkEvent {
    Open(Element),
    Stanza(Element),
    Close,
    /// The bytes could not be parsed; the stream ends with this error.
    Error(StreamError, String),
}

/// The IO side of one client transport.
pub trait Link: Send {
    fn kind(&self) -> TransportKind;
    /// The next input; `None` when the connection is gone.
    fn recv(&mut self) -> impl std::future::Future<Output = Option<LinkEvent>> + Send;
    /// Writes the session's outputs (Open, Send, Close) in order.
    fn send(
        &mut self,
        out: &[Output],
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
    /// Upgrades to TLS after `<proceed/>` (TCP only).
    fn start_tls(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        async { Err(std::io::Error::other("no TLS on this transport")) }
    }
    /// The stream restarts after SASL.
    fn restart(&mut self) {}
}

/// Maps a parser failure to the stream error the client gets.
pub fn parse_error(e: &ParseError) -> LinkEvent {
    match e {
        ParseError::TooLarge(_) | ParseError::TooDeep(_) => {
            LinkEvent::Error(StreamError::PolicyViolation, e.to_string())
        }
        ParseError::AfterClose => LinkEvent::Error(StreamError::BadFormat, e.to_string()),
        ParseError::NotWellFormed(_) => LinkEvent::Error(StreamError::NotWellFormed, e.to_string()),
    }
}

/// Writes an element of the streams namespace with the `stream:` prefix
/// (declared here when the transport has no stream root).
pub fn write_stream_element(out: &mut String, el: &Element, declare: bool) {
    out.push_str("<stream:");
    out.push_str(el.name());
    if declare {
        out.push_str(" xmlns:stream='");
        out.push_str(ns::STREAM);
        out.push('\'');
    }
    for a in el.attrs() {
        out.push(' ');
        out.push_str(&a.name);
        out.push_str("='");
        out.push_str(&escape(&a.value));
        out.push('\'');
    }
    out.push('>');
    for c in el.children() {
        c.write(out, None);
    }
    out.push_str("</stream:");
    out.push_str(el.name());
    out.push('>');
}

/// Sustained-rate limiter for stanzas from one client: a token bucket.
struct RateLimit {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: u32, burst: u32, now: Instant) -> Self {
        RateLimit {
            tokens: burst as f64,
            rate: rate.max(1) as f64,
            burst: burst.max(1) as f64,
            last: now,
        }
    }

    /// Takes one token; returns how long to pause reading if none was left.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

fn transport_label(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Tcp { .. } => "tcp",
        TransportKind::WebSocket => "websocket",
        TransportKind::Bosh => "bosh",
    }
}

/// How a link ended.
enum Ending {
    /// Closed on purpose (stream close, error, shutdown): the session ends.
    Closed,
    /// The connection went away: a resumable session waits.
    Dropped,
}

/// Runs `session` over `link` until it ends (or hibernates and times out).
/// Stanzas moved from a session's mailbox to its connection per wake-up.
const MAX_DELIVERY_BATCH: usize = 64;

pub async fn drive<L: Link>(
    hub: Arc<Hub>,
    mut link: L,
    mut session: Session,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let limits = hub.config.xmpp.limits.clone();
    let (mailbox, mut mrx) = Mailbox::new(limits.max_queued_stanzas);
    let mut rate = RateLimit::new(
        limits.stanzas_per_second,
        limits.stanza_burst,
        Instant::now(),
    );
    let label = transport_label(link.kind());
    hub.metrics.sessions.with_label_values(&[label]).inc();
    let mut bound = None;
    let mut batch = Vec::new();
    let ending = 'outer: loop {
        // 1. drain what the session wants done
        while let Some(o) = session.poll_output() {
            match o {
                Output::Bound(jid) => {
                    hub.register_session(&jid, mailbox.clone());
                    bound = Some(jid);
                }
                Output::Route(stanza) => hub.route(
                    stanza,
                    Origin {
                        token_moderator: session.token_moderator(),
                    },
                ),
                Output::Resume { previd, h } => {
                    if link.send(&batch).await.is_err() {
                        break 'outer Ending::Dropped;
                    }
                    batch.clear();
                    match hub.take_parked(&previd).await {
                        Some((mut old, old_rx)) => {
                            old.take_transport_state(&session);
                            if old.resume(link.kind(), h).is_ok() {
                                session = old;
                                mrx = old_rx;
                                bound = session.jid().cloned();
                            } else {
                                old.resume_failed();
                                session = old;
                                mrx = old_rx;
                                bound = session.jid().cloned();
                                session.handle_stream_error(
                                    StreamError::UndefinedCondition,
                                    "bad h on resume",
                                );
                            }
                        }
                        None => session.resume_failed(),
                    }
                }
                Output::StartTls => {
                    if link.send(&batch).await.is_err() {
                        break 'outer Ending::Dropped;
                    }
                    batch.clear();
                    if link.start_tls().await.is_err() {
                        break 'outer Ending::Closed;
                    }
                }
                Output::Restart => link.restart(),
                Output::Close(err) => {
                    if let Some((e, _)) = &err {
                        hub.metrics
                            .stream_errors
                            .with_label_values(&[e.condition()])
                            .inc();
                    }
                    batch.push(Output::Close(err));
                    let _ = link.send(&batch).await;
                    break 'outer Ending::Closed;
                }
                other => batch.push(other),
            }
        }
        if !batch.is_empty() {
            if link.send(&batch).await.is_err() {
                break Ending::Dropped;
            }
            batch.clear();
        }
        // 2. wait for the next input
        tokio::select! {
            ev = link.recv() => match ev {
                None => break Ending::Dropped,
                Some(LinkEvent::Open(h)) => session.handle_open(&h),
                Some(LinkEvent::Stanza(s)) => {
                    session.handle_stanza(s);
                    if let Some(pause) = rate.take(Instant::now()) {
                        tokio::time::sleep(pause).await;
                    }
                }
                Some(LinkEvent::Close) => session.handle_close(),
                Some(LinkEvent::Error(e, text)) => session.handle_stream_error(e, &text),
            },
            Some(s) = mrx.rx.recv() => {
                // Take what else is queued too, so a busy session writes it in one go.
                let mut next = Some(s);
                let mut taken = 0;
                while let Some(s) = next.take() {
                    if s.is("error", ns::STREAM) {
                        // The hub closes a session this way (its JID was taken over).
                        session.handle_stream_error(StreamError::Conflict, "replaced by a new session");
                        break;
                    }
                    session.deliver(s);
                    taken += 1;
                    if taken < MAX_DELIVERY_BATCH {
                        next = mrx.rx.try_recv().ok();
                    }
                }
            }
            _ = mrx.overflow.notified() => session.handle_stream_error(StreamError::PolicyViolation, "too many stanzas queued for this session"),
            _ = shutdown.changed() => session.handle_stream_error(StreamError::SystemShutdown, "server shutting down"),
        }
    };
    hub.metrics.sessions.with_label_values(&[label]).dec();
    drop(link);
    if matches!(ending, Ending::Dropped) && session.resumable() && !*shutdown.borrow() {
        session.detach();
        match hibernate(&hub, session, mrx, &mut shutdown).await {
            Some((s, r)) => {
                session = s;
                mrx = r;
            }
            None => return,
        }
    }
    finish(&hub, &mut session, bound.as_ref(), &mrx.mailbox);
}

/// Keeps a dropped session alive for resumption; returns it if it timed out
/// (to be finished), `None` if a new connection took it over.
async fn hibernate(
    hub: &Arc<Hub>,
    mut session: Session,
    mut mrx: MailboxRx,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(Session, MailboxRx)> {
    let Some(id) = session.sm().map(|s| s.id.clone()) else {
        return Some((session, mrx));
    };
    let (tx, mut rx) = mpsc::channel::<Takeover>(1);
    hub.park(&id, tx);
    let deadline = tokio::time::sleep(Duration::from_secs(hub.config.xmpp.resume_timeout_secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            Some(claim) = rx.recv() => {
                match claim.send((session, mrx)) {
                    Ok(()) => return None,
                    // The claimer gave up; keep waiting with what we had.
                    Err((s, r)) => {
                        session = s;
                        mrx = r;
                        let (tx, new_rx) = mpsc::channel(1);
                        rx = new_rx;
                        hub.park(&id, tx);
                    }
                }
            }
            Some(s) = mrx.rx.recv() => {
                session.deliver(s);
                while session.poll_output().is_some() {}
                if session.unacked() > hub.config.xmpp.limits.max_queued_stanzas { break; }
            }
            _ = &mut deadline => break,
            _ = shutdown.changed() => break,
        }
    }
    hub.unpark(&id);
    Some((session, mrx))
}

/// Ends a session for good: unregister, leave rooms.
fn finish(
    hub: &Arc<Hub>,
    session: &mut Session,
    bound: Option<&crate::jid::Jid>,
    mailbox: &Mailbox,
) {
    for presence in session.end() {
        hub.route(presence, Origin::default());
    }
    if let Some(jid) = bound {
        hub.unregister_session(jid, mailbox);
    }
}

/// `<open/>` of RFC 7395 for a WebSocket stream.
pub fn ws_open(id: &str, from: &str) -> String {
    format!(
        "<open xmlns='{}' id='{}' from='{}' version='1.0' xml:lang='en'/>",
        ns::FRAMING,
        escape(id),
        escape(from)
    )
}
