//! An endpoint's media transport: once its DTLS handshake has exported the
//! SRTP keys, its RTP and RTCP go through here, not through str0m (which keeps
//! ICE, DTLS and the data channel). One forwarded packet is copied once, into
//! the datagram it leaves in, rewritten and protected there.
//!
//! Receiving: [`Transport::receive_rtp`] and [`Transport::receive_rtcp`]
//! unprotect in place and keep what feedback needs (receive statistics, NACK
//! generation, transport-wide arrivals, the video cache for retransmissions).
//! Sending: [`Transport::send_rtp`] (a forwarded packet, the receiver's own
//! transport-wide number stamped in), [`Transport::retransmit`],
//! [`Transport::send_pli`]; and on its timers ([`Transport::handle_timeout`])
//! the RTCP a browser expects from its peer: transport-wide feedback, NACKs,
//! sender and receiver reports; and the padding that probes its downlink.

mod feedback;
mod probe;
mod streams;

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use crate::bwe::{Config as BweConfig, Estimator};
use crate::dtls::SrtpKeys;
use crate::receive::TwccRecorder;
use crate::retransmit::{PacketCaches, Retransmitter, rtx};
use crate::router::transmit::{Slot, Transmits};
use crate::rtp::Packet;
use crate::simulcast::Rewrite;
use crate::srtp::{Session, SrtpError};
use streams::{Received, SentStream};

/// Header extension ids of Jitsi's offers (protocol §3.2).
pub(crate) const EXT_AUDIO_LEVEL: u8 = 1;
pub(crate) const EXT_TRANSPORT_CC: u8 = 5;
/// How often sender and receiver reports go out: browsers send theirs about
/// once a second, and round-trip times and lip sync follow them.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What a received SSRC is, from the endpoint's signalled sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Audio,
    Video,
    /// A video SSRC's retransmissions (RFC 4588), of this primary SSRC.
    Rtx(u32),
    Unknown,
}

/// Why a datagram went no further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Srtp(SrtpError),
    /// Decrypted, but not a packet the bridge forwards (unknown SSRC, RTX padding, bad RTP).
    NotForwarded,
}

/// One endpoint's SRTP session and the state of its streams each way.
pub(crate) struct Transport {
    srtp: Session,
    /// Where its datagrams go: where the DTLS handshake went, then wherever its
    /// authenticated media comes from (the pair ICE nominated).
    pub destination: SocketAddr,
    /// The SSRC of the bridge's RTCP to it.
    rtcp_ssrc: u32,
    /// Its RTP: transport-wide arrivals, per-SSRC statistics and NACKs.
    arrivals: TwccRecorder,
    received: Vec<Received>,
    /// Its video, for retransmissions to everyone who receives it.
    pub cache: PacketCaches,
    /// What it is sent, per SSRC, and how its downlink copes.
    sent: Vec<SentStream>,
    retransmitter: Retransmitter,
    bwe: Estimator,
    /// Some video it is sent has an RTX stream, which probes pad on.
    rtx_streams: bool,
    probe: Option<probe::OpenProbe>,
    next_transport_seq: u16,
    reports_at: Instant,
    /// An instant and the wall clock then, for NTP times in reports.
    wallclock: (Instant, SystemTime),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("destination", &self.destination)
            .field("received", &self.received.len())
            .field("sent", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(
        now: Instant,
        keys: &SrtpKeys,
        destination: SocketAddr,
        wallclock: (Instant, SystemTime),
    ) -> Result<Transport, SrtpError> {
        Ok(Transport {
            srtp: Session::from_dtls(&keys.material, keys.profile, keys.dtls_client)?,
            destination,
            rtcp_ssrc: crate::rtp::random_ssrc(),
            arrivals: TwccRecorder::new(now),
            received: Vec::new(),
            cache: PacketCaches::new(),
            sent: Vec::new(),
            retransmitter: Retransmitter::new(now),
            // Videobridge's start, floor and ceiling.
            bwe: Estimator::new(now, BweConfig::default()),
            rtx_streams: false,
            probe: None,
            next_transport_seq: 0,
            reports_at: now + REPORT_INTERVAL,
            wallclock,
        })
    }

    /// The downlink estimate, bits per second.
    pub fn estimate(&self) -> u64 {
        self.bwe.estimate()
    }

    /// Unprotects the SRTP datagram in `buf` in place and records it: its
    /// transport-wide number, its stream's statistics and, for video, the
    /// NACK generator. A retransmission in RTX is unwrapped into
    /// the packet it repeats. Returns the packet's layout and length.
    pub fn receive_rtp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &mut [u8],
        kind_of: impl Fn(u32) -> Kind,
    ) -> Result<(Packet, usize), Refused> {
        let mut len = self
            .srtp
            .inbound
            .unprotect_rtp(buf)
            .map_err(Refused::Srtp)?;
        // Symmetric RTP: the client sends from the pair ICE nominated.
        self.destination = from;
        let mut packet = Packet::parse(&buf[..len]).map_err(|_| Refused::NotForwarded)?;
        if let Some(seq) = packet.extension(buf, EXT_TRANSPORT_CC).and_then(be_u16) {
            self.arrivals.handle_packet(now, seq);
        }
        let kind = match kind_of(packet.header.ssrc) {
            Kind::Rtx(primary) => {
                // Video's RTX (Jicofo's payload types: RTX 96 repeats VP8 100).
                len = rtx::unwrap(&mut buf[..len], primary, crate::VP8_PT)
                    .map_err(|_| Refused::NotForwarded)?;
                packet = Packet::parse(&buf[..len]).map_err(|_| Refused::NotForwarded)?;
                Kind::Video
            }
            kind => kind,
        };
        let clock_rate = match kind {
            Kind::Audio => 48_000,
            Kind::Video => 90_000,
            _ => return Err(Refused::NotForwarded),
        };
        let h = packet.header;
        let stream = streams::received(&mut self.received, h.ssrc, clock_rate, kind == Kind::Video);
        stream.stats.handle_packet(now, h.seq, h.timestamp);
        if let Some(nack) = stream.nack.as_mut() {
            nack.handle_packet(now, h.seq);
        }
        Ok((packet, len))
    }

