//! What one receiver's video stream was sent, by the sequence numbers it was
//! sent with: for each, the cached packet it was made of and the rewrite
//! applied, which is all a retransmission needs to make it again.
//!
//! A ring indexed by sequence number. It starts at [`FIRST_SLOTS`] and
//! doubles, up to [`MAX_SLOTS`], whenever at the rate numbers come a lap of
//! it takes less than the cache's [`MAX_AGE`]: so it holds about as many
//! numbers as the cache can still answer for.

use std::time::{Duration, Instant};

use super::cache::{MAX_AGE, age_ms};
use super::rtx::RtxStream;
use crate::rtp::seq_newer;
use crate::simulcast::Rewrite;

/// Numbers first held: a second of a thumbnail (15 fps, a packet or two a frame).
const FIRST_SLOTS: usize = 64;

/// Numbers held at most: a second at 1024 packets a second.
pub const MAX_SLOTS: usize = 1024;

const SENT: u8 = 1;
const PICTURE_ID: u8 = 2;
const TL0PICIDX: u8 = 4;
const RESENT: u8 = 8;

/// One number sent. 20 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    sender_ssrc: u32,
    timestamp: u32,
    /// When last retransmitted, in milliseconds since the history's epoch
    /// (wrapping; meaningful only with `RESENT`).
    resent_ms: u32,
    seq: u16,
    sender_seq: u16,
    picture_id: u16,
    tl0picidx: u8,
    flags: u8,
}

/// What a packet sent was made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The received packet, as the sender numbered it.
    pub sender_ssrc: u32,
    pub sender_seq: u16,
    /// How it was rewritten for this receiver.
    pub rewrite: Rewrite,
}

/// Per receiver and forwarded video stream: the recipe of each packet sent,
/// by the sequence number the receiver knows it by, and the receiver's RTX
/// stream for it.
///
/// Memory: 20 bytes a number held, 1.25 KiB at first, 20 KiB at most.
#[derive(Debug)]
pub struct SendHistory {
    media_ssrc: u32,
    rtx: Option<RtxStream>,
    epoch: Instant,
    /// Indexed by `seq % len`; empty until the first record.
    slots: Vec<Slot>,
    newest: Option<u16>,
    /// Where and when the current lap of the ring began.
    lap_start: (u16, Instant),
}

impl SendHistory {
    /// The history of the stream the receiver knows as `media_ssrc`, whose
    /// retransmissions go on `rtx` (or, without one, as the packet itself,
    /// as RFC 4585 allows). Nothing is allocated until the first record.
    pub fn new(now: Instant, media_ssrc: u32, rtx: Option<RtxStream>) -> Self {
        SendHistory {
            media_ssrc,
            rtx,
            epoch: now,
            slots: Vec::new(),
            newest: None,
            lap_start: (0, now),
        }
    }

    /// The SSRC the receiver knows the stream by (and NACKs it by).
    pub fn media_ssrc(&self) -> u32 {
        self.media_ssrc
    }

    /// The receiver's RTX stream for this stream.
    pub fn rtx(&self) -> Option<&RtxStream> {
        self.rtx.as_ref()
    }

    /// The same, to number what else is sent on it (probing padding).
    pub fn rtx_mut(&mut self) -> Option<&mut RtxStream> {
        self.rtx.as_mut()
    }

