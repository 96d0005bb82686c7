//! Routing: who receives a stanza. Sessions, rooms and components register
//! here; lookups are lock-free (papaya), so routing never waits on another
//! session.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::config::Config;
use crate::host;
use crate::jid::Jid;
use crate::metrics::Metrics;
use crate::muc::{MucService, Origin, RoomRules};
use crate::session::{Session, SessionEnv};
use crate::stanza::{self, StanzaError};
use crate::xml::Element;

/// Where stanzas for one session or component are queued.
#[derive(Clone)]
pub struct Mailbox {
    tx: mpsc::Sender<Element>,
    /// Fired when the queue overflowed: the owner closes the stream.
    overflow: Arc<Notify>,
}

/// The receiving end of a [`Mailbox`] (and the mailbox itself, to unregister it).
pub struct MailboxRx {
    pub rx: mpsc::Receiver<Element>,
    pub overflow: Arc<Notify>,
    pub mailbox: Mailbox,
}

impl Mailbox {
    /// A mailbox holding at most `capacity` stanzas.
    pub fn new(capacity: usize) -> (Mailbox, MailboxRx) {
        let (tx, rx) = mpsc::channel(capacity);
        let overflow = Arc::new(Notify::new());
        let mailbox = Mailbox {
            tx,
            overflow: overflow.clone(),
        };
        (
            mailbox.clone(),
            MailboxRx {
                rx,
                overflow,
                mailbox,
            },
        )
    }
}

/// A detached session waiting for XEP-0198 resumption, and how to claim it.
pub type Takeover = oneshot::Sender<(Session, MailboxRx)>;

/// The server's routing table.
pub struct Hub {
    pub config: Config,
    pub env: Arc<SessionEnv>,
    pub metrics: Metrics,
    pub muc: MucService,
    sessions: papaya::HashMap<String, Mailbox>,
    /// Bare JID to the full JIDs bound for it, for messages to an account.
    resources: papaya::HashMap<String, Vec<String>>,
    parked: papaya::HashMap<String, mpsc::Sender<Takeover>>,
    components: papaya::HashMap<String, Mailbox>,
}

impl Hub {
    /// Builds the hub; fails on configuration that cannot work (bad keys, accounts).
    pub fn new(config: Config) -> Result<Arc<Hub>, String> {
        let auth = crate::auth::Authenticator::new(&config)?;
        let env = Arc::new(SessionEnv {
            domain: config.domain.clone(),
            auth_domain: config.auth_domain(),
            muc_domain: config.muc_domain(),
            auth,
        });
        let mut admins: Vec<String> = config.muc.admins.iter().map(|a| a.to_lowercase()).collect();
        if admins.is_empty() {
            admins.push(format!("focus@{}", config.auth_domain()));
        }
        let rules = RoomRules {
            admins,
            restrict_creation: config.muc.restrict_room_creation,
            focus_wait: std::time::Duration::from_secs(config.muc.focus_wait_secs),
            max_occupants: config.muc.max_occupants,
        };
        Ok(Arc::new(Hub {
            muc: MucService::new(config.muc_domain(), rules),
            config,
            env,
            metrics: Metrics::new(),
            sessions: papaya::HashMap::new(),
            resources: papaya::HashMap::new(),
            parked: papaya::HashMap::new(),
            components: papaya::HashMap::new(),
        }))
    }

    /// Registers a bound session. A second session binding the same full JID
    /// takes over and the first is closed with a `conflict` stream error, as
    /// Prosody's default `kick_old` does.
    pub fn register_session(&self, jid: &Jid, mailbox: Mailbox) {
        let full = jid.to_string();
        if let Some(old) = self.sessions.pin().insert(full.clone(), mailbox) {
            let _ = old.tx.try_send(
                Element::new("error", crate::ns::STREAM)
                    .with_child(Element::new("conflict", crate::ns::STREAMS_ERR)),
            );
        }
        self.resources.pin().update_or_insert_with(
            jid.bare().to_string(),
            |list| {
                let mut list = list.clone();
                if !list.contains(&full) {
                    list.push(full.clone());
                }
                list
            },
            || vec![full.clone()],
        );
    }

    /// Removes a session if `mailbox` is still the one registered for `jid`.
    pub fn unregister_session(&self, jid: &Jid, mailbox: &Mailbox) {
        let full = jid.to_string();
        let sessions = self.sessions.pin();
        let removed = sessions.remove_if(&full, |_, m| m.tx.same_channel(&mailbox.tx));
        if !matches!(removed, Ok(Some(_))) {
            return;
        }
        self.resources
            .pin()
            .compute(jid.bare().to_string(), |entry| match entry {
                Some((_, list)) => {
                    let rest: Vec<String> = list.iter().filter(|f| **f != full).cloned().collect();
                    if rest.is_empty() {
                        papaya::Operation::Remove
                    } else {
                        papaya::Operation::Insert(rest)
                    }
                }
                None => papaya::Operation::Abort(()),
            });
    }

