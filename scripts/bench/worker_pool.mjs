// Gallery indexing with latentlab/worker's WorkerPool, 1 worker against 2, in headless
// Chromium: Tux Paint stamps (PNG Blobs, decoded in the workers) through the bundled image
// model. Both pools are loaded first; each round runs them one after the other, the order
// alternating round by round, and the report gives the median and the range over rounds.
//   node scripts/bench/worker_pool.mjs [--images 96] [--rounds 5]
// Needs pkg/ built and www/dist with models/ and stamps/ (scripts/build).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { launch, DIST, PKG } from '../../tests/js/browser.mjs';
import { serveStatic } from '../../tests/js/static-server.mjs';

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const images = arg('images', 96);
const rounds = arg('rounds', 5);
const stamps = readdirSync(join(DIST, 'stamps')).filter((f) => f.endsWith('.png')).sort().slice(0, images);

const server = await serveStatic(PKG);
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.route(`${server.url}/bench.html`, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>pool bench</title>' }));
  await page.route(/\/(models|stamps)\//, (route) =>
    route.fulfill({ path: join(DIST, decodeURIComponent(new URL(route.request().url()).pathname)) }));
  await page.goto(`${server.url}/bench.html`);
  const result = await page.evaluate(async ({ stamps, rounds }) => {
    const ll = await import('/index.js');
    const { WorkerPool } = await import('/worker.js');
    await ll.default();
    const manifest = ll.parseManifest(await (await fetch('/models/manifest.json')).text());
    const image = manifest.models.find((m) => m.name === 'effl0-minilm-bridge');
    const blobs = await Promise.all(stamps.map(async (f) => (await fetch(`/stamps/${f}`)).blob()));
    const pools = { 1: new WorkerPool({ size: 1 }), 2: new WorkerPool({ size: 2 }) };
    for (const pool of Object.values(pools)) await pool.load(image, { baseUrl: '/models/' });
    // One warm-up pass each (first-run compilation in every instance).
    for (const pool of Object.values(pools)) await pool.embedImage(blobs.slice(0, 8));
    const seconds = { 1: [], 2: [] };
    for (let r = 0; r < rounds; r++) {
      for (const size of r % 2 === 0 ? [1, 2] : [2, 1]) {
        const t = performance.now();
        await pools[size].embedImage(blobs);
        seconds[size].push((performance.now() - t) / 1000);
      }
    }
    for (const pool of Object.values(pools)) pool.terminate();
    return { seconds, wasm: ll.wasmVariant(), cores: navigator.hardwareConcurrency };
  }, { stamps, rounds });
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const one = median(result.seconds[1]);
  const two = median(result.seconds[2]);
  const perRound = result.seconds[1].map((s, i) => s / result.seconds[2][i]);
  console.log(JSON.stringify({
    images: stamps.length, rounds, wasm: result.wasm, browser_cores: result.cores, machine_cores: cpus().length,
    one_worker_seconds: one, two_workers_seconds: two,
    one_worker_images_per_second: stamps.length / one, two_workers_images_per_second: stamps.length / two,
    speedup: one / two, speedup_range: [Math.min(...perRound), Math.max(...perRound)],
    seconds: result.seconds,
  }, null, 1));
} finally {
  await browser.close();
  await server.close();
}
