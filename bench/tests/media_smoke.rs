//! `bench media` against the real `oxbridge serve` binary on loopback: two
//! rooms of two, both sending, every participant gets the other's audio and
//! video with no loss; and a server that refuses, never invites or whose
//! media port is unreachable is reported at the stage it stopped, no hang.
//!
//! Binary: $OXBRIDGE_BIN or <workspace>/target/debug/oxbridge.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench::media::args::Transport;
use bench::media::participant::{Outcome, Stage};
use bench::media::{MediaArgs, run_detailed};

struct Server {
    child: Child,
    dir: PathBuf,
    http: u16,
    /// HTTPS with a self-signed certificate, generated at start.
    https: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("oxbridge.log")).unwrap_or_default();
            eprintln!("----- oxbridge log -----\n{log}\n----- end of log -----");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /about/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut answer = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut answer).is_ok()
        && answer.split_whitespace().nth(1) == Some("200")
}

/// `oxbridge serve` on free loopback ports; `extra` is appended to its config.
fn start_server(extra: &str) -> Server {
    let bin = std::env::var_os("OXBRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/oxbridge")
        });
    assert!(
        bin.exists(),
        "oxbridge binary not found at {} (set OXBRIDGE_BIN or build it)",
        bin.display()
    );
    let (http, https, xmpp, component) = (free_port(), free_port(), free_port(), free_port());
    // One directory per server: the tests of this file run in parallel.
    let dir = std::env::temp_dir().join(format!(
        "oxbridge-bench-media-{}-{http}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "domain = \"localhost\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\nhttps_listen = \"127.0.0.1:{https}\"\n\n[xmpp]\nlisten = \"127.0.0.1:{xmpp}\"\n\
component_listen = \"127.0.0.1:{component}\"\n\n[sfu]\nlisten = \"127.0.0.1:0\"\n{extra}"
    );
    std::fs::write(dir.join("oxbridge.toml"), config).unwrap();
    let log = std::fs::File::create(dir.join("oxbridge.log")).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--config"])
        .arg(dir.join("oxbridge.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // OXBRIDGE_* variables are config overrides for the server; pass none of ours.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OXBRIDGE_") {
            cmd.env_remove(k);
        }
    }
    let mut server = Server {
        child: cmd.spawn().unwrap(),
        dir,
        http,
        https,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(http) {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("oxbridge exited during startup: {status}");
        }
        assert!(Instant::now() < deadline, "oxbridge not healthy after 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Two rooms of two, everyone sending, for `duration`.
fn smoke(server: &Server, transport: Transport, duration: Duration) -> MediaArgs {
    MediaArgs {
        url: format!("http://127.0.0.1:{}", server.http),
        transport,
        insecure: false,
        domain: "localhost".into(),
        muc: None,
        focus: None,
        preset: None,
        rooms: Some(2),
        participants: Some(2),
        senders: Some(2),
        duration,
        join_rate: 20.0,
        stage_timeout: Duration::from_secs(10),
        loss: 0.0,
        max_height: 360,
        server_pid: Some(server.child.id()),
        label: "oxbridge".into(),
        json: None,
        chart: None,
    }
}

/// Every participant stopped at `stage`, its error saying `why`.
fn assert_all_stopped_at(outcomes: &[Outcome], stage: Stage, why: &str) {
    for o in outcomes {
        assert_eq!(o.reached, stage, "{:?}", o.error);
        assert!(
            o.error.as_deref().is_some_and(|e| e.contains(why)),
            "{:?}",
            o.error
        );
    }
}

/// Everyone got its peer's media, and only its peer's, without loss.
fn assert_media_flowed(outcomes: &[Outcome], at_least: u64) {
    assert_eq!(outcomes.len(), 4);
    for o in outcomes {
        assert_eq!(o.error, None, "participant {} failed", o.spec.index);
        assert_eq!(o.reached, Stage::Running);
        assert!(
            o.bridge_channel,
            "participant {} had no bridge channel",
            o.spec.index
        );
        let peer = outcomes
            .iter()
            .find(|p| p.spec.room == o.spec.room && p.spec.index != o.spec.index)
            .unwrap();
        let got = o.received_from.get(&peer.endpoint).copied().unwrap_or(0);
        assert!(
            got > at_least,
            "participant {} got {got} packets from its peer {}: {:?}",
            o.spec.index,
            peer.endpoint,
            o.received_from
        );
        assert_eq!(o.received_from.len(), 1, "media only from the own room");
        assert_eq!(o.lost, 0, "participant {} lost packets", o.spec.index);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_of_two_exchange_media_without_loss() {
    let server = start_server("");
    let chart =
        std::env::temp_dir().join(format!("oxbridge-media-smoke-{}.svg", std::process::id()));
    let mut args = smoke(&server, Transport::Websocket, Duration::from_secs(3));
    args.chart = Some(chart.clone());
    let (report, outcomes) = run_detailed(args).await.unwrap();
    // 3 s of 50 audio + ~60 video packets a second, give or take the start.
    assert_media_flowed(&outcomes, 150);
    for o in &outcomes {
        assert!(o.latency.len() > 100, "one-way latency sampled");
    }
    assert_eq!((report.running, report.failed), (4, 0));
    assert!(report.join_p99_ms.is_some() && report.first_media_p99_ms.is_some());
    assert!(report.packets_in_per_sec > 300.0, "{report:?}");
    assert!(report.server_cores_used.is_some());
    // The bridge's own added latency, from its /metrics histogram.
    let (mean, p99) = (report.bridge_added_mean_ms, report.bridge_added_p99_ms);
    assert!(
        mean.is_some_and(|m| m > 0.0) && p99.is_some_and(|p| p > 0.0),
        "{report:?}"
    );
    // A point a second, with latency once media flows, drawn into the chart.
    assert!(report.timeline.len() >= 3, "{:?}", report.timeline);
    assert!(report.timeline.iter().any(|p| p.one_way_mean_ms.is_some()));
    let svg = std::fs::read_to_string(&chart).unwrap();
    let _ = std::fs::remove_file(&chart);
    assert!(
        svg.starts_with("<svg") && svg.matches("<path").count() == 4,
        "{svg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_on_bosh_exchange_media_without_loss() {
    let server = start_server("");
    let args = smoke(&server, Transport::Bosh, Duration::from_secs(2));
    let (report, outcomes) = run_detailed(args).await.unwrap();
    assert_media_flowed(&outcomes, 100);
    assert_eq!((report.running, report.failed), (4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_conference_request_is_reported_with_its_stage_not_a_hang() {
    // No focus answers for focus.localhost.
    let server = start_server("\n[focus]\nenabled = false\n");
    let args = smoke(&server, Transport::Websocket, Duration::from_secs(1));
    let started = Instant::now();
    let (report, outcomes) = run_detailed(args).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "no hang");
    assert_eq!((report.running, report.failed), (0, 4));
    assert_all_stopped_at(&outcomes, Stage::ConferenceRequest, "conference request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_loss_video_is_recovered_by_nack_and_rtx() {
    let server = start_server("");
    let mut args = smoke(&server, Transport::Websocket, Duration::from_secs(3));
    args.loss = 5.0;
    let (report, _) = run_detailed(args).await.unwrap();
    assert_eq!((report.running, report.failed), (4, 0));
    assert!(report.packets_dropped > 50, "{report:?}");
    // The bridge asked the senders again for what their uplink lost.
    assert!(report.nacks_received > 0, "{report:?}");
    // Audio is not retransmitted; video mostly comes back (RTX is dropped too).
    let video_in = report.packets_in_per_sec * 3.0 / 2.0;
    assert!(
        (report.packets_lost_video as f64) < video_in * 0.05 / 3.0,
        "video lost {} of about {video_in:.0}: {report:?}",
        report.packets_lost_video
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_self_signed_deployment_needs_insecure() {
    let server = start_server("");
    for transport in [Transport::Websocket, Transport::Bosh] {
        let mut args = smoke(&server, transport, Duration::from_secs(2));
        args.url = format!("https://127.0.0.1:{}", server.https);
        // The certificate is checked: nobody gets in.
        let (report, outcomes) = run_detailed(args.clone()).await.unwrap();
        assert_eq!(report.failed, 4, "{transport:?}");
        assert!(
            outcomes.iter().all(|o| o.reached == Stage::Connect),
            "{transport:?}"
        );
        // Accepted on purpose, the call goes through.
        args.insecure = true;
        let (_, outcomes) = run_detailed(args).await.unwrap();
        assert_media_flowed(&outcomes, 60);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focus_that_never_invites_is_reported_at_session_initiate() {
    // Rooms of two never reach the three the focus waits for: no offer comes.
    let server = start_server("\n[focus]\nmin_participants = 3\n");
    let mut args = smoke(&server, Transport::Websocket, Duration::from_secs(1));
    // Long enough for the stages before to pass on a loaded machine.
    args.stage_timeout = Duration::from_secs(5);
    let (report, outcomes) = run_detailed(args).await.unwrap();
    assert_eq!((report.running, report.failed), (0, 4));
    assert_all_stopped_at(&outcomes, Stage::SessionInitiate, "timed out");
    assert_eq!(report.failed_by_stage.get("session-initiate"), Some(&4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_that_never_completes_is_reported_at_ice() {
    let server = start_server("");
    // UDP blocked both ways: every candidate either side signals is rewritten
    // to a socket nobody reads.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let firewall = UdpFirewall::start(server.http, silent.local_addr().unwrap().port()).await;
    let mut args = smoke(&server, Transport::Websocket, Duration::from_secs(1));
    args.url = format!("http://127.0.0.1:{}", firewall.port);
    // Long enough for the stages before to pass on a loaded machine.
    args.stage_timeout = Duration::from_secs(5);
    let (report, outcomes) = run_detailed(args).await.unwrap();
    assert!(
        firewall.rewritten() >= 8,
        "offers and answers passed through it"
    );
    assert_eq!((report.running, report.failed), (0, 4));
    assert_all_stopped_at(&outcomes, Stage::Ice, "timed out");
    assert!(outcomes.iter().all(|o| o.packets_in == 0));
}

/// An XMPP-over-WebSocket relay in front of the server that points every
/// Jingle candidate, both ways, at one UDP port: what a firewall dropping
/// the media port looks like to both ends.
struct UdpFirewall {
    port: u16,
    rewritten: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl UdpFirewall {
    async fn start(server_http: u16, to: u16) -> UdpFirewall {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
        use tokio_tungstenite::tungstenite::http::HeaderValue;

        // The error type is tungstenite's, large or not.
        #[allow(clippy::result_large_err)]
        fn xmpp_subprotocol(_: &Request, mut r: Response) -> Result<Response, ErrorResponse> {
            r.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));
            Ok(r)
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let rewritten = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = rewritten.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let client = tokio_tungstenite::accept_hdr_async(tcp, xmpp_subprotocol)
                        .await
                        .unwrap();
                    let url = format!("ws://127.0.0.1:{server_http}/xmpp-websocket");
                    let mut req = url.into_client_request().unwrap();
                    req.headers_mut()
                        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));
                    let (server, _) = tokio_tungstenite::connect_async(req).await.unwrap();
                    let (mut client_tx, mut client_rx) = client.split();
                    let (mut server_tx, mut server_rx) = server.split();
                    let relay = |m: Message| match m {
                        Message::Text(t) if t.contains("<candidate") => {
                            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Message::text(redirect_candidates(&t, to))
                        }
                        m => m,
                    };
                    let up = async {
                        while let Some(Ok(m)) = client_rx.next().await {
                            if server_tx.send(relay(m)).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async {
                        while let Some(Ok(m)) = server_rx.next().await {
                            if client_tx.send(relay(m)).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! { _ = up => {}, _ = down => {} }
                });
            }
        });
        UdpFirewall { port, rewritten }
    }

    fn rewritten(&self) -> usize {
        self.rewritten.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `xml` with the port of every `<candidate>` replaced by `port`.
fn redirect_candidates(xml: &str, port: u16) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<candidate") {
        let end = start + rest[start..].find('>').unwrap();
        let tag = &rest[start..end];
        let at = tag.find(" port=").unwrap() + " port=".len();
        let quote = &tag[at..at + 1];
        let close = at + 1 + tag[at + 1..].find(quote).unwrap();
        out.push_str(&rest[..start]);
        out.push_str(&tag[..at + 1]);
        out.push_str(&port.to_string());
        out.push_str(&tag[close..]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
