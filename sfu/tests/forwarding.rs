//! Media through the bridge over real UDP on loopback: test participants
//! with their own WebRTC stack (full ICE as controlled agent, DTLS client,
//! SRTP) join conferences and check what arrives.

// Each test binary uses only part of the shared participant helpers.
#[allow(dead_code)]
mod participant;

use std::time::{Duration, Instant};

use participant::Participant;
use participant::setup::{
    Camera, bridge, connect_all, join, join_with, open_channel, poll_all, serve_channels, vp8,
};
use str0m::media::MediaKind;

#[test]
fn audio_reaches_everyone_else_in_the_conference_and_nobody_outside() {
    let bridge = bridge();
    let names = ["alice", "bob", "carol"];
    let ssrcs = [1111u32, 2222, 3333];
    let mut ps: Vec<Participant> = names
        .iter()
        .zip(ssrcs)
        .map(|(n, s)| join(&bridge, "room-1", n, s, &[]))
        .collect();
    ps.push(join(&bridge, "room-2", "dave", 4444, &[]));
    // Everyone expects everyone's audio, so a leak between rooms would show.
    for p in ps.iter_mut() {
        for s in [1111, 2222, 3333, 4444] {
            p.expect(s, MediaKind::Audio);
        }
    }
    connect_all(&mut ps);
    let quiet = bridge.stats().unwrap().totals;
    assert_eq!(
        (quiet.inactive_conferences, quiet.inactive_endpoints),
        (2, 4),
        "connected but silent conferences are inactive"
    );

    let all = [1111u32, 2222, 3333, 4444];
    for i in 0..50u32 {
        for (p, ssrc) in ps.iter_mut().zip(all) {
            let payload = format!("{ssrc}:{i}").into_bytes();
            p.send_audio(ssrc, i * 960, -30, payload);
        }
        poll_all(&mut ps, 5);
    }
    poll_all(&mut ps, 50);

    for (i, p) in ps.iter().enumerate().take(3) {
        for (j, ssrc) in ssrcs.iter().enumerate() {
            if i == j {
                continue;
            }
            let got = p.payloads_from(*ssrc);
            let sent: Vec<Vec<u8>> = (0..50)
                .map(|k| format!("{ssrc}:{k}").into_bytes())
                .collect();
            assert!(
                got.len() >= 45,
                "{} got {} of 50 packets from {ssrc}",
                p.name,
                got.len()
            );
            assert!(
                got.iter().all(|g| sent.contains(g)),
                "payloads arrive unchanged"
            );
        }
        assert!(
            p.payloads_from(4444).is_empty(),
            "{} heard another room",
            p.name
        );
    }
    assert!(
        ssrcs.iter().all(|s| ps[3].payloads_from(*s).is_empty()),
        "dave heard room-1"
    );
    let stats = bridge.stats().unwrap();
    assert!(stats.totals.packets_forwarded >= 6 * 45, "{stats:?}");
    let t = &stats.totals;
    assert_eq!(
        (t.endpoints_sending_audio, t.endpoints_sending_video),
        (4, 0)
    );
    assert_eq!((t.inactive_conferences, t.receive_only_endpoints), (0, 0));
    assert_eq!(
        stats.worker_endpoints,
        [3, 1],
        "the second conference goes to the idle worker"
    );
    assert!(
        stats.latency.count() > 0 && stats.latency.quantile(0.99) > std::time::Duration::ZERO,
        "the time each datagram spent in the bridge is recorded"
    );

    // Alice leaves: her streams stop for the others.
    bridge.expire_endpoint("room-1", "alice").unwrap();
    let before = ps[1].payloads_from(1111).len();
    for i in 50..70u32 {
        ps[0].send_audio(1111, i * 960, -30, format!("1111:{i}").into_bytes());
        poll_all(&mut ps, 5);
    }
    assert_eq!(
        ps[1].payloads_from(1111).len(),
        before,
        "a left endpoint's audio still arrives"
    );
}

