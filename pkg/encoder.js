// Loading encoders over the network, the way a page needs it: download with progress,
// check the sha256 the manifest gives, keep the bytes in the Cache API so a reload is
// instant, then hand the bytes to the wasm classes. The model code itself (wasm) never
// sees a URL. Works in browsers, Web Workers and Node (pass `fetch` for file access).
import {
  TextEmbedder,
  ImageEmbedder,
  EmbeddingIndex,
  sha256Hex,
  parseManifest,
} from './latentlab.js';

export { EmbeddingIndex as Index, parseManifest };

const CACHE_NAME = 'latentlab-models-v1';

async function sha256Of(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  }
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

/**
 * Fetches `url` as bytes. With `sha256`, the bytes must match it (a cached copy that does
 * not is dropped and fetched again). `onProgress({url, loaded, total, cached})`.
 */
export async function fetchChecked(url, { sha256, onProgress, cache = true, signal, fetch: fetchFn } = {}) {
  const doFetch = fetchFn ?? globalThis.fetch;
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
  const response = await doFetch(url, { signal });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers?.get?.('content-length')) || 0;
  let bytes;
  if (response.body?.getReader) {
    const reader = response.body.getReader();
    const chunks = [];
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      onProgress?.({ url, loaded, total, cached: false });
    }
    bytes = new Uint8Array(loaded);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
  } else {
    bytes = new Uint8Array(await response.arrayBuffer());
    onProgress?.({ url, loaded: bytes.length, total: bytes.length, cached: false });
  }
  if (sha256) {
    const actual = await sha256Of(bytes);
    if (actual !== sha256) {
      throw new Error(`${url}: sha256 is ${actual}, expected ${sha256} (a corrupt or wrong file)`);
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

function resolve(file, baseUrl) {
  return baseUrl ? new URL(file, baseUrl).href : file;
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
   */
  static async load(source, options = {}) {
    const { baseUrl } = options;
    const get = (file, sha256) => fetchChecked(resolve(file, baseUrl), { ...options, sha256 });
    let textEntry = null;
    let imageEntry = null;
    if (source.textUrl || source.visionUrl) {
      const dim = source.dim ?? 512;
      if (source.textUrl) {
        if (!source.tokenizerUrl) throw new Error('textUrl needs a tokenizerUrl (tokenizer.json)');
        textEntry = clipTextEntry(source.textUrl, source.tokenizerUrl, dim);
      }
      if (source.visionUrl) imageEntry = clipVisionEntry(source.visionUrl, dim);
    } else if (source.kind === 'text') {
      textEntry = source;
    } else if (source.kind === 'image') {
      imageEntry = source;
    } else if (source.text || source.image) {
      textEntry = source.text ?? null;
      imageEntry = source.image ?? null;
    } else {
      throw new Error('Encoder.load needs a manifest entry, {text, image} entries, or {textUrl, tokenizerUrl, visionUrl}');
    }
    let text = null;
    let image = null;
    try {
      if (textEntry) {
        if (!textEntry.tokenizer) throw new Error(`model ${textEntry.name}: a text model needs a tokenizer`);
        const [model, tokenizer] = await Promise.all([
          get(textEntry.file, textEntry.sha256),
          get(textEntry.tokenizer, textEntry.tokenizer_sha256),
        ]);
        text = TextEmbedder.fromBytes(textEntry, model, tokenizer);
      }
      if (imageEntry) {
        image = ImageEmbedder.fromBytes(imageEntry, await get(imageEntry.file, imageEntry.sha256));
      }
    } catch (err) {
      text?.free();
      image?.free();
      throw err;
    }
    return new Encoder(text, image);
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

  free() {
    this.text?.free();
    this.image?.free();
    this.text = this.image = null;
  }
}
