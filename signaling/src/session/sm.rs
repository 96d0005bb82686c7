//! XEP-0198 stream management: counters and the queue of unacknowledged stanzas.

use std::collections::VecDeque;

use crate::xml::Element;

/// Ask for an ack once this many stanzas are unacknowledged (Jitsi's Prosody: 5).
pub const ACK_REQUEST_AFTER: usize = 5;

/// State of stream management on one session.
#[derive(Debug)]
pub struct StreamManagement {
    /// The resumption id (`previd`), an unguessable token.
    pub id: String,
    pub resumable: bool,
    /// Stanzas handled from the client (`h` we report).
    pub inbound: u32,
    /// Stanzas sent to the client since enabling.
    outbound: u32,
    /// Sent stanzas not yet acknowledged, oldest first.
    unacked: VecDeque<Element>,
    /// An `<r/>` is outstanding.
    pub ack_requested: bool,
}

/// The client acknowledged more than we sent.
#[derive(Debug, PartialEq, Eq)]
pub struct AckError;

impl StreamManagement {
    pub fn new(id: String, resumable: bool) -> Self {
        StreamManagement {
            id,
            resumable,
            inbound: 0,
            outbound: 0,
            unacked: VecDeque::new(),
            ack_requested: false,
        }
    }

    /// Records a stanza sent to the client.
    pub fn sent(&mut self, stanza: &Element) {
        self.outbound = self.outbound.wrapping_add(1);
        self.unacked.push_back(stanza.clone());
    }

    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Drops what the client's `h` acknowledges.
    pub fn acked(&mut self, h: u32) -> Result<(), AckError> {
        let acked_before = self.outbound.wrapping_sub(self.unacked.len() as u32);
        let newly = h.wrapping_sub(acked_before) as usize;
        if newly > self.unacked.len() {
            return Err(AckError);
        }
        self.unacked.drain(..newly);
        self.ack_requested = false;
        Ok(())
    }

    /// After resumption: what must be sent again, oldest first.
    pub fn take_unacked(&mut self) -> Vec<Element> {
        let v: Vec<Element> = self.unacked.drain(..).collect();
        self.outbound = self.outbound.wrapping_sub(v.len() as u32);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_drop_exactly_what_they_count() {
        let mut sm = StreamManagement::new("x".into(), true);
        let s = Element::new("message", "jabber:client");
        for _ in 0..4 {
            sm.sent(&s);
        }
        sm.acked(3).unwrap();
        assert_eq!(sm.unacked_len(), 1);
        assert_eq!(sm.acked(9), Err(AckError));
        assert_eq!(sm.take_unacked().len(), 1);
        sm.sent(&s);
        sm.acked(4).unwrap();
        assert_eq!(sm.unacked_len(), 0);
    }
}