#[test]
fn simulcast_goes_out_on_the_first_ssrc_and_switches_layers_on_a_keyframe() {
    let bridge = bridge();
    let layers = [5001u32, 5002, 5003];
    let mut ps = sender_and_viewer(&bridge, &layers);

    let mut camera = Camera::new(&layers);
    camera.send(&mut ps, 30);
    let got = ps[1].got.get(&layers[0]).cloned().unwrap_or_default();
    assert!(
        got.len() >= 25,
        "viewer got {} packets of layer 0",
        got.len()
    );
    assert!(
        got.iter().all(|g| g.payload[8] == 0),
        "only layer 0 by default"
    );
    assert!(
        !ps[1].got.contains_key(&layers[2]),
        "nothing on the other layers' SSRCs"
    );

    bridge
        .set_video_target("room", "viewer", layers[0], Some(2))
        .unwrap();
    camera.send(&mut ps, 40);
    let got = ps[1].got.get(&layers[0]).cloned().unwrap_or_default();
    let first_high = got
        .iter()
        .position(|g| g.payload[8] == 2)
        .expect("layer 2 arrives after a PLI");
    assert_eq!(
        got[first_high].payload[6] & 0x01,
        0,
        "the switch happens on a key frame"
    );
    assert!(
        got[first_high..].iter().all(|g| g.payload[8] == 2),
        "no going back"
    );
    for w in got.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "sequence numbers continue across the switch"
        );
        let pid =
            |g: &participant::Got| (u16::from(g.payload[2] & 0x7F) << 8) | u16::from(g.payload[3]);
        assert_eq!(
            pid(&w[1]),
            (pid(&w[0]) + 1) % 0x8000,
            "picture ids continue"
        );
        assert!(w[1].timestamp != w[0].timestamp);
    }
    assert!(bridge.stats().unwrap().totals.keyframe_requests >= 1);
}

#[test]
fn a_receiver_asking_for_key_frames_nonstop_reaches_the_sender_five_times_a_second_at_most() {
    let bridge = bridge();
    let layers = [5001u32, 5002, 5003];
    let mut ps = sender_and_viewer(&bridge, &layers);
    let mut camera = Camera::new(&layers);
    camera.send(&mut ps, 10);
    assert!(ps[1].got.contains_key(&layers[0]), "the viewer gets video");
    ps[0].keyframe_requests.clear();
    // A broken decoder: a PLI with every frame, for a second.
    let started = Instant::now();
    let mut frame = 1000;
    while started.elapsed() < Duration::from_secs(1) {
        ps[0].send_video(layers[0], frame * 3000, vp8(1, 1, false, 0, frame));
        ps[1].request_keyframe(layers[0]);
        poll_all(&mut ps, 10);
        frame += 1;
    }
    poll_all(&mut ps, 30);
    let asked = ps[0]
        .keyframe_requests
        .get(&layers[0])
        .copied()
        .unwrap_or(0);
    let elapsed = started.elapsed().as_millis() as usize;
    // One per 200 ms (Videobridge's source-wide interval), and at least one got through.
    assert!(
        (1..=elapsed / 200 + 1).contains(&asked),
        "{asked} key frame requests in {elapsed} ms"
    );
}

/// A simulcast sender with `layers` and a viewer of its video, connected.
fn sender_and_viewer(bridge: &sfu::bridge::Bridge, layers: &[u32]) -> Vec<Participant> {
    let mut ps = vec![
        join(bridge, "room", "sender", 6001, layers),
        join(bridge, "room", "viewer", 7001, &[]),
    ];
    ps[1].expect(layers[0], MediaKind::Video);
    connect_all(&mut ps);
    ps
}

