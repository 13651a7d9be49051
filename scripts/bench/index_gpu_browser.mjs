// EmbeddingIndex top-k on WebGPU against the CPU path, in headless Chromium with
// --enable-unsafe-webgpu: `searchBatchAsync(queries, { backend })` over a large random gallery
// (seeded clusters, labelled random: timing, not retrieval quality), the gallery uploaded to the
// GPU once before timing. Each round times one batch on each backend, the order alternating
// round by round; reported as the median per-query time with the range over rounds, the ratio
// measured in the same rounds, and whether both backends gave the same hits (they must).
//   node scripts/bench/index_gpu_browser.mjs [--n 100000] [--dim 384] [--queries 100] [--rounds 5]
// Needs pkg/ built (scripts/build). Here the WebGPU adapter is SwiftShader, a CPU
// implementation: its times say what this machine does, not what a real GPU does.
import { launch, PKG } from '../../tests/js/browser.mjs';
import { serveStatic } from '../../tests/js/static-server.mjs';
import { clusteredGallery } from './random-gallery.mjs';

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const params = { n: arg('n', 100_000), dim: arg('dim', 384), queries: arg('queries', 100), rounds: arg('rounds', 5) };

const server = await serveStatic(PKG);
const browser = await launch({ webgpu: true });
try {
  const page = await browser.newPage();
  await page.route(`${server.url}/bench.html`, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>index bench</title>' }));
  await page.goto(`${server.url}/bench.html`);
  const result = await page.evaluate(async ({ n, dim, queries, rounds, gallerySource }) => {
    const ll = await import('/index.js');
    await ll.default();
    const vectors = new Function(`return (${gallerySource})`)()(n, dim);
    const index = new ll.EmbeddingIndex({ model: 'random' });
    index.add(Array.from({ length: n }, (_, i) => `item-${i}`), vectors);
    const qs = new Float32Array(queries * dim);
    for (let q = 0; q < queries; q++) qs.set(vectors.subarray((q * 997 % n) * dim, (q * 997 % n + 1) * dim), q * dim);
    // First GPU call uploads the gallery and compiles the pipelines: timed apart.
    let t = performance.now();
    const first = await index.searchBatchAsync(qs, { k: 10, backend: 'gpu' });
    const firstSeconds = (performance.now() - t) / 1000;
    const times = { cpu: [], gpu: [] };
    let same = true;
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['cpu', 'gpu'] : ['gpu', 'cpu'];
      const answers = {};
      for (const backend of order) {
        t = performance.now();
        answers[backend] = await index.searchBatchAsync(qs, { k: 10, backend });
        times[backend].push((performance.now() - t) / queries);
      }
      same &&= JSON.stringify(answers.cpu.hits) === JSON.stringify(answers.gpu.hits);
    }
    return { times, same, adapter: first.adapter, firstSeconds, rescanned: first.queries_rescanned, variant: ll.wasmVariant() };
  }, { ...params, gallerySource: clusteredGallery.toString() });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ratios = result.times.cpu.map((c, i) => c / result.times.gpu[i]);
  console.log(JSON.stringify({
    ...params, k: 10, wasm: result.variant, adapter: result.adapter,
    cpu_ms_per_query: +median(result.times.cpu).toFixed(2),
    cpu_range: [+Math.min(...result.times.cpu).toFixed(2), +Math.max(...result.times.cpu).toFixed(2)],
    gpu_ms_per_query: +median(result.times.gpu).toFixed(2),
    gpu_range: [+Math.min(...result.times.gpu).toFixed(2), +Math.max(...result.times.gpu).toFixed(2)],
    cpu_over_gpu: +median(ratios).toFixed(2), cpu_over_gpu_range: [+Math.min(...ratios).toFixed(2), +Math.max(...ratios).toFixed(2)],
    first_gpu_batch_seconds: +result.firstSeconds.toFixed(2), queries_rescanned: result.rescanned,
    same_hits: result.same,
  }));
} finally {
  await browser.close();
  await server.close();
}
