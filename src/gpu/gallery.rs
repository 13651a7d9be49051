//! Top-k search of an [`EmbeddingIndex`] with the inner products on the GPU (`knn.wgsl`, the
//! self-kNN kernels with a separate query binding). A [`GpuGallery`] uploads the index's f32
//! unit vectors once; each batch of queries then costs an upload of the queries, the blocks
//! of inner products, and a read-back of each query's best candidates (about 2k + 16 per
//! heap). The core's [`CandidateRanker`] scores those again with the CPU search's own
//! arithmetic (scanning a query again on the CPU in the rare case its candidates might miss a
//! top-k item), so the answer *is* [`EmbeddingIndex::search_batch`]'s: the same hits, scores
//! and order of ties; tests compare the two for equality.
//!
//! What this path does not answer exactly (f16 or int8 storage, a filter, k > [`MAX_K`], an
//! index changed since its upload) is refused with [`GpuSearchError::CpuOnly`], never
//! answered approximately: the caller runs `search_batch` instead.

use super::knn::{
    scratch_buffer, select_span, Block, KnnKernels, SearchBuffers, EMPTY_SLOT, MAX_DIM, MAX_K,
    SELECT_WG, TILE,
};
use super::{check_binding, filled_buffer, read_buffer, with_error_scopes, Gpu, GpuError};
use crate::core::index::{
    CandidateError, CandidateList, CandidateRanker, CpuOnly, EmbeddingIndex, Filter, Hit,
    IndexError, Prepared, SearchOptions,
};

/// Selection threads a batch of queries should occupy: each query's heap is split into
/// parts, one thread each, until the batch has about this many (a few queries against a
/// large gallery would otherwise leave a GPU nearly idle while each thread scans every row).
const SELECT_THREADS: usize = 16_384;
/// The most parts per query: each part's heap is read back, and its candidates re-scored.
const MAX_PARTS: usize = 64;

/// How a gallery is laid out on the device and searched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GalleryOptions {
    /// The most memory one block of inner products (queries × gallery rows, f32) may take.
    pub max_block_bytes: u64,
    /// The most memory one buffer of gallery rows may take: larger galleries are split over
    /// several (WebGPU's default binding limit is 128 MiB; 100,000 × 384 f32 is 146 MiB).
    pub max_buffer_bytes: u64,
}

impl Default for GalleryOptions {
    fn default() -> GalleryOptions {
        GalleryOptions {
            max_block_bytes: 1 << 27,
            max_buffer_bytes: 1 << 27,
        }
    }
}