/// A STUN binding request naming `ufrag` with a made-up MESSAGE-INTEGRITY.
fn forged_binding(ufrag: &str) -> Vec<u8> {
    let username = format!("{ufrag}:intruder");
    let padded = username.len().div_ceil(4) * 4;
    let mut m = vec![0, 1];
    m.extend(((4 + padded + 24) as u16).to_be_bytes());
    m.extend([0x21, 0x12, 0xA4, 0x42]);
    m.extend([9; 12]);
    m.extend([0, 6]);
    m.extend((username.len() as u16).to_be_bytes());
    m.extend(username.as_bytes());
    m.resize(m.len() + padded - username.len(), 0);
    m.extend([0, 8, 0, 20]);
    m.extend([0x5A; 20]);
    m
}

#[test]
fn garbage_forgeries_and_floods_are_dropped_while_media_flows() {
    let bridge = bridge();
    let old = bridge.create_endpoint("room", "ghost").unwrap();
    bridge.expire_endpoint("room", "ghost").unwrap();
    let (alice, local) = join_with(&bridge, "room", "alice", 1111, &[]);
    let media = local.candidates[0].address;
    let mut ps = vec![alice, join(&bridge, "room", "bob", 2222, &[])];
    ps[1].expect(1111, MediaKind::Audio);
    connect_all(&mut ps);

    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = bridge.stats().unwrap().totals;
    for i in 0..50u32 {
        ps[0].send_audio(1111, i * 960, -30, format!("1111:{i}").into_bytes());
        // Garbage of every first-byte class, truncated RTP/RTCP, STUN with a
        // wrong password for a real and an old ufrag, from a stranger…
        for junk in [
            vec![0u8; 3],
            vec![0x80, 0x60, 0, 1, 0],
            vec![0x81, 200, 0, 1],
            vec![0x16, 0xFE, 0xFD, 0, 0],
            (0..200).map(|b| (b * 7 + i) as u8).collect(),
            forged_binding(&local.ufrag),
            forged_binding(&old.ufrag),
        ] {
            attacker.send_to(&junk, media).unwrap();
        }
        // …and SRTP with a bad authentication tag from a participant's own address.
        let mut fake = vec![0x80, 111, 0, i as u8, 0, 0, 0, 1, 0, 0, 0x04, 0x57];
        fake.extend([0xEE; 40]);
        ps[0].send_raw(media, &fake);
        // A flood from an unknown address.
        for _ in 0..40 {
            attacker
                .send_to(&[0x90, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], media)
                .unwrap();
        }
        poll_all(&mut ps, 5);
    }
    poll_all(&mut ps, 50);
    let got = ps[1].payloads_from(1111);
    let fresh = got.iter().filter(|p| p.starts_with(b"1111:")).count();
    assert!(
        fresh >= 45,
        "bob got {fresh} of 50 of alice's packets while under attack"
    );
    let after = bridge.stats().unwrap().totals;
    let dropped = (after.unroutable + after.rejected) - (before.unroutable + before.rejected);
    assert!(
        dropped >= 50 * 45,
        "stranger datagrams are counted as dropped: {after:?}"
    );
}

/// Alice (`ps[0]`, audio SSRC 1111) sends 50 audio packets: how many of them
/// bob (`ps[1]`) got.
fn alices_audio_reaching_bob(ps: &mut [Participant]) -> usize {
    for i in 0..50u32 {
        ps[0].send_audio(1111, i * 960, -30, format!("1111:{i}").into_bytes());
        poll_all(ps, 5);
    }
    poll_all(ps, 50);
    let got = ps[1].payloads_from(1111);
    got.iter().filter(|p| p.starts_with(b"1111:")).count()
}

