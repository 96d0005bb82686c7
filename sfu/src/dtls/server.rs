//! The server role of a DTLS 1.2 association, sans-IO: datagrams and time in,
//! datagrams and events out.
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

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::Error;
use super::certificate::{self, PublicKey, Signer};
use super::fragment::{self, FlightItem, Inserted, Message, Reassembly, SendSeq};
use super::keys::{self, KeyBlock};
use super::message::{self, ClientHello, kind};
use super::record::{self, ContentType, Protection, ReplayWindow};

/// SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2) in the order we
/// pick them: Videobridge's two, then AES-256-GCM for a client offering
/// nothing else.
pub(crate) const SRTP_PREFERENCE: [u16; 3] = [0x0007, 0x0001, 0x0008];

/// Key exchange groups in the order we pick them: X25519, P-256, P-384.
const GROUPS: [(u16, &agreement::Algorithm); 3] = [
    (29, &agreement::X25519),
    (23, &agreement::ECDH_P256),
    (24, &agreement::ECDH_P384),
];

/// The first wait for the client's answer to our flight (RFC 6347 §4.2.4.1).
const FIRST_RTO: Duration = Duration::from_secs(1);
const MAX_RTO: Duration = Duration::from_secs(8);
/// Retransmissions of our flight before the handshake is given up.
const MAX_RETRANSMITS: u32 = 8;
/// Epoch-1 records kept while the keys they need are still to come.
const MAX_EARLY_RECORDS: usize = 4;

/// Alert descriptions (RFC 5246 §7.2).
const CLOSE_NOTIFY: u8 = 0;

/// What the association hands its owner, in order.
#[derive(Debug)]
pub(crate) enum Event {
    /// The client's certificate (DER): its fingerprint is checked by the owner.
    PeerCertificate(Vec<u8>),
    Connected,
    /// The SRTP keying material and the profile it is for.
    Keys(Vec<u8>, u16),
    ApplicationData(Vec<u8>),
    CloseNotify,
}

#[derive(Debug)]
enum State {
    AwaitHello,
    /// Flight 4 is out; the client's flight 5 comes message by message.
    AwaitClientFlight(Step),
    Connected,
    /// An error or a close: nothing more is read.
    Done,
}

/// The next message of the client's second flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Certificate,
    KeyExchange,
    CertificateVerify,
    Finished,
}

/// What the handshake has agreed so far.
struct Agreed {
    client_random: [u8; 32],
    server_random: [u8; 32],
    extended_master_secret: bool,
    srtp_profile: u16,
    ephemeral: Option<(EphemeralPrivateKey, &'static agreement::Algorithm)>,
    peer_certificate: Vec<u8>,
    master: [u8; 48],
}

/// Decides whether the client's certificate (DER) is the one the signalling named.
pub(crate) type AcceptCertificate = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// One server-side DTLS 1.2 association.
pub(crate) struct Server {
    certificate: Vec<u8>,
    signer: Signer,
    accept: AcceptCertificate,
    mtu: usize,
    state: State,
    agreed: Option<Agreed>,
    reassembly: Reassembly,
    /// Every handshake message so far, as RFC 6347 §4.2.6 hashes them.
    transcript: Vec<u8>,
    read: Option<Protection>,
    write: Option<Protection>,
    replay: ReplayWindow,
    change_cipher_spec_seen: bool,
    send_seq: SendSeq,
    /// Our last flight, kept for retransmission.
    flight: Vec<FlightItem>,
    retransmit_at: Option<Instant>,
    rto: Duration,
    retransmits: u32,
    early: Vec<Vec<u8>>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    closing: bool,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// An association answering with `certificate` (DER) and its PKCS#8 key,
    /// taking the client whose certificate `accept` takes. The check comes
    /// before any key is derived, so a refused client gets an alert, never keys.
    pub fn new(
        certificate: &[u8],
        private_key: &[u8],
        mtu: usize,
        accept: AcceptCertificate,
    ) -> Result<Self, Error> {
        Ok(Server {
            certificate: certificate.to_vec(),
            signer: Signer::from_pkcs8(private_key)?,
            accept,
            mtu,
            state: State::AwaitHello,
            agreed: None,
            reassembly: Reassembly::default(),
            transcript: Vec::with_capacity(2048),
            read: None,
            write: None,
            replay: ReplayWindow::default(),
            change_cipher_spec_seen: false,
            send_seq: SendSeq::default(),
            flight: Vec::new(),
            retransmit_at: None,
            rto: FIRST_RTO,
            retransmits: 0,
            early: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            closing: false,
            scratch: Vec::new(),
        })
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected)
    }

