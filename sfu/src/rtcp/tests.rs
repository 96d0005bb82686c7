//! Known answers (captures and examples other implementations test with),
//! round trips, webrtc-rs's RTCP (an implementation this one shares nothing
//! with) in both directions, and hostile input.

use crate::test_support::hex;
use bytes::Bytes;
use rtc::rtcp::goodbye::Goodbye;
use rtc::rtcp::packet::Packet as TheirPacket;
use rtc::rtcp::payload_feedbacks::full_intra_request::{
    FirEntry as TheirFirEntry, FullIntraRequest,
};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport as TheirReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport as TheirSenderReport;
use rtc::rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

use super::*;

/// Transport-wide sequence numbers with their arrivals.
type Arrivals = Vec<(u16, Option<i64>)>;

fn parse_all(datagram: &[u8]) -> Vec<Packet<'_>> {
    Compound::new(datagram)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn only<'a>(datagram: &'a [u8]) -> Packet<'a> {
    let packets = parse_all(datagram);
    assert_eq!(packets.len(), 1, "{packets:?}");
    packets[0]
}

fn twcc_of(packet: Packet<'_>) -> TransportFeedback<'_> {
    match packet {
        Packet::TransportFeedback(fb) => fb,
        other => panic!("not transport-wide feedback: {other:?}"),
    }
}

/// Writes one transport-wide feedback with room to spare; returns it and
/// how many packets it took.
fn write_twcc(
    header: &TransportFeedbackHeader,
    packets: &[(u16, Option<i64>)],
) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; 1 << 18];
    let mut writer = Writer::new(&mut buf);
    let consumed = writer.transport_feedback(header, packets).unwrap();
    let len = writer.len();
    buf.truncate(len);
    (buf, consumed)
}

/// Every sequence number from the base with its arrival: what a feedback
/// for `packets` reports, lost gaps filled in, arrivals on the tick.
fn expected(base: u16, packets: &[(u16, Option<i64>)]) -> Vec<(u16, Option<i64>)> {
    let mut out = Vec::new();
    let mut seq = base;
    for &(s, arrival) in packets {
        while seq != s {
            out.push((seq, None));
            seq = seq.wrapping_add(1);
        }
        out.push((s, arrival.map(|a| twcc::to_ticks(a) * DELTA_TICK_US)));
        seq = seq.wrapping_add(1);
    }
    out
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------- known answers

/// pion/rtcp's `realPacket` (compound_packet_test.go, "an RTCP packet from a
/// packet dump", also in webrtc-rs's rtc-rtcp): a receiver report, an SDES
/// with a Firefox-style CNAME, a BYE, a PLI and a rapid resynchronisation
/// request (RTPFB FMT 5, which we do not model).
const CAPTURED_COMPOUND: &str = "
    81c90007 902f9e2e bc5e9a40 00000000 000046e1 00000111 09f36432 00024a79
    81ca000c 902f9e2e 0126 7b39633030656239322d316166622d396434392d613437642d3931663634656565363966357d 00000000
    81cb0001 902f9e2e
    81ce0002 902f9e2e 902f9e2e
    85cd0002 902f9e2e 902f9e2e";

#[test]
fn a_captured_compound_reads_packet_by_packet() {
    let datagram = hex(CAPTURED_COMPOUND);
    let packets = parse_all(&datagram);
    assert_eq!(packets.len(), 5);
    let Packet::ReceiverReport(rr) = packets[0] else {
        panic!("{:?}", packets[0])
    };
    assert_eq!(rr.ssrc, 0x902f9e2e);
    assert_eq!(
        rr.report_blocks().collect::<Vec<_>>(),
        [ReportBlock {
            ssrc: 0xbc5e9a40,
            fraction_lost: 0,
            cumulative_lost: 0,
            extended_highest_seq: 0x46e1,
            jitter: 273,
            last_sr: 0x9f36432,
            delay_since_last_sr: 150137,
        }]
    );
    let Packet::Sdes(sdes) = packets[1] else {
        panic!("{:?}", packets[1])
    };
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].ssrc, 0x902f9e2e);
    assert_eq!(
        chunks[0].cname(),
        Some("{9c00eb92-1afb-9d49-a47d-91f64eee69f5}")
    );
    let Packet::Bye(bye) = packets[2] else {
        panic!("{:?}", packets[2])
    };
    assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [0x902f9e2e]);
    assert_eq!(bye.reason, None);
    assert_eq!(
        packets[3],
        Packet::Pli(Pli {
            sender_ssrc: 0x902f9e2e,
            media_ssrc: 0x902f9e2e
        })
    );
    assert_eq!(
        packets[4],
        Packet::Unknown {
            packet_type: 205,
            fmt: 5,
            body: &datagram[108..116]
        }
    );
}

/// pion/rtcp's sender_report_test.go "valid" packet, its length field
/// corrected from 7 words to the 12 its report block takes.
#[test]
fn a_sender_report_reads_as_pion_tests_it() {
    let datagram = hex(
        "81c8000c 902f9e2e da8bd1fcdddda05a aaf4edd5 00000001 00000002
         bc5e9a40 00000000 000046e1 00000111 09f36432 00024a79",
    );
    let Packet::SenderReport(sr) = only(&datagram) else {
        panic!()
    };
    assert_eq!(
        sr.info,
        SenderInfo {
            ssrc: 0x902f9e2e,
            ntp_time: 0xda8bd1fcdddda05a,
            rtp_time: 0xaaf4edd5,
            packet_count: 1,
            octet_count: 2,
        }
    );
    let blocks: Vec<_> = sr.report_blocks().collect();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].jitter, 273);

    let mut buf = [0u8; 52];
    let mut writer = Writer::new(&mut buf);
    writer.sender_report(&sr.info, &blocks).unwrap();
    assert_eq!(writer.written(), &datagram[..]);
}

/// pion/rtcp's receiver_estimated_maximum_bitrate_test.go: "real data sent
/// by Chrome while watching a 6Mb/s stream" (exponent 6, mantissa 139487).
#[test]
fn chromes_remb_reads_and_writes_the_same() {
    let datagram = hex("8fce0005 00000001 00000000 52454d42 011a20df 4874ed16");
    let Packet::Remb(remb) = only(&datagram) else {
        panic!()
    };
    assert_eq!(remb.sender_ssrc, 1);
    assert_eq!(remb.bitrate, 8_927_168);
    assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [1215622422]);

    let mut buf = [0u8; 24];
    let mut writer = Writer::new(&mut buf);
    writer.remb(1, 8_927_168, &[1215622422]).unwrap();
    assert_eq!(writer.written(), &datagram[..]);
    // One bit per second less needs a smaller mantissa: rounded down by 64.
    let mut writer = Writer::new(&mut buf);
    writer.remb(1, 8_927_167, &[1215622422]).unwrap();
    let Packet::Remb(remb) = only(writer.written()) else {
        panic!()
    };
    assert_eq!(remb.bitrate, 8_927_104);
}

