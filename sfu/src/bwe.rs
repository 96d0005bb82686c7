//! The bridge's send-side bandwidth estimate for one receiver, from the
//! transport-wide congestion control feedback (TWCC) it sends back: GoogCC's
//! approach, as libwebrtc and Jitsi Videobridge take it. The estimate caps
//! which simulcast layers the bridge forwards to that receiver.
//!
//! Every packet sent with a transport-wide sequence number is recorded
//! ([`Estimator::on_sent`]); each feedback says which arrived and when, on
//! the receiver's clock ([`Estimator::on_feedback`]). From that:
//!
//! - the acknowledged bitrate: what actually got through (`acked`);
//! - packets grouped into send bursts of 5 ms (`arrival`), and how much later
//!   each group arrived than it was sent after the previous one;
//! - the slope of that delay over time (`trendline`), compared with a
//!   threshold that adapts to it (`overuse`): is the queue growing?
//! - AIMD rate control (`aimd`): back off to 85 % of the acknowledged rate on
//!   overuse, otherwise grow, by 8 % a second far from the rate that last
//!   congested the link and by about a packet per round trip near it;
//! - a bound from the loss the feedback shows (`loss`), for paths that drop
//!   without queueing;
//! - probing (`probe`, `probe_result`): short bursts well above the estimate
//!   at the start and when the application wants more than the estimate,
//!   whose arrival spread measures the path; the caller sends them as
//!   padding or retransmissions ([`Estimator::poll_probe`]).
//!
//! Sans-IO: time comes in with every call. Nothing allocates after
//! [`Estimator::new`], and no feedback, however hostile, grows the state.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sfu::bwe::{Config, Estimator};
//!
//! let start = Instant::now();
//! let mut bwe = Estimator::new(start, Config::default());
//! bwe.set_desired_bitrate(start, 4_000_000);
//! // A probe cluster is due at once: send it as padding, paced.
//! let probe = bwe.poll_probe(start).expect("probing at the start");
//! assert!(probe.bitrate_bps > bwe.estimate());
//! // Media: 100 packets of 1200 bytes, one every 4 ms (2.4 Mbit/s).
//! for seq in 0..100u16 {
//!     bwe.on_sent(start + Duration::from_millis(4 * u64::from(seq)), seq, 1200, None);
//! }
//! // The receiver got them all, 20 ms later, evenly: nothing queued.
//! let feedback = (0..100u16).map(|seq| (seq, Some(20_000 + 4_000 * i64::from(seq))));
//! bwe.on_feedback(start + Duration::from_millis(450), feedback);
//! assert!(bwe.estimate() >= Config::default().initial_bps);
//! assert_eq!(bwe.loss_fraction(), 0.0);
//! ```

mod acked;
mod aimd;
mod arrival;
mod history;
mod loss;
mod overuse;
mod probe;
mod probe_result;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
mod trendline;

use std::time::{Duration, Instant};

use acked::AckedBitrate;
use aimd::Aimd;
use arrival::ArrivalGroups;
use history::{Fate, History};
use loss::LossBound;
use overuse::OveruseDetector;
use probe::ProbeController;
use probe_result::ProbeResults;
use trendline::Trendline;

pub use overuse::Usage;
pub use probe::{ProbeCluster, ProbeClusterId};

/// Received packets of one feedback handled at a time; a feedback naming
/// more is handled in turns (the scratch never grows). Raising it sorts
/// longer feedbacks by arrival in one piece, at 32 bytes each per receiver.
const FEEDBACK_CHUNK: usize = 512;

/// Weight of a new round-trip sample. Raising it follows a changed path
/// sooner and jitters more.
const RTT_SMOOTHING: f64 = 0.125;

/// Where the estimate starts and what it stays within.
///
/// The defaults are Jitsi Videobridge's: it starts each receiver at
/// 2.5 Mbit/s (a receiver on a good link gets upper layers at once, and the
/// first probe then starts high; libwebrtc starts at 300 kbit/s and relies
/// on probing alone), and bounds its GoogCC to 30 kbit/s (audio and a
/// thumbnail still fit) and 20 Mbit/s (above any set of layers one receiver
/// is sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The estimate before any feedback, bit/s.
    pub initial_bps: u64,
    /// The estimate never goes below this, whatever the loss or delay.
    pub min_bps: u64,
    /// Nor above this, nor does probing.
    pub max_bps: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_bps: 2_500_000,
            min_bps: 30_000,
            max_bps: 20_000_000,
        }
    }
}

