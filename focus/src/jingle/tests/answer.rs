//! Parsing what clients send: both vintages, and what a broken client sends.

use std::net::SocketAddr;

use sfu::api::Setup;

use super::{FINGERPRINT, parse_xml};
use crate::jingle::{Action, ClientJingle, JingleError, Reason, parse_answer, parse_client};
use crate::source::{EndpointSources, Media, Semantics, VideoType};

/// A CUR Chrome session-accept with simulcast on (shape of §3.5).
fn cur_accept() -> String {
    let video_sources: String = [5001, 5002, 5003, 5011, 5012, 5013]
        .iter()
        .map(|s| {
            let vt = if *s == 5001 {
                " videoType='camera'"
            } else {
                ""
            };
            format!(
                "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{s}' name='3f2a9c1d-v0'{vt}>\
                 <parameter name='msid' value='a7f0 c9d1'/></source>"
            )
        })
        .collect();
    r#"<iq type='set' id='ja1' to='myroom@conference.meet.example.com/focus'>
 <jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='8qm9ifctuhqvs'
         initiator='myroom@conference.meet.example.com/focus' responder='myroom@conference.meet.example.com/3f2a9c1d'>
  <group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'>
   <content name='audio'/><content name='video'/><content name='data'/>
  </group>
  <content creator='responder' name='audio' senders='both'>
   <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>
    <payload-type id='111' name='opus' clockrate='48000' channels='2'/>
    <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4100' name='3f2a9c1d-a0'>
     <parameter name='msid' value='a7f0 b3c2'/>
    </source>
    <rtcp-mux/>
   </description>
   <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Yq3z' pwd='M1b8c0pq7r6s5t4u3v2w1x0y'>
    <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>FP</fingerprint>
   </transport>
  </content>
  <content creator='responder' name='video' senders='both'>
   <initial-last-n xmlns='jitsi:colibri2' value='5'/>
   <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>
    VIDEO_SOURCES
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'>
     <source ssrc='5001'/><source ssrc='5002'/><source ssrc='5003'/></ssrc-group>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='5001'/><source ssrc='5011'/></ssrc-group>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='5002'/><source ssrc='5012'/></ssrc-group>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='5003'/><source ssrc='5013'/></ssrc-group>
    <rtcp-mux/>
   </description>
   <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Yq3z' pwd='M1b8c0pq7r6s5t4u3v2w1x0y'>
    <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>FP</fingerprint>
   </transport>
  </content>
  <content creator='responder' name='data' senders='both'>
   <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Yq3z' pwd='M1b8c0pq7r6s5t4u3v2w1x0y'>
    <sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1' number='5000' protocol='webrtc-datachannel' streams='0'/>
    <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>FP</fingerprint>
   </transport>
  </content>
 </jingle>
</iq>"#
        .replace("FP", FINGERPRINT)
        .replace("VIDEO_SOURCES", &video_sources)
}

