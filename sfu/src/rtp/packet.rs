//! An RTP packet's layout (RFC 3550 §5.1) with its header extensions
//! (RFC 8285, one- and two-byte forms), found without copying: the media path
//! reads what it needs and rewrites a forwarded packet in its own buffer.

use std::ops::Range;

use super::Header;

/// Why a datagram is not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("shorter than the 12-byte fixed header")]
    TooShort,
    #[error("version {0}, not 2")]
    Version(u8),
    #[error("CSRC list or header extension runs past the end")]
    HeaderOverrun,
    #[error("padding count {0} does not fit the packet")]
    Padding(u8),
}

/// Where an RTP packet's parts are in the buffer it was parsed from.
///
/// ```
/// use sfu::rtp::Packet;
///
/// // Header, a one-byte extension block holding id 5 (transport-wide
/// // sequence number 0x0102), then the payload.
/// let buf = [0x90, 111, 0, 7, 0, 0, 0, 160, 0, 0, 0, 42,
///            0xbe, 0xde, 0, 1, 0x51, 1, 2, 0, 0xaa, 0xbb];
/// let p = Packet::parse(&buf).unwrap();
/// assert_eq!((p.header.ssrc, p.header.seq, p.payload_type), (42, 7, 111));
/// assert_eq!(p.extension(&buf, 5), Some(&[1, 2][..]));
/// assert_eq!(p.payload(&buf), &[0xaa, 0xbb]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub header: Header,
    pub payload_type: u8,
    /// The payload: after the header, before any padding.
    pub payload: Range<usize>,
    /// The extension elements' area, and whether they use the two-byte form.
    extensions: Option<(Range<usize>, bool)>,
}

impl Packet {
    pub fn parse(buf: &[u8]) -> Result<Packet, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(RtpError::Version(buf[0] >> 6));
        }
        let mut at = 12 + 4 * usize::from(buf[0] & 0x0f);
        let mut extensions = None;
        if buf[0] & 0x10 != 0 {
            let head = buf.get(at..at + 4).ok_or(RtpError::HeaderOverrun)?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let end = at + 4 + 4 * usize::from(u16::from_be_bytes([head[2], head[3]]));
            if end > buf.len() {
                return Err(RtpError::HeaderOverrun);
            }
            // Other profiles are carried along unread.
            if profile == 0xbede || profile & 0xfff0 == 0x1000 {
                extensions = Some((at + 4..end, profile != 0xbede));
            }
            at = end;
        }
        if at > buf.len() {
            return Err(RtpError::HeaderOverrun);
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let count = buf[end - 1];
            if count == 0 || usize::from(count) > end - at {
                return Err(RtpError::Padding(count));
            }
            end -= usize::from(count);
        }
        Ok(Packet {
            header: Header {
                ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
                seq: u16::from_be_bytes([buf[2], buf[3]]),
                timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
                marker: buf[1] & 0x80 != 0,
            },
            payload_type: buf[1] & 0x7f,
            payload: at..end,
            extensions,
        })
    }

    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.payload.clone()]
    }

    /// The header's length: where the payload starts.
    pub fn header_len(&self) -> usize {
        self.payload.start
    }

    /// The value of extension `id`, if the packet carries it.
    pub fn extension<'a>(&self, buf: &'a [u8], id: u8) -> Option<&'a [u8]> {
        self.extension_range(buf, id).map(|r| &buf[r])
    }

    /// Where extension `id`'s value is, to rewrite it in place.
    pub fn extension_range(&self, buf: &[u8], id: u8) -> Option<Range<usize>> {
        let (area, two_byte) = self.extensions.clone()?;
        let mut at = area.start;
        while at < area.end {
            let (element_id, len, value) = if two_byte {
                if buf[at] == 0 {
                    at += 1; // padding between elements
                    continue;
                }
                let len = usize::from(*buf.get(at + 1).filter(|_| at + 1 < area.end)?);
                (buf[at], len, at + 2)
            } else {
                let element_id = buf[at] >> 4;
                match element_id {
                    0 => {
                        at += 1;
                        continue;
                    }
                    // Reserved: the rest of the block is not to be read (RFC 8285 §4.2).
                    15 => return None,
                    _ => (element_id, usize::from(buf[at] & 0x0f) + 1, at + 1),
                }
            };
            if value + len > area.end {
                return None;
            }
            if element_id == id {
                return Some(value..value + len);
            }
            at = value + len;
        }
        None
    }
}