/// A valid STUN binding request, as an ICE agent in the controlled role sends
/// it (RFC 8445 §7.1.1): USERNAME `to:from`, PRIORITY, ICE-CONTROLLED,
/// MESSAGE-INTEGRITY keyed with the receiver's password, FINGERPRINT.
fn binding_request(to: &str, from: &str, pwd: &str, id: u32) -> Vec<u8> {
    let username = format!("{to}:{from}");
    let mut attrs = vec![0, 6];
    attrs.extend((username.len() as u16).to_be_bytes());
    attrs.extend(username.as_bytes());
    attrs.resize(attrs.len().next_multiple_of(4), 0);
    attrs.extend([0, 0x24, 0, 4]);
    attrs.extend(1_853_817_087u32.to_be_bytes());
    attrs.extend([0x80, 0x29, 0, 8]);
    attrs.extend(7u64.to_be_bytes());
    let mut m = vec![0, 1];
    // The length covers MESSAGE-INTEGRITY while it is computed, then FINGERPRINT too.
    m.extend(((attrs.len() + 24) as u16).to_be_bytes());
    m.extend([0x21, 0x12, 0xA4, 0x42]);
    m.extend([0; 8]);
    m.extend(id.to_be_bytes());
    m.extend(attrs);
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        pwd.as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&key, &m);
    m.extend([0, 8, 0, 20]);
    m.extend(tag.as_ref());
    let length = (m.len() - 20 + 8) as u16;
    m[2..4].copy_from_slice(&length.to_be_bytes());
    let fingerprint = crc32(&m) ^ 0x5354_554E;
    m.extend([0x80, 0x28, 0, 4]);
    m.extend(fingerprint.to_be_bytes());
    m
}

/// CRC-32 (ISO-HDLC), as STUN's FINGERPRINT uses it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn a_participant_cannot_make_the_bridge_learn_source_addresses_without_end() {
    let bridge = bridge();
    let (alice, local) = join_with(&bridge, "room", "alice", 1111, &[]);
    let media = local.candidates[0].address;
    let mut ps = vec![alice, join(&bridge, "room", "bob", 2222, &[])];
    ps[1].expect(1111, MediaKind::Audio);
    connect_all(&mut ps);
    let alice_ufrag = ps[0].remote().ufrag;

    // Alice's valid binding requests from 100 more source ports: each one
    // the bridge accepts becomes a route and a candidate, and is answered.
    let before = bridge.stats().unwrap().totals;
    let ports: Vec<_> = (0..100)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, port) in ports.iter().enumerate() {
        let request = binding_request(&local.ufrag, &alice_ufrag, &local.pwd, i as u32);
        port.send_to(&request, media).unwrap();
    }
    let fresh = alices_audio_reaching_bob(&mut ps);
    let answered = ports
        .iter()
        .filter(|port| {
            port.set_nonblocking(true).unwrap();
            port.recv(&mut [0; 1500]).is_ok()
        })
        .count();
    assert!(
        (16..=32).contains(&answered),
        "the bridge answers a bounded number of alice's new addresses: {answered} of 100"
    );
    let after = bridge.stats().unwrap().totals;
    assert!(
        after.rejected - before.rejected >= (100 - answered) as u64,
        "the requests past the bound are counted as dropped: {after:?}"
    );
    assert!(
        fresh >= 45,
        "bob got {fresh} of alice's 50 packets meanwhile"
    );
}

#[test]
fn a_client_signalling_candidates_without_end_is_refused_and_keeps_its_call() {
    let bridge = bridge();
    let mut ps = vec![
        join(&bridge, "room", "alice", 1111, &[]),
        join(&bridge, "room", "bob", 2222, &[]),
    ];
    ps[1].expect(1111, MediaKind::Audio);
    connect_all(&mut ps);
    let mut remote = ps[0].remote();
    let trickled = |n: u16| -> Vec<std::net::SocketAddr> {
        (0..n)
            .map(|i| ([127, 42, 0, 1], 40000 + i).into())
            .collect()
    };
    // A few trickled candidates (where nobody listens) are taken; the same
    // ones again cost nothing.
    remote.candidates = trickled(20);
    bridge
        .update_endpoint("room", "alice", Some(remote.clone()), None)
        .unwrap();
    bridge
        .update_endpoint("room", "alice", Some(remote.clone()), None)
        .unwrap();
    remote.candidates = trickled(100);
    let refused = bridge.update_endpoint("room", "alice", Some(remote), None);
    assert!(
        matches!(&refused, Err(sfu::api::ApiError::BadRequest(text)) if text.contains("candidates")),
        "a hundred candidates for one endpoint are refused with a reason: {refused:?}"
    );
    let fresh = alices_audio_reaching_bob(&mut ps);
    assert!(
        fresh >= 45,
        "bob got {fresh} of alice's 50 packets after the refusal"
    );
    let t = bridge.stats().unwrap().totals;
    assert_eq!(
        (t.endpoints_sending_audio, t.receive_only_endpoints),
        (1, 1),
        "alice sends, bob only listens"
    );
}

