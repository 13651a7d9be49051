// Browser and bundler entry of the core module: plans, optimal transport, alignment, steering,
// the labs and the embedding index, without tract or tokenizers (those are in
// `latentlab/encoders`, a wasm module of its own, downloaded only by pages that import it). The
// default export initialises the module once, from the relaxed-SIMD build where the engine has
// relaxed SIMD and from the SIMD build elsewhere (see simd.js).
import initModule from './latentlab.js';
import { initWith } from './simd.js';

export * from './latentlab.js';
export * from './index-store.js';
export { relaxedSimdSupported, wasmVariant } from './simd.js';

/**
 * `await init()` picks the build; `init({ relaxedSimd: false })` forces the SIMD-only one;
 * `init({ module_or_path })` instantiates what it is given. Later calls return the first instance.
 */
export default function init(options = {}) {
  return initWith(initModule, options, (relaxed) => (relaxed
    ? new URL('./latentlab_relaxed_bg.wasm', import.meta.url)
    : new URL('./latentlab_bg.wasm', import.meta.url)));
}
