// oxbridge's built-in meeting page: joins the room named by the path with lib-jitsi-meet, shows one
// tile per participant, and exposes window.oxbridgeMeeting so browser tests can drive and inspect it.
//
// Overrides as Jitsi pages take them (values are URI-encoded JSON, as external_api.js writes them):
//   #config.startWithAudioMuted=true  #config.startWithVideoMuted=true  #userInfo.displayName="Ann"
//   #config.bosh=true or ?transport=bosh (or #config.preferBosh=true): BOSH instead of WebSocket
//   ?jwt=<token>: passed to the server as ?token= (JWT authentication)

const NAME_KEY = 'oxbridge.displayName';
// Where the page connects stays the server's choice: a shared link must not redirect a call elsewhere.
const PROTECTED = new Set(['hosts', 'websocket', 'bosh', 'serviceUrl', 'focusUserJid', 'conferenceRequestUrl']);

const $ = (selector) => document.querySelector(selector);
const query = new URLSearchParams(location.search);
const params = hashParams(location.hash);
const config = withOverrides(window.config || {}, params);
const room = (document.body.dataset.room || decodeURIComponent(location.pathname.slice(1))).toLowerCase();

const meeting = {
  room,
  state: 'connecting', // connecting → joining → joined → left; or failed / disconnected
  connection: null,
  conference: null,
  localTracks: [],
  remoteParticipants: [], // participant (endpoint) ids, in join order
  error: null,
  events: [], // {name, detail} of every connection/conference event, for tests and debugging
  leave,
  toggleAudio,
  toggleVideo,
  setDisplayName,
};
window.oxbridgeMeeting = meeting;

const tiles = new Map(); // participant id → {el, video, caption}

