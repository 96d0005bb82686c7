//! Per-second figures for the stats report: bit and packet rates and each
//! worker's busy share, over windows of at least five seconds (Videobridge
//! refreshes its report as often), so that polling faster does not make them
//! jumpy and polling twice does not make them zero.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a window lasts at least.
const WINDOW: Duration = Duration::from_secs(5);

/// Cumulative counts at one instant.
#[derive(Clone, Debug, Default)]
pub(super) struct Sample {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Each worker's time awake since it started.
    pub busy: Vec<Duration>,
}

/// What the last closed window saw, per second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub bits_in: f64,
    pub bits_out: f64,
    pub packets_in: f64,
    pub packets_out: f64,
    /// The share of the window each worker was awake, 0 to 1.
    pub worker_busy: Vec<f64>,
}

impl Rates {
    /// The busiest worker's share: a conference cannot use another worker,
    /// so the bridge is as stressed as its busiest one.
    pub fn stress(&self) -> f64 {
        self.worker_busy.iter().copied().fold(0.0, f64::max)
    }
}

pub(super) struct Window {
    state: Mutex<State>,
}

struct State {
    opened: Instant,
    at_open: Sample,
    last: Rates,
}

impl Window {
    pub fn new(now: Instant, workers: usize) -> Window {
        let at_open = Sample {
            busy: vec![Duration::ZERO; workers],
            ..Default::default()
        };
        Window {
            state: Mutex::new(State {
                opened: now,
                at_open,
                last: Rates::default(),
            }),
        }
    }

    /// The rates of the last closed window, closing the current one first if
    /// it has lasted long enough.
    pub fn observe(&self, now: Instant, sample: Sample) -> Rates {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(s.opened);
        if elapsed >= WINDOW {
            let secs = elapsed.as_secs_f64();
            let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
            let before = &s.at_open;
            s.last = Rates {
                bits_in: 8.0 * per_second(sample.bytes_in, before.bytes_in),
                bits_out: 8.0 * per_second(sample.bytes_out, before.bytes_out),
                packets_in: per_second(sample.packets_in, before.packets_in),
                packets_out: per_second(sample.packets_out, before.packets_out),
                worker_busy: sample
                    .busy
                    .iter()
                    .zip(&before.busy)
                    .map(|(now, then)| (now.saturating_sub(*then).as_secs_f64() / secs).min(1.0))
                    .collect(),
            };
            s.opened = now;
            s.at_open = sample;
        }
        s.last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(bytes: u64, packets: u64, busy_ms: &[u64]) -> Sample {
        Sample {
            bytes_in: bytes,
            bytes_out: 2 * bytes,
            packets_in: packets,
            packets_out: 3 * packets,
            busy: busy_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        }
    }

    #[test]
    fn rates_come_from_whole_windows() {
        let t0 = Instant::now();
        let w = Window::new(t0, 2);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            w.observe(at(1), sample(1000, 10, &[100, 0])),
            Rates::default(),
            "nothing before the first window closes"
        );
        let r = w.observe(at(5), sample(50_000, 500, &[2500, 500]));
        assert_eq!((r.bits_in, r.bits_out), (80_000.0, 160_000.0));
        assert_eq!((r.packets_in, r.packets_out), (100.0, 300.0));
        assert_eq!(r.worker_busy, vec![0.5, 0.1]);
        assert_eq!(r.stress(), 0.5);
        // Asked again within the next window: the same figures, not zeros.
        assert_eq!(w.observe(at(6), sample(60_000, 600, &[2600, 600])), r);
        let r2 = w.observe(at(10), sample(50_000, 500, &[7500, 500]));
        assert_eq!((r2.bits_in, r2.packets_in), (0.0, 0.0));
        assert_eq!(r2.worker_busy, vec![1.0, 0.0]);
    }
}
