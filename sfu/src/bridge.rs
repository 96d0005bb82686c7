//! The bridge: the shared media port, the media workers behind it, and the
//! handle the focus drives them through.
//!
//! Each conference lives on one worker thread ([`worker`]) that owns its
//! endpoints, reads the shared media port ([`port`]) and sends its own packets;
//! a datagram read by another worker is handed to it. New conferences go to
//! the worker with the fewest endpoints.
//!
//! ```no_run
//! use sfu::bridge::{Bridge, BridgeConfig};
//! let bridge = Bridge::start(BridgeConfig::default()).unwrap();
//! let offer_side = bridge.create_endpoint("conf-1", "ab12cd34").unwrap();
//! println!("ICE ufrag {} on {}", offer_side.ufrag, offer_side.candidates[0].address);
//! ```

mod port;
mod wait;
mod window;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use tokio::sync::OwnedSemaphorePermit;

use crate::api::{ApiError, BridgeLoad, Colibri, LocalTransport, RemoteTransport, Sources};
use crate::cert::Certificate;
use crate::latency::LatencyHistogram;
use crate::router::{Router, RouterStats};
use port::{INBOUND_CAP, Lane, Pool, Port, PortCounters};
use window::{Sample, Window};
pub use worker::ChannelTx;
use worker::{Command, Worker};

pub use window::Rates;

/// Where the media port listens, what address it advertises, how many workers.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Socket address of the media port (default 127.0.0.1:10000).
    pub bind: SocketAddr,
    /// Address put in candidates when it differs from the bound one (NAT, 0.0.0.0).
    pub advertise: Option<IpAddr>,
    /// This bridge's id in bridge-channel URLs (`/colibri-ws/<id>/…`).
    pub id: String,
    /// Media worker threads; 0 means one per core.
    pub workers: usize,
    /// Where this bridge runs, for region-aware bridge selection.
    pub region: Option<String>,
    /// Kernel buffer asked for each direction of the media socket: bursts of
    /// video frames from many senders land at once.
    pub socket_buffer: usize,
    /// How long a receiver waits for a new source's audio
    /// ([`Router::set_audio_hold`]).
    pub audio_hold: std::time::Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10000),
            advertise: None,
            id: "oxbridge".into(),
            workers: 0,
            region: None,
            socket_buffer: 8 << 20,
            audio_hold: crate::router::DEFAULT_AUDIO_HOLD,
        }
    }
}

/// Counters of the whole bridge, and each worker's share of the endpoints.
#[derive(Debug, Default, Clone)]
pub struct BridgeStats {
    /// Sums over the workers; `datagrams_in` and `unroutable` as the port saw them.
    pub totals: RouterStats,
    /// Datagrams dropped because a worker's queue was full.
    pub overload_drops: u64,
    /// Endpoints on each worker.
    pub worker_endpoints: Vec<usize>,
    /// From receive to the end of the resulting sends, every datagram since start.
    pub latency: LatencyHistogram,
    /// Each worker's time awake since it started.
    pub worker_busy: Vec<std::time::Duration>,
    /// Per second, over the last window of at least 5 s.
    pub rates: Rates,
}

/// Which worker hosts each conference.
#[derive(Default)]
struct Placement {
    conferences: HashMap<String, usize>,
    endpoints: Vec<usize>,
}

/// A running bridge.
pub struct Bridge {
    id: String,
    region: Option<String>,
    receive_buffer: usize,
    addr: SocketAddr,
    workers: Vec<Worker>,
    placement: Mutex<Placement>,
    port: Arc<Port>,
    draining: AtomicBool,
    shutting_down: AtomicBool,
    window: Window,
}

