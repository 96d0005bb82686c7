use super::*;

#[test]
fn current_client_constraints_are_keyed_by_source() {
    let m = ClientMessage::parse(
        r#"{"colibriClass":"ReceiverVideoConstraints","lastN":25,"onStageSources":["7c1d0e42-v0"],
            "defaultConstraints":{"maxHeight":180},"constraints":{"7c1d0e42-v0":{"maxHeight":720,"maxFrameRate":30}},
            "assumedBandwidthBps":1000000}"#,
    )
    .unwrap();
    let ClientMessage::ReceiverVideoConstraints(c) = m else {
        panic!("{m:?}")
    };
    assert_eq!(c.keyed_by, Dialect::Sources);
    assert_eq!(c.last_n, Some(25));
    assert_eq!(c.on_stage, ["7c1d0e42-v0"]);
    assert_eq!(c.default.unwrap().max_height, 180);
    assert_eq!(c.constraints["7c1d0e42-v0"].max_frame_rate, Some(30.0));
    assert_eq!(c.assumed_bandwidth_bps, Some(1_000_000));
}

#[test]
fn december_2021_constraints_are_keyed_by_endpoint() {
    let m = ClientMessage::parse(
        r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"selectedEndpoints":[],
            "onStageEndpoints":["7c1d0e42"],"defaultConstraints":{"maxHeight":180},
            "constraints":{"7c1d0e42":{"maxHeight":2160}}}"#,
    )
    .unwrap();
    let ClientMessage::ReceiverVideoConstraints(c) = m else {
        panic!("{m:?}")
    };
    assert_eq!(c.keyed_by, Dialect::Endpoints);
    assert_eq!(c.last_n, Some(-1));
    assert_eq!(c.on_stage, ["7c1d0e42"]);
    assert_eq!(c.constraints["7c1d0e42"].max_height, 2160);
}

#[test]
fn legacy_and_small_messages() {
    let p = |s: &str| ClientMessage::parse(s).unwrap();
    assert_eq!(
        p(r#"{"colibriClass":"SelectedEndpointsChangedEvent","selectedEndpoints":["a","b"]}"#),
        ClientMessage::SelectedEndpoints(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        p(r#"{"colibriClass":"ReceiverVideoConstraint","maxFrameHeight":360}"#),
        ClientMessage::MaxHeight(360)
    );
    assert_eq!(
        p(r#"{"colibriClass":"VideoTypeMessage","videoType":"CAMERA"}"#),
        ClientMessage::VideoType {
            source: None,
            video_type: VideoType::Camera
        }
    );
    assert_eq!(
        p(r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"a-v1","videoType":"desktop"}"#),
        ClientMessage::VideoType {
            source: Some("a-v1".into()),
            video_type: VideoType::Desktop
        }
    );
    assert_eq!(
        p(
            r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"type":"e2e-ping-request","id":3}}"#
        ),
        ClientMessage::EndpointMessage {
            to: String::new(),
            payload: json!({"type":"e2e-ping-request","id":3})
        }
    );
    assert_eq!(
        p(r#"{"colibriClass":"SomethingNew","x":1}"#),
        ClientMessage::Unknown("SomethingNew".into())
    );
}

#[test]
fn malformed_messages_say_what_is_wrong() {
    let e = |s: &str| ClientMessage::parse(s).unwrap_err();
    assert_eq!(e("[1,2]"), Error::NotAnObject);
    assert_eq!(e("{not json"), Error::NotAnObject);
    assert_eq!(e(r#"{"lastN":3}"#), Error::NoClass);
    assert_eq!(
        e(r#"{"colibriClass":"LastNChangedEvent","lastN":"three"}"#),
        bad("LastNChangedEvent", "lastN")
    );
    assert!(matches!(
        e(r#"{"colibriClass":"ReceiverVideoConstraints","constraints":{"a":{"maxHeight":"big"}}}"#),
        Error::BadField { .. }
    ));
    assert!(matches!(
        e(r#"{"colibriClass":"EndpointMessage","to":5}"#),
        Error::BadField { .. }
    ));
    let huge = format!(
        r#"{{"colibriClass":"EndpointStats","pad":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    assert_eq!(e(&huge), Error::TooLarge);
}

#[test]
fn outgoing_messages_follow_the_receivers_dialect() {
    let sender = BridgeMessage::SenderConstraint {
        source: "ab12-v0".into(),
        max_height: 360,
    };
    let v: Value = serde_json::from_str(&sender.to_json(Dialect::Sources)).unwrap();
    assert_eq!(
        v,
        json!({"colibriClass":"SenderSourceConstraints","sourceName":"ab12-v0","maxHeight":360})
    );
    let v: Value = serde_json::from_str(&sender.to_json(Dialect::Endpoints)).unwrap();
    assert_eq!(
        v,
        json!({"colibriClass":"SenderVideoConstraints","videoConstraints":{"idealHeight":360}})
    );
    let fwd = BridgeMessage::Forwarded {
        endpoints: vec!["ab12".into()],
        sources: vec!["ab12-v0".into()],
    };
    let v: Value = serde_json::from_str(&fwd.to_json(Dialect::Sources)).unwrap();
    assert_eq!(
        v,
        json!({"colibriClass":"ForwardedSources","forwardedSources":["ab12-v0"]})
    );
    let conn = BridgeMessage::Connectivity {
        endpoint: "ab12".into(),
        active: false,
    };
    let v: Value = serde_json::from_str(&conn.to_json(Dialect::Sources)).unwrap();
    assert_eq!(
        v["active"],
        json!("false"),
        "the client compares with a string"
    );
}

#[test]
fn relayed_stats_carry_the_sender() {
    let ClientMessage::EndpointStats(stats) = ClientMessage::parse(
        r#"{"colibriClass":"EndpointStats","from":"forged","bitrate":{"upload":100},"connectionQuality":98}"#,
    )
    .unwrap() else {
        panic!()
    };
    let out = BridgeMessage::EndpointStats {
        from: "real".into(),
        stats,
    };
    let v: Value = serde_json::from_str(&out.to_json(Dialect::Endpoints)).unwrap();
    assert_eq!(v["from"], json!("real"), "a client cannot forge the sender");
    assert_eq!(v["connectionQuality"], json!(98));
    assert_eq!(v["colibriClass"], json!("EndpointStats"));
}
