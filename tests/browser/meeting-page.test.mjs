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

/**
 * What `b`'s page shows and plays of participant `id`: frames its tile's <video> has painted, and
 * the bytes received for the audio track it plays (getStats, by the track's id).
 */
async function shown(b, id) {
  return b.page.evaluate(async (id) => {
    const video = document.querySelector(`figure[data-participant-id="${id}"] video`);
    const frames = video?.videoWidth > 0 ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
    const track = window.oxbridgeMeeting.conference.getParticipantById(id)?.getTracksByMediaType('audio')[0];
    const pc = window.oxbridgeMeeting.conference.jvbJingleSession?.peerconnection?.peerconnection;
    let audio = 0;
    (await pc?.getStats())?.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.trackIdentifier && s.trackIdentifier === track?.getTrack().id) audio = s.bytesReceived;
    });
    return { frames, audio };
  }, id);
}

/**
 * Waits until `b`'s tile of `other` plays video and, when `audio`, `b` hears `other`: more than
 * a muted microphone's trickle (the bridge passes a packet of its silence a second; live sound
 * is about 3000 bytes a second) arrives within a second.
 */
async function seesAndHears(b, other, audio = true) {
  const deadline = Date.now() + 20_000;
  let last = await shown(b, other.id);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await shown(b, other.id);
    const sees = now.frames > last.frames && last.frames > 0;
    const hears = now.audio - last.audio > 1000;
    last = now;
    if (sees && (!audio || hears)) return;
  }
  throw new Error(`${b.id} does not ${audio ? 'see and hear' : 'see'} ${other.id}: ${JSON.stringify(last)}`);
}

test('two tabs on /consultation-<id> see and hear each other, with names, start-muted and leave', wrap(async () => {
  const room = `consultation-${randomUUID().slice(0, 8)}`;
  const name = encodeURIComponent(JSON.stringify('Dr. Ada'));
  const doctor = await open(room, `#userInfo.displayName=${name}`);
  const patient = await open(room, '#config.startWithAudioMuted=true');
  // The patient joined muted: the doctor sees it but hears nothing yet.
  await Promise.all([seesAndHears(doctor, patient, false), seesAndHears(patient, doctor)]);

  // The patient sees the doctor's name, and its own microphone starts muted.
  await patient.page.waitForFunction(
    (id) => window.oxbridgeMeeting.conference.getParticipantById(id)?.getDisplayName() === 'Dr. Ada',
    doctor.id,
    { timeout: 10_000 },
  );
  const muted = await patient.page.evaluate(() =>
    window.oxbridgeMeeting.localTracks.filter((t) => t.getType() === 'audio').every((t) => t.isMuted()));
  assert.ok(muted, 'startWithAudioMuted: the patient joined muted');
  const before = await shown(doctor, patient.id);
  await new Promise((r) => setTimeout(r, 1000));
  const quiet = (await shown(doctor, patient.id)).audio - before.audio;
  assert.ok(quiet < 500, `the doctor hears nothing from the muted patient: ${quiet} audio bytes in a second`);
  await patient.page.evaluate(() => window.oxbridgeMeeting.toggleAudio());
  await seesAndHears(doctor, patient, true);

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
