//! The media port: one thread receiving every datagram of the shared UDP port
//! and handing it to the worker whose conference it belongs to.
//!
//! Workers tell the port which ufrags and addresses are theirs
//! ([`RouteChange`]); the port keeps its own [`Demux`] from those, so it never
//! shares a table with a worker. Datagrams arrive a burst per system call
//! (`recvmmsg`) and travel in pooled buffers through lock-free queues; a worker
//! is woken once per burst. Nothing per packet allocates once the pool is warm.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use udp_batch::BatchReceiver;

use crate::demux::Demux;
use crate::router::RouteChange;

/// Largest datagram read.
pub(super) const MAX_DATAGRAM: usize = 2048;
/// Buffers in flight at most (4096 x 2 KiB); more means workers are behind.
const POOL_CAP: usize = 4096;
/// Datagrams queued for one worker at most.
pub(super) const INBOUND_CAP: usize = 1024;
/// How often the port looks at its stop flag while the port is quiet.
const POLL: Duration = Duration::from_millis(100);
/// Datagrams taken per system call at most.
const RECV_BATCH: usize = BatchReceiver::MAX_BATCH;

/// [`MAX_DATAGRAM`] bytes.
type Buffer = Box<[u8]>;

/// A received datagram on its way to a worker.
pub(super) struct Packet {
    pub from: SocketAddr,
    /// When the port read it: the start of the bridge's latency.
    pub received: Instant,
    len: usize,
    buf: Buffer,
}

impl Packet {
    pub fn contents(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(super) type Inbound = ArrayQueue<Packet>;

/// Receive buffers, allocated on demand up to [`POOL_CAP`] and then reused.
pub(super) struct Pool {
    free: ArrayQueue<Buffer>,
    allocated: AtomicUsize,
}

impl Pool {
    pub(super) fn new() -> Pool {
        Pool {
            free: ArrayQueue::new(POOL_CAP),
            allocated: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<Buffer> {
        self.free.pop().or_else(|| {
            // Only the port thread takes, so load-then-store does not race.
            let n = self.allocated.load(Ordering::Relaxed);
            (n < POOL_CAP).then(|| {
                self.allocated.store(n + 1, Ordering::Relaxed);
                vec![0u8; MAX_DATAGRAM].into_boxed_slice()
            })
        })
    }

    pub(super) fn give_back(&self, packet: Packet) {
        let _ = self.free.push(packet.buf);
    }

    fn give(&self, buf: Buffer) {
        let _ = self.free.push(buf);
    }
}

/// What the port counted (read by stats while it runs).
#[derive(Default)]
pub(super) struct PortCounters {
    pub datagrams_in: AtomicU64,
    /// No worker claims the ufrag or the address.
    pub unroutable: AtomicU64,
    /// The worker's queue was full or the pool empty: it is overloaded.
    pub overload_drops: AtomicU64,
}

/// A worker as the port sees it: where its datagrams go and how to wake it.
pub(super) struct Lane {
    pub inbound: Arc<Inbound>,
    pub thread: Thread,
}

pub(super) struct Port {
    pub socket: UdpSocket,
    pub lanes: Vec<Lane>,
    pub routes: mpsc::Receiver<(usize, RouteChange)>,
    pub pool: Arc<Pool>,
    pub counters: Arc<PortCounters>,
    pub stop: Arc<AtomicBool>,
}

impl Port {
    pub(super) fn run(self) {
        let _ = self.socket.set_read_timeout(Some(POLL));
        let mut demux = Demux::<usize>::default();
        let mut receiver = BatchReceiver::default();
        let mut held: Vec<Buffer> = Vec::with_capacity(RECV_BATCH);
        let mut meta = [(0, SocketAddr::from(([0, 0, 0, 0], 0))); RECV_BATCH];
        let mut woken = vec![false; self.lanes.len()];
        let mut scratch = [0u8; MAX_DATAGRAM];
        while !self.stop.load(Ordering::Relaxed) {
            while held.len() < RECV_BATCH {
                let Some(buf) = self.pool.take() else { break };
                held.push(buf);
            }
            if held.is_empty() {
                // Every buffer is queued at a worker: read and drop.
                if self.socket.recv_from(&mut scratch).is_ok() {
                    self.counters.overload_drops.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            let Ok(n) = receiver.recv(&self.socket, &mut held, &mut meta) else {
                continue;
            };
            let received = Instant::now();
            self.counters
                .datagrams_in
                .fetch_add(n as u64, Ordering::Relaxed);
            // Claims made while the port was blocked decide these datagrams.
            while let Ok((worker, change)) = self.routes.try_recv() {
                match change {
                    RouteChange::Claimed(c) => {
                        demux.claim(&c, worker);
                    }
                    RouteChange::Released(c) => demux.release(&c, worker),
                }
            }
            for (buf, &(len, from)) in held.drain(..n).zip(&meta) {
                let Some(w) = demux
                    .route(from, &buf[..len])
                    .filter(|w| *w < self.lanes.len())
                else {
                    self.counters.unroutable.fetch_add(1, Ordering::Relaxed);
                    self.pool.give(buf);
                    continue;
                };
                let packet = Packet {
                    from,
                    received,
                    len,
                    buf,
                };
                match self.lanes[w].inbound.push(packet) {
                    Ok(()) => woken[w] = true,
                    Err(p) => {
                        self.counters.overload_drops.fetch_add(1, Ordering::Relaxed);
                        self.pool.give(p.buf);
                    }
                }
            }
            for (lane, woken) in self.lanes.iter().zip(&mut woken) {
                if std::mem::take(woken) {
                    lane.thread.unpark();
                }
            }
        }
    }
}
