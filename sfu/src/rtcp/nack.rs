//! Generic NACK (RFC 4585 §6.2.1): lost RTP packets as pairs of a packet ID
//! and a bitmask of the 16 sequence numbers after it.

use super::{RtcpError, WriteError, need, u32_at, write_header};

/// Header, sender SSRC, media SSRC.
const FIXED_LEN: usize = 12;

/// A retransmission request for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nack<'a> {
    pub sender_ssrc: u32,
    /// The stream whose packets were lost.
    pub media_ssrc: u32,
    pub(super) pairs: &'a [u8],
}

impl<'a> Nack<'a> {
    /// The lost sequence numbers, in the order the pairs give them.
    pub fn lost(&self) -> NackLost<'a> {
        NackLost {
            pairs: self.pairs,
            pid: 0,
            mask: 0,
        }
    }

    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("NACK", body, 8)?;
        let pairs = &body[8..];
        Ok(Nack {
            sender_ssrc: u32_at(body, 0),
            media_ssrc: u32_at(body, 4),
            pairs: &pairs[..pairs.len() / 4 * 4],
        })
    }
}

/// The lost sequence numbers of a NACK, each pair expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NackLost<'a> {
    pairs: &'a [u8],
    /// The sequence number bit 0 of `mask` stands for.
    pid: u16,
    /// Bit 0: `pid` lost; bit n: `pid + n` lost (the pair's BLP shifted up one).
    mask: u32,
}

impl Iterator for NackLost<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        while self.mask == 0 {
            let (&[a, b, c, d], rest) = self.pairs.split_first_chunk::<4>()?;
            self.pairs = rest;
            self.pid = u16::from_be_bytes([a, b]);
            self.mask = u32::from(u16::from_be_bytes([c, d])) << 1 | 1;
        }
        let bit = self.mask.trailing_zeros();
        self.mask &= self.mask - 1;
        Some(self.pid.wrapping_add(bit as u16))
    }
}

/// Writes a NACK into `room` from lost sequence numbers, packing each run of
/// up to 17 into one pair (wrapping past 65535); returns its length.
pub(super) fn write(
    room: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    lost: impl IntoIterator<Item = u16>,
) -> Result<usize, WriteError> {
    let mut len = FIXED_LEN;
    let mut pair: Option<(u16, u16)> = None;
    for seq in lost {
        pair = match pair {
            Some((pid, blp)) => match seq.wrapping_sub(pid) {
                0 => Some((pid, blp)),
                d @ 1..=16 => Some((pid, blp | 1 << (d - 1))),
                _ => {
                    put_pair(room, &mut len, pid, blp)?;
                    Some((seq, 0))
                }
            },
            None => Some((seq, 0)),
        };
    }
    let Some((pid, blp)) = pair else {
        return Err(WriteError::Empty("lost sequence numbers"));
    };
    put_pair(room, &mut len, pid, blp)?;
    let out = &mut room[..len];
    write_header(out, super::FMT_NACK, super::RTPFB);
    out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    out[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    Ok(len)
}

fn put_pair(room: &mut [u8], len: &mut usize, pid: u16, blp: u16) -> Result<(), WriteError> {
    let left = room.len();
    let out = room.get_mut(*len..*len + 4).ok_or(WriteError::NoRoom {
        needed: *len + 4,
        left,
    })?;
    out[..2].copy_from_slice(&pid.to_be_bytes());
    out[2..].copy_from_slice(&blp.to_be_bytes());
    *len += 4;
    Ok(())
}
