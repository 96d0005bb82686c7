//! Files compiled into the binary: the npm libraries `build.rs` fetched (empty
//! when npm was missing) and our own meeting page, script and style.

/// An embedded file and the `Content-Type` it is served with.
pub(crate) struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static LIB_JITSI_MEET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lib-jitsi-meet.min.js"));
static E2EE_WORKER: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lib-jitsi-meet.e2ee-worker.js"));
static JQUERY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jquery.min.js"));

pub(crate) const MEETING_HTML: &str = include_str!("../../assets/meeting.html");
pub(crate) const LANDING_HTML: &str = include_str!("../../assets/landing.html");
const MEETING_JS: &str = include_str!("../../assets/meeting.js");
const MEETING_CSS: &str = include_str!("../../assets/meeting.css");

/// The libraries that come from npm at build time.
pub(crate) const NPM_LIBS: [&str; 3] = [
    "lib-jitsi-meet.min.js",
    "lib-jitsi-meet.e2ee-worker.js",
    "jquery.min.js",
];

/// What `/<room>` answers when the build had no npm.
pub(crate) const NOT_BUILT: &str = "The meeting page is not available: this oxbridge was built \
without npm, so lib-jitsi-meet is not built in.\nInstall npm (apt-get install -y npm) and \
rebuild (cargo build --release).\n";

/// Whether the npm libraries made it into this build.
pub(crate) fn libs_built() -> bool {
    !LIB_JITSI_MEET.is_empty() && !JQUERY.is_empty()
}

/// The embedded file served at `/libs/<name>`, if any (and if built).
pub(crate) fn lib(name: &str) -> Option<Asset> {
    let (bytes, content_type) = match name {
        "lib-jitsi-meet.min.js" => (LIB_JITSI_MEET, JS),
        "lib-jitsi-meet.e2ee-worker.js" => (E2EE_WORKER, JS),
        "jquery.min.js" => (JQUERY, JS),
        "oxbridge-meeting.js" => (MEETING_JS.as_bytes(), JS),
        "oxbridge-meeting.css" => (MEETING_CSS.as_bytes(), CSS),
        _ => return None,
    };
    (!bytes.is_empty()).then_some(Asset {
        bytes,
        content_type,
    })
}

/// A `Content-Type` for a file of the stock app, by extension.
pub(crate) fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => JS,
        Some("css") => CSS,
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("webp") => "image/webp",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("ogg") => "audio/ogg",
        Some("opus") => "audio/opus",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Escapes text for an HTML attribute or element body.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a room name for a URL path (UTF-8 bytes beyond `[A-Za-z0-9-_.]`).
pub(crate) fn path_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
