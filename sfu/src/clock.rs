//! A sender's media clock as its sender reports describe it: which instant
//! (on our clock) each RTP timestamp was captured at.
//!
//! Forwarded packets carry that capture instant to the receiver's stream, and
//! the receiver's sender reports are made from it, so audio and video of one
//! sender keep the relation the sender reported (lip sync) even when its
//! video leaves the encoder later than its audio. A stream without a report
//! yet (browsers report audio only every few seconds) uses its arrival time,
//! shifted as the mapping is, so it agrees with the reported streams.
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use sfu::clock::SenderClock;
//!
//! let (now, ntp) = (Instant::now(), SystemTime::now());
//! let mut clock = SenderClock::default();
//! clock.on_report(now, 1111, 48_000, ntp); // audio: ts 48000 was captured at `ntp`
//! clock.on_report(now, 2222, 90_000, ntp); // video: ts 90000 at the same moment
//! let later = now + Duration::from_secs(1);
//! let audio = clock.capture(1111, 96_000, 48_000, later);
//! let video = clock.capture(2222, 180_000, 90_000, later);
//! assert_eq!(audio, video); // one second later, on both
//! ```

use std::time::{Duration, Instant, SystemTime};

/// Capture instants are placed this far before the report's arrival, so a
/// packet that travels faster than the report still has a capture instant
/// in the past (the receiver's stack ignores future ones).
const MARGIN: Duration = Duration::from_millis(100);
/// The mapping is kept while reports agree with it to within this; a clock
/// drifting further (or a jump) moves it, for all the sender's streams at once.
const TOLERANCE: Duration = Duration::from_millis(50);
/// Streams remembered per sender (its audio, its layers, a few re-adds).
const MAX_STREAMS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Report {
    ssrc: u32,
    rtp: u32,
    ntp: SystemTime,
}

/// One sender's reports, and one mapping from its NTP clock to ours.
#[derive(Debug, Default)]
pub struct SenderClock {
    /// An instant of ours and the sender's NTP time it corresponds to.
    anchor: Option<(Instant, SystemTime)>,
    reports: Vec<Report>,
}

impl SenderClock {
    /// A sender report for `ssrc`: RTP time `rtp` is NTP time `ntp`.
    pub fn on_report(&mut self, received_at: Instant, ssrc: u32, rtp: u32, ntp: SystemTime) {
        let at = received_at.checked_sub(MARGIN).unwrap_or(received_at);
        let agrees = self
            .anchor
            .and_then(|a| shift(a, ntp))
            .is_some_and(|mapped| mapped.max(at) - mapped.min(at) <= TOLERANCE);
        if !agrees {
            self.anchor = Some((at, ntp));
        }
        let report = Report { ssrc, rtp, ntp };
        match self.reports.iter_mut().find(|r| r.ssrc == ssrc) {
            Some(r) => *r = report,
            None => {
                if self.reports.len() == MAX_STREAMS {
                    self.reports.remove(0);
                }
                self.reports.push(report);
            }
        }
    }

    /// When the packet with RTP timestamp `ts` on `ssrc`, which arrived at
    /// `arrival`, was captured, on our clock; never after its arrival.
    pub fn capture(&self, ssrc: u32, ts: u32, clock_rate: u32, arrival: Instant) -> Instant {
        let by_arrival = arrival.checked_sub(MARGIN).unwrap_or(arrival);
        self.reported(ssrc, ts, clock_rate)
            .filter(|c| *c <= arrival)
            .unwrap_or(by_arrival)
    }

    fn reported(&self, ssrc: u32, ts: u32, clock_rate: u32) -> Option<Instant> {
        let anchor = self.anchor?;
        let r = self.reports.iter().find(|r| r.ssrc == ssrc)?;
        // Signed: packets may be older than the report.
        let ticks = i64::from(ts.wrapping_sub(r.rtp) as i32);
        let nanos = ticks * 1_000_000_000 / i64::from(clock_rate.max(1));
        let ntp = if nanos >= 0 {
            r.ntp.checked_add(Duration::from_nanos(nanos as u64))?
        } else {
            r.ntp
                .checked_sub(Duration::from_nanos(nanos.unsigned_abs()))?
        };
        shift(anchor, ntp)
    }
}

/// `ntp` on our clock, through `anchor`.
fn shift((instant, anchor_ntp): (Instant, SystemTime), ntp: SystemTime) -> Option<Instant> {
    match ntp.duration_since(anchor_ntp) {
        Ok(later) => instant.checked_add(later),
        Err(earlier) => instant.checked_sub(earlier.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_and_video_share_one_mapping_and_wrap_and_precede_reports() {
        let (t0, ntp0) = (Instant::now() + Duration::from_secs(10), SystemTime::now());
        let mut c = SenderClock::default();
        let arrived = t0 + Duration::from_secs(2);
        assert_eq!(c.capture(1, 0, 48_000, t0), t0 - MARGIN, "no report yet");
        c.on_report(t0, 1, u32::MAX - 47_999, ntp0);
        // The video report arrives 30 ms late: same mapping, within tolerance.
        c.on_report(t0 + Duration::from_millis(30), 2, 9_000, ntp0);
        let a = c.capture(1, 0, 48_000, arrived); // 48000 ticks later, across the wrap
        let v = c.capture(2, 99_000, 90_000, arrived);
        assert_eq!(a, v);
        assert_eq!(a, t0 - MARGIN + Duration::from_secs(1));
        // Older than the report.
        let older = c.capture(2, 0, 90_000, arrived);
        assert_eq!(older, t0 - MARGIN - Duration::from_millis(100));
        // Never after it arrived: then arrival stands in, shifted.
        assert_eq!(c.capture(2, 900_000, 90_000, arrived), arrived - MARGIN);
        // A report far off the mapping (a jump in the sender's clock) moves it.
        let later = t0 + Duration::from_secs(5);
        c.on_report(later, 1, 0, ntp0);
        assert_eq!(c.capture(1, 0, 48_000, later), later - MARGIN);
    }
}
