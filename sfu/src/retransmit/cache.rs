//! The packets a sender's video streams brought in, by original sequence
//! number, kept [`MAX_AGE`] for the NACKs of every receiver of them.
//!
//! One stream's packets lie back to back in a byte ring (no slot wasted on a
//! short packet), with a FIFO of records saying where each is and an index
//! from sequence number to record. The ring starts empty; whenever its end
//! is reached and starting over would overwrite a packet younger than
//! [`MAX_AGE`], it doubles, up to [`MAX_STREAM_BYTES`]. After that it is
//! reused and nothing is allocated.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtp::{Packet, RtpError};

/// How long a packet is kept. A retransmission later than this comes after
/// the receiver's jitter buffer has given up on it.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Bytes of packets kept per stream: a full [`MAX_AGE`] up to 2 Mbit/s
/// (Jitsi's top VP8 layer is 1.5 Mbit/s); a faster stream keeps less time.
pub const MAX_STREAM_BYTES: usize = 256 * 1024;

/// Packets kept per stream: [`MAX_AGE`] up to 1024 packets a second.
pub const MAX_STREAM_PACKETS: usize = 1024;

/// Streams kept per sender: a camera and a screen share, three simulcast
/// layers each. A new stream beyond takes over the least recently fed one.
pub const MAX_STREAMS: usize = 6;

/// Longest packet kept (an Ethernet MTU; WebRTC stacks send at most ~1200).
pub const MAX_PACKET_LEN: usize = 1500;

/// The most heap one stream's cache holds: its ring, 12 bytes a record and
/// two 4-byte index slots a record (276 KiB).
pub const MAX_STREAM_MEMORY: usize = MAX_STREAM_BYTES + MAX_STREAM_PACKETS * (12 + 2 * 4);

/// The ring's first size: about a third of a second of a 200 kbit/s layer.
const FIRST_RING_BYTES: usize = 8 * 1024;
/// The index's first size (slots, a power of two).
const FIRST_INDEX_SLOTS: usize = 64;

/// Why a packet was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("not an RTP packet: {0}")]
    NotRtp(#[from] RtpError),
    #[error("{0} bytes, longer than the {MAX_PACKET_LEN} bytes a packet may have")]
    TooLong(usize),
}

/// Where one packet is in the ring. 12 bytes.
#[derive(Debug, Clone, Copy)]
struct Record {
    offset: u32,
    /// Milliseconds since the cache's epoch, wrapping (see [`age_ms`]).
    arrived_ms: u32,
    len: u16,
    seq: u16,
}

/// One received video stream's recent packets, by original sequence number:
/// plain RTP (after SRTP and RTX are taken off).
///
/// Memory: the ring (8 KiB doubling up to [`MAX_STREAM_BYTES`] while a
/// second of the stream does not fit, so about a second of its peak rate
/// rounded up to a power of two: 32 KiB for a 200 kbit/s layer, 256 KiB at
/// 1.5 Mbit/s) and 20 bytes of record and index per packet held (under
/// 1 KiB for a 200 kbit/s layer's 25 a second): [`MAX_STREAM_MEMORY`] at most.
#[derive(Debug)]
pub struct PacketCache {
    epoch: Instant,
    ring: Vec<u8>,
    /// Where the next packet goes if it fits before the ring's end.
    head: usize,
    /// Oldest first; each record's bytes are intact.
    records: VecDeque<Record>,
    /// The serial number of `records[0]`; serials count every record ever kept.
    front_serial: u32,
    /// By `seq % len`: the serial of the newest record with that number
    /// (checked on use: a stale slot finds nothing, or a true record).
    index: Vec<u32>,
    last_insert: Option<Instant>,
}

impl PacketCache {
    /// An empty cache; nothing is allocated until its first packet.
    pub fn new(now: Instant) -> Self {
        PacketCache {
            epoch: now,
            ring: Vec::new(),
            head: 0,
            records: VecDeque::new(),
            front_serial: 0,
            index: Vec::new(),
            last_insert: None,
        }
    }