impl Bridge {
    /// Binds the media port and starts the workers (each joined when the bridge is dropped).
    pub fn start(config: BridgeConfig) -> io::Result<Bridge> {
        let cert = Certificate::generate().map_err(io::Error::other)?;
        let socket = UdpSocket::bind(config.bind)?;
        // Workers read it without waiting; they sleep in epoll instead.
        socket.set_nonblocking(true)?;
        let bound = socket.local_addr()?;
        // Best effort: the kernel caps it at net.core.rmem_max / wmem_max.
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(config.socket_buffer);
        let _ = sock.set_send_buffer_size(config.socket_buffer);
        let receive_buffer = sock.recv_buffer_size().unwrap_or(0);
        let addr = SocketAddr::new(config.advertise.unwrap_or(bound.ip()), bound.port());
        if addr.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unspecified bind address needs an address to advertise",
            ));
        }
        let count = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut lanes = Vec::with_capacity(count);
        let mut heard = Vec::with_capacity(count);
        for _ in 0..count {
            let (routes, hear) = mpsc::channel();
            lanes.push(Lane {
                inbound: crossbeam_queue::ArrayQueue::new(INBOUND_CAP),
                waker: wait::Waker::new()?,
                routes,
            });
            heard.push(hear);
        }
        let port = Arc::new(Port {
            socket,
            lanes,
            pool: Pool::new(),
            counters: PortCounters::default(),
        });
        let mut workers = Vec::with_capacity(count);
        for (index, routes) in heard.into_iter().enumerate() {
            let mut router = Router::new(cert.clone(), addr);
            router.set_audio_hold(config.audio_hold);
            workers.push(Worker::spawn(index, port.clone(), routes, router)?);
        }
        Ok(Bridge {
            id: config.id,
            region: config.region,
            receive_buffer,
            addr,
            placement: Mutex::new(Placement {
                conferences: HashMap::new(),
                endpoints: vec![0; workers.len()],
            }),
            window: Window::new(std::time::Instant::now(), workers.len()),
            workers,
            port,
            draining: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        })
    }

    /// The id in this bridge's channel URLs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the bridge runs, when configured.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The media socket's receive buffer as the kernel granted it (Linux
    /// reports twice what was set, for its bookkeeping).
    pub fn receive_buffer(&self) -> usize {
        self.receive_buffer
    }

    /// The advertised media address.
    pub fn media_addr(&self) -> SocketAddr {
        self.addr
    }

    fn placement(&self) -> MutexGuard<'_, Placement> {
        self.placement.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker hosting `conference`.
    fn worker(&self, conference: &str) -> Result<&Worker, ApiError> {
        let index = self
            .placement()
            .conferences
            .get(conference)
            .copied()
            .ok_or_else(|| ApiError::ConferenceNotFound(conference.to_owned()))?;
        Ok(&self.workers[index])
    }

    /// Colibri2 endpoint create; the conference is created with its first endpoint.
    pub fn create_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
    ) -> Result<LocalTransport, ApiError> {
        let mut placement = self.placement();
        let index = match placement.conferences.get(conference) {
            Some(i) => *i,
            None if self.is_shutting_down() => return Err(ApiError::Shutdown),
            None if self.is_draining() => return Err(ApiError::Draining),
            // A worker that stopped or is stuck gets no new conference.
            None => {
                let now = std::time::Instant::now();
                (0..self.workers.len())
                    .filter(|i| self.workers[*i].health(now).is_ok())
                    .min_by_key(|i| placement.endpoints[*i])
                    .unwrap_or(0)
            }
        };
        let local =
            self.workers[index].call(|r| Command::Create(conference.into(), endpoint.into(), r))?;
        placement.conferences.insert(conference.to_owned(), index);
        placement.endpoints[index] += 1;
        Ok(local)
    }

    /// Colibri2 endpoint update: the client's transport and/or its complete sources.
    pub fn update_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
        remote: Option<RemoteTransport>,
        sources: Option<Sources>,
    ) -> Result<(), ApiError> {
        self.worker(conference)?
            .call(|r| Command::Update(conference.into(), endpoint.into(), remote, sources, r))
    }

    /// Which layer of `source` (its first SSRC) `receiver` is sent; `None` for none.
    pub fn set_video_target(
        &self,
        conference: &str,
        receiver: &str,
        source: u32,
        layer: Option<u8>,
    ) -> Result<(), ApiError> {
        self.worker(conference)?
            .call(|r| Command::Target(conference.into(), receiver.into(), source, layer, r))
    }

    /// Colibri2 `force-mute`: drop (or stop dropping) the endpoint's audio and video.
    pub fn force_mute(
        &self,
        conference: &str,
        endpoint: &str,
        audio: bool,
        video: bool,
    ) -> Result<(), ApiError> {
        self.worker(conference)?
            .call(|r| Command::ForceMute(conference.into(), endpoint.into(), audio, video, r))
    }

    /// Colibri2 endpoint expire; the conference goes with its last endpoint.
    pub fn expire_endpoint(&self, conference: &str, endpoint: &str) -> Result<(), ApiError> {
        let mut placement = self.placement();
        let index = *placement
            .conferences
            .get(conference)
            .ok_or_else(|| ApiError::ConferenceNotFound(conference.to_owned()))?;
        let alive =
            self.workers[index].call(|r| Command::Expire(conference.into(), endpoint.into(), r))?;
        placement.endpoints[index] = placement.endpoints[index].saturating_sub(1);
        if !alive {
            placement.conferences.remove(conference);
        }
        Ok(())
    }

    /// Colibri2 conference expire: every endpoint in it goes.
    pub fn expire_conference(&self, conference: &str) -> Result<(), ApiError> {
        let mut placement = self.placement();
        let index = placement
            .conferences
            .remove(conference)
            .ok_or_else(|| ApiError::ConferenceNotFound(conference.to_owned()))?;
        let removed =
            self.workers[index].call(|r| Command::ExpireConference(conference.into(), r))?;
        placement.endpoints[index] = placement.endpoints[index].saturating_sub(removed);
        Ok(())
    }

    /// Whether `pwd` opens the bridge channel of this endpoint.
    pub fn channel_check(
        &self,
        conference: &str,
        endpoint: &str,
        pwd: &str,
    ) -> Result<(), ApiError> {
        self.worker(conference)?
            .call(|r| Command::ChannelCheck(conference.into(), endpoint.into(), pwd.into(), r))
    }

    /// Attaches an endpoint's bridge channel; messages for it arrive on `tx`.
    pub fn channel_open(
        &self,
        conference: &str,
        endpoint: &str,
        pwd: &str,
        tx: ChannelTx,
    ) -> Result<(), ApiError> {
        self.worker(conference)?
            .call(|r| Command::ChannelOpen(conference.into(), endpoint.into(), pwd.into(), tx, r))
    }

    /// A message the endpoint sent on its channel (does not wait). `held` is
    /// released once the worker has handled it: a reader that needs a permit
    /// per message never has more than its permits queued at the worker, however
    /// fast its client sends.
    pub fn channel_message(
        &self,
        conference: &str,
        endpoint: &str,
        text: String,
        held: OwnedSemaphorePermit,
    ) {
        if let Ok(w) = self.worker(conference) {
            let _ = w.send(Command::ChannelMessage(
                conference.into(),
                endpoint.into(),
                text,
                held,
            ));
        }
    }

    /// The endpoint's channel `tx` went away (does not wait).
    pub fn channel_closed(&self, conference: &str, endpoint: &str, tx: ChannelTx) {
        if let Ok(w) = self.worker(conference) {
            let _ = w.send(Command::ChannelClosed(
                conference.into(),
                endpoint.into(),
                tx,
            ));
        }
    }

    /// Drain mode: conferences here go on, new ones are refused so that a
    /// focus places them elsewhere (before maintenance or scaling down).
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Graceful shutdown (Videobridge's): like drain, and for good; the
    /// process ends once the conferences it holds have ended.
    pub fn start_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Whether every media worker is running and going round its loop; if
    /// not, which one and why (what `/about/health` answers).
    ///
    /// ```no_run
    /// # fn check(bridge: &sfu::bridge::Bridge) {
    /// if let Err(why) = bridge.health() {
    ///     eprintln!("unhealthy: {why}");
    /// }
    /// # }
    /// ```
    pub fn health(&self) -> Result<(), String> {
        let now = std::time::Instant::now();
        self.workers.iter().try_for_each(|w| w.health(now))
    }

    /// Counters summed over the workers, with the port's own.
    pub fn stats(&self) -> Option<BridgeStats> {
        let mut out = BridgeStats::default();
        for w in &self.workers {
            let report = w.stats()?;
            out.worker_endpoints.push(report.stats.endpoints);
            out.totals.add(&report.stats);
            out.latency.add(&report.latency);
            out.worker_busy.push(report.busy);
        }
        let c = &self.port.counters;
        out.totals.datagrams_in = c.datagrams_in.load(Ordering::Relaxed);
        out.totals.unroutable += c.unroutable.load(Ordering::Relaxed);
        out.overload_drops = c.overload_drops.load(Ordering::Relaxed);
        let t = &out.totals;
        let sample = Sample {
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            packets_in: t.datagrams_in,
            packets_out: t.datagrams_out,
            busy: out.worker_busy.clone(),
        };
        out.rates = self.window.observe(std::time::Instant::now(), sample);
        Some(out)
    }
}

impl Colibri for Bridge {
    fn id(&self) -> &str {
        Bridge::id(self)
    }

    fn create_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
    ) -> Result<LocalTransport, ApiError> {
        Bridge::create_endpoint(self, conference, endpoint)
    }

    fn update_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
        remote: Option<RemoteTransport>,
        sources: Option<Sources>,
    ) -> Result<(), ApiError> {
        Bridge::update_endpoint(self, conference, endpoint, remote, sources)
    }

    fn expire_endpoint(&self, conference: &str, endpoint: &str) -> Result<(), ApiError> {
        Bridge::expire_endpoint(self, conference, endpoint)
    }

    fn expire_conference(&self, conference: &str) -> Result<(), ApiError> {
        Bridge::expire_conference(self, conference)
    }

    fn load(&self) -> BridgeLoad {
        BridgeLoad {
            endpoints: self.placement().endpoints.iter().sum(),
            draining: self.is_draining() || self.is_shutting_down(),
            region: self.region.clone(),
        }
    }
}
