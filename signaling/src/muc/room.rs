//! One MUC room as a sans-IO state machine, with Jitsi's rules (protocol
//! reference §2.3-2.5): real JIDs visible to all, owners moderate, rooms are
//! opened by the focus, presence payloads relayed verbatim, IQs relayed between
//! occupants, the room ends with its last occupant.
//!
//! Loop: [`Room::handle`] one stanza (or [`Room::handle_timeout`]), then drain
//! [`Room::poll_output`]; every output is a stanza addressed to a real JID.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::occupant::{Affiliation, Occupant, Role};
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{self, ErrorType, StanzaError};
use crate::xml::Element;

/// Rules shared by every room of a service.
#[derive(Debug)]
pub struct RoomRules {
    /// Bare JIDs that open rooms and are always owners (the focus).
    pub admins: Vec<String>,
    pub restrict_creation: bool,
    pub focus_wait: Duration,
    pub max_occupants: usize,
}

impl RoomRules {
    fn is_admin(&self, jid: &Jid) -> bool {
        let bare = jid.bare().to_string();
        self.admins.contains(&bare)
    }
}

/// What a sender brings besides the stanza.
#[derive(Clone, Copy, Debug, Default)]
pub struct Origin {
    /// The session's token says `moderator: true`.
    pub token_moderator: bool,
}

/// Joins held until the focus is in; bounded so a flood cannot grow it.
const MAX_WAITING: usize = 256;

/// Room configuration (the muc#owner form).
#[derive(Clone, Debug, Default)]
struct Settings {
    password: Option<String>,
    members_only: bool,
    subject: String,
}

/// A MUC room.
pub struct Room {
    jid: Jid,
    meeting_id: String,
    created_unix: u64,
    rules: Arc<RoomRules>,
    settings: Settings,
    /// In join order.
    occupants: Vec<Occupant>,
    affiliations: HashMap<String, Affiliation>,
    /// Joins waiting for the focus, with their deadline.
    waiting: VecDeque<(Element, Origin, Instant)>,
    /// The focus (an admin) has been in the room.
    opened: bool,
    /// Someone has joined (status 201 goes to the first).
    created: bool,
    out: VecDeque<Element>,
}

impl Room {
    /// A new, empty room `jid` (bare); `meeting_id` is its `muc#roominfo_meetingId`.
    pub fn new(jid: Jid, meeting_id: String, created_unix: u64, rules: Arc<RoomRules>) -> Room {
        let opened = !rules.restrict_creation;
        Room {
            jid,
            meeting_id,
            created_unix,
            rules,
            settings: Settings::default(),
            occupants: Vec::new(),
            affiliations: HashMap::new(),
            waiting: VecDeque::new(),
            opened,
            created: false,
            out: VecDeque::new(),
        }
    }

    pub fn jid(&self) -> &Jid {
        &self.jid
    }

    pub fn meeting_id(&self) -> &str {
        &self.meeting_id
    }

    pub fn occupants(&self) -> &[Occupant] {
        &self.occupants
    }

    /// Occupants other than admins (the focus), as `/room-size` counts them.
    pub fn participants(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants
            .iter()
            .filter(|o| !self.rules.is_admin(&o.real))
    }

    /// Nobody in it and nobody waiting: the room is over.
    pub fn is_finished(&self) -> bool {
        self.occupants.is_empty() && self.waiting.is_empty()
    }

    pub fn poll_output(&mut self) -> Option<Element> {
        self.out.pop_front()
    }

