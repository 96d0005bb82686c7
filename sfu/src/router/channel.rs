//! The router's side of the bridge channel: opening it, the messages
//! endpoints send, what the router tells them (speakers, forwarded sources,
//! sender constraints).

use super::*;
use crate::allocation::{Wish, allocate, top_layer_sent};

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
        // ... and who has connection trouble right now.
        let inactive: Vec<String> = self.conferences[conference]
            .iter()
            .filter_map(|k| self.endpoints[*k].as_ref())
            .filter(|e| !e.active)
            .map(|e| e.id.clone())
            .collect();
        let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
        for endpoint in inactive {
            send(
                ep,
                &BridgeMessage::Connectivity {
                    endpoint,
                    active: false,
                },
            );
        }
        // A reconnected channel is told the forwarded set again.
        ep.forwarded = None;
        self.apply_constraints(key);
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
                if let Some(n) = c.last_n {
                    ep.last_n = n;
                }
                // Fields a message leaves out keep their value (the 2021 client
                // sends no defaultConstraints), as Videobridge merges them.
                let stored = ep
                    .constraints
                    .get_or_insert_with(|| empty_constraints(c.keyed_by));
                stored.keyed_by = c.keyed_by;
                stored.selected = c.selected;
                stored.on_stage = c.on_stage;
                stored.constraints = c.constraints;
                if c.default.is_some() {
                    stored.default = c.default;
                }
                if c.assumed_bandwidth_bps.is_some() {
                    stored.assumed_bandwidth_bps = c.assumed_bandwidth_bps;
                }
                self.apply_constraints(key);
            }
            ClientMessage::MaxHeight(h) => {
                let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
                ep.dialect = Dialect::Endpoints;
                ep.constraints
                    .get_or_insert_with(|| empty_constraints(Dialect::Endpoints))
                    .default = Some(Constraint {
                    max_height: h,
                    max_frame_rate: None,
                });
                self.apply_constraints(key);
            }
            ClientMessage::LastN(n) => {
                let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
                ep.last_n = n;
                self.apply_constraints(key);
            }
            ClientMessage::SelectedEndpoints(selected) => {
                let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
                ep.dialect = Dialect::Endpoints;
                ep.constraints
                    .get_or_insert_with(|| empty_constraints(Dialect::Endpoints))
                    .selected = selected;
                self.apply_constraints(key);
            }
            // Video types would weigh screen shares in an allocation by bandwidth.
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

    /// Picks each source's layer for `receiver` from its stored wishes and
    /// last-N: on-stage and selected sources first, then the most recent
    /// speakers, then the rest; those past last-N get no video.
    pub(super) fn apply_constraints(&mut self, receiver: Key) {
        let Some(ep) = self.endpoints[receiver].as_ref() else {
            return;
        };
        let conference = ep.conference.clone();
        let none = empty_constraints(ep.dialect);
        let c = ep.constraints.as_ref().unwrap_or(&none);
        let last_n = usize::try_from(ep.last_n).unwrap_or(usize::MAX);
        let ranking: Vec<Key> = self
            .speech
            .get(&conference)
            .map(|s| s.ranking().collect())
            .unwrap_or_default();
        let members = &self.conferences[&conference];
        let rank = |k: Key| ranking.iter().position(|r| *r == k).unwrap_or(usize::MAX);
        // (source first SSRC, sender key, sender id, source name, wanted height, layer)
        let mut targets = Vec::new();
        for &other in members {
            let Some(sender) = self.endpoints[other].as_ref() else {
                continue;
            };
            if other == receiver {
                continue;
            }
            for (i, layers) in sender.video_layers.iter().enumerate() {
                // Sources without signalled names are called `<endpoint>-v<n>`, as Jitsi's focus names them.
                let name = format!("{}-v{i}", sender.id);
                let key = match c.keyed_by {
                    Dialect::Endpoints => &sender.id,
                    Dialect::Sources => &name,
                };
                let wish = c.constraints.get(key).or(c.default.as_ref());
                let height = wish.map_or(0, |w| w.max_height);
                let favoured = c.on_stage.contains(key) || c.selected.contains(key);
                let order = (!favoured, rank(other));
                targets.push((order, layers[0], other, sender.id.clone(), name, height));
            }
        }
        targets.sort_by_key(|t| t.0);
        let now = self.now;
        let mut wishes = Vec::with_capacity(targets.len());
        let targets: Vec<_> = targets
            .into_iter()
            .enumerate()
            .map(|(i, (_, source, sender, id, name, height))| {
                let height = if i < last_n { height } else { 0 };
                let s = self.endpoints[sender].as_ref();
                let index = s.and_then(|s| s.video_layers.iter().position(|l| l[0] == source));
                let (wanted, rates) = match (s, index) {
                    (Some(s), Some(i)) => (
                        // Not above what the sender is sending: a paused layer
                        // would leave the receiver waiting for its key frame.
                        layer_for_height(height, s.video_layers[i].len())
                            .map(|l| l.min(top_layer_sent(&s.video_rates[i], now))),
                        s.video_rates[i].iter().map(|r| r.bps(now)).collect(),
                    ),
                    _ => (None, Vec::new()),
                };
                wishes.push(Wish { wanted, rates });
                (source, sender, id, name, height)
            })
            .collect();
        // The downlink caps it: the bridge's estimate, or what the client says it has.
        let budget = match (ep.bwe_bps, c.assumed_bandwidth_bps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let layers = allocate(&wishes, budget);
        // All it asked for, up to what the client says it has: probing
        // finds out whether the downlink carries more than its estimate.
        let wanted: u64 = wishes
            .iter()
            .filter_map(|w| w.wanted.map(|l| w.rate(l)))
            .sum();
        let desired = c.assumed_bandwidth_bps.map_or(wanted, |b| wanted.min(b));
        let targets: Vec<_> = targets
            .into_iter()
            .zip(layers)
            .map(|((source, sender, id, name, height), layer)| {
                (source, sender, id, name, height, layer)
            })
            .collect();
        let ep = self.endpoints[receiver].as_mut().expect("checked above");
        if let Some(t) = ep.transport.as_mut() {
            t.set_desired_bitrate(now, desired);
        }
        let (mut endpoints, mut sources) = (Vec::new(), Vec::new());
        for (source, _, sender_id, name, height, layer) in &targets {
            if let Some(f) = ep.video_in.get_mut(source) {
                let layer = &f.pinned.unwrap_or(*layer);
                f.forwarder.set_target(*layer);
                f.wanted_height = *height;
                if layer.is_some() {
                    sources.push(name.clone());
                    endpoints.push(sender_id.clone());
                }
            }
        }
        endpoints.sort();
        endpoints.dedup();
        let told = (ep.dialect, sources.clone());
        if ep.forwarded.as_ref() != Some(&told) {
            ep.forwarded = Some(told);
            send(ep, &BridgeMessage::Forwarded { endpoints, sources });
        }
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
        // A probe may be due sooner now.
        self.reschedule(receiver);
    }

    /// Tells every endpoint of a conference when its dominant speaker changes.
    pub(super) fn announce_speakers(&mut self, now: Instant) {
        let mut relimit = Vec::new();
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
                    if ep.last_n >= 0 {
                        relimit.push(*k);
                    }
                }
            }
        }
        // Receivers with a last-N follow the speakers.
        for k in relimit {
            self.apply_constraints(k);
        }
    }

    /// Reallocates the receivers of a sender that paused or resumed a layer
    /// now, not at the next second, so a receiver of a paused layer moves to
    /// one still sent before its picture freezes for long.
    pub(super) fn follow_paused_layers(&mut self, now: Instant) {
        let mut changed: Vec<String> = Vec::new();
        for ep in self.endpoints.iter_mut().flatten() {
            for (top, rates) in ep.video_top.iter_mut().zip(&ep.video_rates) {
                let sent = top_layer_sent(rates, now);
                if std::mem::replace(top, sent) != sent && !changed.contains(&ep.conference) {
                    changed.push(ep.conference.clone());
                }
            }
        }
        for conference in changed {
            let members = self.conferences.get(&conference).cloned();
            for key in members.unwrap_or_default() {
                self.apply_constraints(key);
            }
        }
    }

    /// Marks endpoints silent too long as inactive (8 s, or 15 s before
    /// their first datagram), and tells the others of every change.
    pub(super) fn announce_connectivity(&mut self, now: Instant) {
        let mut changed = Vec::new();
        for (key, ep) in self.endpoints.iter_mut().enumerate() {
            let Some(ep) = ep else { continue };
            let limit = if ep.heard_any {
                INACTIVE_AFTER
            } else {
                FIRST_PACKET_WITHIN
            };
            let active = now.saturating_duration_since(ep.last_heard) < limit;
            if active != ep.active {
                ep.active = active;
                changed.push(key);
            }
        }
        for key in changed {
            let Some(ep) = self.endpoints[key].as_ref() else {
                continue;
            };
            let message = BridgeMessage::Connectivity {
                endpoint: ep.id.clone(),
                active: ep.active,
            };
            for k in self.conferences[&ep.conference].clone() {
                if k != key
                    && let Some(o) = self.endpoints[k].as_mut()
                {
                    send(o, &message);
                }
            }
        }
    }
}

const THUMBNAIL_HEIGHT: u32 = 180;

/// Silence after which an endpoint is reported inactive, as Videobridge does.
const INACTIVE_AFTER: Duration = Duration::from_secs(8);
const FIRST_PACKET_WITHIN: Duration = Duration::from_secs(15);

/// What a receiver gets before it says otherwise: every source at Jitsi's
/// thumbnail height, so video shows at once.
fn empty_constraints(keyed_by: Dialect) -> VideoConstraints {
    VideoConstraints {
        keyed_by,
        last_n: None,
        selected: Vec::new(),
        on_stage: Vec::new(),
        default: Some(Constraint {
            max_height: THUMBNAIL_HEIGHT,
            max_frame_rate: None,
        }),
        constraints: Default::default(),
        assumed_bandwidth_bps: None,
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
