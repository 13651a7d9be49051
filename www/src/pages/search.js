// Image search page: load encoders in the worker, index the bundled gallery and the
// user's own images (decoded here, embedded and remembered by the worker), search by
// text, image or image + instruction, search sentences, and run the retrieval evaluation.
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { decodeImage } from '../images.js';
import { fetchVerified } from '../fetch-data.js';

renderShell('search');

const MODELS_URL = new URL('./models/', window.location.href).href;
const GALLERY_URL = './gallery/';
const STAMPS_URL = './stamps/';
const RESULTS = 12;
const params = new URLSearchParams(window.location.search);
// Photos embedded per worker call; `?indexBatch=1` makes cancelling part-way deterministic
// enough to test (with 4, twelve photos were done before a cancel click could land).
const INDEX_BATCH = Number.parseInt(params.get('indexBatch') ?? '', 10) > 0
  ? Number.parseInt(params.get('indexBatch'), 10) : 4;
const evalLimit = Number.parseInt(params.get('evalLimit') ?? '', 10) > 0
  ? Number.parseInt(params.get('evalLimit'), 10) : null;

const $ = (id) => document.getElementById(id);
const els = {
  error: $('error'),
  modelSelect: $('model-select'),
  modelStatus: $('model-status'),
  reloadModel: $('reload-model'),
  clipFields: $('clip-fields'),
  clipText: $('clip-text-url'),
  clipTokenizer: $('clip-tokenizer-url'),
  clipVision: $('clip-vision-url'),
  clipDim: $('clip-dim'),
  clipLoad: $('clip-load'),
  loadProgress: $('load-progress'),
  tabImages: $('tab-images'),
  tabSentences: $('tab-sentences'),
  form: $('search-form'),
  queryLabel: $('query-label'),
  queryInput: $('query-input'),
  searchButton: $('search-button'),
  imageQuery: $('image-query'),
  queryImage: $('query-image'),
  queryPreview: $('query-preview'),
  queryPreviewImg: $('query-preview-img'),
  queryPreviewName: $('query-preview-name'),
  clearQueryImage: $('clear-query-image'),
  weight: $('fusion-weight'),
  weightValue: $('fusion-weight-value'),
  sentenceCorpus: $('sentence-corpus'),
  sentenceCount: $('sentence-count'),
  sentenceList: $('sentence-list'),
  searchStatus: $('search-status'),
  results: $('results'),
  galleryCount: $('gallery-count'),
  addImages: $('add-images'),
  addFolder: $('add-folder'),
  clearImages: $('clear-images'),
  indexRow: $('index-row'),
  indexProgress: $('index-progress'),
  indexStatus: $('index-status'),
  cancelIndexing: $('cancel-indexing'),
  resumeIndexing: $('resume-indexing'),
  gallery: $('gallery'),
  runEval: $('run-eval'),
  cancelEval: $('cancel-eval'),
  evalProgress: $('eval-progress'),
  evalStatus: $('eval-status'),
  evalResult: $('eval-result'),
};

const client = new LatentlabClient();

/** Gallery entries in display order: name → {name, title, source, blob, url, indexed, failed, el}. */
const entries = new Map();
/** The model the worker has loaded (its answer to encoder.load), or null. */
let currentModel = null;
let modelLoading = false;
/** The indexing loop now running: {cancelled, promise}, or null. */
let indexing = null;
let evalRunning = false;
let mode = 'images';
/** {kind: 'item', name} or {kind: 'file', name, image, url}, or null. */
let queryImage = null;
let sentences = null;

// ---------------------------------------------------------------- small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = false;
}

function clearError() {
  els.error.textContent = '';
  els.error.hidden = true;
}

