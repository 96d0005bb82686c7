//! The meeting side of the front door: what a browser loads before it speaks
//! XMPP. `/config.js` and `/interface_config.js` (generated per request, so
//! their URLs match the address the browser used), a landing page at `/`, the
//! meeting page at `/<room>` and its scripts under `/libs/`.
//!
//! The built-in meeting page runs lib-jitsi-meet (embedded at build time, see
//! `build.rs`). With [`MeetingConfig::jitsi_meet_dir`] set, the stock
//! jitsi-meet web app in that directory is served instead, still with our
//! generated config files.
//!
//! Other components' routes (`/http-bind`, `/xmpp-websocket`, `/colibri-ws/..`,
//! `/room-size`, ...) are more specific than `/{name}`, so they win when the
//! routers are merged.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let mut meeting = web::meeting::MeetingConfig::new("meet.example.com");
//! meeting.public_url = Some("https://meet.example.com".into());
//! let app = web::app(web::meeting::router(meeting), prometheus::Registry::new(), web::About::new("0.1.0"));
//! let (_stop_tx, stop) = tokio::sync::watch::channel(false);
//! web::serve(web::bind("127.0.0.1:8080".parse()?).await?, app, stop).await;
//! # Ok(()) }
//! ```

mod assets;
mod config_js;
mod origin;
mod room;
mod stock;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

pub use room::{is_room_name, room_node};

use stock::StockApp;

/// What the meeting side needs to know about the deployment.
#[derive(Clone, Debug)]
pub struct MeetingConfig {
    /// XMPP domain (`hosts.domain`).
    pub domain: String,
    /// MUC service (`hosts.muc`); rooms are `<room>@<muc_domain>`.
    pub muc_domain: String,
    /// Where conference requests go (`hosts.focus`).
    pub focus_domain: String,
    /// The focus user's bare JID (`focusUserJid`).
    pub focus_jid: String,
    /// Used for config.js URLs only when a request names no usable host.
    pub public_url: Option<String>,
    /// Advertise `conferenceRequestUrl` (HTTP conference requests, newer clients).
    pub conference_request: bool,
    /// A directory with the stock jitsi-meet web app to serve instead of our page.
    pub jitsi_meet_dir: Option<PathBuf>,
}

impl MeetingConfig {
    /// Defaults for `domain`: MUC `conference.<domain>`, focus `focus.<domain>`,
    /// focus user `focus@auth.<domain>`, built-in page, no HTTP conference requests.
    pub fn new(domain: impl Into<String>) -> Self {
        let domain = domain.into();
        Self {
            muc_domain: format!("conference.{domain}"),
            focus_domain: format!("focus.{domain}"),
            focus_jid: format!("focus@auth.{domain}"),
            public_url: None,
            conference_request: false,
            jitsi_meet_dir: None,
            domain,
        }
    }
}

struct Shared {
    config: MeetingConfig,
    stock: Option<StockApp>,
}

type Ctx = State<Arc<Shared>>;

/// The meeting routes, ready to merge with the other components' routers.
pub fn router(config: MeetingConfig) -> Router {
    let stock = config.jitsi_meet_dir.clone().map(StockApp::new);
    let has_stock = stock.is_some();
    let mut router = Router::new()
        .route("/", get(landing))
        .route("/config.js", get(config_script))
        .route("/interface_config.js", get(interface_config_script))
        .route("/libs/{*file}", get(lib))
        .route("/{name}", get(room_or_file));
    if has_stock {
        // The stock app's css/, images/, sounds/, lang/ ...: static routes of
        // other components still win over this parameter route.
        router = router.route("/{name}/{*rest}", get(stock_file));
    }
    router.with_state(Arc::new(Shared { config, stock }))
}

impl Shared {
    fn config_js(&self, parts: &Parts) -> String {
        let tls = parts.extensions.get::<crate::ServedOverTls>().is_some();
        let origin = origin::request_origin(
            &parts.headers,
            &parts.uri,
            tls,
            self.config.public_url.as_deref(),
        );
        config_js::config_js(&self.config, &origin)
    }

