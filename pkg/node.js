// Node entry point of the core module: instantiate it synchronously from the file beside this
// one, so `import { Plan } from 'latentlab'` is ready at once. Calling the default export
// (`await init()`, as in browsers) afterwards is harmless: it returns the same instance.
// The relaxed-SIMD build is used where this Node validates it (Node 22+; Node 20 only with
// --experimental-wasm-relaxed-simd); LATENTLAB_RELAXED_SIMD=0 forces the SIMD-only build.
import { readFileSync } from 'node:fs';
import { initSync } from './latentlab.js';
import { relaxedSimdSupported, recordWasmVariant } from './simd.js';

const relaxed = process.env.LATENTLAB_RELAXED_SIMD !== '0' && relaxedSimdSupported();
const file = relaxed ? './latentlab_relaxed_bg.wasm' : './latentlab_bg.wasm';
initSync({ module: readFileSync(new URL(file, import.meta.url)) });
recordWasmVariant(relaxed ? 'relaxed-simd' : 'simd128');

export * from './index.js';
export { default } from './index.js';
