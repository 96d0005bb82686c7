//! One received SSRC's statistics and the report block a receiver report
//! carries for it (RFC 3550 §6.4.1).

use std::time::Instant;

use super::jitter::Jitter;
use super::sequence::{Counters, Sequence};
pub use crate::rtcp::ReportBlock;

/// What the bridge keeps about one SSRC it receives, for its receiver reports.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sfu::receive::{ReceiveStats, Sequence};
///
/// let t = Instant::now();
/// let mut stats = ReceiveStats::new(7, 48_000);
/// assert_eq!(stats.handle_packet(t, 100, 0), Sequence::Probation);
/// assert_eq!(stats.handle_packet(t, 101, 960), Sequence::Ahead);
/// stats.handle_sender_report(t, 0x0001_0002_0003_0004);
/// let block = stats.poll_report_block(t + Duration::from_millis(500)).unwrap();
/// assert_eq!((block.last_sr, block.delay_since_last_sr), (0x0002_0003, 32_768));
/// ```
#[derive(Debug)]
pub struct ReceiveStats {
    ssrc: u32,
    counters: Counters,
    jitter: Jitter,
    /// LSR of the last sender report and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

/// Cumulative loss as the wire carries it: 24 bits, signed.
const CUMULATIVE_LOST_MAX: i64 = 0x7f_ffff;
const CUMULATIVE_LOST_MIN: i64 = -0x80_0000;

impl ReceiveStats {
    /// Statistics for `ssrc`, whose RTP timestamps count `clock_rate` per second.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        ReceiveStats {
            ssrc,
            counters: Counters::default(),
            jitter: Jitter::new(clock_rate),
            last_sr: None,
        }
    }

    /// A packet of this SSRC arrived at `now` (after SRTP, so it is genuine).
    pub fn handle_packet(&mut self, now: Instant, seq: u16, timestamp: u32) -> Sequence {
        let taken = self.counters.update(seq);
        match taken {
            Sequence::Ahead | Sequence::Behind => self.jitter.observe(now, timestamp, true),
            // Its transit is the reference for the packet that validates the source.
            Sequence::Probation => self.jitter.observe(now, timestamp, false),
            Sequence::Restart => {
                self.jitter.restart();
                self.jitter.observe(now, timestamp, false);
            }
            Sequence::Jump => {}
        }
        taken
    }

    /// A sender report for this SSRC arrived at `now` carrying the 64-bit NTP
    /// timestamp `ntp`.
    pub fn handle_sender_report(&mut self, now: Instant, ntp: u64) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// The report block for a receiver report sent at `now`, or `None` before
    /// the source is validated. Each call closes an interval: the next block's
    /// fraction lost counts from here.
    pub fn poll_report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        if !self.counters.validated() {
            return None;
        }
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let since = now.saturating_duration_since(at);
                let units = since.as_secs().saturating_mul(65_536)
                    + u64::from(since.subsec_nanos()) * 65_536 / 1_000_000_000;
                (lsr, units.min(u64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost: self.counters.close_interval(),
            cumulative_lost: self
                .counters
                .lost()
                .clamp(CUMULATIVE_LOST_MIN, CUMULATIVE_LOST_MAX)
                as i32,
            extended_highest_seq: self.counters.extended_highest(),
            jitter: self.jitter.value(),
            last_sr,
            delay_since_last_sr,
        })
    }

    /// The SSRC these statistics are about.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packets received since counting started (late and duplicate ones included).
    pub fn received(&self) -> u64 {
        self.counters.received()
    }

    /// Packets expected since counting started.
    pub fn expected(&self) -> u64 {
        self.counters.expected()
    }

    /// Interarrival jitter so far, in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter.value()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    /// A scripted stream, its numbers worked out by hand from Appendix A.
    #[test]
    fn loss_reordering_duplicates_wrap_and_restart_by_hand() {
        use Sequence::*;
        let t = Instant::now();
        let mut s = ReceiveStats::new(0xabc, 90_000);
        assert_eq!(s.poll_report_block(t), None, "nothing before validation");

        // 65533 is late, 0 lost, 1 duplicated, 3 and 4 lost; the numbers wrap.
        let script = [
            (65_530, Probation),
            (65_531, Ahead), // counting starts: base 65531
            (65_532, Ahead),
            (65_534, Ahead),
            (65_533, Behind),
            (65_535, Ahead),
            (1, Ahead),
            (1, Behind),
            (2, Ahead),
            (5, Ahead),
        ];
        for (seq, taken) in script {
            assert_eq!(s.handle_packet(t, seq, 0), taken, "seq {seq}");
        }
        // Highest 5 after one wrap: 65536 + 5. Expected 65531..=65541, 11;
        // received 9 (the duplicate counts): 2 lost; 2 * 256 / 11 = 46.
        let b = s.poll_report_block(t).unwrap();
        assert_eq!(b.extended_highest_seq, 65_541);
        assert_eq!((b.cumulative_lost, b.fraction_lost), (2, 46));
        assert_eq!((s.expected(), s.received()), (11, 9));

        // 8 lost, but 3 arrives late: this interval expected 5 and received 5.
        for seq in [6, 7, 9, 10, 3] {
            s.handle_packet(t, seq, 0);
        }
        let b = s.poll_report_block(t).unwrap();
        assert_eq!(b.extended_highest_seq, 65_546);
        assert_eq!((b.cumulative_lost, b.fraction_lost), (2, 0));

        // The sender restarts at 30000: the first packet is held, the second
        // confirms it and counting starts over.
        assert_eq!(s.handle_packet(t, 30_000, 0), Jump);
        assert_eq!(s.handle_packet(t, 30_001, 0), Restart);
        s.handle_packet(t, 30_003, 0);
        // A stray far-off packet alone changes nothing.
        assert_eq!(s.handle_packet(t, 50_000, 0), Jump);
        s.handle_packet(t, 30_004, 0);
        // Expected 30001..=30004, 4; received 3; 1 * 256 / 4 = 64.
        let b = s.poll_report_block(t).unwrap();
        assert_eq!(b.extended_highest_seq, 30_004);
        assert_eq!((b.cumulative_lost, b.fraction_lost), (1, 64));
    }

    /// Appendix A.8 in integers: J += |D| - ((J + 8) >> 4), reported J >> 4.
    #[test]
    fn jitter_of_a_known_arrival_pattern_by_hand() {
        let t = Instant::now();
        let mut s = ReceiveStats::new(1, 8000);
        // 20 ms packets (160 units); packets 2 and 5 arrive 5 and 10 ms late.
        let late_ms = [0, 0, 5, 0, 0, 10, 0];
        for (i, late) in late_ms.into_iter().enumerate() {
            let i = i as u64;
            s.handle_packet(ms(t, 20 * i + late), i as u16, 160 * i as u32);
        }
        // Transits 0, 0, 40, 0, 0, 80, 0 units; |D| = 0, 40, 40, 0, 80, 80
        // from packet 1 on. J (times 16): 0, 40, 77, 72, 147, 218 -> 13.
        assert_eq!(s.jitter(), 13);
        assert_eq!(s.poll_report_block(t).unwrap().jitter, 13);
    }

    #[test]
    fn lsr_and_dlsr_come_from_the_last_sender_report() {
        let t = Instant::now();
        let mut s = ReceiveStats::new(1, 90_000);
        s.handle_packet(t, 1, 0);
        s.handle_packet(t, 2, 0);
        let b = s.poll_report_block(t).unwrap();
        assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0));
        s.handle_sender_report(t, 0xdead_beef_cafe_f00d);
        s.handle_sender_report(ms(t, 100), 0x1122_3344_5566_7788);
        let b = s.poll_report_block(ms(t, 1350)).unwrap();
        // 1.25 s is 81920 / 65536.
        assert_eq!((b.last_sr, b.delay_since_last_sr), (0x3344_5566, 81_920));
        // A report clock behind the SR's arrival says 0, not a wrapped delay.
        assert_eq!(s.poll_report_block(t).unwrap().delay_since_last_sr, 0);
    }

    #[test]
    fn cumulative_loss_stays_in_24_bits() {
        let t = Instant::now();
        let mut s = ReceiveStats::new(1, 90_000);
        s.handle_packet(t, 0, 0);
        s.handle_packet(t, 1, 0);
        // Steps just under the dropout limit: 22 packets received per wrap.
        for _ in 0..200 {
            for seq in (1..65_536u32).step_by(2_999) {
                s.handle_packet(t, seq as u16, 0);
            }
        }
        let b = s.poll_report_block(t).unwrap();
        assert_eq!(b.extended_highest_seq >> 16, 199);
        assert_eq!(b.cumulative_lost, 0x7f_ffff);
        let mut dup = ReceiveStats::new(1, 90_000);
        for seq in [0, 1, 1, 1, 1] {
            dup.handle_packet(t, seq, 0);
        }
        assert_eq!(dup.poll_report_block(t).unwrap().cumulative_lost, -3);
    }
}
