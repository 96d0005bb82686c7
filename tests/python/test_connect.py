"""Connecting as Jitsi Meet does: STARTTLS, SASL, bind, ping, discovery, errors."""

import json
import re
import xml.etree.ElementTree as ET

from helpers import (
    ALICE_JID, ALICE_PASS, AUTH, DOMAIN, FOCUS_JID, FOCUS_PASS, MUC, NS_DISCO_INFO, NS_DISCO_ITEMS,
    UUID_NODE, AuthFailed, error_condition, error_type, features_mechanisms, http_get,
    raw_open_stream, raw_tls_stream, xmpp_test,
)


def test_health_endpoint(srv):
    status, _ = http_get(srv.http_port, "/about/health")
    assert status == 200


def test_version_endpoint_answers_as_videobridge_does(srv):
    status, body = http_get(srv.http_port, "/about/version")
    assert status == 200
    about = json.loads(body)
    assert about["name"] == "oxbridge"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", about["version"]), about
    assert about["os"], about


@xmpp_test()
async def test_starttls_offered_and_mechanisms_after_tls(h, srv):
    conn, pre, post = await raw_tls_stream(srv.host, srv.c2s_port, DOMAIN)
    h.track(conn)
    assert "PLAIN" not in features_mechanisms(pre), f"PLAIN offered before TLS: {pre!r}"
    mechs = features_mechanisms(post)
    assert {"ANONYMOUS", "PLAIN", "SCRAM-SHA-1"} <= mechs, f"mechanisms after TLS: {post!r}"
    assert b"urn:ietf:params:xml:ns:xmpp-tls" not in post, "STARTTLS offered again after TLS"


@xmpp_test()
async def test_auth_domain_offers_password_mechanisms_but_not_anonymous(h, srv):
    conn, _pre, post = await raw_tls_stream(srv.host, srv.c2s_port, AUTH)
    h.track(conn)
    mechs = features_mechanisms(post)
    assert {"PLAIN", "SCRAM-SHA-1"} <= mechs, f"mechanisms on {AUTH}: {post!r}"
    assert "ANONYMOUS" not in mechs, f"anonymous login must not be possible on {AUTH}: {post!r}"


@xmpp_test()
async def test_anonymous_login_gets_uuid_jid_over_tls(h, srv):
    a = await h.anon("a")
    b = await h.anon("b")
    assert a.tls_done, "STARTTLS was not negotiated"
    assert a.transport.get_extra_info("ssl_object") is not None, "session is not over TLS"
    for c in (a, b):
        jid = c.boundjid
        assert jid.domain == DOMAIN, jid
        assert UUID_NODE.match(jid.user), f"anonymous node is not UUID-like: {jid}"
        assert jid.resource, f"no resource bound: {jid}"
    assert a.boundjid.bare != b.boundjid.bare, "two anonymous logins got the same JID"
    await a.ping()


@xmpp_test()
async def test_plain_login(h, srv):
    c = await h.alice(mech="PLAIN")
    assert c.boundjid.bare == ALICE_JID
    assert c.boundjid.resource
    await c.ping()


@xmpp_test()
async def test_scram_sha1_login(h, srv):
    # slixmpp checks the server signature, so this fails if the server's SCRAM is wrong.
    c = await h.alice(mech="SCRAM-SHA-1")
    assert c.boundjid.bare == ALICE_JID
    await c.ping()


@xmpp_test()
async def test_focus_account_on_auth_domain(h, srv):
    for mech in ("SCRAM-SHA-1", "PLAIN"):
        c = await h.client(FOCUS_JID, FOCUS_PASS, mech=mech, label=f"focus-{mech}")
        assert c.boundjid.bare == FOCUS_JID
        await c.ping(AUTH)


@xmpp_test()
async def test_requested_resource_is_bound(h, srv):
    c = await h.alice(resource="laptop-1")
    assert str(c.boundjid) == f"{ALICE_JID}/laptop-1"


@xmpp_test()
async def test_wrong_password_is_not_authorized(h, srv):
    for mech in ("PLAIN", "SCRAM-SHA-1"):
        c = await h.client(ALICE_JID, "wrong-pass", mech=mech, label=f"wrong-{mech}", start=False)
        outcome = await c.wait_auth_outcome(srv.host, srv.c2s_port)
        assert isinstance(outcome, AuthFailed), f"{mech}: login with a wrong password succeeded"
        assert outcome.conditions == ["not-authorized"], f"{mech}: {outcome.conditions}"


@xmpp_test()
async def test_unknown_user_is_not_authorized(h, srv):
    for mech in ("PLAIN", "SCRAM-SHA-1"):
        c = await h.client("mallory@localhost", "whatever", mech=mech, label=f"unknown-{mech}", start=False)
        outcome = await c.wait_auth_outcome(srv.host, srv.c2s_port)
        assert isinstance(outcome, AuthFailed), f"{mech}: unknown user logged in"
        assert outcome.conditions == ["not-authorized"], f"{mech}: {outcome.conditions}"


@xmpp_test()
async def test_ping_domain(h, srv):
    c = await h.anon()
    resp = await c.ping(DOMAIN)
    assert str(resp["from"]) == DOMAIN, f"ping answer must come from {DOMAIN}: {resp}"


