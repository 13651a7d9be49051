// pkg/ is a real npm package: pack it, install the tarball into a fresh project, import
// it under Node and compute a plan's optimal time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8' });

test('the packed package installs and runs in a fresh Node project', () => {
  const work = mkdtempSync(join(tmpdir(), 'latentlab-pack-'));
  try {
    const packed = JSON.parse(run('npm', ['pack', join(repo, 'pkg'), '--json', '--pack-destination', work], work));
    const files = packed[0].files.map((f) => f.path).sort();
    for (const f of ['latentlab.js', 'latentlab.d.ts', 'latentlab_bg.wasm', 'node.js', 'package.json']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    const project = join(work, 'app');
    run('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, packed[0].filename)], project);
    writeFileSync(join(project, 'main.mjs'), `
      import init, { Plan, version } from 'latentlab';
      await init();   // a no-op under Node, where the package initialises itself
      const plan = Plan.fromJson(JSON.stringify({
        title: 'How to make tea',
        steps: [{ id: 'boil', text: 'Boil water', duration: '5 minutes' },
                { id: 'cup', text: 'Fetch a cup', duration: '1 minute' },
                { id: 'steep', text: 'Steep', duration: '3 minutes' }],
        constraints: [['boil', 'steep'], ['cup', 'steep']],
      }));
      const a = plan.analyze();
      console.log(JSON.stringify({ version: version(), optimal: a.optimal_seconds, path: a.critical_path }));
    `);
    const out = JSON.parse(run('node', ['main.mjs'], project));
    assert.deepEqual(out.optimal, [480, 480]);
    assert.deepEqual(out.path, ['boil', 'steep']);
    const pkgVersion = JSON.parse(readFileSync(join(repo, 'pkg/package.json'), 'utf8')).version;
    assert.equal(out.version, pkgVersion, 'package.json version equals the crate version');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