    /// Takes in a datagram. An error has ended the association; a fatal alert
    /// saying why is queued for the client.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) -> Result<(), Error> {
        if matches!(self.state, State::Done) {
            return Ok(());
        }
        match self.read_datagram(datagram, now) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn read_datagram(&mut self, datagram: &[u8], now: Instant) -> Result<(), Error> {
        let mut resend = false;
        for record in record::records(datagram) {
            resend |= self.read_record(&record, now)?;
        }
        // Records of epoch 1 that overtook the key exchange they need.
        if self.read.is_some() && !self.early.is_empty() {
            for raw in std::mem::take(&mut self.early) {
                for record in record::records(&raw) {
                    resend |= self.read_record(&record, now)?;
                }
            }
        }
        if resend {
            self.transmit_flight();
        }
        Ok(())
    }

    /// Reads one record; true when it shows the client did not get our last flight.
    fn read_record(&mut self, record: &record::Record, now: Instant) -> Result<bool, Error> {
        match record.epoch {
            0 => self.read_plain(record.content, record.fragment(), 0, now),
            1 => {
                let Some(read) = &self.read else {
                    if self.early.len() < MAX_EARLY_RECORDS {
                        self.early.push(record.raw.to_vec());
                    }
                    return Ok(false);
                };
                if !self.replay.is_new(record.seq) {
                    return Ok(false);
                }
                let mut scratch = std::mem::take(&mut self.scratch);
                // A record that fails authentication is dropped (RFC 6347 §4.1.2.7).
                let result = match read.open(record, &mut scratch) {
                    Ok(plain) => {
                        self.replay.accept(record.seq);
                        let plain = plain.to_vec();
                        self.read_plain(record.content, &plain, 1, now)
                    }
                    Err(_) => Ok(false),
                };
                self.scratch = scratch;
                result
            }
            _ => Ok(false),
        }
    }

    fn read_plain(
        &mut self,
        content: ContentType,
        plain: &[u8],
        epoch: u16,
        now: Instant,
    ) -> Result<bool, Error> {
        match content {
            ContentType::Handshake => {
                let mut old = false;
                for fragment in fragment::fragments(plain) {
                    let fragment = fragment?;
                    if (fragment.msg_type == kind::FINISHED) != (epoch == 1) {
                        return Err(Error::Refused(
                            "sent a handshake message in the wrong epoch",
                        ));
                    }
                    match self.reassembly.insert(&fragment)? {
                        Inserted::Old => old = true,
                        Inserted::Kept | Inserted::Dropped => {}
                    }
                }
                while let Some(message) = self.reassembly.next() {
                    self.handle_message(message, now)?;
                }
                Ok(old && !matches!(self.state, State::AwaitHello))
            }
            ContentType::ChangeCipherSpec => {
                if plain != [1] {
                    return Err(Error::Malformed("ChangeCipherSpec"));
                }
                self.change_cipher_spec_seen = true;
                Ok(false)
            }
            ContentType::Alert => {
                if plain.len() != 2 {
                    return Err(Error::Malformed("alert"));
                }
                if plain[1] == CLOSE_NOTIFY {
                    self.events.push_back(Event::CloseNotify);
                    self.state = State::Done;
                    Ok(false)
                } else if plain[0] == 2 {
                    Err(Error::Alert(plain[1]))
                } else {
                    Ok(false)
                }
            }
            ContentType::ApplicationData => {
                if epoch == 1 && self.is_connected() {
                    self.events
                        .push_back(Event::ApplicationData(plain.to_vec()));
                }
                Ok(false)
            }
        }
    }

    fn handle_message(&mut self, message: Message, now: Instant) -> Result<(), Error> {
        match (&self.state, message.msg_type) {
            (State::AwaitHello, kind::CLIENT_HELLO) => self.on_client_hello(&message, now),
            (State::AwaitClientFlight(Step::Certificate), kind::CERTIFICATE) => {
                self.on_certificate(&message)
            }
            (State::AwaitClientFlight(Step::KeyExchange), kind::CLIENT_KEY_EXCHANGE) => {
                self.on_key_exchange(&message)
            }
            (State::AwaitClientFlight(Step::CertificateVerify), kind::CERTIFICATE_VERIFY) => {
                self.on_certificate_verify(&message)
            }
            (State::AwaitClientFlight(Step::Finished), kind::FINISHED) => {
                self.on_finished(&message)
            }
            (State::Connected, _) => Err(Error::Refused("started a second handshake")),
            _ => Err(Error::Refused("sent a handshake message out of order")),
        }
    }

    fn record_in_transcript(&mut self, message: &Message) {
        Message::transcript_bytes(
            message.msg_type,
            message.seq,
            &message.body,
            &mut self.transcript,
        );
    }

