// Promise front end for www/src/worker.js: `await client.call('plan.analyze', {text})`.
// Each call gets an id; the worker's answer with that id settles the promise.
//
// A worker whose wasm instance trapped (it ran out of memory, or a panic aborted it) is
// unusable: Rust's state, down to the stack pointer, was left mid-call. The client then
// stops it, fails its calls with a plain message, starts a fresh worker for the next call
// and fires `lost` (event.detail.error), so pages that loaded something into the old one
// (a model, an index) know it is gone instead of calling into a worker that lacks it.
//
// `?memoryBudget=<bytes>` in the page's URL raises (or lowers) the wasm memory budget of
// every worker this client starts (default 1 GiB; see setMemoryBudget).

/** What a page shows for a trapped worker; `detail` is the trap's own message. */
function crashMessage(detail) {
  return `The computation ran out of memory or crashed inside WebAssembly (${detail}), so the `
    + 'worker running it was replaced by a fresh one. Try smaller sizes; anything loaded before '
    + '(a model, an index) has to be loaded again.';
}

function memoryBudgetParam() {
  return new URLSearchParams(globalThis.location?.search ?? '').get('memoryBudget');
}

export class LatentlabClient extends EventTarget {
  #worker = null;
  /** The budget call of the current worker, which every call's answer waits on; or null. */
  #setup = null;

  constructor() {
    super();
    this.nextId = 1;
    /** id → {resolve, reject, onProgress} for calls still waiting on the current worker. */
    this.pending = new Map();
    this.#start();
  }

  #start() {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.#worker = worker;
    worker.addEventListener('message', (event) => this.#onMessage(worker, event.data));
    // A worker that fails to load, or throws outside any call, would otherwise leave every
    // caller waiting forever; its state is unknown, so it is replaced too, but only when
    // the next call comes: one that cannot load would fail again at once, and again.
    worker.addEventListener('error', (event) => {
      event.preventDefault?.();
      const message = event.message || 'the latentlab worker failed';
      const trapped = /RuntimeError|unreachable|out of bounds/.test(message);
      this.#lose(worker, new Error(trapped ? crashMessage(message) : message), { restart: false });
    });
    worker.addEventListener('messageerror', () => {
      this.#rejectAll(new Error('the latentlab worker sent a message that could not be read'));
    });
    const budget = memoryBudgetParam();
    this.#setup = null;
    if (budget !== null) {
      // Sent first, so the worker sets it before any other call runs.
      this.#setup = this.#send('memory.budget', { bytes: Number(budget) }, {})
        .catch((err) => { throw new Error(`?memoryBudget=${budget}: ${err.message}`); });
      this.#setup.catch(() => {}); // reported through the calls that wait on it
    }
  }

  /**
   * Runs `op` in the worker. Resolves with its result, rejects with Error(message).
   * `onProgress` receives any progress values the worker reports for this call;
   * `transfer` lists buffers in `args` to move to the worker instead of copying them.
   */
  call(op, args = {}, options = {}) {
    if (!this.#worker) this.#start();
    const answer = this.#send(op, args, options);
    if (!this.#setup) return answer;
    answer.catch(() => {}); // when the budget failed, that is the error the caller gets
    return this.#setup.then(() => answer);
  }

  #send(op, args, { onProgress, transfer = [] }) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      try {
        this.#worker.postMessage({ id, op, args }, transfer);
      } catch (err) {
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Stops the worker; calls still waiting are rejected. A later call starts a fresh one. */
  terminate() {
    this.#worker?.terminate();
    this.#worker = null;
    this.#rejectAll(new Error('the latentlab worker was stopped'));
  }

  #onMessage(worker, data) {
    if (worker !== this.#worker) return;
    if (data?.fatal) {
      this.#lose(worker, new Error(crashMessage(data.error)), { restart: true });
      return;
    }
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

  /** Stops a dead `worker` (starting the next one now or at the next call): its calls fail
   * with `error`, then `lost` is fired. */
  #lose(worker, error, { restart }) {
    if (worker !== this.#worker) return;
    worker.terminate();
    this.#worker = null;
    this.#rejectAll(error);
    if (restart) this.#start();
    this.dispatchEvent(new CustomEvent('lost', { detail: { error } }));
  }

  #rejectAll(error) {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }
}