/// jitsi-videobridge's RtcpFbNackPacketTest packet: two pairs, one with all
/// 16 following packets lost.
#[test]
fn a_nack_expands_its_pairs_as_jitsi_tests_it() {
    let datagram = hex("81cd0004 c6473407 1295f48f 2103ffff 2114007f");
    let Packet::Nack(nack) = only(&datagram) else {
        panic!()
    };
    assert_eq!(
        (nack.sender_ssrc, nack.media_ssrc),
        (0xc6473407, 0x1295f48f)
    );
    let lost: Vec<u16> = nack.lost().collect();
    let want: Vec<u16> = (0x2103..=0x2113).chain(0x2114..=0x211b).collect();
    assert_eq!(lost, want);

    let mut buf = [0u8; 20];
    let mut writer = Writer::new(&mut buf);
    writer.nack(0xc6473407, 0x1295f48f, want).unwrap();
    assert_eq!(writer.written(), &datagram[..]);
}

/// pion/rtcp's full_intra_request_test.go, two entries.
#[test]
fn a_fir_reads_its_entries() {
    let datagram = hex("84ce0006 00000000 4bc4fcb4 12345678 42000000 98765432 57000000");
    let Packet::Fir(fir) = only(&datagram) else {
        panic!()
    };
    assert_eq!((fir.sender_ssrc, fir.media_ssrc), (0, 0x4bc4fcb4));
    let entries: Vec<_> = fir.entries().collect();
    assert_eq!(
        entries,
        [
            FirEntry {
                ssrc: 0x12345678,
                seq: 0x42
            },
            FirEntry {
                ssrc: 0x98765432,
                seq: 0x57
            }
        ]
    );
}

/// mediasoup's TestFeedbackRtpTransport.cpp "one bit vector chunk": 13
/// statuses (7 received, 3 lost, 3 received) in one 1-bit vector. Our writer
/// chooses the same chunk and writes the same bytes.
#[test]
fn transport_feedback_with_a_one_bit_vector_as_mediasoup_tests_it() {
    let datagram = hex("8fcd0007 fa17fa17 09faff67 0027000d 5fc2f103 bf8e1000 00000000 001c0400");
    let fb = twcc_of(only(&datagram));
    assert_eq!(
        (fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.status_count),
        (0xfa17fa17, 0x09faff67, 39, 13)
    );
    assert_eq!((fb.reference_time, fb.feedback_count), (0x5fc2f1, 3));
    let packets: Vec<_> = fb.packets().collect();
    let mut want: Vec<_> = (39..=45).map(|s| (s, Some(4000))).collect();
    want.extend((46..=48).map(|s| (s, None)));
    want.extend([(49, Some(11_000)), (50, Some(12_000)), (51, Some(12_000))]);
    assert_eq!(packets, want);

    let header = TransportFeedbackHeader {
        sender_ssrc: 0xfa17fa17,
        media_ssrc: 0x09faff67,
        base_seq: 39,
        reference_time: 0x5fc2f1,
        feedback_count: 3,
    };
    assert_eq!(write_twcc(&header, &want), (datagram, 13));
}

/// pion/rtcp's transport_layer_cc_test.go examples 1 and 3: a run of one
/// small delta, padded with the padding bit; runs of large then small deltas.
#[test]
fn transport_feedback_runs_as_pion_tests_them() {
    let example1 = hex("afcd0005 fa17fa17 43032fa0 00990001 3de80217 20019401");
    let fb = twcc_of(only(&example1));
    assert_eq!((fb.base_seq, fb.status_count), (153, 1));
    assert_eq!((fb.reference_time, fb.feedback_count), (4057090, 23));
    assert_eq!(fb.packets().collect::<Vec<_>>(), [(153, Some(37_000))]);
    let header = TransportFeedbackHeader {
        sender_ssrc: 0xfa17fa17,
        media_ssrc: 0x43032fa0,
        base_seq: 153,
        reference_time: 4057090,
        feedback_count: 23,
    };
    assert_eq!(write_twcc(&header, &[(153, Some(37_000))]), (example1, 1));

    let example3 = hex("8fcd0007 fa17fa17 193dd8bb 01740006 45b15a40 40022004 1ffe1f9a d000d000");
    let fb = twcc_of(only(&example3));
    assert_eq!((fb.base_seq, fb.status_count), (372, 6));
    assert_eq!(
        fb.packets().collect::<Vec<_>>(),
        [
            (372, Some(2_047_500)),
            (373, Some(4_070_000)),
            (374, Some(4_122_000)),
            (375, Some(4_122_000)),
            (376, Some(4_174_000)),
            (377, Some(4_174_000)),
        ]
    );
}

/// mediasoup's "negative reference time" packet (0xfffffe is -2) with no
/// statuses; and pion's example 2, whose second chunk holds the reserved
/// status 3 within the count (libwebrtc refuses such a packet too).
#[test]
fn transport_feedback_edge_cases_from_mediasoup_and_pion() {
    let negative = hex("8fcd0004 fa17fa17 09faff67 00270000 fffffe01");
    let fb = twcc_of(only(&negative));
    assert_eq!((fb.reference_time, fb.feedback_count), (-2, 1));
    assert_eq!(fb.reference_time_us(), -128_000);
    assert_eq!(fb.packets().count(), 0);

    let reserved = hex("afcd0006 fa17fa17 193dd8bb 0174000e 45b15a40 d800f0ff d0000003");
    assert_eq!(
        Compound::new(&reserved).next(),
        Some(Err(RtcpError::TwccReservedStatus { seq: 379 }))
    );
}

// ---------------------------------------------------------------- round trips

fn blocks(n: u32) -> Vec<ReportBlock> {
    (0..n)
        .map(|i| ReportBlock {
            ssrc: 0x1000 + i,
            fraction_lost: i as u8 * 7,
            cumulative_lost: [0, -1, 0x7f_ffff, -0x80_0000, 12345][i as usize % 5],
            extended_highest_seq: 0x0001_fff0 + i,
            jitter: 17 * i,
            last_sr: 0xdead_0000 | i,
            delay_since_last_sr: 65536 + i,
        })
        .collect()
}

