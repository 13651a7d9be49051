// The language-model pages' worker operations: load the language model (download with
// progress, sha256, Cache API); the sketch page's sketches with streaming steps and BIG-bench
// samples in three modes; the Repoformer page's completions without and with retrieval and
// its policies; the elicitation page's scores of a report and its manipulations. A single
// call runs synchronously in wasm, so a page stops one by terminating this worker; a sample
// (BIG-bench or Repoformer) stops between examples on `lm.cancel`.
import {
  LanguageModel, ChoiceTask, wilsonInterval, parseManifest, repoEvaluate, repoSweep, elicitManipulations,
} from 'latentlab/encoders';
import { fetchVerified } from './fetch-data.js';

let model = null;
let loading = null;
const tasks = new Map(); // task name → ChoiceTask
let job = null; // the running sample: {cancelled}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function requireModel() {
  if (!model) throw new Error('the language model is not loaded yet');
  return model;
}

/** Posts `value` at most every `ms` milliseconds, and always when `final`. */
function throttle(post, ms) {
  let last = 0;
  return (value, final = false) => {
    const now = Date.now();
    if (!final && now - last < ms) return;
    last = now;
    post(value);
  };
}

/** `manifestUrl` must be absolute (this worker's own URL is not the page's). `activations`:
 * "f32" (default) or "int8" (faster; as the README's Repoformer and elicitation runs). */
async function load({ manifestUrl, activations }, progress) {
  if (model) {
    if (activations) model.setActivations(activations);
    return describe(0, true);
  }
  const response = await fetchVerified(manifestUrl);
  if (!response.ok) throw new Error(`${manifestUrl}: HTTP ${response.status} ${response.statusText}`);
  const manifest = parseManifest(await response.text());
  const entry = manifest.language_models?.[0];
  if (!entry) throw new Error(`${manifestUrl} lists no language model`);
  const start = performance.now();
  let cached = false;
  const report = throttle(progress, 100);
  model = await LanguageModel.load({
    entry,
    baseUrl: manifestUrl,
    onProgress: (p) => {
      cached ||= p.cached;
      report(p, p.phase === 'open' || p.loaded === p.total);
    },
  });
  if (activations) model.setActivations(activations);
  return describe((performance.now() - start) / 1000, cached);
}

function describe(seconds, cached) {
  return {
    name: model.name, vocabSize: model.vocabSize, contextLength: model.contextLength,
    activations: model.activations, seconds, cached,
  };
}

const repositories = new Map(); // URL → the repository's files

/** A repository's files from the site (`latentlab repo bundle` output), checked by sha256. */
async function repositoryFiles(url) {
  if (!repositories.has(url)) {
    const response = await fetchVerified(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
    const bundle = await response.json();
    if (!Array.isArray(bundle.files)) throw new Error(`${url} holds no files`);
    repositories.set(url, bundle.files);
  }
  return repositories.get(url);
}

/** Never, always, oracle and the confidence policy at `threshold` over `runs`; with `sweep`
 * also the threshold sweep (which does not depend on `threshold`: the page asks for it only
 * when the runs change). */
function repoSummary({ runs, signal, threshold, sweep }) {
  const rows = [
    repoEvaluate(runs, { policy: 'never' }),
    repoEvaluate(runs, { policy: 'always' }),
    repoEvaluate(runs, { policy: 'oracle' }),
    repoEvaluate(runs, { policy: 'confidence', signal, threshold }),
  ];
  if (!sweep) return { rows };
  return { rows, sweep: runs.length >= 2 ? repoSweep(runs, { signal, steps: 21 }) : [] };
}

/** Scores `userReport` (when given), the honest `report` and its manipulations against `peer`. */
function elicitTable({ word, userReport, report, peer, otherReport, otherPeer, mechanism, seed }) {
  const m = requireModel();
  const options = { word, mechanism, ...(mechanism === 'tvd-mi' ? { otherPeer } : {}) };
  const rows = [];
  const score = (label, text) => rows.push({ label, report: text, ...m.elicitScore(text, peer, options) });
  if (userReport?.trim()) score('yours', userReport);
  score('honest', report);
  for (const { manipulation, report: text } of elicitManipulations(report, peer, otherReport, seed ?? 0)) {
    score(manipulation, text);
  }
  return { word, peer, mechanism, rows };
}

async function task(name, url) {
  if (!tasks.has(name)) {
    // The BIG-bench files in www/public/bigbench/, checked against the build's sha256.
    const response = await fetchVerified(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
    tasks.set(name, ChoiceTask.fromBigBench(name, await response.text()));
  }
  return tasks.get(name);
}

/** Examples spread evenly over the task (its examples come in runs of similar questions). */
function sampleIndices(length, size) {
  const n = Math.min(size, length);
  return Array.from({ length: n }, (_, i) => Math.floor((i * length) / n));
}

export const lmOps = {
  'lm.load': load,
  'lm.sketch': ({ template, options }, progress) => {
    const post = throttle((step) => progress({ step }), 50);
    const result = requireModel().sketch(template, options ?? {}, (step) => post(step));
    return result;
  },
  'lm.generate': ({ prompt, options }, progress) =>
    requireModel().generate(prompt, options ?? {}, (event) => progress({ token: event })),
  'lm.score': ({ text, context }) => requireModel().score(text, context ?? ''),
  /** `modes`: [{label, mode, decoder?, beams?}]; the same examples for each. */
  'lm.eval': async ({ name, url, size, modes }, progress) => {
    const m = requireModel();
    const t = await task(name, url);
    const indices = sampleIndices(t.length, size);
    const mine = { cancelled: false };
    job = mine;
    const rows = [];
    try {
      for (const spec of modes) {
        const { label, ...options } = spec;
        let correct = 0;
        let seconds = 0;
        let done = 0;
        const examples = [];
        for (const index of indices) {
          await tick(); // lets `lm.cancel` in
          if (mine.cancelled) return { cancelled: true, rows, indices };
          const outcome = m.evaluateChoice(t, index, options);
          correct += outcome.correct ? 1 : 0;
          seconds += outcome.seconds;
          done += 1;
          examples.push({ index, ...outcome });
          progress({ label, done, total: indices.length, correct });
        }
        const [low, high] = wilsonInterval(correct, done);
        rows.push({ label, ...options, n: done, correct, accuracy: correct / done, ci95: [low, high], seconds, examples });
      }
      return { cancelled: false, rows, indices };
    } finally {
      if (job === mine) job = null;
    }
  },
  /** One Repoformer task without and with retrieval; `url` is its repository's bundle. */
  'repo.run': async ({ task, url, options }) =>
    requireModel().repoRun(task, await repositoryFiles(url), options ?? {}),
  /** `items`: [{task, url}], run in turn (stops between tasks on `lm.cancel`). */
  'repo.sample': async ({ items, options }, progress) => {
    const m = requireModel();
    const mine = { cancelled: false };
    job = mine;
    const runs = [];
    try {
      for (const { task, url } of items) {
        await tick();
        if (mine.cancelled) return { cancelled: true, runs };
        const files = await repositoryFiles(url);
        const run = m.repoRun(task, files, options ?? {});
        runs.push(run);
        progress({ done: runs.length, total: items.length, run });
      }
      return { cancelled: false, runs };
    } finally {
      if (job === mine) job = null;
    }
  },
  'repo.summary': repoSummary,
  'elicit.table': elicitTable,
  'lm.cancel': () => {
    if (job) job.cancelled = true;
    return { cancelled: Boolean(job) };
  },
};
