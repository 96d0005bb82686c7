//! Bandwidth probing: when a receiver asked for more video than its estimate
//! lets it have, the estimator calls for a short burst above the estimate
//! (a probe cluster), and the transport sends it as padding on the
//! receiver's video RTX stream, paced at the cluster's rate. How the burst
//! arrives, in the receiver's transport-wide feedback, tells the estimator
//! what the path can carry; without it the estimate grows only by what is
//! already sent, and a receiver on a good link would wait minutes for its
//! next layer. Videobridge and libwebrtc probe the same way.

use std::time::{Duration, Instant};

use super::{EXT_TRANSPORT_CC, Transport};
use crate::bwe::ProbeCluster;
use crate::router::transmit::Transmits;

/// Padding bytes per probe packet: libwebrtc's most, so a cluster at a few
/// Mbit/s is tens of packets, enough for its rate to be measured.
const PADDING: usize = 224;

/// A probe packet's header: 12 bytes, then the one-byte extension block
/// with the transport-wide number (RFC 8285: 4-byte header, 3-byte element,
/// 1 byte of alignment).
const HEADER: usize = 12 + 4 + 4;

/// Where the transport-wide number sits in a probe packet.
const TRANSPORT_SEQ: std::ops::Range<usize> = 17..19;

/// A cluster that cannot finish (its receiver lost consent, the buffer is
/// full) closes after this, so probing never holds a timer open.
const MAX_OPEN: Duration = Duration::from_millis(50);

/// The probe cluster being sent and how far it has got.
#[derive(Debug)]
pub(super) struct OpenProbe {
    cluster: ProbeCluster,
    started: Instant,
    bytes: usize,
    packets: usize,
}

impl OpenProbe {
    /// Counts a packet sent while the cluster is open; returns its id for
    /// the estimator.
    pub fn count(&mut self, size: usize) -> crate::bwe::ProbeClusterId {
        self.bytes += size;
        self.packets += 1;
        self.cluster.id
    }

    fn next_due(&self) -> Instant {
        self.cluster
            .send_time(self.started, self.bytes)
            .min(self.started + MAX_OPEN)
    }
}

impl Transport {
    /// What the receiver would be sent if its estimate allowed everything it
    /// asked for: when that is above the estimate, probing finds out whether
    /// the path has room for it.
    pub fn set_desired_bitrate(&mut self, now: Instant, bps: u64) {
        self.bwe.set_desired_bitrate(now, bps);
    }

    /// Probing needs an RTX stream to pad on, and a wish to measure against:
    /// a receiver is not probed before it is known to want more (as
    /// Videobridge does; libwebrtc also probes blind at the start).
    fn can_probe(&self) -> bool {
        self.rtx_streams && self.bwe.desired_bitrate().is_some()
    }

    /// When probing next has work: the open cluster's next packet, or the
    /// next cluster the estimator may call for. Only a transport sending
    /// video with RTX can probe.
    pub(super) fn probe_timeout(&self) -> Option<Instant> {
        match &self.probe {
            Some(open) => Some(open.next_due()),
            None if self.can_probe() => self.bwe.poll_timeout(),
            None => None,
        }
    }

    /// Opens a cluster when one is due and sends the padding that keeps it
    /// at its rate; closes it when complete.
    pub(super) fn send_probe(&mut self, now: Instant, out: &mut Transmits) {
        if self.probe.is_none() {
            if !self.can_probe() {
                return;
            }
            let Some(cluster) = self.bwe.poll_probe(now) else {
                return;
            };
            self.probe = Some(OpenProbe {
                cluster,
                started: now,
                bytes: 0,
                packets: 0,
            });
        }
        while let Some(open) = &self.probe {
            let complete = open.cluster.is_complete(open.bytes, open.packets);
            if complete || now >= open.started + MAX_OPEN {
                self.probe = None;
                return;
            }
            if open.next_due() > now {
                return;
            }
            if !self.send_padding(now, out) {
                self.probe = None;
                return;
            }
        }
    }

    /// Sends one padding-only packet on the RTX stream of the video stream
    /// sent most recently. Returns whether it went out.
    fn send_padding(&mut self, now: Instant, out: &mut Transmits) -> bool {
        let Some(stream) = self
            .sent
            .iter_mut()
            .filter(|s| s.history.as_ref().is_some_and(|h| h.rtx().is_some()))
            .max_by_key(|s| s.last.map(|(_, at)| at))
        else {
            return false;
        };
        // The media's last timestamp, as libwebrtc stamps its padding.
        let timestamp = stream.last.map_or(0, |(ts, _)| ts);
        let Some(rtx) = stream.history.as_mut().and_then(|h| h.rtx_mut()) else {
            return false;
        };
        let (ssrc, payload_type, seq) = (rtx.ssrc, rtx.payload_type, rtx.next_seq());
        let mut slot = out.reserve();
        let n = write_padding(slot.buf(), ssrc, payload_type, seq, timestamp);
        self.finish(now, slot, n, Some(TRANSPORT_SEQ))
    }
}

/// Writes a padding-only RTP packet (RFC 3550 §5.1: P set, the last byte
/// counts the padding) with room for the transport-wide number; returns
/// its length.
fn write_padding(buf: &mut [u8], ssrc: u32, payload_type: u8, seq: u16, timestamp: u32) -> usize {
    let len = HEADER + PADDING;
    let p = &mut buf[..len];
    p[0] = 0x80 | 0x20 | 0x10; // version 2, padding, extension
    p[1] = payload_type & 0x7f;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&timestamp.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    // One-byte extensions, one word: the transport-wide number (2 bytes).
    p[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 1]);
    p[16] = (EXT_TRANSPORT_CC << 4) | 1;
    p[17..20].fill(0);
    p[HEADER..].fill(0);
    p[len - 1] = PADDING as u8;
    len
}

#[cfg(test)]
mod tests;
