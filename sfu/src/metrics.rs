//! The bridge's Prometheus metrics, read from the workers when scraped.
//!
//! ```no_run
//! # let bridge = std::sync::Arc::new(sfu::bridge::Bridge::start(Default::default()).unwrap());
//! let registry = prometheus::Registry::new();
//! registry.register(Box::new(sfu::metrics::BridgeCollector::new(bridge))).unwrap();
//! ```

use std::sync::Arc;
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Histogram, Metric, MetricFamily, MetricType};
use prometheus::{CounterVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::bridge::Bridge;
use crate::latency::LatencyHistogram;

const LATENCY_NAME: &str = "oxbridge_sfu_forwarding_latency_seconds";
const LATENCY_HELP: &str = "Time from a datagram's receive to the end of the sends it caused";
/// Bucket bounds of the forwarding latency histogram, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 1.0,
];

/// Asks the bridge for its counters on every scrape.
pub struct BridgeCollector {
    bridge: Arc<Bridge>,
    datagrams: IntCounterVec,
    bytes: IntCounterVec,
    dropped: IntCounterVec,
    forwarded: IntCounter,
    nacks: IntCounter,
    retransmissions: IntCounter,
    lost: IntCounter,
    keyframe_requests: IntCounter,
    ice_failures: IntCounter,
    dtls_failures: IntCounter,
    conferences: IntGauge,
    endpoints: IntGauge,
    sending: IntGaugeVec,
    inactive_conferences: IntGauge,
    worker_endpoints: IntGaugeVec,
    worker_busy: CounterVec,
    draining: IntGauge,
    latency: Desc,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("oxbridge_sfu_{name}"), help)
}

