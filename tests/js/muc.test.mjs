// MUC as Jitsi uses it: rooms created by the focus only, real JIDs, status 110, custom presence
// children relayed verbatim, groupchat, private messages, occupant IQ relay, room-size, room
// destroyed after the last occupant leaves. One occupant on WebSocket (xmpp.js), one on BOSH
// (strophe.js) where noted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, FOCUS_JID } from './server.mjs';
import {
  wsConnect,
  stropheConnect,
  focusJoin,
  joinRoom,
  leaveRoom,
  roomJid,
  roomSize,
  isPresenceFrom,
  mucItem,
  statusCodes,
  uniqueRoom,
  bare,
  xml,
  NS,
  sleep,
} from './xmpp.mjs';

// Joins from non-admins wait this long for the focus before they are refused (muc.focus_wait_secs,
// 10 s by default); short here so the refusal itself can be waited for.
const FOCUS_WAIT_SECS = 2;
const ref = useServer({ before, after }, { extraToml: `focus_wait_secs = ${FOCUS_WAIT_SECS}\n` });

/** Structural equality of two ltx elements (name, attributes, text, children, in order). */
function sameElement(a, b) {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.name !== b.name) return false;
  const ka = Object.keys(a.attrs).sort();
  const kb = Object.keys(b.attrs).sort();
  if (JSON.stringify(ka) !== JSON.stringify(kb)) return false;
  if (ka.some((k) => a.attrs[k] !== b.attrs[k])) return false;
  // merge adjacent text nodes before comparing
  const norm = (el) => {
    const out = [];
    for (const ch of el.children) {
      if (typeof ch === 'string' && typeof out[out.length - 1] === 'string') out[out.length - 1] += ch;
      else out.push(ch);
    }
    return out;
  };
  const ca = norm(a);
  const cb = norm(b);
  return ca.length === cb.length && ca.every((ch, i) => sameElement(ch, cb[i]));
}

// Presence children as lib-jitsi-meet sends them, plus a torture test for escaping.
function jitsiChildren(nick) {
  return [
    xml('stats-id', {}, `Stats-${nick}`),
    xml('c', { xmlns: 'http://jabber.org/protocol/caps', hash: 'sha-1', node: 'https://jitsi.org/jitsi-meet', ver: 'cvjWXufsg4xT62Ec2mlATkFZ9lk=' }),
    xml('jitsi_participant_region', {}, 'region1'),
    xml('nick', { xmlns: 'http://jabber.org/protocol/nick' }, `Näme "${nick}" <&> 😀`),
    xml('audiomuted', {}, 'true'),
    xml('videomuted', {}, 'false'),
    xml('jitsi_participant_codecType', {}, 'vp8'),
    xml(
      'custom',
      { xmlns: 'urn:oxbridge:test', quote: `it's "q" & <lt> \u00e9 😀`, empty: '' },
      'text with &amp; entity-looking text, <brackets>, tab\tand emoji 🎉',
      xml('nested', { a: '1' }, xml('deeper', {})),
    ),
  ];
}

async function expectRoomGone(room, timeout = 5000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await roomSize(ref.server, room);
    if (last.status === 404) return;
    await sleep(100);
  }
  assert.fail(`room ${room} still exists: /room-size answered ${last.status} ${last.text}`);
}

/** The first presence from `occupant` after `since`: the self-presence (110) or the join error. */
function joinAnswer(c, occupant, since) {
  return c.inbox.waitFor((p) => p.is('presence') && p.attrs.from === occupant && (p.attrs.type === 'error' || statusCodes(p).includes('110')), {
    timeout: FOCUS_WAIT_SECS * 1000 + 3000,
    desc: `self-presence or error from ${occupant}`,
    since,
  });
}

const errorCondition = (p) => p.getChild('error')?.getChildElements().find((ch) => ch.attrs.xmlns === NS.STANZAS)?.name;

test('a non-admin cannot create a room: its join waits for the focus, then is refused', ref.wrap(async () => {
  const room = uniqueRoom('nocreate');
  const occupant = `${roomJid(room)}/early001`;
  const c = await wsConnect(ref.server);
  try {
    const since = c.inbox.mark;
    await c.send(xml('presence', { to: occupant }, xml('x', { xmlns: NS.MUC })));
    // Stock Prosody (restrict_room_creation) refuses at once and has no room (404); with Jitsi's
    // join queue (mod_muc_meeting_id) the room exists, empty, while joins wait for the focus.
    // Either way the waiting client is not a participant.
    const size = await roomSize(ref.server, room);
    assert.ok(size.status === 404 || (size.status === 200 && size.body?.participants === 0), `room-size while nobody is in: ${size.status} ${size.text}`);
    const got = await joinAnswer(c, occupant, since);
    assert.equal(got.attrs.type, 'error', `non-admin joined a room nobody created: ${got}`);
    assert.equal(errorCondition(got), 'not-allowed', `error condition in ${got}`);
    await expectRoomGone(room);
  } finally {
    await c.close();
  }
}));