#[test]
fn every_kind_reads_back_as_written() {
    let info = SenderInfo {
        ssrc: 1,
        ntp_time: 0xe6a1_2345_8000_0000,
        rtp_time: 90_000,
        packet_count: 1000,
        octet_count: 1_200_000,
    };
    let firs = [FirEntry { ssrc: 7, seq: 1 }, FirEntry { ssrc: 8, seq: 255 }];
    let twcc_header = TransportFeedbackHeader {
        sender_ssrc: 1,
        media_ssrc: 0,
        base_seq: 65530,
        reference_time: -5,
        feedback_count: 200,
    };
    let twcc = [
        (65530, Some(-1000)),
        (65532, Some(70_000)),
        (0, Some(69_000)),
        (3, None),
        (4, Some(80_250)),
    ];
    let lost = [65534, 65535, 0, 1, 40, 41, 20];

    let mut buf = [0u8; 1500];
    let mut w = Writer::new(&mut buf);
    w.sender_report(&info, &blocks(31)).unwrap();
    w.receiver_report(2, &blocks(3)).unwrap();
    w.sdes_cname(3, "a-cname/with:bytes").unwrap();
    w.bye(&[4, 5, 6]).unwrap();
    w.nack(1, 9, lost).unwrap();
    w.pli(1, 10).unwrap();
    w.fir(1, &firs).unwrap();
    w.remb(1, 2_500_000, &[11, 12]).unwrap();
    assert_eq!(w.transport_feedback(&twcc_header, &twcc), Ok(5));
    let len = w.len();

    let packets = parse_all(&buf[..len]);
    assert_eq!(packets.len(), 9);
    let Packet::SenderReport(sr) = packets[0] else {
        panic!()
    };
    assert_eq!(sr.info, info);
    assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks(31));
    let Packet::ReceiverReport(rr) = packets[1] else {
        panic!()
    };
    assert_eq!(rr.ssrc, 2);
    assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks(3));
    let Packet::Sdes(sdes) = packets[2] else {
        panic!()
    };
    let chunk = sdes.chunks().next().unwrap();
    assert_eq!((chunk.ssrc, chunk.cname()), (3, Some("a-cname/with:bytes")));
    let Packet::Bye(bye) = packets[3] else {
        panic!()
    };
    assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [4, 5, 6]);
    let Packet::Nack(nack) = packets[4] else {
        panic!()
    };
    assert_eq!((nack.sender_ssrc, nack.media_ssrc), (1, 9));
    let mut got: Vec<u16> = nack.lost().collect();
    got.sort_unstable();
    let mut want = lost.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    // 65534 carries the next three across the wrap; 40 carries 41; 20 is alone.
    assert_eq!(nack.pairs.len(), 3 * 4);
    assert_eq!(
        packets[5],
        Packet::Pli(Pli {
            sender_ssrc: 1,
            media_ssrc: 10
        })
    );
    let Packet::Fir(fir) = packets[6] else {
        panic!()
    };
    assert_eq!(fir.entries().collect::<Vec<_>>(), firs);
    let Packet::Remb(remb) = packets[7] else {
        panic!()
    };
    assert_eq!(remb.bitrate, 2_500_000);
    assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [11, 12]);
    let fb = twcc_of(packets[8]);
    assert_eq!(
        (
            fb.base_seq,
            fb.status_count,
            fb.reference_time,
            fb.feedback_count
        ),
        (65530, 11, -5, 200)
    );
    assert_eq!(fb.packets().collect::<Vec<_>>(), expected(65530, &twcc));
}

#[test]
fn cumulative_loss_is_clamped_to_24_signed_bits() {
    for (given, written) in [(i32::MAX, 0x7f_ffff), (i32::MIN, -0x80_0000), (-3, -3)] {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        let block = ReportBlock {
            cumulative_lost: given,
            ..Default::default()
        };
        w.receiver_report(1, &[block]).unwrap();
        let Packet::ReceiverReport(rr) = only(w.written()) else {
            panic!()
        };
        assert_eq!(rr.report_blocks().next().unwrap().cumulative_lost, written);
    }
}

#[test]
fn the_writer_refuses_what_the_format_cannot_hold() {
    let mut buf = [0u8; 4096];
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        w.receiver_report(1, &blocks(32)),
        Err(WriteError::TooMany {
            what: "report blocks",
            count: 32,
            max: 31
        })
    );
    assert!(matches!(w.bye(&[0; 32]), Err(WriteError::TooMany { .. })));
    assert!(matches!(
        w.sdes_cname(1, &"x".repeat(256)),
        Err(WriteError::TooMany { .. })
    ));
    assert!(matches!(
        w.remb(1, 1, &[0; 256]),
        Err(WriteError::TooMany { .. })
    ));
    assert_eq!(
        w.nack(1, 2, []),
        Err(WriteError::Empty("lost sequence numbers"))
    );
    assert_eq!(w.fir(1, &[]), Err(WriteError::Empty("FIR entries")));
    let header = TransportFeedbackHeader::default();
    assert_eq!(
        w.transport_feedback(&header, &[]),
        Err(WriteError::Empty("packets to report"))
    );
    assert_eq!(
        w.transport_feedback(&header, &[(5, Some(0)), (5, Some(0))]),
        Err(WriteError::OutOfOrder { seq: 5 })
    );
    assert_eq!(
        w.transport_feedback(&header, &[(5, Some(0)), (4, Some(0))]),
        Err(WriteError::OutOfOrder { seq: 4 })
    );
    assert_eq!(
        w.transport_feedback(
            &TransportFeedbackHeader {
                base_seq: 10,
                ..header
            },
            &[(9, Some(0))]
        ),
        Err(WriteError::OutOfOrder { seq: 9 })
    );
    assert_eq!(
        w.transport_feedback(&header, &[(0, None), (1, Some(9_000_000))]),
        Err(WriteError::DeltaOutOfRange { seq: 1 })
    );
    assert!(w.is_empty(), "nothing was written");
    // The largest REMB bitrate and a long CNAME are fine.
    w.remb(1, u64::MAX, &[]).unwrap();
    w.sdes_cname(1, &"é".repeat(127)).unwrap();
    let packets = parse_all(w.written());
    let Packet::Remb(remb) = packets[0] else {
        panic!()
    };
    assert_eq!(remb.bitrate, 0x3ffff << 46);
    let Packet::Sdes(sdes) = packets[1] else {
        panic!()
    };
    assert_eq!(
        sdes.chunks().next().unwrap().cname(),
        Some(&*"é".repeat(127))
    );
}

// ---------------------------------------------------------------- transport-wide feedback writing

