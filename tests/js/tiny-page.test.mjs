// Browser end to end: the tinyBenchmarks page loads the real response matrix, shows the 30
// anchor items, and on "Evaluate" runs the held-out evaluation in its worker: IRT anchors with
// gp-IRT beat a random sample of the same size at every size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['tiny.html', 'www/dist is built (scripts/build)'],
]);

test('anchors are shown and the evaluation beats random sampling', async () => {
  const { page, errors } = await openPage(site.browser, `${site.url}/tiny.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await page.waitForSelector('body[data-anchors="true"]', { timeout: 240_000 });
  const anchors = await page.$$('[data-testid="anchors"] li');
  assert.ok(anchors.length > 20 && anchors.length <= 30, `${anchors.length} anchors`);
  await page.getByTestId('seeds').fill('1');
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 300_000 });
  const rows = await page.$$eval('#rows tr', (trs) => trs.map((tr) => ({
    anchors: Number(tr.dataset.anchors), random: Number(tr.dataset.random), gpirt: Number(tr.dataset.gpirt),
  })));
  assert.deepEqual(rows.map((r) => r.anchors), [10, 30, 60, 100]);
  for (const r of rows) assert.ok(r.gpirt < r.random, `${r.anchors} anchors: gp-IRT ${r.gpirt} vs random ${r.random}`);
  assert.match(await page.getByTestId('status').textContent(), /IRT dimension \d/);
  assert.deepEqual(errors, []);
  await page.close();
});
