//! Which sequence numbers of a received video stream to ask for again
//! (generic NACK, RFC 4585 §6.2.1), and when.
//!
//! A gap is asked for after [`REORDER_WAIT`], in case the packet is only
//! reordered, then again every round trip until it arrives, [`MAX_NACKS`]
//! requests were sent or it is [`MAX_AGE`] old. At most [`MAX_MISSING`]
//! numbers are tracked: a larger gap (an outage, a sender restart) clears the
//! list instead, since retransmitting it could not arrive in time to help, and
//! a key frame is the way back.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::unwrap_seq;

/// How long a gap waits for a reordered packet before its first NACK.
///
/// libwebrtc sends its first NACK as soon as it sees the gap (its reordering
/// histogram is fed only by packets known not to be retransmissions, which it
/// no longer learns), with an optional delay of up to 20 ms
/// (`WebRTC-SendNackDelayMs`). Reordering on a path is mostly well within
/// 10 ms, and every real loss waits this long before recovery starts, so the
/// wait is short; a time rather than a packet count, because a low-rate layer
/// may take 100 ms to bring the next packets.
pub const REORDER_WAIT: Duration = Duration::from_millis(10);
/// Round-trip time assumed until the caller knows one (libwebrtc's default).
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// Shortest interval between two NACKs of a number, however small the RTT
/// (libwebrtc processes NACKs every 20 ms).
const MIN_RESEND: Duration = Duration::from_millis(20);
/// Longest interval between two NACKs of a number, however large the RTT.
const MAX_RESEND: Duration = Duration::from_secs(1);
/// NACKs sent for one number before giving up on it (libwebrtc's and Jitsi
/// Videobridge's limit).
pub const MAX_NACKS: u8 = 10;
/// Age of a gap after which it is not asked for again: the receivers' jitter
/// buffers have moved on and asked for a key frame long before.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Missing numbers tracked at most; a gap larger than this clears the list.
/// About a second of a 2.5 Mbit/s stream (libwebrtc keeps 1000, Jitsi
/// Videobridge resets on 100 in a row).
pub const MAX_MISSING: usize = 256;
/// A packet this far behind the newest that nobody asked for may be the first
/// of a sender that restarted its numbering lower; the next one confirms it.
const RESTART_BEHIND: i64 = 3000;

/// What one arriving packet changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NackUpdate {
    /// The newest number so far; any numbers skipped are now missing.
    Newest,
    /// A missing number arrived (reordered, or retransmitted after a NACK).
    Filled {
        /// Whether it had been asked for.
        nacked: bool,
    },
    /// A duplicate, or older than anything tracked: nothing changed.
    Ignored,
    /// A jump too large to ask for (an outage or a sender restart): the list
    /// was cleared and tracking starts over from this packet. The receivers
    /// will need a key frame.
    Reset,
}

/// One missing sequence number.
#[derive(Debug)]
struct Missing {
    seq: i64,
    noticed: Instant,
    last_nack: Option<Instant>,
    nacks: u8,
}

/// NACK generation for one received video SSRC (RTX packets are passed in
/// with their original sequence number).
///
/// ```
/// use std::time::Duration;
/// use std::time::Instant;
/// use sfu::receive::{NackGenerator, NackUpdate, REORDER_WAIT};
///
/// let t = Instant::now();
/// let mut nacks = NackGenerator::new();
/// nacks.handle_packet(t, 10);
/// nacks.handle_packet(t, 13); // 11 and 12 missing
/// assert_eq!(nacks.poll_timeout(), Some(t + REORDER_WAIT));
/// let mut out = [0u16; 8];
/// let n = nacks.poll_nacks(t + REORDER_WAIT, &mut out);
/// assert_eq!(&out[..n], &[11, 12]);
/// let later = t + Duration::from_millis(50);
/// assert_eq!(nacks.handle_packet(later, 11), NackUpdate::Filled { nacked: true });
/// ```
#[derive(Debug)]
pub struct NackGenerator {
    /// In ascending sequence order.
    missing: VecDeque<Missing>,
    /// The newest number received, unwrapped.
    newest: Option<i64>,
    /// The number that would confirm a restart lower down.
    restart_confirm: Option<u16>,
    resend: Duration,
}

impl Default for NackGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl NackGenerator {
    /// A generator with room for [`MAX_MISSING`] numbers, allocated now.
    pub fn new() -> Self {
        NackGenerator {
            missing: VecDeque::with_capacity(MAX_MISSING),
            newest: None,
            restart_confirm: None,
            resend: DEFAULT_RTT,
        }
    }

    /// The round-trip time to the sender, `None` when unknown; NACKs of a
    /// number are repeated at this interval.
    pub fn set_rtt(&mut self, rtt: Option<Duration>) {
        self.resend = rtt.unwrap_or(DEFAULT_RTT).clamp(MIN_RESEND, MAX_RESEND);
    }

