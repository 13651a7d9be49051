// The language model through the npm package under Node: a tiny random GGUF (untrained,
// written by the package itself) gives the same tokens, text and log-probabilities as the
// native CLI, bit for bit; the real SmolLM2 says Paris and scores a paragraph as
// transformers does; bad input is an Error naming it, never a trap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, mkdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LanguageModel, ChoiceTask, wilsonInterval, tinyRandomLlamaGguf,
  repoRetrieve, repoScore, repoEvaluate, repoSweep, elicitManipulations,
} from 'latentlab/encoders';

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

test('elicitScore: PMI and GPPM equal the log-probabilities score() gives, TVD-MI a critic difference, bad options named', () => {
  const model = LanguageModel.fromBytes(tinyRandomLlamaGguf(3));
  const word = 'tea';
  const task = `A dictionary definition of the word "${word}":\n`;
  const report = 'a drink made from leaves';
  const peer = 'an infusion of dried leaves';
  const pmi = model.elicitScore(report, peer, { word });
  assert.equal(pmi.mechanism, 'pmi');
  const withPeer = model.score(report, `${task}${peer}\n`);
  const alone = model.score(report, task);
  const expected = (withPeer.logprob - alone.logprob) / withPeer.tokens.length;
  assert.ok(Math.abs(pmi.score - expected) < 1e-4, `${pmi.score} vs ${expected}`);
  const gppm = model.elicitScore(report, peer, { word, mechanism: 'gppm' });
  assert.ok(Math.abs(gppm.score - model.score(peer, `${task}${report}\n`).logprob) < 1e-4);
  const tvd = model.elicitScore(report, peer, { word, mechanism: 'tvd-mi', otherPeer: 'a large boat', threshold: -100 });
  assert.equal(tvd.score, 0, 'both PMIs above a threshold of -100: critic 1 - 1');
  const custom = model.elicitScore(report, peer, { template: 'Define:\n' });
  const c = (model.score(report, `Define:\n${peer}\n`).logprob - model.score(report, 'Define:\n').logprob) / withPeer.tokens.length;
  assert.ok(Math.abs(custom.score - c) < 1e-4);
  assert.throws(() => model.elicitScore(report, peer, {}), /options\.word is missing/);
  assert.throws(() => model.elicitScore('  ', peer, { word }), /report is empty/);
  assert.throws(() => model.elicitScore(report, peer, { word, mechanism: 'vote' }), /vote/);
  assert.throws(() => model.elicitScore(report, peer, { word, mechanism: 'tvd-mi' }), /otherPeer is missing/);
  assert.throws(() => model.elicitScore(report, peer, { word, threshold: NaN }), /threshold/);
  assert.throws(() => model.elicitScore(report, peer, { word, peers: 2 }), /peers/);
  model.free();
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

test('int8 activations: wasm (simd128) and the native CLI (AVX2) give the same bits', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'models/manifest.json'), 'utf8'));
  const real = join(root, 'models/smollm2-135m-instruct/model.gguf');
  const dir = mkdtempSync(join(tmpdir(), 'latentlab-int8-'));
  const tiny = join(dir, 'tiny-random.gguf');
  writeFileSync(tiny, tinyRandomLlamaGguf(5));
  // The tiny model's rows are 2–3 blocks (the kernels' tails), SmolLM2's 18 and 48 (groups of four).
  for (const [file, sha256] of [[tiny, null], [real, manifest.language_models[0].sha256]]) {
    const model = LanguageModel.fromBytes(readFileSync(file), sha256);
    assert.equal(model.activations, 'f32');
    model.setActivations('int8');
    assert.equal(model.activations, 'int8');
    const g = model.generate('The capital of France is', { maxTokens: 6 });
    const run = spawnSync(cli, ['lm', 'generate', '--model', file, '--prompt', 'The capital of France is',
      '--max-tokens', '6', '--activations', 'int8'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const native = JSON.parse(run.stdout);
    assert.deepEqual(g.tokens, native.tokens);
    assert.deepEqual(g.logprobs, native.logprobs, `${file}: int8 log-probabilities are bit-identical`);
    if (file === real) assert.ok(g.text.startsWith(' Paris'), g.text);
    assert.throws(() => model.setActivations('int4'), (e) => e instanceof Error && /activations is "int4"/.test(e.message));
  }
});

