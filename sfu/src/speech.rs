//! Who is speaking: dominant-speaker detection from the audio levels senders
//! put in every audio packet (RFC 6464), and dropping of silence.
//!
//! Levels are -dBov, 0 (loudest) to 127 (silence). Each speaker has a fast
//! and a slow measure of speech activity; the dominant speaker changes when
//! someone speaking now has clearly more slow activity than the current one,
//! so a cough does not steal the stage. Decisions are taken every
//! [`DECISION_INTERVAL`] in [`SpeechActivity::handle_timeout`]; the per-packet
//! path does arithmetic only.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sfu::speech::SpeechActivity;
//! let t0 = Instant::now();
//! let mut s = SpeechActivity::new();
//! for i in 0..100u64 {
//!     let now = t0 + Duration::from_millis(20 * i);
//!     s.handle_level(now, 1u32, 30); // endpoint 1 talks
//!     s.handle_level(now, 2u32, 127); // endpoint 2 is silent
//!     s.handle_timeout(now);
//! }
//! assert_eq!(s.dominant(), Some(1));
//! ```

use std::time::{Duration, Instant};

/// How often the dominant speaker is re-evaluated.
pub const DECISION_INTERVAL: Duration = Duration::from_millis(300);
/// How many previous speakers are remembered for the client's speaker list.
pub const RECENT_SPEAKERS: usize = 10;
/// Levels at or below this (-dBov) count as speech.
const SPEECH_LEVEL: u8 = 70;
/// Time constants of the fast and slow activity measures.
const FAST: Duration = Duration::from_millis(200);
const SLOW: Duration = Duration::from_millis(1500);
/// A challenger must have this much more slow activity than the current speaker.
const HYSTERESIS: f32 = 1.5;
/// Fast activity above this means "speaking now".
const SPEAKING_NOW: f32 = 0.3;
/// Consecutive silent packets forwarded before silence is dropped.
const SILENT_PACKETS_KEPT: u8 = 3;
/// While silent, one packet this often still goes, so a receiver that joined
/// during the silence has the stream and its statistics show it alive.
const SILENT_KEEPALIVE: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Speaker<K> {
    key: K,
    fast: f32,
    slow: f32,
    last: Instant,
}

/// A change of dominant speaker, for the bridge channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DominantSpeakerChange<K> {
    pub speaker: K,
    /// Earlier speakers, most recent first.
    pub previous: Vec<K>,
}

/// Speech activity of one conference's senders.
#[derive(Debug)]
pub struct SpeechActivity<K> {
    speakers: Vec<Speaker<K>>,
    dominant: Option<K>,
    recent: Vec<K>,
    next_decision: Option<Instant>,
    changed: Option<DominantSpeakerChange<K>>,
}

impl<K: Copy + Eq> Default for SpeechActivity<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq> SpeechActivity<K> {
    pub fn new() -> Self {
        SpeechActivity {
            speakers: Vec::new(),
            dominant: None,
            recent: Vec::with_capacity(RECENT_SPEAKERS + 1),
            next_decision: None,
            changed: None,
        }
    }

    /// One audio packet's level from `key`.
    pub fn handle_level(&mut self, now: Instant, key: K, level: u8) {
        let speech = if level <= SPEECH_LEVEL { 1.0 } else { 0.0 };
        let i = match self.speakers.iter().position(|s| s.key == key) {
            Some(i) => i,
            None => {
                self.speakers.push(Speaker {
                    key,
                    fast: 0.0,
                    slow: 0.0,
                    last: now,
                });
                self.speakers.len() - 1
            }
        };
        let s = &mut self.speakers[i];
        let dt = now.saturating_duration_since(s.last);
        s.last = now;
        s.fast = decay(s.fast, dt, FAST, speech);
        s.slow = decay(s.slow, dt, SLOW, speech);
        self.next_decision.get_or_insert(now + DECISION_INTERVAL);
    }

