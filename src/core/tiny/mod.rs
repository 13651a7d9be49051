//! tinyBenchmarks (Maia Polo et al., ICML 2024): estimate a model's accuracy on a whole
//! benchmark from its answers on a few anchor items, with a multidimensional 2PL item
//! response theory (IRT) model fitted to other models' answers.
//!
//! The estimators are the reference package's (felipemaiapolo/tinyBenchmarks,
//! `tinyBenchmarks/__init__.py`, `evaluate`), conventions included:
//! - the item curve `P(correct) = σ(Σ_d clip(α_id θ_d − b_i, −30, 30))`: the difficulty counts
//!   once per dimension (`α·θ − D b` when nothing is clipped), the clip is per term;
//! - θ of a new model is the unregularised maximum-likelihood fit on the anchors, from 0, of
//!   `−Σ y log(P + 1e-10) + (1 − y) log(1 − P + 1e-10)` ([`fit_theta`]);
//! - `irt` (the package's key) is the anchor-weighted mean of the anchor answers — called so
//!   because the anchors come from clustering IRT item parameters — `pirt` mixes the seen
//!   items' balance-weighted mean with the IRT prediction on the unseen ones, and `gpirt`
//!   mixes `irt` and `pirt` with a λ from a bias and a variance ([`gp_lambda`]);
//! - anchors: k-means (weighted by the items' balance weights) on the items' IRT parameters
//!   `[α_i, b_i]` (or on their columns of answers), the item nearest each centroid, weighted
//!   by its cluster's share of balance weight ([`select_anchors`]).
//!
//! `tests/tiny_conformance.rs` checks them against the package itself
//! (`scripts/fixtures/make_tiny_fixtures.py`).
//!
//! One thing differs, by necessity: the reference fits the IRT model with py-irt's stochastic
//! variational inference (pyro, hierarchical priors, 2000 epochs). [`fit_irt`] takes the
//! posterior mode of the same likelihood under fixed standard-normal priors instead, with
//! full-batch Adam — deterministic, and close to the variational means when the data are
//! plentiful; its quality is tested on synthetic 2PL data with a known truth.

mod anchors;
mod bench;
mod estimate;
mod irt;

pub use anchors::{balance_weights, select_anchors, Anchors, ItemFeatures};
pub use bench::{
    drop_constant_items, fit_benchmark, fit_parts, holdout, informative_items, random_split,
    BenchmarkOptions, Fitted, HoldoutReport, HoldoutRow, Progress, ResponseMatrix, Responses,
    Stage, TinyBenchmark, FORMAT,
};
pub use estimate::{
    estimate, gp_lambda, irt_prediction, variance_term, Estimates, Sampling, Scenario,
};
pub use irt::{fit_irt, fit_theta, Irt, IrtFit, IrtFitOptions, ThetaFit};

/// Bad parameters or data, named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TinyError {
    #[error("`{name}` is {value}: expected {expected}")]
    Parameter {
        name: &'static str,
        value: String,
        expected: String,
    },
    #[error("`{name}` has {got} entries: expected {expected}")]
    Length {
        name: &'static str,
        got: usize,
        expected: String,
    },
    #[error("`{name}` has the value {value} at {at}: expected 0 or 1 (or a score in [0, 1])")]
    Response {
        name: &'static str,
        value: f64,
        at: String,
    },
    #[error(
        "item {item} has the same answer from every model ({value}): its IRT parameters are not identified; drop constant columns first"
    )]
    ConstantItem { item: usize, value: f64 },
    #[error(transparent)]
    Size(#[from] crate::core::budget::SizeError),
}

/// The memory an IRT fit of this size holds (each model's θ and each item's α and β, with
/// their optimiser moments and gradients: about five copies), checked before it is allocated:
/// a dimension of 2^31 from a page's options would otherwise abort the module.
pub(crate) fn check_irt_size(models: usize, items: usize, dim: usize) -> Result<(), TinyError> {
    let rows = models.saturating_add(items);
    crate::core::budget::checked_len(
        "an IRT fit",
        &[
            ("(models + items)", rows),
            ("(dim + 1)", dim.saturating_add(1)),
            ("5 copies", 5),
        ],
        8,
    )?;
    Ok(())
}

pub(crate) fn check_positive(name: &'static str, value: usize) -> Result<(), TinyError> {
    if value == 0 {
        return Err(TinyError::Parameter {
            name,
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    Ok(())
}

/// Answers must be scores in [0, 1] (0/1 for right/wrong).
pub(crate) fn check_scores(
    name: &'static str,
    values: &[f64],
    cols: usize,
) -> Result<(), TinyError> {
    for (k, &v) in values.iter().enumerate() {
        if !(0.0..=1.0).contains(&v) {
            let at = if cols > 1 {
                format!("row {}, column {}", k / cols, k % cols)
            } else {
                format!("index {k}")
            };
            return Err(TinyError::Response { name, value: v, at });
        }
    }
    Ok(())
}
