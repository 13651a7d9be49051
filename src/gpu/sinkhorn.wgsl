// Log-domain Sinkhorn (OTT-JAX's updates, as src/core/ot/sinkhorn.rs): potential updates
// with costs computed on the fly from the point clouds (no n × m matrix) or read from a cost
// matrix, the marginal error reduced on the GPU, and the per-row sums for the final costs.
//
// Bindings, group 0:
//   0 params : uniform Params
//   1 x      : storage, read        n × dim points, or the n × m cost matrix (cost_kind 2)
//   2 y      : storage, read        m × dim points (a 1-float placeholder with a cost matrix)
//   3 f      : storage, read_write  n potentials (NEG where a_i = 0)
//   4 g      : storage, read_write  m potentials (NEG where b_j = 0)
//   5 a      : storage, read        n weights
//   6 b      : storage, read        m weights
//   7 work   : storage, read_write  per-column then per-row error terms, per-row sums, or the plan
//   8 sums   : storage, read_write  2 reduced values (column error, row error)
//   9 part   : storage, read_write  per-(row, tile) partial results, 2 floats each
//
// Every reduction over the other side is split into tiles of `tile` points: a "partial"
// kernel (one thread per row and tile, a 2-D dispatch) keeps a streaming log-sum-exp (running
// max and sum) or a plain sum over its tile, and a "combine" kernel (one thread per row)
// merges the tiles. Short loops keep every thread's work bounded — Mesa's llvmpipe stops a
// shader loop after 65,535 iterations, and real GPUs reset long-running dispatches — and the
// 2-D dispatch keeps a GPU busy when one side is small.

struct Params {
  n: u32,
  m: u32,
  dim: u32,
  // 0 squared Euclidean, 1 cosine, 2 cost matrix
  cost_kind: u32,
  eps: f32,
  tau_a: f32,
  tau_b: f32,
  // the p of the p-norm of the marginal error
  p: f32,
  // points per tile, and the number of tiles over the rows (i) and the columns (j)
  tile: u32,
  tiles_n: u32,
  tiles_m: u32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> f: array<f32>;
@group(0) @binding(4) var<storage, read_write> g: array<f32>;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;
@group(0) @binding(7) var<storage, read_write> work: array<f32>;
@group(0) @binding(8) var<storage, read_write> sums: array<f32>;
@group(0) @binding(9) var<storage, read_write> part: array<f32>;

const COSINE_RIDGE: f32 = 1e-8;
const WG: u32 = 64u;

fn cost(i: u32, j: u32) -> f32 {
  if (params.cost_kind == 2u) {
    return x[i * params.m + j];
  }
  let d = params.dim;
  if (params.cost_kind == 0u) {
    var s = 0.0;
    for (var k = 0u; k < d; k++) {
      let t = x[i * d + k] - y[j * d + k];
      s += t * t;
    }
    return s;
  }
  var xy = 0.0;
  var xx = 0.0;
  var yy = 0.0;
  for (var k = 0u; k < d; k++) {
    let u = x[i * d + k];
    let v = y[j * d + k];
    xy += u * v;
    xx += u * u;
    yy += v * v;
  }
  return 1.0 - xy / (sqrt(xx) * sqrt(yy) + COSINE_RIDGE);
}

// NEG, is_neg, Lse, lse_push, lse_merge and workgroup_sum: lse.wgsl, prepended to this file (src/gpu/mod.rs `Shader`).

// OTT's guard: an empty (−∞) log-sum-exp counts as 0.
fn lse_or_zero(l: Lse) -> f32 {
  if (l.sum == 0.0) {
    return 0.0;
  }
  return l.mx + log(l.sum);
}

fn rho(tau: f32) -> f32 {
  return params.eps * tau / (1.0 - tau);
}

// The tile `t` of `len` points: [start, end).
fn tile_range(t: u32, len: u32) -> vec2<u32> {
  let start = t * params.tile;
  return vec2<u32>(start, min(len, start + params.tile));
}

fn store_part(index: u32, l: Lse) {
  part[2u * index] = l.mx;
  part[2u * index + 1u] = l.sum;
}

fn load_part(index: u32) -> Lse {
  return Lse(part[2u * index], part[2u * index + 1u]);
}

// LSE over the rows i of tile t of (f_i + shift − C_ij)/ε, rows with f_i = −∞ skipped.
fn column_tile(j: u32, t: u32, shift: f32) -> Lse {
  var l = Lse(0.0, 0.0);
  let r = tile_range(t, params.n);
  for (var i = r.x; i < r.y; i++) {
    let fi = f[i];
    if (!is_neg(fi)) {
      lse_push(&l, (fi + shift - cost(i, j)) / params.eps);
    }
  }
  return l;
}

// LSE over the columns j of tile t of (g_j + shift − C_ij)/ε, columns with g_j = −∞ skipped.
fn row_tile(i: u32, t: u32, shift: f32) -> Lse {
  var l = Lse(0.0, 0.0);
  let r = tile_range(t, params.m);
  for (var j = r.x; j < r.y; j++) {
    let gj = g[j];
    if (!is_neg(gj)) {
      lse_push(&l, (gj + shift - cost(i, j)) / params.eps);
    }
  }
  return l;
}

fn merged_column(j: u32) -> Lse {
  var l = Lse(0.0, 0.0);
  for (var t = 0u; t < params.tiles_n; t++) {
    l = lse_merge(l, load_part(t * params.m + j));
  }
  return l;
}

fn merged_row(i: u32) -> Lse {
  var l = Lse(0.0, 0.0);
  for (var t = 0u; t < params.tiles_m; t++) {
    l = lse_merge(l, load_part(t * params.n + i));
  }
  return l;
}

// --- g_j ← τ_b (ε log b_j − ε LSE_i((f_i − C_ij)/ε)) ---

@compute @workgroup_size(WG)
fn g_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = id.x;
  if (j >= params.m) {
    return;
  }
  store_part(id.y * params.m + j, column_tile(j, id.y, 0.0));
}

