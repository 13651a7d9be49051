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
