//! The pieces together: a simulcast sender, the forwarder of one receiver,
//! its NACKs; RTX checked against webrtc-rs's RTP parser; floods.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rtc::rtp::packet::Packet as TheirPacket;
use rtc::shared::marshal::{Marshal, Unmarshal};

use super::*;
use crate::simulcast::{Rewrite, SimulcastForwarder, Verdict};

const MS: Duration = Duration::from_millis(1);
const PT: u8 = 100;
const RTX_PT: u8 = 101;
const LAYERS: [u32; 3] = [1000, 1001, 1002];
const RTX_SSRC: u32 = 2000;

/// A small xorshift generator: tests repeat exactly.
pub(crate) struct Rng(pub u32);

impl Rng {
    pub fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// An RTP packet of exactly `len` bytes (at least 12), its payload made from `seq`.
pub(crate) fn packet(ssrc: u32, seq: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, PT];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((12..len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// A valid RTP packet of any shape: CSRCs, a one-byte extension block,
/// padding, payloads from empty up.
pub(crate) fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let csrcs = rng.next() % 3;
    let extension = rng.next().is_multiple_of(2);
    let padding = rng.next().is_multiple_of(4);
    let mut p = vec![
        0x80 | if padding { 0x20 } else { 0 } | if extension { 0x10 } else { 0 } | csrcs as u8,
        (rng.next() % 128) as u8
            | if rng.next().is_multiple_of(2) {
                0x80
            } else {
                0
            },
    ];
    p.extend((0..10).map(|_| rng.next() as u8));
    for _ in 0..csrcs {
        p.extend_from_slice(&rng.next().to_be_bytes());
    }
    if extension {
        let words = rng.next() % 3;
        p.extend_from_slice(&[0xbe, 0xde, 0, words as u8]);
        // One element (id 3, 2 bytes) and padding, when there is room.
        let mut block = vec![0u8; 4 * words as usize];
        if words > 0 {
            block[..3].copy_from_slice(&[0x31, rng.next() as u8, rng.next() as u8]);
        }
        p.extend(block);
    }
    p.extend((0..rng.next() % 40).map(|_| rng.next() as u8));
    if padding {
        let count = 1 + rng.next() % 8;
        p.extend((1..count).map(|_| 0));
        p.push(count as u8);
    }
    p
}

/// One simulcast encoding, numbering its packets as a browser's encoder does.
struct Encoder {
    layer: u8,
    seq: u16,
    timestamp: u32,
    picture_id: u16,
    tl0: u8,
}

impl Encoder {
    fn new(layer: u8, seq: u16, timestamp: u32, picture_id: u16, tl0: u8) -> Self {
        Encoder {
            layer,
            seq,
            timestamp,
            picture_id,
            tl0,
        }
    }

    /// A frame in `count` packets: header extensions (abs-send-time,
    /// transport-wide number), a CSRC on odd frames, the VP8 descriptor with
    /// a 15-bit picture ID and TL0PICIDX, padding on some packets.
    fn frame(&mut self, key: bool, count: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        for i in 0..count {
            let csrc = self.picture_id % 2 == 1;
            let padded = rng.next().is_multiple_of(5);
            let marker = if i + 1 == count { 0x80 } else { 0 };
            let mut p = vec![
                0x90 | if csrc { 1 } else { 0 } | if padded { 0x20 } else { 0 },
                PT | marker,
            ];
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&self.timestamp.to_be_bytes());
            p.extend_from_slice(&LAYERS[usize::from(self.layer)].to_be_bytes());
            if csrc {
                p.extend_from_slice(&0x0c5c_0001u32.to_be_bytes());
            }
            p.extend_from_slice(&[0xbe, 0xde, 0, 2]);
            p.extend_from_slice(&[0x22, rng.next() as u8, rng.next() as u8, rng.next() as u8]);
            p.extend_from_slice(&[0x51, rng.next() as u8, rng.next() as u8, 0]);
            let start = if i == 0 { 0x10 } else { 0 };
            p.extend_from_slice(&[
                0x80 | start,
                0xc0,
                0x80 | (self.picture_id >> 8) as u8,
                self.picture_id as u8,
                self.tl0,
            ]);
            if i == 0 {
                p.push(if key { 0x10 } else { 0x11 });
            }
            let body = 200 + (rng.next() % 1000) as usize;
            p.extend((0..body).map(|_| rng.next() as u8));
            if padded {
                p.extend_from_slice(&[0, 0, 3]);
            }
            packets.push(p);
            self.seq = self.seq.wrapping_add(1);
        }
        self.timestamp = self.timestamp.wrapping_add(3000);
        self.picture_id = (self.picture_id + 1) % 0x8000;
        self.tl0 = self.tl0.wrapping_add(1);
        packets
    }
}

/// A sender, the bridge's cache of it, and one receiver of its source.
struct Call {
    caches: PacketCaches,
    forwarder: SimulcastForwarder,
    history: SendHistory,
    retransmitter: Retransmitter,
    /// What the receiver was sent, by its numbers.
    sent: BTreeMap<u16, Vec<u8>>,
    /// The first and newest numbers it was sent.
    first: Option<u16>,
    newest: Option<u16>,
}

impl Call {
    fn new(now: Instant, target: u8) -> Self {
        let mut forwarder = SimulcastForwarder::new(LAYERS[0]);
        forwarder.set_target(Some(target));
        Call {
            caches: PacketCaches::new(),
            forwarder,
            history: SendHistory::new(
                now,
                LAYERS[0],
                Some(RtxStream::new(RTX_SSRC, RTX_PT, 65530)),
            ),
            retransmitter: Retransmitter::new(now),
            sent: BTreeMap::new(),
            first: None,
            newest: None,
        }
    }

