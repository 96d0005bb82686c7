//! Client-to-server TCP with STARTTLS (RFC 6120).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{Link, LinkEvent, drive, parse_error, write_stream_element};
use crate::hub::Hub;
use crate::ns;
use crate::session::{ConnectParams, Output, Session, StreamError, TransportKind};
use crate::xml::{Limits, StreamEvent, StreamParser, escape};

/// A stream header must arrive this soon after connecting.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long, and how much, a closed stream's leftover input is drained.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 << 20;

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

/// One client TCP connection.
pub struct TcpLink {
    conn: Conn,
    tls: Option<TlsAcceptor>,
    parser: StreamParser,
    limits: Limits,
    events: VecDeque<LinkEvent>,
    buf: Vec<u8>,
    opened: bool,
}

impl TcpLink {
    pub fn new(stream: TcpStream, tls: Option<TlsAcceptor>, limits: Limits) -> TcpLink {
        TcpLink {
            conn: Conn::Plain(stream),
            tls,
            parser: StreamParser::new(limits),
            limits,
            events: VecDeque::new(),
            buf: vec![0u8; 16 * 1024],
            opened: false,
        }
    }

    async fn read(&mut self) -> std::io::Result<usize> {
        match &mut self.conn {
            Conn::Plain(s) => s.read(&mut self.buf).await,
            Conn::Tls(s) => s.read(&mut self.buf).await,
            Conn::Gone => Ok(0),
        }
    }

    /// After our closing stream error, reads and discards what the peer still
    /// sends for a moment: closing a socket with unread input makes the kernel
    /// answer with a reset, which can destroy the stream error on its way.
    async fn linger(&mut self) {
        let mut budget = LINGER_BYTES;
        let drain = async {
            while budget > 0 {
                match self.read().await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => budget = budget.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match &mut self.conn {
            Conn::Plain(s) => s.write_all(data).await,
            Conn::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Conn::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Link for TcpLink {
    fn kind(&self) -> TransportKind {
        TransportKind::Tcp {
            tls: matches!(self.conn, Conn::Tls(_)),
            tls_available: self.tls.is_some(),
        }
    }

    async fn recv(&mut self) -> Option<LinkEvent> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            let n = if self.opened {
                self.read().await.ok()?
            } else {
                tokio::time::timeout(HEADER_TIMEOUT, self.read())
                    .await
                    .ok()?
                    .ok()?
            };
            if n == 0 {
                return None;
            }
            let mut evs = Vec::new();
            let data = self.buf[..n].to_vec();
            let result = self.parser.feed(&data, &mut evs);
            for ev in evs {
                self.events.push_back(match ev {
                    StreamEvent::Open(h) => {
                        self.opened = true;
                        if h.name() != "stream" || h.ns() != ns::STREAM {
                            LinkEvent::Error(
                                StreamError::InvalidNamespace,
                                "expected <stream:stream>".into(),
                            )
                        } else {
                            LinkEvent::Open(h)
                        }
                    }
                    StreamEvent::Stanza(s) => LinkEvent::Stanza(s),
                    StreamEvent::Close => LinkEvent::Close,
                });
            }
            if let Err(e) = result {
                self.opened = true;
                self.events.push_back(parse_error(&e));
            }
        }
    }

    async fn send(&mut self, out: &[Output]) -> std::io::Result<()> {
        let mut text = String::new();
        for o in out {
            match o {
                Output::Open { id, from } => {
                    text.push_str(&format!(
                        "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' id='{}' from='{}' version='1.0' xml:lang='en'>",
                        ns::CLIENT,
                        ns::STREAM,
                        escape(id),
                        escape(from)
                    ));
                }
                Output::Send(el) if el.ns() == ns::STREAM => {
                    write_stream_element(&mut text, el, false)
                }
                Output::Send(el) => el.write(&mut text, Some(ns::CLIENT)),
                Output::Close(err) => {
                    if let Some((e, t)) = err {
                        write_stream_element(&mut text, &e.to_element(t.as_deref()), false);
                    }
                    text.push_str("</stream:stream>");
                }
                _ => {}
            }
        }
        self.write_all(text.as_bytes()).await?;
        if out.iter().any(|o| matches!(o, Output::Close(_))) {
            if let Conn::Plain(s) = &mut self.conn {
                let _ = s.shutdown().await;
            } else if let Conn::Tls(s) = &mut self.conn {
                let _ = s.shutdown().await;
            }
            self.linger().await;
        }
        Ok(())
    }

    async fn start_tls(&mut self) -> std::io::Result<()> {
        let Some(acceptor) = self.tls.clone() else {
            return Err(std::io::Error::other("no TLS configured"));
        };
        let Conn::Plain(plain) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err(std::io::Error::other("TLS already on"));
        };
        let tls = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(plain))
            .await
            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
        self.conn = Conn::Tls(Box::new(tls));
        self.restart();
        Ok(())
    }

    fn restart(&mut self) {
        self.parser = StreamParser::new(self.limits);
        self.events.clear();
    }
}

/// Accepts client connections on `listener` until shutdown.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let limits = Limits {
        max_stanza_bytes: hub.config.xmpp.limits.max_stanza_bytes,
        max_depth: hub.config.xmpp.limits.max_depth,
    };
    let mut stop = shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let link = TcpLink::new(stream, tls.clone(), limits);
        let session = Session::new(hub.env.clone(), link.kind(), ConnectParams::default());
        tokio::spawn(drive(hub.clone(), link, session, shutdown.clone()));
    }
}
