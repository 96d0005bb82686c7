//! What a participant receives, per SSRC: continuity (a gap in the extended
//! sequence numbers is loss), counts by sender, and one-way latency from the
//! send stamps. Time is passed in.

use std::collections::BTreeMap;
use std::time::Instant;

use super::generate::{read_stamp, stamp};
use super::jingle::{Media, RemoteSource};
use crate::stats::Latencies;

/// Latency samples kept per participant; enough for stable percentiles.
const MAX_SAMPLES: usize = 200_000;

struct Track {
    ssrc: u32,
    owner: String,
    video: bool,
    first: Option<u64>,
    highest: u64,
    received: u64,
    /// Which of the last [`WINDOW`] sequence numbers arrived (duplicates).
    seen: [u64; WINDOW as usize / 64],
}

const WINDOW: u64 = 1024;

/// Further ahead than this is no gap: a stack extends a number from before
/// a track's first wrap below zero, which as a u64 lands near its top.
const MAX_JUMP: u64 = 16 << 16;

impl Track {
    /// Records `seq`; false for a duplicate or one from before the start.
    fn note(&mut self, seq: u64) -> bool {
        let bit = |s: u64| ((s % WINDOW / 64) as usize, 1u64 << (s % 64));
        match self.first {
            None => {
                self.first = Some(seq);
                self.highest = seq;
            }
            Some(f) if seq < f || self.highest.saturating_sub(seq) >= WINDOW => return false,
            Some(_) if seq > self.highest && seq - self.highest > MAX_JUMP => return false,
            Some(_) if seq > self.highest => {
                if seq - self.highest >= WINDOW {
                    self.seen = [0; WINDOW as usize / 64];
                } else {
                    for s in self.highest + 1..seq {
                        let (w, b) = bit(s);
                        self.seen[w] &= !b;
                    }
                }
                self.highest = seq;
            }
            Some(_) => {
                let (w, b) = bit(seq);
                if self.seen[w] & b != 0 {
                    return false;
                }
            }
        }
        let (w, b) = bit(seq);
        self.seen[w] |= b;
        self.received += 1;
        true
    }

    fn lost(&self) -> u64 {
        match self.first {
            Some(f) => (self.highest - f + 1).saturating_sub(self.received),
            None => 0,
        }
    }
}

#[derive(Default)]
pub struct Meter {
    tracks: Vec<Track>,
    pub packets: u64,
    pub bytes: u64,
    /// Packets on SSRCs nobody signalled.
    pub unknown: u64,
    pub first_rtp: Option<Instant>,
    pub latency: Latencies,
    samples: usize,
    /// Whether latency samples are being kept (the measured window).
    pub sampling: bool,
    /// Every stamped packet's one-way latency, summed, counted and the worst
    /// since the last flush: the timeline's latency curve.
    pub latency_sum_us: u64,
    pub latency_count: u64,
    pub latency_max_us: u64,
}

impl Meter {
    /// Starts tracking a signalled source (again, after a re-add).
    pub fn expect(&mut self, s: &RemoteSource) {
        if self.tracks.iter().any(|t| t.ssrc == s.ssrc) {
            return;
        }
        self.tracks.push(Track {
            ssrc: s.ssrc,
            owner: s.owner.clone(),
            video: s.media == Media::Video,
            first: None,
            highest: 0,
            received: 0,
            seen: [0; WINDOW as usize / 64],
        });
    }

    pub fn on_rtp(&mut self, now: Instant, ssrc: u32, seq: u64, payload: &[u8]) {
        self.packets += 1;
        self.bytes += payload.len() as u64 + 12;
        self.first_rtp.get_or_insert(now);
        let Some(t) = self.tracks.iter_mut().find(|t| t.ssrc == ssrc) else {
            self.unknown += 1;
            return;
        };
        if !t.note(seq) {
            return;
        }
        let Some(sent) = read_stamp(t.video, payload) else {
            return;
        };
        let at = stamp::micros(now);
        // Not one of ours (padding, another generator): no sample.
        if sent > at || at - sent >= 10_000_000 {
            return;
        }
        self.latency_sum_us += at - sent;
        self.latency_count += 1;
        self.latency_max_us = self.latency_max_us.max(at - sent);
        if self.sampling && self.samples < MAX_SAMPLES {
            self.latency.push(at - sent);
            self.samples += 1;
        }
    }

    /// Packets missing between the first and highest seen, over all SSRCs.
    pub fn lost(&self) -> u64 {
        self.tracks.iter().map(Track::lost).sum()
    }

    /// Of [`Meter::lost`], the video packets (those NACK and RTX can recover).
    pub fn lost_video(&self) -> u64 {
        self.tracks
            .iter()
            .filter(|t| t.video)
            .map(Track::lost)
            .sum()
    }

    /// Packets received from each sender (endpoint ID), `jvb` excluded.
    pub fn by_owner(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for t in self.tracks.iter().filter(|t| t.owner != "jvb") {
            *out.entry(t.owner.clone()).or_default() += t.received;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_loss_and_duplicates_are_not() {
        let mut m = Meter::default();
        m.expect(&RemoteSource {
            owner: "ab".into(),
            media: Media::Audio,
            ssrc: 5,
            rtx: None,
        });
        let now = Instant::now();
        for seq in [10, 11, 13, 14, 14, 9] {
            m.on_rtp(now, 5, seq, &[0; 20]);
        }
        m.on_rtp(now, 6, 1, &[0; 20]);
        assert_eq!(m.lost(), 1, "12 is missing; the second 14 is a duplicate");
        m.on_rtp(now, 5, 12, &[0; 20]);
        m.on_rtp(now, 5, 20, &[0; 20]);
        assert_eq!(m.lost(), 5);
        assert_eq!(m.by_owner()["ab"], 6);
        assert_eq!(m.unknown, 1);
        // A number extended below zero (u64 wrap) is neither received nor a gap.
        m.on_rtp(now, 5, u64::MAX - 3, &[0; 20]);
        assert_eq!(m.lost(), 5);
        assert_eq!(m.by_owner()["ab"], 6);
    }
}
