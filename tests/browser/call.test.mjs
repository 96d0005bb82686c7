// A call through `oxbridge serve` with the stock client (lib-jitsi-meet 2.6726.2, V21) in Chromium
// with fake camera and microphone: the in-process focus gives each participant a Jingle session
// on the bridge, and each one receives the others' audio and video (getStats: bytes rising,
// frames decoded), endpoint messages over the bridge channel, mutes and leaves.
//
// Run from tests/: node --test --test-concurrency=1 browser/   (needs target/debug/oxbridge and
// /usr/bin/chromium). On failure the browsers' consoles and the server log are printed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../js/server.mjs';
import { uniqueRoom, withQuery } from '../js/xmpp.mjs';
import { servePage, openBrowser, pageEvent } from './browser.mjs';

let server;
let site;
let failed = false;
const browsers = [];

before(async () => {
  server = await startServer();
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

/** A browser in `room` over `transport` ('ws' or 'bosh') with camera and microphone. */
async function join(room, transport = 'ws') {
  const b = await openBrowser(site.url);
  browsers.push(b);
  const serviceUrl = withQuery(server[transport], { room });
  // P2P off, as our config.js says: the call goes through the bridge.
  await b.page.evaluate((opts) => window.start(opts), { serviceUrl, room, media: true, conferenceOptions: { p2p: { enabled: false } } });
  b.id = await pageEvent(b.page, 'CONFERENCE_JOINED', { timeout: 15_000 });
  return b;
}

/** Polls getStats() until `from`'s audio and video arrive at `b` (frames decoded); returns ms since start(). */
async function mediaArrives(b, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last = [];
  while (Date.now() < deadline) {
    last = await b.page.evaluate(() => window.inbound());
    const audio = last.filter((s) => s.kind === 'audio' && s.bytes > 0);
    const video = last.filter((s) => s.kind === 'video' && s.frames > 0);
    if (audio.length >= what.audio && video.length >= what.video) {
      return b.page.evaluate(() => performance.now() - window.t0);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const events = await b.page.evaluate(() => window.events);
  throw new Error(`media did not arrive at ${b.id} (want ${JSON.stringify(what)}): ${JSON.stringify(last)}; events ${JSON.stringify(events)}`);
}

/** Bytes received so far on every inbound stream, to see them rise. */
async function received(b) {
  const stats = await b.page.evaluate(() => window.inbound());
  return stats.reduce((sum, s) => sum + s.bytes, 0);
}

test('two participants over WebSocket see and hear each other, talk over the bridge channel, see mutes and a leave', wrap(async () => {
  const room = uniqueRoom('call');
  const a = await join(room);
  const b = await join(room);
  const firstFrame = await Promise.all([mediaArrives(a, { audio: 1, video: 1 }), mediaArrives(b, { audio: 1, video: 1 })]);
  console.log(`# connect to first remote video frame: ${firstFrame.map((t) => `${Math.round(t)} ms`).join(', ')}`);
  const before = await received(a);
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok((await received(a)) > before, 'media keeps flowing');

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

  // B leaves: A sees it go.
  await b.page.evaluate(() => window.stop());
  const left = await pageEvent(a.page, 'USER_LEFT');
  assert.equal(left, b.id);
}));
