// Affine steering through the npm package under Node: Steering.fit against POT's
// LinearTransport (tests/fixtures/steer/), apply, the JSON round trip, evaluateSteering,
// pcaProject, and errors whose message names the bad value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Steering, evaluateSteering, pcaProject } from 'latentlab';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/steer/steer.json', import.meta.url), 'utf8'));
const caseNamed = (name) => fixture.cases.find((c) => c.name === name);

const maxRelErr = (got, want) => {
  const scale = want.reduce((s, w) => Math.max(s, Math.abs(w)), 0);
  return want.reduce((e, w, i) => Math.max(e, Math.abs(got[i] - w)), 0) / scale;
};

test('Steering.fit equals POT LinearTransport and moves the source mean onto the target', () => {
  const c = caseNamed('d16_unbalanced_correlated');
  const x = new Float32Array(c.x);
  const s = Steering.fit(x, c.n, c.d, c.z, { method: 'mean-cov', reg: c.reg, sourceLabel: c.source_label });
  assert.equal(s.method, 'mean-cov');
  assert.equal(s.dim, c.d);
  assert.equal(s.nSource, c.n_source);
  assert.ok(maxRelErr(s.weights(), c.mean_cov.W) < 1e-4, 'W');
  assert.ok(maxRelErr(s.bias(), c.mean_cov.b) < 1e-4, 'b');

  const moved = s.apply(x, c.n, { applyTo: 'source', z: c.z });
  assert.equal(moved.n_steered, c.n_source);
  assert.equal(moved.x.length, c.n * c.d);
  const mean = new Float64Array(c.d);
  const rows = c.z.flatMap((z, i) => (z === c.source_label ? [i] : []));
  for (const i of rows) for (let j = 0; j < c.d; j++) mean[j] += moved.x[i * c.d + j] / rows.length;
  assert.ok(maxRelErr(Array.from(mean), c.target_mean) < 1e-4, 'steered source mean');

  // Round trip through JSON (the CLI's format) gives the same map.
  const back = Steering.fromJson(s.toJson());
  assert.deepEqual(back.weights(), s.weights());
  back.free();
  s.free();
});

test('evaluateSteering erases a mean-separated concept and keeps the task', () => {
  const n = 200;
  const dim = 4;
  const x = new Float32Array(n * dim);
  const z = new Int32Array(n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    z[i] = i % 2;
    y[i] = Math.floor(i / 2) % 3;
    const jitter = (k) => (((i * 37 + k * 11) % 19) - 9) / 9;
    x.set([2 * z[i] + jitter(0), y[i] + 0.2 * jitter(1), jitter(2), jitter(3)], i * dim);
  }
  const e = evaluateSteering(x, n, dim, z, { y, method: 'mean' });
  assert.equal(e.fitted_on, 'train split');
  assert.equal(e.apply_to, 'split');
  assert.equal(e.n_test, 60);
  assert.equal(e.test_rows.length, 60);
  assert.equal(e.steered_x.length, n * dim);
  assert.ok(e.concept_accuracy_before > 0.9, JSON.stringify(e));
  assert.ok(e.concept_accuracy_after < 0.7, JSON.stringify(e));
  assert.ok(e.task_accuracy_after > 0.9, JSON.stringify(e));

  // A given steering function is used as is.
  const s = Steering.fit(x, n, dim, z, { method: 'mean' });
  const given = evaluateSteering(x, n, dim, z, { steering: s, applyTo: 'source' });
  assert.equal(given.fitted_on, 'given');
  assert.equal(given.task_accuracy_before, null);
  s.free();
});

test('pcaProject returns n × components coordinates and variance shares', () => {
  const x = new Float32Array([0, 0, 1, 2, 2, 4, 3, 6.5]);
  const p = pcaProject(x, 4, 2, { components: 1 });
  assert.equal(p.projected.length, 4);
  assert.equal(p.components, 1);
  assert.ok(p.explained_variance[0] / p.total_variance > 0.99);
});

test('bad input is refused with a message naming it', () => {
  const x = new Float32Array([0, 1, 1, 0, 2, 1, 1, 3]);
  assert.throws(() => Steering.fit(x, 4, 2, [0, 1, 2, 1], { method: 'mean' }), /`z` row 2 is 2/);
  assert.throws(() => Steering.fit(x, 4, 2, [1, 1, 1, 1], { method: 'mean' }), /target group \(z = 0\) has 0 rows/);
  assert.throws(() => Steering.fit(x, 4, 2, [0, 1, 0, 1], { method: 'mean-cov' }), /singular/);
  assert.throws(() => Steering.fit(x, 4, 2, [0, 1, 0, 1], { method: 'median' }), /`method` is "median"/);
  assert.throws(() => Steering.fit(x, 4, 2, [0, 1, 0, 1], { methd: 'mean' }), /unknown Steering.fit options key "methd"/);
  assert.throws(() => Steering.fit(x, 3, 2, [0, 1, 0], { method: 'mean' }), /x: 8 values do not make a 3×2 matrix/);
  assert.throws(() => Steering.fit(new Float32Array([0, NaN, 1, 0]), 2, 2, [0, 1], { method: 'mean' }), /row 0, column 1 is NaN/);
  const s = Steering.fit(x, 4, 2, [0, 1, 0, 1], { method: 'mean' });
  assert.throws(() => s.apply(x, 4, { applyTo: 'source' }), /concept labels `z`/);
  assert.throws(() => Steering.fromJson('{"format": "other"}'), /steering function/);
  s.free();
});
