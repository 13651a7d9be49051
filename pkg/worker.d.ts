import type { EmbeddingMatrix } from './latentlab.js';
import type { EncoderSource, LoadOptions, PretrainedOptions } from './encoder.js';
import type { AnyImage } from './images.js';

export interface WorkerOptions {
  /** Returns a new module Worker; default: the package's own worker (encoder operations). */
  createWorker?: () => Worker;
  /** The wasm memory budget in bytes, set in every worker before its first call. */
  memoryBudget?: number | string | null;
}

export interface CallOptions<P = unknown> {
  onProgress?: (value: P) => void;
  /** Buffers in `args` to move to the worker instead of copying them. */
  transfer?: Transferable[];
  /** Rejects the call when aborted; the worker finishes its current step and its answer is dropped. */
  signal?: AbortSignal;
}

/** What a caller sees for a trapped or dead worker. */
export function crashMessage(detail: string): string;
/** `navigator.hardwareConcurrency`, capped at 4 (1 where unknown). */
export function defaultPoolSize(): number;

/**
 * A promise client for one worker. A trapped worker is replaced and `lost` is fired
 * (`event.detail.error`); its calls fail with a plain message.
 */
export class LatentlabWorker extends EventTarget {
  constructor(options?: WorkerOptions);
  call<R = unknown, P = unknown>(op: string, args?: Record<string, unknown>, options?: CallOptions<P>): Promise<R>;
  /** Calls still waiting for their answer. */
  readonly pending: number;
  terminate(): void;
}

export interface PoolProgress { done: number; total: number; }
export interface PoolEmbedOptions {
  /** Items per message (default 32 texts, 4 images). */
  batchSize?: number;
  onProgress?: (p: PoolProgress) => void;
  signal?: AbortSignal;
}

/** N workers (separate wasm instances) sharing the work of embedding a gallery. */
export class WorkerPool {
  constructor(options?: WorkerOptions & { size?: number });
  readonly size: number;
  /** The loaded encoder's dimension (0 before `load`). */
  readonly dim: number;
  readonly workers: LatentlabWorker[];
  /**
   * Downloads the encoder once (progress, cache, sha256, signal as `Encoder.load`; or a model
   * folder as `Encoder.fromPretrained`) and loads it into every worker.
   */
  load(source: EncoderSource, options?: LoadOptions): Promise<{ dim: number; text: boolean; image: boolean }>;
  load(source: { pretrained: string | URL }, options?: PretrainedOptions): Promise<{ dim: number; text: boolean; image: boolean }>;
  embedText(texts: string[], options?: PoolEmbedOptions): Promise<EmbeddingMatrix>;
  /**
   * Blobs and URLs are decoded in the workers; RGBA pixels are copied (moved with
   * `transfer: true`); ImageBitmaps are moved; elements are drawn on this thread first.
   */
  embedImage(images: AnyImage[], options?: PoolEmbedOptions & { transfer?: boolean; maxSide?: number }): Promise<EmbeddingMatrix>;
  terminate(): void;
}
