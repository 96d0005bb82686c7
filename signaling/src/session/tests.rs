use super::*;
use crate::config::{Account, Config, JwtConfig};

fn env(jwt: Option<JwtConfig>) -> Arc<SessionEnv> {
    let mut c = Config::for_domain("localhost");
    c.xmpp.accounts.push(Account {
        jid: "focus@auth.localhost".into(),
        password: "pw".into(),
    });
    c.auth.jwt = jwt;
    Arc::new(SessionEnv {
        domain: "localhost".into(),
        auth_domain: "auth.localhost".into(),
        muc_domain: "conference.localhost".into(),
        auth: Authenticator::new(&c).unwrap(),
    })
}

fn header(to: &str) -> Element {
    Element::new("open", ns::FRAMING)
        .with_attr("to", to)
        .with_attr("version", "1.0")
}

fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn sent(out: &[Output]) -> Vec<&Element> {
    out.iter()
        .filter_map(|o| {
            if let Output::Send(e) = o {
                Some(e)
            } else {
                None
            }
        })
        .collect()
}

/// Runs a WebSocket session through ANONYMOUS and bind.
fn bound(env: Arc<SessionEnv>, token: Option<&str>) -> (Session, Vec<Output>) {
    let params = ConnectParams {
        token: token.map(str::to_owned),
        previd: None,
    };
    let mut s = Session::new(env, TransportKind::WebSocket, params);
    s.handle_open(&header("localhost"));
    let out = drain(&mut s);
    let features = sent(&out)[0];
    assert!(
        features
            .child("mechanisms", ns::SASL)
            .unwrap()
            .children()
            .any(|m| m.text() == "ANONYMOUS")
    );
    s.handle_stanza(Element::new("auth", ns::SASL).with_attr("mechanism", "ANONYMOUS"));
    let out = drain(&mut s);
    if sent(&out)[0].name() != "success" {
        return (s, out);
    }
    s.handle_open(&header("localhost"));
    drain(&mut s);
    let bind = Element::new("iq", ns::CLIENT)
        .with_attr("type", "set")
        .with_attr("id", "b")
        .with_child(Element::new("bind", ns::BIND));
    s.handle_stanza(bind);
    let out = drain(&mut s);
    (s, out)
}

