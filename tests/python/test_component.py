"""XEP-0114 external components (how a stock Jicofo or other services attach)."""

import asyncio
import hashlib
import re
import xml.etree.ElementTree as ET

from slixmpp import ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from helpers import (
    COMPONENT, COMPONENT_SECRET, DEFAULT_WAIT, NS_TEST, STREAM_ERROR, Inbox, RawConn, error_condition,
    xmpp_test,
)

NS_ACCEPT = "jabber:component:accept"


class Echo(ComponentXMPP):
    def __init__(self, jid, secret):
        super().__init__(jid, secret)
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.enable_starttls = False
        self.messages = Inbox("component messages")
        self.iqs = Inbox("component IQs")
        self._started = asyncio.get_running_loop().create_future()
        self.register_handler(Callback("c-msg", MatchXPath(f"{{{NS_ACCEPT}}}message"), self._on_message))
        self.register_handler(Callback("c-iq", MatchXPath(f"{{{NS_ACCEPT}}}iq/{{{NS_TEST}}}probe"),
                                       self._on_iq))
        self.add_event_handler("session_start", lambda _e: self._started.done() or self._started.set_result(1))
        self.add_event_handler("disconnected", self._on_disc)

    def _on_disc(self, reason):
        if not self._started.done():
            self._started.set_exception(ConnectionError(f"component disconnected: {reason}"))

    def _on_message(self, msg):
        self.messages.put(msg)
        if msg["body"] and not msg["body"].startswith("echo:"):
            self.send_message(mto=msg["from"], mfrom=COMPONENT, mbody="echo:" + msg["body"], mtype="chat")

    def _on_iq(self, iq):
        self.iqs.put(iq)
        reply = iq.reply(clear=True)
        p = ET.Element(f"{{{NS_TEST}}}probe")
        p.text = "component:" + (iq.xml.find(f"{{{NS_TEST}}}probe").text or "")
        reply.append(p)
        reply.send()

    async def start(self, host, port):
        self.connect(host, port)
        await asyncio.wait_for(asyncio.shield(self._started), DEFAULT_WAIT)

    async def stop(self):
        try:
            await asyncio.wait_for(self.disconnect(wait=1.0), 3)
        except Exception:
            pass
        self.abort()


async def component(h, srv) -> Echo:
    comp = Echo(COMPONENT, COMPONENT_SECRET)
    h.clients.append(comp)
    await comp.start(srv.host, srv.component_port)
    return comp


@xmpp_test()
async def test_component_receives_and_sends_messages(h, srv):
    comp = await component(h, srv)
    c = await h.anon("client")
    c.send_message(mto=COMPONENT, mbody="hi there", mtype="chat")
    got = await comp.messages.expect(lambda m: m["body"] == "hi there", "client message at the component")
    assert str(got["from"]) == str(c.boundjid), f"component must see the client's full JID: {got}"
    assert str(got["to"]) == COMPONENT, got
    back = await c.messages.expect(lambda m: m["body"] == "echo:hi there", "echo from the component")
    assert str(back["from"]) == COMPONENT, back


@xmpp_test()
async def test_component_answers_iq(h, srv):
    comp = await component(h, srv)
    c = await h.anon("client")
    resp = await c.iq(COMPONENT, "get", f"<probe xmlns='{NS_TEST}'>q1</probe>")
    assert resp["type"] == "result", resp
    assert str(resp["from"]) == COMPONENT, resp
    assert resp.xml.find(f"{{{NS_TEST}}}probe").text == "component:q1", resp
    # and a subdomain-less JID on the component's domain is routed there too
    resp2 = await c.iq(f"room1@{COMPONENT}", "get", f"<probe xmlns='{NS_TEST}'>q2</probe>")
    assert resp2["type"] == "result", resp2
    assert str(resp2["from"]) == f"room1@{COMPONENT}", resp2


@xmpp_test()
async def test_component_can_address_client_directly(h, srv):
    comp = await component(h, srv)
    c = await h.anon("client")
    comp.send_message(mto=c.boundjid.full, mfrom=f"bot@{COMPONENT}", mbody="unsolicited", mtype="chat")
    m = await c.messages.expect(lambda m: m["body"] == "unsolicited", "message pushed by the component")
    assert str(m["from"]) == f"bot@{COMPONENT}", m


@xmpp_test()
async def test_component_wrong_secret_rejected(h, srv):
    raw = h.track(await RawConn.open(srv.host, srv.component_port))
    await raw.send(f"<stream:stream xmlns='{NS_ACCEPT}' xmlns:stream='http://etherx.jabber.org/streams' "
                   f"to='{COMPONENT}'>")
    head = await raw.read_until(rb"<stream:stream[^>]*>")
    m = re.search(rb"\sid=['\"]([^'\"]+)['\"]", head)
    assert m, f"no stream id in component stream header: {head!r}"
    bad = hashlib.sha1(m.group(1) + b"not-the-secret").hexdigest()
    await raw.send(f"<handshake>{bad}</handshake>")
    rest = await raw.read_to_close(timeout=DEFAULT_WAIT)
    assert STREAM_ERROR.search(rest), f"no stream error after a bad handshake: {rest!r}"
    assert b"not-authorized" in rest, rest
    assert b"<handshake" not in rest[raw.pos:], f"bad handshake accepted: {rest!r}"


@xmpp_test()
async def test_component_unknown_domain_rejected(h, srv):
    raw = h.track(await RawConn.open(srv.host, srv.component_port))
    await raw.send(f"<stream:stream xmlns='{NS_ACCEPT}' xmlns:stream='http://etherx.jabber.org/streams' "
                   "to='nope.localhost'>")
    rest = await raw.read_to_close(timeout=DEFAULT_WAIT)
    assert STREAM_ERROR.search(rest), f"no stream error for an unknown component domain: {rest!r}"
    assert b"host-unknown" in rest or b"not-authorized" in rest, rest


@xmpp_test()
async def test_messages_to_disconnected_component_bounce(h, srv):
    comp = await component(h, srv)
    c = await h.anon("client")
    await comp.stop()
    resp = await c.iq(COMPONENT, "get", f"<probe xmlns='{NS_TEST}'>gone</probe>")
    assert resp["type"] == "error", resp
    assert error_condition(resp) in ("service-unavailable", "remote-server-not-found", "remote-server-timeout"), resp
