//! A stock Jicofo's view of our bridge, over real XMPP: the bridge logs into
//! the XMPP server (ours standing in for Prosody, over STARTTLS with SCRAM),
//! joins the brewery with its stats, answers health checks, and a
//! participant allocated through Colibri2 completes ICE and DTLS with it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use colibri2::bridge::BridgeXmppConfig;
use colibri2::codec::{DTLS, ICE_UDP, NS};
use colibri2::xmpp::{ClientConfig, Connection};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use signaling::ns;
use signaling::xml::Element;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc};

const BREWERY: &str = "jvbbrewery@conference.localhost";
/// Longest any step waits for the other side.
const PATIENCE: Duration = Duration::from_secs(10);

struct Stack {
    bridge: Arc<sfu::bridge::Bridge>,
    jicofo: Connection,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// Our XMPP server with the focus's and the bridge's accounts, our bridge
/// behind its Colibri2 face, and a "Jicofo" logged in and in the brewery.
async fn stack() -> Stack {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["auth.localhost".into()]).unwrap();
    let ca = std::env::temp_dir().join(format!("colibri2-ca-{}.pem", uuid()));
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der())),
        )
        .unwrap();
    let mut config = signaling::Config::for_domain("localhost");
    config.xmpp.listen = "127.0.0.1:0".parse().unwrap();
    for user in ["focus", "jvb"] {
        config.xmpp.accounts.push(signaling::config::Account {
            jid: format!("{user}@auth.localhost"),
            password: format!("{user}-secret"),
        });
    }
    config.muc.admins = vec!["focus@auth.localhost".into()];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = signaling::Server::start(config, Some(Arc::new(tls)), stopped)
        .await
        .unwrap();
    let client = |user: &str| ClientConfig {
        server: server.xmpp_addr.to_string(),
        domain: "auth.localhost".into(),
        username: user.into(),
        password: format!("{user}-secret"),
        resource: user.into(),
        ca_file: Some(ca.clone()),
    };
    let bridge = Arc::new(
        sfu::bridge::Bridge::start(sfu::bridge::BridgeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            id: "jvb1".into(),
            workers: 1,
            ..Default::default()
        })
        .unwrap(),
    );
    // Jicofo makes the brewery (only the focus may create rooms).
    let mut jicofo = Connection::connect(&client("focus")).await.unwrap();
    jicofo
        .send(
            &Element::new("presence", ns::CLIENT)
                .with_attr("to", format!("{BREWERY}/focus"))
                .with_child(Element::new("x", ns::MUC)),
        )
        .await
        .unwrap();
    until(&mut jicofo, |s| {
        s.is("presence", ns::CLIENT) && s.attr("from") == Some(&format!("{BREWERY}/focus"))
    })
    .await;
    tokio::spawn(colibri2::bridge::run(
        bridge.clone(),
        BridgeXmppConfig {
            client: client("jvb"),
            brewery: BREWERY.into(),
            nickname: "jvb1".into(),
            websocket_base: Some("wss://meet.example.com/colibri-ws/jvb1".into()),
        },
    ));
    Stack {
        bridge,
        jicofo,
        _stop: stop,
    }
}

fn uuid() -> String {
    format!("{}-{:?}", std::process::id(), Instant::now())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}

/// The first stanza `wanted` accepts, the others skipped; fails after [`PATIENCE`].
async fn until(conn: &mut Connection, mut wanted: impl FnMut(&Element) -> bool) -> Element {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let s = conn.next().await.expect("the connection stays up");
            if wanted(&s) {
                return s;
            }
        }
    })
    .await
    .expect("the awaited stanza comes")
}

/// Sends an IQ to the bridge's occupant JID and returns the answer.
async fn iq(conn: &mut Connection, kind: &str, payload: Element) -> Element {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "q{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    conn.send(
        &Element::new("iq", ns::CLIENT)
            .with_attr("type", kind)
            .with_attr("id", id.as_str())
            .with_attr("to", format!("{BREWERY}/jvb1"))
            .with_child(payload),
    )
    .await
    .unwrap();
    until(conn, |s| {
        s.is("iq", ns::CLIENT) && s.attr("id") == Some(&id)
    })
    .await
}

fn modify(meeting: &str, create: bool) -> Element {
    let m = Element::new("conference-modify", NS).with_attr("meeting-id", meeting);
    if create {
        m.with_attr("create", "true")
    } else {
        m
    }
}

