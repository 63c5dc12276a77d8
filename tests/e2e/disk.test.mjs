// A disk that fails under Rollcall, in Chromium: `rollcall serve` keeps its data on ext4 on a loop
// device whose image lives on a small tmpfs; filling the tmpfs makes the device fail writes, as a
// dying disk does. The open dashboard says at once that Rollcall cannot write to disk and must be
// restarted, and still says so after a reload, while every webhook is answered 503. Needs root and
// loop devices, as CI has.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, open, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addSource, artifact, chromiumPath, launchChromium, postHook, removeDir, startServe, tempDir, waitFor } from './support.mjs';

function run(program, args) {
  return execFileSync(program, args, { encoding: 'utf8' }).trim();
}

/** Fills the filesystem at `dir` until a write fails; returns the ballast file to remove. */
async function fill(dir) {
  const ballast = path.join(dir, 'ballast');
  const file = await open(ballast, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) await file.write(chunk);
  } catch {
    /* full */
  } finally {
    await file.close().catch(() => {});
  }
  return ballast;
}

const registrant = (n, pad) => JSON.stringify({
  name: `Person ${n}`, email: `p${n}@example.com`, webinar: 'Disk', webinarId: 'disk', pad: 'x'.repeat(pad),
});

describe('a failing disk in Chromium', { timeout: 120_000 }, () => {
  let root;
  let backing;
  let mountPoint;
  let device;
  let dataDir;
  let profileDir;
  let serve;
  let context;
  let page;
  let hook;
  const pageErrors = [];

  before(async () => {
    assert.ok(chromiumPath(), 'Chromium is missing: run tests/e2e/run.sh (it installs Debian chromium)');
    root = await tempDir('rollcall-e2e-disk-');
    backing = path.join(root, 'backing');
    await mkdir(backing);
    run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', backing]);
    const image = path.join(backing, 'disk.img');
    await writeFile(image, '');
    await truncate(image, 64 << 20);
    device = run('losetup', ['--find', '--show', image]);
    run('mkfs.ext4', ['-q', '-O', '^has_journal', device]);
    mountPoint = path.join(root, 'disk');
    await mkdir(mountPoint);
    run('mount', ['-o', 'errors=continue', device, mountPoint]);
    dataDir = path.join(mountPoint, 'data');
    await mkdir(dataDir);
    profileDir = await tempDir('rollcall-e2e-chromium-');
    await addSource(dataDir, 'tagmango', 'E2E TagMango', 'http://127.0.0.1:9');
    serve = await startServe(dataDir);
    const printed = serve.hookUrls.find((h) => h.platform === 'tagmango')?.url;
    assert.ok(printed, `serve printed no TagMango hook: ${serve.stdout()}`);
    hook = `${printed.replace(/(\/hooks\/tagmango\/[^/]+).*$/, '$1')}/webinar.completed.all`;
    ({ context, page } = await launchChromium(profileDir, pageErrors));
    await page.goto(serve.loginUrl);
  });

  after(async () => {
    await context?.close().catch(() => {});
    await serve?.stop();
    for (const [program, args] of [['umount', ['-l', mountPoint]], ['losetup', ['-d', device]], ['umount', ['-l', backing]]]) {
      if (args[1]) {
        try {
          run(program, args);
        } catch {
          /* already gone */
        }
      }
    }
    await rm(root, { recursive: true, force: true }).catch(() => {});
    await removeDir(profileDir);
  });

  test('the dashboard says at once that Rollcall must be restarted, and webhooks get 503', async () => {
    const first = await postHook(hook, registrant(0, 100));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await page.goto(`${serve.dashboardBase}/#/webinars`);
    await page.getByTestId('webinar-row').first().waitFor();
    await waitFor(async () => (await page.getByTestId('live-status').textContent()) === 'connected', {
      what: 'the live stream to connect',
    });
    assert.equal(await page.getByTestId('store-failure').count(), 0, 'no failure shown before one happens');

    const ballast = await fill(backing);
    let refused;
    for (let n = 1; n < 40 && !refused; n += 1) {
      const answer = await postHook(hook, registrant(n, 200_000));
      if (answer.status === 503) refused = answer;
      else assert.equal(answer.status, 200, JSON.stringify(answer.body));
    }
    assert.ok(refused, 'the failing disk refused a delivery');

    const banner = page.getByTestId('store-failure');
    await banner.waitFor({ timeout: 10_000 });
    assert.match(await banner.textContent(), /cannot write to disk: restart it/);
    await page.screenshot({ path: await artifact('store-failure.png'), fullPage: false });

    // The device works again; Rollcall still refuses, and a reload still says why.
    await rm(ballast);
    const after = await postHook(hook, registrant(100, 100));
    assert.equal(after.status, 503, JSON.stringify(after.body));
    assert.match(after.body.message, /restarted/);
    await page.reload();
    await page.getByTestId('store-failure').waitFor({ timeout: 10_000 });
    assert.deepEqual(pageErrors, []);
  });
});
