//! The MUC service (`conference.<domain>`): a registry of rooms, each run by
//! its own task that owns the [`Room`] core, so a busy room never stalls another.

mod occupant;
mod room;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

pub use occupant::{Affiliation, Occupant, Role};
pub use room::{Origin, Room, RoomRules};

use crate::hub::Hub;
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{self, StanzaError};
use crate::xml::Element;

/// What a room task is asked.
pub enum RoomInput {
    Stanza(Element, Origin),
    /// A snapshot of the occupants, for the HTTP APIs.
    Occupants(oneshot::Sender<RoomSnapshot>),
}

/// Who is in a room, as `/room-size` and `/room` report it.
#[derive(Clone, Debug)]
pub struct RoomSnapshot {
    pub jid: String,
    pub meeting_id: String,
    /// (occupant JID, display name, email) of each non-focus occupant.
    pub participants: Vec<(String, Option<String>, Option<String>)>,
}

#[derive(Clone)]
struct RoomHandle {
    id: u64,
    tx: mpsc::Sender<RoomInput>,
}

/// Stanzas queued for one room before senders see `resource-constraint`.
const ROOM_QUEUE: usize = 4096;

/// The rooms of one MUC service.
pub struct MucService {
    domain: String,
    rules: Arc<RoomRules>,
    rooms: papaya::HashMap<String, RoomHandle>,
    next_id: AtomicU64,
}

impl MucService {
    pub fn new(domain: String, rules: RoomRules) -> MucService {
        MucService {
            domain,
            rules: Arc::new(rules),
            rooms: papaya::HashMap::new(),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn room_count(&self) -> usize {
        self.rooms.pin().len()
    }

    /// Bare JIDs of the rooms that exist now.
    pub fn room_jids(&self) -> Vec<String> {
        self.rooms.pin().keys().cloned().collect()
    }

    /// A stanza to the service or one of its rooms.
    pub fn handle(&self, hub: &Arc<Hub>, stanza: Element, to: Jid, origin: Origin) {
        if to.node().is_none() {
            return self.service_stanza(hub, stanza);
        }
        let key = to.bare().to_string();
        let mut input = RoomInput::Stanza(stanza, origin);
        // A room may be finishing as we send; then make a new one and retry once.
        for _ in 0..2 {
            let handle = self.room(hub, &key, &input);
            let Some(handle) = handle else { return };
            match handle.tx.try_send(input) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(RoomInput::Stanza(s, _))) => {
                    return hub.bounce(
                        &s,
                        StanzaError::new(stanza::ErrorType::Wait, "resource-constraint"),
                    );
                }
                Err(mpsc::error::TrySendError::Full(_)) => return,
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    self.rooms
                        .pin()
                        .remove_if(&key, |_, h| h.id == handle.id)
                        .ok();
                    input = back;
                }
            }
        }
    }

    /// The room `key`, started if a presence may create it.
    fn room(&self, hub: &Arc<Hub>, key: &str, input: &RoomInput) -> Option<RoomHandle> {
        let rooms = self.rooms.pin();
        if let Some(h) = rooms.get(key) {
            return Some(h.clone());
        }
        let RoomInput::Stanza(stanza, _) = input else {
            return None;
        };
        if stanza.name() != "presence" || stanza.attr("type").is_some() {
            if stanza.name() != "presence" {
                hub.bounce(
                    stanza,
                    StanzaError::item_not_found().with_text("No such room"),
                );
            }
            return None;
        }
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let handle = rooms
            .get_or_insert(key.to_owned(), RoomHandle { id, tx })
            .clone();
        if handle.id == id {
            let jid = Jid::parse(key).expect("room keys are JIDs");
            let created = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let room = Room::new(
                jid,
                uuid::Uuid::new_v4().to_string(),
                created,
                self.rules.clone(),
            );
            hub.metrics.rooms_created.inc();
            hub.metrics.rooms.inc();
            tokio::spawn(run_room(hub.clone(), key.to_owned(), id, room, rx));
        }
        Some(handle)
    }

    /// disco#info / disco#items of the service itself.
    fn service_stanza(&self, hub: &Arc<Hub>, stanza: Element) {
        if stanza.name() != "iq" || !matches!(stanza.attr("type"), Some("get") | Some("set")) {
            if stanza::is_answerable(&stanza) {
                hub.bounce(&stanza, StanzaError::service_unavailable());
            }
            return;
        }
        let payload = stanza.first_child();
        let reply = match payload.map(|p| (stanza.attr("type"), p.name(), p.ns())) {
            Some((Some("get"), "query", ns::DISCO_INFO)) => Element::new("query", ns::DISCO_INFO)
                .with_child(stanza::identity("conference", "text", "Conferences"))
                .with_child(stanza::feature(ns::MUC))
                .with_child(stanza::feature(ns::DISCO_INFO))
                .with_child(stanza::feature(ns::DISCO_ITEMS)),
            Some((Some("get"), "query", ns::DISCO_ITEMS)) => {
                let mut q = Element::new("query", ns::DISCO_ITEMS);
                for room in self.room_jids() {
                    q.push_child(Element::new("item", ns::DISCO_ITEMS).with_attr("jid", room));
                }
                q
            }
            Some((Some("get"), "ping", ns::PING)) => {
                return hub.deliver(stanza::iq_result(&stanza, None));
            }
            _ => return hub.bounce(&stanza, StanzaError::service_unavailable()),
        };
        hub.deliver(stanza::iq_result(&stanza, Some(reply)));
    }

    /// Occupants of `room` (local part), if it exists.
    pub async fn snapshot(&self, room: &str) -> Option<RoomSnapshot> {
        let key = format!("{}@{}", room.to_lowercase(), self.domain);
        let handle = self.rooms.pin().get(&key).cloned()?;
        let (tx, rx) = oneshot::channel();
        handle.tx.send(RoomInput::Occupants(tx)).await.ok()?;
        rx.await.ok()
    }
}

