// The conference request (jitsi-protocol.md §2.1) to focus.localhost. The focus is not built
// yet: the server must route the IQ and answer it with an IQ error (service-unavailable) from
// exactly focus.localhost, so that Strophe matches the answer instead of timing out.
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
  let res = null;
  let err = null;
  try {
    res = await c.iq(conferenceIq('r1'), 8000);
  } catch (e) {
    err = e;
  }
  if (res) {
    // A future focus may answer with a result; today an error is expected, both are "answered".
    assert.equal(res.attrs.from, FOCUS_COMPONENT, `${what}: answer from ${FOCUS_COMPONENT}`);
    return res;
  }
  assert.ok(err, `${what}: no answer`);
  assert.doesNotMatch(String(err.message), /timeout|timed out/i, `${what}: the conference IQ timed out instead of being answered`);
  // xmpp.js: StanzaError with .element; strophe wrapper: .stanza
  const stanza = err.element?.parent ?? err.stanza ?? null;
  const errorEl = err.element ?? stanza?.getChild('error');
  const condition = err.condition ?? errorEl?.getChildElements()[0]?.name;
  assert.equal(condition, 'service-unavailable', `${what}: ${err.message}`);
  if (stanza) assert.equal(stanza.attrs.from, FOCUS_COMPONENT, `${what}: error comes from ${FOCUS_COMPONENT}: ${stanza}`);
  return err;
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

test('/metrics is Prometheus text and the server keeps serving after focus requests', ref.wrap(async () => {
  const r = await fetch(`${ref.server.http}/metrics`);
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.match(text, /^# (HELP|TYPE) /m, 'Prometheus exposition format');
  const c = await wsConnect(ref.server);
  await c.close();
}));
