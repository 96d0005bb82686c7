//! Transport-wide congestion control feedback, receive side
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the arrival time of
//! every packet an endpoint sends, by its transport-wide sequence number,
//! reported back so the sender's estimator can see queues build.
//!
//! The recording follows libwebrtc's receive side (`RemoteEstimatorProxy`,
//! `PacketArrivalTimeMap`), which is what browsers expect of their peer:
//! - feedback starts where the last one ended and runs to the newest packet
//!   received, the missing ones in between reported as not received;
//! - a packet arriving after the feedback that reported it missing moves the
//!   next feedback's start back to it, so it and those after it are reported
//!   again (the sender takes the later report);
//! - reported packets are kept until they are 500 ms older than the newest
//!   arrival, for such late ones; a packet further behind the newest than
//!   the recorder can hold is ignored;
//! - one feedback stops before a packet whose delta from the previous one
//!   would not fit the wire's 16 bits of 250 µs, and the next one continues
//!   with a new reference time.
//!
//! Where it differs: libwebrtc sends every 50 to 250 ms depending on the
//! bitrate (5 % of it for feedback; 50 ms from about 220 kbit/s). The bridge
//! does not know the bitrate here, so the packet count stands for it:
//! feedback is due [`FEEDBACK_INTERVAL`] after the last, or
//! [`BUSY_FEEDBACK_INTERVAL`] when more packets are waiting than audio alone
//! sends in that time, or at once when a full feedback ([`MAX_STATUSES`]) is
//! waiting. libwebrtc keeps up to 2^15 packets; this keeps 2048 (500 ms at
//! 4000 packets a second, 16 KiB per endpoint).

use std::time::{Duration, Instant};

use super::unwrap_seq;

/// Feedback interval while few packets arrive.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);
/// Feedback interval when more packets are waiting than audio alone sends in it.
pub const BUSY_FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
/// More than Opus sends in [`BUSY_FEEDBACK_INTERVAL`] (2.5 packets).
const BUSY_PENDING: i64 = 4;
/// Packet statuses in one feedback at most: with every delta two bytes, the
/// feedback stays under 1 KB, inside any path's MTU with SRTCP around it.
pub const MAX_STATUSES: usize = 400;
/// Reported packets are kept this long after the newest arrival.
const BACK_WINDOW_US: u64 = 500_000;
/// Packets kept (a power of two).
const CAPACITY: usize = 2048;
const NOT_RECEIVED: u64 = u64::MAX;
/// The reference time's unit.
const REFERENCE_US: u64 = 64_000;
/// A delta's unit.
const DELTA_US: i64 = 250;

/// Transport-wide sequence numbers and arrival times of one endpoint's packets.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sfu::receive::TwccRecorder;
///
/// let t = Instant::now();
/// let mut twcc = TwccRecorder::new(t);
/// twcc.handle_packet(t, 7);
/// twcc.handle_packet(t + Duration::from_millis(5), 9);
/// let due = twcc.poll_timeout().unwrap();
/// assert_eq!(due, t + Duration::from_millis(100));
/// let feedback = twcc.poll_feedback(due).unwrap();
/// let deltas: Vec<_> = feedback.deltas().collect();
/// assert_eq!(deltas, [(7, Some(0)), (8, None), (9, Some(20))]);
/// ```
#[derive(Debug)]
pub struct TwccRecorder {
    /// Arrival times are microseconds since this instant.
    epoch: Instant,
    /// Arrival time by unwrapped sequence number modulo [`CAPACITY`].
    arrivals: Box<[u64]>,
    /// Kept sequence numbers, `begin..end`.
    begin: i64,
    end: i64,
    /// The last sequence number received, unwrapped (`None` before the first).
    last_seq: Option<i64>,
    /// The first sequence number of the next feedback.
    next_start: i64,
    /// The end of a round of feedback that did not fit one: the rest is due
    /// at once.
    round_end: Option<i64>,
    /// The latest arrival time given, in µs; an earlier `now` is taken as it.
    latest_us: u64,
    last_feedback: Instant,
    feedback_count: u8,
}

