//! A tiny benchmark end to end, as the paper builds one: fit the IRT model on the training
//! models' answers, choose anchors, choose gp-IRT's λ (bias from validation models, variance
//! of the answers), then estimate new models from their anchor answers; and the paper's
//! held-out evaluation of those estimates (`holdout`).

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::irt::{check_informative, fit_irt_unchecked, fit_ticks};
use super::{
    check_positive, check_scores, estimate, fit_theta, gp_lambda, irt_prediction, select_anchors,
    variance_term, Estimates, Irt, IrtFitOptions, ItemFeatures, Sampling, Scenario, ThetaFit,
    TinyError,
};

/// What a fit is computing when it reports [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The IRT fit without the validation models that scores candidate dimension `dim`.
    Validate { dim: usize },
    /// The IRT fit of the chosen dimension on all the models given.
    Fit { dim: usize },
    /// Choosing the anchors of a benchmark ([`fit_benchmark`]).
    Anchors,
    /// [`holdout`]: drawing `anchors` anchors (random and IRT) and estimating the held-out
    /// models from them.
    Estimate { anchors: usize },
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Validate { dim } => write!(f, "trying IRT dimension {dim} on held-back models"),
            Stage::Fit { dim } => write!(f, "fitting the IRT model (dimension {dim})"),
            Stage::Anchors => write!(f, "choosing anchors by k-means"),
            Stage::Estimate { anchors } => {
                write!(f, "estimating the held-out models from {anchors} anchors")
            }
        }
    }
}

/// A progress report of [`fit_benchmark`] or [`holdout`]: `done` of `total` steps (each IRT
/// fit counts one step per 100 epochs; choosing anchors, or one anchor draw of the held-out
/// evaluation, one step), and what is being computed now. Sent when a stage starts and after
/// each step; the last report has `done == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub stage: Stage,
}

/// Counts steps and reports them.
struct Ticker<'a> {
    done: usize,
    total: usize,
    report: &'a mut dyn FnMut(Progress),
}

impl Ticker<'_> {
    /// Says that `stage` is being computed, `done` unchanged.
    fn start(&mut self, stage: Stage) {
        (self.report)(Progress {
            done: self.done,
            total: self.total,
            stage,
        });
    }

    /// One step of `stage` done.
    fn tick(&mut self, stage: Stage) {
        self.done = (self.done + 1).min(self.total);
        self.start(stage);
    }
}

/// The candidate dimensions [`fit_parts`] validates: `dims` sorted without repeats, or
/// `irt.dim` alone.
fn candidate_dims(irt: &IrtFitOptions, dims: &[usize]) -> Vec<usize> {
    let mut candidates: Vec<usize> = if dims.is_empty() {
        vec![irt.dim]
    } else {
        dims.to_vec()
    };
    candidates.sort_unstable();
    candidates.dedup();
    candidates
}

/// The steps [`fit_parts_checked`] reports: every candidate's validation fit and the final fit.
fn fit_steps(irt: &IrtFitOptions, dims: &[usize]) -> usize {
    (candidate_dims(irt, dims).len() + 1).saturating_mul(fit_ticks(irt.epochs))
}

/// The format name in a saved benchmark's JSON.
pub const FORMAT: &str = "latentlab-tinybenchmark";

/// How [`fit_benchmark`] builds a tiny benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkOptions {
    pub irt: IrtFitOptions,
    /// Number of anchor items (the paper: 10 to 100 per scenario).
    pub anchors: usize,
    /// Anchors by clustering IRT parameters (`Anchor`, the paper's "IRT") or a random sample.
    pub sampling: Sampling,
    /// k-means starts, the best inertia kept (the paper: 5).
    pub restarts: usize,
    /// Seeds the anchors (k-means starts, or the random sample).
    pub seed: u64,
    /// Every this-many-th training model validates the IRT model for gp-IRT's bias (the
    /// reference: every 5th).
    pub validation_every: usize,
    /// Candidate dimensions D: the one used is chosen by validation as the reference does
    /// ([`fit_parts`]); empty = `irt.dim`.
    pub dims: Vec<usize>,
}

impl Default for BenchmarkOptions {
    fn default() -> Self {
        BenchmarkOptions {
            irt: IrtFitOptions::default(),
            anchors: 100,
            sampling: Sampling::Anchor,
            restarts: 5,
            seed: 0,
            validation_every: 5,
            dims: Vec::new(),
        }
    }
}