    /// Unprotects the SRTCP datagram in `buf` in place; returns the RTCP length.
    pub fn receive_rtcp(&mut self, from: SocketAddr, buf: &mut [u8]) -> Result<usize, Refused> {
        let len = self
            .srtp
            .inbound
            .unprotect_rtcp(buf)
            .map_err(Refused::Srtp)?;
        self.destination = from;
        Ok(len)
    }

    /// Sends a forwarded packet (`bytes`, laid out as `packet`): video rewritten
    /// for this receiver by `rewrite` (and recorded for its NACKs), audio as it
    /// came; `captured` is when the sender captured it, for sender reports.
    #[allow(clippy::too_many_arguments)]
    pub fn send_rtp(
        &mut self,
        now: Instant,
        out: &mut Transmits,
        bytes: &[u8],
        packet: &Packet,
        rewrite: Option<&Rewrite>,
        rtx_ssrc: Option<u32>,
        captured: Instant,
    ) {
        let mut slot = out.reserve();
        let buf = slot.buf();
        let n = bytes.len();
        buf[..n].copy_from_slice(bytes);
        let (ssrc, clock_rate) = match rewrite {
            Some(r) => {
                r.apply(&mut buf[..n], packet);
                (r.ssrc, 90_000)
            }
            None => (packet.header.ssrc, 48_000),
        };
        let timestamp = rewrite.map_or(packet.header.timestamp, |r| r.timestamp);
        let transport_seq = packet.extension_range(bytes, EXT_TRANSPORT_CC);
        let stream = streams::sent(
            &mut self.sent,
            now,
            ssrc,
            clock_rate,
            rewrite.is_some(),
            rtx_ssrc,
        );
        stream.count(packet.payload.len(), timestamp, captured);
        self.rtx_streams |= rtx_ssrc.is_some();
        if let (Some(r), Some(history)) = (rewrite, stream.history.as_mut()) {
            history.record(now, packet.header.ssrc, packet.header.seq, r);
        }
        self.finish(now, slot, n, transport_seq);
    }

