//! Interop through the bridge with a second, independent WebRTC stack:
//! webrtc-rs (`rtc`) participants, driven by SDP as a browser is, exchange
//! audio over real UDP on loopback, with each other and with a str0m one.

// Each test binary uses only part of the shared participant helpers.
#[allow(dead_code)]
mod participant;
mod webrtc_rs;

use std::time::{Duration, Instant};

use participant::Participant;
use sfu::api::Sources;
use sfu::bridge::{Bridge, BridgeConfig};
use str0m::media::MediaKind;
use webrtc_rs::WebrtcRsParticipant;

const PACKETS: u32 = 50;
const ENOUGH: usize = 45;

fn bridge() -> Bridge {
    Bridge::start(BridgeConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .unwrap()
}

fn audio_only(ssrc: u32) -> Sources {
    Sources {
        audio: vec![ssrc],
        ..Default::default()
    }
}

/// Allocates an endpoint, answers the offer built from it and announces the
/// participant's audio, as focus and client do with Jingle.
fn join_webrtc_rs(
    bridge: &Bridge,
    conference: &str,
    name: &str,
    audio: u32,
    remote_audio: &[u32],
) -> WebrtcRsParticipant {
    let local = bridge.create_endpoint(conference, name).unwrap();
    let p = WebrtcRsParticipant::new(name, &local, audio, remote_audio);
    bridge
        .update_endpoint(conference, name, Some(p.remote()), Some(audio_only(audio)))
        .unwrap();
    p
}

fn join_str0m(
    bridge: &Bridge,
    conference: &str,
    name: &str,
    audio: u32,
    remote_audio: &[u32],
) -> Participant {
    let local = bridge.create_endpoint(conference, name).unwrap();
    let mut p = Participant::new(name, &local);
    p.send_streams(audio, &[]);
    for s in remote_audio {
        p.expect(*s, MediaKind::Audio);
    }
    bridge
        .update_endpoint(conference, name, Some(p.remote()), Some(audio_only(audio)))
        .unwrap();
    p
}

/// Either stack, polled the same way (boxed: both are large).
enum Peer {
    Str0m(Box<Participant>),
    WebrtcRs(Box<WebrtcRsParticipant>),
}

impl Peer {
    fn name(&self) -> &str {
        match self {
            Peer::Str0m(p) => &p.name,
            Peer::WebrtcRs(p) => &p.name,
        }
    }

    fn connected(&self) -> bool {
        match self {
            Peer::Str0m(p) => p.connected,
            Peer::WebrtcRs(p) => p.connected,
        }
    }

    fn poll(&mut self) {
        match self {
            Peer::Str0m(p) => p.poll(Duration::from_millis(1)),
            Peer::WebrtcRs(p) => p.poll(Duration::from_millis(1)),
        }
    }

    fn send_audio(&mut self, ssrc: u32, timestamp: u32, payload: Vec<u8>) {
        match self {
            Peer::Str0m(p) => p.send_audio(ssrc, timestamp, -30, payload),
            Peer::WebrtcRs(p) => p.send_audio(timestamp, 30, payload),
        }
    }

    fn payloads_from(&self, ssrc: u32) -> Vec<Vec<u8>> {
        match self {
            Peer::Str0m(p) => p.payloads_from(ssrc),
            Peer::WebrtcRs(p) => p.payloads_from(ssrc),
        }
    }
}

fn poll_all(ps: &mut [Peer], rounds: usize) {
    for _ in 0..rounds {
        for p in ps.iter_mut() {
            p.poll();
        }
    }
}

fn connect_all(ps: &mut [Peer]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ps.iter().any(|p| !p.connected()) {
        assert!(
            Instant::now() < deadline,
            "ICE+DTLS did not complete for {:?}",
            ps.iter()
                .filter(|p| !p.connected())
                .map(|p| p.name())
                .collect::<Vec<_>>()
        );
        poll_all(ps, 1);
    }
}

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
    let mut ps = vec![
        Peer::WebrtcRs(Box::new(join_webrtc_rs(
            &bridge,
            "room",
            "alice",
            1111,
            &[2222],
        ))),
        Peer::WebrtcRs(Box::new(join_webrtc_rs(
            &bridge,
            "room",
            "bob",
            2222,
            &[1111],
        ))),
    ];
    exchange_audio(&mut ps, &[1111, 2222]);
    let stats = bridge.stats().unwrap().totals;
    assert!(stats.packets_forwarded >= 2 * ENOUGH as u64, "{stats:?}");
}

#[test]
fn str0m_and_webrtc_rs_participants_exchange_audio() {
    let bridge = bridge();
    let mut ps = vec![
        Peer::Str0m(Box::new(join_str0m(
            &bridge,
            "room",
            "alice",
            1111,
            &[2222],
        ))),
        Peer::WebrtcRs(Box::new(join_webrtc_rs(
            &bridge,
            "room",
            "bob",
            2222,
            &[1111],
        ))),
    ];
    exchange_audio(&mut ps, &[1111, 2222]);
}
