//! Which layer of each video source a receiver gets when its downlink cannot
//! carry everything it asked for (protocol §6.5, §6.7).
//!
//! Sources come in the receiver's priority order (on stage, selected, recent
//! speakers, the rest). Everyone wanted gets the lowest layer first, in that
//! order, while the budget lasts; a source that does not fit ends the pass, so a
//! less important one never takes the place of a more important one. What is
//! left upgrades sources, again in order, towards the layer they asked for.
//!
//! ```
//! use sfu::allocation::{Wish, allocate};
//! let on_stage = Wish { wanted: Some(2), rates: vec![150_000, 500_000, 1_500_000] };
//! let thumbnail = Wish { wanted: Some(0), rates: vec![150_000, 500_000, 1_500_000] };
//! // 800 kbit/s: both thumbnails fit, then the speaker moves up to 500 kbit/s.
//! assert_eq!(allocate(&[on_stage, thumbnail], Some(800_000)), [Some(1), Some(0)]);
//! ```

/// What the receiver wants of one source and what each layer costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Wish {
    /// Highest layer wanted (`None`: no video of this source).
    pub wanted: Option<u8>,
    /// Measured bits per second of each layer, lowest first (0: not measured yet).
    pub rates: Vec<u64>,
}

impl Wish {
    /// What `layer` costs, bits per second (0: not measured yet).
    pub fn rate(&self, layer: u8) -> u64 {
        self.rates.get(usize::from(layer)).copied().unwrap_or(0)
    }
}

/// The layer each source is sent within `budget` bits per second (`None`: no limit).
pub fn allocate(wishes: &[Wish], budget: Option<u64>) -> Vec<Option<u8>> {
    let Some(mut left) = budget else {
        return wishes.iter().map(|w| w.wanted).collect();
    };
    let mut layers: Vec<Option<u8>> = vec![None; wishes.len()];
    for (i, w) in wishes.iter().enumerate() {
        if w.wanted.is_none() {
            continue;
        }
        let cost = w.rate(0);
        if cost > left {
            break;
        }
        left -= cost;
        layers[i] = Some(0);
    }
    for (i, w) in wishes.iter().enumerate() {
        let (Some(mut at), Some(wanted)) = (layers[i], w.wanted) else {
            continue;
        };
        while at < wanted {
            // A higher layer replaces the lower one; it does not add to it.
            let extra = w.rate(at + 1).saturating_sub(w.rate(at));
            if extra > left {
                break;
            }
            left -= extra;
            at += 1;
        }
        layers[i] = Some(at);
    }
    layers
}

/// Bits per second of one stream, over windows of about a second.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateMeter {
    window_start: Option<std::time::Instant>,
    bytes: u64,
    bps: u64,
    /// When the last packet came, and when its current run of packets
    /// (without a gap over [`GAP`]) began.
    last: Option<std::time::Instant>,
    since: Option<std::time::Instant>,
}

const WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

impl RateMeter {
    pub fn add(&mut self, now: std::time::Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW {
            self.bps = self.bytes * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            self.bytes = 0;
            self.window_start = Some(now);
        }
        self.bytes += bytes as u64;
        if self
            .last
            .is_none_or(|l| now.saturating_duration_since(l) > GAP)
        {
            self.since = Some(now);
        }
        self.last = Some(now);
    }

    /// How long the stream has sent nothing (`None`: never sent).
    pub fn quiet_for(&self, now: std::time::Instant) -> Option<std::time::Duration> {
        self.last.map(|l| now.saturating_duration_since(l))
    }

    /// The last full window's rate; 0 once the stream has been quiet for two.
    pub fn bps(&self, now: std::time::Instant) -> u64 {
        match self.window_start {
            Some(s) if now.saturating_duration_since(s) < 2 * WINDOW => self.bps,
            _ => 0,
        }
    }
}

/// A layer silent while a lower one of its source kept sending for this long
/// has been paused by its sender (its own bandwidth or CPU): it is no layer
/// to switch to.
pub const PAUSED_AFTER: std::time::Duration = std::time::Duration::from_millis(500);
/// A lower layer counts only while it is sending now...
const SENDING_WITHIN: std::time::Duration = std::time::Duration::from_millis(200);
/// ...and has sent without a gap longer than this: a bridge that stalled
/// (all layers queued behind it) must not take its backlog for a pause.
const GAP: std::time::Duration = std::time::Duration::from_millis(250);

