//! A simulated participant's WebRTC side: str0m through its direct API, as
//! a browser meets the bridge after Jingle (ICE controlled, DTLS client,
//! SRTP), with the generators and the meter attached. No socket here: the
//! caller hands in datagrams and time, and gets datagrams to send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

use super::generate::{Audio, AudioPacket, Camera, VideoPacket};
use super::jingle::{LocalSources, Media, Offer, RemoteSource};
use super::loss::Loss;
use super::meter::Meter;

const OPUS: u8 = 111;
const VP8: u8 = 100;
const VP8_RTX: u8 = 96;
/// How often str0m reports egress stats (NACKs and PLIs the bridge sent us).
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Rids name our streams so a keyframe request says which layer it is for.
const LAYER_RIDS: [&str; 3] = ["l0", "l1", "l2"];

/// What we send, when we send.
struct Sending {
    sources: LocalSources,
    audio: Audio,
    camera: Camera,
    seq: [u64; 4],
    audio_buf: Vec<AudioPacket>,
    video_buf: Vec<VideoPacket>,
}

/// Counters a run reports; plain numbers, read by the shell.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerCounters {
    /// RTP packets dropped by `--loss`, both ways.
    pub dropped: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub nacks: u64,
    pub plis: u64,
    pub keyframes_asked: u64,
}

pub struct Peer {
    rtc: Rtc,
    local: SocketAddr,
    sending: Option<Sending>,
    pub meter: Meter,
    pub ice_connected: Option<Instant>,
    pub dtls_connected: Option<Instant>,
    pub closed: bool,
    pub counters: PeerCounters,
    /// Latest cumulative NACK and PLI counts per sent stream (mid, rid).
    egress: Vec<(Mid, Option<Rid>, u64, u64)>,
    timeout: Instant,
    loss: Loss,
}

