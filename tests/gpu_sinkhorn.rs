//! The GPU Sinkhorn (`src/gpu/sinkhorn.wgsl`) against the CPU reference on the same
//! problems: potentials and costs within 1e-4 relative, the same iterations and flags.
//!
//! Runs on whatever adapter wgpu finds; on a machine without a GPU that is Mesa's lavapipe
//! (installed by `scripts/test`, which also sets LATENTLAB_REQUIRE_GPU=1 so a missing
//! adapter fails there instead of skipping). Elsewhere, with no adapter at all, each test
//! prints why it skipped.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::OnceLock;

use common::{rel_err, Device};

use latentlab::core::ot::{
    sinkhorn, CostFn, Epsilon, Geometry, Points, SinkhornOptions, SinkhornOutput,
};
use latentlab::gpu::sinkhorn::{self as gpu_sinkhorn, GpuSolveError, SinkhornKernels};
use latentlab::gpu::{Gpu, GpuError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One device for the whole test binary.
fn device() -> Option<&'static Device<SinkhornKernels>> {
    static DEVICE: OnceLock<Option<Device<SinkhornKernels>>> = OnceLock::new();
    common::gpu_device(&DEVICE, SinkhornKernels::new)
}

fn cloud(rng: &mut ChaCha8Rng, n: usize, dim: usize, shift: f32) -> Vec<f32> {
    (0..n * dim)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0 + shift)
        .collect()
}

fn solve_gpu(
    geom: &Geometry,
    a: &[f32],
    b: &[f32],
    opts: &SinkhornOptions,
) -> Option<Result<SinkhornOutput, GpuSolveError>> {
    let d = device()?;
    Some(gpu_sinkhorn::sinkhorn(&d.gpu, &d.kernels, geom, a, b, opts))
}

fn compare(what: &str, geom: &Geometry, a: &[f32], b: &[f32], opts: &SinkhornOptions) {
    let cpu = sinkhorn(geom, a, b, opts).unwrap();
    let Some(gpu) = solve_gpu(geom, a, b, opts) else {
        return;
    };
    let gpu = gpu.unwrap();
    let (ef, eg) = (rel_err(&gpu.f, &cpu.f), rel_err(&gpu.g, &cpu.g));
    let cost = (gpu.reg_ot_cost - cpu.reg_ot_cost).abs() / cpu.reg_ot_cost.abs().max(1e-12);
    let transport =
        (gpu.transport_cost - cpu.transport_cost).abs() / cpu.transport_cost.abs().max(1e-12);
    println!(
        "{what}: f {ef:.1e}, g {eg:.1e}, reg_ot_cost {cost:.1e}, transport {transport:.1e}, \
         iterations {} / {}",
        gpu.n_iters, cpu.n_iters
    );
    assert!(
        ef < 1e-4 && eg < 1e-4,
        "{what}: potentials differ by {ef:e}, {eg:e}"
    );
    assert!(
        cost < 1e-4,
        "{what}: reg_ot_cost {} vs {}",
        gpu.reg_ot_cost,
        cpu.reg_ot_cost
    );
    assert!(
        transport < 1e-4,
        "{what}: transport cost {} vs {}",
        gpu.transport_cost,
        cpu.transport_cost
    );
    assert!(
        (gpu.epsilon - cpu.epsilon).abs() <= 1e-5 * cpu.epsilon,
        "{what}: epsilon"
    );
    assert_eq!(gpu.n_iters, cpu.n_iters, "{what}: iterations");
    assert_eq!(gpu.converged, cpu.converged, "{what}: converged");
    assert_eq!(gpu.errors.len(), cpu.errors.len());
    // A marginal error is a small difference of near-equal sums (the marginals carry mass
    // ~1), so it agrees in absolute terms, not to 1e-4 of itself.
    for (g, c) in gpu.errors.iter().zip(&cpu.errors) {
        assert!(
            (g - c).abs() <= 1e-5 + 1e-3 * c.abs(),
            "{what}: error {g} vs {c}"
        );
    }
    if let (Some(gp), Some(cp)) = (&gpu.plan, &cpu.plan) {
        let e = rel_err(gp, cp);
        assert!(e < 1e-4, "{what}: plan differs by {e:e}");
    }
}

fn opts(epsilon: Epsilon) -> SinkhornOptions {
    SinkhornOptions {
        epsilon,
        threshold: 1e-4,
        max_iterations: 500,
        ..SinkhornOptions::default()
    }
}

#[test]
fn point_clouds_squared_euclidean_and_cosine() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (n, m, dim) = (70, 50, 5);
    let x = cloud(&mut rng, n, dim, 0.0);
    let y = cloud(&mut rng, m, dim, 0.5);
    for (name, cost) in [
        ("sqeuclidean", CostFn::SqEuclidean),
        ("cosine", CostFn::Cosine),
    ] {
        let geom = Geometry::PointClouds {
            x: Points::new(&x, n, dim),
            y: Points::new(&y, m, dim),
            cost,
        };
        compare(name, &geom, &[], &[], &opts(Epsilon::Absolute(0.1)));
        let with_plan = SinkhornOptions {
            return_plan: true,
            ..opts(Epsilon::RelativeToMean(0.05))
        };
        compare(
            &format!("{name}, relative ε, plan"),
            &geom,
            &[],
            &[],
            &with_plan,
        );
    }
}

