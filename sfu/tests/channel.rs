//! The bridge channel over a real WebSocket, as a client opens it from the
//! URL in its offer: greeting, endpoint messages relayed with the sender set,
//! errors for malformed messages, refusals for a wrong secret.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sfu::bridge::{Bridge, BridgeConfig};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(bridge: Arc<Bridge>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, sfu::http::router(bridge))
            .await
            .unwrap()
    });
    format!("ws://{addr}/colibri-ws/oxbridge/")
}

/// The next message, past the forwarded-set notices every channel gets on
/// open (these tests are about relaying, not video).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a bridge-channel message within 5 s")
            .expect("channel open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["colibriClass"] != "ForwardedSources" {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_messages_are_relayed_with_the_sender_and_bad_input_is_answered() {
    let bridge = Arc::new(
        Bridge::start(BridgeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .unwrap(),
    );
    let base = serve(bridge.clone()).await;
    let b2 = bridge.clone();
    let (a, b, c) = tokio::task::spawn_blocking(move || {
        (
            b2.create_endpoint("conf", "aaaa").unwrap(),
            b2.create_endpoint("conf", "bbbb").unwrap(),
            b2.create_endpoint("other", "cccc").unwrap(),
        )
    })
    .await
    .unwrap();

    let (mut wa, _) = tokio_tungstenite::connect_async(format!("{base}{}", a.channel_path))
        .await
        .unwrap();
    let (mut wb, _) = tokio_tungstenite::connect_async(format!("{base}{}", b.channel_path))
        .await
        .unwrap();
    let (mut wc, _) = tokio_tungstenite::connect_async(format!("{base}{}", c.channel_path))
        .await
        .unwrap();
    for ws in [&mut wa, &mut wb, &mut wc] {
        assert_eq!(next_json(ws).await["colibriClass"], "ServerHello");
    }

    // Broadcast, with a forged `from` that the bridge must overwrite.
    let hello = json!({"colibriClass":"EndpointMessage","from":"forged","to":"","msgPayload":{"type":"raise-hand","n":1}});
    wa.send(Message::text(hello.to_string())).await.unwrap();
    let got = next_json(&mut wb).await;
    assert_eq!(got["colibriClass"], "EndpointMessage");
    assert_eq!(got["from"], "aaaa");
    assert_eq!(got["msgPayload"], json!({"type":"raise-hand","n":1}));

    // Addressed to one endpoint; stats relayed too.
    wb.send(Message::text(
        json!({"colibriClass":"EndpointMessage","to":"aaaa","msgPayload":{"x":2}}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut wa).await["msgPayload"], json!({"x":2}));
    wa.send(Message::text(
        json!({"colibriClass":"EndpointStats","connectionQuality":97}).to_string(),
    ))
    .await
    .unwrap();
    let stats = next_json(&mut wb).await;
    assert_eq!(
        (stats["colibriClass"].clone(), stats["from"].clone()),
        (json!("EndpointStats"), json!("aaaa"))
    );

    // Malformed input gets an error on the same channel; the channel stays usable.
    wa.send(Message::text("{not json")).await.unwrap();
    let err = next_json(&mut wa).await;
    assert_eq!(err["colibriClass"], "Error");
    wa.send(Message::text(
        json!({"colibriClass":"SomethingNew"}).to_string(),
    ))
    .await
    .unwrap();
    wa.send(Message::text(
        json!({"colibriClass":"EndpointMessage","to":"","msgPayload":{"after":true}}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_json(&mut wb).await["msgPayload"],
        json!({"after":true})
    );

    // Nothing crossed into the other conference.
    let leaked = tokio::time::timeout(Duration::from_millis(300), next_json(&mut wc)).await;
    assert!(
        leaked.is_err(),
        "a message reached another conference: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_bridge_or_endpoint_is_refused() {
    let bridge = Arc::new(
        Bridge::start(BridgeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .unwrap(),
    );
    let base = serve(bridge.clone()).await;
    let b2 = bridge.clone();
    let a = tokio::task::spawn_blocking(move || b2.create_endpoint("conf", "aaaa").unwrap())
        .await
        .unwrap();
    let status = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
            Ok(_) => 101,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(status(format!("{base}conf/aaaa?pwd=wrong")).await, 403);
    assert_eq!(status(format!("{base}conf/zzzz?pwd=x")).await, 403);
    assert_eq!(status(format!("{base}nope/aaaa?pwd=x")).await, 403);
    let other_bridge = base.replace("/oxbridge/", "/jvb9/");
    assert_eq!(
        status(format!("{other_bridge}{}", a.channel_path)).await,
        404
    );
    assert_eq!(status(format!("{base}{}", a.channel_path)).await, 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_bridge_keeps_its_conferences_and_refuses_new_ones() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let bridge = Arc::new(
        Bridge::start(BridgeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .unwrap(),
    );
    let base = serve(bridge.clone()).await;
    // Without the front door's peer address the request is not known to be local.
    let host = base.trim_start_matches("ws://").split('/').next().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    tcp.write_all(b"POST /colibri/drain/enable HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(!bridge.is_draining());

    let b = bridge.clone();
    tokio::task::spawn_blocking(move || {
        b.create_endpoint("running", "aaaa").unwrap();
        b.set_draining(true);
        assert_eq!(
            b.create_endpoint("new", "bbbb"),
            Err(sfu::api::ApiError::Draining)
        );
        b.create_endpoint("running", "cccc")
            .expect("a conference already here still grows");
        b.set_draining(false);
        b.create_endpoint("new", "bbbb").unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_its_channel_does_not_stop_the_others() {
    // One worker: the flooded one carries every conference here.
    let bridge = Arc::new(
        Bridge::start(BridgeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            workers: 1,
            ..Default::default()
        })
        .unwrap(),
    );
    let base = serve(bridge.clone()).await;
    let b2 = bridge.clone();
    let [a, b, c, d] = tokio::task::spawn_blocking(move || {
        [
            ("conf", "aaaa"),
            ("conf", "bbbb"),
            ("other", "cccc"),
            ("other", "dddd"),
        ]
        .map(|(conf, ep)| b2.create_endpoint(conf, ep).unwrap())
    })
    .await
    .unwrap();
    let mut channels = Vec::new();
    for e in [&a, &b, &c, &d] {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{base}{}", e.channel_path))
            .await
            .unwrap();
        assert_eq!(next_json(&mut ws).await["colibriClass"], "ServerHello");
        channels.push(ws);
    }
    let [mut wa, mut wb, mut wc, mut wd] = <[Ws; 4]>::try_from(channels).ok().unwrap();

    // aaaa sends as fast as its socket takes them; bbbb reads none of it.
    let flood = tokio::spawn(async move {
        let message = json!({"colibriClass":"EndpointMessage","to":"","msgPayload":{"spam":true}});
        for _ in 0..20_000 {
            wa.feed(Message::text(message.to_string())).await.unwrap();
        }
        wa.flush().await.unwrap();
        wa
    });
    // Meanwhile the other conference talks and a newcomer joins it.
    wd.send(Message::text(
        json!({"colibriClass":"EndpointMessage","to":"cccc","msgPayload":{"hi":"c"}}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut wc).await["msgPayload"], json!({"hi":"c"}));
    let b3 = bridge.clone();
    tokio::task::spawn_blocking(move || b3.create_endpoint("other", "eeee"))
        .await
        .unwrap()
        .expect("a newcomer joins during the flood");

    // Afterwards the flooder's channel still works both ways.
    let mut wa = flood.await.unwrap();
    wb.send(Message::text(
        json!({"colibriClass":"EndpointMessage","to":"aaaa","msgPayload":{"after":1}}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut wa).await["msgPayload"], json!({"after":1}));
}
