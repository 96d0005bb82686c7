//! A sans-IO path for the estimator's tests, on virtual time: a sender that
//! paces media at the estimate (or less) and sends probe clusters when asked,
//! a bottleneck link (capacity, drop-tail queue, propagation delay, random
//! loss) and a receiver that sends TWCC-style feedback every 50-100 ms, as a
//! browser does (arrival times in 250 µs steps), over an uncongested return
//! path.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, Gcc, PacketReport};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

use super::{Config, Estimator, ProbeCluster};

/// Simulation step.
const STEP_US: i64 = 100;

/// Media packet size, and the size of the padding packets probes are made of.
const MEDIA_BYTES: usize = 1200;
const PROBE_BYTES: usize = 1000;

/// The first transport-wide sequence number: every run crosses the wrap.
const FIRST_SEQ: u64 = 65_000;

/// The receiver's clock starts here (an arbitrary origin, as a browser's is).
const RECEIVER_CLOCK_OFFSET_US: i64 = 987_654_321;

/// The bottleneck.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub capacity_bps: u64,
    /// Queue limit in ms of the capacity.
    pub queue_ms: u64,
    pub one_way_ms: u64,
    /// Random loss before the queue, 0..1.
    pub loss: f64,
}

impl Link {
    pub fn new(capacity_bps: u64) -> Self {
        Link {
            capacity_bps,
            queue_ms: 300,
            one_way_ms: 25,
            loss: 0.0,
        }
    }
}

/// xorshift64*: deterministic runs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..1.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A feedback's reports: unwrapped sequence number and arrival (receiver's clock).
type Feedback = Vec<(u64, Option<i64>)>;

struct ActiveProbe {
    cluster: ProbeCluster,
    start: Instant,
    bytes: usize,
    packets: usize,
}

/// Sender, link and receiver.
pub struct Sim {
    pub bwe: Estimator,
    pub link: Link,
    /// The application sends at most this (`None`: all the estimate allows).
    pub media_limit_bps: Option<u64>,
    start: Instant,
    now_us: i64,
    rng: Rng,
    next_seq: u64,
    media_budget: f64,
    probe: Option<ActiveProbe>,
    /// When the link finishes sending what it holds.
    busy_until_us: i64,
    /// `(arrival at the receiver, seq)`.
    in_flight: VecDeque<(i64, u64)>,
    /// Arrivals not yet reported, by unwrapped seq.
    unreported: BTreeMap<u64, i64>,
    next_to_report: u64,
    feedback_due_us: i64,
    /// `(delivery to the sender, feedback by unwrapped seq)`.
    returning: VecDeque<(i64, Feedback)>,
    /// webrtc-rs's GCC, fed the same feedback as an observer (it does not
    /// drive the sender).
    pub theirs: Option<Gcc>,
    /// `(send time, size)` by unwrapped seq, for the observer.
    sent_log: Vec<(Instant, usize)>,
    /// `(time, estimate)` every 100 ms.
    pub samples: Vec<(i64, u64)>,
    /// Queueing delay of each packet the link took, µs.
    pub queue_delays: Vec<i64>,
    pub sent_probe_clusters: usize,
}

impl Sim {
    pub fn new(link: Link, config: Config, seed: u64) -> Self {
        let start = Instant::now();
        Sim {
            bwe: Estimator::new(start, config),
            link,
            media_limit_bps: None,
            start,
            now_us: 0,
            rng: Rng::new(seed),
            next_seq: FIRST_SEQ,
            media_budget: 0.0,
            probe: None,
            busy_until_us: 0,
            in_flight: VecDeque::new(),
            unreported: BTreeMap::new(),
            next_to_report: FIRST_SEQ,
            feedback_due_us: 50_000,
            returning: VecDeque::new(),
            theirs: None,
            sent_log: Vec::new(),
            samples: Vec::new(),
            queue_delays: Vec::new(),
            sent_probe_clusters: 0,
        }
    }

    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    pub fn instant(&self, us: i64) -> Instant {
        self.start + Duration::from_micros(us as u64)
    }

    /// Runs until `until_s` seconds of simulated time.
    pub fn run_until(&mut self, until_s: f64) {
        let until = (until_s * 1e6) as i64;
        while self.now_us < until {
            self.step();
            self.now_us += STEP_US;
        }
    }