#[test]
fn a_receivers_nack_is_answered_with_a_retransmission() {
    let bridge = bridge();
    let mut ps = sender_and_viewer(&bridge, &[5001]);
    // The viewer's network loses two of the bridge's packets.
    ps[1].lose = vec![15, 31];
    for frame in 0..60u32 {
        let payload = vp8((frame % 0x8000) as u16, frame as u8, frame == 0, 0, frame);
        ps[0].send_video(5001, frame * 3000, payload);
        poll_all(&mut ps, 3);
    }
    poll_all(&mut ps, 100);
    let got = &ps[1].got[&5001];
    let mut seqs: Vec<u64> = got.iter().map(|g| g.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert!(got.len() >= 58, "viewer got {} of 60", got.len());
    assert_eq!(
        seqs.len() as u64,
        last - first + 1,
        "every lost packet came back as a retransmission: {seqs:?}"
    );
    let totals = bridge.stats().unwrap().totals;
    assert!(
        totals.nacks_received >= 1 && totals.retransmissions >= 2,
        "{totals:?}"
    );
}

/// The bridge asks a sender again for what its uplink lost; the sender's
/// retransmission (RTX) reaches the viewer as the packet it repeats.
#[test]
fn a_senders_lost_packet_is_asked_for_and_its_retransmission_forwarded() {
    let bridge = bridge();
    let mut ps = sender_and_viewer(&bridge, &[5001]);
    // The sender's network loses two of its video packets on the way.
    let before = ps[0].rtp_sent();
    ps[0].lose_out = vec![before + 15, before + 31];
    let sent: Vec<Vec<u8>> = (0..60u32)
        .map(|frame| vp8((frame % 0x8000) as u16, frame as u8, frame == 0, 0, frame))
        .collect();
    for (frame, payload) in sent.iter().enumerate() {
        ps[0].send_video(5001, frame as u32 * 3000, payload.clone());
        poll_all(&mut ps, 3);
    }
    poll_all(&mut ps, 100);
    let mut got: Vec<(u64, Vec<u8>)> = ps[1].got[&5001]
        .iter()
        .map(|g| (g.seq, g.payload.clone()))
        .collect();
    got.sort();
    got.dedup();
    let payloads: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        payloads.len(),
        sent.len(),
        "the viewer got every frame, the two lost ones by retransmission"
    );
    // The bridge renumbers the descriptor; the frame bytes after it are the sender's.
    for (got, sent) in payloads.iter().zip(&sent) {
        assert_eq!(got[got.len() - 8..], sent[sent.len() - 8..]);
    }
}

