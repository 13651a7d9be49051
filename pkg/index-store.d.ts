import type { EmbeddingIndex, IndexStorage } from './latentlab.js';

export interface SavedIndexInfo {
  name: string; model: string; dim: number | null; size: number; storage: IndexStorage;
  /** Size of the saved bytes. */
  bytes: number;
  /** When it was saved (ms since the epoch). */
  saved: number;
}
/** Saves the index's bytes under `name` in IndexedDB (replacing what was saved there). */
export function saveIndex(name: string, index: EmbeddingIndex): Promise<void>;
/** The index saved under `name`; with `options.model`, an index of another model is refused. */
export function loadIndex(name: string, options?: { model?: string }): Promise<EmbeddingIndex>;
export function listIndexes(): Promise<SavedIndexInfo[]>;
/** Resolves with whether an index was saved under `name`. */
export function deleteIndex(name: string): Promise<boolean>;
