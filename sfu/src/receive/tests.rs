//! Against webrtc-rs's interceptors (receiver reports, NACK generation, TWCC
//! receive side) on the same scripted input, each difference explained; and
//! hostile input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    AttributedPacket, Interceptor, NackGeneratorBuilder, Packet, RTCPFeedback, RTPHeaderExtension,
    ReceiverReportBuilder, Registry, Slot, StreamInfo, TaggedPacket, TwccReceiverBuilder,
};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;

use super::*;

const SSRC: u32 = 0x5eed_0001;
const TWCC_EXT_ID: u8 = 5;

fn ms(t: Instant, ms: u64) -> Instant {
    t + Duration::from_millis(ms)
}

fn rtp(now: Instant, seq: u16, timestamp: u32, twcc: Option<u16>) -> TaggedPacket {
    let mut header = rtc::rtp::header::Header {
        ssrc: SSRC,
        sequence_number: seq,
        timestamp,
        ..Default::default()
    };
    if let Some(twcc) = twcc {
        header.extension = true;
        header.extension_profile = 0xbede;
        header
            .set_extension(
                TWCC_EXT_ID,
                bytes::Bytes::copy_from_slice(&twcc.to_be_bytes()),
            )
            .unwrap();
    }
    tagged(
        now,
        Packet::Rtp(rtc::rtp::Packet {
            header,
            ..Default::default()
        }),
    )
}

fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
    TaggedPacket {
        now,
        transport: TransportContext::default(),
        message: AttributedPacket::new(packet),
    }
}

fn stream_info(clock_rate: u32) -> StreamInfo {
    StreamInfo {
        ssrc: SSRC,
        clock_rate,
        mime_type: "video/VP8".into(),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".into(),
            parameter: String::new(),
        }],
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01".into(),
            id: u16::from(TWCC_EXT_ID),
        }],
        ..Default::default()
    }
}

/// Feeds a packet through an interceptor chain, dropping what passes on.
fn read(chain: &mut impl Interceptor, packet: TaggedPacket) {
    chain.handle_read(packet).unwrap();
    while chain.poll_read().is_some() {}
}

/// The RTCP packets of type `T` a chain writes after a timeout at `now`.
fn written<T: Clone + 'static>(chain: &mut impl Interceptor, now: Instant) -> Vec<T> {
    chain.handle_timeout(now).unwrap();
    let mut out = Vec::new();
    while let Some(packet) = chain.poll_write() {
        if let Packet::Rtcp(packets) = packet.message.packet {
            out.extend(
                packets
                    .iter()
                    .filter_map(|p| p.as_any().downcast_ref::<T>().cloned()),
            );
        }
    }
    out
}

/// A video stream: 20 ms apart (1800 units at 90 kHz), arriving 0-7 ms late
/// (whole milliseconds, so arrival spacing is exact in RTP units for both).
fn arrival_ms(i: u64) -> u64 {
    20 * i + (i * 7 + i / 3) % 8
}

