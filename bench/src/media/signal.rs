//! The XMPP side of a simulated participant, as lib-jitsi-meet does it
//! (protocol §1–§2): anonymous login, the conference request to the focus,
//! the MUC join, and stanzas read as elements with the IQs a client must
//! answer (ping, disco#info) answered on the way.

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use futures_util::StreamExt as _;
use minidom::{Element, NSChoice};
use tokio_rustls::rustls::ClientConfig;
use tokio_tungstenite::tungstenite::protocol::Message;

use super::args::Transport;
use crate::bosh::Bosh;
use crate::xmpp::{self, Ws};

const FOCUS_NS: &str = "http://jitsi.org/protocol/focus";
const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
const DISCO_INFO_NS: &str = "http://jabber.org/protocol/disco#info";
/// How long a leaving participant waits for the server to see it go.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Features we answer disco#info with: a Jitsi client doing audio and
/// video over bundled ICE, sources in XEP-0339 form (we do not ask for
/// JSON-encoded sources, so a stock Jicofo sends standard Jingle).
const FEATURES: &[&str] = &[
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:ietf:rfc:5761",
    "urn:ietf:rfc:5888",
    "http://jitsi.org/source-name",
    "http://jitsi.org/receive-multiple-video-streams",
    "http://jitsi.org/tcc",
];

/// The participant's XMPP connection.
enum Link {
    /// Boxed: a WebSocket stream is large next to the BOSH handle.
    WebSocket(Box<Ws>),
    Bosh(Bosh),
}

pub struct Signal {
    link: Link,
    pub jid: String,
    /// lib-jitsi-meet's endpoint ID: the first 8 hex digits of the JID's node.
    pub endpoint: String,
    pub room: String,
    next_id: u64,
}

impl Signal {
    pub async fn login(
        transport: Transport,
        url: &str,
        domain: &str,
        room: String,
        tls: Arc<ClientConfig>,
    ) -> anyhow::Result<Signal> {
        let (link, jid) = match transport {
            Transport::Websocket => {
                let s = xmpp::login_anonymous(url, domain, Some(tls)).await?;
                (Link::WebSocket(Box::new(s.ws)), s.jid)
            }
            Transport::Bosh => {
                let b = Bosh::login_anonymous(url, domain, tls).await?;
                let jid = b.jid.clone();
                (Link::Bosh(b), jid)
            }
        };
        let node = jid.split('@').next().unwrap_or_default();
        let hex: String = node
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(8)
            .collect();
        let endpoint = if hex.len() == 8 {
            hex.to_ascii_lowercase()
        } else {
            format!("{:08x}", fnv(node))
        };
        Ok(Signal {
            link,
            jid,
            endpoint,
            room,
            next_id: 0,
        })
    }