fn reason(answer: &Element) -> Option<String> {
    let error = answer.child("error", ns::CLIENT)?;
    error.child("error", NS)?.attr("reason").map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jicofo_finds_the_bridge_in_the_brewery_with_its_stats_and_health() {
    let mut s = stack().await;
    let presence = until(&mut s.jicofo, |p| {
        p.is("presence", ns::CLIENT) && p.attr("from") == Some(&format!("{BREWERY}/jvb1"))
    })
    .await;
    let stats = presence
        .child("stats", colibri2::codec::COLIBRI)
        .expect("the bridge's presence carries stats");
    let stat = |name: &str| {
        stats
            .children()
            .find(|c| c.attr("name") == Some(name))
            .and_then(|c| c.attr("value"))
            .map(str::to_owned)
    };
    assert_eq!(stat("stress_level").as_deref(), Some("0.0"));
    assert_eq!(stat("healthy").as_deref(), Some("true"));
    assert_eq!(stat("drain").as_deref(), Some("false"));
    assert_eq!(stat("graceful_shutdown").as_deref(), Some("false"));
    assert!(stat("version").is_some());
    let health = iq(
        &mut s.jicofo,
        "get",
        Element::new("healthcheck", "http://jitsi.org/protocol/healthcheck"),
    )
    .await;
    assert_eq!(health.attr("type"), Some("result"));
    // Something a bridge does not do is refused, not ignored.
    let other = iq(&mut s.jicofo, "get", Element::new("query", ns::ROSTER)).await;
    assert_eq!(other.attr("type"), Some("error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_allocated_over_colibri2_connects_to_the_bridge() {
    let mut s = stack().await;
    until(&mut s.jicofo, |p| {
        p.is("presence", ns::CLIENT) && p.attr("from") == Some(&format!("{BREWERY}/jvb1"))
    })
    .await;

    // 1. Allocate: the bridge's side of the transport comes back.
    let create = modify("m1", true).with_child(
        Element::new("endpoint", NS)
            .with_attr("id", "ep1")
            .with_attr("create", "true")
            .with_child(Element::new("transport", NS).with_attr("ice-controlling", "true")),
    );
    let answer = iq(&mut s.jicofo, "set", create).await;
    assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
    let ice = answer
        .child("conference-modified", NS)
        .and_then(|m| m.child("endpoint", NS))
        .and_then(|e| e.child("transport", NS))
        .and_then(|t| t.child("transport", ICE_UDP))
        .expect("the answer carries the bridge's ice-udp transport");
    let (ufrag, pwd) = (ice.attr("ufrag").unwrap(), ice.attr("pwd").unwrap());
    let fingerprint = ice.child("fingerprint", DTLS).unwrap();
    assert_eq!(fingerprint.attr("setup"), Some("actpass"));
    let candidate = ice.child("candidate", ICE_UDP).unwrap();
    let bridge_addr: SocketAddr = format!(
        "{}:{}",
        candidate.attr("ip").unwrap(),
        candidate.attr("port").unwrap()
    )
    .parse()
    .unwrap();
    assert_eq!(bridge_addr, s.bridge.media_addr());
    let url = ice
        .child("web-socket", colibri2::codec::COLIBRI)
        .and_then(|w| w.attr("url"))
        .unwrap();
    assert!(
        url.starts_with("wss://meet.example.com/colibri-ws/jvb1/m1/ep1?pwd="),
        "{url}"
    );

    // 2. The participant's answer, as Jicofo relays it from session-accept.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    let mut api = rtc.direct_api();
    api.set_ice_controlling(false);
    api.set_remote_ice_credentials(IceCreds {
        ufrag: ufrag.into(),
        pass: pwd.into(),
    });
    api.set_remote_fingerprint(
        format!(
            "{} {}",
            fingerprint.attr("hash").unwrap(),
            fingerprint.text()
        )
        .parse()
        .unwrap(),
    );
    api.start_dtls(true).unwrap();
    let creds = api.local_ice_credentials();
    let ours = api.local_dtls_fingerprint().to_string();
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    rtc.add_remote_candidate(Candidate::host(bridge_addr, "udp").unwrap());
    let (hash, value) = ours.split_once(' ').unwrap();
    let update = modify("m1", false).with_child(
        Element::new("endpoint", NS)
            .with_attr("id", "ep1")
            .with_child(
                Element::new("transport", NS).with_child(
                    Element::new("transport", ICE_UDP)
                        .with_attr("ufrag", creds.ufrag.as_str())
                        .with_attr("pwd", creds.pass.as_str())
                        .with_child(
                            Element::new("fingerprint", DTLS)
                                .with_attr("hash", hash)
                                .with_attr("setup", "active")
                                .with_text(value),
                        )
                        .with_child(
                            Element::new("candidate", ICE_UDP)
                                .with_attr("component", "1")
                                .with_attr("protocol", "udp")
                                .with_attr("ip", local.ip().to_string())
                                .with_attr("port", local.port().to_string())
                                .with_attr("type", "host"),
                        ),
                ),
            ),
    );
    let answer = iq(&mut s.jicofo, "set", update).await;
    assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());

    // 3. ICE and DTLS complete over real UDP.
    let connected = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0u8; 2000];
        while Instant::now() < deadline {
            let now = Instant::now();
            rtc.handle_input(Input::Timeout(now)).unwrap();
            loop {
                match rtc.poll_output().unwrap() {
                    Output::Transmit(t) => {
                        socket.send_to(&t.contents, t.destination).unwrap();
                    }
                    Output::Event(Event::Connected) => return true,
                    Output::Event(_) => {}
                    Output::Timeout(_) => break,
                }
            }
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                let r = Receive::new(Protocol::Udp, from, local, &buf[..n]).unwrap();
                rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(
        connected,
        "ICE and DTLS complete with the bridge Jicofo allocated"
    );

    // 4. Jicofo's mistakes get the reasons it acts on.
    let unknown =
        modify("m1", false).with_child(Element::new("endpoint", NS).with_attr("id", "nobody"));
    let answer = iq(&mut s.jicofo, "set", unknown).await;
    assert_eq!(reason(&answer).as_deref(), Some("UNKNOWN_ENDPOINT"));
    let again = iq(&mut s.jicofo, "set", modify("m1", true)).await;
    assert_eq!(reason(&again).as_deref(), Some("CONFERENCE_ALREADY_EXISTS"));
    let elsewhere = iq(&mut s.jicofo, "set", modify("m2", false)).await;
    assert_eq!(reason(&elsewhere).as_deref(), Some("CONFERENCE_NOT_FOUND"));

    // 5. The last participant leaving ends the conference on the bridge.
    let expire = modify("m1", false).with_child(
        Element::new("endpoint", NS)
            .with_attr("id", "ep1")
            .with_attr("expire", "true"),
    );
    let answer = iq(&mut s.jicofo, "set", expire).await;
    assert_eq!(answer.attr("type"), Some("result"));
    let bridge = s.bridge.clone();
    let stats = tokio::task::spawn_blocking(move || bridge.stats())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stats.totals.conferences, stats.totals.endpoints), (0, 0));
    let gone = iq(&mut s.jicofo, "set", modify("m1", false)).await;
    assert_eq!(reason(&gone).as_deref(), Some("CONFERENCE_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conferences_of_a_jicofo_that_leaves_the_brewery_end() {
    let mut s = stack().await;
    until(&mut s.jicofo, |p| {
        p.is("presence", ns::CLIENT) && p.attr("from") == Some(&format!("{BREWERY}/jvb1"))
    })
    .await;
    for meeting in ["m1", "m2"] {
        let create = modify(meeting, true).with_child(
            Element::new("endpoint", NS)
                .with_attr("id", "ep1")
                .with_attr("create", "true"),
        );
        let answer = iq(&mut s.jicofo, "set", create).await;
        assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
    }
    let conferences = |bridge: Arc<sfu::bridge::Bridge>| async move {
        tokio::task::spawn_blocking(move || bridge.stats().unwrap().totals.conferences)
            .await
            .unwrap()
    };
    assert_eq!(conferences(s.bridge.clone()).await, 2);
    // Jicofo goes (a restart, a crash): nobody will expire these any more.
    s.jicofo
        .send(
            &Element::new("presence", ns::CLIENT)
                .with_attr("to", format!("{BREWERY}/focus"))
                .with_attr("type", "unavailable"),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while conferences(s.bridge.clone()).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the bridge ends the conferences of a Jicofo that left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
