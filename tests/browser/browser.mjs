// Browser side of the browser tests: a tiny page server and a Chromium launcher.
//
// servePage() serves, from 127.0.0.1 on a free port (a secure context for getUserMedia), an HTML
// page that loads jQuery and a stock lib-jitsi-meet bundle: at `/` the one the tests run with,
// at `/v21` always the December 2021 build from npm (@lyno/lib-jitsi-meet). `/` is that npm
// build too unless OXBRIDGE_LJM_BUNDLE names another lib-jitsi-meet.min.js: no current build is
// on npm, so the current client is checked by pointing this at one built from its sources
// (shared/notes/browser-testing.md). The page defines window.start({ serviceUrl, room }) which
// connects with JitsiMeetJS the way the Jitsi web app does and joins the conference; every
// connection and conference event it sees is appended to window.events.
//
// openBrowser() starts Debian's /usr/bin/chromium through playwright-core with a fresh empty
// profile directory (see /work/shared/notes/browser-testing.md for the flags) and records the
// page's console output, WebSocket URLs and HTTP requests, for assertions and failure messages.

import { createServer } from 'node:http';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { DOMAIN, MUC, FOCUS_COMPONENT } from '../js/server.mjs';

const require = createRequire(import.meta.url);
const V21_BUNDLE = require.resolve('@lyno/lib-jitsi-meet/lib-jitsi-meet.min.js');
const FILES = {
  '/jquery.min.js': require.resolve('jquery/dist/jquery.min.js'),
  '/lib-jitsi-meet.min.js': process.env.OXBRIDGE_LJM_BUNDLE || V21_BUNDLE,
  '/v21/lib-jitsi-meet.min.js': V21_BUNDLE,
};

const page = (bundle) => `<!doctype html>
<meta charset="utf-8">
<title>oxbridge browser test</title>
<script src="/jquery.min.js"></script>
<script>window.jquery = window.jQuery; // the V21 bundle's UMD wrapper reads the lower-case global</script>
<script src="${bundle}"></script>
<script>${SCRIPT}</script>
`;

