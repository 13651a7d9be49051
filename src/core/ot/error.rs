//! Errors of the optimal-transport core: one variant per kind of bad input, each message
//! naming the argument and what was expected. Non-convergence is not an error (see the
//! `converged` flag of the outputs).

use thiserror::Error;

/// Bad input to an optimal-transport solver.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OtError {
    /// A point cloud, weight vector or cost matrix has no entries.
    #[error("`{arg}` is empty: expected at least one {what}")]
    Empty { arg: String, what: &'static str },

    /// Two sizes that must agree do not.
    #[error("`{arg}` has {got}, expected {expected}")]
    Shape {
        arg: String,
        expected: String,
        got: String,
    },

    /// A weight is negative.
    #[error("`{arg}[{index}]` is {value}: weights must be non-negative")]
    NegativeWeight {
        arg: String,
        index: usize,
        value: f32,
    },

    /// A weight is NaN or infinite.
    #[error("`{arg}[{index}]` is {value}: weights must be finite numbers")]
    NonFiniteWeight {
        arg: String,
        index: usize,
        value: f32,
    },

    /// A weight vector sums to zero.
    #[error("`{arg}` sums to 0: expected a positive total mass")]
    ZeroMass { arg: String },

    /// Marginal weights whose total masses differ where they must agree.
    #[error(
        "`{arg}` sums to {mass}, expected {expected}: {why} (relative tolerance {tolerance:e})"
    )]
    MassMismatch {
        arg: String,
        mass: f64,
        expected: f64,
        why: &'static str,
        tolerance: f64,
    },

    /// A coordinate of a point is NaN or infinite.
    #[error("`{arg}` point {point}, coordinate {coord} is {value}: expected a finite number")]
    NonFinitePoint {
        arg: String,
        point: usize,
        coord: usize,
        value: f32,
    },

    /// An entry of a cost matrix is NaN or infinite.
    #[error("`cost` entry ({row}, {col}) is {value}: expected a finite number")]
    NonFiniteCost { row: usize, col: usize, value: f32 },

    /// ε is not a positive finite number (given, or as resolved from the cost's statistics).
    #[error("`epsilon` is {value}: expected a positive finite number{detail}")]
    Epsilon { value: f32, detail: String },

    /// A solver option is out of range.
    #[error("`{name}` is {value}: expected {expected}")]
    Option {
        name: &'static str,
        value: String,
        expected: &'static str,
    },

    /// Fewer than two marginals for a multi-marginal problem.
    #[error("got {k} point cloud(s): multi-marginal transport needs k >= 2")]
    TooFewMarginals { k: usize },

    /// The multi-marginal tensor would have more entries than allowed.
    #[error(
        "the multi-marginal cost tensor of sizes {sizes:?} has {entries} entries, more than \
         `max_tensor_entries` = {max}: use fewer or smaller point clouds, or raise the limit"
    )]
    TensorTooLarge {
        sizes: Vec<usize>,
        entries: u128,
        max: usize,
    },

    #[error(transparent)]
    Size(#[from] crate::core::budget::SizeError),
}
