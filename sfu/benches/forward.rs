//! Forwarding cost of the bridge's core, in memory (no sockets): the router's
//! time per forwarded packet for many 1:1 rooms and for one 20-person room,
//! next to a floor measured in the same run: what str0m alone spends to take
//! one packet in (SRTP unprotect, shared by the receivers) and send one out
//! (SRTP protect), without any routing. Syscalls are excluded from both.
//! Heap allocations in the timed parts are counted too (this thread's only).
//!
//! `cargo bench -p sfu --bench forward`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu::api::{RemoteTransport, Setup, Sources};
use sfu::cert::Certificate;
use sfu::router::Router;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};

const BRIDGE: &str = "10.9.9.9:10000";
/// Datagrams a worker handles before sending what they caused (its socket
/// reads take up to 32; the generator's 1:1 load gives it about 5 per wake).
const BURST: usize = 16;

struct Peer {
    rtc: Rtc,
    addr: SocketAddr,
    ssrc: u32,
    seq: u64,
    connected: bool,
    received: u64,
}

fn rtc(now: Instant) -> Rtc {
    let mut config = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(5, Extension::TransportSequenceNumber);
    config.codec_config().add_config(
        Pt::from(111),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        Default::default(),
    );
    config.build(now)
}

fn peer(now: Instant, router: &mut Router, room: &str, index: usize, addr: SocketAddr) -> Peer {
    let name = format!("p{index}");
    let local = router.create_endpoint(now, room, &name).unwrap();
    let mut rtc = rtc(now);
    let mut api = rtc.direct_api();
    api.set_ice_controlling(false);
    api.declare_media(Mid::from("audio"), MediaKind::Audio);
    api.set_remote_ice_credentials(IceCreds {
        ufrag: local.ufrag,
        pass: local.pwd,
    });
    api.set_remote_fingerprint(format!("sha-256 {}", local.fingerprint).parse().unwrap());
    api.start_dtls(true).unwrap();
    let ssrc = 1000 + index as u32;
    api.declare_stream_tx(
        Ssrc::from(ssrc),
        None,
        Mid::from("audio"),
        Some(Rid::from("a")),
    );
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    rtc.add_remote_candidate(Candidate::host(BRIDGE.parse().unwrap(), "udp").unwrap());
    let creds = rtc.direct_api().local_ice_credentials();
    let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
    let remote = RemoteTransport {
        ufrag: creds.ufrag,
        pwd: creds.pass,
        fingerprint_hash: "sha-256".into(),
        fingerprint: fp.split_once(' ').unwrap().1.into(),
        setup: Setup::Active,
        candidates: vec![addr],
    };
    let sources = Sources {
        audio: vec![ssrc],
        ..Default::default()
    };
    router
        .update_endpoint(now, room, &name, Some(&remote), Some(&sources))
        .unwrap();
    Peer {
        rtc,
        addr,
        ssrc,
        seq: 0,
        connected: false,
        received: 0,
    }
}

