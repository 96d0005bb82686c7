//! What the focus sends a client: the `session-initiate` offer (§3.2) and the
//! `source-add` / `source-remove` that keep its view of the others current.

use sfu::api::LocalTransport;
use signaling::xml::Element;

use super::envelope::jingle_element;
use super::profile::MediaProfile;
use super::{Action, json, ns, ssma, transport};
use crate::source::{EndpointSources, Media, SourceSet};

/// Sources of one owner (an endpoint ID, or `jvb`), as signalled to others.
#[derive(Clone, Copy, Debug)]
pub struct RemoteSources<'a> {
    pub owner: &'a str,
    pub sources: &'a SourceSet,
}

impl<'a> From<&'a EndpointSources> for RemoteSources<'a> {
    fn from(e: &'a EndpointSources) -> Self {
        RemoteSources {
            owner: e.endpoint(),
            sources: e.set(),
        }
    }
}

/// How sources travel to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceEncoding {
    /// `<source>`/`<ssrc-group>` in each content's description (XEP-0339).
    Standard,
    /// One `<json-message>`, for clients advertising
    /// `http://jitsi.org/json-encoded-sources` (V21 and CUR both do).
    Json,
}

/// The `<bridge-session>` the client echoes when it asks for a restart.
#[derive(Clone, Copy, Debug)]
pub struct BridgeSession<'a> {
    pub id: &'a str,
    /// Shown to the user as the server region.
    pub region: Option<&'a str>,
}

/// Which media the participant must start with muted (start-muted policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartMuted {
    pub audio: bool,
    pub video: bool,
}

/// Everything a `session-initiate` says; [`Offer::new`] fills the usual defaults.
#[derive(Clone, Debug)]
pub struct Offer<'a> {
    pub sid: &'a str,
    /// The focus's real JID (`focus@auth.example.com/focus`).
    pub initiator: &'a str,
    /// The bridge's side of this participant's endpoint.
    pub transport: &'a LocalTransport,
    /// Bridge-channel URL up to the bridge ID, e.g.
    /// `wss://meet.example.com/colibri-ws/jvb1`; the transport's `channel_path`
    /// is appended. `None` leaves the WebSocket out (SCTP only).
    pub bridge_channel_base: Option<&'a str>,
    pub profile: &'a MediaProfile,
    /// Contents to offer: audio and video as the participant advertised them,
    /// `data` (SCTP) only when both it and the bridge do data channels.
    pub audio: bool,
    pub video: bool,
    pub data: bool,
    /// Everyone else's sources and the bridge's feedback sources; simulcast
    /// layers beyond the first are stripped on the way out.
    pub sources: &'a [RemoteSources<'a>],
    pub encoding: SourceEncoding,
    pub bridge_session: Option<BridgeSession<'a>>,
    pub start_muted: Option<StartMuted>,
}

impl<'a> Offer<'a> {
    /// Audio and video, no data channel, no sources, standard encoding.
    pub fn new(
        sid: &'a str,
        initiator: &'a str,
        transport: &'a LocalTransport,
        profile: &'a MediaProfile,
    ) -> Self {
        Offer {
            sid,
            initiator,
            transport,
            bridge_channel_base: None,
            profile,
            audio: true,
            video: true,
            data: false,
            sources: &[],
            encoding: SourceEncoding::Standard,
            bridge_session: None,
            start_muted: None,
        }
    }
}

/// Builds the `<jingle action='session-initiate'>` for one participant.
///
/// ```
/// use focus::jingle::{MediaProfile, Offer, build_session_initiate};
/// use sfu::api::LocalTransport;
/// let transport = LocalTransport {
///     ufrag: "4fl7".into(),
///     pwd: "2d5k1u0s6mb7t0ja4o1r9dqe7".into(),
///     fingerprint_hash: "sha-256".into(),
///     fingerprint: "9A:3C".into(),
///     candidates: vec![],
///     channel_path: "conf1/3f2a9c1d?pwd=Xq2".into(),
/// };
/// let profile = MediaProfile::default();
/// let mut offer = Offer::new("8qm9ifctuhqvs", "focus@auth.example.com/focus", &transport, &profile);
/// offer.bridge_channel_base = Some("wss://meet.example.com/colibri-ws/jvb1");
/// let jingle = build_session_initiate(&offer);
/// assert!(jingle.to_xml().contains("url='wss://meet.example.com/colibri-ws/jvb1/conf1/3f2a9c1d?pwd=Xq2'"));
/// ```
pub fn build_session_initiate(offer: &Offer<'_>) -> Element {
    let mut jingle = jingle_element(Action::SessionInitiate, offer.sid, Some(offer.initiator));
    let stripped = receiver_view(offer.sources, offer.audio, offer.video);
    let owners = as_remote(&stripped);
    let websocket = offer.bridge_channel_base.map(|base| {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            offer.transport.channel_path.trim_start_matches('/')
        )
    });
    let mut names = Vec::new();
    for (media, wanted) in [(Media::Audio, offer.audio), (Media::Video, offer.video)] {
        if !wanted {
            continue;
        }
        let mut desc = match media {
            Media::Audio => offer.profile.audio_description(),
            Media::Video => offer.profile.video_description(),
        };
        if offer.encoding == SourceEncoding::Standard {
            ssma::append(&mut desc, media, &owners);
        }
        desc.push_child(Element::new("rtcp-mux", ns::RTP));
        let t = transport::build(offer.transport, websocket.as_deref(), false);
        jingle.push_child(offer_content(media.as_str(), desc, t));
        names.push(media.as_str());
    }
    if offer.data {
        let desc = Element::new("description", ns::RTP).with_attr("media", "application");
        let t = transport::build(offer.transport, websocket.as_deref(), true);
        jingle.push_child(offer_content("data", desc, t));
        names.push("data");
    }
    // Contents come before the group: V21 finds contents by name anywhere
    // under <jingle> and takes the first match.
    let mut group = Element::new("group", ns::GROUPING).with_attr("semantics", "BUNDLE");
    for name in names {
        group.push_child(Element::new("content", ns::GROUPING).with_attr("name", name));
    }
    jingle.push_child(group);
    if let Some(bs) = offer.bridge_session {
        let mut el = Element::new("bridge-session", ns::FOCUS).with_attr("id", bs.id);
        if let Some(region) = bs.region {
            el.set_attr("region", region);
        }
        jingle.push_child(el);
    }
    if let Some(m) = offer.start_muted {
        jingle.push_child(
            Element::new("startmuted", ns::START_MUTED)
                .with_attr("audio", m.audio.to_string())
                .with_attr("video", m.video.to_string()),
        );
    }
    if offer.encoding == SourceEncoding::Json {
        jingle.push_child(json::json_message(&owners));
    }
    jingle
}

