//! The packets sent with a transport-wide sequence number, kept until the
//! receiver reports on them: a ring indexed by the unwrapped number, bounded
//! by count and by age, allocated once.

/// Packets remembered (a power of two). Raising it keeps feedback on older
/// packets usable on fast links behind long queues (2048 is about 1 s at
/// 20 Mbit/s of full-size packets; feedback comes every 50-100 ms), at 24
/// bytes a packet per receiver (48 KiB); lowering it forgets sooner.
pub(super) const CAPACITY: usize = 2048;

/// A packet sent longer ago than this is forgotten even if the ring still
/// holds it. Raising it trusts feedback that took longer to come back (a
/// report that late describes a network that has moved on); lowering it
/// drops reports from behind deep queues, when they matter most.
pub(super) const MAX_AGE_US: i64 = 5_000_000;

/// What the receiver said about a packet so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    Unreported,
    Lost,
    Received,
}

/// One packet sent.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sent {
    /// The unwrapped sequence number; `u64::MAX` in a slot never written.
    seq: u64,
    pub send_us: i64,
    pub size: u16,
    pub fate: Fate,
}

impl Sent {
    /// The unwrapped sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

const EMPTY: Sent = Sent {
    seq: u64::MAX,
    send_us: 0,
    size: 0,
    fate: Fate::Unreported,
};

/// Where unwrapping starts, so sequence numbers a little behind the first
/// one sent still have an index.
const FIRST_CYCLE: u64 = 1 << 32;

/// The send history of one receiver's transport.
#[derive(Debug)]
pub(super) struct History {
    slots: Box<[Sent]>,
    /// The highest unwrapped sequence number sent.
    highest: Option<u64>,
}

impl History {
    pub fn new() -> Self {
        History {
            slots: vec![EMPTY; CAPACITY].into_boxed_slice(),
            highest: None,
        }
    }

    /// The unwrapped number nearest the highest sent.
    fn unwrap(&self, seq: u16) -> Option<u64> {
        let Some(highest) = self.highest else {
            return Some(FIRST_CYCLE + u64::from(seq));
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        highest.checked_add_signed(delta)
    }

    /// Records a packet sent at `send_us`, overwriting the oldest slot;
    /// returns its unwrapped number.
    pub fn on_sent(&mut self, seq: u16, send_us: i64, size: usize) -> Option<u64> {
        let seq = self.unwrap(seq)?;
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.slots[seq as usize % CAPACITY] = Sent {
            seq,
            send_us,
            size: size.min(usize::from(u16::MAX)) as u16,
            fate: Fate::Unreported,
        };
        Some(seq)
    }

    /// The packet a report names, if it is still remembered at `now_us`.
    pub fn get(&mut self, seq: u16, now_us: i64) -> Option<&mut Sent> {
        let seq = self.unwrap(seq)?;
        let slot = &mut self.slots[seq as usize % CAPACITY];
        (slot.seq == seq && now_us.saturating_sub(slot.send_us) <= MAX_AGE_US).then_some(slot)
    }

    /// Slots held, for the tests that check nothing grows.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_unwrap_across_the_wrap() {
        let mut h = History::new();
        for (i, seq) in (0xfff0u16..=0xffff).chain(0..16).enumerate() {
            h.on_sent(seq, i as i64 * 1000, 1200);
        }
        assert_eq!(h.get(0xfff5, 40_000).unwrap().send_us, 5000);
        assert_eq!(h.get(3, 40_000).unwrap().send_us, 19_000);
        assert!(h.get(16, 40_000).is_none(), "never sent");
    }

    #[test]
    fn the_ring_forgets_the_oldest_beyond_its_capacity() {
        let mut h = History::new();
        for i in 0..CAPACITY as u64 + 10 {
            h.on_sent(i as u16, i as i64, 100);
        }
        assert!(h.get(9, 10_000).is_none(), "overwritten");
        assert!(h.get(10, 10_000).is_some());
        assert_eq!(h.capacity(), CAPACITY);
    }

    #[test]
    fn packets_older_than_the_age_limit_are_forgotten() {
        let mut h = History::new();
        h.on_sent(1, 0, 100);
        assert!(h.get(1, MAX_AGE_US).is_some());
        assert!(h.get(1, MAX_AGE_US + 1).is_none());
    }

    #[test]
    fn a_number_half_the_space_away_is_not_mistaken_for_a_remembered_one() {
        let mut h = History::new();
        h.on_sent(100, 0, 100);
        // 100 + 0x8000 unwraps behind the first packet: a slot never written.
        assert!(h.get(100u16.wrapping_add(0x8000), 0).is_none());
        // 100 + CAPACITY shares the slot but not the number.
        assert!(h.get(100 + CAPACITY as u16, 0).is_none());
    }
}
