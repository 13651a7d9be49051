//! Log-domain Sinkhorn on the GPU (`sinkhorn.wgsl`): the same updates, stopping rule, error
//! and costs as `crate::core::ot::sinkhorn`, with the costs computed on the fly from the
//! point clouds, so no n × m matrix exists (n = m = 65,536 fits) unless the plan is asked
//! for. Per check only the two reduced error values (8 bytes) are read back.
//!
//! [`SinkhornKernels`] holds the pipelines (built once per device); [`sinkhorn`] builds a
//! problem's buffers once and runs its loop. Validation, ε and the final costs come from
//! the core, so bad input is refused with the CPU path's words and the numbers mean the
//! same thing.

use super::{check_binding, filled_buffer, next_check, read_buffer, submit, with_error_scopes};
use super::{Gpu, GpuError, Shader, LSE_WGSL};
use crate::core::ot::sinkhorn::{check_problem, finish, is_check, resolve_epsilon, should_stop};
use crate::core::ot::{CostFn, Epsilon, Geometry, OtError, SinkhornOptions, SinkhornOutput};

/// Threads per workgroup of the per-row kernels (the shader's `WG`).
const WG: u32 = 64;
/// Loop iterations one thread may spend on a tile: llvmpipe (lavapipe) ends any shader loop
/// after 65,535 iterations, counting the inner cost loop too, so stay well below.
const TILE_BUDGET: usize = 32_768;
/// The shader's stand-in for −∞.
const NEG_LIMIT: f32 = -1.0e38;

