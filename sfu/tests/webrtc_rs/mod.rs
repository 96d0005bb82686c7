//! A second, independent test participant: webrtc-rs 0.21 (the sans-IO `rtc`
//! crate) on a real UDP socket. Unlike the str0m participant it is driven
//! only by SDP, as a browser is: it synthesises the offer that
//! lib-jitsi-meet would build from the bridge's Jingle session-initiate
//! ([`sdp`]), answers it (ICE controlled, DTLS client, `setup=active`) and
//! hands the bridge a `RemoteTransport` taken from the answer, as
//! session-accept does. Its own video is 3-layer simulcast: one track with
//! an encoding (SSRC + RTX SSRC) per layer, as Chrome sends under
//! lib-jitsi-meet.

mod feedback;
pub mod peer;
pub mod sdp;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::crypto::SignatureScheme;
pub use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::sansio::Protocol as _;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::statistics::StatsSelector;
use sfu::api::{LocalTransport, RemoteTransport, Setup, Sources};

pub use sdp::RemoteSource;
use sdp::{AUDIO_LEVEL_URI, EXT_AUDIO_LEVEL, OPUS, VP8, VP8_RTX, attribute};

/// What this participant sends: audio, and simulcast layers (SSRC, RTX SSRC), lowest first.
#[derive(Debug, Clone, Default)]
pub struct LocalSources {
    pub audio: u32,
    pub video: Vec<(u32, u32)>,
}

impl LocalSources {
    /// As session-accept signals them: a SIM group of the layers, an FID pair for each.
    pub fn for_bridge(&self) -> Sources {
        Sources {
            audio: vec![self.audio],
            video: if self.video.is_empty() {
                vec![]
            } else {
                vec![self.video.iter().map(|(s, _)| *s).collect()]
            },
            rtx: self.video.clone(),
        }
    }
}

/// An RTP packet as the application got it (after SRTP, RTX unwrapping).
#[derive(Debug, Clone)]
pub struct Got {
    pub seq: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

pub struct WebrtcRsParticipant {
    pub name: String,
    pc: RTCPeerConnection,
    socket: UdpSocket,
    addr: SocketAddr,
    local: LocalSources,
    audio_sender: RTCRtpSenderId,
    video_sender: Option<RTCRtpSenderId>,
    seq: HashMap<u32, u16>,
    pub connected: bool,
    /// Received packets by SSRC.
    pub got: HashMap<u32, Vec<Got>>,
    /// RTP datagrams that reached our socket, by SSRC (read from the
    /// unencrypted header, before loss and before the stack): what the bridge sent us.
    pub wire: HashMap<u32, usize>,
    /// Per SSRC, which of its incoming RTP datagrams (counted from 0) the
    /// network loses before the stack sees them.
    pub lose: HashMap<u32, Vec<usize>>,
    /// PLI/FIR the bridge sent us, by the media SSRC they name.
    pub keyframe_requests: HashMap<u32, usize>,
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

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        // nack, nack pli and transport-cc come with the default interceptors.
        rtcp_feedback: vec![RTCPFeedback {
            typ: "ccm".to_owned(),
            parameter: "fir".to_owned(),
        }],
    }
}

fn media_engine() -> MediaEngine {
    let mut media = MediaEngine::default();
    let codecs = [
        (opus(), OPUS, RtpCodecKind::Audio),
        (vp8(), VP8, RtpCodecKind::Video),
        (
            RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: format!("apt={VP8}"),
                rtcp_feedback: vec![],
            },
            VP8_RTX,
            RtpCodecKind::Video,
        ),
    ];
    for (rtp_codec, payload_type, kind) in codecs {
        media
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec,
                    payload_type,
                },
                kind,
            )
            .unwrap();
    }
    media
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .unwrap();
    media
}

/// RTP, not RTCP, by RFC 7983's first byte and RFC 5761's payload types.
fn rtp_ssrc(buf: &[u8]) -> Option<u32> {
    let rtp =
        buf.len() >= 12 && (128..192).contains(&buf[0]) && !(72..80).contains(&(buf[1] & 0x7F));
    rtp.then(|| u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]))
}

/// How a webrtc-rs participant's DTLS is set up; the default is a browser's.
#[derive(Default)]
pub struct Options {
    /// The SRTP profiles offered, in order (none: webrtc-rs's own list).
    pub srtp_profiles: Vec<SrtpProtectionProfile>,
    /// Answer `setup:passive`: the bridge is then the DTLS client.
    pub dtls_server: bool,
    /// An RSA certificate instead of ECDSA P-256.
    pub rsa_certificate: bool,
}

