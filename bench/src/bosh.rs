//! A minimal XMPP-over-BOSH client (XEP-0124, XEP-0206; http or https), for deployments or
//! scenarios where participants connect as Jitsi's BOSH clients do.
//!
//! [`Bosh::login_anonymous`] creates the session and logs in (SASL
//! ANONYMOUS, restart, bind) one request at a time; then a task keeps a long
//! poll open and sends queued stanzas in a second request, as Strophe does.
//! Stanzas come out one at a time, like frames of the WebSocket transport.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use minidom::Element;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

const HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
const XBOSH: &str = "urn:xmpp:xbosh";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Longest the server may hold a poll (seconds), as lib-jitsi-meet asks.
const WAIT_SECS: u64 = 60;
/// A request unanswered this long past `wait` is a dead connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(WAIT_SECS + 10);
/// Polls while logging in before giving up on an answer.
const LOGIN_POLLS: usize = 5;

/// A logged-in BOSH session.
pub struct Bosh {
    pub jid: String,
    outgoing: mpsc::UnboundedSender<String>,
    incoming: mpsc::UnboundedReceiver<String>,
    task: tokio::task::JoinHandle<()>,
}

type Connection = SendRequest<Full<Bytes>>;

/// Where requests go, and the idle keep-alive connections to it.
struct Endpoint {
    authority: String,
    path: String,
    /// For `https://`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    idle: Vec<Connection>,
}

impl Endpoint {
    fn parse(url: &str, tls: Arc<ClientConfig>) -> anyhow::Result<Endpoint> {
        let (secure, rest) = match url.split_once("://") {
            Some(("http", rest)) => (false, rest),
            Some(("https", rest)) => (true, rest),
            _ => bail!("BOSH needs an http:// or https:// URL: {url}"),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, "http-bind"));
        let tls = if secure {
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())?;
            Some((TlsConnector::from(tls), name))
        } else {
            None
        };
        let authority = match (authority.contains(':'), secure) {
            (true, _) => authority.to_owned(),
            (false, false) => format!("{authority}:80"),
            (false, true) => format!("{authority}:443"),
        };
        Ok(Endpoint {
            authority,
            path: format!("/{path}"),
            tls,
            idle: Vec::new(),
        })
    }

    async fn connection(&mut self) -> anyhow::Result<Connection> {
        while let Some(c) = self.idle.pop() {
            if c.is_ready() {
                return Ok(c);
            }
        }
        let tcp = TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("connect to {}", self.authority))?;
        tcp.set_nodelay(true)?;
        if let Some((connector, name)) = &self.tls {
            let stream = connector.connect(name.clone(), tcp).await?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            return Ok(sender);
        }
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }

    fn request(&self, body: String) -> hyper::Request<Full<Bytes>> {
        hyper::Request::post(&self.path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .expect("a request from valid parts")
    }
}

/// One request on `conn`; the connection comes back for reuse.
async fn exchange(
    mut conn: Connection,
    request: hyper::Request<Full<Bytes>>,
) -> (Connection, anyhow::Result<Element>) {
    let answer = async {
        let response = tokio::time::timeout(REQUEST_TIMEOUT, conn.send_request(request))
            .await
            .context("BOSH request timed out")??;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let text = std::str::from_utf8(&bytes).context("BOSH body is not UTF-8")?;
        if !status.is_success() {
            bail!("BOSH request answered {status}: {text}");
        }
        let body: Element = text.parse().with_context(|| format!("BOSH body: {text}"))?;
        if body.attr("type") == Some("terminate") {
            bail!("the server ended the BOSH session: {text}");
        }
        Ok(body)
    }
    .await;
    (conn, answer)
}

/// The session as it is being set up, one request at a time.
struct Setup {
    endpoint: Endpoint,
    sid: String,
    rid: u64,
}

impl Setup {
    fn body(&mut self, attrs: &str, payload: &str) -> String {
        self.rid += 1;
        format!(
            "<body xmlns='{HTTPBIND}' rid='{}' sid='{}'{attrs}>{payload}</body>",
            self.rid, self.sid
        )
    }

    /// Sends `payload`, then polls until a child matching `wanted` arrives.
    async fn until(
        &mut self,
        attrs: &str,
        payload: &str,
        what: &str,
        wanted: impl Fn(&Element) -> bool,
    ) -> anyhow::Result<Element> {
        let mut body = self.body(attrs, payload);
        for _ in 0..LOGIN_POLLS {
            let conn = self.endpoint.connection().await?;
            let (conn, answer) = exchange(conn, self.endpoint.request(body)).await;
            self.endpoint.idle.push(conn);
            if let Some(found) = answer?.children().find(|c| wanted(c)) {
                return Ok(found.clone());
            }
            body = self.body("", "");
        }
        bail!("no {what} from the BOSH server")
    }
}

