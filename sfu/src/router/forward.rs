//! A received packet's way to the others: the fan-out over a conference, and
//! the write to each receiver's transport (audio as it came, video through
//! the receiver's simulcast forwarder); key frame requests back to senders
//! and receivers' NACKs answered from the sender's cache.

use super::*;
use crate::rtp::Packet;
use crate::transport::EXT_AUDIO_LEVEL;

impl Router {
    /// Sends one received packet (`bytes`, laid out as `p`) to every other
    /// endpoint of its conference.
    pub(super) fn forward(&mut self, now: Instant, from: Key, bytes: &[u8], p: &Packet) {
        let Some(sender) = self.endpoints[from].as_mut() else {
            return;
        };
        let ssrc = p.header.ssrc;
        let is_audio = sender.audio_ssrcs.contains(&ssrc);
        let video = sender.video_layer_of(ssrc);
        if !is_audio && video.is_none() {
            return;
        }
        // A force-muted sender is not heard, seen or made dominant speaker.
        let (audio_muted, video_muted) = sender.force_muted;
        if (is_audio && audio_muted) || (!is_audio && video_muted) {
            return;
        }
        if is_audio {
            sender.last_audio = Some(now);
        } else {
            sender.last_video = Some(now);
        }
        let payload = p.payload(bytes);
        if let Some((index, _, layer)) = video {
            sender.video_rates[index][usize::from(layer)].add(now, payload.len());
        }
        if is_audio {
            // RFC 6464: the level in -dBov, below the voice activity bit.
            let level = p
                .extension(bytes, EXT_AUDIO_LEVEL)
                .and_then(|v| v.first())
                .map(|b| b & 0x7f);
            if let (Some(level), Some(speech)) = (level, self.speech.get_mut(&sender.conference)) {
                speech.handle_level(now, from, level);
            }
            // Silence costs a protect per receiver and says nothing: drop it early.
            if !sender.silence.forward(now, level) {
                return;
            }
        }
        // When it was captured, as the sender reported: receivers' sender
        // reports are made from it.
        let rate = if is_audio { 48_000 } else { 90_000 };
        let captured = sender.clock.capture(ssrc, p.header.timestamp, rate, now);
        // Member list and conference name are taken out for the loop and put
        // back after it (moves, not copies), so a packet allocates nothing here.
        let conference = std::mem::take(&mut sender.conference);
        let members = self
            .conferences
            .get_mut(&conference)
            .map(std::mem::take)
            .unwrap_or_default();
        // Whether some receiver takes (or waits for) this layer: only then is
        // the packet kept for retransmissions.
        let mut layer_in_use = false;
        for &to in &members {
            if to == from {
                continue;
            }
            // Nothing is written for a receiver that lost consent.
            let Some(receiver) = self.endpoints[to].as_mut().filter(|r| r.consent) else {
                continue;
            };
            let wrote = if is_audio {
                write_audio(now, captured, receiver, &mut self.transmits, bytes, p)
            } else if let Some((_, source, layer)) = video {
                layer_in_use |= receiver.video_in.get(&source).is_some_and(|f| {
                    f.forwarder.current() == Some(layer) || f.forwarder.target() == Some(layer)
                });
                write_video(
                    now,
                    captured,
                    receiver,
                    &mut self.transmits,
                    source,
                    layer,
                    bytes,
                    p,
                )
            } else {
                false
            };
            if wrote {
                self.stats.packets_forwarded += 1;
            }
        }
        if let Some(slot) = self.conferences.get_mut(&conference) {
            *slot = members;
        }
        if let Some(sender) = self.endpoints[from].as_mut() {
            sender.conference = conference;
            if layer_in_use && let Some(t) = sender.transport.as_mut() {
                let _ = t.cache.insert(now, bytes);
            }
        }
    }

    /// Sends a PLI for `layer` of `source` to the endpoint that owns it, unless
    /// it was asked for that layer within [`SENDER_KEYFRAME_INTERVAL`].
    pub(super) fn request_keyframe(&mut self, conference: &str, source: u32, layer: u8) {
        let now = self.now;
        let Some(members) = self.conferences.get(conference) else {
            return;
        };
        for &key in members {
            let Some(ep) = self.endpoints[key].as_mut() else {
                continue;
            };
            let Some(layers) = ep.video_layers.iter().find(|l| l[0] == source) else {
                continue;
            };
            let Some(ssrc) = layers.get(usize::from(layer)).copied() else {
                continue;
            };
            if ep
                .keyframes_asked
                .get(&ssrc)
                .is_some_and(|t| now.saturating_duration_since(*t) < SENDER_KEYFRAME_INTERVAL)
            {
                continue;
            }
            let Some(transport) = ep.transport.as_mut().filter(|_| ep.consent) else {
                continue;
            };
            transport.send_pli(&mut self.transmits, ssrc);
            // Only requests still inside the interval matter: the map
            // holds no more than the sender's current layers.
            ep.keyframes_asked
                .retain(|_, t| now.saturating_duration_since(*t) < SENDER_KEYFRAME_INTERVAL);
            ep.keyframes_asked.insert(ssrc, now);
            self.stats.keyframe_requests += 1;
        }
    }

