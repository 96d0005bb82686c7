//! One simulated participant from connect to leave: the async shell around
//! [`Signal`] and [`Peer`]. Every stage has a deadline, and a participant
//! that stops reports the stage it was in instead of hanging.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use minidom::Element;
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::protocol::Message;
use udp_batch::BatchSender;

use super::jingle::{self, Accept, LocalTransport, Offer};
use super::loss::Loss;
use super::peer::{Peer, PeerCounters};
use super::runner::{Live, Plan};
use super::signal::{self, Signal};
use crate::stats::Latencies;

/// How far along a participant got, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Connect,
    ConferenceRequest,
    MucJoin,
    SessionInitiate,
    Ice,
    Dtls,
    Media,
    /// Everything expected has happened; media flows.
    Running,
}

/// Who this participant is in the scenario.
#[derive(Clone, Debug)]
pub struct Spec {
    pub index: usize,
    /// Bare room JID.
    pub room: String,
    pub sending: bool,
    /// Whether someone else in the room sends, so media must arrive.
    pub expect_media: bool,
}

/// What one participant saw.
pub struct Outcome {
    pub spec: Spec,
    pub endpoint: String,
    pub reached: Stage,
    pub error: Option<String>,
    pub join: Option<Duration>,
    pub first_media: Option<Duration>,
    pub received_from: BTreeMap<String, u64>,
    pub packets_in: u64,
    pub lost: u64,
    pub lost_video: u64,
    pub latency: Latencies,
    pub counters: PeerCounters,
    pub bridge_channel: bool,
}

/// Runs a participant until the scenario says stop or something fails.
pub async fn run(plan: Arc<Plan>, spec: Spec, live: Arc<Live>) -> Outcome {
    let mut out = Outcome {
        spec,
        endpoint: String::new(),
        reached: Stage::Connect,
        error: None,
        join: None,
        first_media: None,
        received_from: BTreeMap::new(),
        packets_in: 0,
        lost: 0,
        lost_video: 0,
        latency: Latencies::default(),
        counters: PeerCounters::default(),
        bridge_channel: false,
    };
    if let Err(e) = drive(&plan, &live, &mut out).await {
        out.error = Some(format!("{e:#}"));
        live.failed.fetch_add(1, Ordering::Relaxed);
    }
    out
}

async fn stage<T>(
    plan: &Plan,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(plan.stage_timeout, f)
        .await
        .map_err(|_| anyhow!("timed out after {:?}", plan.stage_timeout))?
}

async fn drive(plan: &Plan, live: &Live, out: &mut Outcome) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let room = out.spec.room.clone();
    let mut sig = stage(
        plan,
        Signal::login(
            plan.transport,
            &plan.xmpp_url,
            &plan.domain,
            room,
            plan.tls.clone(),
        ),
    )
    .await?;
    out.endpoint = sig.endpoint.clone();
    out.reached = Stage::ConferenceRequest;
    stage(plan, sig.conference_request(&plan.focus)).await?;
    out.reached = Stage::MucJoin;
    let nick = format!("bench-{}", out.spec.index);
    let early = stage(plan, sig.join_muc(&nick, out.spec.sending)).await?;
    out.reached = Stage::SessionInitiate;
    let (iq, offer) = stage(plan, wait_initiate(&mut sig, early)).await?;
    // The ack goes first; the real answer is the session-accept (§3.1).
    sig.send(&signal::result(&iq)).await?;

    let (socket, local) = bind_udp(&offer).await?;
    let loss = Loss::new(plan.loss, out.spec.index as u64 + 1);
    let mut peer = Peer::new(Instant::now(), &offer, local, loss)?;
    for s in offer.sources.iter().filter(|s| s.owner != sig.endpoint) {
        peer.expect(s);
    }
    let sources = out.spec.sending.then(|| peer.new_sources());
    let (creds, hash, fingerprint) = peer.local_transport();
    let focus = iq.attr("from").unwrap_or_default().to_owned();
    let id = sig.id("accept");
    let accept = jingle::build_accept(&Accept {
        id: &id,
        to: &focus,
        sid: &offer.sid,
        responder: &sig.jid,
        endpoint: &sig.endpoint,
        transport: LocalTransport {
            ufrag: &creds.ufrag,
            pwd: &creds.pass,
            fingerprint_hash: &hash,
            fingerprint: &fingerprint,
            candidate: local,
        },
        sources: sources.as_ref(),
    });
    sig.send(&accept).await?;
    out.join = Some(t0.elapsed());
    live.joined.fetch_add(1, Ordering::Relaxed);
    if let Some(s) = sources {
        peer.start_sending(Instant::now(), s, out.spec.index as u32 + 1);
    }
    out.reached = Stage::Ice;
    let channel = match &offer.websocket {
        Some(url) => open_channel(plan, url).await.ok(),
        None => None,
    };
    out.bridge_channel = channel.is_some();
    let result = media_loop(plan, live, out, t0, &mut sig, &socket, &mut peer, channel).await;
    out.received_from = peer.meter.by_owner();
    out.packets_in = peer.meter.packets;
    out.lost = peer.meter.lost();
    out.lost_video = peer.meter.lost_video();
    out.latency = std::mem::take(&mut peer.meter.latency);
    out.counters = peer.counters;
    sig.leave().await;
    result
}

