// The image search page's worker operations: load encoders (the bundled pair or a
// CLIP-style pair given by URLs), keep the gallery's embeddings (in memory for search,
// in IndexedDB across reloads), answer queries (text → image, image → image, image +
// instruction, text → text) and run the text → image retrieval evaluation.
// Long operations post progress and stop between batches when `cancel` names their job.
import { EmbeddingIndex } from 'latentlab';
import { Encoder, parseManifest, fuseQuery, evaluateRetrieval } from 'latentlab/encoders';
import { decodeImage } from './images.js';
import { fetchVerified, sha256 } from './fetch-data.js';
import * as store from './search-store.js';
import { UNRELATED_PHRASES, baselineLevels } from './search-baseline.js';

const BUNDLED_IMAGE_MODEL = 'effl0-minilm-bridge';
const IMAGE_BATCH = 4;
const TEXT_BATCH = 32;

/** The loaded encoder and what identifies its embeddings in the store. */
let encoder = null;
let model = null; // {key, label, dim, text, image}
/** Gallery items in the order they were added: name → {name, source, gallery, hash, vector}. */
const items = new Map();
/** Per gallery ('photos': the bundled photos and the user's; 'stamps': Tux Paint's): its Index,
 * names, pixel hashes, vectors and baseline levels, built on first use after a change. */
const galleries = new Map();
let sentenceCache = null; // {key, index, baseline}
/** The unrelated phrases' embeddings for the loaded model: {key, data}. */
let phraseCache = null;
/** The last query text's and query file's embeddings, so moving the weight re-runs at once. */
let textCache = null; // {key, vector}
let fileCache = null; // {key, hash, vector}
/** Running jobs by name ('index', 'eval') → {cancelled}. */
const jobs = new Map();

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function startJob(name) {
  const job = { cancelled: false };
  jobs.set(name, job);
  return job;
}

function endJob(name, job) {
  if (jobs.get(name) === job) jobs.delete(name);
}

function requireEncoder(kind) {
  if (!encoder) throw new Error('no model is loaded yet');
  if (kind === 'text' && !encoder.text) throw new Error('the loaded model has no text encoder');
  if (kind === 'image' && !encoder.image) throw new Error('the loaded model has no image encoder');
  return encoder;
}

/** Calls `onProgress` at most every 100 ms per key, and always for the last value. */
function throttled(onProgress) {
  const last = new Map();
  return (key, value, final) => {
    const now = Date.now();
    if (!final && now - (last.get(key) ?? 0) < 100) return;
    last.set(key, now);
    onProgress(value);
  };
}

const galleryOf = (source) => (source === 'stamps' ? 'stamps' : 'photos');

/** The gallery's search index over its items now: {index, names, hashes, data, dim, baseline}. */
function galleryIndex(gallery) {
  let built = galleries.get(gallery);
  if (!built) {
    const rows = [...items.values()].filter((item) => item.gallery === gallery);
    const index = new EmbeddingIndex({ model: model?.key ?? '' });
    const dim = rows[0]?.vector.length ?? 0;
    const data = new Float32Array(rows.length * dim);
    rows.forEach((item, i) => data.set(item.vector, i * dim));
    index.add(rows.map((item) => item.name), data);
    built = { index, names: rows.map((item) => item.name), hashes: rows.map((item) => item.hash), data, dim, baseline: null };
    galleries.set(gallery, built);
  }
  return built;
}

function invalidateIndex() {
  for (const built of galleries.values()) built.index.free();
  galleries.clear();
}

/** The unrelated phrases' levels on `rows` (see search-baseline.js), embedded once per model. */
function baselineFor(rows, dim) {
  const enc = requireEncoder('text');
  if (phraseCache?.key !== model.key) phraseCache = { key: model.key, data: enc.embedText(UNRELATED_PHRASES).data };
  return baselineLevels(phraseCache.data, rows, dim);
}

