// The dashboard in Chromium (playwright-core, Debian's chromium), against `rollcall serve` on a
// temporary data directory holding the multi-platform scenario. The tests run in order and share
// one server and one browser profile: the first ones run before logging in.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  BIGMARKER_UID, GOTO_UID, LIVESTORM_UID, TAGMANGO_UID,
  addSource, apiClient, launchChromium, artifact, chromiumPath, formatDuration, formatRate, gotoRegistration,
  importScenario, postHook, removeDir, scenario, startServe, tempDir, waitFor,
} from './support.mjs';

const UIDS = [GOTO_UID, BIGMARKER_UID, LIVESTORM_UID, TAGMANGO_UID];
const SESSION_A = 'a1f0c3d2-5e6b-4a7c-8d9e-0f1a2b3c4d5e';
const SESSION_B = 'b2e1d4c3-6f7a-4b8c-9e0f-1a2b3c4d5e6f';
const XSS_NAME = '<img src=x onerror="window.__xss=1">';

/** Waits until the trimmed text of `locator` is `expected`; fails with the last text seen. */
async function expectText(locator, expected, { timeout = 10_000, what = 'text' } = {}) {
  let seen;
  try {
    await waitFor(async () => {
      seen = (await locator.textContent({ timeout: 1000 }))?.trim();
      return seen === expected;
    }, { timeout, what });
  } catch {
    assert.fail(`${what}: expected ${JSON.stringify(expected)}, the page shows ${JSON.stringify(seen)}`);
  }
}

