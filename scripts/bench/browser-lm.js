// Runs in headless Chromium (see browser_lm.mjs). Times, on the page's main thread:
// - open: LanguageModel.fromBytes on the 98 MB GGUF already in memory (the sha256 is checked
//   by crypto.subtle before, timed apart as `sha256_seconds`, as LanguageModel.load does);
// - per round: generate(PROMPT, {maxTokens: 64}) greedy: prompt tokens/s = prompt_tokens /
//   seconds_to_first_token, generation tokens/s = the CLI's tokens_per_second (tokens after
//   the first over the time after the first), and the time to first token after a 9-token
//   prompt. Best and range over the rounds;
// - the same generation with `setActivations('int8')` (8-bit inputs to the quantised
//   products), alternating with the default f32 within each round.
import init, { LanguageModel, wasmVariant } from '/pkg/encoders.js';

const params = new URLSearchParams(location.search);
const rounds = Number(params.get('rounds') ?? 3);
const relaxedSimd = params.get('relaxed') === '0' ? false : undefined;

function summary(values) {
  return { best: Math.max(...values), min: Math.min(...values), n: values.length };
}

async function main() {
  await init({ relaxedSimd });
  const manifest = await (await fetch('/models/manifest.json')).json();
  const entry = manifest.language_models[0];
  const bytes = new Uint8Array(await (await fetch(`/models/${entry.file}`)).arrayBuffer());
  let t = performance.now();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const sha = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  const sha256Seconds = (performance.now() - t) / 1000;
  if (sha !== entry.sha256) throw new Error(`sha256 ${sha} is not the manifest's`);
  t = performance.now();
  const model = LanguageModel.fromBytes(bytes, null);
  const openSeconds = (performance.now() - t) / 1000;
  model.generate('Hello', { maxTokens: 4 }); // warm-up
  const prompt = [];
  const gen = [];
  const ttft = [];
  const int8 = { prompt: [], gen: [], text: null };
  let last = null;
  for (let r = 0; r < rounds; r++) {
    last = model.generate(window.__prompt, { maxTokens: 64 });
    prompt.push(last.prompt_tokens / last.seconds_to_first_token);
    gen.push(last.tokens_per_second);
    ttft.push(model.generate('The capital of France is', { maxTokens: 1 }).seconds_to_first_token);
    model.setActivations('int8');
    const q = model.generate(window.__prompt, { maxTokens: 64 });
    model.setActivations('f32');
    int8.prompt.push(q.prompt_tokens / q.seconds_to_first_token);
    int8.gen.push(q.tokens_per_second);
    int8.text = q.text;
  }
  return {
    variant: wasmVariant(),
    user_agent: navigator.userAgent,
    sha256_seconds: sha256Seconds,
    open_seconds: openSeconds,
    prompt_tokens: last.prompt_tokens,
    generated: last.tokens.length,
    prompt_tps: summary(prompt),
    gen_tps: summary(gen),
    ttft_seconds_short_prompt: { best: Math.min(...ttft), max: Math.max(...ttft) },
    text: last.text,
    int8: { prompt_tps: summary(int8.prompt), gen_tps: summary(int8.gen), text: int8.text },
  };
}

main().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e?.stack ?? e) }; });
