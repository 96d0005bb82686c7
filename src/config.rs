//! `oxbridge.toml`: one file, every key defaulted for localhost, overridable by
//! `OXBRIDGE_*` environment variables and flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The whole configuration of the all-in-one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The XMPP domain clients connect to (`hosts.domain` in Jitsi's config.js).
    pub domain: String,
    pub http: HttpConfig,
    pub xmpp: signaling::config::XmppConfig,
    pub auth: signaling::config::AuthConfig,
    pub muc: signaling::config::MucConfig,
    pub sfu: SfuConfig,
    pub focus: FocusSection,
    pub web: WebSection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            http: HttpConfig::default(),
            xmpp: Default::default(),
            auth: Default::default(),
            muc: Default::default(),
            sfu: SfuConfig::default(),
            focus: FocusSection::default(),
            web: WebSection::default(),
        }
    }
}

/// The meeting side of the front door: `/config.js` and the page at `/<room>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSection {
    /// A directory holding the stock jitsi-meet web app, served instead of
    /// the built-in meeting page (with our generated config.js).
    pub jitsi_meet_dir: Option<PathBuf>,
    /// Advertise `conferenceRequestUrl`, so current clients send the
    /// conference request as an HTTP POST instead of an IQ.
    pub conference_request: bool,
}

/// The conference focus (Jicofo's job).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FocusSection {
    /// Run the in-process focus; off when a stock Jicofo (an external
    /// component for `focus.<domain>`) does the job.
    pub enabled: bool,
    /// Participants present before anyone gets a media session.
    pub min_participants: usize,
    /// A participant left alone loses its media session after this long.
    pub single_participant_timeout_secs: u64,
}

impl Default for FocusSection {
    fn default() -> Self {
        let d = focus::FocusConfig::default();
        FocusSection {
            enabled: true,
            min_participants: d.min_participants,
            single_participant_timeout_secs: d.single_participant_timeout.as_secs(),
        }
    }
}

/// The media bridge: one UDP port for every endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SfuConfig {
    /// The media port (Videobridge's default is 10000).
    pub listen: SocketAddr,
    /// Address candidates carry when it is not `listen`'s (public IP behind NAT).
    pub advertise: Option<IpAddr>,
    /// This bridge's id in bridge-channel URLs.
    pub id: String,
    /// Media worker threads (a conference lives on one); 0 is one per core.
    pub workers: usize,
    /// Where this bridge runs (matched against participants' regions).
    pub region: Option<String>,
    /// Kernel buffer for the media socket, each direction (capped by
    /// net.core.rmem_max / wmem_max).
    pub socket_buffer_bytes: usize,
    /// Serve a stock Jicofo over XMPP (Colibri2), as Videobridge does.
    pub xmpp: Option<SfuXmppConfig>,
}

/// `[sfu.xmpp]`: the XMPP account the bridge logs in with and the brewery
/// room where Jicofo looks for bridges (Videobridge's `xmpp-client` config).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfuXmppConfig {
    /// `host:port` of the XMPP server's client port.
    pub server: String,
    /// The account's domain, e.g. `auth.meet.example.com`.
    pub domain: String,
    pub username: String,
    #[serde(skip_serializing)]
    pub password: String,
    /// E.g. `jvbbrewery@internal.auth.meet.example.com`.
    pub brewery: String,
    /// Occupant nickname in the brewery; the bridge id when unset.
    pub nickname: Option<String>,
    /// PEM certificates to trust for STARTTLS (a self-signed Prosody's); the
    /// system's roots when unset.
    pub ca_file: Option<PathBuf>,
    /// Base of the bridge-channel URLs, up to `/colibri-ws/<id>`; made from
    /// `http.public_url` (or the HTTP address) when unset.
    pub websocket_url: Option<String>,
}

impl Default for SfuConfig {
    fn default() -> Self {
        let bridge = sfu::bridge::BridgeConfig::default();
        SfuConfig {
            listen: bridge.bind,
            advertise: bridge.advertise,
            id: bridge.id,
            workers: bridge.workers,
            region: bridge.region,
            socket_buffer_bytes: bridge.socket_buffer,
            xmpp: None,
        }
    }
}

