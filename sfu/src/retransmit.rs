//! Answering receivers' NACKs (RFC 4585 §6.2.1) with retransmissions in RTX
//! (RFC 4588). The bridge answers them itself, as Jitsi Videobridge does,
//! rather than relaying them to senders. It keeps what senders sent, once,
//! not what each receiver was sent, and remakes a receiver's packet when it
//! is asked for.
//!
//! - [`PacketCaches`]: per sender, the video packets it brought in, by its
//!   own SSRCs and sequence numbers, about a second of them ([`MAX_AGE`]);
//!   one copy for all receivers.
//! - [`SendHistory`]: per receiver and forwarded stream, for each sequence
//!   number sent, which cached packet it was and the
//!   [`Rewrite`](crate::simulcast::Rewrite) applied, and
//!   the receiver's [`RtxStream`] for it.
//! - [`Retransmitter`]: per receiver, answers one NACKed number at a time:
//!   finds the recipe, remakes the packet with
//!   [`Rewrite::apply`](crate::simulcast::Rewrite::apply) (the very
//!   step of its first send, so the bytes are the same), wraps it in RTX into
//!   the caller's buffer. Each number goes out at most once per
//!   [`Retransmitter::resend_interval`], and all within a byte budget.
//! - [`rtx`]: RTX wrapping and, for what senders retransmit to the bridge,
//!   unwrapping, both in place.
//!
//! Memory, per sender: up to [`MAX_STREAMS`] caches, each growing only while
//! a second of its stream does not fit (32 KiB for a 200 kbit/s layer,
//! [`MAX_STREAM_MEMORY`] at most). Per receiver and forwarded stream: 20
//! bytes a number held, 1.25 KiB for a thumbnail, 20 KiB at most. Nothing is
//! allocated per packet once they have grown.
//!
//! Header extensions go out as the packet came (a send path stamps its
//! per-datagram values, like the transport-wide sequence number, on every
//! datagram it sends, retransmissions included).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sfu::rtp::Packet;
//! use sfu::simulcast::Rewrite;
//! use sfu::retransmit::{PacketCaches, Retransmitter, RtxStream, SendHistory, rtx};
//!
//! let now = Instant::now();
//! // A sender's VP8 packet (SSRC 1000, sequence number 500), kept on arrival.
//! let received = [0x80, 100, 0x01, 0xf4, 0, 0, 0x0b, 0xb8, 0, 0, 0x03, 0xe8,
//!                 0x90, 0xc0, 0x80, 0x07, 3, 0x10, 0xaa];
//! let mut caches = PacketCaches::new();
//! caches.insert(now, &received).unwrap();
//!
//! // Forwarded to a receiver as its number 7 (the simulcast forwarder's rewrite).
//! let rewrite = Rewrite { ssrc: 1000, seq: 7, timestamp: 90, picture_id: Some(1), tl0picidx: Some(0) };
//! let mut sent = received;
//! rewrite.apply(&mut sent, &Packet::parse(&received).unwrap());
//! let mut history = SendHistory::new(now, 1000, Some(RtxStream::new(1001, 101, 0)));
//! history.record(now, 1000, 500, &rewrite);
//!
//! // The receiver NACKs 7: the same packet comes back in RTX.
//! let mut retransmitter = Retransmitter::new(now);
//! let mut buf = [0u8; 1500];
//! let later = now + Duration::from_millis(40);
//! let len = retransmitter.retransmit(later, 7, &mut history, &caches, &mut buf).unwrap();
//! assert_eq!(&buf[8..12], &1001u32.to_be_bytes());
//! let len = rtx::unwrap(&mut buf[..len], 1000, 100).unwrap();
//! assert_eq!(&buf[..len], &sent);
//! ```

mod budget;
mod cache;
mod history;
pub mod rtx;
#[cfg(test)]
pub(crate) mod tests;

use std::time::{Duration, Instant};

use budget::ByteBudget;
pub use cache::{
    CacheError, MAX_AGE, MAX_PACKET_LEN, MAX_STREAM_BYTES, MAX_STREAM_MEMORY, MAX_STREAM_PACKETS,
    MAX_STREAMS, PacketCache, PacketCaches,
};
pub use history::{MAX_SLOTS, SendHistory, Sent};
pub use rtx::{RtxError, RtxStream};

use crate::rtp::Packet;

/// Retransmissions a receiver may cause until told its rate: 1 Mbit/s.
/// Higher repairs heavier loss; lower bounds what a flood of NACKs (a
/// broken or hostile client) makes the bridge send on top of the media.
pub const DEFAULT_BUDGET_BPS: u64 = 1_000_000;

