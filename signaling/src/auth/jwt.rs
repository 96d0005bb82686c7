//! Jitsi token authentication: the checks of Prosody's `mod_auth_token`.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;

use crate::config::JwtConfig;

/// A verified token's facts the session needs.
#[derive(Clone, Debug, Default)]
pub struct TokenClaims {
    /// The `room` claim: `*` or a room name.
    pub room: String,
    /// `context.user` fields (id, name, avatar, email, …) in claim order.
    pub user: Vec<(String, String)>,
    pub group: Option<String>,
    /// `context.user.moderator` was true.
    pub moderator: bool,
}

/// Why a token was refused; the text goes into the SASL failure the client shows.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("token required")]
    Missing,
    #[error("Invalid signature")]
    Signature,
    #[error("Not acceptable by exp")]
    Expired,
    #[error("Not acceptable by nbf")]
    NotYetValid,
    #[error("invalid issuer")]
    Issuer,
    #[error("invalid audience")]
    Audience,
    #[error("'room' claim is missing")]
    NoRoom,
    #[error("invalid token: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Claims {
    aud: Option<Value>,
    room: Option<String>,
    #[serde(default)]
    context: Option<Value>,
}

/// Verifies tokens against the configured secret and keys.
pub struct JwtVerifier {
    config: JwtConfig,
    hs256: Option<DecodingKey>,
    rs256: Vec<DecodingKey>,
}

impl JwtVerifier {
    /// Loads the RS256 key files; a missing or bad file is a startup error.
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, String> {
        let hs256 = config
            .app_secret
            .as_deref()
            .map(|s| DecodingKey::from_secret(s.as_bytes()));
        let mut rs256 = Vec::new();
        for path in &config.public_keys {
            rs256.push(load_key(path)?);
        }
        if hs256.is_none() && rs256.is_empty() {
            return Err("auth.jwt needs app_secret or public_keys".into());
        }
        Ok(JwtVerifier {
            config: config.clone(),
            hs256,
            rs256,
        })
    }

    pub fn allow_empty_token(&self) -> bool {
        self.config.allow_empty_token
    }

    /// Checks `token` at the current wall-clock time (what `exp` is about).
    pub fn verify(&self, token: &str) -> Result<TokenClaims, JwtError> {
        let header = decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        let keys: Vec<&DecodingKey> = match header.alg {
            Algorithm::HS256 => self.hs256.iter().collect(),
            Algorithm::RS256 => self.rs256.iter().collect(),
            _ => return Err(JwtError::Malformed("unsupported alg".into())),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        let mut issuers = vec![self.config.app_id.clone()];
        issuers.extend(self.config.accepted_issuers.iter().cloned());
        validation.set_issuer(&issuers);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let mut last = JwtError::Signature;
        for key in keys {
            match decode::<Claims>(token, key, &validation) {
                Ok(data) => return self.check_claims(data.claims),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = match e.kind() {
                        K::InvalidSignature => JwtError::Signature,
                        K::ExpiredSignature => return Err(JwtError::Expired),
                        K::ImmatureSignature => return Err(JwtError::NotYetValid),
                        K::InvalidIssuer => return Err(JwtError::Issuer),
                        K::MissingRequiredClaim(c) if c == "iss" => return Err(JwtError::Issuer),
                        other => return Err(JwtError::Malformed(format!("{other:?}"))),
                    };
                }
            }
        }
        Err(last)
    }

    fn check_claims(&self, claims: Claims) -> Result<TokenClaims, JwtError> {
        let auds: Vec<String> = match claims.aud {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => return Err(JwtError::Audience),
        };
        let accepted = &self.config.accepted_audiences;
        if auds.is_empty()
            || !(accepted.iter().any(|a| a == "*") || auds.iter().any(|a| accepted.contains(a)))
        {
            return Err(JwtError::Audience);
        }
        let room = claims.room.ok_or(JwtError::NoRoom)?;
        let mut out = TokenClaims {
            room,
            ..TokenClaims::default()
        };
        if let Some(ctx) = claims.context {
            if let Some(Value::Object(user)) = ctx.get("user") {
                for (k, v) in user {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    if k == "moderator" {
                        out.moderator = self.config.moderator_from_context && text == "true";
                    }
                    out.user.push((k.clone(), text));
                }
            }
            out.group = ctx.get("group").and_then(Value::as_str).map(str::to_owned);
        }
        Ok(out)
    }
}

fn load_key(path: &Path) -> Result<DecodingKey, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("auth.jwt.public_keys: {}: {e}", path.display()))?;
    DecodingKey::from_rsa_pem(&pem)
        .map_err(|e| format!("auth.jwt.public_keys: {}: {e}", path.display()))
}

/// Whether `claims` let their holder into `room` (the room's local part).
pub fn room_allowed(claims: &TokenClaims, room: &str) -> bool {
    claims.room == "*" || claims.room.eq_ignore_ascii_case(room)
}