function formatBytes(n) {
  if (!n) return '0 MB';
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

function fileLabel(url) {
  try {
    const path = new URL(url).pathname.split('/').filter(Boolean);
    return path.slice(-2).join('/');
  } catch {
    return url;
  }
}

const isImageFile = (file) => file.type.startsWith('image/')
  || /\.(png|jpe?g|gif|webp|bmp|avif)$/i.test(file.name);

/** `name`, or "name (2).ext" etc. when the gallery already has that name. */
function uniqueName(name) {
  if (!entries.has(name)) return name;
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  for (let n = 2; ; n += 1) {
    const candidate = `${stem} (${n})${ext}`;
    if (!entries.has(candidate)) return candidate;
  }
}

function updateControls() {
  const canSearch = Boolean(currentModel) && !modelLoading;
  els.searchButton.disabled = !canSearch;
  els.modelSelect.disabled = modelLoading || evalRunning;
  els.clipLoad.disabled = modelLoading || evalRunning;
  els.runEval.disabled = !canSearch || evalRunning;
  els.clearImages.disabled = Boolean(indexing) || ![...entries.values()].some((e) => e.source === 'user');
  const bundled = [...entries.values()].filter((e) => e.source === 'bundled');
  const ready = canSearch && bundled.length > 0 && bundled.every((e) => e.indexed || e.failed);
  document.body.dataset.ready = String(ready);
  const users = entries.size - bundled.length;
  els.galleryCount.textContent = `(${bundled.length} photos${users ? `, ${users} of yours` : ''})`;
}

// ---------------------------------------------------------------- model loading

function resetLoadProgress() {
  els.loadProgress.replaceChildren();
  els.loadProgress.hidden = false;
}

function progressBarFor(url, total = 0) {
  let row = [...els.loadProgress.children].find((r) => r.dataset.url === url);
  if (!row) {
    const bar = el('progress', { max: total || 1, value: 0 });
    const text = el('span', { className: 'progress-text', text: total ? `0 / ${formatBytes(total)}` : 'waiting…' });
    row = el('div', { className: 'progress-item', 'data-url': url },
      el('span', { className: 'progress-label', text: fileLabel(url), title: url }), bar, text);
    els.loadProgress.append(row);
  }
  return row;
}

function onLoadProgress(p) {
  if (p.stage === 'files') {
    for (const file of p.files) progressBarFor(file.url, file.total);
    return;
  }
  if (p.stage === 'ready') {
    // Every file arrived (the last chunk's progress may have been skipped).
    for (const row of els.loadProgress.children) {
      const bar = row.querySelector('progress');
      bar.value = bar.max;
      row.classList.add('done');
    }
    return;
  }
  const row = progressBarFor(p.url, p.total);
  const [bar, text] = [row.querySelector('progress'), row.querySelector('.progress-text')];
  const total = Math.max(p.total || Number(bar.max) || 1, p.loaded);
  bar.max = total;
  bar.value = p.loaded;
  const complete = p.total > 0 && p.loaded >= p.total;
  row.classList.toggle('done', complete);
  text.textContent = p.cached
    ? `${formatBytes(p.loaded)} (cached)`
    : `${formatBytes(p.loaded)}${p.total && p.loaded < p.total ? ` / ${formatBytes(p.total)}` : ''}`;
  const rows = [...els.loadProgress.children];
  if (rows.every((r) => r.classList.contains('done'))) {
    els.modelStatus.textContent = 'Preparing the models (reading the ONNX graphs)…';
  }
}

/** Loads encoders in the worker; on failure the previous model stays in use. */
async function loadModel(args) {
  modelLoading = true;
  updateControls();
  clearError();
  resetLoadProgress();
  els.modelStatus.textContent = 'Downloading the models…';
  const started = performance.now();
  try {
    const info = await client.call('encoder.load', args, { onProgress: onLoadProgress });
    currentModel = info;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    els.modelStatus.textContent = `Loaded ${info.label} (${info.dim}-d) in ${seconds} s.`;
    els.modelStatus.dataset.model = info.key;
    if (info.changed) {
      for (const entry of entries.values()) setIndexed(entry, false);
      els.results.replaceChildren();
      els.searchStatus.textContent = '';
    }
    return true;
  } catch (err) {
    showError(`Could not load the model: ${err.message}`);
    els.modelStatus.textContent = currentModel
      ? `Still using ${currentModel.label}.`
      : 'No model loaded.';
    return false;
  } finally {
    modelLoading = false;
    updateControls();
  }
}

// A worker that crashed took the model and the index with it: say so, and offer to load
// the model again (not automatically: what crashed might crash again).
let lostModel = null;
client.addEventListener('lost', (event) => {
  if (!currentModel) return;
  showError(event.detail.error.message);
  lostModel = currentModel;
  currentModel = null;
  for (const entry of entries.values()) setIndexed(entry, false);
  els.modelStatus.textContent = `${lostModel.label} was lost with the worker.`;
  els.reloadModel.hidden = false;
  updateControls();
});
els.reloadModel.addEventListener('click', () => {
  els.reloadModel.hidden = true;
  if (lostModel?.key.startsWith('clip:')) loadClip();
  else loadBundled();
});

async function loadBundled() {
  const ok = await loadModel({ source: 'bundled', baseUrl: MODELS_URL });
  if (ok) await indexPending();
}

async function loadClip() {
  const resolveUrl = (value) => {
    const text = value.trim();
    if (!text) return '';
    try {
      return new URL(text, window.location.href).href;
    } catch {
      return text;
    }
  };
  const ok = await loadModel({
    source: 'clip',
    textUrl: resolveUrl(els.clipText.value),
    tokenizerUrl: resolveUrl(els.clipTokenizer.value),
    visionUrl: resolveUrl(els.clipVision.value),
    dim: Number(els.clipDim.value),
  });
  if (ok) await indexPending();
}

els.modelSelect.addEventListener('change', () => {
  const clip = els.modelSelect.value === 'clip';
  els.clipFields.hidden = !clip;
  if (!clip && currentModel?.key.startsWith('clip:')) loadBundled();
  if (clip) els.clipText.focus();
});
els.clipLoad.addEventListener('click', () => loadClip());

// ---------------------------------------------------------------- gallery

function setIndexed(entry, indexed) {
  entry.indexed = indexed;
  entry.el?.classList.toggle('pending', !indexed && !entry.failed);
}

function addEntry({ name, title, source, blob, stored = false }) {
  const url = URL.createObjectURL(blob);
  const entry = { name, title: title ?? name, source, blob, url, stored, indexed: false, failed: false, el: null };
  const useButton = el('button', { type: 'button', className: 'small', text: 'Use as query', 'data-testid': 'use-as-query' });
  useButton.addEventListener('click', () => {
    if (mode !== 'images') setMode('images');
    setQueryImage({ kind: 'item', name });
    runSearch();
    $('search-heading').scrollIntoView({ behavior: 'smooth', block: 'start' });
  });
  entry.el = el('figure', { className: `gallery-item pending${source === 'user' ? ' user' : ''}`, 'data-testid': 'gallery-item', 'data-name': name },
    el('img', { src: url, alt: entry.title, loading: 'lazy', decoding: 'async' }),
    el('figcaption', {},
      el('span', { className: 'item-name', text: name, title: entry.title === name ? name : `${entry.title} (${name})` }),
      useButton));
  entries.set(name, entry);
  els.gallery.append(entry.el);
  updateControls();
  return entry;
}

function removeEntry(name) {
  const entry = entries.get(name);
  if (!entry) return;
  entry.el.remove();
  URL.revokeObjectURL(entry.url);
  entries.delete(name);
  if (queryImage?.kind === 'item' && queryImage.name === name) setQueryImage(null);
}

function showIndexProgress() {
  const all = [...entries.values()];
  const done = all.filter((e) => e.indexed || e.failed).length;
  els.indexProgress.max = Math.max(1, all.length);
  els.indexProgress.value = done;
  els.indexStatus.textContent = `Indexing ${done} of ${all.length} images…`;
  return { done, total: all.length };
}

/**
 * Indexes every entry not indexed yet, INDEX_BATCH at a time: decode here, embed (or
 * find the stored embedding) in the worker. Entries added meanwhile are picked up.
 * Cancel stops between batches.
 */
function indexPending() {
  if (indexing) return indexing.promise;
  if (!currentModel) return Promise.resolve();
  const run = { cancelled: false };
  indexing = run;
  run.promise = (async () => {
    const started = performance.now();
    let embedded = 0;
    let reused = 0;
    els.indexRow.hidden = false;
    els.cancelIndexing.hidden = false;
    els.resumeIndexing.hidden = true;
    updateControls();
    try {
      await client.call('index.begin', { job: 'index' });
      for (;;) {
        showIndexProgress();
        const pending = [...entries.values()].filter((e) => !e.indexed && !e.failed);
        if (pending.length === 0 || run.cancelled) break;
        const decoded = [];
        for (const entry of pending.slice(0, INDEX_BATCH)) {
          try {
            decoded.push({ entry, image: await decodeImage(entry.blob, { label: entry.name }) });
          } catch (err) {
            entry.failed = true;
            entry.el.classList.remove('pending');
            entry.el.classList.add('failed');
            showError(err.message);
          }
        }
        if (decoded.length === 0) continue;
        const images = decoded.map(({ entry, image }) => ({
          name: entry.name,
          source: entry.source,
          image,
          blob: entry.source === 'user' && !entry.stored ? entry.blob : undefined,
        }));
        const result = await client.call('index.addImages', { images, job: 'index' },
          { transfer: decoded.map(({ image }) => image.data.buffer) });
        for (const { name, cached } of result.added) {
          const entry = entries.get(name);
          if (!entry) continue;
          setIndexed(entry, true);
          if (entry.source === 'user') entry.stored = true;
          if (cached) reused += 1;
          else embedded += 1;
        }
        if (result.cancelled) run.cancelled = true;
        updateControls();
      }
    } catch (err) {
      showError(`Indexing failed: ${err.message}`);
    } finally {
      await client.call('index.end', { job: 'index' }).catch(() => {});
      indexing = null;
      const { done, total } = showIndexProgress();
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      if (done < total) {
        els.indexStatus.textContent = `Indexing stopped: ${done} of ${total} images are searchable.`;
        els.cancelIndexing.hidden = true;
        els.resumeIndexing.hidden = false;
      } else {
        els.indexRow.hidden = true;
      }
      const how = [embedded && `${embedded} embedded`, reused && `${reused} reused from this device`]
        .filter(Boolean).join(', ');
      els.gallery.dataset.indexSeconds = seconds;
      if (how) els.galleryCount.title = `Last indexing: ${how} in ${seconds} s`;
      updateControls();
    }
  })();
  return run.promise;
}

els.cancelIndexing.addEventListener('click', () => {
  if (!indexing) return;
  indexing.cancelled = true;
  els.indexStatus.textContent = 'Stopping after this batch…';
  client.call('cancel', { job: 'index' }).catch(() => {});
});
els.resumeIndexing.addEventListener('click', () => indexPending());

async function addFiles(fileList) {
  const files = [...fileList];
  const images = files.filter(isImageFile);
  if (images.length === 0) {
    if (files.length > 0) showError('None of those files is an image.');
    return;
  }
  clearError();
  for (const file of images) {
    addEntry({ name: uniqueName(file.webkitRelativePath || file.name), source: 'user', blob: file });
  }
  await indexPending();
}

els.addImages.addEventListener('change', () => {
  addFiles(els.addImages.files);
  els.addImages.value = '';
});
els.addFolder.addEventListener('change', () => {
  addFiles(els.addFolder.files);
  els.addFolder.value = '';
});

const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
els.gallery.addEventListener('dragover', (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  els.gallery.classList.add('drop-target');
});
els.gallery.addEventListener('dragleave', () => els.gallery.classList.remove('drop-target'));
els.gallery.addEventListener('drop', (event) => {
  event.preventDefault();
  els.gallery.classList.remove('drop-target');
  addFiles(event.dataTransfer.files);
});
// A file dropped beside the grid must not replace the page.
window.addEventListener('dragover', (event) => { if (hasFiles(event)) event.preventDefault(); });
window.addEventListener('drop', (event) => { if (hasFiles(event)) event.preventDefault(); });

els.clearImages.addEventListener('click', async () => {
  try {
    const { removed } = await client.call('index.clear');
    for (const name of removed) removeEntry(name);
    for (const entry of [...entries.values()]) if (entry.source === 'user') removeEntry(entry.name);
    for (const li of [...els.results.children]) if (!entries.has(li.dataset.name) && mode === 'images') li.remove();
  } catch (err) {
    showError(`Could not clear your images: ${err.message}`);
  }
  updateControls();
});

// ---------------------------------------------------------------- queries

function setQueryImage(query) {
  if (queryImage?.kind === 'file') URL.revokeObjectURL(queryImage.url);
  queryImage = query;
  els.queryPreview.hidden = !query;
  if (query) {
    els.queryPreviewImg.src = query.kind === 'item' ? entries.get(query.name)?.url ?? '' : query.url;
    els.queryPreviewName.textContent = query.name;
    els.queryPreview.dataset.name = query.name;
  } else {
    els.queryPreviewImg.removeAttribute('src');
    delete els.queryPreview.dataset.name;
  }
}

els.queryImage.addEventListener('change', async () => {
  const file = els.queryImage.files[0];
  els.queryImage.value = '';
  if (!file) return;
  try {
    const image = await decodeImage(file, { label: file.name });
    setQueryImage({ kind: 'file', name: file.name, image, url: URL.createObjectURL(file) });
    clearError();
    runSearch();
  } catch (err) {
    showError(err.message);
  }
});
els.clearQueryImage.addEventListener('click', () => setQueryImage(null));

els.weight.addEventListener('input', () => {
  els.weightValue.textContent = Number(els.weight.value).toFixed(2);
});

const MODE_LABELS = {
  text: 'Text → image',
  image: 'Image → image',
  fused: 'Image + instruction',
  sentences: 'Text → text',
};

function renderImageResults({ mode: queryMode, hits }, seconds) {
  const weight = Number(els.weight.value).toFixed(2);
  els.searchStatus.textContent = `${MODE_LABELS[queryMode]}${queryMode === 'fused' ? ` (instruction weight ${weight})` : ''}: `
    + `top ${hits.length} of ${entries.size} in ${seconds} s. Score = cosine similarity.`;
  els.results.className = 'results images';
  els.results.dataset.mode = queryMode;
  els.results.replaceChildren(...hits.map(({ name, score }, rank) => {
    const entry = entries.get(name);
    return el('li', { 'data-testid': 'result', 'data-name': name, 'data-score': score.toFixed(6) },
      el('img', { src: entry?.url ?? '', alt: entry?.title ?? name }),
      el('span', { className: 'result-rank', text: `${rank + 1}` }),
      el('span', { className: 'result-name', text: name, title: entry?.title ?? name }),
      el('span', { className: 'result-score', text: score.toFixed(3) }));
  }));
}

function renderSentenceResults({ hits }, seconds) {
  els.searchStatus.textContent = `${MODE_LABELS.sentences}: top ${hits.length} of ${sentences.length} sentences in ${seconds} s. Score = cosine similarity.`;
  els.results.className = 'results sentences';
  els.results.dataset.mode = 'sentences';
  els.results.replaceChildren(...hits.map(({ sentence, score }, rank) =>
    el('li', { 'data-testid': 'result', 'data-name': sentence, 'data-score': score.toFixed(6) },
      el('span', { className: 'result-rank', text: `${rank + 1}` }),
      el('span', { className: 'result-name', text: sentence }),
      el('span', { className: 'result-score', text: score.toFixed(3) }))));
}

async function loadSentences() {
  if (sentences) return sentences;
  const response = await fetchVerified('./sentences.json');
  if (!response.ok) throw new Error(`sentences.json: HTTP ${response.status}`);
  sentences = (await response.json()).sentences;
  els.sentenceCount.textContent = String(sentences.length);
  els.sentenceList.replaceChildren(...sentences.map((s) => el('li', { text: s })));
  return sentences;
}

let searchGeneration = 0;
async function runSearch() {
  if (!currentModel) return;
  clearError();
  const generation = ++searchGeneration;
  const text = els.queryInput.value.trim();
  const started = performance.now();
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(2);
  try {
    if (mode === 'sentences') {
      const corpus = await loadSentences();
      const result = await client.call('search.sentences', { query: text, sentences: corpus, k: 5 });
      if (generation === searchGeneration) renderSentenceResults(result, elapsed());
      return;
    }
    const args = { text, weight: Number(els.weight.value), k: RESULTS };
    const transfer = [];
    if (queryImage?.kind === 'item') args.queryName = queryImage.name;
    if (queryImage?.kind === 'file') {
      const { width, height, data } = queryImage.image;
      args.queryImage = { width, height, data: data.slice() };
      transfer.push(args.queryImage.data.buffer);
    }
    els.searchStatus.textContent = 'Searching…';
    const result = await client.call('search', args, { transfer });
    if (generation === searchGeneration) renderImageResults(result, elapsed());
  } catch (err) {
    if (generation === searchGeneration) {
      els.searchStatus.textContent = '';
      showError(err.message);
    }
  }
}

els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  runSearch();
});

