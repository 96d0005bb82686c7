"""Keep Prosody and Jicofo, swap the bridge: `oxbridge bridge`, started as its own process, logs into an
XMPP server (an `oxbridge serve` with its focus off, standing in for Prosody) with STARTTLS and SCRAM, joins
the brewery room, and serves Colibri2 to a Jicofo (slixmpp here) as Videobridge does."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Server, free_port, oxbridge_bin, stop_server
from helpers import MUC, NS_CLIENT, error_condition, http_get, join, xmpp_test

NS_COLIBRI2 = "jitsi:colibri2"
NS_COLIBRI = "http://jitsi.org/protocol/colibri"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS = "urn:xmpp:jingle:apps:dtls:0"
BREWERY = f"jvbbrewery@{MUC}"
BRIDGE_ID = "jvb-test"

XMPP_CONFIG = """\
domain = "localhost"

[http]
listen = "127.0.0.1:{http}"

[xmpp]
listen = "127.0.0.1:{c2s}"
tls_cert = "{cert}"
tls_key = "{key}"

[[xmpp.accounts]]
jid = "focus@auth.localhost"
password = "focus-secret"

[[xmpp.accounts]]
jid = "jvb@auth.localhost"
password = "jvb-secret"

[focus]
enabled = false

[sfu]
listen = "127.0.0.1:0"

[muc]
admins = ["focus@auth.localhost"]
"""

BRIDGE_CONFIG = """\
[http]
listen = "127.0.0.1:{http}"

[sfu]
listen = "127.0.0.1:0"
id = "{id}"
workers = 1

[sfu.xmpp]
server = "127.0.0.1:{c2s}"
domain = "auth.localhost"
username = "jvb"
password = "jvb-secret"
brewery = "{brewery}"
ca_file = "{cert}"
"""


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate for the XMPP server that the bridge is told to trust, as an operator points it at
    Prosody's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("auth.localhost")]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "xmpp.pem", workdir / "xmpp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def launch(args: list[str], config: str, workdir: Path, name: str, http: int) -> tuple[subprocess.Popen, Path]:
    """Starts the binary with `config` and waits (bounded) for its /about/health."""
    cfg = workdir / f"{name}.toml"
    cfg.write_text(config)
    log_path = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXBRIDGE_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(oxbridge_bin()), *args, "--config", str(cfg)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=workdir)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}; log:\n{log_path.read_text(errors='replace')}",
                        pytrace=False)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/about/health", timeout=2) as r:
                if r.status == 200:
                    return proc, log_path
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{name}: /about/health not 200 within 20 s; log:\n{log_path.read_text(errors='replace')}",
                        pytrace=False)
        time.sleep(0.1)  # polling the health endpoint at startup, bounded by the deadline above


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("colibri2")
    cert, key = self_signed(workdir)
    http, c2s = free_port(), free_port()
    proc, log = launch(["serve"], XMPP_CONFIG.format(http=http, c2s=c2s, cert=cert, key=key), workdir, "xmpp",
                       http)
    server = Server("127.0.0.1", http, c2s, 0, proc, log, workdir / "xmpp.toml")
    server.workdir = workdir
    server.cert = cert
    yield server
    stop_server(server)


class Bridge:
    """An `oxbridge bridge` process, stopped when the test ends."""

    def __init__(self, srv):
        self.http = free_port()
        config = BRIDGE_CONFIG.format(http=self.http, id=BRIDGE_ID, c2s=srv.c2s_port, brewery=BREWERY,
                                      cert=srv.cert)
        self.proc, self.log = launch(["bridge"], config, srv.workdir, f"bridge-{uuid.uuid4().hex[:6]}",
                                     self.http)

    def stats(self) -> dict:
        status, body = http_get(self.http, "/colibri/stats")
        assert status == 200, body
        return json.loads(body)

    def stop(self) -> None:
        """Ends it at once (SIGTERM would wait for its conferences)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def stats_of(presence) -> dict[str, str]:
    stats = presence.xml.find(f"{{{NS_COLIBRI}}}stats")
    assert stats is not None, f"the bridge's presence carries no stats: {presence}"
    return {s.get("name"): s.get("value") for s in stats.findall(f"{{{NS_COLIBRI}}}stat")}


def reason_of(answer) -> str | None:
    err = answer.xml.find(f"{{{NS_CLIENT}}}error")
    colibri = err.find(f"{{{NS_COLIBRI2}}}error") if err is not None else None
    return colibri.get("reason") if colibri is not None else None


async def websocket_status(url: str) -> int:
    """The HTTP status of a WebSocket upgrade to `url` (101 when the bridge takes the channel)."""
    assert url.startswith("ws://"), url
    hostport, _, path = url[len("ws://"):].partition("/")
    host, port = hostport.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return int(line.split()[1])


