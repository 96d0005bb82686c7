//! The estimator on simulated paths (`sim`): convergence, stability,
//! reaction to a capacity drop and to loss, hostile feedback; and side by
//! side with webrtc-rs's GCC on the same feedback.

use super::sim::{Link, Rng, Sim};
use super::*;

fn config(initial_bps: u64) -> Config {
    Config {
        initial_bps,
        ..Config::default()
    }
}

fn trace(sim: &Sim, label: &str) {
    let line: Vec<String> = sim
        .samples
        .iter()
        .step_by(5)
        .map(|&(t, e)| format!("{:.1}:{:.2}", t as f64 / 1e6, e as f64 / 1e6))
        .collect();
    eprintln!("{label}: {}", line.join(" "));
}

/// Sorted copy, for percentiles.
fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Runs a link of `capacity` for `seconds`, the sender at the estimate and
/// wanting twice the capacity.
fn run(capacity: u64, initial: u64, loss: f64, seconds: f64, seed: u64) -> Sim {
    let mut sim = Sim::new(
        Link {
            loss,
            ..Link::new(capacity)
        },
        config(initial),
        seed,
    );
    sim.bwe.set_desired_bitrate(sim.instant(0), 2 * capacity);
    sim.run_until(seconds);
    sim
}

#[test]
fn the_estimate_reaches_a_2_5_mbps_link_within_a_second_by_probing() {
    for initial in [300_000, 2_500_000] {
        let sim = run(2_500_000, initial, 0.0, 10.0, 1);
        let at = sim
            .first_at_least(0.85 * 2.5e6, 0.0)
            .expect("never got there");
        eprintln!("2.5 Mbit/s from {initial}: 85 % at {at:.1} s");
        assert!(at <= 1.0, "{at}");
        trace(&sim, "2.5M");
    }
}

#[test]
fn the_estimate_reaches_a_10_mbps_link_within_a_second_by_probing() {
    for initial in [300_000, 2_500_000] {
        let sim = run(10_000_000, initial, 0.0, 10.0, 2);
        let at = sim
            .first_at_least(0.85 * 10e6, 0.0)
            .expect("never got there");
        eprintln!(
            "10 Mbit/s from {initial}: 85 % at {at:.1} s, {} clusters",
            sim.sent_probe_clusters
        );
        assert!(at <= 1.0, "{at}");
        trace(&sim, "10M");
    }
}

#[test]
fn sending_at_the_estimate_keeps_it_near_the_capacity_and_the_queue_short() {
    for capacity in [2_500_000u64, 10_000_000] {
        let sim = run(capacity, 2_500_000, 0.0, 60.0, 3);
        let e = sorted(sim.estimates(3.0, 60.0));
        let c = capacity as f64;
        let (low, high, avg) = (e[0] / c, e[e.len() - 1] / c, mean(&e) / c);
        let q = sorted(
            sim.queue_delays
                .iter()
                .map(|&d| d as f64 / 1000.0)
                .collect(),
        );
        let (p95, max) = (q[q.len() * 95 / 100], q[q.len() - 1]);
        eprintln!(
            "{capacity}: estimate {low:.2}-{high:.2} of capacity, mean {avg:.2}; queue p95 {p95:.0} ms, max {max:.0} ms"
        );
        assert!(low >= 0.75 && high <= 1.1, "{low} {high}");
        assert!((0.85..=1.0).contains(&avg), "{avg}");
        assert!(p95 <= 50.0 && max <= 200.0, "{p95} {max}");
    }
}