    /// Keeps a copy of the RTP packet `packet`, received at `now`. A number
    /// already held keeps its first copy.
    pub fn insert(&mut self, now: Instant, packet: &[u8]) -> Result<(), CacheError> {
        let seq = checked(packet)?.header.seq;
        self.store(now, seq, packet);
        Ok(())
    }

    /// The packet with original sequence number `seq`, unless older than [`MAX_AGE`].
    pub fn get(&self, now: Instant, seq: u16) -> Option<&[u8]> {
        // Past this, every record is expired (and old enough for its
        // millisecond stamp to have wrapped).
        if self
            .last_insert
            .is_none_or(|t| now.saturating_duration_since(t) >= MAX_AGE)
        {
            return None;
        }
        let r = self.records[self.find(seq)?];
        if age_ms(self.ms(now), r.arrived_ms) >= max_age_ms() {
            return None;
        }
        let at = r.offset as usize;
        Some(&self.ring[at..at + usize::from(r.len)])
    }

    /// How many packets are held (some may have expired since).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Forgets every packet; the memory is kept for the next ones.
    pub fn clear(&mut self) {
        self.front_serial = self.front_serial.wrapping_add(self.records.len() as u32);
        self.records.clear();
        self.head = 0;
        self.last_insert = None;
    }

    /// Heap bytes held.
    pub fn memory(&self) -> usize {
        self.ring.capacity()
            + self.records.capacity() * std::mem::size_of::<Record>()
            + self.index.capacity() * std::mem::size_of::<u32>()
    }

    /// `packet` has passed [`checked`] and its number is `seq`.
    fn store(&mut self, now: Instant, seq: u16, packet: &[u8]) {
        if self
            .last_insert
            .is_some_and(|t| now.saturating_duration_since(t) >= MAX_AGE)
        {
            self.clear();
        }
        self.last_insert = Some(now);
        let ms = self.ms(now);
        while self
            .records
            .front()
            .is_some_and(|r| age_ms(ms, r.arrived_ms) >= max_age_ms())
        {
            self.pop();
        }
        if self.find(seq).is_some() {
            return;
        }
        if self.records.len() >= MAX_STREAM_PACKETS {
            self.pop();
        }
        let at = self.make_room(packet.len());
        self.ring[at..at + packet.len()].copy_from_slice(packet);
        self.head = at + packet.len();
        let serial = self.front_serial.wrapping_add(self.records.len() as u32);
        self.records.push_back(Record {
            offset: at as u32,
            arrived_ms: ms,
            len: packet.len() as u16,
            seq,
        });
        if self.records.len() * 2 > self.index.len() {
            self.grow_index();
        }
        let mask = self.index.len() - 1;
        self.index[usize::from(seq) & mask] = serial;
    }

    /// Where `len` bytes go: at the head, or at the ring's start once it is
    /// full. Whatever they would overwrite is forgotten first.
    fn make_room(&mut self, len: usize) -> usize {
        if self.head + len > self.ring.len() {
            // Starting over at 0 would forget a packet still wanted (the
            // older ones past the head, or the oldest at the start): grow instead.
            let would_forget = self
                .records
                .front()
                .is_some_and(|r| r.offset as usize >= self.head || (r.offset as usize) < len);
            if (would_forget || self.ring.is_empty()) && self.ring.len() < MAX_STREAM_BYTES {
                let size = (self.ring.len() * 2).clamp(FIRST_RING_BYTES, MAX_STREAM_BYTES);
                self.ring.reserve_exact(size - self.ring.len());
                self.ring.resize(size, 0);
            }
        }
        let at = if self.head + len <= self.ring.len() {
            self.head
        } else {
            // What lies past the head is older than all before it.
            while self
                .records
                .front()
                .is_some_and(|r| r.offset as usize >= self.head)
            {
                self.pop();
            }
            0
        };
        // The records after the head are in ring order, oldest first.
        while self.records.front().is_some_and(|r| {
            let start = r.offset as usize;
            start < at + len && start + usize::from(r.len) > at
        }) {
            self.pop();
        }
        at
    }

    fn pop(&mut self) {
        if self.records.pop_front().is_some() {
            self.front_serial = self.front_serial.wrapping_add(1);
        }
    }

