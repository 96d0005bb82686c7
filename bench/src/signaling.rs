//! The signaling scenario: N XMPP-over-WebSocket sessions in MUC rooms of K,
//! each sending presence updates that the server broadcasts to its room, the
//! way Jitsi clients update their presence (mute state, stats id, nick).
//!
//! The figure of merit is presence stanzas delivered per second per server
//! core: a broadcast server's work is dominated by fan-out. Memory per session
//! is read when every session has joined and the server is idle.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};

use crate::procfs;
use crate::stats::Latencies;
use crate::xmpp::{self, Ws};

/// What to run; each field is also a command-line flag of `oxbridge bench signaling`.
#[derive(clap::Args, Clone, Debug)]
pub struct SignalingArgs {
    /// The server's XMPP-over-WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/xmpp-websocket")]
    pub url: String,
    /// XMPP domain of the server.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// MUC service [default: conference.<domain>].
    #[arg(long)]
    pub muc: Option<String>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Occupants per room.
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    /// Presence updates per second from each session.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Rooms filling at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// PID of the server when it runs on this machine (CPU and memory from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Name of the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What a run measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignalingReport {
    pub label: String,
    pub sessions: usize,
    pub room_size: usize,
    pub rate_per_session: f64,
    pub duration_secs: f64,
    pub join_p50_ms: Option<f64>,
    pub join_p99_ms: Option<f64>,
    pub presences_sent_per_sec: f64,
    pub presences_delivered_per_sec: f64,
    /// Delivered over expected: a room reflects each presence to all its
    /// occupants, the sender included (XEP-0045 §7.7).
    pub delivery_ratio: f64,
    pub broadcast_p50_ms: Option<f64>,
    pub broadcast_p99_ms: Option<f64>,
    pub server_cores_used: Option<f64>,
    pub delivered_per_server_core_sec: Option<f64>,
    pub server_rss_idle_before_mb: Option<f64>,
    pub server_rss_per_session_kb: Option<f64>,
    pub generator_cores_used: f64,
}

struct Shared {
    measuring: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
    origin: Instant,
}

