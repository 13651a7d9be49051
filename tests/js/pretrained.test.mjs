// Encoder.fromPretrained on model folders laid out as Hugging Face and transformers.js publish
// them, made here from the bundled MiniLM (a BERT-style feature-extraction folder) and the tiny
// random CLIP pair (tests/fixtures/clip_tiny/, labelled random): the same embeddings as the
// hand-written manifest entries give, from a local folder (Node) and over HTTP; missing files,
// a q8 request without a quantised export and an unsupported preprocessor are refused by name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Encoder, parseManifest } from 'latentlab/encoders';
import { serveStatic } from './static-server.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const CLIP = join(repo, 'tests/fixtures/clip_tiny');
const work = mkdtempSync(join(tmpdir(), 'latentlab-pretrained-'));
const minilmDir = join(work, 'all-MiniLM-L6-v2');
const clipDir = join(work, 'clip-tiny');
let server;

const put = (dir, name, bytes) => {
  mkdirSync(join(dir, name, '..'), { recursive: true });
  writeFileSync(join(dir, name), bytes);
};

before(async () => {
  put(minilmDir, 'config.json', JSON.stringify({ model_type: 'bert', hidden_size: 384, max_position_embeddings: 512 }));
  copyFileSync(join(repo, 'models/minilm-l6-v2/tokenizer.json'), join(minilmDir, 'tokenizer.json'));
  put(minilmDir, 'onnx/model.onnx', readFileSync(join(repo, 'models/minilm-l6-v2/model.onnx')));
  put(clipDir, 'config.json', JSON.stringify({ model_type: 'clip', projection_dim: 16, text_config: { max_position_embeddings: 77 }, vision_config: {} }));
  copyFileSync(join(CLIP, 'tokenizer.json'), join(clipDir, 'tokenizer.json'));
  put(clipDir, 'onnx/text_model.onnx', readFileSync(join(CLIP, 'text_model.onnx')));
  put(clipDir, 'onnx/vision_model.onnx', readFileSync(join(CLIP, 'vision_model.onnx')));
  put(clipDir, 'preprocessor_config.json', JSON.stringify({
    size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 }, do_center_crop: true, resample: 3,
    image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
  }));
  server = await serveStatic(work, { csp: null });
});
after(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

const SENTENCES = ['a cat sleeping on a sofa', 'a rocket lifting off', 'fresh bread from the oven'];
const maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

function picture(seed) {
  const data = new Uint8Array(40 * 30 * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 256;
  return { width: 40, height: 30, data };
}

test('a BERT-style folder gives the bundled entry\'s embeddings, from a path and over HTTP', async () => {
  const manifest = parseManifest(readFileSync(join(repo, 'models/manifest.json'), 'utf8'));
  // The bundled model straight from models/ (its entry's paths are relative to that folder).
  const files = { 'minilm-l6-v2/model.onnx': join(repo, 'models/minilm-l6-v2/model.onnx'), 'minilm-l6-v2/tokenizer.json': join(repo, 'models/minilm-l6-v2/tokenizer.json') };
  const reference = await Encoder.load(manifest.models.find((m) => m.name === 'minilm-l6-v2'), {
    cache: false,
    fetch: async (url) => new Response(readFileSync(files[url])),
  });
  const want = reference.embedText(SENTENCES);
  for (const folder of [minilmDir, `${server.url}/all-MiniLM-L6-v2`]) {
    const encoder = await Encoder.fromPretrained(folder);
    assert.equal(encoder.dim, 384);
    assert.equal(encoder.text.name, 'all-MiniLM-L6-v2');
    const got = encoder.embedText(SENTENCES);
    assert.ok(maxDiff(got.data, want.data) <= 1e-6, `${folder}: ${maxDiff(got.data, want.data)}`);
    encoder.free();
  }
  reference.free();
});

test('a CLIP folder gives the pair by URL\'s embeddings, text and pictures', async () => {
  const url = `${server.url}/clip-tiny/`;
  const byUrl = await Encoder.load({
    textUrl: `${url}onnx/text_model.onnx`, tokenizerUrl: `${url}tokenizer.json`, visionUrl: `${url}onnx/vision_model.onnx`, dim: 16,
  }, { cache: false });
  for (const folder of [clipDir, url]) {
    const encoder = await Encoder.fromPretrained(folder, { cache: false });
    assert.equal(encoder.dim, 16);
    assert.ok(maxDiff(encoder.embedText(SENTENCES).data, byUrl.embedText(SENTENCES).data) <= 1e-6);
    const pictures = [picture(1), picture(2)];
    assert.ok(maxDiff(encoder.embedImage(pictures).data, byUrl.embedImage(pictures).data) <= 1e-6);
    encoder.free();
  }
  byUrl.free();
});

test('missing files, a q8 request without a quantised export and bad options are refused by name', async () => {
  await assert.rejects(Encoder.fromPretrained(minilmDir, { dtype: 'q8' }),
    { message: `${minilmDir}/onnx/model_quantized.onnx was not found (dtype 'q8' reads the _quantized files; is there a quantised export?)` });
  await assert.rejects(Encoder.fromPretrained(`${server.url}/all-MiniLM-L6-v2`, { dtype: 'q8', cache: false }),
    /all-MiniLM-L6-v2\/onnx\/model_quantized\.onnx was not found/);
  await assert.rejects(Encoder.fromPretrained(minilmDir, { dtype: 'int4' }), { message: "dtype must be 'fp32' or 'q8', not \"int4\"" });
  await assert.rejects(Encoder.fromPretrained(join(work, 'nothing-here')), { message: `${join(work, 'nothing-here')}/config.json was not found` });
  const empty = join(work, 'no-tokenizer');
  put(empty, 'config.json', '{"hidden_size": 8}');
  await assert.rejects(Encoder.fromPretrained(empty), /has neither tokenizer\.json \(a text model\) nor preprocessor_config\.json \(an image model\)/);
  const vit = join(work, 'vit');
  put(vit, 'config.json', '{"hidden_size": 8}');
  put(vit, 'preprocessor_config.json', JSON.stringify({ size: { shortest_edge: 256 }, crop_size: 224 }));
  await assert.rejects(Encoder.fromPretrained(vit), /resizing the shorter side to 256 and then cropping 224 is not supported/);
  put(vit, 'config.json', 'not json');
  await assert.rejects(Encoder.fromPretrained(vit), /vit\/config\.json is not JSON/);
  await assert.rejects(Encoder.fromPretrained(42), /fromPretrained needs the model folder as a URL or \(Node\) a path/);
});
