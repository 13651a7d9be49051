//! Affine steering of embeddings ("Representation Surgery: Theory and Practice of Affine
//! Steering", Singh et al., ICML 2024; reference code shauli-ravfogel/affine-steering).
//!
//! A steering function is an affine map `x ↦ x·W + b` (rows are points) fitted so that the
//! rows of a *source* group (concept label `z == source_label`) look, to first or second
//! order, like the rows of the *target* group (every other row):
//! - [`Method::Mean`]: `W = I`, `b = μ_t − μ_s` (means match).
//! - [`Method::MeanCov`]: the optimal-transport map between Gaussians,
//!   `x ↦ μ_t + (x − μ_s)·A` with `A = Σ_s^{-1/2} (Σ_s^{1/2} Σ_t Σ_s^{1/2})^{1/2} Σ_s^{-1/2}`,
//!   so `W = A` and `b = μ_t − μ_s·A` (means and covariances match). This is what POT's
//!   `ot.da.LinearTransport` fits, and the tests compare with it.
//!
//! Covariances are the biased (divide by n) empirical ones, as POT computes them, plus
//! `reg · I` on both. Regularisation, documented and explicit:
//! - `reg` (absolute) or `relative_reg` (× the mean variance `(tr Σ_s + tr Σ_t) / 2d`).
//! - Neither given: `reg = 1e-8` (POT's default) when both covariances can be full rank, and
//!   a [`SteerError::SingularCovariance`] naming the group when a group has no more rows
//!   than dimensions (its covariance then has rank < d and `Σ_s^{-1/2}` would blow up
//!   the directions the group never varies in).
//!
//! Application ([`ApplyTo`]): the source group's rows (labels needed), the rows a concept
//! classifier assigns to the source group (as the paper does when labels are unknown at
//! test time; the classifier is a logistic-regression probe fitted with the map and stored
//! in it), or every row.
//!
//! All linear algebra is in f64 with nalgebra's symmetric eigen-decomposition; results are
//! returned as f32 matrices like every other embedding in the crate.

mod error;
pub mod eval;
pub mod probe;

pub use error::SteerError;
pub use eval::{
    correctly_predicted_classes, evaluate, fit_and_evaluate, tpr_gap, ClassGap, EvalOptions,
    Evaluation, TprGap,
};
pub use probe::{train_test_split, LinearProbe, ProbeOptions};

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::core::matrix::Matrix;

/// The `format` field of a serialised steering function.
pub const FORMAT: &str = "latentlab-steering";
/// Its version; readers refuse other versions.
pub const FORMAT_VERSION: u32 = 1;
/// POT's default regularisation, used when neither `reg` nor `relative_reg` is given.
pub const DEFAULT_REG: f64 = 1e-8;

/// Which moments the map matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "mean")]
    Mean,
    #[serde(rename = "mean-cov")]
    MeanCov,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Mean => "mean",
            Method::MeanCov => "mean-cov",
        }
    }

    pub fn parse(name: &str) -> Result<Method, SteerError> {
        match name {
            "mean" => Ok(Method::Mean),
            "mean-cov" | "mean_cov" => Ok(Method::MeanCov),
            other => Err(SteerError::Option {
                name: "method",
                value: format!("{other:?}"),
                expected: "\"mean\" or \"mean-cov\"".into(),
            }),
        }
    }
}

/// Which rows a steering function is applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyTo {
    /// Rows whose concept label is the source label (labels required).
    #[serde(rename = "source")]
    Source,
    /// Rows the stored concept classifier assigns to the source group.
    #[serde(rename = "predicted")]
    Predicted,
    /// Every row.
    #[serde(rename = "all")]
    All,
    /// Evaluation only, the paper's protocol: training rows by gold label, held-out rows
    /// by the classifier's prediction.
    #[serde(rename = "split")]
    Split,
}

