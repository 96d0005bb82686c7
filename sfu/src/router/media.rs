//! RTP and RTCP from an endpoint, through its transport: media forwarded,
//! feedback acted on (sender reports for lip sync, receiver reports for loss
//! and round trips, NACKs answered, key frame requests passed to senders,
//! transport-wide feedback into the downlink estimate).

use super::*;
use crate::rtcp::{Compound, Packet as Rtcp};
use crate::transport::{Refused, from_ntp};

/// RTCP by its packet type (RFC 5761 §4: 192-223 in the second byte).
fn is_rtcp(data: &[u8]) -> bool {
    data.get(1).is_some_and(|b| (192..224).contains(b))
}

impl Router {
    /// A datagram of RTP or RTCP from endpoint `key`.
    pub(super) fn handle_media(&mut self, now: Instant, key: Key, source: SocketAddr, data: &[u8]) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(data);
        if is_rtcp(data) {
            self.handle_rtcp(now, key, source, &mut buf);
        } else {
            self.handle_rtp(now, key, source, &mut buf);
        }
        self.scratch = buf;
        self.reschedule(key);
    }

    fn handle_rtp(&mut self, now: Instant, key: Key, source: SocketAddr, buf: &mut [u8]) {
        let Some(ep) = self.endpoints[key].as_mut() else {
            return;
        };
        let Endpoint {
            transport,
            audio_ssrcs,
            video_layers,
            rtx,
            ..
        } = ep;
        let Some(transport) = transport.as_mut() else {
            // Before DTLS has finished there are no keys to open it with.
            self.stats.rejected += 1;
            return;
        };
        let kind_of = |ssrc| crate::endpoint::kind_of(audio_ssrcs, video_layers, rtx, ssrc);
        match transport.receive_rtp(now, source, buf, kind_of) {
            Ok((packet, len)) => {
                ep.last_heard = now;
                ep.heard_any = true;
                self.forward(now, key, &buf[..len], &packet);
            }
            Err(Refused::Srtp(_)) => self.stats.rejected += 1,
            Err(Refused::NotForwarded) => {
                ep.last_heard = now;
                ep.heard_any = true;
            }
        }
    }

    fn handle_rtcp(&mut self, now: Instant, key: Key, source: SocketAddr, buf: &mut [u8]) {
        let Some(ep) = self.endpoints[key].as_mut() else {
            return;
        };
        let Some(transport) = ep.transport.as_mut() else {
            self.stats.rejected += 1;
            return;
        };
        let len = match transport.receive_rtcp(source, buf) {
            Ok(len) => len,
            Err(_) => {
                self.stats.rejected += 1;
                return;
            }
        };
        ep.last_heard = now;
        ep.heard_any = true;
        for packet in Compound::new(&buf[..len]) {
            // What came before a malformed packet counts; the rest is lost.
            let Ok(packet) = packet else {
                self.stats.rejected += 1;
                break;
            };
            let Some(ep) = self.endpoints[key].as_mut() else {
                return;
            };
            let Some(transport) = ep.transport.as_mut() else {
                return;
            };
            // Report blocks on what the bridge sends it ride on either report.
            let blocks = match &packet {
                Rtcp::SenderReport(sr) => Some(sr.report_blocks()),
                Rtcp::ReceiverReport(rr) => Some(rr.report_blocks()),
                _ => None,
            };
            for block in blocks.into_iter().flatten() {
                let lost = transport.on_report_block(now, &block);
                let known =
                    ep.audio_in.contains_key(&block.ssrc) || ep.video_in.contains_key(&block.ssrc);
                if known {
                    count_loss(&mut self.stats, &mut ep.lost_reported, block.ssrc, lost);
                }
            }
            match packet {
                Rtcp::SenderReport(sr) => {
                    let info = sr.info;
                    ep.clock
                        .on_report(now, info.ssrc, info.rtp_time, from_ntp(info.ntp_time));
                    transport.on_sender_report(now, info.ssrc, info.ntp_time);
                }
                Rtcp::TransportFeedback(feedback) => {
                    transport.on_transport_feedback(now, &feedback);
                    let estimate = transport.estimate();
                    transport.set_retransmit_budget(now, estimate / 4);
                    ep.bwe_bps = Some(estimate);
                }
                Rtcp::Nack(nack) => {
                    self.stats.nacks_received += 1;
                    for seq in nack.lost() {
                        self.retransmit(now, key, nack.media_ssrc, seq);
                    }
                }
                Rtcp::Pli(pli) => self.keyframe_for(key, pli.media_ssrc),
                Rtcp::Fir(fir) => {
                    for entry in fir.entries() {
                        self.keyframe_for(key, entry.ssrc);
                    }
                }
                _ => {}
            }
        }
        for (conference, source, layer) in std::mem::take(&mut self.keyframe_wanted) {
            self.request_keyframe(&conference, source, layer);
        }
    }

    /// Receiver `key` lost its picture of the source it knows as `ssrc`: that
    /// source's sender is asked for a key frame of the layer being forwarded.
    fn keyframe_for(&mut self, key: Key, ssrc: u32) {
        let Some(ep) = self.endpoints[key].as_ref() else {
            return;
        };
        if let Some(layer) = ep.video_in.get(&ssrc).and_then(|f| f.forwarder.current()) {
            self.keyframe_wanted
                .push((ep.conference.clone(), ssrc, layer));
        }
    }
}

/// Adds what a receiver newly reports lost on a stream the bridge sends it
/// (checked by the caller: a report can name anything) to the totals.
fn count_loss(stats: &mut RouterStats, reported: &mut HashMap<u32, i32>, ssrc: u32, lost: i32) {
    let last = reported.entry(ssrc).or_insert(0);
    stats.packets_lost_reported += lost.saturating_sub(*last).max(0) as u64;
    *last = (*last).max(lost);
}
