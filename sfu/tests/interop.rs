//! Interop through the bridge with a second, independent WebRTC stack:
//! webrtc-rs (`rtc`) participants, driven by SDP as a browser is, exchange
//! audio and simulcast VP8 over real UDP on loopback, with each other and
//! with str0m ones.

// Each test binary uses only part of the shared participant helpers.
#[allow(dead_code)]
mod participant;
mod webrtc_rs;

use std::time::{Duration, Instant};

use participant::setup::bridge;
use webrtc_rs::peer::{
    Camera, Media, Peer, assert_continuous, assert_switched_on_keyframe, connect_all, poll_all,
    poll_until, remote_of, sources,
};
use webrtc_rs::{Options, RemoteSource, SrtpProtectionProfile, WebrtcRsParticipant};

const PACKETS: u32 = 50;
const ENOUGH: usize = 45;

/// Everyone sends `PACKETS` audio packets; each must get at least `ENOUGH`
/// of every other's, byte for byte.
fn exchange_audio(ps: &mut [Peer], ssrcs: &[u32]) {
    connect_all(ps);
    for i in 0..PACKETS {
        for (p, ssrc) in ps.iter_mut().zip(ssrcs) {
            p.send_audio(*ssrc, i * 960, format!("{ssrc}:{i}").into_bytes());
        }
        poll_all(ps, 5);
    }
    // Wait for the tail, but no longer than needed.
    let enough = |ps: &[Peer]| {
        ps.iter().zip(ssrcs).all(|(p, own)| {
            ssrcs
                .iter()
                .filter(|s| *s != own)
                .all(|s| p.payloads_from(*s).len() >= PACKETS as usize)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !enough(ps) && Instant::now() < deadline {
        poll_all(ps, 1);
    }

    for (p, own) in ps.iter().zip(ssrcs) {
        for ssrc in ssrcs.iter().filter(|s| *s != own) {
            let got = p.payloads_from(*ssrc);
            let sent: Vec<Vec<u8>> = (0..PACKETS)
                .map(|k| format!("{ssrc}:{k}").into_bytes())
                .collect();
            assert!(
                got.len() >= ENOUGH,
                "{} got {} of {PACKETS} packets from {ssrc}",
                p.name(),
                got.len()
            );
            assert!(
                got.iter().all(|g| sent.contains(g)),
                "{} got altered payloads from {ssrc}: {got:?}",
                p.name()
            );
        }
        assert!(
            p.payloads_from(*own).is_empty(),
            "{} heard itself",
            p.name()
        );
    }
}

#[test]
fn two_webrtc_rs_participants_exchange_audio() {
    let bridge = bridge();
    let (a, b) = (sources(1111, None), sources(2222, None));
    let mut ps = vec![
        Peer::webrtc_rs(&bridge, "room", "alice", &a, &remote_of(&b)),
        Peer::webrtc_rs(&bridge, "room", "bob", &b, &remote_of(&a)),
    ];
    exchange_audio(&mut ps, &[1111, 2222]);
    let stats = bridge.stats().unwrap().totals;
    assert!(stats.packets_forwarded >= 2 * ENOUGH as u64, "{stats:?}");
}

#[test]
fn str0m_and_webrtc_rs_participants_exchange_audio() {
    let bridge = bridge();
    let (a, b) = (sources(1111, None), sources(2222, None));
    let mut ps = vec![
        Peer::str0m(&bridge, "room", "alice", &a, &remote_of(&b)),
        Peer::webrtc_rs(&bridge, "room", "bob", &b, &remote_of(&a)),
    ];
    exchange_audio(&mut ps, &[1111, 2222]);
}

/// What the client sends on its bridge channel to watch `source` at `height`
/// (the bridge's own allocation then keeps to it).
fn on_stage(
    bridge: &sfu::bridge::Bridge,
    conference: &str,
    receiver: &str,
    source: &str,
    height: u32,
) {
    let text = format!(
        r#"{{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"onStageSources":["{source}"],
        "defaultConstraints":{{"maxHeight":180}},"constraints":{{"{source}":{{"maxHeight":{height}}}}}}}"#
    );
    let held = std::sync::Arc::new(tokio::sync::Semaphore::new(1))
        .try_acquire_owned()
        .unwrap();
    bridge.channel_message(conference, receiver, text, held);
}

/// Audio packets of `ssrc` that `p` got, as sent.
fn audio_ok(p: &Peer, ssrc: u32, at_least: usize) {
    let got = p.payloads_from(ssrc);
    assert!(
        got.len() >= at_least,
        "{} got {} audio packets from {ssrc}",
        p.name(),
        got.len()
    );
    let prefix = format!("{ssrc}:");
    assert!(
        got.iter().all(|g| g.starts_with(prefix.as_bytes())),
        "{} got altered audio from {ssrc}",
        p.name()
    );
}

#[test]
fn three_webrtc_rs_endpoints_get_simulcast_on_the_first_ssrc_and_nothing_crosses_conferences() {
    let bridge = bridge();
    let alice = sources(1111, Some(5001));
    let (bob, carol) = (sources(2222, None), sources(3333, None));
    let dave = sources(4444, Some(8001));
    let erin = sources(5555, None);
    let room1 = [&alice, &bob, &carol];
    let others = |me: &webrtc_rs::LocalSources, room: &[&webrtc_rs::LocalSources]| {
        room.iter()
            .filter(|s| s.audio != me.audio)
            .flat_map(|s| remote_of(s))
            .collect::<Vec<RemoteSource>>()
    };
    let room2 = [&dave, &erin];
    let mut ps = vec![
        Peer::webrtc_rs(&bridge, "room-1", "alice", &alice, &others(&alice, &room1)),
        Peer::webrtc_rs(&bridge, "room-1", "bob", &bob, &others(&bob, &room1)),
        Peer::webrtc_rs(&bridge, "room-1", "carol", &carol, &others(&carol, &room1)),
        Peer::webrtc_rs(&bridge, "room-2", "dave", &dave, &others(&dave, &room2)),
        Peer::webrtc_rs(&bridge, "room-2", "erin", &erin, &others(&erin, &room2)),
    ];
    connect_all(&mut ps);
    let mut media = Media::new(
        vec![Camera::new(0, &alice), Camera::new(3, &dave)],
        &[1111, 2222, 3333, 4444, 5555],
    );
    media.run(&mut ps, 20);

    // Bob puts alice on stage at 720p; carol keeps the thumbnail.
    on_stage(&bridge, "room-1", "bob", "alice-v0", 720);
    media.run_until(&mut ps, "bob gets alice's top layer", |ps| {
        ps[1].video(5001).last().is_some_and(|g| g.layer() == 2)
    });
    media.run(&mut ps, 20);

    let bobs = ps[1].video(5001);
    assert!(bobs.len() >= 35, "bob got {} video packets", bobs.len());
    assert_continuous(&bobs, "bob");
    assert_switched_on_keyframe(&bobs, 2, "bob");
    let carols = ps[2].video(5001);
    assert!(
        carols.len() >= 35,
        "carol got {} video packets",
        carols.len()
    );
    assert_continuous(&carols, "carol");
    assert!(
        carols.iter().all(|g| g.layer() == 0),
        "carol stays on layer 0"
    );
    let erins = ps[4].video(8001);
    assert!(
        erins.len() >= 35,
        "erin got {} of dave's packets",
        erins.len()
    );
    assert_continuous(&erins, "erin");
    for p in &ps[1..3] {
        for higher in [5002, 5003, 5012, 5013] {
            assert_eq!(
                p.rs().on_wire(higher),
                0,
                "{} was sent SSRC {higher}: layers go out on the first SSRC",
                p.name()
            );
        }
    }
    for (i, s) in [
        (0, 2222),
        (0, 3333),
        (1, 1111),
        (1, 3333),
        (2, 1111),
        (2, 2222),
        (3, 5555),
        (4, 4444),
    ] {
        audio_ok(&ps[i], s, 35);
    }

    // Nothing crosses between the conferences, on the wire.
    let room1_ssrcs = [1111, 2222, 3333, 5001, 5002, 5003, 5011];
    let room2_ssrcs = [4444, 5555, 8001, 8002, 8003, 8011];
    for (i, p) in ps.iter().enumerate() {
        let foreign: &[u32] = if i < 3 { &room2_ssrcs } else { &room1_ssrcs };
        for s in foreign {
            assert_eq!(
                p.rs().on_wire(*s),
                0,
                "{} got SSRC {s} from the other conference",
                p.name()
            );
        }
    }

    // Alice leaves: her streams stop for the others while she keeps sending.
    bridge.expire_endpoint("room-1", "alice").unwrap();
    poll_all(&mut ps, 20);
    let before: Vec<usize> = [5001, 1111]
        .iter()
        .map(|s| ps[1].rs().on_wire(*s))
        .collect();
    media.run(&mut ps, 20);
    let after: Vec<usize> = [5001, 1111]
        .iter()
        .map(|s| ps[1].rs().on_wire(*s))
        .collect();
    assert_eq!(
        before, after,
        "a left endpoint's video and audio still arrive"
    );
    audio_ok(&ps[1], 3333, 55);
}

#[test]
fn a_webrtc_rs_receivers_nack_is_answered_with_rtx() {
    let bridge = bridge();
    let (sender, viewer) = (sources(1111, Some(5001)), sources(2222, None));
    let mut ps = vec![
        Peer::webrtc_rs(&bridge, "room", "sender", &sender, &remote_of(&viewer)),
        Peer::webrtc_rs(&bridge, "room", "viewer", &viewer, &remote_of(&sender)),
    ];
    connect_all(&mut ps);
    // The viewer's network loses two of the bridge's video packets.
    ps[1].rs_mut().lose.insert(5001, vec![15, 31]);
    let mut media = Media::new(vec![Camera::new(0, &sender)], &[]);
    media.run(&mut ps, 60);
    poll_until(
        &mut ps,
        "the viewer's NACKs get the lost packets back",
        |ps| ps[1].video(5001).len() >= 60,
    );

    let got = ps[1].video(5001);
    let frames: std::collections::BTreeSet<u32> = got
        .iter()
        .map(|g| u32::from_be_bytes(g.payload[9..13].try_into().unwrap()))
        .collect();
    assert_eq!(
        frames,
        (0..60).collect(),
        "every frame reached the viewer's application"
    );
    let first = got[0].seq;
    let mut offsets: Vec<u16> = got.iter().map(|g| g.seq.wrapping_sub(first)).collect();
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(
        offsets,
        (0..60).collect::<Vec<u16>>(),
        "no gaps in sequence numbers"
    );
    let viewer = ps[1].rs_mut();
    assert!(
        viewer.on_wire(5011) >= 2,
        "the retransmissions came as RTX on the source's FID partner (got {})",
        viewer.on_wire(5011)
    );
}

/// A receiver's PLI for `source` reaches `sender` as a key frame request on
/// the layer being forwarded (0), and a key frame follows.
fn pli_reaches(ps: &mut [Peer], media: &mut Media, viewer: usize, sender: usize, source: u32) {
    poll_all(ps, 10);
    let before = ps[sender].keyframe_requests(source);
    let seen = ps[viewer].video(source).len();
    ps[viewer].rs_mut().send_pli(source);
    poll_until(ps, "the PLI reaches the sender", |ps| {
        ps[sender].keyframe_requests(source) > before
    });
    media.run(ps, 3);
    let after = ps[viewer].video(source);
    assert!(
        after[seen..].first().is_some_and(|g| g.key()),
        "a key frame follows the PLI"
    );
}

#[test]
fn a_webrtc_rs_receivers_pli_reaches_str0m_and_webrtc_rs_senders() {
    let bridge = bridge();
    let cam = sources(1111, Some(5001));
    let web = sources(2222, Some(6001));
    let viewer = sources(3333, None);
    let mut to_viewer = remote_of(&cam);
    to_viewer.extend(remote_of(&web));
    let mut to_cam = remote_of(&web);
    to_cam.extend(remote_of(&viewer));
    let mut to_web = remote_of(&cam);
    to_web.extend(remote_of(&viewer));
    let mut ps = vec![
        Peer::str0m(&bridge, "room", "cam", &cam, &to_cam),
        Peer::webrtc_rs(&bridge, "room", "web", &web, &to_web),
        Peer::webrtc_rs(&bridge, "room", "viewer", &viewer, &to_viewer),
    ];
    connect_all(&mut ps);
    let mut media = Media::new(vec![Camera::new(0, &cam), Camera::new(1, &web)], &[]);
    media.run(&mut ps, 20);
    assert!(ps[2].video(5001).len() >= 15 && ps[2].video(6001).len() >= 15);

    pli_reaches(&mut ps, &mut media, 2, 0, 5001);
    pli_reaches(&mut ps, &mut media, 2, 1, 6001);
}

/// JVB routes a PLI to the owner of the SSRC it names (protocol §6.4); a
/// key frame costs the other senders bandwidth for nothing.
#[test]
fn a_pli_for_one_source_asks_only_its_sender() {
    let bridge = bridge();
    let cam = sources(1111, Some(5001));
    let web = sources(2222, Some(6001));
    let viewer = sources(3333, None);
    let mut to_viewer = remote_of(&cam);
    to_viewer.extend(remote_of(&web));
    let mut ps = vec![
        Peer::webrtc_rs(&bridge, "room", "cam", &cam, &remote_of(&viewer)),
        Peer::webrtc_rs(&bridge, "room", "web", &web, &remote_of(&viewer)),
        Peer::webrtc_rs(&bridge, "room", "viewer", &viewer, &to_viewer),
    ];
    connect_all(&mut ps);
    let mut media = Media::new(vec![Camera::new(0, &cam), Camera::new(1, &web)], &[]);
    media.run_until(&mut ps, "the viewer gets both cameras", |ps| {
        ps[2].video(5001).len() >= 5 && ps[2].video(6001).len() >= 5
    });
    // Past the bridge's own key frame requests for the first picture.
    media.run(&mut ps, 10);
    poll_all(&mut ps, 10);
    let (cam_before, web_before) = (ps[0].keyframe_requests(5001), ps[1].keyframe_requests(6001));

    ps[2].rs_mut().send_pli(5001);
    poll_until(&mut ps, "the PLI reaches cam", |ps| {
        ps[0].keyframe_requests(5001) > cam_before
    });
    poll_all(&mut ps, 20);
    assert_eq!(
        ps[1].keyframe_requests(6001),
        web_before,
        "a PLI for cam's video made the bridge ask web for a key frame too"
    );
}

#[test]
fn mixed_rooms_switch_layers_both_ways_between_str0m_and_webrtc_rs() {
    let bridge = bridge();
    let cam = sources(1111, Some(5001));
    let web = sources(2222, Some(6001));
    let s_view = sources(3333, None);
    let w_view = sources(4444, None);
    let all = [&cam, &web, &s_view, &w_view];
    let others = |me: &webrtc_rs::LocalSources| {
        all.iter()
            .filter(|s| s.audio != me.audio)
            .flat_map(|s| remote_of(s))
            .collect::<Vec<RemoteSource>>()
    };
    let mut ps = vec![
        Peer::str0m(&bridge, "room", "cam", &cam, &others(&cam)),
        Peer::webrtc_rs(&bridge, "room", "web", &web, &others(&web)),
        Peer::str0m(&bridge, "room", "s-view", &s_view, &others(&s_view)),
        Peer::webrtc_rs(&bridge, "room", "w-view", &w_view, &others(&w_view)),
    ];
    connect_all(&mut ps);
    let mut media = Media::new(
        vec![Camera::new(0, &cam), Camera::new(1, &web)],
        &[1111, 2222, 3333, 4444],
    );
    media.run(&mut ps, 20);

    // Each viewer puts the other stack's camera on stage (720p: top layer, 360p: middle).
    on_stage(&bridge, "room", "w-view", "cam-v0", 720);
    on_stage(&bridge, "room", "s-view", "web-v0", 360);
    media.run_until(&mut ps, "both viewers switch", |ps| {
        ps[3].video(5001).last().is_some_and(|g| g.layer() == 2)
            && ps[2].video(6001).last().is_some_and(|g| g.layer() == 1)
    });
    media.run(&mut ps, 15);

    for (viewer, source, layer) in [(3, 5001, 2), (2, 6001, 1)] {
        let got = ps[viewer].video(source);
        let who = format!("{} from {source}", ps[viewer].name());
        assert!(got.len() >= 30, "{who}: {} packets", got.len());
        assert_continuous(&got, &who);
        assert_switched_on_keyframe(&got, layer, &who);
    }
    for (viewer, source) in [(2, 5001), (3, 6001)] {
        let got = ps[viewer].video(source);
        let who = format!("{} from {source}", ps[viewer].name());
        assert_continuous(&got, &who);
        assert!(
            got.iter().all(|g| g.layer() == 0),
            "{who}: stays on layer 0"
        );
    }
    for (i, p) in ps.iter().enumerate() {
        for s in [1111, 2222, 3333, 4444]
            .iter()
            .filter(|s| **s != all[i].audio)
        {
            audio_ok(p, *s, 30);
        }
    }
}

/// Two webrtc-rs participants whose DTLS is set up as `options` says exchange
/// audio; the profile each ends up with.
fn agreed_profile(options: Options) -> Vec<String> {
    let bridge = bridge();
    let (a, b) = (sources(1111, None), sources(2222, None));
    let mut ps: Vec<Peer> = [("alice", &a, &b), ("bob", &b, &a)]
        .into_iter()
        .map(|(name, local, other)| {
            let transport = bridge.create_endpoint("room", name).unwrap();
            let p = WebrtcRsParticipant::with(name, &transport, local, &remote_of(other), &options);
            bridge
                .update_endpoint("room", name, Some(p.remote()), Some(p.sources()))
                .unwrap();
            Peer::WebrtcRs(Box::new(p))
        })
        .collect();
    exchange_audio(&mut ps, &[1111, 2222]);
    ps.iter_mut().map(|p| p.rs_mut().srtp_cipher()).collect()
}

#[test]
fn the_bridge_prefers_aes_128_gcm_as_videobridge_does_and_takes_the_others_offered() {
    use SrtpProtectionProfile::*;
    let offering = |srtp_profiles| Options {
        srtp_profiles,
        ..Default::default()
    };
    // Chrome's order: AES-256-GCM first.
    let chrome = vec![
        Srtp_Aead_Aes_256_Gcm,
        Srtp_Aead_Aes_128_Gcm,
        Srtp_Aes128_Cm_Hmac_Sha1_80,
    ];
    assert_eq!(
        agreed_profile(offering(chrome.clone())),
        ["SRTP_AEAD_AES_128_GCM"; 2]
    );
    let offered = vec![Srtp_Aead_Aes_256_Gcm, Srtp_Aes128_Cm_Hmac_Sha1_80];
    assert_eq!(
        agreed_profile(offering(offered)),
        ["SRTP_AES128_CM_HMAC_SHA1_80"; 2]
    );
    assert_eq!(
        agreed_profile(offering(vec![Srtp_Aead_Aes_256_Gcm])),
        ["SRTP_AEAD_AES_256_GCM"; 2]
    );
    // Answering setup:passive makes webrtc-rs the DTLS server; the bridge, the
    // client, offers Videobridge's two only.
    let passive = Options {
        dtls_server: true,
        ..offering(chrome)
    };
    assert_eq!(agreed_profile(passive), ["SRTP_AEAD_AES_128_GCM"; 2]);
}

#[test]
fn participants_with_rsa_certificates_connect_in_either_dtls_role() {
    for dtls_server in [false, true] {
        let options = Options {
            rsa_certificate: true,
            dtls_server,
            ..Default::default()
        };
        assert_eq!(
            agreed_profile(options),
            ["SRTP_AEAD_AES_128_GCM"; 2],
            "DTLS server: {dtls_server}"
        );
    }
}
