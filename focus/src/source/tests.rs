use super::*;

fn src(ssrc: u32, media: Media, msid: &str) -> Source {
    Source {
        msid: Some(msid.to_owned()),
        ..Source::new(ssrc, media)
    }
}

fn group(semantics: Semantics, ssrcs: &[u32]) -> SsrcGroup {
    SsrcGroup {
        semantics,
        media: Media::Video,
        ssrcs: ssrcs.to_vec(),
    }
}

/// Chrome with simulcast on: audio, three layers, three RTX (protocol §3.5).
fn chrome_simulcast() -> SourceSet {
    let mut sources = vec![src(4100, Media::Audio, "a7f0 b3c2")];
    for ssrc in [5001, 5002, 5003, 5011, 5012, 5013] {
        sources.push(src(ssrc, Media::Video, "a7f0 c9d1"));
    }
    SourceSet {
        sources,
        groups: vec![
            group(Semantics::Sim, &[5001, 5002, 5003]),
            group(Semantics::Fid, &[5001, 5011]),
            group(Semantics::Fid, &[5002, 5012]),
            group(Semantics::Fid, &[5003, 5013]),
        ],
    }
}

#[test]
fn simulcast_goes_to_the_bridge_as_layers_lowest_first_with_rtx_pairs() {
    let mut ep = EndpointSources::new("3f2a9c1d");
    ep.add(chrome_simulcast()).unwrap();
    let sfu = ep.to_sfu();
    assert_eq!(sfu.audio, vec![4100]);
    assert_eq!(sfu.video, vec![vec![5001, 5002, 5003]]);
    assert_eq!(sfu.rtx, vec![(5001, 5011), (5002, 5012), (5003, 5013)]);
    assert_eq!(sfu.rtx_of(5002), Some(5012));
}

#[test]
fn a_video_source_without_simulcast_is_one_ssrc_and_its_rtx_is_not_a_track() {
    let mut ep = EndpointSources::new("ep");
    ep.add(SourceSet {
        sources: vec![src(7, Media::Video, "s t"), src(8, Media::Video, "s t")],
        groups: vec![group(Semantics::Fid, &[7, 8])],
    })
    .unwrap();
    assert_eq!(ep.to_sfu().video, vec![vec![7]]);
    assert_eq!(ep.to_sfu().rtx, vec![(7, 8)]);
}

#[test]
fn unnamed_sources_get_jicofos_default_names_and_named_ones_keep_theirs() {
    let mut ep = EndpointSources::new("7c1d0e42");
    let mut set = chrome_simulcast();
    set.sources[0].name = Some("7c1d0e42-a0".into());
    let accepted = ep.add(set).unwrap();
    let names: Vec<_> = accepted.sources.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names[0], Some("7c1d0e42-a0"));
    assert!(names[1..].iter().all(|n| *n == Some("7c1d0e42-v0")));
    assert!(ep.sources().iter().all(|s| s.name.is_some()));
}

#[test]
fn receivers_see_only_the_first_simulcast_layer_and_its_rtx() {
    let stripped = chrome_simulcast().strip_simulcast();
    let ssrcs: Vec<u32> = stripped.sources.iter().map(|s| s.ssrc).collect();
    assert_eq!(ssrcs, vec![4100, 5001, 5011]);
    assert_eq!(stripped.groups, vec![group(Semantics::Fid, &[5001, 5011])]);
}

#[test]
fn bad_changes_are_refused_with_what_is_wrong_and_change_nothing() {
    let cases: Vec<(SourceSet, SourceError)> = vec![
        (
            SourceSet {
                sources: vec![Source::new(0, Media::Audio)],
                groups: vec![],
            },
            SourceError::ZeroSsrc,
        ),
        (
            SourceSet {
                sources: vec![Source::new(9, Media::Audio), Source::new(9, Media::Video)],
                groups: vec![],
            },
            SourceError::DuplicateSsrc(9),
        ),
        (
            SourceSet {
                sources: vec![Source::new(5001, Media::Video)],
                groups: vec![group(Semantics::Sim, &[5001, 5002])],
            },
            SourceError::GroupUnknownSsrc {
                semantics: "SIM",
                media: "video",
                ssrc: 5002,
            },
        ),
        (
            SourceSet {
                sources: vec![Source::new(1, Media::Video), Source::new(2, Media::Video)],
                groups: vec![group(Semantics::Fid, &[1])],
            },
            SourceError::FidNotPair(1),
        ),
        (
            SourceSet {
                sources: vec![src(1, Media::Video, "a b"), src(2, Media::Video, "a c")],
                groups: vec![group(Semantics::Fid, &[1, 2])],
            },
            SourceError::GroupMsidMismatch(1, 2),
        ),
        (
            SourceSet {
                sources: (1..=21).map(|s| Source::new(s, Media::Audio)).collect(),
                groups: vec![],
            },
            SourceError::TooManySources(MAX_SOURCES_PER_ENDPOINT),
        ),
    ];
    for (set, expected) in cases {
        let mut ep = EndpointSources::new("ep");
        assert_eq!(ep.add(set), Err(expected));
        assert!(
            ep.set().is_empty(),
            "a refused change must leave nothing behind"
        );
    }
}