/** sha256 of an image's pixels (with its size), the identity of a gallery item's content. */
function pixelHash(image) {
  const prefix = new TextEncoder().encode(`${image.width}x${image.height}:`);
  const bytes = new Uint8Array(prefix.length + image.data.length);
  bytes.set(prefix);
  bytes.set(image.data, prefix.length);
  return sha256(bytes);
}

/** The rows of an EmbeddingMatrix as separate Float32Arrays. */
function rowsOf(matrix) {
  return Array.from({ length: matrix.rows }, (_, i) =>
    matrix.data.slice(i * matrix.cols, (i + 1) * matrix.cols));
}

/**
 * A fetch the browser refused before any answer rejects with a bare TypeError ("Failed to
 * fetch"); for another origin's URL the reason is almost always the site's policy or the
 * host's, so say that.
 */
function explainRefused(err, urls) {
  const foreign = urls.filter((url) => {
    try {
      return new URL(url).origin !== self.location.origin;
    } catch {
      return false;
    }
  });
  if (!(err instanceof TypeError) || foreign.length === 0) return err;
  return new Error(`${err.message}: the browser refused to download from ${foreign.join(', ')}. This site's `
    + 'Content-Security-Policy allows downloads from the site itself only (connect-src), and another host '
    + 'must also allow cross-origin requests.');
}

async function loadEncoder({ source, baseUrl, textUrl, tokenizerUrl, visionUrl, dim }, progress) {
  const report = throttled(progress);
  // Sizes from the manifest, for servers that send no Content-Length.
  const expected = new Map();
  const onProgress = (p) => {
    const total = p.total || expected.get(p.url) || 0;
    report(p.url, { stage: 'download', ...p, total }, total > 0 && p.loaded >= total);
  };
  let loaded;
  let info;
  if (source === 'bundled') {
    if (!baseUrl) throw new Error('encoder.load needs the models folder (baseUrl)');
    const manifestUrl = new URL('manifest.json', baseUrl).href;
    const response = await fetchVerified(manifestUrl);
    if (!response.ok) throw new Error(`${manifestUrl}: HTTP ${response.status} ${response.statusText}`);
    const manifest = parseManifest(await response.text());
    const image = manifest.models.find((m) => m.name === BUNDLED_IMAGE_MODEL);
    if (!image) throw new Error(`the manifest has no model named ${BUNDLED_IMAGE_MODEL}`);
    const text = manifest.models.find((m) => m.name === image.pairs_with);
    // Tell the page every file first, so it can draw all progress bars at once.
    const files = [
      { url: new URL(text.file, baseUrl).href, total: text.size ?? 0 },
      { url: new URL(text.tokenizer, baseUrl).href, total: text.tokenizer_size ?? 0 },
      { url: new URL(image.file, baseUrl).href, total: image.size ?? 0 },
    ];
    for (const { url, total } of files) expected.set(url, total);
    progress({ stage: 'files', files });
    loaded = await Encoder.loadPair(manifest, BUNDLED_IMAGE_MODEL, { baseUrl, onProgress });
    info = {
      key: `${image.name}@${(image.sha256 ?? '').slice(0, 16)}+${text.name}@${(text.sha256 ?? '').slice(0, 16)}`,
      label: `${text.name} + ${image.name}`,
    };
  } else if (source === 'clip') {
    for (const [name, value] of [['text model URL', textUrl], ['tokenizer URL', tokenizerUrl], ['vision model URL', visionUrl]]) {
      if (!value) throw new Error(`the ${name} is empty`);
    }
    const size = Number(dim);
    if (!Number.isInteger(size) || size <= 0) throw new Error(`the dimension must be a positive whole number, not ${JSON.stringify(dim)}`);
    progress({ stage: 'files', files: [textUrl, tokenizerUrl, visionUrl].map((url) => ({ url, total: 0 })) });
    // Typed by the user, so no build-time sha256 can cover them (fetchVerified would refuse
    // them) and no manifest gives one: they are fetched as the user gave them.
    loaded = await Encoder.load({ textUrl, tokenizerUrl, visionUrl, dim: size }, { onProgress })
      .catch((err) => { throw explainRefused(err, [textUrl, tokenizerUrl, visionUrl]); });
    info = { key: `clip:${textUrl}|${tokenizerUrl}|${visionUrl}|${size}`, label: `CLIP-style (${visionUrl.split('/').pop()})` };
  } else {
    throw new Error(`unknown model source: ${JSON.stringify(source)}`);
  }
  progress({ stage: 'ready' });
  const changed = model?.key !== info.key;
  encoder?.free();
  encoder = loaded;
  model = { ...info, dim: loaded.dim, text: Boolean(loaded.text), image: Boolean(loaded.image) };
  if (changed) {
    items.clear();
    invalidateIndex();
    sentenceCache?.index.free();
    sentenceCache = null;
  }
  return { ...model, changed };
}

