// The conference request (jitsi-protocol.md §2.1) to focus.localhost, answered by the in-process
// focus: a result from exactly focus.localhost with ready="true" and the focus's JID, once the focus
// sits in the room; a room of another service is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, FOCUS_COMPONENT, MUC } from './server.mjs';
import { wsConnect, stropheConnect, xml, NS } from './xmpp.mjs';

const ref = useServer({ before, after });

function conferenceIq(room) {
  return xml(
    'iq',
    { type: 'set', to: FOCUS_COMPONENT },
    xml(
      'conference',
      { xmlns: NS.FOCUS, room: `${room}@${MUC}`, 'machine-uid': '0d0f3b5c2d7e4a1b9f00aa11bb22cc33' },
      xml('property', { name: 'disableRtx', value: 'false' }),
      xml('property', { name: 'startBitrate', value: '800' }),
    ),
  );
}

async function expectFocusAnswer(c, what) {
  const res = await c.iq(conferenceIq('r1'), 8000);
  assert.equal(res.attrs.from, FOCUS_COMPONENT, `${what}: answer from ${FOCUS_COMPONENT}`);
  const conference = res.getChild('conference', NS.FOCUS);
  assert.ok(conference, `${what}: <conference> in ${res}`);
  assert.equal(conference.attrs.ready, 'true', `${what}: ${res}`);
  assert.equal(conference.attrs.room, `r1@${MUC}`, `${what}: ${res}`);
  assert.match(conference.attrs.focusjid, /^focus@auth\./, `${what}: the focus's JID, which V21 needs to recognise it: ${res}`);
  return res;
}

test('conference IQ over WebSocket (xmpp.js) is answered by focus.localhost', ref.wrap(async () => {
  const c = await wsConnect(ref.server, { room: 'r1' });
  try {
    const before = c.rawIn.length;
    await expectFocusAnswer(c, 'xmpp.js/ws');
    const answer = c.rawIn.slice(before).find((d) => d.startsWith('<iq'));
    assert.match(answer, new RegExp(`from=["']${FOCUS_COMPONENT.replace('.', '\\.')}["']`), `raw answer: ${answer}`);
  } finally {
    await c.close();
  }
}));

test('conference IQ over BOSH (strophe.js) is answered by focus.localhost', ref.wrap(async () => {
  const c = await stropheConnect(ref.server, { room: 'r1' });
  try {
    await expectFocusAnswer(c, 'strophe/bosh');
  } finally {
    await c.close();
  }
}));

test('a conference request for a room elsewhere is refused with bad-request', ref.wrap(async () => {
  const c = await wsConnect(ref.server);
  try {
    const iq = xml('iq', { type: 'set', to: FOCUS_COMPONENT },
      xml('conference', { xmlns: NS.FOCUS, room: 'r1@conference.elsewhere.example' }));
    await assert.rejects(c.iq(iq, 8000), (e) => (e.condition ?? '') === 'bad-request');
  } finally {
    await c.close();
  }
}));

test('/metrics is Prometheus text and the server keeps serving after focus requests', ref.wrap(async () => {
  const r = await fetch(`${ref.server.http}/metrics`);
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.match(text, /^# (HELP|TYPE) /m, 'Prometheus exposition format');
  const c = await wsConnect(ref.server);
  await c.close();
}));
