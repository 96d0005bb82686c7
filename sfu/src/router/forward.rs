//! A received packet's way to the others: the fan-out over a conference, and
//! the write to each receiver's stream (audio as it came, video through the
//! receiver's simulcast forwarder); key frame requests back to senders.

use super::*;
use str0m::rtp::Vp8Descriptor;

impl Router {
    /// Sends one received packet to every other endpoint of its conference.
    pub(super) fn forward(&mut self, now: Instant, from: Key, p: &RtpPacket) {
        let Some(sender) = self.endpoints[from].as_mut() else {
            return;
        };
        let ssrc = *p.header.ssrc;
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
        if let Some((index, _, layer)) = video {
            sender.video_rates[index][usize::from(layer)].add(now, p.payload.len());
        }
        if is_audio {
            // RFC 6464 levels are -dBov; str0m hands them over negated.
            let level = p
                .header
                .ext_vals
                .audio_level
                .map(|l| l.unsigned_abs().min(127));
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
        let captured = sender
            .clock
            .capture(ssrc, p.header.timestamp, rate, p.timestamp);
        // Parsed once for every receiver's descriptor patch.
        let vp8 = if video.is_some() {
            str0m::rtp::Vp8Descriptor::parse(&p.payload).ok()
        } else {
            None
        };
        // Member list and conference name are taken out for the loop and put
        // back after it (moves, not copies), so a packet allocates nothing here.
        let conference = std::mem::take(&mut sender.conference);
        let members = self
            .conferences
            .get_mut(&conference)
            .map(std::mem::take)
            .unwrap_or_default();
        for &to in &members {
            if to == from {
                continue;
            }
            // Nothing is written for a receiver that lost consent.
            let Some(receiver) = self.endpoints[to].as_mut().filter(|r| r.consent) else {
                continue;
            };
            let wrote = if is_audio {
                write_audio(now, captured, receiver, p)
            } else if let Some((_, source, layer)) = video {
                write_video(now, captured, receiver, source, layer, p, vp8.as_ref())
            } else {
                false
            };
            if wrote {
                self.stats.packets_forwarded += 1;
                enlist(&mut self.dirty, to, receiver);
            }
        }
        if let Some(slot) = self.conferences.get_mut(&conference) {
            *slot = members;
        }
        if let Some(sender) = self.endpoints[from].as_mut() {
            sender.conference = conference;
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
            if let Some(rx) = ep.api().stream_rx(&Ssrc::from(ssrc)) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                // Only requests still inside the interval matter: the map
                // holds no more than the sender's current layers.
                ep.keyframes_asked
                    .retain(|_, t| now.saturating_duration_since(*t) < SENDER_KEYFRAME_INTERVAL);
                ep.keyframes_asked.insert(ssrc, now);
                self.stats.keyframe_requests += 1;
                enlist(&mut self.dirty, key, ep);
            }
        }
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
        receiver.send_stream(*s, None, MediaKind::Audio);
        receiver.audio_in.entry(*s).or_insert(ready_at);
    }
    for layers in video {
        // Receivers know a source by its first SSRC and that SSRC's RTX pair.
        receiver.send_stream(layers[0], rtx_of(rtx, layers[0]), MediaKind::Video);
        receiver.video_in.entry(layers[0]).or_insert_with(|| {
            let mut forwarder = SimulcastForwarder::new(layers[0]);
            // Until the receiver says what it wants, it gets the lowest layer.
            forwarder.set_target(Some(0));
            VideoForward {
                forwarder,
                last_seq: None,
                wanted_height: 0,
                pinned: None,
            }
        });
    }
}

/// Writes `p` to `receiver`'s stream of its source; `captured` is when the
/// sender captured it (the wallclock behind the receiver's sender reports).
pub(super) fn write_audio(
    now: Instant,
    captured: Instant,
    receiver: &mut Endpoint,
    p: &RtpPacket,
) -> bool {
    if receiver
        .audio_in
        .get(&*p.header.ssrc)
        .is_some_and(|ready| now < *ready)
    {
        return false;
    }
    let mut api = receiver.api();
    let Some(tx) = api.stream_tx(&p.header.ssrc) else {
        return false;
    };
    let ext = ExtensionValues {
        audio_level: p.header.ext_vals.audio_level,
        voice_activity: p.header.ext_vals.voice_activity,
        ..Default::default()
    };
    tx.write_rtp(
        RtpWrite::new(
            p.header.payload_type,
            p.seq_no,
            p.header.timestamp,
            captured,
            p.payload.clone(),
        )
        .marker(p.header.marker)
        .ext_vals(ext),
    );
    true
}

pub(super) fn write_video(
    now: Instant,
    captured: Instant,
    receiver: &mut Endpoint,
    source: u32,
    layer: u8,
    p: &RtpPacket,
    vp8: Option<&Vp8Descriptor>,
) -> bool {
    let Some(fwd) = receiver.video_in.get_mut(&source) else {
        return false;
    };
    let header = Header {
        ssrc: *p.header.ssrc,
        seq: p.header.sequence_number,
        timestamp: p.header.timestamp,
        marker: p.header.marker,
    };
    let Verdict::Forward(out) = fwd.forwarder.handle_packet(now, layer, &header, &p.payload) else {
        return false;
    };
    // Each receiver's descriptor is numbered its own way: the stack patches
    // those bytes as it serialises, so every receiver shares the one payload.
    // A descriptor the stack's parser refuses (TL0PICIDX without a TID, which
    // RFC 7741 forbids but some senders write) gets a patched copy instead.
    let patch = vp8.and_then(|d| {
        let mut patch = d.patch();
        if let Some(id) = out.picture_id {
            patch = patch.picture_id(id);
        }
        if let Some(t) = out.tl0picidx {
            patch = patch.tl0_pic_idx(t);
        }
        patch.build().ok()
    });
    let payload: std::sync::Arc<[u8]> = match patch {
        Some(_) => p.payload.clone(),
        None => {
            let mut copy = p.payload.to_vec();
            out.patch(&mut copy);
            copy.into()
        }
    };
    let seq = extend_seq(fwd.last_seq, out.seq);
    if fwd.last_seq.is_none_or(|l| seq > l) {
        fwd.last_seq = Some(seq);
    }
    let mut api = receiver.api();
    let Some(tx) = api.stream_tx(&Ssrc::from(out.ssrc)) else {
        return false;
    };
    let write = RtpWrite::new(
        p.header.payload_type,
        SeqNo::from(seq),
        out.timestamp,
        captured,
        payload,
    )
    .marker(p.header.marker)
    .nackable(true);
    let write = match patch {
        Some(patch) => write.vp8_patch(patch),
        None => write,
    };
    tx.write_rtp(write);
    true
}

/// The 64-bit sequence number closest to `last` whose low 16 bits are `seq`.
fn extend_seq(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else {
        return u64::from(seq);
    };
    let base = last & !0xFFFF;
    let candidates = [base.wrapping_sub(0x1_0000), base, base + 0x1_0000];
    candidates
        .into_iter()
        .map(|b| b | u64::from(seq))
        .filter(|c| *c < (1 << 48))
        .min_by_key(|c| c.abs_diff(last))
        .unwrap_or(u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_extend_across_wraps() {
        assert_eq!(extend_seq(None, 5), 5);
        assert_eq!(extend_seq(Some(65535), 0), 65536);
        assert_eq!(extend_seq(Some(65536), 65535), 65535);
        assert_eq!(extend_seq(Some(0x2_0005), 3), 0x2_0003);
        assert_eq!(extend_seq(Some(0x2_FFF0), 0x10), 0x3_0010);
    }
}
