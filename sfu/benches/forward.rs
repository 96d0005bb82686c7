//! Forwarding cost of the bridge: per forwarded packet, the router's time
//! (in memory) and its batched sends (real system calls to a loopback socket
//! per peer), for many 1:1 rooms and for one 20-person room. Next to it, the
//! floor measured in the same run, as the design defines it: SRTP protect,
//! the packet's share of one unprotect (its sender's packet is unprotected
//! once for all receivers) and a batched send of the forwarded packets alone.
//! Also str0m alone between two peers (taking a packet in, sending one out, no
//! system calls), the stack the router is built on. Heap allocations in the
//! timed parts are counted too (this thread's only). And what a join costs
//! the worker: creating the endpoint, then its ICE checks and DTLS handshake.
//!
//! `cargo bench -p sfu --bench forward` (`-- 1:1` runs only the scenarios
//! whose name contains `1:1`, for profiling one).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfu::api::{RemoteTransport, Setup, Sources};
use sfu::cert::Certificate;
use sfu::router::Router;
use sfu::srtp::{Inbound, Outbound, Profile};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc, RtcConfig};
use udp_batch::BatchSender;

const BRIDGE: &str = "10.9.9.9:10000";
/// Rounds before measuring: a second of media, every stream made.
const WARMUP: usize = 50;
/// Datagrams a worker handles before sending what they caused (its socket
/// reads take up to 32; the generator's 1:1 load gives it about 5 per wake).
const BURST: usize = 16;

struct Peer {
    rtc: Rtc,
    /// Where the bridge's datagrams for this peer are really sent (and dropped).
    sink: UdpSocket,
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

fn peer(now: Instant, router: &mut Router, room: &str, index: usize) -> Peer {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_nonblocking(true).unwrap();
    let addr = sink.local_addr().unwrap();
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
        sink,
        addr,
        ssrc,
        seq: 0,
        connected: false,
        received: 0,
    }
}

