//! When to probe, and at what rate. Delay-based growth is slow (8 % a
//! second at best) and capped by what is actually sent, so a receiver whose
//! next layer does not fit would never get it; a probe cluster (padding or
//! retransmissions sent in a short burst above the estimate) measures the
//! path directly. Probes go out at the start (exponentially, while each
//! result shows room above it) and when the application wants more than the
//! estimate, never above what it wants.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// The first probe, as a multiple of the initial estimate. Raising it finds
/// a fast link in fewer rounds and queues more on a slow one.
const INITIAL_FACTOR: f64 = 3.0;

/// Each further probe, as a multiple of the estimate its predecessor left.
const FURTHER_FACTOR: f64 = 2.0;

/// A probe whose result reaches this share of its rate found room: probe
/// again higher. Raising it stops exponential probing sooner.
const FURTHER_THRESHOLD: f64 = 0.7;

/// A probe with no usable result after this long is given up.
const RESULT_TIMEOUT_US: i64 = 1_000_000;

/// While the application wants more than the estimate, probe this often.
/// Lowering it finds freed capacity sooner at the cost of more bursts (each
/// queues a little on a link that is already full).
const WANT_MORE_INTERVAL_US: i64 = 5_000_000;

/// A probe asked for by the application goes at most this far above the
/// estimate, so a collapsed estimate is not probed with a flood.
const WANT_MORE_MAX_FACTOR: f64 = 2.0;

/// Probes go this far above what the application wants, so the result
/// clears its wish despite the margin results keep.
const DESIRED_HEADROOM: f64 = 1.2;

/// A probe less than this far above the estimate would say little: skip it.
const MIN_GAIN: f64 = 1.1;

/// How long a cluster lasts. Raising it measures more steadily and queues
/// more; libwebrtc uses 15 ms.
const CLUSTER_DURATION_US: i64 = 15_000;

/// Fewest packets in a cluster: the rate is measured between packets.
const CLUSTER_MIN_PACKETS: usize = 5;

/// Latest a cluster's packet can be due after its start (a bound, not a policy).
const MAX_SEND_OFFSET_US: u128 = 3_600_000_000;

/// Names a probe cluster; its packets carry it back to [`super::Estimator::on_sent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeClusterId(NonZeroU32);

impl ProbeClusterId {
    pub(super) fn get(self) -> u32 {
        self.0.get()
    }

    #[cfg(test)]
    pub(super) fn from_raw(id: u32) -> Option<Self> {
        NonZeroU32::new(id).map(ProbeClusterId)
    }
}

/// A burst to send now, at `bitrate_bps` for `bytes` and at least
/// `min_packets` packets. While it is open, every packet sent (media,
/// retransmissions, padding) is passed to `on_sent` with its id and counts
/// toward it; padding (or retransmissions on the video RTX stream) fills in
/// whenever the bytes sent fall behind [`ProbeCluster::send_time`]. It
/// closes at [`ProbeCluster::is_complete`]. Padding sent all at once measures
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCluster {
    /// What the cluster's packets carry to `on_sent`.
    pub id: ProbeClusterId,
    /// The rate of everything sent while it is open.
    pub bitrate_bps: u64,
    /// Bytes it spans (all sent while open), about 15 ms at its rate.
    pub bytes: usize,
    /// Fewest packets it spans.
    pub min_packets: usize,
}

impl ProbeCluster {
    /// When the packet that follows `bytes_sent` bytes of the cluster (all
    /// sent since it opened) is due, for a cluster opened at `start`.
    pub fn send_time(&self, start: Instant, bytes_sent: usize) -> Instant {
        let micros = bytes_sent as u128 * 8_000_000 / u128::from(self.bitrate_bps.max(1));
        // Capped so no byte count can overflow the instant.
        start + Duration::from_micros(micros.min(MAX_SEND_OFFSET_US) as u64)
    }

