//! AIMD rate control, the delay-based estimate: on overuse, back off to a
//! fraction of what the receiver actually got; otherwise grow, fast
//! (multiplicatively) while far from the rate that last congested the link,
//! slowly (about a packet per round trip) near it.

use super::overuse::Usage;

/// On overuse the estimate drops to this fraction of the acknowledged rate.
/// Raising it keeps more rate and drains the queue more slowly; lowering it
/// drains faster and leaves more capacity unused afterwards.
const BETA: f64 = 0.85;

/// Growth per second far from the last congestion point. Raising it ramps
/// up faster and overshoots further into the queue.
const MULTIPLICATIVE_PER_SECOND: f64 = 1.08;

/// Smallest step of multiplicative growth (bit/s per update).
const MIN_MULTIPLICATIVE_STEP: f64 = 1_000.0;

/// Smallest additive growth, bit/s per second.
const MIN_ADDITIVE_PER_SECOND: f64 = 4_000.0;

/// Additive growth assumes this many frames per second to size a packet.
const FRAMES_PER_SECOND: f64 = 30.0;

/// ...and packets of at most this many bytes.
const PACKET_BYTES: f64 = 1200.0;

/// Added to the round trip to give the time an increase takes to show in
/// the feedback. Raising it slows additive growth.
const RESPONSE_EXTRA_US: i64 = 100_000;

/// The estimate never grows past this multiple of the acknowledged rate
/// (plus [`THROUGHPUT_HEADROOM`]): an estimate not backed by traffic is a
/// guess. Raising it lets an application-limited sender's estimate drift
/// further from anything measured; probing is the way past it.
const THROUGHPUT_FACTOR: f64 = 1.5;
const THROUGHPUT_HEADROOM: f64 = 10_000.0;

/// Decreases on a persisting overuse are at least this far apart (the
/// round trip, clamped to this range): each must have had time to act.
const MIN_REDUCE_INTERVAL_US: i64 = 10_000;
const MAX_REDUCE_INTERVAL_US: i64 = 200_000;

/// Round trip assumed before feedback has measured one.
pub(super) const DEFAULT_RTT_US: i64 = 200_000;

/// Weight of each new sample in the congestion point's average. Raising it
/// follows a changed link sooner and forgets a stable one sooner.
const CAPACITY_SMOOTHING: f64 = 0.05;

/// Deviations either side of the congestion point that count as "near" it.
/// Raising it keeps the slow additive growth over a wider band.
const CAPACITY_DEVIATIONS: f64 = 3.0;

/// Bounds of the congestion point's normalized variance (kbit/s).
const MIN_CAPACITY_VARIANCE: f64 = 0.4;
const MAX_CAPACITY_VARIANCE: f64 = 2.5;

/// Whether the estimate may grow. A decrease is a single step, after which
/// it holds until the delay says the queue is stable again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
}

/// The rate the link last congested at: an average of the acknowledged rate
/// at each overuse, with its spread.
#[derive(Debug)]
struct CongestionPoint {
    kbps: Option<f64>,
    variance: f64,
}

impl CongestionPoint {
    fn deviation_kbps(&self, kbps: f64) -> f64 {
        (self.variance * kbps).sqrt()
    }

    fn upper_bps(&self) -> Option<f64> {
        self.kbps
            .map(|k| (k + CAPACITY_DEVIATIONS * self.deviation_kbps(k)) * 1000.0)
    }

    fn lower_bps(&self) -> Option<f64> {
        self.kbps
            .map(|k| (k - CAPACITY_DEVIATIONS * self.deviation_kbps(k)) * 1000.0)
    }

    fn on_overuse(&mut self, acked_bps: f64) {
        let sample = acked_bps / 1000.0;
        let kbps = match self.kbps {
            Some(k) => (1.0 - CAPACITY_SMOOTHING) * k + CAPACITY_SMOOTHING * sample,
            None => sample,
        };
        let error = kbps - sample;
        self.variance = ((1.0 - CAPACITY_SMOOTHING) * self.variance
            + CAPACITY_SMOOTHING * error * error / kbps.max(1.0))
        .clamp(MIN_CAPACITY_VARIANCE, MAX_CAPACITY_VARIANCE);
        self.kbps = Some(kbps);
    }
}