/// Moves datagrams between the router and the peers until nothing is in
/// flight; returns the time spent in the router.
fn shuttle(
    router: &mut Router,
    peers: &mut [Peer],
    by_addr: &HashMap<SocketAddr, usize>,
    now: Instant,
) -> Duration {
    let bridge: SocketAddr = BRIDGE.parse().unwrap();
    let mut in_router = Duration::ZERO;
    let mut timed = |f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        f();
        in_router += t0.elapsed();
    };
    loop {
        let mut moved = false;
        for p in peers.iter_mut() {
            let _ = p.rtc.handle_input(Input::Timeout(now));
            while let Ok(out) = p.rtc.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        timed(&mut || router.handle_datagram(now, p.addr, &t.contents));
                        moved = true;
                    }
                    Output::Event(Event::Connected) => p.connected = true,
                    Output::Event(Event::RtpPacket(_)) => p.received += 1,
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
        }
        timed(&mut || router.handle_timeout(now));
        let mut out = Vec::new();
        timed(&mut || {
            while let Some((to, d)) = router.poll_transmit() {
                out.push((to, d.to_vec()));
            }
        });
        for (to, d) in out {
            if let Some(&i) = by_addr.get(&to) {
                let p = &mut peers[i];
                let r = Receive::new(Protocol::Udp, bridge, p.addr, &d).unwrap();
                let _ = p.rtc.handle_input(Input::Receive(now, r));
                while let Ok(out) = p.rtc.poll_output() {
                    match out {
                        Output::Event(Event::RtpPacket(_)) => p.received += 1,
                        Output::Event(Event::Connected) => p.connected = true,
                        Output::Transmit(t) => {
                            timed(&mut || router.handle_datagram(now, p.addr, &t.contents))
                        }
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
    in_router
}

/// Per forwarded packet, in nanoseconds unless named otherwise.
struct Result {
    router_ns: f64,
    /// The bridge's batched sends of everything the router gave it.
    send_ns: f64,
    /// The same sender sending the forwarded packets alone: the floor's send.
    floor_send_ns: f64,
    allocations: f64,
}

/// A router with `rooms` rooms of `size` connected peers.
struct Connected {
    router: Router,
    peers: Vec<Peer>,
    by_addr: HashMap<SocketAddr, usize>,
    /// The simulated time reached.
    now: Instant,
    /// The router's time spent until they were connected (ICE, DTLS).
    joining: Duration,
}

fn connected(rooms: usize, size: usize) -> Connected {
    let start = Instant::now();
    let mut router = Router::new(Certificate::generate().unwrap(), BRIDGE.parse().unwrap());
    // The hold waits for browsers to apply a source-add; the peers here take
    // every packet at once, and held packets would be timed but not forwarded.
    router.set_audio_hold(Duration::ZERO);
    let mut peers = Vec::new();
    let mut by_addr = HashMap::new();
    for r in 0..rooms {
        for i in 0..size {
            let peer = peer(start, &mut router, &format!("room{r}"), i);
            by_addr.insert(peer.addr, peers.len());
            peers.push(peer);
        }
    }
    let mut now = start;
    let mut joining = Duration::ZERO;
    for _ in 0..200 {
        now += Duration::from_millis(10);
        joining += shuttle(&mut router, &mut peers, &by_addr, now);
        if peers.iter().all(|p| p.connected) {
            break;
        }
    }
    assert!(peers.iter().all(|p| p.connected), "all peers connect");
    Connected {
        router,
        peers,
        by_addr,
        now,
        joining,
    }
}

/// What a worker spends on timers alone for `rooms` quiet 1:1 rooms: the
/// share of a core over one simulated second, its loop checking every 1 ms.
fn timer_upkeep(rooms: usize) -> f64 {
    let Connected {
        mut router,
        mut now,
        ..
    } = connected(rooms, 2);
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

/// `rooms` rooms of `size`, the first `senders` of each sending `rounds`
/// measured packets, after [`WARMUP`] rounds that make every stream (its
/// first packet costs allocations once: a per-stream cost, not a per-packet one).
fn scenario(rooms: usize, size: usize, senders: usize, rounds: usize, payload: usize) -> Result {
    let Connected {
        mut router,
        mut peers,
        by_addr,
        mut now,
        ..
    } = connected(rooms, size);
    let bridge: SocketAddr = BRIDGE.parse().unwrap();
    let socket = || UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut sender, mut floor_sender) = (
        BatchSender::new(socket()).unwrap(),
        BatchSender::new(socket()).unwrap(),
    );
    let data = vec![0x5Au8; payload];
    let mut before = router.stats().packets_forwarded;
    let (mut routing, mut sending, mut floor_sending) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut allocations = 0;
    let mut wire = Vec::new();
    // What the bridge sent, back to back, and each datagram's place.
    let mut out_bytes: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut out: Vec<(SocketAddr, std::ops::Range<usize>)> = Vec::with_capacity(4096);
    // Where each burst's output ends in `out`.
    let mut ends = Vec::with_capacity(64);
    let mut sunk = [0u8; 2048];
    for round in 0..WARMUP + rounds {
        if round == WARMUP {
            before = router.stats().packets_forwarded;
            (routing, sending, floor_sending) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            allocations = 0;
        }
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
        // what they caused out, then one batched send.
        ends.clear();
        allocations += allocation_counter::measure(|| {
            for burst in wire.chunks(BURST) {
                let t0 = Instant::now();
                for (src, d) in burst {
                    router.handle_datagram(now, *src, d);
                }
                let first = out.len();
                while let Some((to, d)) = router.poll_transmit() {
                    let start = out_bytes.len();
                    out_bytes.extend_from_slice(d);
                    out.push((to, start..out_bytes.len()));
                }
                let t1 = Instant::now();
                for (to, range) in &out[first..] {
                    sender.push(&out_bytes[range.clone()], *to);
                }
                sender.flush();
                routing += t1 - t0;
                sending += t1.elapsed();
                ends.push(out.len());
            }
        })
        .count_total;
        // The floor's send: the forwarded packets alone, in the same bursts.
        let t0 = Instant::now();
        let mut start = 0;
        for &end in &ends {
            for (to, range) in &out[start..end] {
                let d = &out_bytes[range.clone()];
                if is_rtp(d) {
                    floor_sender.push(d, *to);
                }
            }
            floor_sender.flush();
            start = end;
        }
        floor_sending += t0.elapsed();
        // Receivers take theirs (not timed), which keeps feedback flowing.
        for (to, range) in out.drain(..) {
            if let Some(&i) = by_addr.get(&to) {
                let p = &mut peers[i];
                while p.sink.recv(&mut sunk).is_ok() {}
                let r = Receive::new(Protocol::Udp, bridge, p.addr, &out_bytes[range]).unwrap();
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
        out_bytes.clear();
    }
    let forwarded = (router.stats().packets_forwarded - before) as f64;
    assert!(forwarded > 0.0, "packets were forwarded");
    Result {
        router_ns: routing.as_nanos() as f64 / forwarded,
        send_ns: sending.as_nanos() as f64 / forwarded,
        floor_send_ns: floor_sending.as_nanos() as f64 / forwarded,
        allocations: allocations as f64 / forwarded,
    }
}

/// An RTP packet, not RTCP (RFC 5761 §4) or STUN.
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() > 12 && datagram[0] >> 6 == 2 && !(192..=223).contains(&datagram[1])
}

/// The parts of the floor measured without a router, per packet.
struct Floor {
    /// SRTP's AEAD alone.
    protect_ns: f64,
    unprotect_ns: f64,
    /// str0m alone between two peers.
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
    let (protect_ns, unprotect_ns) = srtp(rounds, payload, Profile::AeadAes256Gcm);
    Floor {
        protect_ns,
        unprotect_ns,
        ingress_ns: ingress.as_nanos() as f64 / rounds as f64,
        egress_ns: egress.as_nanos() as f64 / rounds as f64,
        ingress_allocations: per_round(in_allocations),
        egress_allocations: per_round(out_allocations),
    }
}

/// SRTP's share of forwarding with the bridge's own SRTP (`sfu::srtp`):
/// protecting an RTP packet (header parsed, index kept, payload encrypted and
/// tagged) and unprotecting one (index guessed, replay checked, tag checked,
/// decrypted), in ns per packet, with `profile`.
fn srtp(rounds: usize, payload: usize, profile: Profile) -> (f64, f64) {
    let (key, salt) = (vec![7u8; profile.key_len()], vec![9u8; profile.salt_len()]);
    let mut outbound = Outbound::new(profile, &key, &salt);
    let mut inbound = Inbound::new(profile, &key, &salt);
    // An RTP header with the audio level and transport-wide sequence extensions.
    let mut plain = vec![
        0x90u8, 111, 0, 1, 0, 0, 3, 192, 0, 0, 3, 232, 0xBE, 0xDE, 0, 2, 0x10, 0x7F, 0x51, 0, 1, 0,
        0, 0,
    ];
    plain.extend(std::iter::repeat_n(0x5Au8, payload));
    let len = plain.len();
    let stride = len + profile.rtp_overhead();
    // Each packet its own sequence number: the replay window refuses repeats.
    let mut sealed = vec![0u8; stride * rounds];
    let t0 = Instant::now();
    for (i, slot) in sealed.chunks_mut(stride).enumerate() {
        slot[..len].copy_from_slice(&plain);
        slot[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        outbound.protect_rtp(slot, len).unwrap();
    }
    let protect = t0.elapsed();
    let t1 = Instant::now();
    for slot in sealed.chunks_mut(stride) {
        inbound.unprotect_rtp(slot).unwrap();
    }
    let unprotect = t1.elapsed();
    let per = |d: Duration| d.as_nanos() as f64 / rounds as f64;
    (per(protect), per(unprotect))
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
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let scenarios: Vec<_> = [
        ("50 1:1 rooms", 50, 2, 2),
        ("one 20-person room, 10 senders", 1, 20, 10),
    ]
    .into_iter()
    .filter(|(name, ..)| filter.as_ref().is_none_or(|f| name.contains(f.as_str())))
    .collect();
    // Floor and scenarios alternate within each run, so that drift in this
    // machine's speed hits both sides of each ratio alike.
    let mut floors = Vec::new();
    let mut results: Vec<Vec<Run>> = scenarios.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        let f = floor(20_000, payload);
        for (i, (_, rooms, size, senders)) in scenarios.iter().enumerate() {
            let r = scenario(*rooms, *size, *senders, 400, payload);
            // One received packet is unprotected once for its `size - 1` receivers.
            let share = (size - 1) as f64;
            let floor = f.protect_ns + f.unprotect_ns / share + r.floor_send_ns;
            let str0m = f.egress_ns + f.ingress_ns / share;
            results[i].push(Run {
                total: r.router_ns + r.send_ns,
                ratio: (r.router_ns + r.send_ns) / floor,
                floor,
                str0m_ratio: r.router_ns / str0m,
                result: r,
            });
        }
        floors.push(f);
    }
    let med = |xs: &[Floor], f: fn(&Floor) -> f64| median(xs.iter().map(f).collect());
    println!(
        "floor parts ({payload} B payload, median of {RUNS}): SRTP (sfu::srtp, AES-256-GCM) protect {:.0} ns, \
         unprotect {:.0} ns; str0m alone, no system calls: in {:.0} ns, out {:.0} ns per packet, \
         {:.1} and {:.1} heap allocations",
        med(&floors, |f| f.protect_ns),
        med(&floors, |f| f.unprotect_ns),
        med(&floors, |f| f.ingress_ns),
        med(&floors, |f| f.egress_ns),
        med(&floors, |f| f.ingress_allocations),
        med(&floors, |f| f.egress_allocations),
    );
    if filter.is_none() {
        for profile in [Profile::AeadAes128Gcm, Profile::Aes128CmSha1_80] {
            let (p, u) = srtp(20_000, payload, profile);
            println!("SRTP {profile:?}: protect {p:.0} ns, unprotect {u:.0} ns");
        }
        println!(
            "endpoint setup: {:.0} µs per create_endpoint (median of 200)",
            endpoint_setup(200)
        );
        let joins: Vec<f64> = (0..RUNS)
            .map(|_| connected(50, 2).joining.as_secs_f64() * 1e6 / 100.0)
            .collect();
        println!(
            "joining: {:.0} µs of the router's time per endpoint until its peer is connected \
             (ICE checks, the DTLS handshake), median of {RUNS} runs of 100",
            median(joins)
        );
        for rooms in [50, 500] {
            println!(
                "timers of {rooms} quiet 1:1 rooms: {:.1} % of a core",
                100.0 * timer_upkeep(rooms)
            );
        }
    }
    for ((name, ..), runs) in scenarios.iter().zip(results) {
        let med = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let total = med(|r| r.total);
        println!(
            "{name}: {total:.0} ns per forwarded packet, router {:.0} + batched send {:.0} \
             ({:.0} packets/s per core; router alone {:.0}); {:.2}x the floor of {:.0} ns \
             (its batched send {:.0}); router {:.2}x str0m alone; {:.2} heap allocations",
            med(|r| r.result.router_ns),
            med(|r| r.result.send_ns),
            1e9 / total,
            1e9 / med(|r| r.result.router_ns),
            med(|r| r.ratio),
            med(|r| r.floor),
            med(|r| r.result.floor_send_ns),
            med(|r| r.str0m_ratio),
            med(|r| r.result.allocations),
        );
    }
}

/// One run of a scenario with what it is compared against.
struct Run {
    result: Result,
    /// Router and sends, ns per forwarded packet.
    total: f64,
    /// The floor of that run, ns per forwarded packet, and `total` over it.
    floor: f64,
    ratio: f64,
    /// The router's time over str0m alone taking the packet in and out.
    str0m_ratio: f64,
}
