//! The `jitsi:colibri2` elements (protocol §4.4): a `<conference-modify>` read
//! into plain requests, and the `<conference-modified>` answer and Colibri2
//! errors written back.

use std::net::{IpAddr, SocketAddr};

use sfu::api::{LocalTransport, RemoteTransport, Setup, Sources};
use signaling::xml::Element;

pub const NS: &str = "jitsi:colibri2";
pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// Videobridge's old namespace, still the one of `<web-socket>` and `<stats>`.
pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";

/// Most endpoints, sources or candidates one request may name: Jicofo sends a
/// handful; more is a broken or hostile peer.
const MAX_ITEMS: usize = 256;

/// One `<conference-modify>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modify {
    /// The conference's `meeting-id`: our conference id.
    pub meeting_id: String,
    pub create: bool,
    pub expire: bool,
    pub endpoints: Vec<EndpointModify>,
}

/// One `<endpoint>` of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointModify {
    pub id: String,
    pub create: bool,
    pub expire: bool,
    /// The client's transport, when the request carries its credentials.
    pub transport: Option<RemoteTransport>,
    /// Whether an SCTP association was asked for (`<sctp/>` in `<transport>`).
    pub sctp: bool,
    /// Whether a new ICE generation was asked for (`<transport ice-restart='true'>`).
    pub ice_restart: bool,
    /// The endpoint's complete sources, when given.
    pub sources: Option<Sources>,
    /// `<force-mute audio video>`: whether its audio and video are to be dropped.
    pub force_mute: Option<(bool, bool)>,
    /// The payload types of its `<media>`: kind, id, encoding name.
    pub payload_types: Vec<(String, u8, String)>,
    /// `<capability name='ssrc-rewriting'/>`: Jicofo signals this client no
    /// remote sources and expects the bridge to announce them.
    pub ssrc_rewriting: bool,
}

/// Reads a `<conference-modify>`; the error says what is wrong with it.
pub fn parse_modify(el: &Element) -> Result<Modify, String> {
    if !el.is("conference-modify", NS) {
        return Err("not a conference-modify".into());
    }
    let meeting_id = el
        .attr("meeting-id")
        .filter(|m| !m.is_empty())
        .ok_or("conference-modify without meeting-id")?;
    let mut endpoints = Vec::new();
    for e in el.children().filter(|c| c.is("endpoint", NS)) {
        if endpoints.len() == MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} endpoints"));
        }
        endpoints.push(parse_endpoint(e)?);
    }
    Ok(Modify {
        meeting_id: meeting_id.to_owned(),
        create: flag(el, "create"),
        expire: flag(el, "expire"),
        endpoints,
    })
}

fn flag(el: &Element, name: &str) -> bool {
    el.attr(name) == Some("true")
}

fn parse_endpoint(e: &Element) -> Result<EndpointModify, String> {
    let id = e
        .attr("id")
        .filter(|i| !i.is_empty())
        .ok_or("endpoint without id")?;
    let outer = e.child("transport", NS);
    let transport = outer
        .and_then(|t| t.child("transport", ICE_UDP))
        .map(parse_ice)
        .transpose()?
        .flatten();
    Ok(EndpointModify {
        id: id.to_owned(),
        create: flag(e, "create"),
        expire: flag(e, "expire"),
        transport,
        sctp: outer.is_some_and(|t| t.child("sctp", NS).is_some()),
        ice_restart: outer.is_some_and(|t| flag(t, "ice-restart")),
        sources: e.child("sources", NS).map(parse_sources).transpose()?,
        force_mute: e
            .child("force-mute", NS)
            .map(|f| (flag(f, "audio"), flag(f, "video"))),
        payload_types: e
            .children()
            .filter(|m| m.is("media", NS))
            .flat_map(|m| {
                let kind = m.attr("type").unwrap_or_default();
                m.children()
                    .filter(|p| p.name() == "payload-type")
                    .filter_map(move |p| {
                        let id = p.attr("id")?.parse().ok()?;
                        Some((kind.to_owned(), id, p.attr("name")?.to_owned()))
                    })
            })
            .take(MAX_ITEMS)
            .collect(),
        ssrc_rewriting: e
            .children()
            .any(|c| c.is("capability", NS) && c.attr("name") == Some("ssrc-rewriting")),
    })
}

