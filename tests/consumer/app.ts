// A consumer of the npm package, as a TypeScript user writes one: every export of `latentlab`,
// `latentlab/encoders`, `latentlab/worker`, `latentlab/worker-host` and `latentlab/images` used once with arguments
// of the types its .d.ts declares. Checked by `tsc --noEmit --strict` (tests/js/consumers.test.mjs,
// which also checks that no export is missing here); never run.
import init, {
  EmbeddingIndex, Plan, Steering, alignRepresentations, alignRepresentationsAsync, deleteIndex, estimateTiny,
  evaluateSteering, fitTinyBenchmark, formatSeconds, graphEncodings, initSync, listIndexes, loadIndex, m3g, m3gAsync,
  memoryBudget, multiSinkhorn, multiSinkhornAsync, nearestNeighbors, orderingTemplates, parseDuration, parsePlans,
  pcaProject, relaxedSimdSupported, resampleGaussian, saveIndex, setMemoryBudget, sha256Hex, simulateCollapse, sinkhorn,
  sinkhornAsync, sinkhornCost, start, tinyHoldout, version, wasmVariant, xrmCompare,
} from 'latentlab';
import type { EmbeddingMatrix, SinkhornResult } from 'latentlab';
import initEncoders, {
  ChoiceTask, Encoder, FusionModel, ImageEmbedder, LanguageModel, TextEmbedder, decodeBlob, decodeImage,
  elicitManipulations, evaluateRetrieval, fetchChecked, fetchEncoderFiles, fuseQuery, initSync as initModelsSync,
  isRgbaImage, memoryBudget as modelsMemoryBudget, parseManifest, relaxedSimdSupported as modelsRelaxed, repoEvaluate,
  repoRetrieve, repoScore, repoSweep, resolveEncoderSource, setMemoryBudget as setModelsMemoryBudget,
  sha256Hex as modelsSha256Hex, start as modelsStart, tinyRandomLlamaGguf, toImageInput, version as modelsVersion,
  wasmVariant as modelsVariant, wilsonInterval,
} from 'latentlab/encoders';
import type { ImageInput, ModelEntry, Manifest, AnyImage, EmbeddingMatrix as ModelsMatrix } from 'latentlab/encoders';
import { LatentlabWorker, WorkerPool, crashMessage, defaultPoolSize } from 'latentlab/worker';
import { serveWorker, encoderOps, transfer, isTrap, withModels } from 'latentlab/worker-host';
import { toImageInput as toPixels, isRgbaImage as isPixels, decodeBlob as decode } from 'latentlab/images';

export async function plans(): Promise<string> {
  await init({ relaxedSimd: relaxedSimdSupported() });
  const variant: 'relaxed-simd' | 'simd128' | null = wasmVariant();
  const plan: Plan = Plan.fromJson('{"title":"t","steps":[],"constraints":[]}');
  const all: Plan[] = parsePlans('[]');
  const seconds: Float64Array = parseDuration('5 minutes');
  const text: string = formatSeconds(seconds[0]) + graphEncodings().join() + orderingTemplates().join() + version();
  setMemoryBudget(memoryBudget());
  start();
  const digest: string = sha256Hex(new Uint8Array([1, 2, 3]));
  const interval: Float64Array = wilsonInterval(3, 10);
  plan.free();
  all.forEach((p) => p.free());
  return `${variant} ${text} ${digest} ${interval[0]} ${initSync.length}`;
}

/** The models module has its own init, version, memory budget and sha256 (the same crate). */
export async function modelsModule(): Promise<string> {
  await initEncoders({ relaxedSimd: modelsRelaxed() });
  const variant: 'relaxed-simd' | 'simd128' | null = modelsVariant();
  setModelsMemoryBudget(modelsMemoryBudget());
  modelsStart();
  const same: boolean = modelsVersion() === version() && modelsSha256Hex(new Uint8Array(1)) === sha256Hex(new Uint8Array(1));
  const m: ModelsMatrix = { rows: 0, cols: 0, data: new Float32Array(0) };
  const n: EmbeddingMatrix = m;
  return `${variant} ${same} ${initModelsSync.length} ${n.rows}`;
}

