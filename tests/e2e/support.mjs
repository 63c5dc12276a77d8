// Shared helpers of the end-to-end tests: a `rollcall serve` on a temporary data directory and
// free ports, the multi-platform scenario, webhooks, and the dashboard API with the session
// cookie the one-time login link sets. Every process started here is stopped on exit, also when a
// test fails.

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../..');
export const BIN = process.env.ROLLCALL_BIN ?? path.join(REPO, 'target/debug/rollcall');
export const SCENARIO = path.join(REPO, 'tests/fixtures/scenarios/multi-platform');
export const ARTIFACTS = path.join(HERE, 'artifacts');

export const GOTO_UID = 'gotowebinar:5531907246183920417';
export const BIGMARKER_UID = 'bigmarker:b7c41e9a2d05';
export const LIVESTORM_UID = 'livestorm:3c9d2f6e-8b1a-4e57-9f02-6d4a1b7c8e93';
export const TAGMANGO_UID = 'tagmango:66a1f2c3d4e5f60718293a4b';

/** Every child process still running, killed when this process exits. */
const children = new Set();
process.on('exit', () => {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/** Keeps track of a spawned child until it exits. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a truthy value (or stops throwing); fails after `timeout` ms. */
export async function waitFor(probe, { timeout = 10_000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = new Error(`${what}: got ${JSON.stringify(value)}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${last?.message ?? last}`);
    }
    await sleep(interval);
  }
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A fresh temporary data directory. */
export async function tempDir(prefix = 'rollcall-e2e-') {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir) {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** Runs the rollcall CLI to completion; resolves to its stdout, rejects with stderr on failure. */
export function rollcall(args, { env = {}, timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      BIN,
      args,
      { env: { ...process.env, RUST_LOG: 'warn', ...env }, timeout, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`rollcall ${args.join(' ')} failed (${error.code ?? error.signal}): ${stderr || error.message}`));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/** The scenario's manifest and expected numbers. */
export async function scenario() {
  const manifest = JSON.parse(await readFile(path.join(SCENARIO, 'manifest.json'), 'utf8'));
  const expected = JSON.parse(await readFile(path.join(SCENARIO, 'expected.json'), 'utf8'));
  return { manifest, expected };
}

/** Imports the multi-platform scenario into `dataDir`, one `rollcall import` per delivery, in order. */
export async function importScenario(dataDir) {
  const { manifest } = await scenario();
  const statuses = [];
  for (const d of manifest.deliveries) {
    const args = ['--data-dir', dataDir, 'import', d.platform];
    if (d.trigger !== null) args.push('--trigger', d.trigger);
    // Keep the scenario's receipt times: payloads without a time of their own are placed there.
    args.push('--received-at', d.received_at);
    args.push('--time-zone', manifest.source_zone, path.join(SCENARIO, d.file));
    const out = await rollcall(args);
    const status = /delivery \d+ (\w+)/.exec(out)?.[1];
    if (!status) throw new Error(`rollcall import printed no status: ${out}`);
    statuses.push(status);
  }
  return statuses;
}

/** Hook URLs printed by `sources add` or `serve`: lines ending in `http://…/hooks/<platform>/<token>…`. */
export function parseHookUrls(text) {
  const urls = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(.*?)\s+(https?:\/\/\S+\/hooks\/([a-z]+)\/\S+)\s*$/.exec(line);
    if (m) urls.push({ label: m[1], url: m[2], platform: m[3] });
  }
  return urls;
}

/** `rollcall sources add`; resolves to the hook URLs it printed. */
export async function addSource(dataDir, platform, label, publicUrl, extra = []) {
  const args = ['--data-dir', dataDir, 'sources', 'add', platform, label];
  if (publicUrl) args.push('--public-url', publicUrl);
  const out = await rollcall([...args, ...extra]);
  const urls = parseHookUrls(out);
  if (urls.length === 0) throw new Error(`sources add printed no hook URL:\n${out}`);
  return urls;
}

/**
 * Starts `rollcall serve` on `dataDir` with free ports (and `args`); resolves once it printed its URLs.
 * Returns { child, ingestBase, dashboardBase, loginUrl, hookUrls, stdout(), stderr(), stop() }.
 */
export async function startServe(dataDir, { timeout = 30_000, env = {}, args = [] } = {}) {
  const child = track(
    spawn(
      BIN,
      ['--data-dir', dataDir, 'serve', '--ingest-bind', '127.0.0.1:0', '--dashboard-bind', '127.0.0.1:0', ...args],
      { env: { ...process.env, RUST_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (err += s));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const started = await Promise.race([
    waitFor(
      () => {
        const ingest = /receiving webhooks on (http:\/\/127\.0\.0\.1:\d+)\/hooks\//.exec(out);
        const login = /Dashboard: (http:\/\/127\.0\.0\.1:\d+)(\/login\?code=\S+)/.exec(out);
        // The source list comes after the dashboard line; wait for the blank line or data dir line.
        return ingest && login && /Data directory: .*\n/.test(out) ? { ingest, login } : null;
      },
      { timeout, interval: 50, what: 'rollcall serve to print its URLs' },
    ),
    exited.then(({ code, signal }) => {
      throw new Error(`rollcall serve exited early (${code ?? signal}):\n${out}\n${err}`);
    }),
  ]);
  await sleep(200); // let the source list finish printing
  const server = {
    child,
    dataDir,
    ingestBase: started.ingest[1],
    dashboardBase: started.login[1],
    loginUrl: started.login[1] + started.login[2],
    hookUrls: parseHookUrls(out),
    exited,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGTERM', { timeout: t = 15_000 } = {}) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), t);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  return server;
}

/** Checks the ingest listener answers `/healthz`. */
export async function healthy(ingestBase) {
  const res = await fetch(`${ingestBase}/healthz`);
  return res.ok;
}

/**
 * Exchanges the one-time login link for the session cookie (outside a browser, e.g. for the
 * desktop checks). The browser test logs in through its page instead and reads the cookie there.
 */
export async function loginCookie(loginUrl) {
  const res = await fetch(loginUrl, { redirect: 'manual' });
  if (res.status !== 303 && res.status !== 302 && res.status !== 307) {
    throw new Error(`login answered ${res.status}: ${await res.text()}`);
  }
  const set = res.headers.get('set-cookie') ?? '';
  const m = /(rollcall_session=[^;]+)/.exec(set);
  if (!m) throw new Error(`login set no session cookie: ${set}`);
  return m[1];
}

/** A dashboard API client carrying `cookie` (e.g. `rollcall_session=…`). */
export function apiClient(dashboardBase, cookie) {
  async function raw(pathAndQuery, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (cookie) headers.Cookie = cookie;
    return fetch(dashboardBase + pathAndQuery, { ...init, headers });
  }
  async function json(pathAndQuery, init = {}) {
    const res = await raw(pathAndQuery, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${pathAndQuery}: ${res.status} ${text}`);
    return JSON.parse(text);
  }
  async function bytes(pathAndQuery) {
    const res = await raw(pathAndQuery);
    if (!res.ok) throw new Error(`GET ${pathAndQuery}: ${res.status} ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }
  return {
    raw,
    json,
    bytes,
    webinars: () => json('/api/webinars'),
    webinar: (uid, session) =>
      json(`/api/webinars/${encodeURIComponent(uid)}${session ? `?session=${encodeURIComponent(session)}` : ''}`),
    deliveries: (query = '') => json(`/api/deliveries${query}`),
    people: (q) => json(`/api/people${q ? `?q=${encodeURIComponent(q)}` : ''}`),
    addSource: (body) =>
      json('/api/sources', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      }),
  };
}

/** Posts a body to a hook URL; resolves to { status, body }. */
export async function postHook(url, body, contentType = 'application/json') {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body: typeof body === 'string' ? body : body.text ?? JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

let counter = 0;

/**
 * A GoTo `registrant.added` for the scenario's GoTo webinar: a new person and a fresh eventKey.
 * Returned as JSON text: GoTo's keys are 64-bit integers, which a JS number would round.
 */
export function gotoRegistration({ firstName = 'Nadia', lastName = 'Test', email } = {}) {
  counter += 1;
  const n = `${Date.now()}${counter}`;
  const now = new Date().toISOString();
  const fields = {
    eventName: 'registrant.added',
    eventVersion: '1.0.0',
    product: 'g2w',
    eventKey: `e2e-${n}-${Math.random().toString(16).slice(2)}`,
    webinarKey: '@5531907246183920417',
    webinarTitle: 'Revenue Ops Roundtable',
    experienceType: 'CLASSIC',
    recurrenceType: 'single_session',
    webinarCreatorKey: '@6120934857102938475',
    firstName,
    lastName,
    email: email ?? `e2e.${n}@example.org`,
    organization: 'E2E Testing',
    registrationDate: now,
    status: 'APPROVED',
    registrationSource: 'E2E',
    registrantKey: `@77${n.slice(-15)}`,
    timestamp: now,
  };
  const text = JSON.stringify(fields, null, 2).replace(/"@(\d+)"/g, '$1');
  return { text, email: fields.email, eventKey: fields.eventKey };
}

/** Makes the artifacts directory; returns the path of `name` in it. */
export async function artifact(name) {
  await mkdir(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

export async function writeArtifact(name, data) {
  const file = await artifact(name);
  await writeFile(file, data);
  return file;
}

/** Flags for headless Chromium in a container: no sandbox, GPU or background network traffic. */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/**
 * Debian's Chromium with a persistent profile in `profileDir` (`options` go to playwright, such
 * as the viewport); resolves to { context, page } with page errors collected in `pageErrors`.
 */
export async function launchChromium(profileDir, pageErrors, options = {}) {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath(), args: CHROMIUM_ARGS, headless: true, timeout: 60_000,
    viewport: { width: 1280, height: 900 }, ...options,
  });
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  return { context, page };
}

/** The Chromium this machine has (Debian's), or null. */
export function chromiumPath() {
  const p = process.env.CHROMIUM ?? '/usr/bin/chromium';
  return existsSync(p) ? p : null;
}

/** A number shown in the UI: "66.7%" from a 0..1 rate, like the UI's formatRate. */
export function formatRate(ratio) {
  if (ratio === null || ratio === undefined) return 'unknown';
  const rounded = Math.round(ratio * 100 * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded.toFixed(0) : rounded.toFixed(1)}%`;
}

/** A duration as the UI shows it: "1 h 59 min", "43 min", "35 s"; null → "unknown". */
export function formatDuration(secs) {
  if (secs === null || secs === undefined) return 'unknown';
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s} s`;
  const totalMin = Math.round(s / 60);
  const h = Math.floor(totalMin / 60);
  const m = totalMin % 60;
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}