/// Same stream, same reports: ours and webrtc-rs's agree on every field,
/// jitter within 1 (theirs is a float truncated, ours the RFC's integer
/// form, which rounds each step).
///
/// Kept out of the script: differences by design, checked in the next test.
#[test]
fn report_blocks_agree_with_webrtc_rs() {
    let t = Instant::now();
    let mut ours = ReceiveStats::new(SSRC, 90_000);
    let mut theirs = Registry::new()
        .with(
            Slot::ReceiverReport,
            ReceiverReportBuilder::new()
                .with_interval(Duration::from_secs(1))
                .build(),
        )
        .build();
    theirs.bind_remote_stream(&stream_info(90_000));

    // Starts near the wrap; no loss in the first second (see below).
    let first_seq = 65_480u16;
    let lost = [70u64, 71, 90, 140, 141, 142, 143, 200];
    // Pairs swapped in arrival order, within one report interval: the first
    // of each arrives 1 ms after the second.
    let swapped = [(80u64, 81u64), (120, 122), (180, 181)];
    let mut order: Vec<(u64, u64)> = (0..250)
        .filter(|i| !lost.contains(i))
        .map(|i| match swapped.iter().find(|(a, _)| *a == i) {
            Some((_, b)) => (arrival_ms(*b) + 1, i),
            None => (arrival_ms(i), i),
        })
        .collect();
    order.sort();
    let sr_ntp = 0xe8a1_b2c3_d4e5_f607u64;
    let mut reports = 0;
    let mut next_report = ms(t, 1000);
    let mut sr_sent = false;
    for (at, i) in &order {
        let at = ms(t, *at);
        if at >= next_report {
            let block = ours.poll_report_block(next_report).unwrap();
            let report = written::<ReceiverReport>(&mut theirs, next_report);
            assert_eq!(report.len(), 1);
            compare(&block, &report[0].reports[0], reports);
            reports += 1;
            next_report += Duration::from_secs(1);
        }
        if !sr_sent && at >= ms(t, 2300) {
            ours.handle_sender_report(ms(t, 2300), sr_ntp);
            let sr = SenderReport {
                ssrc: SSRC,
                ntp_time: sr_ntp,
                ..Default::default()
            };
            read(
                &mut theirs,
                tagged(ms(t, 2300), Packet::Rtcp(vec![Box::new(sr)])),
            );
            sr_sent = true;
        }
        let seq = first_seq.wrapping_add(*i as u16);
        let ts = 1_000 + 1800 * *i as u32;
        ours.handle_packet(at, seq, ts);
        read(&mut theirs, rtp(at, seq, ts, None));
    }
    let block = ours.poll_report_block(next_report).unwrap();
    let report = written::<ReceiverReport>(&mut theirs, next_report);
    compare(&block, &report[0].reports[0], reports);
    assert_eq!(reports, 4);
    assert!(block.last_sr != 0 && block.delay_since_last_sr != 0);
    assert!(block.jitter > 0 && block.fraction_lost > 0);
    assert_eq!(block.extended_highest_seq, (65_480 + 249) as u32);
    assert_eq!(block.cumulative_lost, lost.len() as i32);
}

fn compare(ours: &ReportBlock, theirs: &ReceptionReport, n: usize) {
    assert_eq!(ours.ssrc, theirs.ssrc, "report {n}");
    assert_eq!(
        ours.extended_highest_seq, theirs.last_sequence_number,
        "report {n}"
    );
    assert_eq!(ours.fraction_lost, theirs.fraction_lost, "report {n}");
    assert_eq!(
        i64::from(ours.cumulative_lost),
        i64::from(theirs.total_lost),
        "report {n}"
    );
    assert!(
        ours.jitter.abs_diff(theirs.jitter) <= 1,
        "report {n}: jitter {} against {}",
        ours.jitter,
        theirs.jitter
    );
    assert_eq!(ours.last_sr, theirs.last_sender_report, "report {n}");
    assert_eq!(ours.delay_since_last_sr, theirs.delay, "report {n}");
}

