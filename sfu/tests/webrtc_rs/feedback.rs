//! webrtc-rs ends inbound RTCP inside its interceptor chain unless an
//! interceptor vouches for a packet (`DeliverToApplication`). A browser's
//! encoder does see key frame requests, so this participant puts one in the
//! chain that lets PLI and FIR through to the application.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::header::PacketType;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Marks inbound RTCP carrying a PLI or FIR for delivery to the application.
#[derive(Default)]
pub struct KeyframeRequestsToApp {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn asks_for_keyframe(p: &dyn rtc::rtcp::Packet) -> bool {
    p.header().packet_type == PacketType::PayloadSpecificFeedback
        && (p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestsToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| asks_for_keyframe(p.as_ref()))
        {
            msg.message.attributes.push(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for KeyframeRequestsToApp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