/// Rewrites the SSRC of the RTP packet in `buf`.
pub fn set_ssrc(buf: &mut [u8], ssrc: u32) {
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Rewrites the sequence number of the RTP packet in `buf`.
pub fn set_seq(buf: &mut [u8], seq: u16) {
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
}

/// Rewrites the timestamp of the RTP packet in `buf`.
pub fn set_timestamp(buf: &mut [u8], timestamp: u32) {
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
}

/// Rewrites the payload type, keeping the marker bit.
pub fn set_payload_type(buf: &mut [u8], pt: u8) {
    buf[1] = (buf[1] & 0x80) | (pt & 0x7f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::packet::Packet as TheirPacket;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    /// Packets of every shape webrtc-rs writes: CSRCs, one- and two-byte
    /// extensions, padding.
    fn theirs(seed: u32) -> TheirPacket {
        let mut p = TheirPacket::default();
        let h = &mut p.header;
        h.version = 2;
        h.marker = seed.is_multiple_of(2);
        h.payload_type = (seed % 128) as u8;
        h.sequence_number = (seed.wrapping_mul(7919)) as u16;
        h.timestamp = seed.wrapping_mul(104_729);
        h.ssrc = seed.wrapping_mul(2_654_435_761);
        h.csrc = (0..seed % 3).map(|i| i + 100).collect();
        match seed % 3 {
            0 => {}
            1 => {
                h.extension = true;
                h.extension_profile = 0xbede;
                for id in 1..=(seed % 5 + 1) as u8 {
                    let value = vec![id; usize::from(id % 4) + 1];
                    h.set_extension(id, value.into()).unwrap();
                }
            }
            _ => {
                h.extension = true;
                h.extension_profile = 0x1000;
                for id in [1u8, 20, 200].into_iter().take((seed % 3 + 1) as usize) {
                    let value = vec![id; usize::from(id % 20) + 1];
                    h.set_extension(id, value.into()).unwrap();
                }
            }
        }
        p.payload = (0..seed % 50).map(|i| i as u8).collect::<Vec<_>>().into();
        p
    }

    #[test]
    fn reads_what_webrtc_rs_writes() {
        for seed in 0..300 {
            let their = theirs(seed);
            let buf = their.marshal().unwrap();
            let ours = Packet::parse(&buf).unwrap();
            let h = &their.header;
            assert_eq!(ours.header.ssrc, h.ssrc);
            assert_eq!(ours.header.seq, h.sequence_number);
            assert_eq!(ours.header.timestamp, h.timestamp);
            assert_eq!(ours.header.marker, h.marker);
            assert_eq!(ours.payload_type, h.payload_type);
            assert_eq!(ours.payload(&buf), &their.payload[..], "seed {seed}");
            for id in 1..=255u8 {
                let expected = h.get_extension(id);
                assert_eq!(
                    ours.extension(&buf, id),
                    expected.as_deref(),
                    "seed {seed} id {id}"
                );
            }
        }
    }

    #[test]
    fn padding_is_not_payload() {
        let mut buf = vec![0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 0, 0, 3];
        let p = Packet::parse(&buf).unwrap();
        assert_eq!(p.payload(&buf), &[9, 9]);
        *buf.last_mut().unwrap() = 6;
        assert_eq!(Packet::parse(&buf), Err(RtpError::Padding(6)));
        *buf.last_mut().unwrap() = 0;
        assert_eq!(Packet::parse(&buf), Err(RtpError::Padding(0)));
    }

    #[test]
    fn rewrites_leave_the_rest_alone() {
        let their = theirs(4);
        let mut buf = their.marshal().unwrap().to_vec();
        let before = Packet::parse(&buf).unwrap();
        set_ssrc(&mut buf, 0xdead_beef);
        set_seq(&mut buf, 65535);
        set_timestamp(&mut buf, 7);
        set_payload_type(&mut buf, 96);
        let range = before.extension_range(&buf, 1).unwrap();
        buf[range.clone()].fill(0x55);
        let mut back = &buf[..];
        let again = TheirPacket::unmarshal(&mut back).unwrap();
        assert_eq!(again.header.ssrc, 0xdead_beef);
        assert_eq!(again.header.sequence_number, 65535);
        assert_eq!(again.header.timestamp, 7);
        assert_eq!(again.header.payload_type, 96);
        assert_eq!(again.header.marker, their.header.marker);
        assert_eq!(again.header.get_extension(1).unwrap().len(), range.len());
        assert!(
            again
                .header
                .get_extension(1)
                .unwrap()
                .iter()
                .all(|b| *b == 0x55)
        );
        assert_eq!(again.payload, their.payload);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut state = 0x1234_5678u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = buf.first_mut() {
                *b = 0x80 | (*b & 0x3f); // mostly version 2, to get past the first check
            }
            if let Ok(p) = Packet::parse(&buf) {
                assert!(p.payload.start <= p.payload.end && p.payload.end <= buf.len());
                for id in 0..=255 {
                    if let Some(r) = p.extension_range(&buf, id) {
                        assert!(r.end <= buf.len());
                    }
                }
            }
        }
        // A valid packet cut anywhere.
        let full = theirs(7).marshal().unwrap();
        for cut in 0..full.len() {
            let _ = Packet::parse(&full[..cut]);
        }
    }
}