/// How much of the budget may go at once: a quarter second of the rate, so
/// the loss of most of a key frame is repaired in one go.
pub const BUDGET_BURST: Duration = Duration::from_millis(250);

/// The least burst, whatever the rate: one packet of any length.
const MIN_BURST_BYTES: u64 = MAX_PACKET_LEN as u64 + 2;

/// Least time between two retransmissions of a number before the receiver's
/// RTT is known. Receivers NACK a number again about once per RTT; NACKs
/// closer together are duplicates (repeated RTCP, a burst), and this keeps
/// them from multiplying the traffic.
pub const RESEND_INTERVAL_WITHOUT_RTT: Duration = Duration::from_millis(30);

/// The interval never goes below this, however short the RTT.
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_millis(10);

/// Why a NACKed number was not retransmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotResent {
    #[error("not a number this stream was sent, or older than its history")]
    NeverSent,
    #[error("the original is no longer cached")]
    Expired,
    #[error("retransmitted within the resend interval")]
    RecentlyResent,
    #[error("over the receiver's retransmission budget")]
    OverBudget,
    #[error("the buffer needs {0} bytes")]
    NoRoom(usize),
}

/// One receiver's retransmissions: its byte budget and how soon a number
/// may be retransmitted again.
#[derive(Debug)]
pub struct Retransmitter {
    budget: ByteBudget,
    rtt: Option<Duration>,
}

impl Retransmitter {
    /// A budget of [`DEFAULT_BUDGET_BPS`], full.
    pub fn new(now: Instant) -> Self {
        let (rate, burst) = budget_of(DEFAULT_BUDGET_BPS);
        Retransmitter {
            budget: ByteBudget::new(now, rate, burst),
            rtt: None,
        }
    }

    /// Caps the retransmissions this receiver causes at `bits_per_second`
    /// (a share of its estimated bandwidth, say), bursts of [`BUDGET_BURST`].
    pub fn set_budget(&mut self, now: Instant, bits_per_second: u64) {
        let (rate, burst) = budget_of(bits_per_second);
        self.budget.set_rate(now, rate, burst);
    }

    /// The receiver's round-trip time, from its reports.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    /// Least time between two retransmissions of one number: nine tenths of
    /// the RTT (a receiver asks again after about one RTT, and its second
    /// NACK must get through), at least [`MIN_RESEND_INTERVAL`];
    /// [`RESEND_INTERVAL_WITHOUT_RTT`] until the RTT is known.
    pub fn resend_interval(&self) -> Duration {
        match self.rtt {
            Some(rtt) => (rtt * 9 / 10).max(MIN_RESEND_INTERVAL),
            None => RESEND_INTERVAL_WITHOUT_RTT,
        }
    }

    /// Answers the NACK of `seq` (as the receiver numbers `history`'s
    /// stream): the packet first sent as `seq`, remade from the sender's
    /// packet in `caches` and wrapped in the history's RTX stream, written to
    /// `out`. Returns its length; `out` needs the original's length plus 2
    /// (and the caller's room for SRTP after).
    pub fn retransmit(
        &mut self,
        now: Instant,
        seq: u16,
        history: &mut SendHistory,
        caches: &PacketCaches,
        out: &mut [u8],
    ) -> Result<usize, NotResent> {
        let sent = history.sent(seq).ok_or(NotResent::NeverSent)?;
        let original = caches
            .get(now, sent.sender_ssrc, sent.sender_seq)
            .ok_or(NotResent::Expired)?;
        if history.resent_within(seq, now, self.resend_interval()) {
            return Err(NotResent::RecentlyResent);
        }
        let len = original.len();
        let wire = len + if history.rtx().is_some() { 2 } else { 0 };
        if out.len() < wire {
            return Err(NotResent::NoRoom(wire));
        }
        if !self.budget.try_spend(now, wire) {
            return Err(NotResent::OverBudget);
        }
        out[..len].copy_from_slice(original);
        // The cache keeps only packets that parsed.
        let layout = Packet::parse(original).map_err(|_| NotResent::Expired)?;
        sent.rewrite.apply(&mut out[..len], &layout);
        let wire = match history.rtx_mut() {
            Some(rtx) => rtx::wrap(out, len, rtx).map_err(|_| NotResent::NoRoom(wire))?,
            None => len,
        };
        history.mark_resent(seq, now);
        Ok(wire)
    }
}

/// Bytes a second and burst bytes for a budget of `bits_per_second`.
fn budget_of(bits_per_second: u64) -> (u64, u64) {
    let rate = bits_per_second / 8;
    let burst = (rate as u128 * BUDGET_BURST.as_micros() / 1_000_000) as u64;
    (rate, burst.max(MIN_BURST_BYTES))
}