    /// Whether `bytes` in `packets` complete the cluster.
    pub fn is_complete(&self, bytes: usize, packets: usize) -> bool {
        bytes >= self.bytes && packets >= self.min_packets
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Nothing sent yet: the first poll probes.
    Start,
    /// A cluster is out; its result may call for another.
    Waiting {
        id: u32,
        bitrate: f64,
        deadline_us: i64,
    },
    Idle,
}

/// Decides the probe clusters.
#[derive(Debug)]
pub(super) struct ProbeController {
    phase: Phase,
    /// The rate of a cluster to hand out at the next poll, and since when.
    due: Option<(f64, i64)>,
    desired: Option<f64>,
    max: f64,
    last_probe_us: Option<i64>,
    next_id: u32,
}

impl ProbeController {
    pub fn new(max: u64) -> Self {
        ProbeController {
            phase: Phase::Start,
            due: None,
            desired: None,
            max: max as f64,
            last_probe_us: None,
            next_id: 1,
        }
    }

    /// How high probing goes: what the application wants (with headroom),
    /// or the maximum while it has not said.
    fn ceiling(&self) -> f64 {
        self.desired
            .map_or(self.max, |d| (d * DESIRED_HEADROOM).min(self.max))
    }

    fn wants_more(&self, estimate: f64) -> bool {
        self.desired.is_some_and(|d| d > estimate * MIN_GAIN)
    }

    /// A probe toward `target` if it is worth one.
    fn probe_toward(&mut self, target: f64, estimate: f64, now_us: i64) {
        if self.desired.is_some_and(|d| d <= estimate) {
            return;
        }
        let rate = target.min(self.ceiling());
        if rate >= estimate * MIN_GAIN {
            self.due = Some((rate, now_us));
        }
    }

    /// What the application last said it wants, bit/s.
    pub fn desired(&self) -> Option<u64> {
        self.desired.map(|d| d as u64)
    }

    /// The application now wants `desired` bit/s in all.
    pub fn set_desired(&mut self, now_us: i64, desired: u64, estimate: f64) {
        let desired = desired as f64;
        let rose = self.desired.is_none_or(|d| desired > d);
        self.desired = Some(desired);
        if rose && self.phase == Phase::Idle && self.due.is_none() && self.wants_more(estimate) {
            self.probe_toward(WANT_MORE_MAX_FACTOR * estimate, estimate, now_us);
        }
    }

    /// A cluster's result moved the estimate to `estimate`.
    pub fn on_result(&mut self, id: u32, result: f64, estimate: f64, now_us: i64) {
        let Phase::Waiting {
            id: waited,
            bitrate,
            ..
        } = self.phase
        else {
            return;
        };
        if id != waited || self.due.is_some() {
            return;
        }
        if result > FURTHER_THRESHOLD * bitrate {
            self.probe_toward(FURTHER_FACTOR * estimate, estimate, now_us);
        }
        if self.due.is_none() {
            self.phase = Phase::Idle;
        }
    }

    /// The cluster to send now, if any: `(id, bit/s)`.
    pub fn poll(&mut self, now_us: i64, estimate: f64) -> Option<(u32, f64)> {
        match self.phase {
            Phase::Start => {
                self.phase = Phase::Idle;
                self.probe_toward(INITIAL_FACTOR * estimate, estimate, now_us);
            }
            Phase::Waiting { deadline_us, .. } if now_us >= deadline_us && self.due.is_none() => {
                self.phase = Phase::Idle;
            }
            _ => {}
        }
        if self.phase == Phase::Idle
            && self.due.is_none()
            && self.wants_more(estimate)
            && self
                .last_probe_us
                .is_none_or(|t| now_us.saturating_sub(t) >= WANT_MORE_INTERVAL_US)
        {
            self.probe_toward(WANT_MORE_MAX_FACTOR * estimate, estimate, now_us);
        }
        let (bitrate, _) = self.due.take()?;
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.phase = Phase::Waiting {
            id,
            bitrate,
            deadline_us: now_us.saturating_add(RESULT_TIMEOUT_US),
        };
        self.last_probe_us = Some(now_us);
        Some((id, bitrate))
    }

    /// When [`ProbeController::poll`] may next have a cluster without new
    /// input (µs on our clock).
    pub fn next_poll_us(&self, estimate: f64) -> Option<i64> {
        if let Some((_, since)) = self.due {
            return Some(since);
        }
        match self.phase {
            Phase::Start => Some(0),
            Phase::Waiting { deadline_us, .. } => Some(deadline_us),
            Phase::Idle if self.wants_more(estimate) => Some(
                self.last_probe_us
                    .map_or(0, |t| t.saturating_add(WANT_MORE_INTERVAL_US)),
            ),
            Phase::Idle => None,
        }
    }