    pub fn session_count(&self) -> usize {
        self.sessions.pin().len()
    }

    /// Makes a detached session claimable by its resumption id.
    pub fn park(&self, sm_id: &str, tx: mpsc::Sender<Takeover>) {
        self.parked.pin().insert(sm_id.to_owned(), tx);
    }

    pub fn unpark(&self, sm_id: &str) {
        self.parked.pin().remove(sm_id);
    }

    /// Claims the detached session `sm_id`, if it still waits.
    pub async fn take_parked(&self, sm_id: &str) -> Option<(Session, MailboxRx)> {
        let tx = self.parked.pin().remove(sm_id).cloned()?;
        let (reply_tx, reply_rx) = oneshot::channel();
        tx.send(reply_tx).await.ok()?;
        reply_rx.await.ok()
    }

    /// Registers a component (XEP-0114, or the in-process focus) for `domain`.
    /// Returns false when the domain is taken.
    pub fn register_component(&self, domain: &str, mailbox: Mailbox) -> bool {
        let map = self.components.pin();
        if map.contains_key(domain) {
            return false;
        }
        map.insert(domain.to_owned(), mailbox);
        true
    }

    pub fn unregister_component(&self, domain: &str) {
        self.components.pin().remove(domain);
    }

    /// Delivers to a local full JID (session) or component; false if none.
    fn deliver_to(&self, to: &str, domain: &str, stanza: Element) -> Result<(), Element> {
        let sessions = self.sessions.pin();
        let mailbox = match sessions.get(to) {
            Some(m) => m.clone(),
            None => match self.components.pin().get(domain) {
                Some(m) => m.clone(),
                None => return Err(stanza),
            },
        };
        match mailbox.tx.try_send(stanza) {
            Ok(()) => {
                self.metrics.stanzas_out.inc();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.dropped_stanzas.inc();
                mailbox.overflow.notify_one();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(s)) => Err(s),
        }
    }

    /// A message to a bare JID goes to every bound resource of that account.
    fn deliver_to_account(&self, to: &Jid, stanza: Element) {
        let fulls = self
            .resources
            .pin()
            .get(&to.to_string())
            .cloned()
            .unwrap_or_default();
        let mut stanza = Some(stanza);
        for (i, full) in fulls.iter().enumerate() {
            let copy = if i + 1 == fulls.len() {
                stanza.take()
            } else {
                stanza.clone()
            };
            if let Some(copy) = copy {
                let _ = self.deliver_to(full, to.domain(), copy);
            }
        }
        if let Some(stanza) = stanza {
            self.bounce(&stanza, StanzaError::service_unavailable());
        }
    }

    /// Delivers a stanza whose `to` is a local session or component; a
    /// stanza for nobody is dropped (used for replies and room output).
    pub fn deliver(&self, stanza: Element) {
        let Some(to) = stanza.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return;
        };
        let _ = self.deliver_to(&to.to_string(), to.domain(), stanza);
    }

    /// Answers `stanza` with `err` (unless it is itself an error or a result).
    pub fn bounce(&self, stanza: &Element, err: StanzaError) {
        if stanza::is_answerable(stanza) {
            self.deliver(stanza::error_reply(stanza, &err));
        }
    }

    /// Routes a stanza from a client or component (its `from` already checked).
    pub fn route(self: &Arc<Hub>, stanza: Element, origin: Origin) {
        self.metrics.stanzas_in.inc();
        let to = match stanza.attr("to") {
            Some(t) => match Jid::parse(t) {
                Ok(j) => j,
                Err(_) => {
                    return self.bounce(
                        &stanza,
                        StanzaError::new(stanza::ErrorType::Modify, "jid-malformed"),
                    );
                }
            },
            // No `to`: for the sender's own account, which the server answers.
            None => match stanza.attr("from").and_then(|f| Jid::parse(f).ok()) {
                Some(f) => f.bare(),
                None => return,
            },
        };
        let domain = to.domain();
        if domain == self.muc.domain() {
            return self.muc.handle(self, stanza, to, origin);
        }
        let local = domain == self.env.domain || domain == self.env.auth_domain;
        if local && to.node().is_none() {
            return host::handle(self, stanza);
        }
        if local && to.resource().is_none() {
            let from_self = stanza
                .attr("from")
                .and_then(|f| Jid::parse(f).ok())
                .is_some_and(|f| f.bare() == to);
            if stanza.name() == "iq" && from_self {
                return host::handle(self, stanza);
            }
            if stanza.name() == "presence" {
                return;
            }
            if stanza.name() == "message" {
                return self.deliver_to_account(&to, stanza);
            }
            return self.bounce(&stanza, StanzaError::service_unavailable());
        }
        if let Err(stanza) = self.deliver_to(&to.to_string(), domain, stanza)
            && stanza.name() != "presence"
        {
            self.bounce(&stanza, StanzaError::service_unavailable());
        }
    }
}
