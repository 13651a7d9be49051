// Property-based calls of every export of the wasm facade (issue 19): random shapes, sizes that
// JavaScript can express but no array can have (0, negative, fractional, 2^31, 2^32, 2^53, NaN,
// ±Infinity), non-numbers where numbers belong, NaN/Infinity inside arrays, wrong types, unknown
// option keys, random bytes and text for the parsers. The property: every call returns, or
// throws an `Error` with a message; never a `WebAssembly.RuntimeError` (a trap: a Rust panic or
// a failed allocation, after which the page has lost its module) and never a non-Error.
//
// Shared by tests/js/facade-fuzz.test.mjs (a bounded number of calls, in the test command) and
// scripts/bench/fuzz_wasm.mjs (≥ 10^5 calls, reported in the README's reliability section).
//
// Options that only make a call take longer (iterations, steps, epochs, tokens) get small
// values, nasty ones included but nothing large: a long run is not a crash, and the test must
// end. Options that size memory (dimensions, counts, components, tensor limits) get every
// nasty value: those must be refused, or fit the memory budget.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { crc32, deflateSync } from 'node:zlib';
import * as core from 'latentlab';
import * as models from 'latentlab/encoders';

// The two wasm modules' exports, as one catalogue (no name is exported by both but the shared
// helpers, version and the memory budget, which each module has for itself).
const ll = { ...core, ...models };

/** The 12 × 9 colour chart of the tests' gallery, a real PNG for decodeImage (written by zlib here). */
const SMALL_PNG = (() => {
  const chunk = (type, body) => {
    const out = Buffer.alloc(12 + body.length);
    out.writeUInt32BE(body.length, 0);
    out.write(type, 4, 'latin1');
    body.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
    return out;
  };
  const [w, h] = [12, 9];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  const rows = Buffer.alloc(h * (1 + w * 4));
  for (let y = 0; y < h; y++) for (let x = 0; x < w * 4; x++) rows[y * (1 + w * 4) + 1 + x] = (x * 21 + y * 28) % 256;
  return new Uint8Array(Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]));
})();

/** SMALL_PNG with its header claiming `width` × `height` (a valid CRC, so decoders believe it). */
function forgedPng(width, height) {
  const b = Buffer.from(SMALL_PNG);
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return new Uint8Array(b);
}

/** Sizes JavaScript can express; wasm-bindgen used to take them modulo 2^32. */
export const NASTY_SIZES = [
  -1, -0.5, 0.5, 2.5, 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 32 + 3, 2 ** 53, -(2 ** 31), 1e300,
  NaN, Infinity, -Infinity,
];
const NOT_NUMBERS = [undefined, null, '3', 'x', true, {}, [], [2]];

const nasty = fc.constantFrom(...NASTY_SIZES, ...NOT_NUMBERS);
/** Mostly `good`, now and then `bad` (by default a nasty size or a non-number). */
const maybe = (good, bad = nasty, badWeight = 1) => fc.oneof({ weight: 7, arbitrary: good }, { weight: badWeight, arbitrary: bad });
/** A size or count: usually small, sometimes 0 or nasty. */
const size = maybe(fc.integer({ min: 1, max: 6 }), fc.oneof(fc.constant(0), nasty), 2);
/** An iteration count: nasty in kind, never large. */
const iterations = maybe(fc.integer({ min: 1, max: 30 }), fc.constantFrom(0, -1, -0.5, 0.5, 2.5, NaN, -Infinity, ...NOT_NUMBERS));
const real = (min, max) => maybe(fc.double({ min, max, noNaN: true }), fc.constantFrom(0, -0, -1, 1e-30, 1e30, -1e30, NaN, Infinity, -Infinity, ...NOT_NUMBERS));
const floats = (n) => fc.oneof(
  { weight: 10, arbitrary: fc.float32Array({ minLength: n, maxLength: n, noDefaultInfinity: true, noNaN: true, min: -8, max: 8 }) },
  { weight: 1, arbitrary: fc.float32Array({ minLength: n, maxLength: n }) },
  { weight: 1, arbitrary: fc.float32Array({ maxLength: 3 * n + 2 }) },
);
const anyArray = fc.oneof(
  fc.float32Array({ maxLength: 12 }),
  fc.array(fc.double(), { maxLength: 6 }),
  fc.constantFrom(undefined, null, 'x', 5, {}),
);
const bools = maybe(fc.boolean(), fc.constantFrom(0, 'yes', null));
const oneOf = (good, bad) => maybe(fc.constantFrom(...good), fc.constantFrom(...bad));

