//! The router's side of the bridge channel: opening it, the messages
//! endpoints send, what the router tells them (speakers, forwarded sources,
//! sender constraints).

use super::*;

impl Router {
    /// Checks a bridge-channel URL's secret before the WebSocket is accepted.
    pub fn channel_check(
        &self,
        conference: &str,
        endpoint: &str,
        pwd: &str,
    ) -> Result<(), ApiError> {
        let key = self.key(conference, endpoint)?;
        let ep = self.endpoints[key].as_ref().expect("keyed endpoints exist");
        if same_secret(pwd, &ep.channel_pwd) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Attaches an endpoint's bridge channel (a newer socket replaces an older
    /// one) and greets it.
    pub fn channel_open(
        &mut self,
        conference: &str,
        endpoint: &str,
        pwd: &str,
        tx: tokio::sync::mpsc::Sender<String>,
    ) -> Result<(), ApiError> {
        self.channel_check(conference, endpoint, pwd)?;
        let key = self.key(conference, endpoint)?;
        let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
        ep.channel = Some(tx);
        send(ep, &BridgeMessage::ServerHello);
        // A newly connected channel learns who speaks, as Videobridge does.
        let ranking: Vec<String> = self.speech[conference]
            .ranking()
            .filter_map(|k| self.endpoints[k].as_ref().map(|e| e.id.clone()))
            .collect();
        if let Some((speaker, previous)) = ranking.split_first() {
            let message = BridgeMessage::DominantSpeaker {
                speaker: speaker.clone(),
                previous: previous.to_vec(),
                silence: false,
            };
            let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
            send(ep, &message);
        }
        Ok(())
    }

    /// One message from an endpoint's bridge channel. A malformed one is
    /// answered with an error message on the same channel.
    pub fn channel_message(
        &mut self,
        conference: &str,
        endpoint: &str,
        text: &str,
    ) -> Result<(), ApiError> {
        let key = self.key(conference, endpoint)?;
        let message = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(e) => {
                let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
                send(
                    ep,
                    &BridgeMessage::Error {
                        message: e.to_string(),
                    },
                );
                return Ok(());
            }
        };
        let from = endpoint.to_owned();
        let others: Vec<Key> = self.conferences[conference]
            .iter()
            .copied()
            .filter(|k| *k != key)
            .collect();
        match message {
            ClientMessage::EndpointMessage { to, payload } => {
                let out = BridgeMessage::EndpointMessage {
                    from,
                    to: to.clone(),
                    payload,
                };
                for k in others {
                    if let Some(o) = self.endpoints[k].as_mut()
                        && (to.is_empty() || o.id == to)
                    {
                        send(o, &out);
                    }
                }
            }
            ClientMessage::EndpointStats(stats) => {
                let out = BridgeMessage::EndpointStats { from, stats };
                for k in others {
                    if let Some(o) = self.endpoints[k].as_mut() {
                        send(o, &out);
                    }
                }
            }
            ClientMessage::ReceiverVideoConstraints(c) => {
                let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
                ep.dialect = c.keyed_by;
                self.apply_constraints(key, &c);
            }
            ClientMessage::MaxHeight(h) => {
                let c = VideoConstraints {
                    keyed_by: Dialect::Endpoints,
                    last_n: None,
                    selected: Vec::new(),
                    on_stage: Vec::new(),
                    default: Some(Constraint {
                        max_height: h,
                        max_frame_rate: None,
                    }),
                    constraints: Default::default(),
                    assumed_bandwidth_bps: None,
                };
                self.apply_constraints(key, &c);
            }
            // Last-N, selection and video types feed the allocation still to come.
            _ => {}
        }
        Ok(())
    }

    /// Closes an endpoint's bridge channel if `tx` is still the open one.
    pub fn channel_closed(
        &mut self,
        conference: &str,
        endpoint: &str,
        tx: &tokio::sync::mpsc::Sender<String>,
    ) {
        if let Ok(key) = self.key(conference, endpoint) {
            let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
            if ep.channel.as_ref().is_some_and(|c| c.same_channel(tx)) {
                ep.channel = None;
            }
        }
    }

