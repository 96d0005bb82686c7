//! Load testing for Jitsi deployments, oxbridge or stock.
//!
//! Simulated participants speak the protocol a browser speaks, over the
//! public endpoints only (nothing here depends on oxbridge internals), so the
//! same run can be pointed at a stock Prosody/Jicofo/Videobridge deployment
//! and the figures compared.
//!
//! Scenarios:
//! - [`signaling`]: many XMPP-over-WebSocket sessions in MUC rooms exchanging
//!   presence, the load a Jitsi signaling server carries.

pub mod procfs;
pub mod signaling;
mod stats;
mod xmpp;
