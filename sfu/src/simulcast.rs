//! Simulcast forwarding for one receiver and one video source.
//!
//! A sender's simulcast source arrives as several encodings (layers), each on
//! its own SSRC. A receiver gets exactly one of them, always on the source's
//! first SSRC, as if it were one stream: sequence numbers, timestamps, the VP8
//! picture ID and TL0PICIDX continue across switches. A switch happens only at
//! a key frame of the wanted layer; until one comes, the forwarder asks for it
//! (the owner turns that into a PLI to the sender), at most every
//! [`KEYFRAME_REQUEST_INTERVAL`].
//!
//! Gaps in a layer's sequence numbers are kept in the output, so the receiver
//! sees real loss and can NACK it ([`SimulcastForwarder::original_seq`] maps a
//! NACKed number back).
//!
//! ```
//! use std::time::Instant;
//! use sfu::rtp::Header;
//! use sfu::simulcast::{SimulcastForwarder, Verdict};
//!
//! let now = Instant::now();
//! let mut fwd = SimulcastForwarder::new(1000);
//! fwd.set_target(Some(0));
//! assert_eq!(fwd.poll_keyframe_request(now), Some(0));
//! // Layer 0's key frame: X=1 S=1 | I=1 | 15-bit picture id 7 | VP8 key frame header
//! let key = [0x90, 0x80, 0x80, 0x07, 0x10];
//! let h = Header { ssrc: 1000, seq: 500, timestamp: 90_000, marker: true };
//! let Verdict::Forward(out) = fwd.handle_packet(now, 0, &h, &key) else { panic!() };
//! assert_eq!((out.ssrc, out.picture_id), (1000, Some(7)));
//! ```

use std::time::{Duration, Instant};

use crate::rtp::{self, Header, seq_newer};
use crate::vp8::Descriptor;

/// Least time between two key frame requests for the same switch.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// RTP clock of video.
const VIDEO_CLOCK_HZ: u64 = 90_000;

/// What to do with one incoming packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not for this receiver (another layer, or before a usable key frame).
    Drop,
    /// Send with these header and payload descriptor values.
    Forward(Rewrite),
}

/// Header values of a forwarded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    /// The VP8 descriptor's fields, when the packet carries them.
    pub picture_id: Option<u16>,
    pub tl0picidx: Option<u8>,
}

impl Rewrite {
    /// Writes the descriptor fields into the receiver's copy of the payload.
    pub fn patch(&self, payload: &mut [u8]) {
        if let Ok(desc) = Descriptor::parse(payload) {
            if let Some(p) = self.picture_id {
                desc.set_picture_id(payload, p);
            }
            if let Some(t) = self.tl0picidx {
                desc.set_tl0picidx(payload, t);
            }
        }
    }

    /// Makes a received packet (`buf`, laid out as `packet`) the packet this
    /// receiver is sent: SSRC, sequence number, timestamp and the VP8
    /// numbers. A first send and a retransmission both come through here, so
    /// a retransmission is byte for byte what was sent. A layout that does
    /// not fit `buf` leaves it alone.
    pub fn apply(&self, buf: &mut [u8], packet: &rtp::Packet) {
        let Some(payload) = buf.get_mut(packet.payload.clone()) else {
            return;
        };
        self.patch(payload);
        rtp::set_ssrc(buf, self.ssrc);
        rtp::set_seq(buf, self.seq);
        rtp::set_timestamp(buf, self.timestamp);
    }
}

/// The layer being forwarded and how its numbers map onto the output.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    layer: u8,
    ssrc: u32,
    /// First input sequence number forwarded from this layer.
    first_seq: u16,
    seq_offset: u16,
    ts_offset: u32,
    picture_id_offset: u16,
    tl0_offset: u8,
}

/// The newest packet sent to the receiver.
#[derive(Clone, Copy, Debug)]
struct LastSent {
    seq: u16,
    timestamp: u32,
    picture_id: Option<u16>,
    tl0picidx: Option<u8>,
    at: Instant,
}

/// Per receiver, per simulcast source. Owned by the conference's worker.
#[derive(Debug)]
pub struct SimulcastForwarder {
    out_ssrc: u32,
    target: Option<u8>,
    mapping: Option<Mapping>,
    last: Option<LastSent>,
    last_keyframe_request: Option<Instant>,
}

impl SimulcastForwarder {
    /// `out_ssrc` is the source's first (lowest layer's) SSRC, the one
    /// receivers know from signaling.
    pub fn new(out_ssrc: u32) -> Self {
        SimulcastForwarder {
            out_ssrc,
            target: None,
            mapping: None,
            last: None,
            last_keyframe_request: None,
        }
    }

    /// The layer the receiver should get (from its constraints and bandwidth);
    /// `None` stops forwarding.
    pub fn set_target(&mut self, layer: Option<u8>) {
        if self.target != layer {
            self.target = layer;
            self.last_keyframe_request = None;
        }
        if layer.is_none() {
            self.mapping = None;
        }
    }

    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// The layer being forwarded now.
    pub fn current(&self) -> Option<u8> {
        self.mapping.map(|m| m.layer)
    }

