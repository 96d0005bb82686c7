//! The trendline estimator: the slope of the queueing delay over arrival
//! time, fitted by least squares to the last few groups' smoothed delay.
//! A growing queue gives a positive slope well before it gives loss.

use super::arrival::GroupDelta;

/// Groups in the fit. Raising it steadies the slope and delays its
/// response; lowering it reacts sooner and to more noise.
const WINDOW: usize = 20;

/// Exponential smoothing of the accumulated delay before the fit. Raising it
/// toward 1 filters jitter and slows detection.
const SMOOTHING: f64 = 0.9;

/// Gain from slope (ms of delay per ms) to the value compared with the
/// detector's threshold. Raising it makes the detector more sensitive.
const GAIN: f64 = 4.0;

/// Samples after which the slope counts fully; before, it is scaled down
/// by the count so the first few noisy groups cannot trigger overuse.
const FULL_WEIGHT_SAMPLES: u32 = 60;

/// The delay slope over recent groups.
#[derive(Debug)]
pub(super) struct Trendline {
    /// `(arrival ms since the first group, smoothed delay ms)`, a ring.
    points: [(f64, f64); WINDOW],
    len: usize,
    next: usize,
    first_arrival_us: Option<i64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    samples: u32,
    slope: f64,
}

/// What the detector reads from one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Trend {
    /// The fitted slope.
    pub slope: f64,
    /// The slope scaled by gain and sample count: compared with the threshold.
    pub modified: f64,
}

impl Trendline {
    pub fn new() -> Self {
        Trendline {
            points: [(0.0, 0.0); WINDOW],
            len: 0,
            next: 0,
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            samples: 0,
            slope: 0.0,
        }
    }

    pub fn update(&mut self, delta: &GroupDelta) -> Trend {
        let delay_ms = (delta.arrival_us - delta.send_us) as f64 / 1000.0;
        self.samples = self.samples.saturating_add(1);
        self.accumulated_ms += delay_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival_us.get_or_insert(delta.at_arrival_us);
        let x = delta.at_arrival_us.saturating_sub(first) as f64 / 1000.0;
        self.points[self.next] = (x, self.smoothed_ms);
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        if self.len == WINDOW
            && let Some(slope) = fit_slope(&self.points)
        {
            self.slope = slope;
        }
        let weight = f64::from(self.samples.min(FULL_WEIGHT_SAMPLES));
        Trend {
            slope: self.slope,
            modified: weight * self.slope * GAIN,
        }
    }
}

/// Least-squares slope of y over x; `None` when all x are equal.
fn fit_slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut num, mut den) = (0.0, 0.0);
    for &(x, y) in points {
        num += (x - mx) * (y - my);
        den += (x - mx) * (x - mx);
    }
    (den > 0.0 && num.is_finite()).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(send_ms: i64, arrival_ms: i64, at_ms: i64) -> GroupDelta {
        GroupDelta {
            send_us: send_ms * 1000,
            arrival_us: arrival_ms * 1000,
            at_arrival_us: at_ms * 1000,
        }
    }

    #[test]
    fn the_fit_recovers_a_known_slope() {
        let points: Vec<_> = (0..20)
            .map(|i| (i as f64 * 10.0, 3.0 + 0.25 * i as f64 * 10.0))
            .collect();
        assert!((fit_slope(&points).unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(fit_slope(&[(1.0, 2.0), (1.0, 5.0)]), None);
    }

    #[test]
    fn a_steady_path_has_no_trend() {
        let mut t = Trendline::new();
        for i in 0..100 {
            let tr = t.update(&delta(20, 20, 100 + i * 20));
            assert_eq!(tr.modified, 0.0);
        }
    }

    #[test]
    fn a_growing_queue_gives_a_positive_trend_that_grows_with_the_samples() {
        let mut t = Trendline::new();
        let mut last = 0.0;
        for i in 0..100 {
            // Each 20 ms group arrives 2 ms later than the previous: the queue
            // grows by 10 % of the time.
            let tr = t.update(&delta(20, 22, 100 + i * 22));
            if i >= WINDOW as i64 {
                assert!(tr.slope > 0.0);
                assert!(tr.modified >= last, "weight grows to its cap");
            }
            last = tr.modified;
        }
        // The smoothed delay's slope approaches the true 2/22.
        assert!((t.slope - 2.0 / 22.0).abs() < 0.01, "{}", t.slope);
    }
}