#[test]
fn a_cost_matrix_weights_with_a_zero_and_a_fixed_iteration_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n, m) = (40, 30);
    let cost: Vec<f32> = (0..n * m).map(|_| rng.random::<f32>()).collect();
    let mut a: Vec<f32> = (0..n).map(|_| rng.random::<f32>() + 0.1).collect();
    a[3] = 0.0;
    let total: f32 = a.iter().sum();
    a.iter_mut().for_each(|v| *v /= total);
    let geom = Geometry::CostMatrix { cost: &cost, n, m };
    // threshold 0: both run every iteration, so the loops are compared step for step.
    let fixed = SinkhornOptions {
        threshold: 0.0,
        max_iterations: 120,
        ..opts(Epsilon::Absolute(0.05))
    };
    compare(
        "cost matrix, zero weight, 120 iterations",
        &geom,
        &a,
        &[],
        &fixed,
    );
}

#[test]
fn unbalanced_marginals() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (n, m, dim) = (45, 60, 3);
    let x = cloud(&mut rng, n, dim, 0.0);
    let y = cloud(&mut rng, m, dim, 0.3);
    let geom = Geometry::PointClouds {
        x: Points::new(&x, n, dim),
        y: Points::new(&y, m, dim),
        cost: CostFn::SqEuclidean,
    };
    let b: Vec<f32> = vec![2.0 / m as f32; m];
    let unbalanced = SinkhornOptions {
        tau_a: 0.9,
        tau_b: 0.8,
        ..opts(Epsilon::Absolute(0.2))
    };
    compare("unbalanced", &geom, &[], &b, &unbalanced);
}

#[test]
fn bad_input_is_refused_before_the_gpu_with_the_cpu_paths_words() {
    let x = [0.0f32, 1.0, f32::NAN, 0.0];
    let geom = Geometry::PointClouds {
        x: Points::new(&x, 2, 2),
        y: Points::new(&x[..2], 1, 2),
        cost: CostFn::SqEuclidean,
    };
    let Some(result) = solve_gpu(&geom, &[], &[], &opts(Epsilon::Absolute(0.1))) else {
        return;
    };
    let cpu = sinkhorn(&geom, &[], &[], &opts(Epsilon::Absolute(0.1))).unwrap_err();
    // (NaN ≠ NaN, so compare the messages.)
    let gpu = result.unwrap_err();
    assert!(matches!(gpu, GpuSolveError::Input(_)), "{gpu:?}");
    assert_eq!(gpu.to_string(), cpu.to_string());
    let ok = [0.0f32, 1.0];
    let geom = Geometry::PointClouds {
        x: Points::new(&ok, 1, 2),
        y: Points::new(&ok, 1, 2),
        cost: CostFn::SqEuclidean,
    };
    let err = solve_gpu(&geom, &[], &[], &opts(Epsilon::Absolute(-1.0)))
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("epsilon"), "{err}");
}

#[test]
fn problems_beyond_the_device_limits_are_refused_by_size() {
    let Some(d) = device() else {
        return;
    };
    // A plan of n·m floats larger than one storage binding.
    let limit = d.gpu.limits.max_storage_buffer_binding_size as usize;
    let side = ((limit / 4) as f64).sqrt() as usize + 2;
    let x = vec![0.0f32; side];
    let geom = Geometry::PointClouds {
        x: Points::new(&x, side, 1),
        y: Points::new(&x, side, 1),
        cost: CostFn::SqEuclidean,
    };
    let with_plan = SinkhornOptions {
        return_plan: true,
        ..opts(Epsilon::Absolute(0.1))
    };
    let err = gpu_sinkhorn::sinkhorn(&d.gpu, &d.kernels, &geom, &[], &[], &with_plan).unwrap_err();
    assert!(
        matches!(err, GpuSolveError::Gpu(GpuError::TooLarge(_))),
        "{err}"
    );
    assert!(
        err.to_string().contains("the transport plan needs"),
        "{err}"
    );
}

#[test]
fn long_rows_are_split_into_tiles_and_merged() {
    // 240 × 300 = 72,000 loop steps per row: more than llvmpipe lets one shader loop run
    // (65,535), so this passes only through the tiled reductions (several tiles each way).
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (n, m, dim) = (240, 230, 300);
    let x = cloud(&mut rng, n, dim, 0.0);
    let y = cloud(&mut rng, m, dim, 0.2);
    let geom = Geometry::PointClouds {
        x: Points::new(&x, n, dim),
        y: Points::new(&y, m, dim),
        cost: CostFn::SqEuclidean,
    };
    let fixed = SinkhornOptions {
        threshold: 0.0,
        max_iterations: 20,
        ..opts(Epsilon::RelativeToMean(0.02))
    };
    compare("tiled, 300 dimensions", &geom, &[], &[], &fixed);
}

#[test]
fn a_lost_device_is_an_error_not_a_panic_or_a_wrong_answer() {
    if device().is_none() {
        return;
    }
    // A device of its own, destroyed before solving: what a browser does when the GPU resets.
    let gpu = Gpu::request_blocking().unwrap();
    let kernels = SinkhornKernels::new(&gpu);
    gpu.device.destroy();
    let x = [0.0f32, 0.0, 1.0, 1.0];
    let geom = Geometry::PointClouds {
        x: Points::new(&x, 2, 2),
        y: Points::new(&x, 2, 2),
        cost: CostFn::SqEuclidean,
    };
    let err = gpu_sinkhorn::sinkhorn(
        &gpu,
        &kernels,
        &geom,
        &[],
        &[],
        &opts(Epsilon::Absolute(0.1)),
    )
    .unwrap_err();
    assert!(matches!(err, GpuSolveError::Gpu(_)), "{err:?}");
}
