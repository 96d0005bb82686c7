// Shared launcher for the whole-stack tests: starts one oxbridge process with a
// fresh TOML config on free loopback ports and stops it again.
//
// Binary: $OXBRIDGE_BIN or <repo>/target/debug/oxbridge.
// Set OXBRIDGE_TEST_KEEP=1 to keep the temp dir (config + log) after the run.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '..', '..');
export const BIN = process.env.OXBRIDGE_BIN || join(REPO, 'target', 'debug', 'oxbridge');

export const DOMAIN = 'localhost';
export const MUC = 'conference.localhost';
export const FOCUS_COMPONENT = 'focus.localhost';
export const FOCUS_JID = 'focus@auth.localhost';
export const FOCUS_PASSWORD = 'focus-secret';
export const JWT_APP_ID = 'oxbridge-test';
export const JWT_SECRET = 'jwt-test-secret';

/** One free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** RS256 key pair, made once per process; the public half is given to the server. */
let rsaKeys = null;
export function rsaKeyPair() {
  rsaKeys ??= generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return rsaKeys;
}

function toml(s) {
  return JSON.stringify(s); // a JSON string is a valid TOML basic string
}

/**
 * Start a server. Options: { allowEmptyToken = true, extraToml = '' }.
 * Returns { http, ws, bosh, httpPort, xmppPort, componentPort, dir, logPath, log(), stop() }.
 */
export async function startServer({ allowEmptyToken = true, extraToml = '', env = {} } = {}) {
  if (process.env.OXBRIDGE_TEST_EXTERNAL) return externalServer(process.env.OXBRIDGE_TEST_EXTERNAL);
  if (!existsSync(BIN)) {
    throw new Error(`oxbridge binary not found at ${BIN} (set OXBRIDGE_BIN or build it)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'oxbridge-js-'));
  const httpPort = await freePort();
  let xmppPort = await freePort();
  while (xmppPort === httpPort) xmppPort = await freePort();
  let componentPort = await freePort();
  while (componentPort === httpPort || componentPort === xmppPort) componentPort = await freePort();

  const pubPath = join(dir, 'rs256-public.pem');
  writeFileSync(pubPath, rsaKeyPair().publicKey);

  const configPath = join(dir, 'oxbridge.toml');
  writeFileSync(
    configPath,
    `domain = "localhost"

[http]
listen = "127.0.0.1:${httpPort}"

[xmpp]
listen = "127.0.0.1:${xmppPort}"
component_listen = "127.0.0.1:${componentPort}"

[[xmpp.accounts]]
jid = ${toml(FOCUS_JID)}
password = ${toml(FOCUS_PASSWORD)}

[auth.jwt]
app_id = ${toml(JWT_APP_ID)}
app_secret = ${toml(JWT_SECRET)}
public_keys = [${toml(pubPath)}]
accepted_audiences = ["*"]
allow_empty_token = ${allowEmptyToken ? 'true' : 'false'}

[sfu]
listen = "127.0.0.1:0"

[muc]
admins = [${toml(FOCUS_JID)}]
${extraToml}
`,
  );

  const logPath = join(dir, 'oxbridge.log');
  const fd = openSync(logPath, 'a');
  const child = spawn(BIN, ['serve', '--config', configPath], {
    stdio: ['ignore', fd, fd],
    // OXBRIDGE_* variables are config overrides for the server: pass none of ours (OXBRIDGE_BIN).
    // `env` adds the overrides a test wants.
    env: {
      ...Object.fromEntries(Object.entries({ RUST_LOG: 'info', ...process.env }).filter(([k]) => !k.startsWith('OXBRIDGE_'))),
      ...env,
    },
  });
  closeSync(fd);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });

  const http = `http://127.0.0.1:${httpPort}`;
  const server = {
    dir,
    configPath,
    logPath,
    httpPort,
    xmppPort,
    componentPort,
    pid: child.pid,
    http,
    ws: `ws://127.0.0.1:${httpPort}/xmpp-websocket`,
    bosh: `${http}/http-bind`,
    log() {
      try {
        return readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    },
    /** Print the server log to stderr (used when a test failed). */
    dumpLog(reason = '') {
      process.stderr.write(`\n----- oxbridge log (${logPath}) ${reason} -----\n${server.log()}\n----- end of log -----\n`);
    },
    async stop() {
      if (exited === null) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {}
        for (let i = 0; i < 50 && exited === null; i++) await sleep(100);
        if (exited === null) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {}
          for (let i = 0; i < 20 && exited === null; i++) await sleep(100);
        }
      }
      if (!process.env.OXBRIDGE_TEST_KEEP) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch {}
      }
    },
  };

  const deadline = Date.now() + 20_000;
  let lastErr = null;
  while (Date.now() < deadline) {
    if (exited !== null) {
      server.dumpLog('(server exited during startup)');
      throw new Error(`oxbridge exited during startup: ${JSON.stringify(exited)}`);
    }
    try {
      const r = await fetch(`${http}/about/health`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return server;
      lastErr = new Error(`health answered ${r.status}`);
    } catch (e) {
      lastErr = e;
    }
    await sleep(100);
  }
  server.dumpLog('(not healthy after 20 s)');
  await server.stop();
  throw new Error(`oxbridge not healthy after 20 s: ${lastErr?.message}`);
}

/**
 * OXBRIDGE_TEST_EXTERNAL=http://127.0.0.1:PORT points the suites at an already running server
 * (e.g. a stock Prosody with mod_bosh/mod_websocket) to check the client code itself; tests
 * that need oxbridge-only endpoints or config then fail or skip.
 */
function externalServer(base) {
  const http = base.replace(/\/$/, '');
  const port = new URL(http).port;
  return {
    external: true,
    http,
    httpPort: Number(port),
    ws: `${http.replace(/^http/, 'ws')}/xmpp-websocket`,
    bosh: `${http}/http-bind`,
    log: () => '',
    dumpLog() {},
    async stop() {},
  };
}

/**
 * Convenience for test files: start a server in before(), stop it in after(); the server log is
 * printed when a test wrapped with ref.wrap() failed (or always with OXBRIDGE_TEST_LOG=1).
 *   const ref = useServer({ before, after });
 *   test('x', ref.wrap(async () => { ... ref.server.ws ... }));
 * opts: startServer options, plus setup(server) / teardown() for file-wide fixtures such as
 * long-lived clients. They run inside the same hooks, after the server is up and before it is
 * stopped: Node 20 runs a file's top-level before() hooks concurrently, so a second before()
 * could not rely on ref.server.
 */
export function useServer({ before, after }, { setup, teardown, ...opts } = {}) {
  const ref = {
    server: null,
    failed: false,
    wrap(fn) {
      return async (...args) => {
        try {
          return await fn(...args);
        } catch (e) {
          ref.failed = true;
          throw e;
        }
      };
    },
  };
  before(async () => {
    ref.server = await startServer(opts);
    await setup?.(ref.server);
  });
  after(async () => {
    try {
      if (ref.server) await teardown?.();
    } finally {
      if (ref.server) {
        if (ref.failed || process.env.OXBRIDGE_TEST_LOG) ref.server.dumpLog();
        await ref.server.stop();
      }
    }
  });
  return ref;
}
