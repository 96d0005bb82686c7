//! Media a simulated participant sends, without encoding anything: Opus-sized
//! audio with a talk/silence pattern, and a 3-layer VP8 simulcast camera with
//! real payload descriptors (picture ID, TL0PICIDX, temporal layers, key
//! frames), packetised to browser-like sizes.
//!
//! Every payload carries the generator's send time (8 bytes of microseconds
//! on a clock shared by the process, see [`stamp`]) so receivers in the same
//! process measure one-way latency. Time is passed in.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The process-wide clock the send stamps are read on.
pub mod stamp {
    use super::*;

    static ORIGIN: OnceLock<Instant> = OnceLock::new();

    /// Microseconds from the process origin to `at`.
    pub fn micros(at: Instant) -> u64 {
        let origin = *ORIGIN.get_or_init(Instant::now);
        at.saturating_duration_since(origin).as_micros() as u64
    }
}

pub const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// RTP clock ticks per audio packet (48 kHz, 20 ms).
const AUDIO_TICKS: u32 = 960;
/// Largest payload per video packet, roughly what Chrome packs under its MTU.
const MAX_VIDEO_PAYLOAD: usize = 1100;
/// VP8 descriptor with X, I (15-bit picture ID), L and T: 6 bytes.
pub const VP8_DESCRIPTOR_LEN: usize = 6;
/// What follows the descriptor on a frame's first packet: the VP8 payload
/// header, and on key frames the start code and dimensions (RFC 6386 §9.1).
pub const VP8_FRAME_HEADER_LEN: usize = 10;

/// One audio packet: talk spurts of 3 s, 2 s of background noise.
pub struct Audio {
    next: Instant,
    start: Instant,
    rtp_ts: u32,
    n: u64,
}

pub struct AudioPacket {
    pub rtp_ts: u32,
    /// Negative dBov, as the `ssrc-audio-level` extension carries it.
    pub level: i8,
    pub payload: Vec<u8>,
}

impl Audio {
    /// `phase` staggers the talk pattern between participants.
    pub fn new(now: Instant, phase: u64) -> Audio {
        Audio {
            next: now,
            start: now - Duration::from_millis(phase % 5000),
            rtp_ts: (phase as u32).wrapping_mul(7919),
            n: 0,
        }
    }

    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// The packets due by `now` (at most a few after a stall).
    pub fn poll(&mut self, now: Instant, out: &mut Vec<AudioPacket>) {
        let mut burst = 0;
        while self.next <= now && burst < 10 {
            burst += 1;
            let in_cycle = self.next.duration_since(self.start).as_millis() % 5000;
            let talking = in_cycle < 3000;
            let size = if talking {
                90 + (self.n % 31) as usize
            } else {
                60
            };
            let mut payload = vec![0x78; size];
            payload[..8].copy_from_slice(&stamp::micros(now).to_be_bytes());
            out.push(AudioPacket {
                rtp_ts: self.rtp_ts,
                // Never 127 (digital silence): bridges may drop that, which
                // would read as loss here.
                level: if talking {
                    -30 - (self.n % 8) as i8
                } else {
                    -85
                },
                payload,
            });
            self.rtp_ts = self.rtp_ts.wrapping_add(AUDIO_TICKS);
            self.next += AUDIO_PTIME;
            self.n += 1;
        }
        if self.next <= now {
            self.next = now + AUDIO_PTIME; // far behind: skip rather than burst
        }
    }
}

/// One simulcast encoding.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub height: u16,
    pub fps: u32,
    pub kbps: u32,
}

/// Chrome's camera ladder for 720p, roughly.
pub const LAYERS: [Layer; 3] = [
    Layer {
        height: 180,
        fps: 15,
        kbps: 150,
    },
    Layer {
        height: 360,
        fps: 30,
        kbps: 500,
    },
    Layer {
        height: 720,
        fps: 30,
        kbps: 1500,
    },
];

/// Temporal layer of the n-th frame in an L1T3 pattern.
const TID: [u8; 4] = [0, 2, 1, 2];

struct Encoding {
    layer: Layer,
    next: Instant,
    picture_id: u16,
    tl0: u8,
    frame: u64,
    keyframe_due: bool,
}

pub struct VideoPacket {
    pub layer: usize,
    pub rtp_ts: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// A simulcast camera: every layer at its own frame rate and bitrate.
pub struct Camera {
    encodings: Vec<Encoding>,
    start: Instant,
    ts_base: u32,
}

impl Camera {
    pub fn new(now: Instant, seed: u32) -> Camera {
        let encodings = LAYERS
            .iter()
            .enumerate()
            .map(|(i, l)| Encoding {
                layer: *l,
                next: now,
                picture_id: (seed.wrapping_mul(31).wrapping_add(i as u32 * 1000) % 0x8000) as u16,
                tl0: seed as u8,
                frame: 0,
                keyframe_due: true,
            })
            .collect();
        Camera {
            encodings,
            start: now,
            ts_base: seed.wrapping_mul(2654435761),
        }
    }