/// The delay-based estimate.
#[derive(Debug)]
pub(super) struct Aimd {
    bps: f64,
    min: f64,
    max: f64,
    state: State,
    /// When the estimate last moved (our clock, µs).
    changed_us: i64,
    congestion: CongestionPoint,
}

impl Aimd {
    pub fn new(now_us: i64, initial: u64, min: u64, max: u64) -> Self {
        Aimd {
            bps: initial as f64,
            min: min as f64,
            max: max as f64,
            state: State::Hold,
            changed_us: now_us,
            congestion: CongestionPoint {
                kbps: None,
                variance: MIN_CAPACITY_VARIANCE,
            },
        }
    }

    pub fn bps(&self) -> f64 {
        self.bps
    }

    /// Moves the estimate for what the detector says, once per feedback.
    pub fn update(&mut self, now_us: i64, usage: Usage, acked: Option<f64>, rtt_us: i64) {
        match usage {
            Usage::Over => {
                if self.time_to_reduce(now_us, acked, rtt_us) {
                    self.decrease(now_us, acked);
                }
                return;
            }
            Usage::Normal if self.state == State::Hold => self.state = State::Increase,
            Usage::Normal => {}
            Usage::Under => self.state = State::Hold,
        }
        if self.state != State::Increase {
            return;
        }
        if self
            .congestion
            .upper_bps()
            .is_some_and(|upper| self.bps > upper)
        {
            // Well past where it congested last: that point is stale.
            self.congestion.kbps = None;
        }
        let seconds = (now_us.saturating_sub(self.changed_us) as f64 / 1e6).clamp(0.0, 1.0);
        let step = if self.congestion.kbps.is_some() {
            self.additive_per_second(rtt_us) * seconds
        } else {
            (self.bps * (MULTIPLICATIVE_PER_SECOND.powf(seconds) - 1.0))
                .max(MIN_MULTIPLICATIVE_STEP)
        };
        let mut target = self.bps + step;
        if let Some(acked) = acked {
            let limit = THROUGHPUT_FACTOR * acked + THROUGHPUT_HEADROOM;
            if self.bps >= limit {
                return; // hold: not backed by traffic; never lowered for it
            }
            target = target.min(limit);
        }
        self.set(target, now_us);
    }

    /// Takes a probe's result (already known to be above the estimate).
    pub fn set_estimate(&mut self, bps: f64, now_us: i64) {
        self.set(bps, now_us);
    }

    fn set(&mut self, bps: f64, now_us: i64) {
        self.bps = bps.clamp(self.min, self.max);
        self.changed_us = now_us;
    }

    fn time_to_reduce(&self, now_us: i64, acked: Option<f64>, rtt_us: i64) -> bool {
        let interval = rtt_us.clamp(MIN_REDUCE_INTERVAL_US, MAX_REDUCE_INTERVAL_US);
        now_us.saturating_sub(self.changed_us) >= interval
            || acked.is_some_and(|a| a < 0.5 * self.bps)
    }

    fn decrease(&mut self, now_us: i64, acked: Option<f64>) {
        let Some(acked) = acked else {
            // Nothing measured yet: back off from the estimate itself.
            self.set(self.bps * BETA, now_us);
            self.state = State::Hold;
            return;
        };
        let mut target = BETA * acked;
        if target > self.bps
            && let Some(point) = self.congestion.kbps
        {
            target = BETA * point * 1000.0;
        }
        if target < self.bps {
            self.set(target, now_us);
        } else {
            self.changed_us = now_us;
        }
        if self
            .congestion
            .lower_bps()
            .is_some_and(|lower| acked < lower)
        {
            // Far below where it congested before: the link changed.
            self.congestion.kbps = None;
        }
        self.congestion.on_overuse(acked);
        self.state = State::Hold;
    }

