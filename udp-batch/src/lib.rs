//! Batched UDP for media: sends of one size and destination leave in one GSO
//! system call ([`BatchSender`]), and receives take every queued datagram in
//! one `recvmmsg` ([`BatchReceiver`]), so the kernel is entered once per batch
//! instead of once per packet.

mod recv;
mod send;

pub use recv::BatchReceiver;
pub use send::BatchSender;