/** `#a.b=<json>&c=<json>` → {'a.b': value, c: value}; a value that is not JSON stays a string. */
function hashParams(hash) {
  const out = {};
  for (const part of hash.replace(/^#/, '').split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    let key, raw;
    try {
      key = decodeURIComponent(part.slice(0, eq));
      raw = decodeURIComponent(part.slice(eq + 1));
    } catch {
      continue;
    }
    try {
      out[key] = JSON.parse(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}

/** A copy of `base` with every `config.<path>` hash parameter applied, except connection targets. */
function withOverrides(base, hash) {
  const cfg = structuredClone(base);
  for (const [key, value] of Object.entries(hash)) {
    if (!key.startsWith('config.')) continue;
    const path = key.slice('config.'.length).split('.');
    if (PROTECTED.has(path[0]) || path.some((p) => !p || p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
    let obj = cfg;
    for (const p of path.slice(0, -1)) {
      if (typeof obj[p] !== 'object' || obj[p] === null) obj[p] = {};
      obj = obj[p];
    }
    obj[path[path.length - 1]] = value;
  }
  return cfg;
}

function serviceUrl() {
  const bosh = query.get('transport') === 'bosh' || params['config.bosh'] === true || config.preferBosh === true;
  const url = bosh || !config.websocket ? config.bosh : config.websocket;
  return `${url}${url.includes('?') ? '&' : '?'}room=${encodeURIComponent(room)}`;
}

function note(name, detail) {
  meeting.events.push({ name, detail: detail === undefined ? undefined : String(detail) });
}

function setState(state) {
  meeting.state = state;
  note('state', state);
  const text = { connecting: 'Connecting…', joining: 'Joining…', joined: 'In the meeting', left: 'You left the meeting',
    failed: 'Not connected', disconnected: 'Disconnected', leaving: 'Leaving…' };
  $('#status').textContent = text[state] || state;
  renderControls();
}

function showMessage(text) {
  const el = $('#message');
  el.textContent = text;
  el.hidden = !text;
}

function fail(text) {
  meeting.error = text;
  showMessage(text);
  setState('failed');
}

function storedName() {
  try {
    return localStorage.getItem(NAME_KEY) || '';
  } catch {
    return ''; // storage can be blocked in embedded (third-party) frames
  }
}

function setDisplayName(name) {
  name = String(name ?? '').trim().slice(0, 64);
  $('#display-name').value = name;
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {}
  meeting.conference?.setDisplayName(name);
}

const localTrack = (type) => meeting.localTracks.find((t) => t.getType() === type);

async function createTracks(devices) {
  try {
    return await JitsiMeetJS.createLocalTracks({ devices });
  } catch (e) {
    if (devices.length < 2) throw e;
    // One missing or refused device should not cost the other.
    const each = await Promise.allSettled(devices.map((d) => JitsiMeetJS.createLocalTracks({ devices: [d] })));
    const tracks = each.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    if (!tracks.length) throw e;
    return tracks;
  }
}

async function addLocalTrack(track) {
  meeting.localTracks.push(track);
  if (track.getType() === 'video') track.attach($('#tile-local video'));
  if (meeting.conference) await meeting.conference.addTrack(track);
  renderControls();
}

async function toggle(type) {
  const track = localTrack(type);
  try {
    if (!track) {
      const [created] = await createTracks([type]);
      if (created) await addLocalTrack(created);
    } else if (track.isMuted()) {
      await track.unmute();
    } else {
      await track.mute();
    }
  } catch (e) {
    showMessage(`Could not switch the ${type === 'audio' ? 'microphone' : 'camera'}: ${e.message || e.name || e}`);
  }
  renderControls();
}

function toggleAudio() {
  return toggle('audio');
}

function toggleVideo() {
  return toggle('video');
}

function renderControls() {
  const on = (type) => !!localTrack(type) && !localTrack(type).isMuted();
  const live = ['connecting', 'joining', 'joined'].includes(meeting.state);
  const audio = $('#toggle-audio');
  const video = $('#toggle-video');
  audio.disabled = video.disabled = !live;
  audio.textContent = on('audio') ? 'Mute microphone' : 'Unmute microphone';
  audio.setAttribute('aria-pressed', String(!on('audio')));
  video.textContent = on('video') ? 'Stop camera' : 'Start camera';
  video.setAttribute('aria-pressed', String(!on('video')));
  $('#leave').disabled = meeting.state === 'left';
  const local = $('#tile-local');
  local.classList.toggle('audio-off', !on('audio'));
  local.classList.toggle('video-off', !on('video'));
}

function tileFor(id) {
  let tile = tiles.get(id);
  if (!tile) {
    const el = document.createElement('figure');
    el.className = 'tile remote video-off';
    el.dataset.participantId = id;
    const video = document.createElement('video');
    video.autoplay = video.muted = video.playsInline = true; // its sound plays through an <audio>
    const caption = document.createElement('figcaption');
    el.append(video, caption);
    $('#tiles').append(el);
    tile = { el, video, caption };
    tiles.set(id, tile);
    renderTile(id);
  }
  return tile;
}

function renderTile(id) {
  const tile = tiles.get(id);
  const user = meeting.conference?.getParticipantById(id);
  if (!tile || !user) return;
  tile.caption.textContent = user.getDisplayName() || 'Guest';
  const has = (type) => user.getTracksByMediaType(type).some((t) => !t.isMuted());
  tile.el.classList.toggle('video-off', !has('video'));
  tile.el.classList.toggle('audio-off', !has('audio'));
}

function removeTile(id) {
  tiles.get(id)?.el.remove();
  tiles.delete(id);
}

function onRemoteTrack(track) {
  if (track.isLocal()) return;
  const id = track.getParticipantId();
  const tile = tileFor(id);
  if (track.getType() === 'video') {
    track.attach(tile.video);
  } else {
    const audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.trackId = track.getId();
    tile.el.append(audio);
    track.attach(audio);
  }
  renderTile(id);
}

function onRemoteTrackRemoved(track) {
  if (track.isLocal()) return;
  const tile = tiles.get(track.getParticipantId());
  if (!tile) return;
  for (const el of [tile.video, ...tile.el.querySelectorAll('audio')]) {
    if (track.containers?.includes(el)) track.detach(el);
    if (el.tagName === 'AUDIO' && el.dataset.trackId === track.getId()) el.remove();
  }
  renderTile(track.getParticipantId());
}

function joinConference(tracksReady) {
  const F = JitsiMeetJS.events.conference;
  const conference = meeting.connection.initJitsiConference(room, { ...config });
  meeting.conference = conference;
  setState('joining');
  conference.on(F.CONFERENCE_JOINED, () => {
    note('CONFERENCE_JOINED', conference.myUserId());
    if (meeting.error === null) showMessage('');
    setState('joined');
  });
  conference.on(F.CONFERENCE_LEFT, () => note('CONFERENCE_LEFT'));
  conference.on(F.CONFERENCE_FAILED, (err) => {
    note('CONFERENCE_FAILED', err);
    fail(`Could not join the meeting (${err}).`);
  });
  conference.on(F.CONFERENCE_ERROR, (err) => {
    note('CONFERENCE_ERROR', err);
    showMessage(`Meeting error: ${err}`);
  });
  conference.on(F.KICKED, () => fail('You were removed from the meeting.'));
  conference.on(F.USER_JOINED, (id) => {
    note('USER_JOINED', id);
    if (!meeting.remoteParticipants.includes(id)) meeting.remoteParticipants.push(id);
    tileFor(id);
  });
  conference.on(F.USER_LEFT, (id) => {
    note('USER_LEFT', id);
    meeting.remoteParticipants = meeting.remoteParticipants.filter((p) => p !== id);
    removeTile(id);
  });
  conference.on(F.DISPLAY_NAME_CHANGED, (id) => renderTile(id));
  conference.on(F.TRACK_ADDED, onRemoteTrack);
  conference.on(F.TRACK_REMOVED, onRemoteTrackRemoved);
  conference.on(F.TRACK_MUTE_CHANGED, (track) => (track.isLocal() ? renderControls() : renderTile(track.getParticipantId())));

  const name = $('#display-name').value.trim();
  if (name) conference.setDisplayName(name);
  // Tracks go in before join(), as the stock app does, so the first offer already carries them.
  tracksReady.then(async () => {
    for (const track of meeting.localTracks) {
      if (!conference.getLocalTracks().includes(track)) await conference.addTrack(track);
    }
    if (meeting.state !== 'joining') return;
    conference.join();
    // The 2021 client retries a missing focus silently (notes/browser-testing.md): say so.
    setTimeout(() => meeting.state === 'joining' && showMessage('Waiting for the meeting to start…'), 10_000);
  });
}

async function leave() {
  if (['left', 'leaving'].includes(meeting.state)) return;
  setState('leaving');
  try {
    // leave() waits for the MUC to confirm, which never comes if the join was still pending.
    await Promise.race([meeting.conference?.leave(), new Promise((resolve) => setTimeout(resolve, 2000))]);
  } catch {}
  for (const track of meeting.localTracks) {
    try {
      await track.dispose();
    } catch {}
  }
  meeting.localTracks.length = 0;
  try {
    meeting.connection?.disconnect();
  } catch {}
  for (const id of [...tiles.keys()]) removeTile(id);
  meeting.remoteParticipants = [];
  setState('left');
  showMessage('You left the meeting. Reload the page to join again.');
}

function start() {
  $('#display-name').value = typeof params['userInfo.displayName'] === 'string' ? params['userInfo.displayName'] : storedName();
  $('#display-name').addEventListener('change', (e) => setDisplayName(e.target.value));
  $('#toggle-audio').addEventListener('click', toggleAudio);
  $('#toggle-video').addEventListener('click', toggleVideo);
  $('#leave').addEventListener('click', leave);
  renderControls();
  if (!window.JitsiMeetJS || !window.config) {
    fail('The meeting software did not load (lib-jitsi-meet or /config.js is missing). Reload to try again.');
    return;
  }
  // The 2021 build reads this flag from init() options, not from config.flags.
  JitsiMeetJS.init({ ...config, sourceNameSignaling: config.flags?.sourceNameSignaling === true });
  JitsiMeetJS.setLogLevel(JitsiMeetJS.logLevels.WARN);

  // Camera stays off (not merely muted) when starting video-muted; the button turns it on later.
  const devices = config.startWithVideoMuted === true ? ['audio'] : ['audio', 'video'];
  // Local preview starts while connecting; joinConference adds the tracks to the call.
  const tracksReady = createTracks(devices)
    .catch((e) => {
      showMessage(`No camera or microphone (${e.message || e.name || e}); you can still see and hear the others.`);
      return [];
    })
    .then(async (tracks) => {
      for (const track of tracks) await addLocalTrack(track);
      if (config.startWithAudioMuted === true) await localTrack('audio')?.mute();
      renderControls();
    });

  const C = JitsiMeetJS.events.connection;
  const connection = new JitsiMeetJS.JitsiConnection(null, query.get('jwt') || undefined, { ...config, serviceUrl: serviceUrl() });
  meeting.connection = connection;
  connection.addEventListener(C.CONNECTION_ESTABLISHED, () => {
    note('CONNECTION_ESTABLISHED', connection.getJid());
    joinConference(tracksReady);
  });
  connection.addEventListener(C.CONNECTION_FAILED, (err, msg) => {
    note('CONNECTION_FAILED', `${err} ${msg || ''}`);
    fail(`Could not connect to the server (${err}${msg ? `: ${msg}` : ''}).`);
  });
  connection.addEventListener(C.CONNECTION_DISCONNECTED, (msg) => {
    note('CONNECTION_DISCONNECTED', msg);
    if (!['left', 'leaving', 'failed'].includes(meeting.state)) setState('disconnected');
  });
  connection.connect();
  setTimeout(() => meeting.state === 'connecting' && showMessage('Still trying to reach the server…'), 15_000);
  window.addEventListener('pagehide', () => {
    if (meeting.state === 'joined') meeting.conference.leave();
    connection.disconnect();
  });
}

start();
