//! The GPU top-k search of an `EmbeddingIndex` (`src/gpu/gallery.rs`, `knn.wgsl`) against
//! `search_batch`: the same hits, scores and order of ties, hit for hit, on galleries of
//! several sizes and dimensions, one gallery upload answering many batches, galleries split
//! over several buffers and blocks, crowds of identical vectors; the same refusals of bad
//! input, and a reason (`CpuOnly`) for every search this path leaves to the CPU.
//!
//! Runs on whatever adapter wgpu finds (Mesa's lavapipe on a machine without a GPU; see
//! `tests/gpu_knn.rs` for LATENTLAB_REQUIRE_GPU). The benchmark at the end is ignored by
//! default (BENCHMARKS.md says how to run it).

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::OnceLock;

use common::Device;

use latentlab::core::index::{CpuOnly, EmbeddingIndex, IndexError, SearchOptions, Storage};
use latentlab::gpu::gallery::{
    index_search, GalleryOptions, GpuGallery, GpuIndexSearch, GpuSearchError,
};
use latentlab::gpu::knn::{KnnKernels, MAX_K};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

fn device() -> Option<&'static Device<KnnKernels>> {
    static DEVICE: OnceLock<Option<Device<KnnKernels>>> = OnceLock::new();
    common::gpu_device(&DEVICE, KnnKernels::new)
}

fn opts(k: usize) -> SearchOptions {
    SearchOptions {
        k,
        ..Default::default()
    }
}

/// `n` vectors of `dim` values around 8 centres (so neighbourhoods have structure), not
/// normalised (the index does that).
fn clustered(n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let centres: Vec<f32> = (0..8 * dim).map(|_| rng.random::<f32>() - 0.5).collect();
    (0..n)
        .flat_map(|i| {
            let c = (i * 5) % 8;
            (0..dim)
                .map(|j| centres[c * dim + j] + 0.4 * (rng.random::<f32>() - 0.5))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn index_of(dim: usize, data: &[f32], storage: Storage) -> EmbeddingIndex {
    let ids: Vec<String> = (0..data.len() / dim).map(|i| format!("item-{i}")).collect();
    let mut index = EmbeddingIndex::new("random", Some(dim), storage).unwrap();
    index.add(&ids, data, vec![]).unwrap();
    index
}

/// The GPU search of `queries`, or None without an adapter.
fn gpu_search(
    gallery: &GpuGallery,
    index: &EmbeddingIndex,
    queries: &[f32],
    options: SearchOptions,
) -> Option<Result<GpuIndexSearch, GpuSearchError>> {
    let d = device()?;
    Some(index_search(
        &d.gpu, &d.kernels, gallery, index, queries, options, None,
    ))
}

fn upload(index: &EmbeddingIndex, opts: GalleryOptions) -> Option<GpuGallery> {
    let d = device()?;
    Some(GpuGallery::upload(&d.gpu, index, opts).unwrap())
}

#[test]
fn same_hits_as_search_batch_across_sizes_dims_and_k() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (n, dim) in [(1, 3), (37, 3), (1000, 384), (1500, 1000), (4099, 3)] {
        let data = clustered(n, dim, &mut rng);
        let index = index_of(dim, &data, Storage::F32);
        let Some(gallery) = upload(&index, GalleryOptions::default()) else {
            return;
        };
        // fresh queries, and gallery rows themselves (each a perfect match)
        let mut queries = clustered(40, dim, &mut rng);
        queries.extend_from_slice(&data[..dim * n.min(20)]);
        for k in [1, 10, MAX_K] {
            for threshold in [None, Some(0.5)] {
                let o = SearchOptions {
                    k,
                    threshold,
                    rerank: None,
                };
                let got = gpu_search(&gallery, &index, &queries, o).unwrap().unwrap();
                let want = index.search_batch(&queries, o, None).unwrap();
                assert_eq!(got.hits, want, "n {n} dim {dim} k {k} {threshold:?}");
                // structured data, no near-ties: the GPU's candidates decided every query
                assert_eq!(got.queries_rescanned, 0, "n {n} dim {dim} k {k}");
            }
        }
    }
}

#[test]
fn several_buffers_blocks_and_query_chunks_give_the_same_hits() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n, dim) = (3001, 12);
    let data = clustered(n, dim, &mut rng);
    let index = index_of(dim, &data, Storage::F32);
    // 16 KiB buffers of 341 rows (nine of them), blocks of 16 queries × 256 rows: seven query
    // chunks, and every heap fed from eighteen blocks over nine buffers
    let small = GalleryOptions {
        max_block_bytes: 1 << 14,
        max_buffer_bytes: 1 << 14,
    };
    let Some(gallery) = upload(&index, small) else {
        return;
    };
    assert_eq!(gallery.buffers(), 9);
    let queries = clustered(100, dim, &mut rng);
    for k in [1, 10, MAX_K] {
        let got = gpu_search(&gallery, &index, &queries, opts(k))
            .unwrap()
            .unwrap();
        assert_eq!(
            got.hits,
            index.search_batch(&queries, opts(k), None).unwrap()
        );
        assert_eq!(got.queries_rescanned, 0, "k {k}");
    }
}

