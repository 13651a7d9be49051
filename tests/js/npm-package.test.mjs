// pkg/ is a real npm package: pack it, install the tarball into a fresh project, import
// it under Node and compute a plan's optimal time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// f32x4.relaxed_madd in a one-function module (the same probe as pkg/simd.js, written out
// here so that the test does not trust the code it checks).
const RELAXED_SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 61, 1, 59, 0, 253, 12, ...Array(16).fill(0), 253, 12, ...Array(16).fill(0), 253, 12, ...Array(16).fill(0),
  253, 133, 2, 11]);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8' });

test('the packed package installs and runs in a fresh Node project', () => {
  const work = mkdtempSync(join(tmpdir(), 'latentlab-pack-'));
  try {
    const packed = JSON.parse(run('npm', ['pack', join(repo, 'pkg'), '--json', '--pack-destination', work], work));
    const files = packed[0].files.map((f) => f.path).sort();
    for (const f of ['latentlab.js', 'latentlab.d.ts', 'latentlab_bg.wasm', 'latentlab_relaxed_bg.wasm',
      'simd.js', 'node.js', 'package.json']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    const project = join(work, 'app');
    run('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, packed[0].filename)], project);
    writeFileSync(join(project, 'main.mjs'), `
      import init, { Plan, version, wasmVariant } from 'latentlab';
      await init();   // a no-op under Node, where the package initialises itself
      const plan = Plan.fromJson(JSON.stringify({
        title: 'How to make tea',
        steps: [{ id: 'boil', text: 'Boil water', duration: '5 minutes' },
                { id: 'cup', text: 'Fetch a cup', duration: '1 minute' },
                { id: 'steep', text: 'Steep', duration: '3 minutes' }],
        constraints: [['boil', 'steep'], ['cup', 'steep']],
      }));
      const a = plan.analyze();
      console.log(JSON.stringify({ version: version(), optimal: a.optimal_seconds, path: a.critical_path,
        variant: wasmVariant() }));
    `);
    // Both builds run: the one this Node validates, the other forced (relaxed SIMD needs a
    // flag on Node 20; LATENTLAB_RELAXED_SIMD=0 refuses it where it is native).
    const native = WebAssembly.validate(RELAXED_SIMD_PROBE);
    const runs = [
      { variant: native ? 'relaxed-simd' : 'simd128', args: [], env: {} },
      native
        ? { variant: 'simd128', args: [], env: { LATENTLAB_RELAXED_SIMD: '0' } }
        : { variant: 'relaxed-simd', args: ['--experimental-wasm-relaxed-simd'], env: {} },
    ];
    const pkgVersion = JSON.parse(readFileSync(join(repo, 'pkg/package.json'), 'utf8')).version;
    for (const { variant, args, env } of runs) {
      const out = JSON.parse(execFileSync('node', [...args, 'main.mjs'], {
        cwd: project, encoding: 'utf8', env: { ...process.env, ...env },
      }));
      assert.equal(out.variant, variant);
      assert.deepEqual(out.optimal, [480, 480]);
      assert.deepEqual(out.path, ['boil', 'steep']);
      assert.equal(out.version, pkgVersion, 'package.json version equals the crate version');
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
