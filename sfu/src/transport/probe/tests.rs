use std::time::SystemTime;

use super::*;
use crate::dtls::SrtpKeys;
use crate::rtp::Packet;
use crate::simulcast::Rewrite;
use crate::srtp::{Profile, Session};

const VIDEO_SSRC: u32 = 0x1111;
const RTX_SSRC: u32 = 0x2222;
const PROFILE: Profile = Profile::AeadAes128Gcm;

/// The bridge's transport to a receiver, and the receiver's SRTP to open what it sends.
fn transport(now: Instant) -> (Transport, Session) {
    let material: Vec<u8> = (0..2 * (PROFILE.key_len() + PROFILE.salt_len()))
        .map(|i| i as u8)
        .collect();
    let keys = SrtpKeys {
        material: material.clone(),
        profile: PROFILE,
        dtls_client: false,
    };
    let to = "127.0.0.1:5000".parse().unwrap();
    let transport = Transport::new(now, &keys, to, (now, SystemTime::now())).unwrap();
    (
        transport,
        Session::from_dtls(&material, PROFILE, true).unwrap(),
    )
}

/// A VP8 packet of `len` bytes with room for the transport-wide number.
fn video(seq: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0x90, crate::VP8_PT];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&9000u32.to_be_bytes());
    p.extend_from_slice(&VIDEO_SSRC.to_be_bytes());
    p.extend_from_slice(&[0xBE, 0xDE, 0, 1, (EXT_TRANSPORT_CC << 4) | 1, 0, 0, 0]);
    p.extend_from_slice(&[0x90, 0x80, 0x80, 0x01]);
    p.resize(len, 0x5A);
    p
}

/// Forwards one video packet with its RTX pairing, as the router does.
fn send_video(t: &mut Transport, now: Instant, out: &mut Transmits, seq: u16) {
    let bytes = video(seq, 1000);
    let packet = Packet::parse(&bytes).unwrap();
    let rewrite = Rewrite {
        ssrc: VIDEO_SSRC,
        seq,
        timestamp: 9000,
        picture_id: None,
        tl0picidx: None,
    };
    t.send_rtp(
        now,
        out,
        &bytes,
        &packet,
        Some(&rewrite),
        Some(RTX_SSRC),
        now,
    );
}

/// One padding packet as the receiver opens it.
#[derive(Debug)]
struct Padding {
    at: Instant,
    seq: u16,
    transport_seq: u16,
    size: usize,
}

/// Runs the transport's timers for `span`, collecting what it sends: the
/// padding packets, and how many others.
fn run(
    t: &mut Transport,
    receiver: &mut Session,
    from: Instant,
    span: Duration,
    out: &mut Transmits,
) -> (Vec<Padding>, usize) {
    let (mut padding, mut others) = (Vec::new(), 0);
    let mut now = from;
    while now < from + span {
        t.handle_timeout(now, out);
        while let Some((_, d)) = out.pop() {
            let mut d = d.to_vec();
            if d[1] >= 192 && d[1] < 224 {
                others += 1;
                continue;
            }
            let size = d.len();
            let n = receiver.inbound.unprotect_rtp(&mut d).unwrap();
            let p = Packet::parse(&d[..n]).unwrap();
            if p.header.ssrc != RTX_SSRC {
                others += 1;
                continue;
            }
            assert_eq!(d[1] & 0x7f, crate::VP8_RTX_PT);
            assert!(p.payload(&d[..n]).is_empty(), "padding carries no payload");
            let ts = p.extension(&d[..n], EXT_TRANSPORT_CC).unwrap();
            padding.push(Padding {
                at: now,
                seq: p.header.seq,
                transport_seq: u16::from_be_bytes([ts[0], ts[1]]),
                size,
            });
        }
        now = t.poll_timeout().max(now + Duration::from_micros(1));
    }
    (padding, others)
}

#[test]
fn a_receiver_wanting_more_than_its_estimate_is_probed_with_paced_padding_on_its_rtx_stream() {
    let start = Instant::now();
    let (mut t, mut receiver) = transport(start);
    let mut out = Transmits::default();
    send_video(&mut t, start, &mut out, 100);
    while out.pop().is_some() {}
    let initial = t.estimate();
    // Twice the estimate is wanted.
    t.set_desired_bitrate(start, 2 * initial);
    let (padding, _) = run(
        &mut t,
        &mut receiver,
        start,
        Duration::from_millis(200),
        &mut out,
    );

    assert!(padding.len() >= 5, "a cluster of padding: {padding:?}");
    for pair in padding.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "RTX numbers run on"
        );
        assert_eq!(pair[1].transport_seq, pair[0].transport_seq.wrapping_add(1));
    }
    // The media packet had transport-wide number 0.
    assert_eq!(padding[0].transport_seq, 1);
    // Paced over milliseconds at about the probe's rate, not sent at once;
    // the rate lies between the estimate and what probing may ask.
    let span = padding.last().unwrap().at - padding[0].at;
    assert!(span >= Duration::from_millis(5), "spread over {span:?}");
    let bytes: usize = padding[..padding.len() - 1].iter().map(|p| p.size).sum();
    let rate = bytes as f64 * 8.0 / span.as_secs_f64();
    assert!(
        rate > initial as f64 * 1.1 && rate < 2.0 * 1.2 * 1.3 * initial as f64,
        "probed at {rate:.0} bit/s from an estimate of {initial}"
    );

    // The receiver got the burst as it was sent: the estimate jumps up.
    let feedback: Vec<(u16, Option<i64>)> = std::iter::once((0, Some(20_000)))
        .chain(padding.iter().map(|p| {
            let us = (p.at - start).as_micros() as i64 + 20_000;
            (p.transport_seq, Some(us))
        }))
        .collect();
    t.bwe.on_feedback(
        padding.last().unwrap().at + Duration::from_millis(30),
        feedback,
    );
    assert!(
        t.estimate() > initial * 3 / 2,
        "estimate {} after the probe, from {initial}",
        t.estimate()
    );
}

#[test]
fn no_padding_when_the_estimate_covers_what_is_wanted_or_there_is_no_rtx_stream() {
    let start = Instant::now();
    let (mut t, mut receiver) = transport(start);
    let mut out = Transmits::default();
    // Wanting more, but nothing with RTX is sent yet: nothing to pad on.
    t.set_desired_bitrate(start, 10_000_000);
    let (padding, _) = run(
        &mut t,
        &mut receiver,
        start,
        Duration::from_millis(100),
        &mut out,
    );
    assert!(padding.is_empty());

    let (mut t, mut receiver) = transport(start);
    send_video(&mut t, start, &mut out, 7);
    while out.pop().is_some() {}
    t.set_desired_bitrate(start, t.estimate() / 2);
    let (padding, _) = run(
        &mut t,
        &mut receiver,
        start,
        Duration::from_secs(3),
        &mut out,
    );
    assert!(padding.is_empty(), "{padding:?}");
}

#[test]
fn a_receiver_is_not_probed_before_its_wishes_are_known() {
    let start = Instant::now();
    let (mut t, mut receiver) = transport(start);
    let mut out = Transmits::default();
    send_video(&mut t, start, &mut out, 7);
    while out.pop().is_some() {}
    let (padding, _) = run(
        &mut t,
        &mut receiver,
        start,
        Duration::from_secs(2),
        &mut out,
    );
    assert!(padding.is_empty(), "{padding:?}");
}
