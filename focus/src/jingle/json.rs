//! Sources in Jicofo's compact JSON encoding (§3.3): one
//! `<json-message xmlns='http://jitsi.org/jitmeet'>` under `<jingle>` holding
//! `{"sources":{OWNER:[VIDEO,VIDEO_GROUPS,AUDIO,AUDIO_GROUPS?]}}`. Clients that
//! advertise `http://jitsi.org/json-encoded-sources` (V21 and CUR) expand it
//! into standard elements themselves; it is a fraction of the XML's size.

use serde_json::Value;
use signaling::xml::Element;

use super::offer::RemoteSources;
use super::{JingleError, ns};
use crate::source::{Media, Semantics, Source, SourceSet, SsrcGroup, VideoType};

/// Most sources one JSON message may describe: it carries a whole conference's
/// sources in an offer, so the bound is wider than for one client's message.
const MAX_JSON_SOURCES: usize = 4096;

/// The `<json-message>` for the given owners' sources. Written by hand rather
/// than through a map so keys keep Jicofo's order (`s`, `n`, `m`, `v`) and
/// owners keep the caller's, whatever serde_json features are on.
pub(crate) fn json_message(owners: &[RemoteSources<'_>]) -> Element {
    // Several entries for one owner merge into one array set.
    let mut merged: Vec<(&str, Vec<&Source>, Vec<&SsrcGroup>)> = Vec::new();
    for o in owners {
        let i = match merged.iter().position(|(owner, _, _)| *owner == o.owner) {
            Some(i) => i,
            None => {
                merged.push((o.owner, Vec::new(), Vec::new()));
                merged.len() - 1
            }
        };
        merged[i].1.extend(&o.sources.sources);
        merged[i].2.extend(&o.sources.groups);
    }
    let mut text = String::from("{\"sources\":{");
    for (n, (owner, sources, groups)) in merged.iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        let video = sources_of(sources, Media::Video);
        let video_groups = groups_of(groups, Media::Video);
        let audio = sources_of(sources, Media::Audio);
        let audio_groups = groups_of(groups, Media::Audio);
        text.push_str(&format!(
            "{}:[[{video}],[{video_groups}],[{audio}]",
            quote(owner)
        ));
        // Jicofo leaves out an empty trailing audio-group array.
        if !audio_groups.is_empty() {
            text.push_str(&format!(",[{audio_groups}]"));
        }
        text.push(']');
    }
    text.push_str("}}");
    Element::new("json-message", ns::JITMEET).with_text(text)
}

/// The comma-separated JSON of `media`'s sources.
fn sources_of(sources: &[&Source], media: Media) -> String {
    let items: Vec<String> = sources
        .iter()
        .filter(|s| s.media == media)
        .map(|s| source_json(s))
        .collect();
    items.join(",")
}

fn groups_of(groups: &[&SsrcGroup], media: Media) -> String {
    let items: Vec<String> = groups
        .iter()
        .filter(|g| g.media == media)
        .map(|g| group_json(g))
        .collect();
    items.join(",")
}

/// A JSON string literal (names and msids come from clients: escape them).
fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

fn source_json(s: &Source) -> String {
    let mut out = format!("{{\"s\":{}", s.ssrc);
    if let Some(name) = &s.name {
        out.push_str(&format!(",\"n\":{}", quote(name)));
    }
    if let Some(msid) = &s.msid {
        out.push_str(&format!(",\"m\":{}", quote(msid)));
    }
    if s.video_type == Some(VideoType::Desktop) {
        out.push_str(",\"v\":\"d\"");
    }
    out.push('}');
    out
}

fn group_json(g: &SsrcGroup) -> String {
    let tag = match g.semantics {
        Semantics::Sim => "s",
        Semantics::Fid => "f",
    };
    let mut out = format!("[\"{tag}\"");
    for ssrc in &g.ssrcs {
        out.push_str(&format!(",{ssrc}"));
    }
    out.push(']');
    out
}

/// Reads the text of a `<json-message>` into each owner's sources, as a
/// client does (owners in no particular order). Unknown group tags are skipped, as lib-jitsi-meet does;
/// anything malformed fails the whole message.
///
/// ```
/// use focus::jingle::parse_json_sources;
/// let owners = parse_json_sources(r#"{"sources":{"7c1d0e42":[[{"s":1111}],[],[{"s":2221}]]}}"#).unwrap();
/// assert_eq!(owners[0].0, "7c1d0e42");
/// assert_eq!(owners[0].1.sources.len(), 2);
/// ```
pub fn parse_json_sources(text: &str) -> Result<Vec<(String, SourceSet)>, JingleError> {
    let bad = |what: &str| JingleError::BadJson(what.to_owned());
    let value: Value =
        serde_json::from_str(text).map_err(|e| JingleError::BadJson(e.to_string()))?;
    let owners = value
        .get("sources")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no \"sources\" object"))?;
    let mut out = Vec::new();
    let mut total = 0;
    for (owner, parts) in owners {
        let parts = parts
            .as_array()
            .ok_or_else(|| bad("an owner's sources are not an array"))?;
        let part = |i: usize| -> Result<&[Value], JingleError> {
            match parts.get(i) {
                None => Ok(&[]),
                Some(Value::Array(a)) => Ok(a.as_slice()),
                Some(_) => Err(bad("a source list is not an array")),
            }
        };
        let mut set = SourceSet::default();
        for (media, sources, groups) in [(Media::Video, 0, 1), (Media::Audio, 2, 3)] {
            for s in part(sources)? {
                total += 1;
                if total > MAX_JSON_SOURCES {
                    return Err(JingleError::TooMany {
                        what: "JSON-encoded sources",
                        max: MAX_JSON_SOURCES,
                    });
                }
                set.sources.push(parse_source(s, media)?);
            }
            for g in part(groups)? {
                if let Some(g) = parse_group(g, media)? {
                    set.groups.push(g);
                }
            }
        }
        out.push((owner.clone(), set));
    }
    Ok(out)
}

fn json_ssrc(v: &Value) -> Result<u32, JingleError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n != 0)
            .ok_or_else(|| JingleError::BadSsrc(n.to_string())),
        Value::String(s) => super::parse_ssrc(s),
        other => Err(JingleError::BadSsrc(other.to_string())),
    }
}

fn parse_source(v: &Value, media: Media) -> Result<Source, JingleError> {
    let ssrc = v
        .get("s")
        .ok_or_else(|| JingleError::BadJson("a source has no \"s\"".into()))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let desktop = v.get("v").and_then(Value::as_str) == Some("d");
    Ok(Source {
        ssrc: json_ssrc(ssrc)?,
        media,
        name: text("n"),
        msid: text("m"),
        video_type: match media {
            Media::Video if desktop => Some(VideoType::Desktop),
            _ => None,
        },
    })
}

fn parse_group(v: &Value, media: Media) -> Result<Option<SsrcGroup>, JingleError> {
    let items = v
        .as_array()
        .ok_or_else(|| JingleError::BadJson("a group is not an array".into()))?;
    let semantics = match items.first().and_then(Value::as_str) {
        Some("s") => Semantics::Sim,
        Some("f") => Semantics::Fid,
        _ => return Ok(None),
    };
    if items.len() > super::MAX_ITEMS {
        return Err(JingleError::TooMany {
            what: "SSRCs in a group",
            max: super::MAX_ITEMS,
        });
    }
    let ssrcs = items[1..].iter().map(json_ssrc).collect::<Result<_, _>>()?;
    Ok(Some(SsrcGroup {
        semantics,
        media,
        ssrcs,
    }))
}
