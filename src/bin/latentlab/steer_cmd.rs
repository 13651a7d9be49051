//! `latentlab steer`: affine steering (Singh et al., *Representation Surgery*): fit a
//! steering function from embeddings and a binary concept label, apply it, evaluate it with
//! held-out probes and the TPR-gap. JSON on stdout; steering functions as JSON files (and
//! optionally W, b as `.npy` for use elsewhere).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use latentlab::core::matrix::Matrix;
use latentlab::core::steer::{
    self, check_concept, check_task, ApplyTo, EvalOptions, Evaluation, FitOptions, Method, Steering,
};
use serde_json::{json, Value};

use crate::common::emit;
use crate::npy::{read_labels, read_matrix, write_matrix};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Mean matching: x ↦ x + μ_t − μ_s.
    Mean,
    /// Mean and covariance matching (the Gaussian optimal-transport map, POT's LinearTransport).
    MeanCov,
}

impl MethodArg {
    fn method(self) -> Method {
        match self {
            MethodArg::Mean => Method::Mean,
            MethodArg::MeanCov => Method::MeanCov,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyArg {
    /// Rows whose concept label is the source label (needs --z).
    Source,
    /// Rows the steering function's concept classifier assigns to the source group.
    Predicted,
    /// Every row.
    All,
    /// (eval only) The paper's protocol: training rows by label, held-out rows by the classifier.
    Split,
}

impl ApplyArg {
    fn apply_to(self) -> ApplyTo {
        match self {
            ApplyArg::Source => ApplyTo::Source,
            ApplyArg::Predicted => ApplyTo::Predicted,
            ApplyArg::All => ApplyTo::All,
            ApplyArg::Split => ApplyTo::Split,
        }
    }
}

#[derive(Args)]
pub struct RegArgs {
    /// Regularisation added to both covariances (mean-cov). Default: 1e-8 (POT's) when both
    /// groups have more rows than dimensions, else an error asking for one of these.
    #[arg(long, value_name = "R", conflicts_with = "relative_reg")]
    reg: Option<f64>,
    /// Regularisation as a fraction of the mean variance (e.g. 0.01).
    #[arg(long, value_name = "R")]
    relative_reg: Option<f64>,
}

#[derive(Subcommand)]
pub enum SteerCommand {
    /// Fit a steering function that moves the source group onto the target group.
    Fit {
        /// Embeddings: an n × d float32/float64 array.
        #[arg(long, value_name = "X.npy")]
        x: PathBuf,
        /// Concept labels: n values, each 0 or 1.
        #[arg(long, value_name = "z.npy")]
        z: PathBuf,
        #[arg(long, value_enum)]
        method: MethodArg,
        /// The concept label of the rows to move.
        #[arg(long, default_value_t = 1)]
        source_label: u8,
        #[command(flatten)]
        reg: RegArgs,
        /// Where to write the steering function (JSON).
        #[arg(long, value_name = "steer.json")]
        out: Option<PathBuf>,
        /// Also write W (d × d) and b (1 × d) as .npy files, for use elsewhere.
        #[arg(long, value_name = "W.npy")]
        w_out: Option<PathBuf>,
        #[arg(long, value_name = "b.npy")]
        b_out: Option<PathBuf>,
    },
    /// Apply a fitted steering function to embeddings.
    Apply {
        #[arg(long, value_name = "steer.json")]
        steer: PathBuf,
        #[arg(long, value_name = "X.npy")]
        x: PathBuf,
        /// Where to write the steered rows.
        #[arg(long, value_name = "Y.npy")]
        out: PathBuf,
        /// Which rows to move.
        #[arg(long, value_enum, default_value = "predicted")]
        apply_to: ApplyArg,
        /// Concept labels, required for --apply-to source.
        #[arg(long, value_name = "z.npy")]
        z: Option<PathBuf>,
    },
    /// Held-out probe accuracies (concept, and task with --y) and the RMS TPR-gap, before
    /// and after steering.
    Eval {
        #[arg(long, value_name = "X.npy")]
        x: PathBuf,
        #[arg(long, value_name = "z.npy")]
        z: PathBuf,
        /// Main-task labels (classes 0, 1, 2, …) for the task probe and the TPR-gap.
        #[arg(long, value_name = "y.npy")]
        y: Option<PathBuf>,
        /// A fitted steering function (fitted on the same rows, the figures are optimistic).
        #[arg(
            long,
            value_name = "steer.json",
            required_unless_present = "method",
            conflicts_with = "method"
        )]
        steer: Option<PathBuf>,
        /// Instead of --steer: fit this method on the training split only, then evaluate.
        #[arg(long, value_enum)]
        method: Option<MethodArg>,
        #[arg(long, default_value_t = 1)]
        source_label: u8,
        #[command(flatten)]
        reg: RegArgs,
        /// Which rows to move.
        #[arg(long, value_enum, default_value = "split")]
        apply_to: ApplyArg,
        /// Fraction of rows held out for the probes.
        #[arg(long, default_value_t = 0.3)]
        test_fraction: f64,
        /// Seed of the train/test split.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn read_steering(path: &Path) -> Result<Steering> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --steer {}", path.display()))?;
    Steering::from_json(&text).with_context(|| format!("--steer {}", path.display()))
}

fn read_concept(path: &Path, rows: usize) -> Result<Vec<u8>> {
    let z = read_labels(path, "--z")?;
    check_concept(&z, rows).with_context(|| format!("--z {}", path.display()))
}

fn summary(s: &Steering) -> Value {
    json!({
        "method": s.method.name(),
        "dim": s.dim,
        "source_label": s.source_label,
        "n_source": s.n_source,
        "n_target": s.n_target,
        "reg": s.reg,
        "mean_shift_norm": s.b_shift_norm(),
        "classifier": s.classifier.is_some(),
    })
}

fn fit_options(method: MethodArg, source_label: u8, reg: &RegArgs) -> FitOptions {
    FitOptions {
        method: method.method(),
        source_label,
        reg: reg.reg,
        relative_reg: reg.relative_reg,
        ..FitOptions::default()
    }
}

pub fn run(command: SteerCommand) -> Result<bool> {
    match command {
        SteerCommand::Fit {
            x,
            z,
            method,
            source_label,
            reg,
            out,
            w_out,
            b_out,
        } => {
            let x = read_matrix(&x, "--x")?;
            let z = read_concept(&z, x.rows)?;
            let s = steer::fit(&x, &z, &fit_options(method, source_label, &reg))?;
            if let Some(out) = &out {
                std::fs::write(out, s.to_json())
                    .with_context(|| format!("cannot write --out {}", out.display()))?;
            }
            if let Some(path) = &w_out {
                write_matrix(
                    path,
                    &Matrix::new(s.dim, s.dim, to_f32(&s.w.concat()), "W")?,
                )?;
            }
            if let Some(path) = &b_out {
                write_matrix(path, &Matrix::new(1, s.dim, to_f32(&s.b), "b")?)?;
            }
            let mut result = summary(&s);
            result["out"] = json!(out.map(|p| p.display().to_string()));
            emit(&result)?;
        }
        SteerCommand::Apply {
            steer,
            x,
            out,
            apply_to,
            z,
        } => {
            let s = read_steering(&steer)?;
            let x = read_matrix(&x, "--x")?;
            let z = z.map(|path| read_concept(&path, x.rows)).transpose()?;
            let steered = s.apply(&x, z.as_deref(), apply_to.apply_to())?;
            write_matrix(&out, &steered.x)?;
            emit(&json!({
                "method": s.method.name(),
                "apply_to": apply_to.apply_to().name(),
                "n": x.rows,
                "n_steered": steered.steered.iter().filter(|&&b| b).count(),
                "out": out.display().to_string(),
            }))?;
        }
        SteerCommand::Eval {
            x,
            z,
            y,
            steer,
            method,
            source_label,
            reg,
            apply_to,
            test_fraction,
            seed,
        } => {
            let x = read_matrix(&x, "--x")?;
            let z = read_concept(&z, x.rows)?;
            let y = match y {
                Some(path) => {
                    let labels = read_labels(&path, "--y")?;
                    Some(
                        check_task(&labels, x.rows)
                            .with_context(|| format!("--y {}", path.display()))?,
                    )
                }
                None => None,
            };
            let options = EvalOptions {
                apply_to: apply_to.apply_to(),
                test_fraction,
                seed,
                ..EvalOptions::default()
            };
            let (fitted_on, evaluation): (&str, Evaluation) = match (steer, method) {
                (Some(path), _) => {
                    let s = read_steering(&path)?;
                    (
                        "given",
                        steer::evaluate(&s, &x, &z, y.as_deref(), &options)?,
                    )
                }
                (None, Some(method)) => {
                    let fit = fit_options(method, source_label, &reg);
                    let (_, e) = steer::fit_and_evaluate(&x, &z, y.as_deref(), &fit, &options)?;
                    ("train split", e)
                }
                (None, None) => unreachable!("clap requires --steer or --method"),
            };
            let mut result = serde_json::to_value(&evaluation)?;
            result["fitted_on"] = json!(fitted_on);
            result["seed"] = json!(seed);
            emit(&result)?;
        }
    }
    Ok(true)
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}