/// Where RFC 3550 (ours) and webrtc-rs (pion's port) part ways, on purpose.
#[test]
fn report_blocks_differ_from_webrtc_rs_where_the_rfc_says_so() {
    let t = Instant::now();
    let run = |seqs: &[u16]| {
        let mut ours = ReceiveStats::new(SSRC, 90_000);
        let mut theirs = Registry::new()
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .build();
        theirs.bind_remote_stream(&stream_info(90_000));
        let mut blocks = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            if seq == u16::MAX {
                let now = ms(t, 1000 * (blocks.len() as u64 + 1));
                let theirs = written::<ReceiverReport>(&mut theirs, now);
                blocks.push((
                    ours.poll_report_block(now).unwrap(),
                    theirs[0].reports[0].clone(),
                ));
                continue;
            }
            ours.handle_packet(ms(t, i as u64), seq, 0);
            read(&mut theirs, rtp(ms(t, i as u64), seq, 0, None));
        }
        blocks
    };
    const REPORT: u16 = u16::MAX;

    // Probation: the first packet is not counted, so one loss among the first
    // four is 1/3 for us (expected 2..=4) and 1/4 for them (1..=4).
    let b = run(&[1, 2, 4, REPORT]);
    assert_eq!((b[0].0.fraction_lost, b[0].1.fraction_lost), (85, 64));
    assert_eq!((b[0].0.cumulative_lost, b[0].1.total_lost), (1, 1));

    // A packet counted lost in one report that arrives before the next: the
    // RFC takes it back (expected minus received), they keep it.
    let b = run(&[1, 2, 3, 5, REPORT, 4, 6, REPORT]);
    assert_eq!((b[0].0.cumulative_lost, b[0].1.total_lost), (1, 1));
    assert_eq!((b[1].0.cumulative_lost, b[1].1.total_lost), (0, 1));

    // Duplicates count as received in the RFC (the loss can go negative);
    // they ignore them.
    let b = run(&[1, 2, 3, 3, 3, 4, REPORT]);
    assert_eq!((b[0].0.cumulative_lost, b[0].1.total_lost), (-2, 0));

    // A sender restart: we follow it after two packets and count afresh;
    // they take the jump as loss (about 30000: their 8192-packet bitmap
    // aliases over so long a gap).
    let b = run(&[1, 2, 3, 30_000, 30_001, 30_002, REPORT]);
    assert_eq!(b[0].0.extended_highest_seq, 30_002);
    assert_eq!(b[0].0.cumulative_lost, 0);
    assert!(b[0].1.total_lost > 29_000, "{}", b[0].1.total_lost);
}

/// The NACKs webrtc-rs's generator sends, by sequence number: how many times each.
fn their_nacks(script: &[(u64, u16)], end_ms: u64, t: Instant) -> BTreeMap<u16, usize> {
    let mut theirs = Registry::new()
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_size(512)
                .with_interval(Duration::from_millis(100))
                .with_max_nacks_per_packet(MAX_NACKS.into())
                .build(),
        )
        .build();
    theirs.bind_remote_stream(&stream_info(90_000));
    let mut counts = BTreeMap::new();
    let mut script = script.iter().peekable();
    for now_ms in 0..=end_ms {
        while let Some((_, seq)) = script.next_if(|&&(at, _)| at == now_ms) {
            read(&mut theirs, rtp(ms(t, now_ms), *seq, 0, None));
        }
        if theirs.poll_timeout() == Some(ms(t, now_ms)) {
            for nack in written::<TransportLayerNack>(&mut theirs, ms(t, now_ms)) {
                for pair in nack.nacks {
                    for seq in pair.packet_list() {
                        *counts.entry(seq).or_default() += 1;
                    }
                }
            }
        }
    }
    counts
}

fn our_nacks(script: &[(u64, u16)], end_ms: u64, t: Instant) -> BTreeMap<u16, usize> {
    let mut ours = NackGenerator::new();
    let mut counts = BTreeMap::new();
    let mut script = script.iter().peekable();
    let mut out = [0u16; MAX_MISSING];
    for now_ms in 0..=end_ms {
        let now = ms(t, now_ms);
        while let Some((_, seq)) = script.next_if(|&&(at, _)| at == now_ms) {
            ours.handle_packet(now, *seq);
        }
        if ours.poll_timeout().is_some_and(|due| due <= now) {
            let n = ours.poll_nacks(now, &mut out);
            for seq in &out[..n] {
                *counts.entry(*seq).or_default() += 1;
            }
        }
    }
    counts
}