/**
 * An options object: each key of `spec` present or not (those in `required` present 9 times in
 * 10), a stray key now and then, or not an object at all.
 */
function options(spec, required = []) {
  const entries = Object.fromEntries(Object.entries(spec));
  const full = fc.record(entries, { requiredKeys: required });
  const loose = fc.record(entries, { requiredKeys: [] });
  return fc.oneof(
    { weight: 18, arbitrary: full },
    { weight: 2, arbitrary: loose },
    { weight: 1, arbitrary: fc.tuple(full, fc.string({ maxLength: 6 }), fc.integer()).map(([r, k, v]) => ({ ...r, [`x${k}`]: v })) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null, 3, 'x', []) },
  );
}

/** Sizes (usually small and ≥ 1) with data of their product's length (wrong when a size is nasty). */
const product = (dims) => dims.reduce((a, d) => (Number.isInteger(d) && d >= 0 && d < 64 ? a * d : a), 1);
const sized = (count, build) => fc.array(size, { minLength: count, maxLength: count })
  .chain((dims) => floats(product(dims)).chain((data) => build(dims, data)));
const labels = (n) => maybe(fc.array(fc.constantFrom(0, 1), { minLength: n, maxLength: n }),
  fc.oneof(fc.array(fc.oneof(fc.constantFrom(0, 1, 2, -1, 0.5, NaN)), { maxLength: 8 }), fc.constantFrom(undefined, 'x', 4)));

const epsilon = maybe(fc.double({ min: 0.02, max: 2, noNaN: true }), fc.constantFrom(0, -1, NaN, Infinity, 1e-30, 'x'));
const sinkhornOptions = {
  epsilon, costFn: oneOf(['sqeuclidean', 'cosine'], ['l1', 3]),
  tauA: real(0.1, 1), tauB: real(0.1, 1), threshold: real(1e-4, 1e-2), maxIterations: iterations,
  returnPlan: bools, a: maybe(fc.constant(undefined), anyArray, 1),
};
const multiOptions = {
  epsilon, costFn: oneOf(['sqeuclidean', 'cosine'], ['x']),
  threshold: real(1e-4, 1e-2), maxIterations: iterations, maxTensorEntries: maybe(fc.constant(1 << 24), nasty),
  returnCoupling: bools, weights: maybe(fc.constant(undefined), fc.oneof(fc.array(anyArray, { maxLength: 4 }), anyArray)),
};
const m3gOptions = {
  epsilon, costFn: oneOf(['sqeuclidean', 'cosine'], ['x']),
  threshold: real(1e-4, 1e-2), maxIterations: iterations, maxTensorEntries: maybe(fc.constant(1 << 24), nasty),
};
const alignOptions = {
  metrics: maybe(fc.oneof(fc.constantFrom('all', 'mutual_knn', 'cka', 'cknna', 'svcca', 'lcs_knn', 'cycle_knn', 'unbiased_cka'),
    fc.array(fc.constantFrom('cka', 'unbiased_cka', 'cycle_knn', 'mutual_knn'), { maxLength: 3 })), fc.constantFrom('nope', 3, ['x'])),
  k: size, ccaDim: size, prepare: bools, exactQuantile: bools,
};
const steerFit = { method: oneOf(['mean', 'mean_cov'], ['x', 3]), sourceLabel: oneOf([0, 1], [2, -1, 0.5]), reg: real(0, 1), relativeReg: real(0, 1) };
const tinyFit = {
  dims: maybe(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }), fc.oneof(fc.array(size, { maxLength: 3 }), size)),
  epochs: iterations, learningRate: real(0.01, 0.5), dropConstantItems: bools, anchors: size,
  sampling: oneOf(['anchor', 'random'], ['x']), seed: size,
};
const generateOptions = {
  maxTokens: iterations, decoder: oneOf(['argmax', 'sample', 'beam'], ['x']), temperature: real(0.1, 2),
  topK: size, topP: real(0.1, 1), seed: size, beams: maybe(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0, -1)),
  stop: maybe(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }), fc.oneof(fc.string(), fc.constant(3))), chat: bools,
};
const sketchOptions = {
  decoder: oneOf(['argmax', 'sample', 'beam', 'var', 'beam_var'], ['x']), beams: maybe(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0, -1)),
  varWidth: maybe(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0, -1)), alpha: real(0.1, 1), temperature: real(0.1, 2), seed: size,
};
const TEMPLATES = [
  'Q: yes or no?\nA:[ANSWER].\nwhere ANSWER in [" yes", " no"]',
  'A number:[N]\nwhere INT(N) and len(TOKENS(N)) < 3',
  'Say[X] ok\nwhere STOPS_AT(X, "k") and len(TOKENS(X)) < 4',
  '[A][B]\nwhere A in ["x"] and INT(A)', 'text only', '[', 'x[Y]\nwhere len(TOKENS(Y)) < 0',
];
const PLAN = JSON.stringify({ title: 'Tea', steps: [{ id: 'a', text: 'boil', duration: '5 minutes' }, { id: 'b', text: 'pour', duration: '1 minute' }], constraints: [['a', 'b']] });
const BIGBENCH = JSON.stringify({
  examples: [{ input: 'Today is 1/2/2020. What is the date tomorrow?', target_scores: { '01/03/2020': 1, '01/04/2020': 0 } }],
});
const MANIFEST = readFileSync(new URL('../../models/manifest.json', import.meta.url), 'utf8');
/** Text for a parser: its own valid input now and then, else random JSON or text. */
const text = (valid) => fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...valid) }, { weight: 3, arbitrary: fc.json() }, { weight: 3, arbitrary: fc.string() });

