//! The DTLS stack of every endpoint: DTLS 1.2 of our own ([`association`],
//! [`server`], [`client`]) behind str0m's `DtlsProvider` interface. Not
//! str0m's own stack (dimpl) because the DTLS server picks the SRTP profile:
//! dimpl picks AES-256-GCM whenever the client offers it (Chrome lists it
//! first), where Videobridge, and so ours, picks AEAD_AES_128_GCM, then
//! AES_CM_128_HMAC_SHA1_80; a client sees which in its statistics.
//!
//! Each association also has a [`DtlsTap`], its endpoint's side door: the
//! remote certificate is checked against the signalled fingerprint with
//! whichever hash the client named (str0m knows SHA-256 and SHA-1 only; RFC
//! 8122 allows SHA-384 and SHA-512 too) before any key is derived, and a
//! mismatch ends the handshake with an alert: no keys, no data channel. The
//! SRTP keying material is taken from it as it passes, for the endpoint's own
//! media path.

mod association;
mod certificate;
mod client;
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

use association::{Association, Event};
use error::Error;

/// The crypto provider endpoints are built with: the default one with
/// [`OwnDtls`] as its DTLS provider.
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

/// The record size when str0m gives no MTU (what str0m's own stack uses).
const DEFAULT_MTU: usize = 1150;

static DTLS: OwnDtls = OwnDtls;

/// Hands out our DTLS 1.2 associations.
#[derive(Debug)]
struct OwnDtls;

impl DtlsProvider for OwnDtls {
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
        if version != DtlsVersion::Dtls12 {
            return Err(CryptoError::Other(format!(
                "{version} is not offered; DTLS 1.2 is"
            )));
        }
        let tap = DtlsTap::default();
        CREATED.with(|c| *c.borrow_mut() = Some(tap.clone()));
        Ok(Box::new(Dtls {
            cert: cert.clone(),
            mtu: mtu.unwrap_or(DEFAULT_MTU),
            association: None,
            tap,
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

/// One endpoint's DTLS association, made when str0m gives the role.
struct Dtls {
    cert: DtlsCert,
    mtu: usize,
    association: Option<Association>,
    tap: DtlsTap,
    /// An event that did not fit the caller's buffer.
    waiting: Option<Event>,
    /// The latest time str0m gave it.
    now: Instant,
}

impl std::fmt::Debug for Dtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dtls")
            .field("association", &self.association)
            .finish_non_exhaustive()
    }
}

impl Dtls {
    /// A deadline that never comes (str0m wants one from every poll).
    fn never(&self) -> Instant {
        self.now + std::time::Duration::from_secs(86_400 * 365)
    }
}

impl DtlsInstance for Dtls {
    fn set_active(&mut self, active: bool) {
        let tap = self.tap.clone();
        // Our own certificate's key (ECDSA, generated by the bridge) always loads.
        self.association = Association::new(
            active,
            &self.cert.certificate,
            &self.cert.private_key,
            self.mtu,
            Box::new(move |certificate| tap.check(certificate)),
        )
        .ok();
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        match &mut self.association {
            Some(a) => a
                .handle_datagram(packet, self.now)
                .map_err(|e| e.to_dimpl()),
            None => Ok(()),
        }
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        let never = self.never();
        let Some(association) = &mut self.association else {
            return DtlsOutput::Timeout(never);
        };
        if let Some(len) = association.peek_datagram_len() {
            if len > buf.len() {
                return DtlsOutput::BufferTooSmall { needed: len };
            }
            let datagram = association.poll_datagram().expect("peeked");
            buf[..len].copy_from_slice(&datagram);
            return DtlsOutput::Packet(&buf[..len]);
        }
        let Some(event) = self.waiting.take().or_else(|| association.poll_event()) else {
            return DtlsOutput::Timeout(association.timeout().unwrap_or(never));
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
            Event::Keys(material, profile) => {
                self.tap.put_keys(SrtpKeys {
                    material: material.clone(),
                    profile: profile.into(),
                    dtls_client: association.is_client(),
                });
                DtlsOutput::KeyingMaterial(dimpl::KeyingMaterial::new(&material), profile)
            }
            Event::CloseNotify => DtlsOutput::CloseNotify,
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.now = now;
        match &mut self.association {
            Some(a) => a.handle_timeout(now).map_err(|e| e.to_dimpl()),
            None => Ok(()),
        }
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        let sent = self
            .association
            .as_mut()
            .is_some_and(|a| a.send_application_data(data));
        Ok(if sent { data.len() } else { 0 })
    }

    fn is_active(&self) -> bool {
        self.association
            .as_ref()
            .is_some_and(Association::is_client)
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.association
            .as_ref()
            .filter(|a| a.is_connected())
            .map(|_| ProtocolVersion::DTLS1_2)
    }

    fn is_closing(&self) -> bool {
        self.association
            .as_ref()
            .is_some_and(Association::is_closing)
    }

    fn is_closed(&self) -> bool {
        self.association
            .as_ref()
            .is_some_and(Association::is_closed)
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if let Some(a) = &mut self.association {
            a.close();
        }
        Ok(())
    }
}
