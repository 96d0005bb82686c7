//! The sans-IO core of a media worker: the conferences on one UDP port, their
//! endpoints, and the forwarding between them.
//!
//! Datagrams and the time go in ([`Router::handle_datagram`],
//! [`Router::handle_timeout`]); datagrams to send and the next deadline come
//! out ([`Router::poll_transmit`], [`Router::poll_timeout`]). The thread that
//! owns a `Router` owns every conference in it, so nothing here locks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output};

use crate::allocation::RateMeter;
use crate::api::{ApiError, LocalTransport, RemoteTransport, Sources};
use crate::cert::Certificate;
use crate::channel::{BridgeMessage, ClientMessage, Constraint, Dialect, VideoConstraints};
use crate::demux::{Claim, Demux, is_stun};
use crate::endpoint::{Endpoint, VideoForward, rtx_of};
use crate::simulcast::{SimulcastForwarder, Verdict};
use crate::speech::SpeechActivity;
use crate::transport::Transport;
use forward::subscribe;
use transmit::Transmits;

/// A sender is asked for a key frame of a stream at most this often, whoever
/// asks (Videobridge's source-wide interval): a receiver whose decoder keeps
/// failing must not turn everyone's video into a stream of key frames.
const SENDER_KEYFRAME_INTERVAL: Duration = Duration::from_millis(200);
/// Longest a router sleeps without looking at its endpoints.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// See [`Router::set_audio_hold`]: a browser applies a `source-add` within a
/// second here even with three browsers on two cores.
pub const DEFAULT_AUDIO_HOLD: Duration = Duration::from_millis(1500);
/// How often allocations are redone with fresh rates and estimates.
const REALLOCATE_EVERY: Duration = Duration::from_secs(1);
/// How often the conference-wide timers run: speaker decisions, endpoint
/// connectivity, repeated key frame requests (all paced in hundreds of ms).
const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(20);
/// Source addresses one endpoint may make the bridge learn. A client brings a
/// few candidates and a few network changes per call; each new address is
/// also a candidate in the endpoint's ICE agent, so a participant holding its
/// credentials could otherwise grow both without end (one machine has 64k
/// ports). A binding request from one more address is dropped unanswered.
const MAX_ADDRESSES: usize = 32;
/// An endpoint whose audio (or video) arrived this recently is sending it
/// (Opus in discontinuous transmission still sends every 400 ms).
const SENDING_WITHIN: Duration = Duration::from_secs(2);
/// Bound on timeout passes for one endpoint at one instant.
const MAX_PASSES: usize = 64;

/// A route this router took or gave up, for a demux in front of several routers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    Claimed(Claim),
    Released(Claim),
}

type Key = usize;

/// All conferences of one media worker.
pub struct Router {
    cert: Certificate,
    advertised: SocketAddr,
    demux: Demux<Key>,
    endpoints: Vec<Option<Endpoint>>,
    by_id: HashMap<(String, String), Key>,
    conferences: HashMap<String, Vec<Key>>,
    /// Speech activity of each conference's senders.
    speech: HashMap<String, SpeechActivity<Key>>,
    transmits: Transmits,
    routes: VecDeque<RouteChange>,
    /// A received media datagram, copied to be unprotected in place.
    scratch: Vec<u8>,
    /// An instant and the wall clock then: NTP times in sender reports.
    wallclock: (Instant, SystemTime),
    dirty: Vec<Key>,
    /// Endpoint deadlines, earliest first. An entry counts while it equals its
    /// endpoint's `scheduled`; superseded ones are skipped when they come up.
    deadlines: BinaryHeap<Reverse<(Instant, Key)>>,
    /// When the conference-wide timers next run.
    housekeeping_at: Instant,
    keyframe_wanted: Vec<(String, u32, u8)>,
    stats: RouterStats,
    /// The time of the input being handled, for code without a `now` parameter.
    now: Instant,
    /// When every receiver's allocation was last redone with fresh rates.
    allocated_at: Instant,
    /// How long a receiver waits for a new source's audio (see [`Router::set_audio_hold`]).
    audio_hold: Duration,
}