/// A self-signed certificate on a fresh RSA 2048 key.
fn rsa_certificate() -> RTCCertificate {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let provider = rtc::crypto::default_provider().unwrap();
    let signing_key = provider
        .crypto()
        .import_signing_key(SignatureScheme::RsaPkcs1Sha256, pkcs8.as_ref())
        .unwrap();
    RTCCertificate::generate_from_signing_key(
        CertificateParams::new(vec!["webrtc-rs".to_owned()]).unwrap(),
        SignatureScheme::RsaPkcs1Sha256,
        signing_key,
    )
    .unwrap()
}

impl WebrtcRsParticipant {
    /// Answers the bridge's (synthesised) offer listing the `remote` sources,
    /// sending what `local` says.
    pub fn new(
        name: &str,
        bridge: &LocalTransport,
        local: &LocalSources,
        remote: &[RemoteSource],
    ) -> WebrtcRsParticipant {
        Self::with(name, bridge, local, remote, &Options::default())
    }

    /// As [`Self::new`], its DTLS set up as `options` says.
    pub fn with(
        name: &str,
        bridge: &LocalTransport,
        local: &LocalSources,
        remote: &[RemoteSource],
        options: &Options,
    ) -> WebrtcRsParticipant {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();

        let mut media = media_engine();
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .unwrap()
            // Application-most, after every interceptor that reads RTCP.
            .with(
                Slot::from(20_000),
                feedback::KeyframeRequestsToApp::default(),
            );
        // The browser's default, stated, unless `dtls_server`: the answerer is the
        // DTLS client (setup=active).
        let settings = SettingEngineBuilder::new()
            .with_answering_dtls_role(if options.dtls_server {
                RTCDtlsRole::Server
            } else {
                RTCDtlsRole::Client
            })
            .with_srtp_protection_profiles(options.srtp_profiles.clone())
            .build();
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_certificates(
                        options
                            .rsa_certificate
                            .then(rsa_certificate)
                            .into_iter()
                            .collect(),
                    )
                    .build(),
            )
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .unwrap();

        let offer = sdp::offer(bridge, remote);
        pc.set_remote_description(now, RTCSessionDescription::offer(offer).unwrap())
            .unwrap();

