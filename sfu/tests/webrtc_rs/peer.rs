//! Either test participant (str0m or webrtc-rs) behind one face, so the
//! interop tests can mix them in a room, plus a simulcast camera and the
//! checks a receiver's decoder would make of what the bridge forwards.

use std::time::{Duration, Instant};

use sfu::bridge::Bridge;
use str0m::media::MediaKind;

use super::{LocalSources, RemoteSource, WebrtcRsParticipant};
use crate::participant::setup::vp8;
use crate::participant::{Participant, RTX_OFFSET};

/// A participant's own sources: audio, and (optionally) 3 simulcast layers
/// `video..video+2` whose RTX pairs are `RTX_OFFSET` above them.
pub fn sources(audio: u32, video: Option<u32>) -> LocalSources {
    LocalSources {
        audio,
        video: video
            .map(|v| (v..v + 3).map(|s| (s, s + RTX_OFFSET)).collect())
            .unwrap_or_default(),
    }
}

/// How a receiver learns a sender's sources (simulcast stripped to the first SSRC).
pub fn remote_of(local: &LocalSources) -> Vec<RemoteSource> {
    let mut r = vec![RemoteSource::Audio(local.audio)];
    if let Some((ssrc, rtx)) = local.video.first() {
        r.push(RemoteSource::Video {
            ssrc: *ssrc,
            rtx: *rtx,
        });
    }
    r
}

/// One received packet, whichever stack got it.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub seq: u16,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

impl Pkt {
    pub fn picture_id(&self) -> u16 {
        (u16::from(self.payload[2] & 0x7F) << 8) | u16::from(self.payload[3])
    }
    pub fn tl0(&self) -> u8 {
        self.payload[4]
    }
    pub fn key(&self) -> bool {
        self.payload[6] & 0x01 == 0
    }
    /// Which layer the camera sent it on (written into the payload).
    pub fn layer(&self) -> u8 {
        self.payload[8]
    }
}

/// Either stack, polled the same way (boxed: both are large).
pub enum Peer {
    Str0m(Box<Participant>),
    WebrtcRs(Box<WebrtcRsParticipant>),
}

impl Peer {
    /// Allocates, answers an offer listing `remote`, and announces `local`, as
    /// focus and client do with Jingle.
    pub fn webrtc_rs(
        bridge: &Bridge,
        conference: &str,
        name: &str,
        local: &LocalSources,
        remote: &[RemoteSource],
    ) -> Peer {
        let transport = bridge.create_endpoint(conference, name).unwrap();
        let p = WebrtcRsParticipant::new(name, &transport, local, remote);
        bridge
            .update_endpoint(conference, name, Some(p.remote()), Some(p.sources()))
            .unwrap();
        Peer::WebrtcRs(Box::new(p))
    }

    pub fn str0m(
        bridge: &Bridge,
        conference: &str,
        name: &str,
        local: &LocalSources,
        remote: &[RemoteSource],
    ) -> Peer {
        let transport = bridge.create_endpoint(conference, name).unwrap();
        let mut p = Participant::new(name, &transport);
        let layers: Vec<u32> = local.video.iter().map(|(s, _)| *s).collect();
        p.send_streams(local.audio, &layers);
        for r in remote {
            let kind = match r {
                RemoteSource::Audio(_) => MediaKind::Audio,
                RemoteSource::Video { .. } => MediaKind::Video,
            };
            p.expect(r.ssrc(), kind);
        }
        bridge
            .update_endpoint(conference, name, Some(p.remote()), Some(local.for_bridge()))
            .unwrap();
        Peer::Str0m(Box::new(p))
    }

    pub fn name(&self) -> &str {
        match self {
            Peer::Str0m(p) => &p.name,
            Peer::WebrtcRs(p) => &p.name,
        }
    }

    pub fn connected(&self) -> bool {
        match self {
            Peer::Str0m(p) => p.connected,
            Peer::WebrtcRs(p) => p.connected,
        }
    }