#[test]
fn receiver_video_constraints_on_the_bridge_channel_pick_the_layer() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let bridge = std::sync::Arc::new(bridge());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve_channels(&rt, &bridge);
    let layers = [5001u32, 5002, 5003];
    let (sender, sender_local) = join_with(&bridge, "room", "sender", 6001, &layers);
    let (viewer, local) = join_with(&bridge, "room", "viewer", 7001, &[]);
    let mut ps = vec![sender, viewer];
    ps[1].expect(layers[0], MediaKind::Video);
    connect_all(&mut ps);
    let mut ws = open_channel(&rt, &base, &local.channel_path);
    let hello = rt.block_on(ws.next()).unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("ServerHello"));
    let mut sender_ws = open_channel(&rt, &base, &sender_local.channel_path);
    // What the sender is told it needs to encode, after each receiver wish.
    let mut sender_told = || {
        rt.block_on(async {
            loop {
                let m = tokio::time::timeout(Duration::from_secs(5), sender_ws.next())
                    .await
                    .expect("a sender constraint within 5 s")
                    .unwrap()
                    .unwrap();
                let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
                if v["colibriClass"] == "SenderSourceConstraints" {
                    return v;
                }
            }
        })
    };
    let mut say = |text: &str, answer: &str| {
        rt.block_on(async {
            ws.send(Message::text(text)).await.unwrap();
            // The receiver is told what it is now sent, in its own dialect.
            loop {
                let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("no {answer} within 5 s"))
                    .unwrap()
                    .unwrap();
                let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
                if v["colibriClass"] == answer {
                    return v;
                }
            }
        })
    };
    let newest_layer = |p: &Participant| p.got[&layers[0]].last().map(|g| g.payload[8]);

    let mut camera = Camera::new(&layers);
    camera.send(&mut ps, 20);
    assert_eq!(newest_layer(&ps[1]), Some(0), "thumbnail by default");

    // The current client: source names, on stage at 720p.
    let forwarded = say(
        r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"onStageSources":["sender-v0"],
        "defaultConstraints":{"maxHeight":180},"constraints":{"sender-v0":{"maxHeight":720}}}"#,
        "ForwardedSources",
    );
    assert_eq!(
        forwarded["forwardedSources"],
        serde_json::json!(["sender-v0"])
    );
    let told = sender_told();
    assert_eq!(
        (told["sourceName"].clone(), told["maxHeight"].clone()),
        (serde_json::json!("sender-v0"), serde_json::json!(720))
    );
    camera.send(&mut ps, 30);
    assert_eq!(newest_layer(&ps[1]), Some(2), "720p wanted: the top layer");

    // The December 2021 client: keyed by endpoint, 360p.
    let forwarded = say(
        r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"selectedEndpoints":[],
        "onStageEndpoints":["sender"],"defaultConstraints":{"maxHeight":180},
        "constraints":{"sender":{"maxHeight":360}}}"#,
        "LastNEndpointsChangeEvent",
    );
    assert_eq!(forwarded["lastNEndpoints"], serde_json::json!(["sender"]));
    assert_eq!(sender_told()["maxHeight"], serde_json::json!(360));
    camera.send(&mut ps, 30);
    assert_eq!(
        newest_layer(&ps[1]),
        Some(1),
        "360p wanted: the middle layer"
    );

    // No video wanted at all.
    let forwarded = say(
        r#"{"colibriClass":"ReceiverVideoConstraints","defaultConstraints":{"maxHeight":0}}"#,
        "ForwardedSources",
    );
    assert_eq!(forwarded["forwardedSources"], serde_json::json!([]));
    assert_eq!(
        sender_told()["maxHeight"],
        serde_json::json!(0),
        "nobody wants it: the sender may stop"
    );
    camera.send(&mut ps, 5);
    let count = ps[1].got[&layers[0]].len();
    camera.send(&mut ps, 20);
    assert_eq!(
        ps[1].got[&layers[0]].len(),
        count,
        "maxHeight 0 stops the video"
    );
}

