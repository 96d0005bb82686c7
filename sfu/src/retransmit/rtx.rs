//! The RTX payload format (RFC 4588 §4), SSRC-multiplexed as WebRTC uses it:
//! a retransmission travels on its own SSRC, payload type and sequence
//! numbers, with the original sequence number (OSN) as the payload's first
//! two bytes. Both directions work in place.

use crate::rtp::{self, Packet, RtpError};

/// Why a packet could not be wrapped in RTX or taken out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtxError {
    #[error("not an RTP packet: {0}")]
    NotRtp(#[from] RtpError),
    /// Padding alone, as senders probe bandwidth on their RTX stream: there
    /// is no packet inside, which is not a fault.
    #[error("padding only: a probe with no packet inside")]
    PaddingOnly,
    #[error("an RTX payload of {0} bytes cannot hold the original sequence number")]
    NoOriginalSeq(usize),
    #[error("the buffer has no room for the original sequence number")]
    NoRoom,
}

/// One RTX stream the bridge sends: the SSRC and payload type a receiver
/// paired with one of its video streams, and the RTX stream's own sequence
/// numbers, which run on whatever is retransmitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtxStream {
    pub ssrc: u32,
    pub payload_type: u8,
    next_seq: u16,
}

impl RtxStream {
    /// `first_seq` should be random (RFC 3550 §5.1); the caller owns randomness.
    pub fn new(ssrc: u32, payload_type: u8, first_seq: u16) -> Self {
        RtxStream {
            ssrc,
            payload_type,
            next_seq: first_seq,
        }
    }

    /// Takes the stream's next sequence number. Anything else sent on this
    /// SSRC (padding to probe bandwidth) must number from here too.
    pub fn next_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        seq
    }
}

/// Wraps the RTP packet in `buf[..len]` in RTX on `rtx`, in place; returns
/// the RTX packet's length, `len + 2`. Header extensions, CSRCs, marker,
/// timestamp and padding stay as they were.
pub fn wrap(buf: &mut [u8], len: usize, rtx: &mut RtxStream) -> Result<usize, RtxError> {
    let packet = Packet::parse(buf.get(..len).ok_or(RtxError::NoRoom)?)?;
    if buf.len() < len + 2 {
        return Err(RtxError::NoRoom);
    }
    let header = packet.header_len();
    buf.copy_within(header..len, header + 2);
    buf[header..header + 2].copy_from_slice(&packet.header.seq.to_be_bytes());
    rtp::set_ssrc(buf, rtx.ssrc);
    rtp::set_payload_type(buf, rtx.payload_type);
    rtp::set_seq(buf, rtx.next_seq());
    Ok(len + 2)
}

