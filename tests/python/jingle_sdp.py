"""Jingle ⇄ SDP, as lib-jitsi-meet's SDP translation does it, for the aiortc participant.

The focus offers in Jingle (XEP-0167/0176/0320/0339 plus Jitsi's BUNDLE group); an
SDP-based WebRTC stack takes that as a remote offer, and its SDP answer goes back as a
Jingle ``session-accept``. Only what a bridge call uses is translated: RTP contents
(audio, video), BUNDLE, rtcp-mux, ICE-UDP candidates, DTLS fingerprints and sources.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS_JINGLE = "urn:xmpp:jingle:1"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS = "urn:xmpp:jingle:apps:dtls:0"
NS_FB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_GROUP = "urn:xmpp:jingle:apps:grouping:0"
NS_JITMEET = "http://jitsi.org/jitmeet"


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass
class RemoteSource:
    """Another participant's audio or video source as the focus signals it."""

    # ssrc-info's owner: the endpoint ID (the occupant's nick), as current Jicofo writes it.
    owner: str
    kind: str
    ssrcs: list[str] = field(default_factory=list)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)


def sources_of(jingle: ET.Element) -> list[RemoteSource]:
    """Other participants' sources in a ``session-initiate``, ``source-add`` or
    ``source-remove`` (XEP-0339), one per owner and kind; the bridge's own (``jvb``)
    are left out."""
    out: dict[tuple[str, str], RemoteSource] = {}
    for content in jingle.findall(_q(NS_JINGLE, "content")):
        desc = content.find(_q(NS_RTP, "description"))
        if desc is None:
            continue
        kind = desc.get("media") or content.get("name")
        owner_of = {}
        for s in desc.findall(_q(NS_SSMA, "source")):
            info = s.find(_q(NS_JITMEET, "ssrc-info"))
            owner = info.get("owner") if info is not None else None
            if owner in (None, "jvb"):
                continue
            owner_of[s.get("ssrc")] = owner
            out.setdefault((owner, kind), RemoteSource(owner, kind)).ssrcs.append(s.get("ssrc"))
        for g in desc.findall(_q(NS_SSMA, "ssrc-group")):
            ssrcs = [x.get("ssrc") for x in g.findall(_q(NS_SSMA, "source"))]
            if ssrcs and ssrcs[0] in owner_of:
                out[(owner_of[ssrcs[0]], kind)].groups.append((g.get("semantics"), ssrcs))
    return list(out.values())


def offer_to_sdp(jingle: ET.Element, setup: str | None = None,
                 remote: list[RemoteSource] = ()) -> str:
    """The SDP offer for a ``session-initiate``'s RTP contents, as lib-jitsi-meet
    builds it: the bridge's contents (``setup`` replaces their DTLS role: ``active``
    makes an SDP stack answer ``passive``), then one send-only m-line per remote
    source (``mid`` ``r<index>``; inactive once its SSRCs are gone), so that the
    receiving stack tells the sources apart by SSRC."""
    contents = []
    for content in jingle.findall(_q(NS_JINGLE, "content")):
        desc = content.find(_q(NS_RTP, "description"))
        transport = content.find(_q(NS_ICE, "transport"))
        if desc is not None and transport is not None:
            contents.append((content, desc, transport))
    mids = [c.get("name") for c, _, _ in contents] + [f"r{i}" for i in range(len(remote))]
    lines = ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", f"a=group:BUNDLE {' '.join(mids)}"]
    by_kind = {d.get("media"): (d, t) for _, d, t in contents}
    for content, desc, transport in contents:
        own = [s for s in desc.findall(_q(NS_SSMA, "source"))
               if (i := s.find(_q(NS_JITMEET, "ssrc-info"))) is None or i.get("owner") == "jvb"]
        direction = "sendrecv" if content.get("senders", "both") == "both" else "recvonly"
        lines += _media_section(desc, transport, content.get("name"), direction, setup,
                                [s.get("ssrc") for s in own], [])
    for i, source in enumerate(remote):
        desc, transport = by_kind[source.kind]
        direction = "sendonly" if source.ssrcs else "inactive"
        lines += _media_section(desc, transport, f"r{i}", direction, setup, source.ssrcs, source.groups)
    return "\r\n".join(lines) + "\r\n"


