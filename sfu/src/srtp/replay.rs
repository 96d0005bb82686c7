//! Per-SSRC packet indexes: the rollover counter guessed from a 16-bit
//! sequence number (RFC 3711 §3.3.1, Appendix A) and the replay window
//! (§3.3.2), for SRTP streams and, by SRTCP index, for RTCP senders.

use super::SrtpError;

/// How far behind the highest index a packet is still accepted.
const WINDOW: u64 = 64;

/// The highest index accepted and which of the [`WINDOW`] before it were seen;
/// DTLS keeps one for its record numbers too (RFC 6347 §4.1.2.6).
#[derive(Debug, Default)]
pub(crate) struct Window {
    highest: Option<u64>,
    /// Bit `d` set: index `highest - d` was accepted.
    seen: u64,
}

impl Window {
    /// The 48-bit index of a packet with this sequence number: the rollover
    /// counter that puts it nearest the highest index seen. `None` for a packet
    /// from before the stream's first rollover counter.
    pub fn estimate(&self, seq: u16) -> Option<u64> {
        let Some(highest) = self.highest else {
            return Some(u64::from(seq));
        };
        let roc = (highest >> 16) as i64;
        let last = (highest & 0xffff) as i64;
        let seq = i64::from(seq);
        let roc = if last < 0x8000 {
            if seq - last > 0x8000 { roc - 1 } else { roc }
        } else if last - 0x8000 > seq {
            roc + 1
        } else {
            roc
        };
        (roc >= 0).then_some(((roc as u64) << 16) | seq as u64)
    }

    /// Whether a packet with this index may be accepted (before its tag is checked).
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if index > highest {
            return Ok(());
        }
        let behind = highest - index;
        if behind >= WINDOW {
            Err(SrtpError::TooOld)
        } else if self.seen >> behind & 1 == 1 {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated (or sent) packet's index.
    pub fn accept(&mut self, index: u64) {
        match self.highest {
            Some(highest) if index <= highest => {
                let behind = highest - index;
                if behind < WINDOW {
                    self.seen |= 1 << behind;
                }
            }
            Some(highest) => {
                let ahead = index - highest;
                self.seen = if ahead >= WINDOW {
                    0
                } else {
                    self.seen << ahead
                };
                self.seen |= 1;
                self.highest = Some(index);
            }
            None => {
                self.seen = 1;
                self.highest = Some(index);
            }
        }
    }
}

/// One SSRC's window and when it was last used.
#[derive(Debug)]
pub(super) struct Stream {
    ssrc: u32,
    pub window: Window,
    used: u64,
}

/// The streams of one direction. Those a peer sends are capped (the least
/// recently used makes room), those the bridge sends are as many as it forwards.
#[derive(Debug)]
pub(super) struct Streams {
    entries: Vec<Stream>,
    limit: Option<usize>,
    tick: u64,
}

impl Streams {
    /// Streams the bridge sends: one per stream it forwards, never evicted
    /// (a forgotten rollover counter would break the receiver's decryption).
    pub fn sent() -> Self {
        Streams {
            entries: Vec::with_capacity(8),
            limit: None,
            tick: 0,
        }
    }

    /// Streams a peer sends: at most `limit`, the least recently used
    /// forgotten for a new one.
    pub fn received(limit: usize) -> Self {
        Streams {
            entries: Vec::with_capacity(limit.min(16)),
            limit: Some(limit),
            tick: 0,
        }
    }

    pub fn get(&mut self, ssrc: u32) -> Option<&mut Stream> {
        self.tick += 1;
        let tick = self.tick;
        let stream = self.entries.iter_mut().find(|s| s.ssrc == ssrc)?;
        stream.used = tick;
        Some(stream)
    }

    pub fn get_or_insert(&mut self, ssrc: u32) -> &mut Stream {
        if let Some(i) = self.entries.iter().position(|s| s.ssrc == ssrc) {
            self.tick += 1;
            self.entries[i].used = self.tick;
            return &mut self.entries[i];
        }
        self.tick += 1;
        let fresh = Stream {
            ssrc,
            window: Window::default(),
            used: self.tick,
        };
        let full = self.limit.is_some_and(|l| self.entries.len() >= l);
        let i = match self.entries.iter().enumerate().min_by_key(|(_, s)| s.used) {
            Some((i, _)) if full => {
                self.entries[i] = fresh;
                i
            }
            _ => {
                self.entries.push(fresh);
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollover_counter_follows_sequence_wraps_both_ways() {
        let mut w = Window::default();
        w.accept(0xfffe);
        assert_eq!(w.estimate(0xffff), Some(0xffff));
        assert_eq!(w.estimate(1), Some(0x1_0001), "wrapped forward");
        w.accept(0x1_0001);
        assert_eq!(
            w.estimate(0xfffd),
            Some(0xfffd),
            "late from before the wrap"
        );
        assert_eq!(w.estimate(2), Some(0x1_0002));
    }

    #[test]
    fn a_packet_from_before_the_first_counter_has_no_index() {
        let mut w = Window::default();
        w.accept(5);
        assert_eq!(w.estimate(0xfff0), None);
    }

    #[test]
    fn replays_and_stale_packets_are_refused() {
        let mut w = Window::default();
        w.accept(100);
        w.accept(98);
        assert_eq!(w.check(100), Err(SrtpError::Replayed));
        assert_eq!(w.check(98), Err(SrtpError::Replayed));
        assert_eq!(w.check(99), Ok(()));
        assert_eq!(w.check(101), Ok(()));
        assert_eq!(w.check(100 - WINDOW), Err(SrtpError::TooOld));
        w.accept(100 + WINDOW + 5);
        assert_eq!(w.check(100), Err(SrtpError::TooOld));
        assert_eq!(w.check(100 + WINDOW), Ok(()));
    }

    #[test]
    fn a_peer_cannot_grow_its_streams_past_the_limit() {
        let mut s = Streams::received(4);
        for ssrc in 0..100 {
            s.get_or_insert(ssrc).window.accept(1);
        }
        assert_eq!(s.entries.len(), 4);
        assert!(s.get(99).is_some());
        assert!(s.get(0).is_none());
    }

    #[test]
    fn the_least_recently_used_stream_makes_room() {
        let mut s = Streams::received(2);
        s.get_or_insert(1);
        s.get_or_insert(2);
        s.get(1);
        s.get_or_insert(3);
        assert!(s.get(1).is_some());
        assert!(s.get(2).is_none());
    }
}
