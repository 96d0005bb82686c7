//! The peer's public key out of its X.509 certificate, the signatures made
//! with it that the handshake checks, and ours.
//!
//! WebRTC certificates are self-signed and pinned by the fingerprint in the
//! signalling, so nothing of the certificate but its key matters here: a
//! short DER walk to the SubjectPublicKeyInfo (RFC 5280 §4.1) is all the
//! parsing it takes.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};

use super::Error;

/// Signature schemes (RFC 8446 §4.2.3 numbering, which TLS 1.2's
/// SignatureAndHashAlgorithm pairs share).
pub(super) mod scheme {
    pub const ECDSA_P256_SHA256: u16 = 0x0403;
    pub const ECDSA_P384_SHA384: u16 = 0x0503;
    pub const RSA_PKCS1_SHA256: u16 = 0x0401;
    pub const RSA_PKCS1_SHA384: u16 = 0x0501;
    pub const RSA_PSS_SHA256: u16 = 0x0804;
}

/// The schemes a client may sign its CertificateVerify with.
pub(super) const VERIFIABLE: [u16; 5] = [
    scheme::ECDSA_P256_SHA256,
    scheme::ECDSA_P384_SHA384,
    scheme::RSA_PKCS1_SHA256,
    scheme::RSA_PKCS1_SHA384,
    scheme::RSA_PSS_SHA256,
];

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A certificate's public key, by kind.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PublicKey<'a> {
    P256(&'a [u8]),
    P384(&'a [u8]),
    /// An RSAPublicKey (RFC 8017 A.1.1).
    Rsa(&'a [u8]),
}

/// One DER element: its tag, its contents and what follows it.
fn element(der: &[u8]) -> Result<(u8, &[u8], &[u8]), Error> {
    let bad = Error::BadCertificate("DER");
    let (&tag, rest) = der.split_first().ok_or(bad.clone())?;
    let (&first, rest) = rest.split_first().ok_or(bad.clone())?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return Err(bad);
        }
        let len = rest[..n]
            .iter()
            .fold(0, |acc, &b| acc << 8 | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The contents of the element at the front, which must carry `tag`.
fn expect(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), Error> {
    let (got, contents, rest) = element(der)?;
    if got != tag {
        return Err(Error::BadCertificate("unexpected DER element"));
    }
    Ok((contents, rest))
}

const SEQUENCE: u8 = 0x30;

/// The subject public key of a DER certificate.
pub(super) fn public_key(certificate: &[u8]) -> Result<PublicKey<'_>, Error> {
    let (cert, _) = expect(certificate, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2; // version
    }
    for _ in 0..5 {
        rest = element(rest)?.2; // serial, signature, issuer, validity, subject
    }
    let (spki, _) = expect(rest, SEQUENCE)?;
    let (algorithm, rest) = expect(spki, SEQUENCE)?;
    let (bits, _) = expect(rest, 0x03)?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(Error::BadCertificate("public key bit string")),
    };
    let (oid, params) = expect(algorithm, 0x06)?;
    match oid {
        OID_RSA => Ok(PublicKey::Rsa(key)),
        OID_EC_PUBLIC_KEY => match expect(params, 0x06)?.0 {
            OID_P256 => Ok(PublicKey::P256(key)),
            OID_P384 => Ok(PublicKey::P384(key)),
            _ => Err(Error::BadCertificate(
                "an elliptic curve other than P-256 and P-384",
            )),
        },
        _ => Err(Error::BadCertificate("a key neither ECDSA nor RSA")),
    }
}

/// Checks a signature the holder of `key` made over `message`.
pub(super) fn verify(
    key: &PublicKey,
    scheme: u16,
    message: &[u8],
    sig: &[u8],
) -> Result<(), Error> {
    let (algorithm, key): (&dyn VerificationAlgorithm, &[u8]) = match (key, scheme) {
        (PublicKey::P256(k), scheme::ECDSA_P256_SHA256) => (&signature::ECDSA_P256_SHA256_ASN1, k),
        (PublicKey::P256(k), scheme::ECDSA_P384_SHA384) => (&signature::ECDSA_P256_SHA384_ASN1, k),
        (PublicKey::P384(k), scheme::ECDSA_P384_SHA384) => (&signature::ECDSA_P384_SHA384_ASN1, k),
        (PublicKey::P384(k), scheme::ECDSA_P256_SHA256) => (&signature::ECDSA_P384_SHA256_ASN1, k),
        (PublicKey::Rsa(k), scheme::RSA_PKCS1_SHA256) => {
            (&signature::RSA_PKCS1_2048_8192_SHA256, k)
        }
        (PublicKey::Rsa(k), scheme::RSA_PKCS1_SHA384) => {
            (&signature::RSA_PKCS1_2048_8192_SHA384, k)
        }
        (PublicKey::Rsa(k), scheme::RSA_PSS_SHA256) => (&signature::RSA_PSS_2048_8192_SHA256, k),
        _ => {
            return Err(Error::Refused(
                "signed with a scheme that does not fit its certificate's key",
            ));
        }
    };
    UnparsedPublicKey::new(algorithm, key)
        .verify(message, sig)
        .map_err(|_| Error::BadSignature)
}

/// Checks a signature of the peer's, made with a scheme we offered.
pub(super) fn verify_offered(
    key: &PublicKey,
    scheme: u16,
    message: &[u8],
    sig: &[u8],
) -> Result<(), Error> {
    if !VERIFIABLE.contains(&scheme) {
        return Err(Error::Refused("signed with a scheme we did not offer"));
    }
    verify(key, scheme, message, sig)
}

/// Our certificate's private key, which signs the ServerKeyExchange.
pub(super) struct Signer {
    key: EcdsaKeyPair,
    pub scheme: u16,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// From the PKCS#8 key of an ECDSA P-256 or P-384 certificate.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(Signer {
                key,
                scheme: scheme::ECDSA_P256_SHA256,
            });
        }
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der)
            .map(|key| Signer {
                key,
                scheme: scheme::ECDSA_P384_SHA384,
            })
            .map_err(|_| Error::OwnKey)
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signature = self
            .key
            .sign(&SystemRandom::new(), message)
            .map_err(|_| Error::OwnKey)?;
        Ok(signature.as_ref().to_vec())
    }

    #[cfg(test)]
    pub fn public_key(&self) -> &[u8] {
        use aws_lc_rs::signature::KeyPair;
        self.key.public_key().as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_of_our_own_certificate_is_found_and_checks_our_signature() {
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .unwrap();
        let signer = Signer::from_pkcs8(&cert.private_key).unwrap();
        let key = public_key(&cert.certificate).unwrap();
        assert_eq!(key, PublicKey::P256(signer.public_key()));
        let signature = signer.sign(b"params").unwrap();
        verify(&key, signer.scheme, b"params", &signature).unwrap();
        assert!(matches!(
            verify(&key, signer.scheme, b"other", &signature),
            Err(Error::BadSignature)
        ));
        assert!(verify(&key, scheme::RSA_PKCS1_SHA256, b"params", &signature).is_err());
    }

    #[test]
    fn a_certificate_cut_anywhere_is_refused() {
        let cert = str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .unwrap();
        for len in 0..cert.certificate.len() - 100 {
            assert!(public_key(&cert.certificate[..len]).is_err(), "{len}");
        }
    }
}
