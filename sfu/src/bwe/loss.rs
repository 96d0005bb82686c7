//! The loss-based bound: a path that drops packets without queueing them
//! (a shallow buffer, a lossy radio) gives the delay signal nothing to see,
//! so heavy loss caps the estimate on its own. Light loss is normal and left
//! alone: reacting to it would give up capacity for nothing.

/// Below this loss fraction the bound relaxes (and lifts once it no longer
/// binds). Raising it recovers on lossier paths.
const LOW_LOSS: f64 = 0.02;

/// Above this the bound tightens. Raising it tolerates more loss before
/// backing off (Videobridge and libwebrtc both use 10 %).
const HIGH_LOSS: f64 = 0.10;

/// Packets per loss sample. Raising it steadies the fraction (2 % random
/// loss rarely looks like 10 % over 40 packets) and samples less often.
const SAMPLE_PACKETS: u32 = 40;

/// A slow stream still gets a sample this often, from at least
/// [`MIN_SLOW_SAMPLE_PACKETS`].
const MAX_SAMPLE_US: i64 = 1_000_000;
const MIN_SLOW_SAMPLE_PACKETS: u32 = 10;

/// On heavy loss the bound becomes `estimate * (1 - DECREASE_PER_LOSS * loss)`.
const DECREASE_PER_LOSS: f64 = 0.5;

/// Tightenings are at least this (plus a round trip) apart, so each one's
/// effect shows before the next. Lowering it backs off faster and further.
const DECREASE_INTERVAL_US: i64 = 300_000;

/// Relaxation per second while loss is low. Raising it recovers faster
/// from a loss episode and finds the loss again sooner.
const RECOVERY_PER_SECOND: f64 = 1.08;

/// Loss counted and the bound it implies.
#[derive(Debug)]
pub(super) struct LossBound {
    lost: u32,
    total: u32,
    sample_start_us: Option<i64>,
    fraction: f64,
    bound: Option<f64>,
    last_decrease_us: Option<i64>,
    last_sample_us: Option<i64>,
}

impl LossBound {
    pub fn new() -> Self {
        LossBound {
            lost: 0,
            total: 0,
            sample_start_us: None,
            fraction: 0.0,
            bound: None,
            last_decrease_us: None,
            last_sample_us: None,
        }
    }

    /// The cap loss puts on the estimate, if any.
    pub fn bound(&self) -> Option<f64> {
        self.bound
    }

    /// The loss fraction of the last complete sample.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Counts one feedback's newly reported packets; `estimate` is the
    /// combined estimate before it, `delay_based` the delay-based one.
    pub fn on_feedback(
        &mut self,
        now_us: i64,
        lost: u32,
        received: u32,
        estimate: f64,
        delay_based: f64,
        rtt_us: i64,
    ) {
        self.lost = self.lost.saturating_add(lost);
        self.total = self.total.saturating_add(lost.saturating_add(received));
        let start = *self.sample_start_us.get_or_insert(now_us);
        let complete = self.total >= SAMPLE_PACKETS
            || (self.total >= MIN_SLOW_SAMPLE_PACKETS
                && now_us.saturating_sub(start) >= MAX_SAMPLE_US);
        if !complete {
            return;
        }
        self.fraction = f64::from(self.lost) / f64::from(self.total);
        (self.lost, self.total, self.sample_start_us) = (0, 0, None);
        let since_sample = self.last_sample_us.map_or(0, |t| now_us.saturating_sub(t));
        self.last_sample_us = Some(now_us);

        if self.fraction > HIGH_LOSS {
            let due = self.last_decrease_us.is_none_or(|t| {
                now_us.saturating_sub(t) >= DECREASE_INTERVAL_US.saturating_add(rtt_us.max(0))
            });
            if due {
                let from = self.bound.map_or(estimate, |b| b.min(estimate));
                self.bound = Some(from * (1.0 - DECREASE_PER_LOSS * self.fraction));
                self.last_decrease_us = Some(now_us);
            }
        } else if self.fraction < LOW_LOSS
            && let Some(bound) = self.bound
        {
            let seconds = (since_sample as f64 / 1e6).clamp(0.0, 1.0);
            let relaxed = bound * RECOVERY_PER_SECOND.powf(seconds);
            // Once it no longer binds, loss has nothing more to say.
            self.bound = (relaxed < delay_based).then_some(relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: i64 = 50_000;

    fn close(bound: Option<f64>, expected: f64) -> bool {
        bound.is_some_and(|b| (b - expected).abs() < 1e-6)
    }

    #[test]
    fn heavy_loss_tightens_the_bound_at_most_once_per_interval() {
        let mut l = LossBound::new();
        l.on_feedback(0, 8, 32, 1e6, 1e6, RTT);
        assert_eq!(l.fraction(), 0.2);
        assert!(close(l.bound(), 0.9e6));
        l.on_feedback(100_000, 8, 32, 0.9e6, 1e6, RTT);
        assert!(close(l.bound(), 0.9e6), "too soon");
        l.on_feedback(350_000, 8, 32, 0.9e6, 1e6, RTT);
        assert!(close(l.bound(), 0.81e6));
    }

    #[test]
    fn moderate_loss_holds_and_low_loss_relaxes_then_lifts_the_bound() {
        let mut l = LossBound::new();
        l.on_feedback(0, 20, 20, 1e6, 1e6, RTT);
        assert_eq!(l.bound(), Some(0.75e6));
        l.on_feedback(500_000, 2, 38, 0.75e6, 1e6, RTT);
        assert_eq!(l.bound(), Some(0.75e6), "5 %: held");
        let mut t = 500_000;
        let mut last = 0.75e6;
        while let Some(b) = l.bound() {
            t += 250_000;
            l.on_feedback(t, 0, 40, b, 1e6, RTT);
            if let Some(now) = l.bound() {
                assert!(now > last);
                last = now;
            }
            assert!(t < 5_000_000, "the bound never lifted");
        }
        // 0.75 -> 1.0 at 8 % a second takes under four seconds.
        assert!(t <= 4_500_000, "{t}");
    }

    #[test]
    fn light_loss_never_binds() {
        let mut l = LossBound::new();
        for i in 0..100 {
            l.on_feedback(i * 100_000, 1, 49, 1e6, 1e6, RTT);
        }
        assert_eq!(l.bound(), None);
        assert_eq!(l.fraction(), 0.02);
    }

    #[test]
    fn a_slow_stream_is_sampled_after_a_second() {
        let mut l = LossBound::new();
        l.on_feedback(0, 3, 2, 1e6, 1e6, RTT);
        l.on_feedback(500_000, 3, 2, 1e6, 1e6, RTT);
        assert_eq!(l.bound(), None, "ten packets, half a second: not yet");
        l.on_feedback(1_000_000, 0, 1, 1e6, 1e6, RTT);
        assert!((l.fraction() - 6.0 / 11.0).abs() < 1e-12);
        assert!(l.bound().is_some());
    }
}
