// k-nearest-neighbour candidates by inner product (src/gpu/knn.rs): a tiled similarity kernel
// fills one block of inner products (queries × candidates), and a selection kernel keeps, per
// query row, the `keep` largest it has seen so far in a min-heap that lives in storage and
// persists from one candidate block to the next. The CPU then ranks each row's candidates
// exactly (src/core/align/knn.rs), so the GPU's f32 rounding never decides the answer.
//
// Bindings, group 0:
//   0 params    : uniform Params
//   1 x         : storage, read        n × dim rows (the queries and the candidates)
//   2 sims      : storage, read_write  rows × cols inner products of the current block
//   3 heap_vals : storage, read_write  n × keep f32 scores, a min-heap per row
//   4 heap_idx  : storage, read_write  n × keep u32 row indices, beside heap_vals
//
// Mesa's llvmpipe ends a shader loop after 65,535 iterations (nested loops included), and
// real GPUs reset long dispatches: the host keeps cols × (1 + log2(keep) + 1) and dim well
// below that (knn.rs, `SELECT_BUDGET`).

struct Params {
  n: u32,
  dim: u32,
  keep: u32,
  // first query row and number of query rows of this block
  q0: u32,
  rows: u32,
  // first candidate row and number of candidate rows of this block
  c0: u32,
  cols: u32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sims: array<f32>;
@group(0) @binding(3) var<storage, read_write> heap_vals: array<f32>;
@group(0) @binding(4) var<storage, read_write> heap_idx: array<u32>;

// Below every real score: scores are inner products of finite f32 rows.
const NEG: f32 = -3.0e38;
const TILE: u32 = 16u;

var<workgroup> query_tile: array<array<f32, 16>, 16>;
var<workgroup> cand_tile: array<array<f32, 16>, 16>;

// sims[r, c] = x[q0 + r] · x[c0 + c]; one 16 × 16 tile of the block per workgroup, the
// shared dimension walked in tiles of 16 through workgroup memory.
@compute @workgroup_size(16, 16)
fn similarity(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.y * TILE + lid.y;
  let c = wg.x * TILE + lid.x;
  let d = params.dim;
  // the rows this thread loads into the tiles (its tile-mates' rows, by local index)
  let load_q = wg.y * TILE + lid.x;
  let load_c = wg.x * TILE + lid.x;
  var acc = 0.0;
  for (var t0 = 0u; t0 < d; t0 += TILE) {
    let col = t0 + lid.y;
    var qv = 0.0;
    var cv = 0.0;
    if (load_q < params.rows && col < d) {
      qv = x[(params.q0 + load_q) * d + col];
    }
    if (load_c < params.cols && col < d) {
      cv = x[(params.c0 + load_c) * d + col];
    }
    query_tile[lid.x][lid.y] = qv;
    cand_tile[lid.x][lid.y] = cv;
    workgroupBarrier();
    for (var t = 0u; t < TILE; t++) {
      acc += query_tile[lid.y][t] * cand_tile[lid.x][t];
    }
    workgroupBarrier();
  }
  if (r < params.rows && c < params.cols) {
    sims[r * params.cols + c] = acc;
  }
}

// Restores the min-heap below position `start` of row `base` after its root was replaced.
fn sift_down(base: u32, start: u32) {
  let keep = params.keep;
  var p = start;
  loop {
    let left = 2u * p + 1u;
    if (left >= keep) {
      break;
    }
    var child = left;
    let right = left + 1u;
    if (right < keep && heap_vals[base + right] < heap_vals[base + left]) {
      child = right;
    }
    if (heap_vals[base + child] >= heap_vals[base + p]) {
      break;
    }
    let v = heap_vals[base + p];
    let j = heap_idx[base + p];
    heap_vals[base + p] = heap_vals[base + child];
    heap_idx[base + p] = heap_idx[base + child];
    heap_vals[base + child] = v;
    heap_idx[base + child] = j;
    p = child;
  }
}

// One thread per query row: offers the row's block of scores to its heap (self excluded).
// A score enters only if strictly larger than the heap's minimum, so every score left out
// is at most the final minimum — what the exact ranking on the CPU relies on.
@compute @workgroup_size(64)
fn select(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= params.rows) {
    return;
  }
  let row = params.q0 + r;
  let base = row * params.keep;
  if (params.c0 == 0u) {
    for (var p = 0u; p < params.keep; p++) {
      heap_vals[base + p] = NEG;
      heap_idx[base + p] = 0xffffffffu;
    }
  }
  for (var c = 0u; c < params.cols; c++) {
    let j = params.c0 + c;
    let s = sims[r * params.cols + c];
    if (j != row && s > heap_vals[base]) {
      heap_vals[base] = s;
      heap_idx[base] = j;
      sift_down(base, 0u);
    }
  }
}
