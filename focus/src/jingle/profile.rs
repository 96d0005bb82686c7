//! Which codecs and RTP header extensions the offer lists (§3.2), with the
//! payload types and ids Jicofo uses, so a stock Videobridge and our SFU can
//! both sit behind the same offer.

use signaling::xml::Element;

use super::ns;

/// Which generation of lib-jitsi-meet a participant runs (protocol §8):
/// V21 lacks `http://jitsi.org/source-name` in its disco features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vintage {
    /// December 2021 (`@lyno/lib-jitsi-meet 2.6726.x`).
    V21,
    /// Current lib-jitsi-meet.
    Current,
}

/// A video codec with Jicofo's payload types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    Av1,
    Vp8,
    H264,
    Vp9,
}

impl VideoCodec {
    pub fn pt(self) -> u8 {
        match self {
            VideoCodec::Av1 => 41,
            VideoCodec::Vp8 => 100,
            VideoCodec::H264 => 107,
            VideoCodec::Vp9 => 101,
        }
    }

    /// The payload type of its retransmissions.
    pub fn rtx_pt(self) -> u8 {
        match self {
            VideoCodec::Av1 => 42,
            VideoCodec::Vp8 => 96,
            VideoCodec::H264 => 99,
            VideoCodec::Vp9 => 97,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Av1 => "AV1",
            VideoCodec::Vp8 => "VP8",
            // Upper case: old Chrome failed to enable H264 in lower case.
            VideoCodec::H264 => "H264",
            VideoCodec::Vp9 => "VP9",
        }
    }
}

/// An RTP header extension with Jicofo's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderExtension {
    AudioLevel,
    Av1DependencyDescriptor,
    Mid,
    AbsSendTime,
    TransportCc,
}

impl HeaderExtension {
    pub fn id(self) -> u8 {
        match self {
            HeaderExtension::AudioLevel => 1,
            HeaderExtension::AbsSendTime => 3,
            HeaderExtension::TransportCc => 5,
            HeaderExtension::Mid => 10,
            HeaderExtension::Av1DependencyDescriptor => 11,
        }
    }

    pub fn uri(self) -> &'static str {
        match self {
            HeaderExtension::AudioLevel => "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            HeaderExtension::AbsSendTime => {
                "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            }
            HeaderExtension::TransportCc => {
                "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
            }
            HeaderExtension::Mid => "urn:ietf:params:rtp-hdrext:sdes:mid",
            HeaderExtension::Av1DependencyDescriptor => {
                "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
            }
        }
    }

    fn applies_to_audio(self) -> bool {
        matches!(
            self,
            HeaderExtension::AudioLevel | HeaderExtension::Mid | HeaderExtension::TransportCc
        )
    }
}

/// What the offer's descriptions list.
///
/// The default is what oxbridge's SFU forwards (opus, VP8 with RTX, header
/// extensions 1, 3 and 5): a client must not pick a codec the bridge cannot
/// select simulcast layers of. [`MediaProfile::jicofo`] is stock Jicofo's
/// offer, for a stock Videobridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaProfile {
    /// In order of preference.
    pub video_codecs: Vec<VideoCodec>,
    /// Offer an RTX payload type per video codec (the conference request's
    /// `disableRtx` turns it off).
    pub rtx: bool,
    /// In the order written; each goes to the media it applies to.
    pub header_extensions: Vec<HeaderExtension>,
    /// `goog-remb` feedback, used only when transport-cc is not offered.
    pub remb: bool,
    /// RED for opus (PT 112), before opus so it is chosen.
    pub opus_red: bool,
    pub telephone_event: bool,
    pub extmap_allow_mixed: bool,
}

impl Default for MediaProfile {
    fn default() -> Self {
        MediaProfile {
            video_codecs: vec![VideoCodec::Vp8],
            rtx: true,
            header_extensions: vec![
                HeaderExtension::AudioLevel,
                HeaderExtension::AbsSendTime,
                HeaderExtension::TransportCc,
            ],
            remb: false,
            opus_red: false,
            telephone_event: true,
            extmap_allow_mixed: false,
        }
    }
}

impl MediaProfile {
    /// Stock Jicofo's default offer for a client of `vintage`: CUR gets AV1 and
    /// the mid / dependency-descriptor extensions and `extmap-allow-mixed`; V21
    /// gets the period offer of VP8, H264, VP9 with extensions 1, 3, 5 (§8.1).
    pub fn jicofo(vintage: Vintage) -> Self {
        use HeaderExtension::*;
        match vintage {
            Vintage::Current => MediaProfile {
                video_codecs: vec![
                    VideoCodec::Av1,
                    VideoCodec::Vp8,
                    VideoCodec::H264,
                    VideoCodec::Vp9,
                ],
                header_extensions: vec![
                    AudioLevel,
                    Av1DependencyDescriptor,
                    Mid,
                    AbsSendTime,
                    TransportCc,
                ],
                extmap_allow_mixed: true,
                ..MediaProfile::default()
            },
            Vintage::V21 => MediaProfile {
                video_codecs: vec![VideoCodec::Vp8, VideoCodec::H264, VideoCodec::Vp9],
                ..MediaProfile::default()
            },
        }
    }

