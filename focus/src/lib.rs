//! The conference focus: what Jicofo does in stock Jitsi.
//!
//! A client asks the focus for a conference (an IQ to `focus.<domain>` or
//! `POST /conference-request/v1`); the focus joins the MUC room as
//! `room/focus`, makes the first participant owner, and once two people are
//! there gives each a Jingle session on a bridge endpoint, relaying everyone's
//! sources to everyone else.
//!
//! - [`service`]: the running focus ([`Focus`]), wired to the signaling hub.
//! - [`conference`]: one conference, sans-IO: presences and Jingle in,
//!   stanzas and bridge calls out.
//! - [`features`]: what each participant's client can do (disco#info).
//! - [`start_muted`]: who joins muted.
//! - [`selector`]: which bridge a new conference goes to.
//! - [`source`]: the sources each participant sends, validated and merged.
//! - [`jingle`]: the Jingle payloads on the wire (protocol §3).
//! - [`http`]: the HTTP conference request.
//!
//! ```no_run
//! # fn run(hub: std::sync::Arc<signaling::Hub>, bridge: std::sync::Arc<sfu::bridge::Bridge>) {
//! let bridges = focus::selector::BridgeSelector::new(vec![bridge]);
//! let focus = focus::Focus::start(hub, bridges, focus::FocusConfig::default()).unwrap();
//! # }
//! ```

pub mod conference;
pub mod features;
pub mod http;
pub mod jingle;
pub mod selector;
pub mod service;
pub mod source;
pub mod start_muted;

use std::time::Duration;

pub use service::Focus;

/// The namespace of the conference request and of the focus's presence extensions.
pub const FOCUS_NS: &str = "http://jitsi.org/protocol/focus";

/// How the focus runs its conferences.
#[derive(Debug, Clone)]
pub struct FocusConfig {
    /// Participants present before anyone is invited (Jicofo's default 2).
    pub min_participants: usize,
    /// A participant left alone loses its session after this long.
    pub single_participant_timeout: Duration,
    /// Where clients reach the bridge channel: `ws[s]://host[:port]/colibri-ws`;
    /// the bridge id and the endpoint's path follow.
    pub bridge_channel_base: String,
}

impl Default for FocusConfig {
    fn default() -> Self {
        FocusConfig {
            min_participants: 2,
            single_participant_timeout: Duration::from_secs(20),
            bridge_channel_base: "ws://127.0.0.1:8080/colibri-ws".into(),
        }
    }
}
