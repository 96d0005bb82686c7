use super::*;

const ROOM: &str = "consult@conference.localhost";

fn room(restrict: bool) -> Room {
    let rules = RoomRules {
        admins: vec!["focus@auth.localhost".into()],
        restrict_creation: restrict,
        focus_wait: Duration::from_secs(10),
        max_occupants: 0,
    };
    Room::new(
        Jid::parse(ROOM).unwrap(),
        "meeting-1".into(),
        0,
        Arc::new(rules),
    )
}

fn join(from: &str, nick: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("from", from)
        .with_attr("to", format!("{ROOM}/{nick}"))
        .with_child(Element::new("x", ns::MUC))
}

fn drain(r: &mut Room) -> Vec<Element> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn to<'a>(out: &'a [Element], real: &str) -> Vec<&'a Element> {
    out.iter().filter(|e| e.attr("to") == Some(real)).collect()
}

fn item(p: &Element) -> &Element {
    p.child("x", ns::MUC_USER)
        .unwrap()
        .child("item", ns::MUC_USER)
        .unwrap()
}

fn codes(p: &Element) -> Vec<String> {
    p.child("x", ns::MUC_USER)
        .unwrap()
        .children()
        .filter(|c| c.name() == "status")
        .map(|c| c.attr("code").unwrap().to_owned())
        .collect()
}

const FOCUS: &str = "focus@auth.localhost/focus";
const A: &str = "aaaa1111-x@localhost/r1";
const B: &str = "bbbb2222-y@localhost/r2";

#[test]
fn joins_wait_for_the_focus_then_see_real_jids() {
    let now = Instant::now();
    let mut r = room(true);
    r.handle(join(A, "aaaa1111"), Origin::default(), now);
    assert!(drain(&mut r).is_empty(), "nobody joins before the focus");
    r.handle(join(FOCUS, "focus"), Origin::default(), now);
    let out = drain(&mut r);
    let focus_self = to(&out, FOCUS)[0];
    assert_eq!(item(focus_self).attr("affiliation"), Some("owner"));
    assert_eq!(item(focus_self).attr("role"), Some("moderator"));
    assert!(codes(focus_self).contains(&"110".to_string()));
    let a_sees: Vec<_> = to(&out, A)
        .into_iter()
        .filter(|e| e.name() == "presence")
        .collect();
    assert_eq!(a_sees.len(), 2, "A sees the focus and itself");
    assert_eq!(item(a_sees[0]).attr("jid"), Some(FOCUS));
    assert_eq!(item(a_sees[1]).attr("jid"), Some(A));
    assert_eq!(item(a_sees[1]).attr("role"), Some("participant"));
}

#[test]
fn a_join_without_focus_is_refused_after_the_wait() {
    let now = Instant::now();
    let mut r = room(true);
    r.handle(join(A, "aaaa1111"), Origin::default(), now);
    r.handle_timeout(r.poll_timeout().unwrap());
    let out = drain(&mut r);
    assert_eq!(out[0].attr("type"), Some("error"));
    assert!(
        out[0]
            .child("error", ns::CLIENT)
            .unwrap()
            .child("not-allowed", ns::STANZAS_ERR)
            .is_some()
    );
    assert!(r.is_finished());
}

#[test]
fn custom_presence_children_are_relayed_verbatim() {
    let now = Instant::now();
    let mut r = room(false);
    r.handle(join(A, "aaaa1111"), Origin::default(), now);
    drain(&mut r);
    let mut p = join(B, "bbbb2222");
    p.push_child(
        Element::new("SourceInfo", ns::CLIENT)
            .with_text(r#"{"bbbb2222-v0":{"muted":false}} & <😀>"#),
    );
    p.push_child(Element::new("nick", "http://jabber.org/protocol/nick").with_text("Frank"));
    r.handle(p, Origin::default(), now);
    let out = drain(&mut r);
    let seen = to(&out, A)[0];
    assert_eq!(seen.attr("from"), Some(format!("{ROOM}/bbbb2222").as_str()));
    assert_eq!(
        seen.child("SourceInfo", ns::CLIENT).unwrap().text(),
        r#"{"bbbb2222-v0":{"muted":false}} & <😀>"#
    );
    assert!(seen.child("x", ns::MUC).is_none());
    assert!(
        codes(seen).is_empty(),
        "110 only goes to the occupant itself"
    );
}

#[test]
fn iq_between_occupants_is_relayed_with_the_sender_rewritten() {
    let now = Instant::now();
    let mut r = room(false);
    r.handle(join(A, "aaaa1111"), Origin::default(), now);
    r.handle(join(B, "bbbb2222"), Origin::default(), now);
    drain(&mut r);
    let iq = Element::new("iq", ns::CLIENT)
        .with_attr("from", A)
        .with_attr("to", format!("{ROOM}/bbbb2222"))
        .with_attr("type", "get")
        .with_attr("id", "q1")
        .with_child(Element::new("query", ns::DISCO_INFO));
    r.handle(iq, Origin::default(), now);
    let out = drain(&mut r);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attr("to"), Some(B));
    assert_eq!(
        out[0].attr("from"),
        Some(format!("{ROOM}/aaaa1111").as_str())
    );
    assert_eq!(out[0].attr("id"), Some("q1"));
}

