// Issue 19: every export of the wasm facade, called with random shapes, nasty sizes (negative,
// fractional, 2^31, 2^53, NaN, ±Infinity), non-numbers, NaN/∞ inside arrays, unknown option keys
// and corrupt bytes, either returns or throws an Error with a message: never a trap
// (`WebAssembly.RuntimeError`), after which a page would have lost its module. A bounded number
// of calls here; `node scripts/bench/fuzz_wasm.mjs` makes ≥ 10^5 (README, reliability).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzFacade, knownAnswer, catalogue, NEVER_ACCEPTS, NEVER_REFUSES } from './facade-fuzz.mjs';

// Fixed seed: the test command sees the same calls every run; the benchmark varies it.
const SEED = 19;
const RUNS_PER_EXPORT = Number(process.env.LATENTLAB_FUZZ_RUNS ?? 150);

test('every export of the wasm facade returns or throws an Error on random and nasty input', async () => {
  const report = await fuzzFacade({ numRuns: RUNS_PER_EXPORT, seed: SEED });
  assert.equal(Object.keys(report).length, catalogue().length);
  const failures = Object.entries(report).filter(([, t]) => t.failures.length > 0);
  assert.deepEqual(failures.map(([name, t]) => `${name}: ${t.failures[0].result} with ${t.failures[0].args}`), []);
  // The input reaches the work: every export accepted some calls and refused others (but for
  // those that judge any text, and the model parsers, which no random bytes satisfy).
  for (const [name, t] of Object.entries(report)) {
    assert.equal(t.ok + t.error, RUNS_PER_EXPORT, name);
    if (!NEVER_REFUSES.includes(name)) assert.ok(t.error > 0, `${name} never refused anything`);
    if (!NEVER_ACCEPTS.includes(name)) assert.ok(t.ok > 0, `${name} never accepted anything: the fuzzing does not reach its work`);
  }
  assert.ok(knownAnswer(), 'a known-good call still gives its answer after the fuzzing');
});
