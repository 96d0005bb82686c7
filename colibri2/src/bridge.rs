//! Our bridge as a stock Jicofo sees a Videobridge: an occupant of the
//! brewery MUC whose presence carries its stats every 5 s, answering health
//! checks and Colibri2 `conference-modify` requests (protocol §4.1-4.4).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sfu::api::ApiError;
use sfu::bridge::Bridge;
use signaling::ns;
use signaling::xml::Element;

use crate::codec::{self, Modify, Reason};
use crate::xmpp::{ClientConfig, ClientError, Connection};

const HEALTHCHECK: &str = "http://jitsi.org/protocol/healthcheck";
/// How often the stats presence is re-sent (Videobridge's default).
const PRESENCE_EVERY: Duration = Duration::from_secs(5);
/// Longest a login may take before it is given up and retried.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// Reconnection backoff after a lost connection, doubling up to the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LONGEST: Duration = Duration::from_secs(30);

/// How the bridge reaches Jicofo.
#[derive(Clone, Debug)]
pub struct BridgeXmppConfig {
    pub client: ClientConfig,
    /// The brewery room, e.g. `jvbbrewery@internal.auth.meet.example.com`.
    pub brewery: String,
    /// Our occupant nickname (Videobridge uses its id).
    pub nickname: String,
    /// Base of the bridge-channel URLs handed out, up to and including
    /// `/colibri-ws/<bridge id>`; without it no WebSocket is offered.
    pub websocket_base: Option<String>,
}

/// Serves Jicofo over XMPP until the process ends, reconnecting when the
/// connection drops. A Jicofo that loses sight of the bridge (our connection
/// dropped, or it left the brewery) moves its conferences to other bridges,
/// so the conferences it made here end then, as nobody would expire them.
pub async fn run(bridge: Arc<Bridge>, config: BridgeXmppConfig) {
    let mut face = Face {
        bridge,
        config,
        conferences: HashMap::new(),
        warned: HashSet::new(),
        warned_rewriting: false,
        joined: false,
    };
    let mut retry = RETRY_FIRST;
    loop {
        let Err(e) = face.serve_once().await;
        tracing::warn!(error = %e, brewery = %face.config.brewery, "Colibri2 XMPP connection lost");
        // A connection that got as far as the brewery starts the backoff over.
        if std::mem::take(&mut face.joined) {
            retry = RETRY_FIRST;
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_LONGEST);
    }
}

struct Face {
    bridge: Arc<Bridge>,
    config: BridgeXmppConfig,
    /// Conferences made through Colibri2, by meeting id.
    conferences: HashMap<String, Conference>,
    /// Payload types Jicofo offered that the bridge does not forward, each
    /// logged once.
    warned: HashSet<(u8, String)>,
    /// Whether Jicofo's asking for SSRC rewriting has been logged.
    warned_rewriting: bool,
    /// Whether the current connection got into the brewery.
    joined: bool,
}

/// A conference as the face knows it.
struct Conference {
    /// Who made it: the Jicofo occupant whose requests it answers.
    focus: String,
    endpoints: HashSet<String>,
}

