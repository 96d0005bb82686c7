//! A test participant: a WebRTC peer of its own (str0m, direct API) on a
//! real UDP socket, speaking full ICE as the controlled agent, DTLS as the
//! client (`setup=active`, as browsers answer) and SRTP, the way a browser
//! meets the bridge after Jingle.

pub mod setup;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use sfu::api::{LocalTransport, RemoteTransport, Setup};
use str0m::format::Codec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

pub const OPUS: u8 = 111;
pub const VP8: u8 = 100;
/// A video SSRC's RTX pair is the SSRC plus this (as `join` signals the FID groups).
pub const RTX_OFFSET: u32 = 10;

/// RTP, not RTCP, by RFC 7983's first byte and RFC 5761's payload types.
fn is_rtp(buf: &[u8]) -> bool {
    buf.len() >= 12 && (128..192).contains(&buf[0]) && !(72..80).contains(&(buf[1] & 0x7F))
}

/// A packet as the participant received it.
#[derive(Debug, Clone)]
pub struct Got {
    pub seq: u64,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

pub struct Participant {
    pub name: String,
    rtc: Rtc,
    /// Its DTLS certificate (DER), to name it by any hash.
    certificate: Vec<u8>,
    socket: UdpSocket,
    addr: SocketAddr,
    pub connected: bool,
    /// Received packets by SSRC.
    pub got: HashMap<u32, Vec<Got>>,
    /// Key frame requests the bridge sent us, by our SSRC.
    pub keyframe_requests: HashMap<u32, usize>,
    /// The latest sender report the bridge sent for each SSRC: RTP time, NTP time.
    pub reports: HashMap<u32, (u32, SystemTime)>,
    rids: HashMap<Rid, u32>,
    seq: HashMap<u32, u64>,
    /// Incoming RTP datagrams (counted by arrival from 0, RTCP not counted)
    /// that this participant's network loses before its stack sees them.
    pub lose: Vec<usize>,
    rtp_in: usize,
    /// Outgoing RTP datagrams (counted from 0) its network loses on the way
    /// to the bridge.
    pub lose_out: Vec<usize>,
    rtp_out: usize,
}

impl Participant {
    /// Prepares a peer for the bridge's side of the transport.
    pub fn new(name: &str, bridge: &LocalTransport) -> Participant {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .unwrap();
        let certificate = cert.certificate.clone();
        let mut config = RtcConfig::new()
            .set_dtls_cert(cert)
            .set_rtp_mode(true)
            .clear_codecs()
            .clear_extension_map()
            .set_extension(1, Extension::AudioLevel)
            .set_extension(3, Extension::AbsoluteSendTime)
            .set_extension(5, Extension::TransportSequenceNumber);
        let codecs = config.codec_config();
        codecs.add_config(
            Pt::from(OPUS),
            None,
            Codec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            Default::default(),
        );
        codecs.add_config(
            Pt::from(VP8),
            Some(Pt::from(96)),
            Codec::Vp8,
            Frequency::NINETY_KHZ,
            None,
            Default::default(),
        );
        let mut rtc = config.build(Instant::now());
        let mut api = rtc.direct_api();
        api.set_ice_controlling(false);
        api.declare_media(Mid::from("audio"), MediaKind::Audio);
        api.declare_media(Mid::from("video"), MediaKind::Video);
        api.set_remote_ice_credentials(IceCreds {
            ufrag: bridge.ufrag.clone(),
            pass: bridge.pwd.clone(),
        });
        let fp: str0m::config::Fingerprint =
            format!("{} {}", bridge.fingerprint_hash, bridge.fingerprint)
                .parse()
                .unwrap();
        api.set_remote_fingerprint(fp);
        api.start_dtls(true).unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        for c in &bridge.candidates {
            rtc.add_remote_candidate(Candidate::host(c.address, "udp").unwrap());
        }
        Participant {
            name: name.into(),
            rtc,
            certificate,
            socket,
            addr,
            connected: false,
            got: HashMap::new(),
            keyframe_requests: HashMap::new(),
            reports: HashMap::new(),
            rids: HashMap::new(),
            seq: HashMap::new(),
            lose: Vec::new(),
            rtp_in: 0,
            lose_out: Vec::new(),
            rtp_out: 0,
        }
    }

