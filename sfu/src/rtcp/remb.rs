//! Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03): an
//! application-layer feedback message carrying the receiver's estimate.

use super::{RtcpError, Ssrcs, need, u32_at, write_header};

const IDENTIFIER: &[u8; 4] = b"REMB";
/// Sender SSRC, media SSRC (zero), identifier, count and bitrate.
const FIXED_LEN: usize = 16;
const MAX_MANTISSA: u64 = (1 << 18) - 1;

/// The bitrate a receiver says the streams it lists may use together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remb<'a> {
    pub sender_ssrc: u32,
    /// Bits per second (saturating, for an exponent that overflows 64 bits).
    pub bitrate: u64,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// The streams the estimate applies to.
    pub fn ssrcs(&self) -> Ssrcs<'a> {
        Ssrcs::new(self.ssrcs)
    }

    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("REMB", body, FIXED_LEN)?;
        let ssrcs_end = FIXED_LEN + 4 * usize::from(body[12]);
        need("REMB", body, ssrcs_end)?;
        let exponent = u32::from(body[13] >> 2);
        let mantissa = u32_at(body, 12) & MAX_MANTISSA as u32;
        let bitrate = u128::from(mantissa) << exponent;
        Ok(Remb {
            sender_ssrc: u32_at(body, 0),
            bitrate: u64::try_from(bitrate).unwrap_or(u64::MAX),
            ssrcs: &body[FIXED_LEN..ssrcs_end],
        })
    }
}

/// Whether an application-layer feedback body is a REMB.
pub(super) fn is_remb(body: &[u8]) -> bool {
    body.get(8..12) == Some(IDENTIFIER)
}

/// The length of a REMB listing `ssrcs` streams.
pub(super) fn len(ssrcs: usize) -> usize {
    4 + FIXED_LEN + 4 * ssrcs
}

/// Writes a REMB into `out`, exactly [`len`] bytes. The bitrate is rounded
/// down to what an 18-bit mantissa holds, never claiming more than given.
pub(super) fn write(out: &mut [u8], sender_ssrc: u32, bitrate: u64, ssrcs: &[u32]) {
    let exponent = (u64::BITS - bitrate.leading_zeros()).saturating_sub(18);
    let mantissa = (bitrate >> exponent) as u32;
    write_header(out, super::FMT_AFB, super::PSFB);
    out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    out[8..12].fill(0);
    out[12..16].copy_from_slice(IDENTIFIER);
    let word = (ssrcs.len() as u32) << 24 | exponent << 18 | mantissa;
    out[16..20].copy_from_slice(&word.to_be_bytes());
    for (chunk, ssrc) in out[20..].chunks_exact_mut(4).zip(ssrcs) {
        chunk.copy_from_slice(&ssrc.to_be_bytes());
    }
}