function setMode(next) {
  mode = next;
  const sentencesMode = next === 'sentences';
  els.tabImages.setAttribute('aria-selected', String(!sentencesMode));
  els.tabSentences.setAttribute('aria-selected', String(sentencesMode));
  els.form.setAttribute('aria-labelledby', sentencesMode ? 'tab-sentences' : 'tab-images');
  els.imageQuery.hidden = sentencesMode;
  els.sentenceCorpus.hidden = !sentencesMode;
  els.queryLabel.textContent = sentencesMode
    ? 'Find the sentences that mean the same as…'
    : 'Describe what you are looking for — or, with a query image, how it should change';
  els.queryInput.placeholder = sentencesMode ? 'a small cat napping' : 'a cat';
  els.results.replaceChildren();
  els.searchStatus.textContent = '';
  if (sentencesMode) loadSentences().catch((err) => showError(err.message));
}
els.tabImages.addEventListener('click', () => setMode('images'));
els.tabSentences.addEventListener('click', () => setMode('sentences'));

// ---------------------------------------------------------------- evaluation

let evalCancelled = false;

function showEvalMissing() {
  els.evalResult.replaceChildren(el('p', { className: 'missing', 'data-testid': 'eval-missing' },
    'This copy of the demo was built without Tux Paint\'s captioned stamps (the Debian package ',
    el('code', { text: 'tuxpaint-stamps-default' }),
    ', GPL-2, never committed). To run the evaluation, install them with ',
    el('code', { text: 'sudo apt-get install tuxpaint-stamps-default' }),
    ' and rebuild the site (',
    el('code', { text: './scripts/build' }),
    ').'));
}

