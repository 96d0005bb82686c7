// Logging in: SASL ANONYMOUS over WebSocket (xmpp.js) and BOSH (strophe.js), PLAIN for the
// configured focus account, and the small HTTP surface around the transports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as WsWebSocket } from 'ws';
import { useServer, FOCUS_PASSWORD, DOMAIN } from './server.mjs';
import { wsConnect, stropheConnect, xml, NS, UUID_LIKE, bare } from './xmpp.mjs';

const ref = useServer({ before, after });

function assertAnonymousJid(jid) {
  const [local, rest] = String(jid).split('@');
  const [domain, resource] = rest.split('/');
  assert.equal(domain, DOMAIN, `anonymous JID ${jid} must be on ${DOMAIN}`);
  assert.match(local, UUID_LIKE, `anonymous local part of ${jid} must look like a UUID`);
  assert.ok(resource, `bound JID ${jid} must have a resource`);
}

test('health endpoint answers 200', ref.wrap(async () => {
  const r = await fetch(`${ref.server.http}/about/health`);
  assert.equal(r.status, 200);
}));

test('plain HTTP GET on the WebSocket path answers 2xx (client keep-alive)', ref.wrap(async () => {
  const r = await fetch(ref.server.ws.replace(/^ws/, 'http') + '?room=r1');
  assert.ok(r.status >= 200 && r.status < 300, `GET /xmpp-websocket answered ${r.status}`);
}));

// Raw `ws` probe: no XMPP library exposes the negotiated sub-protocol.
test('WebSocket handshake echoes the xmpp sub-protocol', ref.wrap(async () => {
  const ws = new WsWebSocket(ref.server.ws, ['xmpp']);
  const proto = await new Promise((resolve, reject) => {
    ws.on('open', () => resolve(ws.protocol));
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  ws.terminate();
  assert.equal(proto, 'xmpp');
}));

test('anonymous login over WebSocket (xmpp.js) gets a UUID-like JID on localhost; ping and disco work', ref.wrap(async () => {
  const c = await wsConnect(ref.server, { room: 'r1' });
  try {
    assertAnonymousJid(c.jid);
    // <open/> carries the framing namespace and version 1.0
    const open = c.rawIn.find((d) => d.startsWith('<open'));
    assert.ok(open, 'server sent an <open/> frame');
    assert.match(open, /urn:ietf:params:xml:ns:xmpp-framing/);
    assert.match(open, /version=["']1\.0["']/);
    const pong = await c.iq(xml('iq', { type: 'get', to: DOMAIN }, xml('ping', { xmlns: NS.PING })));
    assert.equal(pong.attrs.type, 'result');
    // c.iq resolves with the whole <iq type='result'>; the features are in its <query/>.
    const info = await c.iq(xml('iq', { type: 'get', to: DOMAIN }, xml('query', { xmlns: NS.DISCO_INFO })));
    assert.equal(info.attrs.from, DOMAIN, 'IQ answer must come from the JID it was sent to');
    const query = info.getChild('query', NS.DISCO_INFO);
    assert.ok(query, `disco#info result carries a <query/>: ${info}`);
    const features = query.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(NS.PING), `disco#info of ${DOMAIN} lists urn:xmpp:ping (got ${features})`);
  } finally {
    await c.close();
  }
}));

test('two anonymous logins get different JIDs', ref.wrap(async () => {
  const a = await wsConnect(ref.server);
  const b = await wsConnect(ref.server);
  try {
    assert.notEqual(bare(a.jid), bare(b.jid));
  } finally {
    await a.close();
    await b.close();
  }
}));

test('anonymous login over BOSH (strophe.js) and a ping round trip', ref.wrap(async () => {
  const c = await stropheConnect(ref.server, { room: 'r1' });
  try {
    assertAnonymousJid(c.jid);
    const pong = await c.iq(xml('iq', { type: 'get', to: DOMAIN }, xml('ping', { xmlns: NS.PING })));
    assert.equal(pong.attrs.type, 'result');
    assert.equal(pong.attrs.from, DOMAIN, 'IQ answer must come from the JID it was sent to');
  } finally {
    await c.close();
  }
}));

test('anonymous login over WebSocket with strophe.js (the library Jitsi uses)', ref.wrap(async () => {
  const c = await stropheConnect(ref.server, { url: ref.server.ws, room: 'r1' });
  try {
    assertAnonymousJid(c.jid);
    const pong = await c.iq(xml('iq', { type: 'get', to: DOMAIN }, xml('ping', { xmlns: NS.PING })));
    assert.equal(pong.attrs.type, 'result');
  } finally {
    await c.close();
  }
}));

test('SASL PLAIN for the configured focus account (xmpp.js over WebSocket)', ref.wrap(async () => {
  const c = await wsConnect(ref.server, { username: 'focus', password: FOCUS_PASSWORD });
  try {
    assert.equal(bare(c.jid), 'focus@auth.localhost');
  } finally {
    await c.close();
  }
}));

test('SASL PLAIN for the focus account over BOSH (strophe.js)', ref.wrap(async () => {
  const c = await stropheConnect(ref.server, { jid: 'focus@auth.localhost', password: FOCUS_PASSWORD });
  try {
    assert.equal(bare(c.jid), 'focus@auth.localhost');
  } finally {
    await c.close();
  }
}));

test('SASL PLAIN with a wrong password fails with not-authorized', ref.wrap(async () => {
  let err = null;
  try {
    const c = await wsConnect(ref.server, { username: 'focus', password: 'wrong' });
    await c.close();
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'login with a wrong password must fail');
  assert.match(`${err.condition ?? ''} ${err.message}`, /not-authorized/);
}));

test('SASL failure over BOSH is reported to strophe as AUTHFAIL', ref.wrap(async () => {
  const c = await stropheConnect(ref.server, { jid: 'focus@auth.localhost', password: 'wrong', expectFailure: true });
  assert.equal(c.connected, false);
  assert.ok(c.statuses.some((s) => s.startsWith('AUTHFAIL')), `statuses: ${c.statuses}`);
}));
