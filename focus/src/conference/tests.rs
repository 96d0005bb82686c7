//! The conference against a bridge that records what it is asked, with the
//! stanzas a client would send.

use std::sync::Mutex;

use sfu::api::{ApiError, BridgeLoad, LocalTransport, Sources, TransportCandidate};
use signaling::xml::{Limits, StreamEvent, StreamParser};

use super::*;

#[derive(Default)]
struct RecordingBridge {
    calls: Mutex<Vec<String>>,
    sources: Mutex<HashMap<String, Sources>>,
}

impl Colibri for RecordingBridge {
    fn id(&self) -> &str {
        "jvb1"
    }
    fn create_endpoint(&self, c: &str, e: &str) -> Result<LocalTransport, ApiError> {
        self.calls.lock().unwrap().push(format!("create {e}"));
        Ok(LocalTransport {
            ufrag: format!("u{e}"),
            pwd: "p".repeat(24),
            fingerprint_hash: "sha-256".into(),
            fingerprint: "AB:CD".into(),
            candidates: vec![TransportCandidate {
                foundation: "1".into(),
                component: 1,
                protocol: "udp".into(),
                priority: 2130706431,
                address: "127.0.0.1:10000".parse().unwrap(),
                kind: "host".into(),
            }],
            channel_path: format!("{c}/{e}?pwd=secret"),
        })
    }
    fn update_endpoint(
        &self,
        _: &str,
        e: &str,
        remote: Option<RemoteTransport>,
        sources: Option<Sources>,
    ) -> Result<(), ApiError> {
        self.calls.lock().unwrap().push(format!(
            "update {e} transport={} sources={}",
            remote.is_some(),
            sources.is_some()
        ));
        if let Some(s) = sources {
            self.sources.lock().unwrap().insert(e.to_owned(), s);
        }
        Ok(())
    }
    fn expire_endpoint(&self, _: &str, e: &str) -> Result<(), ApiError> {
        self.calls.lock().unwrap().push(format!("expire {e}"));
        Ok(())
    }
    fn expire_conference(&self, _: &str) -> Result<(), ApiError> {
        self.calls.lock().unwrap().push("expire conference".into());
        Ok(())
    }
    fn load(&self) -> BridgeLoad {
        BridgeLoad::default()
    }
}

const ROOM: &str = "consult@conference.example";
const FOCUS: &str = "focus@auth.example/focus";

fn parse(xml: &str) -> Element {
    let mut p = StreamParser::framed(Limits::default());
    let mut events = Vec::new();
    p.feed(xml.as_bytes(), &mut events).expect("well-formed");
    match events.pop() {
        Some(StreamEvent::Stanza(el)) => el,
        other => panic!("not one stanza: {other:?}"),
    }
}

fn presence(nick: &str, unavailable: bool) -> Element {
    presence_as(nick, unavailable, "participant")
}

fn presence_as(nick: &str, unavailable: bool, role: &str) -> Element {
    let kind = if unavailable {
        " type='unavailable'"
    } else {
        ""
    };
    parse(&format!(
        "<presence xmlns='jabber:client' from='{ROOM}/{nick}' to='{FOCUS}'{kind}>\
         <x xmlns='http://jabber.org/protocol/muc#user'>\
         <item jid='{nick}@example/res' role='{role}' affiliation='none'/></x></presence>"
    ))
}

fn accept(nick: &str, sid: &str, audio: u32, video: u32) -> Element {
    parse(&format!(
        "<iq xmlns='jabber:client' type='set' id='a-{nick}' from='{ROOM}/{nick}' to='{FOCUS}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='{sid}' responder='{nick}@example/res'>\
         <content creator='initiator' name='audio' senders='both'>\
           <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{audio}' name='{nick}-a0'>\
               <parameter name='msid' value='s-{nick} a-{nick}'/></source>\
           </description>\
           <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='cu' pwd='cpwdcpwdcpwdcpwdcpwdcp'>\
             <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F</fingerprint>\
           </transport></content>\
         <content creator='initiator' name='video' senders='both'>\
           <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
             <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{video}' name='{nick}-v0'>\
               <parameter name='msid' value='s-{nick} v-{nick}'/></source>\
           </description>\
           <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='cu' pwd='cpwdcpwdcpwdcpwdcpwdcp'>\
             <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F</fingerprint>\
           </transport></content>\
         </jingle></iq>"
    ))
}

