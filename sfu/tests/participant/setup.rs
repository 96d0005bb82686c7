//! Shared steps of the whole-stack tests: a bridge on loopback, joining it
//! as the focus and client would, driving participants, and a simulcast camera.

use std::time::{Duration, Instant};

use super::{Participant, RTX_OFFSET};
use sfu::api::Sources;
use sfu::bridge::{Bridge, BridgeConfig};

pub fn bridge() -> Bridge {
    Bridge::start(BridgeConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        // These participants know every source before media flows.
        audio_hold: Duration::ZERO,
        // Two workers, so conferences on different threads share the port.
        workers: 2,
        ..Default::default()
    })
    .unwrap()
}

/// Allocates, answers and announces sources, as focus and client do with Jingle.
pub fn join(
    bridge: &Bridge,
    conference: &str,
    name: &str,
    audio: u32,
    video: &[u32],
) -> Participant {
    join_with(bridge, conference, name, audio, video).0
}

pub fn join_with(
    bridge: &Bridge,
    conference: &str,
    name: &str,
    audio: u32,
    video: &[u32],
) -> (Participant, sfu::api::LocalTransport) {
    let local = bridge.create_endpoint(conference, name).unwrap();
    let mut p = Participant::new(name, &local);
    p.send_streams(audio, video);
    let sources = Sources {
        audio: vec![audio],
        video: if video.is_empty() {
            vec![]
        } else {
            vec![video.to_vec()]
        },
        rtx: video.iter().map(|s| (*s, s + RTX_OFFSET)).collect(),
    };
    bridge
        .update_endpoint(conference, name, Some(p.remote()), Some(sources))
        .unwrap();
    (p, local)
}

pub fn poll_all(ps: &mut [Participant], rounds: usize) {
    for _ in 0..rounds {
        for p in ps.iter_mut() {
            p.poll(Duration::from_millis(1));
        }
    }
}

pub fn connect_all(ps: &mut [Participant]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ps.iter().any(|p| !p.connected) {
        assert!(
            Instant::now() < deadline,
            "ICE+DTLS did not complete for {:?}",
            ps.iter()
                .filter(|p| !p.connected)
                .map(|p| &p.name)
                .collect::<Vec<_>>()
        );
        poll_all(ps, 1);
    }
}

/// One VP8 packet: descriptor with 15-bit picture id and TL0PICIDX, then a
/// payload header (key frame or not) and bytes naming layer and frame.
pub fn vp8(picture_id: u16, tl0: u8, key: bool, layer: u8, frame: u32) -> Vec<u8> {
    // X and S | I (picture id), L (TL0PICIDX) and T (RFC 7741 wants T with L)
    // | 15-bit picture id | TL0PICIDX | TID 0.
    let mut p = vec![
        0x90,
        0xE0,
        0x80 | (picture_id >> 8) as u8,
        picture_id as u8,
        tl0,
        0x00,
    ];
    p.push(if key { 0x10 } else { 0x11 });
    p.extend([0xAA, layer]);
    p.extend(frame.to_be_bytes());
    p
}

/// A simulcast camera in participant 0: every frame on every layer, key
/// frames at the start and whenever the bridge asks for one on a layer.
pub struct Camera {
    layers: Vec<u32>,
    frame: u32,
    keyframe_due: Vec<bool>,
    /// Layers it stopped encoding, as a browser does under its own bandwidth or CPU limits.
    paused: Vec<bool>,
}

impl Camera {
    pub fn new(layers: &[u32]) -> Camera {
        Camera {
            layers: layers.to_vec(),
            frame: 0,
            keyframe_due: vec![true; layers.len()],
            paused: vec![false; layers.len()],
        }
    }

    /// Stops sending `layer` (the others go on).
    pub fn pause(&mut self, layer: usize) {
        self.paused[layer] = true;
    }

    pub fn send(&mut self, ps: &mut [Participant], frames: u32) {
        for _ in 0..frames {
            for (l, ssrc) in self.layers.iter().enumerate() {
                if self.paused[l] {
                    continue;
                }
                let asked = ps[0].keyframe_requests.remove(ssrc).is_some();
                let key = std::mem::take(&mut self.keyframe_due[l]) || asked;
                let pid = ((self.frame + 100 * l as u32) % 0x8000) as u16;
                let payload = vp8(pid, (self.frame % 256) as u8, key, l as u8, self.frame);
                ps[0].send_video(*ssrc, self.frame * 3000, payload);
            }
            self.frame += 1;
            poll_all(ps, 3);
        }
        poll_all(ps, 30);
    }
}

/// The bridge's HTTP face on a loopback port; returns the channel URL base.
pub fn serve_channels(rt: &tokio::runtime::Runtime, bridge: &std::sync::Arc<Bridge>) -> String {
    let app = sfu::http::router(bridge.clone());
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("ws://{addr}/colibri-ws/oxbridge/")
    })
}

/// A WebSocket client of the bridge channel.
pub type Channel =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the bridge channel at `path` (an endpoint's `channel_path`) under
/// `base` (from [`serve_channels`]), as its client does.
pub fn open_channel(rt: &tokio::runtime::Runtime, base: &str, path: &str) -> Channel {
    rt.block_on(tokio_tungstenite::connect_async(format!("{base}{path}")))
        .unwrap()
        .0
}