/// A V21 session-accept: no source names, legacy `ssrc` on the description,
/// cname parameters, and candidates of every kind already in the transport.
fn v21_accept() -> String {
    r#"<iq type='set' id='ja2' to='myroom@conference.meet.example.com/focus'>
 <jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s21'>
  <content creator='responder' name='audio' senders='both'>
   <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio' ssrc='2001'>
    <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2001'>
     <parameter xmlns='urn:xmpp:jingle:apps:rtp:1' name='cname' value='x1'/>
     <parameter xmlns='urn:xmpp:jingle:apps:rtp:1' name='msid' value='m1 a1'/>
    </source>
   </description>
   <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u21' pwd='p21p21p21p21p21p21p21p21'>
    <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='SHA-256' setup='active'>FP</fingerprint>
    <candidate component='1' foundation='1' generation='0' id='a' network='1' priority='2122260223' protocol='udp' type='host' ip='192.168.1.20' port='50000'/>
    <candidate component='1' foundation='2' generation='0' id='b' network='1' priority='2122260222' protocol='udp' type='host' ip='2001:db8::20' port='50001'/>
    <candidate component='1' foundation='3' generation='0' id='c' network='1' priority='1518280447' protocol='tcp' type='host' ip='192.168.1.20' port='9' tcptype='active'/>
    <candidate component='1' foundation='4' generation='0' id='d' network='1' priority='2122260221' protocol='udp' type='host' ip='0f1e2d3c-aaaa-bbbb.local' port='50002'/>
    <candidate component='2' foundation='1' generation='0' id='e' network='1' priority='2122260220' protocol='udp' type='host' ip='192.168.1.20' port='50003'/>
    <candidate component='1' foundation='5' generation='0' id='f' network='1' priority='1' protocol='udp' type='srflx' ip='203.0.113.9' port='not-a-port'/>
    <candidate component='1' foundation='6' generation='0' id='g' network='1' priority='1686052607' protocol='UDP' type='srflx' ip='203.0.113.9' port='50000' rel-addr='192.168.1.20' rel-port='50000'/>
   </transport>
  </content>
  <content creator='responder' name='video' senders='both'>
   <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video' ssrc='3001'>
    <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3001'><parameter name='msid' value='m1 v1'/></source>
    <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3002'><parameter name='msid' value='m1 v1'/></source>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='3001'/><source ssrc='3002'/></ssrc-group>
    <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FEC-FR'><source ssrc='3001'/></ssrc-group>
   </description>
   <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u21' pwd='p21p21p21p21p21p21p21p21'/>
  </content>
 </jingle>
</iq>"#
        .replace("FP", FINGERPRINT)
}

#[test]
fn cur_session_accept_gives_the_bridge_transport_and_simulcast_sources() {
    let answer = parse_answer(&parse_xml(&cur_accept())).unwrap();
    let t = &answer.transport;
    assert_eq!(
        (t.ufrag.as_str(), t.pwd.as_str()),
        ("Yq3z", "M1b8c0pq7r6s5t4u3v2w1x0y")
    );
    assert_eq!(
        (t.fingerprint_hash.as_str(), t.fingerprint.as_str()),
        ("sha-256", FINGERPRINT)
    );
    assert_eq!(t.setup, Setup::Active);
    assert!(
        t.candidates.is_empty(),
        "candidates come later in transport-info"
    );
    assert_eq!(answer.initial_last_n, Some(5));

    let s = &answer.sources;
    assert_eq!(s.sources.len(), 7);
    assert_eq!(s.sources[0].media, Media::Audio);
    assert_eq!(s.sources[0].msid.as_deref(), Some("a7f0 b3c2"));
    assert_eq!(s.sources[1].video_type, Some(VideoType::Camera));
    assert!(
        s.sources[1..]
            .iter()
            .all(|x| x.name.as_deref() == Some("3f2a9c1d-v0"))
    );
    assert_eq!(s.groups[0].semantics, Semantics::Sim);

    let mut ep = EndpointSources::new("3f2a9c1d");
    ep.add(answer.sources).unwrap();
    assert_eq!(ep.to_sfu().video, vec![vec![5001, 5002, 5003]]);
    assert_eq!(ep.to_sfu().rtx.len(), 3);
}

#[test]
fn of_several_fingerprints_the_sha_256_one_goes_to_the_bridge() {
    // aiortc lists sha-256, sha-384 and sha-512; put the stronger ones first.
    let long = |n: usize| vec!["AB"; n].join(":");
    let fingerprints = format!(
        "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-512' setup='active'>{}</fingerprint>\
         <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-384' setup='active'>{}</fingerprint>\
         <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>FP</fingerprint>",
        long(64),
        long(48)
    );
    let one = "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>FP</fingerprint>";
    let xml = cur_accept().replacen(
        &one.replace("FP", FINGERPRINT),
        &fingerprints.replace("FP", FINGERPRINT),
        1,
    );
    assert!(xml.contains("sha-512"));
    let t = parse_answer(&parse_xml(&xml)).unwrap().transport;
    assert_eq!(
        (t.fingerprint_hash.as_str(), t.fingerprint.as_str()),
        ("sha-256", FINGERPRINT)
    );
}