    pub fn poll(&mut self) {
        match self {
            Peer::Str0m(p) => p.poll(Duration::from_millis(1)),
            Peer::WebrtcRs(p) => p.poll(Duration::from_millis(1)),
        }
    }

    pub fn send_audio(&mut self, ssrc: u32, timestamp: u32, payload: Vec<u8>) {
        match self {
            Peer::Str0m(p) => p.send_audio(ssrc, timestamp, -30, payload),
            Peer::WebrtcRs(p) => p.send_audio(timestamp, 30, payload),
        }
    }

    pub fn send_video(&mut self, ssrc: u32, timestamp: u32, payload: Vec<u8>) {
        match self {
            Peer::Str0m(p) => p.send_video(ssrc, timestamp, payload),
            Peer::WebrtcRs(p) => p.send_video(ssrc, timestamp, payload),
        }
    }

    /// Key frame requests received for one of our SSRCs so far.
    pub fn keyframe_requests(&self, ssrc: u32) -> usize {
        match self {
            Peer::Str0m(p) => p.keyframe_requests.get(&ssrc).copied(),
            Peer::WebrtcRs(p) => p.keyframe_requests.get(&ssrc).copied(),
        }
        .unwrap_or(0)
    }

    /// Whether a key frame was asked for on `ssrc` since the last call.
    fn take_keyframe_request(&mut self, ssrc: u32) -> bool {
        match self {
            Peer::Str0m(p) => p.keyframe_requests.remove(&ssrc).is_some(),
            Peer::WebrtcRs(p) => p.keyframe_requests.remove(&ssrc).is_some(),
        }
    }

    pub fn payloads_from(&self, ssrc: u32) -> Vec<Vec<u8>> {
        match self {
            Peer::Str0m(p) => p.payloads_from(ssrc),
            Peer::WebrtcRs(p) => p.payloads_from(ssrc),
        }
    }

    /// Video received on `ssrc`, in arrival order.
    pub fn video(&self, ssrc: u32) -> Vec<Pkt> {
        match self {
            Peer::Str0m(p) => p.got.get(&ssrc).map(|v| {
                v.iter()
                    .map(|g| Pkt {
                        seq: g.seq as u16,
                        timestamp: g.timestamp,
                        payload: g.payload.clone(),
                    })
                    .collect()
            }),
            Peer::WebrtcRs(p) => p.got.get(&ssrc).map(|v| {
                v.iter()
                    .map(|g| Pkt {
                        seq: g.seq,
                        timestamp: g.timestamp,
                        payload: g.payload.clone(),
                    })
                    .collect()
            }),
        }
        .unwrap_or_default()
    }

    pub fn rs(&self) -> &WebrtcRsParticipant {
        match self {
            Peer::WebrtcRs(p) => p,
            Peer::Str0m(p) => panic!("{} is not a webrtc-rs participant", p.name),
        }
    }

    pub fn rs_mut(&mut self) -> &mut WebrtcRsParticipant {
        match self {
            Peer::WebrtcRs(p) => p,
            Peer::Str0m(p) => panic!("{} is not a webrtc-rs participant", p.name),
        }
    }
}

pub fn poll_all(ps: &mut [Peer], rounds: usize) {
    for _ in 0..rounds {
        for p in ps.iter_mut() {
            p.poll();
        }
    }
}

pub fn connect_all(ps: &mut [Peer]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ps.iter().any(|p| !p.connected()) {
        assert!(
            Instant::now() < deadline,
            "ICE+DTLS did not complete for {:?}",
            ps.iter()
                .filter(|p| !p.connected())
                .map(|p| p.name())
                .collect::<Vec<_>>()
        );
        poll_all(ps, 1);
    }
}

