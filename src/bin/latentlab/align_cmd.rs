//! `latentlab align`: representation alignment (Huh et al., *The Platonic Representation
//! Hypothesis*) between the paired rows of two `.npy` feature matrices, with the reference's
//! metrics, defaults and feature preparation. One JSON object on stdout.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use latentlab::core::align::{
    align_many, AlignOptions, Metric, Prepare, QuantileMode, DEFAULT_CCA_DIM, DEFAULT_K,
    DEFAULT_OUTLIER_QUANTILE,
};
use serde_json::{json, Map, Value};

use crate::common::emit;
use crate::npy::read_matrix;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Mean overlap of the k-nearest-neighbour sets (the paper's metric); `chance` = k/(n−1).
    #[value(name = "mutual_knn")]
    MutualKnn,
    /// Fraction of rows reached back through a Y-neighbour's X-neighbours (not symmetric).
    #[value(name = "cycle_knn")]
    CycleKnn,
    /// Mean longest common subsequence of the ordered neighbour lists (0..k, not divided by k).
    #[value(name = "lcs_knn")]
    LcsKnn,
    /// 1 − mean edit distance of the ordered neighbour lists / k.
    #[value(name = "edit_distance_knn")]
    EditDistanceKnn,
    /// Linear CKA (biased HSIC).
    #[value(name = "cka")]
    Cka,
    /// Linear CKA with the unbiased HSIC.
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The CPU reference path.
    Cpu,
    /// The GPU path (not built yet).
    Gpu,
    /// The GPU when available, else the CPU (today: always the CPU).
    Auto,
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
    /// Where to run: cpu, gpu (not built yet: fails) or auto (today the CPU).
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
    let backend = match args.backend {
        Backend::Cpu | Backend::Auto => "cpu",
        Backend::Gpu => bail!(
            "--backend gpu: the GPU path for alignment is not built yet; use --backend cpu \
             or auto"
        ),
    };
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
    let scores = align_many(&x, &y, &metrics, &opts)?;
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
        let chance = scores.iter().find_map(|s| s.chance);
        out.insert("chance".into(), json!(chance));
        out.insert("cca_dim".into(), json!(args.cca_dim));
    }
    out.insert("n".into(), json!(x.rows));
    out.insert("dims".into(), json!([x.cols, y.cols]));
    out.insert("prepare".into(), prepare_json);
    out.insert("backend".into(), json!(backend));
    emit(&Value::Object(out))?;
    Ok(true)
}