fn conference(bridge: Arc<RecordingBridge>) -> Conference {
    let mut c = Conference::new(
        ROOM,
        FOCUS,
        Arc::new(FocusConfig::default()),
        bridge,
        StartMutedPolicy::default(),
    );
    c.join();
    c
}

fn drain(c: &mut Conference) -> Vec<Element> {
    std::iter::from_fn(|| c.poll_stanza()).collect()
}

/// Features of a client that does audio and video, standard sources.
const AV: &[&str] = &[
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
];

/// The occupant's presence reaches the focus and its client answers the
/// disco#info with `features`: everything the focus sent meanwhile.
fn arrive(c: &mut Conference, now: Instant, presence: Element, features: &[&str]) -> Vec<Element> {
    let occupant = presence.attr("from").unwrap().to_owned();
    c.handle_presence(now, &presence);
    let mut out = drain(c);
    let query = out
        .iter()
        .find(|s| s.attr("to") == Some(&occupant) && s.child("query", ns::DISCO_INFO).is_some())
        .expect("the focus asks a newcomer's client what it can do");
    let vars: String = features
        .iter()
        .map(|f| format!("<feature var='{f}'/>"))
        .collect();
    c.handle_iq(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{}' from='{occupant}' to='{FOCUS}'>\
             <query xmlns='http://jabber.org/protocol/disco#info'>{vars}</query></iq>",
            query.attr("id").unwrap()
        )),
    );
    out.extend(drain(c));
    out
}

