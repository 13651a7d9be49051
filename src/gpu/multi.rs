//! Multi-marginal Sinkhorn and M3G on the GPU (`multi.wgsl`), k = 2..=4 point clouds: the
//! same updates, error, stopping rule and `ent_reg_cost` as `crate::core::ot::multi`, with
//! the cost tensor summed on the fly from its pairwise matrices. Per check only k error sums
//! are read back.
//!
//! Validation, the pairwise costs, ε, `ent_reg_cost`, the coupling (on request) and M3G's
//! gradient come from the core (`prepare`, `finish`, `from_solved`), so both paths refuse the
//! same input in the same words and return the same types; only the loop runs here.

use super::sinkhorn::GpuSolveError;
use super::{check_binding, filled_buffer, next_check, read_buffer, submit, with_error_scopes};
use super::{Gpu, GpuError, Shader, LSE_WGSL};
use crate::core::ot::m3g::{check_views, from_solved, m3g_solve_options};
use crate::core::ot::multi::{finish, is_check, prepare, should_stop, Prepared, Solved};
use crate::core::ot::{CostFn, M3gOutput, MultiSinkhornOptions, MultiSinkhornOutput, Points};

/// The most marginals the kernels take (the shader's fixed-size index arrays).
pub const MAX_MARGINALS: usize = 4;
/// Threads per workgroup of the per-point kernels (the shader's `WG`).
const WG: u32 = 64;
/// Loop iterations one thread may spend on a tile, inner loops included: llvmpipe ends any
/// shader loop after 65,535 iterations (see `sinkhorn.rs`).
const TILE_BUDGET: usize = 32_768;
/// The shader's stand-in for −∞.
const NEG_LIMIT: f32 = -1.0e38;

/// The compute pipelines of `multi.wgsl`, built once per device.
pub struct MultiKernels {
    layout: wgpu::BindGroupLayout,
    lse_partial: wgpu::ComputePipeline,
    update_combine: wgpu::ComputePipeline,
    marginal_combine: wgpu::ComputePipeline,
    error_reduce: wgpu::ComputePipeline,
}

impl MultiKernels {
    pub fn new(gpu: &Gpu) -> MultiKernels {
        let (shader, layout) = Shader::new(
            gpu,
            "multi-marginal",
            &[LSE_WGSL, include_str!("multi.wgsl")],
            &[true, false, true, false, false, false],
        );
        let pipeline = |entry: &str| shader.pipeline(entry);
        MultiKernels {
            lse_partial: pipeline("lse_partial"),
            update_combine: pipeline("update_combine"),
            marginal_combine: pipeline("marginal_combine"),
            error_reduce: pipeline("error_reduce"),
            layout,
        }
    }
}

/// One marginal's view of the problem: its params buffer's bind group and dispatch sizes.
struct Marginal {
    bind_group: wgpu::BindGroup,
    points: u32,
    tiles: u32,
}

/// One problem's buffers: built once, used by every iteration.
struct Problem<'g> {
    gpu: &'g Gpu,
    kernels: &'g MultiKernels,
    marginals: Vec<Marginal>,
    pots: wgpu::Buffer,
    work: wgpu::Buffer,
    sums: wgpu::Buffer,
}

impl Problem<'_> {
    fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        pipeline: &wgpu::ComputePipeline,
        l: usize,
        groups: (u32, u32),
    ) {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &self.marginals[l].bind_group, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
    }

    /// Marginal l's log-sum-exps, merged by `combine`.
    fn lse(&self, pass: &mut wgpu::ComputePass, l: usize, combine: &wgpu::ComputePipeline) {
        let m = &self.marginals[l];
        let groups = m.points.div_ceil(WG);
        self.dispatch(pass, &self.kernels.lse_partial, l, (groups, m.tiles));
        self.dispatch(pass, combine, l, (groups, 1));
    }

    /// One iteration: every potential in turn, as the core.
    fn iterate(&self, pass: &mut wgpu::ComputePass) {
        for l in 0..self.marginals.len() {
            self.lse(pass, l, &self.kernels.update_combine);
        }
    }

    /// All k marginals of the current coupling into `work` and, with `error`, their error
    /// sums into `sums`.
    fn measure(&self, pass: &mut wgpu::ComputePass, error: bool) {
        for l in 0..self.marginals.len() {
            self.lse(pass, l, &self.kernels.marginal_combine);
            if error {
                self.dispatch(pass, &self.kernels.error_reduce, l, (1, 1));
            }
        }
    }

    /// The core's error: `Σ_l ‖a_l − P's l-th marginal‖_p`.
    async fn error(&self, p: f32) -> Result<f32, GpuError> {
        submit(self.gpu, "multi-marginal error", |pass| {
            self.measure(pass, true)
        });
        let sums: Vec<f32> = read_buffer(self.gpu, &self.sums, 0, self.marginals.len()).await?;
        Ok(sums
            .iter()
            .map(|&s| {
                if p == 1.0 {
                    s
                } else {
                    (s as f64).powf(1.0 / p as f64) as f32
                }
            })
            .sum())
    }
}

