//! The media port: one UDP socket that every worker reads, and the lanes that
//! hand a datagram to the worker whose conference it belongs to.
//!
//! Whichever worker the kernel wakes reads a burst (`recvmmsg`); the datagrams
//! of its own conferences it handles at once, the others go to their worker
//! through a lock-free queue, that worker woken once per burst. There is no
//! thread in between: with one worker, nothing changes hands at all.
//!
//! Workers tell each other which ufrags and addresses are theirs
//! ([`RouteChange`]); each keeps its own [`Demux`] copy from those, so no table
//! is shared. Nothing per packet allocates once the pool is warm.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use udp_batch::BatchReceiver;

use super::wait::Waker;
use crate::demux::Demux;
use crate::router::RouteChange;

/// Largest datagram read.
pub(super) const MAX_DATAGRAM: usize = 2048;
/// Buffers in flight between workers at most (4096 x 2 KiB); more means
/// workers are behind.
const POOL_CAP: usize = 4096;
/// Datagrams queued for one worker at most.
pub(super) const INBOUND_CAP: usize = 1024;
/// Datagrams taken per system call at most.
const RECV_BATCH: usize = BatchReceiver::MAX_BATCH;

/// [`MAX_DATAGRAM`] bytes.
type Buffer = Box<[u8]>;

/// A datagram read by one worker for another.
pub(super) struct Packet {
    pub from: SocketAddr,
    /// When it was read: the start of the bridge's latency.
    pub received: Instant,
    len: usize,
    buf: Buffer,
}

impl Packet {
    pub fn contents(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

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
            let n = self.allocated.fetch_add(1, Ordering::Relaxed);
            if n < POOL_CAP {
                Some(vec![0u8; MAX_DATAGRAM].into_boxed_slice())
            } else {
                self.allocated.fetch_sub(1, Ordering::Relaxed);
                None
            }
        })
    }

    pub(super) fn give_back(&self, packet: Packet) {
        self.give(packet.buf);
    }

    fn give(&self, buf: Buffer) {
        let _ = self.free.push(buf);
    }
}

/// What the port counted, over all workers (read by stats while they run).
#[derive(Default)]
pub(super) struct PortCounters {
    pub datagrams_in: AtomicU64,
    /// No worker claims the ufrag or the address.
    pub unroutable: AtomicU64,
    /// A worker's queue was full or the pool empty: it is overloaded.
    pub overload_drops: AtomicU64,
}

/// A worker as the others see it: where its datagrams go, how to wake it,
/// where to tell it about routes.
pub(super) struct Lane {
    pub inbound: ArrayQueue<Packet>,
    pub waker: Waker,
    pub routes: mpsc::Sender<(usize, RouteChange)>,
}

/// What every worker shares: the socket, the lanes, the pool, the counters.
pub(super) struct Port {
    pub socket: UdpSocket,
    pub lanes: Vec<Lane>,
    pub pool: Pool,
    pub counters: PortCounters,
}

impl Port {
    /// Tells every worker (this one included) which worker `change` is for.
    pub(super) fn announce(&self, worker: usize, change: &RouteChange) {
        for lane in &self.lanes {
            let _ = lane.routes.send((worker, change.clone()));
        }
    }
}

/// One worker's reading of the port.
pub(super) struct Intake {
    index: usize,
    receiver: BatchReceiver,
    held: Vec<Buffer>,
    meta: [(usize, SocketAddr); RECV_BATCH],
    demux: Demux<usize>,
    routes: mpsc::Receiver<(usize, RouteChange)>,
    woken: Vec<bool>,
    scratch: Buffer,
}

impl Intake {
    /// Datagrams one read takes at most: fewer means the socket was emptied.
    pub(super) const MAX_BURST: usize = RECV_BATCH;

    pub(super) fn new(
        index: usize,
        lanes: usize,
        routes: mpsc::Receiver<(usize, RouteChange)>,
    ) -> Intake {
        Intake {
            index,
            receiver: BatchReceiver::default(),
            held: Vec::with_capacity(RECV_BATCH),
            meta: [(0, SocketAddr::from(([0, 0, 0, 0], 0))); RECV_BATCH],
            demux: Demux::default(),
            routes,
            woken: vec![false; lanes],
            scratch: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
        }
    }

