// k-nearest-neighbour candidates by inner product (src/gpu/knn.rs, src/gpu/gallery.rs): a tiled
// similarity kernel fills one block of inner products (queries × gallery rows), and a selection
// kernel keeps, per query row, the `keep` largest it has seen so far in min-heaps that live in
// storage and persist from one gallery block to the next. The CPU then ranks each row's
// candidates exactly (src/core/align/knn.rs, src/core/index/candidates.rs), so the GPU's f32
// rounding never decides the answer.
//
// Self-kNN binds one matrix as both `queries` and `gallery` (two read-only bindings of one
// buffer) and sets `exclude_self`; a gallery search binds a batch of queries and one buffer of
// the gallery's rows at a time (`base` is that buffer's first row).
//
// Bindings, group 0:
//   0 params    : uniform Params
//   1 queries   : storage, read        query rows × dim
//   2 gallery   : storage, read        gallery rows × dim (rows base, base + 1, … of the whole)
//   3 sims      : storage, read_write  rows × cols inner products of the current block
//   4 heap_vals : storage, read_write  query rows × parts × keep f32 scores, a min-heap each
//   5 heap_idx  : storage, read_write  the same u32 gallery row indices, beside heap_vals
//
// Mesa's llvmpipe ends a shader loop after 65,535 iterations (nested loops included), and
// real GPUs reset long dispatches: the host keeps keep + span × (1 + log2(keep) + 1) and dim
// well below that (knn.rs, `SELECT_BUDGET`).

struct Params {
  dim: u32,
  keep: u32,
  // first query row (of `queries`, and of the heaps) and number of query rows of this block
  q0: u32,
  rows: u32,
  // first row (of the bound `gallery` buffer) and number of gallery rows of this block
  c0: u32,
  cols: u32,
  // the whole gallery's index of the bound buffer's first row
  base: u32,
  // heaps per query row, each fed `span` consecutive columns of every block by its own thread:
  // a few queries against a large gallery still occupy many threads
  parts: u32,
  span: u32,
  // 1: query row i is gallery row i (self-kNN), never its own neighbour
  exclude_self: u32,
  // 1: the first block of a search, which starts the heaps empty
  fresh: u32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> queries: array<f32>;
@group(0) @binding(2) var<storage, read> gallery: array<f32>;
@group(0) @binding(3) var<storage, read_write> sims: array<f32>;
@group(0) @binding(4) var<storage, read_write> heap_vals: array<f32>;
@group(0) @binding(5) var<storage, read_write> heap_idx: array<u32>;

// Below every real score: scores are inner products of finite f32 rows.
const NEG: f32 = -3.0e38;
const TILE: u32 = 16u;

var<workgroup> query_tile: array<array<f32, 16>, 16>;
var<workgroup> cand_tile: array<array<f32, 16>, 16>;

// sims[r, c] = queries[q0 + r] · gallery[c0 + c]; one 16 × 16 tile of the block per workgroup, the
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
      qv = queries[(params.q0 + load_q) * d + col];
    }
    if (load_c < params.cols && col < d) {
      cv = gallery[(params.c0 + load_c) * d + col];
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

// One thread per (query row, part): offers the part's columns of the block to its heap (self
// excluded where asked). A score enters only if strictly larger than the heap's minimum, so every
// score left out is at most the heap's final minimum — what the exact ranking on the CPU relies
// on; a heap still holding an empty slot (index 0xffffffff) left nothing out.
@compute @workgroup_size(64)
fn select(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  let part = gid.y;
  if (r >= params.rows || part >= params.parts) {
    return;
  }
  let row = params.q0 + r;
  let base = (row * params.parts + part) * params.keep;
  if (params.fresh == 1u) {
    for (var p = 0u; p < params.keep; p++) {
      heap_vals[base + p] = NEG;
      heap_idx[base + p] = 0xffffffffu;
    }
  }
  let first = min(part * params.span, params.cols);
  let last = min(first + params.span, params.cols);
  for (var c = first; c < last; c++) {
    let j = params.base + params.c0 + c;
    let s = sims[r * params.cols + c];
    if ((params.exclude_self == 0u || j != row) && s > heap_vals[base]) {
      heap_vals[base] = s;
      heap_idx[base] = j;
      sift_down(base, 0u);
    }
  }
}
