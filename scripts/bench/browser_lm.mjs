#!/usr/bin/env node
// Benchmark, not a test: SmolLM2-135M through latentlab's wasm in headless Chromium (one
// thread; a page has no threads without cross-origin isolation), with the build the package
// picks there (relaxed SIMD) and the SIMD-only build other browsers get. scripts/bench/
// browser-lm.js says what is timed; the prompt is lm_native.py's, so the numbers sit beside
// the native and llama.cpp ones in BENCHMARKS.md. Needs pkg/ built (scripts/build) and the
// model (scripts/lib.sh ensure_models). Prints one JSON object.
//
//     node scripts/bench/browser_lm.mjs [--rounds 3]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '../../tests/js/static-server.mjs';
import { launch } from '../../tests/js/browser.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] || 3);
// The same prompt as lm_native.py (read from it, so the two cannot drift apart).
const source = readFileSync(`${root}/scripts/bench/lm_native.py`, 'utf8');
const prompt = [...source.match(/PROMPT = \(([\s\S]*?)\n\)/)[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)]
  .map((m) => m[1]).join('');

const server = await serveStatic(root);
const browser = await launch();
try {
  const runs = [];
  for (const relaxed of ['', '&relaxed=0']) {
    const page = await browser.newPage();
    await page.addInitScript((p) => { window.__prompt = p; }, prompt);
    await page.goto(`${server.url}/scripts/bench/browser-lm.html?rounds=${rounds}${relaxed}`);
    await page.waitForFunction(() => window.__result, null, { timeout: 900_000 });
    const result = await page.evaluate(() => window.__result);
    if (result.error) throw new Error(result.error);
    runs.push(result);
    await page.close();
  }
  console.log(JSON.stringify({ rounds, prompt_chars: prompt.length, chromium: browser.version(), runs }, null, 1));
} finally {
  await browser.close();
  await server.close();
}