    /// The answer's transport, for the bridge.
    pub fn remote(&mut self) -> RemoteTransport {
        let creds = self.rtc.direct_api().local_ice_credentials();
        let fp = self.rtc.direct_api().local_dtls_fingerprint().to_string();
        let (hash, hex) = fp.split_once(' ').unwrap();
        RemoteTransport {
            ufrag: creds.ufrag,
            pwd: creds.pass,
            fingerprint_hash: hash.into(),
            fingerprint: hex.into(),
            setup: Setup::Active,
            candidates: vec![self.addr],
        }
    }

    /// The answer's transport with the certificate named by `hash` (RFC 8122
    /// names; the digest of `certificate`, or of this participant's own).
    pub fn remote_named(&mut self, hash: &str, certificate: Option<&[u8]>) -> RemoteTransport {
        use aws_lc_rs::digest;
        let algorithm = match hash {
            "sha-256" => &digest::SHA256,
            "sha-384" => &digest::SHA384,
            "sha-512" => &digest::SHA512,
            other => panic!("no test digest for {other}"),
        };
        let der = certificate.unwrap_or(&self.certificate);
        let hex: Vec<String> = digest::digest(algorithm, der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        RemoteTransport {
            fingerprint_hash: hash.into(),
            fingerprint: hex.join(":"),
            ..self.remote()
        }
    }

    /// Declares what we send; simulcast layers get rids so key frame requests can be told apart.
    pub fn send_streams(&mut self, audio: u32, video_layers: &[u32]) {
        let mut api = self.rtc.direct_api();
        api.declare_stream_tx(
            Ssrc::from(audio),
            None,
            Mid::from("audio"),
            Some(Rid::from("a")),
        );
        for (i, s) in video_layers.iter().enumerate() {
            let rid = Rid::from(format!("l{i}").as_str());
            // Each layer has its RTX pair (the FID groups `join` signals), as browsers send.
            let rtx = Some(Ssrc::from(s + RTX_OFFSET));
            api.declare_stream_tx(Ssrc::from(*s), rtx, Mid::from("video"), Some(rid));
            self.rids.insert(rid, *s);
        }
    }

    /// Asks the bridge for a key frame of a remote video source, as a decoder
    /// that lost its picture does.
    pub fn request_keyframe(&mut self, ssrc: u32) {
        if let Some(rx) = self.rtc.direct_api().stream_rx(&Ssrc::from(ssrc)) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
    }

    /// Sends transport-wide feedback on what it receives, as browsers do,
    /// so the bridge estimates its downlink.
    pub fn send_transport_feedback(&mut self) {
        self.rtc.direct_api().enable_twcc_feedback();
    }

    /// Expects media on a remote SSRC (as signalled in a source-add).
    pub fn expect(&mut self, ssrc: u32, kind: MediaKind) {
        let mid = Mid::from(if kind == MediaKind::Audio {
            "audio"
        } else {
            "video"
        });
        // A browser knows the RTX SSRC from the source's FID group; without it,
        // str0m drops the bridge's retransmissions as an unknown SSRC (no mid
        // extension to map it by).
        let rtx = (kind == MediaKind::Video).then(|| Ssrc::from(ssrc + RTX_OFFSET));
        self.rtc
            .direct_api()
            .expect_stream_rx(Ssrc::from(ssrc), rtx, mid, None);
    }

    fn next_seq(&mut self, ssrc: u32) -> SeqNo {
        let s = self.seq.entry(ssrc).or_insert(1000);
        *s += 1;
        SeqNo::from(*s)
    }

    pub fn send_audio(&mut self, ssrc: u32, timestamp: u32, level: i8, payload: Vec<u8>) {
        self.send_audio_captured(ssrc, timestamp, Instant::now(), level, payload);
    }

    /// Audio captured at `captured` (the wallclock behind our sender reports).
    pub fn send_audio_captured(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        captured: Instant,
        level: i8,
        payload: Vec<u8>,
    ) {
        let seq = self.next_seq(ssrc);
        let ext = ExtensionValues {
            audio_level: Some(level),
            voice_activity: Some(level > -127),
            ..Default::default()
        };
        if let Some(tx) = self.rtc.direct_api().stream_tx(&Ssrc::from(ssrc)) {
            tx.write_rtp(
                RtpWrite::new(Pt::from(OPUS), seq, timestamp, captured, payload).ext_vals(ext),
            );
        }
    }

    pub fn send_video(&mut self, ssrc: u32, timestamp: u32, payload: Vec<u8>) {
        self.send_video_captured(ssrc, timestamp, Instant::now(), payload);
    }

    /// A video frame captured at `captured`, sent now (after encoding).
    pub fn send_video_captured(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        captured: Instant,
        payload: Vec<u8>,
    ) {
        let seq = self.next_seq(ssrc);
        if let Some(tx) = self.rtc.direct_api().stream_tx(&Ssrc::from(ssrc)) {
            tx.write_rtp(
                RtpWrite::new(Pt::from(VP8), seq, timestamp, captured, payload)
                    .marker(true)
                    .nackable(true),
            );
        }
    }

    /// Moves datagrams both ways and takes events, for about `budget`.
    pub fn poll(&mut self, budget: Duration) {
        let until = Instant::now() + budget;
        let mut buf = [0u8; 2048];
        loop {
            let now = Instant::now();
            while let Ok((n, source)) = self.socket.recv_from(&mut buf) {
                if is_rtp(&buf[..n]) {
                    let index = self.rtp_in;
                    self.rtp_in += 1;
                    if self.lose.contains(&index) {
                        continue;
                    }
                }
                if let Ok(r) = Receive::new(Protocol::Udp, source, self.addr, &buf[..n]) {
                    let _ = self.rtc.handle_input(Input::Receive(now, r));
                    self.drain();
                }
            }
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain();
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    if is_rtp(&t.contents) {
                        let index = self.rtp_out;
                        self.rtp_out += 1;
                        if self.lose_out.contains(&index) {
                            continue;
                        }
                    }
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Timeout(_)) | Err(_) => break,
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(Event::RtpPacket(p))) => {
                    self.got.entry(*p.header.ssrc).or_default().push(Got {
                        seq: *p.seq_no,
                        timestamp: p.header.timestamp,
                        payload: p.payload.to_vec(),
                    });
                }
                Ok(Output::Event(Event::SenderFeedback(f))) => {
                    let info = f.sender_info;
                    self.reports
                        .insert(*info.ssrc, (info.rtp_time.numer() as u32, info.ntp_time));
                }
                Ok(Output::Event(Event::KeyframeRequest(r))) => {
                    if let Some(ssrc) = r.rid.and_then(|rid| self.rids.get(&rid)) {
                        *self.keyframe_requests.entry(*ssrc).or_default() += 1;
                    }
                    let _ = r.kind == KeyframeRequestKind::Pli;
                }
                Ok(Output::Event(_)) => {}
            }
        }
    }

    /// RTP datagrams it has sent so far.
    pub fn rtp_sent(&self) -> usize {
        self.rtp_out
    }

    /// Reads what reached this participant's address without processing it
    /// (its client has gone away but the address still takes datagrams), and
    /// counts the RTP and RTCP among it.
    pub fn discard_arrivals(&self) -> usize {
        let mut buf = [0u8; 2048];
        let mut media = 0;
        while let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            media += usize::from((128..=191).contains(&buf[..n][0]));
        }
        media
    }

    /// Sends raw bytes from this participant's own address (a broken or hostile client).
    pub fn send_raw(&self, to: SocketAddr, data: &[u8]) {
        let _ = self.socket.send_to(data, to);
    }

    pub fn payloads_from(&self, ssrc: u32) -> Vec<Vec<u8>> {
        self.got
            .get(&ssrc)
            .map(|v| v.iter().map(|g| g.payload.clone()).collect())
            .unwrap_or_default()
    }
}
