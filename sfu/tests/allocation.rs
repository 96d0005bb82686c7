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
