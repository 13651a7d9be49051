// latentlab/worker: the wasm off the page's thread. `LatentlabWorker` is a promise client for
// one worker (the package's own, or an application's built with `serveWorker`); `WorkerPool`
// runs N of them, separate wasm instances (no shared memory, so no COOP/COEP headers needed),
// and splits the embedding of a gallery across them.
//
// A worker whose wasm instance trapped (it ran out of memory, or a panic aborted it) is
// unusable: Rust's state, down to the stack pointer, was left mid-call. The client then stops
// it, fails its calls with a plain message, starts a fresh worker and fires `lost`
// (event.detail.error), so callers that loaded something into the old one (a model, an index)
// know it is gone. A pool loads its encoder into the fresh worker itself.
// Pages that use only LatentlabWorker leave this out of their bundle (the package is free of
// side effects but for its entry files, so bundlers drop what is unused).
import { fetchEncoderFiles } from './encoder.js';
import { fetchPretrainedFiles } from './pretrained.js';
import { isRgbaImage } from './images.js';

/** What a caller sees for a trapped or dead worker; `detail` is the trap's own message. */
export function crashMessage(detail) {
  return `The computation ran out of memory or crashed inside WebAssembly (${detail}), so the `
    + 'worker running it was replaced by a fresh one. Try smaller sizes; anything loaded before '
    + '(a model, an index) has to be loaded again.';
}

function packageWorker() {
  // One literal `new Worker(new URL(…, import.meta.url))`, the form Vite and webpack 5 bundle.
  return new Worker(new URL('./worker-entry.js', import.meta.url), { type: 'module' });
}

function abortError(signal) {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(typeof reason === 'string' ? reason : 'the call was cancelled', 'AbortError');
}

export class LatentlabWorker extends EventTarget {
  #worker = null;
  #createWorker;
  #memoryBudget;
  /** The budget call of the current worker, which every call's answer waits on; or null. */
  #setup = null;
  #nextId = 1;
  /** id → {resolve, reject, onProgress} for calls still waiting on the current worker. */
  #pending = new Map();

  /**
   * `createWorker`: a function returning a new module Worker (default: the package's own,
   * serving the encoder operations); `memoryBudget`: bytes (a number, or the text of one, as a URL
   * parameter gives it), sent to every worker first.
   */
  constructor({ createWorker = packageWorker, memoryBudget = null } = {}) {
    super();
    if (typeof Worker !== 'function') {
      throw new Error('latentlab/worker needs Web Workers (a browser); in Node, use the package directly or node:worker_threads');
    }
    if (typeof createWorker !== 'function') throw new TypeError('createWorker must be a function returning a Worker');
    this.#createWorker = createWorker;
    this.#memoryBudget = memoryBudget;
    this.#start();
  }

  #start() {
    const worker = this.#createWorker();
    this.#worker = worker;
    worker.addEventListener('message', (event) => this.#onMessage(worker, event.data));
    // A worker that fails to load, or throws outside any call, would otherwise leave every
    // caller waiting forever; its state is unknown, so it is replaced too, but only when
    // the next call comes: one that cannot load would fail again at once, and again.
    worker.addEventListener('error', (event) => {
      event.preventDefault?.();
      const message = event.message || 'the latentlab worker failed';
      const trapped = /RuntimeError|unreachable|out of bounds/.test(message);
      this.#lose(worker, new Error(trapped ? crashMessage(message) : `the latentlab worker failed: ${message}`), { restart: false });
    });
    worker.addEventListener('messageerror', () => {
      this.#rejectAll(new Error('the latentlab worker sent a message that could not be read'));
    });
    this.#setup = null;
    if (this.#memoryBudget !== null) {
      const budget = this.#memoryBudget;
      // Sent first, so the worker sets it before any other call runs.
      this.#setup = this.#send('memory.budget', { bytes: Number(budget) }, {})
        .catch((err) => { throw new Error(`memoryBudget=${budget}: ${err.message}`); });
      this.#setup.catch(() => {}); // reported through the calls that wait on it
    }
  }