    /// Bit/s per second of additive growth: one packet of a frame-sized
    /// burst per response time.
    fn additive_per_second(&self, rtt_us: i64) -> f64 {
        let frame_bytes = self.bps / 8.0 / FRAMES_PER_SECOND;
        let packets = (frame_bytes / PACKET_BYTES).ceil().max(1.0);
        let packet_bits = frame_bytes / packets * 8.0;
        let response_s = (rtt_us.max(0) + RESPONSE_EXTRA_US) as f64 / 1e6;
        (packet_bits / response_s).max(MIN_ADDITIVE_PER_SECOND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: i64 = 50_000;

    #[test]
    fn far_from_congestion_it_grows_eight_percent_a_second() {
        let mut a = Aimd::new(0, 1_000_000, 30_000, 20_000_000);
        a.update(0, Usage::Normal, Some(1e6), RTT);
        for i in 1..=10 {
            a.update(i * 100_000, Usage::Normal, Some(1e6), RTT);
        }
        // The first update adds the minimum step; a second of updates, 8 %.
        let expected = (1e6 + MIN_MULTIPLICATIVE_STEP) * 1.08;
        assert!((a.bps() - expected).abs() < 1.0, "{}", a.bps());
    }

    #[test]
    fn overuse_backs_off_to_a_fraction_of_the_acknowledged_rate() {
        let mut a = Aimd::new(0, 2_000_000, 30_000, 20_000_000);
        a.update(1_000_000, Usage::Over, Some(1.2e6), RTT);
        assert_eq!(a.bps(), 0.85 * 1.2e6);
        // Not again within the reduce interval...
        a.update(1_020_000, Usage::Over, Some(1.0e6), RTT);
        assert_eq!(a.bps(), 0.85 * 1.2e6);
        // ...but after a round trip.
        a.update(1_060_000, Usage::Over, Some(1.0e6), RTT);
        assert_eq!(a.bps(), 0.85 * 1.0e6);
    }

    #[test]
    fn near_the_congestion_point_growth_is_additive() {
        let mut a = Aimd::new(0, 2_000_000, 30_000, 20_000_000);
        a.update(1_000_000, Usage::Over, Some(2e6), RTT);
        let after = a.bps();
        assert_eq!(after, 0.85 * 2e6);
        a.update(1_100_000, Usage::Normal, Some(2e6), RTT); // Hold -> Increase
        let mut t = 1_100_000;
        for _ in 0..10 {
            t += 100_000;
            a.update(t, Usage::Normal, Some(2e6), RTT);
        }
        let grown = a.bps() - after;
        // About a 1200-byte packet per 150 ms response time: 64 kbit/s per second.
        assert!(grown > 50_000.0 && grown < 80_000.0, "{grown}");
    }

    #[test]
    fn growth_is_capped_by_what_was_acknowledged() {
        let mut a = Aimd::new(0, 1_000_000, 30_000, 20_000_000);
        for i in 0..100 {
            a.update(i * 100_000, Usage::Normal, Some(400_000.0), RTT);
        }
        assert_eq!(a.bps(), 1_000_000.0, "held, not lowered");
        let mut a = Aimd::new(0, 500_000, 30_000, 20_000_000);
        for i in 0..100 {
            a.update(i * 100_000, Usage::Normal, Some(400_000.0), RTT);
        }
        assert_eq!(a.bps(), 1.5 * 400_000.0 + 10_000.0);
    }

    #[test]
    fn underuse_holds() {
        let mut a = Aimd::new(0, 1_000_000, 30_000, 20_000_000);
        for i in 0..10 {
            a.update(i * 100_000, Usage::Under, Some(1e6), RTT);
        }
        assert_eq!(a.bps(), 1e6);
    }

    #[test]
    fn the_estimate_stays_within_its_bounds() {
        let mut a = Aimd::new(0, 1_000_000, 300_000, 1_100_000);
        for i in 0..100 {
            a.update(i * 100_000, Usage::Normal, None, RTT);
        }
        assert_eq!(a.bps(), 1_100_000.0);
        for i in 100..200 {
            a.update(i * 100_000, Usage::Over, Some(1000.0), RTT);
        }
        assert_eq!(a.bps(), 300_000.0);
    }
}