/// Waits for the focus's offer, answering other Jingle meanwhile.
async fn wait_initiate(sig: &mut Signal, early: Vec<Element>) -> anyhow::Result<(Element, Offer)> {
    let mut early = early.into_iter();
    loop {
        let st = match early.next() {
            Some(st) => st,
            None => sig.next_stanza().await?,
        };
        let Some(j) = jingle::jingle_of(&st).filter(|_| st.attr("type") == Some("set")) else {
            if st.name() == "iq" && st.attr("type") == Some("set") {
                sig.send(&signal::result(&st)).await?;
            }
            continue;
        };
        if j.attr("action") == Some("session-initiate") {
            let offer = jingle::parse_offer(j)?;
            return Ok((st, offer));
        }
        sig.send(&signal::result(&st)).await?;
    }
}

/// A UDP socket on the address that routes to the bridge: the first of its
/// candidates this host has a route to (a stock bridge may list IPv6 or
/// private addresses first).
async fn bind_udp(offer: &Offer) -> anyhow::Result<(UdpSocket, SocketAddr)> {
    anyhow::ensure!(!offer.candidates.is_empty(), "offer has no UDP candidate");
    let mut last = None;
    for &bridge in &offer.candidates {
        match route_to(bridge) {
            Ok(ip) => {
                let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
                let local = socket.local_addr()?;
                return Ok((socket, local));
            }
            Err(e) => last = Some(anyhow!("no route to the bridge's candidate {bridge}: {e}")),
        }
    }
    Err(last.expect("at least one candidate was tried"))
}

/// The local address the kernel would send from to reach `to`.
fn route_to(to: SocketAddr) -> std::io::Result<std::net::IpAddr> {
    let unspecified: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // connect() on a throwaway socket asks for the route; nothing is sent.
    let probe = StdUdpSocket::bind(unspecified)?;
    probe.connect(to)?;
    Ok(probe.local_addr()?.ip())
}

type Channel =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The bridge channel, with the constraints a client sends on open (§5.2).
async fn open_channel(plan: &Plan, url: &str) -> anyhow::Result<Channel> {
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        url,
        Some(crate::websocket::small_buffers()),
        true,
        Some(tokio_tungstenite::Connector::Rustls(plan.tls.clone())),
    );
    let (mut ws, _) = tokio::time::timeout(plan.stage_timeout, connect).await??;
    let constraints = serde_json::json!({
        "colibriClass": "ReceiverVideoConstraints",
        "lastN": -1,
        "defaultConstraints": { "maxHeight": plan.max_height },
        "constraints": {},
    });
    ws.send(Message::text(constraints.to_string())).await?;
    Ok(ws)
}

/// How often a participant adds its counts to the shared totals.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Each participant's timers (audio packets, video frames, str0m's RTCP and
/// feedback) fire on a grid, so those falling into one slot cost one
/// wake-up. Latency is unaffected: packets carry the time they were sent, and
/// packets str0m queued are released without waiting (see `Peer::drain`).
/// Grids of different participants are out of phase so the server sees no
/// synchronised bursts.
const TICK: Duration = Duration::from_millis(10);

/// `t` rounded up to the grid starting at `base`.
fn on_grid(t: Instant, base: Instant) -> Instant {
    let since = t.saturating_duration_since(base).as_nanos();
    let step = TICK.as_nanos();
    let slots = since.div_ceil(step);
    base + Duration::from_nanos((slots * step) as u64)
}

#[allow(clippy::too_many_arguments)]
async fn media_loop(
    plan: &Plan,
    live: &Live,
    out: &mut Outcome,
    t0: Instant,
    sig: &mut Signal,
    socket: &UdpSocket,
    peer: &mut Peer,
    mut channel: Option<Channel>,
) -> anyhow::Result<()> {
    let mut stop = live.stop.clone();
    let mut deadline = Instant::now() + plan.stage_timeout;
    let mut buf = vec![0u8; 2048];
    // A video frame's packets leave in one system call.
    let mut sender = BatchSender::new(socket)?;
    let mut flushed = [0u64; 6];
    let mut wakes = 0u64;
    let mut next_flush = Instant::now();
    // Spread over the slot by index: 3.7 ms apart, modulo the slot.
    let phase = (out.spec.index as u128 * 3_700_000) % TICK.as_nanos();
    let grid = t0 + Duration::from_nanos(phase as u64);
    loop {
        let now = Instant::now();
        advance(out, peer, now, t0, &mut deadline, plan.stage_timeout, live);
        if out.reached != Stage::Running && now > deadline {
            bail!("timed out after {:?}", plan.stage_timeout);
        }
        if peer.closed {
            bail!("the bridge closed the connection");
        }
        wakes += 1;
        if now >= next_flush {
            live.wakes
                .fetch_add(std::mem::take(&mut wakes), Ordering::Relaxed);
            flush(live, peer, &mut flushed);
            next_flush = now + FLUSH_EVERY;
        }
        let timers = peer
            .media_due()
            .map_or(peer.timeout(), |d| d.min(peer.timeout()));
        let due = on_grid(timers, grid).min(next_flush).max(now);
        let due = if out.reached == Stage::Running {
            due
        } else {
            due.min(deadline)
        };
        tokio::select! {
            _ = stop.changed() => break,
            r = socket.readable() => {
                r?;
                let now = Instant::now();
                // Everything queued, one wake.
                loop {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, from)) => {
                            peer.receive(now, from, &buf[..n], &mut |to, d| sender.push(d, to))
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                sender.flush();
            }
            _ = tokio::time::sleep_until(due.into()) => {
                peer.tick(Instant::now(), &mut |to, d| sender.push(d, to));
                sender.flush();
            }
            frame = sig.next_frame() => {
                let Some(frame) = frame else { bail!("XMPP connection closed") };
                if let Some(st) = sig.handle_frame(&frame).await? {
                    on_stanza(sig, peer, st).await?;
                }
            }
            msg = next_channel(&mut channel) => {
                // Bridge messages are read (pings answered) and dropped.
                if !matches!(msg, Some(Ok(_))) {
                    channel = None;
                }
            }
        }
    }
    flush(live, peer, &mut flushed);
    Ok(())
}

