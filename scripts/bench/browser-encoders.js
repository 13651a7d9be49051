// Runs in headless Chromium (see browser_encoders.mjs): the bundled encoders' ONNX files
// through latentlab's wasm (tract) and through onnxruntime-web's wasm backend, one thread each.
// Images: the 12 gallery photos, one at a time. Text throughput: the Tux Paint captions in
// batches of 32 (below). Text latency: the 9 fixture sentences one at a time (3 to 256 tokens).
// latentlab tokenises inside its timing; onnxruntime-web gets the reference token ids
// (tests/fixtures/encoders/sentences.json). Decoding (createImageBitmap) is outside the timings;
// latentlab's time includes its letterbox and normalisation, onnxruntime-web gets a ready
// 1×3×224×224 tensor. Both are timed after a warm-up (see warmUp), taking turns on every photo,
// sentence and batch (see interleaved); best and median of `repeats` passes for each.
import init, { ImageEmbedder, TextEmbedder, wasmVariant } from '/pkg/encoders.js';
import * as ort from '/.cache/bench/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';

const params = new URLSearchParams(location.search);
const repeats = Number(params.get('repeats') ?? 3);
// `relaxed=0` measures the SIMD-only build; by default the build the package picks.
const relaxedSimd = params.get('relaxed') === '0' ? false : undefined;

async function rgba(url) {
  const bitmap = await createImageBitmap(await (await fetch(url)).blob());
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
}

