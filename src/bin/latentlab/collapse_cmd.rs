//! `latentlab collapse`: model collapse in linear regression, replace vs accumulate
//! (Gerstgrasser et al., arXiv 2404.01413). One JSON object: the mean test error per model-
//! fitting round for both strategies, beside the paper's closed forms.

use anyhow::Result;
use clap::Args;
use latentlab::core::collapse::{simulate, CollapseOptions};
use serde_json::json;

use crate::common::{emit, progress};

#[derive(Args)]
pub struct CollapseArgs {
    /// Dimension of the weights.
    #[arg(long, default_value_t = 10)]
    d: usize,
    /// Rows of the (fixed) Gaussian design; the closed forms need t > d + 1.
    #[arg(long, default_value_t = 100)]
    t: usize,
    /// Label-noise variance σ².
    #[arg(long, default_value_t = 1.0)]
    sigma2: f64,
    /// Model-fitting rounds (round 1 fits real labels).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Independent runs averaged (each with its own w*, design and noise).
    #[arg(long, default_value_t = 100)]
    runs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fresh Gaussian points per test-error estimate.
    #[arg(long, default_value_t = 1000)]
    test_points: usize,
}

pub fn run(args: CollapseArgs) -> Result<bool> {
    let options = CollapseOptions {
        d: args.d,
        t: args.t,
        sigma2: args.sigma2,
        rounds: args.rounds,
        runs: args.runs,
        seed: args.seed,
        test_points: args.test_points,
    };
    let bar = progress(options.runs, "runs");
    let result = simulate(&options, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    let result = result?;
    let mut value = serde_json::to_value(&result)?;
    for (key, v) in serde_json::to_value(&options)?
        .as_object()
        .into_iter()
        .flatten()
    {
        value[key] = v.clone();
    }
    value["setting"] = json!("linear regression, Gaussian design (Gerstgrasser et al. 2024)");
    emit(&value)?;
    Ok(true)
}
