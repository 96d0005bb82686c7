//! The streams of one transport: those its endpoint sends the bridge, and
//! those the bridge sends it. Both lists hold signalled streams only (the
//! router forwards nothing else), so they are as long as a conference is big.

use std::time::Instant;

use crate::VP8_RTX_PT;
use crate::receive::{NackGenerator, ReceiveStats};
use crate::retransmit::{RtxStream, SendHistory};

/// A stream the endpoint sends.
#[derive(Debug)]
pub(super) struct Received {
    pub ssrc: u32,
    pub stats: ReceiveStats,
    /// Video only: audio is not worth asking again for.
    pub nack: Option<NackGenerator>,
}

/// The endpoint's stream with `ssrc`, made on its first packet.
pub(super) fn received(
    list: &mut Vec<Received>,
    ssrc: u32,
    clock_rate: u32,
    video: bool,
) -> &mut Received {
    if let Some(i) = list.iter().position(|r| r.ssrc == ssrc) {
        return &mut list[i];
    }
    list.push(Received {
        ssrc,
        stats: ReceiveStats::new(ssrc, clock_rate),
        nack: video.then(NackGenerator::new),
    });
    list.last_mut().expect("just pushed")
}

/// A stream the bridge sends the endpoint.
#[derive(Debug)]
pub(super) struct SentStream {
    pub ssrc: u32,
    pub clock_rate: u32,
    /// For its sender reports (RFC 3550 §6.4.1: wrapping counts).
    pub packets: u32,
    pub octets: u32,
    /// The last timestamp sent and when its media was captured.
    pub last: Option<(u32, Instant)>,
    /// Video: what each number was, for NACKs.
    pub history: Option<SendHistory>,
}

impl SentStream {
    pub fn count(&mut self, payload: usize, timestamp: u32, captured: Instant) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload as u32);
        self.last = Some((timestamp, captured));
    }

    /// The RTP time of `at` on this stream's clock, from the last packet sent.
    pub fn rtp_time(&self, at: Instant) -> Option<u32> {
        let (ts, captured) = self.last?;
        let ticks = if at >= captured {
            (at - captured).as_micros() as i64
        } else {
            -((captured - at).as_micros() as i64)
        } * i64::from(self.clock_rate)
            / 1_000_000;
        Some(ts.wrapping_add(ticks as u32))
    }
}

/// The stream `ssrc` the bridge sends, made on its first packet.
pub(super) fn sent(
    list: &mut Vec<SentStream>,
    now: Instant,
    ssrc: u32,
    clock_rate: u32,
    video: bool,
    rtx_ssrc: Option<u32>,
) -> &mut SentStream {
    if let Some(i) = list.iter().position(|s| s.ssrc == ssrc) {
        return &mut list[i];
    }
    let rtx = rtx_ssrc.map(|r| RtxStream::new(r, VP8_RTX_PT, crate::rtp::random_ssrc() as u16));
    list.push(SentStream {
        ssrc,
        clock_rate,
        packets: 0,
        octets: 0,
        last: None,
        history: video.then(|| SendHistory::new(now, ssrc, rtx)),
    });
    list.last_mut().expect("just pushed")
}
