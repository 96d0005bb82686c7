//! RTCP (RFC 3550) and the feedback the bridge exchanges with browsers
//! (RFC 4585 NACK and PLI, RFC 5104 FIR, REMB, transport-wide congestion
//! control): read from a datagram without copying or allocating, and written
//! into a caller's buffer. Wire format only: what a report means and when to
//! send one is decided elsewhere.
//!
//! [`Compound`] walks the packets of a decrypted datagram, a full compound or
//! a reduced-size one (RFC 5506); each packet borrows the datagram, and its
//! lists (report blocks, lost sequence numbers, per-packet arrivals) are
//! iterators over it. [`Writer`] appends packets to a compound in place.
//!
//! ```
//! use sfu::rtcp::{Compound, Packet, Writer};
//!
//! let mut buf = [0u8; 1200];
//! let mut writer = Writer::new(&mut buf);
//! writer.receiver_report(0x1111, &[]).unwrap();
//! writer.nack(0x1111, 0x2222, [100, 101, 105]).unwrap();
//! let len = writer.len();
//!
//! let mut lost = Vec::new();
//! for packet in Compound::new(&buf[..len]) {
//!     if let Packet::Nack(nack) = packet.unwrap() {
//!         lost.extend(nack.lost());
//!     }
//! }
//! assert_eq!(lost, [100, 101, 105]);
//! ```

mod bye;
mod fir;
mod nack;
mod pli;
mod remb;
mod report;
mod sdes;
mod twcc;
mod writer;

#[cfg(test)]
mod tests;

pub use bye::Bye;
pub use fir::{Fir, FirEntries, FirEntry};
pub use nack::{Nack, NackLost};
pub use pli::Pli;
pub use remb::Remb;
pub use report::{ReceiverReport, ReportBlock, ReportBlocks, SenderInfo, SenderReport};
pub use sdes::{CNAME, Sdes, SdesChunk, SdesChunks, SdesItem, SdesItems};
pub use twcc::{
    DELTA_TICK_US, REFERENCE_TICK_US, TransportFeedback, TransportFeedbackHeader, TwccPackets,
};
pub use writer::{WriteError, Writer};

/// Packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611).
const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;
const RTPFB: u8 = 205;
const PSFB: u8 = 206;

/// Feedback message types (the header's count field in RTPFB and PSFB).
const FMT_NACK: u8 = 1;
const FMT_TWCC: u8 = 15;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;
const FMT_AFB: u8 = 15;

const HEADER_LEN: usize = 4;

/// The longest packet the 16-bit length field can describe.
const MAX_PACKET_LEN: usize = 4 * (1 << 16);

