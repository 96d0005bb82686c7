// Bad input over BOSH and WebSocket while well-behaved clients stay connected.
// The probes use raw `fetch` / `ws`: no XMPP library can be made to send a wrong rid, an
// unknown sid or broken XML. The bystanders are real libraries (strophe.js over BOSH, xmpp.js
// over WebSocket) and must not notice anything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as WsWebSocket } from 'ws';
import { useServer, DOMAIN } from './server.mjs';
import { wsConnect, stropheConnect, withTimeout, xml, NS, sleep } from './xmpp.mjs';
import parseXml from '@xmpp/xml/lib/parse.js';

// Two well-behaved clients that stay connected through every probe of this file.
let bystanderBosh;
let bystanderWs;

const ref = useServer(
  { before, after },
  {
    async setup(server) {
      bystanderBosh = await stropheConnect(server, { label: 'bystander(bosh)' });
      bystanderWs = await wsConnect(server, { label: 'bystander(ws)' });
    },
    async teardown() {
      await bystanderBosh?.close();
      await bystanderWs?.close();
    },
  },
);

const BOSH_CT = 'text/xml; charset=utf-8';

async function post(body, { timeout = 15_000, headers = {} } = {}) {
  const started = Date.now();
  const r = await fetch(ref.server.bosh, {
    method: 'POST',
    headers: { 'Content-Type': BOSH_CT, ...headers },
    body,
    signal: AbortSignal.timeout(timeout),
  });
  const text = await r.text();
  let el = null;
  try {
    el = parseXml(text);
  } catch {}
  return { status: r.status, text, el, headers: r.headers, ms: Date.now() - started };
}

const bodyAttrs = (attrs) =>
  Object.entries(attrs)
    .map(([k, v]) => `${k}='${v}'`)
    .join(' ');