/// The shader's `Params` for marginal `l`, as 20 little-endian words.
fn params_words(
    sizes: &[usize],
    l: usize,
    (tile, tiles): (usize, usize),
    eps: f32,
    p: f32,
    offsets: &[u32; 4],
    pair_offsets: &[u32; 8],
) -> [u32; 24] {
    let others: usize = sizes
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != l)
        .map(|(_, &n)| n)
        .product();
    let mut words = [0u32; 24];
    words[..8].copy_from_slice(&[
        sizes.len() as u32,
        l as u32,
        others as u32,
        tile as u32,
        tiles as u32,
        eps.to_bits(),
        p.to_bits(),
        0,
    ]);
    for (w, &n) in words[8..12].iter_mut().zip(sizes) {
        *w = n as u32;
    }
    words[12..16].copy_from_slice(offsets);
    words[16..24].copy_from_slice(pair_offsets);
    words
}

/// Checks what only the GPU path limits: k ≤ [`MAX_MARGINALS`] and the dispatch sizes.
fn check_gpu_limits(gpu: &Gpu, sizes: &[usize]) -> Result<(), GpuError> {
    if sizes.len() > MAX_MARGINALS {
        return Err(GpuError::TooLarge(format!(
            "the GPU multi-marginal kernels take at most {MAX_MARGINALS} point clouds; got {} (use the CPU path)",
            sizes.len()
        )));
    }
    let max_points = gpu.limits.max_compute_workgroups_per_dimension as usize * WG as usize;
    if let Some(&n) = sizes.iter().find(|&&n| n > max_points) {
        return Err(GpuError::TooLarge(format!(
            "{n} points in one cloud exceed this GPU's dispatch limit of {max_points} ({})",
            gpu.adapter
        )));
    }
    Ok(())
}

/// Multi-marginal Sinkhorn on the GPU: the core's
/// [`multi_sinkhorn`](crate::core::ot::multi_sinkhorn) with the same arguments and output.
/// k > 4 is a [`GpuError::TooLarge`] (callers may use the CPU); a GPU-side failure is a
/// [`GpuError`], never a wrong answer.
pub async fn multi_sinkhorn_async(
    gpu: &Gpu,
    kernels: &MultiKernels,
    clouds: &[Points<'_>],
    weights: &[&[f32]],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
) -> Result<MultiSinkhornOutput, GpuSolveError> {
    let problem = prepare(clouds, weights, cost, opts)?;
    let solved = with_error_scopes(gpu, solve(gpu, kernels, problem, opts)).await?;
    Ok(solved.out)
}

/// [`multi_sinkhorn_async`], blocking (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn multi_sinkhorn(
    gpu: &Gpu,
    kernels: &MultiKernels,
    clouds: &[Points],
    weights: &[&[f32]],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
) -> Result<MultiSinkhornOutput, GpuSolveError> {
    pollster::block_on(multi_sinkhorn_async(
        gpu, kernels, clouds, weights, cost, opts,
    ))
}

/// The core's [`m3g`](crate::core::ot::m3g) with the multi-marginal solve on the GPU; the
/// gradient (on request) is computed by the core from the GPU's potentials.
pub async fn m3g_async(
    gpu: &Gpu,
    kernels: &MultiKernels,
    views: &[Points<'_>],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
    with_gradient: bool,
) -> Result<M3gOutput, GpuSolveError> {
    check_views(views, opts)?;
    let solve_opts = m3g_solve_options(opts);
    let problem = prepare(views, &[], cost, &solve_opts)?;
    let solved = with_error_scopes(gpu, solve(gpu, kernels, problem, &solve_opts)).await?;
    Ok(from_solved(views, cost, solved, with_gradient))
}

/// [`m3g_async`], blocking (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn m3g(
    gpu: &Gpu,
    kernels: &MultiKernels,
    views: &[Points],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
    with_gradient: bool,
) -> Result<M3gOutput, GpuSolveError> {
    pollster::block_on(m3g_async(gpu, kernels, views, cost, opts, with_gradient))
}

