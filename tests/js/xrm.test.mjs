// XRM through the npm package under Node: on a synthetic Waterbirds-like set (a weak signal of
// the class, a strong clean signal of a spurious attribute that agrees with it 95% of the time
// in training) xrmCompare finds the minority and GroupDRO on its groups beats ERM on the worst
// group; progress is reported; bad input is refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xrmCompare } from 'latentlab';

/** mulberry32: a small seeded generator, so the data are the same on every run. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function split(seed, n, agree) {
  const u = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const dim = 5;
  const x = new Float32Array(n * dim);
  const y = new Uint32Array(n);
  const attribute = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = u() < 0.3 ? 1 : 0;
    attribute[i] = u() < agree ? y[i] : 1 - y[i];
    const s = (v) => (v ? 1 : -1);
    x.set([0.6 * s(y[i]) + 0.5 * normal(), 2 * s(attribute[i]) + 0.1 * normal(),
      0.5 * normal(), 0.5 * normal(), 0.5 * normal()], i * dim);
  }
  return { x, y, attribute };
}

const train = split(1, 600, 0.95);
const validation = split(2, 300, 0.5);
const testSplit = split(3, 600, 0.5);

test('xrmCompare finds the minority and beats ERM on the worst group', () => {
  const calls = [];
  const r = xrmCompare(train, validation, testSplit, 5, { seeds: 2, steps: 1500 },
    (done, total) => calls.push([done, total]));
  assert.deepEqual(calls, [[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
  assert.equal(r.dim, 5);
  assert.deepEqual(r.n, { train: 600, val: 300, test: 600 });
  assert.equal(r.runs.length, 2);
  assert.equal(r.runs[0].environments.train.length, 600);
  assert.equal(r.runs[0].environments.validation.length, 300);
  // recovery is computed from the returned environments and the true attribute
  const env = r.runs[0].environments.train;
  const flagged = env.filter((e) => e === 1).length;
  assert.equal(r.runs[0].recovery_train.inferred_minority, flagged);
  const both = env.filter((e, i) => e === 1 && train.y[i] !== train.attribute[i]).length;
  assert.ok(Math.abs(r.runs[0].recovery_train.precision - both / flagged) < 1e-12);
  assert.ok(r.recovery.train_recall.mean > 0.6, JSON.stringify(r.recovery));
  const mean = (r.runs[0].groupdro_xrm.test_worst_group + r.runs[1].groupdro_xrm.test_worst_group) / 2;
  assert.ok(Math.abs(r.table.groupdro_xrm.test_worst_group.mean - mean) < 1e-12);
  assert.equal(r.table.erm.test_worst_group.mean, r.erm.test_worst_group);
  assert.ok(r.erm.test_worst_group < 0.6, JSON.stringify(r.erm));
  assert.ok(mean > r.erm.test_worst_group + 0.15, `XRM ${mean} vs ERM ${r.erm.test_worst_group}`);
});

test('xrmCompare projects on principal components when asked', () => {
  const r = xrmCompare(train, validation, testSplit, 5, { seeds: 1, steps: 200, pca: 2, whiten: true });
  assert.equal(r.dim, 2);
  const all = xrmCompare(train, validation, testSplit, 5, { seeds: 1, steps: 200, pca: 0 });
  assert.equal(all.dim, 5);
  // whitening scales principal components: without them it is refused, not silently skipped
  assert.throws(() => xrmCompare(train, validation, testSplit, 5, { seeds: 1, steps: 10, pca: 0, whiten: true }),
    /options.whiten needs options.pca between 1 and 4/);
  assert.throws(() => xrmCompare(train, validation, testSplit, 5, { seeds: 1, steps: 10, pca: 5, whiten: true }),
    /options.whiten needs options.pca/);
});

test('bad input is refused with a message naming it', () => {
  const opts = { seeds: 1, steps: 10 };
  assert.throws(() => xrmCompare({ ...train, x: Array.from(train.x) }, validation, testSplit, 5, opts),
    /`train.x` must be a Float32Array/);
  assert.throws(() => xrmCompare(train, { ...validation, y: validation.y.slice(1) }, testSplit, 5, opts),
    /`validation.y` has 299 entries: expected one per row \(300\)/);
  assert.throws(() => xrmCompare(train, validation, { ...testSplit, attribute: [-1, ...testSplit.attribute.slice(1)] }, 5, opts),
    /`test.attribute\[0\]` is -1/);
  assert.throws(() => xrmCompare(train, validation, testSplit, 7, opts), /`train.x` has 3000 values: expected rows × dim 7/);
  assert.throws(() => xrmCompare(train, validation, testSplit, 5, { seed: 1 }), /unknown xrmCompare options key "seed"/);
  assert.throws(() => xrmCompare(train, validation, testSplit, 5, { seeds: 0 }), /`seeds` is 0/);
  assert.throws(() => xrmCompare(train, validation, { x: testSplit.x, y: 3, attribute: testSplit.attribute }, 5, opts),
    /`test.y` must be an array/);
  const empty = { x: new Float32Array(0), y: [], attribute: [] };
  assert.throws(() => xrmCompare(train, empty, testSplit, 5, { ...opts, pca: 0 }), /`validation` is empty/);
  assert.throws(() => xrmCompare(train, empty, testSplit, 5, { ...opts, pca: 2 }), /`validation.x` is empty/);
  const oneClass = { ...train, y: new Uint32Array(600) };
  assert.throws(() => xrmCompare(oneClass, { ...validation, y: new Uint32Array(300) },
    { ...testSplit, y: new Uint32Array(600) }, 5, opts), /at least 2 classes/);
  const nan = Float32Array.from(train.x);
  nan[7] = NaN;
  assert.throws(() => xrmCompare({ ...train, x: nan }, validation, testSplit, 5, { ...opts, pca: 0 }), /NaN/);
});