@compute @workgroup_size(WG)
fn g_combine(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = id.x;
  if (j >= params.m) {
    return;
  }
  if (b[j] <= 0.0) {
    g[j] = NEG;
    return;
  }
  g[j] = params.tau_b * (params.eps * log(b[j]) - params.eps * lse_or_zero(merged_column(j)));
}

// --- f_i ← τ_a (ε log a_i − ε LSE_j((g_j − C_ij)/ε)) ---

@compute @workgroup_size(WG)
fn f_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  store_part(id.y * params.n + i, row_tile(i, id.y, 0.0));
}

@compute @workgroup_size(WG)
fn f_combine(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  if (a[i] <= 0.0) {
    f[i] = NEG;
    return;
  }
  f[i] = params.tau_a * (params.eps * log(a[i]) - params.eps * lse_or_zero(merged_row(i)));
}

// --- the marginal error ---

fn error_term(marginal: f32, goal: f32) -> f32 {
  let d = abs(marginal - goal);
  if (params.p == 1.0) {
    return d;
  }
  return pow(d, params.p);
}

fn marginal_of(l: Lse) -> f32 {
  if (l.sum == 0.0) {
    return 0.0;
  }
  return exp(l.mx + log(l.sum));
}

@compute @workgroup_size(WG)
fn column_marginal_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = id.x;
  if (j >= params.m) {
    return;
  }
  var l = Lse(0.0, 0.0);
  let gj = g[j];
  if (!is_neg(gj)) {
    l = column_tile(j, id.y, gj);
  }
  store_part(id.y * params.m + j, l);
}