/// One packet of a compound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// RFC 3550 §6.4.1.
    SenderReport(SenderReport<'a>),
    /// RFC 3550 §6.4.2.
    ReceiverReport(ReceiverReport<'a>),
    /// Source description (RFC 3550 §6.5).
    Sdes(Sdes<'a>),
    /// RFC 3550 §6.6.
    Bye(Bye<'a>),
    /// Generic NACK (RFC 4585 §6.2.1).
    Nack(Nack<'a>),
    /// Picture loss indication (RFC 4585 §6.3.1).
    Pli(Pli),
    /// Full intra request (RFC 5104 §4.3.1).
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb).
    Remb(Remb<'a>),
    /// Transport-wide congestion control feedback (RTPFB FMT 15).
    TransportFeedback(TransportFeedback<'a>),
    /// Any other packet (APP, XR, other feedback): its type, the header's
    /// count/FMT field and its body after the header, padding removed.
    Unknown {
        packet_type: u8,
        fmt: u8,
        body: &'a [u8],
    },
}

/// What was wrong with a packet a peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("an empty datagram holds no RTCP packet")]
    Empty,
    #[error("{left} bytes left after the last packet, fewer than a header")]
    ShortHeader { left: usize },
    #[error("version {0}; RTCP is version 2")]
    Version(u8),
    #[error("the header gives {length} bytes; {left} are left in the datagram")]
    LengthBeyondDatagram { length: usize, left: usize },
    #[error("the padding bit is set with a count of {count} in a packet of {length} bytes")]
    Padding { count: u8, length: usize },
    #[error("a {packet} needs {needed} bytes; its length gives {length}")]
    TooShort {
        packet: &'static str,
        needed: usize,
        length: usize,
    },
    #[error("SDES chunk {index} runs beyond the packet")]
    SdesChunk { index: u8 },
    #[error("transport-wide feedback: the chunks describe {described} of {count} packets")]
    TwccChunks { described: u16, count: u16 },
    #[error("transport-wide feedback: the reserved status for sequence {seq}")]
    TwccReservedStatus { seq: u16 },
    #[error("transport-wide feedback: {needed} bytes of receive deltas, {left} left in the packet")]
    TwccDeltas { needed: usize, left: usize },
}

/// The packets of one datagram, in order. A malformed packet ends the walk
/// with the error; the packets before it were well formed.
#[derive(Clone, Debug)]
pub struct Compound<'a> {
    rest: &'a [u8],
    started: bool,
    done: bool,
}

impl<'a> Compound<'a> {
    /// Walks `datagram`, an RTCP packet or compound after SRTCP unprotect.
    pub fn new(datagram: &'a [u8]) -> Self {
        Compound {
            rest: datagram,
            started: false,
            done: false,
        }
    }

    fn split(&mut self) -> Result<Packet<'a>, RtcpError> {
        let rest = self.rest;
        if rest.len() < HEADER_LEN {
            return Err(RtcpError::ShortHeader { left: rest.len() });
        }
        if rest[0] >> 6 != 2 {
            return Err(RtcpError::Version(rest[0] >> 6));
        }
        let length = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        if length > rest.len() {
            return Err(RtcpError::LengthBeyondDatagram {
                length,
                left: rest.len(),
            });
        }
        let (packet, next) = rest.split_at(length);
        let mut end = length;
        if rest[0] & 0x20 != 0 {
            let count = packet[length - 1];
            if count == 0 || usize::from(count) > length - HEADER_LEN {
                return Err(RtcpError::Padding { count, length });
            }
            end -= usize::from(count);
        }
        self.rest = next;
        parse(rest[1], rest[0] & 0x1f, &packet[HEADER_LEN..end])
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<Packet<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.rest.is_empty() {
            self.done = true;
            return (!self.started).then_some(Err(RtcpError::Empty));
        }
        self.started = true;
        let packet = self.split();
        self.done = packet.is_err();
        Some(packet)
    }
}

impl std::iter::FusedIterator for Compound<'_> {}

fn parse(packet_type: u8, fmt: u8, body: &[u8]) -> Result<Packet<'_>, RtcpError> {
    Ok(match (packet_type, fmt) {
        (SR, _) => Packet::SenderReport(SenderReport::parse(fmt, body)?),
        (RR, _) => Packet::ReceiverReport(ReceiverReport::parse(fmt, body)?),
        (SDES, _) => Packet::Sdes(Sdes::parse(fmt, body)?),
        (BYE, _) => Packet::Bye(Bye::parse(fmt, body)?),
        (RTPFB, FMT_NACK) => Packet::Nack(Nack::parse(body)?),
        (RTPFB, FMT_TWCC) => Packet::TransportFeedback(TransportFeedback::parse(body)?),
        (PSFB, FMT_PLI) => Packet::Pli(Pli::parse(body)?),
        (PSFB, FMT_FIR) => Packet::Fir(Fir::parse(body)?),
        // Application-layer feedback is REMB only with REMB's identifier.
        (PSFB, FMT_AFB) if remb::is_remb(body) => Packet::Remb(Remb::parse(body)?),
        _ => Packet::Unknown {
            packet_type,
            fmt,
            body,
        },
    })
}

/// A list of SSRCs in a packet (BYE, REMB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ssrcs<'a> {
    rest: &'a [u8],
}

impl<'a> Ssrcs<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Ssrcs { rest: bytes }
    }
}

impl Iterator for Ssrcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (ssrc, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_be_bytes(*ssrc))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / 4;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Ssrcs<'_> {}

/// The body is at least `needed` bytes, or the packet is too short.
fn need(packet: &'static str, body: &[u8], needed: usize) -> Result<(), RtcpError> {
    if body.len() < needed {
        return Err(RtcpError::TooShort {
            packet,
            needed: HEADER_LEN + needed,
            length: HEADER_LEN + body.len(),
        });
    }
    Ok(())
}

/// A big-endian u32 at `at`; the caller has checked the length.
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a packet's common header; its length comes from `out`, which holds
/// the whole packet (a multiple of four bytes).
fn write_header(out: &mut [u8], count: u8, packet_type: u8) {
    debug_assert!(out.len().is_multiple_of(4) && out.len() <= MAX_PACKET_LEN && count < 32);
    let words = (out.len() / 4 - 1) as u16;
    out[0] = 0x80 | count;
    out[1] = packet_type;
    out[2..4].copy_from_slice(&words.to_be_bytes());
}
