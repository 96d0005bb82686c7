//! Latency percentiles.

/// Microsecond samples, summarised once at the end of a run.
#[derive(Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    pub fn push(&mut self, micros: u64) {
        self.0.push(micros.min(u32::MAX as u64) as u32);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn merge_ref(&mut self, other: &Latencies) {
        self.0.extend_from_slice(&other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (0..=100) in milliseconds, `None` without samples.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        Some(self.0[rank.min(self.0.len() - 1)] as f64 / 1000.0)
    }
}

impl Extend<std::time::Duration> for Latencies {
    fn extend<I: IntoIterator<Item = std::time::Duration>>(&mut self, iter: I) {
        for d in iter {
            self.push(d.as_micros() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut l = Latencies::default();
        for v in 1..=100 {
            l.push(v * 1000);
        }
        assert_eq!(l.percentile_ms(50.0), Some(51.0));
        assert_eq!(l.percentile_ms(99.0), Some(99.0));
        assert_eq!(l.percentile_ms(100.0), Some(100.0));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }
}
