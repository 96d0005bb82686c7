//! Lip sync across the bridge (protocol §6.4): the sender reports a receiver
//! gets map its audio and video timestamps to the moments the sender captured
//! them, as the sender's own reports said, not to when packets reached the
//! bridge. A camera whose frames leave 200 ms after capture (encoder delay)
//! stays in step with the microphone.

#[allow(dead_code)]
mod participant;

use std::time::{Duration, Instant, SystemTime};

use participant::setup::{bridge, connect_all, join, vp8};
use str0m::media::MediaKind;

const FRAME: Duration = Duration::from_millis(20);
/// Video leaves this many frames (200 ms) after it was captured.
const ENCODER_DELAY: u32 = 10;

/// The NTP time a receiver's latest report puts on RTP time `ts` of `ssrc`.
fn reported(reports: &(u32, SystemTime), ts: u32, rate: u32) -> SystemTime {
    let (rtp, ntp) = *reports;
    let ticks = i64::from(ts.wrapping_sub(rtp) as i32);
    let nanos = ticks * 1_000_000_000 / i64::from(rate);
    if nanos >= 0 {
        ntp + Duration::from_nanos(nanos as u64)
    } else {
        ntp - Duration::from_nanos(nanos.unsigned_abs())
    }
}

#[test]
fn receivers_sender_reports_keep_a_late_camera_in_step_with_the_microphone() {
    let bridge = bridge();
    let mut ps = vec![
        join(&bridge, "room", "alice", 1111, &[2222]),
        join(&bridge, "room", "bob", 3333, &[]),
    ];
    ps[1].expect(1111, MediaKind::Audio);
    ps[1].expect(2222, MediaKind::Video);
    connect_all(&mut ps);

    let t0 = Instant::now();
    let captured = |i: u32| t0 + FRAME * i;
    for i in 0..250u32 {
        while Instant::now() < captured(i) {
            ps[0].poll(Duration::from_millis(1));
            ps[1].poll(Duration::from_millis(1));
        }
        ps[0].send_audio_captured(1111, i * 960, captured(i), -30, vec![7; 60]);
        if let Some(f) = i.checked_sub(ENCODER_DELAY) {
            let key = f % 25 == 0 || ps[0].keyframe_requests.remove(&2222).is_some();
            let frame = vp8((f % 0x8000) as u16, (f % 256) as u8, key, 0, f);
            ps[0].send_video_captured(2222, f * 1800, captured(f), frame);
        }
    }
    for _ in 0..20 {
        ps[0].poll(Duration::from_millis(5));
        ps[1].poll(Duration::from_millis(5));
    }

    let bob = &ps[1];
    let (audio, video) = (bob.reports.get(&1111), bob.reports.get(&2222));
    let (Some(audio), Some(video)) = (audio, video) else {
        panic!("bob got sender reports for both streams: {:?}", bob.reports);
    };
    // A recent video frame as bob got it (timestamps may be renumbered), and
    // the audio packet captured at the same moment.
    let got = bob.got.get(&2222).expect("video reached bob");
    let last = got.last().unwrap();
    let frame = u32::from_be_bytes(last.payload[9..13].try_into().unwrap());
    let video_at = reported(video, last.timestamp, 90_000);
    let audio_at = reported(audio, frame * 960, 48_000);
    let skew = match video_at.duration_since(audio_at) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    assert!(
        skew < Duration::from_millis(20),
        "frame {frame} and its audio are {skew:?} apart in bob's reports (encoder delay 200 ms)"
    );
}
