// Browser end to end: the optimal-transport page solves two draggable clouds and three clouds
// (M3G) in its worker, re-solves when a point is dragged, and matches the gallery's photos to
// their captions with a plan drawn as a heat map. The backend used is reported in plain words,
// each result says "solving…" while its solve runs, and a drag's many moves are folded into
// a few solves whose last answer is the one shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sinkhorn } from 'latentlab';
import { launch, openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['ot.html', 'www/dist is built (scripts/build)'],
]);

/**
 * Page init script. Records, from the start, each aria-busy change of a result (with what its
 * ::after shows then), the pointer moves, the solves posted to the worker (by op) and each
 * position a dragged point is given. Every message reaches the worker 100 ms late, in order,
 * as from a slow solver, so that a drag's moves outpace its solves.
 */
function instrument() {
  const ot = { busy: [], moves: 0, posted: {}, dragged: [] };
  window.ot = ot;
  new MutationObserver((records) => {
    for (const { target, attributeName } of records) {
      if (attributeName === 'cx') ot.dragged.push([target.getAttribute('cx'), target.getAttribute('cy')]);
      else ot.busy.push([target.dataset.testid, target.getAttribute('aria-busy'), getComputedStyle(target, '::after').content]);
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-busy', 'cx'] });
  window.addEventListener('pointermove', () => { ot.moves += 1; }, true);
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (message, transfer) {
    ot.posted[message.op] = (ot.posted[message.op] ?? 0) + 1;
    setTimeout(() => post.call(this, message, transfer), 100);
  };
}

async function openInstrumented(query = '') {
  const context = await site.browser.newContext();
  await context.addInitScript(instrument);
  const opened = await openPage(context, `${site.url}/ot.html${query}`);
  return { ...opened, close: () => context.close() };
}

/** `id`'s result said "solving…" each time it went busy, and is no longer busy. */
function assertBusyThenCleared(busy, id) {
  const mine = busy.filter(([testid]) => testid === id);
  assert.ok(mine.some(([, value]) => value === 'true'), `${id} was never busy: ${JSON.stringify(mine)}`);
  for (const [, value, after] of mine) {
    if (value === 'true') assert.match(after, /solving…/, `${id} busy without saying so`);
  }
  assert.equal(mine.at(-1)[1], 'false', `${id} still busy`);
}

const notBusy = (id) => document.querySelector(`[data-testid="${id}"]`).getAttribute('aria-busy') === 'false';

/** The page's two clouds as its circles now place them, with `moved` in place of red point 0. */
async function twoClouds(page, moved) {
  const clouds = await page.$$eval('[data-testid="two"] circle', (circles) => [0, 1].map((c) => circles
    .filter((e) => e.dataset.cloud === String(c))
    .sort((a, b) => a.dataset.index - b.dataset.index)
    .map((e) => [Number(e.getAttribute('cx')), Number(e.getAttribute('cy'))])));
  if (moved) clouds[0][0] = moved.map(Number);
  return clouds;
}

/** The regularised OT cost of `clouds` solved here, under Node, as the page solves them (its
 * SVG units → solver units, its ε slider, its solver settings). */
function costHere(clouds, epsilon) {
  const [x, y] = clouds.map((pts) => Float32Array.from(pts.flatMap(([px, py]) => [(px - 300) / 100, (py - 180) / 100])));
  return sinkhorn(x, x.length / 2, y, y.length / 2, 2, { epsilon, threshold: 1e-4, maxIterations: 5000 }).reg_ot_cost;
}

test('dragging a point re-solves; M3G and the gallery plan are shown with their backend', async () => {
  const { page, requests, errors, close } = await openInstrumented();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const result = page.getByTestId('two-result');
  // Without --enable-unsafe-webgpu headless Chromium has no adapter: the CPU, why in plain
  // words, and the GPU layer's one sentence (src/gpu/mod.rs NO_WEBGPU) in the title.
  assert.equal(await result.getAttribute('data-backend'), 'cpu');
  assert.match(await result.textContent(), /backend: CPU \(this browser offers no WebGPU\)$/);
  assert.match(await result.locator('span').getAttribute('title'), /^no WebGPU adapter is available in this browser$/);
  const before = Number(await result.getAttribute('data-cost'));
  assert.ok(before > 0);
  const lines = await page.$$('[data-testid="two"] line');
  assert.ok(lines.length >= 8, 'the plan is drawn');

  // Drag the first red point far to the left in 25 moves: the cost must grow, the moves fold
  // into fewer solves, and the cost shown is the final positions' own.
  const dot = await page.$('[data-testid="two"] circle[data-cloud="0"][data-index="0"]');
  const box = await dot.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.evaluate(() => Object.assign(window.ot, { moves: 0, posted: {}, dragged: [] }));
  await page.mouse.move(box.x - 150, box.y + box.height / 2, { steps: 25 });
  await page.mouse.up();
  await page.waitForFunction(notBusy, 'two-result');
  const { moves, posted, dragged, busy } = await page.evaluate(() => window.ot);
  assert.equal(moves, 25);
  assert.ok(posted['ot.two'] < moves, `${posted['ot.two']} solves for ${moves} moves`);
  const shown = Number(await result.getAttribute('data-cost'));
  assert.ok(shown > before, `cost ${before} → ${shown}`);
  const epsilon = 10 ** Number(await page.getByTestId('eps-two').inputValue());
  const final = costHere(await twoClouds(page), epsilon);
  const previous = costHere(await twoClouds(page, dragged.at(-2)), epsilon);
  assert.ok(Math.abs(shown - final) <= 1e-6 * final, `shown ${shown}, final positions ${final}`);
  assert.ok(Math.abs(shown - previous) > 1e-4 * final, `the last move changes the cost (${previous} → ${final})`);
  assertBusyThenCleared(busy, 'two-result');
  assertBusyThenCleared(busy, 'three-result');

  const m3g = Number(await page.getByTestId('three-result').getAttribute('data-m3g'));
  assert.ok(Number.isFinite(m3g) && m3g > 0, `M3G ${m3g}`);
  assert.match(await page.getByTestId('three-result').textContent(), /· \d+ iterations · backend: CPU \(this browser offers no WebGPU\)$/);

  await page.getByTestId('real').click();
  await page.waitForSelector('body[data-real-solved="true"]', { timeout: 120_000 });
  await page.waitForFunction(notBusy, 'real-status');
  assertBusyThenCleared(await page.evaluate(() => window.ot.busy), 'real-status');
  const cells = await page.$$('[data-testid="heatmap"] .cell');
  assert.equal(cells.length, 144, 'a 12 × 12 heat map');
  const correct = Number(await page.getByTestId('real-status').getAttribute('data-correct'));
  assert.ok(correct >= 7, `${correct} of 12 photos matched to their own caption`);
  // Every caption is drawn whole inside the heat map (the text's own box, not its element's,
  // which a clipped label would keep inside).
  const labels = await page.$$eval('[data-testid="heatmap"] .col-label', (els) => els.map((label) => {
    const outer = label.parentElement.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(label);
    const text = range.getBoundingClientRect();
    const inside = text.top >= outer.top - 0.5 && text.bottom <= outer.bottom + 0.5
      && text.left >= outer.left - 0.5 && text.right <= outer.right + 0.5;
    return [label.textContent, inside];
  }));
  assert.equal(labels.length, 12);
  assert.deepEqual(labels.filter(([, inside]) => !inside), [], 'captions cut off');

  const outside = requests.filter((u) => !u.startsWith(site.url + '/') && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'no request left the origin');
  assert.deepEqual(errors, []);
  await close();
});

test('a solve that stops short or fails says so plainly and is no longer busy', async () => {
  {
    const { page, errors, close } = await openInstrumented('?maxIterations=3');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    for (const id of ['two-result', 'three-result']) {
      const text = await page.getByTestId(id).textContent();
      assert.match(text, / · did not converge in 3 iterations \(marginal error \d\.\de[+-]\d+\) · /, text);
    }
    assertBusyThenCleared(await page.evaluate(() => window.ot.busy), 'three-result');
    assert.deepEqual(errors, []);
    await close();
  }
  {
    // A memory budget the worker refuses fails every call.
    const { page, close } = await openInstrumented('?memoryBudget=-1');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    assert.match(await page.getByTestId('error').textContent(), /memoryBudget=-1/);
    const { busy } = await page.evaluate(() => window.ot);
    assertBusyThenCleared(busy, 'two-result');
    assertBusyThenCleared(busy, 'three-result');
    await close();
  }
});

test('with WebGPU (SwiftShader) the two-cloud plan and the three-cloud M3G run on the GPU and equal the CPU answers', async () => {
  const gpuBrowser = await launch({ webgpu: true });
  try {
    const solved = async (query) => {
      const { page, errors } = await openPage(gpuBrowser, `${site.url}/ot.html${query}`);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
      await page.waitForSelector('body[data-three-solved="true"]', { timeout: 120_000 });
      const result = page.getByTestId('two-result');
      const three = page.getByTestId('three-result');
      const out = {
        backend: await result.getAttribute('data-backend'),
        cost: Number(await result.getAttribute('data-cost')),
        text: await result.textContent(),
        adapter: await result.locator('span').getAttribute('title'),
        threeBackend: await three.getAttribute('data-backend'),
        m3g: Number(await three.getAttribute('data-m3g')),
        threeText: await three.textContent(),
        busy: [await result.getAttribute('aria-busy'), await three.getAttribute('aria-busy')],
        errors,
      };
      await page.close();
      return out;
    };
    const gpu = await solved('');
    const cpu = await solved('?backend=cpu');
    assert.equal(cpu.backend, 'cpu');
    assert.equal(gpu.backend, 'webgpu', gpu.text);
    assert.ok(Math.abs(gpu.cost - cpu.cost) <= 1e-4 * Math.abs(cpu.cost), `webgpu ${gpu.cost} vs cpu ${cpu.cost}`);
    assert.equal(cpu.threeBackend, 'cpu');
    assert.equal(gpu.threeBackend, 'webgpu', gpu.threeText);
    assert.ok(Math.abs(gpu.m3g - cpu.m3g) <= 1e-4 * Math.abs(cpu.m3g), `M3G webgpu ${gpu.m3g} vs cpu ${cpu.m3g}`);
    // SwiftShader's adapter has no name ("name (api, type)" reads " (webgpu, cpu)"): plain words.
    assert.match(gpu.adapter, /\(webgpu, cpu\)$/);
    for (const text of [gpu.text, gpu.threeText]) assert.match(text, /backend: WebGPU \(([^()]+, )?software adapter\)$/);
    // The CPU as asked for: no reason to give.
    assert.match(cpu.text, /backend: CPU$/);
    assert.deepEqual([...gpu.busy, ...cpu.busy], ['false', 'false', 'false', 'false']);
    assert.deepEqual(gpu.errors, []);
  } finally {
    await gpuBrowser.close();
  }
});
