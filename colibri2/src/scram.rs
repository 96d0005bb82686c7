//! SCRAM-SHA-1 (RFC 5802) on the client side: what Prosody offers first and
//! what Videobridge logs in with.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Why the server's SCRAM messages were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    #[error("the server's nonce does not extend ours")]
    Nonce,
    #[error("the server's signature is wrong: it does not know the password")]
    ServerSignature,
}

/// One SCRAM-SHA-1 exchange, from the client's first message to checking the
/// server's signature.
///
/// ```
/// // RFC 5802 §5's example.
/// let mut s = colibri2::scram::Scram::with_nonce("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
/// assert_eq!(s.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
/// let last = s.client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
/// assert_eq!(last, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
/// s.check_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
/// ```
pub struct Scram {
    user: String,
    password: String,
    nonce: String,
    /// The server's signature we expect, once the final message is sent.
    expected: Option<Vec<u8>>,
}

impl Scram {
    /// A fresh exchange with a random nonce.
    pub fn new(user: &str, password: &str) -> Scram {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        Scram::with_nonce(user, password, &nonce)
    }

    /// An exchange with a chosen nonce (tests).
    pub fn with_nonce(user: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            user: user.replace('=', "=3D").replace(',', "=2C"),
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            expected: None,
        }
    }

    fn first_bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    /// The client-first-message (no channel binding).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare())
    }

    /// Answers the server-first-message with the client-final-message.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, ScramError> {
        let field = |key: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        let nonce = field("r").ok_or(ScramError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Nonce);
        }
        let salt = field("s")
            .and_then(|s| B64.decode(s).ok())
            .ok_or(ScramError::Malformed("no salt"))?;
        let iterations = field("i")
            .and_then(|i| i.parse::<u32>().ok())
            .and_then(NonZeroU32::new)
            .ok_or(ScramError::Malformed("no iteration count"))?;
        let mut salted = [0u8; 20];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA1,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare());
        let client_key = hmac_sha1(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &client_key);
        let signature = hmac_sha1(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac_sha1(&salted, b"Server Key");
        self.expected = Some(hmac_sha1(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final-message: the server proves it knows the password too.
    pub fn check_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        let got = server_final
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ScramError::Malformed("no verifier"))?;
        match &self.expected {
            Some(expected) if *expected == got => Ok(()),
            _ => Err(ScramError::ServerSignature),
        }
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    hmac::sign(&key, data).as_ref().to_vec()
}
