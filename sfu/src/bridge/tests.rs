//! The bridge's health as `/about/health` reports it.

use std::time::{Duration, Instant};

use super::worker::{Command, Heartbeat, STALLED};
use super::{Bridge, BridgeConfig};

fn bridge() -> Bridge {
    Bridge::start(BridgeConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_bridge_whose_workers_run_is_healthy() {
    let bridge = bridge();
    assert_eq!(bridge.health(), Ok(()));
}

#[test]
fn a_worker_that_died_makes_the_bridge_unhealthy() {
    let bridge = bridge();
    bridge.workers[1].send(Command::Panic).unwrap();
    // Waits for the thread to end, as a health probe would.
    let deadline = Instant::now() + Duration::from_secs(5);
    while bridge.health().is_ok() && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(
        bridge.health(),
        Err("media worker 1 has stopped".to_string())
    );
    // New conferences go to the worker still running.
    for c in ["one", "two", "three"] {
        assert!(bridge.create_endpoint(c, "a").is_ok(), "{c}");
    }
}

#[test]
fn a_heartbeat_older_than_the_stall_limit_is_a_stuck_worker() {
    let t0 = Instant::now();
    let beat = Heartbeat::new(t0);
    beat.beat(t0 + Duration::from_secs(1));
    assert_eq!(
        beat.silent_for(t0 + Duration::from_secs(2)),
        Duration::from_secs(1)
    );
    assert!(
        beat.silent_for(t0 + Duration::from_secs(1) + STALLED + Duration::from_millis(1)) > STALLED
    );
    // A clock read before the last beat is no silence.
    assert_eq!(beat.silent_for(t0), Duration::ZERO);
}
