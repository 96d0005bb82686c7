//! One DTLS 1.2 association, sans-IO: datagrams and time in, datagrams and
//! events out. The record layer, reassembly, flights and their
//! retransmission (RFC 6347 §4.2.4) are the same for both roles; what each
//! role says in the handshake is in [`super::server`] and [`super::client`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Error;
use super::certificate::Signer;
use super::client::ClientHandshake;
use super::fragment::{self, FlightItem, Message, Reassembly, SendSeq};
use super::keys::KeyBlock;
use super::message::kind;
use super::record::{self, ContentType, Protection};
use super::server::ServerHandshake;
use crate::srtp::ReplayWindow;

/// The first wait for the answer to a flight (RFC 6347 §4.2.4.1).
const FIRST_RTO: Duration = Duration::from_secs(1);
const MAX_RTO: Duration = Duration::from_secs(8);
/// Retransmissions of a flight before the handshake is given up.
const MAX_RETRANSMITS: u32 = 8;
/// Epoch-1 records kept while the keys they need are still to come.
const MAX_EARLY_RECORDS: usize = 4;
/// Alert descriptions (RFC 5246 §7.2).
const CLOSE_NOTIFY: u8 = 0;

/// Decides whether the peer's certificate (DER) is the one the signalling named.
pub(crate) type AcceptCertificate = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// What the association hands its owner, in order.
#[derive(Debug)]
pub(crate) enum Event {
    /// The peer's certificate (DER), once `accept` took it.
    PeerCertificate(Vec<u8>),
    Connected,
    /// The SRTP keying material and the profile it is for.
    Keys(Vec<u8>, dimpl::SrtpProfile),
    ApplicationData(Vec<u8>),
    CloseNotify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    Connected,
    /// An error or a close: nothing more is read.
    Done,
}

/// What both roles' handshakes work with.
pub(super) struct Core {
    pub certificate: Vec<u8>,
    pub signer: Signer,
    accept: AcceptCertificate,
    mtu: usize,
    phase: Phase,
    reassembly: Reassembly,
    /// Every handshake message so far, as RFC 6347 §4.2.6 hashes them.
    pub transcript: Vec<u8>,
    read: Option<Protection>,
    write: Option<Protection>,
    /// Epoch 1's record numbers already accepted.
    replay: ReplayWindow,
    change_cipher_spec_seen: bool,
    send_seq: SendSeq,
    /// Our last flight, kept for retransmission.
    flight: Vec<FlightItem>,
    /// The first message sequence number of the peer's flight after ours: a
    /// message from before it repeats the flight ours answered, so ours was lost.
    peer_flight_start: u16,
    retransmit_at: Option<Instant>,
    rto: Duration,
    retransmits: u32,
    early: Vec<Vec<u8>>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    closing: bool,
    scratch: Vec<u8>,
}

impl Core {
    /// Adds a message to the transcript.
    pub fn record(&mut self, message: &Message) {
        Message::transcript_bytes(
            message.msg_type,
            message.seq,
            &message.body,
            &mut self.transcript,
        );
    }

    /// The peer's certificate from its Certificate message, once `accept`
    /// takes it; the owner hears of it.
    pub fn accept_certificate(&mut self, body: &[u8]) -> Result<Vec<u8>, Error> {
        let leaf = super::message::leaf_certificate(body)?
            .ok_or(Error::BadCertificate("none was sent"))?;
        super::certificate::public_key(leaf)?;
        if !(self.accept)(leaf) {
            return Err(Error::BadCertificate("not the one the signalling named"));
        }
        self.events.push_back(Event::PeerCertificate(leaf.to_vec()));
        Ok(leaf.to_vec())
    }

    /// Sends `flight`, kept for retransmission; by timer too when `timed`
    /// (every flight but a handshake's last).
    pub fn send_flight(&mut self, flight: Vec<FlightItem>, now: Instant, timed: bool) {
        self.flight = flight;
        self.peer_flight_start = self.reassembly.next_seq();
        self.transmit_flight();
        self.rto = FIRST_RTO;
        self.retransmits = 0;
        self.retransmit_at = timed.then_some(now + FIRST_RTO);
    }

    /// Finished must follow the peer's ChangeCipherSpec.
    pub fn expect_change_cipher_spec(&self) -> Result<(), Error> {
        if self.change_cipher_spec_seen {
            Ok(())
        } else {
            Err(Error::Refused("sent Finished before ChangeCipherSpec"))
        }
    }

    /// The peer has our last flight: no more retransmission of it by timer.
    pub fn flight_answered(&mut self) {
        self.retransmit_at = None;
    }

    fn transmit_flight(&mut self) {
        let datagrams = fragment::pack(
            &self.flight,
            self.mtu,
            &mut self.send_seq,
            self.write.as_ref(),
        );
        self.out.extend(datagrams);
    }