/// One transport-wide feedback's contents, for the RTCP writer to encode.
#[derive(Debug)]
pub struct TwccFeedback<'a> {
    /// The first packet's transport-wide sequence number.
    pub base_seq: u16,
    /// The first received packet's arrival, in 64 ms units (the wire's 24 bits).
    pub reference_time: u32,
    /// Feedbacks handed out before this one, modulo 256.
    pub feedback_count: u8,
    /// Packets this feedback reports on, received or not.
    pub status_count: u16,
    arrivals: &'a [u64],
    start: i64,
    reference_us: u64,
}

impl TwccRecorder {
    /// A recorder whose arrival times count from `epoch`; its memory is allocated now.
    pub fn new(epoch: Instant) -> Self {
        TwccRecorder {
            epoch,
            arrivals: vec![NOT_RECEIVED; CAPACITY].into_boxed_slice(),
            begin: 0,
            end: 0,
            last_seq: None,
            next_start: 0,
            round_end: None,
            latest_us: 0,
            last_feedback: epoch,
            feedback_count: 0,
        }
    }

    /// A packet carrying transport-wide sequence number `seq` arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, seq: u16) {
        let arrival = self.arrival_us(now);
        let Some(last) = self.last_seq else {
            let seq = i64::from(seq);
            self.last_seq = Some(seq);
            (self.begin, self.end, self.next_start) = (seq, seq + 1, seq);
            self.set(seq, arrival);
            self.last_feedback = now;
            return;
        };
        let seq = unwrap_seq(last, seq);
        self.last_seq = Some(seq);
        // Once everything is reported, what is older than the back window goes.
        if self.next_start >= self.end
            && let Some(limit) = arrival.checked_sub(BACK_WINDOW_US)
        {
            let check_to = seq.min(self.end);
            while self.begin < check_to && self.get(self.begin).is_none_or(|a| a <= limit) {
                self.begin += 1;
            }
        }
        self.next_start = self.next_start.min(seq);
        if self.get(seq).is_none() {
            self.insert(seq, arrival);
        }
        self.next_start = self.next_start.max(self.begin);
    }

    /// The next feedback if one is due at `now`: call again until `None`, a
    /// round may take more than one.
    pub fn poll_feedback(&mut self, now: Instant) -> Option<TwccFeedback<'_>> {
        if now < self.poll_timeout()? {
            return None;
        }
        let round_end = match self.round_end {
            Some(end) if self.next_start < end => end,
            _ => {
                self.last_feedback = now;
                self.end
            }
        };
        let stop = round_end.min(self.end);
        let Some((first_seq, first)) =
            (self.next_start..stop).find_map(|s| Some((s, self.get(s)?)))
        else {
            // Nothing received left in the round (cannot happen: the newest
            // packet is always received); end the round rather than spin.
            self.next_start = stop;
            self.round_end = None;
            return None;
        };
        // Missing packets before the first received one: as many as fit.
        let start = self.next_start.max(first_seq + 1 - MAX_STATUSES as i64);
        let reference = first / REFERENCE_US;
        let mut position = (reference * REFERENCE_US) as i64;
        let mut reported_to = start;
        for seq in start..stop.min(start + MAX_STATUSES as i64) {
            if let Some(arrival) = self.get(seq) {
                let Some(ticks) = delta_ticks(arrival, position) else {
                    break;
                };
                position += i64::from(ticks) * DELTA_US;
                reported_to = seq + 1;
            }
        }
        self.next_start = reported_to;
        self.round_end = (reported_to < stop).then_some(round_end);
        let feedback_count = self.feedback_count;
        self.feedback_count = self.feedback_count.wrapping_add(1);
        Some(TwccFeedback {
            base_seq: start as u16,
            reference_time: (reference & 0xff_ffff) as u32,
            feedback_count,
            status_count: (reported_to - start) as u16,
            arrivals: &self.arrivals,
            start,
            reference_us: reference * REFERENCE_US,
        })
    }

    /// When feedback is next due; `None` while every packet has been reported.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.last_seq.is_none() || self.next_start >= self.end {
            return None;
        }
        if self.round_end.is_some_and(|end| self.next_start < end) {
            return Some(self.last_feedback);
        }
        let waiting = self.end - self.next_start;
        Some(if waiting >= MAX_STATUSES as i64 {
            self.last_feedback
        } else if waiting >= BUSY_PENDING {
            self.last_feedback + BUSY_FEEDBACK_INTERVAL
        } else {
            self.last_feedback + FEEDBACK_INTERVAL
        })
    }

    fn arrival_us(&mut self, now: Instant) -> u64 {
        let us = now.saturating_duration_since(self.epoch).as_micros();
        self.latest_us = self
            .latest_us
            .max(us.min(u128::from(NOT_RECEIVED - 1)) as u64);
        self.latest_us
    }

    /// Records a packet not seen before (`PacketArrivalTimeMap::AddPacket`).
    fn insert(&mut self, seq: i64, arrival: u64) {
        if seq < self.begin {
            // Older than what is kept: taken only if the newest still fit.
            if self.end - seq > CAPACITY as i64 {
                return;
            }
            for s in seq + 1..self.begin {
                self.set(s, NOT_RECEIVED);
            }
            self.begin = seq;
        } else if seq >= self.end {
            if seq + 1 - self.end >= CAPACITY as i64 {
                // So far ahead that nothing kept could share a feedback with it.
                self.begin = seq;
            } else {
                for s in self.end..seq {
                    self.set(s, NOT_RECEIVED);
                }
                self.begin = self.begin.max(seq + 1 - CAPACITY as i64);
            }
            self.end = seq + 1;
        }
        self.set(seq, arrival);
    }

    /// The arrival time of `seq`, if it is kept and was received.
    fn get(&self, seq: i64) -> Option<u64> {
        if seq < self.begin || seq >= self.end {
            return None;
        }
        let arrival = self.arrivals[slot(seq)];
        (arrival != NOT_RECEIVED).then_some(arrival)
    }

    fn set(&mut self, seq: i64, arrival: u64) {
        self.arrivals[slot(seq)] = arrival;
    }
}

