// Client-side helpers shared by the whole-stack tests.
//
// Two independent third-party XMPP client libraries are used:
//   - xmpp.js (@xmpp/client): WebSocket, SASL ANONYMOUS/PLAIN, XEP-0198 with resumption;
//   - strophe.js: BOSH (and WebSocket), the library lib-jitsi-meet itself is built on.
// Every received stanza of either library is recorded as an ltx element (the element type of
// xmpp.js) so tests can wait for stanzas with the same predicates whatever the transport.

import { WebSocket as WsWebSocket } from 'ws';
import XHR2 from 'xhr2';
import { createHmac, createSign, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { client as xmppClient, xml } from '@xmpp/client';
import parseXml from '@xmpp/xml/lib/parse.js';
import {
  DOMAIN,
  MUC,
  FOCUS_JID,
  FOCUS_PASSWORD,
  JWT_APP_ID,
  JWT_SECRET,
  rsaKeyPair,
} from './server.mjs';

// Node 20 has no global WebSocket; xmpp.js's websocket transport uses the global one.
// (strophe.js's Node entry installs `ws` as the global too; doing it here first is harmless.)
if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = WsWebSocket;

// strophe.js's BOSH transport needs XMLHttpRequest. xhr2 implements it for Node but has no
// responseXML, and strophe 5 only accepts a response that has one, so add it with the DOMParser
// strophe's Node shim installs (looked up lazily: strophe is imported after this module runs).
class NodeXMLHttpRequest extends XHR2 {
  get responseXML() {
    const text = this.responseText;
    if (!text) return null;
    return new globalThis.DOMParser().parseFromString(text, 'text/xml');
  }
}
globalThis.XMLHttpRequest = NodeXMLHttpRequest;

const { Strophe, $iq } = await import('strophe.js');
Strophe.setLogLevel(process.env.STROPHE_DEBUG ? Strophe.LogLevel.DEBUG : Strophe.LogLevel.ERROR);
export { Strophe, xml };

export const NS = {
  MUC: 'http://jabber.org/protocol/muc',
  MUC_USER: 'http://jabber.org/protocol/muc#user',
  MUC_OWNER: 'http://jabber.org/protocol/muc#owner',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  PING: 'urn:xmpp:ping',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  SM: 'urn:xmpp:sm:3',
  FOCUS: 'http://jitsi.org/protocol/focus',
  BOSH: 'http://jabber.org/protocol/httpbind',
};

// ---------------------------------------------------------------------------------------------
// JWT (HS256 / RS256) made with node:crypto, no JWT library.

const b64url = (x) => Buffer.from(x).toString('base64url');

export function signJwt(payload, { alg = 'HS256', key, header = {} } = {}) {
  const head = { alg, typ: 'JWT', ...header };
  const input = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(payload))}`;
  let sig;
  if (alg === 'HS256') sig = createHmac('sha256', key ?? JWT_SECRET).update(input).digest();
  else if (alg === 'RS256') sig = createSign('RSA-SHA256').update(input).sign(key ?? rsaKeyPair().privateKey);
  else sig = Buffer.alloc(0);
  return `${input}.${b64url(sig)}`;
}

/** Claims as a Jitsi deployment issues them; override anything with `extra`. */
export function jwtClaims({ room = '*', user, lifetime = 3600, ...extra } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: JWT_APP_ID,
    aud: 'jitsi',
    sub: DOMAIN,
    room,
    iat: now - 10,
    nbf: now - 10,
    exp: now + lifetime,
    ...extra,
  };
  if (user) claims.context = { user };
  return claims;
}

export function withQuery(url, params) {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  return u.toString();
}

// ---------------------------------------------------------------------------------------------
// Stanza recorder used by both libraries.

export class Inbox {
  constructor(label) {
    this.label = label;
    this.stanzas = [];
    this.waiters = [];
  }
  push(el) {
    this.stanzas.push(el);
    for (const w of [...this.waiters]) {
      if (w.pred(el)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(el);
      }
    }
  }
  /** First stanza (already received or future) matching pred. `since` = index to start at. */
  waitFor(pred, { timeout = 5000, desc = 'stanza', since = 0 } = {}) {
    for (let i = since; i < this.stanzas.length; i++) if (pred(this.stanzas[i])) return Promise.resolve(this.stanzas[i]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        const seen = this.stanzas.slice(since).map((s) => s.toString()).slice(-15).join('\n  ');
        reject(new Error(`${this.label}: timed out after ${timeout} ms waiting for ${desc}; last stanzas:\n  ${seen}`));
      }, timeout);
      this.waiters.push(w);
    });
  }
  /** Resolves true if no stanza matching pred arrives within ms (and none is already there). */
  async expectNone(pred, ms, since = 0) {
    try {
      const el = await this.waitFor(pred, { timeout: ms, since });
      return el;
    } catch {
      return null;
    }
  }
  get mark() {
    return this.stanzas.length;
  }
}

export const bare = (j) => String(j).split('/')[0];
export const resourceOf = (j) => {
  const s = String(j);
  const i = s.indexOf('/');
  return i < 0 ? '' : s.slice(i + 1);
};

/**
 * `promise`, or a rejection with `message` (a string or a function making one) after `ms`.
 * The timer is cleared as soon as the promise settles: a pending timer would keep the test
 * process alive after its last test.
 */
export function withTimeout(promise, ms, message) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === 'function' ? message() : message)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// xmpp.js over WebSocket.

/** xmpp.js 0.14 has no 'input' event: keep every chunk the socket delivers. */
export function recordInput(xmpp, into) {
  const onData = xmpp._onData;
  xmpp._onData = function (data) {
    into.push(data.toString('utf8'));
    return onData.call(this, data);
  };
}

/** Stop an xmpp.js client, and kill its socket if the server does not close it in time. */
async function stopXmpp(xmpp, ms = 2000) {
  try {
    await withTimeout(xmpp.stop(), ms, 'stop() timed out');
  } catch {}
  try {
    xmpp.socket?.socket?.terminate?.();
  } catch {}
}

/**
 * Connect with xmpp.js over WebSocket. Anonymous unless username/password given (then SASL PLAIN).
 * opts: { token, room, domain, username, password, query, url, label, timeout, features }
 * Returns a wrapper: { xmpp, jid, inbox, rawIn, rawOut, send(el), iq(el), close(), dropSocket() }.
 * If the login fails, the client is stopped and the error (e.g. SASLError) is thrown.
 */
export async function wsConnect(server, opts = {}) {
  const { token, room, username, password, label = 'ws-client' } = opts;
  const domain = opts.domain ?? (username ? 'auth.localhost' : DOMAIN);
  const service = withQuery(opts.url ?? server.ws, { room, token, ...(opts.query || {}) });
  const xmpp = xmppClient({
    service,
    domain,
    ...(username
      ? {
          // force SASL PLAIN (the account is configured with a plain password)
          credentials: (authenticate) => authenticate({ username, password }, 'PLAIN'),
        }
      : {}),
  });
  xmpp.reconnect.stop(); // tests drive reconnects themselves
  const inbox = new Inbox(label);
  const rawIn = [];
  const rawOut = [];
  recordInput(xmpp, rawIn);
  xmpp.on('send', (el) => rawOut.push(el.toString()));
  xmpp.on('stanza', (el) => inbox.push(el));
  xmpp.on('error', () => {}); // surfaced through start()/tests instead
  // answer pings and disco#info on the full JID like a client would (opts.features: more vars)
  const features = [NS.DISCO_INFO, ...(opts.features ?? [])];
  xmpp.iqCallee.get(NS.DISCO_INFO, 'query', () =>
    xml(
      'query',
      { xmlns: NS.DISCO_INFO },
      xml('identity', { category: 'client', type: 'web' }),
      ...features.map((v) => xml('feature', { var: v })),
    ),
  );
  const timeout = opts.timeout ?? 10_000;
  let address;
  try {
    address = await withTimeout(
      xmpp.start(),
      timeout,
      () => `${label}: xmpp.js start() timed out after ${timeout} ms; input: ${rawIn.join('\n')}`,
    );
  } catch (err) {
    await stopXmpp(xmpp);
    throw err;
  }
  // xmpp.js resolves start() at bind, before <enabled/> is processed; stanzas that arrive in
  // between are not counted in h (xmpp.js 0.14 race). Wait for SM to be on when offered.
  if (rawIn.some((d) => d.includes('urn:xmpp:sm:3'))) {
    for (let i = 0; i < 100 && !xmpp.streamManagement.enabled; i++) await sleep(30);
  }
  const c = {
    kind: 'xmpp.js/ws',
    xmpp,
    inbox,
    rawIn,
    rawOut,
    jid: address.toString(),
    label,
    send: (el) => xmpp.send(el),
    iq: (el, timeoutMs = 5000) => xmpp.iqCaller.request(el, timeoutMs),
    close: () => stopXmpp(xmpp),
    /** Kill the TCP connection without a WebSocket close frame. */
    dropSocket() {
      const ws = xmpp.socket?.socket;
      if (!ws) throw new Error('no socket');
      ws.terminate();
    },
  };
  return c;
}

/** Like wsConnect but resolves to the error thrown by start() (e.g. SASL failure). */
export async function wsConnectExpectFailure(server, opts = {}) {
  const { token, room } = opts;
  const service = withQuery(server.ws, { room, token });
  const xmpp = xmppClient({ service, domain: DOMAIN });
  xmpp.reconnect.stop();
  const rawIn = [];
  recordInput(xmpp, rawIn);
  xmpp.on('error', () => {});
  try {
    await withTimeout(xmpp.start(), 10_000, 'start() timed out');
  } catch (err) {
    await stopXmpp(xmpp, 1000);
    return { err, rawIn };
  }
  const jid = xmpp.jid?.toString();
  await stopXmpp(xmpp, 1000);
  return { err: null, rawIn, jid };
}

// ---------------------------------------------------------------------------------------------
// strophe.js over BOSH (or WebSocket when given a ws: URL).

const STATUS_NAMES = Object.fromEntries(Object.entries(Strophe.Status).map(([k, v]) => [v, k]));

/**
 * Connect with strophe.js. Anonymous (bare domain JID, no password) unless jid/password given.
 * opts: { url (default server.bosh), token, room, jid, password, label, timeout, expectFailure }
 * With expectFailure a failed login resolves (connected: false, statuses) instead of throwing.
 */
export async function stropheConnect(server, opts = {}) {
  const { token, room, label = 'strophe-client' } = opts;
  const url = withQuery(opts.url ?? server.bosh, { room, token });
  const conn = new Strophe.Connection(url, { keepalive: false });
  const inbox = new Inbox(label);
  const rawIn = [];
  const rawOut = [];
  conn.rawInput = (d) => rawIn.push(d);
  conn.rawOutput = (d) => rawOut.push(d);
  conn.addHandler((el) => {
    try {
      inbox.push(parseXml(Strophe.serialize(el)));
    } catch (e) {
      inbox.push(xml('unparseable', {}, String(e)));
    }
    return true;
  });
  // answer disco#info and pings on the full JID
  conn.addHandler(
    (el) => {
      const type = el.getAttribute('type');
      if (type !== 'get' && type !== 'set') return true;
      const q = el.firstElementChild;
      const ns = q?.getAttribute('xmlns');
      const reply = $iq({ type: 'result', id: el.getAttribute('id'), to: el.getAttribute('from') });
      if (ns === NS.DISCO_INFO) reply.c('query', { xmlns: NS.DISCO_INFO }).c('identity', { category: 'client', type: 'web' });
      else if (ns !== NS.PING) return true;
      conn.send(reply.tree());
      return true;
    },
    null,
    'iq',
  );
  const statuses = [];
  // One status callback for the whole life of the connection: it settles the connect attempt
  // (later calls of settle are no-ops) and tells close() when Strophe is done; only then does
  // Strophe stop its 100 ms idle timer, which would otherwise keep the test process alive.
  let settle;
  const settled = new Promise((resolve) => (settle = resolve));
  let disconnected = false;
  const onDisconnected = [];
  conn.connect(opts.jid ?? DOMAIN, opts.password ?? null, (status, condition) => {
    statuses.push(`${STATUS_NAMES[status]}${condition ? `(${condition})` : ''}`);
    if (status === Strophe.Status.DISCONNECTED) {
      disconnected = true;
      onDisconnected.splice(0).forEach((f) => f());
    }
    if (status === Strophe.Status.CONNECTED) settle(true);
    else if ([Strophe.Status.AUTHFAIL, Strophe.Status.CONNFAIL, Strophe.Status.ERROR, Strophe.Status.DISCONNECTED].includes(status)) {
      settle(false);
    }
  });
  /** Disconnect (terminate body / <close/> if still connected) and wait until Strophe is done. */
  let closing = null;
  const close = () =>
    (closing ??= (async () => {
      if (disconnected) return;
      const done = new Promise((resolve) => onDisconnected.push(resolve));
      conn.disconnect('test done');
      // Strophe itself stops waiting for the server after its disconnection_timeout (3 s).
      await withTimeout(done, 5000, `${label}: strophe did not disconnect`).catch(() => {});
    })());
  let connected;
  try {
    connected = await withTimeout(
      settled,
      opts.timeout ?? 10_000,
      () => `${label}: strophe connect timed out; statuses ${statuses.join(',')}; input:\n${rawIn.join('\n')}`,
    );
  } catch (err) {
    await close();
    throw err;
  }
  if (!connected) {
    const err = new Error(`${label}: strophe failed: ${statuses.join(',')}; input:\n${rawIn.join('\n')}`);
    // After AUTHFAIL Strophe stays connected (the app may retry): end it, as lib-jitsi-meet does.
    await close();
    if (!opts.expectFailure) throw err;
  }
  const c = {
    kind: url.startsWith('ws') ? 'strophe/ws' : 'strophe/bosh',
    conn,
    inbox,
    rawIn,
    rawOut,
    statuses,
    connected,
    label,
    get jid() {
      return conn.jid;
    },
    send: (el) => conn.send(el.attrs ? stropheNode(el) : el),
    iq(el, timeoutMs = 5000) {
      const node = stropheNode(el);
      return new Promise((resolve, reject) => {
        conn.sendIQ(
          node,
          (res) => resolve(parseXml(Strophe.serialize(res))),
          (err) => reject(Object.assign(new Error(`iq error: ${err ? Strophe.serialize(err) : 'timeout'}`), { stanza: err ? parseXml(Strophe.serialize(err)) : null })),
          timeoutMs,
        );
      });
    },
    close,
  };
  return c;
}

/** ltx element (or XML string) → DOM element usable by strophe. */
export function stropheNode(el) {
  const text = typeof el === 'string' ? el : el.toString();
  return Strophe.xmlHtmlNode(text).documentElement;
}

// ---------------------------------------------------------------------------------------------
// MUC helpers (library-agnostic: they use c.send / c.inbox).

export const roomJid = (room) => `${room}@${MUC}`;

export const isPresenceFrom = (from, type) => (el) =>
  el.is('presence') && el.attrs.from === from && (type === undefined ? !el.attrs.type : el.attrs.type === type);

export function mucItem(presence) {
  return presence.getChild('x', NS.MUC_USER)?.getChild('item');
}
export function statusCodes(presence) {
  return (presence.getChild('x', NS.MUC_USER)?.getChildren('status') ?? []).map((s) => s.attrs.code);
}

/**
 * Join room/nick with optional extra presence children. Resolves with the self-presence
 * (status 110) or rejects with the presence error.
 */
export async function joinRoom(c, room, nick, { children = [], timeout = 5000, password } = {}) {
  const occupant = `${roomJid(room)}/${nick}`;
  const since = c.inbox.mark;
  const x = xml('x', { xmlns: NS.MUC }, password ? xml('password', {}, password) : null);
  await c.send(xml('presence', { to: occupant }, x, ...children));
  const el = await c.inbox.waitFor(
    (p) =>
      p.is('presence') &&
      p.attrs.from === occupant &&
      (p.attrs.type === 'error' || (!p.attrs.type && statusCodes(p).includes('110'))),
    { timeout, desc: `self-presence or error from ${occupant}`, since },
  );
  if (el.attrs.type === 'error') {
    const err = new Error(`join ${occupant} refused: ${el.toString()}`);
    err.stanza = el;
    err.condition = el.getChild('error')?.children.find((ch) => typeof ch !== 'string' && ch.attrs.xmlns === NS.STANZAS)?.name;
    throw err;
  }
  return el;
}

export async function leaveRoom(c, room, nick) {
  const occupant = `${roomJid(room)}/${nick}`;
  const since = c.inbox.mark;
  await c.send(xml('presence', { to: occupant, type: 'unavailable' }));
  return c.inbox.waitFor(isPresenceFrom(occupant, 'unavailable'), { desc: `own unavailable from ${occupant}`, since });
}

/** The focus: PLAIN login as focus@auth.localhost over WebSocket, joins room/focus, creating it. */
export async function focusJoin(server, room) {
  const focus = await wsConnect(server, { username: 'focus', password: FOCUS_PASSWORD, label: 'focus' });
  const self = await joinRoom(focus, room, 'focus');
  if (statusCodes(self).includes('201')) {
    // New (possibly locked) room: accept the default configuration as an instant room, as jicofo does.
    try {
      await focus.iq(
        xml('iq', { type: 'set', to: roomJid(room) }, xml('query', { xmlns: NS.MUC_OWNER }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))),
      );
    } catch {}
  }
  focus.self = self;
  return focus;
}

export async function roomSize(server, room) {
  const r = await fetch(`${server.http}/room-size?room=${encodeURIComponent(room)}&domain=${DOMAIN}`);
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: r.status, body, text };
}

export const uniqueRoom = (prefix = 'room') => `${prefix}${randomUUID().slice(0, 8)}`;

/** A UUID-like local part, as SASL ANONYMOUS must give (lib-jitsi-meet derives the endpoint id from it). */
export const UUID_LIKE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/;

export { sleep, FOCUS_JID };
