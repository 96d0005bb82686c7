//! The sources each participant sends: SSRCs, their names and msids, and the
//! simulcast (`SIM`) and retransmission (`FID`) groups that tie them together.
//!
//! A conference keeps one [`EndpointSources`] per participant. Every change a
//! client signals (its `session-accept`, later `source-add`/`source-remove`)
//! goes through [`EndpointSources::add`] or [`EndpointSources::remove`], which
//! check it as a whole and either apply all of it or none, so the set the
//! bridge and the other participants see is always valid. Rules follow
//! Jicofo's (protocol reference §3.3).

use sfu::api::Sources;

/// Most sources one participant may send (Jicofo's `max-ssrcs-per-user`): a
/// camera with three simulcast layers and RTX is 6, a screen share adds 2.
pub const MAX_SOURCES_PER_ENDPOINT: usize = 20;
/// Most SSRC groups one participant may send (Jicofo's `max-ssrc-groups-per-user`).
pub const MAX_GROUPS_PER_ENDPOINT: usize = 20;
/// The owner the bridge's own feedback sources are signalled under.
pub const BRIDGE_OWNER: &str = "jvb";

/// Audio or video: the Jingle content a source belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Media {
    Audio,
    Video,
}

impl Media {
    /// The name used for the content, the `media` attribute and source names.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Audio => "audio",
            Media::Video => "video",
        }
    }

    /// Parses a content name or `media` attribute; `None` for anything else
    /// (`application`, the data channel, has no sources).
    pub fn parse(s: &str) -> Option<Media> {
        match s {
            "audio" => Some(Media::Audio),
            "video" => Some(Media::Video),
            _ => None,
        }
    }
}

/// What a video source shows; receivers treat desktop sources differently
/// (no downscaling to thumbnails, higher frame-rate priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoType {
    Camera,
    Desktop,
}

impl VideoType {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoType::Camera => "camera",
            VideoType::Desktop => "desktop",
        }
    }

    /// Parses the `videoType` attribute; CUR clients also send `desktop_high_fps`,
    /// which receivers treat as desktop.
    pub fn parse(s: &str) -> Option<VideoType> {
        match s {
            "camera" => Some(VideoType::Camera),
            "desktop" | "desktop_high_fps" => Some(VideoType::Desktop),
            _ => None,
        }
    }
}

/// One SSRC a participant sends, with what identifies its track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub ssrc: u32,
    pub media: Media,
    /// The source name (`<endpoint>-v0`). V21 clients send none; inside an
    /// [`EndpointSources`] it is always set, because CUR receivers key remote
    /// tracks by it.
    pub name: Option<String>,
    /// `<stream id> <track id>`, shared by every SSRC of one track.
    pub msid: Option<String>,
    /// Only on video; absent means camera.
    pub video_type: Option<VideoType>,
}

impl Source {
    /// A bare source, as a `source-remove` or a group member names it.
    pub fn new(ssrc: u32, media: Media) -> Self {
        Source {
            ssrc,
            media,
            name: None,
            msid: None,
            video_type: None,
        }
    }
}

/// How the SSRCs of a group relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Simulcast layers of one track, lowest resolution first.
    Sim,
    /// A media SSRC and the SSRC of its retransmissions (RTX).
    Fid,
}

impl Semantics {
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::Sim => "SIM",
            Semantics::Fid => "FID",
        }
    }

    /// `None` for semantics the bridge does not use (`FEC-FR`, …).
    pub fn parse(s: &str) -> Option<Semantics> {
        match s {
            "SIM" => Some(Semantics::Sim),
            "FID" => Some(Semantics::Fid),
            _ => None,
        }
    }
}

/// An `ssrc-group`: SSRCs of one media that belong together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsrcGroup {
    pub semantics: Semantics,
    pub media: Media,
    pub ssrcs: Vec<u32>,
}

/// Sources and groups without an owner: what one Jingle message adds or removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceSet {
    pub sources: Vec<Source>,
    pub groups: Vec<SsrcGroup>,
}

