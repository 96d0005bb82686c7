//! The DTLS stack of every endpoint. In the server role, the one every Jitsi
//! client gives the bridge, it is our own ([`server`]): the server picks the
//! SRTP profile, and ours picks Videobridge's (AEAD_AES_128_GCM first) where
//! str0m's stack (dimpl) would pick AES-256-GCM. In the client role it is
//! dimpl's, with one configuration shared by all endpoints instead of one
//! built per endpoint: building one validates the crypto provider (key
//! exchanges and signatures on every curve), about a millisecond during which
//! the worker creating the endpoint forwards nothing for anyone.
//!
//! Each association also has a [`DtlsTap`], its endpoint's side door: the
//! remote certificate is checked here against the signalled fingerprint with
//! whichever hash the client named (str0m knows SHA-256 and SHA-1 only; RFC
//! 8122 allows SHA-384 and SHA-512 too), and an association whose certificate
//! does not match goes no further: no keys, no data channel. The SRTP keying
//! material is taken from it as it passes, for the endpoint's own media path.

mod certificate;
mod error;
mod fragment;
mod keys;
mod message;
mod record;
mod server;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;

use str0m::crypto::dtls::DtlsVersion;
use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, ProtocolVersion,
};
use str0m::crypto::{CryptoError, CryptoProvider};

use error::Error;
use server::{Event, Server};

/// The crypto provider endpoints are built with: the default one with
/// [`SharedConfigDtls`] as its DTLS provider.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = str0m::crypto::from_feature_flags();
            provider.dtls_provider = &DTLS;
            Arc::new(provider)
        })
        .clone()
}

/// dimpl's MTU when str0m gives none.
const DEFAULT_MTU: usize = 1150;

static DTLS: SharedConfigDtls = SharedConfigDtls {
    configs: Mutex::new(Vec::new()),
};

/// Hands out DTLS instances that share a validated configuration (one per MTU).
#[derive(Debug)]
struct SharedConfigDtls {
    configs: Mutex<Vec<(Option<usize>, Arc<dimpl::Config>)>>,
}

impl SharedConfigDtls {
    fn config(&self, mtu: Option<usize>) -> Result<Arc<dimpl::Config>, CryptoError> {
        let mut configs = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, config)) = configs.iter().find(|(m, _)| *m == mtu) {
            return Ok(config.clone());
        }
        // ICE has checked the return route before DTLS starts: no cookie exchange.
        let mut builder = dimpl::Config::builder().use_server_cookie(false);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        let config = Arc::new(
            builder
                .build()
                .map_err(|e| CryptoError::Other(format!("DTLS configuration: {e}")))?,
        );
        configs.push((mtu, config.clone()));
        Ok(config)
    }
}

impl DtlsProvider for SharedConfigDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let config = self.config(mtu)?;
        let own_server = (version == DtlsVersion::Dtls12).then(|| (cert.clone(), mtu));
        let cert = dimpl::DtlsCertificate {
            certificate: cert.certificate.clone(),
            private_key: cert.private_key.clone(),
        };
        let dtls = match version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
            other => {
                return Err(CryptoError::Other(format!(
                    "unsupported DTLS version {other}"
                )));
            }
        };
        let tap = DtlsTap::default();
        CREATED.with(|c| *c.borrow_mut() = Some(tap.clone()));
        Ok(Box::new(Dtls {
            inner: Inner::Dimpl(Box::new(dtls)),
            own_server,
            tap,
            refused: false,
            waiting: None,
            now,
        }))
    }
}

thread_local! {
    /// The tap of the association str0m made last on this thread: `Rtc`
    /// makes its DTLS instance while it is built, and the endpoint building it
    /// takes the tap right after ([`take_created_tap`]).
    static CREATED: RefCell<Option<DtlsTap>> = const { RefCell::new(None) };
}

/// The tap of the DTLS association made by the `Rtc` this thread built last.
pub(crate) fn take_created_tap() -> Option<DtlsTap> {
    CREATED.with(|c| c.borrow_mut().take())
}

/// Shared between an endpoint and its DTLS association inside str0m.
#[derive(Clone, Debug, Default)]
pub(crate) struct DtlsTap(Arc<TapState>);

