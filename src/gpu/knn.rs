//! Exact k-nearest neighbours with the O(n²·d) work on the GPU (`knn.wgsl`): a tiled
//! similarity kernel streams blocks of inner products (queries × candidates, never n × n),
//! and a selection kernel keeps each row's best `keep = 2k + 16` candidates in a heap that
//! persists across blocks. Only those n × keep candidates are read back; the core's
//! [`ExactRanker`] ranks them in f64 exactly as the CPU path does (rescanning a row on the
//! CPU in the rare case its candidates might not hold every true neighbour). So the GPU
//! answer *is* the CPU answer, ties included, and tests compare the two for equality.
//!
//! [`KnnKernels`] holds the pipelines (built once per device); [`nearest_neighbors`] builds
//! one problem's buffers and streams its blocks, binding its matrix as both the queries and
//! the gallery. `gallery.rs` runs the same kernels on a batch of queries against an index's
//! vectors kept on the device.

use super::{check_binding, filled_buffer, read_buffer, submit, with_error_scopes};
use super::{Gpu, GpuError, Shader};
use crate::core::align::{AlignError, ExactRanker, Knn};
use crate::core::matrix::Matrix;
use crate::core::par;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest k the GPU path takes (its candidate heaps hold 2k + 16 entries per row).
pub const MAX_K: usize = 64;
/// Loop iterations one selection thread may spend on a block: llvmpipe (lavapipe) ends any
/// shader loop after 65,535 iterations, nested loops included, so stay well below.
const SELECT_BUDGET: usize = 32_768;
/// The similarity kernel walks the shared dimension in one loop of `dim` steps.
pub(crate) const MAX_DIM: usize = 16_384;
/// Threads per workgroup of `select`, and the side of `similarity`'s square tiles.
pub(crate) const SELECT_WG: usize = 64;
pub(crate) const TILE: usize = 16;
/// `heap_idx` of a heap slot no score has filled.
pub(crate) const EMPTY_SLOT: u32 = u32::MAX;

/// How the GPU search streams its work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuKnnOptions {
    /// The most memory one block of inner products (query rows × candidate rows, f32) may
    /// take on the device; smaller means more, smaller dispatches.
    pub max_block_bytes: u64,
}

impl Default for GpuKnnOptions {
    fn default() -> GpuKnnOptions {
        GpuKnnOptions {
            max_block_bytes: 1 << 27,
        }
    }
}

/// Bad input (refused before any GPU work, in the CPU path's words) or a GPU failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuKnnError {
    #[error(transparent)]
    Input(#[from] AlignError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// The compute pipelines of `knn.wgsl`, built once per device.
pub struct KnnKernels {
    layout: wgpu::BindGroupLayout,
    similarity: wgpu::ComputePipeline,
    select: wgpu::ComputePipeline,
}

impl KnnKernels {
    pub fn new(gpu: &Gpu) -> KnnKernels {
        let (shader, layout) = Shader::new(
            gpu,
            "knn",
            &[include_str!("knn.wgsl")],
            &[true, true, false, false, false],
        );
        let pipeline = |entry: &str| shader.pipeline(entry);
        KnnKernels {
            similarity: pipeline("similarity"),
            select: pipeline("select"),
            layout,
        }
    }

    /// The bind group of one search: `queries` and `gallery` may be the same buffer (both
    /// bindings are read-only).
    pub(crate) fn bind_group(&self, gpu: &Gpu, buffers: &SearchBuffers) -> wgpu::BindGroup {
        let SearchBuffers {
            params,
            queries,
            gallery,
            sims,
            heap_vals,
            heap_idx,
        } = buffers;
        gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("knn bind group"),
            layout: &self.layout,
            entries: &[
                (0, *params),
                (1, *queries),
                (2, *gallery),
                (3, *sims),
                (4, *heap_vals),
                (5, *heap_idx),
            ]
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            }),
        })
    }

    /// Writes one block's parameters and submits its two dispatches.
    pub(crate) fn run_block(
        &self,
        gpu: &Gpu,
        bind_group: &wgpu::BindGroup,
        params: &wgpu::Buffer,
        block: &Block,
    ) {
        let b = |flag: bool| usize::from(flag);
        let words = [
            block.dim,
            block.keep,
            block.q0,
            block.rows,
            block.c0,
            block.cols,
            block.base,
            block.parts,
            block.span,
            b(block.exclude_self),
            b(block.fresh),
            0,
        ]
        .map(|v| v as u32);
        // Ordered before the submit below: each block sees its own parameters.
        gpu.queue
            .write_buffer(params, 0, bytemuck::cast_slice(&words));
        submit(gpu, "knn block", |pass| {
            pass.set_bind_group(0, bind_group, &[]);
            pass.set_pipeline(&self.similarity);
            pass.dispatch_workgroups(
                block.cols.div_ceil(TILE) as u32,
                block.rows.div_ceil(TILE) as u32,
                1,
            );
            pass.set_pipeline(&self.select);
            pass.dispatch_workgroups(block.rows.div_ceil(SELECT_WG) as u32, block.parts as u32, 1);
        });
    }
}