/// Takes the packet out of the RTX packet filling `buf`, in place: the
/// primary stream's SSRC and payload type, the original sequence number, the
/// payload without it. Returns the restored packet's length, `buf.len() - 2`.
pub fn unwrap(
    buf: &mut [u8],
    primary_ssrc: u32,
    primary_payload_type: u8,
) -> Result<usize, RtxError> {
    let packet = Packet::parse(buf)?;
    let payload = packet.payload.len();
    if payload < 2 {
        let padded = buf[0] & 0x20 != 0;
        return Err(if payload == 0 && padded {
            RtxError::PaddingOnly
        } else {
            RtxError::NoOriginalSeq(payload)
        });
    }
    let header = packet.header_len();
    let osn = u16::from_be_bytes([buf[header], buf[header + 1]]);
    buf.copy_within(header + 2.., header);
    rtp::set_ssrc(buf, primary_ssrc);
    rtp::set_payload_type(buf, primary_payload_type);
    rtp::set_seq(buf, osn);
    Ok(buf.len() - 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retransmit::tests::{Rng, random_packet};

    #[test]
    fn wrap_then_unwrap_gives_the_packet_back() {
        let mut rng = Rng(7);
        let mut rtx = RtxStream::new(0xabcd, 97, 65534);
        for i in 0..2000u16 {
            let original = random_packet(&mut rng);
            let parsed = Packet::parse(&original).unwrap();
            let mut buf = original.clone();
            buf.extend_from_slice(&[0xee; 2]);
            let len = wrap(&mut buf, original.len(), &mut rtx).unwrap();
            assert_eq!(len, original.len() + 2);
            let rtx_packet = Packet::parse(&buf[..len]).unwrap();
            assert_eq!(rtx_packet.header.ssrc, 0xabcd);
            assert_eq!(rtx_packet.payload_type, 97);
            assert_eq!(
                rtx_packet.header.seq,
                65534u16.wrapping_add(i),
                "RTX numbering runs on"
            );
            assert_eq!(rtx_packet.header.timestamp, parsed.header.timestamp);
            assert_eq!(rtx_packet.header.marker, parsed.header.marker);
            let osn = &rtx_packet.payload(&buf)[..2];
            assert_eq!(osn, parsed.header.seq.to_be_bytes());
            assert_eq!(&rtx_packet.payload(&buf)[2..], parsed.payload(&original));

            let back = unwrap(&mut buf[..len], parsed.header.ssrc, parsed.payload_type).unwrap();
            assert_eq!(&buf[..back], &original[..], "packet {i}");
        }
    }

    #[test]
    fn unwrap_then_wrap_gives_the_rtx_packet_back() {
        let mut rng = Rng(11);
        for _ in 0..500 {
            let mut rtx_packet = random_packet(&mut rng);
            let parsed = Packet::parse(&rtx_packet).unwrap();
            if parsed.payload.len() < 2 {
                continue;
            }
            let original = rtx_packet.clone();
            let len = unwrap(&mut rtx_packet, 5, 96).unwrap();
            let mut rtx =
                RtxStream::new(parsed.header.ssrc, parsed.payload_type, parsed.header.seq);
            assert_eq!(wrap(&mut rtx_packet, len, &mut rtx), Ok(original.len()));
            assert_eq!(rtx_packet, original);
        }
    }

    #[test]
    fn an_rtx_packet_without_an_original_sequence_number_is_refused() {
        // Header only; then one payload byte; then padding alone (a probe).
        let mut header_only = vec![0x80, 97, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7];
        assert_eq!(
            unwrap(&mut header_only, 1, 96),
            Err(RtxError::NoOriginalSeq(0))
        );
        let mut one = vec![0x80, 97, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0x12];
        assert_eq!(unwrap(&mut one, 1, 96), Err(RtxError::NoOriginalSeq(1)));
        let mut probe = vec![0xa0, 97, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 0, 4];
        assert_eq!(unwrap(&mut probe, 1, 96), Err(RtxError::PaddingOnly));
        let mut padded_one = vec![0xa0, 97, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0x12, 0, 2];
        assert_eq!(
            unwrap(&mut padded_one, 1, 96),
            Err(RtxError::NoOriginalSeq(1))
        );
        assert_eq!(
            unwrap(&mut [0x80, 97, 0], 1, 96),
            Err(RtxError::NotRtp(RtpError::TooShort))
        );
    }

    #[test]
    fn wrap_needs_two_bytes_of_room() {
        let packet = [0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 1, 2, 3];
        let mut rtx = RtxStream::new(1, 97, 0);
        let mut tight = packet;
        assert_eq!(
            wrap(&mut tight, packet.len(), &mut rtx),
            Err(RtxError::NoRoom)
        );
        assert_eq!(tight, packet, "left alone");
        assert_eq!(
            wrap(&mut tight, packet.len() + 1, &mut rtx),
            Err(RtxError::NoRoom)
        );
        assert_eq!(rtx.next_seq(), 0, "no number spent on a refusal");
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut rng = Rng(3);
        for _ in 0..20_000 {
            let len = (rng.next() % 48) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(b) = buf.first_mut() {
                *b = 0x80 | (*b & 0x3f);
            }
            let mut copy = buf.clone();
            if let Ok(n) = unwrap(&mut copy, 1, 96) {
                assert_eq!(n + 2, buf.len());
            }
            let mut rtx = RtxStream::new(1, 97, 0);
            let cut = (rng.next() as usize) % (len + 3);
            let _ = wrap(&mut buf, cut, &mut rtx);
        }
    }
}
