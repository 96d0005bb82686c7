//! Sender and receiver reports (RFC 3550 §6.4) and their report blocks.

use super::{RtcpError, need, u32_at, write_header};

const BLOCK_LEN: usize = 24;
/// SSRC, NTP time, RTP time, packet and octet counts.
const SENDER_INFO_LEN: usize = 24;

/// What a sender says of its own stream (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// The wall clock when the report was sent, in NTP format (seconds since
    /// 1900 in the high 32 bits, the fraction in the low 32).
    pub ntp_time: u64,
    /// The same instant on the stream's RTP clock.
    pub rtp_time: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// One receiver's view of one stream (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The stream reported on.
    pub ssrc: u32,
    /// Lost since the previous report, in 1/256ths.
    pub fraction_lost: u8,
    /// Expected minus received since the start: 24 bits, signed, as
    /// duplicates can make it negative. Written clamped to that range.
    pub cumulative_lost: i32,
    /// The highest sequence number received, with the wrap count above it.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP clock units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last sender report received.
    pub last_sr: u32,
    /// Time since that sender report, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn read(b: &[u8]) -> Self {
        let lost = u32_at(b, 4);
        ReportBlock {
            ssrc: u32_at(b, 0),
            fraction_lost: (lost >> 24) as u8,
            // Sign-extends the low 24 bits.
            cumulative_lost: ((lost << 8) as i32) >> 8,
            extended_highest_seq: u32_at(b, 8),
            jitter: u32_at(b, 12),
            last_sr: u32_at(b, 16),
            delay_since_last_sr: u32_at(b, 20),
        }
    }

    fn write(&self, out: &mut [u8]) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff;
        let words = [
            self.ssrc,
            u32::from(self.fraction_lost) << 24 | lost,
            self.extended_highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    }
}

/// The report blocks of a sender or receiver report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.rest.split_first_chunk::<BLOCK_LEN>()?;
        self.rest = rest;
        Some(ReportBlock::read(block))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / BLOCK_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// A sender report: the sender's own counts and what it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub info: SenderInfo,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// What the sender received from others, one block per stream.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { rest: self.blocks }
    }

    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let blocks_end = SENDER_INFO_LEN + BLOCK_LEN * usize::from(count);
        need("sender report", body, blocks_end)?;
        Ok(SenderReport {
            info: SenderInfo {
                ssrc: u32_at(body, 0),
                ntp_time: u64::from(u32_at(body, 4)) << 32 | u64::from(u32_at(body, 8)),
                rtp_time: u32_at(body, 12),
                packet_count: u32_at(body, 16),
                octet_count: u32_at(body, 20),
            },
            // Profile-specific extensions after the blocks are skipped.
            blocks: &body[SENDER_INFO_LEN..blocks_end],
        })
    }
}

/// A receiver report: what a participant that sends nothing received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// The reporter.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// One block per stream received.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { rest: self.blocks }
    }

    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let blocks_end = 4 + BLOCK_LEN * usize::from(count);
        need("receiver report", body, blocks_end)?;
        Ok(ReceiverReport {
            ssrc: u32_at(body, 0),
            blocks: &body[4..blocks_end],
        })
    }
}

/// The length of a sender report with `blocks` report blocks.
pub(super) fn sender_len(blocks: usize) -> usize {
    4 + SENDER_INFO_LEN + BLOCK_LEN * blocks
}

/// The length of a receiver report with `blocks` report blocks.
pub(super) fn receiver_len(blocks: usize) -> usize {
    8 + BLOCK_LEN * blocks
}

/// Writes a sender report into `out`, exactly [`sender_len`] bytes.
pub(super) fn write_sender(out: &mut [u8], info: &SenderInfo, blocks: &[ReportBlock]) {
    write_header(out, blocks.len() as u8, super::SR);
    let words = [
        info.ssrc,
        (info.ntp_time >> 32) as u32,
        info.ntp_time as u32,
        info.rtp_time,
        info.packet_count,
        info.octet_count,
    ];
    for (chunk, word) in out[4..28].chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    write_blocks(&mut out[28..], blocks);
}

/// Writes a receiver report into `out`, exactly [`receiver_len`] bytes.
pub(super) fn write_receiver(out: &mut [u8], ssrc: u32, blocks: &[ReportBlock]) {
    write_header(out, blocks.len() as u8, super::RR);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    write_blocks(&mut out[8..], blocks);
}

fn write_blocks(out: &mut [u8], blocks: &[ReportBlock]) {
    for (chunk, block) in out.chunks_exact_mut(BLOCK_LEN).zip(blocks) {
        block.write(chunk);
    }
}
