// Image search page: load encoders in the worker, index the bundled gallery and the
// user's own images (decoded here, embedded and remembered by the worker) and, on request,
// Tux Paint's stamps as a second gallery; search by text, image or image + instruction,
// with text queries' scores set against unrelated phrases'; search sentences, and run the
// retrieval evaluation.
import { renderShell } from '../shell.js';
import { LatentlabClient } from '../client.js';
import { decodeImage } from '../images.js';
import { fetchVerified } from '../fetch-data.js';
import { matchLevel, UNRELATED_PHRASES } from '../search-baseline.js';

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
// `?stamps=N` offers only the first N stamps as a gallery (for tests: all 430 take minutes).
const stampLimit = Number.parseInt(params.get('stamps') ?? '', 10) > 0
  ? Number.parseInt(params.get('stamps'), 10) : null;
/** Stamp pictures fetched at once while the stamps gallery fills. */
const STAMP_FETCHES = 6;
/** How long the instruction weight must rest before it searches again (ms). */
const WEIGHT_DEBOUNCE = 150;

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
  galleryChoice: $('gallery-choice'),
  gallerySelect: $('gallery-select'),
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
  queryNote: $('query-note'),
  queryNoteText: $('query-note-text'),
  photoAlone: $('photo-alone'),
  verdict: $('search-verdict'),
  results: $('results'),
  galleryName: $('gallery-name'),
  galleryCount: $('gallery-count'),
  stampsNote: $('stamps-note'),
  photoTools: $('photo-tools'),
  addImages: $('add-images'),
  addFolder: $('add-folder'),
  clearImages: $('clear-images'),
  indexRow: $('index-row'),
  indexProgress: $('index-progress'),
  indexStatus: $('index-status'),
  cancelIndexing: $('cancel-indexing'),
  resumeIndexing: $('resume-indexing'),
  gallery: $('gallery'),
  stampGallery: $('stamp-gallery'),
  runEval: $('run-eval'),
  cancelEval: $('cancel-eval'),
  evalProgress: $('eval-progress'),
  evalStatus: $('eval-status'),
  evalResult: $('eval-result'),
};

const client = new LatentlabClient();

/**
 * Gallery entries in display order: name → {name, title, source ('bundled', 'user' or 'stamps'),
 * gallery ('photos' or 'stamps'), blob (null until a stamp's picture arrives), blobReady, url,
 * stored, indexed, el, img}.
 */
const entries = new Map();
/** The gallery searched and shown: 'photos' or 'stamps'. */
let gallery = 'photos';
/** The stamps' captions.json items (first `stampLimit` of them), null before it is read or
 * where the site has no stamps; `all` counts every stamp the site has; `added` once their
 * gallery entries exist. */
const stamps = { items: null, all: 0, missing: false, added: false };
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
/** The query behind the results shown: {mode, text}; null when none are shown. */
let lastSearch = null;
/** Said beside the next results (why the text box was emptied), then cleared. */
let nextNote = null;

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
  const all = [...entries.values()];
  const bundled = all.filter((e) => e.source === 'bundled');
  const ready = canSearch && bundled.length > 0 && bundled.every((e) => e.indexed);
  document.body.dataset.ready = String(ready);
  const users = all.filter((e) => e.source === 'user').length;
  const stampEntries = all.filter((e) => e.gallery === 'stamps');
  const stampsIndexed = stampEntries.filter((e) => e.indexed).length;
  els.stampGallery.dataset.indexed = String(stampsIndexed);
  els.stampGallery.dataset.total = String(stampEntries.length);
  els.stampGallery.dataset.complete = String(stamps.added && stampsIndexed === stampEntries.length);
  if (gallery === 'photos') {
    els.galleryCount.textContent = `(${bundled.length} photos${users ? `, ${users} of yours` : ''})`;
  } else if (!stamps.added) {
    els.galleryCount.textContent = '';
  } else {
    els.galleryCount.textContent = stampsIndexed === stampEntries.length
      ? `(${stampEntries.length} stamps)`
      : `(${stampsIndexed} of ${stampEntries.length} stamps embedded)`;
  }
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
      clearResults();
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
  entry.el?.classList.toggle('pending', !indexed);
}

