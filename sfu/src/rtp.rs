//! RTP: sequence and timestamp arithmetic (RFC 3550 counters wrap) and
//! [`Packet`], where a packet's parts are in its buffer so they can be read
//! and patched in place.

mod packet;

pub use packet::{Packet, RtpError, set_payload_type, set_seq, set_ssrc, set_timestamp};

/// A random nonzero SSRC (RFC 3550 §8: chosen at random, so it is unlikely to
/// collide with the participants'): the bridge's feedback sources and the
/// sender of its own RTCP.
///
/// ```
/// assert_ne!(sfu::rtp::random_ssrc(), 0);
/// ```
pub fn random_ssrc() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    u32::from_be_bytes(bytes).max(1)
}

/// Whether sequence number `a` comes after `b`, modulo 2^16.
///
/// ```
/// assert!(sfu::rtp::seq_newer(1, 65535));
/// assert!(!sfu::rtp::seq_newer(65535, 1));
/// ```
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Whether RTP timestamp `a` comes after `b`, modulo 2^32.
pub fn ts_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// What a forwarder needs of an incoming RTP packet's fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        assert!(seq_newer(10, 9));
        assert!(seq_newer(0, 65535));
        assert!(!seq_newer(9, 10));
        assert!(!seq_newer(7, 7));
        assert!(ts_newer(5, u32::MAX - 5));
        assert!(!ts_newer(u32::MAX - 5, 5));
    }
}