  /**
   * Runs `op` in the worker. Resolves with its result, rejects with Error(message).
   * Options: `onProgress` receives the progress values the worker reports for this call;
   * `transfer` lists buffers in `args` to move to the worker instead of copying them;
   * `signal` rejects the call when aborted (the worker finishes what it was doing, and its
   * answer is dropped).
   */
  call(op, args = {}, options = {}) {
    if (!this.#worker) this.#start();
    const answer = this.#send(op, args, options);
    if (!this.#setup) return answer;
    answer.catch(() => {}); // when the budget failed, that is the error the caller gets
    return this.#setup.then(() => answer);
  }

  #send(op, args, { onProgress, transfer = [], signal }) {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(id);
        reject(abortError(signal));
      };
      const settle = (fn) => (value) => {
        signal?.removeEventListener('abort', onAbort);
        fn(value);
      };
      this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject), onProgress });
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.#worker.postMessage({ id, op, args }, transfer);
      } catch (err) {
        this.#pending.get(id)?.reject(err instanceof Error ? err : new Error(String(err)));
        this.#pending.delete(id);
      }
    });
  }

  /** Calls still waiting for their answer. */
  get pending() {
    return this.#pending.size;
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
    const entry = this.#pending.get(data?.id);
    if (!entry) return;
    if ('progress' in data && !('ok' in data)) {
      entry.onProgress?.(data.progress);
      return;
    }
    this.#pending.delete(data.id);
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
    const entries = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject } of entries) reject(error);
  }
}

/** Most workers a pool starts by default: more instances than cores only cost memory. */
const DEFAULT_POOL_CAP = 4;

/** `navigator.hardwareConcurrency`, capped at 4 (1 where it is unknown). */
export function defaultPoolSize() {
  const cores = Number(globalThis.navigator?.hardwareConcurrency) || 1;
  return Math.max(1, Math.min(cores, DEFAULT_POOL_CAP));
}

/** Elements cannot be posted to a worker: the pool turns them into ImageBitmaps (moved, not copied). */
async function postable(image) {
  const element = ['HTMLImageElement', 'HTMLCanvasElement', 'SVGImageElement', 'HTMLVideoElement']
    .some((name) => typeof globalThis[name] === 'function' && image instanceof globalThis[name]);
  if (!element) return image;
  if (image instanceof globalThis.HTMLImageElement) await image.decode();
  return createImageBitmap(image);
}

export class WorkerPool {
  #workers;
  /** The files of the loaded encoder, kept to load it into a worker that replaces a dead one. */
  #encoder = null;
  #dim = 0;
  /** Per worker: the promise of loading the encoder into its current instance. */
  #ready;

