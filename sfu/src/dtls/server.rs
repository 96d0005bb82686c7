//! What the server says in a DTLS 1.2 handshake.
//!
//! A WebRTC client answers the bridge's offer with `setup:active`, so this is
//! the side of every Jitsi client's handshake. It is ours rather than the
//! DTLS stack str0m brings because the server picks the SRTP profile, and
//! Videobridge's pick (AEAD_AES_128_GCM first, AES_CM_128_HMAC_SHA1_80 next)
//! is one a client can see.
//!
//! The handshake is the full one of RFC 6347 §4.2.4 with a client certificate
//! and no cookie exchange (ICE has already checked the return path):
//!
//! ```text
//! ClientHello           -->
//!                       <--  ServerHello, Certificate, ServerKeyExchange,
//!                            CertificateRequest, ServerHelloDone
//! Certificate, ClientKeyExchange, CertificateVerify,
//! [ChangeCipherSpec], Finished -->
//!                       <--  [ChangeCipherSpec], Finished
//! ```

use std::time::Instant;

use aws_lc_rs::agreement::{self, EphemeralPrivateKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::Error;
use super::association::Core;
use super::certificate;
use super::fragment::{FlightItem, Message};
use super::keys::{self, Secrets};
use super::message::{self, ClientHello, kind};
use super::record;

/// SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2) in the order we
/// pick them: Videobridge's two, then AES-256-GCM for a client offering
/// nothing else.
pub(super) const SRTP_PREFERENCE: [u16; 3] = [
    message::SRTP_AEAD_AES_128_GCM,
    message::SRTP_AES128_CM_SHA1_80,
    message::SRTP_AEAD_AES_256_GCM,
];

/// The next message the server waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Step {
    #[default]
    ClientHello,
    Certificate,
    KeyExchange,
    CertificateVerify,
    Finished,
    Done,
}

/// The server's side of the handshake.
#[derive(Default)]
pub(super) struct ServerHandshake {
    step: Step,
    secrets: Secrets,
    ephemeral: Option<(EphemeralPrivateKey, &'static agreement::Algorithm)>,
    peer_certificate: Vec<u8>,
}

impl ServerHandshake {
    pub fn handle_message(
        &mut self,
        core: &mut Core,
        message: Message,
        now: Instant,
    ) -> Result<(), Error> {
        match (self.step, message.msg_type) {
            (Step::ClientHello, kind::CLIENT_HELLO) => self.on_client_hello(core, &message, now),
            (Step::Certificate, kind::CERTIFICATE) => self.on_certificate(core, &message),
            (Step::KeyExchange, kind::CLIENT_KEY_EXCHANGE) => self.on_key_exchange(core, &message),
            (Step::CertificateVerify, kind::CERTIFICATE_VERIFY) => {
                self.on_certificate_verify(core, &message)
            }
            (Step::Finished, kind::FINISHED) => self.on_finished(core, &message, now),
            _ => Err(Error::Refused("sent a handshake message out of order")),
        }
    }