/** A raw BOSH session (XEP-0124/0206) driven by hand. */
class RawBosh {
  constructor() {
    this.rid = 1_000_000 + Math.floor(Math.random() * 1_000_000);
    this.sid = null;
  }
  async create({ wait = 10, hold = 1 } = {}) {
    const res = await post(
      `<body ${bodyAttrs({ content: BOSH_CT, hold, rid: this.rid, to: DOMAIN, ver: '1.6', wait, 'xml:lang': 'en', 'xmpp:version': '1.0', xmlns: NS.BOSH, 'xmlns:xmpp': 'urn:xmpp:xbosh' })}/>`,
    );
    assert.equal(res.status, 200, `session creation: HTTP ${res.status} ${res.text}`);
    this.sid = res.el?.attrs.sid;
    assert.ok(this.sid, `session creation response has a sid: ${res.text}`);
    this.created = res;
    return res;
  }
  next(payload = '', extra = {}) {
    this.rid += 1;
    return this.send(this.rid, payload, extra);
  }
  send(rid, payload = '', extra = {}, sid = this.sid) {
    return post(`<body ${bodyAttrs({ rid, sid, xmlns: NS.BOSH, ...extra })}>${payload}</body>`);
  }
  /** SASL ANONYMOUS + restart + bind; returns the bound JID. */
  async login() {
    if (!this.created.text.includes('ANONYMOUS')) {
      // features may come in a separate response
      const r = await this.next();
      assert.match(r.text, /ANONYMOUS/);
    }
    const auth = await this.next(`<auth xmlns='${NS.SASL}' mechanism='ANONYMOUS'/>`);
    assert.match(auth.text, /<success/, `SASL: ${auth.text}`);
    const restart = await this.next('', { 'xmpp:restart': 'true', 'xmlns:xmpp': 'urn:xmpp:xbosh', to: DOMAIN });
    assert.match(restart.text, /bind/, `restart: ${restart.text}`);
    const bind = await this.next(`<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    const jid = /<jid>([^<]+)<\/jid>/.exec(bind.text)?.[1];
    assert.ok(jid, `bind: ${bind.text}`);
    this.jid = jid;
    return jid;
  }
  ping(id) {
    return this.next(`<iq type='get' id='${id}' to='${DOMAIN}' xmlns='jabber:client'><ping xmlns='${NS.PING}'/></iq>`);
  }
}

/** BOSH error per XEP-0124: HTTP 404/400, or a terminate body with the given condition. */
function assertBoshRejected(res, condition, what) {
  if (res.status === 404 || res.status === 400) return;
  assert.equal(res.status, 200, `${what}: HTTP ${res.status} ${res.text}`);
  assert.equal(res.el?.attrs.type, 'terminate', `${what}: expected a terminate body, got ${res.text}`);
  assert.equal(res.el?.attrs.condition, condition, `${what}: terminate condition in ${res.text}`);
}

async function assertBystandersFine() {
  const p1 = await bystanderBosh.iq(xml('iq', { type: 'get', to: DOMAIN }, xml('ping', { xmlns: NS.PING })));
  assert.equal(p1.attrs.type, 'result');
  const p2 = await bystanderWs.iq(xml('iq', { type: 'get', to: DOMAIN }, xml('ping', { xmlns: NS.PING })));
  assert.equal(p2.attrs.type, 'result');
  const body = `still here ${Date.now()}`;
  const since = bystanderBosh.inbox.mark;
  await bystanderWs.send(xml('message', { to: bystanderBosh.jid, type: 'chat' }, xml('body', {}, body)));
  await bystanderBosh.inbox.waitFor((m) => m.is('message') && m.getChildText('body') === body, { desc: 'WS→BOSH message', since });
  assert.ok(bystanderBosh.conn.connected, 'strophe BOSH client still connected');
}

test('session creation answers sid, wait, hold and requests >= 2', ref.wrap(async () => {
  const s = new RawBosh();
  const res = await s.create({ wait: 10, hold: 1 });
  const a = res.el.attrs;
  assert.ok(Number(a.requests) >= 2, `requests=${a.requests} (lib-jitsi-meet needs 2 concurrent requests)`);
  assert.ok(Number(a.wait) > 0 && Number(a.wait) <= 10, `wait=${a.wait}`);
  assert.ok(a.hold !== undefined, `hold in ${res.text}`);
  await s.login();
}));

test('two concurrent requests: a held poll is released when the next request arrives', ref.wrap(async () => {
  const s = new RawBosh();
  await s.create({ wait: 10, hold: 1 });
  await s.login();
  const poll = s.next(); // empty: held by the server for up to `wait`
  await sleep(200);
  const ping = s.ping('conc1');
  const [r1, r2] = await Promise.all([poll, ping]);
  assert.equal(r1.status, 200, r1.text);
  assert.equal(r2.status, 200, r2.text);
  assert.ok(r1.ms < 5000, `held request answered after ${r1.ms} ms; with hold=1 it must be released by the second request`);
  assert.ok(`${r1.text}${r2.text}`.includes("id='conc1'") || `${r1.text}${r2.text}`.includes('id="conc1"'), `ping result in one of the responses: ${r1.text} | ${r2.text}`);
}));

test('unknown sid is rejected (item-not-found or HTTP 404/400)', ref.wrap(async () => {
  const res = await post(`<body rid='12345' sid='no-such-sid-${Date.now()}' xmlns='${NS.BOSH}'/>`);
  assertBoshRejected(res, 'item-not-found', 'unknown sid');
  await assertBystandersFine();
}));

test('rid far beyond the window is rejected', ref.wrap(async () => {
  const s = new RawBosh();
  await s.create();
  await s.login();
  const res = await s.send(s.rid + 1000, `<iq type='get' id='far' to='${DOMAIN}' xmlns='jabber:client'><ping xmlns='${NS.PING}'/></iq>`);
  assertBoshRejected(res, 'item-not-found', 'rid + 1000');
  await assertBystandersFine();
}));

test('a replayed rid outside the window is rejected', ref.wrap(async () => {
  const s = new RawBosh();
  await s.create();
  await s.login();
  const old = s.rid - 2; // the SASL request
  for (let i = 0; i < 4; i++) {
    const r = await s.ping(`p${i}`);
    assert.match(r.text, /type=['"]result['"]/, `ping ${i}: ${r.text}`);
  }
  const res = await s.send(old, `<iq type='get' id='replay' to='${DOMAIN}' xmlns='jabber:client'><ping xmlns='${NS.PING}'/></iq>`);
  assertBoshRejected(res, 'item-not-found', `replayed rid ${old} (current ${s.rid})`);
  await assertBystandersFine();
}));

test('malformed XML body is rejected with 400 or a terminate', ref.wrap(async () => {
  const res = await post('<body xmlns="http://jabber.org/protocol/httpbind" rid="1"><unclosed>');
  if (res.status === 200) {
    assert.equal(res.el?.attrs.type, 'terminate', `malformed body: ${res.text}`);
  } else {
    assert.ok(res.status >= 400 && res.status < 500, `malformed body: HTTP ${res.status}`);
  }
  const res2 = await post('this is not xml at all');
  assert.ok(res2.status >= 400 || res2.el?.attrs.type === 'terminate', `garbage body: HTTP ${res2.status} ${res2.text}`);
  await assertBystandersFine();
}));

test('an oversized BOSH body (2 MB) is refused and does not hurt others', ref.wrap(async () => {
  const s = new RawBosh();
  await s.create();
  await s.login();
  const big = 'x'.repeat(2 * 1024 * 1024);
  let res = null;
  try {
    res = await s.next(`<message to='${DOMAIN}' xmlns='jabber:client'><body>${big}</body></message>`);
  } catch {
    res = null; // connection cut: acceptable
  }
  if (res) {
    assert.ok(res.status >= 400 || res.el?.attrs.type === 'terminate', `2 MB body accepted: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  }
  await assertBystandersFine();
}));

