//! Building what the focus sends, and reading it back as a client would.

use sfu::api::{LocalTransport, Setup, TransportCandidate};
use signaling::xml::Element;

use super::{FINGERPRINT, parse_xml};
use crate::jingle::{
    BridgeSession, ClientJingle, JingleError, MediaProfile, Offer, Reason, RemoteSources,
    SourceEncoding, StartMuted, Vintage, build_session_initiate, build_session_terminate,
    build_source_add, build_source_remove, ns, parse_client, parse_json_sources, ssma, transport,
    wrap_iq,
};
use crate::source::{EndpointSources, Media, Semantics, Source, SourceSet, SsrcGroup, VideoType};

fn bridge_transport() -> LocalTransport {
    let candidate = |foundation: &str, kind: &str, addr: &str, priority| TransportCandidate {
        foundation: foundation.into(),
        component: 1,
        protocol: "udp".into(),
        priority,
        address: addr.parse().unwrap(),
        kind: kind.into(),
    };
    LocalTransport {
        ufrag: "4fl7m1hc0f3s9".into(),
        pwd: "2d5k1u0s6mb7t0ja4o1r9dqe7".into(),
        fingerprint_hash: "sha-256".into(),
        fingerprint: FINGERPRINT.into(),
        candidates: vec![
            candidate("1", "host", "10.0.0.5:10000", 2130706431),
            candidate("2", "srflx", "203.0.113.7:10000", 1694498815),
        ],
        channel_path: "5d1c0a9e2b7f4e11/3f2a9c1d?pwd=Xq2".into(),
    }
}

/// Another participant: audio, a simulcast camera with RTX, a screen share.
fn other_participant() -> EndpointSources {
    let video = |ssrc, msid: &str| Source {
        msid: Some(msid.into()),
        ..Source::new(ssrc, Media::Video)
    };
    let group = |semantics, ssrcs: &[u32]| SsrcGroup {
        semantics,
        media: Media::Video,
        ssrcs: ssrcs.to_vec(),
    };
    let mut desktop = video(6001, "s1 t3");
    desktop.name = Some("7c1d0e42-v1".into());
    desktop.video_type = Some(VideoType::Desktop);
    let mut ep = EndpointSources::new("7c1d0e42");
    ep.add(SourceSet {
        sources: vec![
            Source {
                msid: Some("s1 t2".into()),
                ..Source::new(2221, Media::Audio)
            },
            video(1111, "s1 t1"),
            video(1112, "s1 t1"),
            video(1113, "s1 t1"),
            video(1121, "s1 t1"),
            video(1122, "s1 t1"),
            video(1123, "s1 t1"),
            desktop,
        ],
        groups: vec![
            group(Semantics::Sim, &[1111, 1112, 1113]),
            group(Semantics::Fid, &[1111, 1121]),
            group(Semantics::Fid, &[1112, 1122]),
            group(Semantics::Fid, &[1113, 1123]),
        ],
    })
    .unwrap();
    ep
}

fn children<'a>(el: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    el.children().filter(move |c| c.name() == name)
}

fn ssrcs_of(desc: &Element) -> Vec<u32> {
    children(desc, "source")
        .filter_map(|s| s.attr("ssrc")?.parse().ok())
        .collect()
}

