// The bridge's HTTP face through the front door of `oxbridge serve`:
// /colibri/stats answers with Videobridge's key names, and /colibri-ws refuses
// what is not a live endpoint (404 for another bridge id, 403 otherwise).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useServer } from './server.mjs';

const ref = useServer({ before, after });

function wsStatus(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (e) => (e.message.includes('Unexpected server response') ? null : reject(e)));
  });
}

test('/colibri/stats reports conferences and participants the way Videobridge names them', ref.wrap(async () => {
  const res = await fetch(`${ref.server.http}/colibri/stats`);
  assert.equal(res.status, 200);
  const stats = await res.json();
  for (const key of [
    'conferences', 'participants', 'largest_conference', 'total_conferences_created',
    'total_conferences_completed', 'bit_rate_download', 'bit_rate_upload', 'packet_rate_download',
    'packet_rate_upload', 'stress_level', 'total_ice_succeeded', 'forwarding_latency_p99_us',
    'endpoints_sending_audio', 'endpoints_sending_video', 'inactive_conferences', 'receive_only_endpoints',
  ]) {
    assert.equal(typeof stats[key], 'number', `${key} in ${JSON.stringify(stats)}`);
  }
  assert.equal(stats.conferences, 0);
  assert.ok(stats.stress_level >= 0 && stats.stress_level <= 1, `stress_level ${stats.stress_level}`);
  assert.equal(stats.healthy, true);
  assert.equal(typeof stats.version, 'string');
}));

test('/colibri-ws refuses unknown bridges, conferences and secrets', ref.wrap(async () => {
  const base = ref.server.ws.replace('/xmpp-websocket', '/colibri-ws');
  assert.equal(await wsStatus(`${base}/another-bridge/conf/ep?pwd=x`), 404);
  assert.equal(await wsStatus(`${base}/oxbridge/conf/ep?pwd=x`), 403);
}));

test('/metrics carries the bridge counters next to the signaling ones', ref.wrap(async () => {
  const res = await fetch(`${ref.server.http}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  for (const name of [
    'oxbridge_sfu_datagrams_total{direction="in"}',
    'oxbridge_sfu_bytes_total{direction="out"}',
    'oxbridge_sfu_conferences',
    'oxbridge_sfu_worker_endpoints{worker="0"}',
    'oxbridge_sfu_worker_busy_seconds_total{worker="0"}',
    'oxbridge_sfu_endpoints_sending{kind="video"}',
    'oxbridge_sfu_inactive_conferences',
    'oxbridge_sfu_ice_failures_total',
    'oxbridge_xmpp_stanzas_in_total',
  ]) {
    assert.ok(text.split('\n').some((l) => l.startsWith(name)), `${name} in /metrics`);
  }
  // Forwarding latency is a histogram (rate-able), with the bounds a dashboard needs.
  assert.match(text, /^# TYPE oxbridge_sfu_forwarding_latency_seconds histogram$/m);
  for (const le of ['0.001', '+Inf']) {
    assert.match(text, new RegExp(`^oxbridge_sfu_forwarding_latency_seconds_bucket\\{le="${le.replace('+', '\\+')}"\\} \\d+$`, 'm'));
  }
  assert.match(text, /^oxbridge_sfu_forwarding_latency_seconds_count \d+$/m);
}));

test('drain mode is switched from this host and shows in stats and metrics', ref.wrap(async () => {
  const drain = async (on) => {
    const res = await fetch(`${ref.server.http}/colibri/drain/${on ? 'enable' : 'disable'}`, { method: 'POST' });
    assert.equal(res.status, 200);
    const stats = await (await fetch(`${ref.server.http}/colibri/stats`)).json();
    assert.equal(stats.drain, on);
    const metrics = await (await fetch(`${ref.server.http}/metrics`)).text();
    assert.match(metrics, new RegExp(`^oxbridge_sfu_draining ${on ? 1 : 0}$`, 'm'));
  };
  await drain(true);
  await drain(false);
}));
