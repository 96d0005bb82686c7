// XEP-0198 stream management with resumption over WebSocket, as lib-jitsi-meet uses it:
// the socket dies without a close frame, the client reconnects to ?previd=<id>, authenticates
// again with SASL ANONYMOUS (a new anonymous login!) and sends <resume/>. The server must map
// that back to the old session, deliver what was queued meanwhile, and the room must never see
// the user leave. Client: xmpp.js (@xmpp/client) with its stream-management module.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './server.mjs';
import {
  wsConnect,
  recordInput,
  focusJoin,
  joinRoom,
  roomJid,
  isPresenceFrom,
  uniqueRoom,
  withQuery,
  withTimeout,
  xml,
  NS,
  sleep,
} from './xmpp.mjs';
import { client as xmppClient } from '@xmpp/client';

const ref = useServer({ before, after });

function enabledFrame(c) {
  const frame = c.rawIn.find((d) => d.startsWith('<enabled'));
  assert.ok(frame, `server answered <enable/> with <enabled/>; input:\n${c.rawIn.join('\n')}`);
  return frame;
}

test('enable gives <enabled resume="true" id=…/>', ref.wrap(async () => {
  const c = await wsConnect(ref.server);
  try {
    const frame = enabledFrame(c);
    assert.match(frame, /resume=["'](true|1)["']/);
    assert.match(frame, /\sid=["'][^"']+["']/);
    assert.ok(c.xmpp.streamManagement.enabled);
    // <r/> is answered with <a h=…/>
    const before = c.rawIn.length;
    await c.xmpp.send(xml('r', { xmlns: 'urn:xmpp:sm:3' }));
    for (let i = 0; i < 50 && !c.rawIn.slice(before).some((d) => d.startsWith('<a ')); i++) await sleep(50);
    assert.ok(c.rawIn.slice(before).some((d) => /^<a [^>]*h=/.test(d)), `<a h/> after <r/>; got ${c.rawIn.slice(before)}`);
  } finally {
    await c.close();
  }
}));

test('resume after a dropped WebSocket: queued stanzas delivered, room never sees a leave', ref.wrap(async () => {
  const room = uniqueRoom('resume');
  const f = await focusJoin(ref.server, room);
  const a = await wsConnect(ref.server, { label: 'A', room });
  const b = await wsConnect(ref.server, { label: 'B', room });
  const occA = `${roomJid(room)}/aaaa9999`;
  const occB = `${roomJid(room)}/bbbb9999`;
  try {
    await joinRoom(a, room, 'aaaa9999');
    await joinRoom(b, room, 'bbbb9999');
    await a.inbox.waitFor(isPresenceFrom(occB), { desc: 'B presence at A' });
    const sm = a.xmpp.streamManagement;
    const smId = sm.id;
    assert.ok(smId, 'A has a resumption id');
    const fullJid = a.jid;
    const sentSinceEnable = sm.outbound + sm.outbound_q.length;
    const sinceB = b.inbox.mark;
    const sinceF = f.inbox.mark;

    // Kill A's TCP connection: no WebSocket close frame, no </close>.
    const disconnected = new Promise((r) => a.xmpp.once('disconnect', r));
    a.dropSocket();
    await disconnected;
    // Give the server time to notice the dead socket, so that what follows is queued in a detached
    // session (if it has not noticed yet, resumption must work all the same: XEP-0198 §5).
    await sleep(700);

    // While A is detached: groupchat, a private message through the room, a direct message.
    const mark = a.inbox.mark;
    await b.send(xml('message', { to: roomJid(room), type: 'groupchat' }, xml('body', {}, 'while you were away')));
    await b.send(xml('message', { to: occA, type: 'chat' }, xml('body', {}, 'private while away')));
    await b.send(xml('message', { to: fullJid, type: 'chat' }, xml('body', {}, 'direct while away')));
    // Barrier: the room handles B's stanzas in order, so once it has answered this disco#info it
    // has already passed the two messages above on to A's (detached) session.
    await b.iq(xml('iq', { type: 'get', to: roomJid(room) }, xml('query', { xmlns: NS.DISCO_INFO })));

    // Reconnect to ?previd=<id>, SASL ANONYMOUS again, then <resume previd h/> (xmpp.js does it
    // because sm.id is still set).
    a.xmpp.options.service = withQuery(ref.server.ws, { room, previd: smId });
    const resumed = new Promise((resolve) => sm.once('resumed', resolve));
    const rawMark = a.rawIn.length;
    const rawOutMark = a.rawOut.length;
    await a.xmpp.reconnect.reconnect();
    await withTimeout(resumed, 10_000, () => `no <resumed/> within 10 s; input:\n${a.rawIn.slice(rawMark).join('\n')}`);
    const after = a.rawIn.slice(rawMark);
    assert.ok(after.some((d) => d.includes('<success')), 'the client authenticated again (SASL success) before resuming');
    const resumedFrame = after.find((d) => d.startsWith('<resumed'));
    assert.ok(resumedFrame, `got <resumed/>: ${after.join('\n')}`);
    assert.ok(!after.some((d) => d.includes('<failed')), `no <failed/>: ${after.join('\n')}`);
    const h = Number(/\sh=["'](\d+)["']/.exec(resumedFrame)?.[1]);
    assert.equal(h, sentSinceEnable, `<resumed h> counts the stanzas A sent since <enable/> (${resumedFrame})`);
    // The post-SASL <stream:features> advertise <bind/> (RFC 6120 §7.1) and <sm/>; a resuming
    // client picks <resume/> instead of binding, and the session keeps its JID.
    const sent = a.rawOut.slice(rawOutMark);
    assert.ok(sent.some((d) => d.startsWith('<resume') && d.includes(smId)), `the client sent <resume previd/>: ${sent.join('\n')}`);
    assert.ok(!sent.some((d) => d.includes('urn:ietf:params:xml:ns:xmpp-bind')), `the client did not bind a new resource after resuming: ${sent.join('\n')}`);
    assert.equal(a.xmpp.jid.toString(), fullJid, 'same full JID after resume');

    // Everything sent while A was away arrives now.
    const fromB = (body, from) => (m) => m.is('message') && m.getChildText('body') === body && (!from || m.attrs.from === from);
    await a.inbox.waitFor(fromB('while you were away', occB), { desc: 'queued groupchat', since: mark });
    await a.inbox.waitFor(fromB('private while away', occB), { desc: 'queued MUC private message', since: mark });
    await a.inbox.waitFor(fromB('direct while away'), { desc: 'queued direct message', since: mark });

    // A is still in the room and can talk.
    await a.send(xml('message', { to: roomJid(room), type: 'groupchat' }, xml('body', {}, 'back again')));
    await b.inbox.waitFor(fromB('back again', occA), { desc: 'A groupchat after resume at B', since: sinceB });

    // Nobody saw A leave (or re-join). The room relays in order, so a leave or re-join caused by
    // the drop or the resume would have reached B and the focus before A's "back again".
    await f.inbox.waitFor(fromB('back again', occA), { desc: 'A groupchat after resume at the focus', since: sinceF });
    const leftB = b.inbox.stanzas.slice(sinceB).find((p) => p.is('presence') && p.attrs.from === occA);
    assert.equal(leftB, undefined, `B must not see A's presence change: ${leftB}`);
    const leftF = f.inbox.stanzas.slice(sinceF).find((p) => p.is('presence') && p.attrs.from === occA && p.attrs.type === 'unavailable');
    assert.equal(leftF, undefined, `the focus must not see A leave: ${leftF}`);
  } finally {
    await a.close();
    await b.close();
    await f.close();
  }
}));

test('resume with an unknown previd gets <failed/> and the client falls back to a fresh session', ref.wrap(async () => {
  const xmpp = xmppClient({ service: withQuery(ref.server.ws, { previd: 'no-such-session' }), domain: 'localhost' });
  xmpp.reconnect.stop();
  const rawIn = [];
  recordInput(xmpp, rawIn);
  xmpp.on('error', () => {});
  xmpp.streamManagement.id = 'no-such-session'; // makes xmpp.js send <resume previd='no-such-session'/>
  try {
    const jid = await withTimeout(xmpp.start(), 10_000, () => `start timed out: ${rawIn.join('\n')}`);
    assert.ok(rawIn.some((d) => d.startsWith('<failed')), `<failed/> for an unknown previd; input:\n${rawIn.join('\n')}`);
    assert.ok(!rawIn.some((d) => d.startsWith('<resumed')));
    assert.ok(jid, 'a fresh session is bound after the failed resume');
  } finally {
    await withTimeout(xmpp.stop(), 2000, 'stop timed out').catch(() => {});
  }
}));