    /// When [`Room::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.waiting.front().map(|w| w.2)
    }

    /// Refuses joins that waited too long for the focus.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.waiting.front().is_some_and(|w| w.2 <= now) {
            let (p, _, _) = self.waiting.pop_front().expect("checked");
            let err = StanzaError::not_allowed().with_text("Room creation is restricted");
            self.reject_presence(&p, err);
        }
    }

    /// One stanza whose `to` is this room or one of its occupants and whose
    /// `from` is the sender's real full JID.
    pub fn handle(&mut self, stanza: Element, origin: Origin, now: Instant) {
        let (Some(from), Some(to)) = (
            stanza.attr("from").and_then(|f| Jid::parse(f).ok()),
            stanza.attr("to").and_then(|t| Jid::parse(t).ok()),
        ) else {
            return;
        };
        match stanza.name() {
            "presence" => self.presence(stanza, from, to, origin, now),
            "message" => self.message(stanza, from, to),
            "iq" => self.iq(stanza, from, to),
            _ => {}
        }
    }

    fn occupant_by_real(&self, real: &Jid) -> Option<usize> {
        self.occupants.iter().position(|o| o.real == *real)
    }

    fn occupant_by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick == nick)
    }

    fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{}", self.jid, nick)
    }

    fn affiliation(&self, real: &Jid) -> Affiliation {
        if self.rules.is_admin(real) {
            return Affiliation::Owner;
        }
        self.affiliations
            .get(&real.bare().to_string())
            .copied()
            .unwrap_or(Affiliation::None)
    }

    fn reply_error(&mut self, stanza: &Element, err: StanzaError) {
        if stanza::is_answerable(stanza) {
            self.out.push_back(stanza::error_reply(stanza, &err));
        }
    }

    fn reject_presence(&mut self, p: &Element, err: StanzaError) {
        let mut reply = stanza::error_reply(p, &err);
        reply.retain_children(|c| c.name() == "error");
        reply.push_child(Element::new("x", ns::MUC));
        self.out.push_back(reply);
    }

    // ---- presence ----

    fn presence(&mut self, p: Element, from: Jid, to: Jid, origin: Origin, now: Instant) {
        let Some(nick) = to.resource().map(str::to_owned) else {
            return self.reply_error(&p, StanzaError::new(ErrorType::Modify, "jid-malformed"));
        };
        let me = self.occupant_by_real(&from);
        match p.attr("type") {
            Some("unavailable") => {
                if let Some(i) = me {
                    self.leave(i, &p, &[], None);
                } else {
                    self.waiting
                        .retain(|(w, _, _)| w.attr("from") != p.attr("from"));
                }
            }
            Some("error") => {
                // A client bouncing our presence is gone (Prosody removes it too).
                if let Some(i) = me {
                    self.leave(i, &Element::new("presence", ns::CLIENT), &[], None);
                }
            }
            Some(_) => {}
            None => match me {
                Some(i) if self.occupants[i].nick == nick => self.update(i, p),
                Some(_) => self.reply_error(
                    &p,
                    StanzaError::new(ErrorType::Modify, "not-acceptable")
                        .with_text("Changing nickname is not supported"),
                ),
                None => self.join(p, from, nick, origin, now),
            },
        }
    }

    /// Keeps what the client said; drops MUC control children and anything
    /// claiming to come from the room.
    fn relayable(mut p: Element) -> Element {
        p.retain_children(|c| !(c.ns() == ns::MUC || c.ns() == ns::MUC_USER));
        p.remove_attr("to");
        p.remove_attr("id");
        p
    }

    fn join(&mut self, p: Element, from: Jid, nick: String, origin: Origin, now: Instant) {
        let admin = self.rules.is_admin(&from);
        if !self.opened && !admin {
            if self.waiting.len() >= MAX_WAITING {
                return self
                    .reject_presence(&p, StanzaError::new(ErrorType::Wait, "resource-constraint"));
            }
            self.waiting
                .push_back((p, origin, now + self.rules.focus_wait));
            return;
        }
        if let Some(i) = self.occupant_by_nick(&nick)
            && (self.occupants[i].real.bare() != from.bare() || self.occupants[i].real != from)
        {
            return self.reject_presence(&p, StanzaError::new(ErrorType::Cancel, "conflict"));
        }
        let mut affiliation = self.affiliation(&from);
        if affiliation == Affiliation::Outcast {
            return self.reject_presence(&p, StanzaError::forbidden());
        }
        if let Some(pw) = &self.settings.password {
            let given = p
                .child("x", ns::MUC)
                .and_then(|x| x.child("password", ns::MUC))
                .map(Element::text);
            if given.as_deref() != Some(pw.as_str()) && !admin {
                return self
                    .reject_presence(&p, StanzaError::new(ErrorType::Auth, "not-authorized"));
            }
        }
        if self.settings.members_only && affiliation < Affiliation::Member {
            return self.reject_presence(
                &p,
                StanzaError::new(ErrorType::Auth, "registration-required"),
            );
        }
        let max = self.rules.max_occupants;
        if max > 0 && self.occupants.len() >= max && !admin {
            return self.reject_presence(&p, StanzaError::service_unavailable());
        }
        let creating = !self.created;
        self.created = true;
        // XEP-0045 §10.1: whoever creates a room owns it (under Jitsi's rules
        // only the focus can create, and it is an owner anyway).
        if (origin.token_moderator || creating) && affiliation < Affiliation::Owner {
            affiliation = Affiliation::Owner;
            self.affiliations
                .insert(from.bare().to_string(), Affiliation::Owner);
        }
        let occupant = Occupant {
            nick,
            real: from,
            role: affiliation.default_role(),
            presence: Room::relayable(p),
        };
        // The newcomer first learns who is there.
        for other in &self.occupants {
            let pres = self.presence_of(other, &occupant.real, &[]);
            self.out.push_back(pres);
        }
        self.occupants.push(occupant);
        let i = self.occupants.len() - 1;
        let mut own_codes = vec!["100", "110"];
        if creating {
            own_codes.push("201");
        }
        self.broadcast_presence(i, &own_codes);
        let subject = Element::new("message", ns::CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("from", self.jid.to_string())
            .with_attr("to", self.occupants[i].real.to_string())
            .with_child(
                Element::new("subject", ns::CLIENT).with_text(self.settings.subject.clone()),
            );
        self.out.push_back(subject);
        if admin && !self.opened {
            self.opened = true;
            let waiting: Vec<_> = self.waiting.drain(..).collect();
            for (w, o, _) in waiting {
                let (Some(f), Some(t)) = (
                    w.attr("from").and_then(|f| Jid::parse(f).ok()),
                    w.attr("to").and_then(|t| Jid::parse(t).ok()),
                ) else {
                    continue;
                };
                let nick = t.resource().unwrap_or_default().to_owned();
                self.join(w, f, nick, o, now);
            }
        }
    }

    fn update(&mut self, i: usize, p: Element) {
        self.occupants[i].presence = Room::relayable(p);
        self.broadcast_presence(i, &["110"]);
    }

    /// `occupant`'s presence as `to` receives it, with the muc#user item.
    fn presence_of(&self, occupant: &Occupant, to: &Jid, codes: &[&str]) -> Element {
        let mut p = occupant.presence.clone();
        p.set_attr("from", self.occupant_jid(&occupant.nick));
        p.set_attr("to", to.to_string());
        let mut x = Element::new("x", ns::MUC_USER).with_child(
            Element::new("item", ns::MUC_USER)
                .with_attr("affiliation", self.affiliation(&occupant.real).as_str())
                .with_attr("role", occupant.role.as_str())
                .with_attr("jid", occupant.real.to_string()),
        );
        for c in codes {
            x.push_child(Element::new("status", ns::MUC_USER).with_attr("code", *c));
        }
        p.push_child(x);
        p
    }

    /// Sends occupant `i`'s presence to everyone; `own_codes` go to `i` itself
    /// (110 there, never to others).
    fn broadcast_presence(&mut self, i: usize, own_codes: &[&str]) {
        let subject = &self.occupants[i];
        for (j, o) in self.occupants.iter().enumerate() {
            let codes: &[&str] = if i == j { own_codes } else { &[] };
            let p = self.presence_of(subject, &o.real, codes);
            self.out.push_back(p);
        }
    }

    /// Removes occupant `i`, telling everyone (status `codes`, e.g. 307 kicked).
    fn leave(
        &mut self,
        i: usize,
        unavailable: &Element,
        codes: &[&str],
        actor: Option<(&str, Option<String>)>,
    ) {
        self.leave_with(i, unavailable, codes, actor, None)
    }

    /// As `leave`, with an extra `muc#user` child (the `<destroy/>` notice).
    fn leave_with(
        &mut self,
        i: usize,
        unavailable: &Element,
        codes: &[&str],
        actor: Option<(&str, Option<String>)>,
        notice: Option<&Element>,
    ) {
        let gone = self.occupants.remove(i);
        let affiliation = self.affiliation(&gone.real);
        let make = |to: &Jid, own: bool| {
            let mut p = Element::new("presence", ns::CLIENT)
                .with_attr("type", "unavailable")
                .with_attr("from", format!("{}/{}", self.jid, gone.nick))
                .with_attr("to", to.to_string());
            for c in unavailable.children() {
                if c.name() == "status" && c.ns() == ns::CLIENT {
                    p.push_child(c.clone());
                }
            }
            let mut item = Element::new("item", ns::MUC_USER)
                .with_attr("affiliation", affiliation.as_str())
                .with_attr("role", "none")
                .with_attr("jid", gone.real.to_string());
            if let Some((nick, reason)) = &actor {
                item.push_child(Element::new("actor", ns::MUC_USER).with_attr("nick", *nick));
                if let Some(r) = reason {
                    item.push_child(Element::new("reason", ns::MUC_USER).with_text(r.clone()));
                }
            }
            let mut x = Element::new("x", ns::MUC_USER).with_child(item);
            if let Some(n) = notice {
                x.push_child(n.clone());
            }
            for c in codes {
                x.push_child(Element::new("status", ns::MUC_USER).with_attr("code", *c));
            }
            if own {
                x.push_child(Element::new("status", ns::MUC_USER).with_attr("code", "110"));
            }
            p.push_child(x);
            p
        };
        let own = make(&gone.real, true);
        self.out.push_back(own);
        for o in &self.occupants {
            let p = make(&o.real, false);
            self.out.push_back(p);
        }
        if codes.contains(&"307") && affiliation < Affiliation::Admin {
            self.affiliations.remove(&gone.real.bare().to_string());
        }
    }

    // ---- messages ----

    fn message(&mut self, m: Element, from: Jid, to: Jid) {
        let Some(me) = self.occupant_by_real(&from) else {
            return self.reply_error(
                &m,
                StanzaError::new(ErrorType::Modify, "not-acceptable")
                    .with_text("You are not in this room"),
            );
        };
        let sender = self.occupant_jid(&self.occupants[me].nick);
        match to.resource() {
            None if m.attr("type") == Some("groupchat") => {
                if m.child("subject", ns::CLIENT).is_some() && m.child("body", ns::CLIENT).is_none()
                {
                    if self.occupants[me].role < Role::Moderator {
                        return self.reply_error(&m, StanzaError::forbidden());
                    }
                    self.settings.subject = m
                        .child("subject", ns::CLIENT)
                        .map(Element::text)
                        .unwrap_or_default();
                }
                for o in &self.occupants {
                    let mut copy = m.clone();
                    copy.set_attr("from", sender.clone());
                    copy.set_attr("to", o.real.to_string());
                    self.out.push_back(copy);
                }
            }
            None => self.reply_error(&m, StanzaError::feature_not_implemented()),
            Some(nick) => {
                if m.attr("type") == Some("groupchat") {
                    return self.reply_error(&m, StanzaError::bad_request());
                }
                let Some(t) = self.occupant_by_nick(nick) else {
                    return self.reply_error(
                        &m,
                        StanzaError::item_not_found().with_text("Recipient not in room"),
                    );
                };
                let mut copy = m;
                copy.set_attr("from", sender);
                copy.set_attr("to", self.occupants[t].real.to_string());
                if copy.child("x", ns::MUC_USER).is_none() {
                    copy.push_child(Element::new("x", ns::MUC_USER));
                }
                self.out.push_back(copy);
            }
        }
    }

    // ---- IQs ----

    fn iq(&mut self, iq: Element, from: Jid, to: Jid) {
        if let Some(nick) = to.resource() {
            return self.relay_iq(iq, &from, nick.to_owned());
        }
        if !matches!(iq.attr("type"), Some("get") | Some("set")) {
            return;
        }
        let Some(payload) = iq.first_child().cloned() else {
            return self.reply_error(&iq, StanzaError::bad_request());
        };
        match (iq.attr("type"), payload.name(), payload.ns()) {
            (Some("get"), "query", ns::DISCO_INFO) => {
                let info = self.disco_info();
                self.out.push_back(stanza::iq_result(&iq, Some(info)));
            }
            (Some("get"), "query", ns::DISCO_ITEMS) => {
                self.out.push_back(stanza::iq_result(
                    &iq,
                    Some(Element::new("query", ns::DISCO_ITEMS)),
                ));
            }
            (Some("get"), "ping", ns::PING) => self.out.push_back(stanza::iq_result(&iq, None)),
            (_, "query", ns::MUC_OWNER) => self.owner(iq, &payload, &from),
            (_, "query", ns::MUC_ADMIN) => self.admin(iq, &payload, &from),
            _ => self.reply_error(&iq, StanzaError::service_unavailable()),
        }
    }

    /// Occupant-to-occupant IQ: to the target's real JID, `from` rewritten.
    fn relay_iq(&mut self, iq: Element, from: &Jid, nick: String) {
        let Some(me) = self.occupant_by_real(from) else {
            return self.reply_error(&iq, StanzaError::new(ErrorType::Modify, "not-acceptable"));
        };
        let Some(t) = self.occupant_by_nick(&nick) else {
            return self.reply_error(&iq, StanzaError::item_not_found());
        };
        let mut copy = iq;
        copy.set_attr("from", self.occupant_jid(&self.occupants[me].nick));
        copy.set_attr("to", self.occupants[t].real.to_string());
        self.out.push_back(copy);
    }
}

mod moderation;

#[cfg(test)]
mod tests;
