//! Who may log in: hashed password accounts, anonymous guests and Jitsi JWTs.

mod jwt;
mod scram;

use std::collections::HashMap;

pub use jwt::{JwtError, JwtVerifier, TokenClaims, room_allowed};
pub use scram::{Credentials, ScramError, ScramServer, parse_client_first as scram_username};

use crate::config::Config;
use crate::jid::Jid;

/// The accounts and token rules of one server.
pub struct Authenticator {
    accounts: HashMap<String, Credentials>,
    pub allow_anonymous: bool,
    pub jwt: Option<JwtVerifier>,
}

impl Authenticator {
    /// Hashes the configured passwords; fails on a bad account JID or JWT key.
    pub fn new(config: &Config) -> Result<Authenticator, String> {
        let mut accounts = HashMap::new();
        for a in &config.xmpp.accounts {
            let jid =
                Jid::parse(&a.jid).map_err(|_| format!("xmpp.accounts: bad jid {:?}", a.jid))?;
            if jid.node().is_none() || !jid.is_bare() {
                return Err(format!("xmpp.accounts: {:?} must be user@host", a.jid));
            }
            accounts.insert(jid.to_string(), Credentials::from_password(&a.password));
        }
        let jwt = config.auth.jwt.as_ref().map(JwtVerifier::new).transpose()?;
        Ok(Authenticator {
            accounts,
            allow_anonymous: config.auth.allow_anonymous,
            jwt,
        })
    }

    /// Credentials of `user@host`.
    pub fn credentials(&self, user: &str, host: &str) -> Option<&Credentials> {
        self.accounts
            .get(&format!("{}@{}", user.to_lowercase(), host))
    }

    /// Whether `host` has any password account.
    pub fn has_accounts_on(&self, host: &str) -> bool {
        self.accounts
            .keys()
            .any(|k| k.ends_with(&format!("@{host}")))
    }
}