/// A fitted tiny benchmark: what estimating a new model needs. Serialises to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TinyBenchmark {
    pub format: String,
    pub version: u32,
    pub irt: Irt,
    pub balance_weights: Vec<f64>,
    /// Anchor items (ascending) and their weights (summing to 1).
    pub anchors: Vec<usize>,
    pub anchor_weights: Vec<f64>,
    pub sampling: Sampling,
    /// gp-IRT's λ, and what it came from.
    pub gp_lambda: f64,
    pub bias: f64,
    pub variance: f64,
    /// The validation error of each candidate dimension (the chosen one is `irt.dim`).
    pub dim_errors: Vec<(usize, f64)>,
}

/// The training models' answers: `models × items`, row-major, scores in [0, 1], with the
/// items' balance weights (all 1 for a benchmark without subscenarios).
#[derive(Debug, Clone, Copy)]
pub struct Responses<'a> {
    pub answers: &'a [f64],
    pub models: usize,
    pub items: usize,
    pub balance_weights: &'a [f64],
}

/// [`Responses`] checked, as (answers, models, items, balance weights).
type Checked<'a> = (&'a [f64], usize, usize, &'a [f64]);

impl<'a> Responses<'a> {
    /// (answers, models, items, balance weights), checked: the shape, the scores, and no
    /// item that every model answers alike.
    fn checked(self) -> Result<Checked<'a>, TinyError> {
        let (answers, models, items, bw) =
            (self.answers, self.models, self.items, self.balance_weights);
        check_responses(answers, models, items, bw)?;
        check_informative(answers, models, items)?;
        Ok((answers, models, items, bw))
    }
}

/// An owned response matrix, constant items dropped on request, every item weighing 1 (no
/// subscenarios); [`ResponseMatrix::view`] lends it as [`Responses`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseMatrix {
    pub answers: Vec<f64>,
    pub models: usize,
    pub items: usize,
    /// The indices, in the matrix given, of the items kept.
    pub kept: Vec<usize>,
    pub balance_weights: Vec<f64>,
}

impl ResponseMatrix {
    /// `answers` is `models × items`, row-major.
    pub fn new(
        answers: Vec<f64>,
        models: usize,
        items: usize,
        drop_constant: bool,
    ) -> Result<ResponseMatrix, TinyError> {
        let (answers, kept) = if drop_constant {
            drop_constant_items(&answers, models, items)?
        } else {
            if models.checked_mul(items) != Some(answers.len()) {
                return Err(TinyError::Length {
                    name: "responses",
                    got: answers.len(),
                    expected: format!("models {models} × items {items}"),
                });
            }
            (answers, (0..items).collect())
        };
        Ok(ResponseMatrix {
            answers,
            models,
            items: kept.len(),
            balance_weights: vec![1.0; kept.len()],
            kept,
        })
    }

    pub fn view(&self) -> Responses<'_> {
        Responses {
            answers: &self.answers,
            models: self.models,
            items: self.items,
            balance_weights: &self.balance_weights,
        }
    }
}

/// The IRT parts of a benchmark, fitted once and shared by every choice of anchors.
pub struct Fitted {
    pub irt: Irt,
    /// The validation error (gp-IRT's bias) of each candidate dimension tried.
    pub dim_errors: Vec<(usize, f64)>,
    pub bias: f64,
    pub variance: f64,
}

fn check_responses(
    responses: &[f64],
    models: usize,
    items: usize,
    bw: &[f64],
) -> Result<(), TinyError> {
    check_positive("models", models)?;
    check_positive("items", items)?;
    if models.checked_mul(items) != Some(responses.len()) {
        return Err(TinyError::Length {
            name: "responses",
            got: responses.len(),
            expected: format!("models {models} × items {items}"),
        });
    }
    if bw.len() != items {
        return Err(TinyError::Length {
            name: "balance weights",
            got: bw.len(),
            expected: format!("{items} (one per item)"),
        });
    }
    check_scores("responses", responses, items)
}

/// The items (columns of `models × items` answers) that not every model answers alike: the
/// others identify no IRT parameters (and [`fit_irt`](super::fit_irt) refuses them).
pub fn informative_items(responses: &[f64], models: usize, items: usize) -> Vec<usize> {
    (0..items)
        .filter(|&i| (1..models).any(|m| responses[m * items + i] != responses[i]))
        .collect()
}

