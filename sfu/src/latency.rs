//! How long the bridge holds a datagram: from the port's receive to the end
//! of the send of everything it caused, as a fixed histogram a worker fills
//! without allocating.
//!
//! ```
//! use std::time::Duration;
//! let mut h = sfu::latency::LatencyHistogram::default();
//! for us in [40, 50, 60, 900] {
//!     h.record(Duration::from_micros(us));
//! }
//! assert!(h.quantile(0.5) <= Duration::from_micros(70));
//! assert!(h.quantile(0.99) >= Duration::from_micros(800));
//! ```

use std::time::Duration;

/// Buckets grow by a quarter: 1 µs, 1.25 µs, … up to about 100 s.
const BUCKETS: usize = 84;
const GROWTH: f64 = 1.25;

/// Counts of latencies in geometric buckets (±12 % resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
    total: u64,
    sum: Duration,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; BUCKETS],
            total: 0,
            sum: Duration::ZERO,
        }
    }
}

fn bucket_of(d: Duration) -> usize {
    let us = d.as_secs_f64() * 1e6;
    if us <= 1.0 {
        return 0;
    }
    ((us.ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
}

fn upper_bound(bucket: usize) -> Duration {
    Duration::from_secs_f64(GROWTH.powi(bucket as i32) / 1e6)
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        self.counts[bucket_of(d)] += 1;
        self.total += 1;
        self.sum += d;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// All recorded latencies added up (a Prometheus histogram's `_sum`).
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// How many stayed at most `limit` for certain (whole buckets only; a
    /// Prometheus histogram's cumulative count for `le`).
    pub fn count_within(&self, limit: Duration) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .take_while(|(i, _)| upper_bound(*i) <= limit)
            .map(|(_, c)| c)
            .sum()
    }

    /// Adds another worker's counts.
    pub fn add(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
    }

    /// The latency below which a fraction `q` of the datagrams stayed (the
    /// bucket's upper bound); zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound(i);
            }
        }
        upper_bound(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_counts_never_overstate() {
        let mut h = LatencyHistogram::default();
        for us in [100, 200, 800, 5_000] {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count_within(Duration::from_micros(50)), 0);
        // 200 µs falls in the bucket ending at about 212 µs: not yet counted at 210.
        assert_eq!(h.count_within(Duration::from_micros(210)), 1);
        assert_eq!(h.count_within(Duration::from_millis(1)), 3);
        assert_eq!(h.count_within(Duration::from_secs(1)), 4);
        assert_eq!(h.sum(), Duration::from_micros(6_100));
    }

    #[test]
    fn quantiles_land_within_a_bucket_of_the_truth() {
        let mut h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_secs_f64() * 1e6;
        let p99 = h.quantile(0.99).as_secs_f64() * 1e6;
        assert!((500.0..=625.0).contains(&p50), "{p50}");
        assert!((990.0..=1240.0).contains(&p99), "{p99}");
        assert_eq!(LatencyHistogram::default().quantile(0.99), Duration::ZERO);
        h.record(Duration::from_secs(1000));
        assert!(
            h.quantile(1.0) >= Duration::from_secs(50),
            "the last bucket holds the rest"
        );
    }
}
