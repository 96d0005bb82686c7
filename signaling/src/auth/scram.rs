//! SCRAM-SHA-1 (RFC 5802) on the server side, and the hashed credentials that
//! both SCRAM and PLAIN check against, so no password is kept in memory.

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2, rand};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::num::NonZeroU32;

const ITERATIONS: u32 = 4096;

/// What the server stores for an account: salt, iteration count, StoredKey and ServerKey.
#[derive(Clone)]
pub struct Credentials {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

fn sha1(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA1,
        NonZeroU32::new(iterations.max(1)).expect("nonzero"),
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

impl Credentials {
    /// Hashes `password` with a fresh random salt.
    pub fn from_password(password: &str) -> Credentials {
        let mut salt = vec![0u8; 16];
        rand::fill(&mut salt).expect("system randomness");
        let salted = salted_password(password, &salt, ITERATIONS);
        let client_key = hmac_sha1(&salted, b"Client Key");
        Credentials {
            stored_key: sha1(&client_key),
            server_key: hmac_sha1(&salted, b"Server Key"),
            salt,
            iterations: ITERATIONS,
        }
    }

    /// Checks a plaintext password (SASL PLAIN).
    pub fn verify_password(&self, password: &str) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        let stored = sha1(&hmac_sha1(&salted, b"Client Key"));
        constant_time::verify_slices_are_equal(&stored, &self.stored_key).is_ok()
    }
}

/// Why a SCRAM exchange failed (each is a SASL `not-authorized` or `malformed-request`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("wrong password")]
    BadProof,
}

/// The server's half of one exchange, after the client-first message.
pub struct ScramServer {
    username: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Splits `n,,n=user,r=nonce` into (username, client-first-bare, client nonce).
pub fn parse_client_first(msg: &str) -> Result<(String, String, String), ScramError> {
    let (gs2, bare) = if let Some(rest) = msg.strip_prefix("n,") {
        ("n", rest)
    } else if let Some(rest) = msg.strip_prefix("y,") {
        ("y", rest)
    } else if msg.starts_with("p=") {
        return Err(ScramError::ChannelBinding);
    } else {
        return Err(ScramError::Malformed);
    };
    let _ = gs2;
    // Skip the optional authzid up to the second comma.
    let bare = bare
        .split_once(',')
        .map(|(_, b)| b)
        .ok_or(ScramError::Malformed)?;
    let mut user = None;
    let mut nonce = None;
    for part in bare.split(',') {
        if let Some(u) = part.strip_prefix("n=") {
            user = Some(u.replace("=2C", ",").replace("=3D", "="));
        } else if let Some(r) = part.strip_prefix("r=") {
            nonce = Some(r.to_owned());
        } else if part.starts_with("m=") {
            return Err(ScramError::Malformed);
        }
    }
    match (user, nonce) {
        (Some(u), Some(r)) if !u.is_empty() && !r.is_empty() => Ok((u, bare.to_owned(), r)),
        _ => Err(ScramError::Malformed),
    }
}

impl ScramServer {
    /// Starts an exchange: returns the state and the server-first message.
    /// With no account, made-up credentials keep the exchange going so that a
    /// wrong user cannot be told from a wrong password.
    pub fn start(
        client_first: &str,
        creds: Option<&Credentials>,
    ) -> Result<(ScramServer, String, Option<Credentials>), ScramError> {
        let (username, client_first_bare, cnonce) = parse_client_first(client_first)?;
        let mut snonce = [0u8; 18];
        rand::fill(&mut snonce).expect("system randomness");
        let nonce = format!("{cnonce}{}", B64.encode(snonce));
        let creds = creds
            .cloned()
            .unwrap_or_else(|| Credentials::from_password(&B64.encode(snonce)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&creds.salt),
            creds.iterations
        );
        Ok((
            ScramServer {
                username,
                client_first_bare,
                server_first: server_first.clone(),
                nonce,
            },
            server_first,
            Some(creds),
        ))
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Checks the client-final message; on success returns the server-final (`v=…`).
    pub fn finish(&self, client_final: &str, creds: &Credentials) -> Result<String, ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed)?;
        let mut nonce_ok = false;
        for part in without_proof.split(',') {
            if let Some(r) = part.strip_prefix("r=") {
                nonce_ok = r == self.nonce;
            }
            if let Some(c) = part.strip_prefix("c=")
                && c != "biws"
                && c != "eSws"
            {
                return Err(ScramError::ChannelBinding);
            }
        }
        if !nonce_ok {
            return Err(ScramError::Malformed);
        }
        let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
        if proof.len() != 20 {
            return Err(ScramError::Malformed);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac_sha1(&creds.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if constant_time::verify_slices_are_equal(&sha1(&client_key), &creds.stored_key).is_err() {
            return Err(ScramError::BadProof);
        }
        let server_signature = hmac_sha1(&creds.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 5802 §5, with our own salt (the exchange is
    /// checked end to end by computing the client side here).
    #[test]
    fn exchange_accepts_right_password_and_refuses_wrong() {
        let creds = Credentials::from_password("pencil");
        assert!(creds.verify_password("pencil"));
        assert!(!creds.verify_password("pen"));
        for (password, ok) in [("pencil", true), ("wrong", false)] {
            let (srv, server_first, _) =
                ScramServer::start("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", Some(&creds)).unwrap();
            let salt = B64
                .decode(
                    server_first
                        .split(",s=")
                        .nth(1)
                        .unwrap()
                        .split(',')
                        .next()
                        .unwrap(),
                )
                .unwrap();
            let nonce = server_first
                .strip_prefix("r=")
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            let salted = salted_password(password, &salt, 4096);
            let client_key = hmac_sha1(&salted, b"Client Key");
            let without_proof = format!("c=biws,r={nonce}");
            let auth = format!("n=user,r=fyko+d2lbbFgONRv9qkxdawL,{server_first},{without_proof}");
            let sig = hmac_sha1(&sha1(&client_key), auth.as_bytes());
            let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
            let r = srv.finish(&format!("{without_proof},p={}", B64.encode(proof)), &creds);
            assert_eq!(r.is_ok(), ok);
        }
    }
}
