//! The scenario: participants started at the join rate, room by room, a
//! measured window once everyone is in (or the join window is over), a
//! live line once a second, then everyone leaves and the figures are summed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;
use tokio_rustls::rustls::ClientConfig;

use super::args::MediaArgs;
use super::args::Transport;
use super::bridge_latency;
use super::participant::{self, Outcome, Spec};
use super::report::MediaReport;
use super::report::TimelinePoint;
use crate::procfs;
use crate::stats::Latencies;

/// What every participant needs to know.
pub struct Plan {
    /// The XMPP WebSocket or BOSH URL.
    pub xmpp_url: String,
    pub transport: Transport,
    pub domain: String,
    pub focus: String,
    pub stage_timeout: Duration,
    pub max_height: u32,
    /// Percent of RTP packets dropped each way (`--loss`).
    pub loss: f64,
    /// For `wss://` and `https://`.
    pub tls: Arc<ClientConfig>,
}

/// Totals shared by the participants, added to in batches.
pub struct Live {
    pub joined: AtomicU64,
    pub running: AtomicU64,
    pub failed: AtomicU64,
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Times a participant task woke (timers, datagrams, stanzas).
    pub wakes: AtomicU64,
    /// One-way latency of every stamped packet received: sum, count, and the
    /// worst since the progress line last read it.
    pub latency_sum_us: AtomicU64,
    pub latency_count: AtomicU64,
    pub latency_max_us: AtomicU64,
    /// Latency samples are taken while this is set.
    pub measuring: AtomicBool,
    pub stop: watch::Receiver<bool>,
}

/// Runs the scenario and returns the report.
pub async fn run(args: MediaArgs) -> anyhow::Result<MediaReport> {
    Ok(run_detailed(args).await?.0)
}