#[test]
fn a_receiver_of_a_layer_its_sender_stops_is_moved_to_one_still_sent() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let bridge = std::sync::Arc::new(bridge());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve_channels(&rt, &bridge);
    let layers = [5001u32, 5002, 5003];
    let (sender, _) = join_with(&bridge, "room", "sender", 6001, &layers);
    let (viewer, local) = join_with(&bridge, "room", "viewer", 7001, &[]);
    let mut ps = vec![sender, viewer];
    ps[1].expect(layers[0], MediaKind::Video);
    connect_all(&mut ps);
    let mut ws = open_channel(&rt, &base, &local.channel_path);
    rt.block_on(async {
        ws.next().await.unwrap().unwrap();
        ws.send(Message::text(
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"onStageSources":["sender-v0"],
            "defaultConstraints":{"maxHeight":180},"constraints":{"sender-v0":{"maxHeight":720}}}"#,
        ))
        .await
        .unwrap();
    });
    let newest_layer = |p: &Participant| p.got.get(&layers[0])?.last().map(|g| g.payload[8]);
    let mut camera = Camera::new(&layers);
    // 720p wanted: the top layer, once the constraints and its key frame are through.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while newest_layer(&ps[1]) != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the viewer gets the top layer it asked for"
        );
        camera.send(&mut ps, 5);
    }

    // The sender's browser stops its top layer (its uplink got tight): the
    // viewer must not wait for it, but get the middle layer, which goes on.
    camera.pause(2);
    let paused_at = std::time::Instant::now();
    let deadline = paused_at + Duration::from_secs(10);
    while newest_layer(&ps[1]) != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the viewer still waits for the paused layer"
        );
        camera.send(&mut ps, 5);
    }
    println!(
        "viewer moved to the middle layer {:?} after the top one stopped",
        paused_at.elapsed()
    );
}

#[test]
fn the_dominant_speaker_is_announced_and_silence_is_not_forwarded() {
    use futures_util::StreamExt;

    let bridge = std::sync::Arc::new(bridge());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve_channels(&rt, &bridge);
    let alice = join(&bridge, "room", "alice", 1111, &[]);
    let (bob, local) = join_with(&bridge, "room", "bob", 2222, &[]);
    let carol = join(&bridge, "room", "carol", 3333, &[]);
    let mut ps = vec![alice, bob, carol];
    ps[1].expect(1111, MediaKind::Audio);
    ps[1].expect(3333, MediaKind::Audio);
    connect_all(&mut ps);
    let mut ws = open_channel(&rt, &base, &local.channel_path);
    // Talks (loud, -20 dBov) and silence (-127) until bob's channel names `speaker`.
    let mut frame = 0u32;
    let mut until_dominant =
        |ps: &mut Vec<Participant>, talker: usize, silent: usize, speaker: &str| {
            let deadline = Instant::now() + Duration::from_secs(8);
            loop {
                assert!(
                    Instant::now() < deadline,
                    "{speaker} never became the dominant speaker"
                );
                let ssrc = |i: usize| [1111u32, 2222, 3333][i];
                ps[talker].send_audio(
                    ssrc(talker),
                    frame * 960,
                    -20,
                    format!("talk:{frame}").into_bytes(),
                );
                ps[silent].send_audio(
                    ssrc(silent),
                    frame * 960,
                    -127,
                    format!("hush:{frame}").into_bytes(),
                );
                frame += 1;
                poll_all(ps, 5);
                while let Ok(Some(Ok(m))) = rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(1), ws.next()).await
                }) {
                    let v: serde_json::Value = match m.to_text().map(serde_json::from_str) {
                        Ok(Ok(v)) => v,
                        _ => continue,
                    };
                    if v["colibriClass"] == "DominantSpeakerEndpointChangeEvent"
                        && v["dominantSpeakerEndpoint"] == speaker
                    {
                        return v;
                    }
                }
            }
        };
    until_dominant(&mut ps, 0, 2, "alice");
    let hushed = ps[1].payloads_from(3333).len();
    // Three silent packets at the start, then one a second as a keepalive
    // (the wait above is at most 8 s): not the 50 a second carol sent.
    assert!(
        hushed <= 3 + 8,
        "carol's silence reached bob: {hushed} packets"
    );
    let event = until_dominant(&mut ps, 2, 0, "carol");
    assert_eq!(event["previousSpeakers"], serde_json::json!(["alice"]));
    assert!(
        ps[1]
            .payloads_from(3333)
            .iter()
            .any(|p| p.starts_with(b"talk:")),
        "carol's speech arrives"
    );
}