/// Same losses: both ask for the same numbers, ten times each for those that
/// never come; a reordered packet neither; a late one fewer times from
/// them, who ask only at their 100 ms tick, than from us (10 ms after the
/// gap, then every RTT); a gap too large for our list, only they ask for.
#[test]
fn nacks_agree_with_webrtc_rs() {
    let t = Instant::now();
    // A packet every 5 ms (at 5i + 2 ms) from 65500, across the wrap.
    let seq_of = |i: u64| 65_500u16.wrapping_add(i as u16);
    let (reordered, late) = (seq_of(20), seq_of(30));
    let never = [seq_of(10), seq_of(11), seq_of(40), seq_of(66)];
    let mut script: Vec<(u64, u16)> = (0..100)
        .filter(|&i| ![10, 11, 20, 30, 40, 66].contains(&i))
        .map(|i| (5 * i + 2, seq_of(i)))
        .collect();
    // The reordered one 1 ms after its successor; the late one 150 ms late.
    script.push((5 * 21 + 3, reordered));
    script.push((5 * 30 + 2 + 150, late));
    script.sort();
    // Later, once nothing else is asked for, a gap of 300 numbers.
    let next = seq_of(100);
    script.push((1_600, next));
    script.push((1_601, next + 301));
    script.push((1_602, next + 302));
    let gap = next + 1..next + 301;
    let end = 3_000;

    let ours = our_nacks(&script, end, t);
    let theirs = their_nacks(&script, end, t);
    for seq in never {
        assert_eq!(ours.get(&seq), Some(&10), "ours {seq}");
        assert_eq!(theirs.get(&seq), Some(&10), "theirs {seq}");
    }
    assert_eq!(ours.get(&reordered), None);
    assert_eq!(theirs.get(&reordered), None);
    // Its gap is seen at 157 ms: we ask at 167 and 267, they at their 202
    // tick (every 100 ms from the first packet, at 2 ms); it comes at 302.
    assert_eq!(ours.get(&late), Some(&2));
    assert_eq!(theirs.get(&late), Some(&1));
    // The 300-number gap: a reset for us, 300 NACKed numbers for them.
    assert!(ours.keys().all(|s| !gap.contains(s)));
    assert_eq!(theirs.keys().filter(|s| gap.contains(*s)).count(), 300);
    let asked = |m: &BTreeMap<u16, usize>| -> Vec<u16> {
        m.keys().copied().filter(|s| !gap.contains(s)).collect()
    };
    assert_eq!(asked(&ours), asked(&theirs));
}

/// Their feedback as plain data: (base, reference, count, [(seq, delta µs)]).
type Feedback = (u16, u32, u8, Vec<(u16, Option<i64>)>);

fn their_feedback(f: &TransportLayerCc) -> Feedback {
    let mut symbols = Vec::new();
    for chunk in &f.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(c) => symbols.extend(std::iter::repeat_n(
                c.packet_status_symbol,
                c.run_length.into(),
            )),
            PacketStatusChunk::StatusVectorChunk(c) => symbols.extend(c.symbol_list.iter()),
        }
    }
    symbols.truncate(f.packet_status_count.into());
    let mut deltas = f.recv_deltas.iter();
    let packets = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let seq = f.base_sequence_number.wrapping_add(i as u16);
            let delta =
                (*s != SymbolTypeTcc::PacketNotReceived).then(|| deltas.next().unwrap().delta);
            (seq, delta)
        })
        .collect();
    (
        f.base_sequence_number,
        f.reference_time,
        f.fb_pkt_count,
        packets,
    )
}

fn our_feedback(f: &TwccFeedback<'_>) -> Feedback {
    let packets = f
        .deltas()
        .map(|(seq, d)| (seq, d.map(|d| i64::from(d) * 250)))
        .collect();
    (f.base_seq, f.reference_time, f.feedback_count, packets)
}

