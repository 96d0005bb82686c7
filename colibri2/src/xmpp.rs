//! An outbound XMPP client connection, as Videobridge makes one to Prosody's
//! internal domain: TCP, STARTTLS (required: Colibri2 carries participants'
//! ICE credentials), SASL SCRAM-SHA-1 or else PLAIN, resource binding.
//! Stanzas in and out are [`Element`]s.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use signaling::ns;
use signaling::xml::{Element, Limits, StreamEvent, StreamParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::scram::{Scram, ScramError};

/// Where and as whom to log in.
#[derive(Clone)]
pub struct ClientConfig {
    /// `host:port` of the server's client listener.
    pub server: String,
    /// The account's domain (Jitsi's `auth.<domain>`).
    pub domain: String,
    pub username: String,
    pub password: String,
    pub resource: String,
    /// PEM certificates to trust for STARTTLS; the system's roots when unset.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ClientConfig {
    /// Everything but the password, which must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("resource", &self.resource)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be made or went down.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server sent malformed XML: {0}")]
    Xml(String),
    #[error("the server closed the stream")]
    Closed,
    #[error("stream error from the server: {0}")]
    Stream(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server offers no mechanism we can use safely ({0})")]
    NoMechanism(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("SCRAM: {0}")]
    Scram(#[from] ScramError),
    #[error("the server answered unexpectedly: {0}")]
    Protocol(String),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A bound client session.
pub struct Connection {
    io: Box<dyn Io>,
    parser: StreamParser,
    events: std::collections::VecDeque<StreamEvent>,
    /// The full JID the server bound.
    pub jid: String,
}

impl Connection {
    /// Connects, secures, authenticates and binds.
    pub async fn connect(config: &ClientConfig) -> Result<Connection, ClientError> {
        let tcp = TcpStream::connect(&config.server).await?;
        tcp.set_nodelay(true)?;
        let mut c = Connection {
            io: Box::new(tcp),
            parser: StreamParser::new(Limits::default()),
            events: Default::default(),
            jid: String::new(),
        };
        let features = c.open(&config.domain).await?;
        if features.child("starttls", ns::TLS).is_none() {
            return Err(ClientError::Tls(
                "the server offers no STARTTLS: the password and the participants' ICE credentials would cross in the clear".into(),
            ));
        }
        c.send(&Element::new("starttls", ns::TLS)).await?;
        let answer = c.next().await?;
        if !answer.is("proceed", ns::TLS) {
            return Err(ClientError::Tls(format!(
                "STARTTLS refused: <{}/>",
                answer.name()
            )));
        }
        c.start_tls(config).await?;
        let features = c.open(&config.domain).await?;
        c.authenticate(config, &features).await?;
        let features = c.open(&config.domain).await?;
        if features.child("bind", ns::BIND).is_none() {
            return Err(ClientError::Protocol("no resource binding offered".into()));
        }
        c.bind(&config.resource).await?;
        Ok(c)
    }

    /// Opens a (new) stream and returns its features.
    async fn open(&mut self, domain: &str) -> Result<Element, ClientError> {
        self.parser = StreamParser::new(Limits::default());
        self.events.clear();
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' version='1.0'>",
            ns::CLIENT,
            ns::STREAM,
            signaling::xml::escape(domain)
        );
        self.io.write_all(header.as_bytes()).await?;
        let features = self.next().await?;
        if !features.is("features", ns::STREAM) {
            return Err(ClientError::Protocol(format!(
                "expected stream features, got <{}/>",
                features.name()
            )));
        }
        Ok(features)
    }

    async fn start_tls(&mut self, config: &ClientConfig) -> Result<(), ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?
                {
                    let cert =
                        cert.map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(config.domain.clone())
            .map_err(|e| ClientError::Tls(format!("server name {}: {e}", config.domain)))?;
        // The TCP stream moves into TLS; a closed pipe stands in meanwhile.
        let io = std::mem::replace(&mut self.io, Box::new(tokio::io::duplex(1).0));
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, io)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        self.io = Box::new(stream);
        Ok(())
    }

    async fn authenticate(
        &mut self,
        config: &ClientConfig,
        features: &Element,
    ) -> Result<(), ClientError> {
        let offered: Vec<String> = features
            .child("mechanisms", ns::SASL)
            .map(|m| m.children().map(|c| c.text()).collect())
            .unwrap_or_default();
        let has = |name: &str| offered.iter().any(|m| m == name);
        if has("SCRAM-SHA-1") {
            let mut scram = Scram::new(&config.username, &config.password);
            self.send(
                &Element::new("auth", ns::SASL)
                    .with_attr("mechanism", "SCRAM-SHA-1")
                    .with_text(B64.encode(scram.client_first())),
            )
            .await?;
            let challenge = self.sasl_step("challenge").await?;
            let last = scram.client_final(&challenge)?;
            self.send(&Element::new("response", ns::SASL).with_text(B64.encode(last)))
                .await?;
            let success = self.sasl_step("success").await?;
            scram.check_server_final(&success)?;
            Ok(())
        } else if has("PLAIN") {
            let plain = format!("\0{}\0{}", config.username, config.password);
            self.send(
                &Element::new("auth", ns::SASL)
                    .with_attr("mechanism", "PLAIN")
                    .with_text(B64.encode(plain)),
            )
            .await?;
            self.sasl_step("success").await.map(|_| ())
        } else {
            Err(ClientError::NoMechanism(offered.join(" ")))
        }
    }

    /// The next SASL element, which must be `expected`; its decoded text.
    async fn sasl_step(&mut self, expected: &str) -> Result<String, ClientError> {
        let el = self.next().await?;
        if el.is("failure", ns::SASL) {
            let why = el
                .first_child()
                .map(|c| c.name().to_owned())
                .unwrap_or_default();
            return Err(ClientError::Auth(why));
        }
        if !el.is(expected, ns::SASL) {
            return Err(ClientError::Protocol(format!(
                "expected <{expected}/>, got <{}/>",
                el.name()
            )));
        }
        let data = B64
            .decode(el.text().trim())
            .map_err(|_| ClientError::Protocol("SASL data is not base64".into()))?;
        String::from_utf8(data).map_err(|_| ClientError::Protocol("SASL data is not UTF-8".into()))
    }

    async fn bind(&mut self, resource: &str) -> Result<(), ClientError> {
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "bind")
            .with_child(
                Element::new("bind", ns::BIND)
                    .with_child(Element::new("resource", ns::BIND).with_text(resource)),
            );
        self.send(&iq).await?;
        let answer = self.next().await?;
        let jid = answer
            .child("bind", ns::BIND)
            .and_then(|b| b.child("jid", ns::BIND))
            .map(|j| j.text());
        match (answer.attr("type"), jid) {
            (Some("result"), Some(jid)) => {
                self.jid = jid;
                Ok(())
            }
            _ => Err(ClientError::Protocol("resource binding failed".into())),
        }
    }

    /// Sends one stanza (or stream-level element).
    pub async fn send(&mut self, el: &Element) -> Result<(), ClientError> {
        let mut out = String::with_capacity(256);
        el.write(&mut out, Some(ns::CLIENT));
        self.io.write_all(out.as_bytes()).await?;
        Ok(())
    }

    /// The next element from the server. Cancel-safe: nothing read is lost
    /// when the future is dropped.
    pub async fn next(&mut self) -> Result<Element, ClientError> {
        loop {
            while let Some(ev) = self.events.pop_front() {
                match ev {
                    StreamEvent::Open(_) => {}
                    StreamEvent::Close => return Err(ClientError::Closed),
                    StreamEvent::Stanza(el) if el.is("error", ns::STREAM) => {
                        let why = el
                            .first_child()
                            .map(|c| c.name().to_owned())
                            .unwrap_or_default();
                        return Err(ClientError::Stream(why));
                    }
                    StreamEvent::Stanza(el) => return Ok(el),
                }
            }
            let mut buf = [0u8; 8192];
            let n = self.io.read(&mut buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            let mut events = Vec::new();
            self.parser
                .feed(&buf[..n], &mut events)
                .map_err(|e| ClientError::Xml(e.to_string()))?;
            self.events.extend(events);
        }
    }
}
