// Optimal transport through the npm package under Node: sinkhorn, sinkhornCost,
// multiSinkhorn and m3g against the POT / OTT-JAX fixtures (tests/fixtures/ot/), and
// errors whose message names the bad value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sinkhorn, sinkhornAsync, sinkhornCost, multiSinkhorn, multiSinkhornAsync, m3g, m3gAsync } from 'latentlab';

const fixture = (file, name) => {
  const all = JSON.parse(readFileSync(new URL(`../fixtures/ot/${file}`, import.meta.url), 'utf8'));
  const found = all.cases.find((c) => c.name === name);
  assert.ok(found, `${file} has no case ${name}`);
  return found;
};

// As tests/ot_conformance.rs: tight solver settings against float64 references.
const TIGHT = { threshold: 1e-5, maxIterations: 100000 };
const TOL = 1e-4;

const close = (got, want, what) => {
  const rel = Math.abs(got - want) / Math.max(Math.abs(want), 1e-12);
  assert.ok(rel < TOL, `${what}: got ${got}, want ${want} (relative error ${rel})`);
};

/** max |got − want| / max |want| */
const closeArray = (got, want, what) => {
  assert.equal(got.length, want.length, `${what}: length`);
  const scale = want.reduce((s, w) => Math.max(s, Math.abs(w)), 0);
  const err = want.reduce((e, w, i) => Math.max(e, Math.abs(got[i] - w)), 0);
  assert.ok(err / scale < TOL, `${what}: relative error ${err / scale}`);
};

test('sinkhornCost matches POT on a cost matrix, plan included', () => {
  const c = fixture('sinkhorn.json', 'pot_sinkhorn_log_cost_matrix');
  const { n, m, cost } = c.geometry;
  const r = sinkhornCost(new Float32Array(cost), n, m, {
    epsilon: c.epsilon.value,
    a: new Float32Array(c.a),
    b: new Float32Array(c.b),
    returnPlan: true,
    ...TIGHT,
  });
  assert.equal(r.backend, 'cpu');
  assert.equal(r.converged, true);
  assert.equal(r.n, n);
  assert.equal(r.m, m);
  assert.ok(r.n_iters > 0);
  assert.ok(Array.isArray(r.errors));
  close(r.transport_cost, c.expected.transport_cost, 'transport_cost');
  assert.ok(r.plan instanceof Float32Array);
  closeArray(r.plan, c.expected.plan, 'plan');
  assert.ok(r.f instanceof Float32Array && r.f.length === n);
  assert.ok(r.g instanceof Float32Array && r.g.length === m);
  // Without returnPlan there is no plan.
  const bare = sinkhornCost(new Float32Array(cost), n, m, { epsilon: 0.1 });
  assert.equal(bare.plan, undefined);
});

test('sinkhorn matches OTT-JAX on unbalanced point clouds', () => {
  const c = fixture('sinkhorn.json', 'ott_unbalanced');
  const { n, m, dim, x, y } = c.geometry;
  const r = sinkhorn(new Float32Array(x), n, new Float32Array(y), m, dim, {
    epsilon: c.epsilon.value,
    a: c.a, // plain arrays work too
    b: new Float32Array(c.b),
    tauA: c.tau_a,
    tauB: c.tau_b,
    ...TIGHT,
  });
  assert.equal(r.backend, 'cpu');
  assert.equal(r.converged, true);
  close(r.reg_ot_cost, c.expected.reg_ot_cost, 'reg_ot_cost');
  close(r.ent_reg_cost, c.expected.ent_reg_cost, 'ent_reg_cost');
  close(r.transport_cost, c.expected.transport_cost, 'transport_cost');
});

test('sinkhorn with the cosine cost and relativeEpsilon matches OTT-JAX', () => {
  const c = fixture('sinkhorn.json', 'ott_cosine_relative_mean');
  const { n, m, dim, x, y } = c.geometry;
  const r = sinkhorn(new Float32Array(x), n, new Float32Array(y), m, dim, {
    relativeEpsilon: c.epsilon.value,
    costFn: 'cosine',
    ...TIGHT,
  });
  close(r.epsilon, c.expected.epsilon, 'epsilon');
  close(r.reg_ot_cost, c.expected.reg_ot_cost, 'reg_ot_cost');
});