impl ApplyTo {
    pub fn name(self) -> &'static str {
        match self {
            ApplyTo::Source => "source",
            ApplyTo::Predicted => "predicted",
            ApplyTo::All => "all",
            ApplyTo::Split => "split",
        }
    }

    pub fn parse(name: &str) -> Result<ApplyTo, SteerError> {
        match name {
            "source" => Ok(ApplyTo::Source),
            "predicted" => Ok(ApplyTo::Predicted),
            "all" => Ok(ApplyTo::All),
            "split" => Ok(ApplyTo::Split),
            other => Err(SteerError::Option {
                name: "apply_to",
                value: format!("{other:?}"),
                expected: "\"source\", \"predicted\", \"all\" or \"split\"".into(),
            }),
        }
    }
}

/// How to fit a steering function.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    pub method: Method,
    /// Rows with this concept label are moved onto the others (default 1).
    pub source_label: u8,
    /// Absolute regularisation added to both covariances (mean-cov only).
    pub reg: Option<f64>,
    /// Regularisation relative to the mean variance (mean-cov only); excludes `reg`.
    pub relative_reg: Option<f64>,
    /// Fit and store the concept classifier that `ApplyTo::Predicted` uses (default true).
    pub with_classifier: bool,
    pub probe: ProbeOptions,
}

impl Default for FitOptions {
    fn default() -> FitOptions {
        FitOptions {
            method: Method::MeanCov,
            source_label: 1,
            reg: None,
            relative_reg: None,
            with_classifier: true,
            probe: ProbeOptions::default(),
        }
    }
}

/// A fitted steering function `x ↦ x·W + b`, serialisable as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steering {
    pub format: String,
    pub version: u32,
    pub method: Method,
    pub dim: usize,
    pub source_label: u8,
    /// The regularisation that was added to both covariances (0 for the mean method).
    pub reg: f64,
    pub n_source: usize,
    pub n_target: usize,
    pub source_mean: Vec<f64>,
    pub target_mean: Vec<f64>,
    /// `dim` rows of `dim` numbers; steered row = row · W + b.
    #[serde(rename = "W")]
    pub w: Vec<Vec<f64>>,
    pub b: Vec<f64>,
    /// The concept classifier (class 1 = source group) for `ApplyTo::Predicted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<LinearProbe>,
}

/// Rows after steering and which of them were moved.
#[derive(Clone, Debug, PartialEq)]
pub struct Steered {
    pub x: Matrix,
    /// One flag per row: true where the map was applied.
    pub steered: Vec<bool>,
}

/// Checks every value of `x` is finite and `x` has rows and columns.
pub(crate) fn check_matrix(x: &Matrix, arg: &'static str) -> Result<(), SteerError> {
    if x.rows == 0 || x.cols == 0 {
        return Err(SteerError::Empty {
            arg,
            expected: "at least one row and one column",
        });
    }
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        return Err(SteerError::NonFinite {
            arg,
            at: format!("row {}, column {}", i / x.cols, i % x.cols),
            value: x.data[i] as f64,
        });
    }
    Ok(())
}

/// Checks concept labels: one per row, each 0 or 1.
pub fn check_concept(z: &[i64], rows: usize) -> Result<Vec<u8>, SteerError> {
    if z.len() != rows {
        return Err(SteerError::LengthMismatch {
            arg: "z",
            got: z.len(),
            rows,
        });
    }
    z.iter()
        .enumerate()
        .map(|(row, &value)| match value {
            0 | 1 => Ok(value as u8),
            _ => Err(SteerError::BadConceptLabel { row, value }),
        })
        .collect()
}

/// Checks task labels: one per row, each a class number ≥ 0.
pub fn check_task(y: &[i64], rows: usize) -> Result<Vec<usize>, SteerError> {
    if y.len() != rows {
        return Err(SteerError::LengthMismatch {
            arg: "y",
            got: y.len(),
            rows,
        });
    }
    y.iter()
        .enumerate()
        .map(|(row, &value)| {
            usize::try_from(value).map_err(|_| SteerError::BadTaskLabel { row, value })
        })
        .collect()
}