    fn on_client_hello(
        &mut self,
        core: &mut Core,
        message: &Message,
        now: Instant,
    ) -> Result<(), Error> {
        let hello = ClientHello::parse(&message.body)?;
        // DTLS versions count down: 0xfefd is 1.2, 0xfeff is 1.0.
        if hello.version > u16::from_be_bytes(record::VERSION) {
            return Err(Error::Refused("offers no DTLS version newer than 1.0"));
        }
        if !hello.suites.contains(&message::SUITE) {
            return Err(Error::Refused(
                "offers no ECDHE-ECDSA AES-128-GCM cipher suite",
            ));
        }
        if !hello.null_compression {
            return Err(Error::Refused("offers no null compression"));
        }
        let srtp_profile = SRTP_PREFERENCE
            .into_iter()
            .find(|p| hello.srtp_profiles.contains(p))
            .ok_or(Error::Refused("offers no SRTP profile we know"))?;
        let (group, algorithm) = message::GROUPS
            .into_iter()
            .find(|(g, _)| {
                hello
                    .groups
                    .as_ref()
                    .is_none_or(|offered| offered.contains(g))
            })
            .ok_or(Error::Refused("offers no key exchange group we know"))?;
        if hello
            .signature_algorithms
            .as_ref()
            .is_some_and(|offered| !offered.contains(&core.signer.scheme))
        {
            return Err(Error::Refused(
                "does not take our certificate's signature scheme",
            ));
        }
        core.record(message);

        let rng = SystemRandom::new();
        rng.fill(&mut self.secrets.server_random)
            .map_err(|_| Error::OwnKey)?;
        let ephemeral =
            EphemeralPrivateKey::generate(algorithm, &rng).map_err(|_| Error::OwnKey)?;
        let public = ephemeral.compute_public_key().map_err(|_| Error::OwnKey)?;
        let params = message::ecdhe_params(group, public.as_ref());
        let signature = core
            .signer
            .sign(&[&hello.random[..], &self.secrets.server_random, &params].concat())?;

        let bodies = [
            (
                kind::SERVER_HELLO,
                message::server_hello(&self.secrets.server_random, &hello, srtp_profile),
            ),
            (kind::CERTIFICATE, message::certificate(&core.certificate)),
            (
                kind::SERVER_KEY_EXCHANGE,
                message::server_key_exchange(&params, core.signer.scheme, &signature),
            ),
            (
                kind::CERTIFICATE_REQUEST,
                message::certificate_request(&certificate::VERIFIABLE),
            ),
            (kind::SERVER_HELLO_DONE, Vec::new()),
        ];
        let flight = bodies
            .into_iter()
            .enumerate()
            .map(|(seq, (msg_type, body))| {
                let message = Message {
                    msg_type,
                    seq: seq as u16,
                    body,
                };
                core.record(&message);
                FlightItem::handshake(message, 0)
            })
            .collect();
        self.secrets.client_random = hello.random;
        self.secrets.extended_master_secret = hello.extended_master_secret;
        self.secrets.srtp_profile = srtp_profile;
        self.ephemeral = Some((ephemeral, algorithm));
        self.step = Step::Certificate;
        core.send_flight(flight, now, true);
        Ok(())
    }

    fn on_certificate(&mut self, core: &mut Core, message: &Message) -> Result<(), Error> {
        core.flight_answered();
        self.peer_certificate = core.accept_certificate(&message.body)?;
        core.record(message);
        self.step = Step::KeyExchange;
        Ok(())
    }

    fn on_key_exchange(&mut self, core: &mut Core, message: &Message) -> Result<(), Error> {
        let public = message::client_public(&message.body)?;
        let (ephemeral, algorithm) = self
            .ephemeral
            .take()
            .expect("one key exchange per handshake");
        let premaster = keys::premaster(ephemeral, algorithm, public)?;
        core.record(message);
        let block = self.secrets.derive(&premaster, &core.transcript);
        core.install_keys(&block, false);
        self.step = Step::CertificateVerify;
        Ok(())
    }

    fn on_certificate_verify(&mut self, core: &mut Core, message: &Message) -> Result<(), Error> {
        let (scheme, signature) = message::signature(&message.body, "CertificateVerify")?;
        let key = certificate::public_key(&self.peer_certificate)?;
        certificate::verify_offered(&key, scheme, &core.transcript, signature)?;
        core.record(message);
        self.step = Step::Finished;
        Ok(())
    }

    fn on_finished(
        &mut self,
        core: &mut Core,
        message: &Message,
        now: Instant,
    ) -> Result<(), Error> {
        core.expect_change_cipher_spec()?;
        self.secrets
            .check_finished(true, &core.transcript, &message.body)?;
        core.record(message);
        let ours = self.secrets.finished(false, &core.transcript);
        let finished = Message {
            msg_type: kind::FINISHED,
            seq: 5,
            body: ours.to_vec(),
        };
        // The last flight: sent again only when the client repeats its own.
        core.send_flight(
            vec![
                FlightItem::ChangeCipherSpec,
                FlightItem::handshake(finished, 1),
            ],
            now,
            false,
        );
        core.connected(self.secrets.srtp_keys());
        self.step = Step::Done;
        Ok(())
    }
}
