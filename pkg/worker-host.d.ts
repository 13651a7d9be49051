import type { InitOptions } from './index.js';

/** An operation of a worker: `progress(value)` posts a progress message for the call. */
export type WorkerOp = (args: any, progress: (value: unknown) => void) => unknown | Promise<unknown>;

/** Marks `value` to be posted with `buffers` moved instead of copied. */
export function transfer<T>(value: T, buffers: Transferable[]): T;
/** Whether `err` left the wasm instance unusable (a trap or a stack overflow). */
export function isTrap(err: unknown): boolean;
/** The operations every latentlab worker understands: version, memory budget, encoder load and embedding. */
export const encoderOps: Record<string, WorkerOp>;
/** `ops` with each operation waiting for the models module (`latentlab/encoders`) first; encoderOps' already do. */
export function withModels(ops: Record<string, WorkerOp>): Record<string, WorkerOp>;
/** Answers `LatentlabWorker` messages in this worker with `ops` (default `encoderOps`). */
export function serveWorker(ops?: Record<string, WorkerOp>, initOptions?: InitOptions): void;
