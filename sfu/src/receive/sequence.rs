//! Which packets of a stream count, and how many were expected and received
//! (RFC 3550 Appendix A.1 and A.3).
//!
//! A new source is on probation until [`MIN_SEQUENTIAL`] packets came in
//! sequence; a jump of [`MAX_DROPOUT`] or more ahead (or more than
//! [`MAX_MISORDER`] behind) is believed only when the next packet follows it,
//! and then counting starts over (the sender restarted). Late and duplicate
//! packets count as received, so the cumulative loss can shrink or go
//! negative, as the RFC intends.

/// Packets in sequence before a new source counts.
const MIN_SEQUENTIAL: u8 = 2;
/// A step ahead this large or larger is a jump, not loss.
const MAX_DROPOUT: u16 = 3000;
/// A packet further behind than this is a jump, not reordering.
const MAX_MISORDER: u16 = 100;
/// `udelta` above this (modulo 2^16) is a packet at most [`MAX_MISORDER`] behind.
const BEHIND_FROM: u16 = (65_536 - MAX_MISORDER as u32) as u16;

/// How one packet's sequence number was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    /// The newest so far (after a gap, the numbers skipped count as lost); counted.
    Ahead,
    /// At or behind the newest: reordered or a duplicate; counted.
    Behind,
    /// The source has not sent enough packets in sequence yet; not counted.
    Probation,
    /// Too far from the newest to believe yet; not counted, unless the next
    /// packet follows it.
    Jump,
    /// This packet followed a jump: the sender restarted, counting starts over here.
    Restart,
}

/// The RFC's per-source sequence state.
#[derive(Debug, Default)]
pub(super) struct Counters {
    started: bool,
    probation: u8,
    max_seq: u16,
    /// Times `max_seq` wrapped since `base_seq`.
    cycles: u64,
    base_seq: u16,
    /// The sequence number that would confirm the last jump.
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
}

impl Counters {
    /// Takes a packet's sequence number (`update_seq` of Appendix A.1).
    pub fn update(&mut self, seq: u16) -> Sequence {
        if !self.started {
            self.started = true;
            self.restart(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if udelta == 1 {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.restart(seq);
                    self.received += 1;
                    return Sequence::Ahead;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return Sequence::Probation;
        }
        let taken = if udelta == 0 {
            Sequence::Behind
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1;
            }
            self.max_seq = seq;
            Sequence::Ahead
        } else if udelta <= BEHIND_FROM {
            if self.bad_seq != Some(seq) {
                self.bad_seq = Some(seq.wrapping_add(1));
                return Sequence::Jump;
            }
            self.restart(seq);
            Sequence::Restart
        } else {
            Sequence::Behind
        };
        self.received += 1;
        taken
    }

    /// `init_seq` of Appendix A.1: counting starts at `seq`.
    fn restart(&mut self, seq: u16) {
        self.base_seq = seq;
        self.max_seq = seq;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.expected_prior = 0;
        self.received_prior = 0;
    }

    /// Whether the source passed probation.
    pub fn validated(&self) -> bool {
        self.started && self.probation == 0
    }

    /// The extended highest sequence number received (cycles in the top 16 bits).
    pub fn extended_highest(&self) -> u32 {
        ((self.cycles << 16) | u64::from(self.max_seq)) as u32
    }

    /// Packets expected since counting started (Appendix A.3).
    pub fn expected(&self) -> u64 {
        ((self.cycles << 16) | u64::from(self.max_seq)) + 1 - u64::from(self.base_seq)
    }

    /// Packets received since counting started, late and duplicate ones included.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Expected minus received: negative when duplicates outnumber the lost.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// The fraction lost since the last call, in 1/256 (0 when duplicates or
    /// late packets make up for the loss); the next interval starts here.
    pub fn close_interval(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut Counters, seqs: &[u16]) -> Vec<Sequence> {
        seqs.iter().map(|&s| c.update(s)).collect()
    }

    #[test]
    fn a_source_counts_after_two_packets_in_sequence() {
        use Sequence::*;
        let mut c = Counters::default();
        assert_eq!(feed(&mut c, &[10, 20, 21]), [Probation, Probation, Ahead]);
        assert!(c.validated());
        // Counting starts at the packet that ended probation.
        assert_eq!(
            (c.expected(), c.received(), c.extended_highest()),
            (1, 1, 21)
        );
    }

    #[test]
    fn a_single_jump_is_ignored_and_a_confirmed_one_restarts_counting() {
        use Sequence::*;
        let mut c = Counters::default();
        feed(&mut c, &[0, 1, 2, 3]);
        assert_eq!((c.expected(), c.received()), (3, 3));
        assert_eq!(feed(&mut c, &[5000, 4]), [Jump, Ahead]);
        assert_eq!((c.expected(), c.received()), (4, 4));
        feed(&mut c, &[5, 6, 7, 8, 9, 10, 200]);
        assert_eq!((c.expected(), c.received()), (200, 11));
        // 100 behind is too far for reordering: a jump as well; 99 is not.
        assert_eq!(feed(&mut c, &[100, 101]), [Jump, Behind]);
        assert_eq!((c.expected(), c.received()), (200, 12));
        assert_eq!(feed(&mut c, &[40_000, 40_001]), [Jump, Restart]);
        assert_eq!(
            (c.expected(), c.received(), c.extended_highest()),
            (1, 1, 40_001)
        );
    }

    #[test]
    fn the_fraction_lost_is_per_interval() {
        let mut c = Counters::default();
        feed(&mut c, &[0, 1, 2, 4, 5]);
        // Expected 1..=5, received 4: one lost in five.
        assert_eq!(c.close_interval(), 51); // 256 / 5
        assert_eq!(c.close_interval(), 0);
        feed(&mut c, &[6, 6, 6]);
        assert_eq!((c.close_interval(), c.lost()), (0, -1));
    }
}
