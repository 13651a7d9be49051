// Browser end to end: the optimal-transport page solves two draggable clouds and three clouds
// (M3G) in its worker, re-solves when a point is dragged, and matches the gallery's photos to
// their captions with a plan drawn as a heat map. The backend used is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, openPage, servedSite } from './browser.mjs';

const site = servedSite([
  ['ot.html', 'www/dist is built (scripts/build)'],
]);

test('dragging a point re-solves; M3G and the gallery plan are shown with their backend', async () => {
  const { page, requests, errors } = await openPage(site.browser, `${site.url}/ot.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const result = page.getByTestId('two-result');
  // Without --enable-unsafe-webgpu headless Chromium has no adapter: the CPU, and why.
  assert.equal(await result.getAttribute('data-backend'), 'cpu');
  assert.match(await result.textContent(), /no WebGPU adapter/);
  const before = Number(await result.getAttribute('data-cost'));
  assert.ok(before > 0);
  const lines = await page.$$('[data-testid="two"] line');
  assert.ok(lines.length >= 8, 'the plan is drawn');

  // Drag the first red point far to the left: the cost must grow.
  const solved = Number(await page.evaluate(() => document.body.dataset.twoSolved));
  const dot = await page.$('[data-testid="two"] circle[data-cloud="0"][data-index="0"]');
  const box = await dot.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x - 150, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction((n) => Number(document.body.dataset.twoSolved) > n, solved);
  await page.waitForFunction((c) => Number(document.querySelector('[data-testid="two-result"]').dataset.cost) > c, before);

  const m3g = Number(await page.getByTestId('three-result').getAttribute('data-m3g'));
  assert.ok(Number.isFinite(m3g) && m3g > 0, `M3G ${m3g}`);
  assert.match(await page.getByTestId('three-result').textContent(), /backend: cpu/);

  await page.getByTestId('real').click();
  await page.waitForSelector('body[data-real-solved="true"]', { timeout: 120_000 });
  const cells = await page.$$('[data-testid="heatmap"] .cell');
  assert.equal(cells.length, 144, 'a 12 × 12 heat map');
  const correct = Number(await page.getByTestId('real-status').getAttribute('data-correct'));
  assert.ok(correct >= 7, `${correct} of 12 photos matched to their own caption`);

  const outside = requests.filter((u) => !u.startsWith(site.url + '/') && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'no request left the origin');
  assert.deepEqual(errors, []);
  await page.close();
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
        threeBackend: await three.getAttribute('data-backend'),
        m3g: Number(await three.getAttribute('data-m3g')),
        threeText: await three.textContent(),
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
    assert.deepEqual(gpu.errors, []);
  } finally {
    await gpuBrowser.close();
  }
});
