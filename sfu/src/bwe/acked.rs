//! The acknowledged bitrate: what reached the receiver, measured on its own
//! clock over a sliding window of arrival times. It is what the rate control
//! backs off from and what caps its increase. After the estimate jumps (a
//! probe's result), it counts only packets sent since: what was sent before
//! describes the old rate, and an overuse right after the jump would back
//! off from that.

/// Width of one bucket of arrivals. Raising it costs precision at the
/// window's edges; lowering it costs memory (the ring holds the window).
const BUCKET_US: i64 = 10_000;

/// Buckets summed, 150 ms. Raising it smooths the video frames' burstiness
/// out of the rate but lags a change: an overuse right after the estimate
/// jumped would back off from the slower rate before the jump. Lowering it
/// reads single frame bursts as rate.
const WINDOW_BUCKETS: usize = 15;

/// Less than this much of the window seen gives no rate yet: the first
/// packets alone say little about a rate.
const MIN_SPAN_US: i64 = 100_000;

/// Bytes received per arrival-time bucket.
#[derive(Debug)]
pub(super) struct AckedBitrate {
    buckets: [u64; WINDOW_BUCKETS],
    /// Index (arrival time / bucket width) of the newest bucket.
    newest: Option<i64>,
    /// Index of the first bucket ever filled since the last reset.
    first: i64,
    /// The latest arrival: the window ends there, not at its bucket's end.
    newest_arrival_us: i64,
    /// Packets sent before this (our clock) are not counted.
    sent_since_us: i64,
}

impl AckedBitrate {
    pub fn new() -> Self {
        AckedBitrate {
            buckets: [0; WINDOW_BUCKETS],
            newest: None,
            first: 0,
            newest_arrival_us: 0,
            sent_since_us: i64::MIN,
        }
    }

    /// Forgets what was measured and counts only packets sent from `send_us` on.
    pub fn restart(&mut self, send_us: i64) {
        self.newest = None;
        self.sent_since_us = send_us;
    }

    /// Counts a packet sent at `send_us` (our clock) that arrived at
    /// `arrival_us` (the receiver's).
    pub fn on_received(&mut self, send_us: i64, arrival_us: i64, size: u16) {
        if send_us < self.sent_since_us {
            return;
        }
        let index = arrival_us.div_euclid(BUCKET_US);
        let Some(newest) = self.newest else {
            self.newest = Some(index);
            self.first = index;
            self.newest_arrival_us = arrival_us;
            self.buckets = [0; WINDOW_BUCKETS];
            self.buckets[slot(index)] = u64::from(size);
            return;
        };
        let ahead = index.saturating_sub(newest);
        if ahead >= WINDOW_BUCKETS as i64 {
            // A jump past the whole window: nothing in it is current.
            self.newest = None;
            return self.on_received(send_us, arrival_us, size);
        }
        if ahead > 0 {
            for i in newest + 1..=index {
                self.buckets[slot(i)] = 0;
            }
            self.newest = Some(index);
        } else if ahead <= -(WINDOW_BUCKETS as i64) {
            return; // older than the window
        }
        self.buckets[slot(index)] += u64::from(size);
        self.first = self.first.min(index);
        self.newest_arrival_us = self.newest_arrival_us.max(arrival_us);
    }

    /// Bits per second over the window, once enough of it has been seen.
    pub fn bps(&self) -> Option<f64> {
        let newest = self.newest?;
        let oldest = self.first.max(newest - WINDOW_BUCKETS as i64 + 1);
        let span_us = self
            .newest_arrival_us
            .saturating_sub(oldest.saturating_mul(BUCKET_US));
        if span_us < MIN_SPAN_US {
            return None;
        }
        let bytes: u64 = self.buckets.iter().sum();
        Some(bytes as f64 * 8e6 / span_us as f64)
    }
}

fn slot(index: i64) -> usize {
    index.rem_euclid(WINDOW_BUCKETS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_stream_measures_its_rate() {
        let mut a = AckedBitrate::new();
        // 1000 bytes every 4 ms: 2 Mbit/s.
        for i in 0..200 {
            a.on_received(0, 1_000_000 + i * 4000, 1000);
            if i < 25 {
                assert!(a.bps().is_none(), "too little seen at {i}");
            }
            if i > 30 {
                let bps = a.bps().unwrap();
                assert!((bps - 2e6).abs() < 0.05 * 2e6, "{bps} at {i}");
            }
        }
    }

    #[test]
    fn the_rate_follows_a_drop_within_the_window() {
        let mut a = AckedBitrate::new();
        let mut t = 0;
        for _ in 0..250 {
            t += 4000;
            a.on_received(0, t, 1000);
        }
        for _ in 0..20 {
            t += 8000;
            a.on_received(0, t, 1000);
        }
        let bps = a.bps().unwrap();
        assert!((bps - 1e6).abs() < 0.1e6, "{bps}");
    }

    #[test]
    fn time_jumping_either_way_neither_panics_nor_keeps_stale_bytes() {
        let mut a = AckedBitrate::new();
        for t in [0, i64::MAX, i64::MIN, -5, 1 << 40, 1 << 40, 3] {
            a.on_received(0, t, 1200);
            let _ = a.bps();
        }
        a.on_received(0, 1 << 50, 100);
        assert!(a.bps().is_none(), "a fresh start after a jump");
    }

    #[test]
    fn after_a_restart_only_packets_sent_since_count() {
        let mut a = AckedBitrate::new();
        // 1 Mbit/s sent before the jump, 4 Mbit/s after, arriving interleaved.
        for i in 0..200 {
            a.on_received(i * 8000, i * 8000, 1000);
        }
        a.restart(1_600_000);
        for i in 0..100 {
            a.on_received(i * 2000 - 100_000, 1_700_000 + i * 2000, 1000);
            a.on_received(1_600_000 + i * 2000, 1_700_000 + i * 2000, 1000);
        }
        let bps = a.bps().unwrap();
        assert!((bps - 4e6).abs() < 0.1 * 4e6, "{bps}");
    }
}
