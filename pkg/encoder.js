// Loading encoders over the network, the way a page needs it: download with progress,
// check the sha256 the manifest gives, keep the bytes in the Cache API so a reload is
// instant, then hand the bytes to the wasm classes. The model code itself (wasm) never
// sees a URL. Works in browsers, Web Workers and Node (pass `fetch` for file access).
import { TextEmbedder, ImageEmbedder, parseManifest } from './latentlab_models.js';
import { initModels } from './models-init.js';
// The core module's sha256, for plain-http pages (no crypto.subtle): 0.5 MB gzip, fetched only
// there, where hashing in the models module would make a page that downloads models for a
// worker pool download the whole models module too.
import initCore, { sha256Hex } from './index.js';
import { toImageInput } from './images.js';
// A cycle (pretrained.js uses fetchChecked from here), harmless: neither calls the other while loading.
import { fetchPretrainedFiles } from './pretrained.js';

export { parseManifest };

const CACHE_NAME = 'latentlab-models-v1';

async function sha256Of(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  await initCore();
  return sha256Hex(bytes); // plain-http pages have no crypto.subtle
}

async function openCache(enabled) {
  if (!enabled || !globalThis.caches) return null;
  try {
    return await globalThis.caches.open(CACHE_NAME);
  } catch {
    return null; // e.g. opaque origins; loading still works, just uncached
  }
}

/** What came back, in a reader's words, for a file that is not what was asked for. */
function describeBytes(bytes) {
  if (bytes.length === 0) return 'an empty file';
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 1024)).replace(/^\uFEFF/, '').trimStart();
  if (/^<(!doctype html|html|head|body|title|meta)\b/i.test(head)) return 'an HTML page (a server sends one for a file it does not have)';
  if (head.startsWith('<')) return 'XML or HTML';
  // Text of printable characters, or binary data.
  if (!/[\u0000-\u0008\u000E-\u001F\uFFFD]/.test(head)) return `text beginning ${JSON.stringify(head.slice(0, 40))}`;
  return `${bytes.length} bytes of binary data`;
}

/** The first character of `bytes` past a byte-order mark and white space. */
function firstChar(bytes) {
  return new TextDecoder().decode(bytes.subarray(0, 64)).replace(/^\uFEFF/, '').trimStart()[0];
}

/**
 * Refuses, naming the URL and what came back, a download that is plainly not the file asked
 * for (a web page instead of a model, anything but a JSON object instead of a tokenizer),
 * before the model code reports it as a parse error deep inside the file.
 */
function expectFile(bytes, url, kind) {
  if (kind === 'tokenizer' && firstChar(bytes) !== '{') {
    throw new Error(`the tokenizer at ${url} is not JSON: the server sent ${describeBytes(bytes)}; check the URL`);
  }
  if (kind === 'model' && (bytes.length === 0 || firstChar(bytes) === '<')) {
    throw new Error(`the model at ${url} is not an ONNX model: the server sent ${describeBytes(bytes)}; check the URL`);
  }
  return bytes;
}

/** How many times an interrupted download is resumed (or restarted) before it fails. */
const RESUMES = 3;

function concat(chunks, length) {
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/** The first byte of a 206 answer (`Content-Range: bytes first-last/size`), or -1. */
function rangeStart(response) {
  const match = /^bytes (\d+)-/.exec(response.headers?.get?.('content-range') ?? '');
  return match ? Number(match[1]) : -1;
}

/**
 * Downloads `url` with progress. A stream that breaks off (a dropped connection, a body
 * shorter than its Content-Length) is resumed from the bytes already received with
 * `Range: bytes=<received>-`; a server that answers anything but that range (200: the whole
 * file) is read again from the start. The caller's sha256 check covers the joined bytes.
 */
async function download(url, { signal, onProgress, fetch: doFetch }) {
  const chunks = [];
  let loaded = 0;
  let failure = null;
  for (let attempt = 0; attempt <= RESUMES; attempt += 1) {
    const resuming = loaded > 0;
    const response = await doFetch(url, resuming ? { signal, headers: { Range: `bytes=${loaded}-` } } : { signal });
    if (resuming && !(response.status === 206 && rangeStart(response) === loaded)) {
      chunks.length = 0;
      loaded = 0;
      if (response.status === 206) {
        // Some other range, of no use: ask for the whole file next time.
        await response.body?.cancel?.();
        failure = new Error(`the server sent another range (${response.headers.get('content-range')})`);
        continue;
      }
    }
    if (!response.ok) {
      const answer = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      throw new Error(response.status === 404
        ? `${url} was not found (the server answered ${answer})`
        : `${url} could not be downloaded (the server answered ${answer})`);
    }
    if (!response.body?.getReader) {
      const bytes = new Uint8Array(await response.arrayBuffer());
      onProgress?.({ url, loaded: bytes.length, total: bytes.length, cached: false });
      return bytes;
    }
    const length = Number(response.headers?.get?.('content-length')) || 0;
    const total = length && loaded + length;
    // A compressed body's length is not its byte count: only an identity one can be short.
    const exact = total > 0 && !response.headers?.get?.('content-encoding');
    try {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.length;
        onProgress?.({ url, loaded, total, cached: false });
      }
      if (exact && loaded < total) throw new Error(`the connection closed after ${loaded} of ${total} bytes`);
      return concat(chunks, loaded);
    } catch (err) {
      if (signal?.aborted) throw err;
      failure = err;
    }
  }
  throw new Error(`${url}: the download broke off ${RESUMES + 1} times (last: ${failure.message}); check the connection and try again`);
}

