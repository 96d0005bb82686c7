//! What the client says in a DTLS 1.2 handshake: the bridge's side when a
//! participant answers `setup:passive`.
//!
//! ```text
//! ClientHello                 -->
//!                             <--  HelloVerifyRequest (if the server wants a cookie)
//! ClientHello (with cookie)   -->
//!                             <--  ServerHello, Certificate, ServerKeyExchange,
//!                                  CertificateRequest, ServerHelloDone
//! Certificate, ClientKeyExchange, CertificateVerify,
//! [ChangeCipherSpec], Finished -->
//!                             <--  [ChangeCipherSpec], Finished
//! ```
//!
//! It offers what Videobridge offers: AEAD_AES_128_GCM, then
//! AES_CM_128_HMAC_SHA1_80, so a server picking by its own order still gets
//! one of the two.

use std::time::Instant;

use aws_lc_rs::agreement::{self, EphemeralPrivateKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::Error;
use super::association::Core;
use super::certificate::{self, PublicKey, VERIFIABLE};
use super::fragment::{FlightItem, Message};
use super::keys::{self, Secrets};
use super::message::{self, ServerHello, ServerKeyExchange, kind};
use super::record;

/// The SRTP profiles we offer, in our order.
const SRTP_OFFER: [u16; 2] = [
    message::SRTP_AEAD_AES_128_GCM,
    message::SRTP_AES128_CM_SHA1_80,
];

/// The next message the client waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Step {
    #[default]
    Start,
    ServerHello,
    Certificate,
    KeyExchange,
    CertificateRequest,
    HelloDone,
    Finished,
    Done,
}

/// The client's side of the handshake.
#[derive(Default)]
pub(super) struct ClientHandshake {
    step: Step,
    secrets: Secrets,
    /// The cipher suite the server chose: it says which key signs its ECDHE share.
    suite: u16,
    /// Our handshake message sequence number.
    next_seq: u16,
    peer_certificate: Vec<u8>,
    /// The server's ECDHE group and public key.
    server_share: Option<(&'static agreement::Algorithm, Vec<u8>)>,
    certificate_requested: bool,
}

impl ClientHandshake {
    /// Sends the first ClientHello; false once that is done.
    pub fn start(&mut self, core: &mut Core, now: Instant) -> bool {
        if self.step != Step::Start {
            return false;
        }
        // A failing random source leaves the random zero: the server's half
        // and the ECDHE keys still make the secrets unique.
        let _ = SystemRandom::new().fill(&mut self.secrets.client_random);
        self.send_hello(core, &[], now);
        self.step = Step::ServerHello;
        true
    }

    fn send_hello(&mut self, core: &mut Core, cookie: &[u8], now: Instant) {
        let body = message::client_hello(
            &self.secrets.client_random,
            cookie,
            &SRTP_OFFER,
            &VERIFIABLE,
        );
        let hello = self.message(kind::CLIENT_HELLO, body);
        // The transcript starts with the ClientHello the server answers: a
        // HelloVerifyRequest and the hello before it are not in it.
        core.transcript.clear();
        core.record(&hello);
        core.send_flight(vec![FlightItem::handshake(hello, 0)], now, true);
    }

    fn message(&mut self, msg_type: u8, body: Vec<u8>) -> Message {
        let seq = self.next_seq;
        self.next_seq += 1;
        Message {
            msg_type,
            seq,
            body,
        }
    }

    pub fn handle_message(
        &mut self,
        core: &mut Core,
        message: Message,
        now: Instant,
    ) -> Result<(), Error> {
        match (self.step, message.msg_type) {
            (Step::ServerHello, kind::HELLO_VERIFY_REQUEST) => {
                let cookie = message::hello_verify_cookie(&message.body)?.to_vec();
                self.send_hello(core, &cookie, now);
                Ok(())
            }
            (Step::ServerHello, kind::SERVER_HELLO) => self.on_server_hello(core, &message),
            (Step::Certificate, kind::CERTIFICATE) => {
                self.peer_certificate = core.accept_certificate(&message.body)?;
                core.record(&message);
                self.step = Step::KeyExchange;
                Ok(())
            }
            (Step::KeyExchange, kind::SERVER_KEY_EXCHANGE) => self.on_key_exchange(core, &message),
            (Step::CertificateRequest, kind::CERTIFICATE_REQUEST) => {
                core.record(&message);
                self.certificate_requested = true;
                self.step = Step::HelloDone;
                Ok(())
            }
            (Step::CertificateRequest | Step::HelloDone, kind::SERVER_HELLO_DONE) => {
                core.record(&message);
                self.send_second_flight(core, now)
            }
            (Step::Finished, kind::FINISHED) => self.on_finished(core, &message),
            _ => Err(Error::Refused("sent a handshake message out of order")),
        }
    }