describe('dashboard in Chromium', { timeout: 240_000 }, () => {
  let dataDir;
  let profileDir;
  let server;
  let context;
  let page;
  let api;
  let expected;
  let meta;
  let gotoHook;
  const pageErrors = [];

  async function shot(name) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: await artifact(`${name}.png`), fullPage: true });
  }

  async function openWebinar(uid) {
    await page.getByTestId('nav-webinars').click();
    const row = page.locator(`[data-testid="webinar-row"][data-uid="${uid}"]`);
    await row.locator('a').first().click();
    await page.locator(`[data-testid="webinar-screen"][data-uid="${uid}"]`).waitFor();
    await page.getByTestId('metric-registered').waitFor();
  }

  before(async () => {
    assert.ok(chromiumPath(), 'Chromium is missing: run tests/e2e/run.sh (it installs Debian chromium)');
    ({ expected } = await scenario());
    dataDir = await tempDir();
    profileDir = await tempDir('rollcall-e2e-chromium-');
    const statuses = await importScenario(dataDir);
    assert.equal(statuses.length, 47);
    const hooks = await addSource(dataDir, 'gotowebinar', 'E2E GoTo', 'http://127.0.0.1:9');
    assert.equal(hooks.length, 1);
    server = await startServe(dataDir);
    gotoHook = server.hookUrls.find((h) => h.platform === 'gotowebinar')?.url;
    assert.ok(gotoHook?.startsWith(`${server.ingestBase}/hooks/gotowebinar/`), `serve printed no GoTo hook: ${server.stdout()}`);
    ({ context, page } = await launchChromium(profileDir, pageErrors, { acceptDownloads: true, viewport: { width: 1280, height: 800 } }));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await server?.stop();
    await removeDir(dataDir);
    await removeDir(profileDir);
  });

  test('the API refuses a request without the token, and the page says why', async () => {
    const res = await fetch(`${server.dashboardBase}/api/webinars`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('content-type') ?? '', /json/);
    const body = await res.json();
    assert.equal(body.kind, 'unauthorized');
    assert.ok(body.message.length > 10, 'the 401 names what to do');

    // A wrong token is refused the same way.
    const wrong = await fetch(`${server.dashboardBase}/api/webinars`, { headers: { Cookie: 'rollcall_session=nope' } });
    assert.equal(wrong.status, 401);

    await page.goto(`${server.dashboardBase}/#/webinars`);
    const alert = page.getByRole('alert').filter({ hasText: body.message }).first();
    await alert.waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('webinar-row').count(), 0, 'no data without the token');
    await shot('unauthenticated');
  });

  test('the one-time link logs in and lists the 4 scenario webinars with the API numbers', async () => {
    await page.goto(server.loginUrl);
    assert.equal(new URL(page.url()).pathname, '/', `the login link redirects to the UI, not ${page.url()}`);
    const rows = page.getByTestId('webinar-row');
    await waitFor(async () => (await rows.count()) === 4, { timeout: 15_000, what: '4 webinar rows' });

    const cookie = (await context.cookies(server.dashboardBase)).find((c) => c.name === 'rollcall_session');
    assert.ok(cookie, 'the login link set the session cookie');
    assert.equal(cookie.httpOnly, true, 'the session cookie is HttpOnly');
    assert.equal(await page.evaluate(() => document.cookie.includes('rollcall_session')), false);
    api = apiClient(server.dashboardBase, `${cookie.name}=${cookie.value}`);
    meta = await api.json('/api/meta');

    // The link works once only.
    const again = await fetch(server.loginUrl, { redirect: 'manual' });
    assert.equal(again.status, 401, 'a used login link is refused');

    const list = await api.webinars();
    assert.deepEqual(list.webinars.map((w) => w.uid).sort(), [...UIDS].sort());
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-uid')));
    assert.deepEqual(shown, list.webinars.map((w) => w.uid), 'rows in the API order');
    for (const w of list.webinars) {
      const row = page.locator(`[data-testid="webinar-row"][data-uid="${w.uid}"]`);
      await expectText(row.getByTestId('registered'), String(w.registered), { what: `${w.uid} registered` });
      await expectText(row.getByTestId('attended'), String(w.attended), { what: `${w.uid} attended` });
      assert.equal(w.registered, expected.webinars[w.uid].registered);
      assert.equal(w.attended, expected.webinars[w.uid].attended);
      const status = (await row.getByTestId('status').textContent())?.trim().toLowerCase();
      assert.ok(status, `${w.uid} shows a status`);
    }
    await shot('webinars');
  });

  test('each webinar screen shows the API numbers and a timeline chart', async () => {
    for (const uid of UIDS) {
      await openWebinar(uid);
      const report = await api.webinar(uid);
      const n = report.numbers;
      const want = expected.webinars[uid];
      for (const key of ['registered', 'attended', 'no_shows', 'walk_ins', 'attendance_rate', 'replay_viewers']) {
        assert.deepEqual(n[key], want[key], `${uid} ${key}: API vs expected.json`);
      }
      assert.equal(n.time_in_session?.total_secs ?? null, want.time_in_session?.total_secs ?? null);

      const metric = (id) => page.getByTestId(id);
      await expectText(metric('metric-registered'), String(n.registered), { what: `${uid} registered` });
      await expectText(metric('metric-attended'), String(n.attended), { what: `${uid} attended` });
      await expectText(metric('metric-no-shows'), String(n.no_shows), { what: `${uid} no-shows` });
      await expectText(metric('metric-walk-ins'), String(n.walk_ins), { what: `${uid} walk-ins` });
      await expectText(metric('metric-attendance-rate'), formatRate(n.attendance_rate), { what: `${uid} rate` });
      await expectText(metric('metric-replay-viewers'), String(n.replay_viewers), { what: `${uid} replay viewers` });
      const tis = formatDuration(n.time_in_session?.total_secs ?? null);
      await expectText(metric('metric-time-in-session'), tis, { what: `${uid} time in session` });
      if (uid === GOTO_UID || uid === TAGMANGO_UID) assert.equal(tis, 'unknown');
      else assert.notEqual(tis, 'unknown');

      // The attendees tab lists as many people as attended.
      await page.getByTestId('tab-attendees').click();
      await waitFor(async () => (await page.getByTestId('person-row').count()) === n.attended, {
        what: `${uid}: ${n.attended} attendee rows`,
      });

      // The chart: every scenario webinar has registration times, so uPlot draws a canvas.
      const timeline = await api.json(`/api/webinars/${encodeURIComponent(uid)}/timeline`);
      assert.ok(timeline.registrations.length > 0, `${uid} has registrations to draw`);
      await page.locator('[data-testid="timeline-chart"] canvas').first().waitFor({ timeout: 10_000 });
      const size = await page.locator('[data-testid="timeline-chart"] canvas').first().boundingBox();
      assert.ok(size && size.width > 100 && size.height > 50, `${uid}: the chart has a size (${JSON.stringify(size)})`);
      await shot(`webinar-${uid.split(':')[0]}`);
    }
  });

  test('switching a Livestorm session shows that session\'s numbers', async () => {
    await openWebinar(LIVESTORM_UID);
    await expectText(page.getByTestId('metric-time-in-session'), formatDuration(4494), { what: 'whole webinar time' });
    const select = page.getByTestId('session-select');
    const options = await select.locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(options.filter(Boolean).sort(), [SESSION_A, SESSION_B].sort());

    for (const session of [SESSION_B, SESSION_A]) {
      await select.selectOption(session);
      await waitFor(() => page.url().includes(`session=${encodeURIComponent(session)}`), { what: 'the route names the session' });
      const n = (await api.webinar(LIVESTORM_UID, session)).numbers;
      const want = expected.webinars[LIVESTORM_UID].sessions[session];
      assert.equal(n.registered, want.registered);
      assert.equal(n.attended, want.attended);
      assert.equal(n.time_in_session.total_secs, want.time_in_session.total_secs);
      await expectText(page.getByTestId('metric-registered'), String(want.registered), { what: `${session} registered` });
      await expectText(page.getByTestId('metric-attended'), String(want.attended), { what: `${session} attended` });
      await expectText(page.getByTestId('metric-no-shows'), String(want.no_shows), { what: `${session} no-shows` });
      await expectText(page.getByTestId('metric-attendance-rate'), formatRate(want.attendance_rate), { what: `${session} rate` });
      await expectText(page.getByTestId('metric-time-in-session'), formatDuration(want.time_in_session.total_secs), {
        what: `${session} time in session`,
      });
      assert.equal(await select.inputValue(), session);
    }
    await shot('webinar-livestorm-session-a');
    await select.selectOption('');
    await expectText(page.getByTestId('metric-time-in-session'), formatDuration(4494), { what: 'back to the whole webinar' });
  });

  test('exporting attendees downloads the API\'s file byte for byte; Excel adds the BOM', async () => {
    await openWebinar(BIGMARKER_UID);
    const link = page.getByTestId('export-attendees');
    const href = new URL(await link.getAttribute('href'), server.dashboardBase);
    assert.equal(href.pathname, '/api/export/attendees.csv');
    assert.equal(href.searchParams.get('webinar'), BIGMARKER_UID);
    const tz = href.searchParams.get('tz');
    assert.equal(tz, meta.time_zone, 'the UI exports in the zone it shows (the machine zone by default)');

    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(await download.failure(), null);
    assert.match(download.suggestedFilename(), /^attendees.*\.csv$/);
    const got = await readFile(await download.path());
    const want = await api.bytes(`/api/export/attendees.csv?webinar=${encodeURIComponent(BIGMARKER_UID)}&tz=${encodeURIComponent(tz)}`);
    assert.ok(want.length > 0);
    assert.ok(got.equals(want), `the UI's download (${got.length} bytes) equals the API's file (${want.length} bytes)`);
    assert.notDeepEqual([...got.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'no BOM without Excel');
    const lines = got.toString('utf8').split('\r\n').filter(Boolean);
    assert.equal(lines.length, 1 + expected.webinars[BIGMARKER_UID].attended, 'a header and one line per attendee');
    for (const email of ['grace.okafor@haldenfreight.com', 'priya.raman@northwind.io', 'lena.fischer@brandt-logistik.de']) {
      assert.ok(got.toString('utf8').includes(email), `${email} in the export`);
    }

    await page.getByTestId('export-excel').check();
    await waitFor(async () => (await link.getAttribute('href')).includes('excel=true'), { what: 'the link asks for Excel' });
    const [excelDownload] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const excel = await readFile(await excelDownload.path());
    assert.deepEqual([...excel.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the Excel file starts with the UTF-8 BOM');
    assert.ok(excel.subarray(3).equals(got), 'the Excel file is the BOM and the same CSV');
    await page.getByTestId('export-excel').uncheck();
  });

  test('a new registration shows up live without reloading', async () => {
    await openWebinar(GOTO_UID);
    await waitFor(async () => (await page.getByTestId('live-status').textContent())?.trim() === 'connected', {
      what: 'the live stream to connect',
    });
    const before = Number((await page.getByTestId('metric-registered').textContent()).trim());
    assert.equal(before, expected.webinars[GOTO_UID].registered);
    const liveBefore = Number((await page.getByTestId('live-deliveries').textContent()).trim());
    await page.evaluate(() => {
      window.__sameDocument = true;
    });

    const registration = gotoRegistration({ firstName: 'Nadia', lastName: 'Live' });
    const answer = await postHook(gotoHook, registration);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'projected');

    await expectText(page.getByTestId('metric-registered'), String(before + 1), { timeout: 5_000, what: 'registered after the webhook' });
    await expectText(page.getByTestId('metric-no-shows'), String(expected.webinars[GOTO_UID].no_shows + 1), {
      timeout: 5_000, what: 'no-shows after the webhook',
    });
    await expectText(page.getByTestId('live-deliveries'), String(liveBefore + 1), { timeout: 5_000, what: 'live deliveries' });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    assert.equal((await api.webinar(GOTO_UID)).numbers.registered, before + 1);

    await page.getByTestId('tab-registrants').click();
    await page.locator(`[data-testid="person-row"][data-uid="${registration.email}"]`).waitFor({ timeout: 5_000 });
  });

  test('a body that is not JSON is kept as quarantined, with its reason', async () => {
    const answer = await postHook(gotoHook, '{oops');
    assert.equal(answer.status, 200, 'a bad body is still acknowledged');
    assert.equal(answer.body.status, 'quarantined');
    const id = answer.body.delivery;

    await page.getByTestId('nav-deliveries').click();
    const row = page.locator(`[data-testid="delivery-row"][data-id="${id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-status'), 'quarantined');

    await page.getByTestId('delivery-status-filter').selectOption('quarantined');
    await waitFor(async () => {
      const statuses = await page.getByTestId('delivery-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-status')));
      return statuses.length === 1 && statuses[0] === 'quarantined';
    }, { what: 'only the quarantined delivery listed' });

    await row.click();
    const detail = page.locator(`[data-testid="delivery-detail"][data-id="${id}"]`);
    await detail.waitFor();
    const reason = (await detail.getByTestId('delivery-reason').textContent()).trim();
    assert.match(reason, /not valid JSON/);
    assert.equal((await detail.getByTestId('delivery-body').textContent()).trim(), '{oops');
    await shot('deliveries');

    // Reprocessing (a POST from the page, so the origin checks pass) reads it again: still quarantined.
    await detail.getByTestId('reprocess').click();
    await page.getByRole('status').filter({ hasText: `#${id}` }).waitFor();
    assert.match(await page.getByRole('status').first().textContent(), /quarantined/i);
    const after = await api.json(`/api/deliveries/${id}`);
    assert.equal(after.status, 'quarantined');
    await page.getByTestId('delivery-status-filter').selectOption('');
  });

  test('"Back up now" writes a whole copy and says where it is', async () => {
    await page.getByTestId('nav-deliveries').click();
    const { counts } = await api.json('/api/deliveries?limit=1');
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    await page.getByTestId('backup').click();
    const result = page.getByTestId('backup-result');
    await result.waitFor();
    const text = await result.textContent();
    assert.match(text, /backups\/rollcall-\d{8}-\d{6}\.\d{3}\.sqlite3/);
    const deliveries = Number(text.match(/Backed up ([\d,.\s]+) deliveries/)[1].replace(/\D/g, ''));
    assert.ok(deliveries >= total, `${deliveries} deliveries in the copy, ${total} before`);
    await shot('backup');
  });

  test('people: Priya is one person across GoTo and BigMarker', async () => {
    await page.getByTestId('nav-people').click();
    await page.getByTestId('people-search').fill('priya');
    const rows = page.getByTestId('people-row');
    await waitFor(async () => {
      const uids = await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-uid')));
      return uids.length === 1 && uids[0] === 'priya.raman@northwind.io';
    }, { what: 'one row for priya' });
    await shot('people');
    await rows.first().locator('a').first().click();
    const screen = page.locator('[data-testid="person-screen"][data-uid="priya.raman@northwind.io"]');
    await screen.waitFor();
    await waitFor(async () => (await page.getByTestId('history-row').count()) === 2, { what: 'two webinars in her history' });
    const text = await screen.textContent();
    assert.match(text, /GoTo Webinar/);
    assert.match(text, /BigMarker/);
    const history = await page.getByTestId('history-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-uid')).sort());
    assert.deepEqual(history, [BIGMARKER_UID, GOTO_UID].sort());
    await shot('person');
  });

  test('a name holding HTML is shown as text and never runs', async () => {
    const email = 'mallory.xss@example.org';
    const answer = await postHook(gotoHook, gotoRegistration({ firstName: XSS_NAME, lastName: 'Mallory', email }));
    assert.equal(answer.body.status, 'projected');

    await page.getByTestId('nav-people').click();
    await page.getByTestId('people-search').fill('mallory');
    const row = page.locator(`[data-testid="people-row"][data-uid="${email}"]`);
    await waitFor(async () => (await page.getByTestId('people-row').count()) === 1 && (await row.count()) === 1, {
      what: 'the search to leave only her row',
    });
    assert.ok((await row.textContent()).includes(XSS_NAME), 'the name is shown literally');
    assert.equal(await row.locator('img').count(), 0, 'no <img> was made from the name');
    await shot('people-xss');

    await row.locator('a').first().click();
    const screen = page.locator(`[data-testid="person-screen"][data-uid="${email}"]`);
    await screen.waitFor();
    await waitFor(async () => (await screen.locator('h1').textContent()).includes(XSS_NAME), { what: 'the name as the heading' });
    assert.equal(await screen.locator('img').count(), 0);

    await openWebinar(GOTO_UID);
    await page.getByTestId('tab-registrants').click();
    const reg = page.locator(`[data-testid="person-row"][data-uid="${email}"]`);
    await reg.waitFor();
    assert.ok((await reg.textContent()).includes(XSS_NAME));
    assert.equal(await page.locator('[data-testid="webinar-screen"] img').count(), 0);
    await page.waitForTimeout(300); // an onerror would have fired by now
    assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
  });

  test('setup lists the source with its hook URL and adds another', async () => {
    await page.getByTestId('nav-setup').click();
    const goto = page.locator('[data-testid="source-card"][data-platform="gotowebinar"]');
    await goto.waitFor();
    const urls = await goto.getByTestId('hook-url').allTextContents();
    assert.deepEqual(urls.map((u) => u.trim()), [gotoHook], 'the card shows the URL serve printed');

    await page.getByTestId('source-platform').selectOption('bigmarker');
    await page.getByTestId('source-label').fill('E2E BigMarker');
    await page.getByTestId('source-time-zone').fill('America/New_York');
    await page.getByTestId('source-add').click();
    const bigmarker = page.locator('[data-testid="source-card"][data-platform="bigmarker"]');
    await bigmarker.waitFor();
    const sources = await api.json('/api/sources');
    const added = sources.find((s) => s.platform === 'bigmarker');
    assert.ok(added, 'the API lists the new source');
    assert.equal(added.label, 'E2E BigMarker');
    const shown = (await bigmarker.getByTestId('hook-url').allTextContents()).map((u) => u.trim()).sort();
    assert.deepEqual(shown, added.hook_urls.map((h) => h.url).sort());
    assert.ok(shown.length > 0 && shown.every((u) => u.startsWith(`${server.ingestBase}/hooks/bigmarker/`)));

    // The new source receives: its first URL takes a BigMarker registration.
    const body = await readFile(new URL('../fixtures/scenarios/multi-platform/11-bigmarker-registration-grace.json', import.meta.url));
    const hook = added.hook_urls.find((h) => /registration/.test(h.url))?.url ?? shown[0];
    const res = await postHook(hook, body.toString());
    assert.equal(res.status, 200);
    assert.ok(['projected', 'duplicate'].includes(res.body.status), JSON.stringify(res.body));
    await shot('setup');
  });

  test('about shows the version', async () => {
    await page.getByTestId('about').click();
    await expectText(page.getByTestId('about-version'), meta.version, { what: 'about-version' });
    assert.match(meta.version, /^\d+\.\d+\.\d+/);
    await shot('about');
    await page.keyboard.press('Escape');
  });

  test('no script error on any screen', () => {
    assert.deepEqual(pageErrors, []);
  });
});
