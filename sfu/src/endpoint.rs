//! One participant's connection: a str0m `Rtc` for ICE, DTLS (our own, handed
//! to it as its DTLS provider) and the data channel, driven through its
//! SDP-free direct API; its media goes through
//! its [`Transport`] once DTLS has exported the keys; and what the bridge
//! needs to know around them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use crate::allocation::RateMeter;
use crate::api::{
    ApiError, LocalTransport, MAX_REMOTE_CANDIDATES, RemoteTransport, Setup, TransportCandidate,
};
use crate::cert::{Certificate, parse_hex_colon};
use crate::channel::{Dialect, VideoConstraints};
use crate::clock::SenderClock;
use crate::dtls::{DtlsTap, fingerprint_algorithm, take_created_tap};
use crate::simulcast::SimulcastForwarder;
use crate::speech::SilenceFilter;
use crate::transport::{Kind, Transport};

/// Payload types of Jitsi's offers (protocol §3.2).
pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 100;
pub const VP8_RTX_PT: u8 = 96;

/// A video source this endpoint receives from another endpoint.
#[derive(Debug)]
pub(crate) struct VideoForward {
    pub forwarder: SimulcastForwarder,
    /// The RTX SSRC its retransmissions go out on, if the source has one.
    pub rtx: Option<u32>,
    /// The height the receiver asked for (0: none).
    pub wanted_height: u32,
    /// A layer fixed through the API, which allocation leaves alone.
    pub pinned: Option<Option<u8>>,
}

/// One endpoint of a conference.
pub(crate) struct Endpoint {
    pub id: String,
    pub conference: String,
    pub rtc: Rtc,
    /// Its media, once DTLS has exported the keys.
    pub transport: Option<Transport>,
    /// Where str0m last sent it DTLS: the pair ICE nominated, where its media
    /// goes until it sends some of its own.
    pub dtls_destination: Option<SocketAddr>,
    /// Its DTLS association's side door (the certificate check).
    pub dtls: DtlsTap,
    /// Its DTLS refusal was counted.
    pub dtls_failure_counted: bool,
    pub ufrag: String,
    pub next_timeout: Instant,
    /// The time of its current entry in the router's deadline queue.
    pub scheduled: Option<Instant>,
    /// Listed for the router's next flush (so it is listed once).
    pub queued: bool,
    /// Remote transport applied (DTLS started).
    pub connected_transport: bool,
    /// The remote side answers our consent checks (RFC 7675). Once ICE gives
    /// up on it, only the checks go out, until it answers again.
    pub consent: bool,
    /// This endpoint's own sources: audio SSRCs and video SIM groups (layer SSRCs, low to high).
    pub audio_ssrcs: Vec<u32>,
    pub video_layers: Vec<Vec<u32>>,
    /// FID pairs of this endpoint's video.
    pub rtx: Vec<(u32, u32)>,
    /// Video of others this endpoint receives, by the source's first SSRC.
    pub video_in: HashMap<u32, VideoForward>,
    /// Audio of others it receives, by SSRC: when forwarding may start.
    pub audio_in: HashMap<u32, Instant>,
    /// Secret of this endpoint's bridge-channel URL, fixed for its life.
    pub channel_pwd: String,
    /// Messages to this endpoint's bridge channel, when one is open.
    pub channel: Option<tokio::sync::mpsc::Sender<String>>,
    /// The vocabulary its client speaks (2021 endpoint ids or source names).
    pub dialect: Dialect,
    /// Drops this endpoint's audio silence before it is forwarded.
    pub silence: SilenceFilter,
    /// Its capture clock, from its sender reports.
    pub clock: SenderClock,
    /// Sender constraints last told to this endpoint, by its source's first SSRC.
    pub announced_heights: HashMap<u32, u32>,
    /// What this receiver last asked for on its bridge channel.
    pub constraints: Option<VideoConstraints>,
    /// How many others' video it wants at most (-1: all).
    pub last_n: i32,
    /// The forwarded set last told to it (and in which dialect), so only changes are sent.
    pub forwarded: Option<(Dialect, Vec<String>)>,
    /// When its audio, and its video, last arrived.
    pub last_audio: Option<Instant>,
    pub last_video: Option<Instant>,
    /// Whether its ICE has connected at least once.
    pub ever_connected: bool,
    /// Source addresses the router learned for it (see `MAX_ADDRESSES` in the router).
    pub addresses: usize,
    /// The candidates its client signalled.
    remote_candidates: Vec<SocketAddr>,
    /// The focus forbids its audio, and its video (Colibri2 `force-mute`):
    /// the bridge drops them whatever the client does.
    pub force_muted: (bool, bool),
    /// When a datagram from it last arrived, and whether any has.
    pub last_heard: Instant,
    pub heard_any: bool,
    /// Whether the others are told it is connected (protocol §6.8).
    pub active: bool,
    /// Bits per second of each of its video layers, as `video_layers`.
    pub video_rates: Vec<Vec<RateMeter>>,
    /// The highest layer of each of its video sources it was last seen sending.
    pub video_top: Vec<u8>,
    /// The bridge's estimate of its downlink (transport-cc).
    pub bwe_bps: Option<u64>,
    /// The cumulative loss it last reported per stream sent to it.
    pub lost_reported: HashMap<u32, i32>,
    /// When this sender was last asked for a key frame, by SSRC.
    pub keyframes_asked: HashMap<u32, Instant>,
}