impl Router {
    /// `advertised` is the address candidates carry (and where datagrams arrive).
    pub fn new(cert: Certificate, advertised: SocketAddr) -> Router {
        Router {
            cert,
            advertised,
            demux: Demux::default(),
            endpoints: Vec::new(),
            by_id: HashMap::new(),
            conferences: HashMap::new(),
            speech: HashMap::new(),
            transmits: Transmits::default(),
            routes: VecDeque::new(),
            scratch: Vec::with_capacity(2048),
            wallclock: (Instant::now(), SystemTime::now()),
            dirty: Vec::new(),
            deadlines: BinaryHeap::new(),
            housekeeping_at: Instant::now(),
            keyframe_wanted: Vec::new(),
            stats: RouterStats::default(),
            now: Instant::now(),
            allocated_at: Instant::now(),
            audio_hold: DEFAULT_AUDIO_HOLD,
        }
    }

    pub fn stats(&self) -> RouterStats {
        let mut s = RouterStats {
            conferences: self.conferences.len(),
            endpoints: self.by_id.len(),
            largest_conference: self.conferences.values().map(Vec::len).max().unwrap_or(0),
            ..self.stats
        };
        let sending = |at: Option<Instant>| {
            at.is_some_and(|t| self.now.saturating_duration_since(t) < SENDING_WITHIN)
        };
        for members in self.conferences.values() {
            let (mut audio, mut video, mut silent) = (0, 0, 0);
            for ep in members.iter().filter_map(|k| self.endpoints[*k].as_ref()) {
                let (a, v) = (sending(ep.last_audio), sending(ep.last_video));
                audio += usize::from(a);
                video += usize::from(v);
                silent += usize::from(!a && !v);
            }
            s.endpoints_sending_audio += audio;
            s.endpoints_sending_video += video;
            if audio + video == 0 {
                s.inactive_conferences += 1;
                s.inactive_endpoints += members.len();
            } else {
                s.receive_only_endpoints += silent;
            }
        }
        s
    }

    /// How long a receiver waits before it gets a new source's audio. Its
    /// browser learns of the source by Jingle (`source-add`) a little after
    /// the bridge does; audio arriving before the browser applied it is bound
    /// by Chrome to the wrong receiver, and that source stays silent for good.
    /// Video needs no hold: it waits for a key frame the browser asks for.
    pub fn set_audio_hold(&mut self, hold: Duration) {
        self.audio_hold = hold;
    }

    pub fn has_conference(&self, conference: &str) -> bool {
        self.conferences.contains_key(conference)
    }