@xmpp_test()
async def test_domain_disco_info_lists_ping(h, srv):
    c = await h.anon()
    resp = await c.iq(DOMAIN, "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    assert resp["type"] == "result", resp
    assert str(resp["from"]) == DOMAIN, resp
    q = resp.xml.find(f"{{{NS_DISCO_INFO}}}query")
    features = {f.get("var") for f in q.findall(f"{{{NS_DISCO_INFO}}}feature")}
    assert "urn:xmpp:ping" in features, features
    assert q.findall(f"{{{NS_DISCO_INFO}}}identity"), "domain disco#info has no identity"


@xmpp_test()
async def test_external_services(h, srv):
    c = await h.anon()
    resp = await c.iq(DOMAIN, "get", "<services xmlns='urn:xmpp:extdisco:2'/>")
    assert resp["type"] == "result", resp
    assert str(resp["from"]) == DOMAIN, resp
    assert resp.xml.find("{urn:xmpp:extdisco:2}services") is not None, resp


@xmpp_test()
async def test_roster_is_empty(h, srv):
    c = await h.alice()
    resp = await c.iq("", "get", "<query xmlns='jabber:iq:roster'/>")
    assert resp["type"] == "result", resp
    q = resp.xml.find("{jabber:iq:roster}query")
    assert q is not None, resp
    assert list(q) == [], f"roster not empty: {resp}"


@xmpp_test()
async def test_conference_service_discovery(h, srv):
    c = await h.anon()
    info = await c.iq(MUC, "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    assert info["type"] == "result", info
    assert str(info["from"]) == MUC, info
    q = info.xml.find(f"{{{NS_DISCO_INFO}}}query")
    identities = {(i.get("category"), i.get("type")) for i in q.findall(f"{{{NS_DISCO_INFO}}}identity")}
    assert ("conference", "text") in identities, identities
    features = {f.get("var") for f in q.findall(f"{{{NS_DISCO_INFO}}}feature")}
    assert "http://jabber.org/protocol/muc" in features, features
    items = await c.iq(MUC, "get", f"<query xmlns='{NS_DISCO_ITEMS}'/>")
    assert items["type"] == "result", items
    assert items.xml.find(f"{{{NS_DISCO_ITEMS}}}query") is not None, items


@xmpp_test()
async def test_iq_to_unknown_targets_is_service_unavailable(h, srv):
    c = await h.anon()
    for target in ("nobody.localhost", "focus.localhost", "ghost@localhost"):
        resp = await c.iq(target, "get", "<query xmlns='urn:oxbridge:unknown'/>")
        assert resp["type"] == "error", f"IQ to {target}: {resp}"
        assert str(resp["from"]) == target, f"error for {target} must come from it: {resp}"
        assert error_condition(resp) == "service-unavailable", f"IQ to {target}: {resp}"
        assert error_type(resp) == "cancel", f"IQ to {target}: {resp}"


@xmpp_test()
async def test_unknown_iq_to_domain_is_answered_with_error(h, srv):
    c = await h.anon()
    resp = await c.iq(DOMAIN, "get", "<query xmlns='urn:oxbridge:nothing-here'/>")
    assert resp["type"] == "error", resp
    assert error_condition(resp) in ("service-unavailable", "feature-not-implemented"), resp
    # the session is still usable afterwards
    await c.ping()


@xmpp_test()
async def test_no_login_before_starttls(h, srv):
    import base64
    for mech, payload in (("PLAIN", base64.b64encode(f"\0alice\0{ALICE_PASS}".encode()).decode()),
                          ("ANONYMOUS", "")):
        conn, feats = await raw_open_stream(srv.host, srv.c2s_port, DOMAIN)
        h.track(conn)
        await conn.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>{payload}</auth>")
        got = await conn.read_until(rb"(<success[^>]*>|<failure.*?</failure>|<failure[^>]*/>|</stream:stream>)",
                                    timeout=5)
        assert b"<success" not in got, f"{mech} login accepted before STARTTLS: {got!r}"


@xmpp_test()
async def test_messages_and_iqs_between_users(h, srv):
    a = await h.anon("a")
    b = await h.anon("b")
    # to the bare JID: delivered to the (only) available session
    b.send_raw("<presence/>")
    await b.ping()  # the initial presence has been handled once this answer is back
    a.send_message(mto=b.boundjid.bare, mbody="to your bare jid", mtype="chat")
    m = await b.messages.expect(lambda m: m["body"] == "to your bare jid", "message to bare JID")
    assert str(m["from"]) == str(a.boundjid), f"from must be the sender's full JID: {m}"
    # to the full JID
    a.send_message(mto=b.boundjid.full, mbody="to your full jid", mtype="chat")
    m = await b.messages.expect(lambda m: m["body"] == "to your full jid", "message to full JID")
    assert str(m["from"]) == str(a.boundjid), m
    # an IQ to a full JID is answered by that client
    resp = await a.iq(b.boundjid.full, "get", "<probe xmlns='urn:oxbridge:test'>direct</probe>")
    assert resp["type"] == "result", resp
    assert str(resp["from"]) == str(b.boundjid), resp
    assert resp.xml.find("{urn:oxbridge:test}probe").text == "echo:direct", resp
    got = await b.test_iqs.expect(lambda iq: True, "direct IQ")
    assert str(got["from"]) == str(a.boundjid), got