    /// Answers this receiver's NACK of `seq` on `ssrc` from the sender's
    /// cache, in RTX. Returns whether a retransmission went out.
    pub fn retransmit(
        &mut self,
        now: Instant,
        out: &mut Transmits,
        ssrc: u32,
        seq: u16,
        caches: &PacketCaches,
    ) -> bool {
        let Some(history) = self
            .sent
            .iter_mut()
            .find(|s| s.ssrc == ssrc)
            .and_then(|s| s.history.as_mut())
        else {
            return false;
        };
        let mut slot = out.reserve();
        let buf = slot.buf();
        let Ok(n) = self
            .retransmitter
            .retransmit(now, seq, history, caches, buf)
        else {
            return false;
        };
        let transport_seq = Packet::parse(&buf[..n])
            .ok()
            .and_then(|p| p.extension_range(&buf[..n], EXT_TRANSPORT_CC));
        self.finish(now, slot, n, transport_seq)
    }

    /// Stamps this receiver's next transport-wide number where `transport_seq`
    /// says the packet in the slot's first `n` bytes carries it, tells the
    /// estimator, protects the packet and queues it. Returns whether it went out.
    fn finish(
        &mut self,
        now: Instant,
        mut slot: Slot<'_>,
        n: usize,
        transport_seq: Option<Range<usize>>,
    ) -> bool {
        let buf = slot.buf();
        if let Some(range) = transport_seq.filter(|r| r.len() == 2) {
            let seq = self.next_transport_seq;
            self.next_transport_seq = seq.wrapping_add(1);
            buf[range].copy_from_slice(&seq.to_be_bytes());
            let size = n + self.srtp.outbound.profile().rtp_overhead();
            let probe = self.probe.as_mut().map(|p| p.count(size));
            self.bwe.on_sent(now, seq, size, probe);
        }
        match self.srtp.outbound.protect_rtp(buf, n) {
            Ok(len) => {
                slot.commit(len, self.destination);
                true
            }
            Err(_) => false,
        }
    }

    /// Records a packet as sent to this receiver that never was (it reached
    /// the bridge before the key frame start it follows), so a NACK for it
    /// can be answered from the sender's cache.
    pub fn record_unsent(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        sender_seq: u16,
        rewrite: &Rewrite,
    ) {
        if let Some(history) = self
            .sent
            .iter_mut()
            .find(|s| s.ssrc == rewrite.ssrc)
            .and_then(|s| s.history.as_mut())
        {
            history.record(now, sender_ssrc, sender_seq, rewrite);
        }
    }

    /// The sender of the stream this receiver knows as `ssrc` (what was
    /// forwarded to it there most recently), for routing its NACKs.
    pub fn sender_of(&self, ssrc: u32, seq: u16) -> Option<u32> {
        let stream = self.sent.iter().find(|s| s.ssrc == ssrc)?;
        stream.history.as_ref()?.sent(seq).map(|s| s.sender_ssrc)
    }

    /// Sets the budget retransmissions may take, from the downlink estimate.
    pub fn set_retransmit_budget(&mut self, now: Instant, bps: u64) {
        self.retransmitter.set_budget(now, bps);
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Instant {
        let mut at = self.reports_at;
        for t in [self.arrivals.poll_timeout(), self.probe_timeout()]
            .into_iter()
            .flatten()
        {
            at = at.min(t);
        }
        for r in &self.received {
            if let Some(t) = r.nack.as_ref().and_then(|n| n.poll_timeout()) {
                at = at.min(t);
            }
        }
        at
    }

    /// The NTP time (RFC 3550 §4) of `at`.
    fn ntp(&self, at: Instant) -> u64 {
        let (anchor, wall) = self.wallclock;
        let wall = match at.checked_duration_since(anchor) {
            Some(d) => wall + d,
            None => wall - anchor.duration_since(at),
        };
        to_ntp(wall)
    }
}

fn be_u16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.try_into().ok()?))
}

/// Seconds between the NTP era (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A wall-clock time as a 64-bit NTP timestamp.
pub(crate) fn to_ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A 64-bit NTP timestamp as a wall-clock time.
pub(crate) fn from_ntp(ntp: u64) -> SystemTime {
    let secs = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_times_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let back = from_ntp(to_ntp(t));
        let diff = back.duration_since(t).unwrap_or_else(|e| e.duration());
        assert!(diff < Duration::from_nanos(2), "{diff:?}");
        assert_eq!(to_ntp(t) >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
    }
}
