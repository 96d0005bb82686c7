//! What ends a DTLS association, said from the side of what the peer did.

/// Why the handshake or the association failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    #[error("the peer sent a malformed {0}")]
    Malformed(&'static str),
    #[error("the peer {0}")]
    Refused(&'static str),
    #[error("the peer's certificate: {0}")]
    BadCertificate(&'static str),
    #[error("the peer's CertificateVerify signature does not verify")]
    BadSignature,
    #[error("a record failed authentication")]
    BadRecordMac,
    #[error("the peer's Finished does not match the handshake")]
    BadFinished,
    #[error("our certificate's key could not be used")]
    OwnKey,
    #[error("the peer sent fatal alert {0}")]
    Alert(u8),
    #[error("the peer did not answer our flight, sent {0} more times")]
    Timeout(u32),
}

impl Error {
    /// The alert (RFC 5246 §7.2) that tells the peer.
    pub fn alert(&self) -> u8 {
        match self {
            Error::Malformed(_) => 50,                                 // decode_error
            Error::Refused(_) => 40,                                   // handshake_failure
            Error::BadCertificate(_) => 42,                            // bad_certificate
            Error::BadSignature | Error::BadFinished => 51,            // decrypt_error
            Error::BadRecordMac => 20,                                 // bad_record_mac
            Error::OwnKey | Error::Timeout(_) | Error::Alert(_) => 80, // internal_error
        }
    }

    /// The nearest of the errors str0m's DTLS interface carries (it has no
    /// free text: the rest go as the alert we sent).
    pub fn to_dimpl(&self) -> dimpl::Error {
        match self {
            Error::Timeout(_) => dimpl::Error::Timeout(dimpl::TimeoutError::Handshake),
            Error::BadFinished => {
                dimpl::Error::SecurityError(dimpl::SecurityError::ClientFinishedVerificationFailed)
            }
            Error::BadCertificate(_) => {
                dimpl::Error::CertificateError(dimpl::CertificateError::ParseFailed)
            }
            Error::Alert(description) => {
                dimpl::Error::SecurityError(dimpl::SecurityError::FatalAlert {
                    description: *description,
                })
            }
            other => dimpl::Error::SecurityError(dimpl::SecurityError::FatalAlert {
                description: other.alert(),
            }),
        }
    }
}