impl SourceSet {
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.groups.is_empty()
    }

    /// The set a receiver is told about: of each simulcast group only the first
    /// (lowest) SSRC and its RTX remain, because the bridge rewrites whichever
    /// layer it forwards onto that SSRC (Jicofo's `strip-simulcast`).
    pub fn strip_simulcast(&self) -> SourceSet {
        let mut dropped: Vec<u32> = Vec::new();
        for g in self.groups.iter().filter(|g| g.semantics == Semantics::Sim) {
            dropped.extend(g.ssrcs.iter().skip(1));
        }
        let rtx_of_dropped: Vec<u32> = self
            .groups
            .iter()
            .filter(|g| g.semantics == Semantics::Fid && g.ssrcs.len() == 2)
            .filter(|g| dropped.contains(&g.ssrcs[0]))
            .map(|g| g.ssrcs[1])
            .collect();
        dropped.extend(rtx_of_dropped);
        SourceSet {
            sources: self
                .sources
                .iter()
                .filter(|s| !dropped.contains(&s.ssrc))
                .cloned()
                .collect(),
            groups: self
                .groups
                .iter()
                .filter(|g| g.semantics != Semantics::Sim)
                .filter(|g| !g.ssrcs.iter().any(|s| dropped.contains(s)))
                .cloned()
                .collect(),
        }
    }

    /// The bridge's view: audio SSRCs, per video track its simulcast layers
    /// (lowest first) or its single SSRC, and the RTX pairs.
    pub fn to_sfu(&self) -> Sources {
        let fid: Vec<(u32, u32)> = self
            .groups
            .iter()
            .filter(|g| g.semantics == Semantics::Fid && g.ssrcs.len() == 2)
            .map(|g| (g.ssrcs[0], g.ssrcs[1]))
            .collect();
        let sims: Vec<&SsrcGroup> = self
            .groups
            .iter()
            .filter(|g| g.semantics == Semantics::Sim && g.media == Media::Video)
            .collect();
        let mut out = Sources::default();
        for s in &self.sources {
            match s.media {
                Media::Audio => out.audio.push(s.ssrc),
                Media::Video => {
                    if fid.iter().any(|&(_, rtx)| rtx == s.ssrc) {
                        continue;
                    }
                    match sims.iter().find(|g| g.ssrcs.contains(&s.ssrc)) {
                        // Listed once, when its first layer comes up.
                        Some(g) if g.ssrcs[0] == s.ssrc => out.video.push(g.ssrcs.clone()),
                        Some(_) => {}
                        None => out.video.push(vec![s.ssrc]),
                    }
                }
            }
        }
        out.rtx = fid;
        out
    }
}

/// Why a participant's source change was refused; each says what it did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("SSRC 0 is not a valid source")]
    ZeroSsrc,
    #[error("SSRC {0} is signalled twice")]
    DuplicateSsrc(u32),
    #[error(
        "a {semantics} group names SSRC {ssrc}, which is not one of the participant's {media} sources"
    )]
    GroupUnknownSsrc {
        semantics: &'static str,
        media: &'static str,
        ssrc: u32,
    },
    #[error("a FID group has {0} SSRCs; it must pair one source with its RTX")]
    FidNotPair(usize),
    #[error("SSRCs {0} and {1} are grouped but carry different msids")]
    GroupMsidMismatch(u32, u32),
    #[error("more than {0} sources for one participant")]
    TooManySources(usize),
    #[error("more than {0} SSRC groups for one participant")]
    TooManyGroups(usize),
    #[error("SSRC {0} is removed but the participant never added it")]
    UnknownSsrc(u32),
}

/// Everything one participant (or the bridge) currently sends; always valid.
///
/// ```
/// use focus::source::{EndpointSources, Media, Source, SourceSet};
/// let mut ep = EndpointSources::new("3f2a9c1d");
/// // A V21 client names nothing; the focus names its tracks as Jicofo does.
/// let added = ep
///     .add(SourceSet { sources: vec![Source::new(4100, Media::Audio)], groups: vec![] })
///     .unwrap();
/// assert_eq!(added.sources[0].name.as_deref(), Some("3f2a9c1d-a0"));
/// assert_eq!(ep.to_sfu().audio, vec![4100]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSources {
    endpoint: String,
    set: SourceSet,
}