/// `answers` (`models × items`) restricted to the informative items: (the kept answers, the
/// kept items' indices). Every item answered alike is an error naming the count.
pub fn drop_constant_items(
    answers: &[f64],
    models: usize,
    items: usize,
) -> Result<(Vec<f64>, Vec<usize>), TinyError> {
    if models.checked_mul(items) != Some(answers.len()) {
        return Err(TinyError::Length {
            name: "responses",
            got: answers.len(),
            expected: format!("models {models} × items {items}"),
        });
    }
    let keep = informative_items(answers, models, items);
    if keep.is_empty() {
        return Err(TinyError::Parameter {
            name: "responses",
            value: format!("{items} items all answered alike by the {models} models"),
            expected: "at least one item that some models get right and others wrong".into(),
        });
    }
    let kept = (0..models)
        .flat_map(|m| keep.iter().map(move |&i| answers[m * items + i]))
        .collect();
    Ok((kept, keep))
}

/// A random share `fraction` of `models` to hold out (sorted), seeded: the paper's iid split
/// holds out a quarter. Random rather than every n-th row, because rows are often ordered by
/// their settings.
pub fn random_split(models: usize, fraction: f64, seed: u64) -> Result<Vec<usize>, TinyError> {
    let held_out = (fraction * models as f64).round() as usize;
    if !(fraction > 0.0 && fraction < 1.0) || held_out == 0 || held_out + 2 > models {
        return Err(TinyError::Parameter {
            name: "test fraction",
            value: fraction.to_string(),
            expected: format!(
                "a share in (0, 1) that holds out at least one of the {models} models and leaves two"
            ),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut test = sample(&mut rng, models, held_out).into_vec();
    test.sort_unstable();
    Ok(test)
}

/// The rows `rows` of a `models × items` matrix.
fn rows_of(responses: &[f64], items: usize, rows: &[usize]) -> Vec<f64> {
    rows.iter()
        .flat_map(|&m| responses[m * items..(m + 1) * items].iter().copied())
        .collect()
}

/// Fits the IRT model on all `models`, and gp-IRT's bias and variance as the reference
/// does: the bias is the validation error of [`validation_error`] (which also chooses D among
/// `dims`: the smallest within 0.0025 of the best, the paper's rule); the variance is the
/// mean per-model variance of the answers.
/// Items every model answers alike are refused by name ([`informative_items`] lists the
/// others).
pub fn fit_parts(
    data: Responses,
    irt_opts: &IrtFitOptions,
    dims: &[usize],
    validation_every: usize,
) -> Result<Fitted, TinyError> {
    let mut ticker = Ticker {
        done: 0,
        total: fit_steps(irt_opts, dims),
        report: &mut |_| {},
    };
    fit_parts_reporting(data, irt_opts, dims, validation_every, &mut ticker)
}

/// [`fit_parts`], its steps counted by `ticker`.
fn fit_parts_reporting(
    data: Responses,
    irt_opts: &IrtFitOptions,
    dims: &[usize],
    validation_every: usize,
    ticker: &mut Ticker,
) -> Result<Fitted, TinyError> {
    let (responses, models, items, bw) = data.checked()?;
    fit_parts_checked(
        responses,
        models,
        items,
        bw,
        irt_opts,
        dims,
        validation_every,
        ticker,
    )
}

#[allow(clippy::too_many_arguments)]
fn fit_parts_checked(
    responses: &[f64],
    models: usize,
    items: usize,
    bw: &[f64],
    irt_opts: &IrtFitOptions,
    dims: &[usize],
    validation_every: usize,
    ticker: &mut Ticker,
) -> Result<Fitted, TinyError> {
    let candidates = candidate_dims(irt_opts, dims);
    let mut dim_errors = Vec::with_capacity(candidates.len());
    for &dim in &candidates {
        super::check_irt_size(models, items, dim)?;
        let opts = IrtFitOptions {
            dim,
            ..irt_opts.clone()
        };
        let stage = Stage::Validate { dim };
        ticker.start(stage);
        let bias = validation_error(
            responses,
            models,
            items,
            bw,
            &opts,
            validation_every,
            &mut || ticker.tick(stage),
        )?;
        dim_errors.push((dim, bias));
    }
    // the reference's rule: the smallest D within 0.0025 of the best validation error
    let best = dim_errors.iter().map(|e| e.1).fold(f64::INFINITY, f64::min);
    let Some(&(dim, bias)) = dim_errors.iter().find(|e| e.1 - best < 0.0025) else {
        return Err(TinyError::Parameter {
            name: "dims",
            value: format!("{candidates:?}"),
            expected: "at least one candidate dimension with a finite validation error".into(),
        });
    };
    let all: Vec<usize> = (0..items).collect();
    let variance = variance_term(responses, models, items, &all);
    let opts = IrtFitOptions {
        dim,
        ..irt_opts.clone()
    };
    let stage = Stage::Fit { dim };
    ticker.start(stage);
    let irt = fit_irt_unchecked(responses, models, items, &opts, &mut || ticker.tick(stage))?.irt;
    Ok(Fitted {
        irt,
        dim_errors,
        bias,
        variance,
    })
}

/// gp-IRT's bias, which is also the reference's validation error for choosing D: an IRT
/// model fitted without every `validation_every`-th model; each of those gets θ from the even
/// items, and the error is the mean |balance-weighted IRT prediction − raw accuracy| on the
/// odd items (a weighted prediction against an unweighted truth, as the reference).
fn validation_error(
    responses: &[f64],
    models: usize,
    items: usize,
    bw: &[f64],
    irt_opts: &IrtFitOptions,
    validation_every: usize,
    tick: &mut dyn FnMut(),
) -> Result<f64, TinyError> {
    check_positive("validation_every", validation_every)?;
    let validation: Vec<usize> = (0..models).step_by(validation_every).collect();
    let rest: Vec<usize> = (0..models).filter(|m| m % validation_every != 0).collect();
    if rest.len() < 2 || items < 2 {
        return Err(TinyError::Parameter {
            name: "models",
            value: models.to_string(),
            expected: format!(
                "enough to fit without the validation models (every {validation_every}th) and at least 2 items"
            ),
        });
    }
    let val_fit = fit_irt_unchecked(
        &rows_of(responses, items, &rest),
        rest.len(),
        items,
        irt_opts,
        tick,
    )?;
    let even: Vec<usize> = (0..items).step_by(2).collect();
    let odd: Vec<usize> = (1..items).step_by(2).collect();
    let mut bias = 0.0;
    for &m in &validation {
        let row = &responses[m * items..(m + 1) * items];
        let y: Vec<f64> = even.iter().map(|&i| row[i]).collect();
        let theta = fit_theta(&val_fit.irt, &even, &y)?.theta;
        let predicted = irt_prediction(&val_fit.irt, &theta, bw, &odd);
        let truth = odd.iter().map(|&i| row[i]).sum::<f64>() / odd.len() as f64;
        bias += (predicted - truth).abs();
    }
    Ok(bias / validation.len() as f64)
}

impl Fitted {
    /// A benchmark with `count` anchors chosen by `sampling` (seeded).
    pub fn with_anchors(
        &self,
        bw: &[f64],
        count: usize,
        sampling: Sampling,
        restarts: usize,
        seed: u64,
    ) -> Result<TinyBenchmark, TinyError> {
        let items = self.irt.items();
        let (anchors, anchor_weights) = match sampling {
            Sampling::Anchor => {
                let a = select_anchors(ItemFeatures::Irt(&self.irt), bw, count, restarts, seed)?;
                (a.items, a.weights)
            }
            Sampling::Random => {
                check_positive("anchors", count)?;
                if count > items {
                    return Err(TinyError::Parameter {
                        name: "anchors",
                        value: count.to_string(),
                        expected: format!("at most the number of items ({items})"),
                    });
                }
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut chosen = sample(&mut rng, items, count).into_vec();
                chosen.sort_unstable();
                (chosen, vec![1.0 / count as f64; count])
            }
        };
        let gp_lambda = gp_lambda(self.bias, self.variance, anchors.len(), sampling)?;
        Ok(TinyBenchmark {
            format: FORMAT.into(),
            version: 1,
            irt: self.irt.clone(),
            balance_weights: bw.to_vec(),
            anchors,
            anchor_weights,
            sampling,
            gp_lambda,
            bias: self.bias,
            variance: self.variance,
            dim_errors: self.dim_errors.clone(),
        })
    }
}

/// [`fit_parts`] then [`Fitted::with_anchors`], reporting [`Progress`] as it goes.
pub fn fit_benchmark(
    data: Responses,
    opts: &BenchmarkOptions,
    mut progress: impl FnMut(Progress),
) -> Result<TinyBenchmark, TinyError> {
    let mut ticker = Ticker {
        done: 0,
        total: fit_steps(&opts.irt, &opts.dims).saturating_add(1),
        report: &mut progress,
    };
    let parts = fit_parts_reporting(
        data,
        &opts.irt,
        &opts.dims,
        opts.validation_every,
        &mut ticker,
    )?;
    ticker.start(Stage::Anchors);
    let bw = data.balance_weights;
    let bench = parts.with_anchors(bw, opts.anchors, opts.sampling, opts.restarts, opts.seed)?;
    ticker.tick(Stage::Anchors);
    Ok(bench)
}

impl TinyBenchmark {
    /// A benchmark read from JSON is checked before use: its parts must agree in size (the
    /// fuzzer found one whose `a` was a row short, which indexed past it).
    fn check_shapes(&self) -> Result<(), TinyError> {
        Irt::new(self.irt.dim, self.irt.a.clone(), self.irt.b.clone())?;
        let items = self.irt.items();
        let length = |name, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(TinyError::Length {
                    name,
                    got,
                    expected: want.to_string(),
                })
            }
        };
        length("balance_weights", self.balance_weights.len(), items)?;
        length(
            "anchor_weights",
            self.anchor_weights.len(),
            self.anchors.len(),
        )?;
        if let Some(&bad) = self.anchors.iter().find(|&&i| i >= items) {
            return Err(TinyError::Parameter {
                name: "anchors",
                value: bad.to_string(),
                expected: format!("item numbers below {items}"),
            });
        }
        Ok(())
    }

    /// A new model's estimates from its answers on the anchors (in the order of `anchors`).
    pub fn estimate(&self, answers: &[f64]) -> Result<(Estimates, ThetaFit), TinyError> {
        if self.format != FORMAT || self.version != 1 {
            return Err(TinyError::Parameter {
                name: "format",
                value: format!("{} v{}", self.format, self.version),
                expected: format!("{FORMAT} v1"),
            });
        }
        self.check_shapes()?;
        let fit = fit_theta(&self.irt, &self.anchors, answers)?;
        let items: Vec<usize> = (0..self.irt.items()).collect();
        let est = estimate(
            &self.irt,
            &fit.theta,
            &self.balance_weights,
            &self.anchors,
            answers,
            &self.anchor_weights,
            Scenario {
                items: &items,
                gp_lambda: self.gp_lambda,
            },
        )?;
        Ok((est, fit))
    }
}

/// Mean absolute errors of one number of anchors in [`holdout`] (over test models and seeds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutRow {
    pub anchors: usize,
    /// Random sample, plain mean of its answers (the paper's "random").
    pub random: f64,
    /// Random sample, p-IRT and gp-IRT ("random+", "random++").
    pub random_pirt: f64,
    pub random_gpirt: f64,
    /// IRT-clustered anchors, weighted mean (the package's `irt`, the paper's "IRT").
    pub irt: f64,
    /// IRT-clustered anchors, p-IRT and gp-IRT ("IRT+", "IRT++").
    pub pirt: f64,
    pub gpirt: f64,
    /// θ fits that ran off (nearly separable anchor answers), of all fits.
    pub theta_not_converged: usize,
    pub fits: usize,
}

