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
//! - [`media`]: participants that join real calls (conference request, MUC,
//!   Jingle, ICE/DTLS/SRTP) and send audio and simulcast video, the load a
//!   focus and a bridge carry.

mod bosh;
pub mod media;
pub mod procfs;
pub mod signaling;
pub mod stats;
mod tls;
mod websocket;
mod xmpp;