#[test]
fn a_halved_capacity_is_found_within_two_seconds() {
    let mut sim = Sim::new(Link::new(5_000_000), config(2_500_000), 4);
    sim.bwe.set_desired_bitrate(sim.instant(0), 10_000_000);
    sim.run_until(10.0);
    assert!(sim.bwe.estimate() > 4_000_000, "{}", sim.bwe.estimate());
    sim.link.capacity_bps = 2_500_000;
    sim.run_until(30.0);
    let at = sim
        .first_at_most(1.1 * 2.5e6, 10.0)
        .expect("never came down")
        - 10.0;
    let after = sorted(sim.estimates(at + 10.0, 30.0));
    eprintln!(
        "5 -> 2.5 Mbit/s: at most 110 % after {at:.1} s; then {:.2}-{:.2} Mbit/s",
        after[0] / 1e6,
        after[after.len() - 1] / 1e6
    );
    assert!(at <= 2.0, "{at}");
    assert!(after[0] >= 0.6 * 2.5e6, "collapsed to {}", after[0]);
    trace(&sim, "halving");
}

#[test]
fn heavy_loss_backs_off() {
    // 20 % random loss on a link that never queues: only loss says anything.
    let sim = run(5_000_000, 2_500_000, 0.2, 10.0, 5);
    let at = sim
        .first_at_most(0.5 * 2.5e6, 0.0)
        .expect("never backed off");
    eprintln!(
        "20 % loss: half the start after {at:.1} s, {} at 10 s",
        sim.bwe.estimate()
    );
    assert!(at <= 5.0, "{at}");
    assert!(sim.bwe.estimate() < 500_000);
    assert!(
        (0.05..0.4).contains(&sim.bwe.loss_fraction()),
        "{}",
        sim.bwe.loss_fraction()
    );
}

#[test]
fn two_percent_random_loss_does_not_collapse_the_estimate() {
    for capacity in [2_500_000u64, 10_000_000] {
        let sim = run(capacity, 2_500_000, 0.02, 60.0, 6);
        let e = sorted(sim.estimates(3.0, 60.0));
        let c = capacity as f64;
        eprintln!(
            "2 % loss at {capacity}: {:.2}-{:.2} of capacity, mean {:.2}",
            e[0] / c,
            e[e.len() - 1] / c,
            mean(&e) / c
        );
        assert!(
            e[0] >= 0.7 * c && mean(&e) >= 0.8 * c,
            "{} {}",
            e[0],
            mean(&e)
        );
    }
}

#[test]
fn an_application_limited_sender_gets_what_it_wants_by_probing() {
    // The bridge forwards 600 kbit/s; the receiver wants a layer needing 4
    // Mbit/s in all. Delay-based growth alone would hold under 1.5 x 600k.
    let mut sim = Sim::new(Link::new(10_000_000), config(300_000), 7);
    sim.media_limit_bps = Some(600_000);
    sim.bwe.set_desired_bitrate(sim.instant(0), 700_000);
    sim.run_until(5.0);
    let before = sim.bwe.estimate();
    assert!(before < 2_000_000, "{before}");
    sim.bwe
        .set_desired_bitrate(sim.instant(sim.now_us()), 4_000_000);
    sim.run_until(10.0);
    let at = sim.first_at_least(4e6, 5.0).expect("never got there") - 5.0;
    eprintln!("wanting 4 Mbit/s from {before}: there after {at:.1} s");
    assert!(at <= 1.0, "{at}");
    assert!(
        sim.bwe.estimate() <= 4_800_000,
        "no higher than wanted plus headroom"
    );
}

#[test]
fn the_loss_halves_agree_with_webrtc_rs_gcc() {
    // The same feedback to both. Their delay half compares the filtered
    // per-group gradient with the threshold unscaled (no sample-count gain),
    // so it only sees overload beyond about 3x: the loss halves are compared.
    for (loss, backs_off) in [(0.2, true), (0.0, false)] {
        let mut sim = Sim::new(
            Link {
                loss,
                ..Link::new(10_000_000)
            },
            config(2_500_000),
            8,
        );
        sim.theirs = Some(rtc::interceptor::Gcc::new(
            2_500_000.0,
            30_000.0,
            20_000_000.0,
        ));
        sim.media_limit_bps = Some(2_000_000);
        sim.bwe.set_desired_bitrate(sim.instant(0), 2_000_000);
        sim.run_until(10.0);
        let theirs = sim.theirs.as_ref().unwrap().loss_based_bitrate();
        let ours = sim.bwe.loss.bound();
        eprintln!("loss {loss}: their loss half {theirs:.0}, our bound {ours:?}");
        if backs_off {
            assert!(theirs < 0.5 * 2.5e6 && ours.is_some_and(|b| b < 0.5 * 2.5e6));
        } else {
            assert!(theirs >= 2.5e6 && ours.is_none());
        }
    }
}

