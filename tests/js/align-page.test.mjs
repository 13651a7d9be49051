// Browser end to end: the alignment page embeds the gallery and sentences with the bundled
// encoders, shows every metric in words with its range and chance level, the mutual-kNN curve,
// the items that agree or disagree most, k bounded by the pair's size, and a clear error for
// a bad or empty k.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['align.html', 'www/dist is built (scripts/build)'],
]);

const score = (page, metric) =>
  page.$eval(`[data-testid="metrics"] tr[data-metric="${metric}"]`, (tr) => Number(tr.dataset.score));

/** Each metric's row as the reader sees it: {name, meaning, score, range, chance} texts. */
const table = (page) => page.$$eval('[data-testid="metrics"] tbody tr', (trs) => Object.fromEntries(trs.map((tr) => {
  const cells = [...tr.cells].map((td) => td.textContent.trim());
  return [tr.dataset.metric, {
    name: tr.querySelector('.metric-name').textContent,
    meaning: tr.querySelector('.metric-meaning').textContent,
    score: cells[1], range: cells[2], chance: cells[3], chanceValue: tr.dataset.chance,
  }];
})));

/** lcs_knn's mean against every ordered list of k of the n − 1 others (brute force). */
function lcsChance(n, k) {
  const lcs = (a, b) => {
    const t = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) t[i][j] = a[i - 1] === b[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
    }
    return t[a.length][b.length];
  };
  const fixed = Array.from({ length: k }, (_, i) => i);
  let total = 0;
  let count = 0;
  const extend = (list) => {
    if (list.length === k) {
      total += lcs(fixed, list);
      count += 1;
      return;
    }
    for (let j = 0; j < n - 1; j++) if (!list.includes(j)) extend([...list, j]);
  };
  extend([]);
  return total / count;
}

const NO_GPU = 'no WebGPU adapter is available in this browser';

