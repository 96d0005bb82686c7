//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): for a range of
//! transport-wide sequence numbers, which packets arrived and when.
//!
//! Statuses come first, in 16-bit chunks (a run of one status, or a vector
//! of 14 one-bit or 7 two-bit statuses); then one receive delta per received
//! packet, 1 byte (0 to 63.75 ms) or 2 bytes signed, in 250 µs ticks, each
//! from the previous received packet, the first from the reference time.

use super::{RtcpError, WriteError, need, u32_at};

/// The unit of a receive delta, in microseconds.
pub const DELTA_TICK_US: i64 = 250;
/// The unit of the reference time, in microseconds.
pub const REFERENCE_TICK_US: i64 = 64_000;

/// SSRCs, base sequence, status count, reference time, feedback count.
const FIXED_LEN: usize = 16;
const MAX_RUN: u16 = 0x1fff;
const ONE_BIT_SYMBOLS: u16 = 14;
const TWO_BIT_SYMBOLS: u16 = 7;

/// Packet statuses, which are also the sizes of their receive deltas.
const NOT_RECEIVED: u8 = 0;
const SMALL_DELTA: u8 = 1;
const LARGE_DELTA: u8 = 2;
const RESERVED: u8 = 3;

/// A transport-wide feedback packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportFeedback<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    /// The first transport-wide sequence number reported.
    pub base_seq: u16,
    /// How many sequence numbers from the base are reported.
    pub status_count: u16,
    /// 24 bits, signed, in [`REFERENCE_TICK_US`] units, on the feedback
    /// sender's clock; it wraps (every 12 days or so).
    pub reference_time: i32,
    /// Counts feedback packets, so a lost one can be noticed.
    pub feedback_count: u8,
    pub(super) chunks: &'a [u8],
    deltas: &'a [u8],
}

impl<'a> TransportFeedback<'a> {
    /// Each reported sequence number with its arrival in microseconds since
    /// the reference time, or `None` if it was not received.
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            chunks: self.chunks,
            deltas: self.deltas,
            chunk: 0,
            index: 0,
            in_chunk: 0,
            left: self.status_count,
            seq: self.base_seq,
            ticks: 0,
        }
    }

    /// The reference time in microseconds.
    pub fn reference_time_us(&self) -> i64 {
        i64::from(self.reference_time) * REFERENCE_TICK_US
    }

    pub(super) fn parse(body: &'a [u8]) -> Result<Self, RtcpError> {
        need("transport-wide feedback", body, FIXED_LEN)?;
        let base_seq = u16::from_be_bytes([body[8], body[9]]);
        let status_count = u16::from_be_bytes([body[10], body[11]]);
        let reference = u32_at(body, 12);

        // Checked once here, so that the iterator cannot fail.
        let mut at = FIXED_LEN;
        let mut left = status_count;
        let mut seq = base_seq;
        let mut deltas_len = 0;
        while left > 0 {
            let Some(&[a, b]) = body.get(at..).and_then(|rest| rest.first_chunk::<2>()) else {
                return Err(RtcpError::TwccChunks {
                    described: status_count - left,
                    count: status_count,
                });
            };
            at += 2;
            let chunk = u16::from_be_bytes([a, b]);
            let n = described(chunk).min(left);
            for i in 0..n {
                let status = status(chunk, i);
                if status == RESERVED {
                    return Err(RtcpError::TwccReservedStatus {
                        seq: seq.wrapping_add(i),
                    });
                }
                deltas_len += usize::from(status);
                if is_run(chunk) {
                    // A run's statuses are all the same.
                    deltas_len += usize::from(status) * usize::from(n - 1);
                    break;
                }
            }
            seq = seq.wrapping_add(n);
            left -= n;
        }
        let deltas = body.get(at..at + deltas_len).ok_or(RtcpError::TwccDeltas {
            needed: deltas_len,
            left: body.len() - at,
        })?;
        Ok(TransportFeedback {
            sender_ssrc: u32_at(body, 0),
            media_ssrc: u32_at(body, 4),
            base_seq,
            status_count,
            // Sign-extends the high 24 bits.
            reference_time: (reference as i32) >> 8,
            feedback_count: reference as u8,
            chunks: &body[FIXED_LEN..at],
            deltas,
        })
    }
}

