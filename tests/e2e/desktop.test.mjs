// The real desktop app: the Tauri window (WebKitGTK) driven through WebKitWebDriver, under Xvfb
// (run.sh wraps this file in `xvfb-run`). The app opens its window on its own dashboard, logged
// in; the tests read what the window shows, post a webhook to the app's ingest port and watch it
// arrive, then end the session and check the app exited and released its data directory.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import {
  BIN, GOTO_UID, REPO, addSource, artifact, freePort, gotoRegistration, importScenario, postHook, removeDir, rollcall,
  scenario, sleep, startServe, tempDir, track, waitFor, writeArtifact,
} from './support.mjs';
import { WebDriver } from './webdriver.mjs';

/** Pids of the live (non-zombie) children of `parent` whose command name is `name`. */
function childPids(parent, name) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat);
      if (m && m[1] === name && m[2] !== 'Z' && Number(m[3]) === parent) pids.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

/** Pids of live processes whose parent is `parent` and whose command line mentions `needle`. */
function childrenRunning(parent, needle) {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const m = /^\d+ \(.*\) (\S) (\d+)/.exec(stat);
      return m && m[1] !== 'Z' && Number(m[2]) === parent
        && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
    } catch {
      return false;
    }
  });
}

/**
 * Is `pid` still running? A process is gone once every one of its threads is: its main thread
 * turns zombie first, while the others may still be exiting and holding its files (the data
 * directory's lock among them).
 */
