//! Our DTLS associations against dimpl's (str0m's own stack) and each other,
//! through the interface str0m uses.

use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use str0m::crypto::dtls::{DtlsCert, DtlsInstance, DtlsOutput, DtlsVersion};

use super::association::Association;
use super::record::{self, ContentType};
use super::{DTLS, DtlsProvider, DtlsTap, take_created_tap};

/// What an association gave when polled, owned.
#[derive(Debug)]
enum Out {
    Packet(Vec<u8>),
    Connected,
    PeerCert,
    Keys(Vec<u8>, dimpl::SrtpProfile),
    Data(Vec<u8>),
    Close,
}

/// One end of a test association: ours, or dimpl's.
enum Side {
    Ours(Box<dyn DtlsInstance>, DtlsTap),
    Dimpl(Box<dimpl::Dtls>),
}

macro_rules! drain {
    ($dtls:expr) => {{
        let mut buf = vec![0u8; 2000];
        let mut outs = Vec::new();
        loop {
            match $dtls.poll_output(&mut buf) {
                DtlsOutput::Packet(p) => outs.push(Out::Packet(p.to_vec())),
                DtlsOutput::Connected => outs.push(Out::Connected),
                DtlsOutput::PeerCert(_) => outs.push(Out::PeerCert),
                DtlsOutput::KeyingMaterial(m, p) => outs.push(Out::Keys(m.to_vec(), p)),
                DtlsOutput::ApplicationData(d) => outs.push(Out::Data(d.to_vec())),
                DtlsOutput::CloseNotify => outs.push(Out::Close),
                DtlsOutput::Timeout(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        outs
    }};
}

impl Side {
    /// Ours, expecting the peer's certificate `peer` by its SHA-256.
    fn ours(client: bool, own: &DtlsCert, peer: &[u8], now: Instant) -> Side {
        let mut dtls = DTLS.new_dtls(own, now, DtlsVersion::Dtls12, None).unwrap();
        let tap = take_created_tap().unwrap();
        tap.expect(
            "sha-256",
            digest::digest(&digest::SHA256, peer).as_ref().to_vec(),
        );
        dtls.set_active(client);
        dtls.handle_timeout(now).unwrap();
        Side::Ours(dtls, tap)
    }

    /// dimpl's, as str0m configures it (a server asks for a cookie).
    fn dimpl(client: bool, own: &DtlsCert, now: Instant) -> Side {
        Side::dimpl_with(client, own, now, dimpl::Config::builder())
    }

    /// dimpl's DTLS 1.2, configured by `config`.
    fn dimpl_with(
        client: bool,
        own: &DtlsCert,
        now: Instant,
        config: dimpl::ConfigBuilder,
    ) -> Side {
        Side::dimpl_made(dimpl::Dtls::new_12, client, own, now, config)
    }

    /// dimpl's client as it speaks to a server of either version: one
    /// ClientHello offering DTLS 1.3 and 1.2, as a browser with DTLS 1.3 on sends.
    fn dimpl_either_version_client(own: &DtlsCert, mtu: usize, now: Instant) -> Side {
        let config = dimpl::Config::builder().mtu(mtu);
        Side::dimpl_made(dimpl::Dtls::new_auto, true, own, now, config)
    }

    /// dimpl's, made by `make` (which versions it speaks) from `config`.
    fn dimpl_made(
        make: fn(std::sync::Arc<dimpl::Config>, dimpl::DtlsCertificate, Instant) -> dimpl::Dtls,
        client: bool,
        own: &DtlsCert,
        now: Instant,
        config: dimpl::ConfigBuilder,
    ) -> Side {
        let cert = dimpl::DtlsCertificate {
            certificate: own.certificate.clone(),
            private_key: own.private_key.clone(),
        };
        let mut dtls = make(std::sync::Arc::new(config.build().unwrap()), cert, now);
        dtls.set_active(client);
        dtls.handle_timeout(now).unwrap();
        Side::Dimpl(Box::new(dtls))
    }

    fn drain(&mut self) -> Vec<Out> {
        match self {
            Side::Ours(d, _) => drain!(d),
            Side::Dimpl(d) => drain!(d),
        }
    }

    fn handle_packet(&mut self, p: &[u8]) -> bool {
        match self {
            Side::Ours(d, _) => d.handle_packet(p).is_ok(),
            Side::Dimpl(d) => d.handle_packet(p).is_ok(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let _ = match self {
            Side::Ours(d, _) => d.handle_timeout(now),
            Side::Dimpl(d) => d.handle_timeout(now),
        };
    }

    fn send(&mut self, data: &[u8]) -> usize {
        match self {
            Side::Ours(d, _) => d.send_application_data(data).unwrap(),
            Side::Dimpl(d) => d.send_application_data(data).unwrap(),
        }
    }

    fn tap(&self) -> &DtlsTap {
        match self {
            Side::Ours(_, tap) => tap,
            Side::Dimpl(_) => panic!("dimpl's side has no tap"),
        }
    }
}

fn packets(outs: &[Out]) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Packet(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn keys(outs: &[Out]) -> Option<(Vec<u8>, dimpl::SrtpProfile)> {
    outs.iter().find_map(|o| match o {
        Out::Keys(m, p) => Some((m.clone(), *p)),
        _ => None,
    })
}

fn certificate() -> DtlsCert {
    DTLS.generate_certificate().unwrap()
}

/// A client and a server, each seeing the other's datagrams as `round` lets them.
struct Pair {
    client: Side,
    server: Side,
    now: Instant,
    client_outs: Vec<Out>,
    server_outs: Vec<Out>,
}

impl Pair {
    /// A dimpl client and our server.
    fn new() -> Pair {
        Pair::expecting(None)
    }

    /// A dimpl client and our server expecting the certificate `other`
    /// instead of the client's own.
    fn expecting(other: Option<&[u8]>) -> Pair {
        let now = Instant::now();
        let (client_cert, server_cert) = (certificate(), certificate());
        let server = Side::ours(
            false,
            &server_cert,
            other.unwrap_or(&client_cert.certificate),
            now,
        );
        Pair::of(Side::dimpl(true, &client_cert, now), server, now)
    }

    /// Our client against `server`, made with the client's certificate.
    fn our_client(server: impl FnOnce(&DtlsCert, &DtlsCert, Instant) -> Side) -> Pair {
        let now = Instant::now();
        let (client_cert, server_cert) = (certificate(), certificate());
        let server = server(&server_cert, &client_cert, now);
        let client = Side::ours(true, &client_cert, &server_cert.certificate, now);
        Pair::of(client, server, now)
    }

    fn of(client: Side, server: Side, now: Instant) -> Pair {
        Pair {
            client,
            server,
            now,
            client_outs: Vec::new(),
            server_outs: Vec::new(),
        }
    }

    /// One exchange each way; `keep` decides which datagrams arrive.
    fn round(&mut self, keep: &mut dyn FnMut(bool, &mut Vec<u8>) -> bool) {
        let outs = self.client.drain();
        for mut p in packets(&outs) {
            if keep(true, &mut p) {
                self.server.handle_packet(&p);
            }
        }
        self.client_outs.extend(outs);
        let outs = self.server.drain();
        for mut p in packets(&outs) {
            if keep(false, &mut p) {
                self.client.handle_packet(&p);
            }
        }
        self.server_outs.extend(outs);
    }

    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.round(&mut |_, _| true);
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    fn connected(&self) -> (bool, bool) {
        let c = |outs: &[Out]| outs.iter().any(|o| matches!(o, Out::Connected));
        (c(&self.client_outs), c(&self.server_outs))
    }

    /// Both connected, with the same keys for `profile`; data crosses both ways.
    fn assert_agreed(&mut self, profile: dimpl::SrtpProfile) {
        assert_eq!(self.connected(), (true, true));
        let (client_keys, client_profile) = keys(&self.client_outs).unwrap();
        let (server_keys, server_profile) = keys(&self.server_outs).unwrap();
        assert_eq!((client_profile, server_profile), (profile, profile));
        assert_eq!(client_keys, server_keys);
        assert_eq!(self.client.send(b"from the client"), 15);
        assert_eq!(self.server.send(b"from the server"), 15);
        self.run(2);
        let got =
            |outs: &[Out], want: &[u8]| outs.iter().any(|o| matches!(o, Out::Data(d) if d == want));
        assert!(got(&self.server_outs, b"from the client"));
        assert!(got(&self.client_outs, b"from the server"));
    }
}

#[test]
fn a_client_offering_aes_256_gcm_first_is_given_aes_128_gcm() {
    let mut pair = Pair::new();
    pair.run(4);
    pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
    assert_eq!(keys(&pair.server_outs).unwrap().0.len(), 56);
    let keys = pair.server.tap().take_keys().unwrap();
    assert_eq!(keys.profile, crate::srtp::Profile::AeadAes128Gcm);
    assert!(!keys.dtls_client);
}

#[test]
fn a_client_offering_dtls_1_3_too_gets_1_2_even_with_its_hello_in_pieces() {
    // Its hello (1,125 bytes with its DTLS 1.3 key shares) whole, then cut to fit 400-byte datagrams.
    for mtu in [1150, 400] {
        let now = Instant::now();
        let (client_cert, server_cert) = (certificate(), certificate());
        let server = Side::ours(false, &server_cert, &client_cert.certificate, now);
        let client = Side::dimpl_either_version_client(&client_cert, mtu, now);
        let mut pair = Pair::of(client, server, now);
        pair.run(4);
        pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
        let Side::Dimpl(client) = &pair.client else {
            unreachable!()
        };
        assert_eq!(
            client.protocol_version(),
            Some(dimpl::ProtocolVersion::DTLS1_2),
            "MTU {mtu}"
        );
    }
}

#[test]
fn our_client_and_our_server_agree() {
    let mut pair =
        Pair::our_client(|own, peer, now| Side::ours(false, own, &peer.certificate, now));
    pair.run(4);
    pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
    assert!(pair.client.tap().take_keys().unwrap().dtls_client);
}

#[test]
fn our_client_answers_a_cookie_and_offers_dimpl_only_videobridges_profiles() {
    // dimpl's server asks for a cookie and would pick AES-256-GCM if offered.
    let mut pair = Pair::our_client(|own, _, now| Side::dimpl(false, own, now));
    pair.run(5);
    let hello_verify_request = |p: &Vec<u8>| {
        record::records(p).any(|r| r.content == ContentType::Handshake && r.fragment()[0] == 3)
    };
    assert!(packets(&pair.server_outs).iter().any(hello_verify_request));
    pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
}

/// The group of the ServerKeyExchange among `outs`.
fn key_exchange_group(outs: &[Out]) -> Option<u16> {
    packets(outs).iter().find_map(|p| {
        record::records(p)
            .filter(|r| r.content == ContentType::Handshake && r.epoch == 0)
            .flat_map(|r| super::fragment::fragments(r.fragment()).flatten())
            .find(|f| f.msg_type == 12)
            .map(|f| u16::from_be_bytes([f.body[1], f.body[2]]))
    })
}

#[test]
fn every_key_exchange_group_works_in_both_roles() {
    use dimpl::NamedGroup;
    for group in [
        NamedGroup::X25519,
        NamedGroup::Secp256r1,
        NamedGroup::Secp384r1,
    ] {
        let only = || dimpl::Config::builder().kx_groups(&[group]);
        let now = Instant::now();
        let (client_cert, server_cert) = (certificate(), certificate());
        let client = Side::dimpl_with(true, &client_cert, now, only());
        let server = Side::ours(false, &server_cert, &client_cert.certificate, now);
        let mut pair = Pair::of(client, server, now);
        pair.run(4);
        pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
        assert_eq!(key_exchange_group(&pair.server_outs), Some(group.as_u16()));

        let mut pair = Pair::our_client(|own, _, now| Side::dimpl_with(false, own, now, only()));
        pair.run(5);
        pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
    }
}

#[test]
fn our_client_resends_its_flights_until_answered() {
    let mut pair =
        Pair::our_client(|own, peer, now| Side::ours(false, own, &peer.certificate, now));
    // Its ClientHello and then its second flight are lost once each.
    let mut lost = [false; 2];
    for _ in 0..6 {
        pair.round(&mut |from_client, p| {
            let first = record::records(p)
                .next()
                .map(|r| (r.content, r.fragment().first().copied()));
            let at = match first {
                Some((ContentType::Handshake, Some(1))) => 0,
                Some((ContentType::Handshake, Some(11))) => 1,
                _ => return true,
            };
            !from_client || std::mem::replace(&mut lost[at], true)
        });
        pair.advance(Duration::from_millis(1100));
    }
    assert_eq!(lost, [true, true]);
    pair.assert_agreed(dimpl::SrtpProfile::AEAD_AES_128_GCM);
}

#[test]
fn a_lost_first_flight_is_sent_again_by_timer() {
    let mut pair = Pair::new();
    pair.round(&mut |from_client, _| from_client);
    assert_eq!(pair.connected(), (false, false));
    pair.advance(Duration::from_millis(1100));
    // The client's own retransmission is lost too: the flight that gets
    // through is the one our timer sent.
    pair.round(&mut |from_client, _| !from_client);
    pair.run(4);
    assert_eq!(pair.connected(), (true, true));
}

#[test]
fn a_lost_last_flight_is_sent_again_when_the_client_repeats_its_own() {
    let mut pair = Pair::new();
    pair.round(&mut |_, _| true); // ClientHello, flight 4
    pair.round(&mut |from_client, _| from_client); // flight 5 arrives, flight 6 is lost
    assert_eq!(pair.connected(), (false, true));
    for _ in 0..4 {
        pair.advance(Duration::from_secs(2));
        pair.round(&mut |_, _| true);
    }
    assert_eq!(pair.connected(), (true, true));
}

#[test]
fn garbage_and_a_forged_record_leave_the_handshake_going() {
    let mut pair = Pair::new();
    pair.round(&mut |_, _| true);
    for garbage in [
        vec![22, 0xfe, 0xfd, 0, 0],
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 40, 1, 2, 3],
        (0..200u8).collect(),
    ] {
        assert!(pair.server.handle_packet(&garbage));
    }
    // The client's Finished, altered, fails authentication and is dropped;
    // its retransmission completes the handshake.
    pair.round(&mut |from_client, p| {
        if from_client {
            *p.last_mut().unwrap() ^= 0x40;
        }
        true
    });
    assert_eq!(pair.connected(), (false, false));
    for _ in 0..4 {
        pair.advance(Duration::from_secs(2));
        pair.round(&mut |_, _| true);
    }
    assert_eq!(pair.connected(), (true, true));
}

#[test]
fn a_certificate_other_than_the_named_one_gets_an_alert_and_no_keys() {
    let other = DTLS.generate_certificate().unwrap();
    let mut pair = Pair::expecting(Some(&other.certificate));
    pair.run(4);
    assert_eq!(pair.connected(), (false, false));
    assert!(keys(&pair.server_outs).is_none());
    assert!(pair.server.tap().refused());
    let alert = packets(&pair.server_outs).pop().unwrap();
    let record = record::records(&alert).next().unwrap();
    assert_eq!(
        (record.content, record.fragment()),
        (ContentType::Alert, &[2, 42][..]),
        "fatal bad_certificate"
    );
}

#[test]
fn a_repeat_of_the_flight_still_coming_is_not_answered_with_ours() {
    // The client's second flight arrives with its Finished spoiled (dropped),
    // then again, as a client resending it would: the server still waits for
    // that flight and has nothing to send (its first flight went out again
    // for each such repeat before).
    let mut pair = Pair::new();
    pair.run(1);
    let flight = packets(&pair.client.drain());
    assert!(!flight.is_empty());
    for _ in 0..2 {
        for p in &flight {
            let mut p = p.clone();
            *p.last_mut().unwrap() ^= 0x40;
            assert!(pair.server.handle_packet(&p));
        }
        assert!(packets(&pair.server.drain()).is_empty());
    }
    // The flight it answered, repeated, is answered again.
    let hello = packets(&pair.client_outs);
    assert!(pair.server.handle_packet(&hello[0]));
    assert!(!packets(&pair.server.drain()).is_empty());
}

/// Flips a bit of the signature in the client's CertificateVerify (epoch 0, in the clear).
fn spoil_certificate_verify(datagram: &mut [u8]) -> bool {
    let mut at = None;
    for record in record::records(datagram) {
        let start = record.raw.as_ptr() as usize - datagram.as_ptr() as usize;
        if record.content == ContentType::Handshake
            && record.epoch == 0
            && record.fragment()[0] == 15
        {
            at = Some(start + record.raw.len() - 1);
        }
    }
    at.map(|at| datagram[at] ^= 1).is_some()
}

#[test]
fn a_certificate_verify_that_does_not_verify_ends_the_handshake_with_an_alert() {
    let mut pair = Pair::new();
    pair.round(&mut |_, _| true);
    let outs = pair.client.drain();
    let mut spoiled = false;
    let mut failed = false;
    for mut p in packets(&outs) {
        spoiled |= spoil_certificate_verify(&mut p);
        failed |= !pair.server.handle_packet(&p);
    }
    assert!(spoiled && failed);
    let alert = packets(&pair.server.drain());
    let record = record::records(&alert[0]).next().unwrap();
    assert_eq!(record.content, ContentType::Alert);
    assert_eq!(record.fragment(), [2, 51], "fatal decrypt_error");
    // Nothing after it is taken.
    for p in packets(&outs) {
        assert!(pair.server.handle_packet(&p));
    }
    assert_eq!(pair.connected(), (false, false));
}

/// A ClientHello (in its record) offering these SRTP profiles.
fn client_hello(profiles: &[u16], groups: &[u16]) -> Vec<u8> {
    let mut body = vec![0xfe, 0xfd];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 0, 2, 0xc0, 0x2b, 1, 0]);
    let mut exts = vec![0, 14];
    exts.extend_from_slice(&((profiles.len() * 2 + 3) as u16).to_be_bytes());
    exts.extend_from_slice(&((profiles.len() * 2) as u16).to_be_bytes());
    profiles
        .iter()
        .for_each(|p| exts.extend_from_slice(&p.to_be_bytes()));
    exts.push(0);
    exts.extend_from_slice(&[0, 10]);
    exts.extend_from_slice(&((groups.len() * 2 + 2) as u16).to_be_bytes());
    exts.extend_from_slice(&((groups.len() * 2) as u16).to_be_bytes());
    groups
        .iter()
        .for_each(|g| exts.extend_from_slice(&g.to_be_bytes()));
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);

    let mut out = Vec::new();
    let start = record::begin(&mut out, ContentType::Handshake, 0, 0);
    out.push(1);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[0, 0, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&body);
    record::finish(&mut out, start);
    out
}

/// The SRTP profile our ServerHello picks for a ClientHello, or the alert it gets.
fn answer(profiles: &[u16], groups: &[u16]) -> Result<u16, Vec<u8>> {
    let cert = DTLS.generate_certificate().unwrap();
    let mut server = Association::new(
        false,
        &cert.certificate,
        &cert.private_key,
        1150,
        Box::new(|_| true),
    )
    .unwrap();
    let result = server.handle_datagram(&client_hello(profiles, groups), Instant::now());
    let first = server.poll_datagram().unwrap();
    let record = record::records(&first).next().unwrap();
    if result.is_err() {
        return Err(record.fragment().to_vec());
    }
    let hello = &record.fragment()[12..];
    let srtp = hello.windows(4).position(|w| w == [0, 14, 0, 5]).unwrap();
    Ok(u16::from_be_bytes([hello[srtp + 6], hello[srtp + 7]]))
}

#[test]
fn the_srtp_profile_is_picked_in_videobridges_order() {
    assert_eq!(answer(&[8, 7, 1], &[29]), Ok(7));
    assert_eq!(answer(&[8, 1], &[23]), Ok(1));
    assert_eq!(answer(&[8], &[24]), Ok(8));
    assert_eq!(
        answer(&[2, 5], &[29]),
        Err(vec![2, 40]),
        "no profile in common"
    );
    assert_eq!(answer(&[7], &[30]), Err(vec![2, 40]), "no group in common");
}

/// A small deterministic generator for the altered datagrams.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below.max(1) as u64) as usize
    }

    /// `datagram` with bytes flipped, cut short, or a record repeated.
    fn alter(&mut self, datagram: &[u8]) -> Vec<u8> {
        let mut out = datagram.to_vec();
        match self.next(3) {
            0 => {
                for _ in 0..1 + self.next(4) {
                    let at = self.next(out.len());
                    out[at] ^= 1 << self.next(8);
                }
            }
            1 => out.truncate(self.next(out.len())),
            _ => out.extend_from_slice(&datagram[..self.next(datagram.len())]),
        }
        out
    }
}

