// An application that uses only the core (a plan's optimal time and an embedding index): its
// build must emit the core module's two wasm files and nothing of `latentlab/encoders` (tract,
// tokenizers), and the page must fetch only the core module. Checked by tests/js/consumers.test.mjs.
import init, { Plan, EmbeddingIndex, version, wasmVariant } from 'latentlab';
import { TEA_PLAN } from '../tea-plan.js';

async function main() {
  await init();
  const plan = Plan.fromJson(TEA_PLAN);
  const analysis = plan.analyze();
  plan.free();
  const index = new EmbeddingIndex({ model: 'm' });
  index.add(['a', 'b'], new Float32Array([1, 0, 0, 1]));
  const [hit] = index.search(new Float32Array([0.2, 0.8]), { k: 1 });
  index.free();
  Object.assign(document.body.dataset, {
    optimal: String(analysis.optimal_seconds[0]),
    hit: hit.id,
    version: version(),
    variant: wasmVariant(),
    done: 'true',
  });
}

main().catch((err) => {
  document.body.dataset.error = String(err?.stack ?? err);
  document.body.dataset.done = 'true';
});
