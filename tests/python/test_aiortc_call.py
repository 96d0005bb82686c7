"""A call between two participants whose WebRTC stack is aiortc (Python: aioice, OpenSSL
DTLS, libsrtp, libvpx/libopus via PyAV), a stack the bridge is not built on, signalled over
slixmpp as a Jitsi client signals: conference request, MUC join, Jingle offer from the
focus answered through SDP. Each decodes the other's video and audio.
"""

from __future__ import annotations

import asyncio
import math
from array import array

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import AudioFrame
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from helpers import MUC, Inbox, endpoint_nick, join, unique_room, xmpp_test
from jingle_sdp import NS_JINGLE, RemoteSource, answer_to_accept, offer_to_sdp, sources_of

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
    """One aiortc peer connection signalled through the focus. Other participants'
    sources get m-lines of their own (renegotiated locally on source-add and
    source-remove, as lib-jitsi-meet does), so each arrives on its own track."""

    def __init__(self, client, room: str, setup: str = "active"):
        self.client = client
        # The DTLS role the answer takes: active (as browsers do) or passive.
        self.setup = setup
        self.room = room
        self.nick = endpoint_nick(client)
        self.occupant = f"{room}@{MUC}/{self.nick}"
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.initiate = None
        self.sources: list[RemoteSource] = []
        self.lock = asyncio.Lock()
        self.renegotiated = asyncio.Event()
        self.jingle = Inbox(f"{self.nick} jingle")
        client.register_handler(Callback(
            "jingle", MatchXPath(f"{{jabber:client}}iq/{{{NS_JINGLE}}}jingle"), self._on_jingle))

    def _on_jingle(self, iq) -> None:
        if iq["type"] != "set":
            return
        self.jingle.put(iq)
        jingle = iq.xml.find(f"{{{NS_JINGLE}}}jingle")
        action = jingle.get("action")
        if action == "session-initiate":
            return
        iq.reply(clear=True).send()
        if action in ("source-add", "source-remove"):
            asyncio.ensure_future(self._sources_changed(sources_of(jingle), action == "source-add"))

    async def _sources_changed(self, changed: list[RemoteSource], added: bool) -> None:
        async with self.lock:
            for c in changed:
                have = next((s for s in self.sources if (s.owner, s.kind) == (c.owner, c.kind)), None)
                if added and have is None:
                    self.sources.append(c)
                elif added:
                    have.ssrcs, have.groups = c.ssrcs, c.groups
                elif have is not None:
                    have.ssrcs, have.groups = [], []
            # Before the offer is answered, the change waits for it (see answer()).
            if self.initiate is not None:
                await self._negotiate()

    async def _negotiate(self) -> None:
        # aiortc answers an actpass offer as active; told the bridge is active, it takes passive.
        bridge_setup = "active" if self.setup == "passive" else None
        offer = offer_to_sdp(self.initiate, setup=bridge_setup, remote=self.sources)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for t in self.pc.getTransceivers():
            if t.mid in ("audio", "video") and t.sender.track is None:
                t.sender.replaceTrack(Tone() if t.kind == "audio" else VideoStreamTrack())
                t.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.renegotiated.set()

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
        async with self.lock:
            self.initiate = jingle
            # Those already there are added once connected, as a source-add would:
            # aiortc leaves the streams of extra m-lines in a first offer unrouted.
            already_there = self.sources + sources_of(jingle)
            self.sources = []
            await self._negotiate()
            assert f"a=setup:{self.setup}" in self.pc.localDescription.sdp
            accept = answer_to_accept(
                self.pc.localDescription.sdp, jingle.get("sid"), str(self.client.boundjid),
                self.nick, self.occupant,
                # Loopback only: the bridge is on 127.0.0.1 and tests send nowhere else.
                keep_candidate=lambda c: c["ip"] == "127.0.0.1" and c["protocol"] == "udp")
        r = await self.client.iq(str(iq["from"]), "set", accept)
        assert r["type"] == "result", f"session-accept refused: {r}"
        if already_there:
            await self._sources_changed(already_there, added=True)

    def track_of(self, owner: str, kind: str):
        """The track carrying ``owner``'s source of ``kind``, once signalled."""
        for i, s in enumerate(self.sources):
            if (s.owner, s.kind) == (owner, kind):
                for t in self.pc.getTransceivers():
                    if t.mid == f"r{i}":
                        return t.receiver.track
        return None

    async def frames(self, owner: str, kind: str, count: int, timeout: float = 20.0) -> list:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # A source-add may still be on its way.
        while (track := self.track_of(owner, kind)) is None:
            self.renegotiated.clear()
            try:
                await asyncio.wait_for(self.renegotiated.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.nick}: no {kind} source of {owner} signalled")
        got = []
        while len(got) < count:
            try:
                got.append(await asyncio.wait_for(track.recv(), deadline - loop.time()))
            except (asyncio.TimeoutError, MediaStreamError):
                raise AssertionError(f"{self.nick}: {len(got)} of {count} {kind} frames from {owner}")
        return got


def loudest(frames) -> int:
    return max(max(abs(s) for s in array("h", bytes(f.planes[0]))) for f in frames)


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
        a, b = people
        for me, other in ((a, b), (b, a)):
            video = await me.frames(other.nick, "video", 30)
            # Forwarded as sent: VideoStreamTrack's 640x480 frames, decoded by libvpx.
            assert (video[-1].width, video[-1].height) == (640, 480)
            audio = await me.frames(other.nick, "audio", 50)
            # The tone, not silence: Opus decoded it to something loud.
            assert loudest(audio[-10:]) > 1000, f"{me.nick} heard silence from {other.nick}"
        # aiortc lists AES-256-GCM first. As DTLS server the bridge picks as Videobridge
        # does; as client it offers only Videobridge's two, so aiortc's pick is the same.
        for p in people:
            dtls = p.pc.getTransceivers()[0].sender.transport
            assert dtls._ssl.get_selected_srtp_profile() == b"SRTP_AEAD_AES_128_GCM"
    finally:
        await asyncio.gather(*(p.pc.close() for p in people))



@xmpp_test(timeout=120)
async def test_three_aiortc_participants_each_get_both_others_and_a_leave_is_seen(h, srv):
    room = unique_room("aiortc3")
    a, b = [Participant(await h.anon(f"p{i}"), room) for i in range(2)]
    c = None
    try:
        for p in (a, b):
            await p.join()
        await asyncio.gather(a.answer(), b.answer())
        # A late joiner: the two already there come in its offer, it comes to them in source-add.
        c = Participant(await h.anon("p2"), room)
        await c.join()
        await c.answer()
        people = (a, b, c)
        for me in people:
            for other in people:
                if other is me:
                    continue
                video = await me.frames(other.nick, "video", 15)
                assert (video[-1].width, video[-1].height) == (640, 480)
                audio = await me.frames(other.nick, "audio", 25)
                assert loudest(audio[-10:]) > 1000, f"{me.nick} heard silence from {other.nick}"
        # c leaves: a and b see it go (its unavailable presence is the signal, as with
        # Jicofo: no source-remove) and keep talking.
        await c.pc.close()
        await c.client.stop()
        for me in (a, b):
            await me.client.presences.expect(
                lambda p: str(p["from"]) == c.occupant and p.xml.get("type") == "unavailable",
                f"unavailable presence of {c.nick}", timeout=15)
        other = {a: b, b: a}
        for me in (a, b):
            await me.frames(other[me].nick, "video", 15)
    finally:
        await asyncio.gather(*(p.pc.close() for p in (a, b, c) if p is not None))
