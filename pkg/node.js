// Node entry point: instantiate the module synchronously from the file beside this one,
// so `import { Plan } from 'latentlab'` is ready at once. Calling the default export
// (`await init()`, as in browsers) afterwards is harmless: it returns the same instance.
import { readFileSync } from 'node:fs';
import { initSync } from './latentlab.js';

initSync({ module: readFileSync(new URL('./latentlab_bg.wasm', import.meta.url)) });

export * from './index.js';
export { default } from './index.js';
