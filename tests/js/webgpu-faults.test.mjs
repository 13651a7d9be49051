// The shared WebGPU device under stress, in headless Chromium with WebGPU (SwiftShader): many
// overlapping Sinkhorn, multi-marginal and neighbour-search calls (what a drag on the
// transport page fires) are serialised on the device — every answer equals the CPU's and the
// module never traps — and a device destroyed mid-session (as a GPU reset or driver crash
// would) leaves the calls to the CPU with the same answers, saying so.
//
// The package (pkg/, as build_wasm makes it) is imported straight into a page on its own
// origin, so these calls reach the wasm exports without the site's worker in between.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { servedPackage, openPackagePage } from './browser.mjs';

const served = servedPackage({ webgpu: true });

const packagePage = () => openPackagePage(served, { recordDevices: true });

/** Runs in the page: seeded clouds and the problems the tests solve, with their CPU answers. */
function defineProblems() {
  let state = 12345;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const cloud = (rows, dim, shift) =>
    Float32Array.from({ length: rows * dim }, (_, i) => random() + (i % dim === 0 ? shift : 0));
  const ll = window.ll;
  const problems = [];
  for (let i = 0; i < 24; i += 1) {
    const kind = ['sinkhorn', 'multi', 'align'][i % 3];
    if (kind === 'sinkhorn') {
      const x = cloud(24, 2, 0);
      const y = cloud(20, 2, 0.3 + i / 50);
      const options = { epsilon: 0.05 + i / 400 };
      problems.push({
        kind,
        gpu: () => ll.sinkhornAsync(x, 24, y, 20, 2, options),
        cpu: () => ll.sinkhorn(x, 24, y, 20, 2, options),
        value: (r) => r.reg_ot_cost,
      });
    } else if (kind === 'multi') {
      const clouds = [cloud(6, 2, 0), cloud(5, 2, 0.5), cloud(4, 2, 1 + i / 50)];
      const options = { epsilon: 0.1 };
      problems.push({
        kind,
        gpu: () => ll.multiSinkhornAsync(clouds, [6, 5, 4], 2, options),
        cpu: () => ll.multiSinkhorn(clouds, [6, 5, 4], 2, options),
        value: (r) => r.ent_reg_cost,
      });
    } else {
      const x = cloud(40, 8, 0);
      const y = Float32Array.from(x, (v) => v + 0.05 * random());
      const options = { metrics: 'mutual_knn', k: 5 };
      problems.push({
        kind,
        gpu: () => ll.alignRepresentationsAsync(x, 40, 8, y, 8, options).then((rows) => rows[0]),
        cpu: () => ll.alignRepresentations(x, 40, 8, y, 8, options)[0],
        value: (r) => r.score,
      });
    }
  }
  window.problems = problems;
}

/** In the page: fires every problem at once, then compares each answer with the CPU's. */
async function fireAll() {
  const settled = await Promise.allSettled(window.problems.map((p) => p.gpu()));
  return settled.map((s, i) => {
    const p = window.problems[i];
    const cpu = p.value(p.cpu());
    if (s.status === 'rejected') {
      const e = s.reason;
      return { kind: p.kind, error: `${e?.constructor?.name}: ${e?.message ?? e}` };
    }
    return {
      kind: p.kind,
      backend: s.value.backend,
      fallback: s.value.fallback ?? null,
      gpu: p.value(s.value),
      cpu,
    };
  });
}

function assertSameAnswers(answers) {
  for (const a of answers) {
    assert.equal(a.error, undefined, `${a.kind}: ${a.error}`);
    const tolerance = 1e-4 * Math.max(1, Math.abs(a.cpu));
    assert.ok(Math.abs(a.gpu - a.cpu) <= tolerance, `${a.kind} on ${a.backend}: ${a.gpu} vs cpu ${a.cpu}`);
  }
}

test('24 overlapping GPU calls are serialised: every answer equals the CPU one, and the module keeps working', async () => {
  const { page, errors } = await packagePage();
  await page.evaluate(defineProblems);
  const answers = await page.evaluate(fireAll);
  assert.equal(answers.length, 24);
  assertSameAnswers(answers);
  const onGpu = answers.filter((a) => a.backend === 'webgpu');
  assert.equal(onGpu.length, 24, `all solved on WebGPU: ${JSON.stringify(answers.map((a) => a.fallback))}`);
  // A second burst on the same instance: nothing was left poisoned by the first.
  assertSameAnswers(await page.evaluate(fireAll));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a device destroyed between calls: the calls fall back to the CPU with the same answers and say why', async () => {
  const { page, errors } = await packagePage();
  await page.evaluate(defineProblems);
  const first = await page.evaluate(async () => {
    const r = await window.problems[0].gpu();
    return r.backend;
  });
  assert.equal(first, 'webgpu');
  const lost = await page.evaluate(async () => {
    window.devices.forEach((d) => d.destroy());
    return window.devices.length;
  });
  assert.ok(lost >= 1, 'the module asked for a device');
  const answers = await page.evaluate(fireAll);
  assertSameAnswers(answers);
  // The first call after the loss finds the device gone; the module asks for a new one,
  // so later calls may run on the GPU again. Whatever ran on the CPU says why.
  for (const a of answers) {
    if (a.backend === 'cpu') assert.match(a.fallback ?? '', /GPU/, `${a.kind}: ${a.fallback}`);
  }
  console.log(`after the loss: ${answers.map((a) => a.backend).join(' ')}; first reason: ${answers.find((a) => a.fallback)?.fallback}`);
  assert.ok(answers.some((a) => a.backend === 'cpu'), 'at least the call that met the lost device fell back');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a device destroyed mid-solve: the call in flight falls back to the CPU with the same answer', async () => {
  const { page, errors } = await packagePage();
  await page.evaluate(defineProblems);
  const result = await page.evaluate(async () => {
    await window.problems[0].gpu(); // the device exists and the kernels are built
    // Slow enough on SwiftShader (many iterations, each with a read-back) to be caught in flight.
    const x = Float32Array.from({ length: 600 }, (_, i) => (i * 0.618) % 1);
    const y = Float32Array.from({ length: 600 }, (_, i) => ((i * 0.382) % 1) + 0.1);
    const options = { epsilon: 0.002, threshold: 1e-7, maxIterations: 3000 };
    let settled = false;
    const pending = window.ll.sinkhornAsync(x, 300, y, 300, 2, options).finally(() => { settled = true; });
    await new Promise((ok) => setTimeout(ok, 200));
    const inFlight = !settled;
    window.devices.forEach((d) => d.destroy());
    const r = await pending;
    const cpu = window.ll.sinkhorn(x, 300, y, 300, 2, options);
    return { inFlight, backend: r.backend, fallback: r.fallback ?? null, gpu: r.reg_ot_cost, cpu: cpu.reg_ot_cost };
  });
  assert.ok(result.inFlight, 'the solve was still running when the device was destroyed');
  assert.equal(result.backend, 'cpu', JSON.stringify(result));
  assert.match(result.fallback ?? '', /GPU/);
  assert.ok(Math.abs(result.gpu - result.cpu) <= 1e-6 * Math.max(1, Math.abs(result.cpu)), JSON.stringify(result));
  // The module still answers on a new device.
  const after = await page.evaluate(async () => (await window.problems[0].gpu()).backend);
  assert.equal(after, 'webgpu');
  assert.deepEqual(errors, []);
  await page.close();
});
