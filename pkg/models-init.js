// The models module's initialiser (the default export of `latentlab/encoders`), in a file of its
// own so that the encoder and language-model loaders can call it without importing the entry.
import initModule from './latentlab_models.js';
import { initWith } from './simd.js';

/** Initialises the models wasm module once (options as the core's `init`); later calls return it. */
export function initModels(options = {}) {
  return initWith(initModule, options, (relaxed) => (relaxed
    ? new URL('./latentlab_models_relaxed_bg.wasm', import.meta.url)
    : new URL('./latentlab_models_bg.wasm', import.meta.url)));
}
