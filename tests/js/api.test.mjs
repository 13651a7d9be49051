// The npm package's API under Node, as a user of `latentlab` sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Plan, parsePlans, parseDuration, graphEncodings, orderingTemplates } from 'latentlab';

const fixture = (name) =>
  readFileSync(new URL(`../fixtures/asynchow/${name}`, import.meta.url), 'utf8');

test('every AsyncHow task of a file through the JS API', () => {
  const text = fixture('seq_benchmark.jsonl');
  const records = text.trim().split('\n').map((l) => JSON.parse(l));
  const plans = parsePlans(text);
  assert.equal(plans.length, records.length);
  plans.forEach((plan, i) => {
    assert.deepEqual(plan.analyze().optimal_seconds, records[i].task_time, records[i].titles);
    plan.free();
  });
});

test('prompts, encodings and templates', () => {
  const plan = Plan.fromJson(fixture('async_benchmark.jsonl').split('\n')[1]);
  assert.deepEqual(graphEncodings(), ['none', 'adjacency-list', 'adjacency-matrix', 'csr', 'edge-list']);
  assert.equal(orderingTemplates().length, 10);
  for (const encoding of graphEncodings()) {
    assert.match(plan.prompt({ encoding }), /Answer the time in double quotes\.\nAnswer:$/);
  }
  assert.throws(() => plan.prompt({ encoding: 'csr', bag: true }), /BaG asks the model to build the graph itself/);
  assert.throws(() => plan.prompt({ encodng: 'csr' }), /unknown prompt options key "encodng"/);
});

test('errors are Error objects whose message names the bad value', () => {
  assert.throws(() => Plan.fromJson('[1, 2'), (e) => e instanceof Error && /invalid JSON/.test(e.message));
  assert.throws(() => Plan.fromJson('{"steps": [{"id": "a", "duration": "2 eons"}]}'), /unknown unit "eons"/);
  assert.throws(() => parseDuration(''), /the duration is empty/);
  assert.deepEqual(Array.from(parseDuration('1 year')), [365 * 86400, 366 * 86400]);
});

// What tests/wasm_facade.rs (wasm-bindgen-test) checked before it moved here: the same
// facade, reached through the real package instead of a second wasm32 test build.
const WATER_PARK = JSON.stringify({
  title: 'How to go to the local water park',
  steps: [
    { id: '1', text: 'Pack a bag', duration: '10 minutes' },
    { id: '2', text: 'Drive to the park', duration: '30 minutes' },
    { id: '3', text: 'Buy tickets', duration: '10 minutes' },
    { id: '4', text: 'Swim', duration: '40 minutes' },
    { id: '5', text: 'Dry off', duration: '5 minutes' },
  ],
  constraints: [['2', '3'], ['3', '4'], ['4', '5'], ['1', '4']],
});

test('analysis results are plain objects with the CLI keys', () => {
  const plan = Plan.fromJson(WATER_PARK);
  assert.equal(plan.title, 'How to go to the local water park');
  const analysis = plan.analyze();
  assert.deepEqual(analysis.optimal_seconds, [5100, 5100]);
  assert.deepEqual(analysis.critical_path, ['2', '3', '4', '5']);
  assert.equal(analysis.optimal_text, '1 h 25 min');
  assert.match(plan.prompt({ encoding: 'edge-list' }), /Here is the edge list representation/);
  assert.match(plan.prompt(), /Answer:$/);
  assert.throws(() => plan.prompt({ encoding: 'matrix' }), /unknown graph encoding "matrix"/);
  assert.equal(plan.score('the answer is "1 hour 25 minutes"').correct, true);
  assert.equal(plan.score('no idea').reason, 'no_quoted_time');
  assert.throws(
    () => Plan.fromJson('{"steps": [{"id": "a", "duration": "1 min"}], "constraints": [["a", "a"]]}'),
    /the constraints form a cycle: a → a/,
  );
  assert.throws(() => parseDuration('3 m'), /ambiguous unit/);
  assert.deepEqual(Array.from(parseDuration('2 months')), [4_838_400, 5_356_800]);
  plan.free();
});

test('plans round trip through AsyncHow records and latentlab JSON', () => {
  const plans = parsePlans(fixture('para_benchmark.jsonl'));
  assert.equal(plans.length, 200);
  const again = Plan.fromJson(plans[0].toAsyncHow());
  assert.equal(again.title, plans[0].title);
  const asJson = Plan.fromJson(plans[0].toJson());
  assert.equal(asJson.title, plans[0].title);
  for (const p of [again, asJson, ...plans]) p.free();
});