test('multiSinkhorn matches OTT-JAX MMSinkhorn (k = 3, unequal sizes, weights)', () => {
  const c = fixture('mmsinkhorn.json', 'mm_k3_cosine');
  const r = multiSinkhorn(
    c.x_s.map((x) => new Float32Array(x)),
    c.sizes,
    c.dim,
    {
      epsilon: c.epsilon.value,
      costFn: 'cosine',
      weights: c.a_s.map((a) => new Float32Array(a)),
      returnCoupling: true,
      ...TIGHT,
    },
  );
  assert.equal(r.backend, 'cpu');
  assert.equal(r.converged, true);
  assert.deepEqual(r.shape, c.sizes);
  close(r.ent_reg_cost, c.expected.ent_reg_cost, 'ent_reg_cost');
  closeArray(r.coupling, c.expected.coupling, 'coupling');
  assert.equal(r.potentials.length, 3);
  assert.ok(r.potentials[0] instanceof Float32Array);
});

test('m3g and its gradient match OTT-JAX and jax.grad', () => {
  const c = fixture('m3g.json', 'm3g_k3_sq_euclidean');
  const views = c.x_s.map((x) => new Float32Array(x));
  const r = m3g(views, c.n, c.dim, { epsilon: c.epsilon.value, ...TIGHT }, true);
  assert.equal(r.backend, 'cpu');
  assert.equal(r.converged, true);
  assert.equal(r.k, 3);
  assert.equal(r.n, c.n);
  close(r.m3g, c.expected.m3g, 'm3g');
  close(r.ground_truth_cost, c.expected.ground_truth_cost, 'ground_truth_cost');
  close(r.ent_reg_cost, c.expected.ent_reg_cost, 'ent_reg_cost');
  assert.equal(r.gradient.length, 3);
  r.gradient.forEach((g, l) => {
    assert.ok(g instanceof Float32Array);
    closeArray(g, c.expected.gradient[l], `gradient[${l}]`);
  });
  const noGradient = m3g(views, c.n, c.dim, { epsilon: c.epsilon.value });
  assert.equal(noGradient.gradient, undefined);
});

test('bad input: Error objects whose message names the bad value', () => {
  const x = new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]);
  const y = new Float32Array([0.5, 0.5, 2, 0, 0, 2]);
  const isError = (pattern) => (e) => e instanceof Error && pattern.test(e.message);
  assert.throws(
    () => sinkhorn(new Float32Array([0, 1, NaN, 0]), 2, y, 3, 2, { epsilon: 0.1 }),
    isError(/`x` point 1, coordinate 0 is NaN/),
  );
  assert.throws(() => sinkhorn(x, 4, y, 3, 2, { epsilon: 0 }), isError(/`epsilon` is 0/));
  assert.throws(() => sinkhorn(x, 4, y, 3, 2, { epsilon: 0.1, a: [0.5, 0.6, -0.1, 0] }), isError(/`options\.a\[2\]` is -0\.1/));
  assert.throws(() => sinkhorn(x, 4, y, 3, 2, { epsilon: 0.1, tauA: 2 }), isError(/`options\.tauA` is 2/));
  assert.throws(() => sinkhorn(x, 5, y, 3, 2, { epsilon: 0.1 }), isError(/`x` has 8 values, expected 10 values/));
  assert.throws(() => sinkhorn(x, 4, y, 3, 2, { epsilo: 0.1 }), isError(/unknown sinkhorn options key "epsilo"/));
  assert.throws(() => sinkhorn(x, 4, y, 3, 2, {}), isError(/options\.epsilon .* or options\.relativeEpsilon .* is required/));
  assert.throws(() => sinkhorn(x, 4, y, 3, 2, { epsilon: 0.1, costFn: 'l1' }), isError(/options\.costFn is "l1"/));
  assert.throws(() => sinkhornCost(new Float32Array(6), 2, 3, { epsilon: 0.1, costFn: 'cosine' }), isError(/unknown sinkhornCost options key "costFn"/));
  assert.throws(() => multiSinkhorn([x], [4], 2, { epsilon: 0.1 }), isError(/needs k >= 2/));
  assert.throws(() => multiSinkhorn([x, y], [4], 2, { epsilon: 0.1 }), isError(/sizes has 1 entries but clouds has 2/));
  assert.throws(() => m3g([x, y], 4, 2, { epsilon: 0.1 }), isError(/`views\[1\]` has 6 values/));
});

