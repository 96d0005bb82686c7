//! Batched sending: consecutive datagrams to one destination, of one size
//! (the last may be shorter), leave in one GSO system call, so the kernel walks
//! its UDP stack once per run instead of once per packet.
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

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};

/// Collects a run of datagrams and sends it when the next one does not fit.
///
/// Works on any socket with a file descriptor (std or tokio, owned or
/// borrowed). Creating it makes the socket non-blocking: a full send buffer
/// drops datagrams, as the network could, instead of stalling the caller.
/// Receiving on the same socket is unchanged: one datagram per recv.
pub struct BatchSender<S: AsFd> {
    socket: S,
    state: UdpSocketState,
    batch: Vec<u8>,
    destination: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// The last datagram was shorter than the segment: the run is closed.
    closed: bool,
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
            batch: Vec::with_capacity(64 * 1500),
            destination: None,
            segment: 0,
            count: 0,
            closed: false,
        })
    }

    /// The socket, e.g. to receive on it or to change its options.
    pub fn socket(&self) -> &S {
        &self.socket
    }

    /// Adds a datagram; sends the run so far first if it cannot join it.
    pub fn push(&mut self, datagram: &[u8], to: SocketAddr) {
        let fits = self.destination == Some(to)
            && !self.closed
            && datagram.len() <= self.segment
            && self.count < self.state.max_gso_segments();
        if !fits {
            self.flush();
            self.destination = Some(to);
            self.segment = datagram.len();
        }
        self.batch.extend_from_slice(datagram);
        self.count += 1;
        self.closed = datagram.len() < self.segment;
    }

    /// Sends the run collected so far.
    pub fn flush(&mut self) {
        let Some(destination) = self.destination.take() else {
            return;
        };
        let transmit = Transmit {
            destination,
            ecn: None,
            contents: &self.batch,
            segment_size: (self.count > 1).then_some(self.segment),
            src_ip: None,
        };
        // A full send buffer or an unreachable peer loses these datagrams, as
        // the network could. A device refusing GSO (EIO/EINVAL) has turned it
        // off in the state by now: that one run goes out datagram by datagram.
        let socket = UdpSockRef::from(&self.socket);
        if self.state.try_send(socket, &transmit).is_err() && self.count > 1 {
            let socket = socket2::SockRef::from(&self.socket);
            let to = destination.into();
            for d in self.batch.chunks(self.segment) {
                let _ = socket.send_to(d, &to);
            }
        }
        self.batch.clear();
        self.count = 0;
        self.closed = false;
    }
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
}
