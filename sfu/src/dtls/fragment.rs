//! Handshake messages in and out of records (RFC 6347 §4.2.2-4.2.3): each
//! message carries its sequence number, and may arrive in fragments, out of
//! order, twice; ours leave cut to the path's MTU.

use super::Error;
use super::record::{self, ContentType};

/// Bytes of a DTLS handshake header.
pub(super) const HEADER: usize = 12;
/// The largest handshake message taken (a certificate chain of a few KB is the largest one expected).
const MAX_MESSAGE: usize = 16 * 1024;
/// How far ahead of the next expected message fragments are kept.
const MAX_AHEAD: u16 = 8;

/// A piece of a handshake message as one record carried it.
#[derive(Debug)]
pub(super) struct Fragment<'a> {
    pub msg_type: u8,
    pub length: usize,
    pub seq: u16,
    pub offset: usize,
    pub body: &'a [u8],
}

/// The handshake fragments in a record's plaintext.
pub(super) fn fragments(mut plain: &[u8]) -> impl Iterator<Item = Result<Fragment<'_>, Error>> {
    std::iter::from_fn(move || {
        if plain.is_empty() {
            return None;
        }
        if plain.len() < HEADER {
            plain = &[];
            return Some(Err(Error::Malformed("handshake header")));
        }
        let u24 = |b: &[u8]| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
        let length = u24(&plain[1..4]);
        let seq = u16::from_be_bytes([plain[4], plain[5]]);
        let offset = u24(&plain[6..9]);
        let frag_len = u24(&plain[9..12]);
        if plain.len() < HEADER + frag_len || offset + frag_len > length {
            plain = &[];
            return Some(Err(Error::Malformed("handshake fragment")));
        }
        let fragment = Fragment {
            msg_type: plain[0],
            length,
            seq,
            offset,
            body: &plain[HEADER..HEADER + frag_len],
        };
        plain = &plain[HEADER + frag_len..];
        Some(Ok(fragment))
    })
}

/// A whole handshake message.
#[derive(Debug)]
pub(super) struct Message {
    pub msg_type: u8,
    pub seq: u16,
    pub body: Vec<u8>,
}

impl Message {
    /// The message as the transcript hashes it: one fragment holding all of it
    /// (RFC 6347 §4.2.6).
    pub fn transcript_bytes(msg_type: u8, seq: u16, body: &[u8], out: &mut Vec<u8>) {
        write_header(out, msg_type, body.len(), seq, 0, body.len());
        out.extend_from_slice(body);
    }
}

fn write_header(out: &mut Vec<u8>, msg_type: u8, len: usize, seq: u16, offset: usize, frag: usize) {
    out.push(msg_type);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&(frag as u32).to_be_bytes()[1..]);
}

/// A message some of whose bytes have come.
#[derive(Debug)]
struct Partial {
    msg_type: u8,
    seq: u16,
    body: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    filled: Vec<(usize, usize)>,
}

impl Partial {
    fn complete(&self) -> bool {
        self.body.is_empty() || self.filled == [(0, self.body.len())]
    }

    fn fill(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        self.body[offset..end].copy_from_slice(bytes);
        self.filled.push((offset, end));
        self.filled.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.filled.len());
        for &(s, e) in &self.filled {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.filled = merged;
    }
}

/// The peer's handshake messages put back together, handed out in order.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    next_seq: u16,
    partial: Vec<Partial>,
}

impl Reassembly {
    /// The sequence number of the next message to be handed out.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Keeps a fragment of a message still to come; one of a message already
    /// handed out, or too far ahead, is dropped.
    pub fn insert(&mut self, fragment: &Fragment) -> Result<(), Error> {
        if fragment.seq < self.next_seq || fragment.seq - self.next_seq >= MAX_AHEAD {
            return Ok(());
        }
        if fragment.length > MAX_MESSAGE {
            return Err(Error::Malformed("handshake message over 16 KB"));
        }
        let at = match self.partial.iter().position(|p| p.seq == fragment.seq) {
            Some(at) => at,
            None => {
                self.partial.push(Partial {
                    msg_type: fragment.msg_type,
                    seq: fragment.seq,
                    body: vec![0; fragment.length],
                    filled: Vec::new(),
                });
                self.partial.len() - 1
            }
        };
        let partial = &mut self.partial[at];
        if partial.msg_type != fragment.msg_type || partial.body.len() != fragment.length {
            return Err(Error::Malformed("fragments of one message disagree"));
        }
        partial.fill(fragment.offset, fragment.body);
        Ok(())
    }

    /// The next message in order, once all of it is here.
    pub fn next(&mut self) -> Option<Message> {
        let at = self
            .partial
            .iter()
            .position(|p| p.seq == self.next_seq && p.complete())?;
        let partial = self.partial.swap_remove(at);
        self.next_seq = self.next_seq.wrapping_add(1);
        Some(Message {
            msg_type: partial.msg_type,
            seq: partial.seq,
            body: partial.body,
        })
    }
}

/// One item of a flight: a handshake message in its epoch, or the
/// ChangeCipherSpec that switches to epoch 1.
#[derive(Debug)]
pub(super) enum FlightItem {
    Handshake { message: Message, epoch: u16 },
    ChangeCipherSpec,
}

