// Runs in headless Chromium (see browser_encoders.mjs): the bundled image encoder's ONNX file
// through latentlab's wasm (tract) and through onnxruntime-web's wasm backend, one thread each,
// on the 12 gallery photos. Decoding (createImageBitmap) is outside the timings; latentlab's
// time includes its letterbox and normalisation, onnxruntime-web gets a ready 1×3×224×224
// tensor. Both are timed after one warm-up run; best of `repeats`.
import init, { ImageEmbedder } from '/pkg/latentlab.js';
import * as ort from '/.cache/bench/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';

const params = new URLSearchParams(location.search);
const repeats = Number(params.get('repeats') ?? 3);

async function rgba(url) {
  const bitmap = await createImageBitmap(await (await fetch(url)).blob());
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
}

async function best(run) {
  await run();
  let fastest = Infinity;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    await run();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return fastest;
}

async function main() {
  const manifest = await (await fetch('/models/manifest.json')).json();
  const entry = manifest.models.find((m) => m.kind === 'image');
  const bytes = new Uint8Array(await (await fetch(`/models/${entry.file}`)).arrayBuffer());
  const gallery = await (await fetch('/www/public/gallery/gallery.json')).json();
  const files = (gallery.items ?? gallery.images ?? gallery).map((i) => i.file ?? i);
  const images = await Promise.all(files.map((f) => rgba(`/www/public/gallery/${f}`)));

  await init();
  const embedder = ImageEmbedder.fromBytes(entry, bytes);
  const latentlab = await best(async () => embedder.embed(images));

  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = '/.cache/bench/node_modules/onnxruntime-web/dist/';
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const input = new ort.Tensor('float32', new Float32Array(3 * 224 * 224).fill(0.1), [1, 3, 224, 224]);
  const name = session.inputNames[0];
  const onnxruntime = await best(async () => {
    for (let i = 0; i < images.length; i++) await session.run({ [name]: input });
  });
  return {
    images: images.length,
    latentlab_ms_per_image: latentlab / images.length,
    onnxruntime_web_ms_per_image: onnxruntime / images.length,
    ratio: latentlab / onnxruntime,
    onnxruntime_web: ort.env.versions?.web ?? 'unknown',
    user_agent: navigator.userAgent,
  };
}

main().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e?.stack ?? e) }; });
