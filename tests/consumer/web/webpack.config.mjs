// webpack 5 as a user configures it for latentlab: nothing package-specific; `new URL(…,
// import.meta.url)` brings in the .wasm files and `new Worker(new URL(…))` the worker.
import { fileURLToPath } from 'node:url';

// `--env app=DIR`: another app's main.js (tests/consumer/core-only).
export default (env) => ({
  mode: 'production',
  entry: env.app ? `${env.app}/main.js` : fileURLToPath(new URL('./main.js', import.meta.url)),
  output: { path: env.out, filename: 'main.js', publicPath: 'auto' },
  performance: { hints: false },
});