#[test]
fn session_initiate_bundles_the_bridge_transport_and_strips_simulcast() {
    let (transport_in, profile) = (bridge_transport(), MediaProfile::jicofo(Vintage::Current));
    let (bridge, other) = (
        EndpointSources::bridge_feedback(3002, 3001),
        other_participant(),
    );
    let owners = [RemoteSources::from(&bridge), RemoteSources::from(&other)];
    let mut offer = Offer::new(
        "8qm9ifctuhqvs",
        "focus@auth.meet.example.com/focus",
        &transport_in,
        &profile,
    );
    offer.bridge_channel_base = Some("wss://meet.example.com/colibri-ws/jvb1/");
    offer.sources = &owners;
    let jingle = build_session_initiate(&offer);

    assert_eq!(jingle.attr("action"), Some("session-initiate"));
    assert_eq!(
        jingle.attr("initiator"),
        Some("focus@auth.meet.example.com/focus")
    );
    let contents: Vec<&Element> = children(&jingle, "content").collect();
    let names: Vec<_> = contents.iter().filter_map(|c| c.attr("name")).collect();
    assert_eq!(names, ["audio", "video"]);
    let bundle = jingle.child("group", ns::GROUPING).unwrap();
    assert_eq!(bundle.attr("semantics"), Some("BUNDLE"));
    assert_eq!(children(bundle, "content").count(), 2);

    // The same transport in each content, with the bridge channel URL.
    let transports: Vec<&Element> = contents
        .iter()
        .filter_map(|c| c.child("transport", ns::ICE_UDP))
        .collect();
    assert_eq!(transports.len(), 2);
    assert_eq!(transports[0], transports[1]);
    let ws = transports[0].child("web-socket", ns::COLIBRI).unwrap();
    assert_eq!(
        ws.attr("url"),
        Some("wss://meet.example.com/colibri-ws/jvb1/5d1c0a9e2b7f4e11/3f2a9c1d?pwd=Xq2")
    );
    let parsed = transport::parse_contents(&jingle).unwrap();
    let fp = parsed.fingerprint.unwrap();
    assert_eq!((fp.setup, fp.value.as_str()), (Setup::Actpass, FINGERPRINT));
    let addrs: Vec<_> = transport_in.candidates.iter().map(|c| c.address).collect();
    assert_eq!(parsed.candidates, addrs);

    // Receivers see the first simulcast layer and its RTX, never the others.
    let video = contents[1].child("description", ns::RTP).unwrap();
    assert_eq!(ssrcs_of(video), [3001, 1111, 1121, 6001]);
    assert!(video.child("rtcp-mux", ns::RTP).is_some());
    let groups: Vec<_> = children(video, "ssrc-group")
        .filter_map(|g| g.attr("semantics"))
        .collect();
    assert_eq!(groups, ["FID"]);
    let owner = |desc: &Element, i: usize| -> String {
        let s = children(desc, "source").nth(i).unwrap();
        s.child("ssrc-info", ns::JITMEET)
            .unwrap()
            .attr("owner")
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (owner(video, 0), owner(video, 1)),
        ("jvb".to_owned(), "7c1d0e42".to_owned())
    );
    let desktop = children(video, "source").nth(3).unwrap();
    assert_eq!(desktop.attr("videoType"), Some("desktop"));

    // What a client reads back is exactly the stripped view.
    let read = ssma::parse_contents(&jingle).unwrap();
    let mut expected = bridge.set().clone();
    let stripped = other.set().strip_simulcast();
    expected.sources.extend(stripped.sources);
    expected.groups.extend(stripped.groups);
    let by_media = |set: &SourceSet, m| -> Vec<Source> {
        set.sources
            .iter()
            .filter(|s| s.media == m)
            .cloned()
            .collect()
    };
    assert_eq!(
        by_media(&read, Media::Audio),
        by_media(&expected, Media::Audio)
    );
    assert_eq!(
        by_media(&read, Media::Video),
        by_media(&expected, Media::Video)
    );
    assert_eq!(read.groups, expected.groups);
}

