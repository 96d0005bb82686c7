//! The focus as a running service: one thread owning every [`Conference`],
//! fed by the signaling hub (it is both the `focus.<domain>` component that
//! takes conference requests and the `focus@auth.<domain>/focus` occupant of
//! each room) and by HTTP conference requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling::hub::Mailbox;
use signaling::muc::Origin;
use signaling::stanza::{StanzaError, error_reply, feature, identity, iq_result};
use signaling::xml::Element;
use signaling::{Hub, Jid, ns};
use tokio::sync::{mpsc, oneshot};

use crate::conference::Conference;
use crate::selector::BridgeSelector;
use crate::start_muted::StartMutedPolicy;
use crate::{FOCUS_NS, FocusConfig};

/// Stanzas queued for the focus before the hub drops them.
const MAILBOX: usize = 4096;
/// How often conferences look at their timers.
const TICK: Duration = Duration::from_millis(250);

/// Why a conference request was not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{0} is not a room of this server's MUC service")]
    BadRoom(String),
    #[error("no bridge is available")]
    NoBridge,
    #[error("the focus could not join the room")]
    JoinFailed,
    #[error("the focus is shutting down")]
    Shutdown,
}

enum Command {
    Request(
        String,
        StartMutedPolicy,
        oneshot::Sender<Result<(), RequestError>>,
    ),
}

/// Who waits for a conference to be ready.
enum Waiter {
    Iq(Element),
    Http(oneshot::Sender<Result<(), RequestError>>),
}

/// A running focus.
pub struct Focus {
    commands: mpsc::Sender<Command>,
    jid: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Focus {
    /// Registers the focus with `hub` and starts its thread.
    pub fn start(
        hub: Arc<Hub>,
        bridges: BridgeSelector,
        config: FocusConfig,
    ) -> Result<Focus, String> {
        let component = hub.config.focus_domain();
        let jid = format!("focus@{}", hub.config.auth_domain());
        let full = Jid::parse(&format!("{jid}/focus")).map_err(|e| format!("focus JID: {e}"))?;
        let (mailbox, rx) = Mailbox::new(MAILBOX);
        if !hub.register_component(&component, mailbox.clone()) {
            return Err(format!(
                "{component} is already served by another component"
            ));
        }
        hub.register_session(&full, mailbox);
        let (commands, commands_rx) = mpsc::channel(256);
        let (stop, stop_rx) = oneshot::channel();
        let state = State {
            hub,
            component,
            focus_jid: full.to_string(),
            bare_jid: jid.clone(),
            config: Arc::new(config),
            bridges,
            conferences: HashMap::new(),
            waiting: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("focus".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                else {
                    return;
                };
                rt.block_on(state.run(rx.rx, commands_rx, stop_rx));
            })
            .map_err(|e| e.to_string())?;
        Ok(Focus {
            commands,
            jid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The focus's bare JID (`focusjid` in conference answers).
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// Creates (or finds) the conference for `room` and waits until the focus
    /// is in it: what `POST /conference-request/v1` asks. `start_muted` applies
    /// only if this request creates the conference.
    pub async fn request(
        &self,
        room: &str,
        start_muted: StartMutedPolicy,
    ) -> Result<(), RequestError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(room.to_owned(), start_muted, tx))
            .await
            .map_err(|_| RequestError::Shutdown)?;
        rx.await.map_err(|_| RequestError::Shutdown)?
    }
}

impl Drop for Focus {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    hub: Arc<Hub>,
    component: String,
    focus_jid: String,
    bare_jid: String,
    config: Arc<FocusConfig>,
    bridges: BridgeSelector,
    conferences: HashMap<String, Conference>,
    waiting: HashMap<String, Vec<Waiter>>,
}

impl State {
    async fn run(
        mut self,
        mut stanzas: mpsc::Receiver<Element>,
        mut commands: mpsc::Receiver<Command>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                Some(stanza) = stanzas.recv() => self.handle_stanza(stanza),
                Some(Command::Request(room, start_muted, reply)) = commands.recv() => {
                    self.request(&room, start_muted, Waiter::Http(reply));
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    for c in self.conferences.values_mut() {
                        c.handle_timeout(now);
                    }
                }
                _ = &mut stop => break,
            }
            self.flush();
        }
        for c in self.conferences.values_mut() {
            c.shutdown();
        }
        self.flush();
        self.hub.unregister_component(&self.component);
    }

