use super::*;

const OFFER: &str = r#"<iq xmlns="jabber:client" type="set" id="ji1" from="r@conference.x/focus" to="r@conference.x/3f2a9c1d">
 <jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" initiator="focus@auth.x/focus" sid="s1">
  <content creator="initiator" name="audio" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="3002" name="jvb-a0">
     <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="jvb"/></source>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="2221" name="7c1d0e42-a0">
     <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="r@conference.x/7c1d0e42"/></source>
   </description>
   <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="uf" pwd="pw">
    <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">9A:3C</fingerprint>
    <candidate component="1" foundation="1" generation="0" id="c0" network="0" protocol="udp" type="host"
               ip="127.0.0.1" port="10000" priority="2130706431"/>
    <web-socket xmlns="http://jitsi.org/protocol/colibri" url="ws://h/colibri-ws/b/c/e?pwd=p"/>
   </transport>
  </content>
  <content creator="initiator" name="video" senders="both">
   <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1111" name="7c1d0e42-v0"/>
    <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1112" name="7c1d0e42-v0"/>
    <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID">
     <source ssrc="1111"/><source ssrc="1112"/></ssrc-group>
   </description>
  </content>
 </jingle>
</iq>"#;

#[test]
fn reads_the_bridge_transport_and_remote_sources() {
    let iq: Element = OFFER.parse().unwrap();
    let offer = parse_offer(jingle_of(&iq).unwrap()).unwrap();
    assert_eq!((offer.sid.as_str(), offer.ufrag.as_str()), ("s1", "uf"));
    assert_eq!(offer.fingerprint, "9A:3C");
    assert_eq!(offer.candidates, vec!["127.0.0.1:10000".parse().unwrap()]);
    assert_eq!(
        offer.websocket.as_deref(),
        Some("ws://h/colibri-ws/b/c/e?pwd=p")
    );
    let video: Vec<_> = offer
        .sources
        .iter()
        .filter(|s| s.media == Media::Video)
        .collect();
    assert_eq!(video.len(), 1);
    assert_eq!((video[0].ssrc, video[0].rtx), (1111, Some(1112)));
    assert_eq!(video[0].owner, "7c1d0e42");
    assert!(
        offer
            .sources
            .iter()
            .any(|s| s.ssrc == 2221 && s.owner == "7c1d0e42")
    );
}

#[test]
fn reads_json_encoded_sources() {
    let jingle: Element = r#"<jingle xmlns="urn:xmpp:jingle:1" action="source-add" sid="s"><json-message xmlns="http://jitsi.org/jitmeet">{"sources":{"ab":[[{"s":1},{"s":2},{"s":3},{"s":11}],[["s",1,2,3],["f",1,11]],[{"s":9}]]}}</json-message></jingle>"#.parse().unwrap();
    let mut got = parse_sources(&jingle).unwrap();
    got.sort_by_key(|s| s.ssrc);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].ssrc, got[0].rtx, got[0].media),
        (1, Some(11), Media::Video)
    );
    assert_eq!((got[1].ssrc, got[1].media), (9, Media::Audio));
}

#[test]
fn our_accept_reads_back_as_simulcast_with_rtx() {
    let sources = LocalSources {
        audio: 7,
        video: [1, 2, 3],
        rtx: [11, 12, 13],
    };
    let xml = build_accept(&Accept {
        id: "a1",
        to: "r@c/focus",
        sid: "s1",
        responder: "n@x/res",
        endpoint: "abcd1234",
        transport: LocalTransport {
            ufrag: "u",
            pwd: "p",
            fingerprint_hash: "sha-256",
            fingerprint: "AA:BB",
            candidate: "127.0.0.1:5000".parse().unwrap(),
        },
        sources: Some(&sources),
    });
    let iq: Element = xml.parse().unwrap();
    let jingle = jingle_of(&iq).unwrap();
    let mut got = parse_sources(jingle).unwrap();
    got.sort_by_key(|s| s.ssrc);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].ssrc, got[0].rtx), (1, Some(11)));
    assert_eq!((got[1].ssrc, got[1].owner.as_str()), (7, "abcd1234"));
}
