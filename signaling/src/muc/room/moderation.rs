//! What owners and moderators do to a room: its disco#info and configuration
//! form, owner configuration and destruction, role and affiliation changes.

use super::*;

impl Room {
    pub(super) fn disco_info(&self) -> Element {
        let mut q = Element::new("query", ns::DISCO_INFO)
            .with_child(stanza::identity(
                "conference",
                "text",
                self.jid.node().unwrap_or_default(),
            ))
            .with_child(stanza::feature(ns::MUC))
            .with_child(stanza::feature("muc_public"))
            .with_child(stanza::feature("muc_nonanonymous"))
            .with_child(stanza::feature("muc_temporary"))
            .with_child(stanza::feature("muc_open"));
        q.push_child(stanza::feature(if self.settings.password.is_some() {
            "muc_passwordprotected"
        } else {
            "muc_unsecured"
        }));
        if self.settings.members_only {
            q.push_child(stanza::feature("muc_membersonly"));
        }
        let form = Element::new("x", ns::DATA_FORMS)
            .with_attr("type", "result")
            .with_child(stanza::form_field(
                "FORM_TYPE",
                "http://jabber.org/protocol/muc#roominfo",
            ))
            .with_child(stanza::form_field(
                "muc#roominfo_meetingId",
                &self.meeting_id,
            ))
            .with_child(stanza::form_field(
                "muc#roominfo_occupants",
                &self.occupants.len().to_string(),
            ))
            .with_child(stanza::form_field(
                "muc#roominfo_created_timestamp",
                &(self.created_unix * 1000).to_string(),
            ))
            .with_child(stanza::form_field(
                "muc#roominfo_subject",
                &self.settings.subject,
            ));
        q.push_child(form);
        q
    }

    fn config_form(&self) -> Element {
        Element::new("x", ns::DATA_FORMS)
            .with_attr("type", "form")
            .with_child(stanza::form_field(
                "FORM_TYPE",
                "http://jabber.org/protocol/muc#roomconfig",
            ))
            .with_child(stanza::form_field(
                "muc#roominfo_meetingId",
                &self.meeting_id,
            ))
            .with_child(stanza::form_field("muc#roomconfig_whois", "anyone"))
            .with_child(stanza::form_field(
                "muc#roomconfig_passwordprotectedroom",
                if self.settings.password.is_some() {
                    "1"
                } else {
                    "0"
                },
            ))
            .with_child(stanza::form_field(
                "muc#roomconfig_roomsecret",
                self.settings.password.as_deref().unwrap_or(""),
            ))
            .with_child(stanza::form_field(
                "muc#roomconfig_membersonly",
                if self.settings.members_only { "1" } else { "0" },
            ))
            .with_child(stanza::form_field("muc#roomconfig_persistentroom", "0"))
    }

    pub(super) fn owner(&mut self, iq: Element, q: &Element, from: &Jid) {
        if self.affiliation(from) != Affiliation::Owner {
            return self.reply_error(&iq, StanzaError::forbidden());
        }
        if iq.attr("type") == Some("get") {
            let form = self.config_form();
            let reply = Element::new("query", ns::MUC_OWNER).with_child(form);
            return self.out.push_back(stanza::iq_result(&iq, Some(reply)));
        }
        if let Some(x) = q.child("x", ns::DATA_FORMS) {
            if x.attr("type") == Some("submit") {
                let mut protect = None;
                let mut secret = None;
                for f in x.children().filter(|f| f.name() == "field") {
                    let value = f
                        .child("value", ns::DATA_FORMS)
                        .map(Element::text)
                        .unwrap_or_default();
                    match f.attr("var") {
                        Some("muc#roomconfig_passwordprotectedroom") => {
                            protect = Some(value == "1" || value == "true")
                        }
                        Some("muc#roomconfig_roomsecret") => secret = Some(value),
                        Some("muc#roomconfig_membersonly") => {
                            self.settings.members_only = value == "1" || value == "true"
                        }
                        Some("muc#roominfo_meetingId")
                            if !value.is_empty() && value.len() <= 128 =>
                        {
                            self.meeting_id = value
                        }
                        _ => {}
                    }
                }
                let secret = secret
                    .or(self.settings.password.clone())
                    .filter(|s| !s.is_empty());
                self.settings.password = match protect {
                    Some(false) => None,
                    Some(true) => secret,
                    None => secret,
                };
                if self.settings.members_only {
                    // Jitsi's lobby: whoever is inside now stays a member.
                    for o in &self.occupants {
                        let bare = o.real.bare().to_string();
                        let a = self.affiliations.entry(bare).or_insert(Affiliation::None);
                        if *a < Affiliation::Member {
                            *a = Affiliation::Member;
                        }
                    }
                }
            }
            return self.out.push_back(stanza::iq_result(&iq, None));
        }
        if let Some(d) = q.child("destroy", ns::MUC_OWNER) {
            // XEP-0045 §10.9: everyone is told why, and where to go instead.
            let mut notice = Element::new("destroy", ns::MUC_USER);
            if let Some(alt) = d.attr("jid") {
                notice = notice.with_attr("jid", alt);
            }
            if let Some(r) = d.child("reason", ns::MUC_OWNER) {
                notice.push_child(Element::new("reason", ns::MUC_USER).with_text(r.text()));
            }
            self.out.push_back(stanza::iq_result(&iq, None));
            let unavailable = Element::new("presence", ns::CLIENT);
            while !self.occupants.is_empty() {
                self.leave_with(0, &unavailable, &[], None, Some(&notice));
            }
            return;
        }
        self.reply_error(&iq, StanzaError::bad_request())
    }