impl TwccFeedback<'_> {
    /// Each packet in order: its sequence number and, if it was received, its
    /// arrival in µs since the recorder's epoch.
    pub fn packets(&self) -> impl Iterator<Item = (u16, Option<u64>)> + '_ {
        (self.start..self.start + i64::from(self.status_count)).map(|seq| {
            let arrival = self.arrivals[slot(seq)];
            (seq as u16, (arrival != NOT_RECEIVED).then_some(arrival))
        })
    }

    /// Each packet in order with its receive delta as the wire carries it: in
    /// 250 µs ticks from the previous received packet's (rounded) time, the
    /// first from the reference time. Every delta fits by construction.
    pub fn deltas(&self) -> impl Iterator<Item = (u16, Option<i16>)> + '_ {
        let mut position = self.reference_us as i64;
        self.packets().map(move |(seq, arrival)| {
            let ticks = arrival.map(|a| {
                let ticks = delta_ticks(a, position).unwrap_or(0);
                position += i64::from(ticks) * DELTA_US;
                ticks
            });
            (seq, ticks)
        })
    }

    /// The arrival of the packet the reference time comes from, rounded down
    /// to 64 ms, in µs since the recorder's epoch (deltas count from it).
    pub fn reference_us(&self) -> u64 {
        self.reference_us
    }
}

/// The delta from `position` to `arrival` in 250 µs ticks, rounded to the
/// nearest (halves away from zero, as libwebrtc); `None` if 16 bits cannot hold it.
fn delta_ticks(arrival: u64, position: i64) -> Option<i16> {
    let delta = arrival as i64 - position;
    let ticks = (delta + delta.signum() * DELTA_US / 2) / DELTA_US;
    i16::try_from(ticks).ok()
}