test('three pairs of representations, every metric, agreement per item', async () => {
  const { page, requests, errors } = await openPage(site.browser, `${site.url}/align.html`);
  await page.waitForSelector('body[data-measured="1"]', { timeout: 120_000 });
  // Without --enable-unsafe-webgpu headless Chromium has no adapter: the CPU, and why.
  // The reason in one plain sentence, not nested developer text.
  assert.equal(await page.evaluate(() => document.body.dataset.backend), 'cpu');
  assert.equal(await page.getByTestId('status').textContent(), `12 items, k = 3 · neighbour search: cpu (${NO_GPU})`);
  const rows = await page.$$('[data-testid="metrics"] tbody tr');
  assert.equal(rows.length, 8, 'all eight metrics');
  const photoCaption = await score(page, 'mutual_knn');
  assert.ok(photoCaption >= 0 && photoCaption <= 1);

  // Every metric named in words, with what it measures and its range.
  const photos = await table(page);
  for (const [metric, row] of Object.entries(photos)) {
    assert.doesNotMatch(row.name, /_/, `${metric} is named in words: ${row.name}`);
    assert.ok(row.meaning.length > 40, `${metric} says what it measures: ${row.meaning}`);
    assert.match(row.range, /\d/, `${metric} has a range`);
  }
  assert.equal(photos.mutual_knn.name, 'Mutual nearest neighbours');
  // lcs_knn counts neighbours, out of k, unlike the shares beside it.
  assert.equal(photos.lcs_knn.range, '0 to k = 3');
  assert.match(photos.lcs_knn.score, /^\d\.\d{3} of 3$/);
  for (const metric of ['mutual_knn', 'cycle_knn', 'edit_distance_knn', 'cka', 'svcca']) assert.equal(photos[metric].range, '0 to 1', metric);
  // Chance where a formula gives it: k/(n−1), the exact mean LCS of random lists, 0 for
  // unbiased CKA, and numbers for cycle kNN and CKA (from the data); none pretended elsewhere.
  assert.equal(Number(photos.mutual_knn.chanceValue), 3 / 11);
  assert.ok(Math.abs(Number(photos.lcs_knn.chanceValue) - lcsChance(12, 3)) < 1e-12, photos.lcs_knn.chanceValue);
  assert.equal(photos.lcs_knn.chance, `${lcsChance(12, 3).toFixed(3)} of 3`);
  assert.equal(photos.unbiased_cka.chance, '0.000');
  for (const metric of ['cycle_knn', 'cka']) {
    const c = Number(photos[metric].chanceValue);
    assert.ok(c > 0 && c < 1, `${metric} chance ${c}`);
  }
  for (const metric of ['edit_distance_knn', 'cknna', 'svcca']) assert.equal(photos[metric].chance, 'no fixed chance level', metric);
  // SVCCA keeps to half of the 11 directions 12 centred items span (else it is high regardless).
  assert.match(photos.svcca.meaning, /top 5 /);
  assert.equal(await page.getByTestId('k').getAttribute('max'), '11');
  assert.equal((await page.$$('[data-testid="agree"] li')).length, 3);
  assert.equal((await page.$$('[data-testid="agree"] li img')).length, 3, 'with their pictures');

  // A random projection keeps much of the neighbourhood structure: far above chance (3/33).
  await page.getByTestId('pair').selectOption('text-projection');
  await page.waitForSelector('body[data-measured="2"]', { timeout: 60_000 });
  const projected = await score(page, 'mutual_knn');
  assert.ok(projected > 3 * (3 / 33), `sentences vs their projection: ${projected}`);
  const cka = await score(page, 'cka');
  assert.ok(cka > 0.5, `cka ${cka}`);
  assert.equal(await page.getByTestId('status').textContent(), `34 items, k = 3 · neighbour search: cpu (${NO_GPU})`);

  // k is bounded by the pair's 34 items, not by the photos' 12.
  assert.equal(await page.getByTestId('k').getAttribute('max'), '33');
  assert.match(await page.getByTestId('k-hint').textContent(), /1 to 33 for these 34 items/);
  await page.getByTestId('k').fill('20');
  await page.getByTestId('measure').click();
  await page.waitForSelector('body[data-measured="3"]', { timeout: 60_000 });
  assert.match(await page.getByTestId('status').textContent(), /^34 items, k = 20 /);
  const sentences = await table(page);
  assert.equal(sentences.mutual_knn.chanceValue, String(20 / 33));
  assert.equal(sentences.lcs_knn.range, '0 to k = 20');
  assert.match(sentences.svcca.meaning, /top 10 /);

  const error = page.getByTestId('error');
  await page.getByTestId('k').fill('40');
  await page.getByTestId('measure').click();
  await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
  assert.equal(await error.textContent(), 'k = 40 cannot be used here: choose a whole number from 1 to 33 (there are 34 items).');

  // An empty k asks for one; nothing is measured with k = 0.
  await page.getByTestId('k').fill('');
  await page.getByTestId('measure').click();
  await page.waitForFunction(() => /^Enter k/.test(document.querySelector('[data-testid="error"]').textContent));
  assert.equal(await error.textContent(), 'Enter k, the number of neighbours: a whole number from 1 to 33.');
  assert.doesNotMatch(await error.textContent(), /k is 0/);
  assert.equal(await page.evaluate(() => document.body.dataset.measured), '3');

  // Back to the 12 photos with k = 20: the worker names the bound.
  await page.getByTestId('k').fill('20');
  await page.getByTestId('pair').selectOption('photo-caption');
  await page.waitForFunction(() => /does not fit/.test(document.querySelector('[data-testid="error"]').textContent), null, { timeout: 60_000 });
  assert.match(await error.textContent(), /^k = 20 does not fit 12 items: choose k from 1 to 11/);

  const outside = requests.filter((u) => !u.startsWith(site.url + '/') && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'no request left the origin');
  assert.deepEqual(errors, []);
  await page.close();
});

test('with WebGPU (SwiftShader) the neighbour search runs on the GPU and every score equals the CPU\'s', async () => {
  const gpuBrowser = await launch({ webgpu: true });
  try {
    const measured = async (query) => {
      const { page, errors } = await openPage(gpuBrowser, `${site.url}/align.html${query}`);
      await page.waitForSelector('body[data-measured="1"]', { timeout: 120_000 });
      const scores = await page.$$eval('[data-testid="metrics"] tbody tr', (trs) =>
        Object.fromEntries(trs.map((tr) => [tr.dataset.metric, tr.dataset.score])));
      const out = {
        backend: await page.evaluate(() => document.body.dataset.backend),
        status: await page.getByTestId('status').textContent(),
        scores,
        errors,
      };
      await page.close();
      return out;
    };
    const gpu = await measured('');
    const cpu = await measured('?backend=cpu');
    assert.equal(cpu.backend, 'cpu');
    assert.equal(gpu.backend, 'webgpu', gpu.status);
    assert.equal(Object.keys(gpu.scores).length, 8);
    assert.deepEqual(gpu.scores, cpu.scores, 'the same neighbour tables, so the same scores');
    assert.deepEqual(gpu.errors, []);
  } finally {
    await gpuBrowser.close();
  }
});