/// Bad input (refused before any GPU work) or a GPU failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuSolveError {
    #[error(transparent)]
    Input(#[from] OtError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// The compute pipelines of `sinkhorn.wgsl`, built once per device.
pub struct SinkhornKernels {
    layout: wgpu::BindGroupLayout,
    g_partial: wgpu::ComputePipeline,
    g_combine: wgpu::ComputePipeline,
    f_partial: wgpu::ComputePipeline,
    f_combine: wgpu::ComputePipeline,
    column_marginal_partial: wgpu::ComputePipeline,
    column_error: wgpu::ComputePipeline,
    row_marginal_partial: wgpu::ComputePipeline,
    row_error: wgpu::ComputePipeline,
    reduce_columns: wgpu::ComputePipeline,
    reduce_rows: wgpu::ComputePipeline,
    plan_sums_partial: wgpu::ComputePipeline,
    cost_sums_partial: wgpu::ComputePipeline,
    row_sums_combine: wgpu::ComputePipeline,
    transport_plan: wgpu::ComputePipeline,
}

impl SinkhornKernels {
    pub fn new(gpu: &Gpu) -> SinkhornKernels {
        let (shader, layout) = Shader::new(
            gpu,
            "sinkhorn",
            &[LSE_WGSL, include_str!("sinkhorn.wgsl")],
            &[true, true, false, false, true, true, false, false, false],
        );
        let pipeline = |entry: &str| shader.pipeline(entry);
        SinkhornKernels {
            g_partial: pipeline("g_partial"),
            g_combine: pipeline("g_combine"),
            f_partial: pipeline("f_partial"),
            f_combine: pipeline("f_combine"),
            column_marginal_partial: pipeline("column_marginal_partial"),
            column_error: pipeline("column_error"),
            row_marginal_partial: pipeline("row_marginal_partial"),
            row_error: pipeline("row_error"),
            reduce_columns: pipeline("reduce_columns"),
            reduce_rows: pipeline("reduce_rows"),
            plan_sums_partial: pipeline("plan_sums_partial"),
            cost_sums_partial: pipeline("cost_sums_partial"),
            row_sums_combine: pipeline("row_sums_combine"),
            transport_plan: pipeline("transport_plan"),
            layout,
        }
    }
}

/// One problem's buffers and bind group.
struct Problem<'g> {
    gpu: &'g Gpu,
    kernels: &'g SinkhornKernels,
    n: u32,
    m: u32,
    /// Tiles over the rows (for column kernels) and over the columns (for row kernels).
    tiles_n: u32,
    tiles_m: u32,
    params: wgpu::Buffer,
    f: wgpu::Buffer,
    g: wgpu::Buffer,
    work: wgpu::Buffer,
    sums: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// The shader's `Params`, as 12 little-endian words.
struct Shape {
    n: u32,
    m: u32,
    dim: u32,
    kind: u32,
    tile: u32,
    tiles_n: u32,
    tiles_m: u32,
}

fn params_words(shape: &Shape, eps: f32, opts: &SinkhornOptions) -> [u32; 12] {
    [
        shape.n,
        shape.m,
        shape.dim,
        shape.kind,
        eps.to_bits(),
        opts.tau_a.to_bits(),
        opts.tau_b.to_bits(),
        opts.norm_error.to_bits(),
        shape.tile,
        shape.tiles_n,
        shape.tiles_m,
        0,
    ]
}

impl<'g> Problem<'g> {
    /// One thread per row (or column) and tile: `tiles` = 1 for the per-row kernels.
    fn dispatch_tiled(
        &self,
        pass: &mut wgpu::ComputePass,
        pipeline: &wgpu::ComputePipeline,
        rows: u32,
        tiles: u32,
    ) {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(rows.div_ceil(WG), tiles, 1);
    }

    fn dispatch(&self, pass: &mut wgpu::ComputePass, pipeline: &wgpu::ComputePipeline, rows: u32) {
        self.dispatch_tiled(pass, pipeline, rows, 1);
    }

    /// One Sinkhorn iteration: g then f.
    fn iterate(&self, pass: &mut wgpu::ComputePass) {
        let k = self.kernels;
        self.dispatch_tiled(pass, &k.g_partial, self.m, self.tiles_n);
        self.dispatch(pass, &k.g_combine, self.m);
        self.dispatch_tiled(pass, &k.f_partial, self.n, self.tiles_m);
        self.dispatch(pass, &k.f_combine, self.n);
    }

    /// Per-row `[Σ, Σ]` pairs of `partial` (cost or plan sums) read back.
    async fn row_sums(&self, partial: &wgpu::ComputePipeline) -> Result<Vec<f32>, GpuError> {
        self.run("sinkhorn row sums", |pass| {
            self.dispatch_tiled(pass, partial, self.n, self.tiles_m);
            self.dispatch(pass, &self.kernels.row_sums_combine, self.n);
        });
        self.read(&self.work, 0, 2 * self.n as u64).await
    }

    fn reduce(&self, pass: &mut wgpu::ComputePass, pipeline: &wgpu::ComputePipeline) {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }

    fn run(&self, label: &str, record: impl FnOnce(&mut wgpu::ComputePass)) {
        submit(self.gpu, label, record);
    }

    async fn read(&self, src: &wgpu::Buffer, offset: u64, len: u64) -> Result<Vec<f32>, GpuError> {
        read_buffer(self.gpu, src, offset as usize, len as usize).await
    }

    /// The marginal error after the latest update (OTT's `solution_error`, as the core).
    async fn error(&self, balanced: bool, p: f32) -> Result<f32, GpuError> {
        let k = self.kernels;
        self.run("sinkhorn error", |pass| {
            self.dispatch_tiled(pass, &k.column_marginal_partial, self.m, self.tiles_n);
            self.dispatch(pass, &k.column_error, self.m);
            self.reduce(pass, &k.reduce_columns);
            if !balanced {
                self.dispatch_tiled(pass, &k.row_marginal_partial, self.n, self.tiles_m);
                self.dispatch(pass, &k.row_error, self.n);
                self.reduce(pass, &k.reduce_rows);
            }
        });
        let sums = self.read(&self.sums, 0, 2).await?;
        let norm = |s: f32| {
            if p == 1.0 {
                s
            } else {
                (s as f64).powf(1.0 / p as f64) as f32
            }
        };
        Ok(if balanced {
            norm(sums[0])
        } else {
            norm(sums[0]) + norm(sums[1])
        })
    }
}

/// Mean and population standard deviation from per-row `[Σ c, Σ c²]` pairs over `count`
/// values (OTT's statistics of the cost, for a relative ε).
fn mean_std_from_sums(rows: &[f32], count: f64) -> (f64, f64) {
    let s: f64 = rows.iter().step_by(2).map(|&v| v as f64).sum();
    let s2: f64 = rows.iter().skip(1).step_by(2).map(|&v| v as f64).sum();
    let mean = s / count;
    (mean, (s2 / count - mean * mean).max(0.0).sqrt())
}

/// Entropic OT on the GPU: the core's [`sinkhorn`](crate::core::ot::sinkhorn) with the same
/// arguments and the same output type. A GPU-side failure (validation, out of memory, a
/// lost device) is a [`GpuError`], never a wrong answer: callers may fall back to the CPU.
pub async fn sinkhorn_async(
    gpu: &Gpu,
    kernels: &SinkhornKernels,
    geom: &Geometry<'_>,
    a: &[f32],
    b: &[f32],
    opts: &SinkhornOptions,
) -> Result<SinkhornOutput, GpuSolveError> {
    with_error_scopes(gpu, solve(gpu, kernels, geom, a, b, opts)).await
}

/// [`sinkhorn_async`], blocking (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn sinkhorn(
    gpu: &Gpu,
    kernels: &SinkhornKernels,
    geom: &Geometry,
    a: &[f32],
    b: &[f32],
    opts: &SinkhornOptions,
) -> Result<SinkhornOutput, GpuSolveError> {
    pollster::block_on(sinkhorn_async(gpu, kernels, geom, a, b, opts))
}

