//! Batched sending: consecutive datagrams to one destination, of one size
//! (the last may be shorter), leave in one GSO system call, so the kernel walks
//! its UDP stack once per run instead of once per packet.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use quinn_udp::{Transmit, UdpSocketState};

/// Collects a run of datagrams and sends it when the next one does not fit.
pub(super) struct Sender {
    socket: UdpSocket,
    state: UdpSocketState,
    batch: Vec<u8>,
    destination: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// The last datagram was shorter than the segment: the run is closed.
    closed: bool,
}

impl Sender {
    pub(super) fn new(socket: UdpSocket) -> io::Result<Sender> {
        let state = UdpSocketState::new((&socket).into())?;
        // The state switches the socket (shared with the port's receiver) to
        // non-blocking; the port blocks in recv, so switch it back.
        socket.set_nonblocking(false)?;
        Ok(Sender {
            socket,
            state,
            batch: Vec::with_capacity(64 * 1500),
            destination: None,
            segment: 0,
            count: 0,
            closed: false,
        })
    }

    pub(super) fn push(&mut self, datagram: &[u8], to: SocketAddr) {
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

    pub(super) fn flush(&mut self) {
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
        if self
            .state
            .try_send((&self.socket).into(), &transmit)
            .is_err()
            && self.count > 1
        {
            for d in self.batch.chunks(self.segment) {
                let _ = self.socket.send_to(d, destination);
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
    use std::time::Duration;

    #[test]
    fn runs_of_one_size_and_destination_arrive_as_separate_datagrams_in_order() {
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_b = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&to_a, &to_b] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        let mut sender = Sender::new(from).unwrap();
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
}
