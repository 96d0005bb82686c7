// A call through `oxbridge serve` with the stock client (lib-jitsi-meet 2.6726.2, V21) in Chromium
// with fake camera and microphone: the in-process focus gives each participant a Jingle session
// on the bridge, and each one receives the others' audio and video (getStats: bytes rising,
// frames decoded), endpoint messages over the bridge channel, mutes and leaves.
//
// Run from tests/: node --test --test-concurrency=1 browser/   (needs target/debug/oxbridge and
// /usr/bin/chromium). On failure the browsers' consoles and the server log are printed.
// With OXBRIDGE_LJM_BUNDLE=<a current lib-jitsi-meet.min.js> the same calls run with that client,
// and the mixed-vintage test puts it in a room with the December 2021 one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../js/server.mjs';
import { uniqueRoom, withQuery } from '../js/xmpp.mjs';
import { servePage, openBrowser, pageEvent, mediaArrives, receivedBytes, firstVideoFrame } from './browser.mjs';

let server;
let site;
let failed = false;
const browsers = [];

// A killed browser cannot say goodbye: its XMPP session waits for a resume
// (XEP-0198) this long before the room sees it leave.
const RESUME_SECS = 5;

before(async () => {
  server = await startServer({ env: { OXBRIDGE_XMPP__RESUME_TIMEOUT_SECS: String(RESUME_SECS) } });
  site = await servePage();
});
after(async () => {
  for (const b of browsers) {
    if (failed) console.log(`--- browser console ---\n${b.consoleText()}`);
    await b.close().catch(() => {});
  }
  await site?.close();
  if (failed || process.env.OXBRIDGE_TEST_LOG) server?.dumpLog();
  await server?.stop();
});

const wrap = (fn) => async (t) => {
  try {
    await fn(t);
  } catch (e) {
    failed = true;
    throw e;
  }
};

/**
 * A browser in `room` over `transport` ('ws' or 'bosh') with camera and microphone, on the test
 * page of `client` ('' for the client under test, 'v21' for the December 2021 build).
 */
async function join(room, transport = 'ws', options = {}, client = '') {
  const b = await openBrowser(site.url + client);
  browsers.push(b);
  const serviceUrl = withQuery(server[transport], { room });
  // P2P off, as our config.js says: the call goes through the bridge.
  const conferenceOptions = { p2p: { enabled: false }, ...options };
  await b.page.evaluate((opts) => window.start(opts), { serviceUrl, room, media: true, conferenceOptions });
  b.id = await pageEvent(b.page, 'CONFERENCE_JOINED', { timeout: 15_000 });
  return b;
}

