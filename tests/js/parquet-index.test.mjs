// Issue 18's export step end to end: the native CLI embeds a Parquet table (pyarrow's file,
// tests/fixtures/parquet/) and turns the embeddings into index bytes (`latentlab index
// build`); the npm package loads those bytes with EmbeddingIndex.fromBytes, embeds the query
// in wasm as a page would, and gives the same top-5 as `latentlab index search`, for a text
// index (f32 and int8) and for a picture index searched by text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddingIndex } from 'latentlab';
import { Encoder, parseManifest } from 'latentlab/encoders';

const root = fileURLToPath(new URL('../../', import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
const cli = join(targetDir, 'debug', 'latentlab');
const fixtures = join(root, 'tests', 'fixtures', 'parquet');
const QUERIES = ['a rocket taking off', 'someone eating', 'an animal running fast', 'a cat', 'a baby'];

function latentlab(...args) {
  const run = spawnSync(cli, args, { cwd: root, encoding: 'utf8' });
  assert.equal(run.status, 0, `latentlab ${args.join(' ')}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

async function textEncoder() {
  const manifest = parseManifest(readFileSync(join(root, 'models', 'manifest.json'), 'utf8'));
  const fileFetch = async (url) => new Response(readFileSync(fileURLToPath(url)));
  return Encoder.load(manifest.models.find((m) => m.name === 'minilm-l6-v2'),
    { baseUrl: `file://${root}models/`, fetch: fileFetch, cache: false });
}

test('the CLI\'s index bytes from a Parquet table answer in the npm package as in the CLI', async (t) => {
  if (!existsSync(cli)) {
    assert.fail(`${cli} is missing: cargo test (or cargo build) builds it before the JS tests`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'latentlab-parquet-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const encoder = await textEncoder();
  t.after(() => encoder.free());
  const queries = encoder.embedText(QUERIES);

  latentlab('embed', 'text', '--input', join(fixtures, 'texts.parquet'), '--column', 'text',
    '--id-column', 'name', '--output', join(dir, 'texts.parquet'));
  // Pictures by relative paths, one of them missing: built with its row left out.
  const images = latentlab('embed', 'image', '--input', join(fixtures, 'images.parquet'), '--column', 'path',
    '--id-column', 'name', '--output', join(dir, 'images.parquet'));
  assert.equal(images.errors, 1);
  const cases = [
    ['texts.parquet', 'f32', 'minilm-l6-v2', []],
    ['texts.parquet', 'int8', 'minilm-l6-v2', []],
    ['images.parquet', 'f32', 'effl0-minilm-bridge', ['--skip-errors']],
  ];
  for (const [table, storage, model, extra] of cases) {
    const file = join(dir, `${table}.${storage}.bin`);
    const built = latentlab('index', 'build', '--input', join(dir, table), '--out', file, '--storage', storage, ...extra);
    const index = EmbeddingIndex.fromBytes(readFileSync(file), { model });
    assert.equal(index.size, built.n);
    assert.equal(index.storage, storage);
    assert.equal(index.dim, 384);
    const hits = index.searchBatch(queries.data, { k: 5 });
    QUERIES.forEach((query, i) => {
      const native = latentlab('index', 'search', '--index', file, '--query', query, '-k', '5');
      assert.deepEqual(hits[i].map((h) => h.id), native.results.map((r) => r.id), `${table} ${storage}: ${query}`);
      // The query was embedded in wasm here and natively there: equal to float precision.
      hits[i].forEach((h, j) => assert.ok(Math.abs(h.score - native.results[j].score) < 1e-5));
    });
    assert.throws(() => EmbeddingIndex.fromBytes(readFileSync(file), { model: 'clip' }), /holds embeddings of/);
    index.free();
  }
});