    /// Epoch 1's keys, from the key block, for this side.
    pub fn install_keys(&mut self, block: &KeyBlock, client: bool) {
        let client_keys = Protection::new(&block.client_key, &block.client_salt);
        let server_keys = Protection::new(&block.server_key, &block.server_salt);
        let (read, write) = if client {
            (server_keys, client_keys)
        } else {
            (client_keys, server_keys)
        };
        self.read = Some(read);
        self.write = Some(write);
    }

    /// The handshake is done: the owner gets the keys.
    pub fn connected(&mut self, (material, profile): (Vec<u8>, dimpl::SrtpProfile)) {
        self.phase = Phase::Connected;
        self.events.push_back(Event::Connected);
        self.events.push_back(Event::Keys(material, profile));
        self.transcript = Vec::new();
    }
}

enum Role {
    Server(ServerHandshake),
    Client(ClientHandshake),
}

/// One DTLS 1.2 association in either role.
pub(crate) struct Association {
    role: Role,
    core: Core,
}

impl std::fmt::Debug for Association {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Association")
            .field("phase", &self.core.phase)
            .finish_non_exhaustive()
    }
}

impl Association {
    /// An association presenting `certificate` (DER, with its PKCS#8 key) and
    /// taking the peer whose certificate `accept` takes. The check comes before
    /// any key is derived: a refused peer gets an alert, never keys.
    pub fn new(
        client: bool,
        certificate: &[u8],
        private_key: &[u8],
        mtu: usize,
        accept: AcceptCertificate,
    ) -> Result<Self, Error> {
        let core = Core {
            certificate: certificate.to_vec(),
            signer: Signer::from_pkcs8(private_key)?,
            accept,
            mtu,
            phase: Phase::Handshake,
            reassembly: Reassembly::default(),
            transcript: Vec::with_capacity(2048),
            read: None,
            write: None,
            replay: ReplayWindow::default(),
            change_cipher_spec_seen: false,
            send_seq: SendSeq::default(),
            flight: Vec::new(),
            peer_flight_start: 0,
            retransmit_at: None,
            rto: FIRST_RTO,
            retransmits: 0,
            early: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            closing: false,
            scratch: Vec::new(),
        };
        let role = if client {
            Role::Client(ClientHandshake::default())
        } else {
            Role::Server(ServerHandshake::default())
        };
        Ok(Association { role, core })
    }

    pub fn is_client(&self) -> bool {
        matches!(self.role, Role::Client(_))
    }

    pub fn is_connected(&self) -> bool {
        self.core.phase == Phase::Connected
    }

