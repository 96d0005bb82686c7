//! The VP8 payload descriptor (RFC 7741 §4.2), the only part of a VP8
//! payload the bridge reads or writes.
//!
//! A forwarder that switches simulcast encodings must keep the picture ID and
//! TL0PICIDX continuous for the receiver, so both are patched in place, in
//! their original width: nothing after the descriptor is touched, which keeps
//! end-to-end encrypted frames intact.
//!
//! ```
//! use sfu::vp8::Descriptor;
//! // X=1 S=1 PID=0 | I=1 L=1 | M=1 picture id 0x1234 | TL0PICIDX 7 | VP8 key frame header
//! let mut payload = [0x90, 0xC0, 0x92, 0x34, 7, 0x10, 0, 0];
//! let d = Descriptor::parse(&payload).unwrap();
//! assert_eq!(d.picture_id, Some(0x1234));
//! assert!(d.is_keyframe_start());
//! d.set_picture_id(&mut payload, 0x0001);
//! d.set_tl0picidx(&mut payload, 8);
//! assert_eq!(&payload[2..5], &[0x80, 0x01, 8]);
//! ```

/// Why a payload is not a VP8 payload we can forward.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("VP8 payload shorter than its descriptor")]
    Truncated,
}

/// A parsed descriptor: the fields, and where the mutable ones sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// S: this packet starts a partition.
    pub start_of_partition: bool,
    /// PID: the partition index.
    pub partition_index: u8,
    /// N: the frame can be dropped without hurting others.
    pub non_reference: bool,
    /// 7- or 15-bit picture ID, when present.
    pub picture_id: Option<u16>,
    /// Whether the picture ID field is 15 bits wide (M bit).
    pub long_picture_id: bool,
    pub tl0picidx: Option<u8>,
    /// Temporal layer index, when present.
    pub temporal_id: Option<u8>,
    /// Y: layer sync.
    pub layer_sync: bool,
    /// Descriptor length; the VP8 payload header follows.
    pub len: usize,
    /// P bit of the VP8 payload header is 0 (only meaningful at a frame start).
    keyframe_header: bool,
}

impl Descriptor {
    /// Parses the descriptor at the start of an RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Descriptor, Error> {
        let b = |i: usize| payload.get(i).copied().ok_or(Error::Truncated);
        let first = b(0)?;
        let mut d = Descriptor {
            start_of_partition: first & 0x10 != 0,
            partition_index: first & 0x07,
            non_reference: first & 0x20 != 0,
            picture_id: None,
            long_picture_id: false,
            tl0picidx: None,
            temporal_id: None,
            layer_sync: false,
            len: 1,
            keyframe_header: false,
        };
        if first & 0x80 != 0 {
            let x = b(1)?;
            let mut at = 2;
            if x & 0x80 != 0 {
                let p = b(at)?;
                if p & 0x80 != 0 {
                    d.picture_id = Some(u16::from(p & 0x7F) << 8 | u16::from(b(at + 1)?));
                    d.long_picture_id = true;
                    at += 2;
                } else {
                    d.picture_id = Some(u16::from(p));
                    at += 1;
                }
            }
            if x & 0x40 != 0 {
                d.tl0picidx = Some(b(at)?);
                at += 1;
            }
            if x & 0x30 != 0 {
                let tk = b(at)?;
                if x & 0x20 != 0 {
                    d.temporal_id = Some(tk >> 6);
                    d.layer_sync = tk & 0x20 != 0;
                }
                at += 1;
            }
            d.len = at;
        }
        if d.start_of_partition && d.partition_index == 0 {
            // A frame's first packet carries the VP8 payload header; P=0 is a key frame.
            d.keyframe_header = payload.get(d.len).is_some_and(|h| h & 0x01 == 0);
        }
        Ok(d)
    }

    /// The first packet of a key frame: where a receiver can start decoding.
    pub fn is_keyframe_start(&self) -> bool {
        self.keyframe_header
    }

    /// The first packet of any frame.
    pub fn is_frame_start(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }

    /// Largest picture ID the field can hold plus one.
    pub fn picture_id_modulus(&self) -> u16 {
        if self.long_picture_id { 0x8000 } else { 0x80 }
    }

    /// Writes `id` (reduced to the field's width) into `payload`; no-op without the field.
    pub fn set_picture_id(&self, payload: &mut [u8], id: u16) {
        if self.picture_id.is_none() {
            return;
        }
        let at = 2;
        if self.long_picture_id {
            payload[at] = 0x80 | ((id >> 8) as u8 & 0x7F);
            payload[at + 1] = id as u8;
        } else {
            payload[at] = id as u8 & 0x7F;
        }
    }

    /// Writes TL0PICIDX into `payload`; no-op without the field.
    pub fn set_tl0picidx(&self, payload: &mut [u8], value: u8) {
        if self.tl0picidx.is_none() {
            return;
        }
        let at = 2 + match self.picture_id {
            None => 0,
            Some(_) if self.long_picture_id => 2,
            Some(_) => 1,
        };
        payload[at] = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_descriptor_and_delta_frame() {
        // S=1 PID=0, no extension; VP8 header with P=1 (inter frame).
        let d = Descriptor::parse(&[0x10, 0x01, 0, 0]).unwrap();
        assert_eq!(d.len, 1);
        assert!(d.is_frame_start());
        assert!(!d.is_keyframe_start());
        assert_eq!(d.picture_id, None);
    }

    #[test]
    fn short_picture_id_temporal_layer_and_continuation() {
        // X=1 S=0 | I=1 L=1 T=1 | 7-bit id 0x55 | tl0 3 | TID=2 Y=1
        let p = [0x80, 0xE0, 0x55, 3, 0xA0, 0xFF];
        let d = Descriptor::parse(&p).unwrap();
        assert_eq!(d.picture_id, Some(0x55));
        assert!(!d.long_picture_id);
        assert_eq!(d.tl0picidx, Some(3));
        assert_eq!(d.temporal_id, Some(2));
        assert!(d.layer_sync);
        assert_eq!(d.len, 5);
        assert!(!d.is_frame_start());
        assert!(
            !d.is_keyframe_start(),
            "only a frame start can be a key frame"
        );
    }

    #[test]
    fn patches_keep_width_and_leave_the_payload_alone() {
        let mut p = [0x90, 0xC0, 0x05, 9, 0x10, 0xAA, 0xBB];
        let d = Descriptor::parse(&p).unwrap();
        d.set_picture_id(&mut p, 0x1FF);
        d.set_tl0picidx(&mut p, 200);
        assert_eq!(p, [0x90, 0xC0, 0x7F, 200, 0x10, 0xAA, 0xBB]);
        assert_eq!(d.picture_id_modulus(), 0x80);
    }

    #[test]
    fn truncated_descriptors_are_errors() {
        for p in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x80, 0x80, 0x80],
            &[0x80, 0x40],
            &[0x80, 0x20],
        ] {
            assert_eq!(Descriptor::parse(p), Err(Error::Truncated), "{p:?}");
        }
    }
}
