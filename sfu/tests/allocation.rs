//! What a receiver is sent when it cannot take everything, and what it is told
//! about the others: last-N by speech, connectivity status (protocol §6.7-6.8).

// Each test binary uses only part of the shared participant helpers.
#[allow(dead_code)]
mod participant;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use participant::Participant;
use participant::setup::{
    bridge, connect_all, join_with, open_channel, poll_all, serve_channels, vp8,
};
use serde_json::{Value, json};
use str0m::media::MediaKind;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Senders (all but participant 0) each with a microphone and a camera.
struct Room {
    ps: Vec<Participant>,
    frame: u32,
}

impl Room {
    /// One frame from every sender in `ps[..senders_up_to]`; `talker` is loud.
    fn frame(&mut self, talker: usize, present: usize) {
        let f = self.frame;
        for (i, p) in self.ps.iter_mut().enumerate().take(present).skip(1) {
            let level = if i == talker { -20 } else { -127 };
            p.send_audio(1000 + i as u32, f * 960, level, vec![i as u8; 40]);
            let payload = vp8((f % 0x8000) as u16, f as u8, f.is_multiple_of(30), 0, f);
            p.send_video(5000 + i as u32, f * 3000, payload);
        }
        self.frame += 1;
        poll_all(&mut self.ps[..present], 3);
    }

    /// Frames until the channel carries a message `matching`.
    fn until(
        &mut self,
        rt: &tokio::runtime::Runtime,
        ws: &mut Ws,
        talker: usize,
        present: usize,
        what: &str,
        matching: impl Fn(&Value) -> bool,
    ) -> Value {
        let limit = Duration::from_secs(12);
        let deadline = Instant::now() + limit;
        loop {
            assert!(Instant::now() < deadline, "no {what} within {limit:?}");
            self.frame(talker, present);
            while let Ok(Some(Ok(m))) = rt
                .block_on(async { tokio::time::timeout(Duration::from_millis(1), ws.next()).await })
            {
                if let Ok(Ok(v)) = m.to_text().map(serde_json::from_str::<Value>)
                    && matching(&v)
                {
                    return v;
                }
            }
        }
    }

    fn video_from(&self, sender: u32) -> usize {
        self.ps[0].got.get(&(5000 + sender)).map_or(0, Vec::len)
    }
}

fn forwarded(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["colibriClass"] == "ForwardedSources" && v["forwardedSources"] == json!([name])
}

