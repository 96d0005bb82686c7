//! What the bridge keeps about the RTP it receives from a sender, so it can
//! give that sender the feedback a browser expects from its peer: receiver
//! report blocks, NACKs for lost video and transport-wide congestion control
//! (TWCC) feedback.
//!
//! Three sans-IO pieces, each fed packets with their arrival `Instant` and
//! asked for output; none reads a clock or allocates per packet:
//! - [`ReceiveStats`], one per received SSRC: RFC 3550's sequence validation,
//!   loss, jitter and LSR/DLSR, given out as a [`ReportBlock`].
//! - [`NackGenerator`], one per received video SSRC: which sequence numbers to
//!   ask for again, and when.
//! - [`TwccRecorder`], one per endpoint: arrival times by transport-wide
//!   sequence number, given out as [`TwccFeedback`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sfu::receive::{NackGenerator, ReceiveStats, TwccRecorder};
//!
//! let start = Instant::now();
//! let mut stats = ReceiveStats::new(0x1234, 90_000);
//! let mut nacks = NackGenerator::new();
//! let mut twcc = TwccRecorder::new(start);
//! // Sequence 3 is lost.
//! for (i, seq) in [1u16, 2, 4, 5].into_iter().enumerate() {
//!     let now = start + Duration::from_millis(10 * i as u64);
//!     stats.handle_packet(now, seq, 3000 * u32::from(seq));
//!     nacks.handle_packet(now, seq);
//!     twcc.handle_packet(now, 100 + seq);
//! }
//! let now = nacks.poll_timeout().unwrap();
//! let mut out = [0u16; 16];
//! let n = nacks.poll_nacks(now, &mut out);
//! assert_eq!(&out[..n], &[3]);
//!
//! let block = stats.poll_report_block(now).unwrap();
//! assert_eq!((block.ssrc, block.extended_highest_seq, block.cumulative_lost), (0x1234, 5, 1));
//!
//! let feedback = twcc.poll_feedback(twcc.poll_timeout().unwrap()).unwrap();
//! assert_eq!(feedback.base_seq, 101);
//! let received: Vec<bool> = feedback.packets().map(|(_, at)| at.is_some()).collect();
//! assert_eq!(received, [true, true, false, true, true]);
//! ```

mod jitter;
mod nack;
mod sequence;
mod stats;
#[cfg(test)]
mod tests;
mod twcc;

pub use nack::{
    DEFAULT_RTT, MAX_AGE, MAX_MISSING, MAX_NACKS, NackGenerator, NackUpdate, REORDER_WAIT,
};
pub use sequence::Sequence;
pub use stats::{ReceiveStats, ReportBlock};
pub use twcc::{
    BUSY_FEEDBACK_INTERVAL, FEEDBACK_INTERVAL, MAX_STATUSES, TwccFeedback, TwccRecorder,
};

/// The unwrapped sequence number nearest to `last` (itself unwrapped) whose
/// low 16 bits are `seq`: ahead of it by up to 2^15 - 1, or behind by up to 2^15.
fn unwrap_seq(last: i64, seq: u16) -> i64 {
    last + i64::from(seq.wrapping_sub(last as u16) as i16)
}

#[cfg(test)]
mod unwrap_tests {
    use super::unwrap_seq;

    #[test]
    fn unwrapping_follows_wraps_both_ways() {
        assert_eq!(unwrap_seq(65_535, 0), 65_536);
        assert_eq!(unwrap_seq(65_536, 65_535), 65_535);
        assert_eq!(unwrap_seq(10, 5), 5);
        assert_eq!(unwrap_seq(3, 65_534), -2);
        assert_eq!(unwrap_seq(0, 0x7fff), 0x7fff);
        assert_eq!(unwrap_seq(0, 0x8000), -0x8000);
    }
}
