//! The offer lib-jitsi-meet builds from the bridge's Jingle session-initiate
//! (protocol §3.2), in the unified-plan shape it hands the browser: the
//! bridge transport copied into every m-line, `audio` and `video` m-lines for
//! the participant's own media, and one sendonly m-line per remote source
//! (simulcast stripped: the first SSRC and its FID partner).

use std::fmt::Write as _;

use sfu::api::LocalTransport;

pub const OPUS: u8 = 111;
pub const VP8: u8 = 100;
pub const VP8_RTX: u8 = 96;
pub const EXT_AUDIO_LEVEL: u8 = 1;
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
const EXT_ABS_SEND_TIME: u8 = 3;
const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
const EXT_TRANSPORT_CC: u8 = 5;
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// A source of another endpoint, as the focus signals it to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteSource {
    Audio(u32),
    /// A video source's first SSRC and its RTX pair.
    Video {
        ssrc: u32,
        rtx: u32,
    },
}

impl RemoteSource {
    pub fn ssrc(&self) -> u32 {
        match self {
            RemoteSource::Audio(s) | RemoteSource::Video { ssrc: s, .. } => *s,
        }
    }
}

/// The offer for one participant, given the sources of the others.
pub fn offer(bridge: &LocalTransport, remote: &[RemoteSource]) -> String {
    let mids: Vec<String> = ["audio".to_owned(), "video".to_owned()]
        .into_iter()
        .chain(remote.iter().map(remote_mid))
        .collect();
    let mut s = String::new();
    s.push_str("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    writeln!(s, "a=group:BUNDLE {}\r", mids.join(" ")).unwrap();
    s.push_str("a=msid-semantic: WMS *\r\n");
    // No a=ice-lite: the bridge runs full ICE, so as offerer it controls.
    audio_section(&mut s, bridge, "audio", "sendrecv", None);
    video_section(&mut s, bridge, "video", "sendrecv", None);
    for r in remote {
        let mid = remote_mid(r);
        match r {
            RemoteSource::Audio(ssrc) => {
                audio_section(&mut s, bridge, &mid, "sendonly", Some(*ssrc))
            }
            RemoteSource::Video { ssrc, rtx } => {
                video_section(&mut s, bridge, &mid, "sendonly", Some((*ssrc, *rtx)))
            }
        }
    }
    s
}

fn remote_mid(r: &RemoteSource) -> String {
    match r {
        RemoteSource::Audio(s) => format!("audio-{s}"),
        RemoteSource::Video { ssrc, .. } => format!("video-{ssrc}"),
    }
}

fn audio_section(
    s: &mut String,
    bridge: &LocalTransport,
    mid: &str,
    direction: &str,
    ssrc: Option<u32>,
) {
    writeln!(s, "m=audio 9 UDP/TLS/RTP/SAVPF {OPUS}\r").unwrap();
    transport(s, bridge, mid);
    writeln!(s, "a=extmap:{EXT_AUDIO_LEVEL} {AUDIO_LEVEL_URI}\r").unwrap();
    writeln!(s, "a=extmap:{EXT_TRANSPORT_CC} {TRANSPORT_CC_URI}\r").unwrap();
    writeln!(s, "a={direction}\r\na=rtcp-mux\r").unwrap();
    writeln!(s, "a=rtpmap:{OPUS} opus/48000/2\r").unwrap();
    writeln!(s, "a=rtcp-fb:{OPUS} transport-cc\r").unwrap();
    writeln!(s, "a=fmtp:{OPUS} minptime=10;useinbandfec=1\r").unwrap();
    if let Some(ssrc) = ssrc {
        source_lines(s, ssrc, ssrc);
    }
}

fn video_section(
    s: &mut String,
    bridge: &LocalTransport,
    mid: &str,
    direction: &str,
    ssrcs: Option<(u32, u32)>,
) {
    writeln!(s, "m=video 9 UDP/TLS/RTP/SAVPF {VP8} {VP8_RTX}\r").unwrap();
    transport(s, bridge, mid);
    writeln!(s, "a=extmap:{EXT_ABS_SEND_TIME} {ABS_SEND_TIME_URI}\r").unwrap();
    writeln!(s, "a=extmap:{EXT_TRANSPORT_CC} {TRANSPORT_CC_URI}\r").unwrap();
    writeln!(s, "a={direction}\r\na=rtcp-mux\r").unwrap();
    writeln!(s, "a=rtpmap:{VP8} VP8/90000\r").unwrap();
    for fb in ["ccm fir", "nack", "nack pli", "transport-cc"] {
        writeln!(s, "a=rtcp-fb:{VP8} {fb}\r").unwrap();
    }
    writeln!(s, "a=rtpmap:{VP8_RTX} rtx/90000\r").unwrap();
    writeln!(s, "a=fmtp:{VP8_RTX} apt={VP8}\r").unwrap();
    for fb in ["ccm fir", "nack", "nack pli"] {
        writeln!(s, "a=rtcp-fb:{VP8_RTX} {fb}\r").unwrap();
    }
    if let Some((ssrc, rtx)) = ssrcs {
        writeln!(s, "a=ssrc-group:FID {ssrc} {rtx}\r").unwrap();
        source_lines(s, ssrc, ssrc);
        source_lines(s, rtx, ssrc);
    }
}

/// `a=ssrc` lines; a source and its RTX share the msid of the source.
fn source_lines(s: &mut String, ssrc: u32, source: u32) {
    writeln!(s, "a=ssrc:{ssrc} cname:remote-{source}\r").unwrap();
    writeln!(s, "a=ssrc:{ssrc} msid:stream-{source} track-{source}\r").unwrap();
}

/// The bridge's ICE-UDP transport, which Jingle copies into every content.
fn transport(s: &mut String, bridge: &LocalTransport, mid: &str) {
    s.push_str("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    writeln!(
        s,
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r",
        bridge.ufrag, bridge.pwd
    )
    .unwrap();
    writeln!(
        s,
        "a=fingerprint:{} {}\r",
        bridge.fingerprint_hash, bridge.fingerprint
    )
    .unwrap();
    writeln!(s, "a=setup:actpass\r\na=mid:{mid}\r").unwrap();
    for c in &bridge.candidates {
        writeln!(
            s,
            "a=candidate:{} {} {} {} {} {} typ {}\r",
            c.foundation,
            c.component,
            c.protocol,
            c.priority,
            c.address.ip(),
            c.address.port(),
            c.kind
        )
        .unwrap();
    }
    s.push_str("a=end-of-candidates\r\n");
}

/// The value of the first `a=<name>:` line of an SDP.
pub fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::trim)
}