    /// Forgets a sender that left.
    pub fn remove(&mut self, key: K) {
        self.speakers.retain(|s| s.key != key);
        self.recent.retain(|k| *k != key);
        if self.dominant == Some(key) {
            self.dominant = None;
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_decision
    }

    /// Re-evaluates the dominant speaker when its time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.next_decision {
            Some(t) if t <= now => self.next_decision = Some(now + DECISION_INTERVAL),
            _ => return,
        }
        // Senders that stopped sending audio fade as if silent.
        for s in &mut self.speakers {
            let dt = now.saturating_duration_since(s.last);
            if dt > FAST {
                s.fast = decay(s.fast, dt, FAST, 0.0);
                s.slow = decay(s.slow, dt, SLOW, 0.0);
                s.last = now;
            }
        }
        let current = self
            .dominant
            .and_then(|d| self.speakers.iter().find(|s| s.key == d))
            .map_or(0.0, |s| s.slow);
        let challenger = self
            .speakers
            .iter()
            .filter(|s| Some(s.key) != self.dominant && s.fast > SPEAKING_NOW)
            .max_by(|a, b| a.slow.total_cmp(&b.slow));
        if let Some(c) = challenger
            && c.slow > current * HYSTERESIS
        {
            let key = c.key;
            if let Some(old) = self.dominant.replace(key) {
                self.recent.retain(|k| *k != old);
                self.recent.insert(0, old);
                self.recent.truncate(RECENT_SPEAKERS);
            }
            self.recent.retain(|k| *k != key);
            self.changed = Some(DominantSpeakerChange {
                speaker: key,
                previous: self.recent.clone(),
            });
        }
    }

    pub fn dominant(&self) -> Option<K> {
        self.dominant
    }

    /// The speaker ordering for last-N: dominant first, then recent speakers.
    pub fn ranking(&self) -> impl Iterator<Item = K> + '_ {
        self.dominant.into_iter().chain(self.recent.iter().copied())
    }

    /// A change to announce, once.
    pub fn poll_change(&mut self) -> Option<DominantSpeakerChange<K>> {
        self.changed.take()
    }
}

/// Moves `value` toward `target` with time constant `tau` over `dt`.
fn decay(value: f32, dt: Duration, tau: Duration, target: f32) -> f32 {
    let a = (-(dt.as_secs_f32()) / tau.as_secs_f32()).exp();
    target + (value - target) * a
}

/// Drops a sender's silence after a few packets, before any crypto is spent on it.
#[derive(Debug, Default)]
pub struct SilenceFilter {
    silent_run: u8,
    last_forwarded: Option<Instant>,
}

impl SilenceFilter {
    /// Whether a packet with this level, arriving at `now`, is worth forwarding.
    pub fn forward(&mut self, now: Instant, level: Option<u8>) -> bool {
        let keep = match level {
            Some(127) => {
                self.silent_run = self.silent_run.saturating_add(1);
                self.silent_run <= SILENT_PACKETS_KEPT
                    || self
                        .last_forwarded
                        .is_none_or(|t| now.saturating_duration_since(t) >= SILENT_KEEPALIVE)
            }
            _ => {
                self.silent_run = 0;
                true
            }
        };
        if keep {
            self.last_forwarded = Some(now);
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 20 ms packets for `ms` milliseconds with each key's level.
    fn talk(s: &mut SpeechActivity<u32>, from: Instant, ms: u64, levels: &[(u32, u8)]) -> Instant {
        let mut now = from;
        for _ in 0..ms / 20 {
            now += Duration::from_millis(20);
            for &(k, l) in levels {
                s.handle_level(now, k, l);
            }
            s.handle_timeout(now);
        }
        now
    }

    #[test]
    fn the_talker_becomes_dominant_and_a_cough_does_not_steal_it() {
        let mut s = SpeechActivity::new();
        let t = talk(&mut s, Instant::now(), 3000, &[(1, 25), (2, 127), (3, 127)]);
        assert_eq!(s.dominant(), Some(1));
        let change = s.poll_change().unwrap();
        assert_eq!(change.speaker, 1);
        assert!(s.poll_change().is_none(), "announced once");
        // 2 coughs for 100 ms while 1 keeps talking.
        let t = talk(&mut s, t, 100, &[(1, 25), (2, 20)]);
        let t = talk(&mut s, t, 1000, &[(1, 25), (2, 127)]);
        assert_eq!(s.dominant(), Some(1));
        // 1 stops, 2 talks for real.
        talk(&mut s, t, 3000, &[(1, 127), (2, 30)]);
        assert_eq!(s.dominant(), Some(2));
        assert_eq!(s.poll_change().unwrap().previous, vec![1]);
        assert_eq!(s.ranking().collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn a_sender_that_left_is_forgotten() {
        let mut s = SpeechActivity::new();
        talk(&mut s, Instant::now(), 2000, &[(7, 25)]);
        assert_eq!(s.dominant(), Some(7));
        s.remove(7);
        assert_eq!(s.dominant(), None);
        assert_eq!(s.ranking().count(), 0);
    }

    #[test]
    fn silence_is_dropped_after_three_packets() {
        let mut f = SilenceFilter::default();
        let t = Instant::now();
        let at = |i: u64| t + Duration::from_millis(20 * i);
        let kept: Vec<bool> = [127, 127, 127, 127, 127, 40, 127]
            .iter()
            .enumerate()
            .map(|(i, l)| f.forward(at(i as u64), Some(*l)))
            .collect();
        assert_eq!(kept, [true, true, true, false, false, true, true]);
        assert!(f.forward(at(7), None), "no level extension: forward");
        // A long silence (4 s) still lets one packet a second through.
        let kept = (8..208).filter(|i| f.forward(at(*i), Some(127))).count();
        assert_eq!(
            kept,
            3 + 3,
            "three at the start, then one a second after them"
        );
    }
}