/** Exports that cannot refuse (they judge or format any input) and ones no random input fits. */
export const NEVER_REFUSES = ['Plan.score', 'formatSeconds', 'repoScore'];
export const NEVER_ACCEPTS = ['TextEmbedder.fromBytes', 'FusionModel.fromBytes'];

/**
 * The catalogue: [name, arbitrary of an argument list, call(args, ctx)]. `ctx` holds objects
 * built once from known-good input (a tiny random language model, a steering function, …).
 */
export function catalogue() {
  const cloud = (n, dim) => floats(product([n, dim]));
  /** `n` ids, usually distinct and non-empty; sometimes repeated, empty or not strings. */
  const ids = (n) => maybe(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 3 }), { minLength: product([n]), maxLength: product([n]) }),
    fc.oneof(fc.array(fc.constantFrom('a', ''), { maxLength: 4 }), fc.constantFrom(undefined, 'a', [1, 2], null)));
  /** A real index's bytes (model "m"), now and then with one byte changed or cut short. */
  const indexBytes = fc.tuple(fc.constantFrom('f32', 'f16', 'int8'), fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 2 }))
    .map(([storage, at, damage]) => {
      const index = new ll.EmbeddingIndex({ model: 'm', storage });
      try {
        index.add(['a', 'b'], new Float32Array([1, 2, 3, -1, 0, 2]), [{ tag: 1 }, null]);
        const bytes = index.toBytes();
        if (damage === 1) bytes[at % bytes.length] ^= 4;
        return damage === 2 ? bytes.subarray(0, at % bytes.length) : bytes;
      } finally { index.free(); }
    });
  return [
    ['sinkhorn', sized(3, ([n, m, dim], x) => fc.tuple(fc.constant(x), fc.constant(n), cloud(m, dim), fc.constant(m), fc.constant(dim), options(sinkhornOptions, ['epsilon']))),
      (a) => ll.sinkhorn(...a)],
    ['sinkhornCost', sized(2, ([n, m], c) => fc.tuple(fc.constant(c), fc.constant(n), fc.constant(m), options(sinkhornOptions, ['epsilon']))),
      (a) => ll.sinkhornCost(...a)],
    ['sinkhornAsync', sized(3, ([n, m, dim], x) => fc.tuple(fc.constant(x), fc.constant(n), cloud(m, dim), fc.constant(m), fc.constant(dim),
      options({ ...sinkhornOptions, backend: oneOf(['auto', 'cpu'], ['gpu', 'x']) }, ['epsilon']))), (a) => ll.sinkhornAsync(...a)],
    ['multiSinkhorn', sized(2, ([k, dim]) => fc.tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }), fc.constant(dim)).chain(([sizes, d]) =>
      fc.tuple(fc.tuple(...sizes.map((n) => cloud(n, d))), maybe(fc.constant(sizes), fc.oneof(fc.array(size, { maxLength: 5 }), size)), fc.constant(d), options(multiOptions, ['epsilon'])))),
      (a) => ll.multiSinkhorn(...a)],
    ['multiSinkhornAsync', sized(1, ([dim]) => fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 3 }).chain((sizes) =>
      fc.tuple(fc.tuple(...sizes.map((n) => cloud(n, dim))), fc.constant(sizes), fc.constant(dim), options({ ...multiOptions, backend: oneOf(['auto', 'cpu'], ['x']) }, ['epsilon'])))),
      (a) => ll.multiSinkhornAsync(...a)],
    ['m3g', sized(2, ([n, dim], v) => fc.tuple(fc.array(maybe(fc.constant(v), cloud(n + 1, dim)), { minLength: 1, maxLength: 4 }), fc.constant(n), fc.constant(dim), options(m3gOptions, ['epsilon']), bools)),
      (a) => ll.m3g(...a)],
    ['m3gAsync', sized(2, ([n, dim], v) => fc.tuple(fc.array(fc.constant(v), { minLength: 1, maxLength: 3 }), fc.constant(n), fc.constant(dim), options({ ...m3gOptions, backend: oneOf(['cpu', 'auto'], ['x']) }, ['epsilon']), bools)),
      (a) => ll.m3gAsync(...a)],
    ['alignRepresentations', sized(2, ([dx, dy]) => fc.integer({ min: 4, max: 10 }).chain((n) =>
      fc.tuple(cloud(n, dx), maybe(fc.constant(n), nasty), fc.constant(dx), cloud(n, dy), fc.constant(dy), options(alignOptions)))),
      (a) => ll.alignRepresentations(...a)],
    ['alignRepresentationsAsync', sized(3, ([n, dx, dy], x) => fc.tuple(fc.constant(x), fc.constant(n), fc.constant(dx), cloud(n, dy), fc.constant(dy),
      options({ ...alignOptions, backend: oneOf(['auto', 'cpu'], ['gpu']) }))), (a) => ll.alignRepresentationsAsync(...a)],
    ['nearestNeighbors', sized(2, ([n, dim], x) => fc.tuple(fc.constant(x), fc.constant(n), fc.constant(dim), size)),
      (a) => ll.nearestNeighbors(...a)],
    ['simulateCollapse', options({ d: size, t: maybe(fc.integer({ min: 8, max: 40 }), nasty), sigma2: real(0, 2), rounds: iterations, runs: iterations, seed: size, testPoints: size }),
      (o) => ll.simulateCollapse(o)],
    ['resampleGaussian', sized(2, ([n, dim], x) => fc.tuple(fc.constant(x), fc.constant(n), fc.constant(dim), options({ generations: iterations, runs: iterations, seed: size }))),
      (a) => ll.resampleGaussian(...a)],
    ['EmbeddingIndex', sized(2, ([rows, cols], x) => fc.tuple(
      options({ model: maybe(fc.string({ maxLength: 4 }), fc.constantFrom(3, [])), dim: size, storage: oneOf(['f32', 'f16', 'int8'], ['q4', 1]) }),
      fc.constant(x), ids(rows), maybe(fc.constant(undefined), fc.oneof(anyArray, fc.array(fc.constantFrom({ a: 1 }, 'x', null), { maxLength: 6 }))),
      cloud(1, cols),
      options({ k: size, threshold: real(-1, 1), rerank: size, filter: maybe(fc.constant((id) => id.length % 2 === 1), fc.constantFrom('x', 3, () => { throw new Error('no'); })) }))),
      ([opts, x, itemIds, metadata, q, search]) => {
        const index = new ll.EmbeddingIndex(opts);
        try {
          index.add(itemIds, x, metadata);
          const hits = index.search(q, search);
          index.remove(itemIds.slice(0, 1));
          ll.EmbeddingIndex.fromBytes(index.toBytes(), { model: index.model }).free();
          return hits;
        } finally { index.free(); }
      }],
    // Under Node there is no WebGPU: "auto" falls back and "gpu" must fail by name, never trap.
    ['EmbeddingIndex.searchBatchAsync', sized(2, ([rows, cols], x) => fc.tuple(fc.constant(x), ids(rows), maybe(cloud(2, cols), anyArray),
      options({ k: size, threshold: real(-1, 1), rerank: size, backend: oneOf(['auto', 'cpu', 'gpu'], ['tpu', 3]),
        filter: maybe(fc.constant((id) => id.length % 2 === 1), fc.constantFrom('x', 3)) }))),
      async ([x, itemIds, queries, search]) => {
        const index = new ll.EmbeddingIndex({ model: 'm' });
        try {
          index.add(itemIds, x);
          return await index.searchBatchAsync(queries, search);
        } finally { index.free(); }
      }],
    ['EmbeddingIndex.fromBytes', fc.tuple(fc.oneof(fc.uint8Array({ maxLength: 64 }), indexBytes), options({ model: maybe(fc.constant('m'), fc.constantFrom('other', 3)) })),
      ([bytes, opts]) => ll.EmbeddingIndex.fromBytes(bytes, opts).free()],
    // A small real PNG, cut, with bytes changed, or with its header's size forged; or random bytes.
    ['decodeImage', fc.tuple(fc.oneof(
      fc.constant(SMALL_PNG),
      fc.tuple(fc.nat({ max: SMALL_PNG.length }), fc.nat({ max: SMALL_PNG.length - 1 }), fc.nat({ max: 255 }))
        .map(([cut, at, value]) => { const b = SMALL_PNG.slice(0, Math.max(cut, at + 1)); b[at] = value; return b; }),
      fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), fc.nat({ max: 2 ** 32 - 1 })).map(([w, h]) => forgedPng(w, h)),
      fc.uint8Array({ maxLength: 64 }),
    ), maybe(fc.string({ maxLength: 8 }), fc.constantFrom(undefined, null, 3))),
      ([bytes, label]) => ll.decodeImage(bytes, label)],
    ['fuseQuery', fc.tuple(floats(4), floats(4), real(0, 1)), (a) => ll.fuseQuery(...a)],
    ['evaluateRetrieval', sized(2, ([rows, cols], q) => fc.tuple(fc.constant(q), cloud(rows, cols), fc.constant(rows), fc.constant(cols))),
      (a) => ll.evaluateRetrieval(...a)],
    ['parseManifest', text([MANIFEST]), (t) => ll.parseManifest(t)],
    ['TextEmbedder.fromBytes', fc.tuple(fc.oneof(fc.json(), fc.constant('{"name": "x", "file": "m.onnx", "dim": 4}')), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 })),
      ([entry, m, t]) => ll.TextEmbedder.fromBytes(JSON.parse(entry), m, t)],
    ['FusionModel.fromBytes', fc.uint8Array({ maxLength: 96 }), (b) => ll.FusionModel.fromBytes('fuzz', b)],
    ['Steering.fit', sized(1, ([dim]) => fc.integer({ min: 2, max: 8 }).chain((n) => fc.tuple(cloud(n, dim), maybe(fc.constant(n), nasty), fc.constant(dim), labels(n), options(steerFit)))),
      (a) => ll.Steering.fit(...a).free()],
    ['Steering.fromJson', fc.oneof(fc.constant(null), fc.json(), fc.string()), (t, ctx) => ll.Steering.fromJson(t ?? ctx.steeringJson).free()],
    ['Steering.apply', fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(cloud(n, 2), maybe(fc.constant(n), nasty), options({ applyTo: oneOf(['all', 'predicted'], ['given', 'x']), z: labels(n) }))),
      ([x, n, o], ctx) => ctx.steering.apply(x, n, o)],
    ['evaluateSteering', sized(1, ([dim]) => fc.integer({ min: 4, max: 12 }).chain((n) => fc.tuple(cloud(n, dim), maybe(fc.constant(n), nasty), fc.constant(dim), labels(n),
      options({ ...steerFit, y: labels(n), applyTo: oneOf(['split', 'all'], ['x']), testFraction: real(0.2, 0.5), seed: size })))),
      (a) => ll.evaluateSteering(...a)],
    ['pcaProject', sized(2, ([n, dim], x) => fc.tuple(fc.constant(x), fc.constant(n), fc.constant(dim), options({ components: size, fitOn: maybe(fc.constant(undefined), anyArray), fitRows: size }))),
      (a) => ll.pcaProject(...a)],
    ['fitTinyBenchmark', fc.tuple(fc.integer({ min: 3, max: 6 }), fc.integer({ min: 4, max: 10 })).chain(([models, items]) =>
      fc.tuple(fc.array(fc.constantFrom(0, 1), { minLength: models * items, maxLength: models * items }).map((a) => Float32Array.from(a)), maybe(fc.constant(models), nasty), maybe(fc.constant(items), nasty), options(tinyFit))),
      (a) => ll.fitTinyBenchmark(...a)],
    ['tinyHoldout', fc.tuple(fc.integer({ min: 4, max: 8 }), fc.integer({ min: 4, max: 10 })).chain(([models, items]) =>
      fc.tuple(fc.array(fc.constantFrom(0, 1), { minLength: models * items, maxLength: models * items }).map((a) => Float32Array.from(a)), maybe(fc.constant(models), nasty), maybe(fc.constant(items), nasty),
        options({ dims: tinyFit.dims, epochs: iterations, learningRate: tinyFit.learningRate, dropConstantItems: bools, anchors: maybe(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 }), fc.oneof(fc.array(size, { maxLength: 3 }), size)), seeds: iterations, testFraction: real(0.2, 0.5), splitSeed: size, dims: maybe(fc.constant([1]), size) }))),
      (a) => ll.tinyHoldout(...a)],
    ['estimateTiny', fc.tuple(fc.boolean(), fc.oneof(fc.json(), fc.string()), anyArray), ([valid, t, y], ctx) => (valid ? ll.estimateTiny(ctx.tinyJson, Float32Array.from(ctx.tinyAnswers)) : ll.estimateTiny(t, y))],
    ['xrmCompare', fc.integer({ min: 6, max: 10 }).chain((rows) => {
      const split = fc.record({ x: maybe(floats(rows * 2), anyArray), y: labels(rows), attribute: labels(rows) }, { requiredKeys: ['x', 'y', 'attribute'] });
      return fc.tuple(split, split, split, maybe(fc.constant(2), nasty), options({ seeds: fc.integer({ min: -1, max: 2 }), steps: iterations, pca: size, whiten: bools }));
    }), (a) => ll.xrmCompare(...a)],
    ['Plan.fromJson', text([PLAN, PLAN.replace('5 minutes', '-3 minutes'), PLAN.replace('"b"]]', '"a"]]')]), (t) => {
      const plan = ll.Plan.fromJson(t);
      try { plan.analyze(); plan.prompt({ encoding: 'csr' }); return plan.score('"7 minutes"'); } finally { plan.free(); }
    }],
    ['parsePlans', text([PLAN, `[${PLAN}, 3]`]), (t) => { for (const p of ll.parsePlans(t)) p.free(); }],
    ['Plan.prompt', options({ encoding: oneOf(['adjacency_list', 'csr', 'edge_list'], ['x']), bag: bools, chainOfThought: bools, orderingTemplate: size }),
      (o, ctx) => ctx.plan.prompt(o)],
    ['Plan.score', fc.string(), (t, ctx) => ctx.plan.score(t)],
    ['parseDuration', fc.oneof(fc.string(), fc.constantFrom('1e308 years', '99999999999999999999 days', '3 month', '-1 hours', '2-3 weeks')), (t) => ll.parseDuration(t)],
    ['formatSeconds', fc.oneof(fc.double(), fc.constantFrom(...NOT_NUMBERS)), (s) => ll.formatSeconds(s)],
    ['LanguageModel.fromBytes', fc.tuple(maybe(fc.constant(0), fc.nat({ max: 4000 }), 3), fc.uint8Array({ maxLength: 16 }), fc.nat(),
      maybe(fc.constant(null), fc.constantFrom(undefined, 3, {}, 'not a digest'))),
      ([cut, junk, at, sha256], ctx) => {
        // The tiny model's bytes, cut short and/or with bytes overwritten: a corrupt GGUF.
        const bytes = ctx.gguf.slice(0, ctx.gguf.length - cut);
        const where = at % (bytes.length + 1);
        bytes.set(junk.subarray(0, bytes.length - where), where);
        ll.LanguageModel.fromBytes(bytes, sha256).free();
      }],
    ['LanguageModel.generate', fc.tuple(fc.string({ maxLength: 12 }), options(generateOptions)), ([p, o], ctx) => ctx.model.generate(p, o)],
    ['LanguageModel.score', fc.tuple(fc.string({ maxLength: 12 }), fc.oneof(fc.option(fc.string({ maxLength: 8 })), fc.constantFrom(3, {}, [1]))),
      ([t, c], ctx) => ctx.model.score(t, c ?? undefined)],
    ['LanguageModel.elicitScore', fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }),
      options({ word: fc.string({ maxLength: 6 }), mechanism: oneOf(['pmi', 'gppm', 'tvd-mi'], ['x']), template: fc.string({ maxLength: 12 }), threshold: real(-2, 2), otherPeer: fc.string({ maxLength: 8 }) })),
      ([r, p, o], ctx) => ctx.model.elicitScore(r, p, o)],
    ['LanguageModel.sketch', fc.tuple(fc.oneof(fc.constantFrom(...TEMPLATES), fc.string({ maxLength: 24 })), options(sketchOptions)), ([t, o], ctx) => ctx.model.sketch(t, o)],
    ['LanguageModel.detokenize', fc.array(maybe(fc.nat({ max: 600 }), fc.constantFrom(...NASTY_SIZES)), { maxLength: 6 }), (ids, ctx) => ctx.model.detokenize(ids)],
    ['ChoiceTask', fc.tuple(oneOf(['date_understanding', 'tracking_shuffled_objects_three'], ['x']), text([BIGBENCH]), maybe(fc.constant(0), size)),
      ([name, json, i]) => { const t = ll.ChoiceTask.fromBigBench(name, json); try { return t.example(i); } finally { t.free(); } }],
    ['evaluateChoice', fc.tuple(maybe(fc.constant(0), size), options({ mode: oneOf(['direct', 'sketch', 'rank'], ['x']), decoder: oneOf(['argmax', 'beam_var'], ['x']), beams: maybe(fc.integer({ min: 1, max: 3 }), fc.constant(-1)), alpha: real(0.1, 1), maxTokens: iterations }, ['mode'])),
      ([i, o], ctx) => ctx.model.evaluateChoice(ctx.task, i, o)],
    ['wilsonInterval', fc.tuple(size, size), ([c, n]) => ll.wilsonInterval(c, n)],
    ['LanguageModel.repoRun', fc.tuple(maybe(fc.constant(REPO_TASK), fc.oneof(fc.record({ ...repoTaskFields, line: size }), fc.constantFrom(undefined, 'x', {}))),
      maybe(fc.constant(REPO_FILES), fc.oneof(fc.array(fc.record({ path: fc.string({ maxLength: 4 }), text: fc.string({ maxLength: 40 }) }), { maxLength: 3 }), fc.constantFrom(undefined, 'x', 3, [{}]))),
      options({ maxSequence: maybe(fc.integer({ min: 90, max: 256 }), nasty), contextTokens: maybe(fc.integer({ min: 1, max: 40 }), nasty), confidenceTokens: size })),
      ([t, f, o], ctx) => ctx.model.repoRun(t, f, o)],
    ['repoRetrieve', fc.tuple(maybe(fc.constant(REPO_FILES), fc.oneof(fc.array(fc.record({ path: fc.string({ maxLength: 4 }), text: fc.string({ maxLength: 40 }) }), { maxLength: 3 }), fc.constantFrom(undefined, 'x', [{}]))),
      fc.constantFrom('a.py', 'b.py', ''), fc.string({ maxLength: 30 })), ([f, p, l]) => ll.repoRetrieve(f, p, l)],
    ['repoScore', fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })), ([p, t]) => ll.repoScore(p, t)],
    ['repoEvaluate', fc.tuple(maybe(fc.constant(null), fc.constantFrom([], 'x', [{}], [{ task_id: 'a' }])),
      options({ policy: oneOf(['never', 'always', 'oracle', 'confidence', 'probe'], ['x']), signal: oneOf(['logprob', 'entropy'], ['x']), threshold: real(-3, 3), confidenceTokens: size, seed: size })),
      ([r, o], ctx) => ll.repoEvaluate(r ?? ctx.repoRuns, o)],
    ['repoSweep', fc.tuple(maybe(fc.constant(null), fc.constantFrom([], 'x', [{}])),
      options({ policy: oneOf(['confidence', 'probe'], ['never', 'x']), signal: oneOf(['logprob', 'entropy'], ['x']), steps: maybe(fc.integer({ min: 2, max: 12 }), nasty), confidenceTokens: size, seed: size })),
      ([r, o], ctx) => ll.repoSweep(r ?? ctx.repoRuns, o)],
    ['elicitManipulations', fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), size),
      ([r, p, o, s]) => ll.elicitManipulations(r, p, o, s)],
    ...[['setMemoryBudget', core], ['setMemoryBudget (latentlab/encoders)', models]].map(([name, m]) => [name,
      maybe(fc.integer({ min: 1 << 20, max: 2 ** 31 }), nasty), (b) => { try { m.setMemoryBudget(b); } finally { m.setMemoryBudget(2 ** 30); } }]),
  ];
}

