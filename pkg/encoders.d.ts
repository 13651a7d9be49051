/// <reference lib="esnext.disposable" />
import type { InitInput, InitOutput } from './latentlab_models.js';
export * from './latentlab_models.js';
export * from './encoder.js';
export { toImageInput, isRgbaImage, decodeBlob } from './images.js';
export type { AnyImage, ToImageOptions } from './images.js';
export type { LanguageModelLoadOptions, LanguageModelLoadProgress, LanguageModelEntry } from './language-model.js';
import './language-model.js';
export { relaxedSimdSupported, wasmVariant } from './simd.js';

export interface ModelsInitOptions {
  /** Force (true) or refuse (false) the relaxed-SIMD build; default: what the engine validates. */
  relaxedSimd?: boolean;
  /** Instantiate this module instead (wasm-bindgen's own option). */
  module_or_path?: InitInput | Promise<InitInput>;
}
/**
 * Initialises the models wasm module once; later calls return the same instance. The loaders
 * (`Encoder.load`, `Encoder.fromPretrained`, `LanguageModel.load`) call it themselves.
 */
export default function init(options?: ModelsInitOptions): Promise<InitOutput>;