/// Moves datagrams between the router and the peers until nothing is in flight.
fn shuttle(
    router: &mut Router,
    peers: &mut [Peer],
    by_addr: &HashMap<SocketAddr, usize>,
    now: Instant,
) {
    let bridge: SocketAddr = BRIDGE.parse().unwrap();
    loop {
        let mut moved = false;
        for p in peers.iter_mut() {
            let _ = p.rtc.handle_input(Input::Timeout(now));
            while let Ok(out) = p.rtc.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        router.handle_datagram(now, p.addr, &t.contents);
                        moved = true;
                    }
                    Output::Event(Event::Connected) => p.connected = true,
                    Output::Event(Event::RtpPacket(_)) => p.received += 1,
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
        }
        router.handle_timeout(now);
        while let Some(d) = router.poll_transmit() {
            if let Some(&i) = by_addr.get(&d.destination) {
                let p = &mut peers[i];
                let r = Receive::new(Protocol::Udp, bridge, p.addr, &d.contents).unwrap();
                let _ = p.rtc.handle_input(Input::Receive(now, r));
                while let Ok(out) = p.rtc.poll_output() {
                    match out {
                        Output::Event(Event::RtpPacket(_)) => p.received += 1,
                        Output::Event(Event::Connected) => p.connected = true,
                        Output::Transmit(t) => router.handle_datagram(now, p.addr, &t.contents),
                        Output::Timeout(_) => break,
                        Output::Event(_) => {}
                    }
                }
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
}

struct Result {
    router_ns_per_packet: f64,
    allocations_per_packet: f64,
}

/// `rooms` rooms of `size`, the first `senders` of each sending `rounds` packets.
/// A router with `rooms` rooms of `size` connected peers, and the time reached.
fn connected(
    rooms: usize,
    size: usize,
) -> (Router, Vec<Peer>, HashMap<SocketAddr, usize>, Instant) {
    let start = Instant::now();
    let mut router = Router::new(Certificate::generate().unwrap(), BRIDGE.parse().unwrap());
    let mut peers = Vec::new();
    let mut by_addr = HashMap::new();
    for r in 0..rooms {
        for i in 0..size {
            let addr: SocketAddr = format!("10.0.{}.{}:{}", r / 200, 1 + r % 200, 20000 + i)
                .parse()
                .unwrap();
            by_addr.insert(addr, peers.len());
            peers.push(peer(start, &mut router, &format!("room{r}"), i, addr));
        }
    }
    let mut now = start;
    for _ in 0..200 {
        now += Duration::from_millis(10);
        shuttle(&mut router, &mut peers, &by_addr, now);
        if peers.iter().all(|p| p.connected) {
            break;
        }
    }
    assert!(peers.iter().all(|p| p.connected), "all peers connect");
    (router, peers, by_addr, now)
}

/// What a worker spends on timers alone for `rooms` quiet 1:1 rooms: the
/// share of a core over one simulated second, its loop checking every 1 ms.
fn timer_upkeep(rooms: usize) -> f64 {
    let (mut router, _peers, _, mut now) = connected(rooms, 2);
    let mut busy = Duration::ZERO;
    for _ in 0..1000 {
        now += Duration::from_millis(1);
        let t0 = Instant::now();
        if router.poll_timeout(now) <= now {
            router.handle_timeout(now);
        }
        while router.poll_transmit().is_some() {}
        busy += t0.elapsed();
    }
    busy.as_secs_f64()
}

fn scenario(rooms: usize, size: usize, senders: usize, rounds: usize, payload: usize) -> Result {
    let (mut router, mut peers, by_addr, mut now) = connected(rooms, size);
    let bridge: SocketAddr = BRIDGE.parse().unwrap();
    let data = vec![0x5Au8; payload];
    let before = router.stats().packets_forwarded;
    let mut busy = Duration::ZERO;
    let mut allocations = 0;
    let mut wire = Vec::new();
    let mut out = Vec::with_capacity(256);
    for round in 0..rounds {
        now += Duration::from_millis(20);
        // Senders produce their packets (not timed).
        wire.clear();
        for (i, p) in peers.iter_mut().enumerate() {
            if i % size >= senders {
                continue;
            }
            p.seq += 1;
            let w = RtpWrite::new(
                Pt::from(111),
                SeqNo::from(p.seq),
                round as u32 * 960,
                now,
                data.clone(),
            );
            p.rtc
                .direct_api()
                .stream_tx(&Ssrc::from(p.ssrc))
                .unwrap()
                .write_rtp(w);
            let _ = p.rtc.handle_input(Input::Timeout(now));
            while let Ok(out) = p.rtc.poll_output() {
                match out {
                    Output::Transmit(t) => wire.push((p.addr, t.contents.to_vec())),
                    Output::Timeout(_) => break,
                    _ => {}
                }
            }
        }
        // The bridge's work, as a worker does it: a burst of datagrams in,
        // then what they caused out.
        let t0 = Instant::now();
        let counted = allocation_counter::measure(|| {
            for burst in wire.chunks(BURST) {
                for (src, d) in burst {
                    router.handle_datagram(now, *src, d);
                }
                while let Some(d) = router.poll_transmit() {
                    out.push(d);
                }
            }
        });
        busy += t0.elapsed();
        allocations += counted.count_total;
        // Receivers take theirs (not timed), which keeps feedback flowing.
        for d in out.drain(..) {
            if let Some(&i) = by_addr.get(&d.destination) {
                let p = &mut peers[i];
                let r = Receive::new(Protocol::Udp, bridge, p.addr, &d.contents).unwrap();
                let _ = p.rtc.handle_input(Input::Receive(now, r));
                while let Ok(out) = p.rtc.poll_output() {
                    match out {
                        Output::Event(Event::RtpPacket(_)) => p.received += 1,
                        Output::Timeout(_) => break,
                        _ => {}
                    }
                }
            }
        }
    }
    let forwarded = router.stats().packets_forwarded - before;
    assert!(forwarded > 0, "packets were forwarded");
    Result {
        router_ns_per_packet: busy.as_nanos() as f64 / forwarded as f64,
        allocations_per_packet: allocations as f64 / forwarded as f64,
    }
}

/// str0m alone between two peers, per packet.
struct Floor {
    ingress_ns: f64,
    egress_ns: f64,
    ingress_allocations: f64,
    egress_allocations: f64,
}

/// str0m alone between two peers: the cost of taking a packet in and of sending one out.
fn floor(rounds: usize, payload: usize) -> Floor {
    let now = Instant::now();
    let (mut a, mut b) = (rtc(now), rtc(now));
    let (aa, ba): (SocketAddr, SocketAddr) = (
        "10.1.0.1:1000".parse().unwrap(),
        "10.1.0.2:1000".parse().unwrap(),
    );
    a.add_local_candidate(Candidate::host(aa, "udp").unwrap());
    b.add_local_candidate(Candidate::host(ba, "udp").unwrap());
    a.add_remote_candidate(Candidate::host(ba, "udp").unwrap());
    b.add_remote_candidate(Candidate::host(aa, "udp").unwrap());
    let (fa, fb) = (
        a.direct_api().local_dtls_fingerprint().clone(),
        b.direct_api().local_dtls_fingerprint().clone(),
    );
    a.direct_api().set_remote_fingerprint(fb);
    b.direct_api().set_remote_fingerprint(fa);
    let (ca, cb) = (
        a.direct_api().local_ice_credentials(),
        b.direct_api().local_ice_credentials(),
    );
    a.direct_api().set_remote_ice_credentials(cb);
    b.direct_api().set_remote_ice_credentials(ca);
    a.direct_api().set_ice_controlling(true);
    b.direct_api().set_ice_controlling(false);
    a.direct_api().start_dtls(false).unwrap();
    b.direct_api().start_dtls(true).unwrap();
    for rtc in [&mut a, &mut b] {
        rtc.direct_api()
            .declare_media(Mid::from("audio"), MediaKind::Audio);
    }
    a.direct_api().declare_stream_tx(
        Ssrc::from(7),
        None,
        Mid::from("audio"),
        Some(Rid::from("a")),
    );
    b.direct_api()
        .expect_stream_rx(Ssrc::from(7), None, Mid::from("audio"), None);
    let mut t = now;
    for _ in 0..500 {
        t += Duration::from_millis(10);
        exchange(&mut a, &mut b, aa, ba, t);
        exchange(&mut b, &mut a, ba, aa, t);
        if a.is_connected() && b.is_connected() {
            break;
        }
    }
    assert!(
        a.is_connected() && b.is_connected(),
        "the floor pair connects"
    );
    // One payload shared by every packet, as the router shares a received one.
    let data: Arc<[u8]> = vec![0x5Au8; payload].into();
    let (mut egress, mut ingress) = (Duration::ZERO, Duration::ZERO);
    let (mut out_allocations, mut in_allocations) = (0, 0);
    // What `a` sent, in one reused buffer: the bench itself allocates nothing per round.
    let (mut sent, mut ends) = (Vec::with_capacity(4096), Vec::with_capacity(16));
    for i in 0..rounds {
        t += Duration::from_millis(20);
        sent.clear();
        ends.clear();
        let t0 = Instant::now();
        out_allocations += allocation_counter::measure(|| {
            a.direct_api()
                .stream_tx(&Ssrc::from(7))
                .unwrap()
                .write_rtp(RtpWrite::new(
                    Pt::from(111),
                    SeqNo::from(i as u64 + 1),
                    i as u32 * 960,
                    t,
                    data.clone(),
                ));
            let _ = a.handle_input(Input::Timeout(t));
            while let Ok(out) = a.poll_output() {
                match out {
                    Output::Transmit(x) => {
                        sent.extend_from_slice(&x.contents);
                        ends.push(sent.len());
                    }
                    Output::Timeout(_) => break,
                    _ => {}
                }
            }
        })
        .count_total;
        egress += t0.elapsed();
        let t1 = Instant::now();
        in_allocations += allocation_counter::measure(|| {
            let mut start = 0;
            for &end in &ends {
                let r = Receive::new(Protocol::Udp, aa, ba, &sent[start..end]).unwrap();
                start = end;
                let _ = b.handle_input(Input::Receive(t, r));
                while let Ok(out) = b.poll_output() {
                    if let Output::Timeout(_) = out {
                        break;
                    }
                }
            }
        })
        .count_total;
        ingress += t1.elapsed();
    }
    let per_round = |x: u64| x as f64 / rounds as f64;
    Floor {
        ingress_ns: ingress.as_nanos() as f64 / rounds as f64,
        egress_ns: egress.as_nanos() as f64 / rounds as f64,
        ingress_allocations: per_round(in_allocations),
        egress_allocations: per_round(out_allocations),
    }
}

/// One direction of datagrams.
fn exchange(from: &mut Rtc, to: &mut Rtc, src: SocketAddr, dst: SocketAddr, t: Instant) {
    let _ = from.handle_input(Input::Timeout(t));
    while let Ok(out) = from.poll_output() {
        match out {
            Output::Transmit(x) => {
                let r = Receive::new(Protocol::Udp, src, dst, &x.contents).unwrap();
                let _ = to.handle_input(Input::Receive(t, r));
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
}

/// What creating an endpoint costs the worker that owns its conference (its
/// media waits meanwhile): µs per `create_endpoint`, median of `count`.
fn endpoint_setup(count: usize) -> f64 {
    let now = Instant::now();
    let mut router = Router::new(Certificate::generate().unwrap(), BRIDGE.parse().unwrap());
    let times = (0..count)
        .map(|i| {
            let t0 = Instant::now();
            router
                .create_endpoint(now, &format!("room{}", i / 2), &format!("p{i}"))
                .unwrap();
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(times)
}

/// Median of `runs` measurements: this machine's neighbours make single runs noisy.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    const RUNS: usize = 5;
    let payload = 160;
    let scenarios = [
        ("50 1:1 rooms", 50, 2, 2),
        ("one 20-person room, 10 senders", 1, 20, 10),
    ];
    // Floor and scenarios alternate within each run, so that drift in this
    // machine's speed hits both sides of each ratio alike.
    let mut floors = Vec::new();
    // Each run's result with its ratio to that run's floor.
    let mut results: Vec<Vec<(Result, f64)>> = scenarios.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        let f = floor(20_000, payload);
        for (i, (_, rooms, size, senders)) in scenarios.iter().enumerate() {
            let r = scenario(*rooms, *size, *senders, 400, payload);
            let floor_pp = f.ingress_ns / (size - 1) as f64 + f.egress_ns;
            let ratio = r.router_ns_per_packet / floor_pp;
            results[i].push((r, ratio));
        }
        floors.push(f);
    }
    println!(
        "floor (str0m alone, {payload} B payload, median of {RUNS}): ingress {:.0} ns, egress {:.0} ns per packet; \
         {:.1} and {:.1} heap allocations",
        median(floors.iter().map(|f| f.ingress_ns).collect()),
        median(floors.iter().map(|f| f.egress_ns).collect()),
        median(floors.iter().map(|f| f.ingress_allocations).collect()),
        median(floors.iter().map(|f| f.egress_allocations).collect()),
    );
    println!(
        "endpoint setup: {:.0} µs per create_endpoint (median of 200)",
        endpoint_setup(200)
    );
    for rooms in [50, 500] {
        println!(
            "timers of {rooms} quiet 1:1 rooms: {:.1} % of a core",
            100.0 * timer_upkeep(rooms)
        );
    }
    for ((name, ..), runs) in scenarios.iter().zip(results) {
        let ns = median(runs.iter().map(|(r, _)| r.router_ns_per_packet).collect());
        let ratio = median(runs.iter().map(|(_, ratio)| *ratio).collect());
        let allocations = median(runs.iter().map(|(r, _)| r.allocations_per_packet).collect());
        println!(
            "{name}: {ns:.0} ns per forwarded packet ({:.0} packets/s per core), {ratio:.2}x the floor; \
             {allocations:.1} heap allocations",
            1e9 / ns
        );
    }
}
