// Browser end to end: the model collapse page simulates in its worker, draws both strategies
// beside the closed forms; T's slider cannot go below d + 2 (where the closed forms end); a
// bad typed value is named in words and leaves no chart or numbers from earlier settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['collapse.html', 'www/dist is built (scripts/build)'],
]);

const value = (page, id) => page.$eval(`[data-testid="${id}"]`, (el) => Number(el.dataset.value));

test('replace grows past accumulate, each near its closed form', async () => {
  const { page, errors } = await openPage(site.browser, `${site.url}/collapse.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="replace-sim"]').dataset.value);
  const replace = await value(page, 'replace-sim');
  const replaceTheory = await value(page, 'replace-theory');
  const accumulate = await value(page, 'accumulate-sim');
  const accumulateTheory = await value(page, 'accumulate-theory');
  // Defaults d 10, T 100, σ² 1, 10 rounds: 10·10/89 ≈ 1.12 vs 0.1124·Σ1/i² ≈ 0.173.
  assert.ok(Math.abs(replaceTheory - 100 / 89) < 1e-9);
  assert.ok(Math.abs(replace - replaceTheory) < 0.15 * replaceTheory, `${replace} vs ${replaceTheory}`);
  assert.ok(Math.abs(accumulate - accumulateTheory) < 0.15 * accumulateTheory, `${accumulate} vs ${accumulateTheory}`);
  assert.ok(replace > 4 * accumulate);
  assert.ok(await page.$eval('[data-testid="chart"]', (c) => c.width) > 100);

  // The real-data chart has no box until it has a chart.
  assert.equal(await page.$eval('[data-testid="resample-chart"]', (c) => c.closest('.chart-box').hidden), true);

  // T ≤ d + 1 has no closed form: T's slider starts at d + 2, so d 50 moves T up to 52 and
  // T cannot be dragged below it; the run uses T 52 (replace's closed form σ²·d·n/(T−d−1) =
  // 50·10/1 = 500) and no error appears.
  const slide = (id, v) => page.$eval(`[data-testid="${id}"]`, (el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }, v);
  const theoryIs = (v) => page.waitForFunction(
    (v) => Math.abs(Number(document.querySelector('[data-testid="replace-theory"]').dataset.value) - v) < 1e-9, v);
  await slide('t', '20');
  await slide('d', '50');
  assert.equal(await page.$eval('[data-testid="t"]', (el) => [el.min, el.value].join()), '52,52');
  assert.equal(await page.$eval('#t-out', (el) => el.textContent), '52');
  await theoryIs(500);
  await slide('t', '5');
  assert.equal(await page.$eval('[data-testid="t"]', (el) => el.value), '52');
  await theoryIs(500);
  assert.equal(await page.getByTestId('error').isHidden(), true);
  await slide('d', '10');
  assert.equal(await page.$eval('[data-testid="t"]', (el) => el.min), '12');
  await slide('t', '12');
  await theoryIs(100); // 10·10/(12 − 11)

  // A typed value out of range is named in words; the chart and numbers of the earlier
  // setting are taken away, and come back with a good value.
  await page.getByTestId('test-points').fill('0');
  await page.getByTestId('test-points').dispatchEvent('change');
  await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
  const message = await page.getByTestId('error').textContent();
  assert.equal(message, 'Test points must be a whole number of at least 1.');
  assert.equal(await page.$eval('[data-testid="chart"]', (c) => c.closest('.chart-box').hidden), true);
  assert.equal(await page.getByTestId('replace-sim').textContent(), '–');
  await page.getByTestId('test-points').fill('1000');
  await page.getByTestId('test-points').dispatchEvent('change');
  await page.waitForFunction(() => document.querySelector('[data-testid="error"]').hidden);
  await theoryIs(100);
  assert.equal(await page.$eval('[data-testid="chart"]', (c) => c.closest('.chart-box').hidden), false);

  // The real-data extension: resampling the gallery's features loses variance when replacing.
  await page.getByTestId('resample').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="resample-status"]').dataset.replace, null, { timeout: 120_000 });
  const kept = Number(await page.getByTestId('resample-status').getAttribute('data-replace'));
  const accumulated = Number(await page.getByTestId('resample-status').getAttribute('data-accumulate'));
  assert.ok(kept < 0.4, `replace keeps ${kept} of the variance after 20 generations`);
  assert.ok(accumulated > 0.7, `accumulate keeps ${accumulated}`);
  assert.equal(await page.$eval('[data-testid="resample-chart"]', (c) => c.closest('.chart-box').hidden), false);
  assert.ok(await page.$eval('[data-testid="resample-chart"]', (c) => c.width) > 100);
  assert.deepEqual(errors, []);
  await page.close();
});

test('each slider stays beside its label, at desktop and phone widths', async () => {
  const { page } = await openPage(site.browser, `${site.url}/collapse.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const pairs = await page.$$eval('.collapse-page label[for]', (labels) => labels.map((label) => {
      const l = label.getBoundingClientRect();
      const c = document.getElementById(label.htmlFor).getBoundingClientRect();
      return { id: label.htmlFor, l: [l.left, l.right, l.top, l.bottom], c: [c.left, c.right, c.top, c.bottom] };
    }));
    assert.equal(pairs.length, 6);
    for (const { id, l, c } of pairs) {
      assert.ok(l[2] < c[3] && c[2] < l[3], `${width}px: ${id} is not on its label's line`);
      assert.ok(c[0] >= l[1] && c[0] - l[1] < 20, `${width}px: ${id} is ${c[0] - l[1]}px from its label`);
    }
  }
  await page.close();
});