#[test]
fn json_encoding_moves_sources_into_one_message_that_reads_back() {
    let (transport_in, profile) = (bridge_transport(), MediaProfile::default());
    let (bridge, other) = (
        EndpointSources::bridge_feedback(3002, 3001),
        other_participant(),
    );
    let owners = [RemoteSources::from(&bridge), RemoteSources::from(&other)];
    let mut offer = Offer::new("s", "focus@auth.example/focus", &transport_in, &profile);
    offer.sources = &owners;
    offer.encoding = SourceEncoding::Json;
    let jingle = build_session_initiate(&offer);

    for c in children(&jingle, "content") {
        assert!(ssrcs_of(c.child("description", ns::RTP).unwrap()).is_empty());
    }
    // After the group: old clients look contents up by name anywhere.
    let order: Vec<&str> = jingle.children().map(|c| c.name()).collect();
    assert_eq!(order, ["content", "content", "group", "json-message"]);
    let text = jingle.child("json-message", ns::JITMEET).unwrap().text();
    assert!(text.starts_with(
        r#"{"sources":{"jvb":[[{"s":3001,"n":"jvb-v0","m":"mixedmslabel mixedlabelvideo0"}],[],"#
    ));
    let read = parse_json_sources(&text).unwrap();
    let sorted = |set: &SourceSet| {
        let mut v = set.sources.clone();
        v.sort_by_key(|s| s.ssrc);
        v
    };
    let of = |owner: &str| &read.iter().find(|(o, _)| o == owner).unwrap().1;
    assert_eq!(read.len(), 2);
    assert_eq!(sorted(of("jvb")), sorted(bridge.set()));
    let stripped = other.set().strip_simulcast();
    assert_eq!(of("7c1d0e42").groups, stripped.groups);
    assert_eq!(sorted(of("7c1d0e42")), sorted(&stripped));
}

#[test]
fn default_profile_offers_only_what_our_bridge_forwards() {
    let (t, profile) = (bridge_transport(), MediaProfile::default());
    let xml = build_session_initiate(&Offer::new("s", "f", &t, &profile)).to_xml();
    assert!(xml.contains("<payload-type id='100' name='VP8' clockrate='90000'>"));
    assert!(xml.contains(
        "<payload-type id='96' name='rtx' clockrate='90000'><parameter name='apt' value='100'/>"
    ));
    assert!(xml.contains("<payload-type id='111' name='opus' clockrate='48000' channels='2'>"));
    for absent in [
        "AV1",
        "VP9",
        "H264",
        "extmap-allow-mixed",
        "goog-remb",
        "sdes:mid",
    ] {
        assert!(!xml.contains(absent), "{absent} offered");
    }
    assert!(xml.contains("transport-cc"));
}

#[test]
fn jicofo_profiles_follow_the_client_vintage() {
    let t = bridge_transport();
    let offer_xml =
        |p: &MediaProfile| build_session_initiate(&Offer::new("s", "f", &t, p)).to_xml();
    let cur = offer_xml(&MediaProfile::jicofo(Vintage::Current));
    for present in [
        "name='AV1'",
        "id='42'",
        "name='VP9'",
        "extmap-allow-mixed",
        "id='10'",
        "id='11'",
    ] {
        assert!(cur.contains(present), "CUR offer lacks {present}");
    }
    assert!(cur.contains("value='42e01f;level-asymmetry-allowed=1;packetization-mode=1;'"));
    let v21 = offer_xml(&MediaProfile::jicofo(Vintage::V21));
    assert!(v21.contains("name='H264'") && v21.contains("name='VP9'"));
    for absent in [
        "AV1",
        "extmap-allow-mixed",
        "sdes:mid",
        "dependency-descriptor",
    ] {
        assert!(!v21.contains(absent), "V21 offer has {absent}");
    }
    let red = MediaProfile {
        opus_red: true,
        remb: true,
        header_extensions: vec![],
        ..MediaProfile::default()
    };
    let xml = offer_xml(&red);
    assert!(xml.contains("<payload-type id='112' name='red' clockrate='48000' channels='2'><parameter value='111/111'/>"));
    assert!(!xml.contains("useinbandfec") && xml.contains("goog-remb"));
}