/// The `jingle` payloads sent to `nick`, as (action, sid).
fn jingle_to(out: &[Element], nick: &str) -> Vec<(String, String)> {
    out.iter()
        .filter(|s| s.attr("to") == Some(&format!("{ROOM}/{nick}")))
        .filter_map(|s| s.child("jingle", jingle::ns::JINGLE))
        .map(|j| {
            (
                j.attr("action").unwrap_or_default().to_owned(),
                j.attr("sid").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The first Jingle IQ sent to `nick`.
fn jingle_iq_to<'a>(out: &'a [Element], nick: &str) -> &'a Element {
    out.iter()
        .find(|s| {
            s.attr("to") == Some(&*format!("{ROOM}/{nick}"))
                && s.child("jingle", jingle::ns::JINGLE).is_some()
        })
        .unwrap_or_else(|| panic!("no Jingle to {nick}"))
}

#[test]
fn two_participants_are_invited_and_learn_each_others_sources() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = conference(bridge.clone());
    let now = Instant::now();
    let join = drain(&mut c);
    assert_eq!(join[0].attr("to"), Some(&*format!("{ROOM}/focus")));
    c.handle_presence(now, &parse(&format!("<presence xmlns='jabber:client' from='{ROOM}/focus'><x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>")));
    assert!(c.is_joined());

    let out = arrive(&mut c, now, presence("alice", false), AV);
    let owner = out
        .iter()
        .find(|s| s.child("query", ns::MUC_ADMIN).is_some())
        .expect("owner grant");
    assert!(
        owner.to_xml().contains("jid='alice@example'"),
        "{}",
        owner.to_xml()
    );
    assert!(
        jingle_to(&out, "alice").is_empty(),
        "nobody is invited alone"
    );

    let out = arrive(&mut c, now, presence("bob", false), AV);
    let (a, b) = (jingle_to(&out, "alice"), jingle_to(&out, "bob"));
    assert_eq!(a[0].0, "session-initiate");
    assert_eq!(b[0].0, "session-initiate");
    let offer = jingle_iq_to(&out, "bob").to_xml();
    assert!(
        offer.contains("url='ws://127.0.0.1:8080/colibri-ws/jvb1/"),
        "{offer}"
    );
    assert!(offer.contains("ufrag='ubob'"), "{offer}");
    assert!(
        offer.contains("owner='jvb'")
            && offer.contains("name='jvb-a0'")
            && offer.contains("name='jvb-v0'"),
        "the bridge's own sources are in the offer: {offer}"
    );

    // Alice answers first: nobody else has an accepted session to be told.
    c.handle_iq(now, &accept("alice", &a[0].1, 1111, 2222));
    let out = drain(&mut c);
    assert!(
        out.iter()
            .any(|s| s.attr("type") == Some("result") && s.attr("id") == Some("a-alice"))
    );
    assert!(
        jingle_to(&out, "bob").is_empty(),
        "bob has not accepted yet"
    );
    assert_eq!(
        bridge.sources.lock().unwrap()["alice"],
        Sources {
            audio: vec![1111],
            video: vec![vec![2222]],
            rtx: vec![]
        }
    );

    // Bob answers: each learns the other's sources, with owners and names.
    c.handle_iq(now, &accept("bob", &b[0].1, 3333, 4444));
    let out = drain(&mut c);
    assert_eq!(
        jingle_to(&out, "bob"),
        [("source-add".to_owned(), b[0].1.clone())]
    );
    assert_eq!(
        jingle_to(&out, "alice"),
        [("source-add".to_owned(), a[0].1.clone())]
    );
    let to_alice = jingle_iq_to(&out, "alice").to_xml();
    assert!(
        to_alice.contains("ssrc='3333'") && to_alice.contains("owner='bob'"),
        "{to_alice}"
    );

    // Bob stops his camera: alice is told.
    let remove = parse(&format!(
        "<iq xmlns='jabber:client' type='set' id='r1' from='{ROOM}/bob' to='{FOCUS}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='source-remove' sid='{}'>\
         <content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4444'/></description></content></jingle></iq>",
        b[0].1
    ));
    c.handle_iq(now, &remove);
    let out = drain(&mut c);
    assert_eq!(jingle_to(&out, "alice")[0].0, "source-remove");
    assert_eq!(
        bridge.sources.lock().unwrap()["bob"].video,
        Vec::<Vec<u32>>::new()
    );
}

#[test]
fn a_lone_participant_is_let_go_after_the_timeout_and_an_empty_room_ends() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = conference(bridge.clone());
    let t0 = Instant::now();
    arrive(&mut c, t0, presence("alice", false), AV);
    arrive(&mut c, t0, presence("bob", false), AV);
    c.handle_presence(t0, &presence("bob", true));
    assert!(
        bridge
            .calls
            .lock()
            .unwrap()
            .contains(&"expire bob".to_owned())
    );
    drain(&mut c);

    c.handle_timeout(t0 + Duration::from_secs(19));
    assert!(jingle_to(&drain(&mut c), "alice").is_empty(), "not yet");
    c.handle_timeout(t0 + Duration::from_secs(21));
    let out = drain(&mut c);
    assert_eq!(jingle_to(&out, "alice")[0].0, "session-terminate");
    assert!(
        out.iter().any(|s| s.to_xml().contains("<expired")),
        "reason expired"
    );

    c.handle_presence(t0, &presence("alice", true));
    assert!(c.is_over());
}