async function timed(run) {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs every unit once, and the whole list again until 1.5 s have gone: V8 starts wasm functions
 * in its baseline compiler and swaps in optimised code in the background, so right after load one
 * call was not always enough (one run: an 11-token sentence 29 ms, another of 11 tokens a second
 * later 21.5 ms, in the same page).
 */
async function warmUp(units) {
  const start = performance.now();
  do for (const unit of units) await unit(); while (performance.now() - start < 1500);
}

/**
 * Times paired units of work — `pairs[i]` is the same job for both engines (one photo, one
 * sentence, one batch) — with the two engines taking turns on every pair, the order alternating
 * from pair to pair and repeat to repeat. This VM's speed drifts by up to 2x over seconds to
 * minutes; when each engine ran a whole pass (10 s for the batches) before the other, a slow
 * stretch could land on one engine's passes only and gave ratios of 2.5x that the next run did not
 * repeat. Pairing keeps each comparison within a few hundred milliseconds.
 * Returns, per engine, best and median over the repeats of the pass's total, and each pair's best.
 */
async function interleaved(pairs) {
  await warmUp(pairs.map((p) => p.latentlab));
  await warmUp(pairs.map((p) => p.onnxruntime));
  const totals = { latentlab: [], onnxruntime: [] };
  const perPair = pairs.map(() => ({ latentlab: Infinity, onnxruntime: Infinity }));
  for (let r = 0; r < repeats; r++) {
    const total = { latentlab: 0, onnxruntime: 0 };
    for (let i = 0; i < pairs.length; i++) {
      const order = (r + i) % 2 === 0 ? ['latentlab', 'onnxruntime'] : ['onnxruntime', 'latentlab'];
      for (const engine of order) {
        const ms = await timed(pairs[i][engine]);
        total[engine] += ms;
        perPair[i][engine] = Math.min(perPair[i][engine], ms);
      }
    }
    totals.latentlab.push(total.latentlab);
    totals.onnxruntime.push(total.onnxruntime);
  }
  return {
    latentlab: Math.min(...totals.latentlab),
    onnxruntime: Math.min(...totals.onnxruntime),
    latentlabMedian: median(totals.latentlab),
    onnxruntimeMedian: median(totals.onnxruntime),
    perPair,
    // Every repeat's totals, in order: a slow stretch shows whether it hit one engine or both.
    totals,
  };
}

async function main() {
  const manifest = await (await fetch('/models/manifest.json')).json();
  const entry = manifest.models.find((m) => m.kind === 'image');
  const bytes = new Uint8Array(await (await fetch(`/models/${entry.file}`)).arrayBuffer());
  const gallery = await (await fetch('/www/public/gallery/gallery.json')).json();
  const files = (gallery.items ?? gallery.images ?? gallery).map((i) => i.file ?? i);
  const images = await Promise.all(files.map((f) => rgba(`/www/public/gallery/${f}`)));

  await init({ relaxedSimd });
  const embedder = ImageEmbedder.fromBytes(entry, bytes);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = '/.cache/bench/node_modules/onnxruntime-web/dist/';
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const input = new ort.Tensor('float32', new Float32Array(3 * 224 * 224).fill(0.1), [1, 3, 224, 224]);
  const name = session.inputNames[0];
  const image = await interleaved(images.map((picture) => ({
    latentlab: async () => embedder.embed([picture]),
    onnxruntime: async () => session.run({ [name]: input }),
  })));
  const textEntry = manifest.models.find((m) => m.kind === 'text');
  const textBytes = new Uint8Array(await (await fetch(`/models/${textEntry.file}`)).arrayBuffer());
  const tokenizer = new Uint8Array(await (await fetch(`/models/${textEntry.tokenizer}`)).arrayBuffer());
  const { sentences, token_ids: tokenIds } = await (await fetch('/tests/fixtures/encoders/sentences.json')).json();
  const textEmbedder = TextEmbedder.fromBytes(textEntry, textBytes, tokenizer);
  const textSession = await ort.InferenceSession.create(textBytes, { executionProviders: ['wasm'] });
  const feeds = tokenIds.map((ids) => {
    const shape = [1, ids.length];
    const tensor = (values) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), shape);
    return {
      input_ids: tensor(ids),
      attention_mask: tensor(ids.map(() => 1)),
      token_type_ids: tensor(ids.map(() => 0)),
    };
  });
  const text = await interleaved(sentences.map((sentence, i) => ({
    latentlab: async () => textEmbedder.embed([sentence]),
    onnxruntime: async () => textSession.run(feeds[i]),
  })));
  // Where the time goes by length: each sentence's best.
  const bySentence = text.perPair.map((best, i) => ({
    tokens: tokenIds[i].length,
    latentlab_ms: Math.round(best.latentlab * 10) / 10,
    onnxruntime_web_ms: Math.round(best.onnxruntime * 10) / 10,
  }));
  // Throughput: the Tux Paint captions (the site's sentences where they are not installed) in
  // batches of 32, as an index is built. Both engines get the same batches padded to their
  // longest text; onnxruntime-web's token ids come from latentlab's tokenizer (equal to
  // Python's, tests/encoders.rs) and are made outside its timing.
  const captions = await (async () => {
    const stamps = await fetch('/www/public/stamps/captions.json');
    if (stamps.ok) return (await stamps.json()).items.map((i) => i.caption);
    const { sentences: site } = await (await fetch('/www/public/sentences.json')).json();
    return Array.from({ length: 430 }, (_, i) => site[i % site.length]);
  })();
  const batches = [];
  for (let i = 0; i < captions.length; i += 32) batches.push(captions.slice(i, i + 32));
  const batchFeeds = batches.map((batch) => {
    const ids = textEmbedder.tokenIds(batch);
    const longest = Math.max(...ids.map((t) => t.length));
    const shape = [batch.length, longest];
    const padded = (f) => BigInt64Array.from(ids.flatMap((t) => Array.from({ length: longest }, (_, j) => f(t, j))), BigInt);
    return {
      input_ids: new ort.Tensor('int64', padded((t, j) => t[j] ?? 0), shape),
      attention_mask: new ort.Tensor('int64', padded((t, j) => (j < t.length ? 1 : 0)), shape),
      token_type_ids: new ort.Tensor('int64', padded(() => 0), shape),
    };
  });
  const throughput = await interleaved(batches.map((batch, i) => ({
    latentlab: async () => textEmbedder.embed(batch),
    onnxruntime: async () => textSession.run(batchFeeds[i]),
  })));
  const per = (total, n) => Math.round((1000 * total) / n) / 1000;
  return {
    sentences: sentences.length,
    latentlab_text_ms_per_sentence: per(text.latentlab, sentences.length),
    onnxruntime_web_text_ms_per_sentence: per(text.onnxruntime, sentences.length),
    text_ratio: text.latentlab / text.onnxruntime,
    text_median_ratio: text.latentlabMedian / text.onnxruntimeMedian,
    text_by_sentence: bySentence,
    captions: captions.length,
    latentlab_batched_ms_per_caption: per(throughput.latentlab, captions.length),
    onnxruntime_web_batched_ms_per_caption: per(throughput.onnxruntime, captions.length),
    batched_ratio: throughput.latentlab / throughput.onnxruntime,
    batched_median_ratio: throughput.latentlabMedian / throughput.onnxruntimeMedian,
    images: images.length,
    latentlab_ms_per_image: per(image.latentlab, images.length),
    onnxruntime_web_ms_per_image: per(image.onnxruntime, images.length),
    ratio: image.latentlab / image.onnxruntime,
    median_ratio: image.latentlabMedian / image.onnxruntimeMedian,
    totals: { images: image.totals, text: text.totals, batched: throughput.totals },
    latentlab_wasm: wasmVariant(),
    onnxruntime_web: ort.env.versions?.web ?? 'unknown',
    user_agent: navigator.userAgent,
  };
}

main().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e?.stack ?? e) }; });
