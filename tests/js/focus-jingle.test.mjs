// The focus's Jingle with plain XMPP clients (jitsi-protocol.md §3): it asks each newcomer's client
// what it can do (disco#info) before inviting it; a client listing json-encoded-sources gets its
// sources as one <json-message>, another as <source> elements; start-muted from the conference
// request reaches the later joiner; accepted sources reach the other in that client's encoding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, FOCUS_COMPONENT, MUC } from './server.mjs';
import { wsConnect, joinRoom, uniqueRoom, roomJid, xml, NS } from './xmpp.mjs';

const ref = useServer({ before, after });

const JINGLE = 'urn:xmpp:jingle:1';
const RTP = 'urn:xmpp:jingle:apps:rtp:1';
const SSMA = 'urn:xmpp:jingle:apps:rtp:ssma:0';
const JITMEET = 'http://jitsi.org/jitmeet';
const JSON_SOURCES = 'http://jitsi.org/json-encoded-sources';
const AV = ['urn:xmpp:jingle:apps:rtp:audio', 'urn:xmpp:jingle:apps:rtp:video', 'urn:xmpp:jingle:1'];

const jingleOf = (iq) => iq.getChild('jingle', JINGLE);
const isJingle = (action) => (s) => s.is('iq') && s.attrs.type === 'set' && jingleOf(s)?.attrs.action === action;

/** Waits for a Jingle `action` from the focus (acknowledged by the client's Jingle handler). */
async function receive(c, action, since = 0) {
  const iq = await c.inbox.waitFor(isJingle(action), { timeout: 8000, desc: action, since });
  return jingleOf(iq);
}

/** SSRCs signalled as <source> elements anywhere under the Jingle element. */
function standardSsrcs(jingle) {
  const out = [];
  for (const content of jingle.getChildren('content')) {
    for (const s of content.getChild('description', RTP)?.getChildren('source', SSMA) ?? []) out.push(Number(s.attrs.ssrc));
  }
  return out;
}

function accept(c, sid, audio, video) {
  const fp = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase()).join(':');
  const transport = () =>
    xml(
      'transport',
      { xmlns: 'urn:xmpp:jingle:transports:ice-udp:1', ufrag: 'cu01', pwd: 'clientpasswordclientpass' },
      xml('fingerprint', { xmlns: 'urn:xmpp:jingle:apps:dtls:0', hash: 'sha-256', setup: 'active' }, fp),
    );
  const content = (media, ssrc) =>
    xml(
      'content',
      { creator: 'initiator', name: media, senders: 'both' },
      xml('description', { xmlns: RTP, media }, xml('source', { xmlns: SSMA, ssrc: String(ssrc) }, xml('parameter', { name: 'msid', value: `s-${ssrc} t-${ssrc}` }))),
      transport(),
    );
  return c.iq(
    xml('iq', { type: 'set', to: c.focus }, xml('jingle', { xmlns: JINGLE, action: 'session-accept', sid, responder: c.jid }, content('audio', audio), content('video', video))),
    8000,
  );
}

test('disco#info decides the encoding; start-muted reaches the second joiner; sources cross both ways', ref.wrap(async () => {
  const room = uniqueRoom('jingle');
  const a = await wsConnect(ref.server, { label: 'json-client', features: [...AV, JSON_SOURCES] });
  const b = await wsConnect(ref.server, { label: 'plain-client', features: AV });
  // Acknowledge the focus's Jingle as a client does (xmpp.js refuses unhandled IQs).
  for (const c of [a, b]) c.xmpp.iqCallee.set(JINGLE, 'jingle', () => true);
  try {
    for (const c of [a, b]) {
      const res = await c.iq(
        xml('iq', { type: 'set', to: FOCUS_COMPONENT }, xml('conference', { xmlns: NS.FOCUS, room: `${room}@${MUC}` }, xml('property', { name: 'startVideoMuted', value: '1' }))),
        8000,
      );
      assert.equal(res.getChild('conference', NS.FOCUS)?.attrs.ready, 'true', `${res}`);
      c.focus = `${roomJid(room)}/focus`;
    }
    const aSince = a.inbox.mark;
    await joinRoom(a, room, 'aaaa0001');
    const disco = await a.inbox.waitFor((s) => s.is('iq') && s.attrs.type === 'get' && s.getChild('query', NS.DISCO_INFO), { desc: 'disco#info from the focus', since: aSince });
    assert.equal(disco.attrs.from, a.focus, `the focus asks from its seat in the room: ${disco}`);
    await joinRoom(b, room, 'bbbb0002');

    const [ja, jb] = await Promise.all([receive(a, 'session-initiate', aSince), receive(b, 'session-initiate')]);
    const json = ja.getChild('json-message', JITMEET);
    assert.ok(json, `json-encoded-sources client gets a <json-message>: ${ja}`);
    assert.ok(JSON.parse(json.text()).sources.jvb, `the bridge's sources in it: ${json.text()}`);
    assert.deepEqual(standardSsrcs(ja), [], `and no <source> elements: ${ja}`);
    assert.equal(jb.getChild('json-message', JITMEET), undefined, `plain client gets no JSON: ${jb}`);
    assert.equal(standardSsrcs(jb).length, 2, `plain client gets the bridge's audio and video <source>s: ${jb}`);
    assert.equal(ja.getChild('startmuted', 'http://jitsi.org/jitmeet/start-muted'), undefined, `the first joins unmuted: ${ja}`);
    const muted = jb.getChild('startmuted', 'http://jitsi.org/jitmeet/start-muted');
    assert.equal(muted?.attrs.video, 'true', `startVideoMuted=1 mutes the second's video: ${jb}`);
    assert.equal(muted?.attrs.audio, 'false', `and leaves its audio: ${jb}`);

    // Each learns the other's sources once both sessions are accepted, in its own encoding.
    const [aMark, bMark] = [a.inbox.mark, b.inbox.mark];
    await accept(a, ja.attrs.sid, 1001, 1002);
    await accept(b, jb.attrs.sid, 2001, 2002);
    const addToB = await receive(b, 'source-add', bMark);
    assert.deepEqual(standardSsrcs(addToB).sort(), [1001, 1002], `a's sources reach b as <source>s: ${addToB}`);
    const addToA = await receive(a, 'source-add', aMark);
    const sources = JSON.parse(addToA.getChild('json-message', JITMEET)?.text() ?? '{}').sources ?? {};
    assert.deepEqual(Object.keys(sources), ['bbbb0002'], `owned by b: ${addToA}`);
    const ssrcs = Object.values(sources).flatMap(([video, , audio]) => [...video, ...audio].map((s) => s.s));
    assert.deepEqual(ssrcs.sort(), [2001, 2002], `b's sources reach a as JSON: ${addToA}`);
  } finally {
    await a.close();
    await b.close();
  }
}));