/// Runs the scenario and prints a live progress line and the report.
pub async fn run(args: SignalingArgs) -> anyhow::Result<SignalingReport> {
    if args.room_size < 2 || args.sessions < args.room_size {
        bail!("need room_size >= 2 and sessions >= room_size");
    }
    let muc = args
        .muc
        .clone()
        .unwrap_or_else(|| format!("conference.{}", args.domain));
    let server = |what: &str| -> anyhow::Result<Option<procfs::Sample>> {
        args.server_pid
            .map(procfs::sample)
            .transpose()
            .with_context(|| format!("reading /proc of the server ({what})"))
    };
    let idle_before = server("idle")?;
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        origin: Instant::now(),
    });
    let (go_tx, go) = watch::channel(Phase::Joining);
    let rooms = args.sessions / args.room_size;
    let run_id = format!(
        "{:x}",
        shared.origin.elapsed().as_nanos() ^ std::process::id() as u128
    );
    eprintln!(
        "joining {} sessions into {rooms} rooms of {} at {} ...",
        rooms * args.room_size,
        args.room_size,
        args.url
    );
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut fills = Vec::new();
    for r in 0..rooms {
        let (args, muc, shared, go, gate) = (
            args.clone(),
            muc.clone(),
            shared.clone(),
            go.clone(),
            gate.clone(),
        );
        let room = format!("bench-{run_id}-{r}@{muc}");
        fills.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            fill_room(r, &args, &room, shared, go).await
        }));
    }
    let mut joins = Latencies::default();
    let mut participants = Vec::new();
    for f in fills {
        let (lat, tasks) = f.await.context("room task")??;
        joins.merge(lat);
        participants.extend(tasks);
    }
    let joined = participants.len();
    eprintln!("{joined} sessions joined; settling");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_full = server("all joined")?;

    let _ = go_tx.send(Phase::Load);
    tokio::time::sleep(Duration::from_secs(2)).await; // let every sender reach its pace
    let me_start = procfs::sample(std::process::id())?;
    let srv_start = server("load start")?;
    let (sent0, delivered0) = (
        shared.sent.load(Ordering::Relaxed),
        shared.delivered.load(Ordering::Relaxed),
    );
    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut last = (started, delivered0);
    while started.elapsed() < Duration::from_secs(args.duration) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let d = shared.delivered.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (d - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        let cpu = match (srv_start, server("progress")?) {
            (Some(a), Some(b)) => format!(", server {:.2} cores", procfs::cores_used(&a, &b)),
            _ => String::new(),
        };
        eprint!(
            "\r[{:>3}s] {:>9.0} presences delivered/s{cpu}   ",
            started.elapsed().as_secs(),
            rate
        );
        last = (now, d);
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let wall = started.elapsed().as_secs_f64();
    let srv_end = server("load end")?;
    let me_end = procfs::sample(std::process::id())?;
    let sent = shared.sent.load(Ordering::Relaxed) - sent0;
    let delivered = shared.delivered.load(Ordering::Relaxed) - delivered0;
    eprintln!();
    let _ = go_tx.send(Phase::Leave);

    let mut broadcast = Latencies::default();
    for p in participants {
        if let Ok(l) = p.await {
            broadcast.merge(l);
        }
    }
    let cores = match (srv_start, srv_end) {
        (Some(a), Some(b)) => Some(procfs::cores_used(&a, &b)),
        _ => None,
    };
    let delivered_per_sec = delivered as f64 / wall;
    let report = SignalingReport {
        label: args.label.clone(),
        sessions: joined,
        room_size: args.room_size,
        rate_per_session: args.rate,
        duration_secs: wall,
        join_p50_ms: joins.percentile_ms(50.0),
        join_p99_ms: joins.percentile_ms(99.0),
        presences_sent_per_sec: sent as f64 / wall,
        presences_delivered_per_sec: delivered_per_sec,
        delivery_ratio: if sent == 0 {
            0.0
        } else {
            delivered as f64 / (sent as f64 * args.room_size as f64)
        },
        broadcast_p50_ms: broadcast.percentile_ms(50.0),
        broadcast_p99_ms: broadcast.percentile_ms(99.0),
        server_cores_used: cores,
        delivered_per_server_core_sec: cores.filter(|c| *c > 0.0).map(|c| delivered_per_sec / c),
        server_rss_idle_before_mb: idle_before.map(|s| s.rss_bytes as f64 / 1048576.0),
        server_rss_per_session_kb: match (idle_before, idle_full) {
            (Some(a), Some(b)) if joined > 0 => {
                Some((b.rss_bytes as f64 - a.rss_bytes as f64) / joined as f64 / 1024.0)
            }
            _ => None,
        },
        generator_cores_used: procfs::cores_used(&me_start, &me_end),
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Joining,
    Load,
    Leave,
}

type Participant = tokio::task::JoinHandle<Latencies>;

/// Logs in and joins the room's occupants one after another (the first
/// creates the room), then hands each to its own task.
async fn fill_room(
    seq: usize,
    args: &SignalingArgs,
    room: &str,
    shared: Arc<Shared>,
    go: watch::Receiver<Phase>,
) -> anyhow::Result<(Latencies, Vec<Participant>)> {
    let mut joins = Latencies::default();
    let mut tasks = Vec::new();
    for i in 0..args.room_size {
        let t0 = Instant::now();
        let mut s = xmpp::login_anonymous(&args.url, &args.domain, None).await?;
        let nick = format!("p{i}");
        join(&mut s.ws, room, &nick)
            .await
            .with_context(|| format!("{} joining {room}", s.jid))?;
        joins.push(t0.elapsed().as_micros() as u64);
        let occupant = format!("{room}/{nick}");
        tasks.push(tokio::spawn(participate(
            seq * args.room_size + i,
            s.ws,
            occupant,
            args.rate,
            shared.clone(),
            go.clone(),
        )));
    }
    Ok((joins, tasks))
}

/// Joins a MUC room; a newly created (locked) room is made instant.
async fn join(ws: &mut Ws, room: &str, nick: &str) -> anyhow::Result<()> {
    let occupant = format!("{room}/{nick}");
    xmpp::send(ws, &presence(&occupant, "0", true)).await?;
    loop {
        let p = xmpp::until(ws, "<presence", "own room presence").await?;
        if xmpp::attr(&p, "type") == Some("error") {
            bail!("join refused: {p}");
        }
        let from_me = xmpp::attr(&p, "from") == Some(occupant.as_str());
        if from_me && has_status(&p, "110") {
            if has_status(&p, "201") {
                let cfg = format!(
                    "<iq xmlns='jabber:client' type='set' id='instant' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
                );
                xmpp::send(ws, &cfg).await?;
                let r = xmpp::until(ws, "<iq", "room configuration result").await?;
                if xmpp::attr(&r, "type") != Some("result") {
                    bail!("instant room refused: {r}");
                }
            }
            return Ok(());
        }
    }
}

fn has_status(presence: &str, code: &str) -> bool {
    presence.contains(&format!("code='{code}'")) || presence.contains(&format!("code=\"{code}\""))
}

/// A Jitsi-like presence; `stamp` (microseconds since the run began) lets
/// receivers measure broadcast latency.
fn presence(occupant: &str, stamp: &str, join: bool) -> String {
    let muc = if join {
        "<x xmlns='http://jabber.org/protocol/muc'/>"
    } else {
        ""
    };
    format!(
        "<presence xmlns='jabber:client' to='{occupant}'>{muc}<status>{stamp}</status><stats-id>Bench-42</stats-id>\
<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='cvjWXufsg4xT62Ec2mlATkFZ9lk='/>\
<jitsi_participant_region>local</jitsi_participant_region><nick xmlns='http://jabber.org/protocol/nick'>Bench participant</nick>\
<audiomuted>false</audiomuted><videomuted>true</videomuted></presence>"
    )
}

/// One joined session: sends presence at `rate` while the load phase lasts and
/// counts the room's presences it receives.
async fn participate(
    seq: usize,
    ws: Ws,
    occupant: String,
    rate: f64,
    shared: Arc<Shared>,
    mut go: watch::Receiver<Phase>,
) -> Latencies {
    let (mut sink, mut stream) = ws.split();
    let mut latencies = Latencies::default();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    // Spread senders over the period so the load is smooth.
    let phase = period.mul_f64((seq as u64 * 7919 % 1000) as f64 / 1000.0);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let phase_now = *go.borrow();
        tokio::select! {
            frame = stream.next() => {
                let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = frame else { break };
                if !t.starts_with("<presence") || !shared.measuring.load(Ordering::Relaxed) {
                    continue;
                }
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(stamp) = xmpp::text_of(&t, "status").and_then(|s| s.parse::<u64>().ok()) {
                    let now = shared.origin.elapsed().as_micros() as u64;
                    latencies.push(now.saturating_sub(stamp));
                }
            }
            _ = tick.tick(), if phase_now == Phase::Load => {
                let stamp = shared.origin.elapsed().as_micros().to_string();
                let msg = tokio_tungstenite::tungstenite::Message::text(presence(&occupant, &stamp, false));
                if futures_util::SinkExt::send(&mut sink, msg).await.is_err() {
                    break;
                }
                if shared.measuring.load(Ordering::Relaxed) {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            changed = go.changed() => {
                if changed.is_err() || *go.borrow() == Phase::Leave {
                    break;
                }
            }
        }
    }
    let close = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
    let _ = futures_util::SinkExt::send(
        &mut sink,
        tokio_tungstenite::tungstenite::Message::text(close),
    )
    .await;
    latencies
}

impl SignalingReport {
    /// A two-column table; several reports print side by side.
    pub fn table(reports: &[SignalingReport]) -> String {
        let fmt = |v: Option<f64>, prec: usize| match v {
            Some(v) => format!("{v:.prec$}"),
            None => "-".into(),
        };
        type Cell<'a> = Box<dyn Fn(&SignalingReport) -> String + 'a>;
        let rows: Vec<(&str, Cell)> = vec![
            ("sessions joined", Box::new(|r| r.sessions.to_string())),
            ("room size", Box::new(|r| r.room_size.to_string())),
            (
                "join p50 / p99 ms",
                Box::new(move |r| format!("{} / {}", fmt(r.join_p50_ms, 1), fmt(r.join_p99_ms, 1))),
            ),
            (
                "presences sent/s",
                Box::new(|r| format!("{:.0}", r.presences_sent_per_sec)),
            ),
            (
                "presences delivered/s",
                Box::new(|r| format!("{:.0}", r.presences_delivered_per_sec)),
            ),
            (
                "delivery ratio",
                Box::new(|r| format!("{:.3}", r.delivery_ratio)),
            ),
            (
                "broadcast p50 / p99 ms",
                Box::new(move |r| {
                    format!(
                        "{} / {}",
                        fmt(r.broadcast_p50_ms, 1),
                        fmt(r.broadcast_p99_ms, 1)
                    )
                }),
            ),
            (
                "server cores used",
                Box::new(move |r| fmt(r.server_cores_used, 2)),
            ),
            (
                "delivered/s per server core",
                Box::new(move |r| fmt(r.delivered_per_server_core_sec, 0)),
            ),
            (
                "server RSS idle, MB",
                Box::new(move |r| fmt(r.server_rss_idle_before_mb, 1)),
            ),
            (
                "server RSS per session, KB",
                Box::new(move |r| fmt(r.server_rss_per_session_kb, 1)),
            ),
            (
                "generator cores used",
                Box::new(|r| format!("{:.2}", r.generator_cores_used)),
            ),
        ];
        let mut out = format!("{:<30}", "");
        for r in reports {
            out.push_str(&format!("{:>20}", r.label));
        }
        out.push('\n');
        for (name, cell) in rows {
            out.push_str(&format!("{name:<30}"));
            for r in reports {
                out.push_str(&format!("{:>20}", cell(r)));
            }
            out.push('\n');
        }
        out
    }
}