    /// A PLI or FIR for one layer: its next frame is a key frame.
    pub fn request_keyframe(&mut self, layer: usize) {
        if let Some(e) = self.encodings.get_mut(layer) {
            e.keyframe_due = true;
        }
    }

    pub fn next_due(&self) -> Instant {
        self.encodings
            .iter()
            .map(|e| e.next)
            .min()
            .unwrap_or(self.start)
    }

    /// Every frame due by `now`, packetised.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<VideoPacket>) {
        let stamp = stamp::micros(now).to_be_bytes();
        let ticks = (now.duration_since(self.start).as_micros() * 9 / 100) as u32;
        let rtp_ts = self.ts_base.wrapping_add(ticks);
        for (i, e) in self.encodings.iter_mut().enumerate() {
            if e.next > now {
                continue;
            }
            let period = Duration::from_secs(1) / e.layer.fps;
            e.next += period;
            if e.next <= now {
                e.next = now + period;
            }
            let key = std::mem::take(&mut e.keyframe_due);
            let tid = if key { 0 } else { TID[(e.frame % 4) as usize] };
            if tid == 0 {
                e.tl0 = e.tl0.wrapping_add(1);
            }
            e.picture_id = (e.picture_id + 1) % 0x8000;
            e.frame += 1;
            let mut size = (e.layer.kbps as usize * 1000 / 8) / e.layer.fps as usize;
            if key {
                size *= 3;
            }
            let packets = size.div_ceil(MAX_VIDEO_PAYLOAD).max(1);
            for p in 0..packets {
                let first = p == 0;
                let mut payload = Vec::with_capacity(size / packets + 32);
                payload.extend([
                    if first { 0x90 } else { 0x80 }, // X, S on the frame's first packet
                    0xE0,                            // I, L, T
                    0x80 | (e.picture_id >> 8) as u8,
                    e.picture_id as u8,
                    e.tl0,
                    (tid << 6) | if key || tid > 0 { 0x20 } else { 0 }, // TID, Y
                ]);
                if first {
                    payload.extend(frame_header(key, e.layer.height));
                }
                payload.extend(stamp);
                payload.resize(payload.len().max(size / packets), 0x5A);
                out.push(VideoPacket {
                    layer: i,
                    rtp_ts,
                    marker: p + 1 == packets,
                    payload,
                });
            }
        }
    }
}

/// A VP8 frame's first bytes: the 3-byte tag (P bit clear on key frames),
/// then on key frames start code and 14-bit width and height.
fn frame_header(key: bool, height: u16) -> [u8; VP8_FRAME_HEADER_LEN] {
    let width = height / 9 * 16;
    let [w0, w1] = width.to_le_bytes();
    let [h0, h1] = height.to_le_bytes();
    if key {
        [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, w0, w1, h0, h1]
    } else {
        [0x11, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0]
    }
}

/// The send stamp in a payload we generated, if it is one of ours.
pub fn read_stamp(video: bool, payload: &[u8]) -> Option<u64> {
    let at = if video {
        let start = payload.first()? & 0x17 == 0x10; // S=1, PID=0
        VP8_DESCRIPTOR_LEN + if start { VP8_FRAME_HEADER_LEN } else { 0 }
    } else {
        0
    };
    let bytes = payload.get(at..at + 8)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_sends_each_layer_at_its_rate_with_readable_stamps() {
        let t0 = Instant::now();
        let mut cam = Camera::new(t0, 7);
        let mut out = Vec::new();
        let mut t = t0;
        while t < t0 + Duration::from_secs(1) {
            cam.poll(t, &mut out);
            t += Duration::from_millis(5);
        }
        let bytes = |l: usize| -> usize {
            out.iter()
                .filter(|p| p.layer == l)
                .map(|p| p.payload.len())
                .sum()
        };
        // A key frame at the start, then the layer's bitrate.
        assert!((18_000..32_000).contains(&bytes(0)), "{}", bytes(0));
        assert!((180_000..260_000).contains(&bytes(2)), "{}", bytes(2));
        let frames = out.iter().filter(|p| p.layer == 1 && p.marker).count();
        assert!((29..=31).contains(&frames), "{frames}");
        assert!(out.iter().all(|p| read_stamp(true, &p.payload).is_some()));
        assert!(
            out.iter()
                .all(|p| p.payload.len() <= MAX_VIDEO_PAYLOAD + 32)
        );
        // The first packet of layer 0 is a key frame start.
        assert_eq!(out[0].payload[VP8_DESCRIPTOR_LEN] & 1, 0);
    }

    #[test]
    fn audio_is_fifty_packets_a_second() {
        let t0 = Instant::now();
        let mut a = Audio::new(t0, 0);
        let mut out = Vec::new();
        for ms in 0..1000 {
            a.poll(t0 + Duration::from_millis(ms), &mut out);
        }
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|p| (60..=120).contains(&p.payload.len())));
    }
}
