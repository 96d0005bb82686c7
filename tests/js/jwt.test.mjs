// JWT authentication (Jitsi mod_auth_token semantics): `?token=` on the WebSocket/BOSH URL,
// checked under SASL ANONYMOUS; room claim enforced on MUC join; context.user becomes
// <identity> in MUC presence; context.user.moderator gives owner.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { useServer, DOMAIN } from './server.mjs';
import {
  wsConnect,
  wsConnectExpectFailure,
  stropheConnect,
  signJwt,
  jwtClaims,
  focusJoin,
  joinRoom,
  roomJid,
  isPresenceFrom,
  mucItem,
  uniqueRoom,
  xml,
  NS,
  UUID_LIKE,
} from './xmpp.mjs';

function assertSaslNotAllowed(res, what) {
  assert.ok(res.err, `${what}: login must fail, but it succeeded as ${res.jid}`);
  assert.equal(res.err.name, 'SASLError', `${what}: expected a SASL <failure>, got ${res.err.message}\n${res.rawIn.join('\n')}`);
  assert.equal(res.err.condition, 'not-allowed', `${what}: SASL failure condition`);
  const failure = res.rawIn.find((d) => d.includes('<failure'));
  assert.match(failure, /<text[\s>]/, `${what}: the SASL failure carries a <text> for the client (${failure})`);
}