    fn on_client_hello(&mut self, message: &Message, now: Instant) -> Result<(), Error> {
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
        let (group, algorithm) = GROUPS
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
            .is_some_and(|offered| !offered.contains(&self.signer.scheme))
        {
            return Err(Error::Refused(
                "does not take our certificate's signature scheme",
            ));
        }
        self.record_in_transcript(message);

        let rng = SystemRandom::new();
        let mut server_random = [0u8; 32];
        rng.fill(&mut server_random).map_err(|_| Error::OwnKey)?;
        let ephemeral =
            EphemeralPrivateKey::generate(algorithm, &rng).map_err(|_| Error::OwnKey)?;
        let public = ephemeral.compute_public_key().map_err(|_| Error::OwnKey)?;
        let params = message::ecdhe_params(group, public.as_ref());
        let mut signed = Vec::with_capacity(64 + params.len());
        signed.extend_from_slice(&hello.random);
        signed.extend_from_slice(&server_random);
        signed.extend_from_slice(&params);
        let signature = self.signer.sign(&signed)?;

        let bodies = [
            (
                kind::SERVER_HELLO,
                message::server_hello(&server_random, &hello, srtp_profile),
            ),
            (kind::CERTIFICATE, message::certificate(&self.certificate)),
            (
                kind::SERVER_KEY_EXCHANGE,
                message::server_key_exchange(&params, self.signer.scheme, &signature),
            ),
            (
                kind::CERTIFICATE_REQUEST,
                message::certificate_request(&certificate::VERIFIABLE),
            ),
            (kind::SERVER_HELLO_DONE, Vec::new()),
        ];
        self.flight.clear();
        for (seq, (msg_type, body)) in bodies.into_iter().enumerate() {
            let seq = seq as u16;
            Message::transcript_bytes(msg_type, seq, &body, &mut self.transcript);
            self.flight.push(FlightItem::Handshake {
                msg_type,
                seq,
                body,
                epoch: 0,
            });
        }
        self.agreed = Some(Agreed {
            client_random: hello.random,
            server_random,
            extended_master_secret: hello.extended_master_secret,
            srtp_profile,
            ephemeral: Some((ephemeral, algorithm)),
            peer_certificate: Vec::new(),
            master: [0; 48],
        });
        self.state = State::AwaitClientFlight(Step::Certificate);
        self.transmit_flight();
        self.retransmit_at = Some(now + self.rto);
        Ok(())
    }

    fn agreed(&mut self) -> &mut Agreed {
        self.agreed
            .as_mut()
            .expect("agreed once the ClientHello is read")
    }

    fn on_certificate(&mut self, message: &Message) -> Result<(), Error> {
        // The client has our flight: no more retransmission of it by timer.
        self.retransmit_at = None;
        let leaf = message::leaf_certificate(&message.body)?
            .ok_or(Error::BadCertificate("none was sent"))?;
        certificate::public_key(leaf)?;
        if !(self.accept)(leaf) {
            return Err(Error::BadCertificate("not the one the signalling named"));
        }
        self.agreed().peer_certificate = leaf.to_vec();
        self.events.push_back(Event::PeerCertificate(leaf.to_vec()));
        self.record_in_transcript(message);
        self.state = State::AwaitClientFlight(Step::KeyExchange);
        Ok(())
    }

    fn on_key_exchange(&mut self, message: &Message) -> Result<(), Error> {
        let public = message::client_public(&message.body)?;
        let (ephemeral, algorithm) = self
            .agreed()
            .ephemeral
            .take()
            .expect("one key exchange per handshake");
        let premaster = agreement::agree_ephemeral(
            ephemeral,
            UnparsedPublicKey::new(algorithm, public),
            Error::Refused("sent an ECDHE public key not on the curve"),
            |secret| Ok(secret.to_vec()),
        )?;
        self.record_in_transcript(message);
        let session_hash = digest(&SHA256, &self.transcript);
        let agreed = self.agreed();
        let master = keys::master_secret(
            &premaster,
            agreed
                .extended_master_secret
                .then_some(session_hash.as_ref()),
            &agreed.client_random,
            &agreed.server_random,
        );
        agreed.master = master;
        let block = KeyBlock::derive(&master, &agreed.client_random, &agreed.server_random);
        self.read = Some(Protection::new(&block.client_key, &block.client_salt));
        self.write = Some(Protection::new(&block.server_key, &block.server_salt));
        self.state = State::AwaitClientFlight(Step::CertificateVerify);
        Ok(())
    }

    fn on_certificate_verify(&mut self, message: &Message) -> Result<(), Error> {
        let (scheme, signature) = message::certificate_verify(&message.body)?;
        let agreed = self.agreed.as_ref().expect("agreed");
        let key = certificate::public_key(&agreed.peer_certificate)?;
        verify_with(&key, scheme, &self.transcript, signature)?;
        self.record_in_transcript(message);
        self.state = State::AwaitClientFlight(Step::Finished);
        Ok(())
    }