impl EndpointSources {
    /// No sources yet: a participant before its `session-accept`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        EndpointSources {
            endpoint: endpoint.into(),
            set: SourceSet::default(),
        }
    }

    /// The bridge's RTCP sender SSRCs, which every client needs in its remote
    /// description so its feedback towards the bridge is well-formed (§3.3).
    pub fn bridge_feedback(audio_ssrc: u32, video_ssrc: u32) -> Self {
        let feedback = |ssrc, media: Media, msid: &str| Source {
            ssrc,
            media,
            name: Some(default_name(BRIDGE_OWNER, media)),
            msid: Some(msid.to_owned()),
            video_type: None,
        };
        EndpointSources {
            endpoint: BRIDGE_OWNER.to_owned(),
            set: SourceSet {
                sources: vec![
                    feedback(audio_ssrc, Media::Audio, "mixedmslabel mixedlabelaudio0"),
                    feedback(video_ssrc, Media::Video, "mixedmslabel mixedlabelvideo0"),
                ],
                groups: Vec::new(),
            },
        }
    }

    /// The endpoint ID (the MUC nickname), or [`BRIDGE_OWNER`].
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn set(&self) -> &SourceSet {
        &self.set
    }

    pub fn sources(&self) -> &[Source] {
        &self.set.sources
    }

    pub fn groups(&self) -> &[SsrcGroup] {
        &self.set.groups
    }

    /// Whether this participant sends `ssrc` (for conflicts across participants).
    pub fn contains(&self, ssrc: u32) -> bool {
        self.set.sources.iter().any(|s| s.ssrc == ssrc)
    }

    /// See [`SourceSet::to_sfu`].
    pub fn to_sfu(&self) -> Sources {
        self.set.to_sfu()
    }

    /// Merges what a `session-accept` or `source-add` signals, all or nothing.
    ///
    /// Returns what was accepted, to relay to the other participants: unnamed
    /// sources get `<endpoint>-a0` / `<endpoint>-v0` (Jicofo names every unnamed
    /// source of a media with index 0: a V21 client sends one track per media),
    /// and empty or repeated groups are dropped silently, as Jicofo does.
    pub fn add(&mut self, delta: SourceSet) -> Result<SourceSet, SourceError> {
        let mut accepted = SourceSet::default();
        for mut s in delta.sources {
            if s.ssrc == 0 {
                return Err(SourceError::ZeroSsrc);
            }
            if self.contains(s.ssrc) || accepted.sources.iter().any(|a| a.ssrc == s.ssrc) {
                return Err(SourceError::DuplicateSsrc(s.ssrc));
            }
            if s.name.is_none() {
                s.name = Some(default_name(&self.endpoint, s.media));
            }
            accepted.sources.push(s);
        }
        if self.set.sources.len() + accepted.sources.len() > MAX_SOURCES_PER_ENDPOINT {
            return Err(SourceError::TooManySources(MAX_SOURCES_PER_ENDPOINT));
        }
        for g in delta.groups {
            let known = |g: &SsrcGroup| self.set.groups.contains(g) || accepted.groups.contains(g);
            if g.ssrcs.is_empty() || known(&g) {
                continue;
            }
            self.check_group(&g, &accepted.sources)?;
            accepted.groups.push(g);
        }
        if self.set.groups.len() + accepted.groups.len() > MAX_GROUPS_PER_ENDPOINT {
            return Err(SourceError::TooManyGroups(MAX_GROUPS_PER_ENDPOINT));
        }
        self.set.sources.extend(accepted.sources.iter().cloned());
        self.set.groups.extend(accepted.groups.iter().cloned());
        Ok(accepted)
    }

    /// Applies a `source-remove`, all or nothing. Sources are matched by SSRC
    /// alone; a group goes with any of its SSRCs. Returns what was removed,
    /// complete with names and msids, to relay to the other participants.
    pub fn remove(&mut self, delta: &SourceSet) -> Result<SourceSet, SourceError> {
        let mut removed = SourceSet::default();
        for s in &delta.sources {
            let existing = self
                .set
                .sources
                .iter()
                .find(|e| e.ssrc == s.ssrc)
                .ok_or(SourceError::UnknownSsrc(s.ssrc))?;
            if !removed.sources.contains(existing) {
                removed.sources.push(existing.clone());
            }
        }
        let gone = |ssrc: &u32| removed.sources.iter().any(|s| s.ssrc == *ssrc);
        removed.groups = self
            .set
            .groups
            .iter()
            .filter(|g| delta.groups.contains(g) || g.ssrcs.iter().any(gone))
            .cloned()
            .collect();
        self.set.sources.retain(|s| !removed.sources.contains(s));
        self.set.groups.retain(|g| !removed.groups.contains(g));
        Ok(removed)
    }

    /// A group may only name this participant's sources of its own media; FID
    /// pairs exactly two; grouped SSRCs are one track, so one msid.
    fn check_group(&self, g: &SsrcGroup, new: &[Source]) -> Result<(), SourceError> {
        if g.semantics == Semantics::Fid && g.ssrcs.len() != 2 {
            return Err(SourceError::FidNotPair(g.ssrcs.len()));
        }
        let mut first: Option<&Source> = None;
        for ssrc in &g.ssrcs {
            let source = self
                .set
                .sources
                .iter()
                .chain(new)
                .find(|s| s.ssrc == *ssrc && s.media == g.media)
                .ok_or(SourceError::GroupUnknownSsrc {
                    semantics: g.semantics.as_str(),
                    media: g.media.as_str(),
                    ssrc: *ssrc,
                })?;
            match first {
                Some(f) if f.msid.is_some() && source.msid.is_some() && f.msid != source.msid => {
                    return Err(SourceError::GroupMsidMismatch(f.ssrc, source.ssrc));
                }
                Some(_) => {}
                None => first = Some(source),
            }
        }
        Ok(())
    }
}

/// The name Jicofo and lib-jitsi-meet agree on for a participant's first track
/// of a media: `<endpoint>-a0`, `<endpoint>-v0`.
pub fn default_name(endpoint: &str, media: Media) -> String {
    let letter = match media {
        Media::Audio => 'a',
        Media::Video => 'v',
    };
    format!("{endpoint}-{letter}0")
}

#[cfg(test)]
mod tests;
