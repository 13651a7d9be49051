// Headless Chromium (which has relaxed SIMD) picks the package's relaxed-SIMD build, can be
// told to take the SIMD-only one, and both give onnxruntime's sentence embeddings there. A page
// that imports only the core (`latentlab`) downloads the core module and never the models one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { serveStatic } from './static-server.mjs';
import { launch } from './browser.mjs';
import { readNpy, cosine } from './npy.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
let server;
let browser;
before(async () => {
  server = await serveStatic(root);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Initialises the package in a fresh page with `options` and embeds the fixture sentences. */
async function embedSentences(options) {
  const page = await browser.newPage();
  try {
    await page.goto(`${server.url}/pkg/package.json`);
    return await page.evaluate(async (options) => {
      const latentlab = await import('/pkg/encoders.js');
      await latentlab.default(options);
      const manifest = latentlab.parseManifest(await (await fetch('/models/manifest.json')).text());
      const entry = manifest.models.find((m) => m.name === 'minilm-l6-v2');
      const encoder = await latentlab.Encoder.load(entry, { baseUrl: `${location.origin}/models/`, cache: false });
      const { sentences } = await (await fetch('/tests/fixtures/encoders/sentences.json')).json();
      const embeddings = encoder.embedText(sentences);
      return {
        variant: latentlab.wasmVariant(),
        supported: latentlab.relaxedSimdSupported(),
        rows: embeddings.rows,
        cols: embeddings.cols,
        data: Array.from(embeddings.data),
      };
    }, options);
  } finally {
    await page.close();
  }
}

const expected = readNpy(`${root}tests/fixtures/encoders/text_embeddings.npy`);

function assertMatchesOnnxruntime(result) {
  assert.deepEqual([result.rows, result.cols], expected.shape);
  const { cols } = result;
  for (let i = 0; i < result.rows; i++) {
    const ours = Float32Array.from(result.data.slice(i * cols, (i + 1) * cols));
    const theirs = expected.data.subarray(i * cols, (i + 1) * cols);
    assert.ok(cosine(ours, theirs) >= 0.9999, `${result.variant}, sentence ${i}: ${cosine(ours, theirs)}`);
  }
}

test('Chromium gets the relaxed-SIMD build, and it matches onnxruntime', async () => {
  const result = await embedSentences({});
  assert.equal(result.supported, true, 'headless Chromium validates relaxed SIMD');
  assert.equal(result.variant, 'relaxed-simd');
  assertMatchesOnnxruntime(result);
});

test('init({ relaxedSimd: false }) gets the SIMD-only build, and it matches onnxruntime', async () => {
  const result = await embedSentences({ relaxedSimd: false });
  assert.equal(result.variant, 'simd128');
  assertMatchesOnnxruntime(result);
});

/** The wasm files a fresh page requests while it runs `body` (a function of the page). */
async function wasmRequests(body) {
  const page = await browser.newPage();
  const requested = [];
  page.on('request', (r) => { if (r.url().endsWith('.wasm')) requested.push(r.url().split('/').pop()); });
  try {
    await page.goto(`${server.url}/pkg/package.json`);
    const result = await page.evaluate(body);
    return { requested, result };
  } finally {
    await page.close();
  }
}

test('a page with plans only downloads the core module, not tract and tokenizers', async () => {
  const { requested, result } = await wasmRequests(async () => {
    const { default: init, Plan } = await import('/pkg/index.js');
    await init();
    const plan = Plan.fromJson(JSON.stringify({
      title: 't', steps: [{ id: 'a', text: 'A', duration: '2 minutes' }, { id: 'b', text: 'B', duration: '1 minute' }],
      constraints: [['a', 'b']],
    }));
    return plan.analyze().optimal_seconds;
  });
  assert.deepEqual(result, [180, 180]);
  assert.deepEqual(requested, ['latentlab_relaxed_bg.wasm']);
});

test('Encoder.load fetches the models module itself, once, and only then', async () => {
  const { requested, result } = await wasmRequests(async () => {
    const core = await import('/pkg/index.js');
    await core.default();
    const { Encoder } = await import('/pkg/encoders.js');
    const manifest = await (await fetch('/models/manifest.json')).json();
    const entry = manifest.models.find((m) => m.name === 'minilm-l6-v2');
    const encoder = await Encoder.load(entry, { baseUrl: `${location.origin}/models/`, cache: false });
    const again = await Encoder.load(entry, { baseUrl: `${location.origin}/models/`, cache: false });
    return [encoder.embedText(['tea']).cols, again.dim];
  });
  assert.deepEqual(result, [384, 384]);
  assert.deepEqual(requested, ['latentlab_relaxed_bg.wasm', 'latentlab_models_relaxed_bg.wasm']);
});