function renderEvalResult(report) {
  const fmt = (x) => x.toFixed(3);
  const node = els.evalResult;
  // setAttribute, not dataset: dataset.recallAt1 would be data-recall-at1.
  node.setAttribute('data-n', String(report.n));
  node.setAttribute('data-recall-at-1', String(report.recall_at_1));
  node.setAttribute('data-recall-at-5', String(report.recall_at_5));
  node.setAttribute('data-recall-at-10', String(report.recall_at_10));
  node.setAttribute('data-median-rank', String(report.median_rank));
  const cell = (label, value, hint) => el('div', {},
    el('dt', {}, label, hint ? el('span', { className: 'hint', text: ` ${hint}` }) : null),
    el('dd', { text: value }));
  node.replaceChildren(
    el('dl', { className: 'summary' },
      cell('Recall@1', fmt(report.recall_at_1)),
      cell('Recall@5', fmt(report.recall_at_5)),
      cell('Recall@10', fmt(report.recall_at_10)),
      cell('Median rank', String(report.median_rank))),
    el('p', { className: 'hint', text: `${report.n} captions and stamps, model ${report.model}, in ${report.seconds.toFixed(1)} s. `
      + `Chance would give Recall@1 = ${report.chance_recall_at_1.toFixed(4)}.` }));
}