#[test]
fn anonymous_login_binds_a_uuid_like_jid() {
    let (s, out) = bound(env(None), None);
    assert!(out.iter().any(|o| matches!(o, Output::Bound(_))));
    let node = s.jid().unwrap().node().unwrap().to_owned();
    // lib-jitsi-meet takes the first 8 characters as the endpoint id when they are hex.
    assert_eq!(node.len(), 36);
    assert!(
        node[..8]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn spoofed_from_is_a_stream_error() {
    let (mut s, _) = bound(env(None), None);
    s.handle_stanza(
        Element::new("message", ns::CLIENT)
            .with_attr("from", "someone@localhost/x")
            .with_attr("to", "a@localhost"),
    );
    let out = drain(&mut s);
    assert!(matches!(
        out.last(),
        Some(Output::Close(Some((StreamError::InvalidFrom, _))))
    ));
}

#[test]
fn stanzas_get_the_bound_jid_as_from() {
    let (mut s, _) = bound(env(None), None);
    s.handle_stanza(
        Element::new("message", ns::CLIENT)
            .with_attr("to", "r@conference.localhost")
            .with_attr("type", "groupchat"),
    );
    let out = drain(&mut s);
    let Some(Output::Route(m)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(m.attr("from"), Some(s.jid().unwrap().to_string().as_str()));
}

#[test]
fn plain_password_on_the_auth_host() {
    let mut s = Session::new(
        env(None),
        TransportKind::WebSocket,
        ConnectParams::default(),
    );
    s.handle_open(&header("auth.localhost"));
    let out = drain(&mut s);
    let mechs: Vec<String> = sent(&out)[0]
        .child("mechanisms", ns::SASL)
        .unwrap()
        .children()
        .map(Element::text)
        .collect();
    assert_eq!(mechs, ["SCRAM-SHA-1", "PLAIN"]);
    use base64::Engine as _;
    for (pw, expect) in [("bad", "failure"), ("pw", "success")] {
        let data = base64::engine::general_purpose::STANDARD.encode(format!("\0focus\0{pw}"));
        s.handle_stanza(
            Element::new("auth", ns::SASL)
                .with_attr("mechanism", "PLAIN")
                .with_text(data),
        );
        let out = drain(&mut s);
        assert_eq!(sent(&out)[0].name(), expect);
    }
}

fn jwt_config() -> JwtConfig {
    JwtConfig {
        app_id: "app".into(),
        app_secret: Some("secret".into()),
        ..JwtConfig::default()
    }
}

fn token(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(b"secret");
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn jwt_failures_carry_the_text_jitsi_shows() {
    let (_, out) = bound(env(Some(jwt_config())), None);
    let f = sent(&out)[0];
    assert_eq!(f.name(), "failure");
    assert_eq!(f.child("text", ns::SASL).unwrap().text(), "token required");
    let expired =
        token(serde_json::json!({"iss":"app","aud":"jitsi","room":"*","exp": now() - 10}));
    let (_, out) = bound(env(Some(jwt_config())), Some(&expired));
    assert_eq!(
        sent(&out)[0].child("text", ns::SASL).unwrap().text(),
        "Not acceptable by exp"
    );
    let bad_sig =
        token(serde_json::json!({"iss":"app","aud":"jitsi","room":"*","exp": now() + 60})) + "x";
    let (_, out) = bound(env(Some(jwt_config())), Some(&bad_sig));
    assert_eq!(sent(&out)[0].name(), "failure");
}

#[test]
fn jwt_room_claim_and_identity_apply_to_joins() {
    let t = token(
        serde_json::json!({"iss":"app","aud":"jitsi","room":"consult-1","exp": now() + 60,
        "context":{"user":{"id":"u1","name":"Dr Who","moderator":true}}}),
    );
    let (mut s, _) = bound(env(Some(jwt_config())), Some(&t));
    assert!(s.token_moderator());
    let join = |room: &str| {
        Element::new("presence", ns::CLIENT)
            .with_attr("to", format!("{room}@conference.localhost/abcd1234"))
            .with_child(Element::new("identity", ns::CLIENT).with_text("forged"))
    };
    s.handle_stanza(join("other"));
    let out = drain(&mut s);
    let reply = sent(&out)[0];
    assert_eq!(reply.attr("type"), Some("error"));
    assert!(
        reply
            .child("error", ns::CLIENT)
            .unwrap()
            .child("not-allowed", ns::STANZAS_ERR)
            .is_some()
    );
    s.handle_stanza(join("consult-1"));
    let out = drain(&mut s);
    let Some(Output::Route(p)) = out.first() else {
        panic!("{out:?}")
    };
    let identity: Vec<_> = p.children().filter(|c| c.name() == "identity").collect();
    assert_eq!(identity.len(), 1);
    assert_eq!(
        identity[0]
            .child("user", ns::CLIENT)
            .unwrap()
            .child("name", ns::CLIENT)
            .unwrap()
            .text(),
        "Dr Who"
    );
}

#[test]
fn stream_management_acks_and_resumes_what_was_not_acknowledged() {
    let (mut s, _) = bound(env(None), None);
    s.handle_stanza(Element::new("enable", ns::SM).with_attr("resume", "true"));
    let out = drain(&mut s);
    let id = sent(&out)[0].attr("id").unwrap().to_owned();
    assert!(s.resumable());
    for i in 0..5 {
        s.deliver(Element::new("message", ns::CLIENT).with_attr("id", i.to_string()));
    }
    let out = drain(&mut s);
    assert_eq!(
        sent(&out).last().unwrap().name(),
        "r",
        "an ack is requested after 5 stanzas"
    );
    s.handle_stanza(Element::new("a", ns::SM).with_attr("h", "2"));
    s.handle_stanza(Element::new("message", ns::CLIENT).with_attr("to", "localhost"));
    drain(&mut s);
    s.detach();
    s.resume(TransportKind::WebSocket, 3).unwrap();
    let out = drain(&mut s);
    let els = sent(&out);
    assert_eq!(els[0].name(), "resumed");
    assert_eq!(els[0].attr("previd"), Some(id.as_str()));
    assert_eq!(els[0].attr("h"), Some("1"));
    let ids: Vec<_> = els[1..]
        .iter()
        .filter(|e| e.name() == "message")
        .map(|e| e.attr("id").unwrap())
        .collect();
    assert_eq!(ids, ["3", "4"]);
}