test('a join sent before the focus arrives is admitted after the focus has created the room', ref.wrap(async () => {
  const room = uniqueRoom('early');
  const occupant = `${roomJid(room)}/early002`;
  const c = await wsConnect(ref.server, { label: 'early' });
  let f = null;
  try {
    const since = c.inbox.mark;
    await c.send(xml('presence', { to: occupant }, xml('x', { xmlns: NS.MUC })));
    // The held join has reached the room once the room exists (room-size goes through the room).
    const deadline = Date.now() + 3000;
    while ((await roomSize(ref.server, room)).status !== 200) {
      assert.ok(Date.now() < deadline, `the held join did not reach room ${room}`);
      await sleep(50);
    }
    f = await focusJoin(ref.server, room);
    assert.equal(mucItem(f.self)?.attrs.affiliation, 'owner', `focus self-presence ${f.self}`);
    const self = await joinAnswer(c, occupant, since);
    assert.notEqual(self.attrs.type, 'error', `early join refused although the focus came in time: ${self}`);
    assert.ok(!statusCodes(self).includes('201'), `the early joiner did not create the room: ${self}`);
    assert.notEqual(mucItem(self)?.attrs.affiliation, 'owner', `early joiner self-presence ${self}`);
    // The focus is the first occupant: the joiner learns about it before its own presence.
    const focusSeen = await c.inbox.waitFor(isPresenceFrom(`${roomJid(room)}/focus`), { desc: 'focus presence at the early joiner', since });
    assert.ok(c.inbox.stanzas.indexOf(focusSeen) < c.inbox.stanzas.indexOf(self), 'focus presence before the self-presence');
    await f.inbox.waitFor(isPresenceFrom(occupant), { desc: 'early joiner presence at the focus' });
    assert.deepEqual((await roomSize(ref.server, room)).body, { participants: 1 });
  } finally {
    await c.close();
    await f?.close();
  }
}));

test('the focus creates the room; room-size counts participants but not the focus', ref.wrap(async () => {
  const room = uniqueRoom('create');
  assert.equal((await roomSize(ref.server, room)).status, 404);
  const f = await focusJoin(ref.server, room);
  try {
    const item = mucItem(f.self);
    assert.equal(item?.attrs.affiliation, 'owner', `focus self-presence ${f.self}`);
    assert.ok(statusCodes(f.self).includes('110'), `status 110 on the focus self-presence ${f.self}`);
    const size = await roomSize(ref.server, room);
    assert.equal(size.status, 200, size.text);
    assert.deepEqual(size.body, { participants: 0 });
  } finally {
    await f.close();
  }
  await expectRoomGone(room);
}));

