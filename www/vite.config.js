// Vite configuration for latentlab's static demo site.
// The site is plain ES modules + a module worker + the wasm package; `base: './'`
// keeps every URL relative so www/dist can be served from any path on any static host.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  publicDir: 'public',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    rollupOptions: {
      input: {
        index: fileURLToPath(new URL('./index.html', import.meta.url)),
        plans: fileURLToPath(new URL('./plans.html', import.meta.url)),
        search: fileURLToPath(new URL('./search.html', import.meta.url)),
        ot: fileURLToPath(new URL('./ot.html', import.meta.url)),
        align: fileURLToPath(new URL('./align.html', import.meta.url)),
        steer: fileURLToPath(new URL('./steer.html', import.meta.url)),
        collapse: fileURLToPath(new URL('./collapse.html', import.meta.url)),
        tiny: fileURLToPath(new URL('./tiny.html', import.meta.url)),
        xrm: fileURLToPath(new URL('./xrm.html', import.meta.url)),
        sketch: fileURLToPath(new URL('./sketch.html', import.meta.url)),
      },
    },
  },
  // The worker imports the wasm package, which needs ES module output.
  worker: { format: 'es' },
});