impl Bosh {
    /// Creates the session at `url` (the `/http-bind` URL), logs in with SASL
    /// ANONYMOUS and binds a resource; `tls` is for `https://`.
    pub async fn login_anonymous(
        url: &str,
        domain: &str,
        tls: Arc<ClientConfig>,
    ) -> anyhow::Result<Bosh> {
        let mut endpoint = Endpoint::parse(url, tls)?;
        let rid = u64::from(rand_u32()) << 8;
        let create = format!(
            "<body xmlns='{HTTPBIND}' xmlns:xmpp='{XBOSH}' content='text/xml; charset=utf-8' hold='1' \
rid='{rid}' to='{domain}' ver='1.6' wait='{WAIT_SECS}' xml:lang='en' xmpp:version='1.0'/>"
        );
        let conn = endpoint.connection().await?;
        let (conn, answer) = exchange(conn, endpoint.request(create)).await;
        endpoint.idle.push(conn);
        let created = answer?;
        let sid = created
            .attr("sid")
            .ok_or_else(|| anyhow!("session creation answered without a sid"))?
            .to_owned();
        let requests = created
            .attr("requests")
            .and_then(|r| r.parse().ok())
            .unwrap_or(2usize)
            .max(2);
        let mut setup = Setup { endpoint, sid, rid };
        let features = |c: &Element| c.name() == "features";
        if !created.children().any(features) {
            setup.until("", "", "stream features", features).await?;
        }
        let auth = format!("<auth xmlns='{SASL}' mechanism='ANONYMOUS'/>");
        let sasl = setup
            .until("", &auth, "SASL answer", |c| {
                matches!(c.name(), "success" | "failure")
            })
            .await?;
        if sasl.name() == "failure" {
            bail!("SASL ANONYMOUS refused: {}", String::from(&sasl));
        }
        let restart =
            format!(" xmlns:xmpp='{XBOSH}' to='{domain}' xml:lang='en' xmpp:restart='true'");
        setup
            .until(&restart, "", "stream features after SASL", features)
            .await?;
        let bind =
            format!("<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='{BIND}'/></iq>");
        let bound = setup
            .until("", &bind, "bind result", |c| c.name() == "iq")
            .await?;
        let jid = bound
            .get_child("bind", BIND)
            .and_then(|b| b.get_child("jid", BIND))
            .map(|j| j.text())
            .ok_or_else(|| anyhow!("bind result without a jid: {}", String::from(&bound)))?;
        let (outgoing, queued) = mpsc::unbounded_channel();
        let (deliver, incoming) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(setup, requests, queued, deliver));
        Ok(Bosh {
            jid,
            outgoing,
            incoming,
            task,
        })
    }

    /// Queues a stanza; it leaves in the next request.
    pub fn send(&self, stanza: &str) -> anyhow::Result<()> {
        self.outgoing
            .send(stanza.to_owned())
            .map_err(|_| anyhow!("the BOSH session has ended"))
    }

    /// The next stanza from the server; `None` once the session has ended.
    pub async fn next_stanza(&mut self) -> Option<String> {
        self.incoming.recv().await
    }

    /// Sends what is queued with a terminate, waiting at most `linger`.
    pub async fn close(self, linger: Duration) {
        drop(self.outgoing);
        let _ = tokio::time::timeout(linger, self.task).await;
    }
}

/// Keeps one poll open and sends queued stanzas alongside it, at most
/// `requests` requests at a time; ends (with a terminate) when the owner
/// drops the session, or when the server ends it.
async fn run(
    mut setup: Setup,
    requests: usize,
    mut queued: mpsc::UnboundedReceiver<String>,
    deliver: mpsc::UnboundedSender<String>,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut waiting = String::new();
    let mut open = true;
    loop {
        while open && in_flight.len() < requests && (!waiting.is_empty() || in_flight.is_empty()) {
            let payload = std::mem::take(&mut waiting);
            let body = setup.body("", &payload);
            let Ok(conn) = setup.endpoint.connection().await else {
                return;
            };
            in_flight.push(exchange(conn, setup.endpoint.request(body)));
        }
        tokio::select! {
            Some((conn, answer)) = in_flight.next() => {
                let Ok(body) = answer else { return };
                setup.endpoint.idle.push(conn);
                for child in body.children() {
                    if deliver.send(String::from(child)).is_err() {
                        open = false;
                    }
                }
            }
            stanza = queued.recv(), if open => match stanza {
                Some(s) => waiting.push_str(&s),
                None => open = false,
            },
        }
        if !open {
            let bye = setup.body(" type='terminate'", &waiting);
            if let Ok(conn) = setup.endpoint.connection().await {
                let _ = exchange(conn, setup.endpoint.request(bye)).await;
            }
            return;
        }
    }
}

/// A random starting request id, as XEP-0124 asks.
fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}