#[test]
fn crowds_of_identical_vectors_tie_by_row_as_on_the_cpu() {
    // entries in {-1, 0, 1}: 26 distinct directions among 700 items, so most scores tie
    // exactly and the heaps cut through crowds of equal scores
    let (n, dim) = (700, 3);
    let data: Vec<f32> = (0..n * dim)
        .map(|i| ((i * 7919 + i / 3) % 3) as f32 - 1.0)
        .collect();
    // the index refuses zero vectors
    let nonzero: Vec<f32> = data
        .chunks(dim)
        .filter(|v| v.iter().any(|&x| x != 0.0))
        .flatten()
        .copied()
        .collect();
    let index = index_of(dim, &nonzero, Storage::F32);
    let Some(gallery) = upload(&index, GalleryOptions::default()) else {
        return;
    };
    let queries: Vec<f32> = nonzero[..60 * dim].to_vec();
    for k in [1, 10, MAX_K] {
        let got = gpu_search(&gallery, &index, &queries, opts(k))
            .unwrap()
            .unwrap();
        assert_eq!(
            got.hits,
            index.search_batch(&queries, opts(k), None).unwrap(),
            "k {k}"
        );
        // every score is in a crowd of equal ones: no heap can vouch for its list
        assert_eq!(got.queries_rescanned, 60, "k {k}");
    }
}

#[test]
fn copies_of_a_vector_tie_by_row_without_a_rescan() {
    // 1,200 structured rows, and three more copies of each of the first 40 scattered among
    // them: a query equal to one of those has four hits scoring exactly alike, which the
    // GPU's candidates must bring back and the CPU must order by row
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let dim = 64;
    let base = clustered(1200, dim, &mut rng);
    let mut data = base.clone();
    for copy in 0..3 {
        for i in 0..40 {
            let at = (37 * i + 401 * copy + 5) % (data.len() / dim);
            let v = base[i * dim..(i + 1) * dim].to_vec();
            data.splice(at * dim..at * dim, v);
        }
    }
    let index = index_of(dim, &data, Storage::F32);
    let Some(gallery) = upload(&index, GalleryOptions::default()) else {
        return;
    };
    let queries = &base[..40 * dim];
    for k in [1, 3, 4, 10] {
        let got = gpu_search(&gallery, &index, queries, opts(k))
            .unwrap()
            .unwrap();
        let want = index.search_batch(queries, opts(k), None).unwrap();
        assert_eq!(got.hits, want, "k {k}");
        assert_eq!(got.queries_rescanned, 0, "k {k}");
        if k >= 4 {
            assert!(want.iter().all(|hits| hits[..4]
                .windows(2)
                .all(|w| w[0].score == w[1].score && w[0].row < w[1].row)));
        }
    }
}