    /// A packet with sequence number `seq` arrived at `now` (for RTX, its
    /// original sequence number).
    pub fn handle_packet(&mut self, now: Instant, seq: u16) -> NackUpdate {
        let Some(newest) = self.newest else {
            self.newest = Some(i64::from(seq));
            return NackUpdate::Newest;
        };
        let seq_ext = unwrap_seq(newest, seq);
        if seq_ext > newest {
            self.restart_confirm = None;
            let gap = (seq_ext - newest - 1) as usize;
            self.newest = Some(seq_ext);
            if gap > MAX_MISSING {
                self.missing.clear();
                return NackUpdate::Reset;
            }
            // The oldest make room: they are the least likely to still help.
            let excess = (self.missing.len() + gap).saturating_sub(MAX_MISSING);
            self.missing.drain(..excess);
            self.missing
                .extend((newest + 1..seq_ext).map(|seq| Missing {
                    seq,
                    noticed: now,
                    last_nack: None,
                    nacks: 0,
                }));
            return NackUpdate::Newest;
        }
        if let Ok(i) = self.missing.binary_search_by_key(&seq_ext, |m| m.seq) {
            let filled = self.missing.remove(i);
            return NackUpdate::Filled {
                nacked: filled.is_some_and(|m| m.nacks > 0),
            };
        }
        if newest - seq_ext > RESTART_BEHIND {
            if self.restart_confirm == Some(seq) {
                self.missing.clear();
                self.newest = Some(seq_ext);
                self.restart_confirm = None;
                return NackUpdate::Reset;
            }
            self.restart_confirm = Some(seq.wrapping_add(1));
        }
        NackUpdate::Ignored
    }

    /// Writes the sequence numbers to NACK at `now` into `out`, in ascending
    /// order, and returns how many; any that did not fit stay due.
    pub fn poll_nacks(&mut self, now: Instant, out: &mut [u16]) -> usize {
        let resend = self.resend;
        let mut written = 0;
        self.missing.retain_mut(|m| {
            if due(m, resend) > now {
                return true;
            }
            // Spent numbers stay one more interval, so their retransmission
            // still counts as filling a gap rather than as a stray packet.
            if m.nacks >= MAX_NACKS || now.saturating_duration_since(m.noticed) >= MAX_AGE {
                return false;
            }
            if written < out.len() {
                out[written] = m.seq as u16;
                written += 1;
                m.nacks += 1;
                m.last_nack = Some(now);
            }
            true
        });
        written
    }

    /// When [`poll_nacks`](Self::poll_nacks) next has something to do; `None`
    /// while nothing is missing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resend = self.resend;
        self.missing.iter().map(|m| due(m, resend)).min()
    }

    /// How many numbers are missing now.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }
}