els.runEval.addEventListener('click', async () => {
  clearError();
  evalRunning = true;
  evalCancelled = false;
  updateControls();
  els.evalResult.replaceChildren();
  for (const name of ['data-n', 'data-recall-at-1', 'data-recall-at-5', 'data-recall-at-10', 'data-median-rank']) {
    els.evalResult.removeAttribute(name);
  }
  els.evalStatus.textContent = 'Reading the captions…';
  try {
    const response = await fetchVerified(`${STAMPS_URL}captions.json`);
    if (response.status === 404) {
      els.evalStatus.textContent = '';
      showEvalMissing();
      return;
    }
    if (!response.ok) throw new Error(`captions.json: HTTP ${response.status} ${response.statusText}`);
    let { items } = await response.json();
    if (evalLimit) items = items.slice(0, evalLimit);
    const base = new URL(STAMPS_URL, window.location.href);
    const pairs = items.map(({ file, caption }) => ({ url: new URL(encodeURIComponent(file), base).href, caption }));
    els.cancelEval.hidden = false;
    els.evalProgress.hidden = false;
    els.evalProgress.value = 0;
    const report = await client.call('eval.retrieval', { items: pairs }, {
      onProgress: ({ stage, done, total }) => {
        // Images are most of the work; captions the last tenth.
        const part = stage === 'images' ? 0.9 * (done / total) : 0.9 + 0.1 * (done / total);
        els.evalProgress.max = 1;
        els.evalProgress.value = part;
        els.evalStatus.textContent = stage === 'images'
          ? `Embedding stamps: ${done} of ${total}…`
          : `Embedding captions: ${done} of ${total}…`;
      },
    });
    if (report.cancelled || evalCancelled) {
      els.evalStatus.textContent = 'Evaluation cancelled.';
      return;
    }
    els.evalStatus.textContent = '';
    renderEvalResult(report);
  } catch (err) {
    els.evalStatus.textContent = '';
    showError(`The evaluation failed: ${err.message}`);
  } finally {
    evalRunning = false;
    els.cancelEval.hidden = true;
    els.evalProgress.hidden = true;
    updateControls();
  }
});

