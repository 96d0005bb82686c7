//! The RTCP of one transport: what its endpoint reports to the bridge
//! (reports on what it is sent, transport-wide feedback, sender reports) and
//! what the bridge sends it on its timers or when asked (transport-wide
//! feedback, NACKs, sender and receiver reports, PLIs).
//!
//! Feedback goes out alone (RFC 5506's reduced size), not behind an empty
//! receiver report: libwebrtc reads either, and some stacks (webrtc-rs) route
//! a compound by its first packet's media SSRC, which an empty report lacks.

use std::time::{Duration, Instant};

use super::{REPORT_INTERVAL, Transport};
use crate::router::transmit::Transmits;
use crate::rtcp::{
    ReportBlock, SenderInfo, TransportFeedback, TransportFeedbackHeader, WriteError, Writer,
};

/// Report blocks one receiver report holds (its 5-bit count).
const MAX_BLOCKS: usize = 31;
/// Transport-wide feedback entries one packet carries at most (the
/// recorder's own limit is below it).
const MAX_FEEDBACK: usize = 512;
/// Lost numbers asked for per stream and timer.
const MAX_NACKS: usize = 64;

impl Transport {
    /// A sender report from the endpoint about its stream `ssrc`.
    pub fn on_sender_report(&mut self, now: Instant, ssrc: u32, ntp: u64) {
        if let Some(r) = self.received.iter_mut().find(|r| r.ssrc == ssrc) {
            r.stats.handle_sender_report(now, ntp);
        }
    }

    /// A report block from the endpoint about a stream the bridge sends it:
    /// the round trip from it (RFC 3550 §6.4.1), which paces NACKs and
    /// retransmissions. Returns the stream's cumulative loss.
    pub fn on_report_block(&mut self, now: Instant, block: &ReportBlock) -> i32 {
        if block.last_sr != 0 {
            // Middle 32 bits of NTP: 1/65536 s.
            let now_mid = (self.ntp(now) >> 16) as u32;
            let rtt = now_mid
                .wrapping_sub(block.last_sr)
                .wrapping_sub(block.delay_since_last_sr);
            // A report from before a clock step or a lying one is ignored.
            if rtt < 65_536 * 10 {
                let rtt = Duration::from_micros(u64::from(rtt) * 1_000_000 / 65_536);
                self.retransmitter.set_rtt(rtt);
                for r in &mut self.received {
                    if let Some(nack) = r.nack.as_mut() {
                        nack.set_rtt(Some(rtt));
                    }
                }
            }
        }
        block.cumulative_lost
    }

    /// Transport-wide feedback from the endpoint on what the bridge sent it.
    pub fn on_transport_feedback(&mut self, now: Instant, feedback: &TransportFeedback<'_>) {
        let reference = feedback.reference_time_us();
        self.bwe.on_feedback(
            now,
            feedback
                .packets()
                .map(|(seq, at)| (seq, at.map(|a| reference + a))),
        );
    }

    /// Asks the endpoint for a key frame of its stream `ssrc`.
    pub fn send_pli(&mut self, out: &mut Transmits, ssrc: u32) {
        let rtcp_ssrc = self.rtcp_ssrc;
        write_rtcp(out, &mut self.srtp, self.destination, |w| {
            w.pli(rtcp_ssrc, ssrc)
        });
    }

