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
