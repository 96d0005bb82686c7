//! Batched receiving: one `recvmmsg` waits for the first datagram and takes
//! every other one already queued, so a busy port enters the kernel once per
//! burst instead of once per packet.
//!
//! ```
//! use std::net::{SocketAddr, UdpSocket};
//! let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
//! let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
//! for i in 0..3u8 {
//!     peer.send_to(&[i; 100], socket.local_addr().unwrap()).unwrap();
//! }
//! let mut receiver = udp_batch::BatchReceiver::default();
//! let mut bufs = vec![vec![0u8; 2048]; 8];
//! let mut got = [(0, SocketAddr::from(([0, 0, 0, 0], 0))); 8];
//! let mut n = 0;
//! while n < 3 {
//!     n += receiver.recv(&socket, &mut bufs[n..], &mut got[n..]).unwrap();
//! }
//! assert_eq!(got[2], (100, peer.local_addr().unwrap()));
//! ```

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

const MAX_BATCH: usize = 32;

/// Receives several datagrams per system call on a blocking socket (Linux,
/// Android, FreeBSD and NetBSD have `recvmmsg`).
///
/// The first datagram is waited for (the socket's read timeout applies, and
/// ends the wait with `WouldBlock` / `TimedOut`); the rest of the batch is what
/// the kernel already holds. Owns the message headers, so receiving allocates
/// nothing.
pub struct BatchReceiver {
    headers: MultiHeaders<SockaddrStorage>,
}

impl Default for BatchReceiver {
    fn default() -> BatchReceiver {
        BatchReceiver {
            headers: MultiHeaders::preallocate(MAX_BATCH, None),
        }
    }
}

impl BatchReceiver {
    /// Most datagrams one call takes.
    pub const MAX_BATCH: usize = MAX_BATCH;

    /// Fills `bufs` front to back, at most [`Self::MAX_BATCH`] of them, and writes
    /// each datagram's length and sender to `meta` at the same index. Returns
    /// how many arrived (at least one). A datagram longer than its buffer is
    /// cut to the buffer's length. A signal ends the wait with `Interrupted`.
    pub fn recv<S: AsFd, B: AsMut<[u8]>>(
        &mut self,
        socket: &S,
        bufs: &mut [B],
        meta: &mut [(usize, SocketAddr)],
    ) -> io::Result<usize> {
        let n = bufs.len().min(meta.len()).min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        let mut slices: [[IoSliceMut<'_>; 1]; MAX_BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(&mut [])]);
        for (slice, buf) in slices.iter_mut().zip(bufs.iter_mut()) {
            *slice = [IoSliceMut::new(buf.as_mut())];
        }
        let fd = socket.as_fd().as_raw_fd();
        let received = recvmmsg(
            fd,
            &mut self.headers,
            slices[..n].iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )
        .map_err(io::Error::from)?;
        let mut count = 0;
        for (m, r) in meta.iter_mut().zip(received) {
            let from = r.address.as_ref().and_then(socket_addr);
            // A datagram without an IP sender cannot be answered: report it
            // from the unspecified address, so the caller drops it as unknown.
            *m = (r.bytes, from.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))));
            count += 1;
        }
        Ok(count)
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddrV4::from(*v4).into());
    }
    a.as_sockaddr_in6().map(|v6| SocketAddrV6::from(*v6).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn unspecified() -> (usize, SocketAddr) {
        (0, SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// A loopback socket whose receives give up after `timeout`.
    fn listening(timeout: Duration) -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(timeout)).unwrap();
        socket
    }

    #[test]
    fn a_burst_comes_in_one_call_with_each_length_and_sender() {
        let socket = listening(Duration::from_secs(2));
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let to = socket.local_addr().unwrap();
        a.send_to(&[1; 100], to).unwrap();
        b.send_to(&[2; 200], to).unwrap();
        a.send_to(&[3; 50], to).unwrap();
        let mut receiver = BatchReceiver::default();
        let mut bufs = vec![[0u8; 2048]; 4];
        let mut meta = [unspecified(); 4];
        // Loopback queues all three before the call: one call takes them.
        let n = receiver.recv(&socket, &mut bufs, &mut meta).unwrap();
        assert_eq!(n, 3);
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(&meta[..3], &[(100, a), (200, b), (50, a)]);
        assert!(bufs[1][..200].iter().all(|x| *x == 2));
        assert!(bufs[2][..50].iter().all(|x| *x == 3));
    }

    #[test]
    fn a_quiet_socket_ends_the_wait_at_its_read_timeout() {
        let socket = listening(Duration::from_millis(20));
        let mut bufs = vec![[0u8; 64]; 2];
        let mut meta = [unspecified(); 2];
        let err = BatchReceiver::default()
            .recv(&socket, &mut bufs, &mut meta)
            .unwrap_err();
        assert!(matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }

    #[test]
    fn more_datagrams_than_buffers_wait_for_the_next_call() {
        let socket = listening(Duration::from_secs(2));
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..3u8 {
            peer.send_to(&[i; 10], socket.local_addr().unwrap())
                .unwrap();
        }
        let mut receiver = BatchReceiver::default();
        let mut bufs = vec![[0u8; 64]; 2];
        let mut meta = [unspecified(); 2];
        assert_eq!(receiver.recv(&socket, &mut bufs, &mut meta).unwrap(), 2);
        assert_eq!(receiver.recv(&socket, &mut bufs, &mut meta).unwrap(), 1);
        assert_eq!(bufs[0][0], 2, "the third datagram, in order");
    }
}