#[test]
fn one_upload_answers_many_batches_until_the_index_changes() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let dim = 24;
    let data = clustered(800, dim, &mut rng);
    let mut index = index_of(dim, &data, Storage::F32);
    let Some(gallery) = upload(&index, GalleryOptions::default()) else {
        return;
    };
    for batch in [1, 2, 17, 300] {
        let queries = clustered(batch, dim, &mut rng);
        let got = gpu_search(&gallery, &index, &queries, opts(10))
            .unwrap()
            .unwrap();
        assert_eq!(
            got.hits,
            index.search_batch(&queries, opts(10), None).unwrap()
        );
    }
    assert!(gallery.is_current(&index));
    index.remove(&["item-3".to_string()]);
    assert!(!gallery.is_current(&index));
    let stale = gpu_search(&gallery, &index, &data[..dim], opts(10)).unwrap();
    assert!(
        matches!(stale, Err(GpuSearchError::CpuOnly(CpuOnly::Stale { .. }))),
        "{stale:?}"
    );
    let again = upload(&index, GalleryOptions::default()).unwrap();
    let got = gpu_search(&again, &index, &data[..dim * 5], opts(10))
        .unwrap()
        .unwrap();
    assert_eq!(
        got.hits,
        index
            .search_batch(&data[..dim * 5], opts(10), None)
            .unwrap()
    );
}

#[test]
fn refusals_name_the_input_or_the_reason_to_search_on_the_cpu() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let dim = 5;
    let data = clustered(200, dim, &mut rng);
    let index = index_of(dim, &data, Storage::F32);
    let Some(d) = device() else {
        return;
    };
    let gallery = GpuGallery::upload(&d.gpu, &index, GalleryOptions::default()).unwrap();
    let q = &data[..dim];
    // bad input: search_batch's error, word for word
    let nan = SearchOptions {
        k: 3,
        threshold: Some(f32::NAN),
        rerank: None,
    };
    for (queries, o) in [
        (&data[..dim + 1], opts(3)),
        (q, opts(0)),
        (&[0.0; 5][..], opts(3)),
        (q, nan),
    ] {
        let want = index.search_batch(queries, o, None).unwrap_err();
        let got = gpu_search(&gallery, &index, queries, o)
            .unwrap()
            .unwrap_err();
        assert_eq!(got.to_string(), want.to_string());
        assert!(matches!(got, GpuSearchError::Input(_)), "{got:?}");
    }
    assert!(matches!(
        gpu_search(&gallery, &index, q, opts(0)),
        Some(Err(GpuSearchError::Input(IndexError::ZeroK)))
    ));
    // what this path leaves to the CPU
    let err = gpu_search(&gallery, &index, q, opts(MAX_K + 1))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        GpuSearchError::CpuOnly(CpuOnly::K {
            k: MAX_K + 1,
            max: MAX_K
        })
    );
    assert!(err.to_string().contains("k <= 64"), "{err}");
    let mut all = |_: &str, _: Option<&Value>| Ok(true);
    let filtered = index_search(
        &d.gpu,
        &d.kernels,
        &gallery,
        &index,
        q,
        opts(3),
        Some(&mut all),
    );
    assert_eq!(filtered, Err(GpuSearchError::CpuOnly(CpuOnly::Filter)));
    for storage in [Storage::F16, Storage::Int8] {
        let compact = index_of(dim, &data, storage);
        assert_eq!(
            GpuGallery::upload(&d.gpu, &compact, GalleryOptions::default()).err(),
            Some(GpuSearchError::CpuOnly(CpuOnly::Storage(storage)))
        );
    }
    // a gallery belongs to the device it was uploaded to
    let other = latentlab::gpu::Gpu::request_blocking().unwrap();
    let elsewhere = GpuGallery::upload(&other, &index, GalleryOptions::default()).unwrap();
    let err = gpu_search(&elsewhere, &index, q, opts(3))
        .unwrap()
        .unwrap_err();
    assert_eq!(err, GpuSearchError::OtherDevice);
    // answers that need no scan: no queries, an index without items, k beyond the index
    assert_eq!(
        gpu_search(&gallery, &index, &[], opts(3))
            .unwrap()
            .unwrap()
            .hits,
        Vec::<Vec<_>>::new()
    );
    let empty = EmbeddingIndex::new("random", Some(dim), Storage::F32).unwrap();
    let nothing = GpuGallery::upload(&d.gpu, &empty, GalleryOptions::default()).unwrap();
    let got = gpu_search(&nothing, &empty, &data[..2 * dim], opts(3))
        .unwrap()
        .unwrap();
    assert_eq!(got.hits, vec![vec![], vec![]]);
    let small = index_of(dim, &data[..7 * dim], Storage::F32);
    let few = GpuGallery::upload(&d.gpu, &small, GalleryOptions::default()).unwrap();
    let got = gpu_search(&few, &small, q, opts(MAX_K)).unwrap().unwrap();
    assert_eq!(got.hits, small.search_batch(q, opts(MAX_K), None).unwrap());
    assert_eq!(got.hits[0].len(), 7);
}

