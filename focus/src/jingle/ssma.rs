//! Sources in the standard Jingle encoding (`urn:xmpp:jingle:apps:rtp:ssma:0`,
//! XEP-0339): `<source>` and `<ssrc-group>` inside an RTP `<description>`.

use signaling::xml::Element;

use super::offer::RemoteSources;
use super::{JingleError, bounded, ns, parse_ssrc};
use crate::source::{Media, Semantics, Source, SourceSet, SsrcGroup, VideoType};

/// A `<source>` as the focus relays it: owner in `ssrc-info`, name, msid.
fn source_element(s: &Source, owner: &str) -> Element {
    let mut el = Element::new("source", ns::SSMA).with_attr("ssrc", s.ssrc.to_string());
    if let Some(name) = &s.name {
        el.set_attr("name", name.as_str());
    }
    if let Some(vt) = s.video_type {
        el.set_attr("videoType", vt.as_str());
    }
    el.push_child(Element::new("ssrc-info", ns::JITMEET).with_attr("owner", owner));
    if let Some(msid) = &s.msid {
        el.push_child(
            Element::new("parameter", ns::SSMA)
                .with_attr("name", "msid")
                .with_attr("value", msid.as_str()),
        );
    }
    el
}

fn group_element(g: &SsrcGroup) -> Element {
    let mut el = Element::new("ssrc-group", ns::SSMA).with_attr("semantics", g.semantics.as_str());
    for ssrc in &g.ssrcs {
        el.push_child(Element::new("source", ns::SSMA).with_attr("ssrc", ssrc.to_string()));
    }
    el
}

/// Appends every owner's `media` sources, then their groups, to `desc`
/// (the order Jicofo writes them in).
pub(crate) fn append(desc: &mut Element, media: Media, owners: &[RemoteSources<'_>]) {
    for o in owners {
        for s in o.sources.sources.iter().filter(|s| s.media == media) {
            desc.push_child(source_element(s, o.owner));
        }
    }
    for o in owners {
        for g in o.sources.groups.iter().filter(|g| g.media == media) {
            desc.push_child(group_element(g));
        }
    }
}

/// Whether any owner has something of `media` to signal.
pub(crate) fn has_media(owners: &[RemoteSources<'_>], media: Media) -> bool {
    owners.iter().any(|o| {
        o.sources.sources.iter().any(|s| s.media == media)
            || o.sources.groups.iter().any(|g| g.media == media)
    })
}

/// Reads the sources and groups of every content of a client's message.
/// The owner is the sender, whatever `ssrc-info` says. Groups of semantics the
/// bridge does not use (e.g. `FEC-FR`) are skipped, so are rid-only sources
/// (Firefox simulcast), which carry no SSRC to forward.
pub(crate) fn parse_contents(jingle: &Element) -> Result<SourceSet, JingleError> {
    let mut set = SourceSet::default();
    let contents: Vec<&Element> = jingle
        .children()
        .filter(|c| c.name() == "content")
        .collect();
    bounded("contents", contents.len())?;
    for content in contents {
        let desc = content.child("description", ns::RTP);
        let media_name = desc
            .and_then(|d| d.attr("media"))
            .or(content.attr("name"))
            .unwrap_or("");
        // Jicofo also looks for sources directly under <content>; so do we.
        let holders = desc.into_iter().chain(std::iter::once(content));
        let mut sources = Vec::new();
        let mut groups = Vec::new();
        for holder in holders {
            sources.extend(holder.children().filter(|c| c.is("source", ns::SSMA)));
            groups.extend(holder.children().filter(|c| c.is("ssrc-group", ns::SSMA)));
        }
        if sources.is_empty() && groups.is_empty() {
            continue;
        }
        let media =
            Media::parse(media_name).ok_or_else(|| JingleError::BadMedia(media_name.to_owned()))?;
        for s in sources {
            if let Some(source) = parse_source(s, media)? {
                set.sources.push(source);
                bounded("sources", set.sources.len())?;
            }
        }
        for g in groups {
            if let Some(group) = parse_group(g, media)? {
                set.groups.push(group);
                bounded("ssrc-groups", set.groups.len())?;
            }
        }
    }
    Ok(set)
}

fn parse_source(s: &Element, media: Media) -> Result<Option<Source>, JingleError> {
    let Some(ssrc) = s.attr("ssrc") else {
        if s.attr("rid").is_some() {
            return Ok(None);
        }
        return Err(JingleError::MissingAttr {
            element: "source",
            attr: "ssrc",
        });
    };
    // Jicofo writes <parameter> in the rtp:1 namespace, clients in ssma:0; take either.
    let msid = s
        .children()
        .find(|p| p.name() == "parameter" && p.attr("name") == Some("msid"))
        .and_then(|p| p.attr("value"))
        .map(str::to_owned);
    Ok(Some(Source {
        ssrc: parse_ssrc(ssrc)?,
        media,
        name: s.attr("name").filter(|n| !n.is_empty()).map(str::to_owned),
        msid,
        video_type: match media {
            Media::Video => s.attr("videoType").and_then(VideoType::parse),
            Media::Audio => None,
        },
    }))
}

fn parse_group(g: &Element, media: Media) -> Result<Option<SsrcGroup>, JingleError> {
    let semantics = g.attr("semantics").ok_or(JingleError::MissingAttr {
        element: "ssrc-group",
        attr: "semantics",
    })?;
    let Some(semantics) = Semantics::parse(semantics) else {
        return Ok(None);
    };
    let mut ssrcs = Vec::new();
    for s in g.children().filter(|c| c.name() == "source") {
        let ssrc = s.attr("ssrc").ok_or(JingleError::MissingAttr {
            element: "ssrc-group/source",
            attr: "ssrc",
        })?;
        ssrcs.push(parse_ssrc(ssrc)?);
        bounded("SSRCs in a group", ssrcs.len())?;
    }
    Ok(Some(SsrcGroup {
        semantics,
        media,
        ssrcs,
    }))
}