export function optimalTransport(x: Float32Array, y: Float32Array): number {
  const one: SinkhornResult = sinkhorn(x, 4, y, 4, 2, { epsilon: 0.1 });
  const cost = sinkhornCost(new Float32Array(16), 4, 4, {});
  const multi = multiSinkhorn([x, y], [4, 4], 2, {});
  const gap = m3g([x, y], 4, 2, {});
  return one.reg_ot_cost + cost.reg_ot_cost + multi.n_iters + gap.m3g;
}

export async function onGpu(x: Float32Array, y: Float32Array): Promise<string> {
  const a = await sinkhornAsync(x, 4, y, 4, 2, { backend: 'auto' });
  const b = await multiSinkhornAsync([x, y], [4, 4], 2, { backend: 'cpu' });
  const c = await m3gAsync([x, y], 4, 2, {});
  const d = await alignRepresentationsAsync(x, 4, 2, y, 2, { backend: 'gpu', k: 2 });
  return `${a.backend} ${b.backend} ${c.backend} ${d[0].backend}`;
}

export function alignmentAndSteering(x: Float32Array, z: Int32Array): number {
  const scores = alignRepresentations(x, 8, 2, x, 2, { metrics: 'all', k: 3 });
  const neighbours: Uint32Array = nearestNeighbors(x, 8, 2, 3);
  const steering: Steering = Steering.fit(x, 8, 2, z, { method: 'mean-cov', relativeReg: 0.01 });
  const again = Steering.fromJson(steering.toJson());
  const report = evaluateSteering(x, 8, 2, z, { method: 'mean' });
  const pca = pcaProject(x, 8, 2, { components: 1 });
  steering.free();
  again.free();
  return scores.length + neighbours.length + report.n_test + pca.components;
}

export function labs(responses: Float32Array, x: Float32Array): number {
  const collapse = simulateCollapse({ d: 2, runs: 3 });
  const resampled = resampleGaussian(x, 8, 2, { generations: 2 });
  const fit = fitTinyBenchmark(responses, 10, 20, { anchors: 5 }, (done: number, total: number) => done <= total);
  const holdout = tinyHoldout(responses, 10, 20, { anchors: [5] });
  const estimate = estimateTiny('{}', new Float32Array(5));
  const split = { x, y: [0, 1, 0, 1, 0, 1, 0, 1], attribute: [0, 0, 1, 1, 0, 0, 1, 1] };
  const xrm = xrmCompare(split, split, split, 2, { seeds: 1 }, (done, total) => void (done + total));
  const retrieval = evaluateRetrieval(x, x, 8, 2);
  const fused: Float32Array = fuseQuery(x.subarray(0, 2), x.subarray(2, 4), 0.5);
  return collapse.replace.length + resampled.replace_variance.length + fit.anchors.length + holdout.rows.length
    + estimate.irt + xrm.n.test + retrieval.recall_at_1 + fused.length;
}

export function languageModel(): string {
  const model: LanguageModel = LanguageModel.fromBytes(tinyRandomLlamaGguf(1));
  const text = model.detokenize([1, 2]);
  const task: ChoiceTask = ChoiceTask.fromBigBench('task', '{}');
  const manipulated = elicitManipulations('a report', 'a peer', 'another', 0);
  const files = [{ path: 'a.py', text: 'x = 1\n' }];
  const chunks = repoRetrieve(files, 'b.py', 'x = ');
  const scores = repoScore('x = 1', 'x = 2');
  const runs = [{ task_id: 't', repository: 'r', without: null, with: null, retrieval_seconds: null, retrieved: chunks }];
  const policy = repoEvaluate(runs, { policy: 'never' });
  const sweep = repoSweep(runs, { steps: 3 });
  model.free();
  task.free();
  return `${text} ${manipulated.length} ${scores.exact_match} ${policy.n} ${sweep.length}`;
}

