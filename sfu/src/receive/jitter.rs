//! Interarrival jitter (RFC 3550 §6.4.1, Appendix A.8): how much the spacing
//! of arrivals differs from the spacing of RTP timestamps, smoothed by 1/16,
//! in RTP timestamp units.

use std::time::Instant;

/// A transit change this long or longer (in seconds of the stream's clock) is
/// a timestamp jump, not jitter: it is skipped, so one discontinuity does not
/// dominate the estimate for the next hundred packets (libwebrtc skips steps
/// of 450 000 units, 5 s of the video clock, whatever the stream's clock).
const MAX_TRANSIT_STEP_SECS: u64 = 5;

#[derive(Debug)]
pub(super) struct Jitter {
    clock_rate: u32,
    /// Arrival times are counted in RTP units from here (the first packet's arrival).
    epoch: Option<Instant>,
    /// Arrival minus RTP timestamp of the last packet, modulo 2^32.
    transit: Option<u32>,
    /// The estimate times 16 (the RFC's integer form keeps the fraction).
    scaled: u64,
}

impl Jitter {
    pub fn new(clock_rate: u32) -> Self {
        Jitter {
            clock_rate,
            epoch: None,
            transit: None,
            scaled: 0,
        }
    }

    /// Notes a packet's arrival; with `update`, the estimate moves by its
    /// transit change from the previous packet noted.
    pub fn observe(&mut self, now: Instant, timestamp: u32, update: bool) {
        let transit = self.arrival(now).wrapping_sub(timestamp);
        if let Some(previous) = self.transit.replace(transit)
            && update
        {
            let d = u64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
            if self.clock_rate > 0 && d < MAX_TRANSIT_STEP_SECS * u64::from(self.clock_rate) {
                self.scaled = self.scaled + d - ((self.scaled + 8) >> 4);
            }
        }
    }

    /// Forgets the last transit: the next packet starts a new stream of them.
    pub fn restart(&mut self) {
        self.transit = None;
    }

    /// The estimate in RTP timestamp units.
    pub fn value(&self) -> u32 {
        (self.scaled >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// `now` in RTP units since the epoch, modulo 2^32 (as a timestamp wraps).
    fn arrival(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        let since = now.saturating_duration_since(epoch);
        let rate = u64::from(self.clock_rate);
        let units = since
            .as_secs()
            .wrapping_mul(rate)
            .wrapping_add(u64::from(since.subsec_nanos()) * rate / 1_000_000_000);
        units as u32
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn steady_arrivals_have_no_jitter_and_late_ones_do() {
        let start = Instant::now();
        let mut j = Jitter::new(8000);
        for i in 0..50u32 {
            j.observe(
                start + Duration::from_millis(20 * u64::from(i)),
                160 * i,
                true,
            );
        }
        assert_eq!(j.value(), 0);
        // Every other packet 5 ms (40 units) late: the estimate tends to 40.
        for i in 50..2000u32 {
            let late = if i % 2 == 0 { 5 } else { 0 };
            j.observe(
                start + Duration::from_millis(20 * u64::from(i) + late),
                160 * i,
                true,
            );
        }
        assert!((38..=40).contains(&j.value()), "{}", j.value());
    }

    #[test]
    fn a_timestamp_jump_is_not_jitter() {
        let start = Instant::now();
        let mut j = Jitter::new(90_000);
        j.observe(start, 0, true);
        j.observe(start + Duration::from_millis(40), 3600, true);
        j.observe(
            start + Duration::from_millis(80),
            3600 + 3_000_000_000,
            true,
        );
        j.observe(
            start + Duration::from_millis(120),
            3600 + 3_000_003_600,
            true,
        );
        assert_eq!(j.value(), 0);
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut j = Jitter::new(48_000);
        j.observe(start, 0, true);
        j.observe(start - Duration::from_secs(5), 960, true);
        j.observe(start + Duration::from_secs(1000), u32::MAX, true);
        let _ = j.value();
        let mut zero = Jitter::new(0);
        zero.observe(start, 1, true);
        zero.observe(start, 100_000, true);
        assert_eq!(zero.value(), 0);
    }
}