test('sinkhornAsync falls back to the CPU where there is no WebGPU, says why, and gives the same answer', async () => {
  const x = new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]);
  const y = new Float32Array([0.5, 0.5, 2, 0, 0, 2]);
  const sync = sinkhorn(x, 4, y, 3, 2, { epsilon: 0.1 });
  const r = await sinkhornAsync(x, 4, y, 3, 2, { epsilon: 0.1 });
  assert.equal(r.backend, 'cpu');
  assert.match(r.fallback, /no WebGPU adapter/);
  assert.equal(r.reg_ot_cost, sync.reg_ot_cost);
  const cpu = await sinkhornAsync(x, 4, y, 3, 2, { epsilon: 0.1, backend: 'cpu' });
  assert.equal(cpu.fallback, undefined);
  await assert.rejects(sinkhornAsync(x, 4, y, 3, 2, { epsilon: 0.1, backend: 'gpu' }), /backend "gpu": no WebGPU adapter/);
  await assert.rejects(sinkhornAsync(x, 4, y, 3, 2, { epsilon: 0.1, backend: 'tpu' }), /options.backend is "tpu"/);
  await assert.rejects(sinkhornAsync(x, 4, y, 3, 2, { epsilon: 0.1, backnd: 'cpu' }), /unknown sinkhornAsync options key "backnd"/);
  await assert.rejects(sinkhornAsync(x, 4, y, 3, 2, { epsilon: -1 }), /epsilon/);
});

test('multiSinkhornAsync and m3gAsync fall back to the CPU without WebGPU, say why, and give the same answers', async () => {
  const views = [
    new Float32Array([0, 0, 1, 0, 0, 1]),
    new Float32Array([0.1, 0, 1, 0.2, 0, 0.9]),
    new Float32Array([0, 0.1, 1.1, 0, 0.1, 1]),
  ];
  const sync = m3g(views, 3, 2, { epsilon: 0.1 }, true);
  const r = await m3gAsync(views, 3, 2, { epsilon: 0.1 }, true);
  assert.equal(r.backend, 'cpu');
  assert.match(r.fallback, /no WebGPU adapter/);
  assert.equal(r.m3g, sync.m3g);
  assert.deepEqual(r.gradient, sync.gradient);
  const multi = multiSinkhorn(views, [3, 3, 3], 2, { epsilon: 0.1, returnCoupling: true });
  const multiAsync = await multiSinkhornAsync(views, [3, 3, 3], 2, { epsilon: 0.1, returnCoupling: true, backend: 'cpu' });
  assert.equal(multiAsync.backend, 'cpu');
  assert.equal(multiAsync.fallback, undefined);
  assert.equal(multiAsync.ent_reg_cost, multi.ent_reg_cost);
  assert.deepEqual(multiAsync.coupling, multi.coupling);
  await assert.rejects(m3gAsync(views, 3, 2, { epsilon: 0.1, backend: 'gpu' }), /backend "gpu": no WebGPU adapter/);
  await assert.rejects(multiSinkhornAsync(views, [3, 3], 2, { epsilon: 0.1 }), /sizes has 2 entries but clouds has 3/);
  await assert.rejects(multiSinkhornAsync(views, [3, 3, 3], 2, { epsilon: 0.1, backnd: 'cpu' }), /unknown multiSinkhornAsync options key "backnd"/);
  await assert.rejects(m3gAsync(views, 3, 2, { epsilon: 0 }), /epsilon/);
});