    fn step(&mut self) {
        let now = self.instant(self.now_us);
        while let Some(&(at, seq)) = self.in_flight.front() {
            if at > self.now_us {
                break;
            }
            self.in_flight.pop_front();
            // TWCC carries arrival times in steps of 250 µs.
            let arrival = at + RECEIVER_CLOCK_OFFSET_US;
            self.unreported.insert(seq, arrival - arrival % 250);
        }
        if self.now_us >= self.feedback_due_us {
            self.send_feedback();
            self.feedback_due_us += 50_000 + (self.rng.unit() * 50_000.0) as i64;
        }
        while let Some((at, _)) = self.returning.front() {
            if *at > self.now_us {
                break;
            }
            let (_, feedback) = self.returning.pop_front().expect("just seen");
            self.bwe
                .on_feedback(now, feedback.iter().map(|&(seq, a)| (seq as u16, a)));
            if let Some(theirs) = self.theirs.as_mut() {
                let reports: Vec<_> = feedback
                    .iter()
                    .map(|&(seq, arrival)| PacketReport {
                        ssrc: 1,
                        id: seq,
                        rtp_sequence_number: seq as u16,
                        is_twcc: true,
                        twcc_sequence_number: seq as u16,
                        size: self.sent_log[(seq - FIRST_SEQ) as usize].1,
                        arrived: arrival.is_some(),
                        departure: self.sent_log[(seq - FIRST_SEQ) as usize].0,
                        arrival: arrival.map(|a| Duration::from_micros(a as u64)),
                        ecn: Ecn::NotEct,
                    })
                    .collect();
                theirs.on_reports(now, &reports);
            }
        }
        self.send_probe(now);
        let rate = self
            .media_limit_bps
            .map_or(self.bwe.estimate(), |l| l.min(self.bwe.estimate()));
        self.media_budget += rate as f64 * STEP_US as f64 / 8e6;
        // A pacer sends at most a couple of packets at once.
        self.media_budget = self.media_budget.min(2.0 * MEDIA_BYTES as f64);
        while self.media_budget >= MEDIA_BYTES as f64 {
            self.media_budget -= MEDIA_BYTES as f64;
            self.send(MEDIA_BYTES);
        }
        if self.now_us % 100_000 == 0 {
            self.samples.push((self.now_us, self.bwe.estimate()));
        }
    }

    /// Opens a cluster when one is due and tops up the open one with padding.
    fn send_probe(&mut self, now: Instant) {
        if self.probe.is_none() {
            let Some(cluster) = self.bwe.poll_probe(now) else {
                return;
            };
            self.sent_probe_clusters += 1;
            self.probe = Some(ActiveProbe {
                cluster,
                start: now,
                bytes: 0,
                packets: 0,
            });
        }
        while let Some(p) = &self.probe {
            if p.cluster.send_time(p.start, p.bytes) > now {
                return;
            }
            self.send(PROBE_BYTES);
        }
    }

    /// Sends a packet, counting it toward the open cluster if there is one.
    fn send(&mut self, size: usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let now = self.instant(self.now_us);
        let probe = self.probe.as_mut().map(|p| {
            p.bytes += size;
            p.packets += 1;
            p.cluster.id
        });
        if self
            .probe
            .as_ref()
            .is_some_and(|p| p.cluster.is_complete(p.bytes, p.packets))
        {
            self.probe = None;
        }
        self.bwe.on_sent(now, seq as u16, size, probe);
        self.sent_log.push((now, size));
        if self.rng.unit() < self.link.loss {
            return;
        }
        let capacity = self.link.capacity_bps as f64;
        let backlog_us = (self.busy_until_us - self.now_us).max(0);
        let limit_us = self.link.queue_ms as i64 * 1000;
        let serialize_us = (size as f64 * 8e6 / capacity) as i64;
        if backlog_us + serialize_us > limit_us {
            return; // tail drop
        }
        let departs = self.busy_until_us.max(self.now_us) + serialize_us;
        self.busy_until_us = departs;
        self.queue_delays.push(departs - self.now_us);
        self.in_flight
            .push_back((departs + self.link.one_way_ms as i64 * 1000, seq));
    }

    /// Reports everything from the last report to the newest arrival.
    fn send_feedback(&mut self) {
        let Some((&highest, _)) = self.unreported.last_key_value() else {
            return;
        };
        let feedback: Vec<_> = (self.next_to_report..=highest)
            .map(|seq| (seq, self.unreported.get(&seq).copied()))
            .collect();
        self.unreported.clear();
        self.next_to_report = highest + 1;
        let at = self.now_us + self.link.one_way_ms as i64 * 1000;
        self.returning.push_back((at, feedback));
    }

    /// The first sampled time at or after `from_s` when the estimate was at
    /// least `bps`, in seconds.
    pub fn first_at_least(&self, bps: f64, from_s: f64) -> Option<f64> {
        self.samples
            .iter()
            .find(|&&(t, e)| t as f64 / 1e6 >= from_s && e as f64 >= bps)
            .map(|&(t, _)| t as f64 / 1e6)
    }

    /// The first sampled time at or after `from_s` when the estimate was at
    /// most `bps`, in seconds.
    pub fn first_at_most(&self, bps: f64, from_s: f64) -> Option<f64> {
        self.samples
            .iter()
            .find(|&&(t, e)| t as f64 / 1e6 >= from_s && e as f64 <= bps)
            .map(|&(t, _)| t as f64 / 1e6)
    }

    /// Estimates sampled within `from_s..to_s`.
    pub fn estimates(&self, from_s: f64, to_s: f64) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|&&(t, _)| (from_s * 1e6..to_s * 1e6).contains(&(t as f64)))
            .map(|&(_, e)| e as f64)
            .collect()
    }
}
