//! A stock Jicofo's view of our bridge, over real XMPP: the bridge logs into
//! the XMPP server (ours standing in for Prosody, over STARTTLS with SCRAM),
//! joins the brewery with its stats, answers health checks, and participants
//! allocated through Colibri2 hear each other through it.

#[allow(dead_code)]
#[path = "../../sfu/tests/participant/mod.rs"]
mod participant;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use colibri2::bridge::BridgeXmppConfig;
use colibri2::codec::{DTLS, ICE_UDP, NS, SSMA};
use colibri2::xmpp::{ClientConfig, Connection};
use participant::Participant;
use participant::setup::{connect_all, poll_all};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sfu::api::{LocalTransport, RemoteTransport, TransportCandidate};
use signaling::ns;
use signaling::xml::Element;
use str0m::media::MediaKind;

const BREWERY: &str = "jvbbrewery@conference.localhost";
/// Longest any step waits for the other side.
const PATIENCE: Duration = Duration::from_secs(10);

struct Stack {
    bridge: Arc<sfu::bridge::Bridge>,
    jicofo: Connection,
    xmpp: Xmpp,
}

/// Our XMPP server, standing in for Prosody, with the focus's and the
/// bridge's accounts.
struct Xmpp {
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    ca: std::path::PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Xmpp {
    async fn start(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        ca: std::path::PathBuf,
    ) -> Xmpp {
        let mut config = signaling::Config::for_domain("localhost");
        config.xmpp.listen = addr;
        for user in ["focus", "jvb"] {
            config.xmpp.accounts.push(signaling::config::Account {
                jid: format!("{user}@auth.localhost"),
                password: format!("{user}-secret"),
            });
        }
        config.muc.admins = vec!["focus@auth.localhost".into()];
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = signaling::Server::start(config, Some(tls.clone()), stopped)
            .await
            .unwrap();
        Xmpp {
            addr: server.xmpp_addr,
            tls,
            ca,
            stop,
        }
    }

    fn client(&self, user: &str) -> ClientConfig {
        ClientConfig {
            server: self.addr.to_string(),
            domain: "auth.localhost".into(),
            username: user.into(),
            password: format!("{user}-secret"),
            resource: user.into(),
            ca_file: Some(self.ca.clone()),
        }
    }

    /// A Jicofo logged in and in the brewery, which it makes (only the
    /// focus may create rooms).
    async fn jicofo(&self) -> Connection {
        let mut jicofo = Connection::connect(&self.client("focus")).await.unwrap();
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
        jicofo
    }
}

/// The XMPP server, our bridge behind its Colibri2 face, and a Jicofo.
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
    let xmpp = Xmpp::start("127.0.0.1:0".parse().unwrap(), Arc::new(tls), ca).await;
    let bridge = Arc::new(
        sfu::bridge::Bridge::start(sfu::bridge::BridgeConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            id: "jvb1".into(),
            workers: 1,
            // These participants know every source before media flows.
            audio_hold: Duration::ZERO,
            ..Default::default()
        })
        .unwrap(),
    );
    let jicofo = xmpp.jicofo().await;
    tokio::spawn(colibri2::bridge::run(
        bridge.clone(),
        BridgeXmppConfig {
            client: xmpp.client("jvb"),
            brewery: BREWERY.into(),
            nickname: "jvb1".into(),
            websocket_base: Some("wss://meet.example.com/colibri-ws/jvb1".into()),
        },
    ));
    Stack {
        bridge,
        jicofo,
        xmpp,
    }
}

/// How many conferences the bridge holds.
async fn conferences(bridge: &Arc<sfu::bridge::Bridge>) -> usize {
    let bridge = bridge.clone();
    tokio::task::spawn_blocking(move || bridge.stats().unwrap().totals.conferences)
        .await
        .unwrap()
}

