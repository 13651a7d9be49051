// Browser end to end: the sketch page loads the real SmolLM2-135M in its worker (download with
// progress and sha256, then the Cache API on a second visit), fills the default template with
// argmax and beam_var side by side (hole values highlighted, joint log-probabilities shown),
// and runs a two-example BIG-bench sample in all four modes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite, settled } from './browser.mjs';


const site = servedSite([
  ['sketch.html', 'www/dist is built (scripts/build)'],
  ['models/smollm2-135m-instruct/model.gguf', 'the site build copies the language model (scripts/build)'],
  ['bigbench/date_understanding.json', 'the site ships the BIG-bench tasks'],
]);

test('load, sketch side by side, a BIG-bench sample, then the cache', async () => {
  const context = await site.browser.newContext();
  const { page, errors } = await openPage(context, `${site.url}/sketch.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  assert.equal(await page.getByTestId('run').isDisabled(), true, 'nothing runs before the model is loaded');
  await page.getByTestId('load').click();
  await settled(page, 'body[data-model="loaded"]', 240_000);
  assert.match(await page.getByTestId('model-status').textContent(), /smollm2.*49,152 tokens, context 8,192/i);

  await page.getByTestId('compare').click();
  await settled(page, 'body[data-sketched="compare"]', 300_000);
  for (const slot of ['a', 'b']) {
    const figure = page.getByTestId(`out-${slot}`);
    const values = JSON.parse(await figure.getAttribute('data-values'));
    assert.ok([' Paris', ' Lyon', ' Marseille'].includes(values.CITY), JSON.stringify(values));
    assert.ok(values.REASON.length > 0);
    const marks = await page.$$eval(`[data-testid="out-${slot}-text"] mark.hole`, (ms) => ms.map((m) => [m.dataset.hole, m.textContent]));
    assert.deepEqual(marks, [['CITY', values.CITY], ['REASON', values.REASON]]);
    assert.ok(Number.isFinite(Number(await figure.getAttribute('data-logprob'))));
    assert.match(await page.getByTestId(`out-${slot}-scores`).textContent(), /template -?\d+\.\d+, generated -?\d+\.\d+/);
  }
  assert.match(await page.getByTestId('sketch-status').textContent(), /Higher joint log-probability: (beam_var|argmax|neither)/);

  await page.getByTestId('sample').fill('2');
  await page.getByTestId('evaluate').click();
  await settled(page, 'body[data-evaluated="true"]', 300_000);
  const rows = await page.$$eval('#eval-rows tr', (trs) => trs.map((tr) => ({
    label: tr.dataset.label, n: Number(tr.dataset.n), accuracy: Number(tr.dataset.accuracy),
  })));
  assert.deepEqual(rows.map((r) => r.label), ['direct', 'sketch, argmax', 'sketch, beam_var', 'rank']);
  for (const r of rows) assert.ok(r.n === 2 && r.accuracy >= 0 && r.accuracy <= 1, JSON.stringify(r));
  assert.deepEqual(errors, []);
  await page.close();

  // A second visit in the same browser profile reads the model from the Cache API.
  const again = await openPage(context, `${site.url}/sketch.html`);
  await again.page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await again.page.getByTestId('load').click();
  await settled(again.page, 'body[data-model="loaded"]', 240_000);
  assert.match(await again.page.getByTestId('model-status').textContent(), /from the cache/);
  assert.deepEqual(again.errors, []);
  await context.close();
});
