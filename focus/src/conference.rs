//! One conference as the focus runs it (protocol §2.4, §3): the focus's seat
//! in the MUC room, the participants it sees there, a Jingle session with
//! each of them built on the bridge's endpoint, and the sources they send,
//! relayed to everyone else.
//!
//! Sans-IO: presences, IQs and the time go in ([`Conference::handle_presence`],
//! [`Conference::handle_iq`], [`Conference::handle_timeout`]); stanzas to send
//! come out of [`Conference::poll_stanza`]. The bridge is called directly
//! through [`Colibri`]: in-process those calls are quick, and a remote bridge
//! adapter answers the same way.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu::api::{Colibri, RemoteTransport};
use signaling::ns;
use signaling::stanza::{ErrorType, StanzaError, error_reply, iq_result};
use signaling::xml::Element;

use crate::FocusConfig;
use crate::features::{self, DISCOVERY_TIMEOUT, Features};
use crate::jingle::{
    self, Answer, BridgeSession, ClientJingle, MediaProfile, Offer, Reason, RemoteSources,
    SourceEncoding, TransportUpdate,
};
use crate::source::{EndpointSources, SourceSet};
use crate::start_muted::StartMutedPolicy;

/// Why a client's Jingle request was refused (boxed: errors are rare, results common).
type Refusal = Box<StanzaError>;

/// The focus's nickname: lib-jitsi-meet takes Jingle only from `room/focus`.
pub const FOCUS_NICK: &str = "focus";
/// Re-invites asked for by one participant, at most one per this long.
const RESTART_EVERY: Duration = Duration::from_secs(5);

/// A participant's Jingle session with the bridge.
#[derive(Debug)]
struct Session {
    sid: String,
    /// The `bridge-session` id, echoed by the client when it asks for a restart.
    bridge_session: String,
    /// The id of our `session-initiate` while it awaits its acknowledgement.
    initiate_id: Option<String>,
    accepted: bool,
    transport: Option<RemoteTransport>,
    /// What this participant has been told of each other one's sources.
    told: HashMap<String, SourceSet>,
    /// How sources travel to this participant, fixed for the session.
    encoding: SourceEncoding,
}

#[derive(Debug)]
struct Participant {
    /// Its real JID, as the room shows it to the focus.
    jid: String,
    session: Option<Session>,
    sources: EndpointSources,
    last_restart: Option<Instant>,
    /// Its MUC role; moderators may mute others.
    moderator: bool,
    /// What its client can do; `None` until it answered our disco#info.
    features: Option<Features>,
    /// Participants in the room when it came, itself included.
    number: usize,
    /// It has been invited before: a new invitation is a re-invite.
    invited: bool,
}

/// A conference: a MUC room and its sessions on one bridge.
pub struct Conference {
    room: String,
    /// The conference's id on the bridge (in bridge-channel URLs).
    id: String,
    focus_jid: String,
    config: Arc<FocusConfig>,
    bridge: Arc<dyn Colibri>,
    profile: MediaProfile,
    /// The bridge's own sources (`jvb-a0`, `jvb-v0`), in every offer as Jicofo
    /// sends them. Without a source on its first audio and video lines, the
    /// current client's answers switch msid form at the first source-add and
    /// Chrome then asks to renegotiate dozens of times a second.
    feedback: EndpointSources,
    joined: bool,
    left: bool,
    /// In join order: the first is the oldest, who inherits ownership.
    participants: BTreeMap<u64, String>,
    by_nick: HashMap<String, (u64, Participant)>,
    joins: u64,
    owner: Option<String>,
    alone_since: Option<Instant>,
    start_muted: StartMutedPolicy,
    /// Our disco#info queries awaiting an answer: IQ id → nick, deadline.
    discovering: HashMap<String, (String, Instant)>,
    out: VecDeque<Element>,
    next_id: u64,
}

