//! Affiliations, roles and the occupants of a room.

use crate::jid::Jid;
use crate::xml::Element;

/// A long-lived relation of a user to a room (XEP-0045 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "admin" => Affiliation::Admin,
            "owner" => Affiliation::Owner,
            _ => return None,
        })
    }

    /// The role an occupant with this affiliation gets on joining: owners and
    /// admins moderate (Jitsi's V21 client checks the affiliation, CUR the role).
    pub fn default_role(self) -> Role {
        match self {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Outcast => Role::None,
            _ => Role::Participant,
        }
    }
}

/// A per-visit role (XEP-0045 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "none" => Role::None,
            "visitor" => Role::Visitor,
            "participant" => Role::Participant,
            "moderator" => Role::Moderator,
            _ => return None,
        })
    }
}

/// Someone in the room.
#[derive(Clone, Debug)]
pub struct Occupant {
    pub nick: String,
    /// The real full JID stanzas are delivered to.
    pub real: Jid,
    pub role: Role,
    /// The last presence the occupant sent, as relayed (MUC control children removed).
    pub presence: Element,
}

impl Occupant {
    /// The display name from `<nick xmlns='http://jabber.org/protocol/nick'>`.
    pub fn display_name(&self) -> Option<String> {
        self.presence
            .child("nick", "http://jabber.org/protocol/nick")
            .map(Element::text)
    }

    /// The email Jitsi clients put in presence.
    pub fn email(&self) -> Option<String> {
        self.presence
            .children()
            .find(|c| c.name() == "email")
            .map(Element::text)
    }
}