/**
 * Fetches `url` as bytes. With `sha256`, the bytes must match it (a cached copy that does
 * not is dropped and fetched again). `onProgress({url, loaded, total, cached})`. A download
 * that breaks off is resumed where it stopped (HTTP Range), up to three times.
 */
export async function fetchChecked(url, { sha256, onProgress, cache = true, signal, fetch: fetchFn } = {}) {
  const store = await openCache(cache);
  if (store) {
    const hit = await store.match(url);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (!sha256 || (await sha256Of(bytes)) === sha256) {
        onProgress?.({ url, loaded: bytes.length, total: bytes.length, cached: true });
        return bytes;
      }
      await store.delete(url);
    }
  }
  const bytes = await download(url, { signal, onProgress, fetch: fetchFn ?? globalThis.fetch });
  // A cancel that came with the last chunk still cancels: the caller asked for nothing more.
  signal?.throwIfAborted();
  if (sha256) {
    const actual = await sha256Of(bytes);
    if (actual !== sha256) {
      throw new Error(`${url}: sha256 is ${actual}, expected ${sha256} (a corrupt or wrong file: ${describeBytes(bytes)})`);
    }
  }
  if (store) {
    try {
      await store.put(url, new Response(bytes));
    } catch {
      // Quota exceeded or similar: the model still works, it is just not cached.
    }
  }
  return bytes;
}

/** `file` against `baseUrl`, itself taken relative to the page (or worker) where it is not absolute. */
function resolve(file, baseUrl) {
  if (!baseUrl) return file;
  const here = globalThis.location?.href;
  try {
    return new URL(file, here ? new URL(baseUrl, here) : baseUrl).href;
  } catch {
    throw new Error(`baseUrl ${JSON.stringify(String(baseUrl))} is not a URL${here ? '' : ' (outside a page, give an absolute one)'}`);
  }
}

/** A CLIP-style text entry for a model given by URL (transformers.js-style export). */
function clipTextEntry(url, tokenizer, dim) {
  return {
    name: 'user-text', kind: 'text', file: url, tokenizer, max_tokens: 77,
    pooling: 'none', embedding_output: 'text_embeds', embedding_dim: dim,
  };
}

/** A CLIP-style vision entry: shorter side to 224, centre crop, CLIP's mean and std. */
function clipVisionEntry(url, dim) {
  return {
    name: 'user-vision', kind: 'image', file: url, pairs_with: 'user-text',
    embedding_output: 'image_embeds', embedding_dim: dim, pooling: 'none',
    preprocessing: {
      size: 224, resize: 'center-crop', filter: 'bicubic',
      mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711],
    },
  };
}

/** The manifest entries `source` names (see `Encoder.load`): `{text, image}`, either may be null. */
export function resolveEncoderSource(source) {
  if (source === null || typeof source !== 'object') return resolveEncoderSource({});
  if (source.textUrl || source.visionUrl) {
    const dim = source.dim ?? 512;
    if (source.textUrl && !source.tokenizerUrl) throw new Error('textUrl needs a tokenizerUrl (tokenizer.json)');
    return {
      text: source.textUrl ? clipTextEntry(source.textUrl, source.tokenizerUrl, dim) : null,
      image: source.visionUrl ? clipVisionEntry(source.visionUrl, dim) : null,
    };
  }
  if (source.kind === 'text') return { text: source, image: null };
  if (source.kind === 'image') return { text: null, image: source };
  if (source.text || source.image) return { text: source.text ?? null, image: source.image ?? null };
  throw new Error('Encoder.load needs a manifest entry, {text, image} entries, or {textUrl, tokenizerUrl, visionUrl}');
}

/**
 * Downloads (or reads from the Cache API) and checks the files of the encoders `source` names:
 * `{entries: {text, image}, files: {textModel, tokenizer, imageModel}}` (absent files null).
 * Same options as `Encoder.load`.
 */
