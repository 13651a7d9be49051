//! `latentlab ot …`: entropic optimal transport (Sinkhorn), multi-marginal Sinkhorn and
//! the M3G loss on `.npy` point clouds or cost matrices. One JSON object on stdout.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use latentlab::core::matrix::Matrix;
use latentlab::core::ot::{
    m3g, multi_sinkhorn, sinkhorn, CostFn, Epsilon, Geometry, M3gOutput, MultiSinkhornOptions,
    MultiSinkhornOutput, OtError, Points, SinkhornOptions, DEFAULT_MAX_TENSOR_ENTRIES,
};
use latentlab::gpu::multi::{m3g as gpu_m3g, multi_sinkhorn as gpu_multi_sinkhorn, MultiKernels};
use latentlab::gpu::sinkhorn::{sinkhorn as gpu_sinkhorn, GpuSolveError, SinkhornKernels};
use latentlab::gpu::Gpu;
use serde_json::{json, Value};

use crate::common::{choose_gpu, emit, Backend};
use crate::npy::{read_matrix, write_matrix};

#[derive(Subcommand)]
pub enum OtCommand {
    /// Entropic OT between two weighted point clouds (or under a cost matrix):
    /// log-domain Sinkhorn, balanced or unbalanced, as OTT-JAX / POT.
    Sinkhorn(SinkhornArgs),
    /// Multi-marginal Sinkhorn between k >= 2 point clouds, and the M3G loss when every
    /// cloud has the same number of points (row i of every cloud is item i).
    Multi(MultiArgs),
}

/// ε: absolute, or relative to the mean of the cost.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct EpsilonArgs {
    /// The entropic regularisation ε (absolute, > 0).
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    epsilon: Option<f32>,
    /// ε as this multiple of the mean of the cost (OTT-JAX's `relative_epsilon="mean"`).
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    relative_epsilon: Option<f32>,
}

