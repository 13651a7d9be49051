// latentlab/worker in headless Chromium: a pool of two workers embeds Tux Paint stamps (PNG
// Blobs, decoded in the workers) and captions, giving the same rows as the encoder run on the
// page; a cancelled call stops; an image that cannot be decoded, and a worker that dies midway,
// fail the call by name, and the pool (the dead worker replaced, its encoder reloaded) answers
// the next call the same as before; a Hugging Face-style folder loads, and a download cancelled
// midway fails without leaving anything half-loaded. Under Node the pool says it needs Web Workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { WorkerPool } from '../../pkg/worker.js';
import { DIST, servedPackage } from './browser.mjs';

const served = servedPackage();
const STAMPS = readdirSync(join(DIST, 'stamps')).filter((f) => f.endsWith('.png')).sort().slice(0, 16);

// A worker script of the test's own, as an application writes one with serveWorker: image
// batches whose first picture is 13 pixels wide end as a trapped instance does (the host sees a
// WebAssembly.RuntimeError and marks the worker dead; thrown here, not by wasm); 'die' throws
// outside any call, as a worker killed by the browser reports itself.
const TEST_WORKER = `
import { serveWorker, encoderOps } from '/worker-host.js';
serveWorker({
  ...encoderOps,
  'embed.image': async (args, progress) => {
    const first = args.images[0];
    if (first && first.width === 13) throw new WebAssembly.RuntimeError('unreachable (the test worker traps on 13-pixel-wide images)');
    return encoderOps['embed.image'](args, progress);
  },
  die: () => { setTimeout(() => { throw new Error('the test worker died'); }); return new Promise(() => {}); },
});`;

/** A page on the package's origin with the package (`window.ll`), its worker module (`window.lw`), models and stamps. */
async function poolPage() {
  assert.ok(existsSync(join(DIST, 'models/manifest.json')), 'the models are copied into the site (scripts/build)');
  const page = await served.browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const workers = [];
  page.on('worker', (w) => workers.push(w));
  await page.route(`${served.url}/test.html`, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>pool</title>' }));
  await page.route(`${served.url}/test-worker.js`, (route) =>
    route.fulfill({ contentType: 'text/javascript', body: TEST_WORKER }));
  // A Hugging Face-style folder of the bundled MiniLM, for `load({pretrained})`.
  await page.route(/\/hub\/all-MiniLM-L6-v2\//, (route) => {
    const name = new URL(route.request().url()).pathname.replace(/^.*all-MiniLM-L6-v2\//, '');
    const files = { 'tokenizer.json': 'models/minilm-l6-v2/tokenizer.json', 'onnx/model.onnx': 'models/minilm-l6-v2/model.onnx' };
    if (name === 'config.json') return route.fulfill({ contentType: 'application/json', body: '{"model_type":"bert","hidden_size":384,"max_position_embeddings":512}' });
    if (files[name]) return route.fulfill({ path: join(DIST, files[name]) });
    return route.fulfill({ status: 404, body: 'not found' });
  });
  await page.route(/\/(models|stamps)\//, (route) => {
    const path = new URL(route.request().url()).pathname;
    route.fulfill({ path: join(DIST, decodeURIComponent(path)) });
  });
  await page.goto(`${served.url}/test.html`);
  await page.evaluate(async (stamps) => {
    window.ll = await import('/encoders.js');
    window.lw = await import('/worker.js');
    await window.ll.default();
    window.manifest = window.ll.parseManifest(await (await fetch('/models/manifest.json')).text());
    window.entry = (name) => window.manifest.models.find((m) => m.name === name);
    window.stamps = await Promise.all(stamps.map(async (f) => (await fetch(`/stamps/${f}`)).blob()));
    window.maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
  }, STAMPS);
  return { page, errors, workers };
}

