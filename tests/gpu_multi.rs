//! The GPU multi-marginal Sinkhorn and M3G (`src/gpu/multi.wgsl`) against the CPU reference
//! on the same problems: potentials, `ent_reg_cost`, coupling and M3G (with its gradient)
//! within 1e-4 relative, the same iterations and flags, for k = 2, 3, 4 and unequal sizes.
//!
//! Runs on whatever adapter wgpu finds (lavapipe here, see `tests/gpu_sinkhorn.rs`); with
//! no adapter at all each test prints why it skipped, unless LATENTLAB_REQUIRE_GPU is set.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::OnceLock;

use common::{rel_err, Device};

use latentlab::core::ot::{
    m3g, multi_sinkhorn, CostFn, Epsilon, MultiSinkhornOptions, MultiSinkhornOutput, Points,
};
use latentlab::gpu::multi::{self as gpu_multi, MultiKernels};
use latentlab::gpu::sinkhorn::GpuSolveError;
use latentlab::gpu::{Gpu, GpuError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn device() -> Option<&'static Device<MultiKernels>> {
    static DEVICE: OnceLock<Option<Device<MultiKernels>>> = OnceLock::new();
    common::gpu_device(&DEVICE, MultiKernels::new)
}

/// `sizes.len()` clouds in `dim` dimensions, cloud l shifted by 0.2·l.
fn clouds(seed: u64, sizes: &[usize], dim: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sizes
        .iter()
        .enumerate()
        .map(|(l, &n)| {
            (0..n * dim)
                .map(|_| rng.random::<f32>() * 2.0 - 1.0 + 0.2 * l as f32)
                .collect()
        })
        .collect()
}

fn points<'a>(data: &'a [Vec<f32>], sizes: &[usize], dim: usize) -> Vec<Points<'a>> {
    data.iter()
        .zip(sizes)
        .map(|(d, &n)| Points::new(d, n, dim))
        .collect()
}

fn assert_same(what: &str, gpu: &MultiSinkhornOutput, cpu: &MultiSinkhornOutput) {
    let worst = gpu
        .potentials
        .iter()
        .zip(&cpu.potentials)
        .map(|(g, c)| rel_err(g, c))
        .fold(0.0f32, f32::max);
    let cost = (gpu.ent_reg_cost - cpu.ent_reg_cost).abs() / cpu.ent_reg_cost.abs().max(1e-12);
    println!(
        "{what}: potentials {worst:.1e}, ent_reg_cost {cost:.1e} ({} vs {}), iterations {} / {}",
        gpu.ent_reg_cost, cpu.ent_reg_cost, gpu.n_iters, cpu.n_iters
    );
    assert!(worst < 1e-4, "{what}: potentials differ by {worst:e}");
    assert!(cost < 1e-4, "{what}: ent_reg_cost differs by {cost:e}");
    assert_eq!(gpu.epsilon, cpu.epsilon, "{what}: epsilon");
    assert_eq!(gpu.shape, cpu.shape);
    assert_eq!(gpu.n_iters, cpu.n_iters, "{what}: iterations");
    assert_eq!(gpu.converged, cpu.converged, "{what}: converged");
    assert_eq!(gpu.errors.len(), cpu.errors.len(), "{what}: checks");
    // errors are differences of near-equal sums of mass ~1: compare them absolutely
    for (g, c) in gpu.errors.iter().zip(&cpu.errors) {
        assert!(
            (g - c).abs() <= 1e-5 + 1e-3 * c.abs(),
            "{what}: error {g} vs {c}"
        );
    }
    if let (Some(gc), Some(cc)) = (&gpu.coupling, &cpu.coupling) {
        let e = rel_err(gc, cc);
        assert!(e < 1e-4, "{what}: coupling differs by {e:e}");
    }
}

fn compare(
    what: &str,
    sizes: &[usize],
    dim: usize,
    weights: &[&[f32]],
    opts: &MultiSinkhornOptions,
) {
    let data = clouds(sizes.iter().sum::<usize>() as u64, sizes, dim);
    let pts = points(&data, sizes, dim);
    let cpu = multi_sinkhorn(&pts, weights, CostFn::SqEuclidean, opts).unwrap();
    let Some(d) = device() else {
        return;
    };
    let gpu =
        gpu_multi::multi_sinkhorn(&d.gpu, &d.kernels, &pts, weights, CostFn::SqEuclidean, opts)
            .unwrap();
    assert_same(what, &gpu, &cpu);
}

/// threshold 0: both paths run every iteration, so they are compared step for step.
fn fixed(iterations: usize) -> MultiSinkhornOptions {
    MultiSinkhornOptions {
        threshold: 0.0,
        max_iterations: iterations,
        ..MultiSinkhornOptions::default()
    }
}

#[test]
fn k_2_3_4_with_unequal_sizes_step_for_step() {
    for sizes in [vec![9, 7], vec![6, 8, 5], vec![5, 4, 6, 3]] {
        let with_coupling = MultiSinkhornOptions {
            return_coupling: true,
            ..fixed(60)
        };
        compare(
            &format!("k = {}, {sizes:?}", sizes.len()),
            &sizes,
            3,
            &[],
            &with_coupling,
        );
    }
}

