#!/usr/bin/env node
// The wasm facade's property-based fuzzing at benchmark size (issue 19): every export called
// with random and nasty input (tests/js/facade-fuzz.mjs says what), RUNS calls each, a random
// seed unless given. Prints one JSON object: calls, per export ok / error / failures, seconds.
// A failure (a trap or a non-Error) is printed with the seed and arguments that reproduce it.
//
//     node scripts/bench/fuzz_wasm.mjs [--runs 3000] [--seed S] [--only name,name]
import { fuzzFacade, knownAnswer } from '../../tests/js/facade-fuzz.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const runs = Number(arg('runs', 3000));
const seed = Number(arg('seed', Date.now() % 2 ** 31));
const only = arg('only', undefined)?.split(',');
const start = performance.now();
const report = await fuzzFacade({ numRuns: runs, seed, only });
const seconds = (performance.now() - start) / 1000;
const calls = Object.values(report).reduce((s, t) => s + t.ok + t.error + t.failures.length, 0);
const failed = Object.entries(report).filter(([, t]) => t.failures.length);
console.log(JSON.stringify({
  seed, runs_per_export: runs, exports: Object.keys(report).length, calls, seconds: Math.round(seconds),
  failures: failed.length, still_works: failed.length ? null : knownAnswer(), report,
}, null, 1));
process.exitCode = failed.length ? 1 : 0;
