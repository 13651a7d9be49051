//! `latentlab align`: representation alignment (Huh et al., *The Platonic Representation
//! Hypothesis*) between the paired rows of two `.npy` feature matrices, with the reference's
//! metrics, defaults and feature preparation. One JSON object on stdout.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use latentlab::core::align::{
    align_many, align_many_with, searches_neighbours, AlignOptions, Alignment, Metric, Prepare,
    QuantileMode, DEFAULT_CCA_DIM, DEFAULT_K, DEFAULT_OUTLIER_QUANTILE,
};
use latentlab::core::matrix::Matrix;
use latentlab::gpu::knn::{nearest_neighbors, GpuKnnError, GpuKnnOptions, KnnKernels, MAX_K};
use latentlab::gpu::Gpu;
use serde_json::{json, Map, Value};

use crate::common::{choose_gpu, emit, Backend};
use crate::npy::read_matrix;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Mean overlap of the k-nearest-neighbour sets (the paper's metric); `chance` = k/(n−1).
    #[value(name = "mutual_knn")]
    MutualKnn,
    /// Fraction of rows reached back through a Y-neighbour's X-neighbours (not symmetric);
    /// `chance`: its exact mean under a random pairing of the rows.
    #[value(name = "cycle_knn")]
    CycleKnn,
    /// Mean longest common subsequence of the ordered neighbour lists (0..k, not divided by k);
    /// `chance` for k ≤ 40.
    #[value(name = "lcs_knn")]
    LcsKnn,
    /// 1 − mean edit distance of the ordered neighbour lists / k.
    #[value(name = "edit_distance_knn")]
    EditDistanceKnn,
    /// Linear CKA (biased HSIC); `chance`: its mean under a random pairing (from the data).
    #[value(name = "cka")]
    Cka,
    /// Linear CKA with the unbiased HSIC; `chance` 0.
    #[value(name = "unbiased_cka")]
    UnbiasedCka,
    /// CKA restricted to mutual k-nearest neighbours (unbiased HSIC).
    #[value(name = "cknna")]
    Cknna,
    /// SVCCA: mean canonical correlation of the top --cca-dim singular directions.
    #[value(name = "svcca")]
    Svcca,
    /// Every metric above, in one object.
    #[value(name = "all")]
    All,
}

impl MetricArg {
    fn metrics(self) -> Vec<Metric> {
        match self {
            MetricArg::MutualKnn => vec![Metric::MutualKnn],
            MetricArg::CycleKnn => vec![Metric::CycleKnn],
            MetricArg::LcsKnn => vec![Metric::LcsKnn],
            MetricArg::EditDistanceKnn => vec![Metric::EditDistanceKnn],
            MetricArg::Cka => vec![Metric::Cka],
            MetricArg::UnbiasedCka => vec![Metric::UnbiasedCka],
            MetricArg::Cknna => vec![Metric::Cknna],
            MetricArg::Svcca => vec![Metric::Svcca],
            MetricArg::All => Metric::ALL.to_vec(),
        }
    }
}

#[derive(Args)]
pub struct AlignArgs {
    /// The first representation: an n × d₁ float32/float64 array, one row per item.
    #[arg(long, value_name = "X.npy")]
    x: PathBuf,
    /// The second representation: an n × d₂ array whose row i is the same item as X's row i.
    #[arg(long, value_name = "Y.npy")]
    y: PathBuf,
    /// The metric (the reference's names), or `all`.
    #[arg(long, value_enum, default_value = "mutual_knn")]
    metric: MetricArg,
    /// Neighbours per row for the kNN metrics and cknna (1 <= k < n).
    #[arg(long, default_value_t = DEFAULT_K)]
    k: usize,
    /// Canonical directions for svcca.
    #[arg(long, default_value_t = DEFAULT_CCA_DIM)]
    cca_dim: usize,
    /// Where the nearest-neighbour search runs (the kNN metrics and cknna; the kernel
    /// metrics always run on the CPU): cpu, gpu (k <= 64), or auto (a hardware GPU when
    /// there is one). Both give the same neighbours.
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// Measure the features as given: no outlier clamping, no L2 normalisation (the kNN
    /// metrics still compare L2-normalised rows).
    #[arg(long, conflicts_with_all = ["outlier_quantile", "exact_quantile"])]
    no_prepare: bool,
    /// Clamp values to ±(this quantile of |x|) before normalising (1 = no clamping).
    #[arg(long, value_name = "Q", default_value_t = DEFAULT_OUTLIER_QUANTILE)]
    outlier_quantile: f64,
    /// Take the clamping threshold over all values (`remove_outliers(exact=True)`, the
    /// reference's --precise) instead of the mean of per-row quantiles.
    #[arg(long)]
    exact_quantile: bool,
}