fn chunk_kinds(fb: &TransportFeedback<'_>) -> Vec<&'static str> {
    fb.chunks
        .chunks_exact(2)
        .map(|c| match c[0] >> 6 {
            0 | 1 => "run",
            2 => "1-bit",
            _ => "2-bit",
        })
        .collect()
}

#[test]
fn chunks_are_chosen_by_what_they_hold() {
    let header = TransportFeedbackHeader::default();
    let cases: [(&str, Arrivals, Vec<&str>); 6] = [
        (
            "a run of small deltas",
            (0..500).map(|s| (s, Some(i64::from(s) * 1000))).collect(),
            vec!["run"],
        ),
        (
            "a lost run between two received runs",
            (0..20)
                .chain(3000..3020)
                .enumerate()
                .map(|(i, s)| (s, Some(i as i64 * 500)))
                .collect(),
            vec!["run", "run", "run"],
        ),
        (
            "a gap longer than one run holds",
            vec![(0, Some(0)), (20_000, Some(500))],
            vec!["1-bit", "run", "run", "run", "run"],
        ),
        (
            "every other packet lost, small deltas",
            (0..28)
                .step_by(2)
                .map(|s| (s, Some(i64::from(s) * 250)))
                .collect(),
            vec!["1-bit", "1-bit"],
        ),
        (
            "a large delta among small ones",
            (0..14)
                .map(|s| {
                    (
                        s,
                        Some(i64::from(s) * 250 + if s >= 5 { 100_000 } else { 0 }),
                    )
                })
                .collect(),
            vec!["2-bit", "run"],
        ),
        (
            "a large delta, then small ones with losses",
            [(0, Some(100_000))]
                .into_iter()
                .chain(
                    (1..44)
                        .step_by(3)
                        .map(|s| (s, Some(100_000 + i64::from(s) * 250))),
                )
                .collect(),
            vec!["2-bit", "1-bit", "1-bit", "1-bit"],
        ),
    ];
    for (name, packets, kinds) in cases {
        let (datagram, consumed) = write_twcc(&header, &packets);
        assert_eq!(consumed, packets.len(), "{name}");
        let fb = twcc_of(only(&datagram));
        assert_eq!(chunk_kinds(&fb), kinds, "{name}");
        assert_eq!(
            fb.packets().collect::<Vec<_>>(),
            expected(0, &packets),
            "{name}"
        );
    }
}

#[test]
fn accumulated_arrivals_do_not_drift() {
    // 333 µs apart: every delta rounded on its own would lose 83 µs each time.
    let packets: Vec<_> = (0..3000u16)
        .map(|s| (s, Some(i64::from(s) * 333 + 40)))
        .collect();
    let (datagram, consumed) = write_twcc(&TransportFeedbackHeader::default(), &packets);
    assert_eq!(consumed, 3000);
    let fb = twcc_of(only(&datagram));
    for ((seq, got), (_, truth)) in fb.packets().zip(&packets) {
        let error = got.unwrap() - truth.unwrap();
        assert!(
            error.abs() <= DELTA_TICK_US / 2,
            "seq {seq}: off by {error} µs"
        );
    }
}

#[test]
fn reordered_and_negative_arrivals_use_large_deltas() {
    let packets = [
        (100, Some(-64_000)),
        (101, Some(-70_000)),
        (102, Some(8_000_000)),
        (103, Some(1_000)),
        (104, Some(1_250)),
    ];
    let header = TransportFeedbackHeader {
        base_seq: 100,
        ..Default::default()
    };
    let (datagram, consumed) = write_twcc(&header, &packets);
    assert_eq!(consumed, 5);
    let fb = twcc_of(only(&datagram));
    assert_eq!(fb.packets().collect::<Vec<_>>(), expected(100, &packets));
}

#[test]
fn a_jump_beyond_a_delta_ends_the_feedback() {
    let packets = [
        (0, Some(0)),
        (1, Some(1000)),
        (2, Some(9_000_000)),
        (3, Some(9_001_000)),
    ];
    let header = TransportFeedbackHeader::default();
    let (datagram, consumed) = write_twcc(&header, &packets);
    assert_eq!(consumed, 2);
    assert_eq!(twcc_of(only(&datagram)).status_count, 2);
    // The rest, from a reference time near them.
    let next = TransportFeedbackHeader {
        base_seq: 2,
        reference_time: 140,
        feedback_count: 1,
        ..header
    };
    let rest: Vec<_> = packets[2..]
        .iter()
        .map(|&(s, a)| (s, a.map(|a| a - 140 * REFERENCE_TICK_US)))
        .collect();
    let (datagram, consumed) = write_twcc(&next, &rest);
    assert_eq!(consumed, 2);
    assert_eq!(
        twcc_of(only(&datagram)).packets().collect::<Vec<_>>(),
        expected(2, &rest)
    );
}

#[test]
fn what_does_not_fit_goes_in_the_next_feedback() {
    let mut rng = Rng(7);
    let mut packets = Vec::new();
    let mut seq = 65000u16;
    let mut arrival = 0i64;
    for _ in 0..3000 {
        seq = seq.wrapping_add(1 + rng.below(3) as u16);
        arrival += rng.below(90_000) as i64 - 10_000;
        let received = rng.below(10) > 0;
        packets.push((seq, received.then_some(arrival / 50)));
    }
    let mut base = 65001u16;
    let mut rest = &packets[..];
    let mut feedbacks = 0;
    let mut reported = Vec::new();
    while !rest.is_empty() {
        let mut buf = [0u8; 300];
        let mut w = Writer::new(&mut buf);
        // Some compound before it, as a real one would have.
        w.receiver_report(1, &[]).unwrap();
        let header = TransportFeedbackHeader {
            base_seq: base,
            feedback_count: feedbacks,
            ..Default::default()
        };
        let consumed = w.transport_feedback(&header, rest).unwrap();
        assert!(consumed > 0);
        let packets = parse_all(w.written());
        let fb = twcc_of(packets[1]);
        assert_eq!(
            fb.packets().collect::<Vec<_>>(),
            expected(base, &rest[..consumed])
        );
        reported.extend(fb.packets());
        base = rest[consumed - 1].0.wrapping_add(1);
        rest = &rest[consumed..];
        feedbacks += 1;
    }
    assert!(feedbacks > 10, "{feedbacks} feedbacks");
    assert_eq!(reported, expected(65001, &packets));
}

// ---------------------------------------------------------------- webrtc-rs

fn their_block(b: &ReportBlock) -> ReceptionReport {
    ReceptionReport {
        ssrc: b.ssrc,
        fraction_lost: b.fraction_lost,
        total_lost: b.cumulative_lost as u32 & 0xff_ffff,
        last_sequence_number: b.extended_highest_seq,
        jitter: b.jitter,
        last_sender_report: b.last_sr,
        delay: b.delay_since_last_sr,
    }
}

/// Their TWCC's statuses and deltas, expanded without our parser.
fn their_twcc_packets(cc: &TransportLayerCc) -> Vec<(u16, Option<i64>)> {
    let mut deltas = cc.recv_deltas.iter();
    let mut at = 0;
    their_twcc_statuses(cc)
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let seq = cc.base_sequence_number.wrapping_add(i as u16);
            match status {
                SymbolTypeTcc::PacketNotReceived => (seq, None),
                _ => {
                    at += deltas.next().unwrap().delta;
                    (seq, Some(at))
                }
            }
        })
        .collect()
}

fn theirs(datagram: &[u8]) -> Vec<Box<dyn TheirPacket>> {
    rtc::rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(datagram))
        .unwrap_or_else(|e| panic!("webrtc-rs refused: {e}"))
}

fn downcast<T: 'static>(packet: &dyn TheirPacket) -> &T {
    packet
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("webrtc-rs read {packet:?}"))
}

