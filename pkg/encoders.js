// Browser and bundler entry of the models module: the text and image encoders (tract,
// tokenizers), the language model and the labs on it (Prompt Sketching, selective retrieval,
// elicitation), model folders, and every kind of picture as encoder input. A wasm module of its
// own (~5 MB gzip), fetched when `init()` (or a loader: `Encoder.load`, `Encoder.fromPretrained`,
// `LanguageModel.load`) first runs; pages without models import `latentlab` alone.
import { initModels } from './models-init.js';

export * from './latentlab_models.js';
export * from './encoder.js';
export { toImageInput, isRgbaImage, decodeBlob } from './images.js';
// Adds LanguageModel.load (download, sha256, cache) to the wasm class.
import './language-model.js';
export { relaxedSimdSupported, wasmVariant } from './simd.js';

export default initModels;
