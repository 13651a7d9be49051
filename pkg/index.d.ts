// wasm-bindgen's classes declare `[Symbol.dispose]()` (for `using`); this brings its type in
// for consumers whose `lib` is older than ESNext (tests/consumer/ checks with ES2022).
/// <reference lib="esnext.disposable" />
import type { InitInput, InitOutput } from './latentlab.js';
export * from './latentlab.js';
export * from './index-store.js';
export { relaxedSimdSupported, wasmVariant } from './simd.js';

export interface InitOptions {
  /** Force (true) or refuse (false) the relaxed-SIMD build; default: what the engine validates. */
  relaxedSimd?: boolean;
  /** Instantiate this module instead (wasm-bindgen's own option). */
  module_or_path?: InitInput | Promise<InitInput>;
}
/** Initialises the core wasm module once; later calls return the same instance. */
export default function init(options?: InitOptions): Promise<InitOutput>;