/// Feedback scenarios: losses, runs, large and negative deltas, 2-bit vectors.
fn twcc_scenarios() -> Vec<(u16, Arrivals)> {
    let mut rng = Rng(99);
    let mut random = Vec::new();
    let mut seq = 60000u16;
    let mut arrival = 5_000i64;
    for _ in 0..400 {
        seq = seq.wrapping_add(1 + u16::from(rng.below(8) == 0) * rng.below(5) as u16);
        arrival += match rng.below(10) {
            0 => -(rng.below(20_000) as i64),
            1 => rng.below(300_000) as i64,
            _ => rng.below(15_000) as i64,
        };
        random.push((seq, (rng.below(12) > 0).then_some(arrival / 250 * 250)));
    }
    vec![
        (
            10,
            (10..300).map(|s| (s, Some(i64::from(s) * 1000))).collect(),
        ),
        (
            5,
            (5..60)
                .filter(|s| s % 3 != 0)
                .map(|s| (s, Some(i64::from(s) * 2000)))
                .collect(),
        ),
        (
            65530,
            vec![
                (65530, Some(0)),
                (65531, Some(-4_000_000)),
                (2, Some(4_000_000)),
                (3, None),
                (9000, Some(4_000_250)),
                (9001, Some(4_064_000)),
            ],
        ),
        (60000, random),
    ]
}

#[test]
fn webrtc_rs_reads_what_we_write() {
    let info = SenderInfo {
        ssrc: 0x1234,
        ntp_time: 0xe6a1_2345_6789_abcd,
        rtp_time: 48_000,
        packet_count: 50,
        octet_count: 5000,
    };
    let lost: Vec<u16> = vec![65500, 65510, 65516, 65517, 2, 3, 100];
    let firs = [FirEntry { ssrc: 77, seq: 3 }];
    let mut buf = vec![0u8; 4000];
    let mut w = Writer::new(&mut buf);
    w.sender_report(&info, &blocks(2)).unwrap();
    w.receiver_report(0x99, &blocks(31)).unwrap();
    w.sdes_cname(0x1234, "bridge-cname").unwrap();
    w.nack(0x1234, 0x5678, lost.iter().copied()).unwrap();
    w.pli(0x1234, 0x5678).unwrap();
    w.fir(0x1234, &firs).unwrap();
    w.remb(0x1234, 1_234_567_890, &[1, 2, 3]).unwrap();
    w.bye(&[0x1234, 0x4321]).unwrap();
    let len = w.len();

    let packets = theirs(&buf[..len]);
    assert_eq!(packets.len(), 8);
    let sr = downcast::<TheirSenderReport>(&*packets[0]);
    assert_eq!(
        (
            sr.ssrc,
            sr.ntp_time,
            sr.rtp_time,
            sr.packet_count,
            sr.octet_count
        ),
        (
            info.ssrc,
            info.ntp_time,
            info.rtp_time,
            info.packet_count,
            info.octet_count
        )
    );
    assert_eq!(
        sr.reports,
        blocks(2).iter().map(their_block).collect::<Vec<_>>()
    );
    let rr = downcast::<TheirReceiverReport>(&*packets[1]);
    assert_eq!(rr.ssrc, 0x99);
    assert_eq!(
        rr.reports,
        blocks(31).iter().map(their_block).collect::<Vec<_>>()
    );
    let sdes = downcast::<SourceDescription>(&*packets[2]);
    assert_eq!(sdes.chunks.len(), 1);
    assert_eq!(sdes.chunks[0].source, 0x1234);
    assert_eq!(sdes.chunks[0].items.len(), 1);
    assert_eq!(sdes.chunks[0].items[0].sdes_type, SdesType::SdesCname);
    assert_eq!(&sdes.chunks[0].items[0].text[..], b"bridge-cname");
    let nack = downcast::<TransportLayerNack>(&*packets[3]);
    assert_eq!((nack.sender_ssrc, nack.media_ssrc), (0x1234, 0x5678));
    let their_lost: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
    assert_eq!(their_lost, lost);
    let pli = downcast::<PictureLossIndication>(&*packets[4]);
    assert_eq!((pli.sender_ssrc, pli.media_ssrc), (0x1234, 0x5678));
    let fir = downcast::<FullIntraRequest>(&*packets[5]);
    assert_eq!(fir.sender_ssrc, 0x1234);
    assert_eq!(
        fir.fir,
        [TheirFirEntry {
            ssrc: 77,
            sequence_number: 3
        }]
    );
    let remb = downcast::<ReceiverEstimatedMaximumBitrate>(&*packets[6]);
    assert_eq!(remb.sender_ssrc, 0x1234);
    // Rounded down to 18 bits of mantissa: within 2^-17 of the estimate.
    assert!(
        remb.bitrate <= 1_234_567_890.0 && remb.bitrate > 1_234_567_890.0 * (1.0 - 1.0 / 131072.0)
    );
    assert_eq!(remb.ssrcs, [1, 2, 3]);
    let bye = downcast::<Goodbye>(&*packets[7]);
    assert_eq!(bye.sources, [0x1234, 0x4321]);

    let mut kinds = Vec::new();
    for (base, packets) in twcc_scenarios() {
        let header = TransportFeedbackHeader {
            sender_ssrc: 0x1234,
            media_ssrc: 0x5678,
            base_seq: base,
            reference_time: 0x12_3456,
            feedback_count: 9,
        };
        let (datagram, consumed) = write_twcc(&header, &packets);
        assert_eq!(consumed, packets.len());
        let theirs = theirs(&datagram);
        let cc = downcast::<TransportLayerCc>(&*theirs[0]);
        assert_eq!(
            (cc.sender_ssrc, cc.media_ssrc, cc.base_sequence_number),
            (0x1234, 0x5678, base)
        );
        assert_eq!((cc.reference_time, cc.fb_pkt_count), (0x12_3456, 9));
        assert_eq!(
            their_twcc_packets(cc),
            expected(base, &packets),
            "base {base}"
        );
        kinds.extend(chunk_kinds(&twcc_of(only(&datagram))));
    }
    for kind in ["run", "1-bit", "2-bit"] {
        assert!(kinds.contains(&kind), "no {kind} chunk in {kinds:?}");
    }
}

