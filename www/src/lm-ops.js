// The sketch page's worker operations: load the language model (download with progress,
// sha256, Cache API), fill sketches with streaming steps, and run a sample of a BIG-bench
// task in the three modes. A sketch runs synchronously in wasm, so the page stops one by
// terminating this worker; a BIG-bench sample stops between examples on `lm.cancel`.
import { LanguageModel, ChoiceTask, wilsonInterval, parseManifest } from 'latentlab';
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

/** `manifestUrl` must be absolute (this worker's own URL is not the page's). */
async function load({ manifestUrl }, progress) {
  if (model) return describe(0, true);
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
  return describe((performance.now() - start) / 1000, cached);
}

function describe(seconds, cached) {
  return { name: model.name, vocabSize: model.vocabSize, contextLength: model.contextLength, seconds, cached };
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
  'lm.cancel': () => {
    if (job) job.cancelled = true;
    return { cancelled: Boolean(job) };
  },
};