  /**
   * `size` workers (default `defaultPoolSize()`), each a `LatentlabWorker` with the same
   * `createWorker` and `memoryBudget` options.
   */
  constructor({ size = defaultPoolSize(), ...workerOptions } = {}) {
    if (!Number.isInteger(size) || size < 1 || size > 64) throw new RangeError(`size must be a whole number from 1 to 64, got ${size}`);
    this.#workers = Array.from({ length: size }, () => new LatentlabWorker(workerOptions));
    this.#ready = this.#workers.map(() => null);
    this.#workers.forEach((worker, i) => worker.addEventListener('lost', () => {
      // The replacement gets the encoder now, so the next call finds it ready.
      if (this.#encoder) this.#ready[i] = this.#load(i);
    }));
  }

  get size() {
    return this.#workers.length;
  }

  /** The loaded encoder's embedding dimension (0 before `load`). */
  get dim() {
    return this.#dim;
  }

  /** The workers, for operations of an application's own worker script (`call`). */
  get workers() {
    return [...this.#workers];
  }

  #load(i) {
    const promise = this.#workers[i].call('encoder.load', this.#encoder);
    promise.catch(() => {}); // reported to the call that waits on it
    return promise;
  }

  /**
   * Downloads the encoder `source` names once (same sources and options as `Encoder.load`:
   * progress, cache, sha256, signal; or `{pretrained: folder}` with `Encoder.fromPretrained`'s
   * options) and loads it into every worker. Resolves with `{dim, text, image}`.
   */
  async load(source, options = {}) {
    const files = source?.pretrained !== undefined
      ? await fetchPretrainedFiles(source.pretrained, options)
      : await fetchEncoderFiles(source, options);
    options.signal?.throwIfAborted();
    this.#encoder = files;
    this.#ready = this.#workers.map((_, i) => this.#load(i));
    const [info] = await Promise.all(this.#ready);
    this.#dim = info.dim;
    return info;
  }

  /** Embeds `texts` across the workers: `{rows, cols, data}`, L2-normalised rows in order. */
  embedText(texts, { batchSize = 32, onProgress, signal } = {}) {
    if (!Array.isArray(texts)) return Promise.reject(new TypeError('texts must be an array of strings'));
    return this.#spread('embed.text', texts, batchSize, { onProgress, signal },
      async (chunk) => ({ args: { texts: chunk }, transfer: [] }));
  }

  /**
   * Embeds `images` across the workers: RGBA pixels ({width, height, data}) or ImageData
   * (copied to the worker, or moved with `transfer: true`), Blobs and Files (decoded in the
   * workers, in parallel), ImageBitmaps (moved), <img>/<canvas> elements (drawn here first),
   * URLs (fetched by the workers). `maxSide` scales decoded pictures down first.
   */
  embedImage(images, { batchSize = 4, onProgress, signal, transfer = false, maxSide = Infinity } = {}) {
    if (!Array.isArray(images)) return Promise.reject(new TypeError('images must be an array'));
    return this.#spread('embed.image', images, batchSize, { onProgress, signal }, async (chunk, first) => {
      const posted = await Promise.all(chunk.map((image) => postable(image)));
      const buffers = posted.flatMap((image) => {
        if (typeof ImageBitmap === 'function' && image instanceof ImageBitmap) return [image];
        if (transfer && isRgbaImage(image)) return [image.data.buffer];
        return [];
      });
      return { args: { images: posted, first, maxSide }, transfer: [...new Set(buffers)] };
    });
  }

  /**
   * Splits `items` into batches and hands them to whichever worker is free, so a slow
   * batch does not hold the others back; the rows come back in the items' order. A failed
   * batch (a bad image, a dead worker) fails the call, naming the batch; no partial matrix is
   * returned.
   */
  async #spread(op, items, batchSize, { onProgress, signal }, prepare) {
    if (!this.#encoder) throw new Error('no encoder is loaded in the pool (call load first)');
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a whole number ≥ 1, got ${batchSize}`);
    if (signal?.aborted) throw abortError(signal);
    const batches = [];
    for (let first = 0; first < items.length; first += batchSize) batches.push(first);
    const dim = this.#dim;
    const data = new Float32Array(items.length * dim);
    let next = 0;
    let done = 0;
    let failure = null;
    const run = async (w) => {
      while (failure === null && next < batches.length) {
        const first = batches[next++];
        const chunk = items.slice(first, first + batchSize);
        try {
          await this.#ready[w];
          const { args, transfer } = await prepare(chunk, first);
          const result = await this.#workers[w].call(op, args, { transfer, signal });
          if (result.rows !== chunk.length || result.cols !== dim) {
            throw new Error(`the worker answered ${result.rows} × ${result.cols} for ${chunk.length} items of dimension ${dim}`);
          }
          data.set(result.data, first * dim);
          done += chunk.length;
          onProgress?.({ done, total: items.length });
        } catch (err) {
          if (signal?.aborted) failure ??= abortError(signal);
          else {
            const what = op === 'embed.text' ? 'texts' : 'images';
            const range = chunk.length === 1 ? `${what.slice(0, -1)} ${first}` : `${what} ${first}–${first + chunk.length - 1}`;
            failure ??= new Error(`${range} (worker ${w + 1} of ${this.#workers.length}): ${err.message}`);
          }
        }
      }
    };
    await Promise.all(this.#workers.map((_, w) => run(w)));
    if (failure) throw failure;
    return { rows: items.length, cols: dim, data };
  }

  /** Stops every worker; waiting calls are rejected. */
  terminate() {
    for (const worker of this.#workers) worker.terminate();
    this.#encoder = null;
  }
}
