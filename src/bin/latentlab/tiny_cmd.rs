//! `latentlab tiny …`: tinyBenchmarks (Maia Polo et al.): build a response matrix of real
//! retrieval configurations × caption queries, fit a tiny benchmark (IRT model, anchors,
//! gp-IRT's λ), estimate a configuration's accuracy from its anchor answers, and the paper's
//! held-out evaluation of those estimates. One JSON object on stdout.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use latentlab::core::matrix::Matrix;
use latentlab::core::search::evaluate_retrieval;
use latentlab::core::tiny::{
    fit_benchmark, holdout, random_split, BenchmarkOptions, IrtFitOptions, Progress,
    ResponseMatrix, Sampling, TinyBenchmark,
};
use serde_json::json;

use crate::common::{emit, progress};
use crate::encode_cmd::{embed_images, ModelArgs, StampArgs};
use crate::npy::{read_matrix, write_matrix};

#[derive(Subcommand)]
pub enum TinyCommand {
    /// A response matrix of real retrieval configurations (prompt template × embedding
    /// dimensions kept × k) × captioned Tux Paint stamps: 1 where the configuration ranks
    /// the stamp's picture within its top k for the caption, else 0.
    Responses(ResponsesArgs),
    /// Fit a tiny benchmark on a response matrix: the IRT model, the anchors, gp-IRT's λ.
    Fit(FitArgs),
    /// Estimate a model's accuracy from its answers on a fitted benchmark's anchors.
    Estimate(EstimateArgs),
    /// The paper's evaluation: hold out every n-th model, estimate its accuracy from 10–100
    /// anchors, report the mean absolute error of each estimator.
    Eval(EvalArgs),
}

#[derive(Args)]
pub struct ResponsesArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    stamps: StampArgs,
    /// Where to write the configurations × items float32 matrix.
    #[arg(long, value_name = "R.npy")]
    out: PathBuf,
    /// Where to write the configurations, the items (files, captions) and the responses
    /// (one string of 0/1 per configuration) as JSON.
    #[arg(long, value_name = "FILE.json")]
    describe: Option<PathBuf>,
}

#[derive(Args)]
struct ResponseInput {
    /// Answers: a models × items float32/float64 array of scores in [0, 1].
    #[arg(long, value_name = "R.npy")]
    responses: PathBuf,
    /// Drop the items every model answers alike (they identify nothing; without this flag
    /// they are an error).
    #[arg(long)]
    drop_constant_items: bool,
}

#[derive(Args)]
struct IrtArgs {
    /// Candidate dimensions of abilities and discriminations, comma-separated: the smallest
    /// whose validation error is within 0.0025 of the best is used (the paper's rule; it
    /// tried 2, 5, 10, 15). One value fixes D.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,5,10")]
    dims: Vec<usize>,
    /// Full-batch Adam steps of the IRT fit.
    #[arg(long, default_value_t = 2000)]
    epochs: usize,
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
}

