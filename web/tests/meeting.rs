//! The meeting side over real sockets: config.js built from what the browser
//! sent, the meeting page and its libraries, room-name checks, the stock-app
//! directory mode, and that other components' routes still win when merged.

use std::path::PathBuf;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web::meeting::{MeetingConfig, router};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `app` on 127.0.0.1:0 through the front door's own `serve`.
async fn start(app: Router) -> std::net::SocketAddr {
    let listener = web::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // Keep the sender alive for the test's lifetime: dropping it stops the server.
    std::mem::forget(stop_tx);
    tokio::spawn(web::serve(listener, app, stop));
    addr
}

/// One HTTP/1.1 GET with exactly the headers given (so Host can be anything).
async fn get_raw(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"),
        "responses here have a known length"
    );
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn fetch(addr: std::net::SocketAddr, path: &str) -> Reply {
    get_raw(addr, path, &[("Host", &addr.to_string())]).await
}

fn config() -> MeetingConfig {
    MeetingConfig::new("meet.test")
}

#[tokio::test]
async fn config_js_names_our_hosts_and_the_host_the_browser_used() {
    let addr = start(router(config())).await;
    let r = get_raw(addr, "/config.js", &[("Host", "localhost:1234")]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().contains("javascript"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let js = &r.body;
    assert!(js.contains("var config = {"), "{js}");
    for expected in [
        r#""domain": "meet.test""#,
        r#""muc": "conference.meet.test""#,
        r#""focus": "focus.meet.test""#,
        r#""focusUserJid": "focus@auth.meet.test""#,
        r#""websocket": "ws://localhost:1234/xmpp-websocket""#,
        r#""bosh": "http://localhost:1234/http-bind""#,
        r#""sourceNameSignaling": true"#,
        r#""enableWebsocketResume": true"#,
        r#""channelLastN": -1"#,
        r#""disableSimulcast": false"#,
        r#""prejoinPageEnabled": false"#,
    ] {
        assert!(js.contains(expected), "missing {expected} in {js}");
    }
    assert!(js.contains("\"p2p\": {\n    \"enabled\": false"), "{js}");
    assert!(!js.contains("conferenceRequestUrl"));
    assert!(!js.contains("startAudioMuted") && !js.contains("startVideoMuted"));

    // The same server reached by its IP address hands out that address.
    let r = get_raw(addr, "/config.js", &[("Host", "127.0.0.1:8080")]).await;
    assert!(
        r.body
            .contains(r#""websocket": "ws://127.0.0.1:8080/xmpp-websocket""#)
    );
}

#[tokio::test]
async fn config_js_behind_a_tls_proxy_uses_its_forwarded_scheme_and_host() {
    let mut c = config();
    c.conference_request = true;
    let addr = start(router(c)).await;
    let r = get_raw(
        addr,
        "/config.js",
        &[("Host", "127.0.0.1:8080"), ("X-Forwarded-Proto", "https")],
    )
    .await;
    assert!(
        r.body
            .contains(r#""websocket": "wss://127.0.0.1:8080/xmpp-websocket""#),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(r#""bosh": "https://127.0.0.1:8080/http-bind""#)
    );
    assert!(
        r.body
            .contains(r#""conferenceRequestUrl": "https://127.0.0.1:8080/conference-request/v1""#)
    );

    let r = get_raw(
        addr,
        "/config.js",
        &[
            ("Host", "10.0.0.5:8080"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "meet.example.com"),
        ],
    )
    .await;
    assert!(
        r.body
            .contains(r#""websocket": "wss://meet.example.com/xmpp-websocket""#)
    );
}

#[tokio::test]
async fn interface_config_js_is_served() {
    let addr = start(router(config())).await;
    let r = fetch(addr, "/interface_config.js").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().contains("javascript"));
    assert!(r.body.contains("var interfaceConfig = {"));
}

#[tokio::test]
async fn meeting_page_loads_lib_jitsi_meet_and_our_script() {
    let addr = start(router(config())).await;
    let lib = fetch(addr, "/libs/lib-jitsi-meet.min.js").await;
    let page = fetch(addr, "/consultation-42").await;
    if lib.status == 503 {
        // Built without npm: both say how to fix it.
        assert!(lib.body.contains("apt-get install -y npm"));
        assert_eq!(page.status, 503);
        assert!(
            page.body.contains("apt-get install -y npm"),
            "{}",
            page.body
        );
        return;
    }
    assert_eq!(lib.status, 200);
    assert!(lib.header("content-type").unwrap().contains("javascript"));
    assert!(lib.body.len() > 100_000, "the real bundle, not a stub");
    let jquery = fetch(addr, "/libs/jquery.min.js").await;
    assert_eq!(jquery.status, 200);
    assert!(jquery.body.contains("jQuery v3.6.0"));

    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for src in [
        "/config.js",
        "/libs/jquery.min.js",
        "/libs/lib-jitsi-meet.min.js",
        "/libs/oxbridge-meeting.js",
    ] {
        assert!(
            page.body.contains(&format!("src=\"{src}\"")),
            "page lacks {src}"
        );
    }
    assert!(page.body.contains("window.jquery = window.jQuery"));
    assert!(page.body.contains("data-room=\"consultation-42\""));

    let script = fetch(addr, "/libs/oxbridge-meeting.js").await;
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .contains("javascript")
    );
    assert!(script.body.contains("window.oxbridgeMeeting"));
    assert_eq!(fetch(addr, "/libs/nothing.js").await.status, 404);
}

#[tokio::test]
async fn bad_room_names_are_not_found() {
    let addr = start(router(config())).await;
    for path in [
        "/a@b",
        "/a%40b",
        "/..",
        "/%2e%2e",
        "/a..b",
        "/.env",
        "/a%3Ab",
        "/a%20b",
        "/favicon.ico",
    ] {
        assert_eq!(fetch(addr, path).await.status, 404, "{path}");
    }
    assert_eq!(fetch(addr, "/two/segments").await.status, 404);
}

#[tokio::test]
async fn landing_page_offers_a_room_form_that_works_without_javascript() {
    let addr = start(router(config())).await;
    let r = fetch(addr, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<form") && r.body.contains("name=\"room\""));
    let r = fetch(addr, "/?room=Consultation-42").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/Consultation-42"));
    let r = fetch(addr, "/?room=a%40b").await;
    assert_eq!(r.status, 200, "a bad name shows the form again");
}

/// The real signaling routes plus stand-ins with the sfu's and focus's path shapes.
async fn other_components() -> Router {
    let mut cfg = signaling::Config::for_domain("meet.test");
    cfg.xmpp.listen = "127.0.0.1:0".parse().unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    std::mem::forget(stop_tx);
    let signaling = signaling::Server::start(cfg, None, stop).await.unwrap();
    signaling
        .router()
        .route(
            "/colibri-ws/{bridge}/{conference}/{endpoint}",
            get(|| async { "colibri" }),
        )
        .route("/colibri/stats", get(|| async { "stats" }))
        .route(
            "/conference-request/v1",
            axum::routing::post(|| async { "focus" }),
        )
        .route("/external_api.js", get(|| async { "api" }))
}

#[tokio::test]
async fn other_components_routes_win_over_room_names() {
    let dir = stock_dir("merge");
    for stock in [None, Some(dir.clone())] {
        let mut c = config();
        c.jitsi_meet_dir = stock.clone();
        // Merging must not panic over overlapping routes, in either mode.
        let addr = start(other_components().await.merge(router(c))).await;
        assert_eq!(fetch(addr, "/sessions").await.status, 200, "{stock:?}");
        let size = fetch(addr, "/room-size?room=nobody&domain=meet.test").await;
        assert_ne!(
            size.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_ne!(
            fetch(addr, "/room?room=nobody&domain=meet.test")
                .await
                .header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_ne!(
            fetch(addr, "/xmpp-websocket").await.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(fetch(addr, "/colibri-ws/b/c/e").await.body, "colibri");
        assert_eq!(fetch(addr, "/colibri/stats").await.body, "stats");
        assert_eq!(fetch(addr, "/external_api.js").await.body, "api");
        assert_eq!(fetch(addr, "/conference-request/v1").await.status, 405);
        let page = fetch(addr, "/consultation-42").await;
        assert!(
            page.status == 200 || page.status == 503,
            "{stock:?}: {}",
            page.status
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A miniature stock app: SSI includes like the real index.html, and its own
/// config.js that must lose to ours.
fn stock_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oxbridge-stock-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("css")).unwrap();
    std::fs::create_dir_all(dir.join("libs")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<html><head><!--#include virtual=\"base.html\" -->\
         <script><!--#include virtual=\"/config.js\" --></script>\
         <script><!--#include virtual=\"/interface_config.js\" --></script>\
         <script src=\"libs/app.bundle.min.js?v=1\"></script></head><body>stock app</body></html>",
    )
    .unwrap();
    std::fs::write(dir.join("base.html"), "<base href=\"/\" />").unwrap();
    std::fs::write(dir.join("config.js"), "var config = { theirs: true };").unwrap();
    std::fs::write(
        dir.join("interface_config.js"),
        "var interfaceConfig = { theirs: true };",
    )
    .unwrap();
    std::fs::write(dir.join("css/all.css"), "body{}").unwrap();
    std::fs::write(dir.join("libs/app.bundle.min.js"), "/* app */").unwrap();
    std::fs::write(dir.join("manifest.json"), "{}").unwrap();
    dir
}

#[tokio::test]
async fn stock_app_directory_is_served_with_our_config() {
    let dir = stock_dir("serve");
    let mut c = config();
    c.jitsi_meet_dir = Some(dir.clone());
    let others = Router::new()
        .route("/xmpp-websocket", get(|| async { "ws" }))
        .route("/colibri-ws/{*rest}", get(|| async { "colibri" }));
    let addr = start(others.merge(router(c))).await;

    let page = get_raw(addr, "/consultation-42", &[("Host", "localhost:1234")]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("stock app") && page.body.contains("<base href=\"/\" />"));
    assert!(
        page.body
            .contains(r#""websocket": "ws://localhost:1234/xmpp-websocket""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("var interfaceConfig = {"));
    assert!(
        !page.body.contains("theirs"),
        "the directory's config files lose: {}",
        page.body
    );

    let config_js = fetch(addr, "/config.js").await;
    assert!(config_js.body.contains("focus.meet.test") && !config_js.body.contains("theirs"));
    assert!(
        !fetch(addr, "/interface_config.js")
            .await
            .body
            .contains("theirs")
    );

    let css = fetch(addr, "/css/all.css").await;
    assert_eq!((css.status, css.body.as_str()), (200, "body{}"));
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(
        fetch(addr, "/libs/app.bundle.min.js").await.body,
        "/* app */"
    );
    assert_eq!(
        fetch(addr, "/manifest.json").await.header("content-type"),
        Some("application/json")
    );
    assert!(fetch(addr, "/").await.body.contains("stock app"));
    assert_eq!(fetch(addr, "/xmpp-websocket").await.body, "ws");
    assert_eq!(fetch(addr, "/colibri-ws/a/b").await.body, "colibri");
    for path in [
        "/a@b",
        "/css/missing.css",
        "/css/%2e%2e/index.html",
        "/.git/config",
    ] {
        assert_eq!(fetch(addr, path).await.status, 404, "{path}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
