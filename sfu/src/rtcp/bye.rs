//! BYE (RFC 3550 §6.6): sources leaving, with an optional reason.

use super::{RtcpError, Ssrcs, need, write_header};

/// Sources that stopped sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// Why they left, as the sender wrote it.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub fn ssrcs(&self) -> Ssrcs<'a> {
        Ssrcs::new(self.ssrcs)
    }

    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let ssrcs_end = 4 * usize::from(count);
        need("BYE", body, ssrcs_end)?;
        let reason = match body.get(ssrcs_end) {
            Some(&len) => {
                let reason_end = ssrcs_end + 1 + usize::from(len);
                need("BYE", body, reason_end)?;
                Some(&body[ssrcs_end + 1..reason_end])
            }
            None => None,
        };
        Ok(Bye {
            ssrcs: &body[..ssrcs_end],
            reason,
        })
    }
}

/// The length of a BYE for `ssrcs` sources and no reason.
pub(super) fn len(ssrcs: usize) -> usize {
    4 + 4 * ssrcs
}

/// Writes a BYE into `out`, exactly [`len`] bytes.
pub(super) fn write(out: &mut [u8], ssrcs: &[u32]) {
    write_header(out, ssrcs.len() as u8, super::BYE);
    for (chunk, ssrc) in out[4..].chunks_exact_mut(4).zip(ssrcs) {
        chunk.copy_from_slice(&ssrc.to_be_bytes());
    }
}