/// A received packet from one feedback, waiting to be taken in arrival order.
#[derive(Clone, Copy, Debug)]
struct Received {
    arrival_us: i64,
    send_us: i64,
    seq: u64,
    size: u16,
}

/// The send-side estimate for one receiver's transport.
#[derive(Debug)]
pub struct Estimator {
    /// Our clock's origin: times are kept as µs since.
    epoch: Instant,
    config: Config,
    history: History,
    acked: AckedBitrate,
    groups: ArrivalGroups,
    trendline: Trendline,
    detector: OveruseDetector,
    aimd: Aimd,
    loss: LossBound,
    probes: ProbeController,
    probe_results: ProbeResults,
    rtt_us: Option<f64>,
    scratch: Vec<Received>,
    estimate: u64,
}

impl Estimator {
    /// An estimator starting at `config.initial_bps` (clamped into the
    /// bounds), allocating all it will ever hold.
    pub fn new(now: Instant, config: Config) -> Self {
        let max_bps = config.max_bps.max(config.min_bps);
        let config = Config {
            initial_bps: config.initial_bps.clamp(config.min_bps, max_bps),
            min_bps: config.min_bps,
            max_bps,
        };
        Estimator {
            epoch: now,
            config,
            history: History::new(),
            acked: AckedBitrate::new(),
            groups: ArrivalGroups::default(),
            trendline: Trendline::new(),
            detector: OveruseDetector::new(),
            aimd: Aimd::new(0, config.initial_bps, config.min_bps, config.max_bps),
            loss: LossBound::new(),
            probes: ProbeController::new(config.max_bps),
            probe_results: ProbeResults::default(),
            rtt_us: None,
            scratch: Vec::with_capacity(FEEDBACK_CHUNK),
            estimate: config.initial_bps,
        }
    }

    /// The estimate, in bits per second.
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// What the receiver's feedback says it got, in bits per second
    /// (`None` until enough has been reported).
    pub fn acked_bps(&self) -> Option<u64> {
        self.acked.bps().map(|b| b as u64)
    }

    /// The share of packets reported lost over the last sample (about 40 packets).
    pub fn loss_fraction(&self) -> f64 {
        self.loss.fraction()
    }

