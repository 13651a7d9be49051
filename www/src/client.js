// Promise front end for www/src/worker.js: `await client.call('plan.analyze', {text})`.
// Each call gets an id; the worker's answer with that id settles the promise.

export class LatentlabClient {
  constructor() {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.nextId = 1;
    /** id → {resolve, reject, onProgress} for calls still waiting on the worker. */
    this.pending = new Map();
    this.worker.addEventListener('message', (event) => this.#onMessage(event.data));
    // A worker that fails to load or throws at top level would otherwise leave
    // every caller waiting forever: fail them all instead.
    this.worker.addEventListener('error', (event) => {
      event.preventDefault?.();
      this.#rejectAll(new Error(event.message || 'the latentlab worker failed to start'));
    });
    this.worker.addEventListener('messageerror', () => {
      this.#rejectAll(new Error('the latentlab worker sent a message that could not be read'));
    });
  }

  /**
   * Runs `op` in the worker. Resolves with its result, rejects with Error(message).
   * `onProgress` receives any progress values the worker reports for this call;
   * `transfer` lists buffers in `args` to move to the worker instead of copying them.
   */
  call(op, args = {}, { onProgress, transfer = [] } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      try {
        this.worker.postMessage({ id, op, args }, transfer);
      } catch (err) {
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Stops the worker; calls still waiting are rejected. */
  terminate() {
    this.worker.terminate();
    this.#rejectAll(new Error('the latentlab worker was stopped'));
  }

  #onMessage(data) {
    const entry = this.pending.get(data?.id);
    if (!entry) return;
    if ('progress' in data && !('ok' in data)) {
      entry.onProgress?.(data.progress);
      return;
    }
    this.pending.delete(data.id);
    if (data.ok) entry.resolve(data.result);
    else entry.reject(new Error(data.error));
  }

  #rejectAll(error) {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }
}
