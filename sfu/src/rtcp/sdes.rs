//! Source descriptions (RFC 3550 §6.5): a chunk of items per SSRC, of which
//! the bridge reads at most the CNAME.

use super::{RtcpError, u32_at, write_header};

/// The SDES item type of the canonical name.
pub const CNAME: u8 = 1;

/// A source description packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// One chunk per described source.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks {
            body: self.body,
            at: 0,
            left: self.count,
        }
    }

    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let mut at = 0;
        for index in 0..count {
            let (_, next) = chunk_at(body, at).ok_or(RtcpError::SdesChunk { index })?;
            at = next;
        }
        Ok(Sdes { count, body })
    }
}

/// The chunk starting at `at` and where the next one starts, if it fits.
fn chunk_at(body: &[u8], at: usize) -> Option<(SdesChunk<'_>, usize)> {
    let items = at + 4;
    if body.len() < items {
        return None;
    }
    let ssrc = u32_at(body, at);
    let mut i = items;
    // Items until the null item; a last chunk that runs to the end of the
    // packet without one is taken as it is.
    while i < body.len() && body[i] != 0 {
        let value = i + 2 + usize::from(*body.get(i + 1)?);
        if value > body.len() {
            return None;
        }
        i = value;
    }
    let chunk = SdesChunk {
        ssrc,
        items: &body[items..i],
    };
    // The null item, then zeros to the next 32-bit boundary.
    let next = ((i + 1).next_multiple_of(4)).min(body.len());
    Some((chunk, next))
}

/// The chunks of an SDES packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    at: usize,
    left: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (chunk, next) = chunk_at(self.body, self.at)?;
        self.at = next;
        Some(chunk)
    }
}

/// The items describing one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems { rest: self.items }
    }

    /// The canonical name; `None` when absent or not UTF-8.
    pub fn cname(&self) -> Option<&'a str> {
        let item = self.items().find(|item| item.kind == CNAME)?;
        std::str::from_utf8(item.value).ok()
    }
}

/// One item: its type (CNAME, NAME, ...) and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub kind: u8,
    pub value: &'a [u8],
}

/// The items of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&[kind, len], rest) = self.rest.split_first_chunk::<2>()?;
        let value = rest.get(..usize::from(len))?;
        self.rest = &rest[value.len()..];
        Some(SdesItem { kind, value })
    }
}

/// The length of an SDES packet with one chunk holding a CNAME of `cname_len` bytes.
pub(super) fn cname_len(cname_len: usize) -> usize {
    // Header, SSRC, the item's type and length, the value, the null item, padding.
    (4 + 4 + 2 + cname_len + 1).next_multiple_of(4)
}

/// Writes an SDES packet with one CNAME into `out`, exactly [`cname_len`] bytes.
pub(super) fn write_cname(out: &mut [u8], ssrc: u32, cname: &[u8]) {
    write_header(out, 1, super::SDES);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out[8] = CNAME;
    out[9] = cname.len() as u8;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..].fill(0);
}
