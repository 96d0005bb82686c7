//! The bridge's one DTLS certificate, shared by every endpoint.
//!
//! Generating a key pair per endpoint would cost a signature each time a
//! participant joins; one self-signed ECDSA P-256 certificate per process is
//! what Videobridge does too. Its SHA-256 fingerprint goes into every offer.

use str0m::config::{DtlsCert, Fingerprint};

/// Why the certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the crypto provider could not generate a DTLS certificate")]
pub struct CertificateError;

/// A DTLS certificate and its fingerprint.
#[derive(Clone)]
pub struct Certificate {
    pub(crate) dtls: DtlsCert,
    fingerprint: Fingerprint,
}

impl Certificate {
    pub fn generate() -> Result<Certificate, CertificateError> {
        let crypto = str0m::crypto::from_feature_flags();
        let dtls = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or(CertificateError)?;
        let digest = crypto.sha256_provider.sha256(&dtls.certificate);
        Ok(Certificate {
            dtls,
            fingerprint: Fingerprint {
                hash_func: "sha-256".into(),
                bytes: digest.to_vec(),
            },
        })
    }

    /// The fingerprint as Jingle carries it: `hash="sha-256"`, colon-separated hex.
    pub fn fingerprint_hex(&self) -> String {
        hex_colon(&self.fingerprint.bytes)
    }
}

/// `AB:CD:…`, the fingerprint text of RFC 8122.
pub(crate) fn hex_colon(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Parses `AB:CD:…` (any case).
pub(crate) fn parse_hex_colon(text: &str) -> Option<Vec<u8>> {
    text.split(':')
        .map(|h| {
            (h.len() == 2)
                .then(|| u8::from_str_radix(h, 16).ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_text_round_trips() {
        let c = Certificate::generate().unwrap();
        let text = c.fingerprint_hex();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert_eq!(parse_hex_colon(&text).unwrap(), c.fingerprint.bytes);
        assert_eq!(parse_hex_colon("ab:0"), None);
        assert_eq!(parse_hex_colon("zz"), None);
    }
}
