//! The two transforms: AES counter mode with an HMAC-SHA1 tag (RFC 3711
//! §4.1.1, §4.2) and AES-GCM (RFC 7714), for RTP and for RTCP. Key schedules
//! are built once; every operation works in the caller's buffer.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use super::kdf::{Label, derive};
use super::{Profile, SrtpError};

const HMAC_TAG: usize = 10;
const GCM_TAG: usize = 16;
/// The SRTCP trailer's E flag: the packet is encrypted.
const ENCRYPTED: u32 = 0x8000_0000;

/// One direction's session keys for RTP and for RTCP.
pub(super) struct Keys {
    pub profile: Profile,
    pub rtp: PacketKeys,
    pub rtcp: PacketKeys,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn derive(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Keys {
        let packet = |cipher: Label, auth: Label, salt: Label| match profile {
            Profile::Aes128CmSha1_80 => {
                let mut key = [0u8; 16];
                let mut auth_key = [0u8; 20];
                let mut session_salt = [0u8; 14];
                derive(master_key, master_salt, cipher, &mut key);
                derive(master_key, master_salt, auth, &mut auth_key);
                derive(master_key, master_salt, salt, &mut session_salt);
                PacketKeys::AesCm {
                    ctr: UnboundCipherKey::new(&AES_128, &key)
                        .and_then(EncryptingKey::ctr)
                        .expect("a 16-byte AES key"),
                    auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth_key),
                    salt: session_salt,
                }
            }
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => {
                let mut key = [0u8; 32];
                let key = &mut key[..profile.key_len()];
                let mut session_salt = [0u8; 12];
                derive(master_key, master_salt, cipher, key);
                derive(master_key, master_salt, salt, &mut session_salt);
                let algorithm = if profile == Profile::AeadAes128Gcm {
                    &AES_128_GCM
                } else {
                    &AES_256_GCM
                };
                PacketKeys::Gcm {
                    aead: LessSafeKey::new(
                        UnboundKey::new(algorithm, key).expect("a key of the profile's length"),
                    ),
                    salt: session_salt,
                }
            }
        };
        Keys {
            profile,
            rtp: packet(Label::RtpCipher, Label::RtpAuth, Label::RtpSalt),
            rtcp: packet(Label::RtcpCipher, Label::RtcpAuth, Label::RtcpSalt),
        }
    }
}

/// The session keys of RTP or of RTCP in one direction.
// Four per endpoint, made once: the counter-mode variant's size does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum PacketKeys {
    AesCm {
        ctr: EncryptingKey,
        auth: hmac::Key,
        salt: [u8; 14],
    },
    Gcm {
        aead: LessSafeKey,
        salt: [u8; 12],
    },
}

impl PacketKeys {
    /// Encrypts `buf[header..len]` and appends the tag; returns the new length.
    /// The caller has checked there is room.
    pub fn seal(&self, buf: &mut [u8], header: usize, len: usize, ssrc: u32, index: u64) -> usize {
        match self {
            PacketKeys::AesCm { ctr, auth, salt } => {
                let roc = (index >> 16) as u32;
                apply_ctr(ctr, &ctr_iv(salt, ssrc, index), &mut buf[header..len]);
                let tag = hmac_tag(auth, &buf[..len], Some(roc));
                buf[len..len + HMAC_TAG].copy_from_slice(&tag);
                len + HMAC_TAG
            }
            PacketKeys::Gcm { aead, salt } => {
                let nonce = gcm_nonce(salt, ssrc, rtp_tail(index));
                let (head, body) = buf.split_at_mut(header);
                let tag = aead
                    .seal_in_place_separate_tag(nonce, Aad::from(&*head), &mut body[..len - header])
                    .expect("GCM seals any length below its limit");
                body[len - header..len - header + GCM_TAG].copy_from_slice(tag.as_ref());
                len + GCM_TAG
            }
        }
    }

    /// Checks the tag of the packet filling `buf` and decrypts it in place;
    /// returns the plain length.
    pub fn open(
        &self,
        buf: &mut [u8],
        header: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        match self {
            PacketKeys::AesCm { ctr, auth, salt } => {
                let len = buf.len() - HMAC_TAG;
                let tag = hmac_tag(auth, &buf[..len], Some((index >> 16) as u32));
                verify_slices_are_equal(&tag, &buf[len..])
                    .map_err(|_| SrtpError::Authentication)?;
                apply_ctr(ctr, &ctr_iv(salt, ssrc, index), &mut buf[header..len]);
                Ok(len)
            }
            PacketKeys::Gcm { aead, salt } => {
                let nonce = gcm_nonce(salt, ssrc, rtp_tail(index));
                let (head, body) = buf.split_at_mut(header);
                let plain = aead
                    .open_in_place(nonce, Aad::from(&*head), body)
                    .map_err(|_| SrtpError::Authentication)?;
                Ok(header + plain.len())
            }
        }
    }