#[test]
fn we_read_what_webrtc_rs_writes() {
    let their_blocks: Vec<_> = blocks(5).iter().map(their_block).collect();
    let cc = TransportLayerCc {
        sender_ssrc: 0xabc,
        media_ssrc: 0xdef,
        base_sequence_number: 65534,
        packet_status_count: 40,
        reference_time: 0xff_fff0,
        fb_pkt_count: 255,
        packet_chunks: vec![
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                run_length: 3,
            }),
            PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::OneBit,
                symbol_list: [1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1]
                    .map(|s| {
                        if s == 1 {
                            SymbolTypeTcc::PacketReceivedSmallDelta
                        } else {
                            SymbolTypeTcc::PacketNotReceived
                        }
                    })
                    .to_vec(),
            }),
            PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::TwoBit,
                symbol_list: vec![
                    SymbolTypeTcc::PacketReceivedLargeDelta,
                    SymbolTypeTcc::PacketNotReceived,
                    SymbolTypeTcc::PacketReceivedSmallDelta,
                    SymbolTypeTcc::PacketReceivedLargeDelta,
                    SymbolTypeTcc::PacketReceivedLargeDelta,
                    SymbolTypeTcc::PacketNotReceived,
                    SymbolTypeTcc::PacketReceivedSmallDelta,
                ],
            }),
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketNotReceived,
                run_length: 10,
            }),
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketReceivedLargeDelta,
                // Beyond the count: the last four are not reported.
                run_length: 10,
            }),
        ],
        recv_deltas: Vec::new(),
    };
    let statuses = their_twcc_statuses(&cc);
    let delta_values = [0, 63_750, 250, -8_192_000, 8_191_750, 1000, 64_000, -250];
    let recv_deltas = statuses
        .iter()
        .filter(|s| **s != SymbolTypeTcc::PacketNotReceived)
        .enumerate()
        .map(|(i, &s)| RecvDelta {
            type_tcc_packet: s,
            delta: match s {
                SymbolTypeTcc::PacketReceivedSmallDelta => [0, 63_750, 250, 1000][i % 4],
                _ => delta_values[i % delta_values.len()],
            },
        })
        .collect();
    let cc = TransportLayerCc { recv_deltas, ..cc };
    let their: Vec<Box<dyn TheirPacket>> = vec![
        Box::new(TheirSenderReport {
            ssrc: 1,
            ntp_time: 0x0102_0304_0506_0708,
            rtp_time: 9,
            packet_count: 10,
            octet_count: 11,
            reports: their_blocks.clone(),
            profile_extensions: Bytes::new(),
        }),
        Box::new(TheirReceiverReport {
            ssrc: 2,
            reports: their_blocks.clone(),
            profile_extensions: Bytes::new(),
        }),
        Box::new(SourceDescription {
            chunks: vec![
                SourceDescriptionChunk {
                    source: 3,
                    items: vec![
                        SourceDescriptionItem {
                            sdes_type: SdesType::SdesName,
                            text: Bytes::from_static(b"name first"),
                        },
                        SourceDescriptionItem {
                            sdes_type: SdesType::SdesCname,
                            text: Bytes::from_static(b"cname-3"),
                        },
                    ],
                },
                SourceDescriptionChunk {
                    source: 4,
                    items: vec![SourceDescriptionItem {
                        sdes_type: SdesType::SdesCname,
                        text: Bytes::from_static(b"abc"),
                    }],
                },
            ],
        }),
        Box::new(Goodbye {
            sources: vec![5, 6],
            reason: Bytes::from_static(b"bye now"),
        }),
        Box::new(TransportLayerNack {
            sender_ssrc: 7,
            media_ssrc: 8,
            nacks: vec![
                NackPair {
                    packet_id: 65535,
                    lost_packets: 0b1000_0000_0000_0101,
                },
                NackPair {
                    packet_id: 500,
                    lost_packets: 0,
                },
            ],
        }),
        Box::new(PictureLossIndication {
            sender_ssrc: 9,
            media_ssrc: 10,
        }),
        Box::new(FullIntraRequest {
            sender_ssrc: 11,
            media_ssrc: 0,
            fir: vec![
                TheirFirEntry {
                    ssrc: 12,
                    sequence_number: 13,
                },
                TheirFirEntry {
                    ssrc: 14,
                    sequence_number: 15,
                },
            ],
        }),
        Box::new(ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 16,
            bitrate: 3_000_000_000.0,
            ssrcs: vec![17, 18],
        }),
        Box::new(cc.clone()),
    ];
    let datagram = rtc::rtcp::packet::marshal(&their).unwrap();
    let ours = parse_all(&datagram);
    assert_eq!(ours.len(), their.len());

    let our_blocks: Vec<_> = blocks(5)
        .into_iter()
        .map(|b| ReportBlock {
            // Theirs is unsigned: the 24 bits carry the sign.
            cumulative_lost: b.cumulative_lost,
            ..b
        })
        .collect();
    let Packet::SenderReport(sr) = ours[0] else {
        panic!()
    };
    assert_eq!(
        sr.info,
        SenderInfo {
            ssrc: 1,
            ntp_time: 0x0102_0304_0506_0708,
            rtp_time: 9,
            packet_count: 10,
            octet_count: 11
        }
    );
    assert_eq!(sr.report_blocks().collect::<Vec<_>>(), our_blocks);
    let Packet::ReceiverReport(rr) = ours[1] else {
        panic!()
    };
    assert_eq!(rr.ssrc, 2);
    assert_eq!(rr.report_blocks().collect::<Vec<_>>(), our_blocks);
    let Packet::Sdes(sdes) = ours[2] else {
        panic!()
    };
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!((chunks[0].ssrc, chunks[0].cname()), (3, Some("cname-3")));
    assert_eq!(
        chunks[0].items().next(),
        Some(SdesItem {
            kind: 2,
            value: b"name first"
        })
    );
    assert_eq!((chunks[1].ssrc, chunks[1].cname()), (4, Some("abc")));
    let Packet::Bye(bye) = ours[3] else { panic!() };
    assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [5, 6]);
    assert_eq!(bye.reason, Some(&b"bye now"[..]));
    let Packet::Nack(nack) = ours[4] else {
        panic!()
    };
    assert_eq!((nack.sender_ssrc, nack.media_ssrc), (7, 8));
    assert_eq!(nack.lost().collect::<Vec<_>>(), [65535, 0, 2, 15, 500]);
    assert_eq!(
        ours[5],
        Packet::Pli(Pli {
            sender_ssrc: 9,
            media_ssrc: 10
        })
    );
    let Packet::Fir(fir) = ours[6] else { panic!() };
    assert_eq!(fir.sender_ssrc, 11);
    assert_eq!(
        fir.entries().collect::<Vec<_>>(),
        [
            FirEntry { ssrc: 12, seq: 13 },
            FirEntry { ssrc: 14, seq: 15 }
        ]
    );
    let Packet::Remb(remb) = ours[7] else {
        panic!()
    };
    // webrtc-rs rounds 3e9 down to an 18-bit mantissa too: 183105 << 14.
    assert_eq!((remb.sender_ssrc, remb.bitrate), (16, 183_105 << 14));
    assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [17, 18]);
    let fb = twcc_of(ours[8]);
    assert_eq!((fb.sender_ssrc, fb.media_ssrc), (0xabc, 0xdef));
    assert_eq!((fb.base_seq, fb.status_count), (65534, 40));
    assert_eq!((fb.reference_time, fb.feedback_count), (-16, 255));
    let packets: Vec<_> = fb.packets().collect();
    assert_eq!(packets, their_twcc_packets(&cc));
    assert!(packets.iter().any(|p| p.1.is_some_and(|a| a < 0)));

    // Each of our scenarios as webrtc-rs would chunk it: one 2-bit vector per
    // seven statuses, every delta as it fits.
    for (base, packets) in twcc_scenarios() {
        let expected = expected(base, &packets);
        let mut symbols = Vec::new();
        let mut recv_deltas = Vec::new();
        let mut last = 0;
        for &(_, arrival) in &expected {
            let Some(arrival) = arrival else {
                symbols.push(SymbolTypeTcc::PacketNotReceived);
                continue;
            };
            let delta = arrival - last;
            last = arrival;
            let symbol = if (0..=63_750).contains(&delta) {
                SymbolTypeTcc::PacketReceivedSmallDelta
            } else {
                SymbolTypeTcc::PacketReceivedLargeDelta
            };
            symbols.push(symbol);
            recv_deltas.push(RecvDelta {
                type_tcc_packet: symbol,
                delta,
            });
        }
        let packet_chunks = symbols
            .chunks(7)
            .map(|seven| {
                let mut symbol_list = seven.to_vec();
                symbol_list.resize(7, SymbolTypeTcc::PacketNotReceived);
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::TwoBit,
                    symbol_list,
                })
            })
            .collect();
        let cc = TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: base,
            packet_status_count: expected.len() as u16,
            reference_time: 77,
            fb_pkt_count: 3,
            packet_chunks,
            recv_deltas,
        };
        let datagram = rtc::rtcp::packet::marshal(&[Box::new(cc) as Box<dyn TheirPacket>]).unwrap();
        let fb = twcc_of(only(&datagram));
        assert_eq!(fb.reference_time, 77);
        assert_eq!(fb.packets().collect::<Vec<_>>(), expected, "base {base}");
    }
}

