// The steering page's worker operations: embed the synthetic biographies with the bundled
// text encoder (once per worker), then fit and evaluate affine steering, project before and
// after onto principal components, and run a retrieval query in both spaces.
import { Steering, evaluateSteering, pcaProject } from 'latentlab';
import { Encoder, parseManifest } from 'latentlab/encoders';
import { fetchVerified } from './fetch-data.js';

const TEXT_MODEL = 'minilm-l6-v2';
const BATCH = 32;

/** {n, dim, x: Float32Array, concepts: {key → Int32Array}, y: Int32Array, texts, encoder} once loaded. */
let data = null;

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function load({ baseUrl, biosUrl }, progress) {
  if (data) return summary();
  if (!baseUrl || !biosUrl) throw new Error('steer.load needs the models folder and the data URL');
  const response = await fetchVerified(biosUrl);
  if (!response.ok) throw new Error(`${biosUrl}: HTTP ${response.status} ${response.statusText}`);
  const bios = await response.json();
  const manifestUrl = new URL('manifest.json', baseUrl).href;
  const manifestResponse = await fetchVerified(manifestUrl);
  if (!manifestResponse.ok) throw new Error(`${manifestUrl}: HTTP ${manifestResponse.status}`);
  const manifest = parseManifest(await manifestResponse.text());
  const entry = manifest.models.find((m) => m.name === TEXT_MODEL);
  if (!entry) throw new Error(`the manifest has no model named ${TEXT_MODEL}`);
  const encoder = await Encoder.load(entry, {
    baseUrl,
    onProgress: (p) => progress({ stage: 'download', url: p.url, loaded: p.loaded, total: p.total || entry.size || 0 }),
  });
  const texts = bios.items.map((item) => item.text);
  const n = texts.length;
  const dim = encoder.dim;
  const x = new Float32Array(n * dim);
  for (let at = 0; at < n; at += BATCH) {
    const batch = texts.slice(at, at + BATCH);
    x.set(encoder.embedText(batch).data, at * dim);
    progress({ stage: 'embed', done: Math.min(at + BATCH, n), total: n });
    await tick();
  }
  const conceptList = bios.concepts ?? [{ key: 'z', ...bios.concept }];
  data = {
    n,
    dim,
    x,
    concepts: Object.fromEntries(conceptList.map((c) => [c.key, Int32Array.from(bios.items, (item) => item[c.key])])),
    y: Int32Array.from(bios.items, (item) => item.y),
    texts,
    conceptList,
    task: bios.task,
    description: bios.description,
    encoder,
  };
  return summary();
}

function summary() {
  const { n, dim, conceptList, task, description } = data;
  const labels = Object.fromEntries(Object.entries(data.concepts).map(([k, v]) => [k, Array.from(v)]));
  return { n, dim, concepts: conceptList, conceptLabels: labels, task, description, y: Array.from(data.y) };
}

/** The 0/1 labels of the concept named `key` (default: the first). */
function conceptLabels(key) {
  const { concepts, conceptList } = requireData();
  const labels = concepts[key ?? conceptList[0].key];
  if (!labels) throw new Error(`unknown concept ${JSON.stringify(key)}: expected one of ${conceptList.map((c) => c.key).join(', ')}`);
  return labels;
}

function requireData() {
  if (!data) throw new Error('the biographies are not embedded yet');
  return data;
}

/** Fits and evaluates; returns the evaluation and both 2-D projections. */
function run({ concept, method, relativeReg, applyTo, seed }) {
  const { n, dim, x, y } = requireData();
  const z = conceptLabels(concept);
  // (no silent 0 for a bad seed: the page checks it, and the facade names what it refuses)
  const options = { method, y, applyTo, seed: seed ?? 0 };
  if (method === 'mean-cov') options.relativeReg = Number(relativeReg);
  const evaluation = evaluateSteering(x, n, dim, z, options);
  const before = pcaProject(x, n, dim, { components: 2 });
  const after = pcaProject(evaluation.steered_x, n, dim, { components: 2 });
  const { steered_x: _dropped, ...rest } = evaluation;
  return {
    evaluation: { ...rest, test_rows: Array.from(evaluation.test_rows) },
    before: projection(before),
    after: projection(after),
  };
}

function projection(p) {
  return {
    points: Array.from(p.projected),
    share: p.explained_variance.map((v) => v / p.total_variance),
  };
}

function cosineTop(matrix, n, dim, query, k) {
  const scores = [];
  for (let i = 0; i < n; i++) {
    let dot = 0;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = matrix[i * dim + j];
      dot += v * query[j];
      norm += v * v;
    }
    scores.push({ row: i, score: dot / Math.sqrt(norm || 1) });
  }
  return scores.sort((a, b) => b.score - a.score || a.row - b.row).slice(0, k);
}

/**
 * Text → biographies, before and after steering every embedding (the corpus by its gold
 * labels, the query by the steering function's concept classifier).
 */
function retrieve({ query, concept, method, relativeReg, k = 10 }) {
  const { n, dim, x, texts, encoder } = requireData();
  const z = conceptLabels(concept);
  if (!query || !query.trim()) throw new Error('type a query first');
  const q = encoder.embedText([query.trim()]).data;
  const options = { method };
  if (method === 'mean-cov') options.relativeReg = Number(relativeReg);
  const steering = Steering.fit(x, n, dim, z, options);
  try {
    const corpus = steering.apply(x, n, { applyTo: 'source', z });
    const steeredQuery = steering.apply(q, 1, { applyTo: 'predicted' });
    const hits = (matrix, vector) =>
      cosineTop(matrix, n, dim, vector, k).map(({ row, score }) => ({
        row, score, text: texts[row], z: z[row], y: data.y[row],
      }));
    return {
      before: hits(x, q),
      after: hits(corpus.x, steeredQuery.x),
      query_steered: steeredQuery.n_steered === 1,
    };
  } finally {
    steering.free();
  }
}

export const steerOps = {
  'steer.load': load,
  'steer.run': run,
  'steer.retrieve': retrieve,
};
