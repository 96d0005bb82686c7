// The built-in meeting page, as a person (or an embedding site's iframe) opens it: two Chromium
// tabs on http://<server>/consultation-<id> join the same call through `oxbridge serve` and see
// and hear each other; the display name and start-muted hash overrides that Jitsi pages take
// are honoured; the camera toggle is seen by the other side; leave works.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startServer } from '../js/server.mjs';
import { openBrowser } from './browser.mjs';

let server;
let failed = false;
const browsers = [];

before(async () => {
  server = await startServer();
});
after(async () => {
  for (const b of browsers) {
    if (failed) console.log(`--- browser console ---\n${b.consoleText()}`);
    await b.close().catch(() => {});
  }
  if (failed || process.env.OXBRIDGE_TEST_LOG) server?.dumpLog();
  await server?.stop();
});

const wrap = (fn) => async () => {
  try {
    await fn();
  } catch (e) {
    failed = true;
    throw e;
  }
};

/** Opens the meeting page for `room` with `hash` overrides; resolves once it has joined. */
async function open(room, hash = '') {
  const b = await openBrowser(`${server.http}/${room}${hash}`);
  browsers.push(b);
  await b.page.waitForFunction(() => window.oxbridgeMeeting?.state === 'joined', null, { timeout: 20_000 });
  b.id = await b.page.evaluate(() => window.oxbridgeMeeting.conference.myUserId());
  return b;
}

/** Inbound audio and video from the bridge, as getStats() reports them on the page. */
async function inbound(b) {
  return b.page.evaluate(async () => {
    const pc = window.oxbridgeMeeting.conference?.jvbJingleSession?.peerconnection?.peerconnection;
    if (!pc) return { audio: 0, frames: 0 };
    let audio = 0;
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') audio += s.bytesReceived;
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
    });
    return { audio, frames };
  });
}

/** Waits until `b` decodes video and, when `audio`, receives audio. */
async function seesAndHears(b, audio = true) {
  const deadline = Date.now() + 20_000;
  let last;
  while (Date.now() < deadline) {
    last = await inbound(b);
    if ((!audio || last.audio > 0) && last.frames > 0) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no media on the page of ${b.id}: ${JSON.stringify(last)}`);
}

test('two tabs on /consultation-<id> see and hear each other, with names, start-muted and leave', wrap(async () => {
  const room = `consultation-${randomUUID().slice(0, 8)}`;
  const name = encodeURIComponent(JSON.stringify('Dr. Ada'));
  const doctor = await open(room, `#userInfo.displayName=${name}`);
  const patient = await open(room, '#config.startWithAudioMuted=true');
  // The patient joined muted: the doctor sees it but hears nothing yet.
  await Promise.all([seesAndHears(doctor, false), seesAndHears(patient)]);

  // The patient sees the doctor's name, and its own microphone starts muted.
  await patient.page.waitForFunction(
    (id) => window.oxbridgeMeeting.conference.getParticipantById(id)?.getDisplayName() === 'Dr. Ada',
    doctor.id,
    { timeout: 10_000 },
  );
  const muted = await patient.page.evaluate(() =>
    window.oxbridgeMeeting.localTracks.filter((t) => t.getType() === 'audio').every((t) => t.isMuted()));
  assert.ok(muted, 'startWithAudioMuted: the patient joined muted');
  await patient.page.evaluate(() => window.oxbridgeMeeting.toggleAudio());
  await seesAndHears(doctor, true);

  // The doctor turns the camera off: the patient sees it.
  await doctor.page.evaluate(() => window.oxbridgeMeeting.toggleVideo());
  await patient.page.waitForFunction((id) => {
    const p = window.oxbridgeMeeting.conference.getParticipantById(id);
    return p?.getTracksByMediaType('video')[0]?.isMuted() === true;
  }, doctor.id, { timeout: 10_000 });

  // The patient leaves: the doctor's page drops the tile.
  await patient.page.evaluate(() => window.oxbridgeMeeting.leave());
  await doctor.page.waitForFunction(
    (id) => !window.oxbridgeMeeting.remoteParticipants.includes(id),
    patient.id,
    { timeout: 10_000 },
  );
}));
