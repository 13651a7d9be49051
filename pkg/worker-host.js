// The inside of a latentlab worker: owns one wasm instance and answers the messages of
// `LatentlabWorker` (latentlab/worker). Protocol: the page posts {id, op, args}; the worker
// answers {id, ok: true, result} or {id, ok: false, error: message}, with `fatal: true` once the
// wasm instance has trapped and the worker must be replaced; long operations may post
// {id, progress} before their answer.
//
// The package's own worker (worker-entry.js) serves `encoderOps`; an application's worker adds
// its own operations: `serveWorker({...encoderOps, 'my.op': (args, progress) => …})`.
//
// Two wasm modules: the worker instantiates the core module (`latentlab`) before its first
// answer, and the models module (`latentlab/encoders`) only when an operation wrapped by
// `withModels` first runs, so a worker that only analyses plans never downloads tract.
import init, { setMemoryBudget, version } from './index.js';
import { setMemoryBudget as setModelsMemoryBudget } from './latentlab_models.js';
import { initModels } from './models-init.js';
import { Encoder } from './encoder.js';
import { toImageInput } from './images.js';

/** What `serveWorker` was given for `init`, and the budget last set: both apply to the models module too. */
let hostInitOptions = {};
let budgetBytes = null;
let modelsReady = null;

function ensureModels() {
  modelsReady ??= initModels(hostInitOptions).then(() => {
    if (budgetBytes !== null) setModelsMemoryBudget(budgetBytes);
  });
  return modelsReady;
}

/**
 * `ops` with every operation waiting for the models module first (instantiated once, on the
 * first such call, with `serveWorker`'s init options and the worker's memory budget).
 */
export function withModels(ops) {
  return Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, async (args, progress) => {
    await ensureModels();
    return op(args, progress);
  }]));
}

/** A result whose listed buffers move to the page instead of being copied. */
class Transfer {
  constructor(value, buffers) {
    this.value = value;
    this.buffers = buffers;
  }
}

/** Marks `value` to be posted with `buffers` transferred (see `serveWorker`). */
export function transfer(value, buffers) {
  return new Transfer(value, buffers);
}

/** Turns anything thrown (wasm errors are Error objects, but be safe) into a message. */
function messageOf(err) {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : String(err);
}

/**
 * Whether `err` left the wasm instance unusable: a trap (a failed allocation or a panic aborts
 * with `unreachable`; out-of-bounds access) or a stack overflow stops Rust mid-call, with its
 * stack pointer, locks and allocator state wherever they were. Errors the facade returns are
 * plain Errors and leave it sound.
 */
export function isTrap(err) {
  return err instanceof WebAssembly.RuntimeError
    || (err instanceof RangeError && /call stack/i.test(err.message));
}

/** The encoder this worker holds, loaded by 'encoder.load'. */
let encoder = null;

function loaded(kind) {
  if (!encoder) throw new Error('no encoder is loaded in this worker (call load first)');
  if (kind === 'text' && !encoder.text) throw new Error('the loaded encoder has no text model');
  if (kind === 'image' && !encoder.image) throw new Error('the loaded encoder has no image model');
  return encoder;
}

/** A matrix whose data moves to the page. */
const moved = (matrix) => transfer({ rows: matrix.rows, cols: matrix.cols, data: matrix.data }, [matrix.data.buffer]);

/** Operations every latentlab worker understands: its version and memory budget, and encoders. */
export const encoderOps = {
  version: () => version(),
  /** The client sends it first, before any other call (`memoryBudget` option); it holds for both modules. */
  'memory.budget': async ({ bytes }) => {
    setMemoryBudget(bytes);
    budgetBytes = bytes;
    if (modelsReady) {
      await modelsReady;
      setModelsMemoryBudget(bytes);
    }
  },
  ...withModels({
    /** `{entries, files}` as `fetchEncoderFiles` returns them: the page downloads once for all workers. */
    'encoder.load': ({ entries, files }) => {
      const next = Encoder.fromFiles({ entries, files });
      encoder?.free();
      encoder = next;
      return { dim: encoder.dim, text: encoder.text !== null, image: encoder.image !== null };
    },
    'encoder.free': () => {
      encoder?.free();
      encoder = null;
    },
    'embed.text': ({ texts }) => moved(loaded('text').embedText(texts)),
    /** `images`: RGBA pixels, ImageData, ImageBitmap, Blob or URL; `first`: the first one's position in the caller's list, for messages. */
    'embed.image': async ({ images, maxSide = Infinity, first = 0 }) => {
      const enc = loaded('image');
      const pixels = [];
      for (const [i, image] of images.entries()) pixels.push(await toImageInput(image, { maxSide, label: `image ${first + i}` }));
      return moved(enc.embedImage(pixels));
    },
  }),
};

/**
 * Answers the page's messages with `ops` (name → `(args, progress) => result`, sync or async;
 * `progress(value)` posts a progress message for the call). Instantiates the core wasm module
 * once, with `initOptions` for the package's `init`; every message waits for it. Operations that
 * use encoders or the language model must be wrapped in `withModels` (encoderOps' are).
 */
export function serveWorker(ops = encoderOps, initOptions = {}) {
  hostInitOptions = initOptions;
  const ready = init(initOptions);
  /** The trap that broke this instance; every later call is refused with it. */
  let broken = null;
  self.addEventListener('message', async (event) => {
    const { id, op, args } = event.data ?? {};
    try {
      await ready;
      if (broken) throw broken;
      const handler = Object.hasOwn(ops, op) ? ops[op] : null;
      if (!handler) throw new Error(`unknown operation: ${op}`);
      const progress = (value) => self.postMessage({ id, progress: value });
      const result = await handler(args ?? {}, progress);
      if (result instanceof Transfer) self.postMessage({ id, ok: true, result: result.value }, result.buffers);
      else self.postMessage({ id, ok: true, result });
    } catch (err) {
      if (isTrap(err)) broken ??= err;
      // `fatal` tells the client to replace this worker.
      self.postMessage(broken
        ? { id, ok: false, error: String(broken), fatal: true }
        : { id, ok: false, error: messageOf(err) });
    }
  });
}