#[test]
fn v21_session_accept_keeps_usable_candidates_and_gets_default_names() {
    let incoming = parse_client(&parse_xml(&v21_accept())).unwrap();
    assert_eq!(incoming.sid, "s21");
    let ClientJingle::Accept(answer) = incoming.body else {
        panic!("not an accept: {:?}", incoming.body);
    };
    let expected: Vec<SocketAddr> = vec![
        "192.168.1.20:50000".parse().unwrap(),
        "[2001:db8::20]:50001".parse().unwrap(),
        "203.0.113.9:50000".parse().unwrap(),
    ];
    assert_eq!(
        answer.transport.candidates, expected,
        "TCP, mDNS, RTCP and broken ones skipped"
    );
    assert_eq!(answer.transport.fingerprint_hash, "sha-256");
    // The FEC-FR group is dropped; the FID pair stays.
    assert_eq!(answer.sources.groups.len(), 1);
    assert_eq!(answer.sources.sources[0].msid.as_deref(), Some("m1 a1"));

    let mut ep = EndpointSources::new("9a8b7c6d");
    let accepted = ep.add(answer.sources).unwrap();
    let names: Vec<&str> = accepted
        .sources
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    assert_eq!(names, ["9a8b7c6d-a0", "9a8b7c6d-v0", "9a8b7c6d-v0"]);
}