    /// The round trip as feedback measures it (it includes the receiver's
    /// wait before sending feedback, up to its interval).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt_us.map(|us| Duration::from_micros(us as u64))
    }

    /// What the delay signal says about the path now.
    pub fn usage(&self) -> Usage {
        self.detector.usage()
    }

    /// Records a packet sent with transport-wide sequence number `twcc_seq`:
    /// media, retransmissions and padding alike, `size` bytes on the wire;
    /// `probe` when it belongs to a cluster from [`Estimator::poll_probe`].
    pub fn on_sent(
        &mut self,
        now: Instant,
        twcc_seq: u16,
        size: usize,
        probe: Option<ProbeClusterId>,
    ) {
        let now_us = self.micros(now);
        if let Some(seq) = self.history.on_sent(twcc_seq, now_us, size) {
            let size = size.min(usize::from(u16::MAX)) as u16;
            let probe = probe.map_or(0, ProbeClusterId::get);
            self.probe_results.on_sent(seq, now_us, size, probe);
        }
    }

    /// Takes one feedback: each packet's sequence number and its arrival
    /// time in µs on the receiver's clock, or `None` when reported lost.
    /// Numbers never sent, already reported or too old are ignored.
    pub fn on_feedback(
        &mut self,
        now: Instant,
        packets: impl IntoIterator<Item = (u16, Option<i64>)>,
    ) {
        let now_us = self.micros(now);
        let (mut lost, mut received) = (0u32, 0u32);
        let mut newest_send_us = None;
        let mut probe_result = None;
        self.scratch.clear();
        for (seq, arrival) in packets {
            let Some(sent) = self.history.get(seq, now_us) else {
                continue;
            };
            match (sent.fate, arrival) {
                (Fate::Received, _) | (Fate::Lost, None) => {}
                (Fate::Unreported, None) => {
                    sent.fate = Fate::Lost;
                    lost += 1;
                }
                (_, Some(arrival_us)) => {
                    sent.fate = Fate::Received;
                    received += 1;
                    let packet = Received {
                        arrival_us,
                        send_us: sent.send_us,
                        seq: sent.seq(),
                        size: sent.size,
                    };
                    newest_send_us = newest_send_us.max(Some(packet.send_us));
                    self.scratch.push(packet);
                    if self.scratch.len() == FEEDBACK_CHUNK {
                        self.take_received(&mut probe_result);
                    }
                }
            }
        }
        self.take_received(&mut probe_result);
        if lost == 0 && received == 0 {
            return;
        }
        if let Some(sent_us) = newest_send_us {
            let sample = now_us.saturating_sub(sent_us).max(0) as f64;
            let rtt = self
                .rtt_us
                .map_or(sample, |r| r + RTT_SMOOTHING * (sample - r));
            self.rtt_us = Some(rtt);
        }
        let rtt_us = self.rtt_us.map_or(aimd::DEFAULT_RTT_US, |r| r as i64);
        let before = self.estimate as f64;
        let usage = self.detector.usage();
        match probe_result {
            Some((_, rate)) if usage != Usage::Over && rate > self.aimd.bps() => {
                self.aimd.set_estimate(rate, now_us);
                self.acked.restart(now_us);
            }
            _ => self.aimd.update(now_us, usage, self.acked.bps(), rtt_us),
        }
        self.loss
            .on_feedback(now_us, lost, received, before, self.aimd.bps(), rtt_us);
        let combined = self
            .loss
            .bound()
            .map_or(self.aimd.bps(), |b| b.min(self.aimd.bps()));
        self.estimate = (combined as u64).clamp(self.config.min_bps, self.config.max_bps);
        if let Some((id, rate)) = probe_result {
            self.probes
                .on_result(id, rate, self.estimate as f64, now_us);
        }
    }

    /// The application would forward `bps` in all if the estimate allowed
    /// (the sum of the layers the receiver asked for): probing goes no higher,
    /// and probes when this rises above the estimate.
    pub fn set_desired_bitrate(&mut self, now: Instant, bps: u64) {
        let now_us = self.micros(now);
        self.probes.set_desired(now_us, bps, self.estimate as f64);
    }

    /// What [`Estimator::set_desired_bitrate`] last said (`None`: not yet).
    pub fn desired_bitrate(&self) -> Option<u64> {
        self.probes.desired()
    }

    /// A probe cluster to open now, if one is due: while it is open, every
    /// packet sent carries its id to [`Estimator::on_sent`], and padding
    /// tops the sending up to its rate (see [`ProbeCluster`]). Close it
    /// before asking again.
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeCluster> {
        let now_us = self.micros(now);
        let (id, bitrate) = self.probes.poll(now_us, self.estimate as f64)?;
        let cluster = ProbeController::cluster(id, bitrate);
        self.probe_results
            .start(id, cluster.min_packets as u32, cluster.bytes as u64);
        Some(cluster)
    }

    /// When [`Estimator::poll_probe`] may next have a cluster without other
    /// input (`None`: only after a call).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let us = self.probes.next_poll_us(self.estimate as f64)?;
        Some(self.epoch + Duration::from_micros(us.max(0) as u64))
    }

    /// Handles the received packets gathered so far, in arrival order.
    fn take_received(&mut self, probe_result: &mut Option<(u32, f64)>) {
        self.scratch
            .sort_unstable_by_key(|p| (p.arrival_us, p.send_us));
        for p in &self.scratch {
            self.acked.on_received(p.send_us, p.arrival_us, p.size);
            if let Some(result) = self.probe_results.on_received(p.seq, p.arrival_us, p.size) {
                *probe_result = Some(result);
            }
            if let Some(delta) = self.groups.on_received(p.send_us, p.arrival_us) {
                let trend = self.trendline.update(&delta);
                self.detector
                    .detect(trend, delta.send_us as f64 / 1000.0, delta.at_arrival_us);
            }
        }
        self.scratch.clear();
    }

    fn micros(&self, t: Instant) -> i64 {
        i64::try_from(t.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
    }

    /// The sizes of everything held, for the tests that check nothing grows.
    #[cfg(test)]
    fn footprint(&self) -> (usize, usize) {
        (self.history.capacity(), self.scratch.capacity())
    }
}