#[test]
fn jingle_for_an_unknown_session_and_a_restart_request() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = conference(bridge.clone());
    let now = Instant::now();
    arrive(&mut c, now, presence("alice", false), AV);
    let out = arrive(&mut c, now, presence("bob", false), AV);
    let sid = jingle_to(&out, "alice")[0].1.clone();

    // The newest client asks for an in-place ICE restart first: the refusal
    // tells it to restart the session instead, and the session stays.
    let in_place = parse(&format!(
        "<iq xmlns='jabber:client' type='set' id='r1' from='{ROOM}/alice' to='{FOCUS}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='{sid}'>\
         <bridge-session xmlns='http://jitsi.org/protocol/focus' id='b' ice-restart='true'/></jingle></iq>"
    ));
    c.handle_iq(now, &in_place);
    let out = drain(&mut c);
    let reply = out.last().unwrap().to_xml();
    assert!(
        reply.contains("type=\"error\"") || reply.contains("type='error'"),
        "{reply}"
    );
    assert!(reply.contains("feature-not-implemented"), "{reply}");
    assert!(jingle_to(&out, "alice").is_empty(), "no re-invite for it");

    c.handle_iq(now, &accept("alice", "not-the-sid", 1111, 2222));
    let err = drain(&mut c).pop().unwrap().to_xml();
    assert!(
        err.contains("item-not-found") && err.contains("unknown-session"),
        "{err}"
    );

    // ICE failed on alice's side: she asks for a new session and gets one.
    let restart = parse(&format!(
        "<iq xmlns='jabber:client' type='set' id='t1' from='{ROOM}/alice' to='{FOCUS}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='{sid}'>\
         <reason><success/></reason>\
         <bridge-session xmlns='http://jitsi.org/protocol/focus' restart='true'/></jingle></iq>"
    ));
    c.handle_iq(now, &restart);
    let out = drain(&mut c);
    let again = jingle_to(&out, "alice");
    assert_eq!(again[0].0, "session-initiate");
    assert_ne!(again[0].1, sid, "a new session");
    // A second restart at once is refused by the rate limit.
    let restart2 = parse(&restart.to_xml().replace(&sid, &again[0].1));
    c.handle_iq(now, &restart2);
    assert!(jingle_to(&drain(&mut c), "alice").is_empty());
}

#[test]
fn a_moderator_mutes_someone_through_the_focus_and_others_may_not() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = conference(bridge);
    let now = Instant::now();
    arrive(&mut c, now, presence("alice", false), AV);
    arrive(&mut c, now, presence("bob", false), AV);
    // The room made alice (the owner) a moderator.
    c.handle_presence(now, &presence_as("alice", false, "moderator"));
    drain(&mut c);
    let mute = |from: &str, target: &str| {
        parse(&format!(
            "<iq xmlns='jabber:client' type='set' id='m-{from}' from='{ROOM}/{from}' to='{FOCUS}'>\
             <mute xmlns='http://jitsi.org/jitmeet/audio' jid='{ROOM}/{target}'>true</mute></iq>"
        ))
    };
    c.handle_iq(now, &mute("bob", "alice"));
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    assert!(out[0].to_xml().contains("forbidden"), "{}", out[0].to_xml());

    c.handle_iq(now, &mute("alice", "bob"));
    let out = drain(&mut c);
    let to_bob = out
        .iter()
        .find(|s| s.attr("to") == Some(&*format!("{ROOM}/bob")))
        .expect("passed on");
    let m = to_bob
        .child("mute", "http://jitsi.org/jitmeet/audio")
        .unwrap();
    assert_eq!(m.attr("actor"), Some(&*format!("{ROOM}/alice")));
    assert_eq!(m.text(), "true");
    assert!(
        out.iter()
            .any(|s| s.attr("type") == Some("result") && s.attr("id") == Some("m-alice"))
    );
}

#[test]
fn clients_asking_for_json_get_their_sources_as_json_and_others_as_xep_0339() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = conference(bridge);
    let now = Instant::now();
    let json = &[
        "urn:xmpp:jingle:apps:rtp:audio",
        "urn:xmpp:jingle:apps:rtp:video",
        "http://jitsi.org/json-encoded-sources",
    ];
    arrive(&mut c, now, presence("alice", false), json);
    let out = arrive(&mut c, now, presence("bob", false), AV);
    let (a, b) = (jingle_to(&out, "alice"), jingle_to(&out, "bob"));
    let to_alice = jingle_iq_to(&out, "alice").to_xml();
    let json = jingle_iq_to(&out, "alice")
        .child("jingle", jingle::ns::JINGLE)
        .and_then(|j| j.child("json-message", jingle::ns::JITMEET))
        .map(|m| m.text());
    assert!(
        json.is_some_and(|t| t.contains("\"jvb-v0\"")) && !to_alice.contains("<source "),
        "sources only in the JSON message: {to_alice}"
    );
    let to_bob = jingle_iq_to(&out, "bob").to_xml();
    assert!(
        !to_bob.contains("<json-message") && to_bob.contains("name='jvb-v0'"),
        "{to_bob}"
    );

    c.handle_iq(now, &accept("alice", &a[0].1, 1111, 2222));
    c.handle_iq(now, &accept("bob", &b[0].1, 3333, 4444));
    let out = drain(&mut c);
    let add = jingle_iq_to(&out, "alice")
        .child("jingle", jingle::ns::JINGLE)
        .unwrap();
    assert_eq!(add.attr("action"), Some("source-add"));
    let json = add
        .child("json-message", jingle::ns::JITMEET)
        .expect("JSON source-add");
    let sources = jingle::parse_json_sources(&json.text()).unwrap();
    assert!(
        sources
            .iter()
            .any(|(owner, set)| owner == "bob" && set.sources.iter().any(|s| s.ssrc == 3333)),
        "{}",
        add.to_xml()
    );
    assert!(jingle_iq_to(&out, "bob").to_xml().contains("ssrc='1111'"));
}

