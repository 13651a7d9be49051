// Multi-marginal Sinkhorn (OTT-JAX's `experimental/mmsinkhorn.py`, as src/core/ot/multi.rs)
// for k = 2..4 point clouds: the potential updates, the k marginals and their error, with the
// cost tensor C[i_1..i_k] = Σ_{a<b} C_ab[i_a, i_b] summed on the fly from its pairwise
// matrices (the tensor itself is never stored).
//
// Bindings, group 0 (one params buffer per marginal l, hence one bind group per l):
//   0 params : uniform Params        which marginal (l) the kernels update or measure
//   1 costs  : storage, read         the pairwise cost matrices C_ab (a < b, in the order
//                                    (0,1), (0,2), …, (1,2), …), each n_a × n_b row-major,
//                                    concatenated
//   2 pots   : storage, read_write   the k potentials, concatenated (NEG where a weight is 0)
//   3 a      : storage, read         the k weight vectors, concatenated like the potentials
//   4 work   : storage, read_write   the k marginals of the coupling, concatenated likewise
//   5 sums   : storage, read_write   k error sums Σ_i |marginal_i − a_i|^p
//   6 part   : storage, read_write   per-(point of marginal l, tile) partial log-sum-exps,
//                                    2 floats each
//
// Marginal l's log-sum-exp over all the other indices is split into tiles of `tile`
// multi-indices: a "partial" kernel (one thread per point i of marginal l and tile, a 2-D
// dispatch) keeps a streaming log-sum-exp over its tile, and a "combine" kernel (one thread
// per point) merges the tiles. The tiles keep every thread's loop short: Mesa's llvmpipe
// silently ends a shader loop after 65,535 iterations (see sinkhorn.wgsl).

struct Params {
  // number of marginals (2..4) and the one these kernels work on
  k: u32,
  l: u32,
  // Π_{j≠l} n_j: the multi-indices one log-sum-exp of marginal l runs over
  others: u32,
  // multi-indices per tile, and tiles per point of marginal l
  tile: u32,
  tiles: u32,
  eps: f32,
  // the p of the p-norm of the marginal error
  p: f32,
  pad: u32,
  // n_1..n_k (unused entries 0)
  sizes: vec4<u32>,
  // where each potential (and weight vector, and marginal) starts in pots, a and work
  offsets: vec4<u32>,
  // where each pairwise cost matrix starts in costs, pair (a, b) at pair_index(a, b)
  pair_offsets: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> costs: array<f32>;
@group(0) @binding(2) var<storage, read_write> pots: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read_write> work: array<f32>;
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

const WG: u32 = 64u;

// (a, b), a < b, in the order (0,1), (0,2), …, (0,k−1), (1,2), …
fn pair_index(a: u32, b: u32) -> u32 {
  return a * params.k - a * (a + 1u) / 2u + (b - a - 1u);
}

fn pair_offset(a: u32, b: u32) -> u32 {
  let p = pair_index(a, b);
  return params.pair_offsets[p / 4u][p % 4u];
}

// NEG, is_neg, Lse, lse_push, lse_merge and workgroup_sum: lse.wgsl, prepended to this file (src/gpu/mod.rs `Shader`).

// (Σ_{j≠l} f_j[idx_j] − C[idx])/ε at the multi-index idx (idx[l] set); NEG when a potential
// is −∞ (a zero weight: the entry is 0 and skipped).
fn tensor_term(idx: array<u32, 4>) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < params.k; j++) {
    if (j != params.l) {
      let pj = pots[params.offsets[j] + idx[j]];
      if (is_neg(pj)) {
        return NEG;
      }
      s += pj;
    }
  }
  for (var u = 0u; u < params.k; u++) {
    for (var v = u + 1u; v < params.k; v++) {
      s -= costs[pair_offset(u, v) + idx[u] * params.sizes[v] + idx[v]];
    }
  }
  return s / params.eps;
}

// Tile t of point i of marginal l: the multi-indices r = t·tile .. of the other marginals,
// counted in row-major order (the last marginal fastest), as a streaming log-sum-exp.
@compute @workgroup_size(WG)
fn lse_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  let l = params.l;
  if (i >= params.sizes[l]) {
    return;
  }
  let start = id.y * params.tile;
  let end = min(params.others, start + params.tile);
  // decode `start` into the other marginals' indices
  var idx = array<u32, 4>(0u, 0u, 0u, 0u);
  var rest = start;
  for (var jj = 0u; jj < params.k; jj++) {
    let j = params.k - 1u - jj;
    if (j != l) {
      idx[j] = rest % params.sizes[j];
      rest = rest / params.sizes[j];
    }
  }
  idx[l] = i;
  var acc = Lse(0.0, 0.0);
  for (var r = start; r < end; r++) {
    let v = tensor_term(idx);
    if (!is_neg(v)) {
      lse_push(&acc, v);
    }
    // the next multi-index: add one to the last other marginal, carrying leftwards
    for (var jj = 0u; jj < params.k; jj++) {
      let j = params.k - 1u - jj;
      if (j == l) {
        continue;
      }
      idx[j] += 1u;
      if (idx[j] < params.sizes[j]) {
        break;
      }
      idx[j] = 0u;
    }
  }
  let slot = id.y * params.sizes[l] + i;
  part[2u * slot] = acc.mx;
  part[2u * slot + 1u] = acc.sum;
}

fn merged(i: u32) -> Lse {
  var acc = Lse(0.0, 0.0);
  for (var t = 0u; t < params.tiles; t++) {
    let slot = t * params.sizes[params.l] + i;
    acc = lse_merge(acc, Lse(part[2u * slot], part[2u * slot + 1u]));
  }
  return acc;
}

// f_l[i] ← ε log a_l[i] − ε LSE (OTT's guard: an empty log-sum-exp counts as 0).
@compute @workgroup_size(WG)
fn update_combine(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  let l = params.l;
  if (i >= params.sizes[l]) {
    return;
  }
  let at = params.offsets[l] + i;
  if (a[at] <= 0.0) {
    pots[at] = NEG;
    return;
  }
  let m = merged(i);
  var lse = 0.0;
  if (m.sum != 0.0) {
    lse = m.mx + log(m.sum);
  }
  pots[at] = params.eps * log(a[at]) - params.eps * lse;
}

// work[i] of marginal l = Σ_{others} P = exp(f_l[i]/ε + LSE).
@compute @workgroup_size(WG)
fn marginal_combine(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  let l = params.l;
  if (i >= params.sizes[l]) {
    return;
  }
  let at = params.offsets[l] + i;
  let fi = pots[at];
  let m = merged(i);
  var p = 0.0;
  if (!is_neg(fi) && m.sum != 0.0) {
    p = exp(fi / params.eps + m.mx + log(m.sum));
  }
  work[at] = p;
}

// One workgroup: sums[l] = Σ_i |work_i − a_i|^p over marginal l.
@compute @workgroup_size(256)
fn error_reduce(@builtin(local_invocation_index) local: u32) {
  let l = params.l;
  let off = params.offsets[l];
  var s = 0.0;
  for (var i = local; i < params.sizes[l]; i += 256u) {
    let d = abs(work[off + i] - a[off + i]);
    if (params.p == 1.0) {
      s += d;
    } else {
      s += pow(d, params.p);
    }
  }
  let total = workgroup_sum(local, s);
  if (local == 0u) {
    sums[l] = total;
  }
}