#[test]
fn a_repeated_feedback_changes_nothing() {
    let start = Instant::now();
    let mut bwe = Estimator::new(start, Config::default());
    for seq in 0..100u16 {
        bwe.on_sent(
            start + Duration::from_millis(u64::from(seq) * 4),
            seq,
            1200,
            None,
        );
    }
    let feedback: Vec<_> = (0..100u16)
        .map(|s| (s, (s % 10 != 0).then_some(30_000 + i64::from(s) * 4000)))
        .collect();
    bwe.on_feedback(start + Duration::from_millis(500), feedback.iter().copied());
    let state = (
        bwe.estimate(),
        bwe.acked_bps(),
        bwe.loss_fraction(),
        bwe.rtt(),
    );
    assert_eq!(state.2, 0.1);
    for ms in [600, 700] {
        bwe.on_feedback(start + Duration::from_millis(ms), feedback.iter().copied());
        assert_eq!(
            state,
            (
                bwe.estimate(),
                bwe.acked_bps(),
                bwe.loss_fraction(),
                bwe.rtt()
            )
        );
    }
}

#[test]
fn unknown_and_ancient_sequence_numbers_are_ignored() {
    let start = Instant::now();
    let mut bwe = Estimator::new(start, Config::default());
    for seq in 0..50u16 {
        bwe.on_sent(start, seq, 1200, None);
    }
    // Never sent.
    bwe.on_feedback(
        start + Duration::from_millis(100),
        (1000..1100).map(|s| (s, None)),
    );
    // Sent, but longer ago than the history keeps.
    bwe.on_feedback(start + Duration::from_secs(6), (0..50).map(|s| (s, None)));
    assert_eq!(bwe.loss_fraction(), 0.0);
    assert_eq!(bwe.estimate(), Config::default().initial_bps);
    assert_eq!(bwe.rtt(), None);
}

#[test]
fn a_feedback_longer_than_the_scratch_is_taken_in_turns() {
    let start = Instant::now();
    let mut bwe = Estimator::new(start, Config::default());
    let n = 3 * FEEDBACK_CHUNK as u16 + 7;
    for seq in 0..n {
        bwe.on_sent(
            start + Duration::from_micros(u64::from(seq) * 500),
            seq,
            1000,
            None,
        );
    }
    // 16 Mbit/s delivered: the acknowledged rate comes from all of it.
    bwe.on_feedback(
        start + Duration::from_secs(1),
        (0..n).map(|s| (s, Some(40_000 + i64::from(s) * 500))),
    );
    let acked = bwe.acked_bps().unwrap() as f64;
    assert!((acked - 16e6).abs() < 0.05 * 16e6, "{acked}");
    assert_eq!(bwe.footprint().1, FEEDBACK_CHUNK);
}

