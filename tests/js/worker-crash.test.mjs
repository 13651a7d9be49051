// A computation that traps the wasm instance, on the model collapse page: with the memory
// budget raised past what wasm32 can hold (?memoryBudget=), 6,000,000 test points × d 50
// pass the budget check and the allocation aborts the module (RuntimeError: unreachable).
// The page must say so in plain words, replace the dead worker, and run the next request
// in the fresh one. Under the default budget the same request is refused before anything is
// allocated, and the worker lives on. On the search page, a worker that dies outside any call
// takes the loaded model with it: the page says so and loads it again into a fresh worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordErrors, servedSite } from './browser.mjs';

const site = servedSite([
  ['collapse.html', 'www/dist is built (scripts/build)'],
  ['models/manifest.json', 'the models are copied into the site (scripts/build)'],
]);

/** The collapse page at `query`, ready, with the workers it starts counted. */
async function openCollapse(query) {
  const page = await site.browser.newPage();
  const errors = recordErrors(page);
  const workers = [];
  page.on('worker', (w) => workers.push(w));
  await page.goto(`${site.url}/collapse.html${query}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  return { page, errors, workers };
}

/** Sets a slider or field as a visitor would, and waits for the simulation's answer. */
async function set(page, id, value, event) {
  await page.$eval('[data-testid="replace-sim"]', (el) => { delete el.dataset.value; });
  await page.$eval(`[data-testid="${id}"]`, (el, [v, e]) => {
    el.value = v;
    el.dispatchEvent(new Event(e));
  }, [value, event]);
  await page.waitForFunction(() => document.querySelector('[data-testid="replace-sim"]').dataset.value
    || !document.querySelector('[data-testid="error"]').hidden, null, { timeout: 120_000 });
}

const shownError = (page) => page.$eval('[data-testid="error"]', (el) => (el.hidden ? null : el.textContent));

test('a trapped worker is reported in plain words and replaced; the next request works', { timeout: 240_000 }, async () => {
  const { page, errors, workers } = await openCollapse('?memoryBudget=3900000000');
  await set(page, 'd', '50', 'input');
  assert.equal(await shownError(page), null);
  assert.equal(workers.length, 1);

  await set(page, 'test-points', '6000000', 'change');
  const message = await shownError(page);
  assert.match(message ?? '', /ran out of memory or crashed inside WebAssembly \(RuntimeError: unreachable\)/);
  assert.match(message, /replaced by a fresh one/);
  assert.equal(workers.length, 2, 'a fresh worker was started');

  await set(page, 'test-points', '1000', 'change');
  assert.equal(await shownError(page), null);
  const replace = Number(await page.getByTestId('replace-sim').getAttribute('data-value'));
  const theory = Number(await page.getByTestId('replace-theory').getAttribute('data-value'));
  assert.ok(Math.abs(replace - theory) < 0.2 * theory, `${replace} vs ${theory}`);
  assert.equal(workers.length, 2);
  // The only error logged is the panic's own report (Rust's panic hook, in the worker).
  assert.ok(errors.length > 0 && errors.every((e) => e.startsWith('panicked at ')), errors.join('\n'));
  await page.close();
});

test('under the default budget the same request is refused before allocating', { timeout: 120_000 }, async () => {
  const { page, errors, workers } = await openCollapse('');
  await set(page, 'd', '50', 'input');
  await set(page, 'test-points', '6000000', 'change');
  assert.match(await shownError(page) ?? '', /needs 2400\d+ bytes, more than the memory budget of 1073741824 bytes/);
  await set(page, 'test-points', '1000', 'change');
  assert.equal(await shownError(page), null);
  assert.equal(workers.length, 1, 'the worker was kept');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a bad ?memoryBudget= is a clear error', { timeout: 60_000 }, async () => {
  const { page, errors } = await openCollapse('?memoryBudget=lots');
  assert.match(await shownError(page) ?? '', /^memoryBudget=lots: /);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the search page says its model was lost with a dead worker, and loads it again', { timeout: 300_000 }, async () => {
  const context = await site.browser.newContext();
  try {
    const page = await context.newPage();
    const errors = recordErrors(page);
    await page.goto(`${site.url}/search.html`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 240_000 });
    const [worker] = page.workers();
    // A trap outside any call reaches the page only as the worker's `error` event.
    await worker.evaluate(() => setTimeout(() => { throw new WebAssembly.RuntimeError('unreachable'); }));
    await page.waitForSelector('[data-testid="reload-model"]:visible', { timeout: 30_000 });
    assert.match(await page.getByTestId('model-status').textContent(), /was lost with the worker/);
    assert.match(await page.getByTestId('error').textContent(), /crashed inside WebAssembly \(.*RuntimeError: unreachable\)/);
    assert.equal(await page.getByTestId('search-button').isDisabled(), true, 'no search into a worker without the model');
    assert.equal(await page.evaluate(() => document.body.dataset.ready), 'false');

    await page.getByTestId('reload-model').click();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 240_000 });
    assert.equal(await page.getByTestId('error').isHidden(), true);
    assert.equal(page.workers().length, 1);
    assert.notEqual(page.workers()[0], worker);
    await page.getByTestId('query-input').fill('a cat');
    await page.getByTestId('search-button').click();
    await page.waitForSelector('[data-testid="result"]', { timeout: 120_000 });
    assert.equal(await page.$eval('[data-testid="result"]', (li) => li.dataset.name), 'chelsea.png');
    assert.deepEqual(errors.filter((e) => !/RuntimeError: unreachable/.test(e)), []);
  } finally {
    await context.close();
  }
});
