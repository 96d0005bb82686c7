//! The bridge's HTTP face: `/colibri/stats` with Videobridge's key names, and
//! the bridge channel over WebSocket (protocol §5.1):
//! `/colibri-ws/<bridge id>/<conference>/<endpoint>?pwd=<secret>`, mounted
//! into the web front door. A wrong bridge id is 404, a wrong conference,
//! endpoint or secret 403; a second socket for an endpoint replaces the first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};

use crate::bridge::Bridge;
use crate::channel::MAX_MESSAGE_BYTES;

/// Outgoing messages queued per channel before the worker starts dropping.
const QUEUE: usize = 256;
/// Incoming messages of one channel waiting for its worker, at most: past
/// this the reader waits, and TCP slows the client down.
const IN_FLIGHT: usize = 64;
/// The bridge pings every channel this often, as Videobridge does.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Routes to mount into the front door.
///
/// ```no_run
/// # use std::sync::Arc;
/// # let bridge = Arc::new(sfu::bridge::Bridge::start(Default::default()).unwrap());
/// let app: axum::Router = sfu::http::router(bridge);
/// ```
pub fn router(bridge: Arc<Bridge>) -> Router {
    Router::new()
        .route("/colibri-ws/{bridge}/{conference}/{endpoint}", get(channel))
        .route("/colibri/stats", get(stats))
        .route("/colibri/drain/enable", post(drain_enable))
        .route("/colibri/drain/disable", post(drain_disable))
        .with_state(bridge)
}

/// `GET /colibri/stats`: what monitoring written for Videobridge reads.
async fn stats(State(bridge): State<Arc<Bridge>>) -> Response {
    match tokio::task::spawn_blocking(move || stats_report(&bridge)).await {
        Ok(Some(report)) => axum::Json(report).into_response(),
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// The bridge's statistics under Videobridge's names: `/colibri/stats`, and
/// the stats presence Jicofo reads. Blocks while the workers report; `None`
/// when they do not.
pub fn stats_report(bridge: &Bridge) -> Option<serde_json::Value> {
    let stats = bridge.stats()?;
    let s = &stats.totals;
    let r = &stats.rates;
    let mut report = serde_json::json!({
        "bit_rate_download": (r.bits_in / 1000.0).round() as u64,
        "bit_rate_upload": (r.bits_out / 1000.0).round() as u64,
        "packet_rate_download": r.packets_in.round() as u64,
        "packet_rate_upload": r.packets_out.round() as u64,
        "stress_level": (r.stress() * 1000.0).round() / 1000.0,
        "conferences": s.conferences,
        "participants": s.endpoints,
        "endpoints": s.endpoints,
        "largest_conference": s.largest_conference,
        "endpoints_sending_audio": s.endpoints_sending_audio,
        "endpoints_sending_video": s.endpoints_sending_video,
        "inactive_conferences": s.inactive_conferences,
        "inactive_endpoints": s.inactive_endpoints,
        "receive_only_endpoints": s.receive_only_endpoints,
        "total_conferences_created": s.conferences_created,
        "total_conferences_completed": s.conferences_created.saturating_sub(s.conferences as u64),
        "total_participants": s.endpoints_created,
        "total_packets_received": s.datagrams_in,
        "total_packets_sent": s.datagrams_out,
        "total_packets_forwarded": s.packets_forwarded,
        "total_packets_dropped": s.unroutable + s.rejected + stats.overload_drops,
        "total_keyframes_requested": s.keyframe_requests,
        "total_bytes_received": s.bytes_in,
        "total_bytes_sent": s.bytes_out,
        "total_nacks_received": s.nacks_received,
        "total_ice_failed": s.ice_failures,
        "total_ice_succeeded": s.ice_succeeded,
        "dtls_failed_endpoints": s.dtls_failures,
        "drain": bridge.is_draining(),
        "graceful_shutdown": bridge.is_shutting_down(),
        "healthy": bridge.health().is_ok(),
        "version": env!("CARGO_PKG_VERSION"),
        "forwarding_latency_p50_us": stats.latency.quantile(0.5).as_micros() as u64,
        "forwarding_latency_p99_us": stats.latency.quantile(0.99).as_micros() as u64,
    });
    if let Some(region) = bridge.region() {
        report["region"] = region.into();
    }
    Some(report)
}

/// `POST /colibri/drain/enable` (Videobridge's REST API), from this host only.
async fn drain_enable(State(bridge): State<Arc<Bridge>>, request: Request) -> Response {
    set_drain(&bridge, &request, true)
}

/// `POST /colibri/drain/disable`, from this host only.
async fn drain_disable(State(bridge): State<Arc<Bridge>>, request: Request) -> Response {
    set_drain(&bridge, &request, false)
}

fn set_drain(bridge: &Bridge, request: &Request, on: bool) -> Response {
    // The front door is public; operators drain from the machine itself.
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>();
    if !peer.is_some_and(|ConnectInfo(p)| p.ip().is_loopback()) {
        return (StatusCode::FORBIDDEN, "drain is for local operators\n").into_response();
    }
    bridge.set_draining(on);
    StatusCode::OK.into_response()
}

async fn channel(
    State(bridge): State<Arc<Bridge>>,
    Path((id, conference, endpoint)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if id != bridge.id() {
        return (StatusCode::NOT_FOUND, "unknown bridge\n").into_response();
    }
    let pwd = query.get("pwd").cloned().unwrap_or_default();
    let check = {
        let (bridge, conference, endpoint, pwd) = (
            bridge.clone(),
            conference.clone(),
            endpoint.clone(),
            pwd.clone(),
        );
        tokio::task::spawn_blocking(move || bridge.channel_check(&conference, &endpoint, &pwd))
            .await
    };
    if !matches!(check, Ok(Ok(()))) {
        return (StatusCode::FORBIDDEN, "authentication failed\n").into_response();
    }
    // Messages are small JSON: the 128 KiB default buffers would cost a
    // quarter of a megabyte per endpoint.
    upgrade
        .read_buffer_size(4096)
        .write_buffer_size(8192)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| run(bridge, conference, endpoint, pwd, socket))
}

async fn run(
    bridge: Arc<Bridge>,
    conference: String,
    endpoint: String,
    pwd: String,
    socket: WebSocket,
) {
    let (tx, mut outgoing) = tokio::sync::mpsc::channel(QUEUE);
    let opened = {
        let (bridge, conference, endpoint, tx) = (
            bridge.clone(),
            conference.clone(),
            endpoint.clone(),
            tx.clone(),
        );
        tokio::task::spawn_blocking(move || bridge.channel_open(&conference, &endpoint, &pwd, tx))
            .await
    };
    if !matches!(opened, Ok(Ok(()))) {
        return;
    }
    let (mut sink, mut incoming) = socket.split();
    let credit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Some(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Ok(held) = credit.clone().acquire_owned().await else {
                        break;
                    };
                    bridge.channel_message(&conference, &endpoint, t.as_str().to_owned(), held);
                }
                Some(Ok(Message::Binary(_))) => {
                    let error = r#"{"colibriClass":"Error","error":"binary frames are not bridge-channel messages"}"#;
                    let _ = sink.send(Message::Text(error.into())).await;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    bridge.channel_closed(&conference, &endpoint, tx);
}
