// Browser end to end: the alignment page embeds the gallery and sentences with the bundled
// encoders, shows every metric with the chance level, the mutual-kNN curve, the items that
// agree or disagree most, and a clear error for a bad k.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['align.html', 'www/dist is built (scripts/build)'],
]);

const score = (page, metric) =>
  page.$eval(`[data-testid="metrics"] tr[data-metric="${metric}"]`, (tr) => Number(tr.dataset.score));

test('three pairs of representations, every metric, agreement per item', async () => {
  const { page, requests, errors } = await openPage(site.browser, `${site.url}/align.html`);
  await page.waitForSelector('body[data-measured="1"]', { timeout: 120_000 });
  // Without --enable-unsafe-webgpu headless Chromium has no adapter: the CPU, and why.
  assert.equal(await page.evaluate(() => document.body.dataset.backend), 'cpu');
  assert.match(await page.getByTestId('status').textContent(), /no WebGPU adapter/);
  const rows = await page.$$('[data-testid="metrics"] tbody tr');
  assert.equal(rows.length, 8, 'all eight metrics');
  const photoCaption = await score(page, 'mutual_knn');
  assert.ok(photoCaption >= 0 && photoCaption <= 1);
  assert.equal((await page.$$('[data-testid="agree"] li')).length, 3);
  assert.equal((await page.$$('[data-testid="agree"] li img')).length, 3, 'with their pictures');

  // A random projection keeps much of the neighbourhood structure: far above chance (3/33).
  await page.getByTestId('pair').selectOption('text-projection');
  await page.waitForSelector('body[data-measured="2"]', { timeout: 60_000 });
  const projected = await score(page, 'mutual_knn');
  assert.ok(projected > 3 * (3 / 33), `sentences vs their projection: ${projected}`);
  const cka = await score(page, 'cka');
  assert.ok(cka > 0.5, `cka ${cka}`);

  await page.getByTestId('k').fill('40');
  await page.getByTestId('measure').click();
  await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
  assert.match(await page.getByTestId('error').textContent(), /k is 40/);

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