#[derive(Debug, Default)]
struct TapState {
    /// The fingerprint the client signalled: hash name (lower case) and digest.
    expected: Mutex<Option<(String, Vec<u8>)>>,
    /// The remote certificate did not match it.
    refused: AtomicBool,
    /// Keying material waits in `keys`: one load per check, a lock once.
    keys_ready: AtomicBool,
    keys: Mutex<Option<SrtpKeys>>,
}

/// What DTLS-SRTP exported (RFC 5764 §4.2) and which side this is.
pub(crate) struct SrtpKeys {
    pub material: Vec<u8>,
    pub profile: crate::srtp::Profile,
    pub dtls_client: bool,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl DtlsTap {
    /// The fingerprint the remote certificate must have.
    pub fn expect(&self, hash: &str, digest: Vec<u8>) {
        *self.0.expected.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((hash.to_owned(), digest));
    }

    /// Whether the association was refused for a certificate that did not match.
    pub fn refused(&self) -> bool {
        self.0.refused.load(Ordering::Relaxed)
    }

    /// The keying material, once, when the handshake has exported it.
    pub fn take_keys(&self) -> Option<SrtpKeys> {
        if !self.0.keys_ready.load(Ordering::Acquire) {
            return None;
        }
        self.0.keys_ready.store(false, Ordering::Relaxed);
        self.0.keys.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn put_keys(&self, keys: SrtpKeys) {
        *self.0.keys.lock().unwrap_or_else(|e| e.into_inner()) = Some(keys);
        self.0.keys_ready.store(true, Ordering::Release);
    }

    fn check(&self, certificate: &[u8]) -> bool {
        let expected = self.0.expected.lock().unwrap_or_else(|e| e.into_inner());
        let matches = expected.as_ref().is_some_and(|(hash, wanted)| {
            fingerprint_algorithm(hash).is_some_and(|algorithm| {
                verify_slices_are_equal(digest::digest(algorithm, certificate).as_ref(), wanted)
                    .is_ok()
            })
        });
        if !matches {
            self.0.refused.store(true, Ordering::Relaxed);
        }
        matches
    }
}

/// The digest behind an RFC 8122 hash function name (lower case).
pub(crate) fn fingerprint_algorithm(hash: &str) -> Option<&'static digest::Algorithm> {
    match hash {
        "sha-1" => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        "sha-224" => Some(&digest::SHA224),
        "sha-256" => Some(&digest::SHA256),
        "sha-384" => Some(&digest::SHA384),
        "sha-512" => Some(&digest::SHA512),
        _ => None,
    }
}

/// One endpoint's DTLS association.
struct Dtls {
    inner: Inner,
    /// What our own server is made from, should the role be the server's.
    own_server: Option<(DtlsCert, Option<usize>)>,
    tap: DtlsTap,
    /// The remote certificate did not match (seen by dimpl's client role;
    /// our server refuses it itself): everything after it is dropped.
    refused: bool,
    /// An event of our server's that did not fit the caller's buffer.
    waiting: Option<Event>,
    /// The latest time str0m gave it.
    now: Instant,
}

enum Inner {
    Dimpl(Box<dimpl::Dtls>),
    Server(Box<Server>),
}

impl std::fmt::Debug for Dtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dtls").finish_non_exhaustive()
    }
}

impl Dtls {
    /// A deadline that never comes (str0m wants one from every poll).
    fn never(&self) -> Instant {
        self.now + std::time::Duration::from_secs(86_400 * 365)
    }

