// tinyBenchmarks through the npm package under Node: estimateTiny equals the reference
// package's `evaluate` (tests/fixtures/tiny/, the same fixtures as tests/tiny_conformance.rs),
// fitTinyBenchmark + estimateTiny on the committed real response matrix, tinyHoldout, and errors
// whose message names the bad value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fitTinyBenchmark, estimateTiny, tinyHoldout } from 'latentlab';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/tiny/cases.json', import.meta.url), 'utf8'));
const real = JSON.parse(readFileSync(new URL('../../www/public/tiny/retrieval-responses.json', import.meta.url), 'utf8'));

function matrix(data) {
  const models = data.responses.length;
  const items = data.items.length;
  const y = new Float32Array(models * items);
  data.responses.forEach((row, m) => {
    for (let i = 0; i < items; i++) y[m * items + i] = row[i] === '1' ? 1 : 0;
  });
  return { y, models, items };
}

test('estimateTiny on a benchmark built from the fixture equals the package\'s evaluate (single scenario)', () => {
  for (const c of fixture.cases) {
    // the "arc" scenario alone: its items, its 100 anchors, θ from those anchors
    const items = c.scenarios.arc;
    const anchors = c.seen_examples.slice(0, 100);
    const sizes = Object.values(c.subscenarios.arc).map((s) => s.length);
    const total = sizes.reduce((a, b) => a + b, 0);
    const bw = sizes.flatMap((n) => Array(n).fill(total / (sizes.length * n)));
    const benchmark = JSON.stringify({
      format: 'latentlab-tinybenchmark', version: 1,
      irt: { dim: c.dim, a: items.flatMap((i) => c.a[i]), b: items.map((i) => c.b[i]) },
      balance_weights: bw, anchors, anchor_weights: c.examples_weights.arc,
      sampling: 'anchor', gp_lambda: c.optimal_lambdas.arc, bias: 0, variance: 0, dim_errors: [],
    });
    const got = estimateTiny(benchmark, Float32Array.from(c.y_input.slice(0, 100)));
    const want = c.evaluate_arc.arc;
    for (const key of ['irt', 'pirt', 'gpirt']) {
      assert.ok(Math.abs(got[key] - want[key]) < 1e-6, `seed ${c.seed} ${key}: ${got[key]} vs ${want[key]}`);
    }
    assert.equal(got.theta.length, c.dim);
  }
});

test('a benchmark fitted on the real response matrix estimates a configuration from its anchors', () => {
  const { y, models, items } = matrix(real);
  const calls = [];
  const fit = fitTinyBenchmark(y, models, items, { dropConstantItems: true, anchors: 30, dims: [2], epochs: 300 },
    (done, total, stage) => calls.push([done, total, stage]));
  assert.equal(fit.dim, 2);
  // 300 epochs are 3 steps, for the validation fit and for the final fit; then the anchors
  const validate = 'trying IRT dimension 2 on held-back models';
  const final = 'fitting the IRT model (dimension 2)';
  const anchors = 'choosing anchors by k-means';
  assert.deepEqual(calls, [
    [0, 7, validate], [1, 7, validate], [2, 7, validate], [3, 7, validate],
    [3, 7, final], [4, 7, final], [5, 7, final], [6, 7, final], [6, 7, anchors], [7, 7, anchors],
  ]);
  assert.ok(fit.anchors.length > 20 && fit.anchors.length <= 30);
  assert.ok(Math.abs(fit.anchor_weights.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.ok(fit.kept_items.length < items);
  // configuration 7's answers on the anchors, and its accuracy over the kept items
  const row = (i) => y[7 * items + fit.kept_items[i]];
  const answers = Float32Array.from(fit.anchors.map(row));
  const truth = fit.kept_items.reduce((s, _, i) => s + row(i), 0) / fit.kept_items.length;
  const est = estimateTiny(fit.benchmark, answers);
  for (const key of ['irt', 'pirt', 'gpirt']) {
    assert.ok(Math.abs(est[key] - truth) < 0.15, `${key} ${est[key]} vs ${truth}`);
  }
});

test('tinyHoldout reports one row per size, and bad input is named', () => {
  const { y, models, items } = matrix(real);
  const calls = [];
  const r = tinyHoldout(y, models, items, { dropConstantItems: true, anchors: [20, 40], seeds: 1, dims: [2], epochs: 200 },
    (done, total, stage) => calls.push([done, total, stage]));
  // two IRT fits of 200 epochs (2 steps each), then one anchor draw per size
  const validate = 'trying IRT dimension 2 on held-back models';
  const final = 'fitting the IRT model (dimension 2)';
  const draw = (n) => `estimating the held-out models from ${n} anchors`;
  assert.deepEqual(calls, [
    [0, 6, validate], [1, 6, validate], [2, 6, validate], [2, 6, final], [3, 6, final], [4, 6, final],
    [4, 6, draw(20)], [5, 6, draw(20)], [5, 6, draw(40)], [6, 6, draw(40)],
  ]);
  assert.equal(r.rows.length, 2);
  assert.equal(r.test_models.length, 25);
  assert.ok(r.rows[0].gpirt < 0.2 && r.rows[0].random < 0.3);
  const isError = (re) => (e) => e instanceof Error && re.test(e.message);
  assert.throws(() => fitTinyBenchmark(y, models, items, {}), isError(/item \d+ has the same answer from every model/));
  assert.throws(() => fitTinyBenchmark(y, models + 1, items, {}), isError(/`responses` has \d+ values, expected/));
  assert.throws(() => fitTinyBenchmark(y, models, items, { sampling: 'best' }), isError(/options.sampling is "best"/));
  assert.throws(() => fitTinyBenchmark(y, models, items, { anchor: 3 }), isError(/unknown fitTinyBenchmark options key "anchor"/));
  assert.throws(() => tinyHoldout(y, models, items, { dropConstantItems: true, testFraction: 1 }), isError(/test fraction/));
  assert.throws(() => estimateTiny('{}', new Float32Array(3)), isError(/not a benchmark from fitTinyBenchmark/));
  // Sizes from JS are checked as numbers, not wrapped modulo 2^32 (issue 19: this trapped the module).
  assert.throws(() => fitTinyBenchmark(new Float32Array(0), 0, -1), isError(/models is 0: expected a whole number from 1/));
  assert.throws(() => fitTinyBenchmark(new Float32Array(0), 1, -1), isError(/items is -1: expected a whole number/));
  assert.throws(() => tinyHoldout(y, models, 2.5, {}), isError(/items is 2.5/));
  assert.throws(() => fitTinyBenchmark(new Float32Array(4), 2 ** 31, 2 ** 31), isError(/overflows/));
  assert.equal(fitTinyBenchmark(y, models, items, { dropConstantItems: true, anchors: 30, dims: [2], epochs: 50 }).anchors.length > 0, true,
    'the module still works');
});