#[test]
fn trickled_candidates_arrive_as_a_transport_update() {
    let xml = r#"<iq type='set' id='t1'><jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s1'>
      <content creator='responder' name='audio'>
       <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Yq3z' pwd='pw'>
        <candidate component='1' foundation='1' generation='0' id='a' network='1' priority='1' protocol='udp' type='host' ip='10.1.2.3' port='40000'/>
        <candidate component='1' foundation='1' generation='0' id='a' network='1' priority='1' protocol='udp' type='host' ip='10.1.2.3' port='40000'/>
       </transport></content></jingle></iq>"#;
    let ClientJingle::TransportInfo(update) = parse_client(&parse_xml(xml)).unwrap().body else {
        panic!("not a transport-info");
    };
    assert_eq!(update.ufrag.as_deref(), Some("Yq3z"));
    assert_eq!(
        update.candidates,
        vec!["10.1.2.3:40000".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn client_source_add_and_legacy_removesource_carry_sources() {
    let xml = r#"<jingle xmlns='urn:xmpp:jingle:1' action='addsource' sid='s1'>
      <content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>
       <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='777' name='ep-v1' videoType='desktop_high_fps'/>
      </description></content></jingle>"#;
    let ClientJingle::SourceAdd(set) = parse_client(&parse_xml(xml)).unwrap().body else {
        panic!("not a source-add");
    };
    assert_eq!(set.sources[0].video_type, Some(VideoType::Desktop));
    let remove = xml.replace("addsource", "removesource");
    assert!(matches!(
        parse_client(&parse_xml(&remove)).unwrap().body,
        ClientJingle::SourceRemove(_)
    ));
}

#[test]
fn restart_request_and_ice_failure_are_recognised() {
    let xml = r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'>
      <reason><success/><text>ICE failed</text></reason>
      <bridge-session xmlns='http://jitsi.org/protocol/focus' id='b-1' restart='true'/></jingle>"#;
    let ClientJingle::Terminate(t) = parse_client(&parse_xml(xml)).unwrap().body else {
        panic!("not a terminate");
    };
    assert_eq!(t.reason, Some(Reason::Success));
    assert_eq!(t.text.as_deref(), Some("ICE failed"));
    assert_eq!(t.bridge_session.as_deref(), Some("b-1"));
    assert!(t.restart);

    let xml = r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s1'>
      <ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state>
      <bridge-session xmlns='http://jitsi.org/protocol/focus' id='b-1'/></jingle>"#;
    let ClientJingle::SessionInfo(info) = parse_client(&parse_xml(xml)).unwrap().body else {
        panic!("not a session-info");
    };
    assert!(info.ice_failed && !info.ice_restart);
}

#[test]
fn broken_answers_say_what_the_client_did_wrong() {
    let good = cur_accept();
    let cases: Vec<(String, JingleError)> = vec![
        (
            good.replace("ice-udp:1", "raw-udp:1"),
            JingleError::MissingTransport,
        ),
        (
            good.replace(" ufrag='Yq3z'", ""),
            JingleError::MissingIceCredentials,
        ),
        (
            good.replacen("ufrag='Yq3z'", "ufrag='other'", 1),
            JingleError::ConflictingTransports,
        ),
        (
            good.replace("<fingerprint", "<fingerprintx")
                .replace("</fingerprint>", "</fingerprintx>"),
            JingleError::MissingFingerprint,
        ),
        (
            good.replace(FINGERPRINT, "4E:AA:12"),
            JingleError::BadFingerprint("sha-256 needs 32 colon-separated hex bytes".into()),
        ),
        (
            good.replace("hash='sha-256'", "hash='md5'"),
            JingleError::BadFingerprint("unknown hash 'md5'".into()),
        ),
        (
            good.replace("setup='active'", "setup='holdconn'"),
            JingleError::BadSetup("holdconn".into()),
        ),
        (
            good.replace("ssrc='4100'", "ssrc='41x0'"),
            JingleError::BadSsrc("41x0".into()),
        ),
        (
            good.replace("ssrc='4100'", "ssrc='4294967296'"),
            JingleError::BadSsrc("4294967296".into()),
        ),
        (
            good.replace("media='audio'", "media='text'"),
            JingleError::BadMedia("text".into()),
        ),
        (
            good.replace("semantics='SIM'", ""),
            JingleError::MissingAttr {
                element: "ssrc-group",
                attr: "semantics",
            },
        ),
    ];
    for (xml, expected) in cases {
        assert_eq!(
            parse_answer(&parse_xml(&xml)),
            Err(expected.clone()),
            "{expected}"
        );
    }
}

#[test]
fn absurd_counts_are_refused() {
    let many: String = (1..=65)
        .map(|s| format!("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{s}'/>"))
        .collect();
    let xml = format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'><content name='audio'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>{many}</description></content></jingle>"
    );
    assert_eq!(
        parse_client(&parse_xml(&xml)),
        Err(JingleError::TooMany {
            what: "sources",
            max: 64
        })
    );
    let candidates: String = (1..=65)
        .map(|p| format!("<candidate component='1' protocol='udp' ip='10.0.0.1' port='{p}'/>"))
        .collect();
    let xml = format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'><content name='audio'>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>{candidates}</transport></content></jingle>"
    );
    assert!(matches!(
        parse_client(&parse_xml(&xml)),
        Err(JingleError::TooMany {
            what: "candidates",
            ..
        })
    ));
}

#[test]
fn envelopes_without_jingle_sid_or_known_action_are_refused() {
    let iq = parse_xml("<iq type='set' id='x'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_eq!(parse_client(&iq), Err(JingleError::NotJingle));
    let no_sid = parse_xml("<jingle xmlns='urn:xmpp:jingle:1' action='session-info'/>");
    assert_eq!(
        parse_client(&no_sid),
        Err(JingleError::MissingJingleAttr("sid"))
    );
    let odd = parse_xml("<jingle xmlns='urn:xmpp:jingle:1' action='session-dance' sid='s'/>");
    assert_eq!(
        parse_client(&odd),
        Err(JingleError::UnknownAction("session-dance".into()))
    );
    let initiate =
        parse_xml("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'/>");
    assert_eq!(
        parse_client(&initiate).unwrap().body,
        ClientJingle::Other(Action::SessionInitiate)
    );
}