/// Query time of a 100,000 × 384 f32 gallery (seeded random unit vectors), 100 queries,
/// k = 10: `search_batch` on the CPU against the GPU search with the gallery uploaded once,
/// the two alternating round by round (which goes first alternates too), every round's hits
/// compared. Not a test; BENCHMARKS.md gives the command and the numbers measured.
#[test]
#[ignore = "a benchmark: minutes on a software adapter"]
fn benchmark_query_time_100k_x_384() {
    use std::time::Instant;
    let env = |name: &str, fallback: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(fallback)
    };
    let (n, dim) = (env("BENCH_N", 100_000), env("BENCH_DIM", 384));
    let (batch, rounds, k) = (env("BENCH_QUERIES", 100), env("BENCH_ROUNDS", 5), 10);
    let Some(d) = device() else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut gaussian = |count: usize| -> Vec<f32> {
        (0..count)
            .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
            .collect()
    };
    let index = index_of(dim, &gaussian(n * dim), Storage::F32);
    let queries = gaussian(batch * dim);
    let o = opts(k);
    let started = Instant::now();
    let gallery = GpuGallery::upload(&d.gpu, &index, GalleryOptions::default()).unwrap();
    // the copies are queued: wait for them
    d.gpu.queue.submit([]);
    d.gpu
        .device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let upload_s = started.elapsed().as_secs_f64();
    // one search each before timing: the device's first dispatches compile and allocate
    let warm = index_search(&d.gpu, &d.kernels, &gallery, &index, &queries, o, None).unwrap();
    let want = index.search_batch(&queries, o, None).unwrap();
    assert_eq!(warm.hits, want);
    let per_query_ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3 / batch as f64;
    let (mut cpu, mut gpu, mut rescanned) = (Vec::new(), Vec::new(), 0);
    for round in 0..rounds {
        for engine in [round % 2, 1 - round % 2] {
            let t = Instant::now();
            if engine == 0 {
                let hits = index.search_batch(&queries, o, None).unwrap();
                cpu.push(per_query_ms(t));
                assert_eq!(hits, want);
            } else {
                let found =
                    index_search(&d.gpu, &d.kernels, &gallery, &index, &queries, o, None).unwrap();
                gpu.push(per_query_ms(t));
                assert_eq!(found.hits, want);
                rescanned += found.queries_rescanned;
            }
        }
        println!(
            "{{\"round\": {round}, \"first\": \"{}\", \"cpu_ms_per_query\": {:.3}, \
             \"gpu_ms_per_query\": {:.3}, \"cpu_over_gpu\": {:.2}}}",
            ["cpu", "gpu"][round % 2],
            cpu[round],
            gpu[round],
            cpu[round] / gpu[round]
        );
    }
    let ratios: Vec<f64> = cpu.iter().zip(&gpu).map(|(c, g)| c / g).collect();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("[{lo:.3}, {hi:.3}]")
    };
    println!(
        "{{\"n\": {n}, \"dim\": {dim}, \"queries\": {batch}, \"k\": {k}, \"rounds\": {rounds}, \
         \"adapter\": \"{}\", \"upload_s\": {upload_s:.2}, \"gallery_buffers\": {}, \
         \"cpu_ms_per_query\": {:.3}, \"cpu_range\": {}, \"gpu_ms_per_query\": {:.3}, \
         \"gpu_range\": {}, \"cpu_over_gpu\": {:.2}, \"ratio_range\": {}, \
         \"queries_rescanned\": {rescanned}}}",
        d.gpu.adapter,
        gallery.buffers(),
        median(&cpu),
        range(&cpu),
        median(&gpu),
        range(&gpu),
        median(&ratios),
        range(&ratios),
    );
}
