"""MUC (XEP-0045) with the rules Jitsi Meet depends on (protocol reference §2.3-2.5)."""

import asyncio
import json
import xml.etree.ElementTree as ET

from helpers import (
    FOCUS_JID, MUC, NS_CLIENT, NS_MUC_USER, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_OWNER, NS_TEST,
    await_self_presence, endpoint_nick, error_condition, error_type, form_fields, is_presence_from,
    join, muc_admin_item, muc_item, muc_x, room_size, send_join, status_codes, unique_room, xmpp_test,
)


def available_from(occupant):
    return is_presence_from(occupant)


def unavailable_from(occupant):
    return is_presence_from(occupant, "unavailable")


async def room_listed(client, room) -> bool:
    items = await client.iq(MUC, "get", f"<query xmlns='{NS_DISCO_ITEMS}'/>")
    assert items["type"] == "result", items
    q = items.xml.find(f"{{{NS_DISCO_ITEMS}}}query")
    return f"{room}@{MUC}" in {i.get("jid") for i in q.findall(f"{{{NS_DISCO_ITEMS}}}item")}


async def wait_room_gone(http_port, room, timeout=2.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, body = await room_size(http_port, room)
        if status == 404 or loop.time() > deadline:
            return status, body
        await asyncio.sleep(0.05)


async def room_with(h, n: int, extra=None):
    """A room created by the focus, plus n anonymous participants (joined in order)."""
    room, f = await h.room_with_focus()
    people = []
    for i in range(n):
        c = await h.anon(f"p{i}")
        occ, _ = await join(c, room, extra=(extra[i] if extra else ""))
        people.append((c, occ))
    return room, f, people


# ---------------------------------------------------------------------------------------------

@xmpp_test()
async def test_focus_creates_room_and_is_owner_moderator(h, srv):
    room = unique_room()
    f = await h.focus()
    assert not await room_listed(f, room)
    occ, p = await join(f, room, "focus")
    assert occ == f"{room}@{MUC}/focus"
    assert 110 in status_codes(p), f"self-presence lacks status 110: {p}"
    item = muc_item(p)
    assert item is not None, p
    assert item.get("affiliation") == "owner", p
    assert item.get("role") == "moderator", p
    assert item.get("jid") == str(f.boundjid), f"item jid must be the real full JID: {p}"
    assert await room_listed(f, room), "new room missing from disco#items of the MUC service"
    status, body = await room_size(srv.http_port, room)
    assert (status, body) == (200, {"participants": 0}), (status, body)


@xmpp_test()
async def test_room_lifecycle_and_destruction_when_last_leaves(h, srv):
    room, f, [(a, a_occ)] = await room_with(h, 1)
    status, body = await room_size(srv.http_port, room)
    assert (status, body) == (200, {"participants": 1}), (status, body)

    a.send_raw(f"<presence to='{a_occ}' type='unavailable'/>")
    own = await a.presences.expect(unavailable_from(a_occ), "own unavailable presence")
    assert 110 in status_codes(own), f"own unavailable presence lacks status 110: {own}"
    await f.presences.expect(unavailable_from(a_occ), "participant's unavailable presence")
    status, body = await room_size(srv.http_port, room)
    assert (status, body) == (200, {"participants": 0}), (status, body)

    f_occ = f"{room}@{MUC}/focus"
    f.send_raw(f"<presence to='{f_occ}' type='unavailable'/>")
    await f.presences.expect(unavailable_from(f_occ), "focus' own unavailable presence")
    # The room goes away with its last occupant (Prosody destroys it in the same step;
    # allow the HTTP side 2 s to see it).
    status, body = await wait_room_gone(srv.http_port, room)
    assert status == 404, f"room-size 2 s after the last occupant left: {status} {body}"
    assert not await room_listed(a, room), "destroyed room still listed in disco#items"


@xmpp_test()
async def test_participant_join_waits_for_focus(h, srv):
    room = unique_room()
    a = await h.anon("early")
    a_occ = send_join(a, room, endpoint_nick(a))
    # A round trip on the same session: the join has been read by the server by now,
    # and it must have answered nothing yet (neither a rejection nor an empty room).
    await a.ping()
    premature = a.presences.pending(lambda p: str(p["from"]).startswith(f"{room}@{MUC}"))
    assert premature == [], f"non-admin got an answer before the focus joined: {premature}"

    f = await h.focus()
    f_occ, fp = await join(f, room, "focus")
    assert muc_item(fp).get("affiliation") == "owner", f"focus must be the owner/creator: {fp}"

    mine = await await_self_presence(a, a_occ)
    assert mine.xml.get("type") != "error", f"queued join was rejected: {mine}"
    assert muc_item(mine).get("role") == "participant", mine
    assert muc_item(mine).get("affiliation") == "none", mine
    seen_focus = await a.presences.expect(available_from(f_occ), "focus presence")
    assert muc_item(seen_focus).get("jid") == str(f.boundjid), seen_focus
    assert muc_item(seen_focus).get("role") == "moderator", seen_focus
    seen_a = await f.presences.expect(available_from(a_occ), "queued participant's presence")
    assert muc_item(seen_a).get("jid") == str(a.boundjid), seen_a
    # the focus is the first occupant: it learns of the participant only after its own join
    order = [id(x) for x in f.presences.items]
    assert order.index(id(seen_a)) > order.index(id(fp)), "participant entered before the focus"


@xmpp_test(timeout=60)
async def test_participant_without_focus_gets_not_allowed(h, srv):
    room = unique_room()
    a = await h.anon("lonely")
    a_occ = send_join(a, room, endpoint_nick(a))
    p = await await_self_presence(a, a_occ, timeout=25)
    assert p.xml.get("type") == "error", f"non-admin created a room without the focus: {p}"
    assert error_condition(p) == "not-allowed", p
    status, _ = await room_size(srv.http_port, room)
    assert status == 404, "a room without focus must not exist"


@xmpp_test()
async def test_real_jids_roles_and_self_presence(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    f_occ = f"{room}@{MUC}/focus"
    expected = {f_occ: (f, "owner", "moderator"), a_occ: (a, "none", "participant"),
                b_occ: (b, "none", "participant")}
    for viewer in (f, a, b):
        for occ, (who, aff, role) in expected.items():
            if who is viewer:
                continue
            p = await viewer.presences.expect(available_from(occ), f"presence of {occ}")
            item = muc_item(p)
            assert item is not None, p
            assert item.get("jid") == str(who.boundjid), f"{viewer.label} sees wrong/no real JID: {p}"
            assert (item.get("affiliation"), item.get("role")) == (aff, role), p
            assert 110 not in status_codes(p), f"status 110 on someone else's presence: {p}"


@xmpp_test()
async def test_custom_presence_children_are_relayed_verbatim(h, srv):
    room, f, [(b, b_occ)] = await room_with(h, 1)
    a = await h.anon("frank")
    nick = endpoint_nick(a)
    source_info = '{"%s-a0":{"muted":true},"%s-v0":{"muted":false,"videoType":"camera"}}' % (nick, nick)
    display = "Frank \U0001F389 \u00dcn\u00efc\u00f6d\u00e9 & <co> \"q\" 'a'"
    extra = (
        "<stats-id>Frank-x1Q</stats-id>"
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://jitsi.org/jitsi-meet' ver='k3Jc+/ab='/>"
        f"<SourceInfo>{source_info}</SourceInfo>"
        "<jitsi_participant_codecList>av1,vp9,vp8,h264</jitsi_participant_codecList>"
        "<nick xmlns='http://jabber.org/protocol/nick'>Frank \U0001F389 \u00dcn\u00efc\u00f6d\u00e9 &amp; "
        "&lt;co&gt; \"q\" 'a'</nick>"
        "<jitsi_participant_raisedHand>&#128512;&#x263A;</jitsi_participant_raisedHand>"
        "<features><feature var='https://jitsi.org/meet/e2ee'/></features>"
    )
    a_occ, _ = await join(a, room, nick, extra=extra)

    for viewer in (b, f):
        p = await viewer.presences.expect(available_from(a_occ), "Frank's join presence")
        assert p.xml.find(f"{{{NS_CLIENT}}}stats-id").text == "Frank-x1Q", p
        si = p.xml.find(f"{{{NS_CLIENT}}}SourceInfo")
        assert si is not None and si.text == source_info, p
        assert json.loads(si.text)[f"{nick}-v0"]["videoType"] == "camera"
        n = p.xml.find("{http://jabber.org/protocol/nick}nick")
        assert n is not None and n.text == display, p
        assert p.xml.find(f"{{{NS_CLIENT}}}jitsi_participant_codecList").text == "av1,vp9,vp8,h264", p
        assert p.xml.find(f"{{{NS_CLIENT}}}jitsi_participant_raisedHand").text == "\U0001F600\u263a", p
        caps = p.xml.find("{http://jabber.org/protocol/caps}c")
        assert caps is not None and caps.get("ver") == "k3Jc+/ab=" and caps.get("node") == \
            "https://jitsi.org/jitsi-meet", p
        feats = p.xml.find(f"{{{NS_CLIENT}}}features")
        assert feats is not None and [x.get("var") for x in feats] == ["https://jitsi.org/meet/e2ee"], p
        assert p.xml.find("{http://jabber.org/protocol/muc}x") is None, f"MUC join <x> leaked: {p}"

    # A later presence update (unmute) reaches the others with the new payload.
    unmuted = source_info.replace('"muted":true', '"muted":false')
    a.send_raw(f"<presence to='{a_occ}'><stats-id>Frank-x1Q</stats-id><SourceInfo>{unmuted}</SourceInfo>"
               "<nick xmlns='http://jabber.org/protocol/nick'>Frank</nick></presence>")
    upd = await b.presences.expect(
        lambda p: available_from(a_occ)(p) and p.xml.find(f"{{{NS_CLIENT}}}SourceInfo") is not None
        and p.xml.find(f"{{{NS_CLIENT}}}SourceInfo").text == unmuted,
        "Frank's updated SourceInfo")
    assert muc_item(upd).get("jid") == str(a.boundjid), upd
    assert upd.xml.find("{http://jabber.org/protocol/nick}nick").text == "Frank", upd


@xmpp_test()
async def test_groupchat_message_reaches_everyone(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    text = "hello \u00e9 \U0001F44B <&>"
    a.send_message(mto=f"{room}@{MUC}", mbody=text, mtype="groupchat")
    for viewer in (a, b, f):
        m = await viewer.messages.expect(
            lambda m: str(m["from"]) == a_occ and m["type"] == "groupchat" and m["body"] == text,
            f"groupchat from {a_occ}")
        assert str(m["to"]) == str(viewer.boundjid), m


@xmpp_test()
async def test_private_message_to_occupant(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    payload = '{"type":"olm","data":{"ciphertext":"AAE="}}'
    a.send_raw(f"<message to='{b_occ}' type='chat'><body>psst</body>"
               f"<json-message xmlns='http://jitsi.org/jitmeet'>{payload}</json-message></message>")
    m = await b.messages.expect(lambda m: str(m["from"]) == a_occ and m["body"] == "psst",
                                f"private message from {a_occ}")
    assert m["type"] == "chat", m
    assert str(m["to"]) == str(b.boundjid), m
    jm = m.xml.find("{http://jitsi.org/jitmeet}json-message")
    assert jm is not None and jm.text == payload, m


@xmpp_test()
async def test_iq_between_occupants_is_relayed_both_ways(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    resp = await a.iq(b_occ, "get", f"<probe xmlns='{NS_TEST}'>hello</probe>")
    assert resp["type"] == "result", resp
    assert str(resp["from"]) == b_occ, f"answer must come from the occupant JID: {resp}"
    assert resp.xml.find(f"{{{NS_TEST}}}probe").text == "echo:hello", resp
    got = await b.test_iqs.expect(lambda iq: iq["type"] == "get", "relayed IQ")
    assert str(got["from"]) == a_occ, f"relayed IQ must come from the sender's occupant JID: {got}"
    assert str(got["to"]) == str(b.boundjid), got

    # jicofo's feature discovery of a participant travels the same way (answered by slixmpp itself)
    info = await f.iq(a_occ, "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    assert info["type"] == "result", info
    assert str(info["from"]) == a_occ, info
    feats = {x.get("var") for x in info.xml.find(f"{{{NS_DISCO_INFO}}}query").findall(f"{{{NS_DISCO_INFO}}}feature")}
    assert NS_DISCO_INFO in feats, info


@xmpp_test()
async def test_room_disco_info_has_meeting_id(h, srv):
    room, f, [(a, a_occ)] = await room_with(h, 1)
    room_jid = f"{room}@{MUC}"
    ids = []
    for who in (a, f):
        info = await who.iq(room_jid, "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
        assert info["type"] == "result", info
        assert str(info["from"]) == room_jid, info
        q = info.xml.find(f"{{{NS_DISCO_INFO}}}query")
        idents = {(i.get("category"), i.get("type")) for i in q.findall(f"{{{NS_DISCO_INFO}}}identity")}
        assert ("conference", "text") in idents, info
        feats = {x.get("var") for x in q.findall(f"{{{NS_DISCO_INFO}}}feature")}
        assert "http://jabber.org/protocol/muc" in feats, info
        forms = [form_fields(x) for x in q.findall(f"{{{NS_DATA}}}x")]
        roominfo = [ff for ff in forms if ff.get("FORM_TYPE") == ["http://jabber.org/protocol/muc#roominfo"]]
        assert roominfo, f"no muc#roominfo form: {info}"
        mid = roominfo[0].get("muc#roominfo_meetingId", [""])[0]
        assert mid, f"empty/missing muc#roominfo_meetingId: {info}"
        ids.append(mid)
    assert ids[0] == ids[1], f"meeting id changed between requests: {ids}"

    other, f2 = await h.room_with_focus()
    info = await f2.iq(f"{other}@{MUC}", "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    x = info.xml.find(f"{{{NS_DISCO_INFO}}}query").find(f"{{{NS_DATA}}}x")
    assert form_fields(x).get("muc#roominfo_meetingId", [""])[0] not in ("", ids[0]), \
        "two rooms share one meeting id"


@xmpp_test()
async def test_owner_config_form_carries_meeting_id(h, srv):
    # jicofo reads muc#roominfo_meetingId from the owner configuration form (protocol §2.4).
    room, f, _ = await room_with(h, 0)
    room_jid = f"{room}@{MUC}"
    info = await f.iq(room_jid, "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    x = info.xml.find(f"{{{NS_DISCO_INFO}}}query").find(f"{{{NS_DATA}}}x")
    mid = form_fields(x).get("muc#roominfo_meetingId", [""])[0]
    cfg = await f.iq(room_jid, "get", f"<query xmlns='{NS_MUC_OWNER}'/>")
    assert cfg["type"] == "result", cfg
    form = cfg.xml.find(f"{{{NS_MUC_OWNER}}}query").find(f"{{{NS_DATA}}}x")
    assert form is not None, f"no config form: {cfg}"
    fields = form_fields(form)
    assert fields.get("FORM_TYPE") == ["http://jabber.org/protocol/muc#roomconfig"], cfg
    assert fields.get("muc#roominfo_meetingId") == [mid], f"meeting id {mid!r} not in owner form: {cfg}"
    # submitting jicofo's form (whois=anyone) is accepted
    ok = await f.iq(room_jid, "set",
                    f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='{NS_DATA}' type='submit'>"
                    "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
                    "<field var='muc#roomconfig_whois'><value>anyone</value></field></x></query>")
    assert ok["type"] == "result", ok


@xmpp_test()
async def test_participant_cannot_get_owner_config(h, srv):
    room, f, [(a, a_occ)] = await room_with(h, 1)
    cfg = await a.iq(f"{room}@{MUC}", "get", f"<query xmlns='{NS_MUC_OWNER}'/>")
    assert cfg["type"] == "error", f"participant got the owner form: {cfg}"
    assert error_condition(cfg) == "forbidden", cfg


@xmpp_test()
async def test_moderator_kicks_participant(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    a_nick = a_occ.rsplit("/", 1)[1]
    resp = await f.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": a_nick, "role": "none"}, "bye"))
    assert resp["type"] == "result", resp
    own = await a.presences.expect(unavailable_from(a_occ), "own kick presence")
    assert {307, 110} <= status_codes(own), f"kicked user's presence: {own}"
    for viewer in (b, f):
        p = await viewer.presences.expect(unavailable_from(a_occ), "kick presence")
        assert 307 in status_codes(p), p
        assert muc_item(p).get("role") == "none", p
    status, body = await room_size(srv.http_port, room)
    assert (status, body) == (200, {"participants": 1}), (status, body)
    # the kicked user really is out: room messages no longer reach it, they still reach b
    f.send_message(mto=f"{room}@{MUC}", mbody="after-kick", mtype="groupchat")
    await b.messages.expect(lambda m: m["body"] == "after-kick", "message after kick")
    await a.ping()
    assert a.messages.pending(lambda m: m["body"] == "after-kick") == [], "kicked user still gets messages"


@xmpp_test()
async def test_participant_cannot_kick(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    b_nick = b_occ.rsplit("/", 1)[1]
    resp = await a.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": b_nick, "role": "none"}))
    assert resp["type"] == "error", f"a participant kicked someone: {resp}"
    assert error_condition(resp) in ("forbidden", "not-allowed"), resp
    b.send_message(mto=f"{room}@{MUC}", mbody="still-here", mtype="groupchat")
    await a.messages.expect(lambda m: str(m["from"]) == b_occ and m["body"] == "still-here",
                            "message from the not-kicked participant")
    assert b.presences.pending(unavailable_from(b_occ)) == [], "b was removed"


@xmpp_test()
async def test_owner_grant_makes_moderator_who_can_kick(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    resp = await f.iq(f"{room}@{MUC}", "set",
                      muc_admin_item({"affiliation": "owner", "jid": a.boundjid.bare}))
    assert resp["type"] == "result", resp
    for viewer in (a, b, f):
        p = await viewer.presences.expect(
            lambda p: available_from(a_occ)(p) and (muc_item(p) or {}).get("affiliation") == "owner",
            "presence showing the new owner")
        assert muc_item(p).get("role") == "moderator", f"owner must be moderator: {p}"
        assert muc_item(p).get("jid") == str(a.boundjid), p
        if viewer is a:
            assert 110 in status_codes(p), f"own affiliation change lacks 110: {p}"
    b_nick = b_occ.rsplit("/", 1)[1]
    kick = await a.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": b_nick, "role": "none"}))
    assert kick["type"] == "result", f"new owner could not kick: {kick}"
    p = await f.presences.expect(unavailable_from(b_occ), "kick of b")
    assert 307 in status_codes(p), p


@xmpp_test()
async def test_role_change_to_moderator_and_back(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    a_nick = a_occ.rsplit("/", 1)[1]
    resp = await f.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": a_nick, "role": "moderator"}))
    assert resp["type"] == "result", resp
    p = await b.presences.expect(
        lambda p: available_from(a_occ)(p) and (muc_item(p) or {}).get("role") == "moderator",
        "presence with a's new role")
    assert muc_item(p).get("affiliation") == "none", p
    resp = await f.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": a_nick, "role": "participant"}))
    assert resp["type"] == "result", resp
    await b.presences.expect(
        lambda p: available_from(a_occ)(p) and (muc_item(p) or {}).get("role") == "participant",
        "presence with a's role back to participant")


@xmpp_test()
async def test_password_protected_room(h, srv):
    room, f, _ = await room_with(h, 0)
    room_jid = f"{room}@{MUC}"
    resp = await f.iq(room_jid, "set",
                      f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='{NS_DATA}' type='submit'>"
                      "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
                      "<field var='muc#roomconfig_roomsecret'><value>s3cr&amp;t</value></field>"
                      "<field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field>"
                      "</x></query>")
    assert resp["type"] == "result", resp

    info = await f.iq(room_jid, "get", f"<query xmlns='{NS_DISCO_INFO}'/>")
    feats = {x.get("var") for x in info.xml.find(f"{{{NS_DISCO_INFO}}}query").findall(f"{{{NS_DISCO_INFO}}}feature")}
    assert "muc_passwordprotected" in feats, info

    for attempt, pw in (("no password", None), ("wrong password", "nope")):
        c = await h.anon(attempt)
        occ = send_join(c, room, endpoint_nick(c), password=pw)
        p = await await_self_presence(c, occ)
        assert p.xml.get("type") == "error", f"{attempt}: joined a locked room: {p}"
        assert error_condition(p) == "not-authorized", p
        assert error_type(p) == "auth", p

    ok = await h.anon("right password")
    occ, p = await join(ok, room, password="s3cr&amp;t")
    await f.presences.expect(available_from(occ), "presence of the participant with the password")


@xmpp_test()
async def test_nick_conflict(h, srv):
    room, f, [(a, a_occ)] = await room_with(h, 1)
    b = await h.anon("b")
    nick = a_occ.rsplit("/", 1)[1]
    occ = send_join(b, room, nick)
    p = await await_self_presence(b, occ)
    assert p.xml.get("type") == "error", f"second occupant took an existing nick: {p}"
    assert error_condition(p) == "conflict", p
    assert error_type(p) == "cancel", p
    # the original occupant is unaffected
    b_other = await h.anon("c")
    occ2, _ = await join(b_other, room)
    await a.presences.expect(available_from(occ2), "next joiner")
    assert a.presences.pending(unavailable_from(a_occ)) == []


@xmpp_test()
async def test_join_existing_room_does_not_wait(h, srv):
    # A participant joining an existing room does not wait: the focus is already there.
    room, f, [(a, a_occ)] = await room_with(h, 1)
    b = await h.anon("late")
    occ, p = await join(b, room, timeout=5)
    assert muc_item(p).get("role") == "participant", p


@xmpp_test()
async def test_kick_presence_carries_reason(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    a_nick = a_occ.rsplit("/", 1)[1]
    resp = await f.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": a_nick, "role": "none"}, "too loud"))
    assert resp["type"] == "result", resp
    for viewer in (a, b):
        p = await viewer.presences.expect(unavailable_from(a_occ), "kick presence")
        item = muc_x(p).find(f"{{{NS_MUC_USER}}}item")
        reason = item.find(f"{{{NS_MUC_USER}}}reason")
        assert reason is not None and reason.text == "too loud", f"kick reason not relayed: {p}"


@xmpp_test()
async def test_moderator_cannot_kick_owner(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    a_nick = a_occ.rsplit("/", 1)[1]
    resp = await f.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": a_nick, "role": "moderator"}))
    assert resp["type"] == "result", resp
    await a.presences.expect(
        lambda p: available_from(a_occ)(p) and (muc_item(p) or {}).get("role") == "moderator",
        "own promotion to moderator")
    kick = await a.iq(f"{room}@{MUC}", "set", muc_admin_item({"nick": "focus", "role": "none"}))
    assert kick["type"] == "error", f"a moderator kicked the owner: {kick}"
    assert error_condition(kick) == "not-allowed", kick
    f.send_message(mto=f"{room}@{MUC}", mbody="focus-still-here", mtype="groupchat")
    await b.messages.expect(lambda m: str(m["from"]) == f"{room}@{MUC}/focus" and m["body"] == "focus-still-here",
                            "message from the focus")


@xmpp_test()
async def test_errors_for_missing_occupants_and_outsiders(h, srv):
    room, f, [(a, a_occ)] = await room_with(h, 1)
    ghost = f"{room}@{MUC}/nobody-here"
    a.send_raw(f"<message to='{ghost}' type='chat' id='pm1'><body>hello?</body></message>")
    err = await a.messages.expect(lambda m: m["type"] == "error" and str(m["from"]) == ghost,
                                  "error for a private message to a missing occupant")
    assert error_condition(err) == "item-not-found", err
    resp = await a.iq(ghost, "get", f"<probe xmlns='{NS_TEST}'>x</probe>")
    assert resp["type"] == "error", resp
    assert error_condition(resp) == "item-not-found", resp
    # someone who is not in the room cannot post to it
    outsider = await h.anon("outsider")
    outsider.send_raw(f"<message to='{room}@{MUC}' type='groupchat' id='gc1'><body>spam</body></message>")
    err = await outsider.messages.expect(lambda m: m["type"] == "error", "error for a non-occupant's groupchat")
    assert error_condition(err) in ("not-acceptable", "forbidden", "not-allowed"), err
    await a.ping()
    assert a.messages.pending(lambda m: m["body"] == "spam") == [], "non-occupant's message was broadcast"


@xmpp_test()
async def test_room_names_are_case_insensitive(h, srv):
    room = unique_room("CaseRoom")
    f = await h.focus()
    f_occ, _ = await join(f, room.lower(), "focus")
    a = await h.anon("upper")
    nick = endpoint_nick(a)
    occ = send_join(a, room.upper(), nick)   # ROOM@conference.localhost
    p = await a.presences.expect(
        lambda p: str(p["from"]).lower() == f"{room.lower()}@{MUC}/{nick}" and
        (p.xml.get("type") == "error" or 110 in status_codes(p)),
        "self-presence for the upper-case room JID", timeout=5)
    assert p.xml.get("type") != "error", f"joining by upper-case name failed: {p}"
    assert str(p["from"]) == f"{room.lower()}@{MUC}/{nick}", f"room JID not normalised: {p}"
    await a.presences.expect(available_from(f_occ), "the focus, in the same room")


@xmpp_test()
async def test_owner_destroys_room(h, srv):
    room, f, [(a, a_occ), (b, b_occ)] = await room_with(h, 2)
    resp = await f.iq(f"{room}@{MUC}", "set",
                      f"<query xmlns='{NS_MUC_OWNER}'><destroy jid='{room}@{MUC}'><reason>meeting over</reason>"
                      "</destroy></query>")
    assert resp["type"] == "result", resp
    for viewer, occ in ((a, a_occ), (b, b_occ)):
        p = await viewer.presences.expect(unavailable_from(occ), "own unavailable on destroy")
        d = muc_x(p).find(f"{{{NS_MUC_USER}}}destroy")
        assert d is not None, f"no <destroy/> in the presence: {p}"
        r = d.find(f"{{{NS_MUC_USER}}}reason")
        assert r is not None and r.text == "meeting over", p
    status, body = await wait_room_gone(srv.http_port, room)
    assert status == 404, (status, body)


@xmpp_test()
async def test_participant_cannot_destroy_room(h, srv):
    room, f, [(a, a_occ)] = await room_with(h, 1)
    resp = await a.iq(f"{room}@{MUC}", "set", f"<query xmlns='{NS_MUC_OWNER}'><destroy/></query>")
    assert resp["type"] == "error", f"participant destroyed the room: {resp}"
    assert error_condition(resp) == "forbidden", resp
    status, body = await room_size(srv.http_port, room)
    assert (status, body) == (200, {"participants": 1}), (status, body)


@xmpp_test()
async def test_unusual_xml_in_presence_is_preserved(h, srv):
    room, f, [(b, b_occ)] = await room_with(h, 1)
    a = await h.anon("xmlish")
    big = "x" * 40000
    extra = (
        "<jitsi_participant_attr q=\"a&quot;b\" s='c&apos;d' l='&lt;e&gt;&amp;'>v</jitsi_participant_attr>"
        "<foo:bar xmlns:foo='urn:example:prefixed'><foo:baz n='1'>deep</foo:baz></foo:bar>"
        "<nested><l1><l2><l3>bottom</l3></l2></l1></nested>"
        f"<jitsi_participant_e2ee.idKey.ed25519>{big}</jitsi_participant_e2ee.idKey.ed25519>"
    )
    a_occ, _ = await join(a, room, extra=extra)
    p = await b.presences.expect(available_from(a_occ), "presence with unusual XML")
    attr = p.xml.find(f"{{{NS_CLIENT}}}jitsi_participant_attr")
    assert attr is not None and dict(attr.attrib) == {"q": 'a"b', "s": "c'd", "l": "<e>&"} and attr.text == "v", p
    baz = p.xml.find("{urn:example:prefixed}bar/{urn:example:prefixed}baz")
    assert baz is not None and baz.get("n") == "1" and baz.text == "deep", p
    assert p.xml.find(f"{{{NS_CLIENT}}}nested/{{{NS_CLIENT}}}l1/{{{NS_CLIENT}}}l2/{{{NS_CLIENT}}}l3").text == "bottom", p
    key = p.xml.find(f"{{{NS_CLIENT}}}jitsi_participant_e2ee.idKey.ed25519")
    assert key is not None and key.text == big, "40 kB presence child truncated or lost"


@xmpp_test(timeout=90)
async def test_many_participants_join_at_once(h, srv):
    room, f = await h.room_with_focus()
    n = 10
    people = await asyncio.gather(*(h.anon(f"m{i}") for i in range(n)))
    occs = [send_join(c, room, endpoint_nick(c), extra=f"<stats-id>m{i}</stats-id>") for i, c in enumerate(people)]
    for c, occ in zip(people, occs):
        p = await await_self_presence(c, occ, timeout=15)
        assert p.xml.get("type") != "error", p
    everyone = occs + [f"{room}@{MUC}/focus"]
    for c, own in zip(people, occs):
        for other in everyone:
            if other != own:
                await c.presences.expect(available_from(other), f"presence of {other}", timeout=15)
    status, body = await room_size(srv.http_port, room)
    assert (status, body) == (200, {"participants": n}), (status, body)
    people[0].send_message(mto=f"{room}@{MUC}", mbody="roll call", mtype="groupchat")
    for c in people[1:] + [f]:
        await c.messages.expect(lambda m: m["body"] == "roll call", "groupchat to the full room")