    /// Sends the RTCP that is due: transport-wide feedback and NACKs on the
    /// endpoint's streams, and about once a second sender reports for what
    /// it is sent and a receiver report on what it sends; and a probe's
    /// padding when one is under way.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Transmits) {
        self.send_probe(now, out);
        self.send_transport_feedback(now, out);
        self.send_nacks(now, out);
        if now >= self.reports_at {
            self.reports_at = now + REPORT_INTERVAL;
            self.send_reports(now, out);
        }
    }

    fn send_transport_feedback(&mut self, now: Instant, out: &mut Transmits) {
        let rtcp_ssrc = self.rtcp_ssrc;
        let media_ssrc = self.received.first().map_or(0, |r| r.ssrc);
        let mut entries = [(0u16, None::<i64>); MAX_FEEDBACK];
        while let Some(feedback) = self.arrivals.poll_feedback(now) {
            let reference = feedback.reference_us() as i64;
            let mut n = 0;
            for (seq, at) in feedback.packets().take(MAX_FEEDBACK) {
                entries[n] = (seq, at.map(|a| a as i64 - reference));
                n += 1;
            }
            let header = TransportFeedbackHeader {
                sender_ssrc: rtcp_ssrc,
                media_ssrc,
                base_seq: feedback.base_seq,
                reference_time: feedback.reference_time as i32,
                feedback_count: feedback.feedback_count,
            };
            let (srtp, destination) = (&mut self.srtp, self.destination);
            write_rtcp(out, srtp, destination, |w| {
                w.transport_feedback(&header, &entries[..n]).map(|_| ())
            });
        }
    }

    fn send_nacks(&mut self, now: Instant, out: &mut Transmits) {
        let rtcp_ssrc = self.rtcp_ssrc;
        let mut lost = [0u16; MAX_NACKS];
        for i in 0..self.received.len() {
            let r = &mut self.received[i];
            let Some(nack) = r.nack.as_mut() else {
                continue;
            };
            if nack.poll_timeout().is_none_or(|t| t > now) {
                continue;
            }
            let n = nack.poll_nacks(now, &mut lost);
            if n == 0 {
                continue;
            }
            let ssrc = r.ssrc;
            let (srtp, destination) = (&mut self.srtp, self.destination);
            write_rtcp(out, srtp, destination, |w| {
                w.nack(rtcp_ssrc, ssrc, lost[..n].iter().copied())
            });
        }
    }

    fn send_reports(&mut self, now: Instant, out: &mut Transmits) {
        let ntp = self.ntp(now);
        let mut blocks = [ReportBlock::default(); MAX_BLOCKS];
        let mut n = 0;
        for r in &mut self.received {
            if n == MAX_BLOCKS {
                break;
            }
            if let Some(block) = r.stats.poll_report_block(now) {
                blocks[n] = block;
                n += 1;
            }
        }
        let rtcp_ssrc = self.rtcp_ssrc;
        let (srtp, destination, sent) = (&mut self.srtp, self.destination, &self.sent);
        // One compound per sender report keeps each inside a datagram.
        let mut first = true;
        for s in sent {
            let Some(rtp_time) = s.rtp_time(now) else {
                continue;
            };
            let info = SenderInfo {
                ssrc: s.ssrc,
                ntp_time: ntp,
                rtp_time,
                packet_count: s.packets,
                octet_count: s.octets,
            };
            let with = if std::mem::take(&mut first) {
                &blocks[..n]
            } else {
                &[]
            };
            write_rtcp(out, srtp, destination, |w| w.sender_report(&info, with));
        }
        if first && n > 0 {
            write_rtcp(out, srtp, destination, |w| {
                w.receiver_report(rtcp_ssrc, &blocks[..n])
            });
        }
    }
}

/// Writes one RTCP compound into a datagram, protects it and queues it; a
/// compound that does not fit is not sent.
fn write_rtcp(
    out: &mut Transmits,
    srtp: &mut crate::srtp::Session,
    destination: std::net::SocketAddr,
    write: impl FnOnce(&mut Writer<'_>) -> Result<(), WriteError>,
) {
    let mut slot = out.reserve();
    let buf = slot.buf();
    // Room left for SRTCP's index and tag.
    let room = buf.len() - srtp.outbound.profile().rtcp_overhead();
    let mut writer = Writer::new(&mut buf[..room]);
    if write(&mut writer).is_err() || writer.is_empty() {
        return;
    }
    let len = writer.len();
    if let Ok(len) = srtp.outbound.protect_rtcp(buf, len) {
        slot.commit(len, destination);
    }
}