    /// The position in `records` of the newest record numbered `seq`.
    fn find(&self, seq: u16) -> Option<usize> {
        let mask = self.index.len().checked_sub(1)?;
        let serial = self.index[usize::from(seq) & mask];
        let i = serial.wrapping_sub(self.front_serial) as usize;
        (i < self.records.len() && self.records[i].seq == seq).then_some(i)
    }

    /// Doubles the index (it stays at least twice the records, so numbers
    /// in a row never share a slot) and fills it from the records.
    fn grow_index(&mut self) {
        let slots = (self.index.len() * 2).clamp(FIRST_INDEX_SLOTS, 2 * MAX_STREAM_PACKETS);
        if slots == self.index.len() {
            return;
        }
        self.index = vec![0; slots];
        for (i, r) in self.records.iter().enumerate() {
            self.index[usize::from(r.seq) & (slots - 1)] = self.front_serial.wrapping_add(i as u32);
        }
    }

    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }
}

/// Milliseconds from `then` to `now` on the wrapping clock; a `then` after
/// `now` (times handed in slightly out of order) is age 0.
pub(super) fn age_ms(now: u32, then: u32) -> u32 {
    let age = now.wrapping_sub(then);
    if age > u32::MAX / 2 { 0 } else { age }
}

fn max_age_ms() -> u32 {
    MAX_AGE.as_millis() as u32
}

fn checked(packet: &[u8]) -> Result<Packet, CacheError> {
    let parsed = Packet::parse(packet)?;
    if packet.len() > MAX_PACKET_LEN {
        return Err(CacheError::TooLong(packet.len()));
    }
    Ok(parsed)
}

/// One received stream's cache and when it was last fed.
#[derive(Debug)]
struct Stream {
    ssrc: u32,
    cache: PacketCache,
    fed: Instant,
}

/// One sender's video streams' caches, by SSRC, at most [`MAX_STREAMS`].
///
/// Fed with the packets forwarded to at least one receiver (so the memory
/// follows what is forwarded, not what is sent), read by every receiver's
/// [`Retransmitter`](super::Retransmitter).
#[derive(Debug, Default)]
pub struct PacketCaches {
    streams: Vec<Stream>,
}

impl PacketCaches {
    /// No stream yet; nothing is allocated.
    pub fn new() -> Self {
        PacketCaches::default()
    }

    /// Keeps a copy of the RTP packet `packet`, under its SSRC.
    pub fn insert(&mut self, now: Instant, packet: &[u8]) -> Result<(), CacheError> {
        let header = checked(packet)?.header;
        let i = match self.streams.iter().position(|s| s.ssrc == header.ssrc) {
            Some(i) => i,
            None if self.streams.len() < MAX_STREAMS => {
                self.streams.push(Stream {
                    ssrc: header.ssrc,
                    cache: PacketCache::new(now),
                    fed: now,
                });
                self.streams.len() - 1
            }
            None => {
                // The least recently fed stream's memory goes to the new one.
                let Some((i, stale)) = self
                    .streams
                    .iter_mut()
                    .enumerate()
                    .min_by_key(|(_, s)| s.fed)
                else {
                    return Ok(());
                };
                stale.ssrc = header.ssrc;
                stale.cache.clear();
                i
            }
        };
        let stream = &mut self.streams[i];
        stream.fed = now;
        stream.cache.store(now, header.seq, packet);
        Ok(())
    }

    /// The packet `seq` of stream `ssrc`, unless older than [`MAX_AGE`].
    pub fn get(&self, now: Instant, ssrc: u32, seq: u16) -> Option<&[u8]> {
        let stream = self.streams.iter().find(|s| s.ssrc == ssrc)?;
        stream.cache.get(now, seq)
    }

    /// Forgets stream `ssrc` and frees its memory (its sender stopped it).
    pub fn remove(&mut self, ssrc: u32) {
        self.streams.retain(|s| s.ssrc != ssrc);
    }

