//! A media worker: one thread owning a [`Router`] and every conference in it.
//! It reads the media port itself and sleeps until the port has datagrams,
//! another worker hands it some, the API sends it a command, or one of its
//! endpoints has a deadline.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use udp_batch::BatchSender;

use super::port::{Intake, Port};
use super::wait::Sleeper;
use crate::api::{ApiError, LocalTransport, RemoteTransport, Sources};
use crate::latency::LatencyHistogram;
use crate::router::{RouteChange, Router, RouterStats};

/// Longest a worker sleeps without looking at its commands.
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// A worker that has not gone round its loop for this long (a hundred times
/// its longest sleep) is stuck: the bridge reports itself unhealthy.
pub(super) const STALLED: Duration = Duration::from_secs(5);
/// Datagrams taken from other workers per turn.
const BATCH: usize = 16;
/// Longest a batch is handled before what it caused is sent: batches are as
/// long as this allows (sends then go out in long GSO runs), but a burst never
/// holds its first packet back for long.
const SEND_WITHIN: Duration = Duration::from_micros(250);

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
    ForceMute(String, String, bool, bool, Reply<()>),
    /// Replies whether the conference still has endpoints.
    Expire(String, String, Reply<bool>),
    /// Replies how many endpoints went.
    ExpireConference(String, Reply<usize>),
    Stats(mpsc::SyncSender<WorkerReport>),
    ChannelCheck(String, String, String, Reply<()>),
    ChannelOpen(String, String, String, ChannelTx, Reply<()>),
    /// The permit goes back when the message has been handled.
    ChannelMessage(String, String, String, OwnedSemaphorePermit),
    ChannelClosed(String, String, ChannelTx),
    Stop,
    /// Lets a test see what a worker that died does to the bridge.
    #[cfg(test)]
    Panic,
}

/// What a worker counted since it started.
pub(super) struct WorkerReport {
    pub stats: RouterStats,
    pub latency: LatencyHistogram,
    /// Time it did not spend asleep: its load, once over a window.
    pub busy: Duration,
}

/// When a worker last went round its loop. It wakes at least every
/// [`MAX_SLEEP`], so one silent for long is stuck, and the health check says so.
pub(super) struct Heartbeat {
    epoch: Instant,
    /// Milliseconds since `epoch`.
    last: AtomicU64,
}

impl Heartbeat {
    pub fn new(now: Instant) -> Heartbeat {
        Heartbeat {
            epoch: now,
            last: AtomicU64::new(0),
        }
    }

