use super::*;
use signaling::xml::{Limits, StreamEvent, StreamParser};

fn element(xml: &str) -> Element {
    let mut p = StreamParser::framed(Limits::default());
    let mut ev = Vec::new();
    p.feed(xml.as_bytes(), &mut ev).unwrap();
    match ev.pop() {
        Some(StreamEvent::Stanza(e)) => e,
        other => panic!("no element: {other:?}"),
    }
}

/// Jicofo's first request for a participant (protocol §4.4, step 1).
const CREATE: &str = "<conference-modify xmlns='jitsi:colibri2' meeting-id='88ff288c' \
    name='myroom@conference.meet.example.com' create='true'>\
    <endpoint id='3f2a9c1d' create='true' stats-id='Frank-x1Q'>\
    <media type='audio'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' clockrate='48000' channels='2'/></media>\
    <transport ice-controlling='true'><sctp/></transport><sources/>\
    <capability name='source-names'/></endpoint></conference-modify>";

#[test]
fn a_create_asks_for_the_bridge_side_only() {
    let m = parse_modify(&element(CREATE)).unwrap();
    assert_eq!(m.meeting_id, "88ff288c");
    assert!(m.create && !m.expire);
    let e = &m.endpoints[0];
    assert_eq!(e.id, "3f2a9c1d");
    assert!(e.create && e.sctp && !e.ice_restart);
    assert_eq!(e.transport, None);
    assert_eq!(e.sources, Some(Sources::default()));
    assert_eq!(e.payload_types, vec![("audio".into(), 111, "opus".into())]);
    assert!(!e.ssrc_rewriting, "only source-names is asked for");
}

#[test]
fn a_create_for_a_client_in_ssrc_rewriting_mode_says_so() {
    let xml = CREATE.replace(
        "<capability name='source-names'/>",
        "<capability name='source-names'/><capability name='ssrc-rewriting'/>",
    );
    let m = parse_modify(&element(&xml)).unwrap();
    assert!(m.endpoints[0].ssrc_rewriting);
}

#[test]
fn an_update_carries_the_clients_transport_and_simulcast_sources() {
    let xml = "<conference-modify xmlns='jitsi:colibri2' meeting-id='88ff288c'><endpoint id='3f2a9c1d'>\
        <transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Yq3z' pwd='M1b8secret'>\
        <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-512' setup='active'>AA</fingerprint>\
        <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='SHA-256' setup='active'>4E:AA</fingerprint>\
        <candidate component='1' protocol='udp' ip='192.0.2.7' port='50000' type='host'/>\
        <candidate component='1' protocol='tcp' ip='192.0.2.7' port='9' type='host'/>\
        <candidate component='1' protocol='udp' ip='abc.local' port='50001' type='host'/>\
        </transport></transport>\
        <sources>\
        <media-source type='audio' id='3f2a9c1d-a0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4100'/></media-source>\
        <media-source type='video' id='3f2a9c1d-v0'>\
        <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='5001'/><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='5002'/>\
        <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='5003'/><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='6001'/>\
        <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'><source ssrc='5001'/><source ssrc='5002'/><source ssrc='5003'/></ssrc-group>\
        <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='5001'/><source ssrc='6001'/></ssrc-group>\
        </media-source></sources></endpoint></conference-modify>";
    let m = parse_modify(&element(xml)).unwrap();
    let e = &m.endpoints[0];
    assert!(!e.create && !m.create);
    let t = e.transport.as_ref().unwrap();
    assert_eq!((t.ufrag.as_str(), t.pwd.as_str()), ("Yq3z", "M1b8secret"));
    // The bridge verifies with sha-256 when it is offered.
    assert_eq!(
        (t.fingerprint_hash.as_str(), t.fingerprint.as_str()),
        ("sha-256", "4E:AA")
    );
    assert_eq!(t.setup, Setup::Active);
    // TCP and mDNS candidates are of no use to the bridge.
    assert_eq!(t.candidates, vec!["192.0.2.7:50000".parse().unwrap()]);
    let s = e.sources.as_ref().unwrap();
    assert_eq!(s.audio, vec![4100]);
    assert_eq!(s.video, vec![vec![5001, 5002, 5003]]);
    assert_eq!(s.rtx, vec![(5001, 6001)]);
}

#[test]
fn malformed_requests_say_what_is_wrong() {
    let no_id = "<conference-modify xmlns='jitsi:colibri2'><endpoint id='a'/></conference-modify>";
    assert!(
        parse_modify(&element(no_id))
            .unwrap_err()
            .contains("meeting-id")
    );
    let no_endpoint_id =
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint/></conference-modify>";
    assert!(
        parse_modify(&element(no_endpoint_id))
            .unwrap_err()
            .contains("endpoint without id")
    );
    let many: String = (0..300).map(|i| format!("<endpoint id='e{i}'/>")).collect();
    let flood = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'>{many}</conference-modify>"
    );
    assert!(
        parse_modify(&element(&flood))
            .unwrap_err()
            .contains("more than")
    );
}

#[test]
fn errors_carry_colibri2_reason_and_endpoint() {
    let e = error(
        Reason::UnknownEndpoint,
        Some("3f2a9c1d"),
        "unknown endpoint 3f2a9c1d",
    );
    assert!(
        e.child("item-not-found", signaling::ns::STANZAS_ERR)
            .is_some()
    );
    assert_eq!(
        e.child("error", NS).and_then(|r| r.attr("reason")),
        Some("UNKNOWN_ENDPOINT")
    );
    assert_eq!(
        e.child("endpoint", NS).and_then(|r| r.attr("id")),
        Some("3f2a9c1d")
    );
}

#[test]
fn force_mute_and_ice_restart_are_read() {
    let xml = "<conference-modify xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='a'>\
        <transport ice-restart='true'/><force-mute audio='true' video='false'/></endpoint></conference-modify>";
    let e = &parse_modify(&element(xml)).unwrap().endpoints[0];
    assert!(e.ice_restart);
    assert_eq!(e.force_mute, Some((true, false)));
}