    /// Sends what conferences queued, answers requests whose conference is
    /// ready, drops conferences that ended.
    fn flush(&mut self) {
        for c in self.conferences.values_mut() {
            while let Some(stanza) = c.poll_stanza() {
                self.hub.route(stanza, Origin::default());
            }
        }
        let ready: Vec<String> = self
            .waiting
            .keys()
            .filter(|room| {
                self.conferences
                    .get(*room)
                    .is_none_or(|c| c.is_joined() || c.is_over())
            })
            .cloned()
            .collect();
        for room in ready {
            let result = match self.conferences.get(&room) {
                Some(c) if c.is_joined() && !c.is_over() => Ok(()),
                _ => Err(RequestError::JoinFailed),
            };
            for waiter in self.waiting.remove(&room).unwrap_or_default() {
                self.answer(&room, waiter, result.clone());
            }
        }
        self.conferences.retain(|_, c| !c.is_over());
    }

    fn answer(&self, room: &str, waiter: Waiter, result: Result<(), RequestError>) {
        match waiter {
            Waiter::Http(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Iq(iq) => {
                let reply = match result {
                    Ok(()) => iq_result(
                        &iq,
                        Some(
                            Element::new("conference", FOCUS_NS)
                                .with_attr("room", room)
                                .with_attr("ready", "true")
                                .with_attr("focusjid", &self.bare_jid)
                                .with_child(property("authentication", "false")),
                        ),
                    ),
                    Err(RequestError::BadRoom(r)) => error_reply(
                        &iq,
                        &StanzaError::bad_request().with_text(format!("not a room here: {r}")),
                    ),
                    Err(e) => error_reply(
                        &iq,
                        &StanzaError::service_unavailable().with_text(e.to_string()),
                    ),
                };
                self.hub.route(reply, Origin::default());
            }
        }
    }

    /// A conference request for `room` (IQ or HTTP).
    fn request(&mut self, room: &str, start_muted: StartMutedPolicy, waiter: Waiter) {
        let room = room.to_lowercase();
        let muc = self.hub.config.muc_domain();
        let valid = Jid::parse(&room)
            .ok()
            .is_some_and(|j| j.domain() == muc && j.node().is_some() && j.resource().is_none());
        if !valid {
            return self.answer(&room, waiter, Err(RequestError::BadRoom(room.clone())));
        }
        if let Some(c) = self.conferences.get(&room)
            && c.is_joined()
        {
            return self.answer(&room, waiter, Ok(()));
        }
        if !self.conferences.contains_key(&room) {
            let Some(bridge) = self.bridges.select(None) else {
                return self.answer(&room, waiter, Err(RequestError::NoBridge));
            };
            let mut c = Conference::new(
                &room,
                &self.focus_jid,
                self.config.clone(),
                bridge,
                start_muted,
            );
            c.join();
            self.conferences.insert(room.clone(), c);
        }
        self.waiting.entry(room).or_default().push(waiter);
    }

    fn handle_stanza(&mut self, stanza: Element) {
        let from = stanza.attr("from").and_then(|f| Jid::parse(f).ok());
        let to_component = stanza
            .attr("to")
            .and_then(|t| Jid::parse(t).ok())
            .is_some_and(|t| t.domain() == self.component);
        if let Some(room) = from
            .as_ref()
            .filter(|f| f.domain() == self.hub.config.muc_domain())
            .map(|f| f.bare().to_string())
            && let Some(c) = self.conferences.get_mut(&room)
        {
            let now = Instant::now();
            match stanza.name() {
                "presence" => c.handle_presence(now, &stanza),
                "iq" => c.handle_iq(now, &stanza),
                _ => {}
            }
            return;
        }
        if stanza.name() != "iq" || !matches!(stanza.attr("type"), Some("get" | "set")) {
            return;
        }
        if to_component && let Some(c) = stanza.child("conference", FOCUS_NS) {
            let room = c.attr("room").unwrap_or_default().to_owned();
            let start_muted = StartMutedPolicy::from_properties(
                c.children()
                    .filter(|p| p.is("property", FOCUS_NS))
                    .filter_map(|p| Some((p.attr("name")?, p.attr("value")?))),
            );
            return self.request(&room, start_muted, Waiter::Iq(stanza));
        }
        if to_component && stanza.child("query", ns::DISCO_INFO).is_some() {
            let info = Element::new("query", ns::DISCO_INFO)
                .with_child(identity("conference", "focus", "Jitsi Meet focus"))
                .with_child(feature(ns::DISCO_INFO))
                .with_child(feature(FOCUS_NS));
            return self
                .hub
                .route(iq_result(&stanza, Some(info)), Origin::default());
        }
        self.hub.route(
            error_reply(&stanza, &StanzaError::service_unavailable()),
            Origin::default(),
        );
    }
}

fn property(name: &str, value: &str) -> Element {
    Element::new("property", FOCUS_NS)
        .with_attr("name", name)
        .with_attr("value", value)
}
