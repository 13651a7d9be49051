// Browser end to end: the XRM page shows the composited birds made at build time, runs XRM and
// the three baselines in its worker, and shows the accuracy table and the discovered groups as
// galleries that partition the training pictures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['xrm.html', 'www/dist is built (scripts/build)'],
  ['xrm/pictures.json', 'the site build made the XRM pictures (scripts/lib.sh make_xrm_site_data; Tux Paint installed)'],
]);

test('pictures, the accuracy table and the discovered groups', async () => {
  const meta = JSON.parse(readFileSync(`${site.dist}/xrm/pictures.json`, 'utf8'));
  const { page, errors } = await openPage(site.browser, `${site.url}/xrm.html`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 120_000 });
  const samples = await page.$$('[data-testid="samples"] figure');
  assert.equal(samples.length, 24);
  assert.equal(await page.$$eval('[data-testid="samples"] figure.minority', (f) => f.length), 12);
  // every thumbnail shown has loaded (a broken picture has naturalWidth 0)
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="samples"] img')]
    .every((img) => img.complete && img.naturalWidth > 0), null, { timeout: 30_000 });
  assert.match(await page.getByTestId('data-status').textContent(), /800 training pictures \(\d+ against/);

  await page.getByTestId('seeds').fill('2');
  await page.getByTestId('steps').fill('1000');
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-ran="true"]', { timeout: 300_000 });
  const rows = await page.$$eval('#rows tr', (trs) => trs.map((tr) => [tr.dataset.method, Number(tr.dataset.worst)]));
  assert.deepEqual(rows.map((r) => r[0]), ['erm', 'groupdro_classes', 'groupdro_xrm', 'groupdro_true']);
  for (const [method, worst] of rows) assert.ok(worst >= 0 && worst <= 1, `${method} ${worst}`);
  const worst = Object.fromEntries(rows);
  // the data set's point: ERM follows the background and the oracle does far better
  assert.ok(worst.erm < 0.2 && worst.groupdro_true > worst.erm + 0.3, JSON.stringify(worst));
  assert.match(await page.getByTestId('recovery').textContent(), /recall \d\.\d{3}/);
  assert.equal(await page.$$eval('[data-testid="seed-view"] option', (o) => o.length), 2);

  const groups = await page.$$eval('.xrm-group', (s) => s.map((g) => Number(g.dataset.count)));
  assert.equal(groups.length, 4);
  assert.equal(groups.reduce((a, b) => a + b, 0), meta.pictures.train.length);
  // captions name the species without its folder among Tux Paint's stamps ("birds/…")
  assert.ok(meta.pictures.train.some((p) => p.species.includes('/')), 'the data has folders to strip');
  const named = await page.$$eval('figure:has(> img)', (figs) => figs.map((f) => `${f.querySelector('img').alt} | ${f.querySelector('figcaption').textContent}`));
  assert.ok(named.length > 24, 'samples and group galleries');
  for (const text of named) assert.doesNotMatch(text, /\//, text);
  await page.getByTestId('seed-view').selectOption('1');
  assert.equal(await page.$$eval('.xrm-group', (s) => s.length), 4);
  assert.deepEqual(errors, []);
  await page.close();
});
