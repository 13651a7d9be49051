// Browser and bundler entry: the wasm-bindgen module plus the encoder loader. The default
// export initialises the module once, from the relaxed-SIMD build where the engine has
// relaxed SIMD and from the SIMD build elsewhere (see simd.js).
import initModule from './latentlab.js';
import { relaxedSimdSupported, recordWasmVariant } from './simd.js';

export * from './latentlab.js';
export * from './encoder.js';
export * from './index-store.js';
export { toImageInput, isRgbaImage, decodeBlob } from './images.js';
// Adds LanguageModel.load (download, sha256, cache) to the wasm class.
import './language-model.js';
export { relaxedSimdSupported, wasmVariant } from './simd.js';

/**
 * `await init()` picks the build; `init({ relaxedSimd: false })` forces the SIMD-only one;
 * `init({ module_or_path })` instantiates what it is given, as wasm-bindgen's own init does.
 * Later calls return the first instance.
 */
export default async function init(options = {}) {
  const plain = options !== null && Object.getPrototypeOf(options) === Object.prototype;
  if (!plain || options.module_or_path !== undefined) return initModule(options);
  const relaxed = options.relaxedSimd ?? relaxedSimdSupported();
  // Two literal URLs, so that bundlers emit both files.
  const url = relaxed
    ? new URL('./latentlab_relaxed_bg.wasm', import.meta.url)
    : new URL('./latentlab_bg.wasm', import.meta.url);
  const exports = await initModule({ module_or_path: url });
  recordWasmVariant(relaxed ? 'relaxed-simd' : 'simd128');
  return exports;
}