impl EpsilonArgs {
    /// The flag that was given.
    fn flag(&self) -> &'static str {
        if self.epsilon.is_some() {
            "--epsilon"
        } else {
            "--relative-epsilon"
        }
    }

    fn spec(&self) -> Epsilon {
        match (self.epsilon, self.relative_epsilon) {
            (Some(e), _) => Epsilon::Absolute(e),
            (None, Some(r)) => Epsilon::RelativeToMean(r),
            // clap's group makes one of them required.
            (None, None) => Epsilon::Absolute(f32::NAN),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostFnArg {
    /// ‖x − y‖².
    #[value(name = "sqeuclidean", alias = "sq-euclidean", alias = "sq_euclidean")]
    SqEuclidean,
    /// 1 − cos(x, y).
    Cosine,
}

impl CostFnArg {
    fn core(self) -> CostFn {
        match self {
            CostFnArg::SqEuclidean => CostFn::SqEuclidean,
            CostFnArg::Cosine => CostFn::Cosine,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CostFnArg::SqEuclidean => "sqeuclidean",
            CostFnArg::Cosine => "cosine",
        }
    }
}

#[derive(Args)]
pub struct SinkhornArgs {
    /// The first point cloud: an n × d float32/float64 array.
    #[arg(long, value_name = "X.npy", required_unless_present = "cost")]
    x: Option<PathBuf>,
    /// The second point cloud: an m × d array.
    #[arg(long, value_name = "Y.npy", required_unless_present = "cost")]
    y: Option<PathBuf>,
    /// Weights of the first marginal (length n; default uniform 1/n).
    #[arg(long, value_name = "a.npy")]
    a: Option<PathBuf>,
    /// Weights of the second marginal (length m; default uniform 1/m).
    #[arg(long, value_name = "b.npy")]
    b: Option<PathBuf>,
    /// An n × m cost matrix, used instead of point clouds.
    #[arg(long, value_name = "C.npy", conflicts_with_all = ["x", "y", "cost_fn"])]
    cost: Option<PathBuf>,
    #[command(flatten)]
    epsilon: EpsilonArgs,
    /// The ground cost between points.
    #[arg(long, value_enum, default_value_t = CostFnArg::SqEuclidean)]
    cost_fn: CostFnArg,
    /// Relaxation of the first marginal in (0, 1]; 1 is balanced (ρ = ε τ / (1 − τ)).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    tau_a: f32,
    /// Relaxation of the second marginal in (0, 1]; 1 is balanced.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    tau_b: f32,
    /// Stop when the marginal error (L1) is below this.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    threshold: f32,
    /// At most this many iterations.
    #[arg(long, default_value_t = 2000)]
    max_iterations: usize,
    /// Write the n × m transport plan here (float32 .npy).
    #[arg(long, value_name = "P.npy")]
    plan_out: Option<PathBuf>,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
}

#[derive(Args)]
pub struct MultiArgs {
    /// The point clouds, each an n_l × d array (k >= 2, common d).
    #[arg(long, value_name = "X.npy", num_args = 1.., required = true)]
    x: Vec<PathBuf>,
    /// Weights, one probability vector per cloud (default uniform; M3G needs uniform).
    #[arg(long, value_name = "a.npy", num_args = 1..)]
    a: Vec<PathBuf>,
    #[command(flatten)]
    epsilon: EpsilonArgs,
    /// The ground cost between points (summed over every pair of clouds).
    #[arg(long, value_enum, default_value_t = CostFnArg::SqEuclidean)]
    cost_fn: CostFnArg,
    /// Stop when the marginal error is below this.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    threshold: f32,
    /// At most this many iterations.
    #[arg(long, default_value_t = 2000)]
    max_iterations: usize,
    /// Refuse problems whose cost tensor has more entries than this.
    #[arg(long, default_value_t = DEFAULT_MAX_TENSOR_ENTRIES)]
    max_tensor_entries: usize,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
}

pub fn run(cmd: OtCommand) -> Result<bool> {
    let value = match cmd {
        OtCommand::Sinkhorn(args) => run_sinkhorn(&args)?,
        OtCommand::Multi(args) => run_multi(&args)?,
    };
    emit(&value)?;
    Ok(true)
}

fn file_arg(flag: &str, path: &Path) -> String {
    format!("{flag} {}", path.display())
}

/// Reads an array; read_matrix's messages name `flag` and the file.
fn read(flag: &str, path: &Path) -> Result<Matrix> {
    read_matrix(path, flag)
}

/// A weight vector: a 1-D array, or a 2-D one with a single row or column.
fn read_vector(flag: &str, path: &Path) -> Result<Vec<f32>> {
    let m = read(flag, path)?;
    if m.rows != 1 && m.cols != 1 {
        bail!(
            "{}: expected a vector of weights (a 1-D array), got a {}×{} array",
            file_arg(flag, path),
            m.rows,
            m.cols
        );
    }
    if m.data.is_empty() {
        bail!(
            "{}: the weight vector is empty (leave the option out for uniform weights)",
            file_arg(flag, path)
        );
    }
    Ok(m.data)
}

/// The argument an `OtError` names, if any.
fn error_arg(e: &OtError) -> Option<&str> {
    match e {
        OtError::Empty { arg, .. }
        | OtError::Shape { arg, .. }
        | OtError::NegativeWeight { arg, .. }
        | OtError::NonFiniteWeight { arg, .. }
        | OtError::ZeroMass { arg }
        | OtError::MassMismatch { arg, .. }
        | OtError::NonFinitePoint { arg, .. } => Some(arg),
        OtError::NonFiniteCost { .. } => Some("cost"),
        OtError::Epsilon { .. } => Some("epsilon"),
        OtError::Option { name, .. } => Some(name),
        _ => None,
    }
}

/// Prefixes a core error with the command-line argument (and file) it is about.
fn ot_error(e: OtError, locate: impl Fn(&str) -> Option<String>) -> anyhow::Error {
    match error_arg(&e).and_then(&locate) {
        Some(place) => anyhow!(e).context(place),
        None => anyhow!(e),
    }
}

/// `x_s[2]` / `views[2]` / `a_s[2]` → (`x_s`, 2).
fn indexed(arg: &str) -> Option<(&str, usize)> {
    let (name, rest) = arg.split_once('[')?;
    Some((name, rest.strip_suffix(']')?.parse().ok()?))
}

fn run_sinkhorn(args: &SinkhornArgs) -> Result<Value> {
    let (gpu, mut fallback) = choose_gpu(args.backend)?;
    let a = args
        .a
        .as_deref()
        .map(|p| read_vector("--a", p))
        .transpose()?;
    let b = args
        .b
        .as_deref()
        .map(|p| read_vector("--b", p))
        .transpose()?;
    let opts = SinkhornOptions {
        epsilon: args.epsilon.spec(),
        tau_a: args.tau_a,
        tau_b: args.tau_b,
        threshold: args.threshold,
        max_iterations: args.max_iterations,
        return_plan: args.plan_out.is_some(),
        ..SinkhornOptions::default()
    };
    let locate = |arg: &str| -> Option<String> {
        let file = |flag: &str, p: &Option<PathBuf>| p.as_deref().map(|p| file_arg(flag, p));
        match arg {
            "x" => file("--x", &args.x),
            "y" => file("--y", &args.y),
            "a" => file("--a", &args.a).or_else(|| Some("--a (uniform)".into())),
            "b" => file("--b", &args.b).or_else(|| Some("--b (uniform)".into())),
            "cost" => file("--cost", &args.cost),
            "epsilon" => Some(args.epsilon.flag().into()),
            "tau_a" => Some("--tau-a".into()),
            "tau_b" => Some("--tau-b".into()),
            "threshold" => Some("--threshold".into()),
            "max_iterations" => Some("--max-iterations".into()),
            _ => None,
        }
    };

    let (cost_matrix, x, y);
    let (geom, cost_fn) = match &args.cost {
        Some(path) => {
            cost_matrix = read("--cost", path)?;
            (
                Geometry::CostMatrix {
                    cost: &cost_matrix.data,
                    n: cost_matrix.rows,
                    m: cost_matrix.cols,
                },
                None,
            )
        }
        None => {
            // clap requires --x and --y without --cost.
            let (Some(px), Some(py)) = (&args.x, &args.y) else {
                bail!("give --x and --y (point clouds) or --cost (a cost matrix)");
            };
            x = read("--x", px)?;
            y = read("--y", py)?;
            (
                Geometry::PointClouds {
                    x: Points::new(&x.data, x.rows, x.cols),
                    y: Points::new(&y.data, y.rows, y.cols),
                    cost: args.cost_fn.core(),
                },
                Some(args.cost_fn.name()),
            )
        }
    };
    let (n, m) = match geom {
        Geometry::CostMatrix { n, m, .. } => (n, m),
        Geometry::PointClouds { x, y, .. } => (x.n, y.n),
    };

    let (a, b) = (a.as_deref().unwrap_or(&[]), b.as_deref().unwrap_or(&[]));
    let on_gpu = match &gpu {
        Some(gpu) => {
            let kernels = SinkhornKernels::new(gpu);
            match gpu_sinkhorn(gpu, &kernels, &geom, a, b, &opts) {
                Ok(out) => Some(out),
                Err(GpuSolveError::Input(e)) => return Err(ot_error(e, locate)),
                Err(GpuSolveError::Gpu(e)) if args.backend == Backend::Auto => {
                    fallback = Some(format!("{e}; solved on the CPU"));
                    None
                }
                Err(GpuSolveError::Gpu(e)) => bail!("--backend gpu: {e}"),
            }
        }
        None => None,
    };
    let backend = if on_gpu.is_some() { "gpu" } else { "cpu" };
    let out = match on_gpu {
        Some(out) => out,
        None => sinkhorn(&geom, a, b, &opts).map_err(|e| ot_error(e, locate))?,
    };

    if let (Some(path), Some(plan)) = (&args.plan_out, out.plan) {
        let plan = Matrix::new(n, m, plan, "the plan")?;
        write_matrix(path, &plan).with_context(|| file_arg("--plan-out", path))?;
    }

    let mut value = json!({
        "backend": backend,
        "reg_ot_cost": out.reg_ot_cost,
        "ent_reg_cost": out.ent_reg_cost,
        "transport_cost": out.transport_cost,
        "epsilon": out.epsilon,
        "n_iters": out.n_iters,
        "converged": out.converged,
        "errors": out.errors,
        "n": n,
        "m": m,
        "cost_fn": cost_fn,
        "tau_a": args.tau_a,
        "tau_b": args.tau_b,
    });
    if let Some(path) = &args.plan_out {
        value["plan_out"] = json!(path.display().to_string());
    }
    if backend == "gpu" {
        if let Some(gpu) = &gpu {
            value["adapter"] = json!(gpu.adapter.to_string());
        }
    }
    if let Some(why) = fallback {
        value["fallback"] = json!(why);
    }
    Ok(value)
}

fn run_multi(args: &MultiArgs) -> Result<Value> {
    let clouds: Vec<Matrix> = args
        .x
        .iter()
        .enumerate()
        .map(|(l, p)| read(&format!("--x[{l}]"), p))
        .collect::<Result<_>>()?;
    if !args.a.is_empty() && args.a.len() != args.x.len() {
        bail!(
            "--a: got {} weight file(s) for {} point cloud(s); give one per cloud, or none for uniform weights",
            args.a.len(),
            args.x.len()
        );
    }
    let weights: Vec<Vec<f32>> = args
        .a
        .iter()
        .enumerate()
        .map(|(l, p)| read_vector(&format!("--a[{l}]"), p))
        .collect::<Result<_>>()?;
    let points: Vec<Points> = clouds
        .iter()
        .map(|c| Points::new(&c.data, c.rows, c.cols))
        .collect();
    let sizes: Vec<usize> = clouds.iter().map(|c| c.rows).collect();
    let opts = MultiSinkhornOptions {
        epsilon: args.epsilon.spec(),
        threshold: args.threshold,
        max_iterations: args.max_iterations,
        max_tensor_entries: args.max_tensor_entries,
        ..MultiSinkhornOptions::default()
    };
    let locate = |arg: &str| -> Option<String> {
        match indexed(arg) {
            Some(("x_s" | "views", l)) => args.x.get(l).map(|p| file_arg(&format!("--x[{l}]"), p)),
            Some(("a_s", l)) => args.a.get(l).map(|p| file_arg(&format!("--a[{l}]"), p)),
            _ => match arg {
                "epsilon" => Some(args.epsilon.flag().into()),
                "threshold" => Some("--threshold".into()),
                "max_iterations" => Some("--max-iterations".into()),
                _ => None,
            },
        }
    };

    // M3G is defined for k views of the same n items with uniform weights; it runs the
    // same multi-marginal solve, so compute it instead of the bare solve when it applies.
    let m3g_note = if points.len() >= 2 && sizes.iter().any(|&s| s != sizes[0]) {
        Some(format!(
            "M3G needs every view to have the same number of points (one per item); the sizes are {sizes:?}"
        ))
    } else if !weights.is_empty() {
        Some("M3G is defined with uniform weights; --a was given".to_string())
    } else {
        None
    };
    let cost_fn = args.cost_fn.core();
    let w: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
    let (gpu, mut fallback) = choose_gpu(args.backend)?;
    let kernels = gpu.as_ref().map(MultiKernels::new);
    // The GPU's answer, or None when auto falls back to the CPU (with the reason).
    let mut on_gpu = |solve: &dyn Fn(&Gpu, &MultiKernels) -> Result<Value, GpuSolveError>| {
        let (Some(gpu), Some(kernels)) = (&gpu, &kernels) else {
            return Ok(None);
        };
        match solve(gpu, kernels) {
            Ok(v) => Ok(Some(v)),
            Err(GpuSolveError::Input(e)) => Err(ot_error(e, locate)),
            Err(GpuSolveError::Gpu(e)) if args.backend == Backend::Auto => {
                fallback = Some(format!("the GPU path failed ({e}); solved on the CPU"));
                Ok(None)
            }
            Err(GpuSolveError::Gpu(e)) => Err(anyhow::anyhow!("--backend gpu: {e}")),
        }
    };
    let m3g_json = |out: M3gOutput| {
        json!({
            "ent_reg_cost": out.ent_reg_cost,
            "m3g": out.m3g,
            "ground_truth_cost": out.ground_truth_cost,
            "epsilon": out.epsilon,
            "n_iters": out.n_iters,
            "converged": out.converged,
            "errors": out.errors,
        })
    };
    let multi_json = |out: MultiSinkhornOutput| {
        json!({
            "ent_reg_cost": out.ent_reg_cost,
            "m3g": null,
            "m3g_note": m3g_note,
            "epsilon": out.epsilon,
            "n_iters": out.n_iters,
            "converged": out.converged,
            "errors": out.errors,
        })
    };
    let gpu_value = if m3g_note.is_none() {
        on_gpu(&|gpu, kernels| gpu_m3g(gpu, kernels, &points, cost_fn, &opts, false).map(m3g_json))?
    } else {
        on_gpu(&|gpu, kernels| {
            gpu_multi_sinkhorn(gpu, kernels, &points, &w, cost_fn, &opts).map(multi_json)
        })?
    };
    let backend = if gpu_value.is_some() { "gpu" } else { "cpu" };
    let mut value = match gpu_value {
        Some(v) => v,
        None if m3g_note.is_none() => {
            m3g_json(m3g(&points, cost_fn, &opts, false).map_err(|e| ot_error(e, locate))?)
        }
        None => multi_json(
            multi_sinkhorn(&points, &w, cost_fn, &opts).map_err(|e| ot_error(e, locate))?,
        ),
    };
    value["backend"] = json!(backend);
    if backend == "gpu" {
        if let Some(gpu) = &gpu {
            value["adapter"] = json!(gpu.adapter.to_string());
        }
    }
    if let Some(why) = fallback {
        value["fallback"] = json!(why);
    }
    value["k"] = json!(points.len());
    value["sizes"] = json!(sizes);
    value["dim"] = json!(clouds.first().map(|c| c.cols));
    value["cost_fn"] = json!(args.cost_fn.name());
    Ok(value)
}