/// The buffers of one search's bind group (`knn.wgsl`'s bindings 0 to 5).
pub(crate) struct SearchBuffers<'a> {
    pub params: &'a wgpu::Buffer,
    pub queries: &'a wgpu::Buffer,
    pub gallery: &'a wgpu::Buffer,
    pub sims: &'a wgpu::Buffer,
    pub heap_vals: &'a wgpu::Buffer,
    pub heap_idx: &'a wgpu::Buffer,
}

/// One block of a search, as `knn.wgsl`'s `Params` (which says what each field means). The
/// callers keep every value below 2³² (they fit bindings of fewer bytes).
pub(crate) struct Block {
    pub dim: usize,
    pub keep: usize,
    pub q0: usize,
    pub rows: usize,
    pub c0: usize,
    pub cols: usize,
    pub base: usize,
    pub parts: usize,
    pub span: usize,
    pub exclude_self: bool,
    pub fresh: bool,
}

/// The most columns of one block a selection thread may scan, keeping its heap of `keep`:
/// it fills the heap once and sifts at most ⌊log₂ keep⌋ + 1 levels per column.
pub(crate) fn select_span(keep: usize) -> usize {
    let depth = (usize::BITS - keep.leading_zeros()) as usize;
    (SELECT_BUDGET.saturating_sub(keep) / (2 + depth)).max(1)
}

/// A storage buffer of `bytes` that the kernels fill (wgpu zeroes it): no host copy, unlike
/// [`filled_buffer`], which the largest ones would double.
pub(crate) fn scratch_buffer(gpu: &Gpu, label: &str, bytes: u64, readable: bool) -> wgpu::Buffer {
    let mut usage = wgpu::BufferUsages::STORAGE;
    if readable {
        usage |= wgpu::BufferUsages::COPY_SRC;
    }
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage,
        mapped_at_creation: false,
    })
}

/// A GPU search's neighbour table, and how many rows the CPU had to rescan because their
/// candidates sat in a crowd of near-ties (zero for most data; a GPU returning wrong scores
/// would show here or as a different table).
#[derive(Clone, Debug, PartialEq)]
pub struct GpuNeighbors {
    pub knn: Knn,
    pub rows_rescanned: usize,
}