    /// Reads what is queued on the socket (one burst, without waiting): this
    /// worker's datagrams go to `own` with their receive time, the others' to
    /// their lanes. Returns how many were read.
    pub(super) fn read(
        &mut self,
        port: &Port,
        mut own: impl FnMut(Instant, SocketAddr, &[u8]),
    ) -> usize {
        while self.held.len() < RECV_BATCH {
            let Some(buf) = port.pool.take() else { break };
            self.held.push(buf);
        }
        if self.held.is_empty() {
            // Every buffer is queued at a worker: read and drop.
            if port.socket.recv_from(&mut self.scratch).is_ok() {
                port.counters.overload_drops.fetch_add(1, Ordering::Relaxed);
                return 1;
            }
            return 0;
        }
        let Ok(n) = self
            .receiver
            .recv(&port.socket, &mut self.held, &mut self.meta)
        else {
            return 0;
        };
        let received = Instant::now();
        port.counters
            .datagrams_in
            .fetch_add(n as u64, Ordering::Relaxed);
        // Claims announced before these datagrams were sent decide them.
        while let Ok((worker, change)) = self.routes.try_recv() {
            match change {
                RouteChange::Claimed(c) => {
                    self.demux.claim(&c, worker);
                }
                RouteChange::Released(c) => self.demux.release(&c, worker),
            }
        }
        for i in 0..n {
            let (len, from) = self.meta[i];
            let data = &self.held[i][..len];
            match self
                .demux
                .route(from, data)
                .filter(|w| *w < port.lanes.len())
            {
                Some(w) if w == self.index => own(received, from, data),
                Some(w) => {
                    // The buffer travels with it; an empty one marks the slot.
                    let buf = std::mem::take(&mut self.held[i]);
                    let packet = Packet {
                        from,
                        received,
                        len,
                        buf,
                    };
                    match port.lanes[w].inbound.push(packet) {
                        Ok(()) => self.woken[w] = true,
                        Err(p) => {
                            port.counters.overload_drops.fetch_add(1, Ordering::Relaxed);
                            port.pool.give(p.buf);
                        }
                    }
                }
                None => {
                    port.counters.unroutable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.held.retain(|b| !b.is_empty());
        for (lane, woken) in port.lanes.iter().zip(&mut self.woken) {
            if std::mem::take(woken) {
                lane.waker.wake();
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demux::Claim;

    fn lane(routes: mpsc::Sender<(usize, RouteChange)>) -> Lane {
        Lane {
            inbound: ArrayQueue::new(8),
            waker: Waker::new().unwrap(),
            routes,
        }
    }

    #[test]
    fn a_worker_handles_its_own_datagrams_and_hands_over_the_others() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let to = socket.local_addr().unwrap();
        let (tx0, rx0) = mpsc::channel();
        let (tx1, _rx1) = mpsc::channel();
        let port = Port {
            socket,
            lanes: vec![lane(tx0), lane(tx1)],
            pool: Pool::new(),
            counters: PortCounters::default(),
        };
        let mut intake = Intake::new(0, 2, rx0);
        let mine = UdpSocket::bind("127.0.0.1:0").unwrap();
        let theirs = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        port.announce(
            0,
            &RouteChange::Claimed(Claim::Addr(mine.local_addr().unwrap())),
        );
        port.announce(
            1,
            &RouteChange::Claimed(Claim::Addr(theirs.local_addr().unwrap())),
        );
        mine.send_to(b"\x80mine", to).unwrap();
        theirs.send_to(b"\x80theirs", to).unwrap();
        stranger.send_to(b"\x80nobody's", to).unwrap();

        let mut own = Vec::new();
        let read = intake.read(&port, |_, from, data| own.push((from, data.to_vec())));
        assert_eq!(read, 3);
        assert_eq!(
            own,
            vec![(mine.local_addr().unwrap(), b"\x80mine".to_vec())]
        );
        let handed = port.lanes[1].inbound.pop().expect("handed to worker 1");
        assert_eq!(handed.from, theirs.local_addr().unwrap());
        assert_eq!(handed.contents(), b"\x80theirs");
        assert!(port.lanes[0].inbound.is_empty());
        assert_eq!(port.counters.unroutable.load(Ordering::Relaxed), 1);
        assert_eq!(port.counters.datagrams_in.load(Ordering::Relaxed), 3);
        // An empty socket: nothing read, nothing waits.
        assert_eq!(intake.read(&port, |_, _, _| panic!("nothing queued")), 0);
    }
}
