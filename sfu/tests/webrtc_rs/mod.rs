//! A second, independent test participant: webrtc-rs 0.21 (the sans-IO `rtc`
//! crate) on a real UDP socket. Unlike the str0m participant it is driven
//! only by SDP, as a browser is: it synthesises the offer that
//! lib-jitsi-meet would build from the bridge's Jingle session-initiate,
//! answers it (ICE controlled, DTLS client, `setup=active`) and hands the
//! bridge a `RemoteTransport` taken from the answer, as session-accept does.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol as _;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu::api::{LocalTransport, RemoteTransport, Setup};

pub const OPUS: u8 = 111;
/// The bridge's audio level extension id (RFC 6464); the offer maps it so
/// the answer, and so our sender, uses the same id.
const EXT_AUDIO_LEVEL: u8 = 1;
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

pub struct WebrtcRsParticipant {
    pub name: String,
    pc: RTCPeerConnection,
    socket: UdpSocket,
    addr: SocketAddr,
    audio_ssrc: u32,
    audio_sender: RTCRtpSenderId,
    seq: u16,
    pub connected: bool,
    /// Received RTP payloads by SSRC.
    pub got: HashMap<u32, Vec<Vec<u8>>>,
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The offer a browser would build from the bridge's session-initiate:
/// bridge transport, one sendrecv audio m-line, an `a=ssrc` for every
/// remote audio source (webrtc-rs binds incoming SSRCs by these).
fn offer_sdp(bridge: &LocalTransport, remote_audio: &[u32]) -> String {
    let mut s = String::new();
    s.push_str("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    s.push_str("a=group:BUNDLE audio\r\na=msid-semantic: WMS *\r\n");
    // No a=ice-lite: the bridge runs full ICE, so as offerer it controls.
    write!(s, "m=audio 9 UDP/TLS/RTP/SAVPF {OPUS}\r\n").unwrap();
    s.push_str("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    write!(
        s,
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        bridge.ufrag, bridge.pwd
    )
    .unwrap();
    write!(
        s,
        "a=fingerprint:{} {}\r\n",
        bridge.fingerprint_hash, bridge.fingerprint
    )
    .unwrap();
    s.push_str("a=setup:actpass\r\na=mid:audio\r\n");
    write!(s, "a=extmap:{EXT_AUDIO_LEVEL} {AUDIO_LEVEL_URI}\r\n").unwrap();
    s.push_str("a=sendrecv\r\na=rtcp-mux\r\n");
    write!(s, "a=rtpmap:{OPUS} opus/48000/2\r\n").unwrap();
    write!(s, "a=fmtp:{OPUS} minptime=10;useinbandfec=1\r\n").unwrap();
    for ssrc in remote_audio {
        write!(s, "a=ssrc:{ssrc} cname:remote-{ssrc}\r\n").unwrap();
        write!(s, "a=ssrc:{ssrc} msid:stream-{ssrc} audio-{ssrc}\r\n").unwrap();
    }
    for c in &bridge.candidates {
        write!(
            s,
            "a=candidate:{} {} {} {} {} {} typ {}\r\n",
            c.foundation,
            c.component,
            c.protocol,
            c.priority,
            c.address.ip(),
            c.address.port(),
            c.kind
        )
        .unwrap();
    }
    s.push_str("a=end-of-candidates\r\n");
    s
}

/// The value of the first `a=<name>:` line of an SDP.
fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
}

impl WebrtcRsParticipant {
    /// Answers the bridge's (synthesised) offer, sending audio on `audio_ssrc`
    /// and expecting the remote audio SSRCs in `remote_audio`.
    pub fn new(
        name: &str,
        bridge: &LocalTransport,
        audio_ssrc: u32,
        remote_audio: &[u32],
    ) -> WebrtcRsParticipant {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();

        let mut media = MediaEngine::default();
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: opus(),
                    payload_type: OPUS,
                },
                RtpCodecKind::Audio,
            )
            .unwrap();
        media
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
        // The browser's default, stated: the answerer is the DTLS client (setup=active).
        let settings = SettingEngineBuilder::new()
            .with_answering_dtls_role(RTCDtlsRole::Client)
            .build();
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .unwrap();

