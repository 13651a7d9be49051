// The optimal-transport page's worker operations: entropic OT between two 2-D clouds (plan
// included), multi-marginal OT and the M3G value for three clouds (with the coupling's best
// matches), and a real-data plan matching the gallery's photos to their captions.
import { sinkhorn, sinkhornAsync, multiSinkhornAsync, m3gAsync } from 'latentlab';
import { galleryEmbeddings } from './gallery-embeds.js';

/** `maxIterations` is the page's `?maxIterations=N`: a cap low enough shows what a solve that
 * stops short looks like. */
const solver = (maxIterations = 5000) => ({ threshold: 1e-4, maxIterations });

/** Two clouds on WebGPU when the browser has it (the same WGSL kernels as natively), else
 * on the CPU; `backend` says which ran and `fallback` why not the GPU. */
async function twoClouds({ x, y, epsilon, backend = 'auto', maxIterations }) {
  const n = x.length / 2;
  const m = y.length / 2;
  const r = await sinkhornAsync(Float32Array.from(x), n, Float32Array.from(y), m, 2, {
    epsilon, returnPlan: true, backend, ...solver(maxIterations),
  });
  return {
    backend: r.backend, adapter: r.adapter, fallback: r.fallback,
    reg_ot_cost: r.reg_ot_cost, transport_cost: r.transport_cost, n_iters: r.n_iters,
    converged: r.converged, marginal_error: r.errors.at(-1), n, m, plan: Array.from(r.plan),
  };
}

/** M3G of three equal-sized clouds, and for each point of the first its best (j, k): on
 * WebGPU when the browser has it (the multi-marginal WGSL kernels), else on the CPU. */
async function threeClouds({ clouds, epsilon, backend = 'auto', maxIterations }) {
  const n = clouds[0].length / 2;
  const views = clouds.map((c) => Float32Array.from(c));
  const gap = await m3gAsync(views, n, 2, { epsilon, backend, ...solver(maxIterations) });
  const multi = await multiSinkhornAsync(views, views.map(() => n), 2, {
    epsilon, returnCoupling: true, backend, ...solver(maxIterations),
  });
  const matches = [];
  for (let i = 0; i < n; i++) {
    let best = { j: 0, k: 0, p: -1 };
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < n; k++) {
        const p = multi.coupling[(i * n + j) * n + k];
        if (p > best.p) best = { j, k, p };
      }
    }
    matches.push([i, best.j, best.k, best.p * n]);
  }
  return {
    backend: gap.backend, adapter: gap.adapter, fallback: gap.fallback,
    m3g: gap.m3g, ent_reg_cost: gap.ent_reg_cost,
    ground_truth_cost: gap.ground_truth_cost, n_iters: gap.n_iters, converged: gap.converged,
    marginal_error: gap.errors.at(-1), matches,
  };
}

/** The plan between the gallery's photos (rows) and its captions (columns), cosine cost. */
async function galleryPlan({ baseUrl, galleryUrl, sentencesUrl, epsilon, maxIterations }, progress) {
  const g = await galleryEmbeddings({ baseUrl, galleryUrl, sentencesUrl }, progress);
  const n = g.titles.length;
  const r = sinkhorn(g.photo.data, n, g.caption.data, n, g.photo.cols, {
    epsilon, costFn: 'cosine', returnPlan: true, ...solver(maxIterations),
  });
  const plan = Array.from(r.plan);
  const matched = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < n; j++) if (plan[i * n + j] > plan[i * n + best]) best = j;
    matched.push(best);
  }
  return {
    backend: r.backend, reg_ot_cost: r.reg_ot_cost, n_iters: r.n_iters, converged: r.converged,
    marginal_error: r.errors.at(-1), titles: g.titles, files: g.files, plan, matched,
    correct: matched.filter((j, i) => j === i).length,
  };
}

export const otOps = {
  'ot.two': twoClouds,
  'ot.three': threeClouds,
  'ot.gallery': galleryPlan,
};
