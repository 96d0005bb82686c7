//! Session keys from a master key and salt: the AES counter-mode PRF of
//! RFC 3711 §4.3 (key derivation rate 0), which RFC 7714 §11 keeps for GCM.

use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;

/// What a derived key is for (RFC 3711 §4.3.2).
#[derive(Clone, Copy, Debug)]
pub(super) enum Label {
    RtpCipher = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpCipher = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// Fills `out` with the key stream for `label`. A master salt shorter than
/// 14 bytes (GCM's 12) is zero-padded on the right, as libsrtp does.
pub(super) fn derive(master_key: &[u8], master_salt: &[u8], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label as u8;
    let algorithm = if master_key.len() == 32 {
        &AES_256
    } else {
        &AES_128
    };
    let key = UnboundCipherKey::new(algorithm, master_key)
        .and_then(EncryptingKey::ctr)
        .expect("a 16- or 32-byte AES key");
    out.fill(0);
    key.less_safe_encrypt(out, EncryptionContext::Iv128(FixedLength::from(iv)))
        .expect("CTR takes a 16-byte IV");
}