impl FlightItem {
    pub fn handshake(message: Message, epoch: u16) -> Self {
        FlightItem::Handshake { message, epoch }
    }
}

/// Our next record sequence number of each epoch.
#[derive(Debug, Default)]
pub(super) struct SendSeq {
    pub epoch0: u64,
    pub epoch1: u64,
}

impl SendSeq {
    pub fn take(&mut self, epoch: u16) -> u64 {
        let seq = if epoch == 0 {
            &mut self.epoch0
        } else {
            &mut self.epoch1
        };
        *seq += 1;
        *seq - 1
    }
}

/// Packs a flight into datagrams of at most `mtu` bytes, cutting messages
/// into fragments where they do not fit; epoch-1 handshake records are sealed
/// with `seal`.
pub(super) fn pack(
    flight: &[FlightItem],
    mtu: usize,
    seqs: &mut SendSeq,
    seal: Option<&record::Protection>,
) -> Vec<Vec<u8>> {
    let mut datagrams: Vec<Vec<u8>> = vec![Vec::new()];
    let room = |d: &Vec<u8>| mtu.saturating_sub(d.len());
    for item in flight {
        match item {
            FlightItem::ChangeCipherSpec => {
                if room(datagrams.last().expect("one")) < record::HEADER + 1 {
                    datagrams.push(Vec::new());
                }
                let out = datagrams.last_mut().expect("one");
                let start = record::begin(out, ContentType::ChangeCipherSpec, 0, seqs.take(0));
                out.push(1);
                record::finish(out, start);
            }
            FlightItem::Handshake {
                message:
                    Message {
                        msg_type,
                        seq,
                        body,
                    },
                epoch,
            } => {
                let overhead =
                    record::HEADER + HEADER + if *epoch == 1 { record::OVERHEAD } else { 0 };
                let mut offset = 0;
                loop {
                    let remaining = body.len() - offset;
                    let out = datagrams.last_mut().expect("one");
                    let avail = room(out).saturating_sub(overhead);
                    if avail < remaining.min(64) && !out.is_empty() {
                        datagrams.push(Vec::new());
                        continue;
                    }
                    let take = remaining.min(avail.max(1));
                    let mut plain = Vec::with_capacity(HEADER + take);
                    write_header(&mut plain, *msg_type, body.len(), *seq, offset, take);
                    plain.extend_from_slice(&body[offset..offset + take]);
                    match epoch {
                        1 => seal.expect("epoch 1's keys before its first message").seal(
                            out,
                            ContentType::Handshake,
                            seqs.take(1),
                            &plain,
                        ),
                        _ => {
                            let start = record::begin(out, ContentType::Handshake, 0, seqs.take(0));
                            out.extend_from_slice(&plain);
                            record::finish(out, start);
                        }
                    }
                    offset += take;
                    if offset >= body.len() {
                        break;
                    }
                }
            }
        }
    }
    datagrams.retain(|d| !d.is_empty());
    datagrams
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight_of(len: usize) -> Vec<FlightItem> {
        vec![FlightItem::handshake(
            Message {
                msg_type: 11,
                seq: 1,
                body: (0..len).map(|i| i as u8).collect(),
            },
            0,
        )]
    }

    #[test]
    fn a_message_larger_than_the_mtu_is_cut_and_put_back_together_in_any_order() {
        let datagrams = pack(&flight_of(3000), 600, &mut SendSeq::default(), None);
        assert!(datagrams.len() >= 6);
        assert!(datagrams.iter().all(|d| d.len() <= 600));

        let mut reassembly = Reassembly {
            next_seq: 1,
            ..Default::default()
        };
        for datagram in datagrams.iter().rev() {
            assert!(reassembly.next().is_none());
            for record in record::records(datagram) {
                for fragment in fragments(record.fragment()) {
                    reassembly.insert(&fragment.unwrap()).unwrap();
                }
            }
        }
        let message = reassembly.next().unwrap();
        assert_eq!((message.msg_type, message.seq), (11, 1));
        assert_eq!(message.body, (0..3000).map(|i| i as u8).collect::<Vec<_>>());
        assert!(reassembly.next().is_none());
    }

    #[test]
    fn a_fragment_running_past_its_message_is_refused() {
        let mut plain = Vec::new();
        write_header(&mut plain, 1, 10, 0, 8, 4);
        plain.extend_from_slice(&[0; 4]);
        assert!(fragments(&plain).next().unwrap().is_err());
    }

    #[test]
    fn fragments_of_a_taken_message_and_far_ahead_are_dropped() {
        let mut reassembly = Reassembly::default();
        let body = [1, 2, 3];
        let at = |seq| Fragment {
            msg_type: 1,
            length: 3,
            seq,
            offset: 0,
            body: &body,
        };
        reassembly.insert(&at(0)).unwrap();
        assert_eq!(reassembly.next().unwrap().seq, 0);
        reassembly.insert(&at(0)).unwrap();
        reassembly.insert(&at(1 + MAX_AHEAD)).unwrap();
        assert!(reassembly.next().is_none());
        assert!(reassembly.partial.is_empty(), "nothing kept");
    }
}