    /// The cluster the controller hands out for `(id, bit/s)`.
    pub fn cluster(id: u32, bitrate: f64) -> ProbeCluster {
        let bytes = (bitrate * CLUSTER_DURATION_US as f64 / 8e6) as usize;
        ProbeCluster {
            id: ProbeClusterId(NonZeroU32::new(id).unwrap_or(NonZeroU32::MIN)),
            bitrate_bps: bitrate as u64,
            bytes,
            min_packets: CLUSTER_MIN_PACKETS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_poll_probes_at_three_times_the_estimate() {
        let mut p = ProbeController::new(20_000_000);
        assert_eq!(p.next_poll_us(1e6), Some(0));
        let (id, rate) = p.poll(0, 1e6).unwrap();
        assert_eq!(rate, 3e6);
        assert_eq!(p.poll(1000, 1e6), None, "one at a time");
        // The result showed room: probe again, at twice the new estimate.
        p.on_result(id, 2.9e6, 2.9e6, 100_000);
        assert_eq!(p.poll(100_000, 2.9e6).unwrap().1, 5.8e6);
    }

    #[test]
    fn a_result_well_under_the_probe_rate_ends_probing() {
        let mut p = ProbeController::new(20_000_000);
        let (id, _) = p.poll(0, 1e6).unwrap();
        p.on_result(id, 1.5e6, 1.5e6, 100_000);
        assert_eq!(p.poll(200_000, 1.5e6), None);
        assert_eq!(p.next_poll_us(1.5e6), None, "nothing wanted: no timer");
    }

    #[test]
    fn probing_never_goes_above_what_is_wanted() {
        let mut p = ProbeController::new(20_000_000);
        p.set_desired(0, 2_000_000, 1e6);
        assert_eq!(p.poll(0, 1e6).unwrap().1, 2.4e6, "desired plus headroom");
        let mut p = ProbeController::new(20_000_000);
        p.set_desired(0, 1_000_000, 1e6);
        assert_eq!(p.poll(0, 1e6), None, "already there");
        let mut p = ProbeController::new(2_000_000);
        assert_eq!(p.poll(0, 1e6).unwrap().1, 2e6, "the maximum");
    }

    #[test]
    fn wanting_more_probes_at_once_then_every_few_seconds() {
        let mut p = ProbeController::new(20_000_000);
        p.set_desired(0, 500_000, 1e6);
        assert_eq!(p.poll(0, 1e6), None);
        p.set_desired(10, 5_000_000, 1e6);
        let (id, rate) = p.poll(20, 1e6).unwrap();
        assert_eq!(rate, 2e6, "at most twice the estimate");
        // The path is full: no chain, the next try after the interval.
        p.on_result(id, 1.1e6, 1e6, 100_000);
        assert_eq!(p.poll(200_000, 1e6), None);
        assert_eq!(p.next_poll_us(1e6), Some(20 + WANT_MORE_INTERVAL_US));
        assert_eq!(p.poll(20 + WANT_MORE_INTERVAL_US, 1e6).unwrap().1, 2e6);
    }

    #[test]
    fn a_probe_without_result_times_out() {
        let mut p = ProbeController::new(20_000_000);
        p.poll(0, 1e6).unwrap();
        assert_eq!(p.next_poll_us(1e6), Some(RESULT_TIMEOUT_US));
        p.set_desired(1000, 5_000_000, 1e6);
        assert_eq!(p.poll(RESULT_TIMEOUT_US - 1, 1e6), None, "still waiting");
        // Timed out, and the last probe was under the interval ago.
        assert_eq!(p.poll(RESULT_TIMEOUT_US, 1e6), None);
        assert!(p.poll(WANT_MORE_INTERVAL_US, 1e6).is_some());
    }

    #[test]
    fn a_cluster_is_paced_over_its_duration() {
        let c = ProbeController::cluster(1, 8e6);
        assert_eq!(c.bytes, 15_000);
        let t0 = Instant::now();
        assert_eq!(c.send_time(t0, 15_000) - t0, Duration::from_millis(15));
        assert!(!c.is_complete(15_000, 4));
        assert!(c.is_complete(15_000, 5));
    }
}