// work[j] = |Σ_i P_ij − goal_j|^p, goal b_j (balanced) or b_j exp(−g_j/ρ_b).
@compute @workgroup_size(WG)
fn column_error(@builtin(global_invocation_id) id: vec3<u32>) {
  let j = id.x;
  if (j >= params.m) {
    return;
  }
  var goal = b[j];
  if (params.tau_b < 1.0 && goal > 0.0) {
    goal = goal * exp(-g[j] / rho(params.tau_b));
  }
  work[j] = error_term(marginal_of(merged_column(j)), goal);
}

@compute @workgroup_size(WG)
fn row_marginal_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  var l = Lse(0.0, 0.0);
  let fi = f[i];
  if (!is_neg(fi)) {
    l = row_tile(i, id.y, fi);
  }
  store_part(id.y * params.n + i, l);
}

// work[m + i] = |Σ_j P_ij − a_i exp(−f_i/ρ_a)|^p (unbalanced problems only).
@compute @workgroup_size(WG)
fn row_error(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  var goal = a[i];
  if (params.tau_a < 1.0 && goal > 0.0) {
    goal = goal * exp(-f[i] / rho(params.tau_a));
  }
  work[params.m + i] = error_term(marginal_of(merged_row(i)), goal);
}

// One workgroup sums work[offset .. offset + count] into sums[slot].
fn reduce(local: u32, offset: u32, count: u32, slot: u32) {
  var s = 0.0;
  for (var k = local; k < count; k += 256u) {
    s += work[offset + k];
  }
  let total = workgroup_sum(local, s);
  if (local == 0u) {
    sums[slot] = total;
  }
}

@compute @workgroup_size(256)
fn reduce_columns(@builtin(local_invocation_index) local: u32) {
  reduce(local, 0u, params.m, 0u);
}

@compute @workgroup_size(256)
fn reduce_rows(@builtin(local_invocation_index) local: u32) {
  reduce(local, params.m, params.n, 1u);
}

// --- per-row sums: Σ_j P_ij and Σ_j P_ij C_ij (final costs), Σ_j C_ij and Σ_j C_ij² (ε) ---

fn combine_sums(i: u32) {
  var s = 0.0;
  var s2 = 0.0;
  for (var t = 0u; t < params.tiles_m; t++) {
    let k = t * params.n + i;
    s += part[2u * k];
    s2 += part[2u * k + 1u];
  }
  work[2u * i] = s;
  work[2u * i + 1u] = s2;
}

@compute @workgroup_size(WG)
fn plan_sums_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  let fi = f[i];
  var total = 0.0;
  var transport = 0.0;
  if (!is_neg(fi)) {
    let r = tile_range(id.y, params.m);
    for (var j = r.x; j < r.y; j++) {
      let gj = g[j];
      if (!is_neg(gj)) {
        let c = cost(i, j);
        let p = exp((fi + gj - c) / params.eps);
        total += p;
        transport += p * c;
      }
    }
  }
  let k = id.y * params.n + i;
  part[2u * k] = total;
  part[2u * k + 1u] = transport;
}

@compute @workgroup_size(WG)
fn cost_sums_partial(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  var s = 0.0;
  var s2 = 0.0;
  let r = tile_range(id.y, params.m);
  for (var j = r.x; j < r.y; j++) {
    let c = cost(i, j);
    s += c;
    s2 += c * c;
  }
  let k = id.y * params.n + i;
  part[2u * k] = s;
  part[2u * k + 1u] = s2;
}

@compute @workgroup_size(WG)
fn row_sums_combine(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  combine_sums(i);
}

// work[i·m + j] = P_ij, one thread per row and tile.
@compute @workgroup_size(WG)
fn transport_plan(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) {
    return;
  }
  let fi = f[i];
  let r = tile_range(id.y, params.m);
  for (var j = r.x; j < r.y; j++) {
    let gj = g[j];
    var p = 0.0;
    if (!is_neg(fi) && !is_neg(gj)) {
      p = exp((fi + gj - cost(i, j)) / params.eps);
    }
    work[i * params.m + j] = p;
  }
}
