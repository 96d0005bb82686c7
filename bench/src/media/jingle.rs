//! The Jingle a simulated participant reads and writes (protocol §3): the
//! focus's `session-initiate` and `source-add`/`source-remove`, and our
//! `session-accept`. Parses and writes; decides nothing.

use std::net::SocketAddr;

use anyhow::{Context as _, anyhow};
use minidom::{Element, NSChoice};

pub const JINGLE_NS: &str = "urn:xmpp:jingle:1";
const ANY: NSChoice<'static> = NSChoice::Any;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    Audio,
    Video,
}

/// A remote source the bridge may send us: the primary SSRC a receiver sees
/// (simulcast stripped) and its RTX pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSource {
    pub owner: String,
    pub media: Media,
    pub ssrc: u32,
    pub rtx: Option<u32>,
}

/// The bridge's side of the transport and what the offer carries.
#[derive(Clone, Debug)]
pub struct Offer {
    pub sid: String,
    pub ufrag: String,
    pub pwd: String,
    /// `sha-256` and the colon-separated hex.
    pub fingerprint_hash: String,
    pub fingerprint: String,
    pub candidates: Vec<SocketAddr>,
    pub websocket: Option<String>,
    pub sources: Vec<RemoteSource>,
}

/// The `<jingle>` child of an IQ, if any.
pub fn jingle_of(iq: &Element) -> Option<&Element> {
    iq.get_child("jingle", JINGLE_NS)
}

pub fn parse_offer(jingle: &Element) -> anyhow::Result<Offer> {
    let sid = jingle.attr("sid").context("session-initiate without sid")?;
    let transport = jingle
        .children()
        .filter(|c| c.is("content", ANY))
        .find_map(|c| c.get_child("transport", ANY))
        .ok_or_else(|| anyhow!("session-initiate without transport"))?;
    let fp = transport
        .get_child("fingerprint", ANY)
        .context("transport without fingerprint")?;
    let candidates = transport
        .children()
        .filter(|c| c.is("candidate", ANY))
        .filter(|c| {
            c.attr("protocol")
                .is_none_or(|p| p.eq_ignore_ascii_case("udp"))
        })
        .filter_map(|c| {
            format!("{}:{}", c.attr("ip")?, c.attr("port")?)
                .parse()
                .ok()
        })
        .collect();
    Ok(Offer {
        sid: sid.to_owned(),
        ufrag: transport.attr("ufrag").context("no ufrag")?.to_owned(),
        pwd: transport.attr("pwd").context("no pwd")?.to_owned(),
        fingerprint_hash: fp.attr("hash").unwrap_or("sha-256").to_owned(),
        fingerprint: fp.text().trim().to_owned(),
        candidates,
        websocket: transport
            .get_child("web-socket", ANY)
            .and_then(|w| w.attr("url"))
            .map(str::to_owned),
        sources: parse_sources(jingle)?,
    })
}

/// Sources in `<content><description>` (XEP-0339) or in a JSON
/// `<json-message>` (jicofo's encoding for clients that ask for it).
pub fn parse_sources(jingle: &Element) -> anyhow::Result<Vec<RemoteSource>> {
    let mut out = Vec::new();
    for content in jingle.children().filter(|c| c.is("content", ANY)) {
        let Some(desc) = content.get_child("description", ANY) else {
            continue;
        };
        let media = match desc.attr("media").or(content.attr("name")) {
            Some("audio") => Media::Audio,
            Some("video") => Media::Video,
            _ => continue,
        };
        let mut ssrcs = Vec::new();
        for s in desc.children().filter(|c| c.is("source", ANY)) {
            let ssrc: u32 = s.attr("ssrc").context("source without ssrc")?.parse()?;
            let owner = s
                .get_child("ssrc-info", ANY)
                .and_then(|i| i.attr("owner"))
                .or_else(|| s.attr("name").and_then(|n| n.rsplit_once('-').map(|p| p.0)))
                .unwrap_or("");
            ssrcs.push((ssrc, endpoint_of(owner).to_owned()));
        }
        let groups = desc
            .children()
            .filter(|c| c.is("ssrc-group", ANY))
            .map(|g| {
                let members = g
                    .children()
                    .filter_map(|s| s.attr("ssrc")?.parse().ok())
                    .collect();
                (
                    g.attr("semantics").unwrap_or("").to_ascii_lowercase(),
                    members,
                )
            })
            .collect::<Vec<(String, Vec<u32>)>>();
        out.extend(primaries(media, &ssrcs, &groups));
    }
    if let Some(json) = jingle.get_child("json-message", ANY) {
        out.extend(parse_json(&json.text())?);
    }
    Ok(out)
}