    pub(super) fn admin(&mut self, iq: Element, q: &Element, from: &Jid) {
        let Some(me) = self.occupant_by_real(from) else {
            return self.reply_error(&iq, StanzaError::forbidden());
        };
        let my_aff = self.affiliation(from);
        let my_role = self.occupants[me].role;
        let my_nick = self.occupants[me].nick.clone();
        if iq.attr("type") == Some("get") {
            if my_role < Role::Moderator {
                return self.reply_error(&iq, StanzaError::forbidden());
            }
            let wanted = q
                .children()
                .next()
                .and_then(|i| i.attr("affiliation"))
                .and_then(Affiliation::parse);
            let mut reply = Element::new("query", ns::MUC_ADMIN);
            for (jid, a) in &self.affiliations {
                if wanted.is_none_or(|w| w == *a) {
                    reply.push_child(
                        Element::new("item", ns::MUC_ADMIN)
                            .with_attr("jid", jid.clone())
                            .with_attr("affiliation", a.as_str()),
                    );
                }
            }
            return self.out.push_back(stanza::iq_result(&iq, Some(reply)));
        }
        for item in q.children().filter(|i| i.name() == "item") {
            let reason = item.child("reason", ns::MUC_ADMIN).map(Element::text);
            if let Some(role) = item.attr("role") {
                let Some(role) = Role::parse(role) else {
                    return self.reply_error(&iq, StanzaError::bad_request());
                };
                let Some(t) = item.attr("nick").and_then(|n| self.occupant_by_nick(n)) else {
                    return self.reply_error(&iq, StanzaError::item_not_found());
                };
                let target_aff = self.affiliation(&self.occupants[t].real);
                if my_role < Role::Moderator
                    || (target_aff > my_aff && target_aff >= Affiliation::Admin)
                {
                    return self.reply_error(&iq, StanzaError::not_allowed());
                }
                if role == Role::None {
                    let kicked = Element::new("presence", ns::CLIENT);
                    self.leave(t, &kicked, &["307"], Some((&my_nick, reason)));
                } else {
                    self.occupants[t].role = role;
                    self.broadcast_presence(t, &["110"]);
                }
            } else if let Some(aff) = item.attr("affiliation") {
                let Some(aff) = Affiliation::parse(aff) else {
                    return self.reply_error(&iq, StanzaError::bad_request());
                };
                let target = item
                    .attr("jid")
                    .and_then(|j| Jid::parse(j).ok())
                    .or_else(|| {
                        item.attr("nick")
                            .and_then(|n| self.occupant_by_nick(n))
                            .map(|t| self.occupants[t].real.clone())
                    });
                let Some(target) = target else {
                    return self.reply_error(&iq, StanzaError::bad_request());
                };
                let allowed = my_aff == Affiliation::Owner
                    || (my_aff == Affiliation::Admin
                        && aff <= Affiliation::Member
                        && self.affiliation(&target) <= Affiliation::Member);
                if !allowed || self.rules.is_admin(&target) {
                    return self.reply_error(&iq, StanzaError::not_allowed());
                }
                self.affiliations.insert(target.bare().to_string(), aff);
                let present: Vec<usize> = (0..self.occupants.len())
                    .filter(|&i| self.occupants[i].real.bare() == target.bare())
                    .collect();
                for &t in present.iter().rev() {
                    if aff == Affiliation::Outcast {
                        let gone = Element::new("presence", ns::CLIENT);
                        self.leave(t, &gone, &["301"], Some((&my_nick, reason.clone())));
                    } else if self.settings.members_only && aff < Affiliation::Member {
                        let gone = Element::new("presence", ns::CLIENT);
                        self.leave(t, &gone, &["321"], None);
                    } else {
                        self.occupants[t].role = aff.default_role();
                        self.broadcast_presence(t, &["110"]);
                    }
                }
            } else {
                return self.reply_error(&iq, StanzaError::bad_request());
            }
        }
        self.out.push_back(stanza::iq_result(&iq, None));
    }
}