fn their_twcc_statuses(cc: &TransportLayerCc) -> Vec<SymbolTypeTcc> {
    let mut statuses = Vec::new();
    for chunk in &cc.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(run) => statuses.extend(std::iter::repeat_n(
                run.packet_status_symbol,
                usize::from(run.run_length),
            )),
            PacketStatusChunk::StatusVectorChunk(v) => {
                statuses.extend(v.symbol_list.iter().copied())
            }
        }
    }
    statuses.truncate(usize::from(cc.packet_status_count));
    statuses
}

// ---------------------------------------------------------------- hostile input

/// Reads everything a datagram offers, as a caller would; returns whether
/// the walk ended in an error.
fn walk(datagram: &[u8]) -> bool {
    let mut failed = false;
    for packet in Compound::new(datagram) {
        match packet {
            Ok(Packet::SenderReport(sr)) => {
                sr.report_blocks().for_each(drop);
            }
            Ok(Packet::ReceiverReport(rr)) => {
                rr.report_blocks().for_each(drop);
            }
            Ok(Packet::Sdes(sdes)) => {
                for chunk in sdes.chunks() {
                    chunk.cname();
                    chunk.items().for_each(drop);
                }
            }
            Ok(Packet::Bye(bye)) => bye.ssrcs().for_each(drop),
            Ok(Packet::Nack(nack)) => nack.lost().for_each(drop),
            Ok(Packet::Fir(fir)) => fir.entries().for_each(drop),
            Ok(Packet::Remb(remb)) => remb.ssrcs().for_each(drop),
            Ok(Packet::TransportFeedback(fb)) => {
                let n = fb.packets().count();
                assert_eq!(
                    n,
                    usize::from(fb.status_count),
                    "a validated feedback yields all"
                );
            }
            Ok(Packet::Pli(_) | Packet::Unknown { .. }) => {}
            Err(_) => failed = true,
        }
    }
    failed
}

fn sample_compound() -> Vec<u8> {
    let mut buf = vec![0u8; 2000];
    let mut w = Writer::new(&mut buf);
    w.sender_report(&SenderInfo::default(), &blocks(2)).unwrap();
    w.sdes_cname(1, "cname").unwrap();
    w.nack(1, 2, [1, 2, 9, 100]).unwrap();
    w.fir(1, &[FirEntry { ssrc: 3, seq: 4 }]).unwrap();
    w.remb(1, 1_000_000, &[5]).unwrap();
    let twcc: Vec<_> = (0..60)
        .filter(|s| s % 7 != 3)
        .map(|s| (s, Some(i64::from(s) * 3000 - 20_000)))
        .collect();
    w.transport_feedback(&TransportFeedbackHeader::default(), &twcc)
        .unwrap();
    w.bye(&[1]).unwrap();
    let len = w.len();
    buf.truncate(len);
    buf
}

#[test]
fn header_faults_are_named() {
    assert_eq!(
        Compound::new(&[]).collect::<Vec<_>>(),
        [Err(RtcpError::Empty)]
    );
    assert_eq!(
        Compound::new(&[0x80, 201, 0]).next(),
        Some(Err(RtcpError::ShortHeader { left: 3 }))
    );
    assert_eq!(
        Compound::new(&[0x40, 201, 0, 1, 0, 0, 0, 0]).next(),
        Some(Err(RtcpError::Version(1)))
    );
    assert_eq!(
        Compound::new(&[0x80, 201, 0, 2, 0, 0, 0, 0]).next(),
        Some(Err(RtcpError::LengthBeyondDatagram {
            length: 12,
            left: 8
        }))
    );
    assert_eq!(
        Compound::new(&[0xa0, 201, 0, 1, 0, 0, 0, 0]).next(),
        Some(Err(RtcpError::Padding {
            count: 0,
            length: 8
        }))
    );
    assert_eq!(
        Compound::new(&[0xa0, 201, 0, 1, 0, 0, 0, 5]).next(),
        Some(Err(RtcpError::Padding {
            count: 5,
            length: 8
        }))
    );
    // Padding may take the whole body; a receiver report then has no SSRC.
    assert_eq!(
        Compound::new(&[0xa0, 201, 0, 1, 0, 0, 0, 4]).next(),
        Some(Err(RtcpError::TooShort {
            packet: "receiver report",
            needed: 8,
            length: 4
        }))
    );
    assert_eq!(
        Compound::new(&hex("81c90001 00000001")).next(),
        Some(Err(RtcpError::TooShort {
            packet: "receiver report",
            needed: 32,
            length: 8
        }))
    );
    // An APP and an XR pass as unknown; a stray byte after them is an error.
    let mut datagram = hex("80cc0002 00000001 6e616d65 80cf0001 00000001");
    assert!(!walk(&datagram));
    assert!(matches!(
        parse_all(&datagram)[..],
        [
            Packet::Unknown {
                packet_type: 204,
                fmt: 0,
                ..
            },
            Packet::Unknown {
                packet_type: 207,
                ..
            }
        ]
    ));
    datagram.push(0x80);
    assert_eq!(
        Compound::new(&datagram).nth(2),
        Some(Err(RtcpError::ShortHeader { left: 1 }))
    );
    // Application-layer feedback that is not REMB.
    let afb = hex("8fce0003 00000001 00000000 41424344");
    assert!(matches!(
        only(&afb),
        Packet::Unknown {
            packet_type: 206,
            fmt: 15,
            ..
        }
    ));
}

