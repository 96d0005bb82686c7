"""A call between two participants whose WebRTC stack is aiortc (Python: aioice, OpenSSL
DTLS, libsrtp, libvpx/libopus via PyAV), a stack the bridge is not built on, signalled over
slixmpp as a Jitsi client signals: conference request, MUC join, Jingle offer from the
focus answered through SDP. Each decodes the other's video and audio.
"""

from __future__ import annotations

import asyncio
import math
import xml.etree.ElementTree as ET
from array import array

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import AudioFrame
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from helpers import MUC, Inbox, endpoint_nick, join, unique_room, xmpp_test
from jingle_sdp import NS_JINGLE, answer_to_accept, offer_to_sdp

NS_FOCUS = "http://jitsi.org/protocol/focus"
SAMPLE_RATE = 48000
PTIME = 0.02


class Tone(AudioStreamTrack):
    """A 440 Hz tone: the bridge drops silence, so a silent track would prove nothing."""

    async def recv(self):
        samples = int(SAMPLE_RATE * PTIME)
        if hasattr(self, "_pts"):
            self._pts += samples
            await asyncio.sleep(self._start + self._pts / SAMPLE_RATE - asyncio.get_running_loop().time())
        else:
            self._start = asyncio.get_running_loop().time()
            self._pts = 0
        pcm = array("h", (int(8000 * math.sin(2 * math.pi * 440 * (self._pts + i) / SAMPLE_RATE))
                          for i in range(samples)))
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.pts = self._pts
        frame.sample_rate = SAMPLE_RATE
        return frame


class Participant:
    """One aiortc peer connection signalled through the focus."""

    def __init__(self, client, room: str, setup: str):
        self.client = client
        # The DTLS role the answer takes: active (as browsers do) or passive.
        self.setup = setup
        self.room = room
        self.nick = endpoint_nick(client)
        self.occupant = f"{room}@{MUC}/{self.nick}"
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.remote = {}
        self.jingle = Inbox(f"{self.nick} jingle")
        self.pc.on("track", lambda t: self.remote.__setitem__(t.kind, t))
        client.register_handler(Callback(
            "jingle", MatchXPath(f"{{jabber:client}}iq/{{{NS_JINGLE}}}jingle"), self._on_jingle))

    def _on_jingle(self, iq) -> None:
        if iq["type"] != "set":
            return
        self.jingle.put(iq)
        # source-add and friends are acked; aiortc routes the new streams by payload type.
        if iq.xml.find(f"{{{NS_JINGLE}}}jingle").get("action") != "session-initiate":
            iq.reply(clear=True).send()

    async def join(self) -> None:
        ask = f"<conference xmlns='{NS_FOCUS}' room='{self.room}@{MUC}' machine-uid='{self.nick}'/>"
        r = await self.client.iq("focus.localhost", "set", ask)
        assert r["type"] == "result", f"conference request refused: {r}"
        await join(self.client, self.room, self.nick)

    async def answer(self) -> None:
        iq = await self.jingle.expect(
            lambda i: i.xml.find(f"{{{NS_JINGLE}}}jingle").get("action") == "session-initiate",
            "session-initiate", timeout=15)
        iq.reply(clear=True).send()
        jingle = iq.xml.find(f"{{{NS_JINGLE}}}jingle")
        # aiortc answers an actpass offer as active; told the bridge is active, it takes passive.
        bridge_setup = "active" if self.setup == "passive" else None
        offer = offer_to_sdp(jingle, setup=bridge_setup)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for t in self.pc.getTransceivers():
            t.sender.replaceTrack(Tone() if t.kind == "audio" else VideoStreamTrack())
            t.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        assert f"a=setup:{self.setup}" in self.pc.localDescription.sdp
        accept = answer_to_accept(
            self.pc.localDescription.sdp, jingle.get("sid"), str(self.client.boundjid),
            self.nick, self.occupant,
            # Loopback only: the bridge is on 127.0.0.1 and tests send nowhere else.
            keep_candidate=lambda c: c["ip"] == "127.0.0.1" and c["protocol"] == "udp")
        r = await self.client.iq(str(iq["from"]), "set", accept)
        assert r["type"] == "result", f"session-accept refused: {r}"

    async def frames(self, kind: str, count: int, timeout: float = 20.0) -> list:
        # The offer's contents made the tracks (setRemoteDescription); media fills them.
        assert kind in self.remote, f"{self.nick}: no remote {kind} track"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        track, got = self.remote[kind], []
        while len(got) < count:
            try:
                got.append(await asyncio.wait_for(track.recv(), deadline - loop.time()))
            except (asyncio.TimeoutError, MediaStreamError):
                raise AssertionError(f"{self.nick}: {len(got)} of {count} {kind} frames decoded")
        return got


@pytest.mark.parametrize("setup", ["active", "passive"])
@xmpp_test(timeout=90)
async def test_two_aiortc_participants_see_and_hear_each_other(h, srv, setup):
    """``setup`` is the DTLS role the participants answer with: passive makes the
    bridge the DTLS client."""
    room = unique_room("aiortc")
    people = [Participant(await h.anon(f"p{i}"), room, setup) for i in range(2)]
    try:
        for p in people:
            await p.join()
        await asyncio.gather(*(p.answer() for p in people))
        for p in people:
            video = await p.frames("video", 30)
            # Forwarded as sent: VideoStreamTrack's 640x480 frames, decoded by libvpx.
            assert (video[-1].width, video[-1].height) == (640, 480)
            audio = await p.frames("audio", 50)
            # The tone, not silence: Opus decoded it to something loud.
            loud = max(max(abs(s) for s in array("h", bytes(f.planes[0]))) for f in audio[-10:])
            assert loud > 1000, f"{p.nick} heard silence (peak {loud})"
    finally:
        await asyncio.gather(*(p.pc.close() for p in people))