const SCRIPT = `
window.events = [];
window.remote = {}; // participant id -> { audio, video } elements
window.start = ({ serviceUrl, room, media = false, conferenceOptions = {} }) => {
  window.t0 = performance.now();
  const note = (name, detail) => window.events.push({
    name, detail: detail === undefined ? undefined : String(detail), t: Math.round(performance.now() - window.t0),
  });
  const { connection: C, conference: F } = JitsiMeetJS.events;
  JitsiMeetJS.init({});
  JitsiMeetJS.setLogLevel(JitsiMeetJS.logLevels.INFO);
  note('VERSION', JitsiMeetJS.version);
  const connection = new JitsiMeetJS.JitsiConnection(null, null, {
    hosts: { domain: ${JSON.stringify(DOMAIN)}, muc: ${JSON.stringify(MUC)}, focus: ${JSON.stringify(FOCUS_COMPONENT)} },
    serviceUrl,
  });
  window.connection = connection;
  connection.addEventListener(C.CONNECTION_FAILED, (err, msg) => note('CONNECTION_FAILED', err + ' ' + (msg || '')));
  connection.addEventListener(C.CONNECTION_DISCONNECTED, (msg) => note('CONNECTION_DISCONNECTED', msg));
  connection.addEventListener(C.CONNECTION_ESTABLISHED, () => {
    note('CONNECTION_ESTABLISHED', connection.getJid());
    const conference = connection.initJitsiConference(room, conferenceOptions);
    window.conference = conference;
    conference.on(F.CONFERENCE_JOINED, () => note('CONFERENCE_JOINED', conference.myUserId()));
    conference.on(F.USER_JOINED, (id) => note('USER_JOINED', id));
    conference.on(F.CONNECTION_ESTABLISHED, () => note('MEDIA_CONNECTED'));
    conference.on(F.USER_LEFT, (id) => note('USER_LEFT', id));
    conference.on(F.ENDPOINT_MESSAGE_RECEIVED, (p, msg) => note('ENDPOINT_MESSAGE', p.getId() + ' ' + JSON.stringify(msg)));
    conference.on(F.TRACK_MUTE_CHANGED, (t) => {
      if (!t.isLocal()) note('REMOTE_MUTE', t.getParticipantId() + ' ' + t.getType() + ' ' + t.isMuted());
    });
    conference.on(F.TRACK_ADDED, (t) => {
      if (t.isLocal()) return;
      const id = t.getParticipantId();
      const el = document.createElement(t.getType() === 'audio' ? 'audio' : 'video');
      el.autoplay = true;
      el.muted = t.getType() === 'video';
      document.body.appendChild(el);
      t.attach(el);
      (window.remote[id] ??= {})[t.getType()] = el;
      note('TRACK_ADDED', id + ' ' + t.getType());
    });
    // As the web app does: when the policy arrives, the app mutes the tracks it
    // has, and tracks made later start muted (the policy may come first). The 2021
    // client takes the policy from the focus; the current one decides from its own
    // config (startAudioMuted: n).
    const startMuted = (t) => (t.getType() === 'audio' ? window.startMutedPolicy().audio : window.startMutedPolicy().video);
    const applyStartMuted = async () => {
      for (const t of window.localTracks ?? []) if (startMuted(t) && !t.isMuted()) await t.mute();
    };
    if (F.STARTED_MUTED) {
      conference.on(F.STARTED_MUTED, async () => {
        note('STARTED_MUTED', conference.isStartAudioMuted() + ' ' + conference.isStartVideoMuted());
        await applyStartMuted();
      });
    } else {
      conference.on(F.START_MUTED_POLICY_CHANGED, async (p) => {
        note('STARTED_MUTED', p.audio + ' ' + p.video);
        await applyStartMuted();
      });
    }
    if (media) {
      JitsiMeetJS.createLocalTracks({ devices: ['audio', 'video'], resolution: 180 }).then(async (tracks) => {
        window.localTracks = tracks;
        for (const t of tracks) {
          if (startMuted(t)) await t.mute();
          await conference.addTrack(t);
        }
        note('LOCAL_TRACKS', tracks.length);
      }, (e) => note('LOCAL_TRACKS_FAILED', e));
    }
    conference.on(F.CONFERENCE_FAILED, (err) => note('CONFERENCE_FAILED', err));
    conference.on(F.CONFERENCE_ERROR, (err) => note('CONFERENCE_ERROR', err));
    conference.join();
  });
  connection.connect();
};
// What this participant was told to start with: from the focus in the 2021 client
// (its getStartMutedPolicy is the one a moderator sets, not the one received).
window.startMutedPolicy = () => (JitsiMeetJS.events.conference.STARTED_MUTED
  ? { audio: window.conference.isStartAudioMuted(), video: window.conference.isStartVideoMuted() }
  : window.conference.getStartMutedPolicy());
// What arrives from the bridge, per inbound RTP stream (Chromium's getStats()).
window.inbound = async () => {
  const pc = window.conference?.jvbJingleSession?.peerconnection?.peerconnection;
  if (!pc) return [];
  const out = [];
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') {
      out.push({ kind: s.kind, ssrc: s.ssrc, track: s.trackIdentifier, bytes: s.bytesReceived, packets: s.packetsReceived, frames: s.framesDecoded ?? 0 });
    }
  });
  return out;
};
// What arrives for each remote participant's track, as the app is given them: the stream
// behind each track (getStats' trackIdentifier is the MediaStreamTrack's id).
window.remoteInbound = async () => {
  const stats = await window.inbound();
  return (window.conference?.getParticipants() ?? []).flatMap((p) => p.getTracks().map((t) => {
    const s = stats.find((x) => x.track === t.getTrack().id);
    return { participant: p.getId(), kind: t.getType(), ssrc: s?.ssrc, bytes: s?.bytes ?? 0, frames: s?.frames ?? 0 };
  }));
};
// The DTLS transport to the bridge as Chromium's getStats() reports it.
window.transport = async () => {
  const pc = window.conference?.jvbJingleSession?.peerconnection?.peerconnection;
  let out = null;
  (await pc?.getStats())?.forEach((s) => {
    if (s.type === 'transport') out = { srtpCipher: s.srtpCipher, dtlsCipher: s.dtlsCipher, tlsVersion: s.tlsVersion, dtlsRole: s.dtlsRole };
  });
  return out;
};
window.stop = async () => {
  try { await window.conference?.leave(); } catch (e) {}
  try { window.connection?.disconnect(); } catch (e) {}
};
`;

const PAGES = { '/': page('/lib-jitsi-meet.min.js'), '/v21': page('/v21/lib-jitsi-meet.min.js') };