impl Endpoint {
    pub fn new(
        now: Instant,
        conference: &str,
        id: &str,
        cert: &Certificate,
        advertised: SocketAddr,
    ) -> Result<Endpoint, ApiError> {
        let creds = IceCreds {
            ufrag: random_token(8),
            pass: random_token(24),
        };
        // No media in str0m: only ICE, DTLS and the data channel.
        let config = RtcConfig::new()
            .set_crypto_provider(crate::dtls::provider())
            .set_dtls_cert(cert.dtls.clone())
            // The remote certificate is checked in our DTLS instance (crate::dtls),
            // with SHA-384 and SHA-512 fingerprints too.
            .set_fingerprint_verification(false)
            .set_local_ice_credentials(creds.clone())
            .clear_codecs()
            .clear_extension_map();
        let mut rtc = config.build(now);
        let dtls = take_created_tap()
            .ok_or_else(|| ApiError::Internal("str0m made no DTLS instance".into()))?;
        let mut api = rtc.direct_api();
        // Jicofo always asks the bridge to be the controlling agent (protocol §6.1).
        api.set_ice_controlling(true);
        let host = Candidate::host(advertised, "udp")
            .map_err(|e| ApiError::Internal(format!("bad advertised address: {e}")))?;
        rtc.add_local_candidate(host);
        Ok(Endpoint {
            id: id.to_owned(),
            conference: conference.to_owned(),
            rtc,
            transport: None,
            dtls_destination: None,
            dtls,
            dtls_failure_counted: false,
            ufrag: creds.ufrag,
            next_timeout: now,
            scheduled: None,
            connected_transport: false,
            consent: true,
            audio_ssrcs: Vec::new(),
            video_layers: Vec::new(),
            rtx: Vec::new(),
            video_in: HashMap::new(),
            audio_in: HashMap::new(),
            channel_pwd: random_token(24),
            channel: None,
            dialect: Dialect::Sources,
            silence: SilenceFilter::default(),
            clock: SenderClock::default(),
            announced_heights: HashMap::new(),
            constraints: None,
            last_n: -1,
            forwarded: None,
            last_audio: None,
            last_video: None,
            ever_connected: false,
            addresses: 0,
            remote_candidates: Vec::new(),
            force_muted: (false, false),
            last_heard: now,
            queued: false,
            heard_any: false,
            active: true,
            lost_reported: HashMap::new(),
            keyframes_asked: HashMap::new(),
            video_rates: Vec::new(),
            video_top: Vec::new(),
            bwe_bps: None,
        })
    }