export async function fetchEncoderFiles(source, options = {}) {
  const entries = resolveEncoderSource(source);
  const get = async (file, sha256, kind) => {
    const url = resolve(file, options.baseUrl);
    return expectFile(await fetchChecked(url, { ...options, sha256 }), url, kind);
  };
  const files = { textModel: null, tokenizer: null, imageModel: null };
  if (entries.text) {
    if (!entries.text.tokenizer) throw new Error(`model ${entries.text.name}: a text model needs a tokenizer`);
    [files.textModel, files.tokenizer] = await Promise.all([
      get(entries.text.file, entries.text.sha256, 'model'),
      get(entries.text.tokenizer, entries.text.tokenizer_sha256, 'tokenizer'),
    ]);
  }
  if (entries.image) files.imageModel = await get(entries.image.file, entries.image.sha256, 'model');
  return { entries, files };
}

/**
 * Text and/or image encoders, loaded once. `embedText(texts)` and `embedImage(images)`
 * return `{rows, cols, data: Float32Array}` with L2-normalised rows.
 */
export class Encoder {
  constructor(text, image) {
    this.text = text ?? null;
    this.image = image ?? null;
  }

  /**
   * `source` is one of:
   * - a manifest entry (text or image model), with `baseUrl` to resolve its files;
   * - `{text: entry, image: entry}` for a pair, e.g. the bundled one;
   * - `{textUrl, tokenizerUrl, visionUrl, dim}` for CLIP-style ONNX files given by URL.
   * Options: `onProgress({url, loaded, total, cached})`, `baseUrl`, `cache`, `signal`, `fetch`.
   * Initialises the models module too (while the files download) if the page has not.
   */
  static async load(source, options = {}) {
    const [files] = await Promise.all([fetchEncoderFiles(source, options), initModels()]);
    return Encoder.fromFiles(files);
  }

  /**
   * The encoder of files already fetched (`fetchEncoderFiles`): how a worker builds it from
   * bytes its page downloaded once for every worker. The models module must be initialised.
   */
  static fromFiles({ entries, files }) {
    let text = null;
    let image = null;
    try {
      if (entries.text) text = TextEmbedder.fromBytes(entries.text, files.textModel, files.tokenizer);
      if (entries.image) image = ImageEmbedder.fromBytes(entries.image, files.imageModel);
    } catch (err) {
      text?.free();
      image?.free();
      throw err;
    }
    return new Encoder(text, image);
  }

  /**
   * The encoder(s) of a model folder as Hugging Face and transformers.js publish them (see
   * pretrained.js): `config.json`, `tokenizer.json`, `onnx/model.onnx` or, with `dtype: 'q8'`,
   * `onnx/model_quantized.onnx`; `preprocessor_config.json` for images; CLIP pairs as
   * `onnx/text_model.onnx` + `onnx/vision_model.onnx`. A URL, or under Node a local path.
   */
  static async fromPretrained(folder, options = {}) {
    const [files] = await Promise.all([fetchPretrainedFiles(folder, options), initModels()]);
    return Encoder.fromFiles(files);
  }

  /** The image model named `name` of a manifest and the text model it pairs with. */
  static async loadPair(manifest, name, options = {}) {
    const image = manifest.models.find((m) => m.name === name);
    if (!image) throw new Error(`no model named ${JSON.stringify(name)} in the manifest`);
    const text = manifest.models.find((m) => m.name === image.pairs_with);
    if (!text) throw new Error(`model ${name} pairs with ${image.pairs_with}, which the manifest lacks`);
    return Encoder.load({ text, image }, options);
  }

  get dim() {
    return (this.text ?? this.image)?.dim ?? 0;
  }

  embedText(texts) {
    if (!this.text) throw new Error('this encoder has no text model');
    return this.text.embed(texts);
  }

  embedImage(images) {
    if (!this.image) throw new Error('this encoder has no image model');
    return this.image.embed(images);
  }

  /**
   * Any pictures (see `toImageInput`: RGBA pixels, ImageData, ImageBitmap, <img>, <canvas>,
   * Blob/File, URL), decoded by the browser, then embedded. `maxSide` scales larger pictures
   * down first (default: none).
   */
  async embedImages(images, options = {}) {
    if (!Array.isArray(images)) throw new TypeError('images must be an array');
    if (!this.image) throw new Error('this encoder has no image model');
    const pixels = [];
    for (const [i, image] of images.entries()) pixels.push(await toImageInput(image, { ...options, label: `image ${i}` }));
    return this.image.embed(pixels);
  }

  free() {
    this.text?.free();
    this.image?.free();
    this.text = this.image = null;
  }
}