test('two occupants (WebSocket + BOSH) see each other with real JIDs and verbatim custom children', ref.wrap(async () => {
  const room = uniqueRoom('pres');
  const f = await focusJoin(ref.server, room);
  const a = await wsConnect(ref.server, { label: 'A(ws)', room });
  const b = await stropheConnect(ref.server, { label: 'B(bosh)', room });
  const occA = `${roomJid(room)}/aaaa1111`;
  const occB = `${roomJid(room)}/bbbb2222`;
  try {
    const childrenA = jitsiChildren('A');
    const childrenB = jitsiChildren('B');
    const selfA = await joinRoom(a, room, 'aaaa1111', { children: childrenA });
    assert.ok(statusCodes(selfA).includes('110'));
    assert.equal(mucItem(selfA)?.attrs.jid, a.jid, `A's own item carries A's real JID: ${selfA}`);

    const sinceB = b.inbox.mark;
    const selfB = await joinRoom(b, room, 'bbbb2222', { children: childrenB });
    assert.ok(statusCodes(selfB).includes('110'), `status 110 in ${selfB}`);

    // B gets the existing occupants (focus and A) before its own presence
    const idxSelf = b.inbox.stanzas.indexOf(selfB);
    const aForB = await b.inbox.waitFor(isPresenceFrom(occA), { desc: 'A presence at B', since: sinceB });
    assert.ok(b.inbox.stanzas.indexOf(aForB) < idxSelf, 'existing occupants are sent before the self-presence');
    const focusForB = await b.inbox.waitFor(isPresenceFrom(`${roomJid(room)}/focus`), { desc: 'focus presence at B', since: sinceB });
    assert.equal(bare(mucItem(focusForB)?.attrs.jid), FOCUS_JID, `focus real JID visible: ${focusForB}`);
    assert.equal(mucItem(aForB)?.attrs.jid, a.jid, `A's real JID visible to B: ${aForB}`);
    assert.ok(!statusCodes(aForB).includes('110'), 'no 110 on someone else\'s presence');

    // A sees B
    const bForA = await a.inbox.waitFor(isPresenceFrom(occB), { desc: 'B presence at A' });
    assert.equal(mucItem(bForA)?.attrs.jid, b.jid, `B's real JID visible to A: ${bForA}`);

    // custom children relayed verbatim, in order
    for (const [seen, sent, who] of [
      [aForB, childrenA, 'A→B'],
      [bForA, childrenB, 'B→A'],
    ]) {
      const relayed = seen.getChildElements().filter((ch) => !(ch.name === 'x' && ch.attrs.xmlns === NS.MUC_USER));
      for (const orig of sent) {
        const match = relayed.find((r) => r.name === orig.name);
        assert.ok(match, `${who}: <${orig.name}> relayed (got ${seen})`);
        // incoming ltx elements have the inherited xmlns only where it was declared; compare as sent
        if (!orig.attrs.xmlns) delete match.attrs.xmlns;
        assert.ok(sameElement(match, orig), `${who}: <${orig.name}> relayed verbatim\n  sent: ${orig}\n  got:  ${match}`);
      }
      const order = relayed.map((r) => r.name).filter((n) => sent.some((s) => s.name === n));
      assert.deepEqual(order, sent.map((s) => s.name), `${who}: children order preserved`);
    }

    // presence update is broadcast
    const sinceA = a.inbox.mark;
    await b.send(xml('presence', { to: occB }, xml('audiomuted', {}, 'false'), xml('videomuted', {}, 'true')));
    const upd = await a.inbox.waitFor((p) => isPresenceFrom(occB)(p) && p.getChildText('videomuted') === 'true', { desc: 'B presence update at A', since: sinceA });
    assert.equal(upd.getChildText('audiomuted'), 'false');

    // room-size: 2 participants, focus not counted
    const size = await roomSize(ref.server, room);
    assert.equal(size.status, 200, size.text);
    assert.deepEqual(size.body, { participants: 2 });

    // leaving: others see unavailable, the leaver gets its own unavailable with 110
    const sinceA2 = a.inbox.mark;
    const own = await leaveRoom(b, room, 'bbbb2222');
    assert.ok(statusCodes(own).includes('110'), `own unavailable carries 110: ${own}`);
    await a.inbox.waitFor(isPresenceFrom(occB, 'unavailable'), { desc: 'B unavailable at A', since: sinceA2 });
    assert.deepEqual((await roomSize(ref.server, room)).body, { participants: 1 });
  } finally {
    await a.close();
    await b.close();
    await f.close();
  }
}));