/** Serve the test pages and their scripts on 127.0.0.1; resolves to { url, close() }. */
export async function servePage() {
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (PAGES[path]) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGES[path]);
    } else if (FILES[path]) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(readFileSync(FILES[path]));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Launch Chromium with a new profile and open one page at `url`.
 * Returns { page, console: [], websockets: [], requests: [], consoleText(), close() }.
 */
export async function openBrowser(url) {
  const profile = mkdtempSync(join(tmpdir(), 'oxbridge-chromium-'));
  const pids = () =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(profile);
        } catch {
          return false;
        }
      })
      .map(Number);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const b = {
    page,
    console: [],
    websockets: [],
    requests: [],
    consoleText: () => b.console.join('\n'),
    /** SIGKILL this browser's processes (found by its own profile directory): a crash, no goodbye. */
    kill() {
      for (const pid of pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      b.killed = true;
    },
    async close() {
      let timer;
      if (b.killed) {
        await context.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
        return;
      }
      try {
        await Promise.race([page.evaluate(() => window.stop?.()), new Promise((r) => (timer = setTimeout(r, 2000)))]);
      } catch {}
      clearTimeout(timer);
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
  page.on('console', (m) => b.console.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => b.console.push(`[pageerror] ${e.stack || e.message}`));
  page.on('websocket', (ws) => b.websockets.push(ws.url()));
  page.on('request', (r) => b.requests.push(`${r.method()} ${r.url()}`));
  try {
    await page.goto(url);
  } catch (e) {
    await b.close();
    throw e;
  }
  return b;
}

/**
 * Wait until the page has recorded event `name` (window.events); fail at once on any of `failOn`
 * and after `timeout` ms with the events seen so far. Resolves to the event's detail.
 */
export async function pageEvent(page, name, { timeout = 10_000, failOn = ['CONNECTION_FAILED', 'CONFERENCE_FAILED'] } = {}) {
  const names = [name, ...failOn];
  try {
    await page.waitForFunction((ns) => window.events.some((e) => ns.includes(e.name)), names, { timeout });
  } catch (e) {
    if (e.name !== 'TimeoutError') throw e;
  }
  const events = await page.evaluate(() => window.events);
  const seen = JSON.stringify(events);
  const hit = events.find((e) => e.name === name);
  if (hit) return hit.detail;
  const failure = events.find((e) => failOn.includes(e.name));
  if (failure) throw new Error(`page: ${failure.name} (${failure.detail}) while waiting for ${name}; events: ${seen}`);
  throw new Error(`page: no ${name} within ${timeout} ms; events: ${seen}`);
}

/**
 * Polls getStats() until `b` hears `what.audio` remote participants' audio tracks and decodes
 * `what.video` of their video tracks (the tracks the app is given); resolves to the ms since the
 * page called start() (so, since it began connecting).
 */
export async function mediaArrives(b, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last = [];
  while (Date.now() < deadline) {
    last = await b.page.evaluate(() => window.remoteInbound());
    const audio = last.filter((t) => t.kind === 'audio' && t.bytes > 0);
    const video = last.filter((t) => t.kind === 'video' && t.frames > 0);
    if (audio.length >= what.audio && video.length >= what.video) {
      return b.page.evaluate(() => performance.now() - window.t0);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const events = await b.page.evaluate(() => window.events);
  const inbound = await b.page.evaluate(() => window.inbound());
  throw new Error(`media did not arrive at ${b.id} (want ${JSON.stringify(what)}): tracks ${JSON.stringify(last)}; streams ${JSON.stringify(inbound)}; events ${JSON.stringify(events)}`);
}

/**
 * Bytes received so far for each remote participant's track (`participant/kind` → bytes), to see
 * them rise. Only the streams behind the app's tracks count: Chromium also reports a stream of its
 * own for media that comes before the signalling names it, which no participant's track shows.
 */
export async function receivedBytes(b) {
  const tracks = await b.page.evaluate(() => window.remoteInbound());
  return Object.fromEntries(tracks.map((t) => [`${t.participant}/${t.kind}`, t.bytes]));
}

/**
 * Ms from the page's start() to the first frame decoded for a remote participant's video track
 * (getStats polled every 20 ms).
 */
export async function firstVideoFrame(b, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const tracks = await b.page.evaluate(() => window.remoteInbound());
    if (tracks.some((t) => t.kind === 'video' && t.frames > 0)) {
      return b.page.evaluate(() => performance.now() - window.t0);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no remote video frame at ${b.id} within ${timeout} ms`);
}
