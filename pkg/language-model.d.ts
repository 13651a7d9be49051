import type { LanguageModel as WasmLanguageModel } from './latentlab_models.js';

export interface LanguageModelLoadProgress {
  /** "download" while bytes arrive (or come from the cache), "open" while the GGUF is read. */
  phase: 'download' | 'open';
  url: string; loaded: number; total: number; cached: boolean;
}
export interface LanguageModelEntry { name?: string; file: string; sha256?: string; }
export interface LanguageModelLoadOptions {
  /** The GGUF file's URL (or give `entry`). */
  url?: string;
  /** 64 lowercase hex digits; the download must match it. */
  sha256?: string;
  /** A manifest `language_models` entry, resolved against `baseUrl`. */
  entry?: LanguageModelEntry;
  baseUrl?: string;
  onProgress?: (p: LanguageModelLoadProgress) => void;
  signal?: AbortSignal;
  /** Keep the download in the Cache API (default true). */
  cache?: boolean;
  /** "f32" (default: exact inputs to the quantised products) or "int8" (faster; logits move by hundredths). */
  activations?: 'f32' | 'int8';
  fetch?: typeof fetch;
}

declare module './latentlab_models.js' {
  namespace LanguageModel {
    /** Downloads (with progress, sha256 check and the Cache API) and opens a GGUF model. */
    function load(options: LanguageModelLoadOptions): Promise<WasmLanguageModel>;
  }
}
export { LanguageModel } from './latentlab_models.js';