#[test]
fn transport_feedback_faults_are_named() {
    // Two statuses promised, no chunk.
    assert_eq!(
        Compound::new(&hex("8fcd0004 00000001 00000002 00000002 00000000")).next(),
        Some(Err(RtcpError::TwccChunks {
            described: 0,
            count: 2
        }))
    );
    // A run of 1 then nothing for the second.
    assert_eq!(
        Compound::new(&hex(
            "afcd0005 00000001 00000002 00000002 00000000 20010002"
        ))
        .next(),
        Some(Err(RtcpError::TwccChunks {
            described: 1,
            count: 2
        }))
    );
    // Two large deltas announced, one and a half present.
    assert_eq!(
        Compound::new(&hex(
            "8fcd0005 00000001 00000002 00000002 00000000 4002 0001"
        ))
        .next(),
        Some(Err(RtcpError::TwccDeltas { needed: 4, left: 2 }))
    );
}

#[test]
fn sdes_and_bye_faults_are_named() {
    // The item's length runs past the packet.
    assert_eq!(
        Compound::new(&hex("81ca0002 00000001 01056162")).next(),
        Some(Err(RtcpError::SdesChunk { index: 0 }))
    );
    // Two chunks promised, one present.
    assert_eq!(
        Compound::new(&hex("82ca0002 00000001 01016100")).next(),
        Some(Err(RtcpError::SdesChunk { index: 1 }))
    );
    // A reason longer than the packet.
    assert!(matches!(
        Compound::new(&hex("81cb0002 00000001 09616263")).next(),
        Some(Err(RtcpError::TooShort { packet: "BYE", .. }))
    ));
    // A last chunk without its null item is taken as it is.
    let unterminated = hex("81ca0002 00000001 01026162");
    let Packet::Sdes(sdes) = only(&unterminated) else {
        panic!()
    };
    assert_eq!(sdes.chunks().next().unwrap().cname(), Some("ab"));
}

#[test]
fn every_truncation_is_an_error_unless_it_ends_on_a_packet() {
    let datagram = sample_compound();
    let mut boundaries = vec![0];
    let mut at = 0;
    while at < datagram.len() {
        at += 4 * (usize::from(u16::from_be_bytes([datagram[at + 2], datagram[at + 3]])) + 1);
        boundaries.push(at);
    }
    assert!(!walk(&datagram));
    for len in 0..datagram.len() {
        let failed = walk(&datagram[..len]);
        assert_eq!(
            failed,
            !boundaries.contains(&len) || len == 0,
            "cut at {len}"
        );
    }
}

#[test]
fn random_and_mangled_input_never_panics() {
    let mut rng = Rng(0x5eed);
    let sample = sample_compound();
    let mut errors = 0;
    for round in 0..40_000 {
        let datagram: Vec<u8> = if round % 2 == 0 {
            // Noise shaped like RTCP: version 2, a known type, a plausible length.
            let len = rng.below(120) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut at = 0;
            while at + 4 <= d.len() {
                d[at] = 0x80 | (d[at] & 0x3f);
                d[at + 1] = 200 + (d[at + 1] % 8);
                d[at + 2] = 0;
                d[at + 3] %= 12;
                at += 4 * (usize::from(d[at + 3]) + 1);
            }
            d
        } else {
            let mut d = sample.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(d.len() as u64) as usize;
                d[i] ^= 1 << rng.below(8);
            }
            d
        };
        errors += usize::from(walk(&datagram));
    }
    assert!(errors > 1000, "the fuzzing reached errors {errors} times");
}

#[test]
fn the_writer_at_every_buffer_size_never_panics_nor_harms_what_it_wrote() {
    let twcc: Vec<_> = (0..400u16)
        .filter(|s| s % 11 != 0)
        .map(|s| (s, Some(i64::from(s) * 1700)))
        .collect();
    let full = sample_compound().len() + 2000;
    for size in 0..=full {
        let mut buf = vec![0xeeu8; size];
        let mut w = Writer::new(&mut buf);
        let mut ok = 0;
        for step in 0..9 {
            let before = w.written().to_vec();
            match write_step(&mut w, step, &twcc) {
                Ok(()) => {
                    ok += 1;
                    assert!(w.len() > before.len());
                    assert_eq!(&w.written()[..before.len()], &before[..]);
                }
                Err(WriteError::NoRoom { needed, left }) => {
                    assert!(needed > left, "size {size}");
                    assert_eq!(w.written(), &before[..], "size {size}");
                }
                Err(e) => panic!("size {size}: {e}"),
            }
        }
        assert!(w.len() <= size);
        let written = w.written().to_vec();
        if written.is_empty() {
            assert_eq!(ok, 0);
        } else {
            assert_eq!(parse_all(&written).len(), ok, "size {size}");
        }
    }
}

fn write_step(
    w: &mut Writer<'_>,
    step: usize,
    twcc: &[(u16, Option<i64>)],
) -> Result<(), WriteError> {
    match step {
        0 => w.sender_report(&SenderInfo::default(), &blocks(2)),
        1 => w.receiver_report(1, &blocks(1)),
        2 => w.sdes_cname(1, "cname"),
        3 => w.nack(1, 2, (0..200).step_by(3)),
        4 => w.pli(1, 2),
        5 => w.fir(1, &[FirEntry::default(); 3]),
        6 => w.remb(1, 5_000_000, &[1, 2]),
        7 => {
            let consumed = w.transport_feedback(&TransportFeedbackHeader::default(), twcc)?;
            assert!(consumed >= 1 && consumed <= twcc.len());
            Ok(())
        }
        _ => w.bye(&[1, 2, 3]),
    }
}

#[test]
fn reading_and_writing_allocate_nothing() {
    let datagram = sample_compound();
    let twcc: Vec<_> = (0..400u16)
        .filter(|s| s % 5 != 0)
        .map(|s| (s, Some(i64::from(s) * 3000 - 100_000)))
        .collect();
    let blocks = blocks(4);
    let mut buf = [0u8; 1500];
    let info = allocation_counter::measure(|| {
        assert!(!walk(&datagram));
        let mut w = Writer::new(&mut buf);
        w.sender_report(&SenderInfo::default(), &blocks).unwrap();
        w.receiver_report(1, &blocks).unwrap();
        w.sdes_cname(1, "cname").unwrap();
        w.nack(1, 2, (0..200).step_by(3)).unwrap();
        w.pli(1, 2).unwrap();
        w.fir(1, &[FirEntry::default(); 3]).unwrap();
        w.remb(1, 5_000_000, &[1, 2]).unwrap();
        let header = TransportFeedbackHeader::default();
        assert_eq!(w.transport_feedback(&header, &twcc), Ok(twcc.len()));
        w.bye(&[1, 2, 3]).unwrap();
        assert!(!walk(w.written()));
    });
    assert_eq!(info.count_total, 0);
}