/** Shows `blob` in the entry's tile (stamps get theirs after their tile exists). */
function setBlob(entry, blob) {
  entry.blob = blob;
  entry.url = URL.createObjectURL(blob);
  entry.img.src = entry.url;
}

/** What a user reads as an item's name: a stamp's caption, a photo's file name. */
const displayName = (entry, name) => (entry?.source === 'stamps' ? entry.title : name);

function addEntry({ name, title, source, blob = null, stored = false }) {
  const entryGallery = source === 'stamps' ? 'stamps' : 'photos';
  const entry = {
    name, title: title ?? name, source, gallery: entryGallery, blob: null, blobReady: null, url: null,
    stored, indexed: false, el: null, img: null,
  };
  const useButton = el('button', { type: 'button', className: 'small', text: 'Use as query', 'data-testid': 'use-as-query' });
  useButton.addEventListener('click', () => useAsQuery(name));
  const shown = displayName(entry, name);
  entry.img = el('img', { alt: entry.title, loading: 'lazy', decoding: 'async' });
  entry.el = el('figure', {
    className: `gallery-item pending${source === 'user' ? ' user' : ''}`,
    'data-testid': entryGallery === 'stamps' ? 'stamp-item' : 'gallery-item',
    'data-name': name,
  },
  entry.img,
  el('figcaption', {},
    el('span', { className: 'item-name', text: shown, title: entry.title === shown ? shown : `${entry.title} (${shown})` }),
    useButton));
  if (blob) {
    setBlob(entry, blob);
    entry.blobReady = Promise.resolve(blob);
  }
  entries.set(name, entry);
  (entryGallery === 'stamps' ? els.stampGallery : els.gallery).append(entry.el);
  updateControls();
  return entry;
}

function removeEntry(name) {
  const entry = entries.get(name);
  if (!entry) return;
  entry.el.remove();
  if (entry.url) URL.revokeObjectURL(entry.url);
  entries.delete(name);
  if (queryImage?.kind === 'item' && queryImage.name === name) setQueryImage(null);
}

const galleryEntries = (which) => [...entries.values()].filter((e) => e.gallery === which);

function showIndexProgress(which) {
  const all = galleryEntries(which);
  const done = all.filter((e) => e.indexed).length;
  els.indexRow.dataset.gallery = which;
  els.indexProgress.max = Math.max(1, all.length);
  els.indexProgress.value = done;
  els.indexStatus.textContent = which === 'stamps'
    ? `Embedding the Tux Paint stamps: ${done} of ${all.length}…`
    : `Indexing ${done} of ${all.length} images…`;
  return { done, total: all.length };
}

/**
 * Takes an entry whose picture cannot be used (it does not decode, or a stamp did not arrive)
 * out of the gallery and says so by name; a stored user image is forgotten on this device too.
 */
function dropEntry(entry, err) {
  removeEntry(entry.name);
  showError(`${displayName(entry, entry.name)} was taken out of the gallery: ${err.message}`);
  if (entry.stored) client.call('index.remove', { names: [entry.name] }).catch(() => {});
  updateControls();
}