#[test]
fn converging_runs_stop_at_the_same_check() {
    let opts = MultiSinkhornOptions {
        threshold: 1e-3,
        epsilon: Epsilon::Absolute(0.5),
        ..MultiSinkhornOptions::default()
    };
    compare("k = 3, converging", &[10, 12, 8], 2, &[], &opts);
}

#[test]
fn weights_with_a_zero_and_a_2_norm_error() {
    let mut w: Vec<f32> = (1..=8).map(|v| v as f32).collect();
    w[2] = 0.0;
    let total: f32 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    let opts = MultiSinkhornOptions {
        norm_error: 2.0,
        ..fixed(40)
    };
    compare(
        "k = 3, zero weight, p = 2",
        &[8, 6, 7],
        2,
        &[&w, &[], &[]],
        &opts,
    );
}

#[test]
fn large_problems_run_through_several_tiles_per_point() {
    // each point of marginal 0 sums 70 × 80 = 5,600 entries for k = 3 and 40 × 45 × 50 =
    // 90,000 for k = 4: more than one tile (and than llvmpipe lets one loop run)
    compare("k = 3, tiled", &[60, 70, 80], 4, &[], &fixed(12));
    compare("k = 4, tiled", &[30, 40, 45, 50], 2, &[], &fixed(4));
}

#[test]
fn m3g_and_its_gradient_equal_the_cpus() {
    let (n, dim) = (7, 3);
    let data = clouds(11, &[n, n, n], dim);
    let views = points(&data, &[n, n, n], dim);
    let opts = MultiSinkhornOptions {
        threshold: 1e-5,
        max_iterations: 5000,
        ..MultiSinkhornOptions::default()
    };
    let cpu = m3g(&views, CostFn::Cosine, &opts, true).unwrap();
    let Some(d) = device() else {
        return;
    };
    let gpu = gpu_multi::m3g(&d.gpu, &d.kernels, &views, CostFn::Cosine, &opts, true).unwrap();
    println!(
        "m3g {} vs {}, iterations {} / {}",
        gpu.m3g, cpu.m3g, gpu.n_iters, cpu.n_iters
    );
    assert!((gpu.m3g - cpu.m3g).abs() <= 1e-4 * cpu.m3g.abs().max(1.0));
    assert!((gpu.ent_reg_cost - cpu.ent_reg_cost).abs() <= 1e-4 * cpu.ent_reg_cost.abs());
    assert_eq!(gpu.ground_truth_cost, cpu.ground_truth_cost);
    assert_eq!(gpu.converged, cpu.converged);
    let (gg, cg) = (gpu.gradient.unwrap(), cpu.gradient.unwrap());
    for (g, c) in gg.iter().zip(&cg) {
        let e = rel_err(g, c);
        assert!(e < 1e-3, "gradient differs by {e:e}");
    }
}

#[test]
fn bad_input_is_refused_with_the_cpu_paths_words_and_k_over_4_by_the_gpu() {
    let Some(d) = device() else {
        return;
    };
    let data = clouds(3, &[3, 3, 3, 3, 3], 2);
    let five = points(&data, &[3, 3, 3, 3, 3], 2);
    let opts = MultiSinkhornOptions::default();
    let err = gpu_multi::multi_sinkhorn(&d.gpu, &d.kernels, &five, &[], CostFn::SqEuclidean, &opts)
        .unwrap_err();
    assert!(
        matches!(err, GpuSolveError::Gpu(GpuError::TooLarge(_))),
        "{err}"
    );
    assert!(
        err.to_string().contains("at most 4 point clouds; got 5"),
        "{err}"
    );
    // the CPU path takes k = 5
    assert!(multi_sinkhorn(&five, &[], CostFn::SqEuclidean, &opts).is_ok());

    let nan = [0.0f32, f32::NAN];
    let bad = [five[0], Points::new(&nan, 1, 2)];
    let cpu = multi_sinkhorn(&bad, &[], CostFn::SqEuclidean, &opts).unwrap_err();
    let gpu = gpu_multi::multi_sinkhorn(&d.gpu, &d.kernels, &bad, &[], CostFn::SqEuclidean, &opts)
        .unwrap_err();
    assert!(matches!(gpu, GpuSolveError::Input(_)), "{gpu:?}");
    assert_eq!(gpu.to_string(), cpu.to_string());
    let big = MultiSinkhornOptions {
        max_tensor_entries: 20,
        ..opts
    };
    let gpu = gpu_multi::m3g(
        &d.gpu,
        &d.kernels,
        &five[..3],
        CostFn::SqEuclidean,
        &big,
        false,
    )
    .unwrap_err();
    assert!(
        gpu.to_string().contains("[3, 3, 3]") || gpu.to_string().contains("27"),
        "{gpu}"
    );
}

#[test]
fn a_lost_device_is_an_error_not_a_panic_or_a_wrong_answer() {
    if device().is_none() {
        return;
    }
    let gpu = Gpu::request_blocking().unwrap();
    let kernels = MultiKernels::new(&gpu);
    gpu.device.destroy();
    let data = clouds(5, &[3, 4, 5], 2);
    let pts = points(&data, &[3, 4, 5], 2);
    let err = gpu_multi::multi_sinkhorn(
        &gpu,
        &kernels,
        &pts,
        &[],
        CostFn::SqEuclidean,
        &MultiSinkhornOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, GpuSolveError::Gpu(_)), "{err:?}");
}
