//! The SASL exchange of one session: ANONYMOUS (with Jitsi's token check),
//! PLAIN and SCRAM-SHA-1.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{ConnectParams, SessionEnv};
use crate::auth::{JwtError, ScramServer, TokenClaims};
use crate::xml::Element;

/// A mechanism the server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Anonymous,
    Plain,
    ScramSha1,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Anonymous => "ANONYMOUS",
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
        }
    }
}

/// Where an exchange is.
pub enum SaslState {
    Idle,
    Scram(Box<(ScramServer, crate::auth::Credentials, bool)>),
}

/// What one SASL element leads to.
pub enum Step {
    Continue(SaslState, Vec<u8>),
    Success {
        node: String,
        // Boxed: claims are large and most logins carry none.
        claims: Option<Box<TokenClaims>>,
        additional: Option<Vec<u8>>,
    },
    Failure {
        condition: &'static str,
        text: Option<String>,
    },
}

fn failure(condition: &'static str, text: impl Into<Option<String>>) -> Step {
    Step::Failure {
        condition,
        text: text.into(),
    }
}

fn decode(el: &Element) -> Result<Vec<u8>, Step> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text)
        .map_err(|_| failure("incorrect-encoding", None))
}

/// Handles `<auth>`, `<response>` or `<abort>`.
pub fn step(
    state: SaslState,
    el: &Element,
    offered: &[Mechanism],
    env: &SessionEnv,
    host: &str,
    params: &ConnectParams,
) -> Step {
    match (el.name(), state) {
        ("abort", _) => failure("aborted", None),
        ("auth", SaslState::Idle) => {
            let mech = match el.attr("mechanism") {
                Some("ANONYMOUS") => Mechanism::Anonymous,
                Some("PLAIN") => Mechanism::Plain,
                Some("SCRAM-SHA-1") => Mechanism::ScramSha1,
                _ => return failure("invalid-mechanism", None),
            };
            if !offered.contains(&mech) {
                return failure("invalid-mechanism", None);
            }
            let data = match decode(el) {
                Ok(d) => d,
                Err(f) => return f,
            };
            match mech {
                Mechanism::Anonymous => anonymous(env, params),
                Mechanism::Plain => plain(env, host, &data),
                Mechanism::ScramSha1 => {
                    let Ok(first) = String::from_utf8(data) else {
                        return failure("malformed-request", None);
                    };
                    let (user, _, _) = match crate::auth::scram_username(&first) {
                        Ok(u) => u,
                        Err(_) => return failure("malformed-request", None),
                    };
                    let known = env.auth.credentials(&user, host);
                    match ScramServer::start(&first, known) {
                        Ok((srv, server_first, creds)) => {
                            let creds = creds.expect("start always yields credentials");
                            SaslState::Scram(Box::new((srv, creds, known.is_some())))
                                .continue_with(server_first.into_bytes())
                        }
                        Err(_) => failure("malformed-request", None),
                    }
                }
            }
        }
        ("response", SaslState::Scram(s)) => {
            let (srv, creds, known) = *s;
            let data = match decode(el) {
                Ok(d) => d,
                Err(f) => return f,
            };
            let Ok(msg) = String::from_utf8(data) else {
                return failure("malformed-request", None);
            };
            match srv.finish(&msg, &creds) {
                Ok(server_final) if known => Step::Success {
                    node: srv.username().to_lowercase(),
                    claims: None,
                    additional: Some(server_final.into_bytes()),
                },
                Ok(_) | Err(crate::auth::ScramError::BadProof) => failure("not-authorized", None),
                Err(_) => failure("malformed-request", None),
            }
        }
        _ => failure("malformed-request", None),
    }
}

impl SaslState {
    fn continue_with(self, challenge: Vec<u8>) -> Step {
        Step::Continue(self, challenge)
    }
}

fn anonymous(env: &SessionEnv, params: &ConnectParams) -> Step {
    let node = uuid::Uuid::new_v4().to_string();
    let Some(jwt) = &env.auth.jwt else {
        return Step::Success {
            node,
            claims: None,
            additional: None,
        };
    };
    match params.token.as_deref().filter(|t| !t.is_empty()) {
        None if jwt.allow_empty_token() => Step::Success {
            node,
            claims: None,
            additional: None,
        },
        None => failure("not-allowed", JwtError::Missing.to_string()),
        Some(token) => match jwt.verify(token) {
            Ok(claims) => Step::Success {
                node,
                claims: Some(Box::new(claims)),
                additional: None,
            },
            Err(e) => {
                tracing::info!(reason = %e, "token refused");
                failure("not-allowed", e.to_string())
            }
        },
    }
}

fn plain(env: &SessionEnv, host: &str, data: &[u8]) -> Step {
    let mut parts = data.split(|b| *b == 0);
    let (Some(_authzid), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return failure("malformed-request", None);
    };
    let (Ok(user), Ok(pass)) = (std::str::from_utf8(user), std::str::from_utf8(pass)) else {
        return failure("malformed-request", None);
    };
    match env.auth.credentials(user, host) {
        Some(c) if c.verify_password(pass) => Step::Success {
            node: user.to_lowercase(),
            claims: None,
            additional: None,
        },
        _ => failure("not-authorized", None),
    }
}