/** A repository of two files and a task in it (line 12 of a.py). */
const REPO_FILES = [
  { path: 'a.py', text: Array.from({ length: 14 }, (_, i) => `value_${i} = compute(${i}, "a")`).join('\n') },
  { path: 'b.py', text: Array.from({ length: 14 }, (_, i) => `value_${i} = compute(${i}, "b")`).join('\n') },
];
const repoTaskFields = {
  task_id: fc.constantFrom('r/0'), repository: fc.constantFrom('r'), path: fc.constantFrom('a.py', 'c.py'),
  target: fc.constantFrom('value_11 = compute(11, "a")', 'x'),
};
const REPO_TASK = { task_id: 'r/0', repository: 'r', path: 'a.py', line: 12, target: 'value_11 = compute(11, "a")' };

/** Objects the calls share, built from known-good input. */
export function context() {
  const gguf = ll.tinyRandomLlamaGguf(7);
  const x = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) + (i % 2));
  // A small response matrix (5 models × 6 items, no constant item) and its benchmark.
  const responses = Float32Array.from([0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0]);
  const tiny = ll.fitTinyBenchmark(responses, 5, 6, { anchors: 3, dims: [1], epochs: 20 });
  const steering = ll.Steering.fit(x.subarray(0, 12), 6, 2, [0, 1, 0, 1, 0, 1], {});
  const model = ll.LanguageModel.fromBytes(gguf, null);
  const repoOptions = { maxSequence: 200, contextTokens: 40 };
  const repoRuns = [model.repoRun(REPO_TASK, REPO_FILES, repoOptions),
    { ...model.repoRun(REPO_TASK, REPO_FILES.map((f) => ({ ...f })), repoOptions), repository: 's' }];
  return {
    gguf,
    model,
    repoRuns,
    steering,
    steeringJson: steering.toJson(),
    plan: ll.Plan.fromJson(PLAN),
    tinyJson: tiny.benchmark,
    tinyAnswers: tiny.anchors.map((i) => i % 2),
    task: ll.ChoiceTask.fromBigBench('date_understanding', BIGBENCH),
  };
}

