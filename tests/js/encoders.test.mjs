// The npm package's encoders under Node: the wasm build of tract must give onnxruntime's
// embeddings (cosine ≥ 0.9999) on the fixtures' sentences and photos, through the same
// Encoder.load path a page uses (sha256 checked against the manifest). The file runs once per
// wasm build: itself under the build this Node picks, then again in a child process under the
// other one (relaxed SIMD changes rounding in every matrix product).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  Encoder, parseManifest, fuseQuery, evaluateRetrieval, TextEmbedder, FusionModel,
  relaxedSimdSupported, wasmVariant,
} from 'latentlab/encoders';
import { EmbeddingIndex } from 'latentlab';
import { decodePng } from './png.mjs';
import { readNpy, cosine } from './npy.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = `${root}tests/fixtures/encoders/`;
const manifest = parseManifest(readFileSync(`${root}models/manifest.json`, 'utf8'));
// Node's fetch cannot read files: hand Encoder.load one that can.
const fileFetch = async (url) => new Response(readFileSync(fileURLToPath(url)));
const options = { baseUrl: `file://${root}models/`, fetch: fileFetch, cache: false };

const inChild = process.env.LATENTLAB_OTHER_BUILD === '1';

test('this process runs the wasm build it should', () => {
  const expected = process.env.LATENTLAB_EXPECT_VARIANT ?? (relaxedSimdSupported() ? 'relaxed-simd' : 'simd128');
  assert.equal(wasmVariant(), expected);
});