test('a pool of two workers embeds stamps and captions as the page itself does', { timeout: 240_000 }, async () => {
  const { page, errors, workers } = await poolPage();
  try {
    const result = await page.evaluate(async () => {
      const { Encoder } = window.ll;
      const { WorkerPool } = window.lw;
      const image = window.entry('effl0-minilm-bridge');
      const text = window.entry(image.pairs_with);
      const pool = new WorkerPool({ size: 2 });
      const progress = [];
      const info = await pool.load({ text, image }, { baseUrl: '/models/' });
      const pooled = await pool.embedImage(window.stamps, { onProgress: (p) => progress.push(p) });
      const captions = window.stamps.map((_, i) => `a picture number ${i} from a children's drawing program`);
      const pooledText = await pool.embedText(captions, { batchSize: 5 });
      const encoder = await Encoder.load({ text, image }, { baseUrl: '/models/' });
      const direct = await encoder.embedImages(window.stamps);
      const directText = encoder.embedText(captions);
      encoder.free();
      pool.terminate();
      return {
        info, rows: pooled.rows, cols: pooled.cols, directRows: direct.rows,
        imageDiff: window.maxDiff(pooled.data, direct.data), textDiff: window.maxDiff(pooledText.data, directText.data),
        textRows: pooledText.rows, last: progress.at(-1), steps: progress.length,
      };
    });
    assert.deepEqual(result.info, { dim: result.cols, text: true, image: true });
    assert.equal(result.rows, 16);
    assert.equal(result.directRows, 16);
    assert.equal(result.textRows, 16);
    // Separate instances of the same wasm on the same pixels: the same numbers.
    assert.ok(result.imageDiff <= 1e-6, `image rows differ by ${result.imageDiff}`);
    assert.ok(result.textDiff <= 1e-6, `text rows differ by ${result.textDiff}`);
    assert.deepEqual(result.last, { done: 16, total: 16 });
    assert.equal(result.steps, 4, 'one progress report per batch of 4');
    assert.equal(workers.length, 2);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('cancelling, an undecodable picture and a dying worker fail the call by name; the pool goes on', { timeout: 240_000 }, async () => {
  const { page, errors, workers } = await poolPage();
  try {
    const result = await page.evaluate(async () => {
      const { WorkerPool } = window.lw;
      const message = (promise) => promise.then(() => 'no error', (e) => `${e.name}: ${e.message}`);
      const image = window.entry('effl0-minilm-bridge');
      const pool = new WorkerPool({ size: 2, createWorker: () => new Worker('/test-worker.js', { type: 'module' }) });
      const unloaded = await message(pool.embedImage(window.stamps));
      await pool.load(image, { baseUrl: '/models/' });
      const before = await pool.embedImage(window.stamps);

      const controller = new AbortController();
      const cancelled = await message(pool.embedImage(window.stamps, {
        batchSize: 1, signal: controller.signal, onProgress: () => controller.abort(),
      }));

      const notPicture = new Blob([new TextEncoder().encode('not a picture')], { type: 'image/png' });
      const undecodable = await message(pool.embedImage([...window.stamps.slice(0, 5), notPicture, ...window.stamps.slice(6)]));

      const lost = [];
      pool.workers.forEach((w, i) => w.addEventListener('lost', (e) => lost.push([i, e.detail.error.message])));
      const trap = { width: 13, height: 2, data: new Uint8Array(13 * 2 * 4) };
      const trapped = await message(pool.embedImage([...window.stamps.slice(0, 8), trap, ...window.stamps.slice(9)]));
      const afterTrap = await pool.embedImage(window.stamps);

      const died = await message(pool.workers[1].call('die'));
      const afterDeath = await pool.embedImage(window.stamps);
      const wrongType = await message(pool.embedImage([42]));
      pool.terminate();
      return {
        unloaded, cancelled, undecodable, trapped, died, lost, wrongType,
        sameAfterTrap: window.maxDiff(afterTrap.data, before.data),
        sameAfterDeath: window.maxDiff(afterDeath.data, before.data),
        rows: afterDeath.rows,
      };
    });
    assert.equal(result.unloaded, 'Error: no encoder is loaded in the pool (call load first)');
    assert.equal(result.cancelled, 'AbortError: signal is aborted without reason', 'the signal carries its own reason');
    assert.match(result.undecodable, /^Error: images 4–7 \(worker \d of 2\): image 5: 13 bytes \(image\/png\) that this browser cannot decode as an image$/);
    assert.match(result.trapped, /^Error: images 8–11 \(worker \d of 2\): The computation ran out of memory or crashed inside WebAssembly \(RuntimeError: unreachable \(the test worker traps/);
    assert.match(result.died, /^Error: the latentlab worker failed: .*the test worker died/);
    assert.equal(result.lost.length, 2, JSON.stringify(result.lost));
    assert.match(result.wrongType, /image 0: expected RGBA pixels \{width, height, data\}, ImageData, ImageBitmap.*got number/);
    assert.equal(result.sameAfterTrap, 0);
    assert.equal(result.sameAfterDeath, 0);
    assert.equal(result.rows, 16);
    assert.equal(workers.length, 4, 'two workers, and one replacement for each dead one');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('a pool loads a Hugging Face-style folder; a download cancelled while it runs fails and the pool loads again', { timeout: 240_000 }, async () => {
  const { page, errors } = await poolPage();
  try {
    const result = await page.evaluate(async () => {
      const { Encoder } = window.ll;
      const { WorkerPool } = window.lw;
      const message = (promise) => promise.then(() => 'no error', (e) => `${e.name}: ${e.message}`);
      const pool = new WorkerPool({ size: 2 });
      const controller = new AbortController();
      let seen = 0;
      const cancelled = await message(pool.load({ pretrained: '/hub/all-MiniLM-L6-v2/' }, {
        cache: false, signal: controller.signal,
        // Cancelled at the model's first progress report (however much of it has arrived by then).
        onProgress: ({ url }) => { if (url.endsWith('model.onnx') && seen++ === 0) controller.abort(); },
      }));
      const unloaded = await message(pool.embedText(['a cat']));
      const info = await pool.load({ pretrained: '/hub/all-MiniLM-L6-v2/' }, { cache: false });
      const captions = ['a cat on a sofa', 'a red car', 'a bowl of soup', 'two birds', 'a map of the world', 'a drum'];
      const pooled = await pool.embedText(captions, { batchSize: 2 });
      const encoder = await Encoder.fromPretrained('/hub/all-MiniLM-L6-v2/', { cache: false });
      const direct = encoder.embedText(captions);
      encoder.free();
      pool.terminate();
      return { cancelled, unloaded, info, diff: window.maxDiff(pooled.data, direct.data), rows: pooled.rows };
    });
    assert.equal(result.cancelled, 'AbortError: signal is aborted without reason');
    assert.equal(result.unloaded, 'Error: no encoder is loaded in the pool (call load first)', 'nothing half-loaded');
    assert.deepEqual(result.info, { dim: 384, text: true, image: false });
    assert.equal(result.rows, 6);
    assert.ok(result.diff <= 1e-6, `${result.diff}`);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

test('under Node, where there are no Web Workers, the pool says so', () => {
  assert.throws(() => new WorkerPool({ size: 2 }), /latentlab\/worker needs Web Workers \(a browser\)/);
});
