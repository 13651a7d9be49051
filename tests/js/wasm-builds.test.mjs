// Headless Chromium (which has relaxed SIMD) picks the package's relaxed-SIMD build, can be
// told to take the SIMD-only one, and both give onnxruntime's sentence embeddings there.
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
      const latentlab = await import('/pkg/index.js');
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
