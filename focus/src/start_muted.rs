//! Who joins muted: the `<startmuted>` of a session-initiate (protocol §3.2).
//!
//! Two sources, as in Jicofo: the `startAudioMuted` / `startVideoMuted`
//! properties of the request that created the conference (participants
//! after the first N start muted), and a room owner's "everyone starts
//! muted" (`<startmuted>` in the owner's presence, as the 2021 client sends
//! it), which applies to those who join afterwards. The 2021 client mutes
//! itself on `<startmuted>`; the current one decides from its own config.
//!
//! ```
//! use focus::start_muted::StartMutedPolicy;
//! let policy = StartMutedPolicy::from_properties([("startAudioMuted", "1")]);
//! assert_eq!(policy.for_participant(1, true), None);
//! let second = policy.for_participant(2, true).unwrap();
//! assert!(second.audio && !second.video);
//! ```

use crate::jingle::StartMuted;

/// The conference's start-muted rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartMutedPolicy {
    /// Participants after this many start with audio muted.
    audio_after: Option<usize>,
    /// Participants after this many start with video muted.
    video_after: Option<usize>,
    /// A room owner asked everyone joining from now on to start muted.
    room: StartMuted,
}

impl StartMutedPolicy {
    /// From conference-request properties; unknown names and values that
    /// are not counts are ignored (Jicofo logs and drops them).
    pub fn from_properties<'a>(
        properties: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> StartMutedPolicy {
        let mut policy = StartMutedPolicy::default();
        for (name, value) in properties {
            let count = value.trim().parse::<usize>().ok();
            match name {
                "startAudioMuted" => policy.audio_after = count,
                "startVideoMuted" => policy.video_after = count,
                _ => {}
            }
        }
        policy
    }

    /// A room owner's `<startmuted audio video>` presence.
    pub fn set_room(&mut self, room: StartMuted) {
        self.room = room;
    }

    /// What the participant who joined as number `number` (1-based, counting
    /// those present when it came) starts with; `None` when nothing is muted.
    /// The owner's wish applies to a first invitation only, not a re-invite.
    pub fn for_participant(&self, number: usize, first_invite: bool) -> Option<StartMuted> {
        let beyond = |limit: Option<usize>| limit.is_some_and(|n| number > n);
        let muted = StartMuted {
            audio: beyond(self.audio_after) || (first_invite && self.room.audio),
            video: beyond(self.video_after) || (first_invite && self.room.video),
        };
        (muted.audio || muted.video).then_some(muted)
    }
}
