// Browser end to end: the model collapse page simulates in its worker, draws both strategies
// beside the closed forms, and shows an error (and recovers) for T ≤ d + 1.
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

  // T ≤ d + 1 has no closed form: a clear error, then recovery.
  await page.$eval('[data-testid="t"]', (el) => { el.value = '5'; el.dispatchEvent(new Event('input')); });
  await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
  assert.match(await page.getByTestId('error').textContent(), /t > d \+ 1/);
  await page.$eval('[data-testid="t"]', (el) => { el.value = '120'; el.dispatchEvent(new Event('input')); });
  await page.waitForFunction(() => document.querySelector('[data-testid="error"]').hidden);

  // The real-data extension: resampling the gallery's features loses variance when replacing.
  await page.getByTestId('resample').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="resample-status"]').dataset.replace, null, { timeout: 120_000 });
  const kept = Number(await page.getByTestId('resample-status').getAttribute('data-replace'));
  const accumulated = Number(await page.getByTestId('resample-status').getAttribute('data-accumulate'));
  assert.ok(kept < 0.4, `replace keeps ${kept} of the variance after 20 generations`);
  assert.ok(accumulated > 0.7, `accumulate keeps ${accumulated}`);
  assert.deepEqual(errors, []);
  await page.close();
});