fn slot(seq: i64) -> usize {
    (seq & (CAPACITY as i64 - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(t: Instant, us: u64) -> Instant {
        t + Duration::from_micros(us)
    }

    fn ms(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    /// A feedback as plain data: (base, reference, count, [(seq, arrival µs)]).
    type Plain = (u16, u32, u8, Vec<(u16, Option<u64>)>);

    fn plain(f: &TwccFeedback<'_>) -> Plain {
        (
            f.base_seq,
            f.reference_time,
            f.feedback_count,
            f.packets().collect(),
        )
    }

    fn drain(r: &mut TwccRecorder, now: Instant) -> Vec<Plain> {
        let mut out = Vec::new();
        while let Some(f) = r.poll_feedback(now) {
            assert_eq!(f.packets().count(), usize::from(f.status_count));
            out.push(plain(&f));
        }
        out
    }

    #[test]
    fn loss_and_reordering_in_one_feedback() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        // 12 is lost, 11 comes after 13.
        for (at, seq) in [(1_000, 10), (2_000, 13), (2_600, 11), (4_000, 14)] {
            r.handle_packet(us(t, at), seq);
        }
        assert_eq!(
            r.poll_timeout(),
            Some(us(t, 1_000) + BUSY_FEEDBACK_INTERVAL)
        );
        assert!(r.poll_feedback(ms(t, 50)).is_none());
        let f = r.poll_feedback(ms(t, 51)).unwrap();
        assert_eq!(
            plain(&f),
            (
                10,
                0,
                0,
                vec![
                    (10, Some(1_000)),
                    (11, Some(2_600)),
                    (12, None),
                    (13, Some(2_000)),
                    (14, Some(4_000))
                ]
            )
        );
        // 1000 µs is 4 ticks; 2600 rounds to 10 (2500); 2000 is -2 from
        // there; 4000 is 8 more.
        let deltas: Vec<_> = f.deltas().map(|(_, d)| d).collect();
        assert_eq!(deltas, [Some(4), Some(6), None, Some(-2), Some(8)]);
        assert_eq!(r.poll_feedback(ms(t, 51)).map(|f| f.base_seq), None);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_packet_late_for_its_feedback_is_reported_again_with_those_after_it() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        for (at, seq) in [(0, 1), (10, 2), (20, 4)] {
            r.handle_packet(ms(t, at), seq);
        }
        let first = drain(&mut r, ms(t, 100));
        assert_eq!(
            first,
            [(
                1,
                0,
                0,
                vec![
                    (1, Some(0)),
                    (2, Some(10_000)),
                    (3, None),
                    (4, Some(20_000))
                ]
            )]
        );
        r.handle_packet(ms(t, 110), 5);
        r.handle_packet(ms(t, 130), 3);
        assert_eq!(r.poll_timeout(), Some(ms(t, 200)));
        let second = drain(&mut r, ms(t, 200));
        assert_eq!(
            second,
            [(
                3,
                130 / 64,
                1,
                vec![(3, Some(130_000)), (4, Some(20_000)), (5, Some(110_000))]
            )]
        );
    }

    #[test]
    fn the_next_feedback_starts_where_the_last_ended_and_duplicates_change_nothing() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        r.handle_packet(t, 100);
        r.handle_packet(ms(t, 1), 100);
        assert_eq!(drain(&mut r, ms(t, 100))[0].3, [(100, Some(0))]);
        r.handle_packet(ms(t, 120), 103);
        let f = drain(&mut r, ms(t, 200));
        assert_eq!(
            f[0].3,
            [(101, None), (102, None), (103, Some(120_000))],
            "the gap after the last feedback is reported"
        );
        assert_eq!(f[0].1, 1, "reference time 120 ms in 64 ms units");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        for (i, seq) in [65_534u16, 65_535, 0, 1].into_iter().enumerate() {
            r.handle_packet(ms(t, i as u64), seq);
        }
        let f = drain(&mut r, ms(t, 100));
        let seqs: Vec<u16> = f[0].3.iter().map(|(s, _)| *s).collect();
        assert_eq!((f[0].0, seqs), (65_534, vec![65_534, 65_535, 0, 1]));
    }

    #[test]
    fn when_feedback_is_due() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        assert_eq!(r.poll_timeout(), None);
        r.handle_packet(t, 0);
        assert_eq!(r.poll_timeout(), Some(t + FEEDBACK_INTERVAL));
        for seq in 1..4 {
            r.handle_packet(t, seq);
        }
        assert_eq!(r.poll_timeout(), Some(t + BUSY_FEEDBACK_INTERVAL));
        drain(&mut r, ms(t, 60));
        assert_eq!(r.poll_timeout(), None);
        r.handle_packet(ms(t, 70), 4);
        assert_eq!(r.poll_timeout(), Some(ms(t, 160)), "from the last feedback");
        for seq in 5..(5 + MAX_STATUSES as u16) {
            r.handle_packet(ms(t, 71), seq);
        }
        assert_eq!(
            r.poll_timeout(),
            Some(ms(t, 60)),
            "a full feedback waits: now"
        );
        // A round that does not fit one feedback continues at once.
        let round = drain(&mut r, ms(t, 72));
        let sizes: Vec<usize> = round.iter().map(|f| f.3.len()).collect();
        assert_eq!(sizes, [MAX_STATUSES, 1]);
        let counts: Vec<u8> = round.iter().map(|f| f.2).collect();
        assert_eq!(counts, [1, 2]);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_long_gap_reports_at_most_a_feedback_of_missing_packets() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        r.handle_packet(t, 0);
        r.handle_packet(ms(t, 1), 1000);
        let f = drain(&mut r, ms(t, 1));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].3, [(0, Some(0))]);
        // The oldest missing ones are dropped, as libwebrtc drops those that
        // do not fit its limit.
        assert_eq!(f[1].0, 1001 - MAX_STATUSES as u16);
        assert_eq!(f[1].3.len(), MAX_STATUSES);
        assert_eq!(f[1].3.iter().filter(|(_, a)| a.is_some()).count(), 1);
        // A jump past what is kept starts over from it.
        r.handle_packet(ms(t, 2), 1000 + CAPACITY as u16);
        assert_eq!(drain(&mut r, ms(t, 200))[0].3, [(3048, Some(2_000))]);
    }

    #[test]
    fn a_delta_too_large_for_16_bits_starts_a_new_feedback() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        r.handle_packet(t, 1);
        // Nobody polled for nine seconds.
        r.handle_packet(ms(t, 9_000), 2);
        r.handle_packet(ms(t, 9_001), 3);
        let f = drain(&mut r, ms(t, 9_002));
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].0, f[0].1, f[0].3.len()), (1, 0, 1));
        assert_eq!((f[1].0, f[1].1, f[1].3.len()), (2, 9_000 / 64, 2));
    }

    #[test]
    fn old_reported_packets_are_forgotten_after_the_back_window() {
        let t = Instant::now();
        let mut r = TwccRecorder::new(t);
        r.handle_packet(t, 10);
        r.handle_packet(t, 12);
        drain(&mut r, ms(t, 100));
        // 11 arrives 100 ms later: still kept, reported again from it.
        r.handle_packet(ms(t, 100), 11);
        assert_eq!(drain(&mut r, ms(t, 200))[0].0, 11);
        // 600 ms on, 13 makes everything before it old.
        r.handle_packet(ms(t, 700), 13);
        drain(&mut r, ms(t, 800));
        // A duplicate of 10 is no longer known; kept again (it fits), it is
        // reported with what is still kept after it.
        r.handle_packet(ms(t, 801), 10);
        let f = drain(&mut r, ms(t, 900));
        let seqs: Vec<(u16, bool)> = f[0].3.iter().map(|(s, a)| (*s, a.is_some())).collect();
        assert_eq!(seqs, [(10, true), (11, false), (12, false), (13, true)]);
    }

    #[test]
    fn time_going_backwards_keeps_arrivals_in_order() {
        let t = Instant::now() + Duration::from_secs(5);
        let mut r = TwccRecorder::new(t);
        r.handle_packet(ms(t, 50), 1);
        r.handle_packet(ms(t, 20), 2);
        r.handle_packet(t - Duration::from_secs(3), 3);
        let f = drain(&mut r, ms(t, 200));
        assert_eq!(
            f[0].3,
            [(1, Some(50_000)), (2, Some(50_000)), (3, Some(50_000))]
        );
    }
}
