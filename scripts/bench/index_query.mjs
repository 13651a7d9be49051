// EmbeddingIndex query time and memory by storage (f32, f16, int8) under Node's wasm, on a
// large random gallery (seeded clusters, labelled random: timing, not retrieval quality; the
// recall on real embeddings is tests/js/index.test.mjs'). Storages are measured alternately,
// query by query, and reported as the median over queries with the range over rounds.
//   node scripts/bench/index_query.mjs [--n 100000] [--dim 384] [--queries 20] [--rounds 3]
import { EmbeddingIndex, wasmVariant } from 'latentlab';
import { clusteredGallery } from './random-gallery.mjs';

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const n = arg('n', 100_000);
const dim = arg('dim', 384);
const queries = arg('queries', 20);
const rounds = arg('rounds', 3);

const vectors = clusteredGallery(n, dim);
const ids = Array.from({ length: n }, (_, i) => `item-${i}`);
const qs = Array.from({ length: queries }, (_, i) => vectors.subarray(i * 997 * dim, (i * 997 + 1) * dim));

const storages = ['f32', 'f16', 'int8'];
const indexes = Object.fromEntries(storages.map((storage) => {
  const index = new EmbeddingIndex({ model: 'random', storage });
  const t = performance.now();
  index.add(ids, vectors);
  return [storage, { index, addSeconds: (performance.now() - t) / 1000 }];
}));
const medians = Object.fromEntries(storages.map((s) => [s, []]));
for (let r = 0; r < rounds; r++) {
  const times = Object.fromEntries(storages.map((s) => [s, []]));
  for (const q of qs) {
    for (const s of storages) {
      const t = performance.now();
      indexes[s].index.search(q, { k: 10 });
      times[s].push(performance.now() - t);
    }
  }
  for (const s of storages) {
    const sorted = times[s].sort((a, b) => a - b);
    medians[s].push(sorted[Math.floor(sorted.length / 2)]);
  }
}
const truth = qs.map((q) => new Set(indexes.f32.index.search(q, { k: 10 }).map((h) => h.id)));
for (const s of storages) {
  const { index, addSeconds } = indexes[s];
  const found = qs.reduce((sum, q, i) => sum + index.search(q, { k: 10 }).filter((h) => truth[i].has(h.id)).length, 0);
  const ms = medians[s];
  console.log(JSON.stringify({
    storage: s, n, dim, wasm: wasmVariant(), bytes_per_vector: index.bytesPerVector,
    vector_megabytes: +(index.bytesPerVector * n / 2 ** 20).toFixed(1),
    query_ms_median: +ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)].toFixed(2),
    query_ms_range: [+Math.min(...ms).toFixed(2), +Math.max(...ms).toFixed(2)],
    ratio_to_f32: +(ms[Math.floor(ms.length / 2)] / [...medians.f32].sort((a, b) => a - b)[Math.floor(rounds / 2)]).toFixed(2),
    add_seconds: +addSeconds.toFixed(2), recall_at_10_vs_f32: found / (10 * qs.length),
  }));
}