els.cancelEval.addEventListener('click', () => {
  evalCancelled = true;
  els.evalStatus.textContent = 'Stopping…';
  client.call('cancel', { job: 'eval' }).catch(() => {});
});

// ---------------------------------------------------------------- start

async function loadGallery() {
  const response = await fetchVerified(`${GALLERY_URL}gallery.json`);
  if (!response.ok) throw new Error(`gallery.json: HTTP ${response.status}`);
  const list = await response.json();
  const blobs = await Promise.all(list.map(async ({ file }) => {
    const r = await fetchVerified(`${GALLERY_URL}${encodeURIComponent(file)}`);
    if (!r.ok) throw new Error(`${file}: HTTP ${r.status}`);
    return r.blob();
  }));
  list.forEach(({ file, title }, i) => addEntry({ name: file, title, source: 'bundled', blob: blobs[i] }));
}

async function start() {
  updateControls();
  try {
    // The gallery appears while the models download.
    const galleryLoaded = loadGallery();
    galleryLoaded.catch(() => {}); // reported when awaited below
    const ok = await loadModel({ source: 'bundled', baseUrl: MODELS_URL });
    await galleryLoaded;
    const { stored } = await client.call('index.list');
    for (const { name, blob } of stored) {
      if (!entries.has(name)) addEntry({ name, source: 'user', blob, stored: true });
    }
    if (ok) await indexPending();
  } catch (err) {
    showError(err.message);
  }
  updateControls();
}

start();