async fn next_channel(
    channel: &mut Option<Channel>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match channel {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Moves the participant's stage on from what the peer saw.
fn advance(
    out: &mut Outcome,
    peer: &mut Peer,
    now: Instant,
    t0: Instant,
    deadline: &mut Instant,
    step: Duration,
    live: &Live,
) {
    let before = out.reached;
    if out.reached == Stage::Ice && peer.ice_connected.is_some() {
        out.reached = Stage::Dtls;
    }
    if out.reached == Stage::Dtls && peer.dtls_connected.is_some() {
        out.reached = if out.spec.expect_media {
            Stage::Media
        } else {
            Stage::Running
        };
    }
    if out.reached == Stage::Media
        && let Some(first) = peer.meter.first_rtp
    {
        out.first_media = Some(first.duration_since(t0));
        out.reached = Stage::Running;
    }
    if out.reached != before {
        *deadline = now + step;
        if out.reached == Stage::Running {
            live.running.fetch_add(1, Ordering::Relaxed);
        }
    }
    peer.meter.sampling = live.measuring.load(Ordering::Relaxed);
}

/// Adds what changed since the last flush to the shared totals.
fn flush(live: &Live, peer: &mut Peer, flushed: &mut [u64; 6]) {
    let now = [
        peer.meter.packets,
        peer.meter.bytes,
        peer.counters.packets_out,
        peer.counters.bytes_out,
        peer.meter.latency_sum_us,
        peer.meter.latency_count,
    ];
    live.latency_max_us.fetch_max(
        std::mem::take(&mut peer.meter.latency_max_us),
        Ordering::Relaxed,
    );
    for (i, counter) in [
        &live.packets_in,
        &live.bytes_in,
        &live.packets_out,
        &live.bytes_out,
        &live.latency_sum_us,
        &live.latency_count,
    ]
    .into_iter()
    .enumerate()
    {
        counter.fetch_add(now[i] - flushed[i], Ordering::Relaxed);
    }
    *flushed = now;
}

/// Jingle after the answer: track the others' sources, ack everything.
async fn on_stanza(sig: &mut Signal, peer: &mut Peer, st: Element) -> anyhow::Result<()> {
    if st.name() != "iq" || st.attr("type") != Some("set") {
        return Ok(());
    }
    sig.send(&signal::result(&st)).await?;
    let Some(j) = jingle::jingle_of(&st) else {
        return Ok(());
    };
    let me = sig.endpoint.clone();
    match j.attr("action").unwrap_or_default() {
        "source-add" | "addsource" => {
            for s in jingle::parse_sources(j)?.iter().filter(|s| s.owner != me) {
                peer.expect(s);
            }
        }
        "source-remove" | "removesource" => {
            for s in jingle::parse_sources(j)? {
                peer.remove(&s);
            }
        }
        "session-terminate" => bail!("the focus ended the session"),
        "session-initiate" => bail!("re-invited by the focus (not supported)"),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(candidates: &[&str]) -> Offer {
        Offer {
            sid: "s".into(),
            ufrag: "u".into(),
            pwd: "p".into(),
            fingerprint_hash: "sha-256".into(),
            fingerprint: String::new(),
            candidates: candidates.iter().map(|c| c.parse().unwrap()).collect(),
            websocket: None,
            sources: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_socket_goes_where_a_candidate_is_reachable() {
        // Broadcast is no route for an ordinary socket: the next candidate is used.
        let (_, local) = bind_udp(&offer(&["255.255.255.255:10000", "127.0.0.1:10000"]))
            .await
            .unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        let e = bind_udp(&offer(&["255.255.255.255:10000"]))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no route"), "{e}");
        assert!(bind_udp(&offer(&[])).await.is_err());
    }
}
