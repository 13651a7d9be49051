//! The GPU neighbour search (`src/gpu/knn.wgsl`) against the CPU path: the same neighbour
//! tables, index for index (both end in the same exact f64 ranking), across many blocks,
//! with crowds of ties, at the largest k; the same alignment scores; the same refusals.
//!
//! Runs on whatever adapter wgpu finds; on a machine without a GPU that is Mesa's lavapipe
//! (installed by `scripts/test`, which also sets LATENTLAB_REQUIRE_GPU=1 so a missing
//! adapter fails there instead of skipping). Elsewhere, with no adapter at all, each test
//! prints why it skipped.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::OnceLock;

use common::Device;

use latentlab::core::align::{
    align_many, align_many_with, nearest_neighbors, normalize_rows, AlignError, AlignOptions,
    Metric,
};
use latentlab::core::matrix::Matrix;
use latentlab::gpu::knn::{
    self as gpu_knn, GpuKnnError, GpuKnnOptions, GpuNeighbors, KnnKernels, MAX_K,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One device for the whole test binary.
fn device() -> Option<&'static Device<KnnKernels>> {
    static DEVICE: OnceLock<Option<Device<KnnKernels>>> = OnceLock::new();
    common::gpu_device(&DEVICE, KnnKernels::new)
}

fn gpu_knn(
    x: &Matrix,
    k: usize,
    opts: &GpuKnnOptions,
) -> Option<Result<GpuNeighbors, GpuKnnError>> {
    let d = device()?;
    Some(gpu_knn::nearest_neighbors(&d.gpu, &d.kernels, x, k, opts))
}

/// n unit rows: a few clusters plus noise, so neighbourhoods have structure.
fn unit_rows(n: usize, d: usize, seed: u64) -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..8 * d).map(|_| rng.random::<f32>() - 0.5).collect();
    let data = (0..n)
        .flat_map(|i| {
            let c = (i * 7) % 8;
            (0..d)
                .map(|j| centres[c * d + j] + 0.3 * (rng.random::<f32>() - 0.5))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut x = Matrix::new(n, d, data, "x").unwrap();
    normalize_rows(&mut x);
    x
}

#[test]
fn same_tables_as_the_cpu_across_many_blocks() {
    // 16 KiB blocks: a few hundred (query block, candidate block) pairs, and more than
    // one candidate block per row at k = 64
    let small = GpuKnnOptions {
        max_block_bytes: 1 << 14,
    };
    let x = unit_rows(3500, 12, 1);
    for k in [10, MAX_K] {
        let Some(got) = gpu_knn(&x, k, &small) else {
            return;
        };
        let got = got.unwrap();
        assert_eq!(got.knn, nearest_neighbors(&x, k).unwrap(), "k = {k}");
        // the GPU's candidates decided every row: none needed the CPU's rescan
        assert_eq!(got.rows_rescanned, 0, "k = {k}");
    }
}

#[test]
fn same_tables_with_default_blocks_and_raw_rows() {
    // rows as given (not unit): inner products, as the CPU path defines them
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let data = (0..900 * 40)
        .map(|_| rng.random::<f32>() * 4.0 - 2.0)
        .collect();
    let x = Matrix::new(900, 40, data, "x").unwrap();
    let Some(got) = gpu_knn(&x, 7, &GpuKnnOptions::default()) else {
        return;
    };
    let got = got.unwrap();
    assert_eq!(got.knn, nearest_neighbors(&x, 7).unwrap());
    assert_eq!(got.rows_rescanned, 0);
}

#[test]
fn crowds_of_ties_are_ranked_by_index_as_on_the_cpu() {
    // entries in {-1, 0, 1}: most inner products tie exactly
    let n = 600;
    let data = (0..n * 3)
        .map(|i| ((i * 7919 + i / 3) % 3) as f32 - 1.0)
        .collect();
    let x = Matrix::new(n, 3, data, "x").unwrap();
    for k in [1, 5, 40] {
        let Some(got) = gpu_knn(&x, k, &GpuKnnOptions::default()) else {
            return;
        };
        assert_eq!(
            got.unwrap().knn,
            nearest_neighbors(&x, k).unwrap(),
            "k = {k}"
        );
    }
}

#[test]
fn alignment_scores_equal_the_cpu_path() {
    let x = unit_rows(500, 24, 3);
    let y = unit_rows(500, 16, 4);
    let Some(d) = device() else {
        return;
    };
    let metrics = [
        Metric::MutualKnn,
        Metric::CycleKnn,
        Metric::LcsKnn,
        Metric::EditDistanceKnn,
        Metric::Cknna,
    ];
    let opts = AlignOptions {
        k: 10,
        ..AlignOptions::default()
    };
    let cpu = align_many(&x, &y, &metrics, &opts).unwrap();
    let gpu = align_many_with(&x, &y, &metrics, &opts, |m: &Matrix, k| {
        gpu_knn::nearest_neighbors(&d.gpu, &d.kernels, m, k, &GpuKnnOptions::default())
            .map(|found| found.knn)
    })
    .unwrap();
    assert_eq!(cpu, gpu);
}

#[test]
fn bad_input_is_refused_in_the_cpu_paths_words() {
    let x = unit_rows(50, 4, 5);
    let opts = GpuKnnOptions::default();
    let Some(k_not_below_n) = gpu_knn(&x, 50, &opts) else {
        return;
    };
    assert!(matches!(
        k_not_below_n,
        Err(GpuKnnError::Input(AlignError::K { k: 50, .. }))
    ));
    let big = unit_rows(200, 4, 6);
    let err = gpu_knn(&big, MAX_K + 1, &opts).unwrap().unwrap_err();
    assert!(
        err.to_string().contains("k <= 64 on the GPU backend"),
        "{err}"
    );
    let mut nan = x.clone();
    nan.data[7] = f32::NAN;
    assert!(matches!(
        gpu_knn(&nan, 3, &opts).unwrap(),
        Err(GpuKnnError::Input(AlignError::NonFinite {
            row: 1,
            col: 3,
            ..
        }))
    ));
    assert!(matches!(
        gpu_knn(&x, 0, &opts).unwrap(),
        Err(GpuKnnError::Input(AlignError::K { k: 0, .. }))
    ));
}
