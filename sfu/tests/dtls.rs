//! The client's DTLS certificate must be the one its answer names, by any of
//! the hashes RFC 8122 lists (clients and gateways that name it by SHA-384 or
//! SHA-512 only are met too).

#[allow(dead_code)]
mod participant;

use std::time::{Duration, Instant};

use participant::Participant;
use participant::setup::{bridge, connect_all, join, poll_all};
use str0m::media::MediaKind;

/// Joins as `join` does, with the answer naming the certificate by `hash`
/// (of another certificate than its own when `impostor`).
fn join_naming(
    bridge: &sfu::bridge::Bridge,
    name: &str,
    audio: u32,
    hash: &str,
    impostor: bool,
) -> Participant {
    let local = bridge.create_endpoint("room", name).unwrap();
    let mut p = Participant::new(name, &local);
    p.send_streams(audio, &[]);
    let other = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .unwrap();
    let remote = p.remote_named(hash, impostor.then_some(&other.certificate[..]));
    let sources = sfu::api::Sources {
        audio: vec![audio],
        ..Default::default()
    };
    bridge
        .update_endpoint("room", name, Some(remote), Some(sources))
        .unwrap();
    p
}

fn heard(p: &Participant, ssrc: u32) -> usize {
    p.payloads_from(ssrc).len()
}

#[test]
fn a_certificate_named_by_sha_384_or_sha_512_connects_and_is_heard() {
    let bridge = bridge();
    let mut ps = vec![
        join_naming(&bridge, "alice", 1111, "sha-512", false),
        join_naming(&bridge, "carol", 3333, "sha-384", false),
        join(&bridge, "room", "bob", 2222, &[]),
    ];
    ps[2].expect(1111, MediaKind::Audio);
    ps[2].expect(3333, MediaKind::Audio);
    connect_all(&mut ps);
    for i in 0..20u32 {
        ps[0].send_audio(1111, i * 960, -30, vec![1; 40]);
        ps[1].send_audio(3333, i * 960, -30, vec![3; 40]);
        poll_all(&mut ps, 5);
    }
    poll_all(&mut ps, 50);
    assert!(
        heard(&ps[2], 1111) >= 15,
        "alice (sha-512) heard {} times",
        heard(&ps[2], 1111)
    );
    assert!(
        heard(&ps[2], 3333) >= 15,
        "carol (sha-384) heard {} times",
        heard(&ps[2], 3333)
    );
    assert_eq!(bridge.stats().unwrap().totals.dtls_failures, 0);
}

#[test]
fn a_certificate_other_than_the_named_one_is_refused_and_counted() {
    let bridge = bridge();
    for (i, hash) in ["sha-256", "sha-512"].into_iter().enumerate() {
        let name = format!("mallory-{hash}");
        let mut ps = vec![
            join_naming(&bridge, &name, 6666 + i as u32, hash, true),
            join(
                &bridge,
                "room",
                &format!("bob-{hash}"),
                2222 + i as u32,
                &[],
            ),
        ];
        ps[1].expect(6666 + i as u32, MediaKind::Audio);
        // The bridge sees the certificate in the client's second flight and refuses it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while bridge.stats().unwrap().totals.dtls_failures < i as u64 + 1 {
            assert!(
                Instant::now() < deadline,
                "{hash}: the impostor's DTLS was never refused"
            );
            poll_all(&mut ps, 1);
        }
        // What would have completed its handshake in one round trip never comes.
        for _ in 0..20 {
            ps[0].send_audio(6666 + i as u32, 0, -30, vec![6; 40]);
            poll_all(&mut ps, 5);
        }
        assert!(!ps[0].connected, "{hash}: the impostor's DTLS completed");
        assert!(ps[1].connected, "{hash}: bob is connected");
        assert_eq!(
            heard(&ps[1], 6666 + i as u32),
            0,
            "{hash}: the impostor was heard"
        );
    }
}