fn group_stats(x: &Matrix, rows: &[usize]) -> (Vec<f64>, DMatrix<f64>) {
    let d = x.cols;
    let n = rows.len() as f64;
    let mut mean = vec![0.0f64; d];
    for &r in rows {
        for (m, v) in mean.iter_mut().zip(x.row(r)) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    // Centred rows as columns of a d × n matrix, so Σ = C·Cᵀ / n is one matrix product.
    let centred = DMatrix::from_fn(d, rows.len(), |j, i| x.row(rows[i])[j] as f64 - mean[j]);
    let cov = (&centred * centred.transpose()) / n;
    (mean, cov)
}

/// `f(Σ)` for a symmetric positive semi-definite Σ, applied to its eigenvalues.
fn spectral(m: &DMatrix<f64>, f: impl Fn(f64) -> f64) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let values = eig.eigenvalues.map(|v| f(v.max(0.0)));
    let u = &eig.eigenvectors;
    u * DMatrix::from_diagonal(&values) * u.transpose()
}

/// The Monge map between N(μ_s, Σ_s) and N(μ_t, Σ_t): `A` with `A Σ_s A = Σ_t`.
fn gaussian_map(cov_s: &DMatrix<f64>, cov_t: &DMatrix<f64>) -> Result<DMatrix<f64>, SteerError> {
    let s_half = spectral(cov_s, f64::sqrt);
    let s_inv_half = spectral(cov_s, |v| if v > 0.0 { 1.0 / v.sqrt() } else { 0.0 });
    let middle = spectral(&(&s_half * cov_t * &s_half), f64::sqrt);
    let a = &s_inv_half * middle * &s_inv_half;
    if a.iter().any(|v| !v.is_finite()) {
        return Err(SteerError::Numerical(
            "the covariance square roots overflowed: the data is too ill-conditioned; \
             increase the regularisation"
                .into(),
        ));
    }
    Ok((&a + a.transpose()) * 0.5)
}

/// Fits a steering function moving rows with `z == source_label` onto the other rows.
pub fn fit(x: &Matrix, z: &[u8], options: &FitOptions) -> Result<Steering, SteerError> {
    check_matrix(x, "x")?;
    if z.len() != x.rows {
        return Err(SteerError::LengthMismatch {
            arg: "z",
            got: z.len(),
            rows: x.rows,
        });
    }
    if options.source_label > 1 {
        return Err(SteerError::Option {
            name: "source_label",
            value: options.source_label.to_string(),
            expected: "0 or 1".into(),
        });
    }
    let source_label = options.source_label;
    let target_label = 1 - source_label;
    let source: Vec<usize> = (0..x.rows).filter(|&i| z[i] == source_label).collect();
    let target: Vec<usize> = (0..x.rows).filter(|&i| z[i] == target_label).collect();
    for (group, label, rows) in [
        ("source", source_label, &source),
        ("target", target_label, &target),
    ] {
        if rows.is_empty() {
            return Err(SteerError::GroupTooSmall {
                group,
                label,
                count: 0,
                min: 1,
            });
        }
    }
    let d = x.cols;
    let (mean_s, cov_s) = group_stats(x, &source);
    let (mean_t, cov_t) = group_stats(x, &target);

    let (w, reg) = match options.method {
        Method::Mean => (DMatrix::<f64>::identity(d, d), 0.0),
        Method::MeanCov => {
            let reg = resolve_reg(
                options,
                &cov_s,
                &cov_t,
                [(source_label, &source), (target_label, &target)],
                d,
            )?;
            let eye = DMatrix::<f64>::identity(d, d) * reg;
            (gaussian_map(&(cov_s + &eye), &(cov_t + &eye))?, reg)
        }
    };
    // b = μ_t − μ_s·W (row vector times matrix).
    let b: Vec<f64> = (0..d)
        .map(|j| mean_t[j] - (0..d).map(|i| mean_s[i] * w[(i, j)]).sum::<f64>())
        .collect();
    let classifier = if options.with_classifier {
        let is_source: Vec<usize> = z.iter().map(|&l| usize::from(l == source_label)).collect();
        Some(LinearProbe::fit(x, &is_source, 2, &options.probe)?)
    } else {
        None
    };
    Ok(Steering {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        method: options.method,
        dim: d,
        source_label,
        reg,
        n_source: source.len(),
        n_target: target.len(),
        source_mean: mean_s,
        target_mean: mean_t,
        w: (0..d)
            .map(|i| (0..d).map(|j| w[(i, j)]).collect())
            .collect(),
        b,
        classifier,
    })
}

