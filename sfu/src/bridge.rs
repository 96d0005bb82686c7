//! The media worker: one thread owning the UDP port and the [`Router`] with
//! every conference on it, and the handle the focus uses to drive it.
//!
//! ```no_run
//! use sfu::bridge::{Bridge, BridgeConfig};
//! let bridge = Bridge::start(BridgeConfig::default()).unwrap();
//! let offer_side = bridge.create_endpoint("conf-1", "ab12cd34").unwrap();
//! println!("ICE ufrag {} on {}", offer_side.ufrag, offer_side.candidates[0].address);
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::{ApiError, LocalTransport, RemoteTransport, Sources};
use crate::cert::Certificate;
use crate::router::{Router, RouterStats};

/// How long a command may wait for the worker while the port is quiet.
const COMMAND_LATENCY: Duration = Duration::from_millis(5);
/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;

/// Where the media port listens and what address it advertises.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Socket address of the media port (default 127.0.0.1:10000).
    pub bind: SocketAddr,
    /// Address put in candidates when it differs from the bound one (NAT, 0.0.0.0).
    pub advertise: Option<IpAddr>,
    /// This bridge's id in bridge-channel URLs (`/colibri-ws/<id>/…`).
    pub id: String,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10000),
            advertise: None,
            id: "oxbridge".into(),
        }
    }
}

type Reply<T> = mpsc::SyncSender<Result<T, ApiError>>;

enum Command {
    Create(String, String, Reply<LocalTransport>),
    Update(
        String,
        String,
        Option<RemoteTransport>,
        Option<Sources>,
        Reply<()>,
    ),
    Target(String, String, u32, Option<u8>, Reply<()>),
    Expire(String, String, Reply<()>),
    ExpireConference(String, Reply<()>),
    Stats(mpsc::SyncSender<RouterStats>),
    ChannelCheck(String, String, String, Reply<()>),
    ChannelOpen(String, String, String, ChannelTx, Reply<()>),
    ChannelMessage(String, String, String),
    ChannelClosed(String, String, ChannelTx),
    Stop,
}

/// Where the worker puts an endpoint's outgoing bridge-channel messages.
pub type ChannelTx = tokio::sync::mpsc::Sender<String>;

