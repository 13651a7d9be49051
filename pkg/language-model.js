// Loading the language model the way a page or worker needs it: download with progress,
// check the sha256 (crypto.subtle where there is one, so the 98 MB digest does not run in
// wasm), keep the bytes in the Cache API so a reload reads them from disk, then hand them
// to the wasm class. The model code itself never sees a URL. `LanguageModel.load` is added
// to the wasm-bindgen class here, so `import { LanguageModel } from 'latentlab/encoders'` has both.
import { LanguageModel } from './latentlab_models.js';
import { fetchChecked } from './encoder.js';
import { initModels } from './models-init.js';

function abortError(signal) {
  return signal.reason instanceof Error ? signal.reason : new DOMException('the load was aborted', 'AbortError');
}

/**
 * `LanguageModel.load({url, sha256, onProgress, signal, cache, fetch})`, or
 * `LanguageModel.load({entry, baseUrl, ...})` with a `language_models` entry of a manifest
 * (`{name, file, sha256}`). `onProgress({phase, url, loaded, total, cached})`: phase
 * "download" while bytes arrive, then "open" while the GGUF is read. `activations`:
 * "f32" (default) or "int8" (faster products on 8-bit inputs, as llama.cpp computes).
 */
LanguageModel.load = async function load(options = {}) {
  const { entry, baseUrl, onProgress, signal } = options;
  let url = options.url;
  let sha256 = options.sha256;
  if (entry) {
    if (typeof entry.file !== 'string') throw new Error('LanguageModel.load: entry.file must be a string (a manifest language_models entry)');
    url = baseUrl ? new URL(entry.file, baseUrl).href : entry.file;
    sha256 = sha256 ?? entry.sha256;
  }
  if (typeof url !== 'string' || url === '') {
    throw new Error('LanguageModel.load needs {url} (a GGUF file) or {entry} (a manifest language_models entry)');
  }
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new Error(`LanguageModel.load: sha256 is ${JSON.stringify(sha256)}, expected 64 lowercase hex digits`);
  }
  const activations = options.activations ?? 'f32';
  if (activations !== 'f32' && activations !== 'int8') {
    throw new Error(`LanguageModel.load: activations is ${JSON.stringify(activations)}, expected "f32" or "int8"`);
  }
  if (signal?.aborted) throw abortError(signal);
  const [bytes] = await Promise.all([fetchChecked(url, {
    ...options,
    sha256,
    onProgress: onProgress && ((p) => onProgress({ phase: 'download', ...p })),
  }), initModels()]);
  if (signal?.aborted) throw abortError(signal);
  onProgress?.({ phase: 'open', url, loaded: bytes.length, total: bytes.length, cached: false });
  // Already checked above: do not hash the bytes a second time inside wasm.
  const model = LanguageModel.fromBytes(bytes, null);
  model.setActivations(activations);
  return model;
};

export { LanguageModel };
