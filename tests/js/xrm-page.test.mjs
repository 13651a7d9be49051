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
  ['xrm/selected.json', 'the site build chose XRM\'s settings (scripts/lib.sh make_xrm_site_data: latentlab xrm select)'],
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

  // the seed reaches XRM: on the page's data the two seeds' flip-rate histories differ, and the
  // note says in numbers whether they also end in different groups
  assert.ok(await page.getByTestId('flip-chart').isVisible());
  const note = page.getByTestId('seed-note');
  assert.equal(await note.getAttribute('data-histories-differ'), 'true', await note.textContent());
  const differ = Number(await note.getAttribute('data-pictures-that-differ'));
  assert.ok(differ >= 0 && differ <= meta.pictures.train.length);
  assert.match(await note.textContent(),
    differ === 0 ? /end in the same labelling: none of the 800/ : new RegExp(`${differ} of 800 training pictures`));

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

test('the default settings are the ones the reference\'s phase-1 rule selects', async () => {
  const selection = JSON.parse(readFileSync(`${site.dist}/xrm/selected.json`, 'utf8'));
  // the rule, applied here to the candidates the build ran: the largest final flip rate,
  // degenerate runs counting 0, the first on ties
  let best = 0;
  const score = (c) => (c.degenerate ? 0 : c.flip_rate);
  selection.candidates.forEach((c, i) => { if (score(c) > score(selection.candidates[best])) best = i; });
  const expected = selection.candidates[best];
  assert.deepEqual(
    [selection.selected.pca, selection.selected.whiten, selection.selected.steps],
    [expected.pca, expected.whiten, expected.steps]);
  // the grid the README describes: 16, 32, 64, 128 components (plain and whitened) and all
  // features, each at 100, 300, 1000 and 3000 steps
  assert.equal(selection.candidates.length, 9 * 4);

  const { page, errors } = await openPage(site.browser, `${site.url}/xrm.html`);
  await page.waitForSelector('body[data-selected]', { timeout: 120_000 });
  assert.equal(Number(await page.getByTestId('pca').inputValue()), expected.pca);
  assert.equal(await page.getByTestId('whiten').isChecked(), expected.whiten);
  assert.equal(Number(await page.getByTestId('twin-steps').inputValue()), expected.steps);
  // phase 2 (ERM, GroupDRO) keeps the reference's 3000 steps: the rule chooses phase 1 only
  assert.equal(Number(await page.getByTestId('steps').inputValue()), 3000);
  assert.equal(await page.$$eval('[data-testid="selection-table"] tbody tr', (r) => r.length), selection.candidates.length);
  assert.equal(await page.$$eval('[data-testid="selection-table"] tr.chosen', (r) => r.length), 1);
  // whitening needs principal components: with all features it is off and cannot be ticked
  await page.getByTestId('pca').selectOption('0');
  assert.equal(await page.getByTestId('whiten').isDisabled(), true);
  assert.equal(await page.getByTestId('whiten').isChecked(), false);
  await page.getByTestId('pca').selectOption('64');
  assert.equal(await page.getByTestId('whiten').isDisabled(), false);
  assert.deepEqual(errors, []);
  await page.close();
});
