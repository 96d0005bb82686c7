//! SRTP and SRTCP (RFC 3711, RFC 7714) keyed from a DTLS-SRTP handshake
//! (RFC 5764): the media path's own encryption, so a forwarded packet is
//! unprotected and protected in place, with key schedules built once per
//! association and no allocation per packet.
//!
//! A [`Session`] is one endpoint's pair of directions: [`Outbound`] protects
//! what the bridge sends, [`Inbound`] checks and decrypts what it receives.
//!
//! ```
//! use sfu::srtp::{Profile, Session};
//!
//! // Keying material as DTLS exports it: both sides' keys, then both salts.
//! let material = [7u8; 2 * 16 + 2 * 12];
//! let mut client = Session::from_dtls(&material, Profile::AeadAes128Gcm, true).unwrap();
//! let mut server = Session::from_dtls(&material, Profile::AeadAes128Gcm, false).unwrap();
//!
//! let rtp = [0x80, 111, 0, 1, 0, 0, 0, 160, 0xa, 0xb, 0xc, 0xd, 0xde, 0xad];
//! let mut buf = [0u8; 64];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let len = client.outbound.protect_rtp(&mut buf, rtp.len()).unwrap();
//! assert_eq!(len, rtp.len() + Profile::AeadAes128Gcm.rtp_overhead());
//! let plain = server.inbound.unprotect_rtp(&mut buf[..len]).unwrap();
//! assert_eq!(&buf[..plain], &rtp);
//! ```

mod cipher;
mod kdf;
mod replay;
#[cfg(test)]
mod tests;

use cipher::Keys;
use replay::Streams;
pub(crate) use replay::Window as ReplayWindow;

/// How many streams a peer may send before the least recently used is forgotten.
const MAX_RECEIVED_STREAMS: usize = 64;

/// The SRTP protection profiles DTLS can agree on (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80`: AES counter mode, an 80-bit HMAC-SHA1 tag.
    Aes128CmSha1_80,
    /// `SRTP_AEAD_AES_128_GCM`: AES-GCM, a 128-bit tag.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM`.
    AeadAes256Gcm,
}

impl Profile {
    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Profile::Aes128CmSha1_80 | Profile::AeadAes128Gcm => 16,
            Profile::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        match self {
            Profile::Aes128CmSha1_80 => 14,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 12,
        }
    }

    /// Bytes protection adds to an RTP packet (the tag).
    pub fn rtp_overhead(self) -> usize {
        self.tag_len()
    }

    /// Bytes protection adds to an RTCP packet (the tag and the SRTCP index).
    pub fn rtcp_overhead(self) -> usize {
        self.tag_len() + 4
    }

    fn tag_len(self) -> usize {
        match self {
            Profile::Aes128CmSha1_80 => 10,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 16,
        }
    }
}

impl From<dimpl::SrtpProfile> for Profile {
    fn from(p: dimpl::SrtpProfile) -> Self {
        match p {
            dimpl::SrtpProfile::AES128_CM_SHA1_80 => Profile::Aes128CmSha1_80,
            dimpl::SrtpProfile::AEAD_AES_128_GCM => Profile::AeadAes128Gcm,
            _ => Profile::AeadAes256Gcm,
        }
    }
}

/// Why a packet was not protected or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("keying material is {got} bytes; the profile needs {needed}")]
    KeyingMaterial { got: usize, needed: usize },
    #[error("not an RTP packet (too short, wrong version or header beyond its end)")]
    NotRtp,
    #[error("not an RTCP packet (shorter than its fixed header)")]
    NotRtcp,
    #[error("too short to hold the SRTP tag")]
    NoTag,
    #[error("the buffer has no room for the tag")]
    NoRoom,
    #[error("authentication failed")]
    Authentication,
    #[error("a replay of a packet already accepted")]
    Replayed,
    #[error("older than the replay window")]
    TooOld,
}

/// One endpoint's SRTP association: keys each way, from its DTLS handshake.
#[derive(Debug)]
pub struct Session {
    pub outbound: Outbound,
    pub inbound: Inbound,
}

impl Session {
    /// Splits DTLS-exported keying material (RFC 5764 §4.2: client key, server
    /// key, client salt, server salt); the DTLS client sends with the client's.
    pub fn from_dtls(
        material: &[u8],
        profile: Profile,
        dtls_client: bool,
    ) -> Result<Self, SrtpError> {
        let (k, s) = (profile.key_len(), profile.salt_len());
        if material.len() != 2 * (k + s) {
            return Err(SrtpError::KeyingMaterial {
                got: material.len(),
                needed: 2 * (k + s),
            });
        }
        let client = (&material[..k], &material[2 * k..2 * k + s]);
        let server = (&material[k..2 * k], &material[2 * k + s..]);
        let (ours, theirs) = if dtls_client {
            (client, server)
        } else {
            (server, client)
        };
        Ok(Session {
            outbound: Outbound::new(profile, ours.0, ours.1),
            inbound: Inbound::new(profile, theirs.0, theirs.1),
        })
    }
}