    pub fn beat(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    pub fn silent_for(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

/// The handle of one worker thread.
pub(super) struct Worker {
    index: usize,
    port: Arc<Port>,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
    heartbeat: Arc<Heartbeat>,
}

impl Worker {
    /// Starts worker `index` on `port`; `routes` brings every worker's route changes.
    pub(super) fn spawn(
        index: usize,
        port: Arc<Port>,
        routes: mpsc::Receiver<(usize, RouteChange)>,
        router: Router,
    ) -> io::Result<Worker> {
        let sender = BatchSender::new(port.socket.try_clone()?)?;
        let sleeper = Sleeper::new(&port.socket, &port.lanes[index].waker)?;
        let (commands, rx) = mpsc::channel();
        let shared = port.clone();
        let heartbeat = Arc::new(Heartbeat::new(Instant::now()));
        let beats = heartbeat.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sfu-media-{index}"))
            .spawn(move || {
                let mut w = Running {
                    index,
                    started: Instant::now(),
                    asleep: Duration::ZERO,
                    outbox: Outbox {
                        sender,
                        pending: Vec::with_capacity(BATCH + Intake::MAX_BURST),
                        began: None,
                        latency: LatencyHistogram::default(),
                    },
                    router,
                    intake: Intake::new(index, shared.lanes.len(), routes),
                    port: shared,
                    sleeper,
                    commands: rx,
                    next: None,
                    heartbeat: beats,
                };
                w.run()
            })?;
        Ok(Worker {
            index,
            port,
            commands,
            thread: Some(thread),
            heartbeat,
        })
    }

    /// Whether the worker is running and going round its loop; if not, why.
    pub(super) fn health(&self, now: Instant) -> Result<(), String> {
        if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(format!("media worker {} has stopped", self.index));
        }
        let silent = self.heartbeat.silent_for(now);
        if silent > STALLED {
            return Err(format!(
                "media worker {} has been stuck for {} s",
                self.index,
                silent.as_secs()
            ));
        }
        Ok(())
    }

    /// Queues `command` and wakes the worker.
    pub(super) fn send(&self, command: Command) -> Result<(), ApiError> {
        self.commands
            .send(command)
            .map_err(|_| ApiError::Shutdown)?;
        self.port.lanes[self.index].waker.wake();
        Ok(())
    }

    /// Sends a command and waits for its answer.
    pub(super) fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ApiError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(make(tx))?;
        rx.recv().map_err(|_| ApiError::Shutdown)?
    }

    /// The worker's counters; `None` from a worker that has stopped, or has
    /// not answered within a second (a stuck one would hold the caller).
    pub(super) fn stats(&self) -> Option<WorkerReport> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Command::Stats(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(1)).ok()
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
    started: Instant,
    asleep: Duration,
    outbox: Outbox,
    router: Router,
    port: Arc<Port>,
    intake: Intake,
    sleeper: Sleeper,
    commands: mpsc::Receiver<Command>,
    /// A command taken while checking for work before sleeping.
    next: Option<Command>,
    heartbeat: Arc<Heartbeat>,
}

impl Running {
    fn run(&mut self) {
        loop {
            loop {
                let command = match self.next.take() {
                    Some(c) => Ok(c),
                    None => self.commands.try_recv(),
                };
                match command {
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    #[cfg(test)]
                    Ok(Command::Panic) => panic!("a test stops this worker"),
                    Ok(Command::Stats(r)) => {
                        let _ = r.send(WorkerReport {
                            stats: self.router.stats(),
                            latency: self.outbox.latency,
                            busy: self.started.elapsed().saturating_sub(self.asleep),
                        });
                    }
                    Ok(c) => execute(&mut self.router, Instant::now(), c),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            let lane = &self.port.lanes[self.index];
            // Datagrams the other workers read for this one, oldest first.
            let (router, outbox, port, index) =
                (&mut self.router, &mut self.outbox, &self.port, self.index);
            for _ in 0..BATCH {
                let Some(p) = lane.inbound.pop() else { break };
                let now = Instant::now();
                router.handle_datagram(now, p.from, p.contents());
                outbox.handled(p.received, now, router, port, index);
                port.pool.give_back(p);
            }
            // Then a burst from the socket (a system call that finds nothing
            // when it is empty: cheaper than asking whether it is).
            let read = self.intake.read(port, |received, from, data| {
                let now = Instant::now();
                router.handle_datagram(now, from, data);
                outbox.handled(received, now, router, port, index);
            });
            // What the batch caused goes out before any timer work, which
            // would otherwise hold its packets back.
            outbox.send(router, port, index);
            // Timers only when one is due.
            let now = Instant::now();
            self.heartbeat.beat(now);
            if router.poll_timeout(now) <= now {
                router.handle_timeout(now);
                outbox.send(router, port, index);
            }
            let lane = &self.port.lanes[self.index];
            if read < Intake::MAX_BURST && lane.inbound.is_empty() {
                let now = Instant::now();
                let deadline = self.router.poll_timeout(now).min(now + MAX_SLEEP);
                if deadline > now {
                    let (commands, next) = (&self.commands, &mut self.next);
                    self.sleeper.sleep(&lane.waker, deadline, || {
                        if !lane.inbound.is_empty() {
                            return true;
                        }
                        match commands.try_recv() {
                            Ok(c) => {
                                *next = Some(c);
                                true
                            }
                            Err(mpsc::TryRecvError::Empty) => false,
                            Err(mpsc::TryRecvError::Disconnected) => true,
                        }
                    });
                    self.asleep += now.elapsed();
                }
            }
        }
    }
}

/// Where a worker's datagrams leave: its batched sender, with the receive
/// times of the datagrams whose packets it has not sent yet.
struct Outbox {
    sender: BatchSender<UdpSocket>,
    pending: Vec<Instant>,
    /// When the router began handling the first of them.
    began: Option<Instant>,
    latency: LatencyHistogram,
}

impl Outbox {
    /// Notes a datagram received at `received` whose handling began at
    /// `began`; sends what the batch caused once it has taken long enough.
    fn handled(
        &mut self,
        received: Instant,
        began: Instant,
        router: &mut Router,
        port: &Port,
        index: usize,
    ) {
        self.pending.push(received);
        let first = *self.began.get_or_insert(began);
        if first.elapsed() >= SEND_WITHIN {
            self.send(router, port, index);
        }
    }

    /// Announces the router's new routes, then sends its datagrams in one
    /// batch and records how long the batch's datagrams were held.
    fn send(&mut self, router: &mut Router, port: &Port, index: usize) {
        // Routes first: every worker must know an address before the answer
        // to its STUN request makes the client send DTLS from it.
        while let Some(change) = router.poll_route() {
            port.announce(index, &change);
        }
        while let Some((to, d)) = router.poll_transmit() {
            self.sender.push(d, to);
        }
        self.sender.flush();
        self.began = None;
        let sent = Instant::now();
        for received in self.pending.drain(..) {
            self.latency
                .record(sent.saturating_duration_since(received));
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
        Command::ForceMute(c, e, audio, video, r) => {
            let _ = r.send(router.force_mute(&c, &e, audio, video));
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
        Command::ChannelMessage(c, e, text, _held) => {
            let _ = router.channel_message(&c, &e, &text);
        }
        Command::ChannelClosed(c, e, tx) => router.channel_closed(&c, &e, &tx),
        // Handled by the loop before it gets here.
        Command::Stop => {}
        #[cfg(test)]
        Command::Panic => {}
    }
}