/// Bad input (refused in `search_batch`'s words), a search this path does not answer (run
/// `search_batch` instead), or a GPU failure (which may also fall back to the CPU).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuSearchError {
    #[error(transparent)]
    Input(#[from] IndexError),
    #[error(transparent)]
    CpuOnly(#[from] CpuOnly),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The gallery lives on another device (one lost and requested again): upload it anew.
    #[error("this gallery was uploaded to another GPU device: upload it to this one")]
    OtherDevice,
}

impl From<CandidateError> for GpuSearchError {
    fn from(e: CandidateError) -> GpuSearchError {
        match e {
            CandidateError::Input(e) => GpuSearchError::Input(e),
            CandidateError::CpuOnly(e) => GpuSearchError::CpuOnly(e),
            // The read-back did not give one list per query: the GPU's result is unusable.
            lists @ CandidateError::Lists { .. } => {
                GpuSearchError::Gpu(GpuError::Readback(lists.to_string()))
            }
        }
    }
}

/// One buffer of consecutive gallery rows.
struct Slab {
    buffer: wgpu::Buffer,
    first: usize,
    rows: usize,
}

/// An index's f32 unit vectors on the device, uploaded once for many searches. It belongs to
/// one revision of the index: searches of the index after a change are refused
/// ([`CpuOnly::Stale`]) until it is uploaded again.
pub struct GpuGallery {
    /// The [`Gpu::serial`] of the device holding the slabs: a search on another (a `Gpu`
    /// requested again after a loss) is refused, not run on buffers that are not its own.
    device: u64,
    slabs: Vec<Slab>,
    ranker: CandidateRanker,
    opts: GalleryOptions,
}

/// A GPU search's hits (`search_batch`'s, one list per query), and how many queries the CPU
/// had to scan again because their candidates sat in a crowd of near-ties (zero for most
/// data; a GPU returning wrong scores would show here or as different hits).
#[derive(Clone, Debug, PartialEq)]
pub struct GpuIndexSearch {
    pub hits: Vec<Vec<Hit>>,
    pub queries_rescanned: usize,
}

impl GpuGallery {
    /// Uploads `index`'s vectors. Refuses f16 and int8 storage ([`CpuOnly::Storage`]) and
    /// what the device cannot hold ([`GpuError::TooLarge`]).
    pub async fn upload_async(
        gpu: &Gpu,
        index: &EmbeddingIndex,
        opts: GalleryOptions,
    ) -> Result<GpuGallery, GpuSearchError> {
        let ranker = index.candidate_ranker()?;
        let data = index.f32_vectors().unwrap_or_default();
        let (n, dim) = (ranker.rows(), ranker.dim());
        if dim > MAX_DIM {
            return Err(GpuError::TooLarge(format!(
                "{dim} dimensions exceed the GPU kernel's limit of {MAX_DIM}"
            ))
            .into());
        }
        // Row indices travel as u32, and u32::MAX marks an empty heap slot.
        if n >= EMPTY_SLOT as usize {
            return Err(GpuError::TooLarge(format!(
                "{n} items exceed the GPU search's limit of {} items",
                EMPTY_SLOT - 1
            ))
            .into());
        }
        let limit = binding_limit(gpu).min(opts.max_buffer_bytes);
        let row_bytes = dim as u64 * 4;
        let per_slab = (limit / row_bytes.max(1)).min(n.max(1) as u64) as usize;
        if n > 0 && per_slab == 0 {
            return Err(GpuError::TooLarge(format!(
                "one vector of {dim} dimensions needs {row_bytes} bytes, more than a gallery \
                 buffer may take ({limit} bytes, {})",
                gpu.adapter
            ))
            .into());
        }
        let upload = async {
            let slabs = (0..n)
                .step_by(per_slab.max(1))
                .map(|first| {
                    let rows = per_slab.min(n - first);
                    let values = &data[first * dim..(first + rows) * dim];
                    Slab {
                        buffer: filled_buffer(
                            gpu,
                            "gallery rows",
                            bytemuck::cast_slice(values),
                            wgpu::BufferUsages::STORAGE,
                        ),
                        first,
                        rows,
                    }
                })
                .collect();
            Ok::<_, GpuError>(slabs)
        };
        let slabs = with_error_scopes(gpu, upload).await?;
        Ok(GpuGallery {
            device: gpu.serial(),
            slabs,
            ranker,
            opts,
        })
    }

    /// [`GpuGallery::upload_async`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn upload(
        gpu: &Gpu,
        index: &EmbeddingIndex,
        opts: GalleryOptions,
    ) -> Result<GpuGallery, GpuSearchError> {
        pollster::block_on(GpuGallery::upload_async(gpu, index, opts))
    }

    /// Items uploaded.
    pub fn rows(&self) -> usize {
        self.ranker.rows()
    }

    /// The revision of the index uploaded ([`EmbeddingIndex::revision`]).
    pub fn revision(&self) -> u64 {
        self.ranker.revision()
    }

    /// Whether `index` is still what was uploaded (else searches are refused as stale).
    pub fn is_current(&self, index: &EmbeddingIndex) -> bool {
        index.revision() == self.revision()
    }

    /// Gallery buffers on the device (more than one for galleries above
    /// [`GalleryOptions::max_buffer_bytes`]).
    pub fn buffers(&self) -> usize {
        self.slabs.len()
    }
}

fn binding_limit(gpu: &Gpu) -> u64 {
    gpu.limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size)
}

/// [`EmbeddingIndex::search_batch`] with the inner products on the GPU: the same hits, in the
/// same order, with the same scores, from the `gallery` uploaded from `index`. `filter` is
/// taken so that callers can hand over what they would give `search_batch`; a filtered search
/// is refused ([`CpuOnly::Filter`]), as are the other searches this path does not answer
/// exactly ([`GpuSearchError::CpuOnly`]). Bad input is refused as `search_batch` refuses it.
pub async fn index_search_async(
    gpu: &Gpu,
    kernels: &KnnKernels,
    gallery: &GpuGallery,
    index: &EmbeddingIndex,
    queries: &[f32],
    options: SearchOptions,
    filter: Option<&mut Filter<'_>>,
) -> Result<GpuIndexSearch, GpuSearchError> {
    if gallery.device != gpu.serial() {
        return Err(GpuSearchError::OtherDevice);
    }
    let ranker = &gallery.ranker;
    let units = match ranker.prepare(index, queries, options, filter.is_some())? {
        Prepared::Answered(hits) => {
            return Ok(GpuIndexSearch {
                hits,
                queries_rescanned: 0,
            })
        }
        Prepared::Scan(units) => units,
    };
    if options.k > MAX_K {
        return Err(CpuOnly::K {
            k: options.k,
            max: MAX_K,
        }
        .into());
    }
    let keep = ranker.keep(options.k);
    let lists =
        with_error_scopes(gpu, candidate_lists(gpu, kernels, gallery, &units, keep)).await?;
    let finished = ranker.finish(index, &units, options, &lists)?;
    Ok(GpuIndexSearch {
        hits: finished.hits,
        queries_rescanned: finished.rescanned,
    })
}