/// Waits (at most [`PATIENCE`]) for the bridge to hold no conference.
async fn until_no_conferences(bridge: &Arc<sfu::bridge::Bridge>, why: &str) {
    let deadline = Instant::now() + PATIENCE;
    while conferences(bridge).await > 0 {
        assert!(Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    // Draining (the operator's, before maintenance): a conference Jicofo
    // places here before it reads that is refused so that Jicofo tries
    // another bridge, without marking this one down for good.
    s.bridge.set_draining(true);
    let create = modify("d1", true).with_child(
        Element::new("endpoint", NS)
            .with_attr("id", "ep1")
            .with_attr("create", "true"),
    );
    let refused = iq(&mut s.jicofo, "set", create).await;
    let condition = refused
        .child("error", ns::CLIENT)
        .and_then(|e| e.children().find(|c| c.ns() == ns::STANZAS_ERR))
        .map(|c| c.name().to_owned());
    assert_eq!(
        condition.as_deref(),
        Some("conflict"),
        "{}",
        refused.to_xml()
    );
    assert_eq!(reason(&refused).as_deref(), Some("UNSPECIFIED"));
    s.bridge.set_draining(false);
    // Something a bridge does not do is refused, not ignored.
    let other = iq(&mut s.jicofo, "get", Element::new("query", ns::ROSTER)).await;
    assert_eq!(other.attr("type"), Some("error"));
}

/// The bridge's side of a new endpoint, read back from a `conference-modified`.
fn local_transport(answer: &Element, endpoint: &str) -> LocalTransport {
    let ice = answer
        .child("conference-modified", NS)
        .into_iter()
        .flat_map(|m| m.children())
        .find(|e| e.is("endpoint", NS) && e.attr("id") == Some(endpoint))
        .and_then(|e| e.child("transport", NS))
        .and_then(|t| t.child("transport", ICE_UDP))
        .unwrap_or_else(|| panic!("no transport for {endpoint}: {}", answer.to_xml()));
    let fingerprint = ice.child("fingerprint", DTLS).unwrap();
    assert_eq!(fingerprint.attr("setup"), Some("actpass"));
    let url = ice
        .child("web-socket", colibri2::codec::COLIBRI)
        .and_then(|w| w.attr("url"))
        .unwrap();
    let channel_path = url
        .strip_prefix("wss://meet.example.com/colibri-ws/jvb1/")
        .unwrap_or_else(|| panic!("bridge channel URL {url}"));
    LocalTransport {
        ufrag: ice.attr("ufrag").unwrap().into(),
        pwd: ice.attr("pwd").unwrap().into(),
        fingerprint_hash: fingerprint.attr("hash").unwrap().into(),
        fingerprint: fingerprint.text(),
        candidates: ice
            .children()
            .filter(|c| c.is("candidate", ICE_UDP))
            .map(|c| TransportCandidate {
                foundation: c.attr("foundation").unwrap().into(),
                component: c.attr("component").unwrap().parse().unwrap(),
                protocol: c.attr("protocol").unwrap().into(),
                priority: c.attr("priority").unwrap().parse().unwrap(),
                address: SocketAddr::new(
                    c.attr("ip").unwrap().parse().unwrap(),
                    c.attr("port").unwrap().parse().unwrap(),
                ),
                kind: c.attr("type").unwrap().into(),
            })
            .collect(),
        channel_path: channel_path.into(),
    }
}

/// The participant's answer and sources, as Jicofo relays them from its session-accept.
fn answer_update(meeting: &str, endpoint: &str, remote: &RemoteTransport, audio: u32) -> Element {
    let mut ice = Element::new("transport", ICE_UDP)
        .with_attr("ufrag", remote.ufrag.as_str())
        .with_attr("pwd", remote.pwd.as_str())
        .with_child(
            Element::new("fingerprint", DTLS)
                .with_attr("hash", remote.fingerprint_hash.as_str())
                .with_attr("setup", "active")
                .with_text(remote.fingerprint.as_str()),
        );
    for c in &remote.candidates {
        ice.push_child(
            Element::new("candidate", ICE_UDP)
                .with_attr("component", "1")
                .with_attr("protocol", "udp")
                .with_attr("ip", c.ip().to_string())
                .with_attr("port", c.port().to_string())
                .with_attr("type", "host"),
        );
    }
    let sources = Element::new("sources", NS).with_child(
        Element::new("media-source", NS)
            .with_attr("type", "audio")
            .with_attr("id", format!("{endpoint}-a0"))
            .with_child(Element::new("source", SSMA).with_attr("ssrc", audio.to_string())),
    );
    modify(meeting, false).with_child(
        Element::new("endpoint", NS)
            .with_attr("id", endpoint)
            .with_child(Element::new("transport", NS).with_child(ice))
            .with_child(sources),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_allocated_over_colibri2_hear_each_other() {
    let mut s = stack().await;
    until(&mut s.jicofo, |p| {
        p.is("presence", ns::CLIENT) && p.attr("from") == Some(&format!("{BREWERY}/jvb1"))
    })
    .await;

    // 1. Jicofo allocates both on the bridge; the answers carry the bridge's side.
    let mut ps = Vec::new();
    for (i, (name, audio)) in [("alice", 1111u32), ("bob", 2222)].into_iter().enumerate() {
        let create = modify("m1", i == 0).with_child(
            Element::new("endpoint", NS)
                .with_attr("id", name)
                .with_attr("create", "true")
                .with_child(Element::new("transport", NS).with_attr("ice-controlling", "true")),
        );
        let answer = iq(&mut s.jicofo, "set", create).await;
        assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
        let local = local_transport(&answer, name);
        // The request that made the conference gets the bridge's feedback
        // sources, which Jicofo puts into every offer.
        let feedback: Vec<(String, String)> = answer
            .child("conference-modified", NS)
            .and_then(|m| m.child("sources", NS))
            .into_iter()
            .flat_map(|s| s.children())
            .filter_map(|m| {
                let source = m.child("source", SSMA)?;
                source.attr("ssrc")?.parse::<u32>().ok()?;
                Some((m.attr("type")?.into(), source.attr("name")?.into()))
            })
            .collect();
        let expected = if i == 0 {
            vec![
                ("audio".into(), "jvb-a0".into()),
                ("video".into(), "jvb-v0".into()),
            ]
        } else {
            vec![]
        };
        assert_eq!(feedback, expected);
        assert_eq!(local.candidates[0].address, s.bridge.media_addr());
        assert!(local.channel_path.starts_with(&format!("m1/{name}?pwd=")));
        let mut p = Participant::new(name, &local);
        p.send_streams(audio, &[]);
        // 2. Their answers and sources, relayed.
        let update = answer_update("m1", name, &p.remote(), audio);
        let answer = iq(&mut s.jicofo, "set", update).await;
        assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
        ps.push(p);
    }
    ps[0].expect(2222, MediaKind::Audio);
    ps[1].expect(1111, MediaKind::Audio);

    // 3. ICE, DTLS and SRTP over real UDP; alice's audio reaches bob.
    let ps = tokio::task::spawn_blocking(move || {
        connect_all(&mut ps);
        for n in 1..=50u32 {
            ps[0].send_audio(1111, n * 960, -30, format!("alice:{n}").into_bytes());
            poll_all(&mut ps, 2);
        }
        poll_all(&mut ps, 20);
        ps
    })
    .await
    .unwrap();
    let heard = ps[1].payloads_from(1111).len();
    assert!(heard >= 45, "bob heard {heard} of alice's 50 packets");

    // 4. A moderator mutes alice (audio moderation): the bridge drops her
    // audio whatever her client sends, until Jicofo lifts it.
    let mut ps = ps;
    for (muted, round) in [(true, 1), (false, 2)] {
        let mute = modify("m1", false).with_child(
            Element::new("endpoint", NS)
                .with_attr("id", "alice")
                .with_child(
                    Element::new("force-mute", NS)
                        .with_attr("audio", muted.to_string())
                        .with_attr("video", "false"),
                ),
        );
        let answer = iq(&mut s.jicofo, "set", mute).await;
        assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
        let before = ps[1].payloads_from(1111).len();
        ps = tokio::task::spawn_blocking(move || {
            for n in 1..=50u32 {
                let ts = (round * 50 + n) * 960;
                ps[0].send_audio(1111, ts, -30, format!("alice:{round}:{n}").into_bytes());
                poll_all(&mut ps, 2);
            }
            poll_all(&mut ps, 20);
            ps
        })
        .await
        .unwrap();
        let heard = ps[1].payloads_from(1111).len() - before;
        if muted {
            assert_eq!(heard, 0, "bob heard a force-muted alice");
        } else {
            assert!(
                heard >= 45,
                "bob heard {heard} of 50 once alice may speak again"
            );
        }
    }

    // 5. Jicofo's mistakes get the reasons it acts on.
    let unknown =
        modify("m1", false).with_child(Element::new("endpoint", NS).with_attr("id", "nobody"));
    let answer = iq(&mut s.jicofo, "set", unknown).await;
    assert_eq!(reason(&answer).as_deref(), Some("UNKNOWN_ENDPOINT"));
    let again = iq(&mut s.jicofo, "set", modify("m1", true)).await;
    assert_eq!(reason(&again).as_deref(), Some("CONFERENCE_ALREADY_EXISTS"));
    let elsewhere = iq(&mut s.jicofo, "set", modify("m2", false)).await;
    assert_eq!(reason(&elsewhere).as_deref(), Some("CONFERENCE_NOT_FOUND"));

    // 6. The last participant leaving ends the conference on the bridge.
    for name in ["alice", "bob"] {
        let expire = modify("m1", false).with_child(
            Element::new("endpoint", NS)
                .with_attr("id", name)
                .with_attr("expire", "true"),
        );
        let answer = iq(&mut s.jicofo, "set", expire).await;
        assert_eq!(answer.attr("type"), Some("result"));
    }
    let bridge = s.bridge.clone();
    let stats = tokio::task::spawn_blocking(move || bridge.stats())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stats.totals.conferences, stats.totals.endpoints), (0, 0));
    let gone = iq(&mut s.jicofo, "set", modify("m1", false)).await;
    assert_eq!(reason(&gone).as_deref(), Some("CONFERENCE_NOT_FOUND"));
    drop(ps);
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
    assert_eq!(conferences(&s.bridge).await, 2);
    // Jicofo goes (a restart, a crash): nobody will expire these any more.
    s.jicofo
        .send(
            &Element::new("presence", ns::CLIENT)
                .with_attr("to", format!("{BREWERY}/focus"))
                .with_attr("type", "unavailable"),
        )
        .await
        .unwrap();
    until_no_conferences(
        &s.bridge,
        "the bridge ends the conferences of a Jicofo that left",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_comes_back_after_the_xmpp_server_restarts() {
    let mut s = stack().await;
    let bridge_presence = |p: &Element| {
        p.is("presence", ns::CLIENT)
            && p.attr("from") == Some(&format!("{BREWERY}/jvb1"))
            && p.attr("type").is_none()
    };
    until(&mut s.jicofo, bridge_presence).await;
    let create = modify("m1", true).with_child(
        Element::new("endpoint", NS)
            .with_attr("id", "ep1")
            .with_attr("create", "true"),
    );
    let answer = iq(&mut s.jicofo, "set", create).await;
    assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());

    // Prosody restarts: every session drops, Jicofo moves the conference away.
    let _ = s.xmpp.stop.send(true);
    drop(s.jicofo);
    let deadline = Instant::now() + PATIENCE;
    let xmpp = loop {
        // The old listener goes once its accept loop sees the stop.
        assert!(Instant::now() < deadline, "the old XMPP listener closes");
        if tokio::net::TcpListener::bind(s.xmpp.addr).await.is_ok() {
            break Xmpp::start(s.xmpp.addr, s.xmpp.tls.clone(), s.xmpp.ca.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut jicofo = xmpp.jicofo().await;
    // The bridge logs in again on its own and is back in the brewery...
    until(&mut jicofo, bridge_presence).await;
    // ...without the conference of the Jicofo that lost it.
    until_no_conferences(
        &s.bridge,
        "the bridge ends the conferences of its earlier connection",
    )
    .await;
}
