// The language model through the npm package under Node: a tiny random GGUF (untrained,
// written by the package itself) gives the same tokens, text and log-probabilities as the
// native CLI, bit for bit; the real SmolLM2 says Paris and scores a paragraph as
// transformers does; bad input is an Error naming it, never a trap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanguageModel, tinyRandomLlamaGguf } from 'latentlab';

const root = new URL('../../', import.meta.url).pathname;
const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
const cli = join(targetDir, 'debug', 'latentlab');

test('wasm and the native CLI give the same sampled text from the same seed', (t) => {
  const bytes = tinyRandomLlamaGguf(3);
  const model = LanguageModel.fromBytes(bytes);
  assert.match(model.name, /random/);
  const options = { decoder: 'sample', temperature: 1.5, seed: 11, maxTokens: 16 };
  const a = model.generate('in the', options);
  const b = model.generate('in the', options);
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(a.tokens.length, a.logprobs.length);
  if (!existsSync(cli)) {
    assert.fail(`${cli} is missing: cargo test (or cargo build) builds it before the JS tests`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'latentlab-lm-'));
  const file = join(dir, 'tiny-random.gguf');
  writeFileSync(file, bytes);
  const run = spawnSync(cli, ['lm', 'generate', '--model', file, '--prompt', 'in the', '--decoder', 'sample',
    '--temperature', '1.5', '--seed', '11', '--max-tokens', '16'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const native = JSON.parse(run.stdout);
  assert.deepEqual(a.tokens, native.tokens);
  assert.equal(a.text, native.text);
  assert.deepEqual(a.logprobs, native.logprobs, 'log-probabilities are bit-identical');
});

test('streaming, cancelling and scoring on the tiny model', () => {
  const model = LanguageModel.fromBytes(tinyRandomLlamaGguf(3));
  let streamed = '';
  const full = model.generate('a', { maxTokens: 8 }, (e) => { streamed += e.text; });
  assert.equal(streamed, full.text);
  let seen = 0;
  const cut = model.generate('a', { maxTokens: 8 }, () => (++seen < 3));
  assert.equal(cut.stop, 'cancelled');
  assert.equal(cut.tokens.length, 3);
  assert.deepEqual(cut.tokens, full.tokens.slice(0, 3));
  const s = model.score(' cat sat', 'the');
  assert.equal(s.per_token.length, s.tokens.length);
  assert.ok(Math.abs(s.per_token.reduce((x, y) => x + y, 0) - s.logprob) < 1e-9);
  assert.deepEqual(Array.from(model.tokenize(' the')), [261], 'the merges Ġ t, h e, Ġt he');
  assert.equal(model.detokenize(model.tokenize('the thin cat')), 'the thin cat');
});

test('bad input is an Error naming it', () => {
  const model = LanguageModel.fromBytes(tinyRandomLlamaGguf(3));
  const named = (re) => (e) => e instanceof Error && !(e instanceof WebAssembly.RuntimeError) && re.test(e.message);
  assert.throws(() => LanguageModel.fromBytes(new Uint8Array([1, 2, 3, 4, 5])), named(/not a GGUF file/));
  const bytes = tinyRandomLlamaGguf(3);
  assert.throws(() => LanguageModel.fromBytes(bytes.slice(0, 5000)), named(/truncated/));
  assert.throws(() => LanguageModel.fromBytes(bytes, '00'.repeat(32)), named(/sha256/));
  assert.throws(() => model.generate('a', { decoder: 'nucleus' }), named(/options.decoder is "nucleus"/));
  assert.throws(() => model.generate('a', { maxToken: 3 }), named(/unknown generate options key "maxToken"/));
  assert.throws(() => model.generate('a', { decoder: 'sample', temperature: 0 }), named(/temperature is 0/));
  assert.throws(() => model.generate('', {}), named(/the prompt is empty/));
  assert.throws(() => model.generate('a '.repeat(400), {}), named(/context of 256 tokens/));
  assert.throws(() => model.detokenize([1e6]), named(/outside the vocabulary/));
  // The module still works afterwards.
  assert.ok(model.generate('a', { maxTokens: 2 }).tokens.length > 0);
});

test('SmolLM2 in wasm: greedy Paris, and the paragraph scored as transformers does', () => {
  const file = join(root, 'models/smollm2-135m-instruct/model.gguf');
  const manifest = JSON.parse(readFileSync(join(root, 'models/manifest.json'), 'utf8'));
  const entry = manifest.language_models[0];
  const model = LanguageModel.fromBytes(readFileSync(file), entry.sha256);
  const g = model.generate('The capital of France is', { maxTokens: 3 });
  assert.ok(g.text.startsWith(' Paris'), g.text);
  const fx = JSON.parse(readFileSync(join(root, 'tests/fixtures/lm/loglik.json'), 'utf8'));
  const s = model.score(fx.natural.text);
  assert.deepEqual(Array.from(s.tokens), fx.natural.ids.slice(1));
  assert.ok(Math.abs(s.mean_logprob - fx.natural.mean_logprob) < 1e-3, `${s.mean_logprob} vs ${fx.natural.mean_logprob}`);
});