impl IrtArgs {
    fn options(&self) -> IrtFitOptions {
        IrtFitOptions {
            dim: self.dims.first().copied().unwrap_or(1),
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            ..IrtFitOptions::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplingArg {
    /// k-means on the IRT item parameters (the paper's "IRT" anchors).
    Anchor,
    /// A uniform random sample.
    Random,
}

#[derive(Args)]
pub struct FitArgs {
    #[command(flatten)]
    input: ResponseInput,
    #[command(flatten)]
    irt: IrtArgs,
    /// Number of anchor items.
    #[arg(long, default_value_t = 100)]
    anchors: usize,
    #[arg(long, value_enum, default_value_t = SamplingArg::Anchor)]
    sampling: SamplingArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the benchmark (JSON).
    #[arg(long, value_name = "B.json")]
    out: PathBuf,
}

#[derive(Args)]
pub struct EstimateArgs {
    /// A benchmark written by `tiny fit`.
    #[arg(long, value_name = "B.json")]
    benchmark: PathBuf,
    /// The model's answers on the benchmark's anchors, in their order: a vector (or one row).
    #[arg(long, value_name = "y.npy")]
    answers: PathBuf,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    input: ResponseInput,
    #[command(flatten)]
    irt: IrtArgs,
    /// Numbers of anchors, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,30,60,100")]
    anchors: Vec<usize>,
    /// Seeds (anchor choices) per number of anchors.
    #[arg(long, default_value_t = 5)]
    seeds: usize,
    /// Share of the models held out, drawn at random (the paper's iid split holds out a
    /// quarter). A random draw, not every n-th row: rows are often ordered by their settings
    /// (`tiny responses` writes template × dimensions × k), and every 4th would then hold out
    /// one k only.
    #[arg(long, default_value_t = 0.25)]
    test_fraction: f64,
    /// Seeds the draw of held-out models.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
}

pub fn run(cmd: TinyCommand) -> Result<bool> {
    match cmd {
        TinyCommand::Responses(a) => responses(a),
        TinyCommand::Fit(a) => fit(a),
        TinyCommand::Estimate(a) => estimate(a),
        TinyCommand::Eval(a) => eval(a),
    }?;
    Ok(true)
}

/// Prompt templates for the caption queries.
const TEMPLATES: [&str; 5] = [
    "{}",
    "a picture of {}",
    "a drawing of {}",
    "{}, clip art",
    "an icon showing {}",
];
/// Leading embedding dimensions kept (then renormalised) on both sides.
const KEEP_DIMS: [usize; 5] = [24, 48, 96, 192, 384];
/// Top-k cut-offs.
const TOP_K: [usize; 4] = [1, 3, 10, 30];

fn responses(args: ResponsesArgs) -> Result<()> {
    let models = args.model.open()?;
    let (image_name, image, text_name, text) = models.image_text_pair(args.model.model)?;
    let items = args.stamps.load(2)?;
    let files: Vec<PathBuf> = items.iter().map(|(f, _)| f.clone()).collect();
    let images = embed_images(&image, &files, None)?;
    let bar = progress(TEMPLATES.len(), "embedding caption queries");
    let mut configs = Vec::new();
    let mut rows: Vec<f32> = Vec::new();
    for template in TEMPLATES {
        let queries: Vec<String> = items
            .iter()
            .map(|(_, c)| template.replace("{}", c))
            .collect();
        let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
        let q = text.embed_batched(&refs, 32, &mut |_, _| {})?;
        for keep in KEEP_DIMS.into_iter().filter(|&d| d <= q.cols) {
            let ranks = evaluate_retrieval(&leading(&q, keep)?, &leading(&images, keep)?)?.ranks;
            for k in TOP_K {
                configs.push(json!({"template": template, "dims": keep, "k": k}));
                rows.extend(ranks.iter().map(|&r| f32::from(u8::from(r <= k))));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n_items = items.len();
    let matrix = Matrix::new(configs.len(), n_items, rows, "responses")?;
    write_matrix(&args.out, &matrix)?;
    let accuracy: Vec<f64> = matrix
        .iter_rows()
        .map(|r| r.iter().map(|&v| v as f64).sum::<f64>() / n_items as f64)
        .collect();
    if let Some(path) = &args.describe {
        // the site's name of each stamp (scripts/lib.sh copy_stamps_to_site): its path under
        // the stamps folder with "/" as "__"
        let site_name = |f: &Path| {
            f.strip_prefix(&args.stamps.stamps)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('/', "__")
        };
        let bits: Vec<String> = matrix
            .iter_rows()
            .map(|r| r.iter().map(|&v| if v > 0.5 { '1' } else { '0' }).collect())
            .collect();
        let described = json!({
            "configs": configs,
            "items": items.iter().map(|(f, c)| json!({
                "file": f, "name": site_name(f), "caption": c,
            })).collect::<Vec<_>>(),
            "responses": bits,
        });
        std::fs::write(path, serde_json::to_string_pretty(&described)?)
            .with_context(|| format!("--describe {}", path.display()))?;
    }
    emit(&json!({
        "out": args.out, "configs": configs.len(), "items": n_items,
        "model": image_name, "text_model": text_name,
        "accuracy_min": accuracy.iter().cloned().fold(f64::INFINITY, f64::min),
        "accuracy_max": accuracy.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        "describe": args.describe,
    }))
}

/// The first `keep` columns of `m` (rows renormalised by the retrieval evaluation).
fn leading(m: &Matrix, keep: usize) -> Result<Matrix> {
    let data: Vec<f32> = m.iter_rows().flat_map(|r| r[..keep].to_vec()).collect();
    Ok(Matrix::new(m.rows, keep, data, "embeddings")?)
}

/// The answers of `--responses`, constant items dropped on request.
fn read_responses(input: &ResponseInput) -> Result<ResponseMatrix> {
    let m = read_matrix(&input.responses, "--responses")?;
    let data: Vec<f64> = m.data.iter().map(|&v| v as f64).collect();
    ResponseMatrix::new(data, m.rows, m.cols, input.drop_constant_items)
        .map_err(|e| named(e, input))
}

fn named(e: latentlab::core::tiny::TinyError, input: &ResponseInput) -> anyhow::Error {
    let hint = match e {
        latentlab::core::tiny::TinyError::ConstantItem { .. } => {
            " (pass --drop-constant-items to leave such items out)"
        }
        _ => "",
    };
    anyhow::anyhow!("--responses {}: {e}{hint}", input.responses.display())
}

fn fit(args: FitArgs) -> Result<()> {
    let loaded = read_responses(&args.input)?;
    let (models, items, kept) = (loaded.models, loaded.items, &loaded.kept);
    let opts = BenchmarkOptions {
        irt: args.irt.options(),
        anchors: args.anchors,
        dims: args.irt.dims.clone(),
        sampling: match args.sampling {
            SamplingArg::Anchor => Sampling::Anchor,
            SamplingArg::Random => Sampling::Random,
        },
        seed: args.seed,
        ..BenchmarkOptions::default()
    };
    let data = loaded.view();
    let bar = progress(0, "fitting");
    let bench = fit_benchmark(data, &opts, |p| show(&bar, p));
    bar.finish_and_clear();
    let bench = bench.map_err(|e| named(e, &args.input))?;
    std::fs::write(&args.out, serde_json::to_string(&bench)?)
        .with_context(|| format!("--out {}", args.out.display()))?;
    emit(&json!({
        "out": args.out, "models": models, "items": items,
        "dropped_items": kept.len() < items || args.input.drop_constant_items,
        "kept_items": kept,
        "dim": bench.irt.dim, "dim_errors": bench.dim_errors,
        "anchors": bench.anchors, "anchor_weights": bench.anchor_weights,
        "sampling": bench.sampling, "gp_lambda": bench.gp_lambda,
        "bias": bench.bias, "variance": bench.variance,
    }))
}

/// A fit's progress on `bar`: steps done of all, and what is being computed.
fn show(bar: &indicatif::ProgressBar, p: Progress) {
    bar.set_length(p.total as u64);
    bar.set_position(p.done as u64);
    bar.set_message(p.stage.to_string());
}

fn read_benchmark(path: &Path) -> Result<TinyBenchmark> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--benchmark {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "--benchmark {}: not a benchmark written by `latentlab tiny fit`",
            path.display()
        )
    })
}

fn estimate(args: EstimateArgs) -> Result<()> {
    let bench = read_benchmark(&args.benchmark)?;
    let answers = read_matrix(&args.answers, "--answers")?;
    if answers.rows != 1 && answers.cols != 1 {
        bail!(
            "--answers {}: a {}×{} array; expected one vector of {} answers (one per anchor)",
            args.answers.display(),
            answers.rows,
            answers.cols,
            bench.anchors.len()
        );
    }
    let y: Vec<f64> = answers.data.iter().map(|&v| v as f64).collect();
    let (est, theta) = bench
        .estimate(&y)
        .map_err(|e| anyhow::anyhow!("--answers {}: {e}", args.answers.display()))?;
    emit(&json!({
        "irt": est.irt, "pirt": est.pirt, "gpirt": est.gpirt,
        "data_part": est.data_part, "irt_part": est.irt_part, "lambda_p": est.lambda_p,
        "gp_lambda": bench.gp_lambda,
        "theta": theta.theta, "theta_converged": theta.converged,
        "anchors": bench.anchors.len(),
    }))
}

fn eval(args: EvalArgs) -> Result<()> {
    let loaded = read_responses(&args.input)?;
    let (models, items, kept) = (loaded.models, loaded.items, &loaded.kept);
    let test = random_split(models, args.test_fraction, args.split_seed)
        .map_err(|e| anyhow::anyhow!("--test-fraction: {e}"))?;
    let opts = BenchmarkOptions {
        irt: args.irt.options(),
        dims: args.irt.dims.clone(),
        ..BenchmarkOptions::default()
    };
    let bar = progress(0, "fitting");
    let data = loaded.view();
    let rows = holdout(data, &test, &args.anchors, args.seeds, &opts, |p| {
        show(&bar, p)
    });
    bar.finish_and_clear();
    let report = rows.map_err(|e| named(e, &args.input))?;
    emit(&json!({
        "models": models, "items": items, "kept_items": kept.len(),
        "test_models": test, "seeds": args.seeds,
        "dim": report.dim, "dim_errors": report.dim_errors,
        "rows": report.rows,
    }))
}
