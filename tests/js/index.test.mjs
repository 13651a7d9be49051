// The package's EmbeddingIndex under Node: string ids and JSON metadata, filtered top-k,
// add / upsert / remove / get, batched queries, f16 and int8 storage with recall@10 against
// f32 on real embeddings (Tux Paint's stamp captions through the bundled MiniLM), and the byte
// format: a round trip per storage, another model's index and damaged bytes refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EmbeddingIndex } from 'latentlab';
import { Encoder, parseManifest } from 'latentlab/encoders';

const root = fileURLToPath(new URL('../../', import.meta.url));
const STAMPS = '/usr/share/tuxpaint/stamps';

const vec = (...rows) => new Float32Array(rows.flat());

function animals(options) {
  const index = new EmbeddingIndex({ model: 'toy', ...options });
  index.add(['cat', 'dog', 'car'], vec([1, 0.2, 0], [0.9, 0.3, 0.1], [-0.2, 0.1, 1]),
    [{ kind: 'animal', legs: 4 }, { kind: 'animal', legs: 4 }, { kind: 'vehicle', tags: ['red'] }]);
  return index;
}

test('ids, metadata, filter and threshold', () => {
  const index = animals();
  assert.equal(index.size, 3);
  assert.equal(index.dim, 3);
  assert.equal(index.model, 'toy');
  assert.equal(index.storage, 'f32');
  assert.deepEqual(index.ids(), ['cat', 'dog', 'car']);
  const hits = index.search(vec([1, 0.25, 0]), { k: 2 });
  assert.deepEqual(hits.map((h) => h.id), ['cat', 'dog']);
  assert.deepEqual(hits[0].metadata, { kind: 'animal', legs: 4 });
  assert.ok(hits[0].score > hits[1].score && hits[0].score <= 1 + 1e-6);
  const seen = [];
  const vehicles = index.search(vec([1, 0.25, 0]), {
    k: 5, filter: (id, metadata) => { seen.push(id); return metadata.kind === 'vehicle'; },
  });
  assert.deepEqual(vehicles.map((h) => h.id), ['car']);
  assert.deepEqual(vehicles[0].metadata.tags, ['red']);
  assert.deepEqual(seen, ['cat', 'dog', 'car'], 'the filter sees candidates best first');
  assert.deepEqual(index.search(vec([1, 0.25, 0]), { threshold: 0.9 }).map((h) => h.id), ['cat', 'dog']);
  assert.equal(index.search(vec([1, 0.25, 0])).length, 3, 'k defaults to 10');
  assert.throws(() => index.search(vec([1, 0.25, 0]), { filter: () => { throw new Error('no network'); } }),
    /the filter failed on id "cat": no network/);
  const item = index.get('car');
  assert.deepEqual(item.metadata, { kind: 'vehicle', tags: ['red'] });
  assert.ok(Math.abs(Math.hypot(...item.vector) - 1) < 1e-6, 'vectors are kept normalised');
  assert.equal(index.get('nobody'), undefined);
  assert.equal(index.has('dog'), true);
  index.free();
});

test('add refuses as a whole, upsert replaces in place, remove compacts', () => {
  const index = animals();
  assert.throws(() => index.add(['cow', 'cat'], vec([0, 1, 0], [0, 1, 0])), /id "cat" is already in the index: remove it first, or use upsert/);
  assert.throws(() => index.add(['cow', 'cow'], vec([0, 1, 0], [0, 1, 0])), /id "cow" is given twice/);
  assert.throws(() => index.add(['cow', 'ox'], vec([0, 1, 0, 1, 0])), /the added vectors: 5 values are not a whole number of 3-dimensional vectors/);
  assert.throws(() => index.add(['cow'], vec([0, 1, 0, 0])), /the added vectors: 4 dimensions, but the index has 3/);
  assert.throws(() => index.add(['cow'], vec([0, 0, 0])), /the vector of id "cow" has zero length/);
  assert.throws(() => index.add(['cow', ''], vec([0, 1, 0], [1, 0, 0])), /id 1 is empty/);
  assert.throws(() => index.add('cow', vec([0, 1, 0])), /ids must be an array of strings/);
  assert.throws(() => index.add([7], vec([0, 1, 0])), /ids must be an array of strings/);
  assert.throws(() => index.add(['cow'], vec([0, 1, 0]), [{}, {}]), /1 ids but 2 metadata entries/);
  assert.throws(() => index.add(['cow'], vec([0, 1, 0]), { a: 1 }), /metadata must be an array/);
  assert.equal(index.size, 3, 'nothing was added');
  index.upsert(['dog', 'cow'], vec([0, 1, 0], [0, 0.9, 0.1]), [null, { kind: 'animal' }]);
  assert.deepEqual(index.ids(), ['cat', 'dog', 'car', 'cow']);
  assert.equal(index.get('dog').metadata, null, 'upsert replaced the metadata too');
  assert.equal(index.search(vec([0, 1, 0]), { k: 1 })[0].id, 'dog');
  assert.equal(index.remove(['cat', 'unicorn']), 1);
  assert.deepEqual(index.ids(), ['dog', 'car', 'cow']);
  assert.deepEqual(index.search(vec([0, 1, 0]), { k: 3 }).map((h) => h.id), ['dog', 'cow', 'car']);
  index.free();
});

