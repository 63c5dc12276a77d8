// Platform hookup in Chromium: a TagMango source with a wrong API key. `rollcall serve` talks to a
// fake TagMango API on loopback (ROLLCALL_TAGMANGO_API) that refuses any other key with 401, the
// way TagMango does; the Setup screen must say plainly that the key was rejected and where to fix
// it, and never show the key. Then the right key subscribes, and the list shows the 3 events.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { addSource, artifact, chromiumPath, launchChromium, removeDir, startServe, tempDir, waitFor } from './support.mjs';

const GOOD_KEY = 'tm-e2e-good-key-5b1f0c2d';
const BAD_KEY = 'tm-e2e-wrong-key-93ad71e4';

/** A fake TagMango subscription API; records each call. */
function fakeTagmango() {
  const calls = [];
  let next = 1;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      calls.push({ method: req.method, url: req.url, key: req.headers['x-api-key'], body });
      res.setHeader('content-type', 'application/json');
      if (req.headers['x-api-key'] !== GOOD_KEY) {
        res.statusCode = 401;
        res.end(JSON.stringify({ message: 'Invalid API key' }));
        return;
      }
      if (req.method === 'POST' && req.url === '/api/v1/integration/webhook/webhook') {
        res.end(JSON.stringify({ result: { _id: `tm-${next++}` } }));
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ message: 'not found' }));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, calls, base: `http://127.0.0.1:${server.address().port}/api/v1` }));
  });
}

describe('platform hookup in Chromium', { timeout: 120_000 }, () => {
  let dataDir;
  let profileDir;
  let serve;
  let fake;
  let context;
  let page;
  const pageErrors = [];

  before(async () => {
    assert.ok(chromiumPath(), 'Chromium is missing: run tests/e2e/run.sh (it installs Debian chromium)');
    fake = await fakeTagmango();
    dataDir = await tempDir();
    profileDir = await tempDir('rollcall-e2e-chromium-');
    await addSource(dataDir, 'tagmango', 'E2E TagMango', 'http://127.0.0.1:9');
    serve = await startServe(dataDir, { env: { ROLLCALL_TAGMANGO_API: fake.base, ROLLCALL_NO_KEYCHAIN: 'true' } });
    ({ context, page } = await launchChromium(profileDir, pageErrors));
    await page.goto(serve.loginUrl);
  });

  after(async () => {
    await context?.close().catch(() => {});
    await serve?.stop();
    fake?.server.close();
    await removeDir(dataDir);
    await removeDir(profileDir);
  });

  test('a wrong API key is answered with what to fix, and the right one subscribes', async () => {
    await page.goto(`${serve.dashboardBase}/#/setup`);
    const card = page.locator('[data-testid="source-card"][data-platform="tagmango"]');
    await card.waitFor();
    assert.equal((await card.getByTestId('last-delivery').textContent())?.trim(), 'Last delivery: none yet');

    await card.getByTestId('credential-input').fill(BAD_KEY);
    await card.getByTestId('credential-save').click();
    await card.getByTestId('credential-state').waitFor();
    await card.getByTestId('subscribe').click();
    const alert = card.getByTestId('subscription-error');
    await alert.waitFor();
    const message = (await alert.textContent())?.trim() ?? '';
    assert.match(message, /^TagMango rejected the API key \(401\): check the API key you copied from TagMango/);
    assert.ok(!message.includes(BAD_KEY), 'the key is never shown');
    assert.ok(!(await page.content()).includes(BAD_KEY), 'the key is nowhere on the page');
    assert.equal(fake.calls.length, 1, 'one call, then the rejection is reported');
    assert.equal(fake.calls[0].key, BAD_KEY);
    await page.screenshot({ path: await artifact('subscriptions-bad-key.png'), fullPage: true });

    await card.getByTestId('credential-input').fill(GOOD_KEY);
    await card.getByTestId('credential-save').click();
    await card.getByTestId('subscribe').click();
    const rows = card.getByTestId('subscription-row');
    await waitFor(async () => (await rows.count()) === 3, { what: '3 subscription rows' });
    assert.equal(await card.getByTestId('subscription-error').count(), 0, 'the error is gone');
    const events = fake.calls.slice(1).map((c) => JSON.parse(c.body).event);
    assert.deepEqual(events, ['webinar.created.single', 'webinar.created.recurring', 'webinar.completed.all']);
    assert.deepEqual(pageErrors, []);
  });
});