/// The highest layer of a source its sender is sending, by its layers' meters
/// (lowest first): one above a layer that has been sending without a break for
/// [`PAUSED_AFTER`] since the upper one's last packet is paused. A source quiet
/// on every layer (a still screen, a camera not started) keeps them all.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sfu::allocation::{RateMeter, top_layer_sent};
/// let t = Instant::now();
/// let mut layers = [RateMeter::default(); 3];
/// layers[2].add(t, 1000);
/// // Layers 0 and 1 go on every 20 ms for a second, layer 2 stopped.
/// for ms in (0..=1000).step_by(20) {
///     layers[0].add(t + Duration::from_millis(ms), 1000);
///     layers[1].add(t + Duration::from_millis(ms), 1000);
/// }
/// assert_eq!(top_layer_sent(&layers, t + Duration::from_secs(1)), 1);
/// ```
pub fn top_layer_sent(layers: &[RateMeter], now: std::time::Instant) -> u8 {
    let paused = |i: usize| {
        layers[..i].iter().any(|lower| {
            let (Some(last), Some(since)) = (lower.last, lower.since) else {
                return false;
            };
            let sending = now.saturating_duration_since(last) < SENDING_WITHIN;
            let upper_last = layers[i].last.map_or(since, |l| l.max(since));
            sending && last.saturating_duration_since(upper_last) >= PAUSED_AFTER
        })
    };
    let top = layers.len().saturating_sub(1);
    (0..=top).rev().find(|&i| !paused(i)).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wish(wanted: Option<u8>) -> Wish {
        Wish {
            wanted,
            rates: vec![100, 300, 1000],
        }
    }

    #[test]
    fn no_budget_gives_everyone_what_they_asked() {
        let w = [wish(Some(2)), wish(None), wish(Some(1))];
        assert_eq!(allocate(&w, None), [Some(2), None, Some(1)]);
    }

    #[test]
    fn thumbnails_first_then_upgrades_in_priority_order() {
        let w = [wish(Some(2)), wish(Some(2)), wish(Some(2))];
        assert_eq!(allocate(&w, Some(300)), [Some(0), Some(0), Some(0)]);
        assert_eq!(allocate(&w, Some(500)), [Some(1), Some(0), Some(0)]);
        assert_eq!(allocate(&w, Some(1300)), [Some(2), Some(0), Some(0)]);
        assert_eq!(allocate(&w, Some(1500)), [Some(2), Some(1), Some(0)]);
    }

    #[test]
    fn a_source_that_does_not_fit_keeps_less_important_ones_out() {
        let big = Wish {
            wanted: Some(0),
            rates: vec![500],
        };
        assert_eq!(
            allocate(&[wish(Some(0)), big, wish(Some(0))], Some(300)),
            [Some(0), None, None]
        );
    }

    #[test]
    fn unmeasured_layers_cost_nothing() {
        let new = Wish {
            wanted: Some(2),
            rates: vec![],
        };
        assert_eq!(allocate(&[new], Some(0)), [Some(2)]);
    }

    #[test]
    fn rates_are_measured_per_second_and_forgotten_when_quiet() {
        let t = Instant::now();
        let mut m = RateMeter::default();
        for i in 0..=50 {
            m.add(t + Duration::from_millis(20 * i), 1250);
        }
        assert_eq!(m.bps(t + Duration::from_secs(1)), 500_000);
        assert_eq!(m.bps(t + Duration::from_secs(4)), 0);
    }

    #[test]
    fn a_paused_top_layer_is_not_offered_while_a_lower_one_is_sent() {
        let t = Instant::now();
        let mut layers = [RateMeter::default(); 3];
        for l in &mut layers {
            l.add(t, 1000);
        }
        assert_eq!(top_layer_sent(&layers, t), 2);
        // Only layer 0 goes on: after PAUSED_AFTER the others are paused.
        let go_on = |layers: &mut [RateMeter], from: u64, to: u64| {
            for ms in (from..=to).step_by(20) {
                layers[0].add(t + Duration::from_millis(ms), 1000);
            }
        };
        go_on(&mut layers, 20, 400);
        assert_eq!(top_layer_sent(&layers, t + Duration::from_millis(400)), 2);
        go_on(&mut layers, 420, 600);
        assert_eq!(top_layer_sent(&layers, t + Duration::from_millis(600)), 0);
        // Everything quiet (a still screen): every layer stays on offer.
        assert_eq!(top_layer_sent(&layers, t + Duration::from_secs(5)), 2);
        // A layer that never sent, beside one that has for long enough.
        let mut two = [RateMeter::default(); 2];
        go_on(&mut two, 0, 400);
        assert_eq!(top_layer_sent(&two, t + Duration::from_millis(400)), 1);
        go_on(&mut two, 420, 600);
        assert_eq!(top_layer_sent(&two, t + Duration::from_millis(600)), 0);
    }

    #[test]
    fn a_stalled_bridge_does_not_take_its_backlog_for_a_pause() {
        let t = Instant::now();
        let mut layers = [RateMeter::default(); 3];
        for ms in (0..=400).step_by(20) {
            for l in &mut layers {
                l.add(t + Duration::from_millis(ms), 1000);
            }
        }
        // Nothing read for 700 ms, then the backlog: layer 0's packet of the
        // next frame is handled before layer 2's.
        let late = t + Duration::from_millis(1100);
        layers[0].add(late, 1000);
        assert_eq!(top_layer_sent(&layers, late), 2);
    }
}