/// The core's [`nearest_neighbors`](crate::core::align::nearest_neighbors) with the inner
/// products on the GPU: the same neighbours, in the same order. Errors for bad input (as
/// the core), k > [`MAX_K`], a problem the device cannot hold, or a GPU failure — never a
/// wrong answer, so callers may fall back to the CPU.
pub async fn nearest_neighbors_async(
    gpu: &Gpu,
    kernels: &KnnKernels,
    x: &Matrix,
    k: usize,
    opts: &GpuKnnOptions,
) -> Result<GpuNeighbors, GpuKnnError> {
    let ranker = ExactRanker::new(x, k)?;
    if k > MAX_K {
        return Err(AlignError::K {
            k,
            expected: format!("k <= {MAX_K} on the GPU backend (use the CPU backend for more)"),
        }
        .into());
    }
    let keep = ranker.keep();
    let (vals, idx) = with_error_scopes(gpu, candidates(gpu, kernels, x, keep, opts)).await?;
    let n = x.rows;
    let mut indices = vec![0u32; n * k];
    let rescanned = AtomicUsize::new(0);
    par::for_each_chunk_mut(&mut indices, k, |i, out| {
        let mut row: Vec<(f32, u32)> = vals[i * keep..(i + 1) * keep]
            .iter()
            .copied()
            .zip(idx[i * keep..(i + 1) * keep].iter().copied())
            .collect();
        row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let (v, j): (Vec<f32>, Vec<u32>) = row.into_iter().unzip();
        if ranker.finish_row(i, &v, &j, out) {
            rescanned.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(GpuNeighbors {
        knn: Knn { n, k, indices },
        rows_rescanned: rescanned.into_inner(),
    })
}

/// [`nearest_neighbors_async`], blocking (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn nearest_neighbors(
    gpu: &Gpu,
    kernels: &KnnKernels,
    x: &Matrix,
    k: usize,
    opts: &GpuKnnOptions,
) -> Result<GpuNeighbors, GpuKnnError> {
    pollster::block_on(nearest_neighbors_async(gpu, kernels, x, k, opts))
}

/// Streams every (query block, candidate block) pair through the two kernels and reads back
/// the n × keep candidate scores and indices.
async fn candidates(
    gpu: &Gpu,
    kernels: &KnnKernels,
    x: &Matrix,
    keep: usize,
    opts: &GpuKnnOptions,
) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
    let (n, d) = (x.rows, x.cols);
    if d > MAX_DIM {
        return Err(GpuError::TooLarge(format!(
            "{d} dimensions exceed the GPU kernel's limit of {MAX_DIM}"
        )));
    }
    let cols = (select_span(keep) / TILE * TILE).clamp(TILE, 4096);
    let cols = cols.min(n.next_multiple_of(TILE));
    let max_groups = gpu.limits.max_compute_workgroups_per_dimension as usize;
    let binding_limit = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size)
        .min(opts.max_block_bytes);
    let rows = (binding_limit as usize / (cols * 4) / TILE * TILE)
        .min(max_groups * TILE)
        .min(max_groups * SELECT_WG)
        .min(n.next_multiple_of(TILE))
        .max(TILE);
    check_binding(gpu, "the rows", (n * d) as u64 * 4)?;
    check_binding(gpu, "the candidate heaps", (n * keep) as u64 * 4)?;
    check_binding(gpu, "one block of inner products", (rows * cols) as u64 * 4)?;

    let storage = wgpu::BufferUsages::STORAGE;
    let x_buf = filled_buffer(gpu, "knn x", bytemuck::cast_slice(&x.data), storage);
    let sims = scratch_buffer(gpu, "knn sims", (rows * cols) as u64 * 4, false);
    let heap_vals = scratch_buffer(gpu, "knn heap scores", (n * keep) as u64 * 4, true);
    let heap_idx = scratch_buffer(gpu, "knn heap indices", (n * keep) as u64 * 4, true);
    let params = filled_buffer(gpu, "knn params", &[0u8; 48], wgpu::BufferUsages::UNIFORM);
    let bind_group = kernels.bind_group(
        gpu,
        &SearchBuffers {
            params: &params,
            queries: &x_buf,
            gallery: &x_buf,
            sims: &sims,
            heap_vals: &heap_vals,
            heap_idx: &heap_idx,
        },
    );

    for q0 in (0..n).step_by(rows) {
        let block_rows = rows.min(n - q0);
        for c0 in (0..n).step_by(cols) {
            let block_cols = cols.min(n - c0);
            let block = Block {
                dim: d,
                keep,
                q0,
                rows: block_rows,
                c0,
                cols: block_cols,
                base: 0,
                parts: 1,
                span: block_cols,
                exclude_self: true,
                fresh: c0 == 0,
            };
            kernels.run_block(gpu, &bind_group, &params, &block);
        }
    }
    let vals: Vec<f32> = read_buffer(gpu, &heap_vals, 0, n * keep).await?;
    let idx: Vec<u32> = read_buffer(gpu, &heap_idx, 0, n * keep).await?;
    Ok((vals, idx))
}