/// A running media worker.
pub struct Bridge {
    commands: mpsc::Sender<Command>,
    addr: SocketAddr,
    id: String,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Binds the media port and starts the worker thread.
    pub fn start(config: BridgeConfig) -> io::Result<Bridge> {
        let cert = Certificate::generate().map_err(io::Error::other)?;
        let socket = UdpSocket::bind(config.bind)?;
        let bound = socket.local_addr()?;
        let addr = SocketAddr::new(config.advertise.unwrap_or(bound.ip()), bound.port());
        if addr.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unspecified bind address needs an address to advertise",
            ));
        }
        let (commands, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sfu-media".into())
            .spawn(move || run(socket, Router::new(cert, addr), rx))?;
        Ok(Bridge {
            commands,
            addr,
            id: config.id,
            thread: Some(thread),
        })
    }

    /// The id in this bridge's channel URLs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `pwd` opens the bridge channel of this endpoint.
    pub fn channel_check(
        &self,
        conference: &str,
        endpoint: &str,
        pwd: &str,
    ) -> Result<(), ApiError> {
        self.call(|r| Command::ChannelCheck(conference.into(), endpoint.into(), pwd.into(), r))
    }

    /// Attaches an endpoint's bridge channel; messages for it arrive on `tx`.
    pub fn channel_open(
        &self,
        conference: &str,
        endpoint: &str,
        pwd: &str,
        tx: ChannelTx,
    ) -> Result<(), ApiError> {
        self.call(|r| Command::ChannelOpen(conference.into(), endpoint.into(), pwd.into(), tx, r))
    }

    /// A message the endpoint sent on its channel (does not wait).
    pub fn channel_message(&self, conference: &str, endpoint: &str, text: String) {
        let _ = self.commands.send(Command::ChannelMessage(
            conference.into(),
            endpoint.into(),
            text,
        ));
    }

    /// The endpoint's channel `tx` went away (does not wait).
    pub fn channel_closed(&self, conference: &str, endpoint: &str, tx: ChannelTx) {
        let _ = self.commands.send(Command::ChannelClosed(
            conference.into(),
            endpoint.into(),
            tx,
        ));
    }

    /// The advertised media address.
    pub fn media_addr(&self) -> SocketAddr {
        self.addr
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ApiError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commands
            .send(make(tx))
            .map_err(|_| ApiError::Shutdown)?;
        rx.recv().map_err(|_| ApiError::Shutdown)?
    }

    pub fn create_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
    ) -> Result<LocalTransport, ApiError> {
        self.call(|r| Command::Create(conference.into(), endpoint.into(), r))
    }

    pub fn update_endpoint(
        &self,
        conference: &str,
        endpoint: &str,
        remote: Option<RemoteTransport>,
        sources: Option<Sources>,
    ) -> Result<(), ApiError> {
        self.call(|r| Command::Update(conference.into(), endpoint.into(), remote, sources, r))
    }

    /// Which layer of `source` (its first SSRC) `receiver` is sent; `None` for none.
    pub fn set_video_target(
        &self,
        conference: &str,
        receiver: &str,
        source: u32,
        layer: Option<u8>,
    ) -> Result<(), ApiError> {
        self.call(|r| Command::Target(conference.into(), receiver.into(), source, layer, r))
    }

    pub fn expire_endpoint(&self, conference: &str, endpoint: &str) -> Result<(), ApiError> {
        self.call(|r| Command::Expire(conference.into(), endpoint.into(), r))
    }

    pub fn expire_conference(&self, conference: &str) -> Result<(), ApiError> {
        self.call(|r| Command::ExpireConference(conference.into(), r))
    }

    pub fn stats(&self) -> Option<RouterStats> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commands.send(Command::Stats(tx)).ok()?;
        rx.recv().ok()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(socket: UdpSocket, mut router: Router, commands: mpsc::Receiver<Command>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let now = Instant::now();
        let wait = router
            .poll_timeout(now)
            .saturating_duration_since(now)
            .clamp(Duration::from_micros(100), COMMAND_LATENCY);
        let _ = socket.set_read_timeout(Some(wait));
        match socket.recv_from(&mut buf) {
            Ok((n, source)) if n > 0 => router.handle_datagram(Instant::now(), source, &buf[..n]),
            _ => {}
        }
        let now = Instant::now();
        loop {
            match commands.try_recv() {
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Ok(c) => execute(&mut router, now, c),
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        router.handle_timeout(now);
        while let Some(d) = router.poll_transmit() {
            let _ = socket.send_to(&d.contents, d.destination);
        }
    }
}

fn execute(router: &mut Router, now: Instant, command: Command) {
    match command {
        Command::Create(c, e, r) => {
            let _ = r.send(router.create_endpoint(now, &c, &e));
        }
        Command::Update(c, e, remote, sources, r) => {
            let _ = r.send(router.update_endpoint(now, &c, &e, remote.as_ref(), sources.as_ref()));
        }
        Command::Target(c, e, s, l, r) => {
            let _ = r.send(router.set_video_target(&c, &e, s, l));
        }
        Command::Expire(c, e, r) => {
            let _ = r.send(router.expire_endpoint(&c, &e));
        }
        Command::ExpireConference(c, r) => {
            let _ = r.send(router.expire_conference(&c));
        }
        Command::Stats(r) => {
            let _ = r.send(router.stats());
        }
        Command::ChannelCheck(c, e, p, r) => {
            let _ = r.send(router.channel_check(&c, &e, &p));
        }
        Command::ChannelOpen(c, e, p, tx, r) => {
            let _ = r.send(router.channel_open(&c, &e, &p, tx));
        }
        Command::ChannelMessage(c, e, text) => {
            let _ = router.channel_message(&c, &e, &text);
        }
        Command::ChannelClosed(c, e, tx) => router.channel_closed(&c, &e, &tx),
        Command::Stop => {}
    }
}