/**
 * Adds images to the gallery index: [{name, source, image: {width, height, data}, blob?}].
 * Embeddings found in the store are reused; the rest are computed, IMAGE_BATCH at a
 * time, and stored. User images' blobs are stored so they come back after a reload.
 */
async function addImages({ images = [], job: jobName = 'index' }, progress) {
  const enc = requireEncoder('image');
  const key = model.key;
  const job = jobs.get(jobName) ?? startJob(jobName);
  try {
    const hashes = await Promise.all(images.map(({ image }) => pixelHash(image)));
    const stored = await store.getEmbeddings(key, images.map(({ name }, i) => ({ name, hash: hashes[i] })));
    const results = [];
    const fresh = [];
    const misses = [];
    images.forEach((entry, i) => {
      if (stored[i]?.length === enc.dim) {
        results.push({ entry, i, vector: stored[i], cached: true });
      } else {
        misses.push(i);
      }
    });
    let done = results.length;
    progress({ done, total: images.length });
    for (let at = 0; at < misses.length; at += IMAGE_BATCH) {
      await tick(); // lets a `cancel` message in
      if (job.cancelled) break;
      if (model?.key !== key) throw new Error('the model changed while indexing');
      const batch = misses.slice(at, at + IMAGE_BATCH);
      const matrix = enc.embedImage(batch.map((i) => images[i].image));
      rowsOf(matrix).forEach((vector, j) => {
        const i = batch[j];
        results.push({ entry: images[i], i, vector, cached: false });
        fresh.push({ name: images[i].name, hash: hashes[i], vector });
      });
      done += batch.length;
      progress({ done, total: images.length });
    }
    results.sort((a, b) => a.i - b.i);
    for (const { entry, i, vector } of results) {
      const source = entry.source ?? 'user';
      items.set(entry.name, { name: entry.name, source, gallery: galleryOf(source), hash: hashes[i], vector });
    }
    invalidateIndex();
    await store.putEmbeddings(key, fresh);
    const userBlobs = results
      .filter(({ entry }) => entry.source === 'user' && entry.blob && entry.store !== false)
      .map(({ entry }) => ({ name: entry.name, blob: entry.blob }));
    if (userBlobs.length > 0) await store.putImages(userBlobs);
    return {
      added: results.map(({ entry, cached }) => ({ name: entry.name, cached })),
      cancelled: job.cancelled,
      count: items.size,
    };
  } finally {
    // A job started by the page with `index.begin` outlives one call; one we started does not.
    if (!job.persistent) endJob(jobName, job);
  }
}

function embedQueryText(text) {
  const key = `${model.key}\n${text}`;
  if (textCache?.key !== key) textCache = { key, vector: requireEncoder('text').embedText([text]).data };
  return textCache.vector;
}

/** A query picture the user chose: its embedding (kept for the next query) and pixel hash. */
async function embedQueryFile(image) {
  const hash = await pixelHash(image);
  const key = `${model.key}\n${hash}`;
  if (fileCache?.key !== key) fileCache = { key, hash, vector: requireEncoder('image').embedImage([image]).data };
  return fileCache;
}

