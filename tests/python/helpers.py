"""Shared helpers for the whole-stack XMPP tests.

Everything here is asynchronous and waits on real events (stanzas arriving, a socket
closing) with a deadline; nothing sleeps and hopes.  Each test runs in its own event
loop (see ``xmpp_test``), so clients never outlive the test that made them.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import re
import ssl
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable

from slixmpp import ClientXMPP, ComponentXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

DOMAIN = "localhost"
MUC = "conference.localhost"
AUTH = "auth.localhost"
FOCUS_JID = "focus@auth.localhost"
FOCUS_PASS = "focus-secret"
ALICE_JID = "alice@localhost"
ALICE_PASS = "alice-pass"
COMPONENT = "echo.localhost"
COMPONENT_SECRET = "comp-secret"

NS_CLIENT = "jabber:client"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = NS_MUC + "#user"
NS_MUC_ADMIN = NS_MUC + "#admin"
NS_MUC_OWNER = NS_MUC + "#owner"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_TEST = "urn:oxbridge:test"

UUID_NODE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

DEFAULT_WAIT = 10.0


def insecure_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def unique_room(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------
# running async tests
# --------------------------------------------------------------------------------------

def xmpp_test(timeout: float = 45.0):
    """Turn ``async def test_x(h, srv, ...)`` into a pytest test run in a fresh loop.

    ``h`` is a Harness bound to the ``srv`` fixture; every client it made is
    disconnected when the test ends, pass or fail.
    """

    def deco(fn):
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.name != "h"]

        def wrapper(**kwargs):
            srv = kwargs["srv"]

            async def main():
                h = Harness(srv)
                try:
                    await asyncio.wait_for(fn(h=h, **kwargs), timeout)
                finally:
                    await h.close()

            asyncio.run(main())

        wrapper.__name__ = fn.__name__
        wrapper.__qualname__ = fn.__qualname__
        wrapper.__doc__ = fn.__doc__
        wrapper.__module__ = fn.__module__
        wrapper.__signature__ = sig.replace(parameters=params)
        return wrapper

    return deco


# --------------------------------------------------------------------------------------
# stanza inbox
# --------------------------------------------------------------------------------------

def dump(stanza) -> str:
    try:
        return str(stanza)
    except Exception:  # pragma: no cover - diagnostics only
        return repr(stanza)


class Inbox:
    """Everything of one kind a client received, in order; tests take matches out."""

    def __init__(self, name: str):
        self.name = name
        self.items: list = []
        self.taken: set[int] = set()
        self._new = asyncio.Event()

    def put(self, stanza) -> None:
        self.items.append(stanza)
        self._new.set()

    def pending(self, pred: Callable = lambda s: True) -> list:
        return [s for i, s in enumerate(self.items) if i not in self.taken and pred(s)]

    async def expect(self, pred: Callable, what: str, timeout: float = DEFAULT_WAIT):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, s in enumerate(self.items):
                if i not in self.taken and pred(s):
                    self.taken.add(i)
                    return s
            remaining = deadline - loop.time()
            if remaining <= 0:
                got = "\n".join("  " + dump(s) for s in self.items[-15:]) or "  (nothing)"
                raise AssertionError(
                    f"[{self.name}] no {what} within {timeout}s; last stanzas received:\n{got}"
                )
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except asyncio.TimeoutError:
                pass


# --------------------------------------------------------------------------------------
# stanza inspection
# --------------------------------------------------------------------------------------

def muc_x(p):
    return p.xml.find(f"{{{NS_MUC_USER}}}x")


def muc_item(p) -> dict | None:
    x = muc_x(p)
    if x is None:
        return None
    item = x.find(f"{{{NS_MUC_USER}}}item")
    return None if item is None else dict(item.attrib)


def status_codes(p) -> set[int]:
    x = muc_x(p)
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall(f"{{{NS_MUC_USER}}}status") if s.get("code")}


def error_condition(stanza) -> str | None:
    err = stanza.xml.find(f"{{{NS_CLIENT}}}error")
    if err is None:
        err = stanza.xml.find("error")
    if err is None:
        return None
    for child in err:
        if child.tag.startswith(f"{{{NS_STANZAS}}}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


def error_type(stanza) -> str | None:
    err = stanza.xml.find(f"{{{NS_CLIENT}}}error")
    return None if err is None else err.get("type")


def child(stanza, tag: str, ns: str = NS_CLIENT):
    return stanza.xml.find(f"{{{ns}}}{tag}")


def form_fields(x_el) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in x_el.findall(f"{{{NS_DATA}}}field"):
        out[f.get("var")] = [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
    return out


def is_presence_from(jid: str, ptype: str | None = None):
    def pred(p):
        if str(p["from"]) != jid:
            return False
        t = p.xml.get("type")
        if ptype is None:
            return t is None
        return t == ptype

    return pred


# --------------------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------------------

class AuthFailed(Exception):
    def __init__(self, conditions):
        super().__init__(f"SASL failed: {conditions}")
        self.conditions = conditions


class Client(ClientXMPP):
    """A slixmpp client that only does STARTTLS on a given host:port and records stanzas."""

    def __init__(self, jid: str, password: str = "", sasl_mech: str | None = None, label: str = ""):
        super().__init__(jid, password, sasl_mech=sasl_mech)
        self.label = label or jid
        if password and not sasl_mech:
            # never fall back to ANONYMOUS when credentials were given
            self.plugin["feature_mechanisms"].use_mechs = {"SCRAM-SHA-1", "PLAIN"}
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.ssl_context = insecure_tls()
        for plugin in ("xep_0030", "xep_0004", "xep_0199"):
            self.register_plugin(plugin)
        self.presences = Inbox(f"{self.label} presences")
        self.messages = Inbox(f"{self.label} messages")
        self.test_iqs = Inbox(f"{self.label} test IQs")
        self.auth_failures: list[str] = []
        self.stream_errors: list[str] = []
        self.tls_done = False
        self._started: asyncio.Future = asyncio.get_running_loop().create_future()
        self.register_handler(Callback("inbox-presence", MatchXPath(f"{{{NS_CLIENT}}}presence"),
                                       self.presences.put))
        self.register_handler(Callback("inbox-message", MatchXPath(f"{{{NS_CLIENT}}}message"),
                                       self.messages.put))
        self.register_handler(Callback("test-iq", MatchXPath(f"{{{NS_CLIENT}}}iq/{{{NS_TEST}}}probe"),
                                       self._on_test_iq))
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("failed_all_auth", self._on_failed_all_auth)
        self.add_event_handler("no_auth", self._on_failed_all_auth)
        self.add_event_handler("connection_failed", self._on_conn_failed)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("stream_error", lambda e: self.stream_errors.append(str(e)))
        self.add_event_handler("ssl_invalid_chain", self._on_conn_failed)
        self.echo_test_iqs = True

    # --- events
    def _fail(self, exc: Exception) -> None:
        if not self._started.done():
            self._started.set_exception(exc)

    def _on_start(self, _event) -> None:
        self.tls_done = "starttls" in self.features
        if not self._started.done():
            self._started.set_result(True)

    def _on_failed_auth(self, stanza) -> None:
        self.auth_failures.append(stanza["condition"])

    def _on_failed_all_auth(self, _event=None) -> None:
        self._fail(AuthFailed(list(self.auth_failures)))

    def _on_conn_failed(self, err) -> None:
        self._fail(ConnectionError(f"{self.label}: connection failed: {err}"))

    def _on_disconnected(self, reason) -> None:
        self._fail(ConnectionError(f"{self.label}: disconnected before session start: {reason}; "
                                   f"stream errors {self.stream_errors}; auth failures {self.auth_failures}"))

    def _on_test_iq(self, iq) -> None:
        self.test_iqs.put(iq)
        if self.echo_test_iqs and iq["type"] in ("get", "set"):
            reply = iq.reply(clear=True)
            payload = ET.Element(f"{{{NS_TEST}}}probe")
            echoed = iq.xml.find(f"{{{NS_TEST}}}probe")
            payload.text = f"echo:{echoed.text if echoed is not None else ''}"
            reply.append(payload)
            reply.send()

    async def start(self, host: str, port: int, timeout: float = DEFAULT_WAIT) -> None:
        self.connect(host, port)
        try:
            await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.label}: no session within {timeout}s "
                                 f"(stream errors {self.stream_errors}, auth failures {self.auth_failures})")

    async def wait_auth_outcome(self, host: str, port: int, timeout: float = DEFAULT_WAIT):
        """Connect and return None on success or the AuthFailed exception."""
        try:
            await self.start(host, port, timeout)
        except AuthFailed as e:
            return e
        return None

    async def stop(self) -> None:
        try:
            self.cancel_connection_attempt()
        except Exception:
            pass
        if self.transport is not None:
            try:
                await asyncio.wait_for(self.disconnect(wait=1.0), 3)
            except Exception:
                pass
        try:
            self.abort()
        except Exception:
            pass

    # --- stanza helpers
    async def iq(self, to: str, itype: str, payload: str | None, timeout: float = DEFAULT_WAIT):
        """Send an IQ (payload as XML text) and return the answer (result or error)."""
        iq = self.Iq()
        iq["type"] = itype
        iq["to"] = to
        if payload:
            iq.append(ET.fromstring(payload))
        try:
            return await iq.send(timeout=timeout)
        except IqError as e:
            return e.iq
        except IqTimeout:
            raise AssertionError(f"{self.label}: no answer within {timeout}s to IQ {itype} to {to}: {payload}")

    async def ping(self, to: str = DOMAIN, timeout: float = 5.0):
        resp = await self.iq(to, "get", "<ping xmlns='urn:xmpp:ping'/>", timeout)
        assert resp["type"] == "result", f"ping to {to} failed: {resp}"
        assert str(resp["from"]) in (to, ""), f"ping answer from wrong JID: {resp}"
        return resp


# --------------------------------------------------------------------------------------
# MUC helpers
# --------------------------------------------------------------------------------------

def endpoint_nick(client: Client) -> str:
    node = client.boundjid.user
    head = node[:8]
    if re.fullmatch(r"[0-9a-f]{8}", head):
        return head
    return uuid.uuid4().hex[:8]


def send_join(client: Client, room: str, nick: str, extra: str = "", password: str | None = None) -> str:
    occupant = f"{room}@{MUC}/{nick}"
    pw = f"<password>{password}</password>" if password is not None else ""
    client.send_raw(
        f"<presence to='{occupant}'><x xmlns='{NS_MUC}'>{pw}</x>{extra}</presence>"
    )
    return occupant


async def await_self_presence(client: Client, occupant: str, timeout: float = DEFAULT_WAIT):
    """Wait for the join outcome: the self-presence (status 110) or a presence error."""

    def pred(p):
        if str(p["from"]) != occupant:
            return False
        t = p.xml.get("type")
        return t == "error" or (t is None and 110 in status_codes(p))

    return await client.presences.expect(pred, f"self-presence or error from {occupant}", timeout)


async def join(client: Client, room: str, nick: str | None = None, extra: str = "",
               password: str | None = None, timeout: float = DEFAULT_WAIT):
    nick = nick or endpoint_nick(client)
    occupant = send_join(client, room, nick, extra, password)
    p = await await_self_presence(client, occupant, timeout)
    assert p.xml.get("type") != "error", f"{client.label} could not join {occupant}: {p}"
    return occupant, p


def muc_admin_item(attrs: dict, reason: str | None = None) -> str:
    a = " ".join(f"{k}='{v}'" for k, v in attrs.items())
    r = f"<reason>{reason}</reason>" if reason else ""
    return f"<query xmlns='{NS_MUC_ADMIN}'><item {a}>{r}</item></query>"


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------

def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


async def ahttp_get(port: int, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, port, path)


async def room_size(port: int, room: str) -> tuple[int, dict | str]:
    status, body = await ahttp_get(port, f"/room-size?room={room}&domain={DOMAIN}")
    if status == 200:
        return status, json.loads(body)
    return status, body


# --------------------------------------------------------------------------------------
# raw sockets
# --------------------------------------------------------------------------------------

STREAM_ERROR = re.compile(rb"<(?:stream:)?error[\s>/]")


def stream_header(to: str = DOMAIN) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
    ).encode()


class RawConn:
    """An XMPP connection driven by hand over asyncio streams (STARTTLS capable)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.error: BaseException | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> "RawConn":
        r, w = await asyncio.open_connection(host, port)
        return cls(r, w)

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def _read_more(self, timeout: float) -> None:
        try:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
        except asyncio.TimeoutError:
            raise  # (a subclass of OSError: must not count as the peer closing)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.error = e
            self.eof = True
            return
        if not chunk:
            self.eof = True
        self.buf += chunk

    async def read_until(self, pattern: bytes, timeout: float = DEFAULT_WAIT) -> bytes:
        """Return everything from the cursor up to and including the first match."""
        rx = re.compile(pattern, re.S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                out = self.buf[self.pos:m.end()]
                self.pos = m.end()
                return out
            remaining = deadline - loop.time()
            if self.eof or remaining <= 0:
                raise AssertionError(
                    f"raw: no {pattern!r} (eof={self.eof}, error={self.error!r}); got: "
                    f"{self.buf[self.pos:][-2000:]!r}"
                )
            try:
                await self._read_more(remaining)
            except asyncio.TimeoutError:
                pass

    async def read_to_close(self, timeout: float = DEFAULT_WAIT) -> bytes:
        """Read until the peer closes; AssertionError if it does not within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"raw: server did not close the connection within {timeout}s; "
                                     f"got: {self.buf[-2000:]!r}")
            try:
                await self._read_more(remaining)
            except asyncio.TimeoutError:
                pass
        return self.buf

    async def starttls(self, server_hostname: str) -> None:
        await self.writer.start_tls(insecure_tls(), server_hostname=server_hostname)

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass

    def abort(self) -> None:
        try:
            self.writer.transport.abort()
        except Exception:
            pass


def features_mechanisms(features: bytes) -> set[str]:
    return set(m.decode() for m in re.findall(rb"<mechanism>([^<]+)</mechanism>", features))


async def raw_open_stream(host: str, port: int, to: str = DOMAIN) -> tuple[RawConn, bytes]:
    c = await RawConn.open(host, port)
    await c.send(stream_header(to))
    feats = await c.read_until(rb"</stream:features>")
    return c, feats


async def raw_tls_stream(host: str, port: int, to: str = DOMAIN) -> tuple[RawConn, bytes, bytes]:
    """Open, STARTTLS, restart; returns (conn, features before TLS, features after TLS)."""
    c, pre = await raw_open_stream(host, port, to)
    assert b"urn:ietf:params:xml:ns:xmpp-tls" in pre, f"STARTTLS not offered: {pre!r}"
    await c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await c.read_until(rb"<proceed[^>]*/>")
    c.buf, c.pos = b"", 0
    await c.starttls(to)
    await c.send(stream_header(to))
    post = await c.read_until(rb"</stream:features>")
    return c, pre, post


async def raw_login(host: str, port: int, user: str, password: str, domain: str = DOMAIN
                    ) -> tuple[RawConn, str]:
    """STARTTLS + SASL PLAIN + bind by hand; returns (conn, bound full JID)."""
    c, _pre, _post = await raw_tls_stream(host, port, domain)
    creds = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    await c.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>")
    got = await c.read_until(rb"<(success|failure)[^>]*(/>|>.*?</\1>)")
    assert b"<success" in got, f"raw PLAIN login failed: {got!r}"
    await c.send(stream_header(domain))
    await c.read_until(rb"</stream:features>")
    await c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<resource>raw</resource></bind></iq>")
    got = await c.read_until(rb"<iq[^>]*bind1.*?</iq>")
    m = re.search(rb"<jid>([^<]+)</jid>", got)
    assert m, f"bind failed: {got!r}"
    return c, m.group(1).decode()


# --------------------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------------------

@dataclass
class Harness:
    srv: object
    clients: list = field(default_factory=list)
    raws: list = field(default_factory=list)

    async def client(self, jid: str, password: str = "", mech: str | None = None,
                     label: str = "", start: bool = True) -> Client:
        c = Client(jid, password, sasl_mech=mech, label=label)
        self.clients.append(c)
        if start:
            await c.start(self.srv.host, self.srv.c2s_port)
        return c

    async def anon(self, label: str = "anon") -> Client:
        return await self.client(DOMAIN, label=label)

    async def focus(self) -> Client:
        return await self.client(FOCUS_JID, FOCUS_PASS, label="focus")

    async def alice(self, resource: str | None = None, mech: str | None = None) -> Client:
        jid = ALICE_JID + (f"/{resource}" if resource else "")
        return await self.client(jid, ALICE_PASS, mech=mech, label="alice")

    async def raw(self) -> RawConn:
        c = await RawConn.open(self.srv.host, self.srv.c2s_port)
        self.raws.append(c)
        return c

    def track(self, raw: RawConn) -> RawConn:
        self.raws.append(raw)
        return raw

    async def room_with_focus(self, room: str | None = None):
        """A room created by the focus, like jicofo does; returns (room, focus client)."""
        room = room or unique_room()
        f = await self.focus()
        occupant, p = await join(f, room, "focus")
        return room, f

    async def close(self) -> None:
        for r in self.raws:
            r.abort()
        await asyncio.gather(*(c.stop() for c in self.clients), return_exceptions=True)
