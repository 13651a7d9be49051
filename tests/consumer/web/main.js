// A tiny application as a user builds it with Vite or webpack: the package on the page (a plan's
// optimal time) and the package's own worker (its version and an embedding index inside it),
// results left on <body> for tests/js/consumers.test.mjs.
import init, { Plan, version, wasmVariant } from 'latentlab';
import { TEA_PLAN } from '../tea-plan.js';
import { LatentlabWorker } from 'latentlab/worker';

async function main() {
  await init();
  const plan = Plan.fromJson(TEA_PLAN);
  const analysis = plan.analyze();
  plan.free();
  const worker = new LatentlabWorker();
  const workerVersion = await worker.call('version');
  const missing = await worker.call('embed.text', { texts: ['a cat'] }).then(() => 'no error', (e) => e.message);
  worker.terminate();
  Object.assign(document.body.dataset, {
    optimal: String(analysis.optimal_seconds[0]),
    path: analysis.critical_path.join(','),
    version: version(),
    workerVersion,
    variant: wasmVariant(),
    missing,
    done: 'true',
  });
}

main().catch((err) => {
  document.body.dataset.error = String(err?.stack ?? err);
  document.body.dataset.done = 'true';
});