/** {mode, vector, hash}: `hash` identifies the query picture's pixels, where there is one. */
async function queryVector({ text, queryName, queryImage, weight = 0.5 }) {
  const instruction = typeof text === 'string' ? text.trim() : '';
  let picture = null;
  if (queryName) {
    const item = items.get(queryName);
    if (!item) throw new Error(`no gallery item named ${JSON.stringify(queryName)}`);
    picture = { vector: item.vector, hash: item.hash };
  } else if (queryImage) {
    picture = await embedQueryFile(queryImage);
  }
  if (picture && instruction) {
    const w = Number(weight);
    return { mode: 'fused', vector: fuseQuery(picture.vector, embedQueryText(instruction), w), hash: picture.hash, weight: w };
  }
  if (picture) return { mode: 'image', vector: picture.vector, hash: picture.hash };
  if (instruction) return { mode: 'text', vector: embedQueryText(instruction), hash: null };
  throw new Error('type a query or choose a query image');
}

/**
 * Searches one gallery ('photos' or 'stamps') with {text, queryName | queryImage, weight, k}.
 * Items showing the query picture itself (the same pixels) are left out of the hits and named
 * in `leftOut`; text queries come with the unrelated phrases' levels on this gallery
 * (`baseline`, see search-baseline.js).
 */
async function search(args) {
  requireEncoder();
  const gallery = args.gallery ?? 'photos';
  if (gallery !== 'photos' && gallery !== 'stamps') throw new Error(`unknown gallery: ${JSON.stringify(gallery)}`);
  const built = galleryIndex(gallery);
  const { names } = built;
  if (names.length === 0) {
    throw new Error(gallery === 'stamps' ? 'no stamp is embedded yet' : 'the gallery is empty: nothing is indexed yet');
  }
  const query = await queryVector(args);
  // The query item first, then any other item with the same pixels.
  const same = query.hash ? names.filter((_, i) => built.hashes[i] === query.hash) : [];
  const leftOut = new Set(same.includes(args.queryName) ? [args.queryName, ...same] : same);
  const candidates = names.length - leftOut.size;
  const k = Math.min(args.k ?? candidates, candidates);
  const hits = k === 0 ? [] : built.index.search(query.vector, { k, filter: (name) => !leftOut.has(name) })
    .map(({ id: name, score }) => ({ name, score }));
  if (query.mode === 'text') built.baseline ??= baselineFor(built.data, built.dim);
  return {
    mode: query.mode,
    gallery,
    hits,
    searched: names.length,
    leftOut: [...leftOut],
    weight: query.weight ?? null,
    baseline: query.mode === 'text' ? built.baseline : null,
  };
}

function searchSentences({ query, sentences, k = 5 }) {
  const enc = requireEncoder('text');
  if (typeof query !== 'string' || query.trim() === '') throw new Error('type a query');
  if (!Array.isArray(sentences) || sentences.length === 0) throw new Error('there are no sentences to search');
  const cacheKey = `${model.key}\n${sentences.join('\n')}`;
  if (sentenceCache?.key !== cacheKey) {
    const matrix = enc.embedText(sentences);
    const idx = new EmbeddingIndex({ model: model?.key ?? '' });
    idx.add(sentences.map((_, i) => String(i)), matrix.data);
    sentenceCache?.index.free();
    sentenceCache = { key: cacheKey, index: idx, baseline: baselineFor(matrix.data, matrix.cols) };
  }
  const q = enc.embedText([query.trim()]);
  const hits = sentenceCache.index.search(q.data, { k: Math.max(1, Math.min(k, sentences.length)) });
  return {
    mode: 'sentences',
    hits: hits.map(({ id, score }) => ({ index: Number(id), sentence: sentences[Number(id)], score })),
    baseline: sentenceCache.baseline,
  };
}

