// The tunnel in the dashboard: `rollcall serve --tunnel cloudflared` running the fake cloudflared
// (tests/fake-tunnel/cloudflared.mjs), the Setup screen showing it up with its URL, and "Send a
// test delivery" making the round trip through it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, REPO, addSource, artifact, chromiumPath, removeDir, startServe, tempDir, waitFor } from './support.mjs';

const FAKE_CLOUDFLARED = path.join(REPO, 'tests/fake-tunnel/cloudflared.mjs');

describe('tunnel in the dashboard', { timeout: 120_000 }, () => {
  let dataDir;
  let server;
  let browser;
  let page;

  before(async () => {
    dataDir = await tempDir();
    await addSource(dataDir, 'bigmarker', 'BigMarker main');
    server = await startServe(dataDir, {
      args: ['--tunnel', 'cloudflared', '--tunnel-program', FAKE_CLOUDFLARED],
    });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
    page = await browser.newPage();
    await page.goto(server.loginUrl);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dataDir) await removeDir(dataDir);
  });

  test('the Setup screen shows the tunnel up with its public URL', async () => {
    await page.getByTestId('nav-setup').click();
    const status = page.getByTestId('tunnel-status');
    await waitFor(async () => (await status.textContent())?.trim() === 'Up', { timeout: 20_000, what: 'tunnel up' });
    const url = (await page.getByTestId('tunnel-url').textContent()).trim();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    // The sources' hook URLs are under the tunnel's URL.
    await waitFor(async () => (await page.getByTestId('hook-url').first().textContent()).startsWith(`${url}/hooks/`), {
      what: 'hook URLs under the tunnel URL',
    });
  });

  test('"Send a test delivery" makes the round trip through the tunnel', async () => {
    await page.getByTestId('self-test-source').selectOption({ label: 'BigMarker main (BigMarker)' });
    await page.getByTestId('self-test-send').click();
    const result = page.getByTestId('self-test-result');
    await result.waitFor({ timeout: 20_000 });
    const text = await result.textContent();
    assert.equal(await result.getAttribute('data-passed'), 'true', text);
    assert.match(text, /through the tunnel/);
    await page.screenshot({ path: await artifact('tunnel-self-test.png'), fullPage: true });
  });
});
