//! XEP-0114 external components: a TCP stream in `jabber:component:accept`,
//! a SHA-1 handshake with the configured secret, then the component's domain
//! is routed to it.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::hub::{Hub, Mailbox};
use crate::jid::Jid;
use crate::muc::Origin;
use crate::ns;
use crate::session::{StreamError, random_id};
use crate::xml::{Limits, StreamEvent, StreamParser, escape};

/// Accepts components on `listener` until shutdown.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(run(hub.clone(), stream, shutdown.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn stream_error(e: StreamError, text: &str) -> String {
    let mut s = String::new();
    super::write_stream_element(&mut s, &e.to_element(Some(text)), false);
    s.push_str("</stream:stream>");
    s
}

async fn run(
    hub: Arc<Hub>,
    mut stream: TcpStream,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let limits = Limits {
        max_stanza_bytes: hub.config.xmpp.limits.max_stanza_bytes,
        max_depth: hub.config.xmpp.limits.max_depth,
    };
    let mut parser = StreamParser::new(limits);
    let mut buf = vec![0u8; 16 * 1024];
    let mut events = Vec::new();
    let id = random_id();
    let mut domain: Option<String> = None;
    let mut mailbox_rx = None;
    let mut out = String::new();
    'conn: loop {
        if !out.is_empty() {
            if stream.write_all(out.as_bytes()).await.is_err() {
                break;
            }
            out.clear();
        }
        let n = if let Some(rx) = &mut mailbox_rx {
            let rx: &mut crate::hub::MailboxRx = rx;
            tokio::select! {
                r = stream.read(&mut buf) => r,
                Some(mut s) = rx.rx.recv() => {
                    s.rename_ns(ns::CLIENT, ns::COMPONENT);
                    s.write(&mut out, Some(ns::COMPONENT));
                    continue;
                }
                _ = shutdown.changed() => { out.push_str(&stream_error(StreamError::SystemShutdown, "server shutting down")); break; }
            }
        } else {
            match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => break,
            }
        };
        let Ok(n) = n else { break };
        if n == 0 {
            break;
        }
        if let Err(e) = parser.feed(&buf[..n], &mut events) {
            let cond = match e {
                crate::xml::ParseError::TooLarge(_) | crate::xml::ParseError::TooDeep(_) => {
                    StreamError::PolicyViolation
                }
                _ => StreamError::NotWellFormed,
            };
            out.push_str(&stream_error(cond, &e.to_string()));
            break;
        }
        for ev in events.drain(..) {
            match ev {
                StreamEvent::Open(h) => {
                    let to = h.attr("to").unwrap_or_default().to_lowercase();
                    out.push_str(&format!(
                        "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' id='{}' from='{}'>",
                        ns::COMPONENT,
                        ns::STREAM,
                        id,
                        escape(&to)
                    ));
                    if h.ns() != ns::STREAM
                        || !hub.config.xmpp.components.iter().any(|c| c.domain == to)
                    {
                        out.push_str(&stream_error(StreamError::HostUnknown, "no such component"));
                        break 'conn;
                    }
                    domain = Some(to);
                }
                StreamEvent::Stanza(el) if mailbox_rx.is_none() => {
                    let Some(d) = &domain else { break 'conn };
                    let secret = hub
                        .config
                        .xmpp
                        .components
                        .iter()
                        .find(|c| &c.domain == d)
                        .map(|c| c.secret.clone())
                        .unwrap_or_default();
                    let expected = hex(digest::digest(
                        &digest::SHA1_FOR_LEGACY_USE_ONLY,
                        format!("{id}{secret}").as_bytes(),
                    )
                    .as_ref());
                    if !el.is("handshake", ns::COMPONENT)
                        || aws_lc_rs::constant_time::verify_slices_are_equal(
                            el.text().trim().to_lowercase().as_bytes(),
                            expected.as_bytes(),
                        )
                        .is_err()
                    {
                        out.push_str(&stream_error(StreamError::NotAuthorized, "bad handshake"));
                        break 'conn;
                    }
                    let (mailbox, rx) = Mailbox::new(hub.config.xmpp.limits.max_queued_stanzas);
                    if !hub.register_component(d, mailbox) {
                        out.push_str(&stream_error(
                            StreamError::Conflict,
                            "component already connected",
                        ));
                        break 'conn;
                    }
                    out.push_str("<handshake/>");
                    mailbox_rx = Some(rx);
                }
                StreamEvent::Stanza(mut el) => {
                    let d = domain.as_deref().unwrap_or_default();
                    el.rename_ns(ns::COMPONENT, ns::CLIENT);
                    let from_ok = el
                        .attr("from")
                        .and_then(|f| Jid::parse(f).ok())
                        .is_some_and(|f| f.domain() == d || f.domain().ends_with(&format!(".{d}")));
                    if !from_ok {
                        out.push_str(&stream_error(
                            StreamError::InvalidFrom,
                            "from must be in the component's domain",
                        ));
                        break 'conn;
                    }
                    hub.route(el, Origin::default());
                }
                StreamEvent::Close => {
                    out.push_str("</stream:stream>");
                    break 'conn;
                }
            }
        }
    }
    if !out.is_empty() {
        let _ = stream.write_all(out.as_bytes()).await;
    }
    let _ = stream.shutdown().await;
    if let (Some(d), Some(_)) = (&domain, &mailbox_rx) {
        hub.unregister_component(d);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
