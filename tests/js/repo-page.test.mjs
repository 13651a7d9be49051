// Browser end to end: the Repoformer page lists the committed tasks bundled by the site build,
// loads SmolLM2-135M in its worker, completes one task without and with retrieval (both
// completions scored, the retrieved chunks and the confidence policy's decision shown), then
// runs a two-task sample and shows every policy and the threshold sweep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, servedSite, settled } from './browser.mjs';


const site = servedSite([
  ['repo.html', 'www/dist is built (scripts/build)'],
  ['models/smollm2-135m-instruct/model.gguf', 'the site build copies the language model (scripts/build)'],
  ['repo/index.json', 'the site build bundles the tasks from the Python 3.11 standard library (scripts/lib.sh)'],
]);

test('one task without and with retrieval, then a sample with every policy and the sweep', async () => {
  const context = await site.browser.newContext();
  const { page, errors } = await openPage(context, `${site.url}/repo.html`);
  await settled(page, 'body[data-tasks="loaded"]', 60_000);
  assert.match(await page.getByTestId('data-status').textContent(), /500 tasks from 21 repositories/);
  assert.equal(await page.getByTestId('run').isDisabled(), true, 'nothing runs before the model is loaded');
  await page.getByTestId('repository').selectOption('json');
  const target = await page.getByTestId('target').textContent();
  await page.waitForFunction(() => document.querySelector('[data-testid="left-context"]').textContent.endsWith('▌'));
  assert.ok(target.trim().length > 0);

  await page.getByTestId('load').click();
  await settled(page, 'body[data-model="loaded"]', 240_000);
  await page.getByTestId('prompt-size').selectOption('512');
  await page.getByTestId('run').click();
  await settled(page, 'body[data-ran="true"]', 300_000);
  for (const side of ['without', 'with']) {
    assert.match(await page.getByTestId(`${side}-scores`).textContent(),
      /exact match (yes|no), edit similarity \d\.\d{3}; \d+ prompt tokens, \d+\.\d s/);
  }
  const chunks = await page.locator('[data-testid="chunks"] li').count();
  assert.ok(chunks >= 1 && chunks <= 10, `${chunks} retrieved chunks`);
  const decision = page.getByTestId('decision');
  assert.match(await decision.textContent(), /The confidence policy (retrieves|does not retrieve)/);
  // The slider moves the decision: below every log-probability nothing is retrieved.
  await page.getByTestId('threshold').fill('-4');
  assert.equal(await decision.getAttribute('data-retrieve'), 'false');

  await page.getByTestId('sample').fill('2');
  await page.getByTestId('evaluate').click();
  await settled(page, 'body[data-evaluated="true"]', 400_000);
  const rows = await page.$$eval('#policy-rows tr', (trs) => trs.map((tr) => ({
    policy: tr.dataset.policy, rate: Number(tr.dataset.retrievalRate), es: Number(tr.dataset.editSimilarity),
  })));
  assert.deepEqual(rows.map((r) => r.policy), ['never', 'always', 'oracle', 'confidence']);
  assert.equal(rows[0].rate, 0);
  assert.equal(rows[1].rate, 1);
  // The oracle takes the better completion of each task: never below either fixed policy.
  assert.ok(rows[2].es >= Math.max(rows[0].es, rows[1].es) - 1e-12, JSON.stringify(rows));
  assert.match(await page.getByTestId('eval-status').textContent(), /3 tasks from 3 repositories/);
  assert.ok(Number(await page.getByTestId('curve').getAttribute('data-points')) >= 2);
  assert.deepEqual(errors, []);
  await context.close();
});
