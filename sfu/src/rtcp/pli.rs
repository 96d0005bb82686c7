//! Picture loss indication (RFC 4585 §6.3.1): the receiver lost part of a
//! picture and asks for a key frame.

use super::{RtcpError, need, u32_at, write_header};

/// A key frame request for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pli {
    pub sender_ssrc: u32,
    /// The stream that needs a key frame.
    pub media_ssrc: u32,
}

impl Pli {
    pub(super) fn parse(body: &[u8]) -> Result<Self, RtcpError> {
        need("PLI", body, 8)?;
        Ok(Pli {
            sender_ssrc: u32_at(body, 0),
            media_ssrc: u32_at(body, 4),
        })
    }
}

pub(super) const LEN: usize = 12;

/// Writes a PLI into `out`, exactly [`LEN`] bytes.
pub(super) fn write(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) {
    write_header(out, super::FMT_PLI, super::PSFB);
    out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    out[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
}