/// What [`holdout`] measured: the dimension chosen on the training models (with each
/// candidate's validation error) and one row per number of anchors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutReport {
    pub dim: usize,
    pub dim_errors: Vec<(usize, f64)>,
    pub rows: Vec<HoldoutRow>,
}

/// The paper's evaluation: the IRT model fitted without the `test` models, then for each
/// number of anchors and seed, each test model's estimates from its anchor answers against
/// its full balance-weighted accuracy. Reports [`Progress`] as it goes.
pub fn holdout(
    data: Responses,
    test: &[usize],
    counts: &[usize],
    seeds: usize,
    opts: &BenchmarkOptions,
    mut progress: impl FnMut(Progress),
) -> Result<HoldoutReport, TinyError> {
    let (responses, models, items, bw) = data.checked()?;
    check_positive("seeds", seeds)?;
    if let Some(&m) = test.iter().find(|&&m| m >= models) {
        return Err(TinyError::Parameter {
            name: "test model",
            value: m.to_string(),
            expected: format!("a row below {models}"),
        });
    }
    let train: Vec<usize> = (0..models).filter(|m| !test.contains(m)).collect();
    if test.is_empty() || train.len() < 2 {
        return Err(TinyError::Parameter {
            name: "test models",
            value: test.len().to_string(),
            expected: format!("at least 1, leaving at least 2 of the {models} models to train on"),
        });
    }
    let train_rows = rows_of(responses, items, &train);
    let mut ticker = Ticker {
        done: 0,
        total: fit_steps(&opts.irt, &opts.dims).saturating_add(counts.len().saturating_mul(seeds)),
        report: &mut progress,
    };
    let parts = fit_parts_checked(
        &train_rows,
        train.len(),
        items,
        bw,
        &opts.irt,
        &opts.dims,
        opts.validation_every,
        &mut ticker,
    )?;
    let truth: Vec<f64> = test
        .iter()
        .map(|&m| {
            let row = &responses[m * items..(m + 1) * items];
            row.iter().zip(bw).map(|(y, w)| y * w).sum::<f64>() / items as f64
        })
        .collect();
    let mut rows = Vec::with_capacity(counts.len());
    for &count in counts {
        let mut sums = [0.0f64; 6];
        let (mut runaway, mut fits) = (0, 0);
        let stage = Stage::Estimate { anchors: count };
        ticker.start(stage);
        for seed in 0..seeds as u64 {
            for (k, sampling) in [Sampling::Random, Sampling::Anchor].into_iter().enumerate() {
                let bench = parts.with_anchors(bw, count, sampling, opts.restarts, seed)?;
                for (&m, &t) in test.iter().zip(&truth) {
                    let row = &responses[m * items..(m + 1) * items];
                    let answers: Vec<f64> = bench.anchors.iter().map(|&i| row[i]).collect();
                    let (est, fit) = bench.estimate(&answers)?;
                    fits += 1;
                    runaway += usize::from(!fit.converged);
                    sums[3 * k] += (est.irt - t).abs();
                    sums[3 * k + 1] += (est.pirt - t).abs();
                    sums[3 * k + 2] += (est.gpirt - t).abs();
                }
            }
            ticker.tick(stage);
        }
        let n = (seeds * test.len()) as f64;
        rows.push(HoldoutRow {
            anchors: count,
            random: sums[0] / n,
            random_pirt: sums[1] / n,
            random_gpirt: sums[2] / n,
            irt: sums[3] / n,
            pirt: sums[4] / n,
            gpirt: sums[5] / n,
            theta_not_converged: runaway,
            fits,
        });
    }
    Ok(HoldoutReport {
        dim: parts.irt.dim,
        dim_errors: parts.dim_errors,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, Normal};

    /// Answers of `models` models drawn from a random 2-D 2PL model of `items` items.
    fn synthetic(seed: u64, items: usize, models: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = Normal::new(0.0, 1.0).unwrap();
        let d = 2;
        let a: Vec<f64> = (0..items * d).map(|_| n.sample(&mut rng)).collect();
        let b: Vec<f64> = (0..items).map(|_| 0.5 * n.sample(&mut rng)).collect();
        let irt = Irt::new(d, a, b).unwrap();
        let mut y = Vec::with_capacity(items * models);
        for _ in 0..models {
            let t: Vec<f64> = (0..d).map(|_| n.sample(&mut rng)).collect();
            for i in 0..items {
                y.push((rng.random::<f64>() < irt.prob(&t, i)) as u8 as f64);
            }
        }
        y
    }

    #[test]
    fn held_out_estimates_beat_chance_and_improve_with_more_anchors() {
        let (items, models) = (300, 60);
        let y = synthetic(7, items, models);
        let bw = vec![1.0; items];
        let test: Vec<usize> = (0..models).step_by(4).collect();
        let opts = BenchmarkOptions {
            irt: IrtFitOptions {
                dim: 2,
                epochs: 300,
                ..IrtFitOptions::default()
            },
            restarts: 2,
            ..BenchmarkOptions::default()
        };
        let data = Responses {
            answers: &y,
            models,
            items,
            balance_weights: &bw,
        };
        let mut reports = Vec::new();
        let report = holdout(
            data,
            &test,
            &[10, 60],
            2,
            &BenchmarkOptions {
                dims: vec![1, 2, 4],
                ..opts
            },
            |p| reports.push(p),
        )
        .unwrap();
        // every stage is announced, steps only grow, and the last report is the total
        assert!(
            reports.windows(2).all(|w| w[0].done <= w[1].done),
            "{reports:?}"
        );
        let last = reports.last().unwrap();
        assert_eq!((last.done, last.total), (4 * 3 + 2 * 2, 4 * 3 + 2 * 2));
        assert_eq!(reports[0].stage, Stage::Validate { dim: 1 });
        assert!(reports
            .iter()
            .any(|p| p.stage == Stage::Fit { dim: report.dim }));
        assert_eq!(last.stage, Stage::Estimate { anchors: 60 });
        // validation picks a small D for 2-D data (the smallest within 0.0025 of the best)
        assert_eq!(report.dim_errors.len(), 3);
        assert!(report.dim <= 2, "{:?}", report.dim_errors);
        let rows = report.rows;
        // a plain mean of n answers errs by about 0.4/√n; the IRT estimates must beat it at
        // each size (the paper's claim), and p-IRT must improve with more anchors
        for r in &rows {
            let plain = 0.4 / (r.anchors as f64).sqrt();
            assert!(r.random < 1.5 * plain, "{r:?}");
            for e in [r.pirt, r.gpirt, r.random_pirt, r.random_gpirt] {
                assert!(e < r.random && e < plain, "{r:?}");
            }
        }
        assert!(rows[1].pirt < rows[0].pirt, "{rows:?}");
    }

    #[test]
    fn a_saved_benchmark_estimates_the_same_after_a_json_round_trip() {
        let (items, models) = (80, 30);
        let y = synthetic(8, items, models);
        // items every model answers alike identify nothing: keep the others
        let keep = informative_items(&y, models, items);
        assert!(keep.len() > 60, "{}", keep.len());
        let y: Vec<f64> = (0..models)
            .flat_map(|m| keep.iter().map(move |&i| (m, i)))
            .map(|(m, i)| y[m * items + i])
            .collect();
        let items = keep.len();
        let opts = BenchmarkOptions {
            irt: IrtFitOptions {
                dim: 2,
                epochs: 100,
                ..IrtFitOptions::default()
            },
            anchors: 15,
            restarts: 1,
            ..BenchmarkOptions::default()
        };
        let ones = vec![1.0; items];
        let data = Responses {
            answers: &y,
            models,
            items,
            balance_weights: &ones,
        };
        let mut reports = Vec::new();
        let bench = fit_benchmark(data, &opts, |p| reports.push(p)).unwrap();
        // one candidate: its validation fit and the final fit, 1 step each; then the anchors
        let stages: Vec<_> = reports.iter().map(|p| (p.done, p.total, p.stage)).collect();
        let dim = Stage::Validate { dim: 2 };
        let fit = Stage::Fit { dim: 2 };
        assert_eq!(
            stages,
            [
                (0, 3, dim),
                (1, 3, dim),
                (1, 3, fit),
                (2, 3, fit),
                (2, 3, Stage::Anchors),
                (3, 3, Stage::Anchors)
            ]
        );
        assert_eq!(bench.anchors.len(), bench.anchor_weights.len());
        assert!((bench.anchor_weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&bench.gp_lambda));
        let json = serde_json::to_string(&bench).unwrap();
        let back: TinyBenchmark = serde_json::from_str(&json).unwrap();
        let answers: Vec<f64> = bench.anchors.iter().map(|&i| y[i]).collect();
        let two = fit_parts_checked(
            &y[..2 * items],
            2,
            items,
            &vec![1.0; items],
            &opts.irt,
            &[],
            5,
            &mut Ticker {
                done: 0,
                total: 2,
                report: &mut |_| {},
            },
        );
        assert!(
            matches!(two, Err(TinyError::Parameter { name: "models", .. })),
            "{:?}",
            two.err()
        );
        // (serde_json may round a parameter's last bit: equal to rounding, not to the bit)
        let (e1, t1) = bench.estimate(&answers).unwrap();
        let (e2, t2) = back.estimate(&answers).unwrap();
        for (a, b) in [(e1.irt, e2.irt), (e1.pirt, e2.pirt), (e1.gpirt, e2.gpirt)]
            .into_iter()
            .chain(t1.theta.iter().copied().zip(t2.theta.iter().copied()))
        {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert!(bench.estimate(&answers[1..]).is_err());
    }
}