/**
 * Indexes every entry not indexed yet, INDEX_BATCH at a time: decode here, embed (or
 * find the stored embedding) in the worker. The photos go first, then the stamps. Entries
 * added meanwhile are picked up. Cancel stops between batches.
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
        const which = galleryEntries('photos').some((e) => !e.indexed) ? 'photos' : 'stamps';
        showIndexProgress(which);
        const pending = galleryEntries(which).filter((e) => !e.indexed);
        if (pending.length === 0 || run.cancelled) break;
        const decoded = [];
        for (const entry of pending.slice(0, INDEX_BATCH)) {
          try {
            const blob = await entry.blobReady;
            decoded.push({ entry, image: await decodeImage(blob, { label: displayName(entry, entry.name) }) });
          } catch (err) {
            dropEntry(entry, err);
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
      const which = galleryEntries('photos').some((e) => !e.indexed) ? 'photos' : 'stamps';
      const { done, total } = showIndexProgress(which);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      if (done < total) {
        els.indexStatus.textContent = which === 'stamps'
          ? `Embedding stopped: ${done} of ${total} stamps are embedded and searchable.`
          : `Indexing stopped: ${done} of ${total} images are searchable.`;
        els.cancelIndexing.hidden = true;
        els.resumeIndexing.hidden = false;
      } else {
        els.indexRow.hidden = true;
      }
      const how = [embedded && `${embedded} embedded`, reused && `${reused} reused from this device`]
        .filter(Boolean).join(', ');
      els.gallery.dataset.indexSeconds = seconds;
      if (which === 'stamps' && total > 0 && done === total && stamps.started) {
        els.stampGallery.dataset.indexSeconds = ((performance.now() - stamps.started) / 1000).toFixed(1);
        stamps.started = null;
      }
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

/** Whether this browser can decode `blob` as a picture (the work is thrown away). */
async function decodes(blob) {
  try {
    (await createImageBitmap(blob)).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Adds the user's files that are pictures this browser can decode; the others are named in
 * the error line and never become tiles (nor count in the gallery).
 */
async function addFiles(fileList) {
  const files = [...fileList];
  const images = files.filter(isImageFile);
  const skipped = files.length - images.length;
  if (images.length === 0) {
    if (files.length > 0) showError('None of those files is an image.');
    return;
  }
  clearError();
  const refused = [];
  for (const file of images) {
    const label = file.webkitRelativePath || file.name;
    if (await decodes(file)) addEntry({ name: uniqueName(label), source: 'user', blob: file });
    else refused.push(label);
  }
  const notes = [];
  if (refused.length > 0) {
    const list = refused.map((name) => `“${name}”`).join(', ');
    notes.push(refused.length === 1
      ? `${list} was not added: it is not a picture this browser can decode (a damaged file, or a format it does not read).`
      : `${refused.length} files were not added because they are not pictures this browser can decode (damaged files, or formats it does not read): ${list}.`);
  }
  if (skipped > 0 && refused.length > 0) notes.push(`${skipped} other file${skipped === 1 ? ' is' : 's are'} not an image.`);
  if (notes.length > 0) showError(notes.join(' '));
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
    const entry = query.kind === 'item' ? entries.get(query.name) : null;
    els.queryPreviewImg.src = query.kind === 'item' ? entry?.url ?? '' : query.url;
    els.queryPreviewName.textContent = query.kind === 'item' ? displayName(entry, query.name) : query.name;
    els.queryPreview.dataset.name = query.name;
  } else {
    els.queryPreviewImg.removeAttribute('src');
    delete els.queryPreview.dataset.name;
  }
}

/**
 * "Use as query" on a tile searches by that picture. Words left in the text box by the search
 * before (a text query) would silently make it a picture + instruction query, so they are
 * taken out and the page says so; words typed since are kept as the instruction, and the
 * page says that too (with a button to search by the picture alone).
 */
function useAsQuery(name) {
  const typed = els.queryInput.value.trim();
  const leftover = typed !== '' && lastSearch?.text === typed
    && (lastSearch.mode === 'text' || lastSearch.mode === 'sentences');
  if (mode !== 'images') setMode('images');
  nextNote = null;
  if (leftover) {
    els.queryInput.value = '';
    nextNote = `“${typed}”, your previous search, was taken out of the text box, so this searches by the picture `
      + 'alone. To change the picture in words (“in winter”, “as a drawing”), type them and press Search.';
  }
  setQueryImage({ kind: 'item', name });
  runSearch();
  $('search-heading').scrollIntoView({ behavior: 'smooth', block: 'start' });
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

// Moving the weight searches again once it rests, when it has something to weigh (a picture
// and words); searches never overlap and the last position wins (runSearch).
let weightTimer = null;
els.weight.addEventListener('input', () => {
  els.weightValue.textContent = Number(els.weight.value).toFixed(2);
  clearTimeout(weightTimer);
  if (mode !== 'images' || !queryImage || els.queryInput.value.trim() === '') return;
  weightTimer = setTimeout(runSearch, WEIGHT_DEBOUNCE);
});

els.photoAlone.addEventListener('click', () => {
  els.queryInput.value = '';
  runSearch();
});

const MODE_LABELS = {
  text: 'Text → image',
  image: 'Image → image',
  fused: 'Image + instruction',
  sentences: 'Text → text',
};

const fmt = (x) => x.toFixed(3);
const quoted = (names) => names.map((n) => `“${n}”`).join(', ');

/** What was searched, in words: "the 12 photos", "120 of the 430 stamps (…)". */
function searchedWhat({ gallery: which, searched }) {
  const total = galleryEntries(which).length;
  const noun = which === 'stamps' ? 'stamps' : 'pictures';
  if (searched >= total) return `the ${searched} ${noun}`;
  return `the ${searched} of ${total} ${noun} embedded so far`;
}

function clearResults() {
  els.results.replaceChildren();
  els.searchStatus.textContent = '';
  els.verdict.hidden = true;
  els.verdict.textContent = '';
  delete els.verdict.dataset.level;
  els.queryNote.hidden = true;
}

/**
 * Says how the best text-query scores compare with unrelated phrases' on the same collection
 * (search-baseline.js), plainly when nothing matches; marks each result's level.
 */
function renderVerdict(text, hits, baseline, collection) {
  if (!baseline || hits.length === 0) {
    els.verdict.hidden = true;
    return;
  }
  const best = hits[0].score;
  const level = matchLevel(best, baseline);
  const clear = hits.filter((h) => h.score > baseline.clear).length;
  let head;
  if (level === 'clear') {
    head = `${clear} result${clear === 1 ? ' scores' : 's score'} above ${fmt(baseline.clear)}, higher than 9 in 10 `
      + `unrelated phrases reach anywhere here: likely ${clear === 1 ? 'a match' : 'matches'} for “${text}”.`;
  } else if (level === 'weak') {
    head = `Only a weak match for “${text}”: the best score, ${fmt(best)}, is above what a typical unrelated `
      + `phrase reaches here (${fmt(baseline.typical)}) but not above ${fmt(baseline.clear)}; the results may not show it.`;
  } else {
    head = `Nothing here matches “${text}” clearly: the best score, ${fmt(best)}, is no higher than what a `
      + `typical unrelated phrase reaches in these ${collection} (${fmt(baseline.typical)}). The list is in order, but it shows no match.`;
  }
  const highest = baseline.best.map(({ phrase, score }) => `“${phrase}” ${fmt(score)}`).join(', ');
  els.verdict.replaceChildren(el('strong', { text: head }), ' ',
    el('span', { className: 'hint', text: `For comparison, ${baseline.phrases} short phrases naming other things `
      + `(${quoted(UNRELATED_PHRASES.slice(0, 2))}, …) were scored against the same ${collection}: the best `
      + `score a phrase reaches is typically ${fmt(baseline.typical)}, and 9 in 10 of them stay at or below `
      + `${fmt(baseline.clear)} (the highest: ${highest}).` }));
  els.verdict.dataset.level = level;
  els.verdict.dataset.typical = baseline.typical.toFixed(6);
  els.verdict.dataset.clear = baseline.clear.toFixed(6);
  els.verdict.hidden = false;
}

function resultItem({ name, rank, label, title, score, img, baseline }) {
  const level = baseline ? matchLevel(score, baseline) : null;
  return el('li', { 'data-testid': 'result', 'data-name': name, 'data-score': score.toFixed(6), 'data-match': level },
    img,
    el('span', { className: 'result-rank', text: `${rank + 1}` }),
    el('span', { className: 'result-name', text: label, title }),
    el('span', { className: 'result-score', text: fmt(score) },
      level === 'clear' ? el('span', { className: 'result-match', text: ' ✓', title: 'above what 9 in 10 unrelated phrases reach here' }) : null));
}

function renderImageResults(result, query, seconds, note) {
  const { mode: queryMode, hits, baseline, leftOut, weight } = result;
  const what = searchedWhat(result);
  let said;
  if (queryMode === 'text') said = `“${query.text}” among ${what}`;
  else if (queryMode === 'image') said = `most like ${query.picture} among ${what}`;
  else said = `picture ${query.picture} + instruction “${query.text}” (instruction weight ${weight.toFixed(2)}) among ${what}`;
  const leftNames = leftOut.map((n) => displayName(entries.get(n), n));
  const left = leftNames.length === 0 ? ''
    : ` Not listed: ${leftNames.join(', ')}, the query picture itself${leftNames.length > 1 ? ' (the same pixels)' : ''}.`;
  els.searchStatus.textContent = `${MODE_LABELS[queryMode]}: ${said}: top ${hits.length} in ${seconds} s. `
    + `Score = cosine similarity.${left}`;
  els.results.className = 'results images';
  els.results.dataset.mode = queryMode;
  els.results.dataset.gallery = result.gallery;
  if (weight === null) delete els.results.dataset.weight;
  else els.results.dataset.weight = weight.toFixed(2);
  els.results.replaceChildren(...hits.map(({ name, score }, rank) => {
    const entry = entries.get(name);
    return resultItem({
      name, rank, label: displayName(entry, name), title: entry?.title ?? name, score, baseline,
      img: el('img', { src: entry?.url ?? '', alt: entry?.title ?? name }),
    });
  }));
  renderVerdict(query.text, hits, baseline, result.gallery === 'stamps' ? 'stamps' : 'pictures');
  if (note) {
    els.queryNoteText.textContent = note;
  } else if (queryMode === 'fused') {
    els.queryNoteText.textContent = `The words “${query.text}” in the text box are the instruction that changes the picture.`;
  }
  els.photoAlone.hidden = queryMode !== 'fused';
  els.queryNote.hidden = !note && queryMode !== 'fused';
}

function renderSentenceResults({ hits, baseline }, text, seconds) {
  els.searchStatus.textContent = `${MODE_LABELS.sentences}: top ${hits.length} of ${sentences.length} sentences in ${seconds} s. Score = cosine similarity.`;
  els.results.className = 'results sentences';
  els.results.dataset.mode = 'sentences';
  els.results.replaceChildren(...hits.map(({ sentence, score }, rank) =>
    resultItem({ name: sentence, rank, label: sentence, score, baseline })));
  renderVerdict(text, hits, baseline, 'sentences');
  els.queryNote.hidden = true;
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

/** Bumped when the view changes (tab, gallery), so a search begun before is not shown after. */
let viewGeneration = 0;
let searchBusy = false;
let searchAgain = false;

/**
 * Searches with what the form says now. One search at a time: a request while one runs
 * (the weight moving, Search pressed again) runs once it ends, with the form as it is then,
 * so the last request wins and none piles up.
 */
async function runSearch() {
  if (!currentModel) return;
  if (searchBusy) {
    searchAgain = true;
    return;
  }
  searchBusy = true;
  try {
    do {
      searchAgain = false;
      await searchOnce();
    } while (searchAgain);
  } finally {
    searchBusy = false;
  }
}

async function searchOnce() {
  clearError();
  const view = viewGeneration;
  const note = nextNote;
  nextNote = null;
  const text = els.queryInput.value.trim();
  const started = performance.now();
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(2);
  try {
    if (mode === 'sentences') {
      const corpus = await loadSentences();
      const result = await client.call('search.sentences', { query: text, sentences: corpus, k: 5 });
      if (view === viewGeneration) {
        renderSentenceResults(result, text, elapsed());
        lastSearch = { mode: 'sentences', text };
      }
      return;
    }
    const args = { text, weight: Number(els.weight.value), k: RESULTS, gallery };
    const transfer = [];
    let picture = null;
    if (queryImage?.kind === 'item') {
      args.queryName = queryImage.name;
      picture = displayName(entries.get(queryImage.name), queryImage.name);
    }
    if (queryImage?.kind === 'file') {
      const { width, height, data } = queryImage.image;
      args.queryImage = { width, height, data: data.slice() };
      transfer.push(args.queryImage.data.buffer);
      picture = queryImage.name;
    }
    els.searchStatus.textContent = 'Searching…';
    const result = await client.call('search', args, { transfer });
    if (view === viewGeneration) {
      renderImageResults(result, { text, picture }, elapsed(), note);
      lastSearch = { mode: result.mode, text };
    }
  } catch (err) {
    if (view === viewGeneration) {
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
  viewGeneration += 1;
  const sentencesMode = next === 'sentences';
  els.tabImages.setAttribute('aria-selected', String(!sentencesMode));
  els.tabSentences.setAttribute('aria-selected', String(sentencesMode));
  els.form.setAttribute('aria-labelledby', sentencesMode ? 'tab-sentences' : 'tab-images');
  els.imageQuery.hidden = sentencesMode;
  els.galleryChoice.hidden = sentencesMode;
  els.sentenceCorpus.hidden = !sentencesMode;
  els.queryLabel.textContent = sentencesMode
    ? 'Find the sentences that mean the same as…'
    : 'Describe what you are looking for — or, with a query image, how it should change';
  els.queryInput.placeholder = sentencesMode ? 'a small cat napping' : 'a cat';
  clearResults();
  if (sentencesMode) loadSentences().catch((err) => showError(err.message));
}
els.tabImages.addEventListener('click', () => setMode('images'));
els.tabSentences.addEventListener('click', () => setMode('sentences'));

// ---------------------------------------------------------------- the stamps gallery

/** Reads the stamps' list, to name the choice with its size (or say the site has none). */
async function readStampList() {
  const option = els.gallerySelect.querySelector('option[value="stamps"]');
  try {
    const response = await fetchVerified(`${STAMPS_URL}captions.json`);
    if (response.status === 404) throw new Error('absent');
    if (!response.ok) throw new Error(`captions.json: HTTP ${response.status} ${response.statusText}`);
    const { items } = await response.json();
    stamps.all = items.length;
    stamps.items = stampLimit ? items.slice(0, stampLimit) : items;
    option.textContent = stamps.items.length < stamps.all
      ? `Tux Paint stamps (the first ${stamps.items.length} of ${stamps.all})`
      : `Tux Paint stamps (${stamps.all})`;
  } catch {
    stamps.missing = true;
    option.textContent = 'Tux Paint stamps (not in this copy of the site)';
    option.disabled = true;
  }
}

/** Fetches the stamps' pictures, a few at a time, into their tiles; each entry's blobReady settles. */
function fetchStampPictures(list) {
  const base = new URL(STAMPS_URL, window.location.href);
  const waiting = list.map(({ entry, file }) => {
    let settle;
    entry.blobReady = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    entry.blobReady.catch(() => {}); // the indexing loop reports it
    return { entry, file, settle };
  });
  let next = 0;
  const fetchNext = async () => {
    while (next < waiting.length) {
      const { entry, file, settle } = waiting[next];
      next += 1;
      try {
        const response = await fetchVerified(new URL(encodeURIComponent(file), base).href);
        if (!response.ok) throw new Error(`${file}: HTTP ${response.status} ${response.statusText}`);
        const blob = await response.blob();
        if (entries.get(entry.name) === entry) setBlob(entry, blob);
        settle.resolve(blob);
      } catch (err) {
        settle.reject(err);
      }
    }
  };
  for (let i = 0; i < STAMP_FETCHES; i += 1) fetchNext();
}

/** Makes the stamps' tiles and embeds them (after the photos), with progress and Cancel. */
function addStamps() {
  if (stamps.added || !stamps.items) return;
  stamps.added = true;
  stamps.started = performance.now();
  const list = stamps.items.map(({ file, caption }) => ({
    file,
    entry: addEntry({ name: `stamps/${file}`, title: caption, source: 'stamps' }),
  }));
  fetchStampPictures(list);
  indexPending();
}

function setGallery(next) {
  gallery = next;
  els.gallerySelect.value = next;
  viewGeneration += 1;
  const isStamps = next === 'stamps';
  els.gallery.hidden = isStamps;
  els.photoTools.hidden = isStamps;
  els.stampGallery.hidden = !isStamps;
  els.stampsNote.hidden = !isStamps;
  els.galleryName.textContent = isStamps ? 'Tux Paint stamps' : 'Photos';
  clearResults();
  if (isStamps) addStamps();
  updateControls();
}
els.gallerySelect.addEventListener('change', () => setGallery(els.gallerySelect.value));

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
    readStampList();
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