@xmpp_test()
async def test_a_stock_jicofo_finds_allocates_on_and_shuts_down_the_bridge_gracefully(h, srv):
    jicofo = await h.focus()
    await join(jicofo, "jvbbrewery", "focus")
    bridge = Bridge(srv)
    try:
        occupant = f"{BREWERY}/{BRIDGE_ID}"
        presence = await jicofo.presences.expect(
            lambda p: str(p["from"]) == occupant and p.xml.find(f"{{{NS_COLIBRI}}}stats") is not None,
            "the bridge's stats presence in the brewery")
        stats = stats_of(presence)
        assert stats["healthy"] == "true" and stats["drain"] == "false", stats
        assert float(stats["stress_level"]) < 0.1 and "version" in stats, stats
        # The stats are re-sent every 5 s, as Videobridge does.
        await jicofo.presences.expect(lambda p: str(p["from"]) == occupant, "a refreshed stats presence", 8)

        health = await jicofo.iq(occupant, "get", "<healthcheck xmlns='http://jitsi.org/protocol/healthcheck'/>")
        assert health["type"] == "result", health

        meeting = uuid.uuid4().hex
        create = (f"<conference-modify xmlns='{NS_COLIBRI2}' meeting-id='{meeting}' name='room@{MUC}' "
                  f"create='true'><endpoint id='ab12cd34' create='true' stats-id='Frank'>"
                  f"<media type='audio'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' "
                  f"clockrate='48000' channels='2'/></media><transport ice-controlling='true'/>"
                  f"<capability name='source-names'/></endpoint></conference-modify>")
        answer = await jicofo.iq(occupant, "set", create)
        assert answer["type"] == "result", answer
        # The bridge's feedback sources, which Jicofo puts into every participant's offer.
        feedback = answer.xml.findall(
            f"{{{NS_COLIBRI2}}}conference-modified/{{{NS_COLIBRI2}}}sources/{{{NS_COLIBRI2}}}media-source")
        assert sorted((m.get("type"), m.get("id")) for m in feedback) == [("audio", "jvb-a0"), ("video", "jvb-v0")]
        ice = answer.xml.find(f".//{{{NS_COLIBRI2}}}endpoint/{{{NS_COLIBRI2}}}transport/{{{NS_ICE}}}transport")
        assert ice is not None and ice.get("ufrag") and ice.get("pwd"), answer
        fingerprint = ice.find(f"{{{NS_DTLS}}}fingerprint")
        assert fingerprint.get("hash") == "sha-256" and fingerprint.get("setup") == "actpass", answer
        candidate = ice.find(f"{{{NS_ICE}}}candidate")
        assert candidate.get("ip") == "127.0.0.1" and int(candidate.get("port")) > 0, answer
        url = ice.find(f"{{{NS_COLIBRI}}}web-socket").get("url")
        assert url.startswith(f"ws://127.0.0.1:{bridge.http}/colibri-ws/{BRIDGE_ID}/{meeting}/ab12cd34?pwd="), url
        # The bridge channel Jicofo hands to the participant is served by the bridge process.
        assert await websocket_status(url) == 101
        assert await websocket_status(url.split("?pwd=")[0] + "?pwd=wrong") != 101
        assert bridge.stats()["participants"] == 1

        unknown = await jicofo.iq(occupant, "set", f"<conference-modify xmlns='{NS_COLIBRI2}' meeting-id='{meeting}'>"
                                  f"<endpoint id='nobody'/></conference-modify>")
        assert unknown["type"] == "error" and reason_of(unknown) == "UNKNOWN_ENDPOINT", unknown
        assert error_condition(unknown) == "item-not-found", unknown

        # SIGTERM starts a graceful shutdown, as Videobridge's: Jicofo reads it in the stats, gets no new
        # conference placed here, and the running one goes on...
        bridge.proc.send_signal(signal.SIGTERM)
        await jicofo.presences.expect(
            lambda p: str(p["from"]) == occupant and p.xml.find(f"{{{NS_COLIBRI}}}stats") is not None
            and stats_of(p).get("graceful_shutdown") == "true",
            "graceful_shutdown in the bridge's stats", 8)
        assert bridge.proc.poll() is None, "the bridge waits for its conference"
        assert bridge.stats()["participants"] == 1
        other = uuid.uuid4().hex
        refused = await jicofo.iq(occupant, "set", f"<conference-modify xmlns='{NS_COLIBRI2}' meeting-id='{other}' "
                                  f"create='true'><endpoint id='cd34ef56' create='true'/></conference-modify>")
        assert refused["type"] == "error" and reason_of(refused) == "GRACEFUL_SHUTDOWN", refused

        # ...until its last participant leaves: then the bridge ends and leaves the brewery.
        expire = await jicofo.iq(occupant, "set", f"<conference-modify xmlns='{NS_COLIBRI2}' meeting-id='{meeting}'>"
                                 f"<endpoint id='ab12cd34' expire='true'/></conference-modify>")
        assert expire["type"] == "result", expire
        assert bridge.proc.wait(timeout=10) == 0
        await jicofo.presences.expect(
            lambda p: str(p["from"]) == occupant and p["type"] == "unavailable", "the bridge leaving the brewery")
    finally:
        bridge.stop()