test('CORS: OPTIONS preflight and POST carry Access-Control headers', ref.wrap(async () => {
  const origin = 'http://meet.example.org';
  const pre = await fetch(ref.server.bosh, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  assert.ok(pre.status >= 200 && pre.status < 300, `OPTIONS answered ${pre.status}`);
  const allowOrigin = pre.headers.get('access-control-allow-origin');
  assert.ok(allowOrigin === '*' || allowOrigin === origin, `preflight Access-Control-Allow-Origin: ${allowOrigin}`);
  const methods = pre.headers.get('access-control-allow-methods') ?? '';
  assert.match(methods, /POST|\*/i, `Access-Control-Allow-Methods: ${methods}`);
  const hdrs = pre.headers.get('access-control-allow-headers') ?? '';
  assert.match(hdrs, /content-type|\*/i, `Access-Control-Allow-Headers: ${hdrs}`);

  const s = new RawBosh();
  s.rid += 1;
  const res = await post(
    `<body ${bodyAttrs({ content: BOSH_CT, hold: 1, rid: s.rid, to: DOMAIN, ver: '1.6', wait: 10, xmlns: NS.BOSH, 'xmlns:xmpp': 'urn:xmpp:xbosh', 'xmpp:version': '1.0' })}/>`,
    { headers: { Origin: origin } },
  );
  assert.equal(res.status, 200);
  const ao = res.headers.get('access-control-allow-origin');
  assert.ok(ao === '*' || ao === origin, `POST Access-Control-Allow-Origin: ${ao}`);
}));

// Raw `ws`: broken XML cannot be sent through an XMPP library.
test('broken XML in a WebSocket frame ends that stream only', ref.wrap(async () => {
  const ws = new WsWebSocket(ref.server.ws, ['xmpp']);
  const frames = [];
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (d) => frames.push(String(d)));
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='${DOMAIN}' version='1.0'/>`);
  for (let i = 0; i < 50 && !frames.some((f) => f.includes('features')); i++) await sleep(50);
  assert.ok(frames.some((f) => f.startsWith('<open')), `server <open/>: ${frames}`);
  assert.ok(frames.some((f) => f.includes('features')), `stream features: ${frames}`);
  assert.ok(frames.find((f) => f.includes('features')).includes('xmlns:stream'), 'the features frame declares xmlns:stream itself');
  ws.send('<message to="x"><body>unclosed</message>');
  const code = await withTimeout(closed, 5000, 'not closed').catch(() => 'still open');
  if (code === 'still open') ws.terminate();
  assert.notEqual(code, 'still open', `server must close a stream with broken XML; frames: ${frames.join('\n')}`);
  assert.ok(frames.some((f) => f.includes('stream:error') || f.includes('<error') || f.startsWith('<close')), `a stream error or <close/> before closing: ${frames.join('\n')}`);
  await assertBystandersFine();
}));

test('WebSocket frames of a huge stanza (2 MB) end that stream, others carry on', ref.wrap(async () => {
  const c = await wsConnect(ref.server, { label: 'big-sender' });
  const closed = new Promise((r) => c.xmpp.once('disconnect', r));
  try {
    await c.send(xml('message', { to: DOMAIN }, xml('body', {}, 'x'.repeat(2 * 1024 * 1024))));
  } catch {}
  const res = await withTimeout(closed, 5000, 'not closed').then(() => 'closed', () => 'open');
  assert.equal(res, 'closed', 'a 2 MB stanza must end the session (policy-violation)');
  assert.ok(c.rawIn.some((d) => d.includes('policy-violation') || d.includes('stream:error')), `stream error sent: ${c.rawIn.slice(-3).join('\n')}`);
  await c.close();
  await assertBystandersFine();
}));