def _media_section(desc: ET.Element, transport: ET.Element, mid: str, direction: str,
                   setup: str | None, ssrcs: list[str], groups: list[tuple[str, list[str]]]) -> list[str]:
    pts = desc.findall(_q(NS_RTP, "payload-type"))
    lines = [f"m={desc.get('media')} 9 UDP/TLS/RTP/SAVPF {' '.join(p.get('id') for p in pts)}",
             "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
             f"a=ice-ufrag:{transport.get('ufrag')}", f"a=ice-pwd:{transport.get('pwd')}"]
    fp = transport.find(_q(NS_DTLS, "fingerprint"))
    lines += [f"a=fingerprint:{fp.get('hash')} {fp.text.strip()}", f"a=setup:{setup or fp.get('setup')}",
              f"a=mid:{mid}", f"a={direction}", "a=rtcp-mux"]
    for p in pts:
        channels = f"/{p.get('channels')}" if p.get("channels") else ""
        lines.append(f"a=rtpmap:{p.get('id')} {p.get('name')}/{p.get('clockrate')}{channels}")
        params = [f"{x.get('name')}={x.get('value')}" for x in p.findall(_q(NS_RTP, "parameter"))]
        if params:
            lines.append(f"a=fmtp:{p.get('id')} {';'.join(params)}")
        for fb in p.findall(_q(NS_FB, "rtcp-fb")):
            sub = f" {fb.get('subtype')}" if fb.get("subtype") else ""
            lines.append(f"a=rtcp-fb:{p.get('id')} {fb.get('type')}{sub}")
    for ext in desc.findall(_q(NS_HDREXT, "rtp-hdrext")):
        lines.append(f"a=extmap:{ext.get('id')} {ext.get('uri')}")
    for semantics, members in groups:
        lines.append(f"a=ssrc-group:{semantics} {' '.join(members)}")
    # Primary SSRCs first: an SDP stack may take the first a=ssrc as the media one
    # (aiortc does), whatever order the sources came in.
    repairs = {m for semantics, members in groups if semantics == "FID" for m in members[1:]}
    for ssrc in sorted(ssrcs, key=lambda x: x in repairs):
        lines.append(f"a=ssrc:{ssrc} cname:{mid}")
    for c in transport.findall(_q(NS_ICE, "candidate")):
        lines.append(
            f"a=candidate:{c.get('foundation')} {c.get('component')} {c.get('protocol')} "
            f"{c.get('priority')} {c.get('ip')} {c.get('port')} typ {c.get('type')}"
        )
    lines.append("a=end-of-candidates")
    return lines


@dataclass
class Media:
    """One m-section of an SDP answer."""

    kind: str
    mid: str
    payload_types: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    fmtp: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    feedback: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    extmaps: list[tuple[str, str]] = field(default_factory=list)
    ssrcs: list[str] = field(default_factory=list)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)
    ufrag: str = ""
    pwd: str = ""
    # Every a=fingerprint, as lib-jitsi-meet copies them all (aiortc gives three hashes).
    fingerprints: list[tuple[str, str]] = field(default_factory=list)
    setup: str = "active"
    candidates: list[dict] = field(default_factory=list)


def parse_answer(sdp: str) -> list[Media]:
    medias: list[Media] = []
    session: dict[str, list[str]] = {}
    for line in sdp.splitlines():
        if line.startswith("m="):
            medias.append(Media(kind=line[2:].split()[0], mid=""))
            continue
        if not line.startswith("a="):
            continue
        key, _, value = line[2:].partition(":")
        if not medias:
            session.setdefault(key, []).append(value)
            continue
        m = medias[-1]
        if key == "mid":
            m.mid = value
        elif key == "rtpmap":
            pt, codec = value.split(" ", 1)
            name, clock, *channels = codec.split("/")
            m.payload_types.append((pt, name, clock, channels[0] if channels else None))
        elif key == "fmtp":
            pt, params = value.split(" ", 1)
            m.fmtp[pt] = [tuple(p.split("=", 1)) for p in params.split(";") if "=" in p]
        elif key == "rtcp-fb":
            pt, fb = value.split(" ", 1)
            kind, _, sub = fb.partition(" ")
            m.feedback.setdefault(pt, []).append((kind, sub or None))
        elif key == "extmap":
            ext_id, uri = value.split(" ", 1)
            m.extmaps.append((ext_id.split("/")[0], uri))
        elif key == "ssrc":
            ssrc = value.split(" ", 1)[0]
            if ssrc not in m.ssrcs:
                m.ssrcs.append(ssrc)
        elif key == "ssrc-group":
            semantics, *ssrcs = value.split()
            m.groups.append((semantics, ssrcs))
        elif key == "ice-ufrag":
            m.ufrag = value
        elif key == "ice-pwd":
            m.pwd = value
        elif key == "fingerprint":
            hash_, fp = value.split(" ", 1)
            m.fingerprints.append((hash_, fp))
        elif key == "setup":
            m.setup = value
        elif key == "candidate":
            f = value.split()
            m.candidates.append({"foundation": f[0], "component": f[1], "protocol": f[2].lower(),
                                 "priority": f[3], "ip": f[4], "port": f[5], "type": f[7]})
    for m in medias:
        m.ufrag = m.ufrag or session.get("ice-ufrag", [""])[0]
        m.pwd = m.pwd or session.get("ice-pwd", [""])[0]
        m.fingerprints = m.fingerprints or [tuple(f.split(" ", 1)) for f in session.get("fingerprint", [])]
    return medias


