"""Bad input is normal: a misbehaving connection gets a stream error and is cut off,
while an ordinary participant in a room carries on (DESIGN.md, 'Bad input is normal')."""

import asyncio
import re

from helpers import (
    ALICE_PASS, DOMAIN, ahttp_get, MUC, STREAM_ERROR, RawConn, is_presence_from, join, raw_login, raw_open_stream,
    stream_header, xmpp_test,
)


async def witness_room(h):
    """Focus + one participant in a room: the 'someone else' who must keep working."""
    room, f = await h.room_with_focus()
    w = await h.anon("witness")
    w_occ, _ = await join(w, room)
    return room, f, w, w_occ


async def assert_still_working(h, room, f, w, w_occ, tag):
    body = f"still alive after {tag}"
    w.send_message(mto=f"{room}@{MUC}", mbody=body, mtype="groupchat")
    await f.messages.expect(lambda m: str(m["from"]) == w_occ and m["body"] == body,
                            f"witness groupchat after {tag}", timeout=5)
    await w.messages.expect(lambda m: str(m["from"]) == w_occ and m["body"] == body,
                            f"witness' own groupchat echo after {tag}", timeout=5)
    await w.ping(timeout=5)
    # and a newcomer can still log in
    n = await h.anon(f"newcomer after {tag}")
    await n.ping(timeout=5)


def stream_error_condition(data: bytes) -> bytes | None:
    m = STREAM_ERROR.search(data)
    if not m:
        return None
    cond = re.search(rb"<([a-z-]+)[^>]*xmlns=['\"]urn:ietf:params:xml:ns:xmpp-streams['\"]", data[m.start():])
    return cond.group(1) if cond else b"?"


@xmpp_test()
async def test_malformed_xml_before_tls_gets_stream_error(h, srv):
    room, f, w, w_occ = await witness_room(h)
    raw, _feats = await raw_open_stream(srv.host, srv.c2s_port)
    h.track(raw)
    await raw.send("<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'></iq>")
    rest = await raw.read_to_close(timeout=5)
    cond = stream_error_condition(rest[raw.pos:])
    assert cond in (b"not-well-formed", b"bad-format"), f"stream error for mismatched tags: {rest[raw.pos:]!r}"
    await assert_still_working(h, room, f, w, w_occ, "malformed XML")


@xmpp_test()
async def test_malformed_xml_in_authenticated_session(h, srv):
    room, f, w, w_occ = await witness_room(h)
    raw, jid = await raw_login(srv.host, srv.c2s_port, "alice", ALICE_PASS)
    h.track(raw)
    # join the room, then break the stream: the bad session must leave the room
    nick = "rawalice"
    occ = f"{room}@{MUC}/{nick}"
    await raw.send(f"<presence to='{occ}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    await raw.read_until(rb"<status code=['\"]110['\"]")
    await w.presences.expect(is_presence_from(occ), "raw client's join")
    await raw.send("<message to='localhost'><body>a < b</body></message>")
    rest = await raw.read_to_close(timeout=5)
    cond = stream_error_condition(rest[raw.pos:])
    assert cond in (b"not-well-formed", b"bad-format"), f"stream error for a bare '<': {rest[raw.pos:]!r}"
    left = await w.presences.expect(is_presence_from(occ, "unavailable"), "cut-off session leaving the room")
    assert left is not None
    await assert_still_working(h, room, f, w, w_occ, "malformed XML after login")


GARBAGE = {
    "an HTTP request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "a TLS ClientHello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4,
    "plain text": b"hello world\n",
    "broken markup": b"<<<>>>",
}


@xmpp_test(timeout=60)
async def test_garbage_instead_of_a_stream_gets_stream_error(h, srv):
    room, f, w, w_occ = await witness_room(h)
    outcomes = {}
    for name, data in GARBAGE.items():
        raw = h.track(await RawConn.open(srv.host, srv.c2s_port))
        await raw.send(data)
        try:
            got = await raw.read_to_close(timeout=5)
            outcomes[name] = stream_error_condition(got) or f"closed without stream error: {got[:200]!r}"
        except AssertionError:
            outcomes[name] = f"still open after 5 s, received {raw.buf[:200]!r}"
    bad = {k: v for k, v in outcomes.items() if v not in (b"not-well-formed", b"bad-format")}
    assert not bad, f"expected a not-well-formed/bad-format stream error and close for: {bad}"
    await assert_still_working(h, room, f, w, w_occ, "garbage bytes")


@xmpp_test(timeout=90)
async def test_two_megabyte_stanza_is_policy_violation(h, srv):
    room, f, w, w_occ = await witness_room(h)
    raw, jid = await raw_login(srv.host, srv.c2s_port, "alice", ALICE_PASS)
    h.track(raw)
    nick = "bigsender"
    occ = f"{room}@{MUC}/{nick}"
    await raw.send(f"<presence to='{occ}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    await raw.read_until(rb"<status code=['\"]110['\"]")
    await w.presences.expect(is_presence_from(occ), "big sender's join")

    start = raw.pos
    reader = asyncio.ensure_future(raw.read_to_close(timeout=30))
    chunk = b"A" * 65536
    sent = 0
    try:
        await raw.send(f"<message to='{room}@{MUC}' type='groupchat'><body>".encode())
        while sent < 2 * 1024 * 1024 and not reader.done():
            raw.writer.write(chunk)
            await asyncio.wait_for(raw.writer.drain(), 10)
            sent += len(chunk)
        if not reader.done():
            await raw.send(b"</body></message>")
    except (ConnectionError, OSError):
        pass  # the server hung up on us mid-stanza: fine, it is expected to
    rest = await reader
    cond = stream_error_condition(rest[start:])
    assert cond == b"policy-violation", f"after {sent} bytes of one stanza: {rest[start:][-1000:]!r}"
    # the whole session is gone: it left the room, and nobody got the giant message
    await w.presences.expect(is_presence_from(occ, "unavailable"), "big sender leaving the room")
    assert w.messages.pending(lambda m: len(m["body"] or "") > 100000) == [], "giant message was delivered"
    await assert_still_working(h, room, f, w, w_occ, "a 2 MB stanza")


@xmpp_test(timeout=120)
async def test_thousand_connections_opened_and_dropped(h, srv):
    room, f, w, w_occ = await witness_room(h)
    total, batch = 1000, 100
    opened = 0
    errors = []
    for start in range(0, total, batch):
        conns = await asyncio.gather(
            *(asyncio.wait_for(asyncio.open_connection(srv.host, srv.c2s_port), 10) for _ in range(batch)),
            return_exceptions=True)
        for i, c in enumerate(conns):
            if isinstance(c, BaseException):
                errors.append(repr(c))
                continue
            opened += 1
            _r, wr = c
            kind = (start + i) % 4
            if kind == 1:
                wr.write(stream_header(DOMAIN)[:40])          # half a stream header
            elif kind == 2:
                wr.write(stream_header(DOMAIN))                # a whole header, then vanish
            elif kind == 3:
                wr.write(stream_header(DOMAIN) + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await asyncio.sleep(0)  # let the writes go out
        for i, c in enumerate(conns):
            if isinstance(c, BaseException):
                continue
            _r, wr = c
            if (start + i) % 2:
                wr.transport.abort()                           # RST
            else:
                wr.close()                                     # FIN
    assert opened == total, f"only {opened}/{total} connections accepted; errors: {errors[:5]}"
    await assert_still_working(h, room, f, w, w_occ, "1000 dropped connections")
    status_code, _ = await ahttp_get(srv.http_port, "/about/health")
    assert status_code == 200
