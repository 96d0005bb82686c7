//! Datagrams waiting to be sent, back to back in one buffer that is reused
//! once they have all gone: the media path writes and protects a packet
//! where it will be sent from, and nothing is allocated per datagram.
//!
//! They leave grouped by destination, each destination's in the order they
//! were queued: a fan-out queues one packet for every receiver in turn, and
//! consecutive datagrams to one address go out in one GSO system call.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Range;

/// Room kept after a datagram for what protection appends.
const MAX_DATAGRAM: usize = 1500;

#[derive(Debug, Default)]
pub(crate) struct Transmits {
    bytes: Vec<u8>,
    queue: VecDeque<(Range<usize>, SocketAddr)>,
    /// Datagrams were queued since the queue was last grouped.
    ungrouped: bool,
}

impl Transmits {
    /// Queues a copy of `datagram`.
    pub fn push(&mut self, destination: SocketAddr, datagram: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(datagram);
        self.queue.push_back((start..self.bytes.len(), destination));
        self.ungrouped = true;
    }

    /// Room for one datagram written in place; [`commit`](Self::commit)
    /// queues what was written, anything else leaves the queue as it was.
    pub fn reserve(&mut self) -> Slot<'_> {
        let start = self.bytes.len();
        self.bytes.resize(start + MAX_DATAGRAM, 0);
        Slot {
            transmits: self,
            start,
        }
    }

    /// How many datagrams are queued: a mark for [`drop_since`](Self::drop_since).
    pub fn mark(&self) -> usize {
        self.queue.len()
    }

    /// Takes back the datagrams queued since `mark`; returns how many.
    pub fn drop_since(&mut self, mark: usize) -> usize {
        let dropped = self.queue.len().saturating_sub(mark);
        if let Some((range, _)) = self.queue.get(mark) {
            self.bytes.truncate(range.start);
        }
        self.queue.truncate(mark);
        dropped
    }

    /// The next datagram; the buffer is emptied once all have been taken.
    pub fn pop(&mut self) -> Option<(SocketAddr, &[u8])> {
        if std::mem::take(&mut self.ungrouped) {
            // By destination, then by place in the buffer: the queue order.
            self.queue
                .make_contiguous()
                .sort_unstable_by_key(|(range, to)| (*to, range.start));
        }
        match self.queue.pop_front() {
            Some((range, to)) => Some((to, &self.bytes[range])),
            None => {
                self.bytes.clear();
                None
            }
        }
    }
}

/// A datagram being written at the end of the queue's buffer.
pub(crate) struct Slot<'a> {
    transmits: &'a mut Transmits,
    start: usize,
}

impl Slot<'_> {
    pub fn buf(&mut self) -> &mut [u8] {
        &mut self.transmits.bytes[self.start..]
    }

    /// Queues the first `len` bytes written for `destination`.
    pub fn commit(self, len: usize, destination: SocketAddr) {
        let end = self.start + len.min(MAX_DATAGRAM);
        self.transmits
            .queue
            .push_back((self.start..end, destination));
        self.transmits.bytes.truncate(end);
        std::mem::forget(self);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // Not committed: the room goes back.
        self.transmits.bytes.truncate(self.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_leave_grouped_by_destination_each_in_its_order() {
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let mut t = Transmits::default();
        for (to, d) in [(b, b"b1"), (a, b"a1"), (b, b"b2"), (a, b"a2"), (b, b"b3")] {
            t.push(to, d);
        }
        let mut out = Vec::new();
        while let Some((to, d)) = t.pop() {
            out.push((to, d.to_vec()));
        }
        let names: Vec<&[u8]> = out.iter().map(|(_, d)| &d[..]).collect();
        assert_eq!(names, [&b"a1"[..], b"a2", b"b1", b"b2", b"b3"]);
    }

    #[test]
    fn datagrams_queued_since_a_mark_can_be_taken_back() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut t = Transmits::default();
        t.push(a, b"keep");
        let mark = t.mark();
        t.push(a, b"drop1");
        t.push(a, b"drop2");
        assert_eq!(t.drop_since(mark), 2);
        t.push(a, b"next");
        assert_eq!(t.pop(), Some((a, &b"keep"[..])));
        assert_eq!(t.pop(), Some((a, &b"next"[..])));
        assert_eq!(t.pop(), None);
    }

    #[test]
    fn datagrams_come_out_in_order_and_the_buffer_is_reused() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut t = Transmits::default();
        t.push(a, b"one");
        let mut slot = t.reserve();
        slot.buf()[..3].copy_from_slice(b"two");
        slot.commit(3, a);
        let mut dropped = t.reserve();
        dropped.buf()[0] = 9;
        drop(dropped);
        t.push(a, b"three");
        assert_eq!(t.pop(), Some((a, &b"one"[..])));
        assert_eq!(t.pop(), Some((a, &b"two"[..])));
        assert_eq!(t.pop(), Some((a, &b"three"[..])));
        assert_eq!(t.pop(), None);
        let capacity = t.bytes.capacity();
        t.push(a, b"four");
        assert_eq!(t.pop(), Some((a, &b"four"[..])));
        assert_eq!(t.bytes.capacity(), capacity);
    }
}