#[test]
fn a_client_that_does_not_answer_is_invited_after_the_discovery_timeout() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = conference(bridge);
    let t0 = Instant::now();
    arrive(&mut c, t0, presence("alice", false), AV);
    c.handle_presence(t0, &presence("bob", false));
    let out = drain(&mut c);
    assert!(jingle_to(&out, "alice").is_empty() && jingle_to(&out, "bob").is_empty());
    c.handle_timeout(t0 + DISCOVERY_TIMEOUT / 2);
    assert!(jingle_to(&drain(&mut c), "bob").is_empty(), "still waiting");
    // Another occupant cannot answer for bob.
    let query_id = out
        .iter()
        .find(|s| s.child("query", ns::DISCO_INFO).is_some())
        .and_then(|s| s.attr("id"))
        .unwrap();
    c.handle_iq(
        t0,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{query_id}' from='{ROOM}/alice' to='{FOCUS}'/>"
        )),
    );
    assert!(jingle_to(&drain(&mut c), "bob").is_empty());
    c.handle_timeout(t0 + DISCOVERY_TIMEOUT);
    let out = drain(&mut c);
    assert_eq!(jingle_to(&out, "bob")[0].0, "session-initiate");
    let offer = jingle_iq_to(&out, "bob").to_xml();
    assert!(
        offer.contains("media='audio'")
            && offer.contains("media='video'")
            && !offer.contains("json-message"),
        "{offer}"
    );
}

#[test]
fn start_muted_from_the_request_and_from_an_owner_reaches_later_joiners() {
    let bridge = Arc::new(RecordingBridge::default());
    let mut c = Conference::new(
        ROOM,
        FOCUS,
        Arc::new(FocusConfig::default()),
        bridge,
        StartMutedPolicy::from_properties([("startVideoMuted", "1")]),
    );
    c.join();
    let now = Instant::now();
    let started_muted = |out: &[Element], nick: &str| {
        jingle_iq_to(out, nick)
            .child("jingle", jingle::ns::JINGLE)
            .unwrap()
            .child("startmuted", jingle::ns::START_MUTED)
            .map(|m| {
                (
                    m.attr("audio") == Some("true"),
                    m.attr("video") == Some("true"),
                )
            })
    };
    arrive(&mut c, now, presence("alice", false), AV);
    let out = arrive(&mut c, now, presence("bob", false), AV);
    assert_eq!(
        started_muted(&out, "alice"),
        None,
        "the first joins as she is"
    );
    assert_eq!(
        started_muted(&out, "bob"),
        Some((false, true)),
        "the second without video"
    );

    // Alice, the owner, asks that everyone joining now starts muted.
    c.handle_presence(
        now,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/alice' to='{FOCUS}'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item jid='alice@example/res' role='moderator' affiliation='owner'/></x>\
             <startmuted xmlns='http://jitsi.org/jitmeet/start-muted' audio='true' video='false'/></presence>"
        )),
    );
    let out = arrive(&mut c, now, presence("carol", false), AV);
    assert_eq!(started_muted(&out, "carol"), Some((true, true)));
}
