// Vite configuration for latentlab's static demo site.
// The site is plain ES modules + a module worker + the wasm package; `base: './'`
// keeps every URL relative so www/dist can be served from any path on any static host.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { CONTENT_SECURITY_POLICY } from './csp.js';
import { integrity } from './integrity-plugin.js';

const root = fileURLToPath(new URL('.', import.meta.url));
// The pages and the worker both verify data files against one table.
const integrityPlugin = integrity(fileURLToPath(new URL('./public', import.meta.url)));

/**
 * The site's Content-Security-Policy in every built page, so it holds even on hosts that
 * cannot send headers, and in dist/_headers (Netlify, Cloudflare Pages) for those that can:
 * only a header also covers the worker. Build only: the dev server injects inline styles.
 */
function contentSecurityPolicy() {
  return {
    name: 'latentlab-csp',
    apply: 'build',
    transformIndexHtml: () => [{
      tag: 'meta',
      attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY },
      injectTo: 'head-prepend',
    }],
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: '_headers', source: `/*\n  Content-Security-Policy: ${CONTENT_SECURITY_POLICY}\n` });
    },
  };
}

export default defineConfig({
  root,
  base: './',
  publicDir: 'public',
  plugins: [contentSecurityPolicy(), integrityPlugin],
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
        repo: fileURLToPath(new URL('./repo.html', import.meta.url)),
        elicit: fileURLToPath(new URL('./elicit.html', import.meta.url)),
      },
    },
  },
  // The worker imports the wasm package, which needs ES module output. It imports the
  // package statically, so fetch-data.js's dynamic import (the pages' sha256 fallback) stays
  // in its chunk, as it should: no warning for that.
  worker: {
    format: 'es',
    plugins: () => [integrityPlugin],
    rolldownOptions: { checks: { ineffectiveDynamicImport: false } },
  },
});