test('groupchat, private message and occupant-to-occupant IQ relay', ref.wrap(async () => {
  const room = uniqueRoom('msg');
  const f = await focusJoin(ref.server, room);
  const a = await wsConnect(ref.server, { label: 'A(ws)' });
  const b = await stropheConnect(ref.server, { label: 'B(bosh)' });
  const occA = `${roomJid(room)}/aaaa3333`;
  const occB = `${roomJid(room)}/bbbb4444`;
  try {
    await joinRoom(a, room, 'aaaa3333');
    await joinRoom(b, room, 'bbbb4444');

    // groupchat: everyone (including the sender) gets it from the sender's occupant JID
    const body = 'hello <all> & "everyone" 😀';
    const sinceA = a.inbox.mark;
    const sinceB = b.inbox.mark;
    const sinceF = f.inbox.mark;
    await a.send(xml('message', { to: roomJid(room), type: 'groupchat', id: 'gc1' }, xml('body', {}, body), xml('json-message', { xmlns: 'http://jitsi.org/jitmeet' }, '{"type":"x"}')));
    const isGc = (m) => m.is('message') && m.attrs.type === 'groupchat' && m.attrs.from === occA && m.getChildText('body') === body;
    const atB = await b.inbox.waitFor(isGc, { desc: 'groupchat at B', since: sinceB });
    assert.equal(atB.getChildText('json-message'), '{"type":"x"}', 'extension children of groupchat relayed');
    await a.inbox.waitFor(isGc, { desc: 'groupchat echo at sender', since: sinceA });
    await f.inbox.waitFor(isGc, { desc: 'groupchat at focus', since: sinceF });

    // private message B -> A via occupant JID (type chat): only A gets it, from B's occupant JID
    const sinceA2 = a.inbox.mark;
    const sinceF2 = f.inbox.mark;
    await b.send(xml('message', { to: occA, type: 'chat', id: 'pm1' }, xml('body', {}, 'psst'), xml('x', { xmlns: NS.MUC_USER })));
    const pm = await a.inbox.waitFor((m) => m.is('message') && m.getChildText('body') === 'psst', { desc: 'private message at A', since: sinceA2 });
    assert.equal(pm.attrs.from, occB, `private message comes from the sender's occupant JID: ${pm}`);
    assert.equal(pm.attrs.type, 'chat');
    assert.equal(await f.inbox.expectNone((m) => m.is('message') && m.getChildText('body') === 'psst', 300, sinceF2), null, 'focus must not see a private message');

    // occupant IQ: A -> room/B. B sees it from room/A, answers with the id it received,
    // A gets the result from room/B with its own id.
    const sinceB2 = b.inbox.mark;
    const resultP = a.iq(xml('iq', { type: 'get', to: occB }, xml('query', { xmlns: NS.DISCO_INFO })));
    const req = await b.inbox.waitFor((s) => s.is('iq') && s.attrs.type === 'get' && s.getChild('query', NS.DISCO_INFO), { desc: 'relayed IQ at B', since: sinceB2 });
    assert.equal(req.attrs.from, occA, `occupant IQ from rewritten to the sender's occupant JID: ${req}`);
    const result = await resultP; // B (stropheConnect) answers disco#info on its own
    assert.equal(result.attrs.type, 'result');
    assert.equal(result.attrs.from, occB, 'the answer comes from the occupant JID the IQ was sent to');
    assert.ok(result.getChild('query', NS.DISCO_INFO)?.getChild('identity'), `result payload relayed: ${result}`);

    // The focus queries an occupant the same way (jicofo does disco#info on every occupant)
    const fr = await f.iq(xml('iq', { type: 'get', to: occA }, xml('query', { xmlns: NS.DISCO_INFO })));
    assert.equal(fr.attrs.from, occA);

    // IQ to a nick that is not in the room
    let err = null;
    try {
      await a.iq(xml('iq', { type: 'get', to: `${roomJid(room)}/nobody00` }, xml('query', { xmlns: NS.DISCO_INFO })));
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'IQ to a missing occupant gets an error');
  } finally {
    await a.close();
    await b.close();
    await f.close();
  }
}));

test('the room disappears after the last occupant leaves', ref.wrap(async () => {
  const room = uniqueRoom('gone');
  const f = await focusJoin(ref.server, room);
  const a = await wsConnect(ref.server);
  const b = await stropheConnect(ref.server);
  try {
    await joinRoom(a, room, 'aaaa5555');
    await joinRoom(b, room, 'bbbb6666');
    assert.deepEqual((await roomSize(ref.server, room)).body, { participants: 2 });
    await leaveRoom(a, room, 'aaaa5555');
    await b.close(); // B just disconnects (BOSH terminate): its occupant must go too
    const deadline = Date.now() + 5000;
    let size;
    do {
      size = await roomSize(ref.server, room);
      if (size.body?.participants === 0) break;
      await sleep(100);
    } while (Date.now() < deadline);
    assert.deepEqual(size.body, { participants: 0 }, `after both participants left: ${size.status} ${size.text}`);
    await leaveRoom(f, room, 'focus');
    await expectRoomGone(room);

    // The room is really gone: a non-admin cannot get in again without the focus
    const since = a.inbox.mark;
    await a.send(xml('presence', { to: `${roomJid(room)}/aaaa5555` }, xml('x', { xmlns: NS.MUC })));
    const got = await joinAnswer(a, `${roomJid(room)}/aaaa5555`, since);
    assert.equal(got.attrs.type, 'error', `a destroyed room must not be re-entered without the focus: ${got}`);
    assert.equal(errorCondition(got), 'not-allowed', `error condition in ${got}`);
  } finally {
    await a.close();
    await b.close();
    await f.close();
  }
}));

test('a disconnecting client (WebSocket closed without unavailable) leaves the room for the others', ref.wrap(async () => {
  const room = uniqueRoom('drop');
  const f = await focusJoin(ref.server, room);
  const a = await wsConnect(ref.server);
  const b = await wsConnect(ref.server);
  try {
    await joinRoom(a, room, 'aaaa7777');
    await joinRoom(b, room, 'bbbb8888');
    const since = b.inbox.mark;
    await a.close(); // clean </close>: no resumption, the session ends
    await b.inbox.waitFor(isPresenceFrom(`${roomJid(room)}/aaaa7777`, 'unavailable'), { desc: 'A unavailable after its stream closed', since });
  } finally {
    await b.close();
    await f.close();
  }
}));
