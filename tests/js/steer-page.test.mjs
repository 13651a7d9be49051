// Browser end to end: the steering page embeds the synthetic biographies with the bundled
// text encoder in its worker, fits and evaluates steering, draws the PCA charts and runs a
// retrieval query before and after; bad settings show an error and the page stays usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['steer.html', 'www/dist is built (scripts/build)'],
]);

const value = (page, id) =>
  page.$eval(`[data-testid="${id}"]`, (el) => Number(el.dataset.value));

test('steering erases gender, shrinks the TPR-gap, and changes search results', async () => {
  const { page, requests, errors } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 180_000 });

  const conceptChance = await value(page, 'concept-chance');
  const conceptBefore = await value(page, 'concept-before');
  const conceptAfter = await value(page, 'concept-after');
  assert.ok(conceptBefore > 0.95, `gender is readable before (${conceptBefore})`);
  assert.ok(conceptAfter < conceptChance + 0.1, `and not after (${conceptAfter}, chance ${conceptChance})`);
  const gapBefore = await value(page, 'gap-before');
  const gapAfter = await value(page, 'gap-after');
  assert.ok(gapAfter < gapBefore, `TPR-gap ${gapBefore} → ${gapAfter}`);
  assert.ok(await value(page, 'task-after') > 2 * await value(page, 'task-chance'));
  const gapRows = await page.$$('[data-testid="gap-table"] tbody tr');
  assert.ok(gapRows.length >= 4, 'a TPR-gap row per profession');

  // Both charts drew something (a Chart.js canvas has a non-zero size once rendered).
  for (const id of ['chart-before', 'chart-after']) {
    const width = await page.$eval(`[data-testid="${id}"]`, (c) => c.width);
    assert.ok(width > 100, `${id} is drawn`);
  }

  // Mean matching gives its own figures through the same controls.
  await page.getByTestId('method').selectOption('mean');
  await page.evaluate(() => { delete document.body.dataset.evaluated; });
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 60_000 });
  assert.ok(await value(page, 'concept-after') < conceptChance + 0.1);

  await page.getByTestId('search').click();
  await page.waitForSelector('body[data-searched="true"]', { timeout: 60_000 });
  const hits = async (key) => page.$$eval(`[data-testid="hits-${key}"] li`, (items) => items.map((i) => i.textContent));
  const beforeHits = await hits('before');
  const afterHits = await hits('after');
  assert.equal(beforeHits.length, 10);
  assert.equal(afterHits.length, 10);
  assert.notDeepEqual(afterHits, beforeHits, 'steering changes the ranking');
  // The default query says "He": before steering its neighbours are men's biographies;
  // once gender is steered away they are mixed.
  const men = async (key) => page.$$eval(`[data-testid="hits-${key}"] li[data-z="1"]`, (items) => items.length);
  assert.ok(await men('before') >= 8, `before: ${await men('before')} of 10 are men`);
  assert.ok(await men('after') <= 7, `after: ${await men('after')} of 10 are men`);

  const outside = requests.filter((u) => !u.startsWith(site.url + '/') && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'no request left the origin');
  assert.deepEqual(errors, []);
  await page.close();
});

test('erasing region, a concept unrelated to profession, keeps the profession probe', async () => {
  const { page, errors } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 180_000 });
  await page.getByTestId('concept').selectOption('region');
  await page.evaluate(() => { delete document.body.dataset.evaluated; });
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 60_000 });
  assert.ok(await value(page, 'concept-after') < await value(page, 'concept-chance') + 0.1);
  assert.ok(await value(page, 'task-after') >= await value(page, 'task-before') - 0.05);
  const legend = await page.$eval('[data-testid="results"] .concept-name', (el) => el.textContent);
  assert.equal(legend, 'Region');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a bad setting shows an error and the page stays usable', async () => {
  const { page } = await openPage(site.browser, `${site.url}/steer.html`);
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 180_000 });
  await page.getByTestId('relative-reg').fill('-1');
  await page.getByTestId('run').click();
  await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
  assert.match(await page.getByTestId('error').textContent(), /relative_reg/);
  await page.getByTestId('relative-reg').fill('0.01');
  await page.evaluate(() => { delete document.body.dataset.evaluated; });
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 60_000 });
  assert.equal(await page.getByTestId('error').isHidden(), true);
  await page.close();
});