#[test]
fn hostile_feedback_neither_panics_nor_grows_the_state() {
    let mut rng = Rng::new(0xbad);
    let start = Instant::now();
    let config = Config::default();
    let mut bwe = Estimator::new(start, config);
    let footprint = bwe.footprint();
    let mut now = start;
    let mut seq = 0u16;
    let mut previous: Vec<(u16, Option<i64>)> = Vec::new();
    for round in 0..3000u64 {
        now += Duration::from_micros(rng.next_u64() % 60_000);
        // Now and then the caller's clock steps back (never before the start).
        let at = if round % 97 == 0 {
            start + Duration::from_millis(rng.next_u64() % 1000)
        } else {
            now
        };
        for _ in 0..rng.next_u64() % 80 {
            let probe = if rng.next_u64().is_multiple_of(7) {
                ProbeClusterId::from_raw(rng.next_u64() as u32 % 20)
            } else {
                None
            };
            let size = (rng.next_u64() % 70_000) as usize;
            bwe.on_sent(at, seq, size, probe);
            seq = if round % 11 == 0 {
                rng.next_u64() as u16
            } else {
                seq.wrapping_add(1)
            };
        }
        let len = if round % 50 == 0 {
            5000
        } else {
            (rng.next_u64() % 300) as usize
        };
        let base = rng.next_u64() as u16;
        let feedback: Vec<(u16, Option<i64>)> = match round % 6 {
            // Random numbers, random times.
            0 => (0..len)
                .map(|_| {
                    (
                        rng.next_u64() as u16,
                        (!rng.next_u64().is_multiple_of(3)).then(|| rng.next_u64() as i64),
                    )
                })
                .collect(),
            // Recent numbers, times running backwards.
            1 => (0..len as u16)
                .map(|i| (seq.wrapping_sub(i), Some(1_000_000 - i64::from(i) * 1000)))
                .collect(),
            // The previous feedback again.
            2 => previous.clone(),
            // Huge gaps between numbers, extreme times.
            3 => (0..len as u16)
                .map(|i| {
                    (
                        base.wrapping_add(i.wrapping_mul(9973)),
                        Some([i64::MIN, i64::MAX, 0, -1][usize::from(i) % 4]),
                    )
                })
                .collect(),
            // Duplicates within one feedback.
            4 => (0..len)
                .map(|i| (seq.wrapping_sub((i % 5) as u16), Some(i as i64 * 3)))
                .collect(),
            // Plausible: recent numbers, sensible times.
            _ => (0..len as u16)
                .rev()
                .map(|i| {
                    (
                        seq.wrapping_sub(i),
                        Some(round as i64 * 50_000 + i64::from(i) * 100),
                    )
                })
                .collect(),
        };
        bwe.on_feedback(at, feedback.iter().copied());
        previous = feedback;
        if round % 13 == 0 {
            bwe.set_desired_bitrate(at, rng.next_u64() % 50_000_000);
        }
        if let Some(cluster) = bwe.poll_probe(at) {
            assert!(cluster.bytes > 0 && cluster.min_packets > 0);
        }
        let _ = bwe.poll_timeout();
        assert!((config.min_bps..=config.max_bps).contains(&bwe.estimate()));
        assert_eq!(bwe.footprint(), footprint);
    }
}

#[test]
fn nothing_allocates_after_creation() {
    let start = Instant::now();
    let mut bwe = Estimator::new(start, Config::default());
    // Ten rounds of 100 packets and their feedback (every tenth lost), the
    // feedbacks built beforehand.
    let feedbacks: Vec<Vec<(u16, Option<i64>)>> = (0..10u16)
        .map(|round| {
            (0..100u16)
                .map(|i| {
                    let seq = round * 100 + i;
                    (seq, (i % 10 != 3).then_some(20_000 + i64::from(seq) * 4000))
                })
                .collect()
        })
        .collect();
    let counts = allocation_counter::measure(|| drop(std::hint::black_box(vec![0u8; 64])));
    assert!(counts.count_total > 0, "the counter counts");
    let info = allocation_counter::measure(|| {
        for (round, feedback) in feedbacks.iter().enumerate() {
            let _ = bwe.poll_probe(start);
            for &(seq, _) in feedback {
                let at = start + Duration::from_millis(u64::from(seq) * 4);
                bwe.on_sent(at, seq, 1200, None);
            }
            let at = start + Duration::from_millis(400 * round as u64 + 450);
            bwe.on_feedback(at, feedback.iter().copied());
            bwe.set_desired_bitrate(at, 8_000_000);
            let _ = bwe.poll_timeout();
        }
    });
    assert_eq!(info.count_total, 0);
    assert!(bwe.acked_bps().is_some() && bwe.loss_fraction() > 0.05);
}