    /// Colibri2 `endpoint create`: a new endpoint (and conference) with the
    /// bridge's transport for the offer.
    pub fn create_endpoint(
        &mut self,
        now: Instant,
        conference: &str,
        endpoint: &str,
    ) -> Result<LocalTransport, ApiError> {
        let id = (conference.to_owned(), endpoint.to_owned());
        if self.by_id.contains_key(&id) {
            return Err(ApiError::EndpointExists(endpoint.to_owned()));
        }
        let mut ep = Endpoint::new(now, conference, endpoint, &self.cert, self.advertised)?;
        let local = ep.local_transport(&self.cert, self.advertised);
        let key = match self.endpoints.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.endpoints.push(None);
                self.endpoints.len() - 1
            }
        };
        self.demux.add_ufrag(&ep.ufrag, key);
        self.routes
            .push_back(RouteChange::Claimed(Claim::Ufrag(ep.ufrag.clone())));
        if !self.conferences.contains_key(conference) {
            self.stats.conferences_created += 1;
            self.speech
                .insert(conference.to_owned(), SpeechActivity::new());
        }
        self.stats.endpoints_created += 1;
        let members = self.conferences.entry(conference.to_owned()).or_default();
        // The newcomer is sent what those already there send.
        for other in members.iter() {
            if let Some(o) = &self.endpoints[*other] {
                subscribe(
                    now + self.audio_hold,
                    &mut ep,
                    &o.audio_ssrcs,
                    &o.video_layers,
                    &o.rtx,
                );
            }
        }
        members.push(key);
        self.endpoints[key] = Some(ep);
        self.by_id.insert(id, key);
        self.mark_dirty(key);
        self.flush(now);
        Ok(local)
    }

    /// Colibri2 `endpoint` update: the client's transport and/or its sources.
    pub fn update_endpoint(
        &mut self,
        now: Instant,
        conference: &str,
        endpoint: &str,
        remote: Option<&RemoteTransport>,
        sources: Option<&Sources>,
    ) -> Result<(), ApiError> {
        let key = self.key(conference, endpoint)?;
        let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
        if let Some(r) = remote {
            ep.apply_remote(r)?;
        }
        if let Some(s) = sources {
            ep.audio_ssrcs = s.audio.clone();
            ep.video_layers = s.video.iter().filter(|l| !l.is_empty()).cloned().collect();
            ep.video_rates = ep
                .video_layers
                .iter()
                .map(|l| vec![RateMeter::default(); l.len()])
                .collect();
            ep.video_top = ep
                .video_layers
                .iter()
                .map(|l| l.len().saturating_sub(1) as u8)
                .collect();
            ep.rtx = s.rtx.clone();
            let (audio, video, rtx) = (
                ep.audio_ssrcs.clone(),
                ep.video_layers.clone(),
                ep.rtx.clone(),
            );
            let others: Vec<Key> = self.conferences[conference]
                .iter()
                .copied()
                .filter(|k| *k != key)
                .collect();
            for other in others {
                if let Some(o) = self.endpoints[other].as_mut() {
                    subscribe(now + self.audio_hold, o, &audio, &video, &rtx);
                    self.mark_dirty(other);
                    // New sources get the layer the receiver's wishes and last-N give them.
                    self.apply_constraints(other);
                }
            }
        }
        self.mark_dirty(key);
        self.flush(now);
        Ok(())
    }

    /// Which simulcast layer of `source` (its first SSRC) `receiver` gets.
    pub fn set_video_target(
        &mut self,
        conference: &str,
        receiver: &str,
        source: u32,
        layer: Option<u8>,
    ) -> Result<(), ApiError> {
        let key = self.key(conference, receiver)?;
        let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
        let fwd = ep
            .video_in
            .get_mut(&source)
            .ok_or_else(|| ApiError::BadRequest(format!("no video source {source}")))?;
        fwd.forwarder.set_target(layer);
        fwd.pinned = Some(layer);
        Ok(())
    }

    /// Colibri2 `force-mute`: whether this endpoint's audio and video are
    /// dropped (a moderator muted it; its client may not unmute).
    pub fn force_mute(
        &mut self,
        conference: &str,
        endpoint: &str,
        audio: bool,
        video: bool,
    ) -> Result<(), ApiError> {
        let key = self.key(conference, endpoint)?;
        let ep = self.endpoints[key].as_mut().expect("keyed endpoints exist");
        ep.force_muted = (audio, video);
        Ok(())
    }

    /// Colibri2 `endpoint expire`; the conference goes with its last endpoint.
    pub fn expire_endpoint(&mut self, conference: &str, endpoint: &str) -> Result<(), ApiError> {
        let key = self.key(conference, endpoint)?;
        self.remove(key);
        Ok(())
    }

    /// Colibri2 conference `expire`.
    pub fn expire_conference(&mut self, conference: &str) -> Result<(), ApiError> {
        let keys = self
            .conferences
            .get(conference)
            .cloned()
            .ok_or_else(|| ApiError::ConferenceNotFound(conference.to_owned()))?;
        for k in keys {
            self.remove(k);
        }
        Ok(())
    }

    fn key(&self, conference: &str, endpoint: &str) -> Result<Key, ApiError> {
        if !self.conferences.contains_key(conference) {
            return Err(ApiError::ConferenceNotFound(conference.to_owned()));
        }
        self.by_id
            .get(&(conference.to_owned(), endpoint.to_owned()))
            .copied()
            .ok_or_else(|| ApiError::UnknownEndpoint(endpoint.to_owned()))
    }

    fn remove(&mut self, key: Key) {
        let Some(ep) = self.endpoints[key].take() else {
            return;
        };
        for claim in self.demux.forget(key) {
            self.routes.push_back(RouteChange::Released(claim));
        }
        self.by_id.remove(&(ep.conference.clone(), ep.id.clone()));
        if let Some(speech) = self.speech.get_mut(&ep.conference) {
            speech.remove(key);
        }
        if let Some(members) = self.conferences.get_mut(&ep.conference) {
            members.retain(|k| *k != key);
            for other in members.iter() {
                if let Some(o) = self.endpoints[*other].as_mut() {
                    for layers in &ep.video_layers {
                        o.video_in.remove(&layers[0]);
                    }
                    for s in &ep.audio_ssrcs {
                        o.audio_in.remove(s);
                    }
                }
            }
            if members.is_empty() {
                self.conferences.remove(&ep.conference);
                self.speech.remove(&ep.conference);
            }
        }
    }

    /// A datagram that arrived on the media port.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.now = now;
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let Some(key) = self.demux.route(source, data) else {
            self.stats.unroutable += 1;
            return;
        };
        // RTP and RTCP (RFC 7983) go through the endpoint's own transport.
        if data.first().is_some_and(|b| (128..192).contains(b)) {
            self.handle_media(now, key, source, data);
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.advertised, data) else {
            self.stats.rejected += 1;
            return;
        };
        let input = Input::Receive(now, receive);
        let Some(ep) = self.endpoints[key].as_mut() else {
            self.stats.unroutable += 1;
            return;
        };
        if data[0] < 2 {
            // STUN: only a request that passes this endpoint's integrity check
            // may bind its source address.
            if !ep.rtc.accepts(&input) {
                self.stats.rejected += 1;
                return;
            }
            if !self.demux.is_learned(source) {
                if ep.addresses >= MAX_ADDRESSES {
                    self.stats.rejected += 1;
                    return;
                }
                if self.demux.learn(source, key) {
                    ep.addresses += 1;
                    self.routes
                        .push_back(RouteChange::Claimed(Claim::Addr(source)));
                }
            }
        }
        if ep.rtc.handle_input(input).is_err() {
            self.stats.rejected += 1;
        } else {
            ep.last_heard = now;
            ep.heard_any = true;
        }
        // STUN and DTLS: whatever str0m answers goes out with this batch.
        self.drain(now, key);
    }

    /// Drives every endpoint whose deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        // Layer rates and estimates drift: allocations follow once a second.
        if now.saturating_duration_since(self.allocated_at) >= REALLOCATE_EVERY {
            self.allocated_at = now;
            for key in 0..self.endpoints.len() {
                if self.endpoints[key].is_some() {
                    self.apply_constraints(key);
                }
            }
        }
        // Endpoints whose deadline has come; a visit costs nothing for the others.
        while let Some(&Reverse((at, key))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(ep) = self.endpoints[key].as_mut() else {
                continue;
            };
            if ep.scheduled != Some(at) {
                continue;
            }
            if ep.next_timeout <= now {
                ep.scheduled = None;
                enlist(&mut self.dirty, key, ep);
            } else {
                // It moved later since: its entry follows it.
                ep.scheduled = Some(ep.next_timeout);
                self.deadlines.push(Reverse((ep.next_timeout, key)));
            }
        }
        if self.deadlines.len() > 2 * self.endpoints.len() + 64 {
            self.rebuild_deadlines();
        }
        if now >= self.housekeeping_at {
            self.housekeeping_at = now + HOUSEKEEPING_EVERY;
            self.housekeeping(now);
        }
        self.flush(now);
    }

    /// The conference-wide timers, at [`HOUSEKEEPING_EVERY`].
    fn housekeeping(&mut self, now: Instant) {
        self.follow_paused_layers(now);
        let mut keyframes = Vec::new();
        for ep in self.endpoints.iter_mut().flatten() {
            // A wanted layer switch keeps asking its sender for a key frame (rate limited).
            for (source, fwd) in &mut ep.video_in {
                if let Some(layer) = fwd.forwarder.poll_keyframe_request(now) {
                    keyframes.push((ep.conference.clone(), *source, layer));
                }
            }
        }
        for (conference, source, layer) in keyframes {
            self.request_keyframe(&conference, source, layer);
        }
        self.announce_speakers(now);
        self.announce_connectivity(now);
    }

    /// One current entry per endpoint: what the queue holds when superseded
    /// entries pile up faster than their times come.
    fn rebuild_deadlines(&mut self) {
        self.deadlines.clear();
        for (key, ep) in self.endpoints.iter_mut().enumerate() {
            let Some(ep) = ep else { continue };
            ep.scheduled = Some(ep.next_timeout);
            self.deadlines.push(Reverse((ep.next_timeout, key)));
        }
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        let endpoints = self
            .deadlines
            .peek()
            .map_or(now + MAX_SLEEP, |Reverse((at, _))| *at);
        // An idle router sleeps its longest.
        let housekeeping = if self.by_id.is_empty() {
            now + MAX_SLEEP
        } else {
            self.housekeeping_at
        };
        endpoints.min(housekeeping).min(now + MAX_SLEEP)
    }

    /// Routes taken or given up since the last call, oldest first.
    pub fn poll_route(&mut self) -> Option<RouteChange> {
        self.routes.pop_front()
    }

    /// The next datagram to send and where to. Endpoints whose ICE or DTLS
    /// have work run first.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, &[u8])> {
        if !self.dirty.is_empty() {
            self.flush(self.now);
        }
        let (to, d) = self.transmits.pop()?;
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += d.len() as u64;
        Some((to, d))
    }

    /// Lists `key` for the next flush, once however often it is marked.
    fn mark_dirty(&mut self, key: Key) {
        if let Some(ep) = self.endpoints[key].as_mut() {
            enlist(&mut self.dirty, key, ep);
        }
    }

    /// Runs every dirty endpoint's str0m and transport timers until they wait.
    fn flush(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            if let Some(ep) = self.endpoints[key].as_mut() {
                ep.queued = false;
            }
            // Timers due at the same instant may take several passes.
            for _ in 0..MAX_PASSES {
                let Some(ep) = self.endpoints[key].as_mut() else {
                    break;
                };
                let _ = ep.rtc.handle_input(Input::Timeout(now));
                if self.drain(now, key) > now {
                    break;
                }
            }
        }
    }

    /// Takes an endpoint's outputs until it asks for time, forwarding the
    /// media it received; returns its next deadline.
    fn drain(&mut self, now: Instant, key: Key) -> Instant {
        let Some(ep) = self.endpoints[key].as_mut() else {
            return now + MAX_SLEEP;
        };
        let next = loop {
            match ep.rtc.poll_output() {
                // Without consent, nothing but the checks that may regain it.
                Ok(Output::Transmit(t)) if !ep.consent && !is_stun(&t.contents) => {
                    self.stats.dropped_no_consent += 1;
                }
                Ok(Output::Transmit(t)) => {
                    if !is_stun(&t.contents) {
                        // DTLS goes where ICE nominated.
                        ep.dtls_destination = Some(t.destination);
                    }
                    self.transmits.push(t.destination, &t.contents);
                }
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                ))) => {
                    // Every pair went unanswered: consent is lost (RFC 7675 §5.1).
                    ep.consent = false;
                    self.stats.ice_failures += 1;
                }
                Ok(Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Connected | IceConnectionState::Completed,
                ))) => {
                    ep.consent = true;
                    if !std::mem::replace(&mut ep.ever_connected, true) {
                        self.stats.ice_succeeded += 1;
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => break now + MAX_SLEEP,
            }
        };
        // The handshake exported its keys: media goes through our transport.
        if let Some(keys) = ep.dtls.take_keys() {
            let destination = ep.dtls_destination.unwrap_or(self.advertised);
            match Transport::new(now, &keys, destination, self.wallclock) {
                Ok(t) => ep.transport = Some(t),
                Err(_) => self.stats.dtls_failures += 1,
            }
        }
        let next = match ep.transport.as_mut() {
            Some(t) => {
                if t.poll_timeout() <= now {
                    let mark = self.transmits.mark();
                    t.handle_timeout(now, &mut self.transmits);
                    // Without consent its timers run, but nothing goes out.
                    if !ep.consent {
                        self.stats.dropped_no_consent += self.transmits.drop_since(mark) as u64;
                    }
                }
                next.min(t.poll_timeout())
            }
            None => next,
        };
        ep.next_timeout = next;
        if !ep.dtls_failure_counted && ep.dtls.refused() {
            ep.dtls_failure_counted = true;
            self.stats.dtls_failures += 1;
        }
        if ep.scheduled.is_none_or(|at| next < at) {
            ep.scheduled = Some(next);
            self.deadlines.push(Reverse((next, key)));
        }
        next
    }

    /// Moves `key`'s deadline earlier when its transport wants to run sooner.
    fn reschedule(&mut self, key: Key) {
        let Some(ep) = self.endpoints[key].as_mut() else {
            return;
        };
        let Some(at) = ep.transport.as_ref().map(Transport::poll_timeout) else {
            return;
        };
        if at < ep.next_timeout {
            ep.next_timeout = at;
        }
        if ep.scheduled.is_none_or(|s| at < s) {
            ep.scheduled = Some(at);
            self.deadlines.push(Reverse((at, key)));
        }
    }
}

/// Lists `key` (whose endpoint is `ep`) for the next flush, unless it is listed.
fn enlist(dirty: &mut Vec<Key>, key: Key, ep: &mut Endpoint) {
    if !std::mem::replace(&mut ep.queued, true) {
        dirty.push(key);
    }
}

mod channel;
mod forward;
mod media;
mod stats;
pub(crate) mod transmit;

pub use stats::RouterStats;
