// Long lists a page at a time, in Chromium. 201 TagMango webinars arrive as webhooks (a burst the
// receiver answers before it has projected them all); the list shows the first 200 with the total,
// and "Show more" brings the last one. A webinar of 501 attendees lists 500 of them, then all.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addSource, artifact, chromiumPath, launchChromium, postHook, removeDir, startServe, tempDir, waitFor } from './support.mjs';

const WEBINARS = 201;
// One of the webinars is crowded: it has this many attendees.
const ATTENDEES = 501;

describe('webinar list paging in Chromium', { timeout: 120_000 }, () => {
  let dataDir;
  let profileDir;
  let serve;
  let context;
  let page;
  const pageErrors = [];

  before(async () => {
    assert.ok(chromiumPath(), 'Chromium is missing: run tests/e2e/run.sh (it installs Debian chromium)');
    dataDir = await tempDir();
    profileDir = await tempDir('rollcall-e2e-chromium-');
    await addSource(dataDir, 'tagmango', 'E2E TagMango', 'http://127.0.0.1:9');
    serve = await startServe(dataDir);
    const printed = serve.hookUrls.find((h) => h.platform === 'tagmango')?.url;
    assert.ok(printed, `serve printed no TagMango hook: ${serve.stdout()}`);
    const hook = printed.replace(/(\/hooks\/tagmango\/[^/]+).*$/, '$1');
    const answers = await Promise.all(
      Array.from({ length: WEBINARS - 1 }, (_, n) =>
        postHook(`${hook}/webinar.completed.all`, JSON.stringify({
          name: `Person ${n}`, email: `p${n}@example.com`, webinar: `Paging ${String(n).padStart(3, '0')}`,
          webinarId: `paging-${n}`, webinarLink: 'https://example.com/w',
        })),
      ),
    );
    for (let n = 0; n < ATTENDEES; n += 100) {
      answers.push(...await Promise.all(
        Array.from({ length: Math.min(100, ATTENDEES - n) }, (_, i) =>
          postHook(`${hook}/webinar.completed.all`, JSON.stringify({
            name: `Attendee ${n + i}`, email: `a${n + i}@example.com`, webinar: 'Crowded',
            webinarId: 'crowded', webinarLink: 'https://example.com/w',
          })),
        ),
      ));
    }
    assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers.filter((a) => a.status !== 200)));
    ({ context, page } = await launchChromium(profileDir, pageErrors));
    await page.goto(serve.loginUrl);
  });

  after(async () => {
    await context?.close().catch(() => {});
    await serve?.stop();
    await removeDir(dataDir);
    await removeDir(profileDir);
  });

  test('the list shows 200 of 201 webinars, and Show more the rest', async () => {
    await page.goto(`${serve.dashboardBase}/#/webinars`);
    const rows = page.getByTestId('webinar-row');
    const count = page.getByTestId('webinar-count');
    // Deliveries answered before they were projected reach the list as the writer catches up.
    await waitFor(async () => /^200 of 201 webinars/.test((await count.textContent())?.trim() ?? ''), {
      timeout: 20_000, what: 'the count to say 200 of 201',
    });
    assert.equal(await rows.count(), 200);
    await page.screenshot({ path: await artifact('webinars-paged.png'), fullPage: false });
    await page.getByTestId('more-webinars').click();
    await waitFor(async () => (await rows.count()) === WEBINARS, { what: `${WEBINARS} rows` });
    assert.equal((await count.textContent())?.trim(), `${WEBINARS} webinars`);
    assert.equal(await page.getByTestId('more-webinars').count(), 0);
    assert.deepEqual(pageErrors, []);
  });

  test('a webinar lists 500 of 501 attendees, and Show more all of them', async () => {
    await page.goto(`${serve.dashboardBase}/#/webinars/${encodeURIComponent('tagmango:crowded')}`);
    const more = page.getByTestId('people-more');
    await waitFor(async () => /^500 of 501, by name/.test((await more.textContent().catch(() => ''))?.trim() ?? ''), {
      timeout: 20_000, what: 'the list to say 500 of 501',
    });
    await more.scrollIntoViewIfNeeded();
    await page.screenshot({ path: await artifact('attendees-paged.png'), fullPage: false });
    await more.getByRole('button', { name: 'Show more' }).click();
    await waitFor(async () => (await more.count()) === 0, { what: 'every attendee listed' });
    assert.deepEqual(pageErrors, []);
  });
});