pub fn run(args: AlignArgs) -> Result<bool> {
    let x = read_matrix(&args.x, "--x")?;
    let y = read_matrix(&args.y, "--y")?;
    let prepare = if args.no_prepare {
        Prepare::OFF
    } else {
        Prepare {
            outlier_quantile: args.outlier_quantile,
            quantile_mode: if args.exact_quantile {
                QuantileMode::Exact
            } else {
                QuantileMode::MeanOfRows
            },
            normalize: true,
        }
    };
    let opts = AlignOptions {
        k: args.k,
        cca_dim: args.cca_dim,
        prepare,
    };
    let metrics = args.metric.metrics();
    let (scores, gpu, fallback) = measure(&args, &x, &y, &metrics, &opts)?;
    let backend = if gpu.is_some() { "gpu" } else { "cpu" };
    let prepare_json = if args.no_prepare {
        Value::Bool(false)
    } else {
        json!({
            "outlier_quantile": prepare.outlier_quantile,
            "quantile": if args.exact_quantile { "exact" } else { "mean_of_rows" },
            "normalize": true,
        })
    };
    let uses_k = metrics.iter().any(|m| m.uses_k());
    let mut out = Map::new();
    if let [one] = scores.as_slice() {
        out.insert("metric".into(), json!(one.metric));
        out.insert("k".into(), json!(one.k));
        out.insert("score".into(), json!(one.score));
        out.insert("chance".into(), json!(one.chance));
        if let Some(c) = one.cca_dim {
            out.insert("cca_dim".into(), json!(c));
        }
    } else {
        out.insert("metric".into(), json!("all"));
        out.insert("k".into(), json!(uses_k.then_some(args.k)));
        let mut all = Map::new();
        for s in &scores {
            all.insert(s.metric.into(), json!(s.score));
        }
        out.insert("scores".into(), Value::Object(all));
        // mutual_knn's: the paper's metric (`--metric NAME` gives another's)
        let chance = scores
            .iter()
            .find(|s| s.metric == Metric::MutualKnn.name())
            .and_then(|s| s.chance);
        out.insert("chance".into(), json!(chance));
        out.insert("cca_dim".into(), json!(args.cca_dim));
    }
    out.insert("n".into(), json!(x.rows));
    out.insert("dims".into(), json!([x.cols, y.cols]));
    out.insert("prepare".into(), prepare_json);
    out.insert("backend".into(), json!(backend));
    if let Some(gpu) = &gpu {
        out.insert("adapter".into(), json!(gpu.adapter.to_string()));
    }
    if let Some(why) = fallback {
        out.insert("fallback".into(), json!(why));
    }
    emit(&Value::Object(out))?;
    Ok(true)
}

/// The scores, the GPU that found the neighbours (if one did), and why the CPU did instead
/// when `--backend auto` could not use a GPU.
fn measure(
    args: &AlignArgs,
    x: &Matrix,
    y: &Matrix,
    metrics: &[Metric],
    opts: &AlignOptions,
) -> Result<(Vec<Alignment>, Option<Gpu>, Option<String>)> {
    let needs_neighbours = searches_neighbours(metrics, opts);
    let (gpu, fallback) = match args.backend {
        Backend::Gpu if !needs_neighbours => bail!(
            "--backend gpu: only the neighbourhood metrics (mutual_knn, cycle_knn, lcs_knn, \
             edit_distance_knn, and cknna on prepared rows) search on the GPU; use --backend \
             cpu or auto"
        ),
        Backend::Gpu if args.k > MAX_K => bail!(
            "--backend gpu: --k is {}, the GPU path takes k <= {MAX_K}; use --backend cpu or auto",
            args.k
        ),
        Backend::Auto if needs_neighbours && args.k > MAX_K => (
            None,
            Some(format!(
                "the GPU path takes k <= {MAX_K}; searched on the CPU"
            )),
        ),
        _ if !needs_neighbours => (None, None),
        backend => choose_gpu(backend)?,
    };
    let Some(gpu) = gpu else {
        return Ok((align_many(x, y, metrics, opts)?, None, fallback));
    };
    let kernels = KnnKernels::new(&gpu);
    let gpu_opts = GpuKnnOptions::default();
    let on_gpu = align_many_with(x, y, metrics, opts, |m: &Matrix, k| {
        nearest_neighbors(&gpu, &kernels, m, k, &gpu_opts).map(|found| found.knn)
    });
    match on_gpu {
        Ok(scores) => Ok((scores, Some(gpu), None)),
        Err(GpuKnnError::Input(e)) => Err(e.into()),
        Err(GpuKnnError::Gpu(e)) if args.backend == Backend::Auto => Ok((
            align_many(x, y, metrics, opts)?,
            None,
            Some(format!("{e}; searched on the CPU")),
        )),
        Err(GpuKnnError::Gpu(e)) => bail!("--backend gpu: {e}"),
    }
}