fn is_run(chunk: u16) -> bool {
    chunk & 0x8000 == 0
}

/// How many statuses a chunk holds.
fn described(chunk: u16) -> u16 {
    if is_run(chunk) {
        chunk & MAX_RUN
    } else if chunk & 0x4000 == 0 {
        ONE_BIT_SYMBOLS
    } else {
        TWO_BIT_SYMBOLS
    }
}

/// The status of a chunk's `i`-th packet.
fn status(chunk: u16, i: u16) -> u8 {
    let bits = if is_run(chunk) {
        chunk >> 13 & 3
    } else if chunk & 0x4000 == 0 {
        chunk >> (13 - i) & 1
    } else {
        chunk >> (12 - 2 * i) & 3
    };
    bits as u8
}

/// The packets of a transport-wide feedback: `(sequence, arrival)`, the
/// arrival in microseconds since the reference time, `None` if not received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwccPackets<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    chunk: u16,
    /// The next status of `chunk`, of `in_chunk`.
    index: u16,
    in_chunk: u16,
    left: u16,
    seq: u16,
    ticks: i64,
}

impl Iterator for TwccPackets<'_> {
    type Item = (u16, Option<i64>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        while self.index == self.in_chunk {
            let (&[a, b], rest) = self.chunks.split_first_chunk::<2>()?;
            self.chunks = rest;
            self.chunk = u16::from_be_bytes([a, b]);
            self.index = 0;
            self.in_chunk = described(self.chunk);
        }
        let status = status(self.chunk, self.index);
        self.index += 1;
        self.left -= 1;
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let delta = match status {
            SMALL_DELTA => {
                let (&[d], rest) = self.deltas.split_first_chunk::<1>()?;
                self.deltas = rest;
                i64::from(d)
            }
            LARGE_DELTA => {
                let (&d, rest) = self.deltas.split_first_chunk::<2>()?;
                self.deltas = rest;
                i64::from(i16::from_be_bytes(d))
            }
            _ => return Some((seq, None)),
        };
        self.ticks += delta;
        Some((seq, Some(self.ticks * DELTA_TICK_US)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for TwccPackets<'_> {}

/// The fixed fields of a transport-wide feedback to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportFeedbackHeader {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    /// The first sequence number reported: the first packet given, or
    /// before it when those between were lost.
    pub base_seq: u16,
    /// In [`REFERENCE_TICK_US`] units; written as its low 24 bits.
    pub reference_time: i32,
    pub feedback_count: u8,
}

/// Groups statuses into chunks as they come: a run while they are all the
/// same, a one-bit vector of 14 while no delta is large, else two-bit
/// vectors of 7. Holds the statuses not yet in a chunk.
struct Chunker {
    /// The first pending statuses; a run keeps only its first.
    pending: [u8; ONE_BIT_SYMBOLS as usize],
    len: u16,
    all_same: bool,
    has_large: bool,
    /// Chunks emitted so far.
    emitted: usize,
}

impl Chunker {
    fn new() -> Self {
        Chunker {
            pending: [0; ONE_BIT_SYMBOLS as usize],
            len: 0,
            all_same: true,
            has_large: false,
            emitted: 0,
        }
    }

    fn can_add(&self, status: u8) -> bool {
        self.len < TWO_BIT_SYMBOLS
            || (self.len < ONE_BIT_SYMBOLS && !self.has_large && status != LARGE_DELTA)
            || (self.len < MAX_RUN && self.all_same && self.pending[0] == status)
    }

    /// Adds a status, first emitting a chunk if it does not fit.
    fn add(&mut self, status: u8, emit: &mut impl FnMut(u16)) {
        if !self.can_add(status) {
            emit(self.take_full());
            self.emitted += 1;
        }
        if self.len < ONE_BIT_SYMBOLS {
            self.pending[usize::from(self.len)] = status;
        }
        self.all_same &= self.pending[0] == status;
        self.has_large |= status == LARGE_DELTA;
        self.len += 1;
    }

    /// The chunk for the pending statuses that cannot take another.
    fn take_full(&mut self) -> u16 {
        if self.all_same {
            let chunk = run_chunk(self.pending[0], self.len);
            self.clear();
            return chunk;
        }
        if self.len == ONE_BIT_SYMBOLS {
            let chunk = vector_chunk(&self.pending, 1);
            self.clear();
            return chunk;
        }
        // Seven or more, a large delta among them or coming: the first seven
        // go in a two-bit vector, the rest (fewer than seven) stay.
        let chunk = vector_chunk(&self.pending[..usize::from(TWO_BIT_SYMBOLS)], 2);
        let rest = usize::from(self.len - TWO_BIT_SYMBOLS);
        self.pending
            .copy_within(usize::from(TWO_BIT_SYMBOLS)..usize::from(self.len), 0);
        self.len = rest as u16;
        self.all_same = self.pending[..rest].iter().all(|&s| s == self.pending[0]);
        self.has_large = self.pending[..rest].contains(&LARGE_DELTA);
        chunk
    }

    fn clear(&mut self) {
        self.len = 0;
        self.all_same = true;
        self.has_large = false;
    }

    /// The chunks the statuses added so far take.
    fn chunks(&self) -> usize {
        self.emitted + usize::from(self.len > 0)
    }

    /// The chunk for the last pending statuses, if any.
    fn finish(&mut self, emit: &mut impl FnMut(u16)) {
        let len = usize::from(self.len);
        if len == 0 {
            return;
        }
        emit(if self.all_same {
            run_chunk(self.pending[0], self.len)
        } else if len <= usize::from(TWO_BIT_SYMBOLS) {
            vector_chunk(&self.pending[..len], 2)
        } else {
            vector_chunk(&self.pending[..len], 1)
        });
        self.emitted += 1;
        self.clear();
    }
}

fn run_chunk(status: u8, len: u16) -> u16 {
    u16::from(status) << 13 | len
}

/// A status vector chunk of `bits`-bit symbols; missing ones are "not received".
fn vector_chunk(statuses: &[u8], bits: u16) -> u16 {
    let (mut chunk, symbols) = if bits == 1 {
        (0x8000, ONE_BIT_SYMBOLS)
    } else {
        (0xc000, TWO_BIT_SYMBOLS)
    };
    for (i, &s) in statuses.iter().enumerate() {
        chunk |= u16::from(s) << (bits * (symbols - 1 - i as u16));
    }
    chunk
}

/// Microseconds to the nearest delta tick. Each arrival is rounded on its
/// own and deltas are taken between rounded arrivals, so the receiver's sums
/// stay within half a tick of the truth however many packets there are.
pub(super) fn to_ticks(us: i64) -> i64 {
    us.div_euclid(DELTA_TICK_US) + i64::from(us.rem_euclid(DELTA_TICK_US) >= DELTA_TICK_US / 2)
}

/// How many of the packets fit, with the chunks and delta bytes they take.
struct Plan {
    consumed: usize,
    chunks: usize,
    deltas_len: usize,
    status_count: u16,
    len: usize,
}

/// Writes a transport-wide feedback into `room` for as many of `packets`
/// (in sequence order, arrivals in microseconds since the reference time) as
/// fit; returns its length and how many packets it reports.
pub(super) fn write(
    room: &mut [u8],
    header: &TransportFeedbackHeader,
    packets: &[(u16, Option<i64>)],
) -> Result<(usize, usize), WriteError> {
    let plan = plan(room.len(), header.base_seq, packets)?;
    let (fixed, rest) = room.split_at_mut(4 + FIXED_LEN);
    let (chunks, rest) = rest.split_at_mut(2 * plan.chunks);
    let (deltas, padding) =
        rest[..plan.len - 4 - FIXED_LEN - 2 * plan.chunks].split_at_mut(plan.deltas_len);

    let mut chunker = Chunker::new();
    let mut written = 0;
    let mut emit = |chunk: u16| {
        chunks[2 * written..2 * written + 2].copy_from_slice(&chunk.to_be_bytes());
        written += 1;
    };
    let mut next_offset = 0;
    let mut ticks = 0;
    let mut at = 0;
    for &(seq, arrival) in &packets[..plan.consumed] {
        let offset = seq.wrapping_sub(header.base_seq);
        for _ in next_offset..offset {
            chunker.add(NOT_RECEIVED, &mut emit);
        }
        next_offset = offset + 1;
        let Some(arrival) = arrival else {
            chunker.add(NOT_RECEIVED, &mut emit);
            continue;
        };
        let now = to_ticks(arrival);
        let delta = now - ticks;
        ticks = now;
        if let Ok(small) = u8::try_from(delta) {
            chunker.add(SMALL_DELTA, &mut emit);
            deltas[at] = small;
            at += 1;
        } else {
            chunker.add(LARGE_DELTA, &mut emit);
            deltas[at..at + 2].copy_from_slice(&(delta as i16).to_be_bytes());
            at += 2;
        }
    }
    chunker.finish(&mut emit);
    debug_assert_eq!((written, at), (plan.chunks, plan.deltas_len));

    let mut first = 0x80 | super::FMT_TWCC;
    if let Some(last) = padding.len().checked_sub(1) {
        first |= 0x20;
        padding.fill(0);
        padding[last] = padding.len() as u8;
    }
    fixed[0] = first;
    fixed[1] = super::RTPFB;
    fixed[2..4].copy_from_slice(&((plan.len / 4 - 1) as u16).to_be_bytes());
    fixed[4..8].copy_from_slice(&header.sender_ssrc.to_be_bytes());
    fixed[8..12].copy_from_slice(&header.media_ssrc.to_be_bytes());
    fixed[12..14].copy_from_slice(&header.base_seq.to_be_bytes());
    fixed[14..16].copy_from_slice(&plan.status_count.to_be_bytes());
    let reference = (header.reference_time as u32) << 8 | u32::from(header.feedback_count);
    fixed[16..20].copy_from_slice(&reference.to_be_bytes());
    Ok((plan.len, plan.consumed))
}

/// Runs the chunking without writing, packet by packet, until the next one
/// would not fit in `room` bytes (or the packet's limits).
fn plan(room: usize, base_seq: u16, packets: &[(u16, Option<i64>)]) -> Result<Plan, WriteError> {
    let room = room.min(super::MAX_PACKET_LEN);
    let mut plan: Option<Plan> = None;
    let mut chunker = Chunker::new();
    let mut count = |_| {};
    let mut next_offset = 0usize;
    let mut ticks = 0;
    let mut deltas_len = 0;
    let mut first_len = 0;
    for (i, &(seq, arrival)) in packets.iter().enumerate() {
        let offset = usize::from(seq.wrapping_sub(base_seq));
        if offset < next_offset {
            return Err(WriteError::OutOfOrder { seq });
        }
        if offset == usize::from(u16::MAX) {
            // The status count is 16 bits.
            if i == 0 {
                return Err(WriteError::OutOfOrder { seq });
            }
            break;
        }
        let status = match arrival {
            None => NOT_RECEIVED,
            Some(arrival) => {
                let now = to_ticks(arrival);
                let (status, size) = match now - ticks {
                    0..=0xff => (SMALL_DELTA, 1),
                    d if i16::try_from(d).is_ok() => (LARGE_DELTA, 2),
                    _ if deltas_len == 0 => return Err(WriteError::DeltaOutOfRange { seq }),
                    // Too far from the last one: the rest go in the next feedback.
                    _ => break,
                };
                ticks = now;
                deltas_len += size;
                status
            }
        };
        for _ in next_offset..offset {
            chunker.add(NOT_RECEIVED, &mut count);
        }
        chunker.add(status, &mut count);
        next_offset = offset + 1;
        let total = chunker.chunks();
        let len = (4 + FIXED_LEN + 2 * total + deltas_len).next_multiple_of(4);
        if len > room {
            first_len = len;
            break;
        }
        plan = Some(Plan {
            consumed: i + 1,
            chunks: total,
            deltas_len,
            status_count: next_offset as u16,
            len,
        });
    }
    match plan {
        Some(plan) => Ok(plan),
        None if packets.is_empty() => Err(WriteError::Empty("packets to report")),
        None => Err(WriteError::NoRoom {
            needed: first_len,
            left: room,
        }),
    }
}