impl Peer {
    /// Prepares the answer side for the bridge's transport in `offer`;
    /// `local` is our candidate (the socket's address as the bridge sees it).
    pub fn new(now: Instant, offer: &Offer, local: SocketAddr, loss: Loss) -> anyhow::Result<Peer> {
        let mut config = RtcConfig::new()
            .set_rtp_mode(true)
            .set_stats_interval(Some(STATS_INTERVAL))
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
            Some(Pt::from(VP8_RTX)),
            Codec::Vp8,
            Frequency::NINETY_KHZ,
            None,
            Default::default(),
        );
        let mut rtc = config.build(now);
        let mut api = rtc.direct_api();
        api.set_ice_controlling(false);
        api.declare_media(Mid::from("audio"), MediaKind::Audio);
        api.declare_media(Mid::from("video"), MediaKind::Video);
        // Feedback for the bridge's bandwidth estimate of us, as browsers send.
        api.enable_twcc_feedback();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: offer.ufrag.clone(),
            pass: offer.pwd.clone(),
        });
        let fp = format!("{} {}", offer.fingerprint_hash, offer.fingerprint)
            .parse()
            .map_err(|e| anyhow::anyhow!("bridge fingerprint: {e:?}"))?;
        api.set_remote_fingerprint(fp);
        api.start_dtls(true)?;
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        for c in &offer.candidates {
            rtc.add_remote_candidate(Candidate::host(*c, "udp")?);
        }
        Ok(Peer {
            rtc,
            local,
            sending: None,
            meter: Meter::default(),
            ice_connected: None,
            dtls_connected: None,
            closed: false,
            counters: PeerCounters::default(),
            egress: Vec::new(),
            timeout: now,
            loss,
        })
    }

    /// Our ICE credentials and `sha-256 HEX` fingerprint, for the answer.
    pub fn local_transport(&mut self) -> (IceCreds, String, String) {
        let api = self.rtc.direct_api();
        let fp = api.local_dtls_fingerprint().to_string();
        let (hash, hex) = fp.split_once(' ').unwrap_or(("sha-256", &fp));
        (api.local_ice_credentials(), hash.to_owned(), hex.to_owned())
    }

    /// Fresh SSRCs for one audio source and a 3-layer camera with RTX.
    pub fn new_sources(&mut self) -> LocalSources {
        let api = self.rtc.direct_api();
        let next = || *api.new_ssrc();
        LocalSources {
            audio: next(),
            video: [next(), next(), next()],
            rtx: [next(), next(), next()],
        }
    }

    /// Declares our streams and starts the generators.
    pub fn start_sending(&mut self, now: Instant, sources: LocalSources, seed: u32) {
        let mut api = self.rtc.direct_api();
        api.declare_stream_tx(Ssrc::from(sources.audio), None, Mid::from("audio"), None);
        for (i, (v, r)) in sources.video.iter().zip(&sources.rtx).enumerate() {
            let rid = Some(Rid::from(LAYER_RIDS[i]));
            api.declare_stream_tx(
                Ssrc::from(*v),
                Some(Ssrc::from(*r)),
                Mid::from("video"),
                rid,
            );
        }
        self.sending = Some(Sending {
            sources,
            audio: Audio::new(now, seed as u64 * 977),
            camera: Camera::new(now, seed),
            seq: [seed as u64 % 30_000 + 1; 4],
            audio_buf: Vec::new(),
            video_buf: Vec::new(),
        });
    }

    /// Expects media on a signalled remote source.
    pub fn expect(&mut self, s: &RemoteSource) {
        let (mid, rtx) = match s.media {
            Media::Audio => ("audio", None),
            Media::Video => ("video", s.rtx.map(Ssrc::from)),
        };
        let mut api = self.rtc.direct_api();
        if api.stream_rx(&Ssrc::from(s.ssrc)).is_none() {
            api.expect_stream_rx(Ssrc::from(s.ssrc), rtx, Mid::from(mid), None);
        }
        self.meter.expect(s);
    }

    pub fn remove(&mut self, s: &RemoteSource) {
        self.rtc.direct_api().remove_stream_rx(Ssrc::from(s.ssrc));
    }

    /// When str0m next needs [`Peer::tick`] (queued packets wait for it).
    pub fn timeout(&self) -> Instant {
        self.timeout
    }

    /// When a generator next has a packet or frame for [`Peer::tick`].
    pub fn media_due(&self) -> Option<Instant> {
        let s = self.sending.as_ref()?;
        Some(s.audio.next_due().min(s.camera.next_due()))
    }

    /// A datagram arrived on our socket.
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &[u8],
        send: &mut impl FnMut(SocketAddr, &[u8]),
    ) {
        if self.loss.drops(buf) {
            self.counters.dropped += 1;
            return;
        }
        if let Ok(r) = Receive::new(Protocol::Udp, from, self.local, buf) {
            let _ = self.rtc.handle_input(Input::Receive(now, r));
            self.drain(now, send);
        }
    }

    /// Time passed: timers in str0m, frames due in the generators.
    pub fn tick(&mut self, now: Instant, send: &mut impl FnMut(SocketAddr, &[u8])) {
        let _ = self.rtc.handle_input(Input::Timeout(now));
        if self.dtls_connected.is_some() {
            self.write_media(now);
        }
        self.drain(now, send);
    }

    fn write_media(&mut self, now: Instant) {
        let Some(s) = self.sending.as_mut() else {
            return;
        };
        s.audio.poll(now, &mut s.audio_buf);
        s.camera.poll(now, &mut s.video_buf);
        let mut api = self.rtc.direct_api();
        for p in s.audio_buf.drain(..) {
            s.seq[0] += 1;
            let ext = ExtensionValues {
                audio_level: Some(p.level),
                voice_activity: Some(p.level > -60),
                ..Default::default()
            };
            let len = p.payload.len() as u64;
            if let Some(tx) = api.stream_tx(&Ssrc::from(s.sources.audio)) {
                let w = RtpWrite::new(
                    Pt::from(OPUS),
                    SeqNo::from(s.seq[0]),
                    p.rtp_ts,
                    now,
                    p.payload,
                );
                tx.write_rtp(w.ext_vals(ext));
                self.counters.packets_out += 1;
                self.counters.bytes_out += len + 12;
            }
        }
        for p in s.video_buf.drain(..) {
            s.seq[p.layer + 1] += 1;
            let seq = SeqNo::from(s.seq[p.layer + 1]);
            let len = p.payload.len() as u64;
            if let Some(tx) = api.stream_tx(&Ssrc::from(s.sources.video[p.layer])) {
                let w = RtpWrite::new(Pt::from(VP8), seq, p.rtp_ts, now, p.payload);
                tx.write_rtp(w.marker(p.marker).nackable(true));
                self.counters.packets_out += 1;
                self.counters.bytes_out += len + 12;
            }
        }
    }

    fn drain(&mut self, now: Instant, send: &mut impl FnMut(SocketAddr, &[u8])) {
        // str0m releases written packets on its next timeout, which is
        // usually due at once: serve it here rather than wake up again.
        let mut rounds = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) if self.loss.drops(&t.contents) => {
                    self.counters.dropped += 1;
                }
                Ok(Output::Transmit(t)) => send(t.destination, &t.contents),
                Ok(Output::Timeout(t)) if t <= now && rounds < 4 => {
                    rounds += 1;
                    let _ = self.rtc.handle_input(Input::Timeout(now));
                }
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    break;
                }
                Err(_) => {
                    self.closed = true;
                    break;
                }
                Ok(Output::Event(e)) => self.on_event(now, e),
            }
        }
    }

    fn on_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => {
                self.ice_connected.get_or_insert(now);
            }
            Event::Connected => {
                self.dtls_connected.get_or_insert(now);
            }
            Event::Closed => self.closed = true,
            Event::RtpPacket(p) => {
                self.meter
                    .on_rtp(now, *p.header.ssrc, *p.seq_no, &p.payload);
            }
            Event::KeyframeRequest(r) => {
                self.counters.keyframes_asked += 1;
                let layer = r
                    .rid
                    .and_then(|rid| LAYER_RIDS.iter().position(|l| Rid::from(*l) == rid));
                if let (Some(s), Some(l)) = (self.sending.as_mut(), layer) {
                    s.camera.request_keyframe(l);
                }
            }
            Event::MediaEgressStats(st) => {
                let entry = self
                    .egress
                    .iter_mut()
                    .find(|e| e.0 == st.mid && e.1 == st.rid);
                match entry {
                    Some(e) => (e.2, e.3) = (st.nacks, st.plis),
                    None => self.egress.push((st.mid, st.rid, st.nacks, st.plis)),
                }
                self.counters.nacks = self.egress.iter().map(|e| e.2).sum();
                self.counters.plis = self.egress.iter().map(|e| e.3).sum();
            }
            _ => {}
        }
    }
}
