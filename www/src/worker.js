// The site's module worker: one latentlab wasm instance (latentlab/worker-host) serving the
// pages' operations, so analysing plans, running encoders and searching never block a page.
// The protocol, progress messages and the trap handling (a trapped instance answers `fatal`
// and the page's client replaces the worker) are the package's; see www/src/client.js.
import { Plan, formatSeconds, simulateCollapse, resampleGaussian } from 'latentlab';
import { serveWorker, encoderOps, withModels } from 'latentlab/worker-host';
import { timeTicks } from './ticks.js';
import { searchOps } from './search-ops.js';
import { steerOps } from './steer-ops.js';
import { otOps } from './ot-ops.js';
import { alignOps } from './align-ops.js';
import { tinyOps } from './tiny-ops.js';
import { xrmOps } from './xrm-ops.js';
import { lmOps } from './lm-ops.js';
import { galleryEmbeddings } from './gallery-embeds.js';

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
  // version, memory.budget (the client sends `?memoryBudget=` first).
  version: encoderOps.version,
  'memory.budget': encoderOps['memory.budget'],
  'collapse.simulate': (options) => simulateCollapse(options),
  // The operations on the encoders or the language model wait for the models module (fetched
  // on the first of them): the plan, OT, tiny and XRM pages never download it.
  ...withModels({
    'collapse.resample': async ({ generations, runs, ...urls }, progress) => {
      const { features } = await galleryEmbeddings(urls, progress);
      return resampleGaussian(features.data, features.rows, features.cols, { generations, runs });
    },
    // The gallery plan embeds the gallery.
    'ot.gallery': otOps['ot.gallery'],
  }),
  // Image search: encoder.load, index.*, search, search.sentences, eval.retrieval, cancel.
  ...withModels(searchOps),
  // Affine steering: steer.load, steer.run, steer.retrieve.
  ...withModels(steerOps),
  // Optimal transport between point clouds: ot.two, ot.three.
  'ot.two': otOps['ot.two'],
  'ot.three': otOps['ot.three'],
  // Representation alignment: align.measure (on the gallery's embeddings).
  ...withModels(alignOps),
  // tinyBenchmarks: tiny.holdout, tiny.fit, tiny.estimate.
  ...tinyOps,
  // XRM: xrm.compare.
  ...xrmOps,
  // Language model and Prompt Sketching: lm.load, lm.sketch, lm.generate, lm.score, lm.eval, lm.cancel.
  ...withModels(lmOps),
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

serveWorker(ops);