async fn solve(
    gpu: &Gpu,
    kernels: &MultiKernels,
    problem: Prepared,
    opts: &MultiSinkhornOptions,
) -> Result<Solved, GpuSolveError> {
    let sizes = problem.tensor.shape.clone();
    let k = sizes.len();
    check_gpu_limits(gpu, &sizes)?;
    let eps = problem.epsilon;

    let mut offsets = [0u32; 4];
    let mut total_points = 0usize;
    for (o, &n) in offsets.iter_mut().zip(&sizes) {
        *o = total_points as u32;
        total_points += n;
    }
    let mut pair_offsets = [0u32; 8];
    let mut costs: Vec<f32> = Vec::new();
    for (p, (_, _, c)) in problem.tensor.pairs.iter().enumerate() {
        pair_offsets[p] = costs.len() as u32;
        costs.extend_from_slice(c);
    }
    let weights: Vec<f32> = problem.a_s.concat();
    // loop steps per tensor entry: the potentials, the pairs, the carry (see multi.wgsl)
    let steps_per_entry = 3 * k + k * (k - 1) / 2 + 1;
    let tile = (TILE_BUDGET / steps_per_entry).max(1);
    let tiles: Vec<usize> = (0..k)
        .map(|l| {
            let others: usize = (0..k).filter(|&j| j != l).map(|j| sizes[j]).product();
            others.div_ceil(tile).max(1)
        })
        .collect();
    let part_len = (0..k).map(|l| 2 * sizes[l] * tiles[l]).max().unwrap_or(2);
    let max_tiles = gpu.limits.max_compute_workgroups_per_dimension as usize;
    if let Some(&t) = tiles.iter().find(|&&t| t > max_tiles) {
        return Err(GpuError::TooLarge(format!(
            "{t} tiles per point exceed this GPU's dispatch limit of {max_tiles} ({})",
            gpu.adapter
        ))
        .into());
    }
    check_binding(gpu, "the pairwise cost matrices", costs.len() as u64 * 4)?;
    check_binding(gpu, "the per-tile partial results", part_len as u64 * 4)?;

    let storage = |label: &str, data: &[f32], extra: wgpu::BufferUsages| {
        filled_buffer(
            gpu,
            label,
            bytemuck::cast_slice(data),
            wgpu::BufferUsages::STORAGE | extra,
        )
    };
    let copy_src = wgpu::BufferUsages::COPY_SRC;
    let none = wgpu::BufferUsages::empty();
    let costs_buf = storage("multi-marginal pairwise costs", &costs, none);
    let pots = storage(
        "multi-marginal potentials",
        &vec![0.0; total_points],
        copy_src,
    );
    let a_buf = storage("multi-marginal weights", &weights, none);
    let work = storage(
        "multi-marginal marginals",
        &vec![0.0; total_points],
        copy_src,
    );
    let sums = storage("multi-marginal error sums", &vec![0.0; k], copy_src);
    let part = storage("multi-marginal partials", &vec![0.0; part_len], none);
    let marginals = (0..k)
        .map(|l| {
            let words = params_words(
                &sizes,
                l,
                (tile, tiles[l]),
                eps,
                opts.norm_error,
                &offsets,
                &pair_offsets,
            );
            let params = filled_buffer(
                gpu,
                &format!("multi-marginal params of marginal {l}"),
                bytemuck::cast_slice(&words),
                wgpu::BufferUsages::UNIFORM,
            );
            let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("multi-marginal bind group of marginal {l}")),
                layout: &kernels.layout,
                entries: &[
                    (0, &params),
                    (1, &costs_buf),
                    (2, &pots),
                    (3, &a_buf),
                    (4, &work),
                    (5, &sums),
                    (6, &part),
                ]
                .map(|(binding, buffer)| wgpu::BindGroupEntry {
                    binding,
                    resource: buffer.as_entire_binding(),
                }),
            });
            Marginal {
                bind_group,
                points: sizes[l] as u32,
                tiles: tiles[l] as u32,
            }
        })
        .collect();
    let gpu_problem = Problem {
        gpu,
        kernels,
        marginals,
        pots,
        work,
        sums,
    };

    let mut errors = Vec::new();
    let mut n_iters = 0;
    while n_iters < opts.max_iterations {
        // the iterations up to the next check in one submission
        let start = n_iters;
        let end = next_check(start, opts.max_iterations, |n| is_check(n, opts));
        submit(gpu, "multi-marginal iterations", |pass| {
            for _ in start..end {
                gpu_problem.iterate(pass);
            }
        });
        n_iters = end;
        if !is_check(n_iters, opts) {
            continue;
        }
        let err = gpu_problem.error(opts.norm_error).await?;
        errors.push(err);
        if should_stop(err, n_iters, opts) {
            break;
        }
    }
    // the total mass from the first marginal of the final coupling
    submit(gpu, "multi-marginal final marginals", |pass| {
        gpu_problem.measure(pass, false)
    });
    let first: Vec<f32> = read_buffer(gpu, &gpu_problem.work, 0, sizes[0]).await?;
    let total: f64 = first.iter().map(|&v| v as f64).sum();
    let flat: Vec<f32> = read_buffer(gpu, &gpu_problem.pots, 0, total_points).await?;
    let pots = sizes
        .iter()
        .zip(offsets)
        .map(|(&n, o)| {
            flat[o as usize..o as usize + n]
                .iter()
                .map(|&v| if v <= NEG_LIMIT { f32::NEG_INFINITY } else { v })
                .collect()
        })
        .collect();
    Ok(finish(problem, opts, pots, (errors, n_iters), total))
}