    /// Decides about one packet of `layer` and, when it is forwarded, its new
    /// numbers.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        layer: u8,
        header: &Header,
        payload: &[u8],
    ) -> Verdict {
        let Ok(desc) = Descriptor::parse(payload) else {
            return Verdict::Drop;
        };
        let on_current = self
            .mapping
            .is_some_and(|m| m.layer == layer && m.ssrc == header.ssrc);
        let switch_here = Some(layer) == self.target && !on_current && desc.is_keyframe_start();
        if switch_here {
            self.mapping = Some(self.map_from(now, layer, header, &desc));
        } else if !on_current {
            return Verdict::Drop;
        }
        let Some(m) = self.mapping else {
            return Verdict::Drop;
        };
        if header.seq != m.first_seq && !seq_newer(header.seq, m.first_seq) {
            // Late packet from before the switch point.
            return Verdict::Drop;
        }
        let rewrite = self.rewrite(&m, header, &desc);
        let newest = self.last.is_none_or(|l| seq_newer(rewrite.seq, l.seq));
        if newest {
            self.last = Some(LastSent {
                seq: rewrite.seq,
                timestamp: rewrite.timestamp,
                picture_id: rewrite.picture_id.or(self.last.and_then(|l| l.picture_id)),
                tl0picidx: rewrite.tl0picidx.or(self.last.and_then(|l| l.tl0picidx)),
                at: now,
            });
        }
        Verdict::Forward(rewrite)
    }

    /// Offsets that continue the output from the last packet sent.
    fn map_from(&self, now: Instant, layer: u8, header: &Header, desc: &Descriptor) -> Mapping {
        let Some(last) = self.last else {
            return Mapping {
                layer,
                ssrc: header.ssrc,
                first_seq: header.seq,
                seq_offset: 0,
                ts_offset: 0,
                picture_id_offset: 0,
                tl0_offset: 0,
            };
        };
        let seq = last.seq.wrapping_add(1);
        // The new frame is at least one tick after the last one, and about as
        // much later as wall-clock time says.
        let elapsed = now.saturating_duration_since(last.at);
        let ticks = (elapsed.as_micros() as u64 * VIDEO_CLOCK_HZ / 1_000_000).max(1);
        let timestamp = last.timestamp.wrapping_add(ticks as u32);
        let modulus = desc.picture_id_modulus();
        let picture_id_offset = match (last.picture_id, desc.picture_id) {
            (Some(l), Some(p)) => (l.wrapping_add(1) % modulus).wrapping_sub(p) % modulus,
            _ => 0,
        };
        let tl0_offset = match (last.tl0picidx, desc.tl0picidx) {
            (Some(l), Some(t)) => l.wrapping_add(1).wrapping_sub(t),
            _ => 0,
        };
        Mapping {
            layer,
            ssrc: header.ssrc,
            first_seq: header.seq,
            seq_offset: seq.wrapping_sub(header.seq),
            ts_offset: timestamp.wrapping_sub(header.timestamp),
            picture_id_offset,
            tl0_offset,
        }
    }

    /// The layer to ask a key frame of, when a wanted switch waits for one.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> Option<u8> {
        let target = self.target?;
        if self.current() == Some(target) {
            return None;
        }
        if self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return None;
        }
        self.last_keyframe_request = Some(now);
        Some(target)
    }

    /// The rewrite a packet of the current layer gets, without forwarding it:
    /// for one that reached the bridge before the key frame start its number
    /// follows (reordered), which a receiver then asks for.
    pub fn rewrite_of(&self, header: &Header, payload: &[u8]) -> Option<Rewrite> {
        let m = self.mapping?;
        let desc = Descriptor::parse(payload).ok()?;
        let after = header.seq == m.first_seq || seq_newer(header.seq, m.first_seq);
        (header.ssrc == m.ssrc && after).then(|| self.rewrite(&m, header, &desc))
    }

    fn rewrite(&self, m: &Mapping, header: &Header, desc: &Descriptor) -> Rewrite {
        let modulus = desc.picture_id_modulus();
        Rewrite {
            ssrc: self.out_ssrc,
            seq: header.seq.wrapping_add(m.seq_offset),
            timestamp: header.timestamp.wrapping_add(m.ts_offset),
            picture_id: desc
                .picture_id
                .map(|p| p.wrapping_add(m.picture_id_offset) % modulus),
            tl0picidx: desc.tl0picidx.map(|t| t.wrapping_add(m.tl0_offset)),
        }
    }

    /// Maps a sequence number the receiver NACKed back to the current layer's
    /// SSRC and number, if it was sent from that layer.
    pub fn original_seq(&self, out_seq: u16) -> Option<(u32, u16)> {
        let m = self.mapping?;
        let seq = out_seq.wrapping_sub(m.seq_offset);
        (seq == m.first_seq || seq_newer(seq, m.first_seq)).then_some((m.ssrc, seq))
    }
}

#[cfg(test)]
mod tests;
