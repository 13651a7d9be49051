// The alignment page's worker operations: build two representations of the same items with
// the bundled encoders (photo embeddings vs caption embeddings, the image tower's 1280-d
// features vs its 384-d embeddings, sentence embeddings vs a random projection of them) and
// measure how alike they are with the Platonic Representation Hypothesis' metrics.
import { alignRepresentations, alignRepresentationsAsync, nearestNeighbors } from 'latentlab';
import { galleryEmbeddings } from './gallery-embeds.js';

/** A seeded Gaussian random projection of `m` (rows × cols) to `dim` columns. */
function randomProjection(m, dim, seed = 1) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gaussian = () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
  const w = Float32Array.from({ length: m.cols * dim }, gaussian);
  const out = new Float32Array(m.rows * dim);
  for (let i = 0; i < m.rows; i++) {
    for (let c = 0; c < dim; c++) {
      let s = 0;
      for (let j = 0; j < m.cols; j++) s += m.data[i * m.cols + j] * w[j * dim + c];
      out[i * dim + c] = s;
    }
  }
  return { rows: m.rows, cols: dim, data: out };
}

const PAIRS = {
  'photo-caption': (c) => ({
    x: c.photo, y: c.caption, labels: c.titles, files: c.files,
    names: ['photo embeddings (bridge, 384-d)', 'caption embeddings (MiniLM, 384-d)'],
  }),
  'features-embeds': (c) => ({
    x: c.features, y: c.photo, labels: c.titles, files: c.files,
    names: ['EfficientNet features (1280-d)', 'bridge embeddings (384-d)'],
  }),
  'text-projection': (c) => ({
    x: c.sentences, y: randomProjection(c.sentences, 32), labels: c.sentenceText, files: null,
    names: ['sentence embeddings (MiniLM, 384-d)', 'a random projection of them (32-d)'],
  }),
};

async function measure({ pair, k, backend = 'auto', baseUrl, galleryUrl, sentencesUrl }, progress) {
  const c = await galleryEmbeddings({ baseUrl, galleryUrl, sentencesUrl }, progress);
  const make = PAIRS[pair];
  if (!make) throw new Error(`unknown pair ${JSON.stringify(pair)}: expected one of ${Object.keys(PAIRS).join(', ')}`);
  const { x, y, labels, files, names } = make(c);
  const n = x.rows;
  if (!(Number.isInteger(k) && k >= 1 && k < n)) {
    throw new Error(`k = ${k} does not fit ${n} items: choose k from 1 to ${n - 1} (each item has ${n - 1} others)`);
  }
  // The neighbour search on WebGPU when the browser has it (the same tables as the CPU's,
  // so the same scores); `backend` says which ran and `fallback` why not the GPU.
  // SVCCA compares each side's top ccaDim directions (the reference's 10) among the n − 1
  // that centred items span; above half of them the two sets must share directions (two
  // 10-d subspaces of 11 dimensions share at least 9) and score high whatever the data.
  const scores = await alignRepresentationsAsync(x.data, n, x.cols, y.data, y.cols, {
    metrics: 'all', k, ccaDim: Math.min(10, Math.floor((n - 1) / 2)), backend,
  });
  const curve = [];
  for (let kk = 1; kk < n; kk++) {
    const [s] = alignRepresentations(x.data, n, x.cols, y.data, y.cols, { metrics: 'mutual_knn', k: kk });
    curve.push({ k: kk, score: s.score, chance: s.chance });
  }
  // Per-item agreement: the share of its k neighbours the two representations share.
  const nx = nearestNeighbors(x.data, n, x.cols, k);
  const ny = nearestNeighbors(y.data, n, y.cols, k);
  const items = labels.map((label, i) => {
    const a = new Set(nx.slice(i * k, (i + 1) * k));
    const shared = Array.from(ny.slice(i * k, (i + 1) * k)).filter((j) => a.has(j)).length;
    return { index: i, label, file: files?.[i] ?? null, agreement: shared / k };
  });
  const { backend: ran, adapter, fallback } = scores[0];
  return { n, k, names, scores, curve, items, backend: ran, adapter, fallback };
}

export const alignOps = {
  'align.measure': measure,
};