#[test]
fn altered_datagrams_in_every_handshake_state_never_panic_either_role() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut completed = 0;
    for _ in 0..150 {
        let mut pair =
            Pair::our_client(|own, peer, now| Side::ours(false, own, &peer.certificate, now));
        for _ in 0..6 {
            // Each side gets an altered copy of each datagram, then the datagram.
            for from_client in [true, false] {
                let (from, to) = if from_client {
                    (&mut pair.client, &mut pair.server)
                } else {
                    (&mut pair.server, &mut pair.client)
                };
                let outs = from.drain();
                for p in packets(&outs) {
                    if rng.next(2) == 0 {
                        to.handle_packet(&rng.alter(&p));
                    }
                    to.handle_packet(&p);
                }
                if from_client {
                    pair.client_outs.extend(outs);
                } else {
                    pair.server_outs.extend(outs);
                }
            }
            pair.advance(Duration::from_millis(1100));
        }
        completed += usize::from(pair.connected() == (true, true));
    }
    // Most alterations are dropped (bad records) or seen as repeats; some end a
    // handshake with an alert, as they should.
    assert!(completed > 0, "no handshake survived: {completed}");
}

#[test]
fn a_peers_fatal_alert_ends_the_association_without_one_back() {
    let cert = certificate();
    let mut server = Association::new(
        false,
        &cert.certificate,
        &cert.private_key,
        1150,
        Box::new(|_| true),
    )
    .unwrap();
    let mut alert = Vec::new();
    let start = record::begin(&mut alert, ContentType::Alert, 0, 0);
    alert.extend_from_slice(&[2, 40]);
    record::finish(&mut alert, start);
    assert!(server.handle_datagram(&alert, Instant::now()).is_err());
    assert!(server.poll_datagram().is_none());
    assert!(server.is_closed());
}