/// `room@muc/EP` or `EP` → `EP` (owners come in both forms, §3.3).
fn endpoint_of(owner: &str) -> &str {
    owner.rsplit_once('/').map_or(owner, |(_, ep)| ep)
}

/// Folds SIM and FID groups away: what remains are the SSRCs media arrives on.
fn primaries(
    media: Media,
    ssrcs: &[(u32, String)],
    groups: &[(String, Vec<u32>)],
) -> Vec<RemoteSource> {
    let secondary = |ssrc: u32| {
        groups
            .iter()
            .any(|(sem, m)| (sem == "fid" || sem == "sim") && m.iter().skip(1).any(|s| *s == ssrc))
    };
    ssrcs
        .iter()
        .filter(|(ssrc, _)| !secondary(*ssrc))
        .map(|(ssrc, owner)| RemoteSource {
            owner: owner.clone(),
            media,
            ssrc: *ssrc,
            rtx: groups
                .iter()
                .find(|(sem, m)| sem == "fid" && m.first() == Some(ssrc))
                .and_then(|(_, m)| m.get(1).copied()),
        })
        .collect()
}

/// `{"sources":{OWNER:[VIDEO, VIDEO_GROUPS, AUDIO, AUDIO_GROUPS?]}}`.
fn parse_json(text: &str) -> anyhow::Result<Vec<RemoteSource>> {
    let v: serde_json::Value = serde_json::from_str(text).context("json-message")?;
    let mut out = Vec::new();
    let Some(owners) = v.get("sources").and_then(|s| s.as_object()) else {
        return Ok(out);
    };
    for (owner, lists) in owners {
        for (media, src_i, grp_i) in [(Media::Video, 0, 1), (Media::Audio, 2, 3)] {
            let ssrcs: Vec<(u32, String)> = lists
                .get(src_i)
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s.get("s")?.as_u64()? as u32, owner.clone())))
                .collect();
            let groups: Vec<(String, Vec<u32>)> = lists
                .get(grp_i)
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
                .filter_map(|g| {
                    let g = g.as_array()?;
                    let sem = match g.first()?.as_str()? {
                        "f" => "fid",
                        "s" => "sim",
                        _ => "",
                    };
                    let members = g
                        .iter()
                        .skip(1)
                        .filter_map(|s| s.as_u64())
                        .map(|s| s as u32);
                    Some((sem.to_owned(), members.collect()))
                })
                .collect();
            out.extend(primaries(media, &ssrcs, &groups));
        }
    }
    Ok(out)
}

/// What we send: one audio SSRC and a 3-layer simulcast camera with RTX.
#[derive(Clone, Debug)]
pub struct LocalSources {
    pub audio: u32,
    pub video: [u32; 3],
    pub rtx: [u32; 3],
}

/// Our side of the transport.
pub struct LocalTransport<'a> {
    pub ufrag: &'a str,
    pub pwd: &'a str,
    pub fingerprint_hash: &'a str,
    pub fingerprint: &'a str,
    pub candidate: SocketAddr,
}

/// Everything our `session-accept` says.
pub struct Accept<'a> {
    pub id: &'a str,
    pub to: &'a str,
    pub sid: &'a str,
    pub responder: &'a str,
    pub endpoint: &'a str,
    pub transport: LocalTransport<'a>,
    pub sources: Option<&'a LocalSources>,
}

const RTP_NS: &str = "urn:xmpp:jingle:apps:rtp:1";
const SSMA_NS: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
const HDREXT_NS: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
const FB_NS: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";

