//! The command line of `oxbridge bench media` and its presets.

use std::path::PathBuf;
use std::time::Duration;

/// What to run; each field is also a flag of `oxbridge bench media`.
#[derive(clap::Args, Clone, Debug)]
pub struct MediaArgs {
    /// The deployment's base URL (XMPP WebSocket at /xmpp-websocket, BOSH at
    /// /http-bind), or the XMPP WebSocket or BOSH URL itself.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How participants reach XMPP, as Jitsi clients can.
    #[arg(long, value_enum, default_value = "websocket")]
    pub transport: Transport,
    /// Accept any TLS certificate (a test deployment's self-signed one).
    #[arg(long)]
    pub insecure: bool,
    /// XMPP domain of the deployment.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// MUC service [default: conference.<domain>].
    #[arg(long)]
    pub muc: Option<String>,
    /// Focus component [default: focus.<domain>].
    #[arg(long)]
    pub focus: Option<String>,
    /// A ready-made scenario; explicit flags override its numbers.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Rooms (conferences).
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Participants per room.
    #[arg(long)]
    pub participants: Option<usize>,
    /// Participants per room sending audio and simulcast video [default: all].
    #[arg(long)]
    pub senders: Option<usize>,
    /// Measured time once everyone is in, e.g. 20s, 500ms, 1m.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Participants started per second.
    #[arg(long, default_value_t = 20.0)]
    pub join_rate: f64,
    /// Longest wait for any one stage (connect, conference request, MUC join,
    /// session-initiate, ICE, DTLS, first media).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stage_timeout: Duration,
    /// Percent of RTP packets each participant drops, sending and receiving
    /// (simulated network loss; NACK and RTX recover video, audio stays lost).
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Video height receivers ask the bridge for (ReceiverVideoConstraints).
    #[arg(long, default_value_t = 360)]
    pub max_height: u32,
    /// PID of the server when it runs on this machine (CPU and memory from
    /// /proc) [default: whoever listens on the URL's port, when local].
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Name of the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also draw rates and latency over time as an SVG chart in this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// XMPP over WebSocket (RFC 7395), the web app's default.
    Websocket,
    /// XMPP over BOSH (XEP-0206), the older clients' way.
    Bosh,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Many 1:1 calls (10 rooms unless --rooms).
    OneToOne,
    /// One 20-person room with 10 cameras.
    #[value(name = "meeting-20")]
    Meeting20,
    /// One sender to many viewers (30 unless --participants).
    Presenter,
}

/// Rooms, participants per room and senders per room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub rooms: usize,
    pub participants: usize,
    pub senders: usize,
}

impl MediaArgs {
    pub fn shape(&self) -> Shape {
        let base = match self.preset {
            Some(Preset::OneToOne) => Shape {
                rooms: 10,
                participants: 2,
                senders: 2,
            },
            Some(Preset::Meeting20) => Shape {
                rooms: 1,
                participants: 20,
                senders: 10,
            },
            Some(Preset::Presenter) => Shape {
                rooms: 1,
                participants: 30,
                senders: 1,
            },
            None => Shape {
                rooms: 2,
                participants: 2,
                senders: usize::MAX,
            },
        };
        let participants = self.participants.unwrap_or(base.participants);
        Shape {
            rooms: self.rooms.unwrap_or(base.rooms),
            participants,
            senders: self.senders.unwrap_or(base.senders).min(participants),
        }
    }

    /// The XMPP WebSocket or BOSH URL, by [`MediaArgs::transport`].
    pub fn xmpp_url(&self) -> String {
        let url = self.url.trim_end_matches('/');
        let secure = url.starts_with("https://") || url.starts_with("wss://");
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (scheme, path) = match (self.transport, secure) {
            (Transport::Websocket, false) => ("ws", "xmpp-websocket"),
            (Transport::Websocket, true) => ("wss", "xmpp-websocket"),
            (Transport::Bosh, false) => ("http", "http-bind"),
            (Transport::Bosh, true) => ("https", "http-bind"),
        };
        if rest.contains('/') {
            format!("{scheme}://{rest}")
        } else {
            format!("{scheme}://{rest}/{path}")
        }
    }
}

/// `20s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s} (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MediaArgs,
    }

    #[test]
    fn presets_and_flags_combine() {
        let cli = Cli::parse_from(["x", "--preset", "one-to-one", "--rooms", "40"]);
        let s = cli.args.shape();
        assert_eq!((s.rooms, s.participants, s.senders), (40, 2, 2));
        let cli = Cli::parse_from(["x", "--preset", "meeting-20", "--duration", "500ms"]);
        assert_eq!(cli.args.shape().senders, 10);
        assert_eq!(cli.args.duration, Duration::from_millis(500));
        assert_eq!(cli.args.xmpp_url(), "ws://127.0.0.1:8080/xmpp-websocket");
        let cli = Cli::parse_from(["x", "--participants", "3", "--url", "https://m.example/"]);
        assert_eq!(cli.args.shape().senders, 3);
        assert_eq!(cli.args.xmpp_url(), "wss://m.example/xmpp-websocket");
        let cli = Cli::parse_from(["x", "--transport", "bosh", "--url", "http://m.example:5280"]);
        assert_eq!(cli.args.xmpp_url(), "http://m.example:5280/http-bind");
    }
}
