//! Batched sending: consecutive datagrams to one destination, of one size
//! (the last may be shorter), leave in one GSO system call, so the kernel walks
//! its UDP stack once per run instead of once per packet; single datagrams to
//! different destinations leave several to one `sendmmsg`.
//!
//! ```
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! let to = socket.local_addr().unwrap();
//! let mut sender = udp_batch::BatchSender::new(&socket).unwrap();
//! for _ in 0..3 {
//!     sender.push(&[0u8; 1200], to);
//! }
//! sender.flush(); // three datagrams, one system call where the kernel has GSO
//! ```

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};

/// Runs held before they are sent: single datagrams among them leave
/// together in one `sendmmsg`.
const MAX_RUNS: usize = 32;

/// Fewer single datagrams than this go out one system call each, as before
/// `sendmmsg` was used: on bursts of 16 it saves a fifth of the send (`cargo
/// bench -p sfu --bench forward`); on a few, filling its headers eats most
/// of the saving, and served runs could not tell either way.
const MIN_MMSG: usize = 8;

/// Bytes held before they are sent (runs of up to 64 full datagrams fit).
const CAPACITY: usize = 128 * 1024;

/// Consecutive datagrams to one destination, of one size (the last may be
/// shorter), at `start` in the buffer.
#[derive(Clone, Copy, Debug)]
struct Run {
    destination: SocketAddr,
    start: usize,
    segment: usize,
    count: usize,
}

/// Collects datagrams into runs and sends them when asked or full: a run
/// of several in one GSO system call, single datagrams (to different
/// destinations, as a 1:1 room's are) several to one `sendmmsg`, in the order
/// they were pushed.
///
/// Works on any socket with a file descriptor (std or tokio, owned or
/// borrowed). Creating it makes the socket non-blocking: a full send buffer
/// drops datagrams, as the network could, instead of stalling the caller.
/// Receiving on the same socket is unchanged: one datagram per recv.
pub struct BatchSender<S: AsFd> {
    socket: S,
    state: UdpSocketState,
    batch: Vec<u8>,
    runs: Vec<Run>,
    /// The last datagram was shorter than its run's segment: the run is closed.
    closed: bool,
}

thread_local! {
    /// `sendmmsg`'s message headers, made once per thread (they hold raw
    /// pointers, so a sender that owned them could not move between threads).
    static HEADERS: RefCell<MultiHeaders<SockaddrStorage>> =
        RefCell::new(MultiHeaders::preallocate(MAX_RUNS, None));
}

impl<S: AsFd> BatchSender<S> {
    pub fn new(socket: S) -> io::Result<BatchSender<S>> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // quinn-udp also turns on receive offload (GRO), after which the
        // kernel hands a plain recv several datagrams glued into one: a
        // receiver sharing this socket would take them for garbage.
        #[cfg(target_os = "linux")]
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::UdpGroSegment, &false)
            .map_err(io::Error::from)?;
        Ok(BatchSender {
            socket,
            state,
            batch: Vec::with_capacity(CAPACITY),
            runs: Vec::with_capacity(MAX_RUNS),
            closed: false,
        })
    }

    /// The socket, e.g. to receive on it or to change its options.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// Adds a datagram: to the last run if it can join it, else as a new run
    /// (sending what is held first when that is full).
    pub fn push(&mut self, datagram: &[u8], to: SocketAddr) {
        let full = self.batch.len() + datagram.len() > CAPACITY
            || (self.runs.len() == MAX_RUNS && !self.joins(datagram, to));
        if full {
            self.flush();
        }
        if !self.joins(datagram, to) {
            self.runs.push(Run {
                destination: to,
                start: self.batch.len(),
                segment: datagram.len(),
                count: 0,
            });
        }
        self.batch.extend_from_slice(datagram);
        let run = self.runs.last_mut().expect("pushed above");
        run.count += 1;
        self.closed = datagram.len() < run.segment;
    }

    /// Whether `datagram` to `to` can join the last run.
    fn joins(&self, datagram: &[u8], to: SocketAddr) -> bool {
        self.runs.last().is_some_and(|r| {
            r.destination == to
                && !self.closed
                && datagram.len() <= r.segment
                && r.count < self.state.max_gso_segments()
        })
    }

    /// Sends everything held, in order.
    pub fn flush(&mut self) {
        let mut singles = 0..0;
        for i in 0..self.runs.len() {
            if self.runs[i].count == 1 {
                if singles.is_empty() {
                    singles = i..i;
                }
                singles.end = i + 1;
                continue;
            }
            self.send_singles(singles.clone());
            singles = 0..0;
            self.send_run(i);
        }
        self.send_singles(singles);
        self.batch.clear();
        self.runs.clear();
        self.closed = false;
    }

    /// Sends a run in one system call (GSO when it is several datagrams).
    fn send_run(&mut self, i: usize) {
        let run = self.runs[i];
        let contents = bytes_of(&self.runs, &self.batch, i);
        let transmit = Transmit {
            destination: run.destination,
            ecn: None,
            contents,
            segment_size: (run.count > 1).then_some(run.segment),
            src_ip: None,
        };
        // A full send buffer or an unreachable peer loses these datagrams, as
        // the network could. A device refusing GSO (EIO/EINVAL) has turned it
        // off in the state by now: that one run goes out datagram by datagram.
        let socket = UdpSockRef::from(&self.socket);
        if self.state.try_send(socket, &transmit).is_err() && run.count > 1 {
            let socket = socket2::SockRef::from(&self.socket);
            let to = run.destination.into();
            for d in contents.chunks(run.segment) {
                let _ = socket.send_to(d, &to);
            }
        }
    }

    /// Sends the single datagrams of runs `range` in one `sendmmsg` (or as
    /// few as the kernel takes them in).
    fn send_singles(&mut self, range: std::ops::Range<usize>) {
        if range.len() < MIN_MMSG {
            for i in range {
                self.send_run(i);
            }
            return;
        }
        let BatchSender {
            socket,
            batch,
            runs,
            ..
        } = self;
        let mut next = range.start;
        while next < range.end {
            let n = range.end - next;
            let slices: [[IoSlice<'_>; 1]; MAX_RUNS] = std::array::from_fn(|k| {
                [IoSlice::new(if k < n {
                    bytes_of(runs, batch, next + k)
                } else {
                    &[]
                })]
            });
            let addresses: [Option<SockaddrStorage>; MAX_RUNS] = std::array::from_fn(|k| {
                (k < n).then(|| SockaddrStorage::from(runs[next + k].destination))
            });
            let no_control: [ControlMessage<'_>; 0] = [];
            let sent = HEADERS.with_borrow_mut(|headers| {
                sendmmsg(
                    socket.as_fd().as_raw_fd(),
                    headers,
                    slices[..n].iter(),
                    &addresses[..n],
                    no_control,
                    MsgFlags::MSG_DONTWAIT,
                )
                .map(|results| results.count())
            });
            match sent {
                Ok(k) if k > 0 => next += k,
                // A full send buffer: the rest is lost, as the network could lose it.
                Err(nix::errno::Errno::EAGAIN) => return,
                // The first was refused (a destination the socket cannot
                // reach): it is lost, the rest goes on.
                _ => next += 1,
            }
        }
    }
}