impl Conference {
    /// A conference for `room`, not joined yet: [`Conference::join`] sends the
    /// focus's presence. `start_muted` comes from the request that created it.
    pub fn new(
        room: &str,
        focus_jid: &str,
        config: Arc<FocusConfig>,
        bridge: Arc<dyn Colibri>,
        start_muted: StartMutedPolicy,
    ) -> Conference {
        Conference {
            room: room.to_owned(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            focus_jid: focus_jid.to_owned(),
            config,
            bridge,
            profile: MediaProfile::default(),
            feedback: EndpointSources::bridge_feedback(
                sfu::rtp::random_ssrc(),
                sfu::rtp::random_ssrc(),
            ),
            joined: false,
            left: false,
            participants: BTreeMap::new(),
            by_nick: HashMap::new(),
            joins: 0,
            owner: None,
            alone_since: None,
            start_muted,
            discovering: HashMap::new(),
            out: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The focus is in the room (its self-presence came back).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Everyone left and the focus left the room: drop this conference.
    pub fn is_over(&self) -> bool {
        self.left
    }

    /// Sends the focus's join presence, with what Jicofo publishes there.
    pub fn join(&mut self) {
        let properties = Element::new("conference-properties", jingle::ns::FOCUS).with_child(
            Element::new("property", jingle::ns::FOCUS)
                .with_attr("key", "support-terminate-restart")
                .with_attr("value", "true"),
        );
        let versions = Element::new("versions", jingle::ns::JITMEET).with_child(
            Element::new("component", jingle::ns::JITMEET)
                .with_attr("name", "focus")
                .with_text(env!("CARGO_PKG_VERSION")),
        );
        self.out.push_back(
            Element::new("presence", ns::CLIENT)
                .with_attr("from", &self.focus_jid)
                .with_attr("to", format!("{}/{FOCUS_NICK}", self.room))
                .with_child(Element::new("x", ns::MUC))
                .with_child(properties)
                .with_child(versions),
        );
    }

    /// A presence from the room (`from` is `room/nick`).
    pub fn handle_presence(&mut self, now: Instant, presence: &Element) {
        let Some(nick) = presence
            .attr("from")
            .and_then(|f| f.split_once('/'))
            .map(|(_, n)| n.to_owned())
        else {
            return;
        };
        let kind = presence.attr("type");
        if nick == FOCUS_NICK {
            match kind {
                None => self.joined = true,
                // Refused or thrown out: the conference cannot go on.
                Some("error") | Some("unavailable") => self.end(),
                _ => {}
            }
            return;
        }
        match kind {
            None => self.occupant_present(now, &nick, presence),
            Some("unavailable") => self.occupant_left(now, &nick),
            _ => {}
        }
    }

    fn occupant_present(&mut self, now: Instant, nick: &str, presence: &Element) {
        let item = presence
            .child("x", ns::MUC_USER)
            .and_then(|x| x.child("item", ns::MUC_USER));
        let moderator = item.and_then(|i| i.attr("role")) == Some("moderator");
        // An owner's "everyone starts muted" (the 2021 client's settings).
        if matches!(
            item.and_then(|i| i.attr("affiliation")),
            Some("owner" | "admin")
        ) && let Some(m) = presence.child("startmuted", jingle::ns::START_MUTED)
        {
            self.start_muted.set_room(jingle::StartMuted {
                audio: m.attr("audio") == Some("true"),
                video: m.attr("video") == Some("true"),
            });
        }
        if let Some((_, p)) = self.by_nick.get_mut(nick) {
            p.moderator = moderator;
            return;
        }
        let Some(jid) = item.and_then(|i| i.attr("jid")) else {
            return;
        };
        self.joins += 1;
        self.participants.insert(self.joins, nick.to_owned());
        self.by_nick.insert(
            nick.to_owned(),
            (
                self.joins,
                Participant {
                    jid: jid.to_owned(),
                    session: None,
                    sources: EndpointSources::new(nick),
                    last_restart: None,
                    moderator,
                    features: None,
                    number: self.by_nick.len() + 1,
                    invited: false,
                },
            ),
        );
        if self.owner.is_none() {
            self.grant_owner(nick);
        }
        // Its features decide its offer: ask before it can be invited.
        let id = self.next_id("disco");
        let to = self.occupant(nick);
        self.out
            .push_back(features::query(&self.focus_jid, &to, &id, presence));
        self.discovering
            .insert(id, (nick.to_owned(), now + DISCOVERY_TIMEOUT));
    }

    /// A participant's features are known (or assumed): it may be invited.
    fn discovered(&mut self, nick: &str, features: Features) {
        if let Some((_, p)) = self.by_nick.get_mut(nick) {
            p.features = Some(features);
            self.invite_all();
        }
    }

    fn occupant_left(&mut self, now: Instant, nick: &str) {
        let Some((order, p)) = self.by_nick.remove(nick) else {
            return;
        };
        self.participants.remove(&order);
        self.discovering.retain(|_, (n, _)| n != nick);
        if p.session.is_some() {
            let _ = self.bridge.expire_endpoint(&self.id, nick);
        }
        // Clients drop a leaver's sources on its unavailable presence; no source-remove.
        for (_, other) in self.by_nick.values_mut() {
            if let Some(s) = other.session.as_mut() {
                s.told.remove(nick);
            }
        }
        if self.owner.as_deref() == Some(nick) {
            self.owner = None;
            if let Some(next) = self.participants.values().next().cloned() {
                self.grant_owner(&next);
            }
        }
        match self.by_nick.len() {
            0 => self.end(),
            1 => self.alone_since = Some(now),
            _ => {}
        }
    }

    /// Owner (moderator) to `nick`, as Jicofo's auto-owner does.
    fn grant_owner(&mut self, nick: &str) {
        let Some((_, p)) = self.by_nick.get(nick) else {
            return;
        };
        let bare = p.jid.split('/').next().unwrap_or(&p.jid).to_owned();
        self.owner = Some(nick.to_owned());
        let id = self.next_id("owner");
        self.out.push_back(
            Element::new("iq", ns::CLIENT)
                .with_attr("type", "set")
                .with_attr("id", id)
                .with_attr("from", &self.focus_jid)
                .with_attr("to", &self.room)
                .with_child(
                    Element::new("query", ns::MUC_ADMIN).with_child(
                        Element::new("item", ns::MUC_ADMIN)
                            .with_attr("affiliation", "owner")
                            .with_attr("jid", bare),
                    ),
                ),
        );
    }

    fn next_id(&mut self, what: &str) -> String {
        self.next_id += 1;
        format!("{what}-{}", self.next_id)
    }

    /// Invites everyone without a session whose features are known, once
    /// enough people are here.
    fn invite_all(&mut self) {
        if self.by_nick.len() < self.config.min_participants.max(1) {
            return;
        }
        self.alone_since = None;
        let waiting: Vec<String> = self
            .participants
            .values()
            .filter(|n| {
                self.by_nick
                    .get(*n)
                    .is_some_and(|(_, p)| p.session.is_none() && p.features.is_some())
            })
            .cloned()
            .collect();
        for nick in waiting {
            self.invite(&nick);
        }
    }

    /// Allocates `nick`'s endpoint on the bridge and sends it the offer.
    fn invite(&mut self, nick: &str) {
        let local = match self.bridge.create_endpoint(&self.id, nick) {
            Ok(l) => l,
            Err(sfu::api::ApiError::EndpointExists(_)) => {
                let _ = self.bridge.expire_endpoint(&self.id, nick);
                match self.bridge.create_endpoint(&self.id, nick) {
                    Ok(l) => l,
                    Err(_) => return,
                }
            }
            Err(_) => return,
        };
        let others = self.active_sources(nick);
        let remote: Vec<RemoteSources<'_>> = std::iter::once(RemoteSources::from(&self.feedback))
            .chain(others.iter().map(|(owner, set)| RemoteSources {
                owner,
                sources: set,
            }))
            .collect();
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let bridge_session = uuid::Uuid::new_v4().to_string();
        let base = format!(
            "{}/{}",
            self.config.bridge_channel_base.trim_end_matches('/'),
            self.bridge.id()
        );
        let (features, number, first) = self
            .by_nick
            .get(nick)
            .map(|(_, p)| {
                (
                    p.features.unwrap_or(Features::FALLBACK),
                    p.number,
                    !p.invited,
                )
            })
            .unwrap_or((Features::FALLBACK, 0, false));
        let encoding = if features.json_sources {
            SourceEncoding::Json
        } else {
            SourceEncoding::Standard
        };
        let mut offer = Offer::new(&sid, &self.focus_jid, &local, &self.profile);
        offer.bridge_channel_base = Some(&base);
        offer.sources = &remote;
        offer.encoding = encoding;
        offer.audio = features.audio;
        offer.video = features.video;
        offer.start_muted = self.start_muted.for_participant(number, first);
        let region = self.bridge.load().region;
        offer.bridge_session = Some(BridgeSession {
            id: &bridge_session,
            region: region.as_deref(),
        });
        let jingle = jingle::build_session_initiate(&offer);
        let told: HashMap<String, SourceSet> = others.into_iter().collect();
        let id = self.next_id("jingle");
        let iq = jingle::wrap_iq(jingle, &self.focus_jid, &self.occupant(nick), &id);
        if let Some((_, p)) = self.by_nick.get_mut(nick) {
            p.sources = EndpointSources::new(nick);
            p.invited = true;
            p.session = Some(Session {
                sid,
                bridge_session,
                initiate_id: Some(id),
                accepted: false,
                transport: None,
                told,
                encoding,
            });
        }
        self.out.push_back(iq);
    }

    fn occupant(&self, nick: &str) -> String {
        format!("{}/{nick}", self.room)
    }

    /// The current sources of every participant with an accepted session but `except`.
    fn active_sources(&self, except: &str) -> Vec<(String, SourceSet)> {
        self.participants
            .values()
            .filter(|n| n.as_str() != except)
            .filter_map(|n| {
                let (_, p) = self.by_nick.get(n)?;
                let accepted = p.session.as_ref().is_some_and(|s| s.accepted);
                (accepted && !p.sources.set().is_empty())
                    .then(|| (n.clone(), p.sources.set().clone()))
            })
            .collect()
    }

    /// An IQ from an occupant (`from` is `room/nick`): Jingle, or the answer
    /// to one of ours.
    pub fn handle_iq(&mut self, now: Instant, iq: &Element) {
        let Some(nick) = iq
            .attr("from")
            .and_then(|f| f.split_once('/'))
            .map(|(_, n)| n.to_owned())
        else {
            return;
        };
        // The answer to our disco#info, from the occupant asked and no other.
        if let Some(id) = iq.attr("id")
            && matches!(iq.attr("type"), Some("result" | "error"))
            && self
                .discovering
                .get(id)
                .is_some_and(|(asked, _)| *asked == nick)
        {
            self.discovering.remove(id);
            let features = match iq.attr("type") {
                Some("result") => Features::from_disco(iq),
                _ => Features::FALLBACK,
            };
            return self.discovered(&nick, features);
        }
        match iq.attr("type") {
            Some("result") => {}
            Some("error") => self.initiate_failed(&nick, iq.attr("id")),
            Some("set") if mute_request(iq).is_some() => self.mute(&nick, iq),
            Some("set") => self.handle_jingle(now, &nick, iq),
            _ => self.reply_error(iq, StanzaError::service_unavailable()),
        }
    }

    /// A moderator mutes someone (protocol §2.5): the focus passes the same
    /// request on to the target, naming the actor; the target mutes itself.
    fn mute(&mut self, nick: &str, iq: &Element) {
        let Some((media, target, mute)) = mute_request(iq) else {
            return;
        };
        if !self.by_nick.get(nick).is_some_and(|(_, p)| p.moderator) {
            return self.reply_error(iq, StanzaError::forbidden());
        }
        let Some(target_nick) = target
            .strip_prefix(&self.room)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|n| self.by_nick.contains_key(*n))
            .map(str::to_owned)
        else {
            return self.reply_error(iq, StanzaError::item_not_found());
        };
        // Only muting is passed on: clients ignore remote unmutes anyway.
        if mute {
            let id = self.next_id("mute");
            let ns = format!("http://jitsi.org/jitmeet/{media}");
            self.out.push_back(
                Element::new("iq", ns::CLIENT)
                    .with_attr("type", "set")
                    .with_attr("id", id)
                    .with_attr("from", &self.focus_jid)
                    .with_attr("to", self.occupant(&target_nick))
                    .with_child(
                        Element::new("mute", ns)
                            .with_attr("jid", target)
                            .with_attr("actor", self.occupant(nick))
                            .with_text("true"),
                    ),
            );
        }
        self.out.push_back(with_from(iq_result(iq, None), iq));
    }

    /// The client refused our offer: its endpoint goes, it can be invited again.
    fn initiate_failed(&mut self, nick: &str, id: Option<&str>) {
        let Some((_, p)) = self.by_nick.get_mut(nick) else {
            return;
        };
        if p.session.as_ref().and_then(|s| s.initiate_id.as_deref()) == id && id.is_some() {
            p.session = None;
            let _ = self.bridge.expire_endpoint(&self.id, nick);
        }
    }

    fn reply_error(&mut self, iq: &Element, err: StanzaError) {
        self.out.push_back(with_from(error_reply(iq, &err), iq));
    }

    fn handle_jingle(&mut self, now: Instant, nick: &str, iq: &Element) {
        let incoming = match jingle::parse_client(iq) {
            Ok(i) => i,
            Err(jingle::JingleError::NotJingle) => {
                return self.reply_error(iq, StanzaError::service_unavailable());
            }
            Err(e) => {
                return self.reply_error(iq, StanzaError::bad_request().with_text(e.to_string()));
            }
        };
        let sid_matches = self
            .by_nick
            .get(nick)
            .and_then(|(_, p)| p.session.as_ref())
            .is_some_and(|s| s.sid == incoming.sid);
        if !sid_matches {
            let unknown = Element::new("unknown-session", jingle::ns::JINGLE_ERRORS);
            return self.reply_error(iq, StanzaError::item_not_found().with_extra(unknown));
        }
        let result = match incoming.body {
            ClientJingle::Accept(answer) => self.accept(nick, answer),
            ClientJingle::SourceAdd(set) => self.change_sources(nick, Ok(set)),
            ClientJingle::SourceRemove(set) => self.change_sources(nick, Err(set)),
            ClientJingle::TransportInfo(update) => self.transport_info(nick, update),
            ClientJingle::Terminate(t) => {
                self.out.push_back(with_from(iq_result(iq, None), iq));
                let current = self
                    .by_nick
                    .get(nick)
                    .and_then(|(_, p)| p.session.as_ref())
                    .map(|s| s.bridge_session.as_str());
                // A restart asked for an older bridge session is stale.
                let restart = t.restart
                    && t.bridge_session
                        .as_deref()
                        .is_none_or(|b| Some(b) == current);
                self.terminated(now, nick, restart);
                return;
            }
            ClientJingle::SessionInfo(info) => {
                if info.ice_restart {
                    // Refusing is the newest client's signal to restart the
                    // session instead (session-terminate, then a re-invite).
                    let refusal = StanzaError::new(ErrorType::Cancel, "feature-not-implemented")
                        .with_text("no in-place ICE restart here: restart the session");
                    self.reply_error(iq, refusal);
                    return;
                }
                self.out.push_back(with_from(iq_result(iq, None), iq));
                if info.ice_failed {
                    self.terminated(now, nick, true);
                }
                return;
            }
            ClientJingle::Other(_) => Err(Box::new(StanzaError::bad_request())),
        };
        match result {
            Ok(()) => {
                self.out.push_back(with_from(iq_result(iq, None), iq));
                self.sync_sources();
            }
            Err(e) => self.reply_error(iq, *e),
        }
    }

    fn accept(&mut self, nick: &str, answer: Answer) -> Result<(), Refusal> {
        let (_, p) = self.by_nick.get_mut(nick).expect("checked by the caller");
        let mut sources = EndpointSources::new(nick);
        sources
            .add(answer.sources)
            .map_err(|e| Box::new(StanzaError::bad_request().with_text(e.to_string())))?;
        self.bridge
            .update_endpoint(
                &self.id,
                nick,
                Some(answer.transport.clone()),
                Some(sources.to_sfu()),
            )
            .map_err(|e| Box::new(bridge_error(e)))?;
        p.sources = sources;
        if let Some(s) = p.session.as_mut() {
            s.accepted = true;
            s.initiate_id = None;
            s.transport = Some(answer.transport);
        }
        Ok(())
    }

    /// `Ok` adds, `Err` removes.
    fn change_sources(
        &mut self,
        nick: &str,
        change: Result<SourceSet, SourceSet>,
    ) -> Result<(), Refusal> {
        let (_, p) = self.by_nick.get_mut(nick).expect("checked by the caller");
        let mut sources = p.sources.clone();
        let outcome = match change {
            Ok(add) => sources.add(add).map(drop),
            Err(remove) => sources.remove(&remove).map(drop),
        };
        outcome.map_err(|e| Box::new(StanzaError::bad_request().with_text(e.to_string())))?;
        self.bridge
            .update_endpoint(&self.id, nick, None, Some(sources.to_sfu()))
            .map_err(|e| Box::new(bridge_error(e)))?;
        p.sources = sources;
        Ok(())
    }

    /// Trickled candidates join what the bridge knows of the client's transport.
    fn transport_info(&mut self, nick: &str, update: TransportUpdate) -> Result<(), Refusal> {
        let (_, p) = self.by_nick.get_mut(nick).expect("checked by the caller");
        let Some(transport) = p.session.as_mut().and_then(|s| s.transport.as_mut()) else {
            // Before the answer: the bridge learns the client's address from its checks.
            return Ok(());
        };
        let mut merged = transport.clone();
        for c in update.candidates {
            if merged.candidates.len() > sfu::api::MAX_REMOTE_CANDIDATES {
                break; // the bridge refuses these already
            }
            if !merged.candidates.contains(&c) {
                merged.candidates.push(c);
            }
        }
        // Kept only once the bridge took them: it bounds how many one client may signal.
        self.bridge
            .update_endpoint(&self.id, nick, Some(merged.clone()), None)
            .map_err(|e| Box::new(bridge_error(e)))?;
        *transport = merged;
        Ok(())
    }

    /// The client ended its session; with `restart` it wants a new one.
    fn terminated(&mut self, now: Instant, nick: &str, restart: bool) {
        let Some((_, p)) = self.by_nick.get_mut(nick) else {
            return;
        };
        p.session = None;
        p.sources = EndpointSources::new(nick);
        let _ = self.bridge.expire_endpoint(&self.id, nick);
        let allowed = p
            .last_restart
            .is_none_or(|t| now.saturating_duration_since(t) >= RESTART_EVERY);
        // Its sources are gone for the others.
        self.sync_sources();
        if restart && allowed {
            if let Some((_, p)) = self.by_nick.get_mut(nick) {
                p.last_restart = Some(now);
            }
            self.invite(nick);
        }
    }

    /// Tells every participant with an accepted session what changed in the
    /// others' sources since it was last told: `source-add`, `source-remove`.
    fn sync_sources(&mut self) {
        let nicks: Vec<String> = self.participants.values().cloned().collect();
        let current: HashMap<String, SourceSet> = nicks
            .iter()
            .filter_map(|n| {
                let (_, p) = self.by_nick.get(n)?;
                let accepted = p.session.as_ref().is_some_and(|s| s.accepted);
                Some((
                    n.clone(),
                    if accepted {
                        p.sources.set().clone()
                    } else {
                        SourceSet::default()
                    },
                ))
            })
            .collect();
        for nick in &nicks {
            let occupant = self.occupant(nick);
            let Some((_, p)) = self.by_nick.get_mut(nick) else {
                continue;
            };
            let Some(session) = p.session.as_mut().filter(|s| s.accepted) else {
                continue;
            };
            let (mut added, mut removed) = (Vec::new(), Vec::new());
            for (owner, now_set) in &current {
                if owner == nick {
                    continue;
                }
                let before = session.told.get(owner).cloned().unwrap_or_default();
                let (add, remove) = diff(&before, now_set);
                if !add.is_empty() {
                    added.push((owner.clone(), add));
                }
                if !remove.is_empty() {
                    removed.push((owner.clone(), remove));
                }
                session.told.insert(owner.clone(), now_set.clone());
            }
            let sid = session.sid.clone();
            let encoding = session.encoding;
            for (action, changes) in [(false, removed), (true, added)] {
                if changes.is_empty() {
                    continue;
                }
                let owners: Vec<RemoteSources<'_>> = changes
                    .iter()
                    .map(|(owner, set)| RemoteSources {
                        owner,
                        sources: set,
                    })
                    .collect();
                let jingle = if action {
                    jingle::build_source_add(&sid, &owners, encoding)
                } else {
                    jingle::build_source_remove(&sid, &owners, encoding)
                };
                self.next_id += 1;
                let id = format!("sources-{}", self.next_id);
                self.out
                    .push_back(jingle::wrap_iq(jingle, &self.focus_jid, &occupant, &id));
            }
        }
    }

    /// Invites those whose client did not answer in time with the fallback
    /// features; ends a lone participant's session after the
    /// single-participant timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let late: Vec<String> = self
            .discovering
            .iter()
            .filter(|(_, (_, deadline))| now >= *deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            if let Some((nick, _)) = self.discovering.remove(&id) {
                self.discovered(&nick, Features::FALLBACK);
            }
        }
        let Some(since) = self.alone_since else {
            return;
        };
        if now.saturating_duration_since(since) < self.config.single_participant_timeout {
            return;
        }
        self.alone_since = None;
        let lone: Vec<String> = self.by_nick.keys().cloned().collect();
        for nick in lone {
            let occupant = self.occupant(&nick);
            let Some((_, p)) = self.by_nick.get_mut(&nick) else {
                continue;
            };
            let Some(session) = p.session.take() else {
                continue;
            };
            p.sources = EndpointSources::new(&nick);
            let jingle = jingle::build_session_terminate(&session.sid, Reason::Expired, None);
            let id = self.next_id("terminate");
            self.out
                .push_back(jingle::wrap_iq(jingle, &self.focus_jid, &occupant, &id));
        }
        let _ = self.bridge.expire_conference(&self.id);
    }

    /// The focus leaves and the bridge forgets the conference.
    fn end(&mut self) {
        if self.left {
            return;
        }
        self.left = true;
        let _ = self.bridge.expire_conference(&self.id);
        if self.joined {
            self.out.push_back(
                Element::new("presence", ns::CLIENT)
                    .with_attr("type", "unavailable")
                    .with_attr("from", &self.focus_jid)
                    .with_attr("to", format!("{}/{FOCUS_NICK}", self.room)),
            );
        }
    }

    /// The focus is shutting down: everyone's session ends, the focus leaves.
    pub fn shutdown(&mut self) {
        let nicks: Vec<String> = self.by_nick.keys().cloned().collect();
        for nick in nicks {
            let occupant = self.occupant(&nick);
            if let Some(session) = self
                .by_nick
                .get_mut(&nick)
                .and_then(|(_, p)| p.session.take())
            {
                let jingle = jingle::build_session_terminate(&session.sid, Reason::Gone, None);
                let id = self.next_id("terminate");
                self.out
                    .push_back(jingle::wrap_iq(jingle, &self.focus_jid, &occupant, &id));
            }
        }
        self.end();
    }

    pub fn poll_stanza(&mut self) -> Option<Element> {
        self.out.pop_front()
    }
}

/// A non-zero SSRC for the bridge's feedback sources (never sent on).
/// A mute request's media (`audio`, `video`, `desktop`), target occupant JID and value.
fn mute_request(iq: &Element) -> Option<(&'static str, String, bool)> {
    ["audio", "video", "desktop"].into_iter().find_map(|media| {
        let m = iq.child("mute", &format!("http://jitsi.org/jitmeet/{media}"))?;
        Some((media, m.attr("jid")?.to_owned(), m.text().trim() == "true"))
    })
}

/// Replies go from the focus's real JID; the room maps it to `room/focus`.
fn with_from(mut reply: Element, request: &Element) -> Element {
    if let Some(to) = request.attr("to") {
        reply.set_attr("from", to);
    }
    reply
}

fn bridge_error(e: sfu::api::ApiError) -> StanzaError {
    use sfu::api::ApiError;
    match e {
        ApiError::BadRequest(text) => StanzaError::bad_request().with_text(text),
        other => {
            StanzaError::new(ErrorType::Wait, "internal-server-error").with_text(other.to_string())
        }
    }
}

/// What `now` has that `before` lacks, and what `before` had that `now` lacks.
fn diff(before: &SourceSet, now: &SourceSet) -> (SourceSet, SourceSet) {
    let has = |set: &SourceSet, ssrc: u32| set.sources.iter().any(|s| s.ssrc == ssrc);
    let add = SourceSet {
        sources: now
            .sources
            .iter()
            .filter(|s| !has(before, s.ssrc))
            .cloned()
            .collect(),
        groups: now
            .groups
            .iter()
            .filter(|g| !before.groups.contains(g))
            .cloned()
            .collect(),
    };
    let remove = SourceSet {
        sources: before
            .sources
            .iter()
            .filter(|s| !has(now, s.ssrc))
            .cloned()
            .collect(),
        groups: before
            .groups
            .iter()
            .filter(|g| !now.groups.contains(g))
            .cloned()
            .collect(),
    };
    (add, remove)
}

#[cfg(test)]
mod tests;