/// Runs the scenario; also returns what each participant saw.
pub async fn run_detailed(args: MediaArgs) -> anyhow::Result<(MediaReport, Vec<Outcome>)> {
    let shape = args.shape();
    anyhow::ensure!(
        shape.rooms >= 1 && shape.participants >= 2,
        "need at least one room of two"
    );
    let muc = args
        .muc
        .clone()
        .unwrap_or(format!("conference.{}", args.domain));
    let plan = Arc::new(Plan {
        xmpp_url: args.xmpp_url(),
        transport: args.transport,
        loss: args.loss,
        tls: crate::tls::client_config(args.insecure)?,
        domain: args.domain.clone(),
        focus: args
            .focus
            .clone()
            .unwrap_or(format!("focus.{}", args.domain)),
        stage_timeout: args.stage_timeout,
        max_height: args.max_height,
    });
    let server_pid = args.server_pid.or_else(|| local_server(&plan.xmpp_url));
    let server = |what: &str| -> anyhow::Result<Option<procfs::Sample>> {
        server_pid
            .map(procfs::sample)
            .transpose()
            .with_context(|| format!("reading /proc of the server ({what})"))
    };
    let (stop_tx, stop) = watch::channel(false);
    let live = Arc::new(Live {
        joined: AtomicU64::new(0),
        running: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        packets_in: AtomicU64::new(0),
        bytes_in: AtomicU64::new(0),
        packets_out: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        wakes: AtomicU64::new(0),
        latency_sum_us: AtomicU64::new(0),
        latency_count: AtomicU64::new(0),
        latency_max_us: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        stop,
    });
    let total = shape.rooms * shape.participants;
    let run_id = format!(
        "{:08x}",
        std::process::id() ^ (Instant::now().elapsed().subsec_nanos() << 8)
    );
    eprintln!(
        "media: {} rooms x {} participants ({} sending) at {}{}",
        shape.rooms,
        shape.participants,
        shape.senders,
        plan.xmpp_url,
        server_pid
            .map(|p| format!(", server pid {p}"))
            .unwrap_or_default()
    );
    // The server's memory before anyone joins: what the participants add is
    // the difference.
    let srv_idle = server("before joining")?;
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / args.join_rate.max(0.01));
    let spawner = {
        let (plan, live) = (plan.clone(), live.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(total);
            for i in 0..total {
                tokio::time::sleep_until((started + gap * i as u32).into()).await;
                let spec = Spec {
                    index: i,
                    room: format!("bench-{run_id}-{}@{muc}", i / shape.participants),
                    sending: i % shape.participants < shape.senders,
                    expect_media: shape.senders > 1
                        || (shape.senders == 1 && i % shape.participants != 0),
                };
                tasks.push(tokio::spawn(participant::run(
                    plan.clone(),
                    spec,
                    live.clone(),
                )));
            }
            tasks
        })
    };

    // Joining: until everyone runs or failed, or the join window is over.
    let join_window = gap * total as u32 + plan.stage_timeout * 4;
    let mut last = Snapshot::take(&live);
    let mut timeline = Vec::new();
    while started.elapsed() < join_window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        last = progress("joining", &live, last, total, None, &mut timeline, started);
        let settled = live.running.load(Ordering::Relaxed) + live.failed.load(Ordering::Relaxed);
        if settled >= total as u64 {
            break;
        }
    }
    let tasks = spawner.await?;

    // Measuring.
    live.measuring.store(true, Ordering::Relaxed);
    let me_start = procfs::sample(std::process::id())?;
    let srv_start = server("measure start")?;
    let bridge_start = bridge_latency::scrape(&args.url).await;
    let first = Snapshot::take(&live);
    let measure_start = Instant::now();
    let mut last = first;
    while measure_start.elapsed() < args.duration {
        let left = args.duration.saturating_sub(measure_start.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        let srv = match (srv_start, server("progress")?) {
            (Some(a), Some(b)) => Some(procfs::cores_used(&a, &b)),
            _ => None,
        };
        last = progress("measuring", &live, last, total, srv, &mut timeline, started);
    }
    let end = Snapshot::take(&live);
    let wall = measure_start.elapsed().as_secs_f64();
    let srv_end = server("measure end")?;
    let bridge_end = bridge_latency::scrape(&args.url).await;
    let me_end = procfs::sample(std::process::id())?;
    live.measuring.store(false, Ordering::Relaxed);
    eprintln!();
    let _ = stop_tx.send(true);

    let mut outcomes = Vec::with_capacity(total);
    for t in tasks {
        // Leaving takes a moment; a participant that hangs is not waited for.
        match tokio::time::timeout(Duration::from_secs(5), t).await {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => eprintln!("participant task failed: {e}"),
            Err(_) => eprintln!("participant did not leave within 5 s"),
        }
    }
    let d = end.minus(&first);
    let server_cores = match (srv_start, srv_end) {
        (Some(a), Some(b)) => Some(procfs::cores_used(&a, &b)),
        _ => None,
    };
    let generator_cores = procfs::cores_used(&me_start, &me_end);
    let mut report = summarise(
        &args,
        &outcomes,
        &d,
        wall,
        ServerSeen {
            cores: server_cores,
            idle: srv_idle,
            end: srv_end,
            latency: bridge_start.zip(bridge_end).map(|(a, b)| b.since(&a)),
        },
        generator_cores,
    );
    report.timeline = timeline;
    if let Some(path) = &args.chart {
        std::fs::write(path, super::chart::svg(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok((report, outcomes))
}

/// The local process serving a loopback URL, if we can see it.
fn local_server(url: &str) -> Option<u32> {
    let host_port = url.split("://").nth(1)?.split('/').next()?;
    let (host, port) = host_port.rsplit_once(':')?;
    let local = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"].contains(&host);
    local
        .then(|| procfs::listener_pid(port.parse().ok()?))
        .flatten()
}

#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    v: [u64; 7],
}

impl Snapshot {
    fn take(live: &Live) -> Snapshot {
        let v = [
            &live.packets_in,
            &live.bytes_in,
            &live.packets_out,
            &live.bytes_out,
            &live.wakes,
            &live.latency_sum_us,
            &live.latency_count,
        ]
        .map(|c| c.load(Ordering::Relaxed));
        Snapshot {
            at: Instant::now(),
            v,
        }
    }

    fn minus(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            at: self.at,
            v: std::array::from_fn(|i| self.v[i] - earlier.v[i]),
        }
    }
}

fn progress(
    phase: &str,
    live: &Live,
    last: Snapshot,
    total: usize,
    srv: Option<f64>,
    timeline: &mut Vec<TimelinePoint>,
    started: Instant,
) -> Snapshot {
    let now = Snapshot::take(live);
    let secs = now.at.duration_since(last.at).as_secs_f64().max(1e-3);
    let d = now.minus(&last);
    timeline.push(TimelinePoint {
        t_secs: now.at.duration_since(started).as_secs_f64(),
        running: live.running.load(Ordering::Relaxed),
        packets_in_per_sec: d.v[0] as f64 / secs,
        packets_out_per_sec: d.v[2] as f64 / secs,
        one_way_mean_ms: (d.v[6] > 0).then(|| d.v[5] as f64 / d.v[6] as f64 / 1000.0),
        one_way_max_ms: Some(live.latency_max_us.swap(0, Ordering::Relaxed) as f64 / 1000.0)
            .filter(|_| d.v[6] > 0),
        server_cores: srv,
    });
    let srv = srv
        .map(|c| format!(", server {c:.2} cores"))
        .unwrap_or_default();
    eprint!(
        "\r{phase:>9}: joined {}/{total} running {} failed {} | in {:.0} pkt/s {:.1} Mbit/s | out {:.0} pkt/s {:.1} Mbit/s{srv}   ",
        live.joined.load(Ordering::Relaxed),
        live.running.load(Ordering::Relaxed),
        live.failed.load(Ordering::Relaxed),
        d.v[0] as f64 / secs,
        d.v[1] as f64 * 8.0 / secs / 1e6,
        d.v[2] as f64 / secs,
        d.v[3] as f64 * 8.0 / secs / 1e6,
    );
    now
}

/// What the run saw of the server: /proc samples when it is local, its own
/// added-latency histogram over the window when it publishes one.
struct ServerSeen {
    cores: Option<f64>,
    /// Before the first join.
    idle: Option<procfs::Sample>,
    end: Option<procfs::Sample>,
    latency: Option<bridge_latency::Histogram>,
}

fn summarise(
    args: &MediaArgs,
    outcomes: &[Outcome],
    d: &Snapshot,
    wall: f64,
    server: ServerSeen,
    generator_cores: f64,
) -> MediaReport {
    let shape = args.shape();
    let (mut joins, mut firsts, mut one_way) = (
        Latencies::default(),
        Latencies::default(),
        Latencies::default(),
    );
    let mut failed_by_stage = BTreeMap::new();
    let mut first_errors = Vec::new();
    let (mut lost, mut received, mut nacks, mut plis, mut channels) = (0, 0, 0, 0, 0);
    let (mut dropped, mut lost_video) = (0, 0);
    for o in outcomes {
        joins.extend(o.join);
        firsts.extend(o.first_media);
        lost += o.lost;
        received += o.packets_in;
        nacks += o.counters.nacks;
        dropped += o.counters.dropped;
        lost_video += o.lost_video;
        plis += o.counters.plis;
        channels += o.bridge_channel as usize;
        if let Some(e) = &o.error {
            let stage = serde_json::to_value(o.reached).ok();
            let stage = stage.as_ref().and_then(|s| s.as_str()).unwrap_or("?");
            *failed_by_stage.entry(stage.to_owned()).or_default() += 1;
            if first_errors.len() < 5 {
                first_errors.push(format!("participant {} ({stage}): {e}", o.spec.index));
            }
        }
    }
    for o in outcomes {
        one_way.merge_ref(&o.latency);
    }
    let pps_in = d.v[0] as f64 / wall;
    let pps_out = d.v[2] as f64 / wall;
    let failed = failed_by_stage.values().sum();
    MediaReport {
        label: args.label.clone(),
        rooms: shape.rooms,
        participants_per_room: shape.participants,
        senders_per_room: shape.senders,
        duration_secs: wall,
        participants: outcomes.len(),
        running: outcomes
            .iter()
            .filter(|o| o.error.is_none() && o.reached == participant::Stage::Running)
            .count(),
        failed,
        failed_by_stage,
        first_errors,
        bridge_channels_open: channels,
        join_p50_ms: joins.percentile_ms(50.0),
        join_p95_ms: joins.percentile_ms(95.0),
        join_p99_ms: joins.percentile_ms(99.0),
        first_media_p50_ms: firsts.percentile_ms(50.0),
        first_media_p95_ms: firsts.percentile_ms(95.0),
        first_media_p99_ms: firsts.percentile_ms(99.0),
        packets_in_per_sec: pps_in,
        mbit_in_per_sec: d.v[1] as f64 * 8.0 / wall / 1e6,
        packets_out_per_sec: pps_out,
        mbit_out_per_sec: d.v[3] as f64 * 8.0 / wall / 1e6,
        packets_lost: lost,
        loss_ratio: if received + lost == 0 {
            0.0
        } else {
            lost as f64 / (received + lost) as f64
        },
        packets_lost_video: lost_video,
        packets_dropped: dropped,
        nacks_received: nacks,
        plis_received: plis,
        one_way_p50_ms: one_way.percentile_ms(50.0),
        one_way_p99_ms: one_way.percentile_ms(99.0),
        bridge_added_mean_ms: server.latency.as_ref().and_then(|h| h.mean_ms()),
        bridge_added_p99_ms: server.latency.as_ref().and_then(|h| h.quantile_ms(0.99)),
        server_cores_used: server.cores,
        server_rss_mb: server.end.map(|s| s.rss_bytes as f64 / 1048576.0),
        server_rss_per_participant_kb: server
            .idle
            .zip(server.end)
            .filter(|_| !outcomes.is_empty())
            .map(|(a, b)| {
                b.rss_bytes.saturating_sub(a.rss_bytes) as f64 / 1024.0 / outcomes.len() as f64
            }),
        server_packets_per_core_sec: server
            .cores
            .filter(|c| *c > 0.01)
            .map(|c| (pps_in + pps_out) / c),
        generator_cores_used: generator_cores,
        wakes_per_participant_sec: d.v[4] as f64 / wall / outcomes.len().max(1) as f64,
        participants_per_generator_core: (generator_cores > 0.01)
            .then(|| outcomes.len() as f64 / generator_cores),
        timeline: Vec::new(),
    }
}