test('every test of this file passes under the other wasm build too', { skip: inChild }, () => {
  // Node 20 runs relaxed SIMD only behind a flag; where it is native, refuse it instead.
  const other = relaxedSimdSupported()
    ? { args: [], env: { LATENTLAB_RELAXED_SIMD: '0' }, variant: 'simd128' }
    : { args: ['--experimental-wasm-relaxed-simd'], env: {}, variant: 'relaxed-simd' };
  // Without the test runner's context variable, the child reports in plain TAP.
  const { NODE_TEST_CONTEXT, ...env } = process.env;
  const child = spawnSync(process.execPath, [...other.args, fileURLToPath(import.meta.url)], {
    encoding: 'utf8',
    env: { ...env, ...other.env, LATENTLAB_OTHER_BUILD: '1', LATENTLAB_EXPECT_VARIANT: other.variant },
  });
  assert.equal(child.status, 0, `under ${other.variant}:\n${child.stdout}\n${child.stderr}`);
  assert.match(child.stdout, /^# pass [1-9]/m);
  assert.match(child.stdout, /^# fail 0$/m);
});

const rows = (m) => Array.from({ length: m.rows }, (_, i) => m.data.subarray(i * m.cols, (i + 1) * m.cols));

test('text embeddings in wasm match onnxruntime', async () => {
  const encoder = await Encoder.load(manifest.models.find((m) => m.name === 'minilm-l6-v2'), options);
  const { sentences, token_ids } = JSON.parse(readFileSync(`${fixtures}sentences.json`, 'utf8'));
  assert.deepEqual(encoder.text.tokenIds(sentences), token_ids);
  const ours = encoder.embedText(sentences);
  const theirs = readNpy(`${fixtures}text_embeddings.npy`);
  assert.deepEqual([ours.rows, ours.cols], theirs.shape);
  const expected = rows({ rows: theirs.shape[0], cols: theirs.shape[1], data: theirs.data });
  rows(ours).forEach((row, i) => assert.ok(cosine(row, expected[i]) >= 0.9999, `sentence ${i}: ${cosine(row, expected[i])}`));
  assert.throws(() => encoder.embedText(['fine', '']), /text 1 is empty/);
  encoder.free();
});

test('image embeddings in wasm match onnxruntime, and search finds the cat', async () => {
  const encoder = await Encoder.loadPair(manifest, 'effl0-minilm-bridge', options);
  const { gallery_files } = JSON.parse(readFileSync(`${fixtures}images.json`, 'utf8'));
  const images = gallery_files.map((f) => decodePng(`${fixtures}letterboxed/${f.replace(/\.\w+$/, '.png')}`));
  const ours = encoder.embedImage(images);
  const theirs = readNpy(`${fixtures}image_embeds.npy`);
  const expected = rows({ rows: theirs.shape[0], cols: theirs.shape[1], data: theirs.data });
  rows(ours).forEach((row, i) => assert.ok(cosine(row, expected[i]) >= 0.9999, `${gallery_files[i]}: ${cosine(row, expected[i])}`));

  const index = new EmbeddingIndex({ model: 'effl0-minilm-bridge' });
  index.add(gallery_files, ours.data);
  const query = encoder.embedText(['a photo of a cat']);
  const [best] = index.search(query.data, { k: 1 });
  assert.equal(best.id, 'chelsea.png');
  const fused = fuseQuery(ours.data.subarray(0, ours.cols), query.data, 0.5);
  assert.equal(fused.length, ours.cols);
  const report = evaluateRetrieval(ours.data, ours.data, ours.rows, ours.cols);
  assert.equal(report.recall_at_1, 1);
  encoder.free();
});

test('a wrong sha256 or a corrupt model is a clear error', async () => {
  const entry = { ...manifest.models.find((m) => m.name === 'minilm-l6-v2'), sha256: '0'.repeat(64) };
  await assert.rejects(Encoder.load(entry, options), /sha256 is [0-9a-f]{64}, expected 0{64}/);
  const unchecked = { ...entry, sha256: '' };
  assert.throws(
    () => TextEmbedder.fromBytes(unchecked, new Uint8Array([1, 2, 3]), readFileSync(`${root}models/minilm-l6-v2/tokenizer.json`)),
    /not a readable ONNX model/,
  );
  assert.throws(() => TextEmbedder.fromBytes({ name: 'x' }, new Uint8Array(), new Uint8Array()), /bad model entry/);
});

test('a missing model file, or a web page where a model or tokenizer should be, is named with what came back', async () => {
  // A host like many static ones: a missing path is answered with its HTML page, with status
  // 200 (a single-page-app fallback) or 404.
  const page = '<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>Nothing here</body></html>';
  const server = createServer((req, res) => {
    if (req.url === '/clip/text_model.onnx') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from([8, 7, 18, 4]));
    } else if (req.url === '/clip/not-found.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('Not Found');
    } else {
      res.writeHead(req.url.startsWith('/gone/') ? 404 : 200, { 'content-type': 'text/html' });
      res.end(page);
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const base = `http://127.0.0.1:${server.address().port}`;
  const load = (source) => Encoder.load({ dim: 512, ...source }, { cache: false });
  try {
    await assert.rejects(
      load({ textUrl: `${base}/clip/text_model.onnx`, tokenizerUrl: `${base}/clip/tokenizer.json` }),
      (err) => err.message === `the tokenizer at ${base}/clip/tokenizer.json is not JSON: the server sent ` +
        'an HTML page (a server sends one for a file it does not have); check the URL');
    await assert.rejects(
      load({ textUrl: `${base}/clip/text_model.onnx`, tokenizerUrl: `${base}/clip/not-found.txt` }),
      /^Error: the tokenizer at \S+\/clip\/not-found\.txt is not JSON: the server sent text beginning "Not Found"; check the URL$/);
    await assert.rejects(
      load({ visionUrl: `${base}/clip/vision_model.onnx` }),
      /^Error: the model at \S+\/clip\/vision_model\.onnx is not an ONNX model: the server sent an HTML page/);
    await assert.rejects(
      load({ visionUrl: `${base}/gone/vision_model.onnx` }),
      (err) => err.message === `${base}/gone/vision_model.onnx was not found (the server answered HTTP 404 Not Found)`);
  } finally {
    server.close();
  }
});

test("latentlab's wasm matrix kernel matches onnxruntime through the operations tract fuses into it", () => {
  // tests/fixtures/kernel_ops/make_kernel_ops.py: products with bias, clip, leaky relu, scalar
  // and per-feature steps and a residual sum, at widths that are not whole kernel tiles.
  const dir = `${root}tests/fixtures/kernel_ops/`;
  const model = FusionModel.fromBytes('kernel-ops', readFileSync(`${dir}kernel_ops.onnx`));
  const image = readNpy(`${dir}image_embeds.npy`);
  const text = readNpy(`${dir}text_embeds.npy`);
  const expected = readNpy(`${dir}expected_query_embeds.npy`);
  const cols = image.shape[1];
  for (const rows of [1, 2, 3, 4, 5, 8, 9, 17]) {
    const fused = model.fuse(image.data.subarray(0, rows * cols), text.data.subarray(0, rows * cols), rows, cols);
    for (let r = 0; r < rows; r++) {
      const want = expected.data.subarray(r * cols, (r + 1) * cols);
      const norm = Math.hypot(...want);
      const worst = Math.max(...fused.data.subarray(r * cols, (r + 1) * cols).map((x, c) => Math.abs(x - want[c] / norm)));
      assert.ok(worst < 2e-6, `${rows} rows: row ${r} is off by ${worst}`);
    }
  }
  model.free();
});

test('a MagicLens-style fusion ONNX plugs in: FusionModel matches onnxruntime', () => {
  const dir = `${root}tests/fixtures/fusion_tiny/`;
  const fusion = FusionModel.fromBytes('fusion-tiny', readFileSync(`${dir}fusion.onnx`));
  const image = readNpy(`${dir}image_embeds.npy`);
  const text = readNpy(`${dir}text_embeds.npy`);
  const expected = readNpy(`${dir}expected_query_embeds.npy`);
  const [rows, cols] = image.shape;
  const fused = fusion.fuse(image.data, text.data, rows, cols);
  assert.equal(fused.rows, rows);
  for (let r = 0; r < rows; r++) {
    const row = fused.data.subarray(r * cols, (r + 1) * cols);
    assert.ok(cosine(row, expected.data.subarray(r * cols, (r + 1) * cols)) > 0.9999);
    assert.ok(Math.abs(cosine(row, row) - 1) < 1e-6);
  }
  assert.throws(() => fusion.fuse(image.data, text.data.subarray(0, cols), rows, cols), /text embeddings/);
  assert.throws(() => FusionModel.fromBytes('vision', readFileSync(`${root}tests/fixtures/clip_tiny/vision_model.onnx`)),
    /vision has no input "image_embeds"/);
  fusion.free();
});
