//! A minimal XMPP-over-WebSocket client (RFC 7395): just what a simulated
//! participant needs, written against the wire so it works with any server.
//!
//! RFC 7395 puts exactly one top-level element in each frame, so frames are
//! classified by their opening tag without a full XML parser.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A logged-in session.
pub struct Session {
    pub ws: Ws,
    pub jid: String,
}

/// Connects, authenticates with SASL ANONYMOUS and binds a resource.
/// `tls` is for `wss://` (default: the system's roots).
pub async fn login_anonymous(
    url: &str,
    domain: &str,
    tls: Option<Arc<ClientConfig>>,
) -> anyhow::Result<Session> {
    let mut req = url.into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(
            req,
            Some(crate::websocket::small_buffers()),
            true,
            tls.map(Connector::Rustls),
        ),
    )
    .await
    .context("websocket connect timed out")?
    .context("websocket connect")?;
    let open = format!("<open xmlns='{FRAMING}' to='{domain}' version='1.0'/>");
    send(&mut ws, &open).await?;
    until(&mut ws, "<stream:features", "stream features").await?;
    send(
        &mut ws,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>",
    )
    .await?;
    let answer = until_any(&mut ws, &["<success", "<failure"], "SASL answer").await?;
    if answer.starts_with("<failure") {
        bail!("SASL ANONYMOUS refused: {answer}");
    }
    send(&mut ws, &open).await?;
    until(&mut ws, "<stream:features", "stream features after SASL").await?;
    send(
        &mut ws,
        "<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    )
    .await?;
    let bound = until(&mut ws, "<iq", "bind result").await?;
    let jid = text_of(&bound, "jid").ok_or_else(|| anyhow!("bind result without jid: {bound}"))?;
    Ok(Session {
        ws,
        jid: jid.to_owned(),
    })
}

pub async fn send(ws: &mut Ws, text: &str) -> anyhow::Result<()> {
    ws.send(Message::text(text)).await.context("websocket send")
}

/// The next XML frame (pings and binary frames skipped); `None` when closed.
pub async fn next_frame(ws: &mut Ws) -> Option<String> {
    while let Some(msg) = ws.next().await {
        match msg.ok()? {
            Message::Text(t) => return Some(t.as_str().to_owned()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

/// Waits for a frame starting with `prefix`, skipping others.
pub async fn until(ws: &mut Ws, prefix: &str, what: &str) -> anyhow::Result<String> {
    until_any(ws, &[prefix], what).await
}

pub async fn until_any(ws: &mut Ws, prefixes: &[&str], what: &str) -> anyhow::Result<String> {
    let wait = async {
        loop {
            let frame = next_frame(ws)
                .await
                .ok_or_else(|| anyhow!("connection closed waiting for {what}"))?;
            let frame_start = frame.trim_start();
            if frame_start.starts_with("<stream:error") || frame_start.starts_with("<close") {
                bail!("server ended the stream waiting for {what}: {frame}");
            }
            if prefixes.iter().any(|p| frame_start.starts_with(p)) {
                return Ok(frame);
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, wait)
        .await
        .map_err(|_| anyhow!("timed out waiting for {what}"))?
}

/// Text of the first `<name>` or `<name ...>` element in `xml`.
pub fn text_of<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = xml.find(&format!("<{name}"))?;
    let rest = &xml[open + name.len() + 1..];
    if !rest.starts_with(['>', ' ', '/']) {
        return None;
    }
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(&rest[start..start + end])
}

/// The value of attribute `name` on the first element of `xml`.
pub fn attr<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let head = &xml[..xml.find('>').unwrap_or(xml.len())];
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(i) = head.find(&key) {
            let rest = &head[i + key.len()..];
            return rest.find(quote).map(|e| &rest[..e]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_and_attributes() {
        let iq = "<iq type=\"result\" id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@b/c</jid></bind></iq>";
        assert_eq!(text_of(iq, "jid"), Some("a@b/c"));
        assert_eq!(attr(iq, "type"), Some("result"));
        assert_eq!(attr(iq, "id"), Some("bind"));
        assert_eq!(attr(iq, "to"), None);
        assert_eq!(
            text_of("<presence><statusx>1</statusx></presence>", "status"),
            None
        );
    }
}