/// [`index_search_async`], blocking (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn index_search(
    gpu: &Gpu,
    kernels: &KnnKernels,
    gallery: &GpuGallery,
    index: &EmbeddingIndex,
    queries: &[f32],
    options: SearchOptions,
    filter: Option<&mut Filter<'_>>,
) -> Result<GpuIndexSearch, GpuSearchError> {
    pollster::block_on(index_search_async(
        gpu, kernels, gallery, index, queries, options, filter,
    ))
}

/// How one search streams through the device: `rows` queries per chunk (its heaps and one
/// block of inner products sized for them), blocks of `cols` gallery rows, `parts` heaps per
/// query.
#[derive(Debug, PartialEq)]
struct Layout {
    rows: usize,
    cols: usize,
    parts: usize,
}

impl Layout {
    /// `queries` queries against slabs of at most `slab_rows` of a gallery of `n` rows.
    fn new(
        limits: &wgpu::Limits,
        opts: &GalleryOptions,
        queries: usize,
        n: usize,
        slab_rows: usize,
        keep: usize,
    ) -> Layout {
        let max_groups = limits.max_compute_workgroups_per_dimension as usize;
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size) as usize;
        let block = binding.min(opts.max_block_bytes as usize);
        let queries_padded = queries.next_multiple_of(TILE);
        // Each part should still see several heaps' worth of rows, or most of what is read
        // back is heap filler.
        let parts = (SELECT_THREADS / queries_padded)
            .clamp(1, MAX_PARTS)
            .min((n / (4 * keep.max(1))).max(1))
            .min(max_groups);
        // Each part's thread scans at most select_span(keep) columns of a block; a block of
        // TILE query rows must fit the block budget.
        let cols = (parts * select_span(keep))
            .min(slab_rows.next_multiple_of(TILE))
            .min(block / (4 * TILE))
            .min(max_groups * TILE)
            / TILE
            * TILE;
        let cols = cols.max(TILE);
        let rows = (block / (4 * cols))
            .min(binding / (4 * parts * keep.max(1)))
            .min(queries_padded)
            .min(max_groups * TILE)
            .min(max_groups * SELECT_WG)
            / TILE
            * TILE;
        Layout {
            rows: rows.max(TILE),
            cols,
            parts,
        }
    }
}

/// Each query's candidates from the gallery: the unit queries (row-major) in chunks, every
/// gallery block of each chunk through the similarity and selection kernels, the heaps read
/// back and turned into one [`CandidateList`] per query.
async fn candidate_lists(
    gpu: &Gpu,
    kernels: &KnnKernels,
    gallery: &GpuGallery,
    units: &[f32],
    keep: usize,
) -> Result<Vec<CandidateList>, GpuError> {
    let dim = gallery.ranker.dim();
    let queries = units.len() / dim.max(1);
    let slab_rows = gallery.slabs.iter().map(|s| s.rows).max().unwrap_or(0);
    let Layout { rows, cols, parts } = Layout::new(
        &gpu.limits,
        &gallery.opts,
        queries,
        gallery.rows(),
        slab_rows,
        keep,
    );
    let heap_len = rows * parts * keep;
    check_binding(gpu, "a chunk of queries", (rows * dim) as u64 * 4)?;
    check_binding(gpu, "the candidate heaps", heap_len as u64 * 4)?;
    check_binding(gpu, "one block of inner products", (rows * cols) as u64 * 4)?;

    let query_buf = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gallery queries"),
        size: (rows * dim) as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let sims = scratch_buffer(gpu, "gallery sims", (rows * cols) as u64 * 4, false);
    let heap_vals = scratch_buffer(gpu, "gallery heap scores", heap_len as u64 * 4, true);
    let heap_idx = scratch_buffer(gpu, "gallery heap indices", heap_len as u64 * 4, true);
    let params = filled_buffer(
        gpu,
        "gallery params",
        &[0u8; 48],
        wgpu::BufferUsages::UNIFORM,
    );
    let bind_groups: Vec<wgpu::BindGroup> = gallery
        .slabs
        .iter()
        .map(|slab| {
            kernels.bind_group(
                gpu,
                &SearchBuffers {
                    params: &params,
                    queries: &query_buf,
                    gallery: &slab.buffer,
                    sims: &sims,
                    heap_vals: &heap_vals,
                    heap_idx: &heap_idx,
                },
            )
        })
        .collect();

    let mut lists = Vec::with_capacity(queries);
    for q_start in (0..queries).step_by(rows) {
        let chunk = rows.min(queries - q_start);
        gpu.queue.write_buffer(
            &query_buf,
            0,
            bytemuck::cast_slice(&units[q_start * dim..(q_start + chunk) * dim]),
        );
        let mut fresh = true;
        for (slab, bind_group) in gallery.slabs.iter().zip(&bind_groups) {
            for c0 in (0..slab.rows).step_by(cols) {
                let block_cols = cols.min(slab.rows - c0);
                let block = Block {
                    dim,
                    keep,
                    q0: 0,
                    rows: chunk,
                    c0,
                    cols: block_cols,
                    base: slab.first,
                    parts,
                    span: block_cols.div_ceil(parts),
                    exclude_self: false,
                    fresh,
                };
                kernels.run_block(gpu, bind_group, &params, &block);
                fresh = false;
            }
        }
        let len = chunk * parts * keep;
        let vals: Vec<f32> = read_buffer(gpu, &heap_vals, 0, len).await?;
        let idx: Vec<u32> = read_buffer(gpu, &heap_idx, 0, len).await?;
        let per_query = parts * keep;
        lists.extend(
            vals.chunks_exact(per_query)
                .zip(idx.chunks_exact(per_query))
                .map(|(v, j)| merge_heaps(v, j, keep, gallery.rows())),
        );
    }
    Ok(lists)
}

