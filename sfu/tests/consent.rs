//! Consent freshness (RFC 7675), protocol §6.1: the bridge keeps checking that
//! each receiver still wants its media and stops sending to one that no
//! longer answers, while the rest of the conference goes on.

#[allow(dead_code)]
mod participant;

use std::time::{Duration, Instant};

use participant::setup::{bridge, connect_all, join};
use str0m::media::MediaKind;

/// RFC 7675 allows 30 s without a consent answer; then sending must stop.
const CONSENT: Duration = Duration::from_secs(30);

#[test]
fn a_receiver_that_stops_answering_is_sent_no_more_media() {
    let bridge = bridge();
    let mut ps = vec![
        join(&bridge, "room", "alice", 1111, &[]),
        join(&bridge, "room", "bob", 2222, &[]),
        join(&bridge, "room", "carol", 3333, &[]),
    ];
    for p in ps.iter_mut() {
        for s in [1111, 2222, 3333] {
            p.expect(s, MediaKind::Audio);
        }
    }
    connect_all(&mut ps);
    let carol = ps.pop().unwrap();

    // Carol's browser vanishes: her address takes datagrams, nobody answers.
    let gone = Instant::now();
    let mut last_media = gone;
    let mut n = 0u32;
    while gone.elapsed() < CONSENT + Duration::from_secs(15) {
        n += 1;
        for (p, ssrc) in ps.iter_mut().zip([1111u32, 2222]) {
            p.send_audio(ssrc, n * 960, -30, format!("{ssrc}:{n}").into_bytes());
            p.poll(Duration::from_millis(10));
        }
        if carol.discard_arrivals() > 0 {
            last_media = Instant::now();
        }
        // Stopped long enough to be sure, and alice and bob still talk.
        if last_media.elapsed() > Duration::from_secs(3) && gone.elapsed() > Duration::from_secs(5)
        {
            break;
        }
    }
    let stopped_after = last_media - gone;
    println!("media to the vanished receiver stopped after {stopped_after:?}");
    assert!(
        last_media.elapsed() > Duration::from_secs(3),
        "the bridge still sends to a receiver that stopped answering {:?} ago",
        gone.elapsed()
    );
    assert!(
        stopped_after <= CONSENT,
        "sending stopped only after {stopped_after:?}"
    );

    // The others never noticed.
    let before = ps[1].payloads_from(1111).len();
    for i in 0..20u32 {
        ps[0].send_audio(1111, (n + i) * 960, -30, vec![1; 40]);
        ps[0].poll(Duration::from_millis(5));
        ps[1].poll(Duration::from_millis(5));
    }
    assert!(
        ps[1].payloads_from(1111).len() >= before + 15,
        "bob still hears alice"
    );
    drop(carol);
}