function alive(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).some((task) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
        return /^\d+ \(.*\) (\S)/.exec(stat)?.[1] !== 'Z';
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

describe('desktop window (Tauri under WebKitWebDriver)', { timeout: 300_000 }, () => {
  let dataDir;
  let expected;
  let hookUrl;
  let ingestPort;
  let dashboardPort;
  let driverProc;
  let driverLog = '';
  let driver;
  let appPid;

  assert.ok(process.env.DISPLAY, 'the desktop test needs a display: run it under xvfb-run (tests/e2e/run.sh does)');

  /** Starts WebKitWebDriver with the app's environment; `lang` is the locale the app runs in. */
  async function startDriver(lang, args = []) {
    const port = await freePort();
    const env = {
      ...process.env,
      TAURI_WEBVIEW_AUTOMATION: 'true',
      ROLLCALL_DATA_DIR: dataDir,
      ROLLCALL_INGEST_BIND: `127.0.0.1:${ingestPort}`,
      ROLLCALL_DASHBOARD_BIND: `127.0.0.1:${dashboardPort}`,
      RUST_LOG: 'warn',
      LANG: lang,
    };
    delete env.LC_ALL;
    delete env.LANGUAGE;
    driverProc = track(spawn('WebKitWebDriver', [`--port=${port}`], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    driverProc.stdout.setEncoding('utf8').on('data', (s) => (driverLog += s));
    driverProc.stderr.setEncoding('utf8').on('data', (s) => (driverLog += s));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/status`)).ok, { timeout: 20_000, what: 'WebKitWebDriver to listen' });
    driver = new WebDriver(base);
    // A headless build (`--no-default-features`) never opens a window: say so instead of hanging.
    let watching = true;
    const headless = (async () => {
      while (watching) {
        if (/running headless/.test(driverLog)) {
          throw new Error(`${BIN} has no desktop window (a --no-default-features build?): run \`cargo build\` first. Its output: ${driverLog}`);
        }
        await sleep(200);
      }
    })();
    let session;
    try {
      session = await Promise.race([
        driver.newSession({ alwaysMatch: { 'webkitgtk:browserOptions': { binary: BIN, args } } }, { timeout: 60_000 }),
        headless,
      ]);
    } finally {
      watching = false;
    }
    assert.ok(session.sessionId, 'a WebDriver session');
    const apps = await waitFor(() => {
      const pids = childPids(driverProc.pid, 'rollcall');
      return pids.length === 1 ? pids : null;
    }, { timeout: 10_000, what: 'the rollcall process under the driver' });
    appPid = apps[0];
  }

  async function stopDriver() {
    try {
      await driver?.deleteSession();
    } catch {
      /* already gone */
    }
    driver = null;
    const apps = new Set([appPid, ...(driverProc ? childPids(driverProc.pid, 'rollcall') : [])]);
    for (const pid of apps) {
      if (!pid || !alive(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    appPid = null;
    if (driverProc && driverProc.exitCode === null && driverProc.signalCode === null) {
      const exited = new Promise((resolve) => driverProc.once('exit', resolve));
      driverProc.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (driverProc.exitCode === null && driverProc.signalCode === null) driverProc.kill('SIGKILL');
    }
    driverProc = null;
  }

  async function shot(name) {
    await writeArtifact(`desktop-${name}.png`, await driver.screenshot());
  }

  async function texts(css) {
    return driver.execute(
      'return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.textContent.trim())',
      [css],
    );
  }

  async function attrs(css, name) {
    return driver.execute(
      'return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.getAttribute(arguments[1]))',
      [css, name],
    );
  }

  /**
   * Clicks the first element matching `css`, waiting for it to appear: the window may still be
   * loading its page when a session starts, and a re-render may replace an element just found.
   */
  async function click(css) {
    await waitFor(async () => {
      const [id] = await driver.findAll(css);
      if (!id) return false;
      await driver.click(id);
      return true;
    }, { timeout: 20_000, what: `something to click at ${css}` });
  }

  /** Why the page is blank, when it is: the language the page sees and the app module's error. */
  async function diagnose() {
    try {
      return await driver.call('POST', driver.s('/execute/async'), {
        script: `const done = arguments[arguments.length - 1];
          const src = document.querySelector('script[type=module]')?.src;
          const info = { language: navigator.language, url: location.href, script: src, appHtml: document.getElementById('app')?.innerHTML.length };
          if (!src) return done(info);
          import(src + '?diagnose').then(() => done({ ...info, import: 'ok' }), (e) => done({ ...info, import: String(e) }));`,
        args: [],
      });
    } catch (e) {
      return { diagnoseFailed: String(e) };
    }
  }

  async function waitForWebinarRows(count) {
    try {
      await waitFor(async () => (await attrs('[data-testid="webinar-row"]', 'data-uid')).length === count, {
        timeout: 20_000,
        what: `${count} webinar rows in the window`,
      });
    } catch (e) {
      await shot('blank').catch(() => {});
      assert.fail(`${e.message}; the window: ${JSON.stringify(await diagnose())}`);
    }
  }

  before(async () => {
    ({ expected } = await scenario());
    dataDir = await tempDir();
    [ingestPort, dashboardPort] = [await freePort(), await freePort()];
    const statuses = await importScenario(dataDir);
    assert.equal(statuses.length, 47);
    const hooks = await addSource(dataDir, 'gotowebinar', 'E2E GoTo', `http://127.0.0.1:${ingestPort}`);
    hookUrl = hooks[0].url;
    assert.match(hookUrl, new RegExp(`^http://127\\.0\\.0\\.1:${ingestPort}/hooks/gotowebinar/`));
  });

  after(async () => {
    await stopDriver();
    await writeFile(await artifact('desktop-driver.log'), driverLog).catch(() => {});
    await removeDir(dataDir);
  });

  test('the window lists the scenario webinars, shows a webhook live, and exits cleanly', async () => {
    try {
      await windowFlow();
    } finally {
      await stopDriver();
    }
  });

  async function windowFlow() {
    await startDriver('en_US.UTF-8');
    const url = new URL(await driver.url());
    assert.equal(url.host, `127.0.0.1:${dashboardPort}`, 'the window shows the app\'s own dashboard');

    await waitForWebinarRows(4);
    const uids = await attrs('[data-testid="webinar-row"]', 'data-uid');
    assert.deepEqual([...uids].sort(), Object.keys(expected.webinars).sort());
    for (const uid of uids) {
      const [registered] = await texts(`[data-testid="webinar-row"][data-uid="${uid}"] [data-testid="registered"]`);
      const [attended] = await texts(`[data-testid="webinar-row"][data-uid="${uid}"] [data-testid="attended"]`);
      assert.equal(registered, String(expected.webinars[uid].registered), `${uid} registered`);
      assert.equal(attended, String(expected.webinars[uid].attended), `${uid} attended`);
    }
    await shot('webinars');

    // The ingest port is the one we chose, and the app holds the data directory.
    assert.ok((await fetch(`http://127.0.0.1:${ingestPort}/healthz`)).ok, 'the app receives on its ingest port');
    await assert.rejects(startServe(dataDir, { timeout: 15_000 }), /already running/i,
      'a second receiver on the same data directory is refused while the window is open');
    // A second window too, when no session bus lets it hand over to this one: it says why, no panic.
    const secondWindow = { ROLLCALL_DATA_DIR: dataDir, ROLLCALL_INGEST_BIND: '127.0.0.1:0',
      ROLLCALL_DASHBOARD_BIND: '127.0.0.1:0', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' };
    await assert.rejects(rollcall([], { env: secondWindow, timeout: 30_000 }), (e) => {
      assert.match(e.message, /failed \(1\): /);
      assert.match(e.message, /^error: Rollcall is already running on /m);
      assert.doesNotMatch(e.message, /panicked/);
      return true;
    });

    // Live: a webhook posted to the app's ingest port appears without reloading.
    await waitFor(async () => (await texts('[data-testid="live-status"]'))[0] === 'connected', {
      timeout: 15_000, what: 'the live stream to connect',
    });
    const liveBefore = Number((await texts('[data-testid="live-deliveries"]'))[0]);
    await driver.execute('window.__sameDocument = true; return true;');
    const answer = await postHook(hookUrl, gotoRegistration({ firstName: 'Desktop', lastName: 'Live' }));
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'projected');
    await waitFor(async () => Number((await texts('[data-testid="live-deliveries"]'))[0]) === liveBefore + 1, {
      timeout: 5_000, what: 'live-deliveries to count the webhook',
    });
    const gotoRegistered = `[data-testid="webinar-row"][data-uid="${GOTO_UID}"] [data-testid="registered"]`;
    await waitFor(async () => (await texts(gotoRegistered))[0] === String(expected.webinars[GOTO_UID].registered + 1), {
      timeout: 5_000, what: 'the GoTo row to count the new registration',
    });
    assert.equal(await driver.execute('return window.__sameDocument === true'), true, 'no reload');
    await shot('live');

    // The delivery is on the deliveries screen.
    await click('[data-testid="nav-deliveries"]');
    await waitFor(async () => (await attrs(`[data-testid="delivery-row"][data-id="${answer.body.delivery}"]`, 'data-status'))[0] === 'projected', {
      timeout: 10_000, what: `delivery ${answer.body.delivery} on the deliveries screen`,
    });
    await shot('deliveries');

    // A webinar screen with its chart.
    await click('[data-testid="nav-webinars"]');
    await waitForWebinarRows(4);
    await click(`[data-testid="webinar-row"][data-uid="${GOTO_UID}"] a`);
    await waitFor(async () => (await texts('[data-testid="metric-registered"]'))[0] === String(expected.webinars[GOTO_UID].registered + 1), {
      timeout: 10_000, what: 'the GoTo webinar screen',
    });
    assert.equal((await texts('[data-testid="metric-time-in-session"]'))[0], 'unknown');
    await waitFor(async () => (await driver.findAll('[data-testid="timeline-chart"] canvas')).length > 0, {
      timeout: 10_000, what: 'the timeline chart canvas',
    });
    await shot('webinar');

    // Ending the session closes the window; the app exits and releases the data directory.
    const pid = appPid;
    await driver.deleteSession();
    await waitFor(() => !alive(pid), { timeout: 15_000, what: `the app (pid ${pid}) to exit` });
    await waitFor(async () => {
      try {
        await fetch(`http://127.0.0.1:${ingestPort}/healthz`, { signal: AbortSignal.timeout(1000) });
        return false;
      } catch {
        return true;
      }
    }, { timeout: 10_000, what: 'the ingest port to close' });
    assert.ok(existsSync(`${dataDir}/rollcall.lock`));
    const server = await startServe(dataDir, { timeout: 20_000 });
    try {
      assert.ok((await fetch(`${server.ingestBase}/healthz`)).ok, 'a new receiver starts on the released data directory');
    } finally {
      await server.stop();
    }
  }

  test('the window starts its tunnel through the shell plugin, shows its URL, and takes it down on exit', async () => {
    const fake = `${REPO}/tests/fake-tunnel/cloudflared.mjs`;
    try {
      await startDriver('en_US.UTF-8', ['--tunnel', 'cloudflared', '--tunnel-program', fake]);
      await click('[data-testid="nav-setup"]');
      await waitFor(async () => /up/i.test((await texts('[data-testid="tunnel-status"]'))[0] ?? ''), {
        timeout: 30_000, what: 'the tunnel to be up in the window',
      });
      const [url] = await texts('[data-testid="tunnel-url"]');
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the fake reports a loopback URL');
      assert.ok((await fetch(`${url}/healthz`)).ok, 'the public URL reaches the app\'s ingest listener');
      const tunnels = childrenRunning(appPid, 'fake-tunnel/cloudflared.mjs');
      assert.equal(tunnels.length, 1, 'the app runs one tunnel program');
      await shot('tunnel');
      const pid = appPid;
      await driver.deleteSession();
      await waitFor(() => !alive(pid), { timeout: 15_000, what: 'the app to exit' });
      await waitFor(() => !alive(tunnels[0]), { timeout: 10_000, what: 'the tunnel program to be gone with the app' });
    } finally {
      await stopDriver();
    }
  });

  test('the window renders under the POSIX locale (LANG=C.UTF-8), as on a minimal system or CI', async () => {
    try {
      await startDriver('C.UTF-8');
      await waitForWebinarRows(4);
      await waitFor(async () => (await texts('[data-testid="live-status"]'))[0] === 'connected', {
        timeout: 15_000, what: 'the live stream to connect',
      });
      await sleep(500); // let WebKit paint before the snapshot
      await shot('c-locale');
      const pid = appPid;
      await driver.deleteSession();
      await waitFor(() => !alive(pid), { timeout: 15_000, what: 'the app to exit' });
    } finally {
      await stopDriver();
    }
  });
});
