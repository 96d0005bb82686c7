//! A token bucket of bytes: how much retransmission one receiver may still
//! cause. Integer arithmetic in millionths of a byte, so frequent small
//! refills lose nothing to rounding.

use std::time::{Duration, Instant};

const MICROS_PER_SECOND: u64 = 1_000_000;

/// Longest gap credited at once; the bucket is full long before, and it keeps
/// `rate * gap` far from overflowing.
const LONGEST_REFILL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(super) struct ByteBudget {
    bytes_per_second: u64,
    /// Millionths of a byte.
    tokens: u64,
    capacity: u64,
    refilled: Instant,
}

impl ByteBudget {
    /// Starts full: a first burst of NACKs is answered.
    pub fn new(now: Instant, bytes_per_second: u64, burst_bytes: u64) -> Self {
        let capacity = burst_bytes * MICROS_PER_SECOND;
        ByteBudget {
            bytes_per_second,
            tokens: capacity,
            capacity,
            refilled: now,
        }
    }

    /// A new rate and burst; what is saved so far is kept up to the new burst.
    pub fn set_rate(&mut self, now: Instant, bytes_per_second: u64, burst_bytes: u64) {
        self.refill(now);
        self.bytes_per_second = bytes_per_second;
        self.capacity = burst_bytes * MICROS_PER_SECOND;
        self.tokens = self.tokens.min(self.capacity);
    }

    /// Takes `bytes` if the budget has them.
    pub fn try_spend(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        let cost = bytes as u64 * MICROS_PER_SECOND;
        if self.tokens < cost {
            return false;
        }
        self.tokens -= cost;
        true
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled);
        if elapsed >= LONGEST_REFILL {
            self.tokens = self.capacity;
            self.refilled = now;
            return;
        }
        // Whole microseconds only; the remainder is credited next time.
        let micros = elapsed.as_micros() as u64;
        self.tokens = (self.tokens + self.bytes_per_second * micros).min(self.capacity);
        self.refilled += Duration::from_micros(micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = ByteBudget::new(t0, 1000, 500);
        assert!(b.try_spend(t0, 500));
        assert!(!b.try_spend(t0, 1));
        // 1000 B/s over 1 ms is one byte: refilled in many tiny steps, none lost.
        let mut t = t0;
        for _ in 0..1000 {
            t += Duration::from_nanos(1500);
            assert!(b.try_spend(t, 0));
        }
        assert!(b.try_spend(t, 1));
        assert!(!b.try_spend(t, 1));
        assert!(b.try_spend(t + Duration::from_millis(100), 100));
        assert!(!b.try_spend(t + Duration::from_millis(100), 1));
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let mut b = ByteBudget::new(t0, 1_000_000, 2000);
        assert!(b.try_spend(t0, 2000));
        let later = t0 + Duration::from_secs(3600);
        assert!(b.try_spend(later, 2000));
        assert!(!b.try_spend(later, 1));
        b.set_rate(later, 10, 50);
        assert!(!b.try_spend(later + Duration::from_secs(1), 11));
        assert!(b.try_spend(later + Duration::from_secs(10), 50));
    }
}
