// EmbeddingIndex.searchBatchAsync: top-k with the inner products on WebGPU (src/gpu/gallery.rs
// through the wasm facade) gives exactly searchBatch's hits, or searches on the CPU and says
// why. Under Node (no WebGPU) every search falls back; in headless Chromium with WebGPU
// (SwiftShader) the GPU answers, re-uploads after the index changes and after a lost device,
// and refuses by name what it does not answer exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddingIndex } from 'latentlab';
import { servedPackage, openPackagePage } from './browser.mjs';

/** Seeded clustered rows (labelled random: for equality of answers, not retrieval quality). */
function gallery(n, dim, seed = 7) {
  let state = seed;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const centres = Array.from({ length: 12 }, () => Float32Array.from({ length: dim }, random));
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) data[i * dim + j] = centres[i % 12][j] + 0.3 * random();
  return { ids: Array.from({ length: n }, (_, i) => `item-${i}`), data };
}

test('without WebGPU (Node) every search falls back to the CPU, says why, and equals searchBatch', async () => {
  const { ids, data } = gallery(300, 16);
  const index = new EmbeddingIndex({ model: 'm' });
  index.add(ids, data);
  const queries = data.subarray(0, 5 * 16);
  const expected = index.searchBatch(queries, { k: 7 });
  const auto = await index.searchBatchAsync(queries, { k: 7 });
  assert.equal(auto.backend, 'cpu');
  assert.match(auto.fallback, /WebGPU|navigator\.gpu|adapter/i);
  assert.deepEqual(auto.hits, expected);
  const cpu = await index.searchBatchAsync(queries, { k: 7, backend: 'cpu' });
  assert.deepEqual(cpu, { hits: expected, backend: 'cpu' });
  await assert.rejects(index.searchBatchAsync(queries, { k: 7, backend: 'gpu' }), /^Error: backend "gpu": /);
  await assert.rejects(index.searchBatchAsync(queries, { backend: 'tpu' }), /options\.backend is "tpu"/);
  await assert.rejects(index.searchBatchAsync(queries, { k: 3, gpu: true }), /unknown search options key "gpu"/);
  // Bad input is an error whatever the backend, in searchBatch's words.
  await assert.rejects(index.searchBatchAsync(data.subarray(0, 20), { k: 3 }), /the queries/);
  index.free();
});

const served = servedPackage({ webgpu: true });

async function packagePage() {
  const opened = await openPackagePage(served, { recordDevices: true });
  await opened.page.evaluate((source) => {
    window.gallery = new Function(`return (${source})`)();
  }, gallery.toString());
  return opened;
}

test('with WebGPU (SwiftShader) the hits are searchBatch\'s, after changes and a lost device too', { timeout: 240_000 }, async () => {
  const { page, errors } = await packagePage();
  const report = await page.evaluate(async () => {
    const { EmbeddingIndex } = window.ll;
    const dim = 48;
    const { ids, data } = window.gallery(2500, dim);
    const index = new EmbeddingIndex({ model: 'm' });
    index.add(ids, data);
    const queries = data.subarray(0, 40 * dim);
    const same = async (options) => {
      const got = await index.searchBatchAsync(queries, options);
      return { backend: got.backend, adapter: got.adapter, fallback: got.fallback,
        equal: JSON.stringify(got.hits) === JSON.stringify(index.searchBatch(queries, options)) };
    };
    const out = {};
    out.k10 = await same({ k: 10 });
    out.k1 = await same({ k: 1 });
    out.k64 = await same({ k: 64, threshold: 0.5 });
    // A change makes the uploaded copy stale: the next search uploads again.
    index.add(['new'], data.subarray(dim, 2 * dim));
    index.remove(['item-3']);
    out.changed = await same({ k: 10 });
    // What the GPU path does not answer exactly goes to the CPU, saying why.
    out.k65 = await same({ k: 65 });
    const filtered = await index.searchBatchAsync(queries, { k: 5, filter: (id) => id.endsWith('7') });
    out.filter = { backend: filtered.backend, fallback: filtered.fallback,
      equal: JSON.stringify(filtered.hits) === JSON.stringify(index.searchBatch(queries, { k: 5, filter: (id) => id.endsWith('7') })) };
    out.gpuFilter = await index.searchBatchAsync(queries, { k: 5, backend: 'gpu', filter: () => true }).then(() => 'accepted', (e) => e.message);
    const int8 = new EmbeddingIndex({ model: 'm', storage: 'int8' });
    int8.add(ids, data);
    const q8 = await int8.searchBatchAsync(queries, { k: 5 });
    out.int8 = { backend: q8.backend, fallback: q8.fallback };
    // A device lost mid-session (a GPU reset): that search falls back, the next gets a new
    // device, uploads the gallery to it and answers on the GPU again.
    for (const device of window.devices) device.destroy();
    out.lost = await same({ k: 10 });
    out.recovered = await same({ k: 10 });
    out.devices = window.devices.length;
    int8.free();
    index.free();
    return out;
  });
  for (const key of ['k10', 'k1', 'k64', 'changed', 'recovered']) {
    assert.equal(report[key].backend, 'webgpu', `${key}: ${report[key].fallback}`);
    assert.ok(report[key].adapter, key);
    assert.ok(report[key].equal, `${key}: the GPU's hits equal searchBatch's`);
  }
  assert.deepEqual({ ...report.k65, fallback: undefined }, { backend: 'cpu', adapter: undefined, fallback: undefined, equal: true });
  assert.match(report.k65.fallback, /k = 65 is more than the GPU search takes \(k <= 64\)/);
  assert.equal(report.filter.backend, 'cpu');
  assert.ok(report.filter.equal);
  assert.match(report.filter.fallback, /a filtered search runs on the CPU only/);
  assert.match(report.gpuFilter, /^backend "gpu": a filtered search runs on the CPU only/);
  assert.equal(report.int8.backend, 'cpu');
  assert.match(report.int8.fallback, /int8 storage is searched on the CPU only/);
  assert.equal(report.lost.equal, true, 'the answer after a lost device is still searchBatch\'s');
  assert.equal(report.lost.backend, 'cpu', 'the search on the lost device fell back');
  assert.ok(report.devices >= 2, 'a new device was asked for');
  assert.deepEqual(errors, []);
  await page.close();
});