impl BridgeCollector {
    pub fn new(bridge: Arc<Bridge>) -> BridgeCollector {
        let counter = |n: &str, h: &str| IntCounter::with_opts(opts(n, h)).expect("valid metric");
        let gauge = |n: &str, h: &str| IntGauge::with_opts(opts(n, h)).expect("valid metric");
        let dir = |n: &str, h: &str| {
            IntCounterVec::new(opts(n, h), &["direction"]).expect("valid metric")
        };
        BridgeCollector {
            bridge,
            datagrams: dir("datagrams_total", "UDP datagrams on the media port"),
            bytes: dir("bytes_total", "UDP payload bytes on the media port"),
            dropped: IntCounterVec::new(
                opts("datagrams_dropped_total", "Datagrams dropped, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
            forwarded: counter(
                "packets_forwarded_total",
                "RTP packets forwarded to receivers",
            ),
            nacks: counter("nacks_received_total", "NACKs receivers sent"),
            retransmissions: counter(
                "retransmissions_total",
                "Packets sent again in answer to NACKs",
            ),
            lost: counter(
                "packets_lost_reported_total",
                "Packets receivers reported lost",
            ),
            keyframe_requests: counter("keyframe_requests_total", "PLIs sent to senders"),
            ice_failures: counter("ice_failures_total", "Endpoints whose ICE failed"),
            dtls_failures: counter(
                "endpoints_dtls_failed_total",
                "Endpoints whose DTLS certificate was not the signalled one",
            ),
            conferences: gauge("conferences", "Conferences now"),
            endpoints: gauge("endpoints", "Endpoints now"),
            sending: IntGaugeVec::new(
                opts(
                    "endpoints_sending",
                    "Endpoints whose media of a kind arrived in the last two seconds",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            inactive_conferences: gauge(
                "inactive_conferences",
                "Conferences in which nobody sends audio or video",
            ),
            worker_endpoints: IntGaugeVec::new(
                opts("worker_endpoints", "Endpoints on each media worker"),
                &["worker"],
            )
            .expect("valid metric"),
            worker_busy: CounterVec::new(
                opts(
                    "worker_busy_seconds_total",
                    "Time each media worker spent awake (its rate is the worker's load)",
                ),
                &["worker"],
            )
            .expect("valid metric"),
            draining: gauge("draining", "1 while the bridge takes no new conferences"),
            latency: Desc::new(
                LATENCY_NAME.into(),
                LATENCY_HELP.into(),
                Vec::new(),
                Default::default(),
            )
            .expect("valid metric"),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 17] {
        [
            &self.datagrams,
            &self.bytes,
            &self.dropped,
            &self.forwarded,
            &self.nacks,
            &self.retransmissions,
            &self.lost,
            &self.keyframe_requests,
            &self.ice_failures,
            &self.dtls_failures,
            &self.conferences,
            &self.endpoints,
            &self.sending,
            &self.inactive_conferences,
            &self.worker_endpoints,
            &self.worker_busy,
            &self.draining,
        ]
    }
}

fn set(c: &IntCounter, v: u64) {
    c.reset();
    c.inc_by(v);
}

impl Collector for BridgeCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.collectors()
            .into_iter()
            .flat_map(|c| c.desc())
            .chain([&self.latency])
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(stats) = self.bridge.stats() else {
            return Vec::new();
        };
        let t = &stats.totals;
        set(&self.datagrams.with_label_values(&["in"]), t.datagrams_in);
        set(&self.datagrams.with_label_values(&["out"]), t.datagrams_out);
        set(&self.bytes.with_label_values(&["in"]), t.bytes_in);
        set(&self.bytes.with_label_values(&["out"]), t.bytes_out);
        set(
            &self.dropped.with_label_values(&["unroutable"]),
            t.unroutable,
        );
        set(&self.dropped.with_label_values(&["rejected"]), t.rejected);
        set(
            &self.dropped.with_label_values(&["no_consent"]),
            t.dropped_no_consent,
        );
        set(
            &self.dropped.with_label_values(&["overload"]),
            stats.overload_drops,
        );
        set(&self.forwarded, t.packets_forwarded);
        set(&self.nacks, t.nacks_received);
        set(&self.retransmissions, t.retransmissions);
        set(&self.lost, t.packets_lost_reported);
        set(&self.keyframe_requests, t.keyframe_requests);
        set(&self.ice_failures, t.ice_failures);
        set(&self.dtls_failures, t.dtls_failures);
        self.conferences.set(t.conferences as i64);
        self.endpoints.set(t.endpoints as i64);
        self.sending
            .with_label_values(&["audio"])
            .set(t.endpoints_sending_audio as i64);
        self.sending
            .with_label_values(&["video"])
            .set(t.endpoints_sending_video as i64);
        self.inactive_conferences.set(t.inactive_conferences as i64);
        for (i, n) in stats.worker_endpoints.iter().enumerate() {
            self.worker_endpoints
                .with_label_values(&[&i.to_string()])
                .set(*n as i64);
        }
        for (i, busy) in stats.worker_busy.iter().enumerate() {
            let c = self.worker_busy.with_label_values(&[&i.to_string()]);
            c.reset();
            c.inc_by(busy.as_secs_f64());
        }
        self.draining.set(i64::from(self.bridge.is_draining()));
        self.collectors()
            .into_iter()
            .flat_map(|c| c.collect())
            .chain([latency_family(&stats.latency)])
            .collect()
    }
}

/// The workers' latency counts as a Prometheus histogram, so a dashboard can
/// take quantiles over any window (`histogram_quantile` of a `rate`).
fn latency_family(h: &LatencyHistogram) -> MetricFamily {
    let mut histogram = Histogram::default();
    histogram.set_sample_count(h.count());
    histogram.set_sample_sum(h.sum().as_secs_f64());
    histogram.set_bucket(
        LATENCY_BOUNDS
            .iter()
            .map(|&le| {
                let mut b = Bucket::default();
                b.set_upper_bound(le);
                b.set_cumulative_count(h.count_within(Duration::from_secs_f64(le)));
                b
            })
            .collect(),
    );
    let mut metric = Metric::default();
    metric.set_histogram(histogram);
    let mut family = MetricFamily::default();
    family.set_name(LATENCY_NAME.into());
    family.set_help(LATENCY_HELP.into());
    family.set_field_type(MetricType::HISTOGRAM);
    family.set_metric(vec![metric]);
    family
}