    /// The stock app's index.html with our config files inlined where it includes them.
    async fn stock_index(&self, stock: &StockApp, parts: &Parts) -> Response {
        let ours = |target: &str| match target {
            "config.js" => Some(self.config_js(parts)),
            "interface_config.js" => Some(config_js::interface_config_js()),
            _ => None,
        };
        match stock.index(ours).await {
            Some(html) => page(StatusCode::OK, html),
            None => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the configured jitsi-meet directory has no readable index.html\n",
            ),
        }
    }
}

async fn config_script(State(s): Ctx, parts: Parts) -> Response {
    script(s.config_js(&parts))
}

async fn interface_config_script() -> Response {
    script(config_js::interface_config_js())
}

/// `/`: the stock app's welcome page, or our landing page; `/?room=x` (the
/// landing form, which works without JavaScript) redirects to `/x`.
async fn landing(
    State(s): Ctx,
    Query(query): Query<HashMap<String, String>>,
    parts: Parts,
) -> Response {
    if let Some(stock) = &s.stock {
        return s.stock_index(stock, &parts).await;
    }
    match query.get("room").map(|r| r.trim()) {
        Some(room) if is_room_name(room) => {
            Redirect::to(&format!("/{}", assets::path_encode(room))).into_response()
        }
        Some(room) if !room.is_empty() => page(
            StatusCode::OK,
            assets::LANDING_HTML.replace(
                "<!--MESSAGE-->",
                "<p class=\"message\">Room names use letters, digits, '-', '_' and '.'.</p>",
            ),
        ),
        _ => page(StatusCode::OK, assets::LANDING_HTML.to_string()),
    }
}

/// `/<name>`: a stock-app file if there is one, else the meeting page for a valid room.
async fn room_or_file(
    State(s): Ctx,
    name: Result<Path<String>, PathRejection>,
    parts: Parts,
) -> Response {
    let Ok(Path(name)) = name else {
        return not_found();
    };
    if let Some(stock) = &s.stock {
        if let Some(bytes) = stock.read(&name).await {
            return file(assets::content_type(&name), bytes);
        }
        if is_room_name(&name) {
            return s.stock_index(stock, &parts).await;
        }
        return not_found();
    }
    if !is_room_name(&name) {
        return not_found();
    }
    if !assets::libs_built() {
        return text(StatusCode::SERVICE_UNAVAILABLE, assets::NOT_BUILT);
    }
    let html = assets::MEETING_HTML.replace("{{ROOM}}", &assets::html_escape(&name));
    page(StatusCode::OK, html)
}

/// `/<dir>/<path>` in stock-app mode: its static files.
async fn stock_file(
    State(s): Ctx,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let (Some(stock), Ok(Path((dir, rest)))) = (&s.stock, path) else {
        return not_found();
    };
    let rel = format!("{dir}/{rest}");
    match stock.read(&rel).await {
        Some(bytes) => file(assets::content_type(&rel), bytes),
        None => not_found(),
    }
}

/// `/libs/<file>`: the stock app's copy first (in that mode), then ours.
async fn lib(State(s): Ctx, file_name: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(name)) = file_name else {
        return not_found();
    };
    if let Some(stock) = &s.stock
        && let Some(bytes) = stock.read(&format!("libs/{name}")).await
    {
        return file(assets::content_type(&name), bytes);
    }
    match assets::lib(&name) {
        Some(a) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, a.content_type),
                // Our own script changes with the binary; the npm builds are pinned.
                (
                    header::CACHE_CONTROL,
                    if name.starts_with("oxbridge-") {
                        "no-cache"
                    } else {
                        "public, max-age=86400"
                    },
                ),
            ],
            a.bytes,
        )
            .into_response(),
        None if assets::NPM_LIBS.contains(&name.as_str()) => {
            text(StatusCode::SERVICE_UNAVAILABLE, assets::NOT_BUILT)
        }
        None => not_found(),
    }
}

fn script(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // Built from this request's Host: a cache must not hand it to another.
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn page(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn file(content_type: &'static str, bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}
