// Browser end to end: the tinyBenchmarks page loads the real response matrix, shows the 30
// anchor items, and on "Evaluate" runs the held-out evaluation in its worker: IRT anchors with
// gp-IRT beat a random sample of the same size at every size. Both fits show their progress
// (steps done of all, and what is being computed) while they run, and the page says on which
// configurations each chose its IRT dimension.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordErrors, servedSite } from './browser.mjs';

const site = servedSite([
  ['tiny.html', 'www/dist is built (scripts/build)'],
]);

/** Records every progress report the page shows beside `#anchor-step` and `#eval-step`. */
function recordSteps() {
  window.steps = { anchor: [], eval: [] };
  document.addEventListener('DOMContentLoaded', () => {
    for (const key of ['anchor', 'eval']) {
      const el = document.getElementById(`${key}-step`);
      new MutationObserver(() => {
        if (el.dataset.total) {
          window.steps[key].push({
            done: Number(el.dataset.done), total: Number(el.dataset.total), stage: el.dataset.stage,
            text: el.textContent, shown: !el.closest('[hidden]'),
          });
        }
      }).observe(el, { attributes: true, childList: true, characterData: true, subtree: true });
    }
  });
}

/** Progress reports: shown, steps never going back, ending at the total. */
function checkSteps(steps, what) {
  assert.ok(steps.length > 20, `${what}: ${steps.length} progress reports`);
  assert.ok(steps.every((s) => s.shown && s.total === steps[0].total), what);
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i].done >= steps[i - 1].done, `${what}: step went back`);
  assert.equal(steps.at(-1).done, steps.at(-1).total);
  assert.match(steps.at(-1).text, new RegExp(`step ${steps.at(-1).total} of ${steps.at(-1).total}$`));
}

test('anchors are shown and the evaluation beats random sampling', async () => {
  const page = await site.browser.newPage();
  const errors = recordErrors(page);
  await page.addInitScript(recordSteps);
  await page.goto(`${site.url}/tiny.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await page.waitForSelector('body[data-anchors="true"]', { timeout: 240_000 });
  // The anchor fit: 5 candidate dimensions and the final fit, 2000 epochs each (20 steps),
  // then the k-means; each stage named while it runs.
  const anchorSteps = await page.evaluate(() => window.steps.anchor);
  checkSteps(anchorSteps, 'anchor fit');
  assert.equal(anchorSteps[0].total, 6 * 20 + 1);
  const stages = new Set(anchorSteps.map((s) => s.stage));
  for (const dim of [1, 2, 3, 5, 10]) assert.ok(stages.has(`trying IRT dimension ${dim} on held-back models`), [...stages].join('; '));
  const anchorDim = Number(await page.getByTestId('anchor-status').getAttribute('data-dim'));
  assert.ok(stages.has(`fitting the IRT model (dimension ${anchorDim})`));
  assert.equal(anchorSteps.at(-1).stage, 'choosing anchors by k-means');
  assert.equal(await page.$eval('#anchor-progress-row', (el) => el.hidden), true, 'the bar goes when the fit is done');
  assert.match(await page.getByTestId('anchor-status').textContent(), new RegExp(`dimension ${anchorDim}, chosen by validation on all 100 configurations`));
  const anchors = await page.$$('[data-testid="anchors"] li');
  assert.ok(anchors.length > 20 && anchors.length <= 30, `${anchors.length} anchors`);
  // Before the first evaluation there is no empty chart or table to look at.
  assert.equal(await page.getByTestId('chart').isVisible(), false);
  assert.equal(await page.getByTestId('table').isVisible(), false);
  await page.getByTestId('seeds').fill('1');
  await page.getByTestId('run').click();
  await page.waitForSelector('body[data-evaluated="true"]', { timeout: 300_000 });
  // The evaluation: the same fits on the 75 training configurations, then one anchor draw per size.
  const evalSteps = await page.evaluate(() => window.steps.eval);
  checkSteps(evalSteps, 'evaluation');
  assert.equal(evalSteps[0].total, 6 * 20 + 4);
  for (const n of [10, 30, 60, 100]) {
    assert.ok(evalSteps.some((s) => s.stage === `estimating the held-out models from ${n} anchors`), `${n} anchors`);
  }
  assert.equal(await page.$eval('#eval-progress-row', (el) => el.hidden), true);
  assert.equal(await page.getByTestId('chart').isVisible(), true);
  assert.equal(await page.getByTestId('table').isVisible(), true);
  const rows = await page.$$eval('#rows tr', (trs) => trs.map((tr) => ({
    anchors: Number(tr.dataset.anchors), random: Number(tr.dataset.random), gpirt: Number(tr.dataset.gpirt),
  })));
  assert.deepEqual(rows.map((r) => r.anchors), [10, 30, 60, 100]);
  for (const r of rows) assert.ok(r.gpirt < r.random, `${r.anchors} anchors: gp-IRT ${r.gpirt} vs random ${r.random}`);
  // Each fit says where its dimension was chosen; the note says why they may differ.
  const status = await page.getByTestId('status').textContent();
  assert.match(status, /IRT dimension \d+ \(chosen by validation on the 75 training configurations\)/);
  const evalDim = Number(await page.getByTestId('status').getAttribute('data-dim'));
  assert.ok(evalDim >= 1 && anchorDim >= 1);
  assert.equal(await page.getByTestId('dim-note').isVisible(), true);
  assert.match(await page.getByTestId('dim-note').textContent(), /all 100 configurations/);
  assert.deepEqual(errors, []);
  await page.close();
});
