// The pages' promise front end for www/src/worker.js: `await client.call('plan.analyze', {text})`.
// The client itself is the package's (latentlab/worker: ids, progress, cancel, and a trapped
// worker replaced with `lost` fired, so pages that loaded a model or an index into the old one
// know it is gone); this file only names the site's worker script, written out here as
// `new Worker(new URL(…, import.meta.url))` so Vite bundles it, and passes on the page's
// `?memoryBudget=<bytes>` (default 1 GiB; see setMemoryBudget) to every worker it starts.
import { LatentlabWorker } from 'latentlab/worker';

function memoryBudgetParam() {
  return new URLSearchParams(globalThis.location?.search ?? '').get('memoryBudget');
}

export class LatentlabClient extends LatentlabWorker {
  constructor() {
    super({
      createWorker: () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }),
      memoryBudget: memoryBudgetParam(),
    });
  }
}