    /// The bridge receives `p`: caches it and forwards it as the new media
    /// path will (the same `Rewrite::apply` a retransmission uses).
    fn receive(&mut self, now: Instant, p: &[u8]) {
        let layout = crate::rtp::Packet::parse(p).unwrap();
        let layer = LAYERS
            .iter()
            .position(|s| *s == layout.header.ssrc)
            .unwrap() as u8;
        let verdict = self
            .forwarder
            .handle_packet(now, layer, &layout.header, layout.payload(p));
        let Verdict::Forward(rewrite) = verdict else {
            return;
        };
        self.caches.insert(now, p).unwrap();
        let mut out = p.to_vec();
        rewrite.apply(&mut out, &layout);
        self.history
            .record(now, layout.header.ssrc, layout.header.seq, &rewrite);
        self.sent.insert(rewrite.seq, out);
        self.first.get_or_insert(rewrite.seq);
        self.newest = Some(rewrite.seq);
    }

    fn nack(&mut self, now: Instant, seq: u16) -> Result<Vec<u8>, NotResent> {
        let mut buf = [0u8; 1600];
        let len =
            self.retransmitter
                .retransmit(now, seq, &mut self.history, &self.caches, &mut buf)?;
        Ok(buf[..len].to_vec())
    }
}

#[test]
fn a_retransmission_is_the_packet_first_sent_across_a_layer_switch() {
    let t0 = Instant::now();
    let mut rng = Rng(2026);
    let mut call = Call::new(t0, 0);
    // Every packet is NACKed at once in the end: more than the default burst.
    call.retransmitter.set_budget(t0, 10_000_000);
    // Counters far apart and about to wrap, as independent encoders have them.
    let mut l0 = Encoder::new(0, 65520, u32::MAX - 9000, 0x7ffd, 250);
    let mut l1 = Encoder::new(1, 30_000, 77_777, 1234, 9);
    let mut now = t0;
    for f in 0..12 {
        for (i, p) in l0
            .frame(f == 0, 1 + f % 3, &mut rng)
            .into_iter()
            .enumerate()
        {
            // Lost on the way to the bridge: the receiver sees the gap.
            if !(f == 5 && i == 1) {
                call.receive(now, &p);
            }
        }
        for p in l1.frame(false, 2 + f % 2, &mut rng) {
            call.receive(now, &p);
        }
        now += 33 * MS;
    }
    let before_switch = call.sent.len();
    assert_eq!(call.forwarder.current(), Some(0));
    call.forwarder.set_target(Some(1));
    for f in 0..12 {
        for (i, p) in l1.frame(f == 0, 3, &mut rng).into_iter().enumerate() {
            if !(f == 4 && i == 1) {
                call.receive(now, &p);
            }
        }
        for p in l0.frame(false, 2, &mut rng) {
            call.receive(now, &p);
        }
        now += 33 * MS;
    }
    assert_eq!(call.forwarder.current(), Some(1), "switched");
    assert!(call.sent.len() > before_switch + 30);

    let sent = std::mem::take(&mut call.sent);
    let mut rtx_seq = 65530u16;
    for (&seq, first) in &sent {
        let rtx = call.nack(now, seq).unwrap();
        let mut back = rtx.clone();
        let len = rtx::unwrap(&mut back, LAYERS[0], PT).unwrap();
        assert_eq!(&back[..len], &first[..], "number {seq}");
        assert_eq!(
            u16::from_be_bytes([rtx[2], rtx[3]]),
            rtx_seq,
            "RTX numbers run on"
        );
        rtx_seq = rtx_seq.wrapping_add(1);
    }
    // The numbers of the packets lost before the bridge, one on each layer.
    let (first, newest) = (call.first.unwrap(), call.newest.unwrap());
    assert_eq!(first, 65520);
    let mut gaps = 0;
    let mut seq = first;
    while seq != newest {
        if !sent.contains_key(&seq) {
            assert_eq!(call.nack(now, seq), Err(NotResent::NeverSent));
            gaps += 1;
        }
        seq = seq.wrapping_add(1);
    }
    assert_eq!(gaps, 2);
}

/// The RTX packets read the same in webrtc-rs, and what webrtc-rs's NACK
/// responder would send unwraps to the packet it wrapped.
#[test]
fn rtx_packets_agree_with_webrtc_rs() {
    let t0 = Instant::now();
    let mut rng = Rng(5);
    let mut call = Call::new(t0, 0);
    let mut l0 = Encoder::new(0, 100, 5000, 10, 1);
    for f in 0..10 {
        for p in l0.frame(f == 0, 3, &mut rng) {
            call.receive(t0, &p);
        }
    }
    let sent = std::mem::take(&mut call.sent);
    let mut expected_rtx_seq = 65530u16;
    for (&seq, first) in &sent {
        let rtx = call.nack(t0 + 20 * MS, seq).unwrap();
        let theirs = TheirPacket::unmarshal(&mut &rtx[..]).unwrap();
        let original = TheirPacket::unmarshal(&mut &first[..]).unwrap();
        let (h, o) = (&theirs.header, &original.header);
        assert_eq!(h.ssrc, RTX_SSRC);
        assert_eq!(h.payload_type, RTX_PT);
        assert_eq!(h.sequence_number, expected_rtx_seq);
        expected_rtx_seq = expected_rtx_seq.wrapping_add(1);
        assert_eq!(h.timestamp, o.timestamp);
        assert_eq!(h.marker, o.marker);
        assert_eq!(h.csrc, o.csrc);
        assert_eq!(h.extensions, o.extensions);
        assert_eq!(
            &theirs.payload[..2],
            &seq.to_be_bytes(),
            "the original sequence number"
        );
        assert_eq!(&theirs.payload[2..], &original.payload[..]);
        assert_eq!(o.sequence_number, seq);
        assert_eq!(o.ssrc, LAYERS[0]);

        // As webrtc-rs wraps (RFC 4588 §4): OSN, then the payload.
        let mut wrapped = original.clone();
        wrapped.header.ssrc = 0x7777;
        wrapped.header.payload_type = 120;
        wrapped.header.sequence_number = seq ^ 0xffff;
        wrapped.header.padding = false;
        let mut payload = seq.to_be_bytes().to_vec();
        payload.extend_from_slice(&original.payload);
        wrapped.payload = payload.into();
        let mut unpadded = original.clone();
        unpadded.header.padding = false;
        let expected = unpadded.marshal().unwrap();
        let mut buf = wrapped.marshal().unwrap().to_vec();
        let len = rtx::unwrap(&mut buf, LAYERS[0], PT).unwrap();
        assert_eq!(&buf[..len], &expected[..]);
    }
}

#[test]
fn unknown_expired_and_never_sent_numbers_produce_nothing() {
    let t0 = Instant::now();
    let mut rng = Rng(17);
    let mut call = Call::new(t0, 0);
    let mut l0 = Encoder::new(0, 1000, 0, 0, 0);
    let mut l1 = Encoder::new(1, 9000, 0, 0, 0);
    for f in 0..5 {
        let frame = l0.frame(f == 0, 3, &mut rng);
        for (i, p) in frame.iter().enumerate() {
            if !(f == 2 && i == 1) {
                call.receive(t0, p);
            }
        }
        // Cached by nobody: the receiver does not get layer 1.
        for p in l1.frame(f == 0, 2, &mut rng) {
            call.receive(t0, &p);
        }
    }
    let (&first, _) = call.sent.first_key_value().unwrap();
    let lost = first + 7; // frame 2's second packet never reached the bridge
    assert!(!call.sent.contains_key(&lost));
    let soon = t0 + 50 * MS;
    assert_eq!(call.nack(soon, lost), Err(NotResent::NeverSent));
    assert_eq!(
        call.nack(soon, first.wrapping_sub(1)),
        Err(NotResent::NeverSent)
    );
    assert_eq!(call.nack(soon, first + 200), Err(NotResent::NeverSent));
    assert_eq!(
        call.nack(soon, 9000),
        Err(NotResent::NeverSent),
        "a sender's number"
    );
    assert!(call.nack(soon, first).is_ok());
    assert_eq!(call.nack(t0 + MAX_AGE, first + 1), Err(NotResent::Expired));
    call.caches.remove(LAYERS[0]);
    assert_eq!(
        call.nack(soon, first + 2),
        Err(NotResent::Expired),
        "sender gone"
    );
}

#[test]
fn duplicate_nacks_within_the_interval_are_answered_once() {
    let t0 = Instant::now();
    let mut rng = Rng(23);
    let mut call = Call::new(t0, 0);
    let mut l0 = Encoder::new(0, 40, 0, 0, 0);
    for f in 0..4 {
        for p in l0.frame(f == 0, 2, &mut rng) {
            call.receive(t0, &p);
        }
    }
    let t1 = t0 + 40 * MS;
    assert!(call.nack(t1, 41).is_ok());
    // The same number in a burst of NACKs, another number among them.
    assert_eq!(call.nack(t1, 41), Err(NotResent::RecentlyResent));
    assert_eq!(call.nack(t1 + 29 * MS, 41), Err(NotResent::RecentlyResent));
    assert!(call.nack(t1 + 29 * MS, 42).is_ok());
    assert!(
        call.nack(t1 + RESEND_INTERVAL_WITHOUT_RTT, 41).is_ok(),
        "asked again later"
    );

    // Once the RTT is known, the interval follows it.
    call.retransmitter.set_rtt(200 * MS);
    assert_eq!(call.retransmitter.resend_interval(), 180 * MS);
    let t2 = t1 + RESEND_INTERVAL_WITHOUT_RTT;
    assert_eq!(call.nack(t2 + 179 * MS, 41), Err(NotResent::RecentlyResent));
    assert!(call.nack(t2 + 180 * MS, 41).is_ok());
    call.retransmitter.set_rtt(MS);
    assert_eq!(call.retransmitter.resend_interval(), MIN_RESEND_INTERVAL);
}

#[test]
fn the_budget_holds_under_a_nack_flood() {
    let t0 = Instant::now();
    let mut rng = Rng(31);
    let mut call = Call::new(t0, 0);
    let bps = 200_000u64;
    call.retransmitter.set_budget(t0, bps);
    let mut l0 = Encoder::new(0, 0, 0, 0, 0);
    let mut now = t0;
    let mut resent = 0usize;
    let mut refused = 0usize;
    let seconds = 5;
    for f in 0..30 * seconds {
        for p in l0.frame(f == 0, 4, &mut rng) {
            call.receive(now, &p);
        }
        // Every millisecond, a NACK for every number of the last 200.
        let newest = *call.sent.keys().next_back().unwrap();
        for _ in 0..33 {
            for back in 0..200u16 {
                match call.nack(now, newest.wrapping_sub(back)) {
                    Ok(p) => resent += p.len(),
                    Err(NotResent::OverBudget) => refused += 1,
                    Err(_) => {}
                }
            }
            now += MS;
        }
        call.sent.clear();
    }
    let elapsed = now.duration_since(t0).as_secs_f64();
    let burst = budget_of(bps).1 as f64;
    let allowed = bps as f64 / 8.0 * elapsed + burst;
    assert!(resent as f64 <= allowed, "{resent} bytes > {allowed}");
    assert!(
        resent as f64 > 0.9 * (allowed - burst),
        "the budget is used: {resent}"
    );
    assert!(refused > 0);
}

#[test]
fn memory_stays_bounded_under_a_flood_of_numbers_and_ssrcs() {
    let t0 = Instant::now();
    let mut rng = Rng(41);
    let mut caches = PacketCaches::new();
    let mut history = SendHistory::new(t0, 1, Some(RtxStream::new(2, RTX_PT, 0)));
    let mut retransmitter = Retransmitter::new(t0);
    let mut buf = [0u8; 1600];
    let mut now = t0;
    let bound = MAX_STREAMS * MAX_STREAM_MEMORY + 4096;
    let mut p = packet(0, 0, MAX_PACKET_LEN);
    let mut most = 0;
    for i in 0..100_000u32 {
        now += Duration::from_micros(u64::from(rng.next() % 50));
        // Streams the caches fill, and now and then a new SSRC taking one's place.
        let ssrc = if i % 50 == 0 {
            rng.next()
        } else {
            rng.next() % 6
        };
        let seq = rng.next() as u16;
        let len = 12 + (rng.next() as usize % (MAX_PACKET_LEN - 11));
        crate::rtp::set_ssrc(&mut p, ssrc);
        crate::rtp::set_seq(&mut p, seq);
        caches.insert(now, &p[..len]).unwrap();
        let rewrite = Rewrite {
            ssrc: 1,
            seq: rng.next() as u16,
            timestamp: rng.next(),
            picture_id: None,
            tl0picidx: None,
        };
        history.record(now, ssrc, seq, &rewrite);
        let _ = retransmitter.retransmit(now, rng.next() as u16, &mut history, &caches, &mut buf);
        if i % 1000 == 0 {
            assert!(caches.memory() <= bound, "{} > {bound}", caches.memory());
            assert!(history.memory() <= MAX_SLOTS * 20);
            most = most.max(caches.memory());
        }
    }
    assert!(
        most > 3 * MAX_STREAM_BYTES,
        "the flood filled caches: {most}"
    );
}

#[test]
fn nothing_is_allocated_per_packet_once_grown() {
    let t0 = Instant::now();
    let mut rng = Rng(43);
    let mut call = Call::new(t0, 2);
    let mut encoders = [
        Encoder::new(0, 0, 0, 0, 0),
        Encoder::new(1, 20_000, 0, 0, 0),
        Encoder::new(2, 40_000, 0, 0, 0),
    ];
    let mut now = t0;
    let mut newest = None;
    let mut buf = [0u8; 1600];
    // Two seconds to grow, then one more that must not allocate: receive,
    // forward, cache, record, and answer NACKs.
    for f in 0..90 {
        let mut frames = Vec::new();
        for e in &mut encoders {
            let count = 1 + usize::from(e.layer) * 3;
            frames.extend(e.frame(f % 60 == 0, count, &mut rng));
        }
        let layouts: Vec<_> = frames
            .iter()
            .map(|p| crate::rtp::Packet::parse(p).unwrap())
            .collect();
        let mut run = || {
            for (p, layout) in frames.iter().zip(&layouts) {
                let layer = LAYERS
                    .iter()
                    .position(|s| *s == layout.header.ssrc)
                    .unwrap() as u8;
                let payload = layout.payload(p);
                let v = call
                    .forwarder
                    .handle_packet(now, layer, &layout.header, payload);
                if let Verdict::Forward(r) = v {
                    call.caches.insert(now, p).unwrap();
                    call.history
                        .record(now, layout.header.ssrc, layout.header.seq, &r);
                    newest = Some(r.seq);
                }
            }
            for back in (0..40).step_by(3) {
                let Some(newest) = newest else { break };
                let _ = call.retransmitter.retransmit(
                    now,
                    newest.wrapping_sub(back),
                    &mut call.history,
                    &call.caches,
                    &mut buf,
                );
            }
        };
        if f < 60 {
            run();
        } else {
            assert_eq!(allocation_counter::measure(run).count_total, 0, "frame {f}");
        }
        now += 33 * MS;
    }
    assert!(newest.is_some());
}

#[test]
fn hostile_nacks_and_packets_never_panic() {
    let t0 = Instant::now();
    let mut rng = Rng(47);
    let mut caches = PacketCaches::new();
    let mut history = SendHistory::new(t0, 1, None);
    let mut retransmitter = Retransmitter::new(t0);
    let mut now = t0;
    for _ in 0..50_000 {
        now += Duration::from_micros(u64::from(rng.next() % 2000));
        let mut p = random_packet(&mut rng);
        if rng.next().is_multiple_of(4) {
            p.truncate((rng.next() as usize) % (p.len() + 1));
        }
        if let Ok(layout) = crate::rtp::Packet::parse(&p)
            && caches.insert(now, &p).is_ok()
        {
            let rewrite = Rewrite {
                ssrc: 1,
                seq: rng.next() as u16,
                timestamp: rng.next(),
                picture_id: Some(rng.next() as u16 & 0x7fff),
                tl0picidx: Some(rng.next() as u8),
            };
            history.record(now, layout.header.ssrc, layout.header.seq, &rewrite);
        }
        let mut out = vec![0u8; (rng.next() % 1600) as usize];
        if let Ok(len) =
            retransmitter.retransmit(now, rng.next() as u16, &mut history, &caches, &mut out)
        {
            assert!(crate::rtp::Packet::parse(&out[..len]).is_ok());
        }
    }
}

/// The module's example, run here too.
#[test]
fn module_example() {
    let now = Instant::now();
    let received = [
        0x80, 100, 0x01, 0xf4, 0, 0, 0x0b, 0xb8, 0, 0, 0x03, 0xe8, 0x90, 0xc0, 0x80, 0x07, 3, 0x10,
        0xaa,
    ];
    let mut caches = PacketCaches::new();
    caches.insert(now, &received).unwrap();
    let rewrite = Rewrite {
        ssrc: 1000,
        seq: 7,
        timestamp: 90,
        picture_id: Some(1),
        tl0picidx: Some(0),
    };
    let mut sent = received;
    rewrite.apply(&mut sent, &crate::rtp::Packet::parse(&received).unwrap());
    let mut history = SendHistory::new(now, 1000, Some(RtxStream::new(1001, 101, 0)));
    history.record(now, 1000, 500, &rewrite);
    let mut retransmitter = Retransmitter::new(now);
    let mut buf = [0u8; 1500];
    let later = now + Duration::from_millis(40);
    let len = retransmitter
        .retransmit(later, 7, &mut history, &caches, &mut buf)
        .unwrap();
    assert_eq!(&buf[8..12], &1001u32.to_be_bytes());
    let len = rtx::unwrap(&mut buf[..len], 1000, 100).unwrap();
    assert_eq!(&buf[..len], &sent);
    assert_eq!(&sent[2..4], &7u16.to_be_bytes());
    assert_eq!(
        &sent[14..17],
        &[0x80, 0x01, 0],
        "picture ID and TL0PICIDX as sent"
    );
}