#[test]
fn last_n_follows_the_dominant_speaker_and_a_vanished_endpoint_is_reported() {
    let bridge = std::sync::Arc::new(bridge());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve_channels(&rt, &bridge);
    let (viewer, local) = join_with(&bridge, "room", "viewer", 1000, &[]);
    let mut room = Room {
        ps: vec![viewer],
        frame: 0,
    };
    for (i, name) in [(1u32, "anna"), (2, "ben")] {
        room.ps
            .push(join_with(&bridge, "room", name, 1000 + i, &[5000 + i]).0);
        room.ps[0].expect(1000 + i, MediaKind::Audio);
        room.ps[0].expect(5000 + i, MediaKind::Video);
    }
    connect_all(&mut room.ps);
    let mut ws = open_channel(&rt, &base, &local.channel_path);
    rt.block_on(
        ws.send(Message::text(
            json!({"colibriClass":"ReceiverVideoConstraints","lastN":1,
               "defaultConstraints":{"maxHeight":180}})
            .to_string(),
        )),
    )
    .unwrap();

    // Anna talks: with room for one video, hers is it.
    room.until(&rt, &mut ws, 1, 3, "anna forwarded", forwarded("anna-v0"));
    let (anna, ben) = (room.video_from(1), room.video_from(2));
    for _ in 0..40 {
        room.frame(1, 3);
    }
    assert!(room.video_from(1) >= anna + 30, "anna's video flows");
    assert!(
        room.video_from(2) <= ben + 1,
        "ben's video is held back by last-N"
    );

    // Ben takes over: his video replaces hers.
    room.until(&rt, &mut ws, 2, 3, "ben forwarded", forwarded("ben-v0"));
    let (anna, ben) = (room.video_from(1), room.video_from(2));
    for _ in 0..40 {
        room.frame(2, 3);
    }
    assert!(
        room.video_from(2) >= ben + 10,
        "ben's video flows once he speaks"
    );
    assert!(room.video_from(1) <= anna + 1, "anna's stops");

    // Ben's network goes away: nothing from him, not even ICE. The viewer is told.
    let gone = room.until(&rt, &mut ws, 1, 2, "ben reported inactive", |v| {
        v["colibriClass"] == "EndpointConnectivityStatusChangeEvent"
    });
    assert_eq!(
        gone,
        json!({"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"ben","active":"false"})
    );
}

#[test]
fn a_receivers_bandwidth_caps_what_it_is_sent() {
    let bridge = std::sync::Arc::new(bridge());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve_channels(&rt, &bridge);
    let (viewer, local) = join_with(&bridge, "room", "viewer", 1000, &[]);
    let mut room = Room {
        ps: vec![viewer],
        frame: 0,
    };
    room.ps
        .push(join_with(&bridge, "room", "anna", 1001, &[5001]).0);
    room.ps[0].expect(1001, MediaKind::Audio);
    room.ps[0].expect(5001, MediaKind::Video);
    connect_all(&mut room.ps);
    let mut ws = open_channel(&rt, &base, &local.channel_path);
    let wish = |ws: &mut Ws, assumed_bps: u64| {
        rt.block_on(
            ws.send(Message::text(
                json!({"colibriClass":"ReceiverVideoConstraints","lastN":-1,
                   "defaultConstraints":{"maxHeight":720},"assumedBandwidthBps":assumed_bps})
                .to_string(),
            )),
        )
        .unwrap();
    };
    // A downlink of 1 kbit/s carries no camera: once the bridge has measured
    // anna's rate, her video is no longer forwarded.
    wish(&mut ws, 1000);
    room.until(&rt, &mut ws, 1, 2, "video dropped for bandwidth", |v| {
        v["colibriClass"] == "ForwardedSources" && v["forwardedSources"] == json!([])
    });
    let held = room.video_from(1);
    for _ in 0..40 {
        room.frame(1, 2);
    }
    assert!(
        room.video_from(1) <= held + 1,
        "video kept flowing over a 1 kbit/s downlink"
    );

    // 10 Mbit/s: it comes back.
    wish(&mut ws, 10_000_000);
    room.until(&rt, &mut ws, 1, 2, "video back", forwarded("anna-v0"));
    let back = room.video_from(1);
    for _ in 0..60 {
        room.frame(1, 2);
    }
    assert!(room.video_from(1) > back + 10, "video flows again");
}

#[test]
fn a_layer_beyond_the_starting_estimate_is_reached_by_probing() {
    let bridge = std::sync::Arc::new(bridge());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve_channels(&rt, &bridge);
    let layers = [5001u32, 5002, 5003];
    let (viewer, local) = join_with(&bridge, "room", "viewer", 1000, &[]);
    let mut ps = vec![join_with(&bridge, "room", "anna", 1001, &layers).0, viewer];
    ps[1].expect(layers[0], MediaKind::Video);
    ps[1].send_transport_feedback();
    connect_all(&mut ps);
    let mut ws = open_channel(&rt, &base, &local.channel_path);
    rt.block_on(
        ws.send(Message::text(
            json!({"colibriClass":"ReceiverVideoConstraints","lastN":-1,
               "onStageSources":["anna-v0"],"defaultConstraints":{"maxHeight":720}})
            .to_string(),
        )),
    )
    .unwrap();
    // 30 frames a second of 160 kbit/s, 530 kbit/s and 3.2 Mbit/s: the top
    // layer is beyond the 2.5 Mbit/s every receiver's estimate starts at,
    // and nothing sent below it would ever show the link has room for it.
    let packets_per_frame = [1usize, 2, 12];
    let sizes = [660usize, 1100, 1100];
    let period = Duration::from_millis(33);
    let start = Instant::now();
    // Rates are measured over a second, the allocation follows once a second,
    // a probe's result needs a round trip, a switch needs a key frame, and a
    // probe that measured nothing is tried again 5 s later: from the seventh
    // second the top layer must be what the viewer gets.
    let (settled, end) = (Duration::from_secs(7), Duration::from_secs(9));
    let got = |p: &Participant| p.got.get(&layers[0]).map_or(0, Vec::len);
    let mut from = None;
    let mut frame = 0u32;
    while start.elapsed() < end {
        if from.is_none() && start.elapsed() >= settled {
            from = Some(got(&ps[1]));
        }
        let due = start + period * frame;
        for (l, &ssrc) in layers.iter().enumerate() {
            let key = frame.is_multiple_of(90) || ps[0].keyframe_requests.remove(&ssrc).is_some();
            let pid = ((frame + 100 * l as u32) % 0x8000) as u16;
            for n in 0..packets_per_frame[l] {
                let mut payload = vp8(pid, frame as u8, key, l as u8, frame);
                if n > 0 {
                    payload[0] = 0x80; // a continuation: S clear
                }
                payload.resize(sizes[l], 0x5A);
                ps[0].send_video(ssrc, frame * 3000, payload);
            }
        }
        frame += 1;
        while Instant::now() < due + period {
            poll_all(&mut ps, 1);
        }
    }
    let late: Vec<u8> = ps[1].got[&layers[0]][from.unwrap()..]
        .iter()
        .map(|g| g.payload[8])
        .collect();
    let top = late.iter().filter(|l| **l == 2).count();
    assert!(
        late.len() > 300 && top * 10 >= late.len() * 9,
        "from the seventh second {top} of {} packets were of the top layer",
        late.len()
    );
}