async fn run_room(
    hub: Arc<Hub>,
    key: String,
    id: u64,
    mut room: Room,
    mut rx: mpsc::Receiver<RoomInput>,
) {
    loop {
        let deadline = room.poll_timeout();
        let wait = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let input = tokio::select! {
            i = rx.recv() => match i {
                Some(i) => Some(i),
                None => break,
            },
            _ = wait => None,
        };
        match input {
            None => room.handle_timeout(Instant::now()),
            Some(RoomInput::Stanza(s, origin)) => {
                let before = room.occupants().len() as i64;
                room.handle(s, origin, Instant::now());
                hub.metrics
                    .occupants
                    .add(room.occupants().len() as i64 - before);
            }
            Some(RoomInput::Occupants(reply)) => {
                let _ = reply.send(RoomSnapshot {
                    jid: room.jid().to_string(),
                    meeting_id: room.meeting_id().to_owned(),
                    participants: room
                        .participants()
                        .map(|o| {
                            (
                                format!("{}/{}", room.jid(), o.nick),
                                o.display_name(),
                                o.email(),
                            )
                        })
                        .collect(),
                });
            }
        }
        while let Some(out) = room.poll_output() {
            hub.deliver(out);
        }
        if room.is_finished() {
            hub.muc.rooms.pin().remove_if(&key, |_, h| h.id == id).ok();
            rx.close();
            // Anything that raced in goes to a new room.
            while let Ok(RoomInput::Stanza(s, origin)) = rx.try_recv() {
                if let Some(to) = s.attr("to").and_then(|t| Jid::parse(t).ok()) {
                    hub.muc.handle(&hub, s, to, origin);
                }
            }
            hub.metrics.rooms_destroyed.inc();
            hub.metrics.rooms.dec();
            break;
        }
    }
}