    pub fn occupant(&self) -> String {
        format!("{}/{}", self.room, self.endpoint)
    }

    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    pub async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        match &mut self.link {
            Link::WebSocket(ws) => xmpp::send(ws, text).await,
            Link::Bosh(b) => b.send(text),
        }
    }

    /// The next stanza as text; `None` when the connection has ended.
    /// Cancel-safe, for `select!`.
    pub async fn next_frame(&mut self) -> Option<String> {
        match &mut self.link {
            Link::WebSocket(ws) => xmpp::next_frame(ws).await,
            Link::Bosh(b) => b.next_stanza().await,
        }
    }

    /// The focus answers `ready='true'` once the room exists; `false` means
    /// ask again shortly (§2.1).
    pub async fn conference_request(&mut self, focus: &str) -> anyhow::Result<()> {
        loop {
            let id = self.id("conf");
            let machine = format!("bench{}", self.endpoint);
            let iq = format!(
                "<iq xmlns='jabber:client' type='set' id='{id}' to='{focus}'><conference xmlns='{FOCUS_NS}' room='{}' machine-uid='{machine}'>\
<property name='rtcstatsEnabled' value='false'/><property name='visitors-version' value='1'/></conference></iq>",
                self.room
            );
            self.send(&iq).await?;
            let answer = loop {
                let st = self.next_stanza().await?;
                if st.name() == "iq" && st.attr("id") == Some(id.as_str()) {
                    break st;
                }
            };
            if answer.attr("type") != Some("result") {
                bail!("conference request refused: {}", String::from(&answer));
            }
            let ready = answer
                .get_child("conference", FOCUS_NS)
                .and_then(|c| c.attr("ready"));
            if ready == Some("true") {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// The join presence, then our own presence back (status 110). Stanzas
    /// other than presence that arrive meanwhile are returned for later.
    pub async fn join_muc(&mut self, nick: &str, sending: bool) -> anyhow::Result<Vec<Element>> {
        let ep = &self.endpoint;
        let (source_info, muted) = if sending {
            (
                format!(
                    "{{\"{ep}-a0\":{{\"muted\":false}},\"{ep}-v0\":{{\"muted\":false,\"videoType\":\"camera\"}}}}"
                ),
                "false",
            )
        } else {
            ("{}".to_owned(), "true")
        };
        let presence = format!(
            "<presence xmlns='jabber:client' to='{}'><x xmlns='http://jabber.org/protocol/muc'/>\
<stats-id>bench-{ep}</stats-id><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='bench'/>\
<SourceInfo>{source_info}</SourceInfo><jitsi_participant_codecList>vp8</jitsi_participant_codecList>\
<nick xmlns='http://jabber.org/protocol/nick'>{nick}</nick><audiomuted>{muted}</audiomuted><videomuted>{muted}</videomuted></presence>",
            self.occupant()
        );
        self.send(&presence).await?;
        let me = self.occupant();
        let mut early = Vec::new();
        loop {
            let st = self.next_stanza().await?;
            if st.name() != "presence" {
                early.push(st);
                continue;
            }
            if st.attr("from") != Some(me.as_str()) {
                continue;
            }
            if st.attr("type") == Some("error") {
                bail!("MUC join refused: {}", String::from(&st));
            }
            let self_presence = st.get_child("x", MUC_USER_NS).is_some_and(|x| {
                x.children()
                    .any(|s| s.is("status", NSChoice::Any) && s.attr("code") == Some("110"))
            });
            if self_presence {
                return Ok(early);
            }
        }
    }

    /// The next stanza, after answering pings and disco#info; an error when
    /// the stream ends.
    pub async fn next_stanza(&mut self) -> anyhow::Result<Element> {
        loop {
            let frame = self
                .next_frame()
                .await
                .ok_or_else(|| anyhow!("XMPP connection closed"))?;
            if let Some(st) = self.handle_frame(&frame).await? {
                return Ok(st);
            }
        }
    }

    /// Parses one frame; answers what a client answers by itself.
    pub async fn handle_frame(&mut self, frame: &str) -> anyhow::Result<Option<Element>> {
        let st = parse(frame)?;
        match st.name() {
            "close" | "error" => bail!("server ended the stream: {frame}"),
            "iq" if matches!(st.attr("type"), Some("get")) => {
                let reply = self.answer_get(&st);
                self.send(&reply).await?;
                Ok(None)
            }
            _ => Ok(Some(st)),
        }
    }

    fn answer_get(&self, iq: &Element) -> String {
        let id = iq.attr("id").unwrap_or("");
        let to = iq.attr("from").unwrap_or("");
        if iq.has_child("query", DISCO_INFO_NS) {
            let features: String = FEATURES
                .iter()
                .map(|f| format!("<feature var='{f}'/>"))
                .collect();
            format!(
                "<iq xmlns='jabber:client' type='result' id='{id}' to='{to}'><query xmlns='{DISCO_INFO_NS}'>\
<identity category='client' type='web' name='bench'/>{features}</query></iq>"
            )
        } else {
            // Pings (XEP-0199) get an empty result; so does anything else.
            result(iq)
        }
    }

    pub async fn leave(mut self) {
        let bye = format!(
            "<presence xmlns='jabber:client' to='{}' type='unavailable'/>",
            self.occupant()
        );
        let _ = self.send(&bye).await;
        let ws = match self.link {
            Link::Bosh(b) => return b.close(LINGER).await,
            Link::WebSocket(ref mut ws) => ws,
        };
        let _ = xmpp::send(ws, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>").await;
        // Let the server see the close before the socket drops.
        let wait = async {
            while let Some(Ok(m)) = ws.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, wait).await;
    }
}

/// An empty IQ result for `iq`.
pub fn result(iq: &Element) -> String {
    format!(
        "<iq xmlns='jabber:client' type='result' id='{}' to='{}'/>",
        iq.attr("id").unwrap_or(""),
        iq.attr("from").unwrap_or("")
    )
}

/// A frame as an element; RFC 7395 frames declare their namespace, but be
/// lenient with servers that leave `jabber:client` implicit.
fn parse(frame: &str) -> anyhow::Result<Element> {
    match frame.parse::<Element>() {
        Ok(e) => Ok(e),
        Err(minidom::Error::MissingNamespace) => {
            let at = frame
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .context("unparsable frame")?;
            let fixed = format!("{} xmlns='jabber:client'{}", &frame[..at], &frame[at..]);
            fixed.parse().context("unparsable frame")
        }
        Err(e) => Err(anyhow!("unparsable frame ({e}): {frame}")),
    }
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x01000193)
    })
}