test('two participants over WebSocket see and hear each other, talk over the bridge channel, see mutes and a leave', wrap(async () => {
  const room = uniqueRoom('call');
  const a = await join(room);
  console.log(`# client: lib-jitsi-meet ${await pageEvent(a.page, 'VERSION')}`);
  const b = await join(room);
  const firstFrame = await Promise.all([firstVideoFrame(a), firstVideoFrame(b)]);
  console.log(`# connect to first remote video frame: ${firstFrame.map((t) => `${Math.round(t)} ms`).join(', ')}`);
  await Promise.all([mediaArrives(a, { audio: 1, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  // The bridge picks the SRTP profile as Videobridge does: AES-128-GCM, though Chromium lists AES-256-GCM first.
  for (const x of [a, b]) {
    const transport = await x.page.evaluate(() => window.transport());
    console.log(`# DTLS to the bridge: ${JSON.stringify(transport)}`);
    // Chromium names it SRTP_AEAD_AES_128_GCM; the stats spec's name has no prefix.
    assert.match(transport?.srtpCipher ?? '', /^(SRTP_)?AEAD_AES_128_GCM$/);
  }
  const steps = await b.page.evaluate(() => window.events.filter((e) => !e.name.startsWith('ENDPOINT')).map((e) => `${e.name}@${e.t}`));
  console.log(`# second joiner's steps (ms since connecting): ${steps.join(' ')}`);
  const before = await receivedBytes(a);
  await new Promise((r) => setTimeout(r, 1000));
  const after = await receivedBytes(a);
  const streams = async () => JSON.stringify(await a.page.evaluate(async () => ({ tracks: await window.remoteInbound(), inbound: await window.inbound() })));
  assert.deepEqual(Object.keys(before).sort(), [`${b.id}/audio`, `${b.id}/video`], `A has B's audio and video tracks: ${await streams()}`);
  for (const [track, bytes] of Object.entries(before)) {
    assert.ok(after[track] > bytes, `${track} keeps flowing: ${await streams()}`);
  }

  // An endpoint message crosses the bridge channel (colibri WebSocket).
  await a.page.evaluate(() => window.conference.sendEndpointMessage('', { type: 'hello', n: 1 }));
  await b.page.waitForFunction(
    (id) => window.events.some((e) => e.name === 'ENDPOINT_MESSAGE' && e.detail.startsWith(`${id} `) && e.detail.includes('"hello"')),
    a.id,
    { timeout: 10_000 },
  );

  // A mutes its microphone: B sees A's audio track muted (presence).
  await a.page.evaluate(() => window.localTracks.find((t) => t.getType() === 'audio').mute());
  await b.page.waitForFunction((id) => {
    const p = window.conference.getParticipantById(id);
    return p?.getTracksByMediaType('audio')[0]?.isMuted() === true;
  }, a.id, { timeout: 10_000 });
  await a.page.evaluate(() => window.localTracks.find((t) => t.getType() === 'audio').unmute());
  await b.page.waitForFunction((id) => {
    const p = window.conference.getParticipantById(id);
    return p?.getTracksByMediaType('audio')[0]?.isMuted() === false;
  }, a.id, { timeout: 10_000 });

  // A, the first in the room and so its moderator, mutes B through the focus.
  await a.page.waitForFunction(() => window.conference.isModerator(), null, { timeout: 10_000 });
  await a.page.evaluate((id) => window.conference.muteParticipant(id, 'audio'), b.id);
  await b.page.waitForFunction(
    () => window.localTracks.find((t) => t.getType() === 'audio').isMuted(),
    null,
    { timeout: 10_000 },
  );

  // B leaves: A sees it go.
  await b.page.evaluate(() => window.stop());
  const left = await pageEvent(a.page, 'USER_LEFT');
  assert.equal(left, b.id);
}));

test('with startAudioMuted: 1 the second joiner starts with its microphone muted, and the first sees it', wrap(async () => {
  const room = uniqueRoom('startmuted');
  // The web app passes config.startAudioMuted into the conference request; the focus answers
  // the second joiner's invitation with <startmuted audio="true">.
  const a = await join(room, 'ws', { startAudioMuted: 1 });
  const b = await join(room, 'ws', { startAudioMuted: 1 });
  await Promise.all([mediaArrives(a, { audio: 0, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  const micMuted = (x) => x.page.evaluate(() => window.localTracks.find((t) => t.getType() === 'audio').isMuted());
  // The focus told B (not A) to start muted; B's microphone is muted however its
  // tracks and the invitation raced.
  assert.match(await pageEvent(b.page, 'STARTED_MUTED'), /^true /, 'the focus told B to start with audio muted');
  assert.equal(await a.page.evaluate(() => window.startMutedPolicy().audio), false);
  await b.page.waitForFunction(() => window.localTracks?.find((t) => t.getType() === 'audio')?.isMuted(), null, { timeout: 10_000 });
  assert.equal(await micMuted(a), false, 'the first joiner keeps its microphone');
  // A hears nothing from B: any audio track of B's there is muted, and no sound arrives.
  await new Promise((r) => setTimeout(r, 2500));
  const mutedTracks = await a.page.evaluate(
    (id) => window.conference.getParticipantById(id)?.getTracksByMediaType('audio').map((t) => t.isMuted()) ?? [],
    b.id,
  );
  assert.ok(mutedTracks.every((m) => m), `B's audio tracks at A are muted: ${JSON.stringify(mutedTracks)}`);
  const audioBytes = async () =>
    (await a.page.evaluate(() => window.inbound())).filter((s) => s.kind === 'audio').reduce((n, s) => n + s.bytes, 0);
  // A muted microphone sends silence, of which the bridge passes one packet a second; a live
  // one about 3000 bytes a second.
  const before = await audioBytes();
  await new Promise((r) => setTimeout(r, 1000));
  const perSecond = (await audioBytes()) - before;
  assert.ok(perSecond < 500, `only silence from B reaches A: ${perSecond} audio bytes in a second`);
  for (const x of [a, b]) await x.close();
}));

test('three participants over WebSocket each get the other two, and a late joiner gets those already there', wrap(async () => {
  const room = uniqueRoom('three');
  const a = await join(room);
  const b = await join(room);
  await Promise.all([mediaArrives(a, { audio: 1, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  const c = await join(room);
  const late = await mediaArrives(c, { audio: 2, video: 2 });
  console.log(`# late joiner: connect to both remote videos in ${Math.round(late)} ms`);
  await Promise.all([mediaArrives(a, { audio: 2, video: 2 }), mediaArrives(b, { audio: 2, video: 2 })]);
  for (const x of [a, b, c]) await x.close();
}));

test('two participants over BOSH see and hear each other', wrap(async () => {
  const room = uniqueRoom('bosh');
  const a = await join(room, 'bosh');
  const b = await join(room, 'bosh');
  await Promise.all([mediaArrives(a, { audio: 1, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  for (const x of [a, b]) await x.close();
}));

test('the client under test and the December 2021 client (over BOSH) in one room see and hear each other', wrap(async () => {
  const room = uniqueRoom('vintages');
  const a = await join(room);
  const b = await join(room, 'bosh', {}, 'v21');
  await Promise.all([mediaArrives(a, { audio: 1, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  await b.page.evaluate(() => window.conference.sendEndpointMessage('', { type: 'hello', n: 2 }));
  await a.page.waitForFunction(
    (id) => window.events.some((e) => e.name === 'ENDPOINT_MESSAGE' && e.detail.startsWith(`${id} `) && e.detail.includes('"hello"')),
    b.id,
    { timeout: 10_000 },
  );
  for (const x of [a, b]) await x.close();
}));

test('a killed browser disappears for the others and the room keeps working', wrap(async () => {
  const room = uniqueRoom('crash');
  const a = await join(room);
  const b = await join(room);
  await Promise.all([mediaArrives(a, { audio: 1, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  const killedAt = Date.now();
  b.kill();
  const left = await pageEvent(a.page, 'USER_LEFT', { timeout: (RESUME_SECS + 10) * 1000 });
  assert.equal(left, b.id);
  console.log(`# killed browser gone for the others after ${Date.now() - killedAt} ms`);
  const d = await join(room);
  await Promise.all([mediaArrives(d, { audio: 1, video: 1 })]);
  const before = await receivedBytes(a);
  await new Promise((r) => setTimeout(r, 1000));
  const after = await receivedBytes(a);
  for (const kind of ['audio', 'video']) {
    const track = `${d.id}/${kind}`;
    assert.ok(after[track] > (before[track] ?? 0), `the survivor receives the newcomer's ${kind}: ${JSON.stringify(after)}`);
  }
  for (const x of [a, d]) await x.close();
}));