test('sketches in wasm give the native CLI\'s values and log-probabilities', () => {
  const bytes = tinyRandomLlamaGguf(3);
  const model = LanguageModel.fromBytes(bytes);
  const template = 'the cat[A] in the[B].\nwhere A in [" sat", " ran"] and INT(B) and len(TOKENS(B)) < 3';
  const dir = mkdtempSync(join(tmpdir(), 'latentlab-sketch-'));
  const file = join(dir, 'tiny-random.gguf');
  writeFileSync(file, bytes);
  writeFileSync(join(dir, 't.txt'), template);
  for (const decoder of ['argmax', 'beam_var', 'var']) {
    const steps = [];
    const r = model.sketch(template, { decoder, beams: 2 }, (s) => { steps.push(s); });
    assert.ok(steps.length > 0);
    for (const s of steps) assert.equal(s.segments.map((p) => p[0]).join(''), s.text);
    assert.equal(r.segments.map((p) => p[0]).join(''), r.text);
    assert.deepEqual(r.segments.filter((p) => p[1] !== null).map((p) => p[1]), ['A', 'B']);
    const run = spawnSync(cli, ['sketch', 'run', '--model', file, '--template', join(dir, 't.txt'),
      '--decoder', decoder, '--beams', '2'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const native = JSON.parse(run.stdout);
    assert.deepEqual(r.values, native.values, decoder);
    assert.equal(r.logprob, native.logprob, `${decoder}: bit-identical joint log-probability`);
    assert.equal(r.template_logprob, native.template_logprob);
    assert.equal(r.decoder, decoder);
  }
  let n = 0;
  assert.throws(() => model.sketch(template, {}, () => (++n < 2)), /the sketch was cancelled/);
  assert.throws(() => model.sketch('a[X', {}), /template line 1, column 2/);
  assert.throws(() => model.sketch(template, { decoder: 'greedy' }), /options.decoder is "greedy"/);
  assert.throws(() => model.sketch(template, { beam: 2 }), /unknown sketch options key "beam"/);
});

test('ChoiceTask and evaluateChoice answer as `latentlab sketch eval` does', () => {
  const bytes = tinyRandomLlamaGguf(3);
  const model = LanguageModel.fromBytes(bytes);
  const json = readFileSync(join(root, 'www/public/bigbench/date_understanding.json'), 'utf8');
  const task = ChoiceTask.fromBigBench('date_understanding', json);
  assert.equal(task.length, 369);
  assert.equal(task.example(0).options.length, 6);
  assert.equal(task.example(0).lead, `Q: ${task.example(0).input.trimEnd()}\nA: The date is`);
  const dir = mkdtempSync(join(tmpdir(), 'latentlab-eval-'));
  const file = join(dir, 'tiny-random.gguf');
  writeFileSync(file, bytes);
  for (const [mode, decoder] of [['rank', undefined], ['sketch', 'beam_var'], ['direct', undefined]]) {
    const options = { mode, maxTokens: 4, ...(decoder ? { decoder } : {}) };
    const ours = [0, 1].map((i) => model.evaluateChoice(task, i, options));
    const args = ['sketch', 'eval', '--model', file, '--task', 'date_understanding', '--mode', mode,
      '--limit', '2', '--max-tokens', '4', '--per-example', ...(decoder ? ['--decoder', decoder] : [])];
    const run = spawnSync(cli, args, { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const native = JSON.parse(run.stdout);
    assert.deepEqual(ours.map((o) => o.predicted), native.examples.map((e) => e.predicted), mode);
    assert.deepEqual(ours.map((o) => o.output), native.examples.map((e) => e.output), mode);
  }
  assert.deepEqual(Array.from(wilsonInterval(0, 0)), [0, 1]);
  assert.throws(() => wilsonInterval(3, 2), /more than n/);
  assert.throws(() => ChoiceTask.fromBigBench('arithmetic', json), /task "arithmetic"/);
  assert.throws(() => ChoiceTask.fromBigBench('date_understanding', '{"examples": []}'), /no examples/);
  assert.throws(() => model.evaluateChoice(task, 9999, { mode: 'rank' }), /no example 9999/);
  assert.throws(() => model.evaluateChoice(task, 0, { mode: 'vote' }), /options.mode is "vote"/);
});

test('LanguageModel.load: progress, sha256, abort and bad options', async () => {
  const bytes = tinyRandomLlamaGguf(5);
  const { createHash } = await import('node:crypto');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const served = (body) => async () => new Response(body, { headers: { 'content-length': String(body.length) } });
  const phases = [];
  const model = await LanguageModel.load({
    url: 'http://models.invalid/tiny.gguf', sha256, fetch: served(bytes), cache: false,
    onProgress: (p) => phases.push(p.phase),
  });
  assert.match(model.name, /random/);
  assert.equal(phases.at(-1), 'open');
  assert.ok(phases.includes('download'));
  const fromEntry = await LanguageModel.load({
    entry: { name: 'tiny', file: 'tiny.gguf', sha256 }, baseUrl: 'http://models.invalid/m/', fetch: async (url) => {
      assert.equal(url, 'http://models.invalid/m/tiny.gguf');
      return served(bytes)();
    },
  });
  assert.equal(fromEntry.vocabSize, model.vocabSize);
  assert.equal(model.activations, 'f32');
  const fast = await LanguageModel.load({ url: 'http://models.invalid/tiny.gguf', fetch: served(bytes), cache: false, activations: 'int8' });
  assert.equal(fast.activations, 'int8');
  await assert.rejects(LanguageModel.load({ url: 'http://x.invalid/a.gguf', fetch: served(bytes), activations: 'fp8' }),
    /activations is "fp8", expected "f32" or "int8"/);
  await assert.rejects(LanguageModel.load({ url: 'http://x.invalid/a.gguf', sha256: 'ab'.repeat(32), fetch: served(bytes) }),
    /sha256 is [0-9a-f]{64}, expected abab/);
  await assert.rejects(LanguageModel.load({ url: 'http://x.invalid/a.gguf', sha256: 'ABC', fetch: served(bytes) }), /64 lowercase hex/);
  await assert.rejects(LanguageModel.load({}), /needs \{url\}/);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(LanguageModel.load({ url: 'http://x.invalid/a.gguf', signal: controller.signal, fetch: served(bytes) }),
    (e) => e.name === 'AbortError');
  await assert.rejects(LanguageModel.load({ url: 'http://x.invalid/a.gguf', fetch: served(bytes.slice(0, 100)) }), /truncated|GGUF/);
});

test('the site checks the BIG-bench files it fetches against the committed bytes', async () => {
  // The pages fetch data through fetchVerified, which checks each file against the sha256
  // table built into the bundle (www/integrity-plugin.js); the table must pin the committed files.
  const { createHash } = await import('node:crypto');
  const { builtIntegrityTable } = await import('./browser.mjs');
  const ops = readFileSync(join(root, 'www/src/lm-ops.js'), 'utf8');
  assert.match(ops, /await fetchVerified\(url\);\n\s*if \(!response\.ok\)[^\n]*\n\s*tasks\.set\(name, ChoiceTask\.fromBigBench/,
    'www/src/lm-ops.js fetches the BIG-bench tasks through fetchVerified');
  const table = await builtIntegrityTable();
  for (const name of ['date_understanding', 'tracking_shuffled_objects_three']) {
    const digest = createHash('sha256').update(readFileSync(join(root, `www/public/bigbench/${name}.json`))).digest('hex');
    assert.equal(table[`bigbench/${name}.json`], digest, `the built site pins bigbench/${name}.json at the committed bytes`);
  }
});

/** A small repository of three Python files whose lines share names, so retrieval finds chunks. */
function tinyRepository(dir) {
  const files = [];
  for (const [name, base] of [['core.py', 'alpha'], ['util.py', 'beta'], ['extra/io.py', 'gamma']]) {
    const lines = ['import os', ''];
    for (let i = 0; i < 16; i += 1) lines.push(`${base}_${i} = os.path.join("${base}", str(${i} * ${i + 3}))`);
    lines.push(`def ${base}_total(values):`, '    return sum(v for v in values if v)', '');
    files.push({ path: name, text: lines.join('\n') });
  }
  mkdirSync(join(dir, 'pkg', 'extra'), { recursive: true });
  for (const f of files) writeFileSync(join(dir, 'pkg', f.path), f.text);
  return files;
}

test('repoRun gives the native CLI\'s completions, retrieval and scores; the policies its numbers', () => {
  const bytes = tinyRandomLlamaGguf(3);
  const model = LanguageModel.fromBytes(bytes);
  const dir = mkdtempSync(join(tmpdir(), 'latentlab-repo-'));
  const files = tinyRepository(dir);
  const gguf = join(dir, 'tiny-random.gguf');
  writeFileSync(gguf, bytes);
  const cliRun = (args) => {
    const r = spawnSync(cli, ['repo', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const sizes = ['--max-sequence', '256', '--context-tokens', '64'];
  cliRun(['tasks', '--root', dir, '--out', join(dir, 'tasks.jsonl'), '--n', '3']);
  const tasks = readFileSync(join(dir, 'tasks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(tasks.length, 3);
  const oracle = JSON.parse(cliRun(['eval', '--tasks', join(dir, 'tasks.jsonl'), '--root', dir, '--policy', 'oracle',
    '--model', gguf, '--runs', join(dir, 'runs.jsonl'), ...sizes]));
  const native = readFileSync(join(dir, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  const options = { maxSequence: 256, contextTokens: 64 };
  const runs = tasks.map((task) => model.repoRun(task, files, options));
  for (const [i, run] of runs.entries()) {
    for (const side of ['without', 'with']) {
      assert.equal(run[side].completion.text, native[i][side].completion.text, `${run.task_id} ${side}`);
      assert.deepEqual(run[side].completion.logprobs, native[i][side].completion.logprobs);
      // f32 values: JSON writes their shortest decimal, wasm hands over the exact double.
      assert.deepEqual(run[side].completion.hidden.map(Math.fround), native[i][side].completion.hidden.map(Math.fround));
      assert.deepEqual(run[side].scores, native[i][side].scores);
      assert.equal(run[side].completion.prompt_tokens, native[i][side].completion.prompt_tokens);
    }
    assert.deepEqual(run.retrieved, native[i].retrieved);
    assert.ok(run.retrieved.length >= 1 && run.cross_file_context.startsWith('# Here are some relevant code fragments'));
    const task = tasks[i];
    const left = files.find((f) => f.path === task.path).text.split('\n').slice(0, task.line - 1).join('\n') + '\n';
    assert.deepEqual(repoRetrieve(files, task.path, left), run.retrieved);
    assert.deepEqual(repoScore(run.with.completion.text, task.target), run.with.scores);
    assert.equal(run.retrieval_helps, run.with.scores.edit_similarity > run.without.scores.edit_similarity);
  }
  const mine = repoEvaluate(runs, { policy: 'oracle' });
  for (const key of ['n', 'exact_match', 'edit_similarity', 'edit_similarity_repoeval', 'retrieval_rate']) {
    assert.equal(mine[key], oracle[key], key);
  }
  assert.equal(repoEvaluate(native, { policy: 'always' }).retrieval_rate, 1, 'the CLI\'s --runs lines are runs too');
  const sweep = repoSweep(runs, { signal: 'entropy', steps: 5 });
  assert.equal(sweep[0].retrieval_rate, 0);
  assert.equal(sweep[sweep.length - 1].retrieval_rate, 1);

  // Bad input is named.
  const task = tasks[0];
  assert.throws(() => model.repoRun({ ...task, sha256: '0'.repeat(64) }, files, options), /has sha256 [0-9a-f]{64}, the task was made from 0{64}/);
  assert.throws(() => model.repoRun({ ...task, path: 'gone.py' }, files, options), /"gone.py" is not among the 3 files given/);
  assert.throws(() => model.repoRun(task, [], options), /files is empty/);
  assert.throws(() => model.repoRun(task, 'core.py', options), /files must be an array/);
  assert.throws(() => model.repoRun({ ...task, line: 999 }, files, options), /fewer than 999 lines/);
  assert.throws(() => model.repoRun(task, files, { maxSequence: 4096 }), /options.maxSequence is 4096: the model's context holds 256 tokens/);
  assert.throws(() => model.repoRun(task, files, { maxSeq: 256 }), /unknown repoRun options key "maxSeq"/);
  assert.throws(() => model.repoRun(task, files, { maxSequence: 100, contextTokens: 64 }), /max_sequence is 100/);
  assert.throws(() => model.repoRun({ task_id: 'x' }, files, options), /task: missing field/);
  assert.throws(() => repoEvaluate(runs, { policy: 'sometimes' }), /options.policy is "sometimes"/);
  assert.throws(() => repoEvaluate([], {}), /runs is empty/);
  assert.throws(() => repoEvaluate(runs, { policy: 'probe' }), /repositor/);
  assert.throws(() => repoSweep(runs, { steps: 1 }), /from 2 to 1001 points/);
  assert.throws(() => repoSweep(runs, { signal: 'loudness' }), /options.signal is "loudness"/);
});

test('elicitManipulations: the five manipulations `latentlab elicit score` sets against the honest report', () => {
  const report = 'a hot drink made by pouring water on dried leaves';
  const peer = 'an infusion of the leaves of the tea plant';
  const out = elicitManipulations(report, peer, 'a large boat for carrying goods', 4);
  assert.deepEqual(out.map((m) => m.manipulation), ['shuffled', 'truncated', 'generic', 'other_word', 'copied']);
  const text = Object.fromEntries(out.map((m) => [m.manipulation, m.report]));
  assert.deepEqual(text.shuffled.split(' ').sort(), report.split(' ').sort());
  assert.notEqual(text.shuffled, report);
  assert.equal(text.truncated, 'a hot drink made by');
  assert.equal(text.generic, 'a thing or a kind of thing');
  assert.equal(text.other_word, 'a large boat for carrying goods');
  assert.equal(text.copied, peer);
  assert.deepEqual(elicitManipulations(report, peer, 'x y', 4), [...out.slice(0, 3), { manipulation: 'other_word', report: 'x y' }, out[4]]);
  assert.throws(() => elicitManipulations(' ', peer, 'x', 0), /report is empty/);
  assert.throws(() => elicitManipulations(report, peer, 'x', -1), /seed is -1/);
});