/** What a call did: 'ok', 'error' (an Error with a message), or a failure description. */
export async function outcome(call, args, ctx) {
  try {
    await call(args, ctx);
    return 'ok';
  } catch (e) {
    if (e instanceof WebAssembly.RuntimeError) return `trap: ${e.message}`;
    if (!(e instanceof Error)) return `threw a non-Error: ${String(e)}`;
    if (!e.message) return 'an Error without a message';
    return 'error';
  }
}

/** Known-good calls whose answers are checked after the fuzzing: both modules still work. */
export function knownAnswer() {
  const r = core.sinkhornCost(new Float32Array([0, 1, 1, 0]), 2, 2, { epsilon: 0.01 });
  const image = models.decodeImage(SMALL_PNG, 'known');
  return r.converged && Math.abs(r.transport_cost) < 1e-3 && image.width === 12 && image.height === 9;
}

/**
 * Runs `numRuns` random calls of every export; returns per export {ok, error, failures}. Stops
 * an export at its first failure (after a trap the module may be unusable) with the arguments.
 */
export async function fuzzFacade({ numRuns, seed, only } = {}) {
  const ctx = context();
  const report = {};
  for (const [name, args, call] of catalogue()) {
    if (only && !only.includes(name)) continue;
    const tally = { ok: 0, error: 0, failures: [] };
    report[name] = tally;
    await fc.assert(
      fc.asyncProperty(args, async (a) => {
        const result = await outcome(call, a, ctx);
        if (result === 'ok' || result === 'error') {
          tally[result] += 1;
          return true;
        }
        tally.failures.push({ result, args: fc.stringify(a) });
        return false;
      }),
      { numRuns, seed, endOnFailure: true },
    ).catch((e) => {
      // A failure recorded above ends the property; anything else is the fuzzer's own error.
      if (tally.failures.length === 0) tally.failures.push({ result: `the fuzzer failed: ${e.message.slice(0, 400)}`, args: '' });
    });
  }
  return report;
}