    /// Takes in a datagram. An error has ended the association; a fatal alert
    /// saying why is queued for the peer.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) -> Result<(), Error> {
        if self.core.phase == Phase::Done {
            return Ok(());
        }
        self.read_datagram(datagram, now).map_err(|e| self.fail(e))
    }

    fn read_datagram(&mut self, datagram: &[u8], now: Instant) -> Result<(), Error> {
        let mut resend = false;
        for record in record::records(datagram) {
            resend |= self.read_record(&record, now)?;
        }
        // Records of epoch 1 that overtook the key exchange they need.
        if self.core.read.is_some() && !self.core.early.is_empty() {
            for raw in std::mem::take(&mut self.core.early) {
                for record in record::records(&raw) {
                    resend |= self.read_record(&record, now)?;
                }
            }
        }
        if resend {
            self.core.transmit_flight();
        }
        Ok(())
    }

    /// Reads one record; true when it shows the peer did not get our last flight.
    fn read_record(&mut self, record: &record::Record, now: Instant) -> Result<bool, Error> {
        match record.epoch {
            0 => self.read_plain(record.content, record.fragment(), 0, now),
            1 => {
                let core = &mut self.core;
                let Some(read) = &core.read else {
                    if core.early.len() < MAX_EARLY_RECORDS {
                        core.early.push(record.raw.to_vec());
                    }
                    return Ok(false);
                };
                if core.replay.check(record.seq).is_err() {
                    return Ok(false);
                }
                let mut scratch = std::mem::take(&mut core.scratch);
                // A record that fails authentication is dropped (RFC 6347 §4.1.2.7).
                let result = match read.open(record, &mut scratch) {
                    Ok(plain) => {
                        core.replay.accept(record.seq);
                        self.read_plain(record.content, plain, 1, now)
                    }
                    Err(_) => Ok(false),
                };
                self.core.scratch = scratch;
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
        let core = &mut self.core;
        match content {
            ContentType::Handshake => {
                let mut repeated = false;
                for fragment in fragment::fragments(plain) {
                    let fragment = fragment?;
                    if (fragment.msg_type == kind::FINISHED) != (epoch == 1) {
                        return Err(Error::Refused(
                            "sent a handshake message in the wrong epoch",
                        ));
                    }
                    repeated |= fragment.seq < self.core.peer_flight_start;
                    self.core.reassembly.insert(&fragment)?;
                }
                while let Some(message) = self.core.reassembly.next() {
                    if self.core.phase != Phase::Handshake {
                        return Err(Error::Refused("started a second handshake"));
                    }
                    match &mut self.role {
                        Role::Server(s) => s.handle_message(&mut self.core, message, now)?,
                        Role::Client(c) => c.handle_message(&mut self.core, message, now)?,
                    }
                }
                Ok(repeated)
            }
            ContentType::ChangeCipherSpec => {
                if plain != [1] {
                    return Err(Error::Malformed("ChangeCipherSpec"));
                }
                core.change_cipher_spec_seen = true;
                Ok(false)
            }
            ContentType::Alert => {
                if plain.len() != 2 {
                    return Err(Error::Malformed("alert"));
                }
                if plain[1] == CLOSE_NOTIFY {
                    core.events.push_back(Event::CloseNotify);
                    core.phase = Phase::Done;
                    Ok(false)
                } else if plain[0] == 2 {
                    Err(Error::Alert(plain[1]))
                } else {
                    Ok(false)
                }
            }
            ContentType::ApplicationData => {
                if epoch == 1 && core.phase == Phase::Connected {
                    core.events
                        .push_back(Event::ApplicationData(plain.to_vec()));
                }
                Ok(false)
            }
        }
    }

    /// Starts the handshake where this side speaks first (the client), and
    /// retransmits the flight the peer has not answered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Role::Client(client) = &mut self.role
            && client.start(&mut self.core, now)
        {
            return Ok(());
        }
        let Some(at) = self.core.retransmit_at else {
            return Ok(());
        };
        if now < at {
            return Ok(());
        }
        let core = &mut self.core;
        if core.retransmits == MAX_RETRANSMITS {
            core.retransmit_at = None;
            return Err(self.fail(Error::Timeout(MAX_RETRANSMITS)));
        }
        core.retransmits += 1;
        core.rto = (core.rto * 2).min(MAX_RTO);
        core.retransmit_at = Some(now + core.rto);
        core.transmit_flight();
        Ok(())
    }

    pub fn timeout(&self) -> Option<Instant> {
        self.core.retransmit_at
    }

    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.core.out.pop_front()
    }

    pub fn peek_datagram_len(&self) -> Option<usize> {
        self.core.out.front().map(Vec::len)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// Queues `data` in one record; false before the handshake is done.
    pub fn send_application_data(&mut self, data: &[u8]) -> bool {
        let core = &mut self.core;
        let (Phase::Connected, Some(write)) = (core.phase, &core.write) else {
            return false;
        };
        let mut out = Vec::with_capacity(record::HEADER + record::OVERHEAD + data.len());
        write.seal(
            &mut out,
            ContentType::ApplicationData,
            core.send_seq.take(1),
            data,
        );
        core.out.push_back(out);
        true
    }

    /// Sends close_notify; nothing is read after it.
    pub fn close(&mut self) {
        let core = &mut self.core;
        if let (Phase::Connected, Some(write)) = (core.phase, &core.write) {
            let mut out = Vec::new();
            write.seal(
                &mut out,
                ContentType::Alert,
                core.send_seq.take(1),
                &[1, CLOSE_NOTIFY],
            );
            core.out.push_back(out);
        }
        core.closing = true;
        core.phase = Phase::Done;
        core.retransmit_at = None;
    }

    pub fn is_closing(&self) -> bool {
        self.core.closing && !self.core.out.is_empty()
    }

    pub fn is_closed(&self) -> bool {
        self.core.phase == Phase::Done && self.core.out.is_empty()
    }

    /// Ends the association over `error`, telling the peer why (unless the
    /// peer's own fatal alert ended it).
    fn fail(&mut self, error: Error) -> Error {
        let core = &mut self.core;
        let connected = core.phase == Phase::Connected;
        core.phase = Phase::Done;
        core.retransmit_at = None;
        if matches!(error, Error::Alert(_)) {
            return error;
        }
        let alert = [2, error.alert()];
        let mut out = Vec::new();
        match &core.write {
            Some(write) if connected => {
                write.seal(&mut out, ContentType::Alert, core.send_seq.take(1), &alert)
            }
            _ => {
                let start = record::begin(&mut out, ContentType::Alert, 0, core.send_seq.take(0));
                out.extend_from_slice(&alert);
                record::finish(&mut out, start);
            }
        }
        core.out.push_back(out);
        error
    }
}
