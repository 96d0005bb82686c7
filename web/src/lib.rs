//! oxbridge's HTTP front door: one port (plus an optional HTTPS one) that
//! mounts every component's routes, `/about/health` and `/metrics`, and
//! serves the meeting side ([`meeting`]: config.js, the meeting page).
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> anyhow::Result<()> {
//! let (_stop_tx, stop) = tokio::sync::watch::channel(false);
//! let http = web::bind("127.0.0.1:8080".parse()?).await?;
//! tokio::spawn(web::serve(http, app, stop));
//! # Ok(()) }
//! ```

pub mod meeting;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::Service;

/// Request extension present on requests that arrived over [`serve_tls`], so
/// handlers can build `https`/`wss` URLs without a proxy header.
#[derive(Clone, Copy, Debug)]
pub struct ServedOverTls;

/// A health check: `Err` says what is wrong.
pub type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What `/about/version` and `/about/health` answer.
#[derive(Clone)]
pub struct About {
    /// The program's version.
    pub version: &'static str,
    pub health: HealthCheck,
}

impl About {
    /// Healthy whenever it answers; set [`About::health`] to say more.
    pub fn new(version: &'static str) -> About {
        About {
            version,
            health: Arc::new(|| Ok(())),
        }
    }
}

/// The front door's own routes around the mounted ones.
pub fn app(mounted: Router, registry: prometheus::Registry, about: About) -> Router {
    let registry = Arc::new(registry);
    let check = about.health.clone();
    mounted
        .route("/about/health", get(move || health(check.clone())))
        .route("/about/version", get(move || about_version(about.version)))
        .route("/metrics", get(move || metrics(registry.clone())))
}

/// `GET /about/version`: in the shape of Videobridge's answer, for the
/// monitoring that asks it.
async fn about_version(version: &'static str) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "name": "oxbridge",
        "version": version,
        "os": std::env::consts::OS,
    }))
}

/// `GET /about/health`: 200 with an empty JSON object while healthy, 500
/// saying why when not (load balancers and Kubernetes act on the status).
async fn health(check: HealthCheck) -> impl IntoResponse {
    let (status, body) = match check() {
        Ok(()) => (StatusCode::OK, "{}".to_owned()),
        Err(why) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": why }).to_string(),
        ),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(registry: Arc<prometheus::Registry>) -> impl IntoResponse {
    // Some collectors ask other threads (the media workers): not on the runtime.
    let families = tokio::task::spawn_blocking(move || registry.gather())
        .await
        .unwrap_or_default();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}

/// Binds a listener, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// Serves `app` over plain HTTP until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    serve_with(listener, app, None, shutdown).await
}

/// Serves `app` over HTTPS with `tls` until `shutdown`.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    serve_with(
        listener,
        app,
        Some(tokio_rustls::TlsAcceptor::from(tls)),
        shutdown,
    )
    .await
}

async fn serve_with(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let over_tls = tls.is_some();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            // Handlers that only local operators may call look at the peer.
            let service = hyper::service::service_fn(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                if over_tls {
                    req.extensions_mut().insert(ServedOverTls);
                }
                app.clone().call(req)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                    }
                }
                Some(acceptor) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    else {
                        return;
                    };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => { conn.as_mut().graceful_shutdown(); let _ = conn.await; }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let reply = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = reply.status();
        let body = to_bytes(reply.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_says_500_and_why_when_the_check_fails() {
        let about = About::new("1.2.3");
        let front = |about| app(Router::new(), prometheus::Registry::new(), about);
        assert_eq!(
            get(front(about.clone()), "/about/health").await,
            (StatusCode::OK, "{}".into())
        );
        let failing = About {
            health: Arc::new(|| Err("media worker 1 has stopped".into())),
            ..about
        };
        assert_eq!(
            get(front(failing), "/about/health").await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":"media worker 1 has stopped"}"#.into()
            )
        );
    }
}