/// One query's heaps (each `keep` long) over a gallery of `n` rows as one candidate list:
/// every filled slot, and as the floor the largest minimum of a full heap (a heap with an
/// empty slot left nothing out, nor did heaps holding all `n` rows between them).
fn merge_heaps(vals: &[f32], idx: &[u32], keep: usize, n: usize) -> CandidateList {
    let mut list = CandidateList {
        scores: Vec::with_capacity(vals.len()),
        rows: Vec::with_capacity(vals.len()),
        floor: f32::NEG_INFINITY,
    };
    for (v, j) in vals.chunks_exact(keep).zip(idx.chunks_exact(keep)) {
        let mut full = true;
        for (&s, &row) in v.iter().zip(j) {
            if row == EMPTY_SLOT {
                full = false;
            } else {
                list.scores.push(s);
                list.rows.push(row);
            }
        }
        if full {
            // NaN (a broken device) cannot lower the floor: the list's NaN score makes the
            // core rescan the query.
            let least = v.iter().copied().fold(f32::INFINITY, f32::min);
            list.floor = list.floor.max(least);
        }
    }
    if list.rows.len() == n {
        list.floor = f32::NEG_INFINITY;
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_fit_the_block_budget_and_spread_few_queries_over_parts() {
        let limits = wgpu::Limits::default();
        let opts = GalleryOptions::default();
        // 100 queries against 100,000 rows (keep 36): one chunk, 64 parts, whole slabs
        let big = Layout::new(&limits, &opts, 100, 100_000, 43_690, 36);
        assert_eq!(big.parts, 64);
        assert_eq!(big.rows, 112);
        assert_eq!(big.cols, 43_696);
        assert!(big.rows * big.cols * 4 <= 1 << 27);
        // self-sized batches need no parts; small budgets shrink blocks, never below a tile
        let many = Layout::new(&limits, &opts, 20_000, 100_000, 100_000, 144);
        assert_eq!(many.parts, 1);
        assert!(many.cols <= select_span(144));
        let tiny = GalleryOptions {
            max_block_bytes: 1 << 12,
            ..opts
        };
        let small = Layout::new(&limits, &tiny, 50, 3_000, 3_000, 36);
        assert_eq!((small.rows, small.cols), (TILE, 64));
        for layout in [&big, &many, &small] {
            assert_eq!(
                (layout.rows % TILE, layout.cols % TILE),
                (0, 0),
                "{layout:?}"
            );
        }
    }

    #[test]
    fn heaps_merge_into_one_list_with_the_highest_full_floor() {
        let e = EMPTY_SLOT;
        // three heaps of 3: full (min 0.2), full (min 0.5), one empty slot
        let vals = [0.2, 0.9, 0.3, 0.5, 0.6, 0.7, -3e38, 0.1, 0.4];
        let idx = [4, 1, 7, 2, 3, 5, e, 0, 6];
        let list = merge_heaps(&vals, &idx, 3, 10);
        assert_eq!(list.rows, [4, 1, 7, 2, 3, 5, 0, 6]);
        assert_eq!(list.scores, [0.2, 0.9, 0.3, 0.5, 0.6, 0.7, 0.1, 0.4]);
        assert_eq!(list.floor, 0.5);
        let only_partial = merge_heaps(&vals[6..], &idx[6..], 3, 10);
        assert_eq!(only_partial.floor, f32::NEG_INFINITY);
        assert_eq!(only_partial.rows, [0, 6]);
        // full heaps that hold every row between them left nothing out either
        let every_row = merge_heaps(&vals[..6], &idx[..6], 3, 6);
        assert_eq!(every_row.floor, f32::NEG_INFINITY);
    }
}