/// Builds a `source-add` telling a participant about new remote sources.
///
/// ```
/// use focus::jingle::{RemoteSources, SourceEncoding, build_source_add};
/// use focus::source::{EndpointSources, Media, Source, SourceSet};
/// let mut ep = EndpointSources::new("7c1d0e42");
/// let added = ep.add(SourceSet { sources: vec![Source::new(2221, Media::Audio)], groups: vec![] }).unwrap();
/// let owners = [RemoteSources { owner: ep.endpoint(), sources: &added }];
/// let jingle = build_source_add("8qm9ifctuhqvs", &owners, SourceEncoding::Json);
/// let json = jingle.child("json-message", "http://jitsi.org/jitmeet").unwrap().text();
/// assert_eq!(json, r#"{"sources":{"7c1d0e42":[[],[],[{"s":2221,"n":"7c1d0e42-a0"}]]}}"#);
/// ```
pub fn build_source_add(
    sid: &str,
    sources: &[RemoteSources<'_>],
    encoding: SourceEncoding,
) -> Element {
    sources_message(Action::SourceAdd, sid, sources, encoding)
}

/// Builds a `source-remove` for remote sources that went away (a track
/// stopped or a session restarted; a participant leaving the room needs none,
/// clients drop its sources on its `unavailable` presence).
pub fn build_source_remove(
    sid: &str,
    sources: &[RemoteSources<'_>],
    encoding: SourceEncoding,
) -> Element {
    sources_message(Action::SourceRemove, sid, sources, encoding)
}

fn sources_message(
    action: Action,
    sid: &str,
    sources: &[RemoteSources<'_>],
    encoding: SourceEncoding,
) -> Element {
    let mut jingle = jingle_element(action, sid, None);
    let stripped = receiver_view(sources, true, true);
    let owners = as_remote(&stripped);
    match encoding {
        SourceEncoding::Json => jingle.push_child(json::json_message(&owners)),
        SourceEncoding::Standard => {
            for media in [Media::Audio, Media::Video] {
                if !ssma::has_media(&owners, media) {
                    continue;
                }
                let mut desc =
                    Element::new("description", ns::RTP).with_attr("media", media.as_str());
                ssma::append(&mut desc, media, &owners);
                jingle.push_child(
                    Element::new("content", ns::JINGLE)
                        .with_attr("name", media.as_str())
                        .with_child(desc),
                );
            }
        }
    }
    jingle
}

fn offer_content(name: &str, desc: Element, transport: Element) -> Element {
    Element::new("content", ns::JINGLE)
        .with_attr("creator", "initiator")
        .with_attr("name", name)
        .with_attr("senders", "both")
        .with_child(desc)
        .with_child(transport)
}

/// The stripped sets as owners' sources, for the encoders.
fn as_remote<'a>(stripped: &'a [(&'a str, SourceSet)]) -> Vec<RemoteSources<'a>> {
    stripped
        .iter()
        .map(|(owner, set)| RemoteSources {
            owner,
            sources: set,
        })
        .collect()
}

/// What a receiver is told: simulcast stripped, only the media it takes.
fn receiver_view<'s>(
    sources: &[RemoteSources<'s>],
    audio: bool,
    video: bool,
) -> Vec<(&'s str, SourceSet)> {
    let keep = |m: Media| match m {
        Media::Audio => audio,
        Media::Video => video,
    };
    sources
        .iter()
        .map(|o| {
            let mut set = o.sources.strip_simulcast();
            set.sources.retain(|s| keep(s.media));
            set.groups.retain(|g| keep(g.media));
            (o.owner, set)
        })
        .collect()
}
