//! `oxbridge`: Jitsi Meet's server side in one program.
//!
//! `oxbridge` (or `oxbridge serve`) runs the all-in-one server with the
//! configuration from `--config`, `OXBRIDGE_*` variables and flags.

mod config;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use config::Config;

#[derive(Parser)]
#[command(
    name = "oxbridge",
    version,
    about = "Jitsi Meet's server side: XMPP signaling, focus and SFU in one program"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the all-in-one server (the default).
    Serve(ServeArgs),
    /// Run the bridge alone (Jitsi Videobridge's job) for a stock Prosody and
    /// Jicofo: the media port, the HTTP side (bridge channels, /colibri/stats,
    /// /metrics) and Colibri2 over XMPP from `[sfu.xmpp]`.
    Bridge(ServeArgs),
    /// Load-test a deployment (this one or stock Jitsi) with simulated participants.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// XMPP sessions in MUC rooms broadcasting presence, over WebSocket.
    Signaling(bench::signaling::SignalingArgs),
    /// Participants joining real calls: Jingle, ICE/DTLS/SRTP, audio and simulcast video.
    Media(bench::media::MediaArgs),
    /// Print saved JSON reports (all signaling or all media) side by side.
    Compare {
        /// Report files written with --json.
        reports: Vec<PathBuf>,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// The TOML configuration file.
    #[arg(long, env = "OXBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// XMPP domain (MUC is conference.<domain>, focus focus.<domain>).
    #[arg(long)]
    domain: Option<String>,
    /// HTTP front door address.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Optional HTTPS front door address.
    #[arg(long)]
    https_listen: Option<SocketAddr>,
    /// Client-to-server XMPP TCP address.
    #[arg(long)]
    xmpp_listen: Option<SocketAddr>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (args, bridge_only) = match cli.command {
        Some(Command::Serve(a)) => (a, false),
        Some(Command::Bridge(a)) => (a, true),
        Some(Command::Bench(b)) => return run_bench(b),
        None => (ServeArgs::default(), false),
    };
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = args.domain {
        config.domain = d;
    }
    if let Some(l) = args.listen {
        config.http.listen = l;
    }
    if let Some(l) = args.https_listen {
        config.http.https_listen = Some(l);
    }
    if let Some(l) = args.xmpp_listen {
        config.xmpp.listen = l;
    }
    if args.print_config {
        print!("{}", toml::to_string_pretty(&config)?);
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OXBRIDGE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if bridge_only {
        runtime.block_on(serve_bridge(config))
    } else {
        runtime.block_on(serve(config))
    }
}

fn run_bench(command: BenchCommand) -> anyhow::Result<()> {
    use bench::media::MediaReport;
    use bench::signaling::{SignalingReport, run};
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let reports = match command {
        BenchCommand::Signaling(args) => vec![runtime()?.block_on(run(args))?],
        BenchCommand::Media(args) => {
            let report = runtime()?.block_on(bench::media::run(args))?;
            print!("{}", MediaReport::table(&[report]));
            return Ok(());
        }
        BenchCommand::Compare { reports } => {
            let texts = reports
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let media: Result<Vec<MediaReport>, _> =
                texts.iter().map(|t| serde_json::from_str(t)).collect();
            // A signaling report lacks the media fields, so this tells them apart.
            if let Ok(media) = media {
                print!("{}", MediaReport::table(&media));
                return Ok(());
            }
            texts
                .iter()
                .map(|t| Ok(serde_json::from_str::<SignalingReport>(t)?))
                .collect::<anyhow::Result<_>>()?
        }
    };
    print!("{}", SignalingReport::table(&reports));
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _ = rustls_provider();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let names = vec![config.domain.clone(), "localhost".into()];
    let xmpp_tls = web::tls::server_config(
        config.xmpp.tls_cert.as_deref(),
        config.xmpp.tls_key.as_deref(),
        &names,
    )
    .context("xmpp TLS")?;
    let signaling = signaling::Server::start(config.signaling(), Some(xmpp_tls), stop.clone())
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let bridge = std::sync::Arc::new(
        sfu::bridge::Bridge::start(config.sfu.bridge()).context("sfu media port")?,
    );
    // Linux reports twice the size it granted.
    if bridge.receive_buffer() / 2 < config.sfu.socket_buffer_bytes {
        tracing::warn!(
            granted = bridge.receive_buffer(),
            asked = config.sfu.socket_buffer_bytes,
            "the media socket got a smaller receive buffer than configured; bursts may be dropped: raise net.core.rmem_max"
        );
    }
    let registry = prometheus::Registry::new();
    signaling.register_metrics(&registry)?;
    registry.register(Box::new(sfu::metrics::BridgeCollector::new(bridge.clone())))?;
    let http = web::bind(config.http.listen).await?;
    let http_addr = http.local_addr()?;
    let mut routes = signaling.router().merge(sfu::http::router(bridge.clone()));
    if let Some(xmpp) = &config.sfu.xmpp {
        let face = colibri_face(&config, xmpp, http_addr);
        tokio::spawn(colibri2::bridge::run(bridge.clone(), face));
    }
    let mut _focus = None;
    if config.focus.enabled {
        let public = config
            .http
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}"));
        let focus_config = focus::FocusConfig {
            min_participants: config.focus.min_participants,
            single_participant_timeout: std::time::Duration::from_secs(
                config.focus.single_participant_timeout_secs,
            ),
            bridge_channel_base: format!("{}/colibri-ws", websocket_base(&public)),
        };
        let bridges = focus::selector::BridgeSelector::new(vec![bridge.clone()]);
        let f = std::sync::Arc::new(
            focus::Focus::start(signaling.hub.clone(), bridges, focus_config)
                .map_err(|e| anyhow::anyhow!("focus: {e}"))?,
        );
        routes = routes.merge(focus::http::router(f.clone()));
        _focus = Some(f);
    }
    let sig = config.signaling();
    let mut meeting = web::meeting::MeetingConfig::new(config.domain.clone());
    meeting.muc_domain = sig.muc_domain();
    meeting.focus_domain = sig.focus_domain();
    meeting.focus_jid = format!("focus@{}", sig.auth_domain());
    meeting.public_url = config.http.public_url.clone();
    meeting.conference_request = config.focus.enabled && config.web.conference_request;
    meeting.jitsi_meet_dir = config.web.jitsi_meet_dir.clone();
    routes = routes.merge(web::meeting::router(meeting));
    let app = web::app(routes, registry, about(&bridge));
    tokio::spawn(web::serve(http, app.clone(), stop.clone()));
    let mut https_addr = None;
    if let Some(addr) = config.http.https_listen {
        let tls = web::tls::server_config(
            config.http.tls_cert.as_deref(),
            config.http.tls_key.as_deref(),
            &names,
        )
        .context("https TLS")?;
        let l = web::bind(addr).await?;
        https_addr = Some(l.local_addr()?);
        tokio::spawn(web::serve_tls(l, app, tls, stop.clone()));
    }
    tracing::info!(http = %http_addr, https = ?https_addr, xmpp = %signaling.xmpp_addr, component = ?signaling.component_addr, media = %bridge.media_addr(), domain = %config.domain, "oxbridge is serving");
    println!(
        "oxbridge is serving on http://{http_addr}/ : open http://{http_addr}/consultation-42 (any room name) in two browser tabs (XMPP domain {}, WebSocket ws://{http_addr}/xmpp-websocket, BOSH http://{http_addr}/http-bind, XMPP TCP {}, media UDP {})",
        config.domain,
        signaling.xmpp_addr,
        bridge.media_addr()
    );
    if let Some(a) = https_addr {
        println!("HTTPS: https://{a}/");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Give sessions a moment to write their closing stream errors.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Ok(())
}

/// `/about/*`: this program's version; healthy while every media worker runs.
fn about(bridge: &std::sync::Arc<sfu::bridge::Bridge>) -> web::About {
    let bridge = bridge.clone();
    web::About {
        health: std::sync::Arc::new(move || bridge.health()),
        ..web::About::new(env!("CARGO_PKG_VERSION"))
    }
}

/// The bridge alone: media, its HTTP side and its Colibri2 face to Jicofo.
async fn serve_bridge(config: Config) -> anyhow::Result<()> {
    let _ = rustls_provider();
    let Some(xmpp) = &config.sfu.xmpp else {
        anyhow::bail!(
            "`oxbridge bridge` needs [sfu.xmpp]: the account and brewery room through which Jicofo finds the bridge"
        );
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let bridge = std::sync::Arc::new(
        sfu::bridge::Bridge::start(config.sfu.bridge()).context("sfu media port")?,
    );
    let registry = prometheus::Registry::new();
    registry.register(Box::new(sfu::metrics::BridgeCollector::new(bridge.clone())))?;
    let http = web::bind(config.http.listen).await?;
    let http_addr = http.local_addr()?;
    let app = web::app(sfu::http::router(bridge.clone()), registry, about(&bridge));
    tokio::spawn(web::serve(http, app, stop));
    let face = colibri_face(&config, xmpp, http_addr);
    println!(
        "oxbridge bridge {} is serving: media UDP {}, HTTP http://{http_addr}/ (bridge channels {}), joining {} as {}@{} via {}",
        bridge.id(),
        bridge.media_addr(),
        face.websocket_base.as_deref().unwrap_or("-"),
        face.brewery,
        face.client.username,
        face.client.domain,
        face.client.server,
    );
    tokio::spawn(colibri2::bridge::run(bridge.clone(), face));
    shutdown_signal().await;
    // Graceful shutdown, as Videobridge's: no new conferences (Jicofo reads
    // it from the presence), the running ones go on to their end.
    bridge.start_shutdown();
    let running = || {
        let bridge = bridge.clone();
        async move {
            tokio::task::spawn_blocking(move || bridge.stats().map_or(0, |s| s.totals.conferences))
                .await
                .unwrap_or(0)
        }
    };
    if running().await > 0 {
        tracing::info!(
            conferences = running().await,
            "graceful shutdown: waiting for the conferences here to end (signal again to stop now)"
        );
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        // Listening from here on, so a second signal is not lost between ticks.
        let second = shutdown_signal();
        tokio::pin!(second);
        loop {
            tokio::select! {
                _ = &mut second => break,
                _ = tick.tick() => {
                    if running().await == 0 {
                        break;
                    }
                }
            }
        }
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    Ok(())
}

/// How the bridge reaches Jicofo, from `[sfu.xmpp]`.
fn colibri_face(
    config: &Config,
    xmpp: &config::SfuXmppConfig,
    http_addr: SocketAddr,
) -> colibri2::bridge::BridgeXmppConfig {
    let public = config
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));
    colibri2::bridge::BridgeXmppConfig {
        client: colibri2::xmpp::ClientConfig {
            server: xmpp.server.clone(),
            domain: xmpp.domain.clone(),
            username: xmpp.username.clone(),
            password: xmpp.password.clone(),
            resource: config.sfu.id.clone(),
            ca_file: xmpp.ca_file.clone(),
        },
        brewery: xmpp.brewery.clone(),
        nickname: xmpp
            .nickname
            .clone()
            .unwrap_or_else(|| config.sfu.id.clone()),
        websocket_base: Some(xmpp.websocket_url.clone().unwrap_or_else(|| {
            format!("{}/colibri-ws/{}", websocket_base(&public), config.sfu.id)
        })),
    }
}

/// `http(s)://host` → `ws(s)://host`, without a trailing slash.
fn websocket_base(public: &str) -> String {
    let public = public.trim_end_matches('/');
    if let Some(rest) = public.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = public.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        public.to_owned()
    }
}

/// Installs aws-lc-rs as the process-wide rustls provider (one provider, as DESIGN.md asks).
fn rustls_provider() -> Result<(), std::sync::Arc<rustls::crypto::CryptoProvider>> {
    rustls::crypto::aws_lc_rs::default_provider().install_default()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