        // add_track takes the first free transceiver of its kind: the `audio`
        // and `video` m-lines, which come before the remote sources' ones.
        let audio_sender = pc
            .add_track(MediaStreamTrack::new(
                format!("{name}-stream"),
                format!("{name}-audio"),
                format!("{name}-audio"),
                RtpCodecKind::Audio,
                vec![encoding(local.audio, None, "", opus())],
            ))
            .unwrap();
        let video_sender = (!local.video.is_empty()).then(|| {
            // One encoding per layer; rids keep webrtc-rs from cutting them down
            // to one. The rid extension is not negotiated, so none go on the wire.
            let encodings = local
                .video
                .iter()
                .enumerate()
                .map(|(i, (ssrc, rtx))| encoding(*ssrc, Some(*rtx), &format!("l{i}"), vp8()))
                .collect();
            pc.add_track(MediaStreamTrack::new(
                format!("{name}-stream"),
                format!("{name}-video"),
                format!("{name}-video"),
                RtpCodecKind::Video,
                encodings,
            ))
            .unwrap()
        });

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
            local: local.clone(),
            audio_sender,
            video_sender,
            seq: HashMap::new(),
            connected: false,
            got: HashMap::new(),
            wire: HashMap::new(),
            lose: HashMap::new(),
            keyframe_requests: HashMap::new(),
        }
    }

    /// The SRTP profile DTLS agreed on, as webrtc-rs's transport stats name it.
    pub fn srtp_cipher(&mut self) -> String {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None);
        report
            .transport()
            .map(|t| t.srtp_cipher.clone())
            .unwrap_or_default()
    }

    /// The answer's transport, for the bridge (what session-accept carries).
    pub fn remote(&self) -> RemoteTransport {
        let answer = self.pc.local_description().expect("answer was set").sdp;
        let setup = match attribute(&answer, "setup") {
            Some("active") => Setup::Active,
            Some("passive") => Setup::Passive,
            other => panic!("the answer takes a DTLS role, not {other:?}:\n{answer}"),
        };
        let (hash, fingerprint) = attribute(&answer, "fingerprint")
            .and_then(|f| f.split_once(' '))
            .expect("answer has a fingerprint");
        RemoteTransport {
            ufrag: attribute(&answer, "ice-ufrag").unwrap().into(),
            pwd: attribute(&answer, "ice-pwd").unwrap().into(),
            fingerprint_hash: hash.into(),
            fingerprint: fingerprint.into(),
            setup,
            candidates: vec![self.addr],
        }
    }

    /// The sources session-accept announces.
    pub fn sources(&self) -> Sources {
        self.local.for_bridge()
    }

    fn next_seq(&mut self, ssrc: u32) -> u16 {
        // Each SSRC starts elsewhere, as real senders' random starts do.
        let s = self
            .seq
            .entry(ssrc)
            .or_insert((ssrc.wrapping_mul(7919) % 30_000) as u16);
        *s = s.wrapping_add(1);
        *s
    }

    /// Sends one opus packet on our SSRC with an audio level (-dBov, 0..=127).
    pub fn send_audio(&mut self, timestamp: u32, level: u8, payload: Vec<u8>) {
        let ssrc = self.local.audio;
        let mut packet = packet(OPUS, self.next_seq(ssrc), timestamp, ssrc, payload);
        // RFC 6464: voice activity bit, then the level.
        packet
            .header
            .set_extension(EXT_AUDIO_LEVEL, Bytes::from(vec![0x80 | (level & 0x7F)]))
            .unwrap();
        self.pc
            .rtp_sender(self.audio_sender)
            .expect("audio sender")
            .write_rtp(Instant::now(), packet)
            .expect("write_rtp audio");
        self.flush();
    }

    /// Sends one VP8 packet (a whole frame) on one of our layers' SSRC.
    pub fn send_video(&mut self, ssrc: u32, timestamp: u32, payload: Vec<u8>) {
        let sender = self.video_sender.expect("this participant sends video");
        let mut packet = packet(VP8, self.next_seq(ssrc), timestamp, ssrc, payload);
        packet.header.marker = true;
        self.pc
            .rtp_sender(sender)
            .expect("video sender")
            .write_rtp(Instant::now(), packet)
            .expect("write_rtp video");
        self.flush();
    }

    /// Asks for a key frame of a remote source, as a browser's decoder does.
    pub fn send_pli(&mut self, media_ssrc: u32) {
        let receiver = self
            .pc
            .get_receivers()
            .collect::<Vec<_>>()
            .into_iter()
            .find(|id| {
                self.pc
                    .rtp_receiver(*id)
                    .is_some_and(|r| r.track().ssrcs().any(|s| s == media_ssrc))
            })
            .expect("a receiver for that SSRC");
        let pli = PictureLossIndication {
            sender_ssrc: self.local.audio,
            media_ssrc,
        };
        self.pc
            .rtp_receiver(receiver)
            .unwrap()
            .write_rtcp(Instant::now(), vec![Box::new(pli)])
            .expect("write_rtcp");
        self.flush();
    }

    /// Moves datagrams both ways, runs timers and takes events, for about `budget`.
    pub fn poll(&mut self, budget: Duration) {
        let until = Instant::now() + budget;
        let mut buf = [0u8; 2048];
        loop {
            while let Ok((n, peer_addr)) = self.socket.recv_from(&mut buf) {
                if let Some(ssrc) = rtp_ssrc(&buf[..n]) {
                    let count = self.wire.entry(ssrc).or_default();
                    let index = *count;
                    *count += 1;
                    if self.lose.get(&ssrc).is_some_and(|l| l.contains(&index)) {
                        continue;
                    }
                }
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
            match message {
                RTCMessage::RtpPacket(_, p) => {
                    self.got.entry(p.header.ssrc).or_default().push(Got {
                        seq: p.header.sequence_number,
                        timestamp: p.header.timestamp,
                        payload: p.payload.to_vec(),
                    });
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in packets {
                        let any = p.as_any();
                        let named: Vec<u32> =
                            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                                vec![pli.media_ssrc]
                            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                                fir.fir.iter().map(|f| f.ssrc).collect()
                            } else {
                                vec![]
                            };
                        for ssrc in named {
                            *self.keyframe_requests.entry(ssrc).or_default() += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub fn payloads_from(&self, ssrc: u32) -> Vec<Vec<u8>> {
        self.got
            .get(&ssrc)
            .map(|v| v.iter().map(|g| g.payload.clone()).collect())
            .unwrap_or_default()
    }

    pub fn on_wire(&self, ssrc: u32) -> usize {
        self.wire.get(&ssrc).copied().unwrap_or(0)
    }
}

fn encoding(
    ssrc: u32,
    rtx: Option<u32>,
    rid: &str,
    codec: RTCRtpCodec,
) -> RTCRtpEncodingParameters {
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            rid: rid.to_owned(),
            ssrc: Some(ssrc),
            rtx: rtx.map(|ssrc| RTCRtpRtxParameters { ssrc }),
            ..Default::default()
        },
        active: true,
        codec,
        ..Default::default()
    }
}

fn packet(pt: u8, seq: u16, timestamp: u32, ssrc: u32, payload: Vec<u8>) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload: Bytes::from(payload),
    }
}
