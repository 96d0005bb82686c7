//! Full intra request (RFC 5104 §4.3.1): a key frame request per stream,
//! numbered so a repeated request is not served twice.

use super::{RtcpError, need, u32_at, write_header};

const ENTRY_LEN: usize = 8;

/// Key frame requests, one entry per stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fir<'a> {
    pub sender_ssrc: u32,
    /// Unused by FIR (zero); the streams are in the entries.
    pub media_ssrc: u32,
    entries: &'a [u8],
}

/// One stream's request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirEntry {
    /// The stream that needs a key frame.
    pub ssrc: u32,
    /// The request's command sequence number: the same number is a repeat.
    pub seq: u8,
}

impl<'a> Fir<'a> {
    pub fn entries(&self) -> FirEntries<'a> {
        FirEntries { rest: self.entries }
    }

    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("FIR", body, 8)?;
        let entries = &body[8..];
        Ok(Fir {
            sender_ssrc: u32_at(body, 0),
            media_ssrc: u32_at(body, 4),
            entries: &entries[..entries.len() / ENTRY_LEN * ENTRY_LEN],
        })
    }
}

/// The entries of a FIR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirEntries<'a> {
    rest: &'a [u8],
}

impl Iterator for FirEntries<'_> {
    type Item = FirEntry;

    fn next(&mut self) -> Option<FirEntry> {
        let (entry, rest) = self.rest.split_first_chunk::<ENTRY_LEN>()?;
        self.rest = rest;
        Some(FirEntry {
            ssrc: u32_at(entry, 0),
            seq: entry[4],
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / ENTRY_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for FirEntries<'_> {}

/// The length of a FIR with `entries` entries.
pub(super) fn len(entries: usize) -> usize {
    12 + ENTRY_LEN * entries
}

/// Writes a FIR into `out`, exactly [`len`] bytes.
pub(super) fn write(out: &mut [u8], sender_ssrc: u32, entries: &[FirEntry]) {
    write_header(out, super::FMT_FIR, super::PSFB);
    out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    out[8..12].fill(0);
    for (chunk, entry) in out[12..].chunks_exact_mut(ENTRY_LEN).zip(entries) {
        chunk[..4].copy_from_slice(&entry.ssrc.to_be_bytes());
        chunk[4] = entry.seq;
        chunk[5..].fill(0);
    }
}