#[test]
fn data_channel_start_muted_and_bridge_session_when_asked() {
    let (t, profile) = (bridge_transport(), MediaProfile::default());
    let mut offer = Offer::new("s", "f", &t, &profile);
    offer.data = true;
    offer.video = false;
    offer.bridge_session = Some(BridgeSession {
        id: "0b6e0c1e",
        region: Some("eu-1"),
    });
    offer.start_muted = Some(StartMuted {
        audio: true,
        video: false,
    });
    let jingle = build_session_initiate(&offer);
    let names: Vec<_> = children(&jingle, "content")
        .filter_map(|c| c.attr("name"))
        .collect();
    assert_eq!(names, ["audio", "data"]);
    let data = children(&jingle, "content").nth(1).unwrap();
    assert_eq!(
        data.child("description", ns::RTP).unwrap().attr("media"),
        Some("application")
    );
    let sctp = data
        .child("transport", ns::ICE_UDP)
        .unwrap()
        .child("sctpmap", ns::SCTP)
        .unwrap();
    assert_eq!(sctp.attr("streams"), Some("1024"));
    let audio_transport = children(&jingle, "content")
        .next()
        .unwrap()
        .child("transport", ns::ICE_UDP)
        .unwrap();
    assert!(
        audio_transport.child("web-socket", ns::COLIBRI).is_none(),
        "no base URL, no WebSocket"
    );
    let bs = jingle.child("bridge-session", ns::FOCUS).unwrap();
    assert_eq!(
        (bs.attr("id"), bs.attr("region")),
        (Some("0b6e0c1e"), Some("eu-1"))
    );
    let sm = jingle.child("startmuted", ns::START_MUTED).unwrap();
    assert_eq!(
        (sm.attr("audio"), sm.attr("video")),
        (Some("true"), Some("false"))
    );
}

#[test]
fn source_add_and_remove_read_back_in_both_encodings() {
    let other = other_participant();
    let owners = [RemoteSources::from(&other)];
    let stripped = other.set().strip_simulcast();
    for build in [build_source_add, build_source_remove] {
        let jingle = build("sid1", &owners, SourceEncoding::Standard);
        assert!(children(&jingle, "content").all(|c| c.attr("creator").is_none()));
        let set = match parse_client(&parse_xml(&jingle.to_xml())).unwrap().body {
            ClientJingle::SourceAdd(set) | ClientJingle::SourceRemove(set) => set,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(set, stripped);

        let jingle = build("sid1", &owners, SourceEncoding::Json);
        assert_eq!(children(&jingle, "content").count(), 0);
        let text = jingle.child("json-message", ns::JITMEET).unwrap().text();
        assert_eq!(
            parse_json_sources(&text).unwrap()[0].1.groups,
            stripped.groups
        );
    }
}

#[test]
fn terminate_and_iq_envelope() {
    let jingle = build_session_terminate("s1", Reason::Expired, Some("alone"));
    let iq = wrap_iq(
        jingle,
        "room@muc.example/focus",
        "room@muc.example/3f2a9c1d",
        "jt1",
    );
    assert_eq!(
        iq.to_xml(),
        "<iq xmlns='jabber:client' type='set' id='jt1' from='room@muc.example/focus' to='room@muc.example/3f2a9c1d'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'>\
         <reason><expired/><text>alone</text></reason></jingle></iq>"
    );
}

#[test]
fn malformed_json_sources_are_refused() {
    let bad = [
        ("not json", "expected ident"),
        (r#"{"other":1}"#, "no \"sources\" object"),
        (
            r#"{"sources":{"a":[[{"s":"12x"}]]}}"#,
            "'12x' is not an SSRC",
        ),
        (
            r#"{"sources":{"a":[[{"s":4294967296}]]}}"#,
            "'4294967296' is not an SSRC",
        ),
        (r#"{"sources":{"a":[[{"n":"x"}]]}}"#, "has no \"s\""),
        (r#"{"sources":{"a":[[],[7]]}}"#, "a group is not an array"),
    ];
    for (text, says) in bad {
        let err: JingleError = parse_json_sources(text).unwrap_err();
        assert!(err.to_string().contains(says), "{text}: {err}");
    }
    // Unknown group tags are skipped, string SSRCs accepted (lib-jitsi-meet's own type).
    let ok = parse_json_sources(r#"{"sources":{"a":[[{"s":"5"}],[["x",5]]]}}"#).unwrap();
    assert_eq!(ok[0].1.sources[0].ssrc, 5);
    assert!(ok[0].1.groups.is_empty());
}
