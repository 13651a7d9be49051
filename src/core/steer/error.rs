//! Errors of the steering core: one variant per kind of bad input, each naming the argument
//! and what was expected.

use thiserror::Error;

/// Bad input to fitting, applying or evaluating a steering function.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SteerError {
    /// A matrix or label vector has no entries.
    #[error("`{arg}` is empty: expected {expected}")]
    Empty {
        arg: &'static str,
        expected: &'static str,
    },

    /// Two inputs that describe the same rows disagree in length.
    #[error("`{arg}` has {got} entries but `x` has {rows} rows: expected one per row")]
    LengthMismatch {
        arg: &'static str,
        got: usize,
        rows: usize,
    },

    /// A number is NaN or infinite.
    #[error("`{arg}` {at} is {value}: expected a finite number")]
    NonFinite {
        arg: &'static str,
        at: String,
        value: f64,
    },

    /// A concept label is neither 0 nor 1.
    #[error("`z` row {row} is {value}: concept labels must be 0 or 1")]
    BadConceptLabel { row: usize, value: i64 },

    /// A main-task label is negative.
    #[error("`y` row {row} is {value}: task labels must be class numbers 0, 1, 2, …")]
    BadTaskLabel { row: usize, value: i64 },

    /// A group needed for fitting has no rows (or too few to estimate its mean).
    #[error(
        "the {group} group (z = {label}) has {count} rows: steering needs at least {min} rows \
         in each of the two groups"
    )]
    GroupTooSmall {
        group: &'static str,
        label: u8,
        count: usize,
        min: usize,
    },

    /// Mean+covariance matching with a singular covariance and no regularisation asked for.
    #[error(
        "the {group} group (z = {label}) has {count} rows for {dim} dimensions, so its \
         covariance is singular (rank ≤ {rank}); pass a regularisation (`reg` absolute, or \
         `relative_reg` × the mean variance, e.g. 0.01) or use the mean method"
    )]
    SingularCovariance {
        group: &'static str,
        label: u8,
        count: usize,
        dim: usize,
        rank: usize,
    },

    /// An option is out of range.
    #[error("`{name}` is {value}: expected {expected}")]
    Option {
        name: &'static str,
        value: String,
        expected: String,
    },

    /// A steering function was built for another width.
    #[error("`x` has {got} columns but the steering function was fitted on {expected}")]
    DimMismatch { got: usize, expected: usize },

    /// A serialised steering function that cannot be read.
    #[error("steering function: {0}")]
    Format(String),

    /// A linear-algebra step that failed on the data (reported, never a wrong answer).
    #[error("{0}")]
    Numerical(String),
}
