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

/// A transport to a receiver that has been sent one video packet with its
/// RTX pairing (what probing pads on), and the receiver's SRTP.
struct Link {
    t: Transport,
    receiver: Session,
    out: Transmits,
    start: Instant,
}

impl Link {
    fn sending_video(start: Instant) -> Link {
        let (mut t, receiver) = transport(start);
        let mut out = Transmits::default();
        send_video(&mut t, start, &mut out, 100);
        while out.pop().is_some() {}
        Link {
            t,
            receiver,
            out,
            start,
        }
    }

    /// Runs the transport's timers for `span` from the start; the padding
    /// packets it sends, as the receiver opens them.
    fn padding_within(&mut self, span: Duration) -> Vec<Padding> {
        let mut padding = Vec::new();
        let mut now = self.start;
        while now < self.start + span {
            self.t.handle_timeout(now, &mut self.out);
            while let Some((_, d)) = self.out.pop() {
                let mut d = d.to_vec();
                if (192..224).contains(&d[1]) {
                    continue; // RTCP
                }
                let size = d.len();
                let n = self.receiver.inbound.unprotect_rtp(&mut d).unwrap();
                let p = Packet::parse(&d[..n]).unwrap();
                if p.header.ssrc != RTX_SSRC {
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
            now = self.t.poll_timeout().max(now + Duration::from_micros(1));
        }
        padding
    }
}

#[test]
fn a_receiver_wanting_more_than_its_estimate_is_probed_with_paced_padding_on_its_rtx_stream() {
    let start = Instant::now();
    let mut link = Link::sending_video(start);
    let initial = link.t.estimate();
    // Twice the estimate is wanted.
    link.t.set_desired_bitrate(start, 2 * initial);
    let padding = link.padding_within(Duration::from_millis(200));

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
    let after = padding.last().unwrap().at + Duration::from_millis(30);
    link.t.bwe.on_feedback(after, feedback);
    assert!(
        link.t.estimate() > initial * 3 / 2,
        "estimate {} after the probe, from {initial}",
        link.t.estimate()
    );
}

#[test]
fn no_padding_without_an_rtx_stream_without_a_wish_or_when_the_estimate_covers_it() {
    let start = Instant::now();
    // Wanting more, but nothing with RTX is sent yet: nothing to pad on.
    let (t, receiver) = transport(start);
    let mut link = Link {
        t,
        receiver,
        out: Transmits::default(),
        start,
    };
    link.t.set_desired_bitrate(start, 10_000_000);
    assert!(link.padding_within(Duration::from_millis(100)).is_empty());

    // Sending video, but the receiver's wish is not known yet.
    let mut link = Link::sending_video(start);
    let padding = link.padding_within(Duration::from_secs(2));
    assert!(padding.is_empty(), "before any wish: {padding:?}");

    // Wishing for less than the estimate.
    let mut link = Link::sending_video(start);
    link.t.set_desired_bitrate(start, link.t.estimate() / 2);
    let padding = link.padding_within(Duration::from_secs(3));
    assert!(padding.is_empty(), "below the estimate: {padding:?}");
}
