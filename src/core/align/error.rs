//! Errors of the alignment core: one variant per kind of bad input, each message naming the
//! argument and what was expected. A score that comes out NaN (CKNNA of degenerate
//! neighbourhoods, as in the reference) is data, not an error.

use thiserror::Error;

/// Bad input to an alignment metric.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlignError {
    /// A feature matrix has no rows or no columns.
    #[error("`{arg}` is empty ({rows}×{cols}): expected at least one row and one column")]
    Empty {
        arg: &'static str,
        rows: usize,
        cols: usize,
    },

    /// X and Y do not have the same number of rows (rows are paired: row i of each is item i).
    #[error(
        "`x` has {x_rows} rows and `y` has {y_rows}: rows are paired, so both must have the \
         same number of rows"
    )]
    RowMismatch { x_rows: usize, y_rows: usize },

    /// A feature is NaN or infinite.
    #[error("`{arg}` row {row}, column {col} is {value}: expected a finite number")]
    NonFinite {
        arg: &'static str,
        row: usize,
        col: usize,
        value: f32,
    },

    /// A row has norm zero (all zeros), so it has no direction to compare.
    #[error(
        "`{arg}` row {row} is all zeros{after}: every row needs a non-zero norm to be \
         L2-normalised"
    )]
    ZeroRow {
        arg: &'static str,
        row: usize,
        /// Empty, or where it became zero (after outlier clamping).
        after: String,
    },

    /// `k` is out of range for `n` rows.
    #[error("`k` is {k}: expected {expected}")]
    K { k: usize, expected: String },

    /// Too few rows for the metric's estimator.
    #[error("`{metric}` needs at least {min} rows, got {n}{why}")]
    TooFewRows {
        metric: &'static str,
        n: usize,
        min: usize,
        why: &'static str,
    },

    /// An option is out of range.
    #[error("`{name}` is {value}: expected {expected}")]
    Option {
        name: &'static str,
        value: String,
        expected: String,
    },

    /// The metric would need more memory than the documented limit.
    #[error(
        "`{metric}` on {what} needs {entries} f64 entries, more than the limit of {limit}: \
         {hint}"
    )]
    TooLarge {
        metric: &'static str,
        what: String,
        entries: u128,
        limit: usize,
        hint: &'static str,
    },

    /// SVCCA needs `cca_dim` independent directions in each matrix.
    #[error(
        "`{arg}` has rank {rank} after centring and scaling, less than `cca_dim` = {cca_dim}: \
         SVCCA needs cca_dim independent directions"
    )]
    RankDeficient {
        arg: &'static str,
        rank: usize,
        cca_dim: usize,
    },

    /// An unknown metric name.
    #[error("unknown metric {name:?}: expected one of {expected}")]
    UnknownMetric { name: String, expected: String },
}