impl SfuConfig {
    pub fn bridge(&self) -> sfu::bridge::BridgeConfig {
        sfu::bridge::BridgeConfig {
            bind: self.listen,
            advertise: self.advertise,
            id: self.id.clone(),
            workers: self.workers,
            region: self.region.clone(),
            socket_buffer: self.socket_buffer_bytes,
            ..Default::default()
        }
    }
}

impl std::fmt::Debug for SfuXmppConfig {
    /// Everything but the password, which must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuXmppConfig")
            .field("server", &self.server)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("brewery", &self.brewery)
            .field("nickname", &self.nickname)
            .field("ca_file", &self.ca_file)
            .field("websocket_url", &self.websocket_url)
            .finish_non_exhaustive()
    }
}

/// The web front door.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// How browsers reach this server (`https://meet.example.com`), when it is
    /// not the listen address: bridge-channel URLs are built from it.
    pub public_url: Option<String>,
    /// Optional HTTPS listener.
    pub https_listen: Option<SocketAddr>,
    /// PEM certificate and key for HTTPS; self-signed for the domain when unset.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("literal"),
            public_url: None,
            https_listen: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Prefix of environment overrides: `OXBRIDGE_MUC__FOCUS_WAIT_SECS=5` sets `muc.focus_wait_secs`.
const ENV_PREFIX: &str = "OXBRIDGE_";

impl Config {
    /// Reads `path` (if any), then applies `OXBRIDGE_*` overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut value: toml::Table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, raw) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if rest == "CONFIG" || rest.is_empty() || rest == "LOG" {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            set_path(&mut value, &path, parse_value(&raw));
        }
        let config: Config = toml::Value::Table(value)
            .try_into()
            .context("invalid configuration")?;
        Ok(config)
    }

    /// The signaling server's part.
    pub fn signaling(&self) -> signaling::Config {
        signaling::Config {
            domain: self.domain.clone(),
            xmpp: self.xmpp.clone(),
            auth: self.auth.clone(),
            muc: self.muc.clone(),
        }
    }
}

/// A TOML literal if it parses as one (numbers, booleans, arrays), else a string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_nested_keys() {
        let env = [
            (
                "OXBRIDGE_DOMAIN".to_string(),
                "meet.example.com".to_string(),
            ),
            (
                "OXBRIDGE_MUC__RESTRICT_ROOM_CREATION".to_string(),
                "false".to_string(),
            ),
            (
                "OXBRIDGE_HTTP__LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
        ];
        let c = Config::load(None, env.into_iter()).unwrap();
        assert_eq!(c.domain, "meet.example.com");
        assert!(!c.muc.restrict_room_creation);
        assert_eq!(c.http.listen.port(), 9999);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let env = [("OXBRIDGE_HTTP__LISTN".to_string(), "x".to_string())];
        let e = Config::load(None, env.into_iter()).unwrap_err();
        assert!(format!("{e:#}").contains("listn"), "{e:#}");
    }

    #[test]
    fn the_bridges_xmpp_password_is_neither_printed_nor_logged() {
        let env = [
            ("OXBRIDGE_SFU__XMPP__SERVER", "xmpp.example.org:5222"),
            ("OXBRIDGE_SFU__XMPP__DOMAIN", "auth.example.org"),
            ("OXBRIDGE_SFU__XMPP__USERNAME", "jvb"),
            ("OXBRIDGE_SFU__XMPP__PASSWORD", "hunter2-secret"),
            (
                "OXBRIDGE_SFU__XMPP__BREWERY",
                "jvbbrewery@internal.auth.example.org",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let c = Config::load(None, env.into_iter()).unwrap();
        assert_eq!(c.sfu.xmpp.as_ref().unwrap().password, "hunter2-secret");
        assert!(!toml::to_string(&c).unwrap().contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn example_config_in_deploy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/oxbridge.toml");
        let c = Config::load(Some(&path), std::iter::empty()).unwrap();
        assert_eq!(c.domain, "meet.example.org");
        assert!(c.muc.restrict_room_creation);
    }
}