    fn poll_server<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let Inner::Server(server) = &mut self.inner else {
            unreachable!("called for our server only");
        };
        if let Some(len) = server.peek_datagram_len() {
            if len > buf.len() {
                return DtlsOutput::BufferTooSmall { needed: len };
            }
            let datagram = server.poll_datagram().expect("peeked");
            buf[..len].copy_from_slice(&datagram);
            return DtlsOutput::Packet(&buf[..len]);
        }
        let Some(event) = self.waiting.take().or_else(|| server.poll_event()) else {
            let at = server.timeout();
            return DtlsOutput::Timeout(at.unwrap_or_else(|| self.never()));
        };
        let bytes = match &event {
            Event::PeerCertificate(b) | Event::ApplicationData(b) => b.as_slice(),
            _ => &[],
        };
        if bytes.len() > buf.len() {
            let needed = bytes.len();
            self.waiting = Some(event);
            return DtlsOutput::BufferTooSmall { needed };
        }
        let n = bytes.len();
        buf[..n].copy_from_slice(bytes);
        match event {
            Event::PeerCertificate(_) => DtlsOutput::PeerCert(&buf[..n]),
            Event::ApplicationData(_) => DtlsOutput::ApplicationData(&buf[..n]),
            Event::Connected => DtlsOutput::Connected,
            Event::Keys(material, profile) => DtlsOutput::KeyingMaterial(
                dimpl::KeyingMaterial::new(&material),
                match profile {
                    0x0001 => dimpl::SrtpProfile::AES128_CM_SHA1_80,
                    0x0007 => dimpl::SrtpProfile::AEAD_AES_128_GCM,
                    _ => dimpl::SrtpProfile::AEAD_AES_256_GCM,
                },
            ),
            Event::CloseNotify => DtlsOutput::CloseNotify,
        }
    }
}

impl DtlsInstance for Dtls {
    fn set_active(&mut self, active: bool) {
        if !active && let Some((cert, mtu)) = &self.own_server {
            // A certificate whose key is not ECDSA stays with dimpl.
            let tap = self.tap.clone();
            if let Ok(server) = Server::new(
                &cert.certificate,
                &cert.private_key,
                mtu.unwrap_or(DEFAULT_MTU),
                Box::new(move |certificate| tap.check(certificate)),
            ) {
                self.inner = Inner::Server(Box::new(server));
                return;
            }
        }
        if let Inner::Dimpl(dtls) = &mut self.inner {
            dtls.set_active(active);
        }
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        if self.refused {
            return Ok(());
        }
        match &mut self.inner {
            Inner::Dimpl(dtls) => dtls.handle_packet(packet),
            Inner::Server(server) => server
                .handle_datagram(packet, self.now)
                .map_err(|e: Error| e.to_dimpl()),
        }
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if self.refused {
            // The handshake stops here: the client's DTLS times out and fails.
            return DtlsOutput::Timeout(self.never());
        }
        let output = match &mut self.inner {
            Inner::Dimpl(dtls) => dtls.poll_output(buf),
            Inner::Server(_) => self.poll_server(buf),
        };
        if let DtlsOutput::PeerCert(certificate) = &output
            && !self.tap.check(certificate)
        {
            self.refused = true;
            return DtlsOutput::Timeout(self.never());
        }
        if let DtlsOutput::KeyingMaterial(material, profile) = &output {
            self.tap.put_keys(SrtpKeys {
                material: material.as_ref().to_vec(),
                profile: (*profile).into(),
                dtls_client: self.is_active(),
            });
        }
        output
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.now = now;
        if self.refused {
            return Ok(());
        }
        match &mut self.inner {
            Inner::Dimpl(dtls) => dtls.handle_timeout(now),
            Inner::Server(server) => server.handle_timeout(now).map_err(|e| e.to_dimpl()),
        }
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        match &mut self.inner {
            Inner::Dimpl(dtls) => dtls.send_application_data(data),
            Inner::Server(server) => Ok(if server.send_application_data(data) {
                data.len()
            } else {
                0
            }),
        }
    }

    fn is_active(&self) -> bool {
        match &self.inner {
            Inner::Dimpl(dtls) => dtls.is_active(),
            Inner::Server(_) => false,
        }
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        match &self.inner {
            Inner::Dimpl(dtls) => dtls.protocol_version(),
            Inner::Server(server) => server.is_connected().then_some(ProtocolVersion::DTLS1_2),
        }
    }

    fn is_closing(&self) -> bool {
        match &self.inner {
            Inner::Dimpl(dtls) => dtls.is_closing(),
            Inner::Server(server) => server.is_closing(),
        }
    }

    fn is_closed(&self) -> bool {
        match &self.inner {
            Inner::Dimpl(dtls) => dtls.is_closed(),
            Inner::Server(server) => server.is_closed(),
        }
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        match &mut self.inner {
            Inner::Dimpl(dtls) => dtls.close(),
            Inner::Server(server) => {
                server.close();
                Ok(())
            }
        }
    }
}