    /// Picks each forwarded source's layer from the receiver's height wishes.
    fn apply_constraints(&mut self, receiver: Key, c: &VideoConstraints) {
        let Some(ep) = self.endpoints[receiver].as_ref() else {
            return;
        };
        let conference = ep.conference.clone();
        // (source first SSRC, sender key, sender id, source name, wanted height, layer)
        let mut targets = Vec::new();
        for &other in &self.conferences[&conference] {
            let Some(sender) = self.endpoints[other].as_ref() else {
                continue;
            };
            for (i, layers) in sender.video_layers.iter().enumerate() {
                // Sources without signalled names are called `<endpoint>-v<n>`, as Jitsi's focus names them.
                let name = format!("{}-v{i}", sender.id);
                let wish = match c.keyed_by {
                    Dialect::Endpoints => c.constraints.get(&sender.id),
                    Dialect::Sources => c.constraints.get(&name),
                }
                .or(c.default.as_ref());
                let height = wish.map_or(0, |w| w.max_height);
                let layer = layer_for_height(height, layers.len());
                targets.push((layers[0], other, sender.id.clone(), name, height, layer));
            }
        }
        let ep = self.endpoints[receiver].as_mut().expect("checked above");
        let (mut endpoints, mut sources) = (Vec::new(), Vec::new());
        for (source, _, sender_id, name, height, layer) in &targets {
            if let Some(f) = ep.video_in.get_mut(source) {
                f.forwarder.set_target(*layer);
                f.wanted_height = *height;
                if layer.is_some() {
                    sources.push(name.clone());
                    endpoints.push(sender_id.clone());
                }
            }
        }
        endpoints.dedup();
        send(ep, &BridgeMessage::Forwarded { endpoints, sources });
        // Each sender learns the most anyone wants of its source, so it can stop encoding the rest.
        for (source, sender, _, name, _, _) in targets {
            let wanted = self.conferences[&conference]
                .iter()
                .filter_map(|k| self.endpoints[*k].as_ref())
                .filter_map(|e| e.video_in.get(&source))
                .map(|f| f.wanted_height)
                .max()
                .unwrap_or(0);
            if let Some(s) = self.endpoints[sender].as_mut()
                && s.announced_heights.insert(source, wanted) != Some(wanted)
            {
                send(
                    s,
                    &BridgeMessage::SenderConstraint {
                        source: name,
                        max_height: wanted,
                    },
                );
            }
        }
    }

    /// Tells every endpoint of a conference when its dominant speaker changes.
    pub(super) fn announce_speakers(&mut self, now: Instant) {
        for (conference, speech) in &mut self.speech {
            speech.handle_timeout(now);
            let Some(change) = speech.poll_change() else {
                continue;
            };
            let id = |k: Key| self.endpoints[k].as_ref().map(|e| e.id.clone());
            let Some(speaker) = id(change.speaker) else {
                continue;
            };
            let message = BridgeMessage::DominantSpeaker {
                speaker,
                previous: change.previous.iter().filter_map(|k| id(*k)).collect(),
                silence: false,
            };
            for k in self.conferences.get(conference).into_iter().flatten() {
                if let Some(ep) = self.endpoints[*k].as_mut() {
                    send(ep, &message);
                }
            }
        }
    }
}

/// Queues a message for an endpoint's bridge channel; a full queue drops it
/// rather than stall the media thread.
fn send(ep: &mut Endpoint, message: &BridgeMessage) {
    if let Some(tx) = &ep.channel {
        let _ = tx.try_send(message.to_json(ep.dialect));
    }
}

/// Simulcast layer for a wanted height: Jitsi's three layers are about a
/// quarter, half and all of the camera's height (180, 360, 720 for 720p).
fn layer_for_height(max_height: u32, layers: usize) -> Option<u8> {
    let top = layers.saturating_sub(1) as u8;
    match max_height {
        0 => None,
        1..=359 => Some(0),
        360..=719 => Some(1.min(top)),
        _ => Some(2.min(top)),
    }
}

/// Compares secrets without an early exit on the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_pick_layers() {
        assert_eq!(layer_for_height(0, 3), None);
        assert_eq!(layer_for_height(180, 3), Some(0));
        assert_eq!(layer_for_height(360, 3), Some(1));
        assert_eq!(layer_for_height(2160, 3), Some(2));
        assert_eq!(
            layer_for_height(720, 1),
            Some(0),
            "a single encoding is layer 0"
        );
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }
}
