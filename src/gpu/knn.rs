//! Exact k-nearest neighbours with the O(n²·d) work on the GPU (`knn.wgsl`): a tiled
//! similarity kernel streams blocks of inner products (queries × candidates, never n × n),
//! and a selection kernel keeps each row's best `keep = 2k + 16` candidates in a heap that
//! persists across blocks. Only those n × keep candidates are read back; the core's
//! [`ExactRanker`] ranks them in f64 exactly as the CPU path does (rescanning a row on the
//! CPU in the rare case its candidates might not hold every true neighbour). So the GPU
//! answer *is* the CPU answer, ties included, and tests compare the two for equality.
//!
//! [`KnnKernels`] holds the pipelines (built once per device); [`nearest_neighbors`] builds
//! one problem's buffers and streams its blocks.

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
const MAX_DIM: usize = 16_384;
/// Threads per workgroup of `select`, and the side of `similarity`'s square tiles.
const SELECT_WG: usize = 64;
const TILE: usize = 16;

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
            &[true, false, false, false],
        );
        let pipeline = |entry: &str| shader.pipeline(entry);
        KnnKernels {
            similarity: pipeline("similarity"),
            select: pipeline("select"),
            layout,
        }
    }
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
    // A selection thread visits each column once and sifts a heap of depth ⌊log₂ keep⌋ + 1.
    let depth = (usize::BITS - keep.leading_zeros()) as usize;
    let cols = ((SELECT_BUDGET - keep) / (2 + depth) / TILE * TILE).clamp(TILE, 4096);
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
    let readable = storage | wgpu::BufferUsages::COPY_SRC;
    let x_buf = filled_buffer(gpu, "knn x", bytemuck::cast_slice(&x.data), storage);
    let sims = filled_buffer(gpu, "knn sims", &vec![0u8; rows * cols * 4], storage);
    let heap_vals = filled_buffer(gpu, "knn heap scores", &vec![0u8; n * keep * 4], readable);
    let heap_idx = filled_buffer(gpu, "knn heap indices", &vec![0u8; n * keep * 4], readable);
    let params = filled_buffer(gpu, "knn params", &[0u8; 32], wgpu::BufferUsages::UNIFORM);
    let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("knn bind group"),
        layout: &kernels.layout,
        entries: &[
            (0, &params),
            (1, &x_buf),
            (2, &sims),
            (3, &heap_vals),
            (4, &heap_idx),
        ]
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding,
            resource: buffer.as_entire_binding(),
        }),
    });

    for q0 in (0..n).step_by(rows) {
        let block_rows = rows.min(n - q0);
        for c0 in (0..n).step_by(cols) {
            let block_cols = cols.min(n - c0);
            let words = [n, d, keep, q0, block_rows, c0, block_cols, 0].map(|v| v as u32);
            // Ordered before the submit below: each block sees its own parameters.
            gpu.queue
                .write_buffer(&params, 0, bytemuck::cast_slice(&words));
            submit(gpu, "knn block", |pass| {
                pass.set_bind_group(0, &bind_group, &[]);
                pass.set_pipeline(&kernels.similarity);
                pass.dispatch_workgroups(
                    block_cols.div_ceil(TILE) as u32,
                    block_rows.div_ceil(TILE) as u32,
                    1,
                );
                pass.set_pipeline(&kernels.select);
                pass.dispatch_workgroups(block_rows.div_ceil(SELECT_WG) as u32, 1, 1);
            });
        }
    }
    let vals: Vec<f32> = read_buffer(gpu, &heap_vals, 0, n * keep).await?;
    let idx: Vec<u32> = read_buffer(gpu, &heap_idx, 0, n * keep).await?;
    Ok((vals, idx))
}
