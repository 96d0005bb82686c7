//! The DTLS 1.2 record layer (RFC 6347 §4.1): a datagram's records, and the
//! AES-128-GCM protection of epoch 1 (RFC 5288, nonce as RFC 6347 §4.1.2.1
//! builds it from epoch and sequence number).

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::Error;

/// Bytes of a record header: type, version, epoch, sequence number, length.
pub(super) const HEADER: usize = 13;
/// What protection adds to a record: the explicit nonce and the tag.
pub(super) const OVERHEAD: usize = 8 + 16;
/// DTLS 1.2 on the wire.
pub(super) const VERSION: [u8; 2] = [0xfe, 0xfd];

/// The content types of RFC 5246 §6.2.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ContentType {
    ChangeCipherSpec = 20,
    Alert = 21,
    Handshake = 22,
    ApplicationData = 23,
}

impl ContentType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            20 => Self::ChangeCipherSpec,
            21 => Self::Alert,
            22 => Self::Handshake,
            23 => Self::ApplicationData,
            _ => return None,
        })
    }
}

/// One record as it came off the wire.
#[derive(Debug)]
pub(super) struct Record<'a> {
    pub content: ContentType,
    pub epoch: u16,
    /// The 48-bit sequence number.
    pub seq: u64,
    /// The record's own bytes: its header, then its fragment.
    pub raw: &'a [u8],
}

impl<'a> Record<'a> {
    pub fn fragment(&self) -> &'a [u8] {
        &self.raw[HEADER..]
    }
}

/// Splits a datagram into its records. A record of an unknown type or of
/// another protocol version ends the datagram (RFC 6347 §4.1.2.7: invalid
/// records are dropped, not answered).
pub(super) fn records(datagram: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.len() < HEADER || rest[1] != 0xfe {
            return None;
        }
        let content = ContentType::from_u8(rest[0])?;
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        if rest.len() < HEADER + len {
            return None;
        }
        let (raw, tail) = rest.split_at(HEADER + len);
        rest = tail;
        let epoch = u16::from_be_bytes([raw[3], raw[4]]);
        let seq = u64::from_be_bytes([0, 0, raw[5], raw[6], raw[7], raw[8], raw[9], raw[10]]);
        Some(Record {
            content,
            epoch,
            seq,
            raw,
        })
    })
}

/// Appends a record header to `out`; its length is filled in by [`finish`].
pub(super) fn begin(out: &mut Vec<u8>, content: ContentType, epoch: u16, seq: u64) -> usize {
    let start = out.len();
    out.push(content as u8);
    out.extend_from_slice(&VERSION);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes()[2..]);
    out.extend_from_slice(&[0, 0]);
    start
}

/// Writes the length of the record begun at `start`.
pub(super) fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start - HEADER) as u16;
    out[start + 11..start + 13].copy_from_slice(&len.to_be_bytes());
}

/// One direction's epoch-1 key.
pub(super) struct Protection {
    key: LessSafeKey,
    salt: [u8; 4],
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Protection")
    }
}

impl Protection {
    pub fn new(key: &[u8; 16], salt: &[u8; 4]) -> Self {
        let key = UnboundKey::new(&AES_128_GCM, key).expect("a 16-byte key");
        Protection {
            key: LessSafeKey::new(key),
            salt: *salt,
        }
    }

    fn nonce(&self, explicit: &[u8]) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.salt);
        nonce[4..].copy_from_slice(explicit);
        Nonce::assume_unique_for_key(nonce)
    }

    /// RFC 5246 §6.2.3.3: sequence number, type, version, plaintext length.
    fn aad(header: &[u8], plain_len: usize) -> [u8; 13] {
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&header[3..11]);
        aad[8..11].copy_from_slice(&header[..3]);
        aad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
        aad
    }

    /// Appends a protected record carrying `plain` to `out`.
    pub fn seal(&self, out: &mut Vec<u8>, content: ContentType, seq: u64, plain: &[u8]) {
        let start = begin(out, content, 1, seq);
        let explicit: [u8; 8] = out[start + 3..start + 11].try_into().expect("8 bytes");
        out.extend_from_slice(&explicit);
        let aad = Self::aad(&out[start..start + HEADER], plain.len());
        let body = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(&explicit), Aad::from(aad), &mut out[body..])
            .expect("a record is far below AES-GCM's limit");
        out.extend_from_slice(tag.as_ref());
        finish(out, start);
    }

    /// The plaintext of a protected record, decrypted into `scratch`.
    pub fn open<'s>(&self, record: &Record, scratch: &'s mut Vec<u8>) -> Result<&'s [u8], Error> {
        let fragment = record.fragment();
        if fragment.len() < OVERHEAD {
            return Err(Error::BadRecordMac);
        }
        let plain_len = fragment.len() - OVERHEAD;
        let aad = Self::aad(record.raw, plain_len);
        scratch.clear();
        scratch.extend_from_slice(&fragment[8..]);
        let plain = self
            .key
            .open_in_place(self.nonce(&fragment[..8]), Aad::from(aad), scratch)
            .map_err(|_| Error::BadRecordMac)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_and_a_flipped_bit_does_not() {
        let key = Protection::new(&[3; 16], &[9; 4]);
        let mut out = Vec::new();
        key.seal(&mut out, ContentType::ApplicationData, 7, b"sctp bytes");
        assert_eq!(out.len(), HEADER + OVERHEAD + 10);
        let record = records(&out).next().unwrap();
        assert_eq!((record.epoch, record.seq), (1, 7));
        let mut scratch = Vec::new();
        assert_eq!(key.open(&record, &mut scratch).unwrap(), b"sctp bytes");

        let mut bad = out.clone();
        *bad.last_mut().unwrap() ^= 1;
        let record = records(&bad).next().unwrap();
        assert!(key.open(&record, &mut scratch).is_err());
    }

    #[test]
    fn a_truncated_record_ends_the_datagram() {
        let mut out = Vec::new();
        let start = begin(&mut out, ContentType::Handshake, 0, 1);
        out.extend_from_slice(&[1, 2, 3]);
        finish(&mut out, start);
        assert_eq!(records(&out).count(), 1);
        assert_eq!(records(&out[..out.len() - 1]).count(), 0);
    }
}
