// Module worker that owns the latentlab wasm instance, so analysing plans, running
// encoders and searching never block the page. Protocol: the page posts {id, op, args}; we answer
// {id, ok: true, result} or {id, ok: false, error: message}, with `fatal: true` once the
// wasm instance has trapped and this worker must be replaced. Long operations may also post
// {id, progress} before their answer.
import init, { Plan, formatSeconds, version, simulateCollapse, resampleGaussian, setMemoryBudget } from 'latentlab';
import { timeTicks } from './ticks.js';
import { searchOps } from './search-ops.js';
import { steerOps } from './steer-ops.js';
import { otOps } from './ot-ops.js';
import { alignOps } from './align-ops.js';
import { tinyOps } from './tiny-ops.js';
import { xrmOps } from './xrm-ops.js';
import { lmOps } from './lm-ops.js';
import { galleryEmbeddings } from './gallery-embeds.js';

// Instantiate the wasm once; every message waits on the same promise.
const ready = init();

/** Parses `text` into a Plan, runs `use(plan)`, and always frees the wasm memory. */
function withPlan(text, use) {
  const plan = Plan.fromJson(text);
  try {
    return use(plan);
  } finally {
    plan.free();
  }
}

const ops = {
  'plan.analyze': ({ text }) =>
    withPlan(text, (plan) => {
      const analysis = plan.analyze();
      return {
        plan: { title: plan.title, steps: plan.steps, constraints: plan.constraints },
        analysis,
        labels: secondsLabels(analysis),
      };
    }),
  'plan.prompt': ({ text, options }) => withPlan(text, (plan) => plan.prompt(options ?? {})),
  'plan.score': ({ text, answer }) => withPlan(text, (plan) => plan.score(answer ?? '')),
  version: () => version(),
  /** The client sends `?memoryBudget=` first, before any other call. */
  'memory.budget': ({ bytes }) => setMemoryBudget(bytes),
  'collapse.simulate': (options) => simulateCollapse(options),
  'collapse.resample': async ({ generations, runs, ...urls }, progress) => {
    const { features } = await galleryEmbeddings(urls, progress);
    return resampleGaussian(features.data, features.rows, features.cols, { generations, runs });
  },
  // Image search: encoder.load, index.*, search, search.sentences, eval.retrieval, cancel.
  ...searchOps,
  // Affine steering: steer.load, steer.run, steer.retrieve.
  ...steerOps,
  // Optimal transport: ot.two, ot.three, ot.gallery.
  ...otOps,
  // Representation alignment: align.measure.
  ...alignOps,
  // tinyBenchmarks: tiny.holdout, tiny.fit, tiny.estimate.
  ...tinyOps,
  // XRM: xrm.compare.
  ...xrmOps,
  // Language model and Prompt Sketching: lm.load, lm.sketch, lm.generate, lm.score, lm.eval, lm.cancel.
  ...lmOps,
};

/** Readable text for every number of seconds the page shows: ranges and axis ticks. */
function secondsLabels(analysis) {
  const values = new Set(timeTicks(analysis.optimal_seconds[1]));
  const add = (range) => range.forEach((v) => values.add(v));
  add(analysis.optimal_seconds);
  add(analysis.sequential_seconds);
  for (const step of analysis.steps) {
    [step.duration, step.earliest_start, step.earliest_finish, step.slack].forEach(add);
  }
  return Object.fromEntries([...values].map((v) => [v, formatSeconds(v)]));
}

/** Turns anything thrown (wasm errors are Error objects, but be safe) into a message. */
function messageOf(err) {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : String(err);
}

/**
 * Whether `err` left the wasm instance unusable: a trap (a failed allocation or a panic aborts
 * with `unreachable`; out-of-bounds access) or a stack overflow stops Rust mid-call, with its
 * stack pointer, locks and allocator state wherever they were. Errors the facade returns are
 * plain Errors and leave it sound.
 */
function isTrap(err) {
  return err instanceof WebAssembly.RuntimeError
    || (err instanceof RangeError && /call stack/i.test(err.message));
}

/** The trap that broke this instance; every later call is refused with it. */
let broken = null;

self.addEventListener('message', async (event) => {
  const { id, op, args } = event.data ?? {};
  try {
    await ready;
    if (broken) throw broken;
    const handler = ops[op];
    if (!handler) throw new Error(`unknown operation: ${op}`);
    const progress = (value) => self.postMessage({ id, progress: value });
    const result = await handler(args ?? {}, progress);
    self.postMessage({ id, ok: true, result });
  } catch (err) {
    if (isTrap(err)) broken ??= err;
    // `fatal` tells the client to replace this worker (www/src/client.js).
    self.postMessage(broken
      ? { id, ok: false, error: String(broken), fatal: true }
      : { id, ok: false, error: messageOf(err) });
  }
});