/// Same arrivals, feedback asked for at their 100 ms ticks: the same
/// feedbacks, field for field, late packets reported again the same way.
#[test]
fn twcc_feedback_agrees_with_webrtc_rs() {
    let t = Instant::now();
    let mut theirs = Registry::new()
        .with(
            Slot::TwccReceiver,
            TwccReceiverBuilder::new()
                .with_interval(FEEDBACK_INTERVAL)
                .build(),
        )
        .build();
    theirs.bind_remote_stream(&stream_info(90_000));
    // Their arrival times count from the first packet; so do ours.
    let first_at = ms(t, 3);
    let mut ours = TwccRecorder::new(first_at);

    // 120 packets, one every 4.3 ms, from 65500 across the wrap: the 10th
    // and 90th lost, the 30th reordered by 3, the 60th late by 180 ms (after
    // the feedback that reported it missing).
    let mut arrivals: Vec<(Duration, u16)> = Vec::new();
    for i in 0..120u64 {
        let seq = 65_500u16.wrapping_add(i as u16);
        let mut at = Duration::from_micros(3_000 + 4_300 * i + (i * 37) % 900);
        match i {
            10 | 90 => continue,
            30 => at += Duration::from_micros(3 * 4_300 + 100),
            60 => at += Duration::from_millis(180),
            _ => {}
        }
        arrivals.push((at, seq));
    }
    arrivals.sort();

    let mut compared = 0;
    let mut arrivals = arrivals.into_iter().peekable();
    let mut next_tick = first_at + FEEDBACK_INTERVAL;
    while next_tick < ms(t, 1_000) {
        while let Some((at, seq)) = arrivals.next_if(|(at, _)| t + *at < next_tick) {
            read(&mut theirs, rtp(t + at, 0, 0, Some(seq)));
            ours.handle_packet(t + at, seq);
        }
        let theirs: Vec<Feedback> = written::<TransportLayerCc>(&mut theirs, next_tick)
            .iter()
            .map(their_feedback)
            .collect();
        let mut mine = Vec::new();
        while let Some(f) = ours.poll_feedback(next_tick) {
            mine.push(our_feedback(&f));
        }
        assert_eq!(mine, theirs, "at {:?}", next_tick - t);
        compared += mine.len();
        next_tick += FEEDBACK_INTERVAL;
    }
    assert!(compared >= 6, "{compared}");
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Random sequence numbers and times that jump both ways: nothing panics,
/// nothing grows past its bound, every poll loop ends.
#[test]
fn hostile_input_never_panics_and_stays_bounded() {
    let base = Instant::now() + Duration::from_secs(3600);
    for seed in 1..=8u64 {
        let mut noise = Noise(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut stats = ReceiveStats::new(1, (noise.next() % 200_000) as u32);
        let mut nacks = NackGenerator::new();
        let mut twcc = TwccRecorder::new(base);
        let mut now = base;
        let mut seq = 0u16;
        let mut out = [0u16; 32];
        for _ in 0..20_000 {
            let r = noise.next();
            now = match r % 16 {
                0 => base - Duration::from_millis(r >> 44),
                1 => now + Duration::from_secs(r >> 54),
                _ => now + Duration::from_micros(r >> 52),
            };
            seq = match (r >> 8) % 8 {
                0 => (r >> 16) as u16,
                1 => seq.wrapping_sub((r >> 16) as u16 % 200),
                _ => seq.wrapping_add(1 + (r >> 16) as u16 % 3),
            };
            stats.handle_packet(now, seq, (r >> 32) as u32);
            if r.is_multiple_of(97) {
                stats.handle_sender_report(now, noise.next());
            }
            if r.is_multiple_of(13) {
                stats.poll_report_block(now);
            }
            nacks.handle_packet(now, seq);
            twcc.handle_packet(now, seq ^ (r as u16 & 0x0101));
            if r.is_multiple_of(7) {
                nacks.set_rtt(Some(Duration::from_nanos(noise.next())));
            }
            if (r >> 4).is_multiple_of(5) {
                nacks.poll_nacks(now, &mut out);
                let mut rounds = 0;
                while let Some(f) = twcc.poll_feedback(now) {
                    assert!(usize::from(f.status_count) <= MAX_STATUSES);
                    assert_eq!(f.deltas().count(), usize::from(f.status_count));
                    rounds += 1;
                    assert!(rounds <= 2048);
                }
            }
            assert!(nacks.missing() <= MAX_MISSING);
            let _ = (nacks.poll_timeout(), twcc.poll_timeout());
        }
    }
}