/**
 * Text → image retrieval over captioned images [{url, caption}]: caption i should find
 * image i. Fetches and decodes the images here, embeds them and the captions in
 * batches, and reports Recall@1/5/10 and the median rank.
 */
async function evalRetrieval({ items: pairs = [] }, progress) {
  const enc = requireEncoder();
  requireEncoder('text');
  requireEncoder('image');
  if (pairs.length === 0) throw new Error('there are no captioned images to evaluate');
  const job = startJob('eval');
  const started = performance.now();
  try {
    const n = pairs.length;
    const dim = enc.dim;
    const targets = new Float32Array(n * dim);
    for (let at = 0; at < n; at += IMAGE_BATCH) {
      await tick();
      if (job.cancelled) return { cancelled: true };
      const batch = pairs.slice(at, at + IMAGE_BATCH);
      const images = await Promise.all(batch.map(async ({ url }) => {
        const response = await fetchVerified(url);
        if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
        return decodeImage(await response.blob(), { label: url.split('/').pop() });
      }));
      targets.set(enc.embedImage(images).data, at * dim);
      progress({ stage: 'images', done: Math.min(at + IMAGE_BATCH, n), total: n });
    }
    const queries = new Float32Array(n * dim);
    for (let at = 0; at < n; at += TEXT_BATCH) {
      await tick();
      if (job.cancelled) return { cancelled: true };
      const batch = pairs.slice(at, at + TEXT_BATCH).map(({ caption }) => caption);
      queries.set(enc.embedText(batch).data, at * dim);
      progress({ stage: 'captions', done: Math.min(at + TEXT_BATCH, n), total: n });
    }
    const report = evaluateRetrieval(queries, targets, n, dim);
    return {
      cancelled: false,
      model: model.label,
      n: report.n,
      recall_at_1: report.recall_at_1,
      recall_at_5: report.recall_at_5,
      recall_at_10: report.recall_at_10,
      median_rank: report.median_rank,
      chance_recall_at_1: 1 / report.n,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    endJob('eval', job);
  }
}

export const searchOps = {
  'encoder.load': loadEncoder,
  'encoder.info': () => model,
  /** Starts a named job that spans several calls (the page's indexing loop). */
  'index.begin': ({ job = 'index' }) => {
    startJob(job).persistent = true;
    return true;
  },
  'index.end': ({ job = 'index' }) => {
    const j = jobs.get(job);
    if (j) endJob(job, j);
    return { cancelled: Boolean(j?.cancelled) };
  },
  'index.addImages': addImages,
  /** What is indexed now, and the user images stored from earlier visits (with their blobs). */
  'index.list': async () => ({
    model: model?.key ?? null,
    items: [...items.values()].map(({ name, source }) => ({ name, source })),
    stored: await store.listImages(),
  }),
  /** Forgets the user's images: their stored pixels and embeddings, and their index rows. */
  'index.clear': async () => {
    const storedNames = await store.clearImages();
    const removed = new Set(storedNames);
    for (const item of items.values()) if (item.source === 'user') removed.add(item.name);
    for (const name of removed) items.delete(name);
    await store.deleteEmbeddingsOf([...removed]);
    invalidateIndex();
    return { removed: [...removed], count: items.size };
  },
  /** Forgets some user images (stored ones that no longer decode): pixels, embeddings, rows. */
  'index.remove': async ({ names = [] }) => {
    await store.deleteImages(names);
    await store.deleteEmbeddingsOf(names);
    for (const name of names) items.delete(name);
    invalidateIndex();
    return { count: items.size };
  },
  search,
  'search.sentences': searchSentences,
  'eval.retrieval': evalRetrieval,
  /** Stops the named job ('index' or 'eval') at its next batch boundary. */
  cancel: ({ job = 'index' }) => {
    const j = jobs.get(job);
    if (j) j.cancelled = true;
    return { cancelled: Boolean(j) };
  },
};
