#!/usr/bin/env node
// Benchmark, not a test: latentlab's wasm encoders against onnxruntime-web in the same
// headless Chromium page (scripts/bench/browser-encoders.js says what is timed), once with the
// build the package picks there (relaxed SIMD) and once with the SIMD-only build that other
// browsers get. Prints one JSON object. Needs pkg/ built (scripts/build) and the models (scripts/lib.sh ensure_models);
// installs onnxruntime-web into .cache/bench/ (git-ignored) on first use.
//
//     node scripts/bench/browser_encoders.mjs [--repeats 3]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '../../tests/js/static-server.mjs';
import { launch } from '../../tests/js/browser.mjs';

const ORT_VERSION = '1.30.0';
const root = fileURLToPath(new URL('../..', import.meta.url));
const repeats = Number(process.argv[process.argv.indexOf('--repeats') + 1] || 3);

if (!existsSync(`${root}/.cache/bench/node_modules/onnxruntime-web/package.json`)) {
  execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--prefix', `${root}/.cache/bench`,
    `onnxruntime-web@${ORT_VERSION}`], { stdio: 'inherit' });
}
const server = await serveStatic(root);
const browser = await launch();
try {
  const results = [];
  for (const relaxed of ['', '&relaxed=0']) {
    const page = await browser.newPage();
    await page.goto(`${server.url}/scripts/bench/browser-encoders.html?repeats=${repeats}${relaxed}`);
    await page.waitForFunction(() => window.__result, null, { timeout: 900_000 });
    const result = await page.evaluate(() => window.__result);
    if (result.error) throw new Error(result.error);
    results.push(result);
    await page.close();
  }
  console.log(JSON.stringify({ repeats, runs: results }, null, 1));
} finally {
  await browser.close();
  await server.close();
}