/// When a missing number is next asked for (or, once spent, forgotten).
fn due(m: &Missing, resend: Duration) -> Instant {
    match m.last_nack {
        Some(at) => at + resend,
        None => m.noticed + REORDER_WAIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    fn poll(g: &mut NackGenerator, now: Instant) -> Vec<u16> {
        let mut out = [0u16; MAX_MISSING];
        let n = g.poll_nacks(now, &mut out);
        out[..n].to_vec()
    }

    /// Every NACK until the generator has nothing left, as (ms, seqs).
    fn run_out(g: &mut NackGenerator, t: Instant) -> Vec<(u64, Vec<u16>)> {
        let mut sent = Vec::new();
        while let Some(at) = g.poll_timeout() {
            let nacked = poll(g, at);
            if !nacked.is_empty() {
                sent.push(((at - t).as_millis() as u64, nacked));
            }
        }
        sent
    }

    #[test]
    fn first_nack_after_the_reorder_wait_then_every_rtt() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        for (at, seq) in [(0, 1), (1, 2), (2, 4), (3, 5)] {
            g.handle_packet(ms(t, at), seq);
        }
        assert_eq!(g.poll_timeout(), Some(ms(t, 12)));
        assert!(poll(&mut g, ms(t, 11)).is_empty());
        assert_eq!(poll(&mut g, ms(t, 12)), [3]);
        assert_eq!(g.poll_timeout(), Some(ms(t, 112)), "default RTT");
        assert!(poll(&mut g, ms(t, 111)).is_empty());
        assert_eq!(poll(&mut g, ms(t, 112)), [3]);
        g.set_rtt(Some(Duration::from_millis(40)));
        assert_eq!(g.poll_timeout(), Some(ms(t, 152)));
        assert_eq!(poll(&mut g, ms(t, 152)), [3]);
    }

    #[test]
    fn a_packet_that_arrives_within_the_reorder_wait_is_not_nacked() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.handle_packet(t, 100);
        g.handle_packet(ms(t, 1), 102);
        assert_eq!(
            g.handle_packet(ms(t, 9), 101),
            NackUpdate::Filled { nacked: false }
        );
        assert_eq!(g.poll_timeout(), None);
        assert!(poll(&mut g, ms(t, 50)).is_empty());
    }

    #[test]
    fn a_late_or_retransmitted_packet_stops_its_nacks() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.handle_packet(t, 7);
        g.handle_packet(t, 10);
        assert_eq!(poll(&mut g, ms(t, 10)), [8, 9]);
        // 8 comes back through RTX (the caller unwrapped it).
        assert_eq!(
            g.handle_packet(ms(t, 60), 8),
            NackUpdate::Filled { nacked: true }
        );
        assert_eq!(g.handle_packet(ms(t, 61), 8), NackUpdate::Ignored);
        assert_eq!(poll(&mut g, ms(t, 110)), [9]);
    }

    #[test]
    fn nacks_stop_after_the_limit() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.set_rtt(Some(Duration::from_millis(30)));
        g.handle_packet(t, 1);
        g.handle_packet(t, 3);
        let sent = run_out(&mut g, t);
        let times: Vec<u64> = sent.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [10, 40, 70, 100, 130, 160, 190, 220, 250, 280]);
        assert!(sent.iter().all(|(_, seqs)| seqs == &[2]));
        assert_eq!(g.missing(), 0);
    }

    #[test]
    fn nacks_stop_at_the_age_limit() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.set_rtt(Some(Duration::from_millis(300)));
        g.handle_packet(t, 1);
        g.handle_packet(t, 3);
        let times: Vec<u64> = run_out(&mut g, t).into_iter().map(|(at, _)| at).collect();
        assert_eq!(times, [10, 310, 610, 910]);
        // Its retransmission, one RTT after the last NACK, still fills the gap.
        let mut g = NackGenerator::new();
        g.set_rtt(Some(Duration::from_millis(300)));
        g.handle_packet(t, 1);
        g.handle_packet(t, 3);
        for at in [10, 310, 610, 910] {
            poll(&mut g, ms(t, at));
        }
        assert_eq!(
            g.handle_packet(ms(t, 1200), 2),
            NackUpdate::Filled { nacked: true }
        );
    }

    #[test]
    fn gaps_across_the_wrap() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.handle_packet(t, 65_533);
        g.handle_packet(t, 1);
        assert_eq!(poll(&mut g, ms(t, 10)), [65_534, 65_535, 0]);
    }

    #[test]
    fn a_huge_gap_resets_instead_of_nacking_it() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.handle_packet(t, 1000);
        g.handle_packet(t, 1002);
        // MAX_MISSING + 1 numbers skipped.
        assert_eq!(
            g.handle_packet(t, 1004 + MAX_MISSING as u16),
            NackUpdate::Reset
        );
        assert_eq!((g.missing(), g.poll_timeout()), (0, None));
        // A gap of exactly the limit is still asked for.
        assert_eq!(
            g.handle_packet(t, 1005 + 2 * MAX_MISSING as u16),
            NackUpdate::Newest
        );
        assert_eq!(poll(&mut g, ms(t, 10)).len(), MAX_MISSING);
    }

    #[test]
    fn a_restart_lower_down_is_followed_after_two_packets() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.handle_packet(t, 40_000);
        // A lone old packet is ignored...
        assert_eq!(g.handle_packet(t, 10_000), NackUpdate::Ignored);
        assert_eq!(g.handle_packet(t, 40_001), NackUpdate::Newest);
        // ...two in a row are a restart.
        assert_eq!(g.handle_packet(t, 20_000), NackUpdate::Ignored);
        assert_eq!(g.handle_packet(t, 20_001), NackUpdate::Reset);
        assert_eq!(g.handle_packet(t, 20_003), NackUpdate::Newest);
        assert_eq!(poll(&mut g, ms(t, 10)), [20_002]);
    }

    #[test]
    fn many_small_gaps_keep_the_newest() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        for i in 0..1000u16 {
            g.handle_packet(t, i * 2);
        }
        assert_eq!(g.missing(), MAX_MISSING);
        let nacked = poll(&mut g, ms(t, 10));
        assert_eq!(nacked.first(), Some(&(1997 - 2 * (MAX_MISSING as u16 - 1))));
        assert_eq!(nacked.last(), Some(&1997));
    }

    #[test]
    fn random_numbers_and_times_keep_the_list_in_its_allocation() {
        let t = Instant::now() + Duration::from_secs(100);
        let mut g = NackGenerator::new();
        let capacity = g.missing.capacity();
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut out = [0u16; 64];
        for i in 0..50_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let now = if x.is_multiple_of(5) {
                t - Duration::from_millis(x % 90_000)
            } else {
                ms(t, i)
            };
            g.handle_packet(
                now,
                (x >> 20) as u16 % if x.is_multiple_of(3) { 600 } else { 65_535 },
            );
            g.poll_nacks(now, &mut out);
            assert!(g.missing() <= MAX_MISSING);
            assert!(
                g.missing
                    .iter()
                    .zip(g.missing.iter().skip(1))
                    .all(|(a, b)| a.seq < b.seq)
            );
        }
        assert_eq!(g.missing.capacity(), capacity);
    }

    #[test]
    fn a_small_buffer_takes_the_rest_next_time() {
        let t = Instant::now();
        let mut g = NackGenerator::new();
        g.handle_packet(t, 0);
        g.handle_packet(t, 6);
        let mut out = [0u16; 2];
        assert_eq!(g.poll_nacks(ms(t, 10), &mut out), 2);
        assert_eq!(out, [1, 2]);
        assert_eq!(g.poll_timeout(), Some(ms(t, 10)));
        assert_eq!(poll(&mut g, ms(t, 10)), [3, 4, 5]);
    }
}