    /// Notes that the sender's packet `sender_seq` of `sender_ssrc` was sent
    /// rewritten by `rewrite` (whose SSRC is this stream's). A number older
    /// than the history holds is not noted.
    pub fn record(&mut self, now: Instant, sender_ssrc: u32, sender_seq: u16, rewrite: &Rewrite) {
        debug_assert_eq!(rewrite.ssrc, self.media_ssrc, "another stream's rewrite");
        let seq = rewrite.seq;
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); FIRST_SLOTS];
            self.lap_start = (seq, now);
        }
        match self.newest {
            Some(newest) if seq_newer(seq, newest) => {
                let len = self.slots.len();
                let step = usize::from(seq.wrapping_sub(newest));
                // A new lap of the ring: if at the rate since the last one a
                // whole lap takes less than the cache keeps packets, the ring
                // is too short to answer for all it could.
                if usize::from(seq) / len != usize::from(newest) / len {
                    let (start_seq, start) = self.lap_start;
                    let numbers = u128::from(seq.wrapping_sub(start_seq));
                    let lap = now.saturating_duration_since(start).as_micros() * len as u128;
                    let quick = lap < MAX_AGE.as_micros() * numbers;
                    if quick && step < len && len < MAX_SLOTS {
                        self.grow();
                    }
                    self.lap_start = (seq, now);
                }
                self.newest = Some(seq);
            }
            Some(newest) if usize::from(newest.wrapping_sub(seq)) >= self.slots.len() => return,
            Some(_) => {}
            None => self.newest = Some(seq),
        }
        let mut flags = SENT;
        if rewrite.picture_id.is_some() {
            flags |= PICTURE_ID;
        }
        if rewrite.tl0picidx.is_some() {
            flags |= TL0PICIDX;
        }
        let mask = self.slots.len() - 1;
        self.slots[usize::from(seq) & mask] = Slot {
            sender_ssrc,
            timestamp: rewrite.timestamp,
            resent_ms: 0,
            seq,
            sender_seq,
            picture_id: rewrite.picture_id.unwrap_or(0),
            tl0picidx: rewrite.tl0picidx.unwrap_or(0),
            flags,
        };
    }

    /// What the packet sent as `seq` was made of, if it was sent and is still held.
    pub fn sent(&self, seq: u16) -> Option<Sent> {
        let slot = self.slot(seq)?;
        Some(Sent {
            sender_ssrc: slot.sender_ssrc,
            sender_seq: slot.sender_seq,
            rewrite: Rewrite {
                ssrc: self.media_ssrc,
                seq,
                timestamp: slot.timestamp,
                picture_id: (slot.flags & PICTURE_ID != 0).then_some(slot.picture_id),
                tl0picidx: (slot.flags & TL0PICIDX != 0).then_some(slot.tl0picidx),
            },
        })
    }

    /// Whether `seq` was retransmitted less than `interval` before `now`.
    pub(super) fn resent_within(&self, seq: u16, now: Instant, interval: Duration) -> bool {
        self.slot(seq).is_some_and(|s| {
            let since = age_ms(self.ms(now), s.resent_ms);
            s.flags & RESENT != 0 && u128::from(since) < interval.as_millis()
        })
    }

    pub(super) fn mark_resent(&mut self, seq: u16, now: Instant) {
        let ms = self.ms(now);
        let mask = self.slots.len().wrapping_sub(1);
        if let Some(slot) = self.slots.get_mut(usize::from(seq) & mask)
            && slot.flags & SENT != 0
            && slot.seq == seq
        {
            slot.resent_ms = ms;
            slot.flags |= RESENT;
        }
    }

    /// Heap bytes held.
    pub fn memory(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    fn slot(&self, seq: u16) -> Option<&Slot> {
        let mask = self.slots.len().checked_sub(1)?;
        let slot = &self.slots[usize::from(seq) & mask];
        (slot.flags & SENT != 0 && slot.seq == seq).then_some(slot)
    }

    fn grow(&mut self) {
        let len = self.slots.len() * 2;
        let mut grown = vec![Slot::default(); len];
        for slot in self.slots.iter().filter(|s| s.flags & SENT != 0) {
            grown[usize::from(slot.seq) & (len - 1)] = *slot;
        }
        self.slots = grown;
    }

    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(seq: u16) -> Rewrite {
        Rewrite {
            ssrc: 1000,
            seq,
            timestamp: u32::from(seq) * 3000,
            picture_id: (!seq.is_multiple_of(3)).then_some(seq % 0x8000),
            tl0picidx: seq.is_multiple_of(2).then_some(seq as u8),
        }
    }

    #[test]
    fn gives_back_what_was_recorded_and_nothing_else() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(t0, 1000, None);
        assert_eq!(h.sent(5), None);
        assert_eq!(h.memory(), 0, "nothing allocated before the first record");
        for seq in (65500..=65535).chain(0..20) {
            if seq == 3 {
                continue; // lost before the bridge: never sent
            }
            h.record(t0, 1001, seq ^ 0x5555, &rewrite(seq));
        }
        for seq in (65500..=65535).chain(0..20) {
            let sent = h.sent(seq);
            if seq == 3 {
                assert_eq!(sent, None);
            } else {
                assert_eq!(
                    sent,
                    Some(Sent {
                        sender_ssrc: 1001,
                        sender_seq: seq ^ 0x5555,
                        rewrite: rewrite(seq)
                    })
                );
            }
        }
        assert_eq!(h.sent(20), None);
        assert_eq!(h.sent(65499), None);
    }

    #[test]
    fn a_ring_quicker_than_a_second_grows_and_a_slow_one_does_not() {
        let t0 = Instant::now();
        // 25 packets a second: the first 64 slots are enough.
        let mut slow = SendHistory::new(t0, 1000, None);
        for seq in 0..1000u16 {
            slow.record(
                t0 + Duration::from_millis(40) * u32::from(seq),
                1,
                seq,
                &rewrite(seq),
            );
        }
        assert_eq!(slow.slots.len(), FIRST_SLOTS);
        // 300 a second: grows to hold a second of them, keeping all it held.
        let mut fast = SendHistory::new(t0, 1000, None);
        for seq in 0..3000u16 {
            let now = t0 + Duration::from_micros(3333) * u32::from(seq);
            fast.record(now, 1, seq, &rewrite(seq));
            assert!(fast.sent(seq.saturating_sub(63)).is_some());
        }
        assert_eq!(fast.slots.len(), 512);
        assert!(fast.sent(2999 - 300).is_some(), "a second back");
        // A flood grows it only to its cap.
        let mut flood = SendHistory::new(t0, 1000, None);
        for seq in 0..60_000u16 {
            flood.record(t0, 1, seq, &rewrite(seq));
        }
        assert_eq!(flood.slots.len(), MAX_SLOTS);
        assert_eq!(flood.memory(), MAX_SLOTS * 20);
    }

    #[test]
    fn a_late_number_is_noted_unless_older_than_the_ring() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(t0, 1000, None);
        let at = |seq: u16| t0 + Duration::from_millis(40) * u32::from(seq);
        for seq in 100..164u16 {
            if seq != 130 {
                h.record(at(seq), 1, seq, &rewrite(seq));
            }
        }
        h.record(at(164), 1, 130, &rewrite(130));
        assert!(h.sent(130).is_some(), "late but within the ring");
        h.record(at(164), 1, 99, &rewrite(99));
        assert!(h.sent(99).is_none(), "would overwrite a newer number");
        assert!(h.sent(163).is_some());
    }

    #[test]
    fn remembers_when_a_number_was_resent() {
        let t0 = Instant::now();
        let mut h = SendHistory::new(t0, 1000, None);
        let ms = Duration::from_millis(1);
        h.record(t0, 1, 1, &rewrite(7));
        assert!(!h.resent_within(7, t0, 30 * ms));
        h.mark_resent(7, t0 + ms);
        assert!(h.resent_within(7, t0 + 30 * ms, 30 * ms));
        assert!(!h.resent_within(7, t0 + 31 * ms, 30 * ms));
        h.mark_resent(8, t0 + ms);
        assert!(!h.resent_within(8, t0 + 2 * ms, 30 * ms), "never sent");
        h.record(t0 + 2 * ms, 1, 1, &rewrite(7));
        assert!(
            !h.resent_within(7, t0 + 3 * ms, 30 * ms),
            "a new record starts afresh"
        );
    }
}
