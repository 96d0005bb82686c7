//! Configuration of the signaling server: hosts, listeners, accounts,
//! authentication, MUC rules and limits. Every key has a localhost default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The XMPP server's part of `oxbridge.toml` (`[xmpp]`, `[auth]`, `[muc]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The XMPP virtual host, e.g. `meet.example.com` (top-level `domain`).
    #[serde(skip)]
    pub domain: String,
    pub xmpp: XmppConfig,
    pub auth: AuthConfig,
    pub muc: MucConfig,
}

impl Config {
    /// A config for `domain` with every other key defaulted.
    pub fn for_domain(domain: &str) -> Config {
        Config {
            domain: domain.to_owned(),
            ..Config::default()
        }
    }

    /// `conference.<domain>` unless configured.
    pub fn muc_domain(&self) -> String {
        self.muc
            .domain
            .clone()
            .unwrap_or_else(|| format!("conference.{}", self.domain))
    }

    /// `focus.<domain>`: where the conference request goes.
    pub fn focus_domain(&self) -> String {
        self.xmpp
            .focus_domain
            .clone()
            .unwrap_or_else(|| format!("focus.{}", self.domain))
    }

    /// `auth.<domain>`: the internal host of the focus and bridge accounts.
    pub fn auth_domain(&self) -> String {
        self.xmpp
            .auth_domain
            .clone()
            .unwrap_or_else(|| format!("auth.{}", self.domain))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XmppConfig {
    /// Client-to-server TCP listener (STARTTLS).
    pub listen: SocketAddr,
    /// XEP-0114 external component listener; none when unset.
    pub component_listen: Option<SocketAddr>,
    /// PEM certificate chain and key for STARTTLS; a self-signed pair is made when unset.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub focus_domain: Option<String>,
    pub auth_domain: Option<String>,
    /// Password accounts (the focus, bridges, operators).
    pub accounts: Vec<Account>,
    /// XEP-0114 components allowed to connect.
    pub components: Vec<ComponentSecret>,
    /// XEP-0215 services (STUN/TURN) announced to clients.
    pub external_services: Vec<ExternalService>,
    pub limits: LimitsConfig,
    /// How long a dropped session waits for XEP-0198 resumption, in seconds.
    pub resume_timeout_secs: u64,
}

impl Default for XmppConfig {
    fn default() -> Self {
        XmppConfig {
            listen: "127.0.0.1:5222".parse().expect("literal address"),
            component_listen: None,
            tls_cert: None,
            tls_key: None,
            focus_domain: None,
            auth_domain: None,
            accounts: Vec::new(),
            components: Vec::new(),
            external_services: Vec::new(),
            limits: LimitsConfig::default(),
            resume_timeout_secs: 60,
        }
    }
}

/// A password account. `password` is hashed into SCRAM credentials at start and
/// not kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub jid: String,
    #[serde(skip_serializing)]
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSecret {
    pub domain: String,
    #[serde(skip_serializing)]
    pub secret: String,
}

/// One `<service/>` of XEP-0215.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalService {
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    pub port: u16,
    #[serde(default = "udp")]
    pub transport: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

fn udp() -> String {
    "udp".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest stanza accepted, in bytes (Prosody: 256 KiB).
    pub max_stanza_bytes: usize,
    /// Deepest element nesting inside a stanza.
    pub max_depth: usize,
    /// Largest BOSH request body, in bytes.
    pub max_bosh_body_bytes: usize,
    /// Sustained stanzas per second read from one session; faster senders are
    /// slowed down, not cut off.
    pub stanzas_per_second: u32,
    /// Stanzas a session may send in a burst before being slowed.
    pub stanza_burst: u32,
    /// Stanzas queued for one session before it counts as stuck and is closed.
    pub max_queued_stanzas: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
            max_bosh_body_bytes: 512 * 1024,
            stanzas_per_second: 200,
            stanza_burst: 1000,
            max_queued_stanzas: 2048,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// SASL ANONYMOUS on the main domain (Jitsi guests).
    pub allow_anonymous: bool,
    pub jwt: Option<JwtConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            jwt: None,
        }
    }
}

/// Token authentication as Jitsi's `mod_auth_token` does it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The accepted `iss` (Prosody's `app_id`).
    pub app_id: String,
    /// HS256 shared secret (`app_secret`).
    #[serde(skip_serializing)]
    pub app_secret: Option<String>,
    /// RS256 public keys, PEM files.
    pub public_keys: Vec<PathBuf>,
    /// Further accepted issuers besides `app_id`.
    pub accepted_issuers: Vec<String>,
    /// Accepted `aud` values; `*` accepts any (it must still be present).
    pub accepted_audiences: Vec<String>,
    /// Connections without a token log in as plain guests.
    pub allow_empty_token: bool,
    /// `context.user.moderator: true` makes the user a room owner.
    pub moderator_from_context: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            app_id: String::new(),
            app_secret: None,
            public_keys: Vec::new(),
            accepted_issuers: Vec::new(),
            accepted_audiences: vec!["*".into()],
            allow_empty_token: false,
            moderator_from_context: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MucConfig {
    /// The MUC service, `conference.<domain>` when unset.
    pub domain: Option<String>,
    /// Bare JIDs that may create rooms and always get owner (the focus).
    pub admins: Vec<String>,
    /// Only admins create rooms; others wait for the focus (Jitsi's rule).
    pub restrict_room_creation: bool,
    /// How long a join waits for the focus before `not-allowed`, in seconds.
    pub focus_wait_secs: u64,
    /// Most occupants per room (0: unlimited).
    pub max_occupants: usize,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            domain: None,
            admins: Vec::new(),
            restrict_room_creation: true,
            focus_wait_secs: 10,
            max_occupants: 0,
        }
    }
}