async fn solve(
    gpu: &Gpu,
    kernels: &SinkhornKernels,
    geom: &Geometry<'_>,
    a: &[f32],
    b: &[f32],
    opts: &SinkhornOptions,
) -> Result<SinkhornOutput, GpuSolveError> {
    let checked = check_problem(geom, a, b, opts, false)?;
    let (n, m) = (checked.n, checked.m);
    let placeholder = [0.0f32];
    let (kind, x_data, y_data, dim): (u32, &[f32], &[f32], usize) = match *geom {
        Geometry::CostMatrix { cost, .. } => (2, cost, &placeholder, 0),
        Geometry::PointClouds { x, y, cost } => {
            let kind = match cost {
                CostFn::SqEuclidean => 0,
                CostFn::Cosine => 1,
            };
            (kind, x.data, y.data, x.dim)
        }
    };
    let max_rows = gpu.limits.max_compute_workgroups_per_dimension as usize * WG as usize;
    if n.max(m) > max_rows {
        return Err(GpuError::TooLarge(format!(
            "{} points on one side exceed this GPU's dispatch limit of {max_rows} ({})",
            n.max(m),
            gpu.adapter
        ))
        .into());
    }
    let tile = (TILE_BUDGET / (dim + 2)).max(1);
    let (tiles_n, tiles_m) = (n.div_ceil(tile), m.div_ceil(tile));
    let plan_len = if opts.return_plan { n * m } else { 0 };
    let work_len = (n + m).max(2 * n).max(plan_len);
    let part_len = 2 * (m * tiles_n).max(n * tiles_m);
    check_binding(gpu, "the points (or cost matrix)", x_data.len() as u64 * 4)?;
    check_binding(gpu, "the second point cloud", y_data.len() as u64 * 4)?;
    check_binding(gpu, "the transport plan", work_len as u64 * 4)?;
    check_binding(gpu, "the per-tile partial results", part_len as u64 * 4)?;
    let (n32, m32) = (n as u32, m as u32);
    let shape = Shape {
        n: n32,
        m: m32,
        dim: dim as u32,
        kind,
        tile: tile as u32,
        tiles_n: tiles_n as u32,
        tiles_m: tiles_m as u32,
    };

    let device = &gpu.device;
    let filled = |label: &str, bytes: &[u8], usage: wgpu::BufferUsages| {
        filled_buffer(gpu, label, bytes, usage)
    };
    let storage = |label: &str, data: &[f32], extra: wgpu::BufferUsages| {
        filled(
            label,
            bytemuck::cast_slice(data),
            wgpu::BufferUsages::STORAGE | extra,
        )
    };
    let copy_src = wgpu::BufferUsages::COPY_SRC;
    let x_buf = storage("sinkhorn x", x_data, wgpu::BufferUsages::empty());
    let y_buf = storage("sinkhorn y", y_data, wgpu::BufferUsages::empty());
    let f_buf = storage("sinkhorn f", &vec![0.0; n], copy_src);
    let g_buf = storage("sinkhorn g", &vec![0.0; m], copy_src);
    let a_buf = storage("sinkhorn a", &checked.a, wgpu::BufferUsages::empty());
    let b_buf = storage("sinkhorn b", &checked.b, wgpu::BufferUsages::empty());
    let work = storage("sinkhorn work", &vec![0.0; work_len], copy_src);
    let sums = storage("sinkhorn sums", &[0.0; 2], copy_src);
    let part = storage(
        "sinkhorn partials",
        &vec![0.0; part_len],
        wgpu::BufferUsages::empty(),
    );
    // ε is not known before the cost statistics; the statistics kernel does not read it.
    let params = filled(
        "sinkhorn params",
        bytemuck::cast_slice(&params_words(&shape, 1.0, opts)),
        wgpu::BufferUsages::UNIFORM,
    );
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("sinkhorn bind group"),
        layout: &kernels.layout,
        entries: &[
            (0, &params),
            (1, &x_buf),
            (2, &y_buf),
            (3, &f_buf),
            (4, &g_buf),
            (5, &a_buf),
            (6, &b_buf),
            (7, &work),
            (8, &sums),
            (9, &part),
        ]
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding,
            resource: buffer.as_entire_binding(),
        }),
    });
    let problem = Problem {
        gpu,
        kernels,
        n: n32,
        m: m32,
        tiles_n: shape.tiles_n,
        tiles_m: shape.tiles_m,
        params,
        f: f_buf,
        g: g_buf,
        work,
        sums,
        bind_group,
    };

    let eps = match opts.epsilon {
        Epsilon::Absolute(_) => resolve_epsilon(opts.epsilon, || (0.0, 0.0))?,
        _ => {
            let rows = problem.row_sums(&kernels.cost_sums_partial).await?;
            let stats = mean_std_from_sums(&rows, (n * m) as f64);
            resolve_epsilon(opts.epsilon, || stats)?
        }
    };
    gpu.queue.write_buffer(
        &problem.params,
        0,
        bytemuck::cast_slice(&params_words(&shape, eps, opts)),
    );

    let mut errors = Vec::new();
    let mut n_iters = 0;
    while n_iters < opts.max_iterations {
        // the iterations up to the next check in one submission
        let start = n_iters;
        let end = next_check(start, opts.max_iterations, |n| is_check(n, opts));
        problem.run("sinkhorn iterations", |pass| {
            for _ in start..end {
                problem.iterate(pass);
            }
        });
        n_iters = end;
        if !is_check(n_iters, opts) {
            continue;
        }
        let err = problem.error(checked.balanced, opts.norm_error).await?;
        errors.push(err);
        if should_stop(err, n_iters, opts) {
            break;
        }
    }
    let minus_infinity = |v: f32| if v <= NEG_LIMIT { f32::NEG_INFINITY } else { v };
    let f: Vec<f32> = problem
        .read(&problem.f, 0, n as u64)
        .await?
        .into_iter()
        .map(minus_infinity)
        .collect();
    let g: Vec<f32> = problem
        .read(&problem.g, 0, m as u64)
        .await?
        .into_iter()
        .map(minus_infinity)
        .collect();
    let rows = problem.row_sums(&kernels.plan_sums_partial).await?;
    let total: f64 = rows.iter().step_by(2).map(|&v| v as f64).sum();
    let transport: f64 = rows.iter().skip(1).step_by(2).map(|&v| v as f64).sum();
    let plan = if opts.return_plan {
        problem.run("sinkhorn plan", |pass| {
            problem.dispatch_tiled(pass, &kernels.transport_plan, n32, shape.tiles_m)
        });
        Some(problem.read(&problem.work, 0, (n * m) as u64).await?)
    } else {
        None
    };
    Ok(finish(
        &checked,
        opts,
        eps,
        (f, g),
        (total, transport),
        (errors, n_iters),
        plan,
    ))
}