fn resolve_reg(
    options: &FitOptions,
    cov_s: &DMatrix<f64>,
    cov_t: &DMatrix<f64>,
    groups: [(u8, &Vec<usize>); 2],
    d: usize,
) -> Result<f64, SteerError> {
    let check = |name: &'static str, value: f64| {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(SteerError::Option {
                name,
                value: value.to_string(),
                expected: "a finite number ≥ 0".into(),
            })
        }
    };
    match (options.reg, options.relative_reg) {
        (Some(_), Some(_)) => Err(SteerError::Option {
            name: "relative_reg",
            value: "given together with reg".into(),
            expected: "at most one of reg and relative_reg".into(),
        }),
        (Some(reg), None) => check("reg", reg),
        (None, Some(rel)) => {
            let rel = check("relative_reg", rel)?;
            Ok(rel * (cov_s.trace() + cov_t.trace()) / (2.0 * d as f64))
        }
        (None, None) => {
            for ((label, rows), group) in groups.into_iter().zip(["source", "target"]) {
                // n centred rows span at most n − 1 directions.
                if rows.len() <= d {
                    return Err(SteerError::SingularCovariance {
                        group,
                        label,
                        count: rows.len(),
                        dim: d,
                        rank: rows.len().saturating_sub(1),
                    });
                }
            }
            Ok(DEFAULT_REG)
        }
    }
}

