//! XMPP over WebSocket (RFC 7395): one element per text frame, sub-protocol `xmpp`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use super::{Link, LinkEvent, drive, parse_error, write_stream_element, ws_open};
use crate::http::AppState;
use crate::hub::Hub;
use crate::ns;
use crate::session::{ConnectParams, Output, Session, StreamError, TransportKind};
use crate::xml::{Limits, StreamEvent, StreamParser};

/// One WebSocket connection.
pub struct WsLink {
    socket: WebSocket,
    parser: StreamParser,
    events: VecDeque<LinkEvent>,
}

impl Link for WsLink {
    fn kind(&self) -> TransportKind {
        TransportKind::WebSocket
    }

    async fn recv(&mut self) -> Option<LinkEvent> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            let text = match self.socket.next().await? {
                Ok(Message::Text(t)) => t,
                Ok(Message::Binary(_)) => {
                    return Some(LinkEvent::Error(
                        StreamError::BadFormat,
                        "binary frames are not XMPP".into(),
                    ));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            };
            let mut evs = Vec::new();
            if let Err(e) = self.parser.feed(text.as_bytes(), &mut evs) {
                return Some(parse_error(&e));
            }
            if self.parser.pending_bytes() > 0 || evs.len() != 1 {
                return Some(LinkEvent::Error(
                    StreamError::BadFormat,
                    "a frame must hold exactly one complete element".into(),
                ));
            }
            let Some(StreamEvent::Stanza(el)) = evs.pop() else {
                return Some(LinkEvent::Error(
                    StreamError::BadFormat,
                    "unexpected end of stream".into(),
                ));
            };
            let ev = if el.ns() == ns::FRAMING {
                match el.name() {
                    "open" => LinkEvent::Open(el),
                    "close" => LinkEvent::Close,
                    _ => LinkEvent::Error(StreamError::BadFormat, "unknown framing element".into()),
                }
            } else {
                LinkEvent::Stanza(el)
            };
            self.events.push_back(ev);
        }
    }

    async fn send(&mut self, out: &[Output]) -> std::io::Result<()> {
        let err = |_| std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        for o in out {
            let frame = match o {
                Output::Open { id, from } => ws_open(id, from),
                Output::Send(el) if el.ns() == ns::STREAM => {
                    let mut s = String::new();
                    write_stream_element(&mut s, el, true);
                    s
                }
                Output::Send(el) => el.to_xml(),
                Output::Close(e) => {
                    if let Some((e, t)) = e {
                        let mut s = String::new();
                        write_stream_element(&mut s, &e.to_element(t.as_deref()), true);
                        self.socket
                            .feed(Message::Text(s.into()))
                            .await
                            .map_err(err)?;
                    }
                    self.socket
                        .feed(Message::Text(
                            format!("<close xmlns='{}'/>", ns::FRAMING).into(),
                        ))
                        .await
                        .map_err(err)?;
                    self.socket.flush().await.map_err(err)?;
                    let _ = self.socket.send(Message::Close(None)).await;
                    continue;
                }
                _ => continue,
            };
            self.socket
                .feed(Message::Text(frame.into()))
                .await
                .map_err(err)?;
        }
        self.socket.flush().await.map_err(err)
    }
}

/// `GET /xmpp-websocket`: upgrades with sub-protocol `xmpp`; a plain GET is the
/// client's keep-alive and gets 200.
pub async fn handler(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        // Pages served from another origin (an embedding site) make this
        // request too; without the header the browser reports it failed.
        return (
            axum::http::StatusCode::OK,
            [(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
            "",
        )
            .into_response();
    };
    let hub = state.hub.clone();
    let params = ConnectParams {
        token: query.get("token").cloned(),
        previd: query.get("previd").cloned(),
    };
    let max = hub.config.xmpp.limits.max_stanza_bytes;
    let shutdown = state.shutdown.clone();
    // tungstenite's 128 KiB default buffers would be zeroed on every read and
    // cost 256 KiB per idle session; stanzas are small. Frames fed together
    // (a batch of deliveries) still leave in one write up to 8 KiB.
    upgrade
        .protocols(["xmpp"])
        .read_buffer_size(4096)
        .write_buffer_size(8192)
        .max_message_size(max.max(4 << 20))
        .on_upgrade(move |socket| run(hub, socket, params, shutdown))
}

async fn run(
    hub: Arc<Hub>,
    socket: WebSocket,
    params: ConnectParams,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let limits = Limits {
        max_stanza_bytes: hub.config.xmpp.limits.max_stanza_bytes,
        max_depth: hub.config.xmpp.limits.max_depth,
    };
    let link = WsLink {
        socket,
        parser: StreamParser::framed(limits),
        events: VecDeque::new(),
    };
    let session = Session::new(hub.env.clone(), TransportKind::WebSocket, params);
    drive(hub, link, session, shutdown).await;
}
