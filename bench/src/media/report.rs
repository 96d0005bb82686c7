//! What a media run measured, as JSON and as a table like `bench signaling`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MediaReport {
    pub label: String,
    pub rooms: usize,
    pub participants_per_room: usize,
    pub senders_per_room: usize,
    pub duration_secs: f64,
    pub participants: usize,
    /// Participants that reached the stage they were expected to (media flowing).
    pub running: usize,
    pub failed: usize,
    /// Failed participants by the stage they were in.
    pub failed_by_stage: BTreeMap<String, usize>,
    /// A few failure messages, for a first look.
    pub first_errors: Vec<String>,
    pub bridge_channels_open: usize,
    pub join_p50_ms: Option<f64>,
    pub join_p95_ms: Option<f64>,
    pub join_p99_ms: Option<f64>,
    pub first_media_p50_ms: Option<f64>,
    pub first_media_p95_ms: Option<f64>,
    pub first_media_p99_ms: Option<f64>,
    /// RTP the participants received (in) and sent (out), all of them together.
    pub packets_in_per_sec: f64,
    pub mbit_in_per_sec: f64,
    pub packets_out_per_sec: f64,
    pub mbit_out_per_sec: f64,
    /// Sequence gaps at the receivers over the whole call, after recovery.
    pub packets_lost: u64,
    pub loss_ratio: f64,
    /// Of `packets_lost`, video packets (recoverable by NACK and RTX).
    #[serde(default)]
    pub packets_lost_video: u64,
    /// RTP packets the participants dropped on purpose (`--loss`), both ways.
    #[serde(default)]
    pub packets_dropped: u64,
    pub nacks_received: u64,
    pub plis_received: u64,
    pub one_way_p50_ms: Option<f64>,
    pub one_way_p99_ms: Option<f64>,
    /// The bridge's own measure of the latency it adds (receive to send), over
    /// the window, where it publishes one ([`super::bridge_latency`]).
    #[serde(default)]
    pub bridge_added_mean_ms: Option<f64>,
    #[serde(default)]
    pub bridge_added_p99_ms: Option<f64>,
    pub server_cores_used: Option<f64>,
    pub server_rss_mb: Option<f64>,
    /// What each participant added to the server's resident memory (its
    /// session, room membership and bridge endpoint together).
    #[serde(default)]
    pub server_rss_per_participant_kb: Option<f64>,
    /// Packets the server received plus sent, per second per busy core.
    pub server_packets_per_core_sec: Option<f64>,
    pub generator_cores_used: f64,
    /// How often each participant task woke, per second (batching at work).
    pub wakes_per_participant_sec: f64,
    /// Simulated participants per busy core of this process.
    pub participants_per_generator_core: Option<f64>,
    /// One point a second, joining and measuring.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
}

/// The run's state over one second, for the chart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Since the first participant started.
    pub t_secs: f64,
    pub running: u64,
    pub packets_in_per_sec: f64,
    pub packets_out_per_sec: f64,
    pub one_way_mean_ms: Option<f64>,
    pub one_way_max_ms: Option<f64>,
    pub server_cores: Option<f64>,
}

impl MediaReport {
    /// A table; several reports print side by side.
    pub fn table(reports: &[MediaReport]) -> String {
        let f = |v: Option<f64>, prec: usize| match v {
            Some(v) => format!("{v:.prec$}"),
            None => "-".into(),
        };
        let trio = move |a, b, c| format!("{} / {} / {}", f(a, 0), f(b, 0), f(c, 0));
        let pair = move |a, b| format!("{} / {}", f(a, 2), f(b, 2));
        type Cell<'a> = Box<dyn Fn(&MediaReport) -> String + 'a>;
        let rows: Vec<(&str, Cell)> = vec![
            (
                "rooms x participants (senders)",
                Box::new(|r| {
                    format!(
                        "{} x {} ({})",
                        r.rooms, r.participants_per_room, r.senders_per_room
                    )
                }),
            ),
            (
                "running / failed",
                Box::new(|r| format!("{} / {}", r.running, r.failed)),
            ),
            (
                "join p50/p95/p99 ms",
                Box::new(move |r| trio(r.join_p50_ms, r.join_p95_ms, r.join_p99_ms)),
            ),
            (
                "first media p50/p95/p99 ms",
                Box::new(move |r| {
                    trio(
                        r.first_media_p50_ms,
                        r.first_media_p95_ms,
                        r.first_media_p99_ms,
                    )
                }),
            ),
            (
                "participants' packets/s in / out",
                Box::new(|r| format!("{:.0} / {:.0}", r.packets_in_per_sec, r.packets_out_per_sec)),
            ),
            (
                "participants' Mbit/s in / out",
                Box::new(|r| format!("{:.1} / {:.1}", r.mbit_in_per_sec, r.mbit_out_per_sec)),
            ),
            (
                "lost (ratio), of it video",
                Box::new(|r| {
                    format!(
                        "{} ({:.4}), {}",
                        r.packets_lost, r.loss_ratio, r.packets_lost_video
                    )
                }),
            ),
            (
                "dropped by --loss",
                Box::new(|r| r.packets_dropped.to_string()),
            ),
            (
                "NACKs / PLIs received",
                Box::new(|r| format!("{} / {}", r.nacks_received, r.plis_received)),
            ),
            (
                "one-way p50 / p99 ms",
                Box::new(move |r| pair(r.one_way_p50_ms, r.one_way_p99_ms)),
            ),
            (
                "bridge added mean / p99 ms",
                Box::new(move |r| pair(r.bridge_added_mean_ms, r.bridge_added_p99_ms)),
            ),
            (
                "server cores used",
                Box::new(move |r| f(r.server_cores_used, 2)),
            ),
            ("server RSS MB", Box::new(move |r| f(r.server_rss_mb, 1))),
            (
                "server RSS per participant KB",
                Box::new(move |r| f(r.server_rss_per_participant_kb, 0)),
            ),
            (
                "server packets/s per core",
                Box::new(move |r| f(r.server_packets_per_core_sec, 0)),
            ),
            (
                "generator cores used",
                Box::new(|r| format!("{:.2}", r.generator_cores_used)),
            ),
            (
                "wakes/s per participant",
                Box::new(|r| format!("{:.0}", r.wakes_per_participant_sec)),
            ),
            (
                "bridge channels open",
                Box::new(|r| format!("{} / {}", r.bridge_channels_open, r.participants)),
            ),
            (
                "participants per gen. core",
                Box::new(move |r| f(r.participants_per_generator_core, 0)),
            ),
        ];
        let mut out = format!("{:<32}", "");
        for r in reports {
            out.push_str(&format!("{:>26}", r.label));
        }
        out.push('\n');
        for (name, cell) in rows {
            out.push_str(&format!("{name:<32}"));
            for r in reports {
                out.push_str(&format!("{:>26}", cell(r)));
            }
            out.push('\n');
        }
        for r in reports {
            for (stage, n) in &r.failed_by_stage {
                out.push_str(&format!("{}: {n} failed at {stage}\n", r.label));
            }
            for e in &r.first_errors {
                out.push_str(&format!("{}: {e}\n", r.label));
            }
        }
        out
    }
}
