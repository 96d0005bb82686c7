//! The overuse detector: the trend compared with a threshold that adapts to
//! it, so a path with a jittery but stable delay is not read as congested
//! and a competing TCP flow does not starve us (the threshold rises with
//! sustained large trends, and falls back when they pass).

use super::trendline::Trend;

/// Where the threshold starts, ms. Raising it delays the first detection.
const INITIAL_THRESHOLD: f64 = 12.5;

/// Bounds of the threshold, ms.
const MIN_THRESHOLD: f64 = 6.0;
const MAX_THRESHOLD: f64 = 600.0;

/// How fast the threshold climbs toward a trend above it (per ms). Raising it
/// yields more to delay-insensitive competing flows and detects less.
const K_UP: f64 = 0.0087;

/// How fast it falls toward a trend below it. Raising it makes the detector
/// sensitive again sooner after a noisy spell.
const K_DOWN: f64 = 0.039;

/// A trend this far beyond the threshold is an outlier, not a reason to
/// move the threshold (a spike must not desensitize the detector).
const MAX_ADAPT_OFFSET: f64 = 15.0;

/// The threshold step is capped as if at most this many ms had passed, so a
/// pause does not move it all the way at once.
const MAX_ADAPT_STEP_MS: f64 = 100.0;

/// The trend must stay over the threshold this long (ms of send time) before
/// it counts as overuse. Raising it ignores longer spikes; lowering it
/// reacts to single bursts.
const OVERUSE_TIME_MS: f64 = 10.0;

/// What the delay says about the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// The queue is stable.
    Normal,
    /// The queue grows: we send more than the path carries.
    Over,
    /// The queue drains: we send less than it carries.
    Under,
}

/// The detector's state between groups.
#[derive(Debug)]
pub(super) struct OveruseDetector {
    threshold: f64,
    /// When the threshold last moved, on the receiver's clock.
    last_adapt_us: Option<i64>,
    /// How long the trend has been over the threshold; `None` when it is not.
    over_ms: Option<f64>,
    over_count: u32,
    previous_slope: f64,
    usage: Usage,
}

impl OveruseDetector {
    pub fn new() -> Self {
        OveruseDetector {
            threshold: INITIAL_THRESHOLD,
            last_adapt_us: None,
            over_ms: None,
            over_count: 0,
            previous_slope: 0.0,
            usage: Usage::Normal,
        }
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Folds in one group's trend; `send_delta_ms` is the time the group
    /// covers, `at_us` when it arrived.
    pub fn detect(&mut self, trend: Trend, send_delta_ms: f64, at_us: i64) -> Usage {
        if trend.modified > self.threshold {
            let over = self
                .over_ms
                .map_or(send_delta_ms / 2.0, |t| t + send_delta_ms);
            self.over_ms = Some(over);
            self.over_count += 1;
            // Only while the slope is still rising: a queue already draining
            // after a burst is not a reason to back off.
            if over > OVERUSE_TIME_MS && self.over_count > 1 && trend.slope >= self.previous_slope {
                self.over_ms = Some(0.0);
                self.over_count = 0;
                self.usage = Usage::Over;
            }
        } else {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = if trend.modified < -self.threshold {
                Usage::Under
            } else {
                Usage::Normal
            };
        }
        self.previous_slope = trend.slope;
        self.adapt(trend.modified, at_us);
        self.usage
    }

    fn adapt(&mut self, modified: f64, at_us: i64) {
        let last = *self.last_adapt_us.get_or_insert(at_us);
        let magnitude = modified.abs();
        if magnitude > self.threshold + MAX_ADAPT_OFFSET {
            self.last_adapt_us = Some(at_us);
            return;
        }
        let k = if magnitude < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let step_ms = (at_us.saturating_sub(last) as f64 / 1000.0).clamp(0.0, MAX_ADAPT_STEP_MS);
        self.threshold += k * (magnitude - self.threshold) * step_ms;
        self.threshold = self.threshold.clamp(MIN_THRESHOLD, MAX_THRESHOLD);
        self.last_adapt_us = Some(at_us);
    }

    #[cfg(test)]
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(slope: f64, modified: f64) -> Trend {
        Trend { slope, modified }
    }

    #[test]
    fn a_trend_over_the_threshold_for_long_enough_is_overuse() {
        let mut d = OveruseDetector::new();
        // First sample over: 2.5 ms counted, one sample: not yet.
        assert_eq!(d.detect(trend(0.1, 20.0), 5.0, 0), Usage::Normal);
        // 7.5 ms: still short.
        assert_eq!(d.detect(trend(0.1, 20.0), 5.0, 5_000), Usage::Normal);
        // 12.5 ms over, three samples, slope not falling.
        assert_eq!(d.detect(trend(0.1, 20.0), 5.0, 10_000), Usage::Over);
    }

    #[test]
    fn a_falling_slope_is_not_overuse() {
        let mut d = OveruseDetector::new();
        d.detect(trend(0.3, 20.0), 20.0, 0);
        assert_eq!(d.detect(trend(0.2, 20.0), 20.0, 20_000), Usage::Normal);
        assert_eq!(d.detect(trend(0.25, 20.0), 20.0, 40_000), Usage::Over);
    }

    #[test]
    fn a_negative_trend_beyond_the_threshold_is_underuse() {
        let mut d = OveruseDetector::new();
        assert_eq!(d.detect(trend(-0.1, -20.0), 20.0, 0), Usage::Under);
        assert_eq!(d.detect(trend(0.0, 0.0), 20.0, 20_000), Usage::Normal);
    }

    #[test]
    fn the_threshold_follows_the_trend_within_its_bounds() {
        let mut d = OveruseDetector::new();
        // Just above the threshold for a long time: it climbs toward the trend.
        for i in 1..500 {
            d.detect(trend(0.0, 20.0), 20.0, i * 20_000);
        }
        assert!(
            d.threshold() > 19.0 && d.threshold() <= 20.0,
            "{}",
            d.threshold()
        );
        // An outlier far above does not move it.
        let before = d.threshold();
        d.detect(trend(0.0, 500.0), 20.0, 500 * 20_000);
        assert_eq!(d.threshold(), before);
        // A quiet path brings it down to its floor.
        for i in 501..2000 {
            d.detect(trend(0.0, 0.0), 20.0, i * 20_000);
        }
        assert_eq!(d.threshold(), MIN_THRESHOLD);
    }
}