    fn tcc(&self) -> bool {
        self.header_extensions
            .contains(&HeaderExtension::TransportCc)
    }

    /// `<description media='audio'>` without sources.
    pub(crate) fn audio_description(&self) -> Element {
        let mut d = Element::new("description", ns::RTP)
            .with_attr("media", "audio")
            .with_attr("maxptime", "60");
        self.push_extensions(&mut d, true);
        if self.opus_red {
            d.push_child(
                payload(112, "red", 48000, Some(2))
                    .with_child(Element::new("parameter", ns::RTP).with_attr("value", "111/111")),
            );
        }
        let mut opus = payload(111, "opus", 48000, Some(2)).with_child(param("minptime", "10"));
        // RED already carries redundancy; in-band FEC on top would double it.
        if !self.opus_red {
            opus.push_child(param("useinbandfec", "1"));
        }
        if self.tcc() {
            opus.push_child(rtcp_fb("transport-cc", None));
        }
        d.push_child(opus);
        if self.telephone_event {
            d.push_child(payload(126, "telephone-event", 8000, None));
        }
        if self.extmap_allow_mixed {
            d.push_child(Element::new("extmap-allow-mixed", ns::HDREXT));
        }
        d
    }

    /// `<description media='video'>` without sources.
    pub(crate) fn video_description(&self) -> Element {
        let mut d = Element::new("description", ns::RTP).with_attr("media", "video");
        for &codec in &self.video_codecs {
            let mut pt = payload(codec.pt(), codec.name(), 90000, None);
            for fb in video_feedback() {
                pt.push_child(fb);
            }
            if self.remb && !self.tcc() {
                pt.push_child(rtcp_fb("goog-remb", None));
            }
            if self.tcc() {
                pt.push_child(rtcp_fb("transport-cc", None));
            }
            if codec == VideoCodec::H264 {
                // One parameter holding the whole fmtp line, as Jicofo writes it.
                pt.push_child(param(
                    "profile-level-id",
                    "42e01f;level-asymmetry-allowed=1;packetization-mode=1;",
                ));
            }
            d.push_child(pt);
        }
        if self.rtx {
            for &codec in &self.video_codecs {
                let mut rtx = payload(codec.rtx_pt(), "rtx", 90000, None)
                    .with_child(param("apt", &codec.pt().to_string()));
                if codec != VideoCodec::H264 {
                    for fb in video_feedback() {
                        rtx.push_child(fb);
                    }
                }
                d.push_child(rtx);
            }
        }
        self.push_extensions(&mut d, false);
        if self.extmap_allow_mixed {
            d.push_child(Element::new("extmap-allow-mixed", ns::HDREXT));
        }
        d
    }

    fn push_extensions(&self, d: &mut Element, audio: bool) {
        for &ext in &self.header_extensions {
            let applies = if audio {
                ext.applies_to_audio()
            } else {
                ext != HeaderExtension::AudioLevel
            };
            if applies {
                d.push_child(
                    Element::new("rtp-hdrext", ns::HDREXT)
                        .with_attr("id", ext.id().to_string())
                        .with_attr("uri", ext.uri()),
                );
            }
        }
    }
}

fn payload(id: u8, name: &str, clockrate: u32, channels: Option<u8>) -> Element {
    let mut p = Element::new("payload-type", ns::RTP)
        .with_attr("id", id.to_string())
        .with_attr("name", name)
        .with_attr("clockrate", clockrate.to_string());
    if let Some(ch) = channels {
        p.set_attr("channels", ch.to_string());
    }
    p
}

fn param(name: &str, value: &str) -> Element {
    Element::new("parameter", ns::RTP)
        .with_attr("name", name)
        .with_attr("value", value)
}

fn rtcp_fb(kind: &str, subtype: Option<&str>) -> Element {
    let mut fb = Element::new("rtcp-fb", ns::RTCP_FB).with_attr("type", kind);
    if let Some(sub) = subtype {
        fb.set_attr("subtype", sub);
    }
    fb
}

/// Keyframe requests and retransmissions, on every video payload type.
fn video_feedback() -> [Element; 3] {
    [
        rtcp_fb("ccm", Some("fir")),
        rtcp_fb("nack", None),
        rtcp_fb("nack", Some("pli")),
    ]
}
