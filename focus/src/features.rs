//! What a participant's client can do, learned as Jicofo learns it: a
//! disco#info query to its occupant JID, answered before it is invited
//! (protocol §3.1). The answer decides the contents of its offer and whether
//! it gets sources as JSON.
//!
//! ```
//! use focus::features::Features;
//! # use signaling::xml::Element;
//! let answer = Element::new("iq", "jabber:client").with_child(
//!     Element::new("query", "http://jabber.org/protocol/disco#info").with_child(
//!         Element::new("feature", "http://jabber.org/protocol/disco#info")
//!             .with_attr("var", "http://jitsi.org/json-encoded-sources"),
//!     ),
//! );
//! assert!(Features::from_disco(&answer).json_sources);
//! ```

use std::time::Duration;

use signaling::ns;
use signaling::xml::Element;

/// Asks for sources in one `<json-message>` instead of `<source>` elements.
pub const JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";
const AUDIO: &str = "urn:xmpp:jingle:apps:rtp:audio";
const VIDEO: &str = "urn:xmpp:jingle:apps:rtp:video";
const CAPS: &str = "http://jabber.org/protocol/caps";

/// How long an invitation waits for the answer before assuming
/// [`Features::FALLBACK`] (Jicofo waits up to its 15 s reply timeout; a
/// client that never answers would hold the whole call that long).
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The features the focus acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Offer an audio content.
    pub audio: bool,
    /// Offer a video content.
    pub video: bool,
    /// Send sources JSON-encoded (session-initiate, source-add, source-remove).
    pub json_sources: bool,
}

impl Features {
    /// For a client that did not answer: audio and video, standard sources
    /// (what Jicofo assumes).
    pub const FALLBACK: Features = Features {
        audio: true,
        video: true,
        json_sources: false,
    };

    /// From a disco#info result. A client that lists neither audio nor video
    /// is not describing its media at all: it is offered both.
    pub fn from_disco(result: &Element) -> Features {
        let Some(query) = result.child("query", ns::DISCO_INFO) else {
            return Features::FALLBACK;
        };
        let has = |var: &str| {
            query
                .children()
                .any(|f| f.is("feature", ns::DISCO_INFO) && f.attr("var") == Some(var))
        };
        let (audio, video) = match (has(AUDIO), has(VIDEO)) {
            (false, false) => (true, true),
            both => both,
        };
        Features {
            audio,
            video,
            json_sources: has(JSON_SOURCES),
        }
    }
}

/// The disco#info query to an occupant, naming the capabilities node its
/// presence advertised (XEP-0115) as Smack does; clients answer either way.
pub fn query(from: &str, to: &str, id: &str, presence: &Element) -> Element {
    let mut query = Element::new("query", ns::DISCO_INFO);
    if let Some(c) = presence.child("c", CAPS)
        && let (Some(node), Some(ver)) = (c.attr("node"), c.attr("ver"))
    {
        query.set_attr("node", format!("{node}#{ver}"));
    }
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", id)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_child(query)
}