    /// Encrypts the compound RTCP packet in `buf[..len]` under SRTCP index
    /// `index` and appends the trailer; returns the new length.
    pub fn seal_rtcp(&self, buf: &mut [u8], len: usize, index: u32) -> usize {
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let e_index = (ENCRYPTED | index).to_be_bytes();
        match self {
            PacketKeys::AesCm { ctr, auth, salt } => {
                apply_ctr(ctr, &ctr_iv(salt, ssrc, u64::from(index)), &mut buf[8..len]);
                buf[len..len + 4].copy_from_slice(&e_index);
                let tag = hmac_tag(auth, &buf[..len + 4], None);
                buf[len + 4..len + 4 + HMAC_TAG].copy_from_slice(&tag);
                len + 4 + HMAC_TAG
            }
            PacketKeys::Gcm { aead, salt } => {
                let nonce = gcm_nonce(salt, ssrc, rtcp_tail(index));
                let aad = rtcp_aad(buf, e_index);
                let tag = aead
                    .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf[8..len])
                    .expect("GCM seals any length below its limit");
                buf[len..len + GCM_TAG].copy_from_slice(tag.as_ref());
                buf[len + GCM_TAG..len + GCM_TAG + 4].copy_from_slice(&e_index);
                len + GCM_TAG + 4
            }
        }
    }

    /// The SRTCP index (without the E flag) of a packet at least header plus
    /// trailer long.
    pub fn srtcp_index(&self, buf: &[u8]) -> u32 {
        let at = match self {
            PacketKeys::AesCm { .. } => buf.len() - HMAC_TAG - 4,
            PacketKeys::Gcm { .. } => buf.len() - 4,
        };
        u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) & !ENCRYPTED
    }

    /// Checks and decrypts the SRTCP packet filling `buf`; returns the plain
    /// RTCP length. An unencrypted packet (E flag clear) is accepted with the
    /// counter-mode profile; GCM's variant of it no browser sends.
    pub fn open_rtcp(&self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let index = self.srtcp_index(buf);
        match self {
            PacketKeys::AesCm { ctr, auth, salt } => {
                let signed = buf.len() - HMAC_TAG;
                let tag = hmac_tag(auth, &buf[..signed], None);
                verify_slices_are_equal(&tag, &buf[signed..])
                    .map_err(|_| SrtpError::Authentication)?;
                let len = signed - 4;
                if buf[len] & 0x80 != 0 {
                    apply_ctr(ctr, &ctr_iv(salt, ssrc, u64::from(index)), &mut buf[8..len]);
                }
                Ok(len)
            }
            PacketKeys::Gcm { aead, salt } => {
                let n = buf.len();
                let e_index = [buf[n - 4], buf[n - 3], buf[n - 2], buf[n - 1]];
                if e_index[0] & 0x80 == 0 {
                    return Err(SrtpError::Authentication);
                }
                let nonce = gcm_nonce(salt, ssrc, rtcp_tail(index));
                let aad = rtcp_aad(buf, e_index);
                let plain = aead
                    .open_in_place(nonce, Aad::from(aad), &mut buf[8..n - 4])
                    .map_err(|_| SrtpError::Authentication)?;
                Ok(8 + plain.len())
            }
        }
    }
}

/// The counter-mode IV: session salt, SSRC and 48-bit index (RFC 3711 §4.1.1).
fn ctr_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

fn apply_ctr(key: &EncryptingKey, iv: &[u8; 16], data: &mut [u8]) {
    key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(*iv)))
        .expect("CTR takes a 16-byte IV");
}

/// HMAC-SHA1 over the packet, and for RTP its rollover counter (RFC 3711 §4.2).
/// Truncated to 80 bits.
fn hmac_tag(key: &hmac::Key, packet: &[u8], roc: Option<u32>) -> [u8; HMAC_TAG] {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(packet);
    if let Some(roc) = roc {
        ctx.update(&roc.to_be_bytes());
    }
    let mut tag = [0u8; HMAC_TAG];
    tag.copy_from_slice(&ctx.sign().as_ref()[..HMAC_TAG]);
    tag
}

/// The GCM nonce: two zero bytes, the SSRC and six more, XORed with the
/// session salt (RFC 7714 §8.1, §9.1).
fn gcm_nonce(salt: &[u8; 12], ssrc: u32, tail: [u8; 6]) -> Nonce {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..].copy_from_slice(&tail);
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// RTP's last six nonce bytes: rollover counter and sequence number.
fn rtp_tail(index: u64) -> [u8; 6] {
    let b = index.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// RTCP's last six nonce bytes: two zero bytes and the 31-bit SRTCP index.
fn rtcp_tail(index: u32) -> [u8; 6] {
    let b = index.to_be_bytes();
    [0, 0, b[0], b[1], b[2], b[3]]
}

/// SRTCP's GCM associated data: the first eight bytes and the E flag with the index.
fn rtcp_aad(buf: &[u8], e_index: [u8; 4]) -> [u8; 12] {
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(&buf[..8]);
    aad[8..].copy_from_slice(&e_index);
    aad
}