impl Face {
    /// One connection's life: log in, join the brewery, answer until it drops.
    async fn serve_once(&mut self) -> Result<std::convert::Infallible, ClientError> {
        // Conferences of an earlier connection were moved away meanwhile.
        self.end_conferences(|_| true).await;
        let mut conn =
            tokio::time::timeout(CONNECT_WITHIN, Connection::connect(&self.config.client))
                .await
                .map_err(|_| {
                    ClientError::Protocol(format!("no session within {CONNECT_WITHIN:?}"))
                })??;
        tracing::info!(jid = %conn.jid, brewery = %self.config.brewery, "bridge joined Jicofo's brewery");
        let room = format!("{}/{}", self.config.brewery, self.config.nickname);
        let mut join = self.presence(&room).await;
        join.push_child(Element::new("x", ns::MUC));
        conn.send(&join).await?;
        let mut tick = tokio::time::interval(PRESENCE_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let p = self.presence(&room).await;
                    conn.send(&p).await?;
                }
                stanza = conn.next() => {
                    let stanza = stanza?;
                    if stanza.is("iq", ns::CLIENT) {
                        if let Some(answer) = self.handle_iq(&stanza).await {
                            conn.send(&answer).await?;
                        }
                    } else if stanza.is("presence", ns::CLIENT) {
                        let from = stanza.attr("from").unwrap_or_default();
                        match stanza.attr("type") {
                            Some("error") if from == room => {
                                return Err(ClientError::Protocol("the brewery refused our join".into()));
                            }
                            Some("unavailable") if from == room => {
                                return Err(ClientError::Protocol("we were removed from the brewery".into()));
                            }
                            Some("unavailable") => {
                                self.end_conferences(|c| c.focus == from).await;
                            }
                            None if from == room => self.joined = true,
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    /// Presence to the brewery with the stats Jicofo selects bridges by.
    async fn presence(&self, room: &str) -> Element {
        let bridge = self.bridge.clone();
        let report = tokio::task::spawn_blocking(move || sfu::http::stats_report(&bridge))
            .await
            .ok()
            .flatten();
        let mut stats = Element::new("stats", codec::COLIBRI);
        let mut stat = |name: &str, value: String| {
            stats.push_child(
                Element::new("stat", codec::COLIBRI)
                    .with_attr("name", name)
                    .with_attr("value", value),
            );
        };
        if let Some(serde_json::Value::Object(map)) = &report {
            for (name, value) in map {
                match value {
                    serde_json::Value::String(s) => stat(name, s.clone()),
                    other => stat(name, other.to_string()),
                }
            }
        } else {
            stat("healthy", "false".into());
        }
        // Conferences here go on until they end; none are moved away.
        stat("shutting_down", "false".into());
        // What Jicofo adds to the stress per participant it places here
        // before the next report (Videobridge's default).
        stat("average_participant_stress", "0.01".into());
        Element::new("presence", ns::CLIENT)
            .with_attr("to", room)
            .with_child(stats)
    }

    /// The answer to an IQ (none for results and errors).
    async fn handle_iq(&mut self, iq: &Element) -> Option<Element> {
        let kind = iq.attr("type")?;
        if kind != "get" && kind != "set" {
            return None;
        }
        let mut answer =
            Element::new("iq", ns::CLIENT).with_attr("id", iq.attr("id").unwrap_or(""));
        if let Some(from) = iq.attr("from") {
            answer.set_attr("to", from);
        }
        let payload = iq.first_child();
        let from = iq.attr("from").unwrap_or_default();
        let result = match payload {
            Some(p) if kind == "set" && p.is("conference-modify", codec::NS) => {
                self.modify(p, from).await
            }
            // The same check as `/about/health`; it never waits on a worker.
            Some(p) if kind == "get" && p.is("healthcheck", HEALTHCHECK) => {
                match self.bridge.health() {
                    Ok(()) => Ok(None),
                    Err(why) => Err(Element::new("error", ns::CLIENT)
                        .with_attr("type", "wait")
                        .with_child(Element::new("internal-server-error", ns::STANZAS_ERR))
                        .with_child(Element::new("text", ns::STANZAS_ERR).with_text(why))),
                }
            }
            Some(p) if kind == "get" && p.is("ping", ns::PING) => Ok(None),
            _ => Err(Element::new("error", ns::CLIENT)
                .with_attr("type", "cancel")
                .with_child(Element::new("service-unavailable", ns::STANZAS_ERR))),
        };
        match result {
            Ok(body) => {
                answer.set_attr("type", "result");
                if let Some(body) = body {
                    answer.push_child(body);
                }
            }
            Err(error) => {
                answer.set_attr("type", "error");
                answer.push_child(error);
            }
        }
        Some(answer)
    }

    /// Carries out a `conference-modify` from `focus`: its
    /// `conference-modified`, or the error.
    async fn modify(&mut self, el: &Element, focus: &str) -> Result<Option<Element>, Element> {
        let m =
            codec::parse_modify(el).map_err(|why| codec::error(Reason::Unspecified, None, &why))?;
        self.warn_about_codecs(&m);
        self.warn_about_ssrc_rewriting(&m);
        let known = self.conferences.contains_key(&m.meeting_id);
        if m.create && known {
            return Err(codec::error(
                Reason::ConferenceAlreadyExists,
                None,
                &m.meeting_id,
            ));
        }
        if !m.create && !known {
            return Err(codec::error(
                Reason::ConferenceNotFound,
                None,
                &m.meeting_id,
            ));
        }
        let bridge = self.bridge.clone();
        let (focus, members) = match self.conferences.remove(&m.meeting_id) {
            Some(c) => (c.focus, c.endpoints),
            None => (focus.to_owned(), HashSet::new()),
        };
        let base = self.config.websocket_base.clone();
        let outcome =
            tokio::task::spawn_blocking(move || apply(&bridge, &m, members, base.as_deref()))
                .await
                .map_err(|_| codec::error(Reason::Unspecified, None, "the bridge failed"))?;
        let (meeting_id, members, result) = outcome;
        if let Some(endpoints) = members {
            self.conferences
                .insert(meeting_id, Conference { focus, endpoints });
        }
        result.map(Some)
    }

    /// Ends the conferences `which` picks, on the bridge too.
    async fn end_conferences(&mut self, which: impl Fn(&Conference) -> bool) {
        let ended: Vec<String> = self
            .conferences
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(id, _)| id.clone())
            .collect();
        if ended.is_empty() {
            return;
        }
        for id in &ended {
            self.conferences.remove(id);
        }
        tracing::info!(
            count = ended.len(),
            "ending conferences whose Jicofo is gone"
        );
        let bridge = self.bridge.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in ended {
                let _ = bridge.expire_conference(&id);
            }
        })
        .await;
    }

    /// The bridge forwards Opus and VP8 (with its RTX) on Jicofo's default
    /// payload types; a client that picks another codec Jicofo offers sends
    /// media the bridge drops. Says so once per payload type.
    fn warn_about_codecs(&mut self, m: &Modify) {
        const FORWARDED: [(u8, &str); 3] = [
            (sfu::OPUS_PT, "opus"),
            (sfu::VP8_PT, "VP8"),
            (sfu::VP8_RTX_PT, "rtx"),
        ];
        // Comfort noise, DTMF, RED and FEC go unforwarded with stock Jitsi too.
        const INCIDENTAL: [&str; 4] = ["CN", "telephone-event", "red", "ulpfec"];
        const MOST: usize = 32;
        for (_, pt, name) in m.endpoints.iter().flat_map(|e| &e.payload_types) {
            let ours = FORWARDED
                .iter()
                .any(|(p, n)| p == pt && n.eq_ignore_ascii_case(name));
            let incidental = INCIDENTAL.iter().any(|n| n.eq_ignore_ascii_case(name));
            if ours || incidental || self.warned.len() >= MOST {
                continue;
            }
            if self.warned.insert((*pt, name.clone())) {
                tracing::warn!(
                    payload_type = pt,
                    codec = %name,
                    "Jicofo offers a codec this bridge does not forward: turn it off in jicofo.conf (codec.video), or clients that choose it send video nobody receives"
                );
            }
        }
    }

    /// Jicofo leaves a client in SSRC-rewriting mode to learn its remote
    /// sources from the bridge, which this one does not announce yet: that
    /// client receives no one. Says so once, with the setting that avoids it.
    fn warn_about_ssrc_rewriting(&mut self, m: &Modify) {
        if self.warned_rewriting {
            return;
        }
        if let Some(e) = m.endpoints.iter().find(|e| e.ssrc_rewriting) {
            self.warned_rewriting = true;
            tracing::warn!(
                endpoint = %e.id,
                "Jicofo asks for SSRC rewriting, which this bridge does not do: set jicofo.conference.use-ssrc-rewriting = false in jicofo.conf, or clients that support it (the current ones) receive no one"
            );
        }
    }
}

/// The request against the bridge: the conference's members after it (none
/// when it ended) and the answer.
fn apply(
    bridge: &Bridge,
    m: &Modify,
    mut members: HashSet<String>,
    websocket_base: Option<&str>,
) -> (String, Option<HashSet<String>>, Result<Element, Element>) {
    let conference = m.meeting_id.as_str();
    let mut answer =
        Element::new("conference-modified", codec::NS).with_attr("meeting-id", conference);
    if m.expire {
        let _ = bridge.expire_conference(conference);
        return (m.meeting_id.clone(), None, Ok(answer));
    }
    for e in &m.endpoints {
        if e.ice_restart {
            // str0m cannot restart an agent in place; Jicofo then re-invites
            // the participant, which gets it a new endpoint.
            let error = codec::error(
                Reason::FeatureNotImplemented,
                Some(&e.id),
                "ICE restart in place is not supported",
            );
            return failed(m, members, error);
        }
        if e.expire {
            let _ = bridge.expire_endpoint(conference, &e.id);
            members.remove(&e.id);
            continue;
        }
        let mut created = None;
        if e.create {
            match bridge.create_endpoint(conference, &e.id) {
                Ok(local) => {
                    members.insert(e.id.clone());
                    created = Some(local);
                }
                Err(err) => return failed(m, members, refused(err, &e.id)),
            }
        } else if !members.contains(&e.id) {
            let unknown = ApiError::UnknownEndpoint(e.id.clone());
            return failed(m, members, refused(unknown, &e.id));
        }
        let updated = if e.transport.is_some() || e.sources.is_some() {
            bridge.update_endpoint(conference, &e.id, e.transport.clone(), e.sources.clone())
        } else {
            Ok(())
        };
        if let Err(err) = updated {
            return failed(m, members, refused(err, &e.id));
        }
        if let Some((audio, video)) = e.force_mute
            && let Err(err) = bridge.force_mute(conference, &e.id, audio, video)
        {
            return failed(m, members, refused(err, &e.id));
        }
        if let Some(local) = created {
            let url = websocket_base.map(|b| format!("{b}/{}", local.channel_path));
            answer.push_child(codec::endpoint_created(
                &e.id,
                &local,
                url.as_deref(),
                e.sctp,
            ));
        }
    }
    if m.create {
        answer.push_child(codec::feedback_sources(
            sfu::rtp::random_ssrc(),
            sfu::rtp::random_ssrc(),
        ));
    }
    // A request that leaves the conference empty ends it (Videobridge's rule).
    if members.is_empty() && !m.create {
        let _ = bridge.expire_conference(conference);
        return (m.meeting_id.clone(), None, Ok(answer));
    }
    (m.meeting_id.clone(), Some(members), Ok(answer))
}

fn failed(
    m: &Modify,
    members: HashSet<String>,
    error: Element,
) -> (String, Option<HashSet<String>>, Result<Element, Element>) {
    // A conference whose creation failed is not there to be modified.
    let members = (!members.is_empty()).then_some(members);
    (m.meeting_id.clone(), members, Err(error))
}

/// A bridge error as the Colibri2 error Jicofo acts on.
fn refused(err: ApiError, endpoint: &str) -> Element {
    let reason = match &err {
        ApiError::UnknownEndpoint(_) => Reason::UnknownEndpoint,
        ApiError::ConferenceNotFound(_) => Reason::ConferenceNotFound,
        ApiError::Shutdown => Reason::GracefulShutdown,
        ApiError::Draining => Reason::TryElsewhere,
        _ => Reason::Unspecified,
    };
    codec::error(reason, Some(endpoint), &err.to_string())
}
