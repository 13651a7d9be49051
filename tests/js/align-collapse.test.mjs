// Representation alignment and model collapse through the npm package under Node:
// alignRepresentations against the platonic-rep fixtures (tests/fixtures/align/),
// nearestNeighbors, simulateCollapse against the paper's closed forms, and named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { alignRepresentations, alignRepresentationsAsync, nearestNeighbors, simulateCollapse } from 'latentlab';
import { readNpy } from './npy.mjs';

const dir = new URL('../fixtures/align/', import.meta.url);
const cases = JSON.parse(readFileSync(new URL('cases.json', dir), 'utf8')).cases;

test('alignRepresentations equals the reference metrics on its fixtures', () => {
  for (const c of cases.filter((c) => c.prepare === 'mean_of_rows' || c.prepare === 'off')) {
    const x = readNpy(new URL(c.x, dir));
    const y = readNpy(new URL(c.y, dir));
    const [n, dx] = x.shape;
    const dy = y.shape[1];
    for (const k of c.ks) {
      const want = c.results[String(k)].float32;
      const scores = alignRepresentations(x.data, n, dx, y.data, dy, {
        metrics: 'all', k, prepare: c.prepare !== 'off',
      });
      const byName = Object.fromEntries(scores.map((s) => [s.metric, s]));
      for (const metric of ['mutual_knn', 'cycle_knn', 'lcs_knn', 'edit_distance_knn', 'cka', 'unbiased_cka', 'cknna']) {
        assert.ok(Math.abs(byName[metric].score - want[metric]) < 1e-5,
          `${c.name} k=${k} ${metric}: ${byName[metric].score} vs ${want[metric]}`);
      }
      assert.equal(byName.mutual_knn.chance, k / (n - 1));
      assert.equal(byName.mutual_knn.backend, 'cpu');
      assert.equal(byName.mutual_knn.n, n);
    }
    // Without preparation the neighbour table is the reference's, on the features as given.
    if (c.prepare === 'off') {
      const knn = nearestNeighbors(x.data, n, dx, 10);
      assert.deepEqual(Array.from(knn), c.results['10'].knn_x);
    }
  }
});

test('alignment errors name the bad value', () => {
  const x = new Float32Array(12);
  for (let i = 0; i < 12; i++) x[i] = i + 1;
  assert.throws(() => alignRepresentations(x, 4, 3, x, 3, { k: 4 }), /`k` is 4/);
  assert.throws(() => alignRepresentations(x, 4, 3, x.slice(0, 9), 3, {}), /y: 9 values do not make a 4×3 matrix/);
  assert.throws(() => alignRepresentations(x, 4, 3, x, 3, { metrics: 'mutual' }), /unknown metric "mutual"/);
  assert.throws(() => alignRepresentations(x, 4, 3, x, 3, { kk: 2 }), /unknown alignRepresentations options key "kk"/);
});

test('simulateCollapse: replace grows, accumulate stays bounded, both as the closed forms say', () => {
  const r = simulateCollapse({ d: 4, t: 30, sigma2: 0.5, rounds: 6, runs: 200, seed: 1 });
  assert.equal(r.replace.length, 6);
  for (let i = 0; i < 6; i++) {
    assert.ok(Math.abs(r.replace[i] - r.replace_theory[i]) < 5 * r.replace_sem[i] + 0.02 * r.replace_theory[i], `replace ${i}`);
    assert.ok(Math.abs(r.accumulate[i] - r.accumulate_theory[i]) < 5 * r.accumulate_sem[i] + 0.02 * r.accumulate_theory[i], `accumulate ${i}`);
  }
  assert.ok(r.replace[5] > 4 * r.replace[0]);
  assert.throws(() => simulateCollapse({ d: 10, t: 11 }), /t > d \+ 1/);
});

test('alignRepresentationsAsync falls back to the CPU where there is no WebGPU, says why, and gives the same scores', async () => {
  const c = cases[0];
  const x = readNpy(new URL(c.x, dir));
  const y = readNpy(new URL(c.y, dir));
  const [n, dx] = x.shape;
  const dy = y.shape[1];
  const sync = alignRepresentations(x.data, n, dx, y.data, dy, { metrics: 'all', k: 5 });
  const auto = await alignRepresentationsAsync(x.data, n, dx, y.data, dy, { metrics: 'all', k: 5 });
  assert.deepEqual(auto.map((s) => s.score), sync.map((s) => s.score));
  assert.equal(auto[0].backend, 'cpu');
  assert.match(auto[0].fallback, /no WebGPU adapter/, 'Node has no WebGPU');
  const cpu = await alignRepresentationsAsync(x.data, n, dx, y.data, dy, { metrics: 'all', k: 5, backend: 'cpu' });
  assert.equal(cpu[0].fallback, undefined);
  await assert.rejects(alignRepresentationsAsync(x.data, n, dx, y.data, dy, { backend: 'gpu' }), /backend "gpu": no WebGPU adapter/);
  await assert.rejects(alignRepresentationsAsync(x.data, n, dx, y.data, dy, { metrics: 'cka', backend: 'gpu' }), /only the neighbourhood metrics/);
  await assert.rejects(alignRepresentationsAsync(x.data, n, dx, y.data, dy, { backend: 'tpu' }), /options.backend is "tpu"/);
  await assert.rejects(alignRepresentationsAsync(x.data, n, dx, y.data, dy, { k: 0 }), /`k` is 0/);
});