export async function encodersAndIndex(entry: ModelEntry, manifestText: string, image: ImageInput): Promise<number> {
  const manifest: Manifest = parseManifest(manifestText);
  const bytes: Uint8Array = await fetchChecked('model.onnx', { sha256: entry.sha256, onProgress: (p) => p.loaded });
  const entries = resolveEncoderSource({ image: entry });
  const files = await fetchEncoderFiles(entry, { baseUrl: 'https://example.org/models/' });
  const encoder: Encoder = Encoder.fromFiles(files);
  const loaded = await Encoder.loadPair(manifest, 'effl0-minilm-bridge', { cache: false });
  const hub = await Encoder.fromPretrained('https://example.org/all-MiniLM-L6-v2/', { dtype: 'q8', pooling: 'mean', maxTokens: 256, signal: AbortSignal.timeout(5000) });
  hub.free();
  const text: EmbeddingMatrix = loaded.embedText(['a cat']);
  const any: AnyImage[] = [image, new Blob([]), 'photo.png', new URL('https://example.org/a.png')];
  const pictures = await loaded.embedImages(any, { maxSide: 512 });
  const direct = ImageEmbedder.fromBytes(entry, bytes).embed([image]);
  const textModel = TextEmbedder.fromBytes(entry, bytes, bytes);
  const fusion = FusionModel.fromBytes('fusion', bytes);
  const pixels: ImageInput = await toImageInput(new Blob([]), { label: 'upload' });
  const same = isRgbaImage(pixels) ? await decodeBlob(new Blob([]), { maxSide: 64 }) : pixels;
  const fromFile: ImageInput = decodeImage(bytes, 'photo.jpg');
  const fromBytes = await toImageInput(new Uint8Array(8), { label: 'bytes' });

  const index = new EmbeddingIndex({ model: 'minilm-l6-v2', storage: 'int8' });
  index.add(['cat'], text.data, [{ album: 'pets' }]);
  const hits = index.search(text.data, { k: 5, threshold: 0.2, filter: (id: string, metadata: unknown) => id !== '' && metadata !== null });
  await saveIndex('photos', index);
  const again: EmbeddingIndex = await loadIndex('photos', { model: 'minilm-l6-v2' });
  const saved = await listIndexes();
  const gone: boolean = await deleteIndex('photos');
  const copy = EmbeddingIndex.fromBytes(again.toBytes(), { model: 'minilm-l6-v2' });
  encoder.free();
  loaded.free();
  textModel.free();
  fusion.free();
  return hits.length + pictures.rows + direct.cols + saved.length + Number(gone) + copy.size + same.width
    + (entries.image?.embedding_dim ?? 0) + fromFile.width + fromBytes.height;
}

export async function workers(files: File[], entry: ModelEntry, canvas: HTMLCanvasElement): Promise<number> {
  const worker = new LatentlabWorker({ memoryBudget: 1 << 30 });
  worker.addEventListener('lost', (event) => console.warn(crashMessage(String(event))));
  const v = await worker.call<string>('version', {}, { signal: AbortSignal.timeout(1000) });
  const pool = new WorkerPool({ size: defaultPoolSize(), createWorker: () => new Worker(new URL('./my-worker.js', import.meta.url), { type: 'module' }) });
  const info = await pool.load(entry, { baseUrl: '/models/', onProgress: (p) => p.total });
  const controller = new AbortController();
  const images = await pool.embedImage([...files, canvas], { batchSize: 4, signal: controller.signal, onProgress: ({ done, total }) => done / total });
  const texts = await pool.embedText(['a cat'], { batchSize: 32 });
  await pool.load({ pretrained: 'https://example.org/all-MiniLM-L6-v2/' }, { dtype: 'fp32', signal: controller.signal });
  pool.terminate();
  worker.terminate();
  const pixels = await toPixels(canvas, { maxSide: 256 });
  const blob = await decode(files[0]);
  return v.length + info.dim + images.rows + texts.cols + pool.size + pool.dim + pool.workers.length
    + worker.pending + Number(isPixels(pixels)) + blob.height;
}

/** An application's own worker script. */
export function myWorker(): void {
  serveWorker({
    ...encoderOps,
    'my.double': ({ values }: { values: Float32Array }, progress) => {
      progress(0.5);
      const doubled = values.map((v) => v * 2);
      return transfer({ doubled }, [doubled.buffer]);
    },
    'my.check': (args: { error: unknown }) => isTrap(args.error),
    ...withModels({ 'my.embed': ({ texts }: { texts: string[] }) => Encoder.fromFiles({ entries: { text: null, image: null }, files: { textModel: null, tokenizer: null, imageModel: null } }).embedText(texts) }),
  }, { relaxedSimd: false });
}
