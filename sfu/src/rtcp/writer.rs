//! Appends packets to a compound in a caller's buffer.

use super::{
    FirEntry, MAX_PACKET_LEN, ReportBlock, SenderInfo, TransportFeedbackHeader, bye, fir, nack,
    pli, remb, report, sdes, twcc,
};

/// The most report blocks or BYE sources the header's 5-bit count holds.
const MAX_COUNT: usize = 31;

/// Why a packet was not written. Nothing was appended then; the packets
/// written before stay as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the packet needs {needed} bytes; {left} are left in the buffer")]
    NoRoom { needed: usize, left: usize },
    #[error("{count} {what}; a packet holds at most {max}")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("no {0} to write")]
    Empty(&'static str),
    #[error("sequence number {seq} is not after the one before it (or the base)")]
    OutOfOrder { seq: u16 },
    #[error(
        "the arrival of sequence number {seq} is beyond a receive delta from the reference time"
    )]
    DeltaOutOfRange { seq: u16 },
}

/// Writes RTCP packets one after another into a buffer, ready for SRTCP
/// protect: the compound is `buf[..writer.len()]`.
///
/// ```
/// use sfu::rtcp::{ReportBlock, Writer, WriteError};
///
/// let mut buf = [0u8; 48];
/// let mut writer = Writer::new(&mut buf);
/// writer.receiver_report(1, &[ReportBlock { ssrc: 2, ..Default::default() }]).unwrap();
/// writer.pli(1, 2).unwrap();
/// // A second report does not fit; what was written is still there.
/// assert!(matches!(writer.receiver_report(1, &[]), Err(WriteError::NoRoom { .. })));
/// assert_eq!(writer.len(), 32 + 12);
/// ```
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    /// Starts an empty compound at the beginning of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// The length of the compound written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The compound written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// A sender report with up to 31 report blocks.
    pub fn sender_report(
        &mut self,
        info: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<(), WriteError> {
        count("report blocks", blocks.len(), MAX_COUNT)?;
        let len = report::sender_len(blocks.len());
        report::write_sender(self.room(len)?, info, blocks);
        self.commit(len);
        Ok(())
    }

    /// A receiver report with up to 31 report blocks.
    pub fn receiver_report(&mut self, ssrc: u32, blocks: &[ReportBlock]) -> Result<(), WriteError> {
        count("report blocks", blocks.len(), MAX_COUNT)?;
        let len = report::receiver_len(blocks.len());
        report::write_receiver(self.room(len)?, ssrc, blocks);
        self.commit(len);
        Ok(())
    }

    /// A source description with one chunk, the CNAME of `ssrc`.
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &str) -> Result<(), WriteError> {
        count("bytes of CNAME", cname.len(), usize::from(u8::MAX))?;
        let len = sdes::cname_len(cname.len());
        sdes::write_cname(self.room(len)?, ssrc, cname.as_bytes());
        self.commit(len);
        Ok(())
    }

    /// A BYE for up to 31 sources.
    pub fn bye(&mut self, ssrcs: &[u32]) -> Result<(), WriteError> {
        count("sources", ssrcs.len(), MAX_COUNT)?;
        let len = bye::len(ssrcs.len());
        bye::write(self.room(len)?, ssrcs);
        self.commit(len);
        Ok(())
    }

    /// A generic NACK for `media_ssrc` from its lost sequence numbers, best
    /// in ascending order (wrapping past 65535): runs within 17 of each other
    /// share one pair.
    pub fn nack(
        &mut self,
        sender_ssrc: u32,
        media_ssrc: u32,
        lost: impl IntoIterator<Item = u16>,
    ) -> Result<(), WriteError> {
        let end = self.buf.len().min(self.len + MAX_PACKET_LEN);
        let len = nack::write(&mut self.buf[self.len..end], sender_ssrc, media_ssrc, lost)?;
        self.commit(len);
        Ok(())
    }

    /// A picture loss indication: `media_ssrc` needs a key frame.
    pub fn pli(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Result<(), WriteError> {
        pli::write(self.room(pli::LEN)?, sender_ssrc, media_ssrc);
        self.commit(pli::LEN);
        Ok(())
    }

    /// A full intra request, one entry per stream that needs a key frame.
    pub fn fir(&mut self, sender_ssrc: u32, entries: &[FirEntry]) -> Result<(), WriteError> {
        if entries.is_empty() {
            return Err(WriteError::Empty("FIR entries"));
        }
        let len = fir::len(entries.len());
        fir::write(self.room(len)?, sender_ssrc, entries);
        self.commit(len);
        Ok(())
    }

    /// A REMB: `bitrate` bits per second for the streams `ssrcs` together
    /// (up to 255), rounded down to what the format holds.
    pub fn remb(
        &mut self,
        sender_ssrc: u32,
        bitrate: u64,
        ssrcs: &[u32],
    ) -> Result<(), WriteError> {
        count("SSRCs", ssrcs.len(), usize::from(u8::MAX))?;
        let len = remb::len(ssrcs.len());
        remb::write(self.room(len)?, sender_ssrc, bitrate, ssrcs);
        self.commit(len);
        Ok(())
    }

    /// A transport-wide feedback for `packets`: `(sequence, arrival)` in
    /// sequence order from `header.base_seq`, the arrival in microseconds
    /// since the reference time (`header.reference_time` ×
    /// [`REFERENCE_TICK_US`](super::REFERENCE_TICK_US)) or `None` if lost;
    /// sequence numbers skipped between two packets are reported lost.
    ///
    /// Writes as many packets as fit in the room left, and stops early
    /// before a packet whose arrival is more than about 8 s from the last
    /// one's; returns how many it wrote. The rest go in a next feedback
    /// whose base is the sequence number after the last one written.
    pub fn transport_feedback(
        &mut self,
        header: &TransportFeedbackHeader,
        packets: &[(u16, Option<i64>)],
    ) -> Result<usize, WriteError> {
        let (len, consumed) = twcc::write(&mut self.buf[self.len..], header, packets)?;
        self.commit(len);
        Ok(consumed)
    }

    /// The next `len` bytes, if they fit.
    fn room(&mut self, len: usize) -> Result<&mut [u8], WriteError> {
        let left = self.buf.len() - self.len;
        if len > left {
            return Err(WriteError::NoRoom { needed: len, left });
        }
        count("bytes", len, MAX_PACKET_LEN)?;
        Ok(&mut self.buf[self.len..self.len + len])
    }

    fn commit(&mut self, len: usize) {
        self.len += len;
    }
}

fn count(what: &'static str, count: usize, max: usize) -> Result<(), WriteError> {
    if count > max {
        return Err(WriteError::TooMany { what, count, max });
    }
    Ok(())
}