#[test]
fn nick_conflict_password_and_kick() {
    let now = Instant::now();
    let mut r = room(false);
    r.handle(
        join(A, "aaaa1111"),
        Origin {
            token_moderator: true,
        },
        now,
    );
    drain(&mut r);
    r.handle(join(B, "aaaa1111"), Origin::default(), now);
    let out = drain(&mut r);
    assert!(
        out[0]
            .child("error", ns::CLIENT)
            .unwrap()
            .child("conflict", ns::STANZAS_ERR)
            .is_some()
    );
    // A, an owner by token, locks the room.
    let form = Element::new("x", ns::DATA_FORMS)
        .with_attr("type", "submit")
        .with_child(crate::stanza::form_field(
            "muc#roomconfig_passwordprotectedroom",
            "1",
        ))
        .with_child(crate::stanza::form_field("muc#roomconfig_roomsecret", "s3"));
    let set = Element::new("iq", ns::CLIENT)
        .with_attr("from", A)
        .with_attr("to", ROOM)
        .with_attr("type", "set")
        .with_attr("id", "c")
        .with_child(Element::new("query", ns::MUC_OWNER).with_child(form));
    r.handle(set, Origin::default(), now);
    assert_eq!(drain(&mut r)[0].attr("type"), Some("result"));
    r.handle(join(B, "bbbb2222"), Origin::default(), now);
    assert!(
        drain(&mut r)[0]
            .child("error", ns::CLIENT)
            .unwrap()
            .child("not-authorized", ns::STANZAS_ERR)
            .is_some()
    );
    let mut with_pw = join(B, "bbbb2222");
    with_pw
        .child_mut("x", ns::MUC)
        .unwrap()
        .push_child(Element::new("password", ns::MUC).with_text("s3"));
    r.handle(with_pw, Origin::default(), now);
    drain(&mut r);
    let kick = Element::new("iq", ns::CLIENT)
        .with_attr("from", A)
        .with_attr("to", ROOM)
        .with_attr("type", "set")
        .with_attr("id", "k")
        .with_child(
            Element::new("query", ns::MUC_ADMIN).with_child(
                Element::new("item", ns::MUC_ADMIN)
                    .with_attr("nick", "bbbb2222")
                    .with_attr("role", "none"),
            ),
        );
    r.handle(kick, Origin::default(), now);
    let out = drain(&mut r);
    let b_gone = to(&out, B)[0];
    assert_eq!(b_gone.attr("type"), Some("unavailable"));
    assert!(codes(b_gone).contains(&"307".to_string()));
    assert_eq!(r.occupants().len(), 1);
}

#[test]
fn the_room_is_finished_when_the_last_occupant_leaves() {
    let now = Instant::now();
    let mut r = room(false);
    r.handle(join(A, "aaaa1111"), Origin::default(), now);
    drain(&mut r);
    let leave = Element::new("presence", ns::CLIENT)
        .with_attr("from", A)
        .with_attr("to", format!("{ROOM}/aaaa1111"))
        .with_attr("type", "unavailable");
    r.handle(leave, Origin::default(), now);
    let out = drain(&mut r);
    assert!(codes(&out[0]).contains(&"110".to_string()));
    assert!(r.is_finished());
}

#[test]
fn without_restriction_the_creator_owns_the_room() {
    let now = Instant::now();
    let mut r = room(false);
    r.handle(join(A, "aaaa1111"), Origin::default(), now);
    let out = drain(&mut r);
    let own = to(&out, A)[0];
    assert_eq!(item(own).attr("affiliation"), Some("owner"));
    assert!(codes(own).contains(&"201".to_string()));
    r.handle(join(B, "bbbb2222"), Origin::default(), now);
    let out = drain(&mut r);
    let b_self = to(&out, B)
        .into_iter()
        .find(|p| p.name() == "presence" && p.attr("from") == Some(&format!("{ROOM}/bbbb2222")))
        .unwrap();
    assert_eq!(item(b_self).attr("affiliation"), Some("none"));
}