#[test]
fn a_group_of_audio_ssrcs_in_video_is_refused() {
    let mut ep = EndpointSources::new("ep");
    let err = ep
        .add(SourceSet {
            sources: vec![Source::new(1, Media::Audio), Source::new(2, Media::Audio)],
            groups: vec![group(Semantics::Fid, &[1, 2])],
        })
        .unwrap_err();
    assert!(matches!(err, SourceError::GroupUnknownSsrc { ssrc: 1, .. }));
    assert!(
        err.to_string()
            .contains("not one of the participant's video sources")
    );
}

#[test]
fn an_ssrc_already_sent_cannot_be_added_again() {
    let mut ep = EndpointSources::new("ep");
    ep.add(chrome_simulcast()).unwrap();
    let again = SourceSet {
        sources: vec![Source::new(5002, Media::Video)],
        groups: vec![],
    };
    assert_eq!(ep.add(again), Err(SourceError::DuplicateSsrc(5002)));
}

#[test]
fn repeated_and_empty_groups_are_dropped_quietly() {
    let mut ep = EndpointSources::new("ep");
    ep.add(chrome_simulcast()).unwrap();
    let accepted = ep
        .add(SourceSet {
            sources: vec![],
            groups: vec![
                group(Semantics::Fid, &[5001, 5011]),
                group(Semantics::Sim, &[]),
            ],
        })
        .unwrap();
    assert!(accepted.is_empty());
    assert_eq!(ep.groups().len(), 4);
}

#[test]
fn too_many_groups_are_refused() {
    let mut ep = EndpointSources::new("ep");
    let sources: Vec<Source> = (1..=20).map(|s| Source::new(s, Media::Video)).collect();
    ep.add(SourceSet {
        sources,
        groups: vec![],
    })
    .unwrap();
    // 21 distinct FID groups: one too many.
    let mut groups: Vec<SsrcGroup> = (2..=20).map(|k| group(Semantics::Fid, &[1, k])).collect();
    groups.push(group(Semantics::Fid, &[2, 3]));
    groups.push(group(Semantics::Fid, &[2, 4]));
    let err = ep
        .add(SourceSet {
            sources: vec![],
            groups,
        })
        .unwrap_err();
    assert_eq!(err, SourceError::TooManyGroups(MAX_GROUPS_PER_ENDPOINT));
    assert!(ep.groups().is_empty());
}

#[test]
fn removing_a_track_takes_its_groups_and_reports_full_sources() {
    let mut ep = EndpointSources::new("ep");
    ep.add(chrome_simulcast()).unwrap();
    let bare: Vec<Source> = [5001, 5002, 5003, 5011, 5012, 5013]
        .into_iter()
        .map(|s| Source::new(s, Media::Video))
        .collect();
    let removed = ep
        .remove(&SourceSet {
            sources: bare,
            groups: vec![],
        })
        .unwrap();
    assert_eq!(removed.sources.len(), 6);
    assert_eq!(removed.sources[0].msid.as_deref(), Some("a7f0 c9d1"));
    assert_eq!(removed.groups.len(), 4);
    assert_eq!(ep.to_sfu().video, Vec::<Vec<u32>>::new());
    assert_eq!(ep.to_sfu().audio, vec![4100]);
}

#[test]
fn removing_an_ssrc_never_added_is_refused_and_changes_nothing() {
    let mut ep = EndpointSources::new("ep");
    ep.add(chrome_simulcast()).unwrap();
    let delta = SourceSet {
        sources: vec![
            Source::new(4100, Media::Audio),
            Source::new(42, Media::Audio),
        ],
        groups: vec![],
    };
    assert_eq!(ep.remove(&delta), Err(SourceError::UnknownSsrc(42)));
    assert!(ep.contains(4100));
}

#[test]
fn bridge_feedback_sources_are_owned_by_jvb() {
    let jvb = EndpointSources::bridge_feedback(3002, 3001);
    assert_eq!(jvb.endpoint(), "jvb");
    assert_eq!(jvb.sources()[0].name.as_deref(), Some("jvb-a0"));
    assert_eq!(
        jvb.sources()[1].msid.as_deref(),
        Some("mixedmslabel mixedlabelvideo0")
    );
}