describe('JWT with allow_empty_token = true', () => {
  const ref = useServer({ before, after });

  test('valid HS256 token over WebSocket logs in with a UUID-like JID', ref.wrap(async () => {
    const token = signJwt(jwtClaims({ room: '*' }));
    const c = await wsConnect(ref.server, { token, room: 'r1' });
    try {
      const [local, rest] = c.jid.split('@');
      assert.equal(rest.split('/')[0], DOMAIN);
      assert.match(local, UUID_LIKE);
    } finally {
      await c.close();
    }
  }));

  test('valid HS256 token over BOSH (strophe.js) logs in', ref.wrap(async () => {
    const token = signJwt(jwtClaims({ room: '*' }));
    const c = await stropheConnect(ref.server, { token, room: 'r1' });
    await c.close();
  }));

  test('valid RS256 token (configured public key) logs in', ref.wrap(async () => {
    const token = signJwt(jwtClaims({ room: '*' }), { alg: 'RS256', header: { kid: 'oxbridge-test/rs256' } });
    const c = await wsConnect(ref.server, { token });
    await c.close();
  }));

  test('RS256 token signed by an unknown key is refused', ref.wrap(async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const token = signJwt(jwtClaims({ room: '*' }), { alg: 'RS256', key: other, header: { kid: 'oxbridge-test/rs256' } });
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token }), 'unknown RS256 key');
  }));

  test('expired token gives SASL not-allowed with a text', ref.wrap(async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(jwtClaims({ room: '*', iat: now - 7200, nbf: now - 7200, exp: now - 3600 }));
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token }), 'expired token');
  }));

  test('token not yet valid (nbf in the future) is refused', ref.wrap(async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(jwtClaims({ room: '*', nbf: now + 3600, exp: now + 7200 }));
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token }), 'nbf in future');
  }));

  test('token with a bad HS256 signature is refused', ref.wrap(async () => {
    const token = signJwt(jwtClaims({ room: '*' }), { key: 'not-the-secret' });
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token }), 'bad signature');
  }));

  test('token from another issuer is refused', ref.wrap(async () => {
    const token = signJwt(jwtClaims({ room: '*', iss: 'someone-else' }));
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token }), 'wrong iss');
  }));

  test('token without aud is refused', ref.wrap(async () => {
    const claims = jwtClaims({ room: '*' });
    delete claims.aud;
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token: signJwt(claims) }), 'missing aud');
  }));

  test('unsigned token (alg none) is refused', ref.wrap(async () => {
    const token = signJwt(jwtClaims({ room: '*' }), { alg: 'none' });
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token }), 'alg none');
  }));

  test('garbage token is refused', ref.wrap(async () => {
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, { token: 'not.a.jwt' }), 'garbage token');
  }));

  test('no token at all is let through as plain anonymous (allow_empty_token)', ref.wrap(async () => {
    const c = await wsConnect(ref.server);
    await c.close();
  }));

  test('room claim: joining the named room works, another room is refused with not-allowed', ref.wrap(async () => {
    const allowed = uniqueRoom('jwtok');
    const other = uniqueRoom('jwtother');
    const f1 = await focusJoin(ref.server, allowed);
    const f2 = await focusJoin(ref.server, other);
    const c = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room: allowed })), room: allowed });
    try {
      let refused = null;
      try {
        await joinRoom(c, other, 'abcd1234');
      } catch (e) {
        refused = e;
      }
      assert.ok(refused, `joining ${other} with a token for room ${allowed} must be refused`);
      assert.equal(refused.condition, 'not-allowed', refused.message);
      const self = await joinRoom(c, allowed, 'abcd1234');
      assert.ok(self);
    } finally {
      await c.close();
      await f1.close();
      await f2.close();
    }
  }));

  test('room claim "*" allows any room; the claim is compared case-insensitively', ref.wrap(async () => {
    const room = uniqueRoom('jwtstar');
    const f = await focusJoin(ref.server, room);
    const a = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room: '*' })) });
    const b = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room: room.toUpperCase() })) });
    try {
      await joinRoom(a, room, 'aaaa0001');
      await joinRoom(b, room, 'bbbb0002');
    } finally {
      await a.close();
      await b.close();
      await f.close();
    }
  }));

  test('context.user appears as <identity><user> in the MUC presence others see; spoofed identity is replaced', ref.wrap(async () => {
    const room = uniqueRoom('jwtid');
    const f = await focusJoin(ref.server, room);
    const observer = await wsConnect(ref.server, { label: 'observer' });
    const user = { id: 'user-42', name: 'Dr. Ada <Lovelace> & "Co" 😀', avatar: 'https://example.org/a.png', email: 'ada@example.org' };
    const c = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room, user })), label: 'token-user' });
    try {
      await joinRoom(observer, room, 'obs00001');
      const spoof = xml('identity', {}, xml('user', {}, xml('id', {}, 'spoofed'), xml('name', {}, 'Spoofed')));
      await joinRoom(c, room, 'tok00001', { children: [spoof] });
      const p = await observer.inbox.waitFor(isPresenceFrom(`${roomJid(room)}/tok00001`), { desc: 'token user presence' });
      const identities = p.getChildren('identity');
      assert.equal(identities.length, 1, `exactly one <identity> in ${p}`);
      const u = identities[0].getChild('user');
      assert.ok(u, `<identity><user> in ${p}`);
      assert.equal(u.getChildText('id'), user.id);
      assert.equal(u.getChildText('name'), user.name);
      assert.equal(u.getChildText('avatar'), user.avatar);
      assert.equal(u.getChildText('email'), user.email);
    } finally {
      await c.close();
      await observer.close();
      await f.close();
    }
  }));

  test('context.user.moderator: true gives affiliation owner / role moderator', ref.wrap(async () => {
    const room = uniqueRoom('jwtmod');
    const f = await focusJoin(ref.server, room);
    const mod = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room, user: { id: 'm1', name: 'Mod', moderator: true } })) });
    const plain = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room, user: { id: 'p1', name: 'Plain' } })) });
    try {
      const selfMod = await joinRoom(mod, room, 'mod00001');
      assert.equal(mucItem(selfMod)?.attrs.affiliation, 'owner', `moderator self-presence: ${selfMod}`);
      assert.equal(mucItem(selfMod)?.attrs.role, 'moderator', `moderator self-presence: ${selfMod}`);
      const selfPlain = await joinRoom(plain, room, 'pln00001');
      assert.notEqual(mucItem(selfPlain)?.attrs.affiliation, 'owner', `non-moderator self-presence: ${selfPlain}`);
      // the others see it too
      const seen = await plain.inbox.waitFor(isPresenceFrom(`${roomJid(room)}/mod00001`), { desc: 'moderator presence' });
      assert.equal(mucItem(seen)?.attrs.affiliation, 'owner');
    } finally {
      await mod.close();
      await plain.close();
      await f.close();
    }
  }));
});

describe('JWT with allow_empty_token = false', () => {
  const ref = useServer({ before, after }, { allowEmptyToken: false });

  test('no token gives SASL not-allowed (token required) over WebSocket', ref.wrap(async () => {
    assertSaslNotAllowed(await wsConnectExpectFailure(ref.server, {}), 'missing token');
  }));

  test('no token over BOSH fails authentication (strophe AUTHFAIL)', ref.wrap(async () => {
    const c = await stropheConnect(ref.server, { expectFailure: true });
    assert.equal(c.connected, false);
    assert.ok(c.statuses.some((s) => s.startsWith('AUTHFAIL')), `statuses: ${c.statuses}`);
    assert.ok(c.rawIn.some((d) => d.includes('not-allowed')), 'the BOSH body carries <failure><not-allowed/>');
  }));

  test('a valid token still logs in', ref.wrap(async () => {
    const c = await wsConnect(ref.server, { token: signJwt(jwtClaims({ room: '*' })) });
    await c.close();
  }));

  test('the focus account (PLAIN) is not affected by token requirement', ref.wrap(async () => {
    const room = uniqueRoom('jwtreq');
    const f = await focusJoin(ref.server, room);
    await f.close();
  }));
});

void NS;
