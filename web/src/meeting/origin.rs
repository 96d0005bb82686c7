//! The origin (`scheme://host[:port]`) a browser used to reach us.
//!
//! config.js must hand the browser URLs it can reach: behind a proxy that is
//! the proxy's address (X-Forwarded-*), otherwise whatever the browser typed
//! (Host), so 127.0.0.1:8080 and localhost:8080 both work from one config.

use axum::http::{HeaderMap, Uri};

/// Works out the origin from the request, falling back to `public_url`
/// (then `http://localhost`) when the request names no usable host.
///
/// Precedence: `X-Forwarded-Host` / `X-Forwarded-Proto` (first value), then
/// `Host` (or the HTTP/2 authority) with `https` when served over TLS.
pub(crate) fn request_origin(
    headers: &HeaderMap,
    uri: &Uri,
    tls: bool,
    public_url: Option<&str>,
) -> String {
    let host = first_value(headers, "x-forwarded-host")
        .filter(|h| is_host(h))
        .or_else(|| header(headers, "host").filter(|h| is_host(h)))
        .or_else(|| uri.authority().map(|a| a.as_str()).filter(|h| is_host(h)));
    let Some(host) = host else {
        return match public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => "http://localhost".to_string(),
        };
    };
    let scheme = match first_value(headers, "x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ if tls || uri.scheme_str() == Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The WebSocket origin matching an HTTP one (`http` → `ws`, `https` → `wss`).
pub(crate) fn ws_origin(origin: &str) -> String {
    match origin.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{origin}"),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// Proxies append to these headers; the first value is the client-facing one.
fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header(headers, name)?
        .split(',')
        .next()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A host[:port] or [v6]:port with nothing that could break out of a URL or
/// the JavaScript string it ends up in.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(pairs: &[(&'static str, &'static str)], tls: bool, public: Option<&str>) -> String {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        request_origin(&h, &Uri::from_static("/config.js"), tls, public)
    }

    #[test]
    fn host_header_decides() {
        assert_eq!(
            origin(&[("host", "localhost:1234")], false, None),
            "http://localhost:1234"
        );
        assert_eq!(
            origin(&[("host", "127.0.0.1:8080")], true, None),
            "https://127.0.0.1:8080"
        );
    }

    #[test]
    fn forwarded_headers_win() {
        let h = [
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "meet.example.com"),
        ];
        assert_eq!(origin(&h, false, None), "https://meet.example.com");
    }

    #[test]
    fn hostile_or_missing_host_falls_back() {
        let public = Some("https://meet.example.com/");
        assert_eq!(
            origin(&[("host", "a\";alert(1)//")], false, public),
            "https://meet.example.com"
        );
        assert_eq!(origin(&[], false, None), "http://localhost");
    }

    #[test]
    fn websocket_scheme_follows() {
        assert_eq!(ws_origin("https://h:1"), "wss://h:1");
        assert_eq!(ws_origin("http://h"), "ws://h");
    }
}