    fn on_server_hello(&mut self, core: &mut Core, message: &Message) -> Result<(), Error> {
        let hello = ServerHello::parse(&message.body)?;
        if hello.version != u16::from_be_bytes(record::VERSION) {
            return Err(Error::Refused("chose a DTLS version other than 1.2"));
        }
        let suites = [message::SUITE, message::SUITE_RSA];
        if !suites.contains(&hello.suite) || hello.compression != 0 {
            return Err(Error::Refused(
                "chose a cipher suite or compression we did not offer",
            ));
        }
        self.secrets.srtp_profile = hello
            .srtp_profile
            .filter(|p| SRTP_OFFER.contains(p))
            .ok_or(Error::Refused("chose no SRTP profile we offered"))?;
        self.suite = hello.suite;
        self.secrets.server_random = hello.random;
        self.secrets.extended_master_secret = hello.extended_master_secret;
        core.flight_answered();
        core.record(message);
        self.step = Step::Certificate;
        Ok(())
    }

    fn on_key_exchange(&mut self, core: &mut Core, message: &Message) -> Result<(), Error> {
        let exchange = ServerKeyExchange::parse(&message.body)?;
        let (_, algorithm) = message::GROUPS
            .into_iter()
            .find(|(g, _)| *g == exchange.group)
            .ok_or(Error::Refused(
                "chose a key exchange group we did not offer",
            ))?;
        let key = certificate::public_key(&self.peer_certificate)?;
        if matches!(key, PublicKey::Rsa(_)) != (self.suite == message::SUITE_RSA) {
            return Err(Error::Refused(
                "chose a cipher suite its certificate cannot sign for",
            ));
        }
        let signed = [
            &self.secrets.client_random[..],
            &self.secrets.server_random,
            exchange.params,
        ]
        .concat();
        certificate::verify_offered(&key, exchange.scheme, &signed, exchange.signature)?;
        self.server_share = Some((algorithm, exchange.public.to_vec()));
        core.record(message);
        self.step = Step::CertificateRequest;
        Ok(())
    }

    /// Certificate, ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished.
    fn send_second_flight(&mut self, core: &mut Core, now: Instant) -> Result<(), Error> {
        let mut flight = Vec::with_capacity(5);
        if self.certificate_requested {
            let certificate =
                self.message(kind::CERTIFICATE, message::certificate(&core.certificate));
            core.record(&certificate);
            flight.push(FlightItem::handshake(certificate, 0));
        }
        let (algorithm, server_public) = self.server_share.take().expect("after ServerKeyExchange");
        let rng = SystemRandom::new();
        let ephemeral =
            EphemeralPrivateKey::generate(algorithm, &rng).map_err(|_| Error::OwnKey)?;
        let public = ephemeral.compute_public_key().map_err(|_| Error::OwnKey)?;
        let premaster = keys::premaster(ephemeral, algorithm, &server_public)?;
        let exchange = self.message(
            kind::CLIENT_KEY_EXCHANGE,
            message::client_key_exchange(public.as_ref()),
        );
        core.record(&exchange);
        flight.push(FlightItem::handshake(exchange, 0));

        let block = self.secrets.derive(&premaster, &core.transcript);
        core.install_keys(&block, true);

        if self.certificate_requested {
            let signature = core.signer.sign(&core.transcript)?;
            let scheme = core.signer.scheme;
            let verify = self.message(
                kind::CERTIFICATE_VERIFY,
                message::signed(scheme, &signature),
            );
            core.record(&verify);
            flight.push(FlightItem::handshake(verify, 0));
        }
        flight.push(FlightItem::ChangeCipherSpec);
        let verify_data = self.secrets.finished(true, &core.transcript);
        let finished = self.message(kind::FINISHED, verify_data.to_vec());
        core.record(&finished);
        flight.push(FlightItem::handshake(finished, 1));
        core.send_flight(flight, now, true);
        self.step = Step::Finished;
        Ok(())
    }

    fn on_finished(&mut self, core: &mut Core, message: &Message) -> Result<(), Error> {
        core.expect_change_cipher_spec()?;
        self.secrets
            .check_finished(false, &core.transcript, &message.body)?;
        core.flight_answered();
        core.connected(self.secrets.srtp_keys());
        self.step = Step::Done;
        Ok(())
    }
}