/// Polls until `done` holds, failing with `what` after a few seconds.
pub fn poll_until(ps: &mut [Peer], what: &str, done: impl Fn(&[Peer]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(4);
    while !done(ps) {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        poll_all(ps, 1);
    }
}

/// A simulcast camera in participant `owner`: one packet per frame on every
/// layer, each layer with its own timestamp, picture id and TL0PICIDX bases
/// (as real encodings have), key frames at the start and when asked.
pub struct Camera {
    owner: usize,
    layers: Vec<u32>,
    frame: u32,
    keyframe_due: Vec<bool>,
}

impl Camera {
    pub fn new(owner: usize, local: &LocalSources) -> Camera {
        Camera {
            owner,
            layers: local.video.iter().map(|(s, _)| *s).collect(),
            frame: 0,
            keyframe_due: vec![true; local.video.len()],
        }
    }

    pub fn frame(&mut self, ps: &mut [Peer]) {
        for (l, ssrc) in self.layers.iter().enumerate() {
            let asked = ps[self.owner].take_keyframe_request(*ssrc);
            let key = std::mem::take(&mut self.keyframe_due[l]) || asked;
            let base = l as u32;
            let pid = ((self.frame + 1000 * base) % 0x8000) as u16;
            let tl0 = (self.frame + 50 * base) as u8;
            let payload = vp8(pid, tl0, key, l as u8, self.frame);
            let ts = base * 1_000_000 + self.frame * 3000;
            ps[self.owner].send_video(*ssrc, ts, payload);
        }
        self.frame += 1;
    }
}

/// What the participants send: cameras, and audio on `audio[i]` from
/// participant i (payload `<ssrc>:<n>`), once per frame.
pub struct Media {
    pub cameras: Vec<Camera>,
    pub audio: Vec<u32>,
    sent: u32,
}

impl Media {
    pub fn new(cameras: Vec<Camera>, audio: &[u32]) -> Media {
        Media {
            cameras,
            audio: audio.to_vec(),
            sent: 0,
        }
    }

    pub fn run(&mut self, ps: &mut [Peer], frames: u32) {
        for _ in 0..frames {
            for c in self.cameras.iter_mut() {
                c.frame(ps);
            }
            let n = self.sent;
            for (p, ssrc) in ps.iter_mut().zip(&self.audio) {
                p.send_audio(*ssrc, n * 960, format!("{ssrc}:{n}").into_bytes());
            }
            self.sent += 1;
            poll_all(ps, 3);
        }
    }

    /// Runs frames until `done` holds, failing with `what` after a few seconds.
    pub fn run_until(&mut self, ps: &mut [Peer], what: &str, done: impl Fn(&[Peer]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(4);
        while !done(ps) {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            self.run(ps, 1);
        }
    }
}

/// What a decoder needs of one rewritten stream: sequence numbers without
/// gaps, timestamps moving forward by at most a second, picture ids and
/// TL0PICIDX counting up by one per frame, whichever layer they came from.
pub fn assert_continuous(got: &[Pkt], who: &str) {
    for w in got.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(b.seq, a.seq.wrapping_add(1), "{who}: sequence numbers jump");
        let dt = b.timestamp.wrapping_sub(a.timestamp);
        assert!(
            (1..=90_000).contains(&dt),
            "{who}: timestamp jumps by {dt} (layer {} -> {})",
            a.layer(),
            b.layer()
        );
        assert_eq!(
            b.picture_id(),
            (a.picture_id() + 1) % 0x8000,
            "{who}: picture ids jump (layer {} -> {})",
            a.layer(),
            b.layer()
        );
        assert_eq!(b.tl0(), a.tl0().wrapping_add(1), "{who}: TL0PICIDX jumps");
    }
}

/// The stream went from other layers to `layer` at a key frame and stayed there.
pub fn assert_switched_on_keyframe(got: &[Pkt], layer: u8, who: &str) {
    let first = got
        .iter()
        .position(|g| g.layer() == layer)
        .unwrap_or_else(|| panic!("{who}: layer {layer} never arrived"));
    assert!(first > 0, "{who}: nothing before the switch");
    assert!(got[first].key(), "{who}: the switch is not on a key frame");
    assert!(
        got[first..].iter().all(|g| g.layer() == layer),
        "{who}: went back to another layer: {:?}",
        got.iter()
            .map(|g| (g.layer(), g.key(), g.seq))
            .collect::<Vec<_>>()
    );
}