/// The bytes of run `i` of `runs`, held back to back in `batch`.
fn bytes_of<'a>(runs: &[Run], batch: &'a [u8], i: usize) -> &'a [u8] {
    let end = runs.get(i + 1).map_or(batch.len(), |r| r.start);
    &batch[runs[i].start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn runs_of_one_size_and_destination_arrive_as_separate_datagrams_in_order() {
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_b = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&to_a, &to_b] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        let mut sender = BatchSender::new(from).unwrap();
        let (a, b) = (to_a.local_addr().unwrap(), to_b.local_addr().unwrap());
        // One run to A closed by a shorter datagram, one to B, a longer one to A.
        let sent: Vec<(SocketAddr, Vec<u8>)> = vec![
            (a, vec![1; 100]),
            (a, vec![2; 100]),
            (a, vec![3; 40]),
            (a, vec![4; 100]),
            (b, vec![5; 100]),
            (a, vec![6; 300]),
        ];
        for (to, d) in &sent {
            sender.push(d, *to);
        }
        sender.flush();
        let mut buf = [0u8; 2048];
        for (to, d) in &sent {
            let socket = if *to == a { &to_a } else { &to_b };
            let (n, _) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &d[..], "datagram {} intact and in order", d[0]);
        }
    }

    #[test]
    fn a_socket_that_also_sends_in_batches_still_receives_one_datagram_per_recv() {
        let to = UdpSocket::bind("127.0.0.1:0").unwrap();
        let _its_own_sender = BatchSender::new(&to).unwrap();
        to.set_nonblocking(false).unwrap();
        to.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut sender = BatchSender::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = to.local_addr().unwrap();
        for i in 0..8u8 {
            sender.push(&[i; 1000], addr);
        }
        sender.flush();
        let mut buf = [0u8; 65536];
        for i in 0..8u8 {
            let (n, _) = to.recv_from(&mut buf).unwrap();
            assert_eq!(n, 1000, "datagram {i} arrives alone, not glued to the next");
            assert!(buf[..n].iter().all(|b| *b == i));
        }
    }

    #[test]
    fn single_datagrams_to_many_destinations_all_arrive_each_in_order() {
        let sinks: Vec<UdpSocket> = (0..10)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s
            })
            .collect();
        let mut sender = BatchSender::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        // Three times as many as one sendmmsg takes, each its own run.
        for i in 0..100u8 {
            sender.push(
                &vec![i; 50 + usize::from(i)],
                sinks[usize::from(i) % 10].local_addr().unwrap(),
            );
        }
        sender.flush();
        let mut buf = [0u8; 2048];
        for (k, sink) in sinks.iter().enumerate() {
            for i in (k..100).step_by(10) {
                let n = sink.recv(&mut buf).unwrap();
                assert_eq!(
                    &buf[..n],
                    &vec![i as u8; 50 + i][..],
                    "datagram {i} to sink {k}"
                );
            }
        }
    }

    #[test]
    fn a_datagram_the_kernel_refuses_costs_only_itself() {
        // To IPv6 from an IPv4 socket: refused, each in its turn.
        let gone: SocketAddr = "[::1]:9".parse().unwrap();
        let open = UdpSocket::bind("127.0.0.1:0").unwrap();
        open.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut sender = BatchSender::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        for round in 0..3u8 {
            for i in 0..8u8 {
                sender.push(&[round, i], gone);
                sender.push(&[round, i, 0], open.local_addr().unwrap());
            }
            sender.flush();
        }
        let mut buf = [0u8; 64];
        for round in 0..3u8 {
            for i in 0..8u8 {
                let n = open.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[round, i, 0]);
            }
        }
    }
}
