//! A media worker: one thread owning a [`Router`] and every conference in it.
//! It sleeps until the port hands it datagrams, the API sends it a command, or
//! one of its endpoints has a deadline.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use udp_batch::BatchSender;

use super::port::{Inbound, Pool};
use crate::api::{ApiError, LocalTransport, RemoteTransport, Sources};
use crate::latency::LatencyHistogram;
use crate::router::{RouteChange, Router, RouterStats};

/// Longest a worker sleeps without looking at its commands.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// Datagrams handled before their packets are sent: small, because the first
/// datagram of a batch waits for the last (latency), large enough for sends to
/// go out in GSO runs.
const BATCH: usize = 16;

pub(super) type Reply<T> = mpsc::SyncSender<Result<T, ApiError>>;

/// Where an endpoint's outgoing bridge-channel messages go.
pub type ChannelTx = tokio::sync::mpsc::Sender<String>;

pub(super) enum Command {
    Create(String, String, Reply<LocalTransport>),
    Update(
        String,
        String,
        Option<RemoteTransport>,
        Option<Sources>,
        Reply<()>,
    ),
    Target(String, String, u32, Option<u8>, Reply<()>),
    /// Replies whether the conference still has endpoints.
    Expire(String, String, Reply<bool>),
    /// Replies how many endpoints went.
    ExpireConference(String, Reply<usize>),
    Stats(mpsc::SyncSender<(RouterStats, LatencyHistogram)>),
    ChannelCheck(String, String, String, Reply<()>),
    ChannelOpen(String, String, String, ChannelTx, Reply<()>),
    ChannelMessage(String, String, String),
    ChannelClosed(String, String, ChannelTx),
    Stop,
}

/// The handle of one worker thread.
pub(super) struct Worker {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts worker `index`; it sends on `socket` and tells the port through
    /// `routes` which datagrams are its.
    pub(super) fn spawn(
        index: usize,
        socket: UdpSocket,
        router: Router,
        inbound: Arc<Inbound>,
        pool: Arc<Pool>,
        routes: mpsc::Sender<(usize, RouteChange)>,
    ) -> io::Result<Worker> {
        let sender = BatchSender::new(socket)?;
        // Sending made the socket (shared with the port's receiver)
        // non-blocking; the port blocks in recv, so switch it back.
        sender.socket().set_nonblocking(false)?;
        let (commands, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("sfu-media-{index}"))
            .spawn(move || {
                let mut w = Running {
                    index,
                    latency: LatencyHistogram::default(),
                    batch: Vec::with_capacity(BATCH),
                    sender,
                    router,
                    inbound,
                    pool,
                    routes,
                };
                w.run(rx)
            })?;
        Ok(Worker {
            commands,
            thread: Some(thread),
        })
    }

    pub(super) fn thread(&self) -> std::thread::Thread {
        self.thread
            .as_ref()
            .map(|t| t.thread().clone())
            .expect("a worker has its thread until dropped")
    }

    /// Queues `command` and wakes the worker.
    pub(super) fn send(&self, command: Command) -> Result<(), ApiError> {
        self.commands
            .send(command)
            .map_err(|_| ApiError::Shutdown)?;
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        Ok(())
    }

    /// Sends a command and waits for its answer.
    pub(super) fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ApiError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(make(tx))?;
        rx.recv().map_err(|_| ApiError::Shutdown)?
    }

    pub(super) fn stats(&self) -> Option<(RouterStats, LatencyHistogram)> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Command::Stats(tx)).ok()?;
        rx.recv().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Running {
    index: usize,
    latency: LatencyHistogram,
    /// Receive times of the datagrams in the batch being handled.
    batch: Vec<Instant>,
    sender: BatchSender<UdpSocket>,
    router: Router,
    inbound: Arc<Inbound>,
    pool: Arc<Pool>,
    routes: mpsc::Sender<(usize, RouteChange)>,
}

impl Running {
    fn run(&mut self, commands: mpsc::Receiver<Command>) {
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Ok(Command::Stats(r)) => {
                        let _ = r.send((self.router.stats(), self.latency));
                    }
                    Ok(c) => execute(&mut self.router, Instant::now(), c),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            for _ in 0..BATCH {
                let Some(p) = self.inbound.pop() else { break };
                self.router
                    .handle_datagram(Instant::now(), p.from, p.contents());
                self.batch.push(p.received);
                self.pool.give_back(p);
            }
            // Timers only when one is due: a pass visits every endpoint.
            let now = Instant::now();
            if self.router.poll_timeout(now) <= now {
                self.router.handle_timeout(now);
            }
            // Routes first: the port must know an address before the answer
            // to its STUN request makes the client send DTLS from it.
            while let Some(change) = self.router.poll_route() {
                let _ = self.routes.send((self.index, change));
            }
            while let Some(d) = self.router.poll_transmit() {
                self.sender.push(&d.contents, d.destination);
            }
            self.sender.flush();
            let sent = Instant::now();
            for received in self.batch.drain(..) {
                self.latency
                    .record(sent.saturating_duration_since(received));
            }
            if self.inbound.is_empty() {
                let now = Instant::now();
                let wait = self.router.poll_timeout(now).saturating_duration_since(now);
                if !wait.is_zero() {
                    std::thread::park_timeout(wait.min(MAX_SLEEP));
                }
            }
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
            let result = router.expire_endpoint(&c, &e);
            let _ = r.send(result.map(|()| router.has_conference(&c)));
        }
        Command::ExpireConference(c, r) => {
            let before = router.stats().endpoints;
            let result = router.expire_conference(&c);
            let _ = r.send(result.map(|()| before - router.stats().endpoints));
        }
        // Answered by the loop, which owns the latency histogram too.
        Command::Stats(_) => {}
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
        // Handled by the loop before it gets here.
        Command::Stop => {}
    }
}
