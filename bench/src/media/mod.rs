//! The media scenario: simulated participants that join a real call over
//! public endpoints only, as a browser running lib-jitsi-meet does, and send
//! and receive audio and simulcast video through the bridge.
//!
//! Per participant, in order (each stage with a deadline):
//! 1. [`signal`]: XMPP over WebSocket, anonymous login, conference request
//!    to the focus, MUC join;
//! 2. [`jingle`]: the focus's `session-initiate`, our `session-accept`;
//! 3. [`peer`]: ICE (controlled), DTLS (client), SRTP with str0m, fed by the
//!    [`generate`] media sources and read into a [`meter`];
//! 4. the bridge channel, with receiver video constraints.
//!
//! [`runner`] starts them at a join rate, measures a window and sums the
//! figures into a [`report::MediaReport`], with the bridge's own added latency
//! where it publishes it ([`bridge_latency`]); [`chart`] draws its timeline.

pub mod args;
pub mod bridge_latency;
pub mod chart;
mod generate;
pub mod jingle;
pub mod loss;
mod meter;
pub mod participant;
mod peer;
pub mod report;
pub mod runner;
mod signal;

pub use args::{MediaArgs, Preset};
pub use report::MediaReport;
pub use runner::{run, run_detailed};