        let offer = RTCSessionDescription::offer(offer_sdp(bridge, remote_audio)).unwrap();
        pc.set_remote_description(now, offer).unwrap();

        let track = MediaStreamTrack::new(
            format!("{name}-stream"),
            format!("{name}-audio"),
            format!("{name}-audio"),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(audio_ssrc),
                    ..Default::default()
                },
                codec: opus(),
                ..Default::default()
            }],
        );
        let audio_sender = pc.add_track(track).unwrap();

        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .unwrap();
        pc.add_local_candidate(RTCIceCandidate::from(&host).to_json().unwrap())
            .unwrap();

        let answer = pc.create_answer(None).unwrap();
        pc.set_local_description(now, answer).unwrap();

        WebrtcRsParticipant {
            name: name.into(),
            pc,
            socket,
            addr,
            audio_ssrc,
            audio_sender,
            seq: 1000,
            connected: false,
            got: HashMap::new(),
        }
    }

    /// The answer's transport, for the bridge (what session-accept carries).
    pub fn remote(&self) -> RemoteTransport {
        let answer = self.pc.local_description().expect("answer was set").sdp;
        assert!(
            attribute(&answer, "setup") == Some("active"),
            "the answer takes the DTLS client role:\n{answer}"
        );
        let (hash, fingerprint) = attribute(&answer, "fingerprint")
            .and_then(|f| f.split_once(' '))
            .expect("answer has a fingerprint");
        RemoteTransport {
            ufrag: attribute(&answer, "ice-ufrag").unwrap().into(),
            pwd: attribute(&answer, "ice-pwd").unwrap().into(),
            fingerprint_hash: hash.into(),
            fingerprint: fingerprint.into(),
            setup: Setup::Active,
            candidates: vec![self.addr],
        }
    }

    /// Sends one opus packet on our SSRC with an audio level (-dBov, 0..=127).
    pub fn send_audio(&mut self, timestamp: u32, level: u8, payload: Vec<u8>) {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: OPUS,
                sequence_number: self.seq,
                timestamp,
                ssrc: self.audio_ssrc,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        };
        // RFC 6464: voice activity bit, then the level.
        packet
            .header
            .set_extension(EXT_AUDIO_LEVEL, Bytes::from(vec![0x80 | (level & 0x7F)]))
            .unwrap();
        self.pc
            .rtp_sender(self.audio_sender)
            .expect("audio sender")
            .write_rtp(Instant::now(), packet)
            .expect("write_rtp");
        self.flush();
    }

    /// Moves datagrams both ways, runs timers and takes events, for about `budget`.
    pub fn poll(&mut self, budget: Duration) {
        let until = Instant::now() + budget;
        let mut buf = [0u8; 2048];
        loop {
            while let Ok((n, peer_addr)) = self.socket.recv_from(&mut buf) {
                let _ = self.pc.handle_read(TaggedBytesMut {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr: self.addr,
                        peer_addr,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(&buf[..n]),
                });
                self.flush();
            }
            let now = Instant::now();
            if self.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = self.pc.handle_timeout(now);
            }
            self.flush();
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends what the stack wrote and takes its events and received media.
    fn flush(&mut self) {
        while let Some(out) = self.pc.poll_write() {
            let _ = self.socket.send_to(&out.message, out.transport.peer_addr);
        }
        while let Some(event) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                self.connected = state == RTCPeerConnectionState::Connected;
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            if let RTCMessage::RtpPacket(_, p) = message {
                self.got
                    .entry(p.header.ssrc)
                    .or_default()
                    .push(p.payload.to_vec());
            }
        }
    }

    pub fn payloads_from(&self, ssrc: u32) -> Vec<Vec<u8>> {
        self.got.get(&ssrc).cloned().unwrap_or_default()
    }
}