pub fn build_accept(a: &Accept) -> String {
    let t = &a.transport;
    let transport = format!(
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='{}' pwd='{}'><rtcp-mux/>\
<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='{}' setup='active'>{}</fingerprint>\
<candidate component='1' foundation='1' generation='0' id='c1' network='0' protocol='udp' type='host' \
ip='{}' port='{}' priority='2130706431'/></transport>",
        t.ufrag,
        t.pwd,
        t.fingerprint_hash,
        t.fingerprint,
        t.candidate.ip(),
        t.candidate.port()
    );
    let (mut audio_src, mut video_src) = (String::new(), String::new());
    if let Some(s) = a.sources {
        let ep = a.endpoint;
        audio_src = source(
            s.audio,
            &format!("{ep}-a0"),
            &format!("{ep}-s a-{ep}"),
            ep,
            "",
        );
        let msid = format!("{ep}-s v-{ep}");
        for ssrc in s.video.iter().chain(&s.rtx) {
            video_src += &source(*ssrc, &format!("{ep}-v0"), &msid, ep, " videoType='camera'");
        }
        video_src += &group("SIM", &s.video);
        for (v, r) in s.video.iter().zip(&s.rtx) {
            video_src += &group("FID", &[*v, *r]);
        }
    }
    let fb = |kind: &str, sub: &str| match sub {
        "" => format!("<rtcp-fb xmlns='{FB_NS}' type='{kind}'/>"),
        s => format!("<rtcp-fb xmlns='{FB_NS}' type='{kind}' subtype='{s}'/>"),
    };
    let video_fb = [
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
        ("transport-cc", ""),
    ]
    .map(|(k, s)| fb(k, s))
    .concat();
    let ext =
        |id: u8, uri: &str| format!("<rtp-hdrext xmlns='{HDREXT_NS}' id='{id}' uri='{uri}'/>");
    let twcc = ext(
        5,
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    );
    format!(
        "<iq xmlns='jabber:client' type='set' id='{id}' to='{to}'>\
<jingle xmlns='{JINGLE_NS}' action='session-accept' responder='{responder}' sid='{sid}'>\
<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='audio'/><content name='video'/></group>\
<content creator='responder' name='audio' senders='both'><description xmlns='{RTP_NS}' media='audio'>\
<payload-type id='111' name='opus' clockrate='48000' channels='2'><parameter name='minptime' value='10'/>\
<parameter name='useinbandfec' value='1'/>{tcc}</payload-type>{level}{twcc}{audio_src}<rtcp-mux/></description>{transport}</content>\
<content creator='responder' name='video' senders='both'><description xmlns='{RTP_NS}' media='video'>\
<payload-type id='100' name='VP8' clockrate='90000'>{video_fb}</payload-type>\
<payload-type id='96' name='rtx' clockrate='90000'><parameter name='apt' value='100'/>{video_fb}</payload-type>\
{abs}{twcc}{video_src}<rtcp-mux/></description>{transport}</content></jingle></iq>",
        id = a.id,
        to = a.to,
        responder = a.responder,
        sid = a.sid,
        tcc = fb("transport-cc", ""),
        level = ext(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        abs = ext(
            3,
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
        ),
    )
}

fn source(ssrc: u32, name: &str, msid: &str, owner: &str, extra: &str) -> String {
    format!(
        "<source xmlns='{SSMA_NS}' ssrc='{ssrc}' name='{name}'{extra}><parameter name='msid' value='{msid}'/>\
<ssrc-info xmlns='http://jitsi.org/jitmeet' owner='{owner}'/></source>"
    )
}

fn group(semantics: &str, ssrcs: &[u32]) -> String {
    let members: String = ssrcs
        .iter()
        .map(|s| format!("<source ssrc='{s}'/>"))
        .collect();
    format!("<ssrc-group xmlns='{SSMA_NS}' semantics='{semantics}'>{members}</ssrc-group>")
}

#[cfg(test)]
#[path = "jingle_tests.rs"]
mod tests;