impl Steering {
    /// Reads a serialised steering function and checks its shape.
    pub fn from_json(text: &str) -> Result<Steering, SteerError> {
        let s: Steering =
            serde_json::from_str(text).map_err(|e| SteerError::Format(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), SteerError> {
        let bad = |what: String| Err(SteerError::Format(what));
        if self.format != FORMAT {
            return bad(format!(
                "`format` is {:?}, expected {FORMAT:?}",
                self.format
            ));
        }
        if self.version != FORMAT_VERSION {
            return bad(format!(
                "`version` is {}, expected {FORMAT_VERSION}",
                self.version
            ));
        }
        let d = self.dim;
        if d == 0 {
            return bad("`dim` is 0".into());
        }
        if self.w.len() != d || self.w.iter().any(|r| r.len() != d) {
            return bad(format!("`W` must be {d} rows of {d} numbers"));
        }
        for (name, v) in [
            ("b", &self.b),
            ("source_mean", &self.source_mean),
            ("target_mean", &self.target_mean),
        ] {
            if v.len() != d {
                return bad(format!("`{name}` has {} numbers, expected {d}", v.len()));
            }
        }
        let all = self.w.iter().flatten().chain(&self.b);
        if all.into_iter().any(|v| !v.is_finite()) {
            return bad("`W` and `b` must be finite".into());
        }
        if let Some(c) = &self.classifier {
            if c.dim != d || c.classes != 2 {
                return bad(format!(
                    "`classifier` is {}-class over {} dimensions, expected 2-class over {d}",
                    c.classes, c.dim
                ));
            }
            c.validate().map_err(SteerError::Format)?;
        }
        Ok(())
    }

    /// `row · W + b` into `out`.
    fn map_row(&self, row: &[f32], out: &mut [f32]) {
        match self.method {
            // W is the identity: skip d² multiplications.
            Method::Mean => {
                for ((o, v), b) in out.iter_mut().zip(row).zip(&self.b) {
                    *o = (*v as f64 + b) as f32;
                }
            }
            Method::MeanCov => {
                let mut acc = self.b.clone();
                for (v, w_row) in row.iter().zip(&self.w) {
                    let v = *v as f64;
                    for (a, w) in acc.iter_mut().zip(w_row) {
                        *a += v * w;
                    }
                }
                for (o, a) in out.iter_mut().zip(acc) {
                    *o = a as f32;
                }
            }
        }
    }

    /// ‖μ_t − μ_s‖: how far the map moves the source group's mean.
    pub fn b_shift_norm(&self) -> f64 {
        let shift = self.target_mean.iter().zip(&self.source_mean);
        shift.map(|(t, s)| (t - s) * (t - s)).sum::<f64>().sqrt()
    }

    /// Which rows of `x` the stored concept classifier assigns to the source group.
    pub fn predicted_source(&self, x: &Matrix) -> Result<Vec<bool>, SteerError> {
        let classifier = self.classifier.as_ref().ok_or(SteerError::Option {
            name: "apply_to",
            value: "\"predicted\"".into(),
            expected: "a steering function fitted with its concept classifier".into(),
        })?;
        Ok(x.iter_rows().map(|r| classifier.predict(r) == 1).collect())
    }

    /// The rows `to` selects: `z` (concept labels) is needed for `ApplyTo::Source`, the
    /// stored classifier for `ApplyTo::Predicted`.
    pub fn select(
        &self,
        x: &Matrix,
        z: Option<&[u8]>,
        to: ApplyTo,
    ) -> Result<Vec<bool>, SteerError> {
        match to {
            ApplyTo::All => Ok(vec![true; x.rows]),
            ApplyTo::Source => {
                let z = z.ok_or(SteerError::Option {
                    name: "apply_to",
                    value: "\"source\"".into(),
                    expected: "concept labels `z` with it (or \"predicted\" / \"all\")".into(),
                })?;
                if z.len() != x.rows {
                    return Err(SteerError::LengthMismatch {
                        arg: "z",
                        got: z.len(),
                        rows: x.rows,
                    });
                }
                Ok(z.iter().map(|&l| l == self.source_label).collect())
            }
            ApplyTo::Predicted => self.predicted_source(x),
            ApplyTo::Split => Err(SteerError::Option {
                name: "apply_to",
                value: "\"split\"".into(),
                expected: "\"source\", \"predicted\" or \"all\" (\"split\" is for evaluation)"
                    .into(),
            }),
        }
    }

    /// Applies the map to the rows where `mask` is true.
    pub fn apply_mask(&self, x: &Matrix, mask: &[bool]) -> Result<Steered, SteerError> {
        check_matrix(x, "x")?;
        if x.cols != self.dim {
            return Err(SteerError::DimMismatch {
                got: x.cols,
                expected: self.dim,
            });
        }
        if mask.len() != x.rows {
            return Err(SteerError::LengthMismatch {
                arg: "mask",
                got: mask.len(),
                rows: x.rows,
            });
        }
        let mut out = x.clone();
        for (i, _) in mask.iter().enumerate().filter(|(_, &on)| on) {
            self.map_row(x.row(i), out.row_mut(i));
        }
        Ok(Steered {
            x: out,
            steered: mask.to_vec(),
        })
    }

    /// Applies the map to the rows `to` selects (see [`Steering::select`]).
    pub fn apply(&self, x: &Matrix, z: Option<&[u8]>, to: ApplyTo) -> Result<Steered, SteerError> {
        check_matrix(x, "x")?;
        if x.cols != self.dim {
            return Err(SteerError::DimMismatch {
                got: x.cols,
                expected: self.dim,
            });
        }
        let mask = self.select(x, z, to)?;
        self.apply_mask(x, &mask)
    }
}