    /// What goes into the offer for this endpoint.
    pub fn local_transport(
        &mut self,
        cert: &Certificate,
        advertised: SocketAddr,
    ) -> LocalTransport {
        let creds = self.rtc.direct_api().local_ice_credentials();
        LocalTransport {
            ufrag: creds.ufrag,
            pwd: creds.pass,
            fingerprint_hash: "sha-256".into(),
            fingerprint: cert.fingerprint_hex(),
            channel_path: format!("{}/{}?pwd={}", self.conference, self.id, self.channel_pwd),
            candidates: vec![TransportCandidate {
                foundation: "1".into(),
                component: 1,
                protocol: "udp".into(),
                priority: 2_130_706_431,
                address: advertised,
                kind: "host".into(),
            }],
        }
    }

    /// The client's answer: its ICE credentials, candidates and DTLS role.
    pub fn apply_remote(&mut self, remote: &RemoteTransport) -> Result<(), ApiError> {
        let bytes = parse_hex_colon(&remote.fingerprint)
            .ok_or_else(|| ApiError::BadRequest("fingerprint is not colon-separated hex".into()))?;
        let hash = remote.fingerprint_hash.to_ascii_lowercase();
        let Some(algorithm) = fingerprint_algorithm(&hash) else {
            return Err(ApiError::BadRequest(format!(
                "unsupported fingerprint hash {hash}"
            )));
        };
        if bytes.len() != algorithm.output_len() {
            return Err(ApiError::BadRequest(format!(
                "a {hash} fingerprint has {} bytes, not {}",
                algorithm.output_len(),
                bytes.len()
            )));
        }
        self.dtls.expect(&hash, bytes.clone());
        let mut candidates = self.remote_candidates.clone();
        for c in &remote.candidates {
            if !candidates.contains(c) {
                candidates.push(*c);
            }
            if candidates.len() > MAX_REMOTE_CANDIDATES {
                return Err(ApiError::BadRequest(format!(
                    "more than {MAX_REMOTE_CANDIDATES} candidates for one endpoint"
                )));
            }
        }
        let mut api = self.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        });
        api.set_remote_fingerprint(str0m::config::Fingerprint {
            hash_func: hash,
            bytes,
        });
        for c in &candidates[self.remote_candidates.len()..] {
            if let Ok(c) = Candidate::host(*c, "udp") {
                self.rtc.add_remote_candidate(c);
            }
        }
        self.remote_candidates = candidates;
        if !self.connected_transport {
            // The answer's setup says who starts DTLS; actpass leaves it to us (client).
            let active = matches!(remote.setup, Setup::Passive);
            self.rtc
                .direct_api()
                .start_dtls(active)
                .map_err(|e| ApiError::Internal(format!("DTLS: {e}")))?;
            self.connected_transport = true;
        }
        Ok(())
    }

    /// Which of this endpoint's video sources (its index and first SSRC) and
    /// which layer `ssrc` is.
    pub fn video_layer_of(&self, ssrc: u32) -> Option<(usize, u32, u8)> {
        self.video_layers
            .iter()
            .enumerate()
            .find_map(|(index, layers)| {
                layers
                    .iter()
                    .position(|s| *s == ssrc)
                    .map(|i| (index, layers[0], i as u8))
            })
    }
}

/// What `ssrc` is among signalled audio SSRCs, video layers and FID pairs.
pub(crate) fn kind_of(audio: &[u32], video: &[Vec<u32>], rtx: &[(u32, u32)], ssrc: u32) -> Kind {
    if audio.contains(&ssrc) {
        Kind::Audio
    } else if video.iter().any(|l| l.contains(&ssrc)) {
        Kind::Video
    } else if let Some((primary, _)) = rtx.iter().find(|(_, r)| *r == ssrc) {
        Kind::Rtx(*primary)
    } else {
        Kind::Unknown
    }
}

pub(crate) fn rtx_of(pairs: &[(u32, u32)], ssrc: u32) -> Option<u32> {
    pairs.iter().find(|(s, _)| *s == ssrc).map(|(_, r)| *r)
}

/// A random token from the OS's generator; hex digits are valid ICE characters.
fn random_token(len: usize) -> String {
    let mut s = String::with_capacity(len + 32);
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}