    fn on_finished(&mut self, message: &Message) -> Result<(), Error> {
        if !self.change_cipher_spec_seen {
            return Err(Error::Refused("sent Finished before ChangeCipherSpec"));
        }
        let master = self.agreed().master;
        let expected = keys::finished(&master, true, digest(&SHA256, &self.transcript).as_ref());
        verify_slices_are_equal(&expected, &message.body).map_err(|_| Error::BadFinished)?;
        self.record_in_transcript(message);
        let ours = keys::finished(&master, false, digest(&SHA256, &self.transcript).as_ref());
        self.flight.clear();
        self.flight.push(FlightItem::ChangeCipherSpec);
        self.flight.push(FlightItem::Handshake {
            msg_type: kind::FINISHED,
            seq: 5,
            body: ours.to_vec(),
            epoch: 1,
        });
        self.transmit_flight();
        self.state = State::Connected;

        let agreed = self.agreed.as_ref().expect("agreed");
        let len = material_len(agreed.srtp_profile);
        let material =
            keys::srtp_material(&master, &agreed.client_random, &agreed.server_random, len);
        self.events.push_back(Event::Connected);
        self.events
            .push_back(Event::Keys(material, agreed.srtp_profile));
        self.transcript = Vec::new();
        Ok(())
    }

    /// Sends our last flight (again).
    fn transmit_flight(&mut self) {
        let datagrams = fragment::pack(
            &self.flight,
            self.mtu,
            &mut self.send_seq,
            self.write.as_ref(),
        );
        self.out.extend(datagrams);
    }

    /// Retransmits the flight the client has not answered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        let Some(at) = self.retransmit_at else {
            return Ok(());
        };
        if now < at {
            return Ok(());
        }
        if self.retransmits == MAX_RETRANSMITS {
            self.retransmit_at = None;
            return Err(self.fail(Error::Timeout(MAX_RETRANSMITS)));
        }
        self.retransmits += 1;
        self.rto = (self.rto * 2).min(MAX_RTO);
        self.retransmit_at = Some(now + self.rto);
        self.transmit_flight();
        Ok(())
    }

    pub fn timeout(&self) -> Option<Instant> {
        self.retransmit_at
    }

    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    pub fn peek_datagram_len(&self) -> Option<usize> {
        self.out.front().map(Vec::len)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues `data` in one record; false before the handshake is done.
    pub fn send_application_data(&mut self, data: &[u8]) -> bool {
        let (State::Connected, Some(write)) = (&self.state, &self.write) else {
            return false;
        };
        let mut out = Vec::with_capacity(record::HEADER + record::OVERHEAD + data.len());
        write.seal(
            &mut out,
            ContentType::ApplicationData,
            self.send_seq.take(1),
            data,
        );
        self.out.push_back(out);
        true
    }

    /// Sends close_notify; nothing is read after it.
    pub fn close(&mut self) {
        if let (State::Connected, Some(write)) = (&self.state, &self.write) {
            let mut out = Vec::new();
            write.seal(
                &mut out,
                ContentType::Alert,
                self.send_seq.take(1),
                &[1, CLOSE_NOTIFY],
            );
            self.out.push_back(out);
        }
        self.closing = true;
        self.state = State::Done;
    }

    pub fn is_closing(&self) -> bool {
        self.closing && !self.out.is_empty()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Done) && self.out.is_empty()
    }

    /// Ends the association over `error`, telling the client why.
    fn fail(&mut self, error: Error) -> Error {
        let alert = [2, error.alert()];
        let mut out = Vec::new();
        match &self.write {
            Some(write) if self.is_connected() => {
                write.seal(&mut out, ContentType::Alert, self.send_seq.take(1), &alert)
            }
            _ => {
                let start = record::begin(&mut out, ContentType::Alert, 0, self.send_seq.take(0));
                out.extend_from_slice(&alert);
                record::finish(&mut out, start);
            }
        }
        self.out.push_back(out);
        self.state = State::Done;
        self.retransmit_at = None;
        error
    }
}

fn verify_with(
    key: &PublicKey,
    scheme: u16,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    if !certificate::VERIFIABLE.contains(&scheme) {
        return Err(Error::Refused("signed with a scheme we did not ask for"));
    }
    certificate::verify(key, scheme, message, signature)
}

/// Bytes of keying material a profile takes: both sides' keys and salts.
fn material_len(profile: u16) -> usize {
    match profile {
        0x0001 => 2 * (16 + 14),
        0x0007 => 2 * (16 + 12),
        _ => 2 * (32 + 12),
    }
}