def answer_to_accept(sdp: str, sid: str, responder: str, endpoint: str, owner: str,
                     contents: tuple[str, ...] = ("audio", "video"),
                     keep_candidate=lambda c: True) -> str:
    """The ``<jingle action='session-accept'>`` for an SDP answer: the m-lines of the
    offer's ``contents`` (not those added for remote sources); sources are named
    ``<endpoint>-a0`` / ``-v0`` as Jitsi clients name them."""
    medias = [m for m in parse_answer(sdp) if m.mid in contents]
    jingle = ET.Element(_q(NS_JINGLE, "jingle"), action="session-accept", sid=sid, responder=responder)
    for m in medias:
        content = ET.SubElement(jingle, _q(NS_JINGLE, "content"), creator="initiator", name=m.mid,
                                senders="both")
        desc = ET.SubElement(content, _q(NS_RTP, "description"), media=m.kind)
        for pt, name, clock, channels in m.payload_types:
            attrs = {"id": pt, "name": name, "clockrate": clock}
            if channels:
                attrs["channels"] = channels
            p = ET.SubElement(desc, _q(NS_RTP, "payload-type"), attrs)
            for k, v in m.fmtp.get(pt, []):
                ET.SubElement(p, _q(NS_RTP, "parameter"), name=k.strip(), value=v.strip())
            for kind, sub in m.feedback.get(pt, []):
                fb = {"type": kind} | ({"subtype": sub} if sub else {})
                ET.SubElement(p, _q(NS_FB, "rtcp-fb"), fb)
        for ext_id, uri in m.extmaps:
            ET.SubElement(desc, _q(NS_HDREXT, "rtp-hdrext"), id=ext_id, uri=uri)
        name = f"{endpoint}-{'a' if m.kind == 'audio' else 'v'}0"
        for ssrc in m.ssrcs:
            s = ET.SubElement(desc, _q(NS_SSMA, "source"), ssrc=ssrc, name=name)
            ET.SubElement(s, _q(NS_JITMEET, "ssrc-info"), owner=owner)
        for semantics, ssrcs in m.groups:
            g = ET.SubElement(desc, _q(NS_SSMA, "ssrc-group"), semantics=semantics)
            for ssrc in ssrcs:
                ET.SubElement(g, _q(NS_SSMA, "source"), ssrc=ssrc)
        ET.SubElement(desc, _q(NS_RTP, "rtcp-mux"))
        transport = ET.SubElement(content, _q(NS_ICE, "transport"), ufrag=m.ufrag, pwd=m.pwd)
        ET.SubElement(transport, _q(NS_ICE, "rtcp-mux"))
        for hash_, value in m.fingerprints:
            fp = ET.SubElement(transport, _q(NS_DTLS, "fingerprint"), hash=hash_, setup=m.setup)
            fp.text = value
        for i, c in enumerate(x for x in m.candidates if keep_candidate(x)):
            ET.SubElement(transport, _q(NS_ICE, "candidate"), c | {"generation": "0", "network": "0",
                                                                  "id": f"c{i}"})
    group = ET.SubElement(jingle, _q(NS_GROUP, "group"), semantics="BUNDLE")
    for m in medias:
        ET.SubElement(group, _q(NS_GROUP, "content"), name=m.mid)
    return ET.tostring(jingle, encoding="unicode")