test('options are checked by name', () => {
  assert.throws(() => new EmbeddingIndex({ storage: 'q4' }), /options.storage: unknown storage "q4": use one of f32, f16, int8/);
  assert.throws(() => new EmbeddingIndex({ dims: 3 }), /unknown index options key "dims"/);
  assert.throws(() => new EmbeddingIndex({ dim: 0 }), /options.dim/);
  const index = animals();
  assert.throws(() => index.search(vec([1, 0]), {}), /the query: 2 dimensions, but the index has 3/);
  assert.throws(() => index.search(vec([0, 0, 0])), /the query has zero length/);
  assert.throws(() => index.search(vec([1, 0, 0]), { k: 0 }), /options.k/);
  assert.throws(() => index.search(vec([1, 0, 0]), { topK: 3 }), /unknown search options key "topK"/);
  assert.throws(() => index.search(vec([1, 0, 0]), { filter: 'animal' }), /options.filter must be a function/);
  assert.throws(() => index.search(vec([1, 0, 0]), { threshold: NaN }), /threshold must be a finite number/);
  const empty = new EmbeddingIndex();
  assert.deepEqual(empty.search(vec([1, 0, 0])), [], 'an empty index has no hits');
  assert.equal(empty.dim, undefined);
  empty.free();
  index.free();
});

test('searchBatch answers each query as search does', () => {
  const index = animals();
  const queries = vec([1, 0.25, 0], [0, 0, 1], [0.5, 0.5, 0.5]);
  const batch = index.searchBatch(queries, { k: 2 });
  assert.equal(batch.length, 3);
  for (let i = 0; i < 3; i++) assert.deepEqual(batch[i], index.search(queries.subarray(i * 3, i * 3 + 3), { k: 2 }));
  assert.throws(() => index.searchBatch(vec([1, 0, 0, 1]), {}), /the queries: 4 values are not a whole number of 3-dimensional vectors/);
  index.free();
});

test('bytes round-trip every storage; another model or damaged bytes are refused by name', () => {
  for (const storage of ['f32', 'f16', 'int8']) {
    const index = animals({ storage });
    const bytes = index.toBytes();
    assert.deepEqual(Array.from(bytes.subarray(0, 8)), Array.from(new TextEncoder().encode('LLINDEX\0')));
    const back = EmbeddingIndex.fromBytes(bytes, { model: 'toy' });
    assert.equal(back.storage, storage);
    assert.deepEqual(back.ids(), index.ids());
    const q = vec([0.3, 0.3, 0.8]);
    assert.deepEqual(back.search(q, { k: 3 }), index.search(q, { k: 3 }), storage);
    assert.deepEqual(Array.from(back.toBytes()), Array.from(bytes), 'saving again gives the same bytes');
    back.free();
    index.free();
  }
  const bytes = animals().toBytes();
  assert.throws(() => EmbeddingIndex.fromBytes(bytes, { model: 'clip' }), /this index holds embeddings of "toy", not of "clip"/);
  const damaged = bytes.slice();
  damaged[40] ^= 1;
  assert.throws(() => EmbeddingIndex.fromBytes(damaged), /checksum does not match: the bytes are damaged or cut short/);
  assert.throws(() => EmbeddingIndex.fromBytes(bytes.subarray(0, bytes.length - 10)), /checksum does not match/);
  assert.throws(() => EmbeddingIndex.fromBytes(new TextEncoder().encode('{"ids": []}')), /not an index file/);
});

/** Captions of Tux Paint's stamps (the first line of each .txt), sorted by path. */
function captions() {
  const out = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.txt')) {
        const line = readFileSync(path, 'utf8').split('\n')[0].trim();
        if (line) out.push(line);
      }
    }
  };
  walk(STAMPS);
  return [...new Set(out)];
}

test('f16 and int8 keep f32\'s top 10 on real caption embeddings (recall@10 ≥ 0.99)', async () => {
  const manifest = parseManifest(readFileSync(`${root}models/manifest.json`, 'utf8'));
  const fileFetch = async (url) => new Response(readFileSync(fileURLToPath(url)));
  const encoder = await Encoder.load(manifest.models.find((m) => m.name === 'minilm-l6-v2'),
    { baseUrl: `file://${root}models/`, fetch: fileFetch, cache: false });
  const texts = captions();
  assert.ok(texts.length >= 480, `${texts.length} captions`);
  // Every fourth caption of the first 480 is a query, the rest the gallery (~25 s of wasm
  // embedding under Node is what this costs).
  const queries = texts.slice(0, 480).filter((_, i) => i % 4 === 0);
  const gallery = texts.slice(0, 480).filter((_, i) => i % 4 !== 0);
  const g = encoder.embedText(gallery);
  const q = encoder.embedText(queries);
  encoder.free();
  const build = (storage) => {
    const index = new EmbeddingIndex({ model: 'minilm-l6-v2', storage });
    index.add(gallery, g.data);
    return index;
  };
  const exact = build('f32');
  const truth = exact.searchBatch(q.data, { k: 10 }).map((hits) => new Set(hits.map((h) => h.id)));
  const recall = {};
  for (const storage of ['f16', 'int8']) {
    const index = build(storage);
    const found = index.searchBatch(q.data, { k: 10 })
      .reduce((sum, hits, i) => sum + hits.filter((h) => truth[i].has(h.id)).length, 0);
    recall[storage] = found / (10 * queries.length);
    assert.equal(index.bytesPerVector, storage === 'f16' ? 2 * 384 : 384 + 4);
    index.free();
  }
  assert.equal(exact.bytesPerVector, 4 * 384);
  exact.free();
  console.log(`recall@10 against f32: ${JSON.stringify(recall)}`);
  assert.ok(recall.f16 >= 0.99 && recall.int8 >= 0.99, `recall@10 against f32: ${JSON.stringify(recall)}`);
});