    /// Heap bytes held.
    pub fn memory(&self) -> usize {
        self.streams.capacity() * std::mem::size_of::<Stream>()
            + self.streams.iter().map(|s| s.cache.memory()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retransmit::tests::{Rng, packet};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn keeps_packets_by_number_for_max_age() {
        let t0 = Instant::now();
        let mut cache = PacketCache::new(t0);
        assert_eq!(
            cache.memory(),
            0,
            "nothing allocated before the first packet"
        );
        let a = packet(1000, 7, 300);
        let b = packet(1000, 8, 20);
        cache.insert(t0, &a).unwrap();
        cache.insert(t0 + 10 * MS, &b).unwrap();
        assert_eq!(cache.get(t0 + 10 * MS, 7), Some(&a[..]));
        assert_eq!(cache.get(t0 + 10 * MS, 8), Some(&b[..]));
        assert_eq!(cache.get(t0 + 10 * MS, 9), None);
        assert_eq!(cache.get(t0 + MAX_AGE - MS, 7), Some(&a[..]));
        assert_eq!(cache.get(t0 + MAX_AGE, 7), None, "expired");
        assert_eq!(cache.get(t0 + MAX_AGE, 8), Some(&b[..]));
        assert_eq!(cache.get(t0 + 10 * MS + MAX_AGE, 8), None);
    }

    #[test]
    fn a_number_held_keeps_its_first_copy() {
        let t0 = Instant::now();
        let mut cache = PacketCache::new(t0);
        let first = packet(1, 500, 40);
        let mut again = first.clone();
        *again.last_mut().unwrap() ^= 0xff;
        cache.insert(t0, &first).unwrap();
        cache.insert(t0, &again).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(t0, 500), Some(&first[..]));
    }

    #[test]
    fn refuses_what_is_not_rtp_or_too_long() {
        let t0 = Instant::now();
        let mut caches = PacketCaches::new();
        assert_eq!(
            caches.insert(t0, &[0x80, 96, 0]),
            Err(CacheError::NotRtp(RtpError::TooShort))
        );
        assert_eq!(caches.insert(t0, &packet(1, 1, MAX_PACKET_LEN)), Ok(()));
        let long = packet(2, 1, MAX_PACKET_LEN + 1);
        assert_eq!(
            caches.insert(t0, &long),
            Err(CacheError::TooLong(long.len()))
        );
        assert!(caches.get(t0, 2, 1).is_none());
    }

    /// Whatever the order, sizes and rate, a packet found is the packet
    /// stored under its number, and the newest ones are all found.
    #[test]
    fn what_is_found_is_what_was_stored() {
        let t0 = Instant::now();
        let mut rng = Rng(99);
        let mut cache = PacketCache::new(t0);
        let mut stored: Vec<Option<Vec<u8>>> = vec![None; 65536];
        let mut now = t0;
        let mut seq = 65000u16;
        for i in 0..60_000u32 {
            // Mostly in order, sometimes late or repeated, bursts and pauses.
            let s = match rng.next() % 20 {
                0 => seq.wrapping_sub((rng.next() % 40) as u16),
                _ => {
                    seq = seq.wrapping_add(1 + u16::from(rng.next().is_multiple_of(30)));
                    seq
                }
            };
            // Phases of 500 and 2000 packets a second: a lap of the full
            // ring takes a second, or a quarter of one.
            let gap = if (i / 5000) % 2 == 0 { 4000 } else { 1000 };
            now += Duration::from_micros(u64::from(rng.next() % gap));
            let len = 20 + (rng.next() % 1000) as usize;
            let p = packet(42, s, len);
            if cache.get(now, s).is_none() {
                stored[usize::from(s)] = Some(p.clone());
            }
            cache.insert(now, &p).unwrap();
            // The newest, and a sample of older ones (overwritten ones must not be found).
            let sample = (0..16u16).chain((0..16).map(|_| (rng.next() % 3000) as u16));
            for back in sample {
                let s = seq.wrapping_sub(back);
                if let Some(found) = cache.get(now, s) {
                    assert_eq!(Some(found), stored[usize::from(s)].as_deref(), "packet {i}");
                }
            }
            assert!(cache.get(now, s).is_some(), "the packet just stored, {i}");
            assert!(cache.memory() <= MAX_STREAM_MEMORY);
        }
        // At the end 2000 packets a second of 520 bytes on average: the ring
        // grew to its cap, which holds a quarter second of them.
        let newest_kept = (0..400u16)
            .filter(|back| cache.get(now, seq.wrapping_sub(*back)).is_some())
            .count();
        assert!(newest_kept > 350, "{newest_kept}");
    }

    #[test]
    fn grows_only_as_far_as_a_second_of_the_stream_needs() {
        let t0 = Instant::now();
        let mut cache = PacketCache::new(t0);
        // 200 kbit/s: 25 packets of 1000 bytes a second.
        for i in 0..500u16 {
            let now = t0 + 40 * MS * u32::from(i);
            cache.insert(now, &packet(1, i, 1000)).unwrap();
        }
        let now = t0 + 40 * MS * 499;
        assert!(
            cache.get(now, 499 - 24).is_some(),
            "the last second is kept"
        );
        assert!(cache.memory() <= 32 * 1024 + 2048, "{}", cache.memory());
        // 8 Mbit/s: the ring stops at its cap and keeps less than a second.
        for i in 500..5500u16 {
            let now = t0 + 40 * MS * 499 + MS * u32::from(i - 500);
            cache.insert(now, &packet(1, i, 1000)).unwrap();
        }
        let now = t0 + 40 * MS * 499 + MS * 4999;
        assert!(cache.get(now, 5499).is_some());
        assert!(cache.get(now, 5499 - 200).is_some(), "a quarter second");
        assert!(cache.get(now, 5499 - 300).is_none(), "not more");
        assert_eq!(cache.ring.len(), MAX_STREAM_BYTES);
        assert!(cache.len() < MAX_STREAM_PACKETS);
    }

    #[test]
    fn keeps_at_most_max_stream_packets() {
        let t0 = Instant::now();
        let mut cache = PacketCache::new(t0);
        for i in 0..3000u16 {
            cache
                .insert(
                    t0 + Duration::from_micros(u64::from(i) * 100),
                    &packet(1, i, 12),
                )
                .unwrap();
        }
        let now = t0 + Duration::from_micros(300_000);
        assert_eq!(cache.len(), MAX_STREAM_PACKETS);
        assert!(cache.get(now, 2999).is_some());
        assert!(cache.get(now, 3000 - MAX_STREAM_PACKETS as u16).is_some());
        assert!(cache.get(now, 2999 - MAX_STREAM_PACKETS as u16).is_none());
    }

    #[test]
    fn after_a_pause_nothing_is_found_and_the_next_packets_are() {
        let t0 = Instant::now();
        let mut cache = PacketCache::new(t0);
        for i in 0..100u16 {
            cache
                .insert(t0 + MS * u32::from(i), &packet(1, i, 500))
                .unwrap();
        }
        // About 50 days: the millisecond stamps wrap, nothing old comes back.
        let later = t0 + Duration::from_secs(50 * 24 * 3600);
        for i in 0..100u16 {
            assert_eq!(cache.get(later, i), None);
        }
        cache.insert(later, &packet(1, 5000, 100)).unwrap();
        assert_eq!(cache.len(), 1);
        assert!(cache.get(later, 5000).is_some());
        assert_eq!(cache.get(later, 50), None);
    }

    #[test]
    fn a_new_stream_beyond_the_limit_takes_the_stalest_ones_place() {
        let t0 = Instant::now();
        let mut caches = PacketCaches::new();
        for ssrc in 0..MAX_STREAMS as u32 {
            caches
                .insert(t0 + MS * ssrc, &packet(ssrc, 1, 100))
                .unwrap();
        }
        caches.insert(t0 + MS * 10, &packet(0, 2, 100)).unwrap();
        caches.insert(t0 + MS * 11, &packet(77, 1, 100)).unwrap();
        let now = t0 + MS * 12;
        assert!(caches.get(now, 77, 1).is_some());
        assert!(caches.get(now, 0, 2).is_some(), "fed lately, kept");
        assert!(caches.get(now, 1, 1).is_none(), "the stalest made room");
        for ssrc in 2..MAX_STREAMS as u32 {
            assert!(caches.get(now, ssrc, 1).is_some());
        }
        caches.remove(77);
        assert!(caches.get(now, 77, 1).is_none());
    }
}