    /// Answers `receiver`'s NACK of `seq` on the stream it knows as `ssrc`
    /// from the cache of the endpoint that sent that packet.
    pub(super) fn retransmit(&mut self, now: Instant, receiver: Key, ssrc: u32, seq: u16) {
        let Some(r) = self.endpoints[receiver].as_ref() else {
            return;
        };
        let sent = r.transport.as_ref().and_then(|t| t.sender_of(ssrc, seq));
        // Never sent: a packet of the current layer that reached the bridge
        // before the key frame start it follows (reordered) was dropped then.
        let unsent = match sent {
            Some(_) => None,
            None => r
                .video_in
                .get(&ssrc)
                .and_then(|f| f.forwarder.original_seq(seq)),
        };
        let Some(sender_ssrc) = sent.or(unsent.map(|(s, _)| s)) else {
            return;
        };
        let Some(members) = self.conferences.get(&r.conference) else {
            return;
        };
        let Some(sender) = members.iter().copied().find(|k| {
            self.endpoints[*k]
                .as_ref()
                .is_some_and(|e| e.video_layer_of(sender_ssrc).is_some())
        }) else {
            return;
        };
        if sender == receiver {
            return;
        }
        let (r, s) = pair_mut(&mut self.endpoints, receiver, sender);
        let (Some(r), Some(s)) = (r, s) else {
            return;
        };
        let (Some(transport), Some(caches)) = (r.transport.as_mut(), s.transport.as_ref()) else {
            return;
        };
        if let Some((sender_ssrc, sender_seq)) = unsent {
            let Some(bytes) = caches.cache.get(now, sender_ssrc, sender_seq) else {
                return;
            };
            let Ok(packet) = Packet::parse(bytes) else {
                return;
            };
            let rewrite = r.video_in.get(&ssrc).and_then(|f| {
                f.forwarder
                    .rewrite_of(&packet.header, packet.payload(bytes))
            });
            match rewrite {
                Some(rewrite) if rewrite.seq == seq => {
                    transport.record_unsent(now, sender_ssrc, sender_seq, &rewrite)
                }
                _ => return,
            }
        }
        if r.consent && transport.retransmit(now, &mut self.transmits, ssrc, seq, &caches.cache) {
            self.stats.retransmissions += 1;
        }
    }
}

/// Two different endpoints, the first mutable.
fn pair_mut(
    endpoints: &mut [Option<Endpoint>],
    a: Key,
    b: Key,
) -> (Option<&mut Endpoint>, Option<&Endpoint>) {
    if a < b {
        let (left, right) = endpoints.split_at_mut(b);
        (left[a].as_mut(), right[0].as_ref())
    } else {
        let (left, right) = endpoints.split_at_mut(a);
        (right[0].as_mut(), left[b].as_ref())
    }
}

/// Declares, on `receiver`, the streams of another endpoint's sources.
pub(super) fn subscribe(
    ready_at: Instant,
    receiver: &mut Endpoint,
    audio: &[u32],
    video: &[Vec<u32>],
    rtx: &[(u32, u32)],
) {
    for s in audio {
        receiver.audio_in.entry(*s).or_insert(ready_at);
    }
    for layers in video {
        // Receivers know a source by its first SSRC and that SSRC's RTX pair.
        receiver.video_in.entry(layers[0]).or_insert_with(|| {
            let mut forwarder = SimulcastForwarder::new(layers[0]);
            // Until the receiver says what it wants, it gets the lowest layer.
            forwarder.set_target(Some(0));
            VideoForward {
                forwarder,
                rtx: rtx_of(rtx, layers[0]),
                wanted_height: 0,
                pinned: None,
            }
        });
    }
}

/// Writes an audio packet to `receiver`; `captured` is when the sender
/// captured it (the wallclock behind the receiver's sender reports).
fn write_audio(
    now: Instant,
    captured: Instant,
    receiver: &mut Endpoint,
    out: &mut Transmits,
    bytes: &[u8],
    p: &Packet,
) -> bool {
    if receiver
        .audio_in
        .get(&p.header.ssrc)
        .is_none_or(|ready| now < *ready)
    {
        return false;
    }
    let Some(transport) = receiver.transport.as_mut() else {
        return false;
    };
    transport.send_rtp(now, out, bytes, p, None, None, captured);
    true
}

/// Writes a video packet of `layer` of `source` to `receiver`, if its
/// simulcast forwarder takes it.
#[allow(clippy::too_many_arguments)]
fn write_video(
    now: Instant,
    captured: Instant,
    receiver: &mut Endpoint,
    out: &mut Transmits,
    source: u32,
    layer: u8,
    bytes: &[u8],
    p: &Packet,
) -> bool {
    let Some(transport) = receiver.transport.as_mut() else {
        return false;
    };
    let Some(fwd) = receiver.video_in.get_mut(&source) else {
        return false;
    };
    let Verdict::Forward(rewrite) =
        fwd.forwarder
            .handle_packet(now, layer, &p.header, p.payload(bytes))
    else {
        return false;
    };
    transport.send_rtp(now, out, bytes, p, Some(&rewrite), fwd.rtx, captured);
    true
}