/// The client's ice-udp transport; `None` without credentials (a create that
/// only asks for the bridge's side).
fn parse_ice(t: &Element) -> Result<Option<RemoteTransport>, String> {
    let (Some(ufrag), Some(pwd)) = (t.attr("ufrag"), t.attr("pwd")) else {
        return Ok(None);
    };
    // One fingerprint for the bridge to check (RFC 8122 allows one per hash): sha-256 first.
    let fingerprints: Vec<&Element> = t.children().filter(|c| c.is("fingerprint", DTLS)).collect();
    let f = ["sha-256", "sha-1"]
        .iter()
        .find_map(|h| {
            fingerprints
                .iter()
                .find(|f| f.attr("hash").is_some_and(|x| x.eq_ignore_ascii_case(h)))
        })
        .or(fingerprints.first())
        .ok_or("transport without fingerprint")?;
    let setup = match f.attr("setup").unwrap_or("active") {
        "active" => Setup::Active,
        "passive" => Setup::Passive,
        "actpass" => Setup::Actpass,
        other => return Err(format!("unknown DTLS setup '{other}'")),
    };
    let mut candidates = Vec::new();
    for (n, c) in t
        .children()
        .filter(|c| c.is("candidate", ICE_UDP))
        .enumerate()
    {
        if n == MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} candidates"));
        }
        // UDP, the RTP component (RTCP is muxed), a literal address.
        let udp = c
            .attr("protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("udp"));
        let rtp = c.attr("component").is_none_or(|comp| comp == "1");
        let ip = c.attr("ip").and_then(|ip| ip.parse::<IpAddr>().ok());
        let port = c
            .attr("port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0);
        if let (true, true, Some(ip), Some(port)) = (udp, rtp, ip, port) {
            let addr = SocketAddr::new(ip, port);
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
    }
    Ok(Some(RemoteTransport {
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
        fingerprint_hash: f.attr("hash").unwrap_or("sha-256").to_ascii_lowercase(),
        fingerprint: f.text().trim().to_owned(),
        setup,
        candidates,
    }))
}

/// An endpoint's `<sources>`: audio SSRCs, one layer list per video source
/// (its SIM group, else its first non-RTX SSRC) and FID pairs.
fn parse_sources(s: &Element) -> Result<Sources, String> {
    let mut out = Sources::default();
    let mut count = 0;
    for m in s.children().filter(|c| c.is("media-source", NS)) {
        let ssrcs: Vec<u32> = m
            .children()
            .filter(|c| c.is("source", SSMA))
            .filter_map(|c| c.attr("ssrc")?.parse().ok())
            .collect();
        count += ssrcs.len();
        if count > MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} sources"));
        }
        let group = |semantics: &str| {
            m.children()
                .filter(|c| c.is("ssrc-group", SSMA) && c.attr("semantics") == Some(semantics))
                .map(|g| {
                    g.children()
                        .filter(|c| c.is("source", SSMA))
                        .filter_map(|c| c.attr("ssrc")?.parse::<u32>().ok())
                        .collect::<Vec<u32>>()
                })
                .collect::<Vec<_>>()
        };
        match m.attr("type") {
            Some("audio") => out.audio.extend(ssrcs),
            Some("video") => {
                let fids: Vec<(u32, u32)> = group("FID")
                    .into_iter()
                    .filter_map(|g| (g.len() == 2).then(|| (g[0], g[1])))
                    .collect();
                let layers = group("SIM").into_iter().next().unwrap_or_else(|| {
                    let primary = ssrcs.iter().find(|s| !fids.iter().any(|(_, r)| r == *s));
                    primary.copied().into_iter().collect()
                });
                if !layers.is_empty() {
                    out.video.push(layers);
                }
                out.rtx.extend(fids);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The bridge's side of an endpoint's transport as an ice-udp `<transport>`:
/// what a Colibri2 answer carries and what a Jingle offer copies into every
/// content. The bridge offers `actpass` and ends up the DTLS server, as the
/// client answers `active`.
pub fn ice_udp_transport(local: &LocalTransport, websocket: Option<&str>) -> Element {
    let mut ice = Element::new("transport", ICE_UDP)
        .with_attr("ufrag", local.ufrag.as_str())
        .with_attr("pwd", local.pwd.as_str())
        .with_child(Element::new("rtcp-mux", ICE_UDP))
        .with_child(
            Element::new("fingerprint", DTLS)
                .with_attr("hash", local.fingerprint_hash.as_str())
                .with_attr("setup", "actpass")
                .with_text(local.fingerprint.as_str()),
        );
    for (i, c) in local.candidates.iter().enumerate() {
        ice.push_child(
            Element::new("candidate", ICE_UDP)
                .with_attr("component", c.component.to_string())
                .with_attr("foundation", c.foundation.as_str())
                .with_attr("generation", "0")
                .with_attr("id", format!("c{i}"))
                .with_attr("network", "0")
                .with_attr("protocol", c.protocol.as_str())
                .with_attr("type", c.kind.as_str())
                .with_attr("ip", c.address.ip().to_string())
                .with_attr("port", c.address.port().to_string())
                .with_attr("priority", c.priority.to_string()),
        );
    }
    if let Some(url) = websocket {
        ice.push_child(Element::new("web-socket", COLIBRI).with_attr("url", url));
    }
    ice
}

/// The bridge's side of a new endpoint, as a `<conference-modified>` carries it.
pub fn endpoint_created(
    id: &str,
    local: &LocalTransport,
    websocket: Option<&str>,
    sctp: bool,
) -> Element {
    let mut transport =
        Element::new("transport", NS).with_child(ice_udp_transport(local, websocket));
    if sctp {
        // Videobridge supports one SCTP port, as the server.
        transport.push_child(
            Element::new("sctp", NS)
                .with_attr("port", "5000")
                .with_attr("role", "server"),
        );
    }
    Element::new("endpoint", NS)
        .with_attr("id", id)
        .with_child(transport)
}

/// The bridge's "feedback" sources (`jvb-a0`, `jvb-v0`), which the answer to
/// the request that made a conference carries: Jicofo puts them into every
/// participant's offer, and the current client needs a source on its first
/// audio and video lines (without one, its answers change form at the first
/// source-add and Chrome keeps asking to renegotiate).
pub fn feedback_sources(audio_ssrc: u32, video_ssrc: u32) -> Element {
    let source = |kind: &str, id: &str, ssrc: u32| {
        Element::new("media-source", NS)
            .with_attr("type", kind)
            .with_attr("id", id)
            .with_child(
                Element::new("source", SSMA)
                    .with_attr("ssrc", ssrc.to_string())
                    .with_attr("name", id),
            )
    };
    Element::new("sources", NS)
        .with_child(source("audio", "jvb-a0", audio_ssrc))
        .with_child(source("video", "jvb-v0", video_ssrc))
}

/// Why a request failed, by the reasons Jicofo acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Jicofo re-invites that participant.
    UnknownEndpoint,
    ConferenceNotFound,
    ConferenceAlreadyExists,
    FeatureNotImplemented,
    /// Jicofo moves the conference to another bridge, and places none here
    /// again (it stays set).
    GracefulShutdown,
    /// Jicofo tries another bridge without marking this one down (a
    /// draining bridge chosen before its presence said so).
    TryElsewhere,
    Unspecified,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::UnknownEndpoint => "UNKNOWN_ENDPOINT",
            Reason::ConferenceNotFound => "CONFERENCE_NOT_FOUND",
            Reason::ConferenceAlreadyExists => "CONFERENCE_ALREADY_EXISTS",
            Reason::FeatureNotImplemented => "FEATURE_NOT_IMPLEMENTED",
            Reason::GracefulShutdown => "GRACEFUL_SHUTDOWN",
            Reason::TryElsewhere | Reason::Unspecified => "UNSPECIFIED",
        }
    }

    /// The XMPP stanza error condition that goes with it.
    fn condition(self) -> &'static str {
        match self {
            Reason::UnknownEndpoint | Reason::ConferenceNotFound => "item-not-found",
            Reason::ConferenceAlreadyExists | Reason::TryElsewhere => "conflict",
            Reason::FeatureNotImplemented => "feature-not-implemented",
            Reason::GracefulShutdown => "service-unavailable",
            Reason::Unspecified => "bad-request",
        }
    }
}

/// The `<error>` of an IQ error answer: the stanza condition, Colibri2's
/// reason, the endpoint concerned and a text for people.
pub fn error(reason: Reason, endpoint: Option<&str>, text: &str) -> Element {
    let mut e = Element::new("error", signaling::ns::CLIENT)
        .with_attr("type", "cancel")
        .with_child(Element::new(reason.condition(), signaling::ns::STANZAS_ERR))
        .with_child(Element::new("error", NS).with_attr("reason", reason.name()));
    if let Some(id) = endpoint {
        e.push_child(Element::new("endpoint", NS).with_attr("id", id));
    }
    e.push_child(Element::new("text", signaling::ns::STANZAS_ERR).with_text(text));
    e
}

#[cfg(test)]
mod tests;
