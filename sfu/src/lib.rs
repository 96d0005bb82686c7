//! The selective forwarding unit: media arrives from each endpoint of a
//! conference and leaves, re-encrypted, for every endpoint that wants it.
//!
//! The bridge never decodes media. What it reads and rewrites stops at RTP
//! headers and codec payload descriptors, so end-to-end encrypted payloads
//! pass through untouched. Everything here is sans-IO: packets and the time
//! go in, decisions come out; the media worker owning a conference does IO.
//!
//! - [`bridge`]: the media worker thread and its handle, the API the focus calls
//!   ([`api`]); [`router`] is its sans-IO core, [`demux`] routes datagrams of the
//!   shared port, [`cert`] is the one DTLS certificate. Each endpoint's ICE,
//!   DTLS and data channel are a str0m `Rtc`, its DTLS our own (`dtls`, which
//!   picks the SRTP profile as Videobridge does); its media, once DTLS has
//!   exported the keys, goes through a transport of our own built from the
//!   modules below.
//! - [`http`]: the bridge channel's WebSocket route, `/colibri/stats` and drain
//!   for the web front door; [`metrics`]: the Prometheus collector;
//!   [`latency`]: how long the bridge holds a datagram.
//! - [`channel`]: the bridge channel's JSON messages, in both client dialects.
//! - [`speech`]: dominant-speaker detection from audio levels, silence dropping.
//! - [`vp8`]: the VP8 payload descriptor (RFC 7741), read and patched in place.
//! - [`allocation`]: which layers fit a receiver's downlink, in its priority order;
//!   [`bwe`]: the downlink's send-side estimate from the receiver's TWCC feedback.
//! - [`simulcast`]: for one receiver and one simulcast source, which encoding
//!   is forwarded and how its packets are renumbered onto the source's first SSRC.
//! - [`srtp`]: SRTP and SRTCP keyed from DTLS, protected and opened in place.
//! - [`rtcp`]: the RTCP wire format, read without copying and written into a
//!   caller's buffer (reports, SDES, BYE, NACK, PLI, FIR, REMB, transport-wide feedback).
//! - [`rtp`]: an RTP packet's layout and header rewrites, in place.
//! - [`receive`]: what the media path keeps about the streams a sender sends,
//!   for its receiver reports, NACKs and transport-wide feedback.
//! - [`retransmit`]: receivers' NACKs answered in RTX from one cache of what
//!   each sender brought in, and RTX from senders unwrapped.
//! - [`clock`]: a sender's capture clock from its sender reports, so the
//!   reports receivers get keep its audio and video in sync.

pub mod allocation;
pub mod api;
pub mod bridge;
pub mod bwe;
pub mod cert;
pub mod channel;
pub mod clock;
pub mod demux;
mod dtls;
mod endpoint;
pub mod http;
pub mod latency;
pub mod metrics;
pub mod receive;
pub mod retransmit;
pub mod router;
pub mod rtcp;
pub mod rtp;
pub mod simulcast;
pub mod speech;
pub mod srtp;
#[cfg(test)]
mod test_support;
mod transport;
pub mod vp8;

/// The payload types the bridge forwards (Jicofo's defaults for Opus, VP8 and VP8's RTX).
pub use endpoint::{OPUS_PT, VP8_PT, VP8_RTX_PT};
