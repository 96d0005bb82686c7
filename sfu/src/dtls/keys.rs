//! The TLS 1.2 key schedule over SHA-256 (RFC 5246 §5, §6.3, §8.1; RFC 7627;
//! RFC 5705): the one pseudo-random function every secret of a DTLS 1.2
//! association with an SHA-256 cipher suite comes from.

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;

use super::Error;
use super::message;

/// What the two hellos agreed and the secrets that come of it, the same for
/// both roles.
#[derive(Default)]
pub(super) struct Secrets {
    pub client_random: [u8; 32],
    pub server_random: [u8; 32],
    pub extended_master_secret: bool,
    /// The agreed SRTP profile's id.
    pub srtp_profile: u16,
    master: Master,
}

impl Secrets {
    /// The master secret from the ECDHE secret and the transcript through
    /// ClientKeyExchange; the record keys from it.
    pub fn derive(&mut self, premaster: &[u8], transcript: &[u8]) -> KeyBlock {
        let session_hash = digest(&SHA256, transcript);
        self.master = master_secret(
            premaster,
            self.extended_master_secret.then_some(session_hash.as_ref()),
            &self.client_random,
            &self.server_random,
        );
        KeyBlock::derive(&self.master, &self.client_random, &self.server_random)
    }

    /// The `verify_data` of the `client`'s or the server's Finished after `transcript`.
    pub fn finished(&self, client: bool, transcript: &[u8]) -> [u8; 12] {
        finished(&self.master, client, digest(&SHA256, transcript).as_ref())
    }

    /// Checks the peer's Finished (`client`: the client's).
    pub fn check_finished(
        &self,
        client: bool,
        transcript: &[u8],
        received: &[u8],
    ) -> Result<(), Error> {
        verify_slices_are_equal(&self.finished(client, transcript), received)
            .map_err(|_| Error::BadFinished)
    }

    /// The agreed SRTP profile and its keying material.
    pub fn srtp_keys(&self) -> (Vec<u8>, dimpl::SrtpProfile) {
        let profile = message::srtp_profile(self.srtp_profile);
        let material = srtp_material(
            &self.master,
            &self.client_random,
            &self.server_random,
            profile.keying_material_len(),
        );
        (material, profile)
    }
}

/// The ECDHE shared secret with the peer's public key.
pub(super) fn premaster(
    ours: EphemeralPrivateKey,
    algorithm: &'static agreement::Algorithm,
    peer: &[u8],
) -> Result<Vec<u8>, Error> {
    agreement::agree_ephemeral(
        ours,
        UnparsedPublicKey::new(algorithm, peer),
        Error::Refused("sent an ECDHE public key not on the curve"),
        |secret| Ok(secret.to_vec()),
    )
}

/// `PRF(secret, label, seed)` of RFC 5246 §5, filling `out`.
pub(super) fn prf(secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut a = {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        seed.iter().for_each(|s| ctx.update(s));
        ctx.sign()
    };
    for chunk in out.chunks_mut(32) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        seed.iter().for_each(|s| ctx.update(s));
        let block = ctx.sign();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        a = hmac::sign(&key, a.as_ref());
    }
}

/// The 48-byte master secret of an association.
#[derive(Clone, Copy)]
struct Master([u8; 48]);

impl Default for Master {
    fn default() -> Self {
        Master([0; 48])
    }
}

impl std::ops::Deref for Master {
    type Target = [u8; 48];

    fn deref(&self) -> &[u8; 48] {
        &self.0
    }
}

/// The master secret: bound to the handshake's transcript hash when
/// both sides agreed on the extended master secret (RFC 7627), else to the
/// two randoms.
fn master_secret(
    premaster: &[u8],
    session_hash: Option<&[u8]>,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Master {
    let mut master = [0u8; 48];
    match session_hash {
        Some(hash) => prf(premaster, b"extended master secret", &[hash], &mut master),
        None => prf(
            premaster,
            b"master secret",
            &[client_random, server_random],
            &mut master,
        ),
    }
    Master(master)
}

/// The record keys of an AES-128-GCM cipher suite, one direction each.
pub(super) struct KeyBlock {
    pub client_key: [u8; 16],
    pub server_key: [u8; 16],
    pub client_salt: [u8; 4],
    pub server_salt: [u8; 4],
}

impl KeyBlock {
    /// RFC 5246 §6.3: the key block, with no MAC keys for an AEAD suite.
    pub fn derive(master: &[u8; 48], client_random: &[u8; 32], server_random: &[u8; 32]) -> Self {
        let mut block = [0u8; 40];
        prf(
            master,
            b"key expansion",
            &[server_random, client_random],
            &mut block,
        );
        let mut keys = KeyBlock {
            client_key: [0; 16],
            server_key: [0; 16],
            client_salt: [0; 4],
            server_salt: [0; 4],
        };
        keys.client_key.copy_from_slice(&block[..16]);
        keys.server_key.copy_from_slice(&block[16..32]);
        keys.client_salt.copy_from_slice(&block[32..36]);
        keys.server_salt.copy_from_slice(&block[36..]);
        keys
    }
}

/// The `verify_data` of a Finished message (12 bytes, RFC 5246 §7.4.9).
fn finished(master: &[u8; 48], client: bool, transcript_hash: &[u8]) -> [u8; 12] {
    let label: &[u8] = if client {
        b"client finished"
    } else {
        b"server finished"
    };
    let mut out = [0u8; 12];
    prf(master, label, &[transcript_hash], &mut out);
    out
}

/// The SRTP keying material (RFC 5764 §4.2 by the RFC 5705 exporter).
fn srtp_material(
    master: &[u8; 48],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    len: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; len];
    prf(
        master,
        b"EXTRACTOR-dtls_srtp",
        &[client_random, server_random],
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::hex;

    /// The TLS 1.2 PRF test vector for SHA-256 published with the IETF TLS
    /// working group's draft test vectors (secret, "test label", seed, 100 bytes).
    #[test]
    fn the_prf_gives_the_published_sha256_vector() {
        let secret = hex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = hex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let mut out = [0u8; 100];
        prf(&secret, b"test label", &[&seed], &mut out);
        let expected = hex(
            "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
             6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab
             4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
             87 34 7b 66",
        );
        assert_eq!(&out[..], &expected[..]);
    }
}