/// The sending direction: protects RTP and RTCP in place.
#[derive(Debug)]
pub struct Outbound {
    keys: Keys,
    /// Rollover counters of the streams sent (RFC 3711 §3.3.1).
    streams: Streams,
    /// The next SRTCP index (31 bits, one count for all SSRCs keeps each IV unique).
    srtcp_index: u32,
}

impl Outbound {
    /// Keys for one direction from its master key and salt.
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Self {
        Outbound {
            keys: Keys::derive(profile, master_key, master_salt),
            streams: Streams::sent(),
            srtcp_index: 0,
        }
    }

    /// The profile DTLS agreed on.
    pub fn profile(&self) -> Profile {
        self.keys.profile
    }

    /// Protects the RTP packet in `buf[..len]`, appending the tag; returns the
    /// protected length. `buf` needs [`Profile::rtp_overhead`] bytes of room.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let header = rtp_header_len(&buf[..len.min(buf.len())])?;
        if buf.len() < len + self.keys.profile.rtp_overhead() {
            return Err(SrtpError::NoRoom);
        }
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let window = &mut self.streams.get_or_insert(ssrc).window;
        let index = window.estimate(seq).unwrap_or(u64::from(seq));
        window.accept(index);
        Ok(self.keys.rtp.seal(buf, header, len, ssrc, index))
    }

    /// Protects the compound RTCP packet in `buf[..len]`, appending the SRTCP
    /// index and tag; `buf` needs [`Profile::rtcp_overhead`] bytes of room.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len < 8 || buf.len() < len {
            return Err(SrtpError::NotRtcp);
        }
        if buf.len() < len + self.keys.profile.rtcp_overhead() {
            return Err(SrtpError::NoRoom);
        }
        let index = self.srtcp_index;
        self.srtcp_index = (index + 1) & 0x7fff_ffff;
        Ok(self.keys.rtcp.seal_rtcp(buf, len, index))
    }
}

/// The receiving direction: authenticates, replay-checks and decrypts in place.
#[derive(Debug)]
pub struct Inbound {
    keys: Keys,
    /// Rollover counters and replay windows of the RTP streams received.
    streams: Streams,
    /// Replay windows of SRTCP indexes, by sender SSRC.
    rtcp: Streams,
}

impl Inbound {
    /// Keys for one direction from its master key and salt.
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Self {
        Inbound {
            keys: Keys::derive(profile, master_key, master_salt),
            streams: Streams::received(MAX_RECEIVED_STREAMS),
            rtcp: Streams::received(MAX_RECEIVED_STREAMS),
        }
    }

    /// Unprotects the SRTP packet filling `buf`; returns the plain RTP length.
    /// A packet that fails leaves the stream's state as it was.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let header = rtp_header_len(buf)?;
        let tag = self.keys.profile.rtp_overhead();
        if buf.len() < header + tag {
            return Err(SrtpError::NoTag);
        }
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let index = match self.streams.get(ssrc) {
            Some(stream) => {
                let index = stream.window.estimate(seq).ok_or(SrtpError::TooOld)?;
                stream.window.check(index)?;
                index
            }
            None => u64::from(seq),
        };
        let plain = self.keys.rtp.open(buf, header, ssrc, index)?;
        self.streams.get_or_insert(ssrc).window.accept(index);
        Ok(plain)
    }

    /// Unprotects the SRTCP packet filling `buf`; returns the plain RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let overhead = self.keys.profile.rtcp_overhead();
        if buf.len() < 8 + overhead {
            return Err(SrtpError::NoTag);
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let index = u64::from(self.keys.rtcp.srtcp_index(buf));
        if let Some(stream) = self.rtcp.get(ssrc) {
            stream.window.check(index)?;
        }
        let plain = self.keys.rtcp.open_rtcp(buf)?;
        self.rtcp.get_or_insert(ssrc).window.accept(index);
        Ok(plain)
    }
}

/// The length of an RTP packet's header: fixed part, CSRCs and extension.
fn rtp_header_len(buf: &[u8]) -> Result<usize, SrtpError> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let mut len = 12 + 4 * usize::from(buf[0] & 0x0f);
    if buf[0] & 0x10 != 0 {
        if buf.len() < len + 4 {
            return Err(SrtpError::NotRtp);
        }
        len += 4 + 4 * usize::from(u16::from_be_bytes([buf[len + 2], buf[len + 3]]));
    }
    if buf.len() < len {
        return Err(SrtpError::NotRtp);
    }
    Ok(len)
}
