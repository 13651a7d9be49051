//! Input checks and the reference's feature preparation: outlier clamping at a quantile of
//! |x| (`metrics.remove_outliers`, called by `measure_alignment.prepare_features` with
//! q = 0.95), then L2 normalisation of every row (`F.normalize(x, p=2, dim=-1)` in
//! `measure_alignment.compute_score`).

use super::error::AlignError;
use crate::core::matrix::Matrix;

/// The reference's outlier quantile (`prepare_features(feats, q=0.95)`).
pub const DEFAULT_OUTLIER_QUANTILE: f64 = 0.95;

/// How the clamping threshold is taken from |x|, as `remove_outliers(..., exact=...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantileMode {
    /// `exact=False` (the default of `prepare_features` and of `measure_alignment.py`
    /// without `--precise`): `torch.quantile(|x|, q, dim=1)` per row (linear interpolation,
    /// rank `q·(d−1)` in f32), then the mean over rows.
    MeanOfRows,
    /// `exact=True` (`--precise`, and `platonic.Alignment.score`): all |x| sorted, the value
    /// at index `int(q · numel)` (no interpolation).
    Exact,
}

/// The preparation applied to each feature matrix before measuring; on by default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prepare {
    /// Clamp every value to ±(this quantile of |x|); 1 switches clamping off (as the
    /// reference's `q == 1`).
    pub outlier_quantile: f64,
    pub quantile_mode: QuantileMode,
    /// Scale every row to unit L2 norm after clamping.
    pub normalize: bool,
}

impl Default for Prepare {
    fn default() -> Prepare {
        Prepare {
            outlier_quantile: DEFAULT_OUTLIER_QUANTILE,
            quantile_mode: QuantileMode::MeanOfRows,
            normalize: true,
        }
    }
}

impl Prepare {
    /// No clamping and no normalisation: metrics see the features as given (the kNN
    /// metrics still compare L2-normalised rows).
    pub const OFF: Prepare = Prepare {
        outlier_quantile: 1.0,
        quantile_mode: QuantileMode::MeanOfRows,
        normalize: false,
    };
}

/// Refuses empty matrices, NaN/inf and all-zero rows, naming `arg`.
pub fn validate(x: &Matrix, arg: &'static str) -> Result<(), AlignError> {
    if x.rows == 0 || x.cols == 0 || x.data.len() != x.rows * x.cols {
        return Err(AlignError::Empty {
            arg,
            rows: x.rows,
            cols: x.cols,
        });
    }
    for (row, values) in x.iter_rows().enumerate() {
        if let Some((col, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(AlignError::NonFinite {
                arg,
                row,
                col,
                value,
            });
        }
        if values.iter().all(|&v| v == 0.0) {
            return Err(AlignError::ZeroRow {
                arg,
                row,
                after: String::new(),
            });
        }
    }
    Ok(())
}

/// torch's `lerp` (`aten/src/ATen/native/Lerp.h`, vectorised with fused multiply-add).
fn torch_lerp(a: f32, b: f32, w: f32) -> f32 {
    let diff = b - a;
    if w.abs() < 0.5 {
        w.mul_add(diff, a)
    } else {
        (-diff).mul_add(1.0 - w, b)
    }
}

/// `torch.quantile(v, q)` with linear interpolation, for finite values; sorts `v`.
fn quantile_linear(v: &mut [f32], q: f32) -> f32 {
    v.sort_unstable_by(f32::total_cmp);
    let rank = q * (v.len() - 1) as f32;
    let below = rank.floor();
    let lo = (below as usize).min(v.len() - 1);
    let hi = (rank.ceil() as usize).min(v.len() - 1);
    torch_lerp(v[lo], v[hi], rank - below)
}

/// The clamping threshold of `remove_outliers` for finite `x` and `q` in [0, 1).
pub fn outlier_threshold(x: &Matrix, q: f64, mode: QuantileMode) -> f32 {
    match mode {
        QuantileMode::MeanOfRows => {
            let qf = q as f32;
            let mut buf = vec![0.0f32; x.cols];
            let mut sum = 0.0f64;
            for row in x.iter_rows() {
                for (b, v) in buf.iter_mut().zip(row) {
                    *b = v.abs();
                }
                sum += quantile_linear(&mut buf, qf) as f64;
            }
            // torch's float32 mean may differ from this correctly rounded one by an ulp.
            (sum / x.rows as f64) as f32
        }
        QuantileMode::Exact => {
            let mut all: Vec<f32> = x.data.iter().map(|v| v.abs()).collect();
            // Python's int(q * numel): the product in f64, truncated.
            let index = ((q * all.len() as f64) as usize).min(all.len() - 1);
            let (_, value, _) = all.select_nth_unstable_by(index, f32::total_cmp);
            *value
        }
    }
}

/// `F.normalize(x, p=2, dim=-1)`: each row divided by max(‖row‖, 1e-12) in f32 (the norm
/// summed in f64 and rounded once).
pub fn normalize_rows(x: &mut Matrix) {
    let cols = x.cols.max(1);
    for row in x.data.chunks_exact_mut(cols) {
        let norm = row
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt() as f32;
        let denom = norm.max(1e-12);
        row.iter_mut().for_each(|v| *v /= denom);
    }
}

/// Checks `x` and applies `prep`, as the reference does before measuring.
pub fn prepare(x: &Matrix, arg: &'static str, prep: &Prepare) -> Result<Matrix, AlignError> {
    validate(x, arg)?;
    let q = prep.outlier_quantile;
    if !(0.0..=1.0).contains(&q) {
        return Err(AlignError::Option {
            name: "outlier_quantile",
            value: q.to_string(),
            expected: "a number in [0, 1] (1 switches clamping off)".into(),
        });
    }
    let mut out = x.clone();
    if q < 1.0 {
        let t = outlier_threshold(x, q, prep.quantile_mode);
        out.data.iter_mut().for_each(|v| *v = v.clamp(-t, t));
        if let Some(row) = out.iter_rows().position(|r| r.iter().all(|&v| v == 0.0)) {
            return Err(AlignError::ZeroRow {
                arg,
                row,
                after: format!(" after clamping outliers at the {q} quantile of |{arg}| ({t})"),
            });
        }
    }
    if prep.normalize {
        normalize_rows(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: usize, cols: usize, data: &[f32]) -> Matrix {
        Matrix::new(rows, cols, data.to_vec(), "t").unwrap()
    }

    #[test]
    fn quantile_matches_torch_linear() {
        // torch.quantile(tensor([1., 2., 3., 4., 10.]), 0.95) == 8.8 (rank 3.8)
        let mut v = [10.0, 1.0, 3.0, 2.0, 4.0];
        assert!((quantile_linear(&mut v, 0.95) - 8.8).abs() < 1e-6);
        let mut one = [5.0];
        assert_eq!(quantile_linear(&mut one, 0.95), 5.0);
    }

    #[test]
    fn thresholds_by_mode() {
        let x = m(2, 5, &[1., 2., 3., 4., 10., -1., -1., -1., -1., -1.]);
        let t = outlier_threshold(&x, 0.95, QuantileMode::MeanOfRows);
        assert!((t - (8.8 + 1.0) / 2.0).abs() < 1e-6);
        // sorted |x|: 1×6, 2, 3, 4, 10; int(0.95 · 10) = 9 → 10
        assert_eq!(outlier_threshold(&x, 0.95, QuantileMode::Exact), 10.0);
        assert_eq!(outlier_threshold(&x, 0.5, QuantileMode::Exact), 1.0);
    }

    #[test]
    fn prepares_and_refuses_bad_rows() {
        let x = m(2, 2, &[3.0, 4.0, 0.0, 2.0]);
        let p = prepare(&x, "x", &Prepare::default()).unwrap();
        for row in p.iter_rows() {
            let n: f32 = row.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-6);
        }
        let zero = m(2, 2, &[1.0, 0.0, 0.0, 0.0]);
        let err = prepare(&zero, "y", &Prepare::default()).unwrap_err();
        assert_eq!(
            err,
            AlignError::ZeroRow {
                arg: "y",
                row: 1,
                after: String::new()
            }
        );
        let nan = m(1, 2, &[1.0, f32::NAN]);
        assert!(matches!(
            prepare(&nan, "x", &Prepare::default()),
            Err(AlignError::NonFinite {
                arg: "x",
                row: 0,
                col: 1,
                ..
            })
        ));
        let empty = Matrix {
            rows: 0,
            cols: 3,
            data: vec![],
        };
        assert!(matches!(
            validate(&empty, "x"),
            Err(AlignError::Empty { .. })
        ));
        // > 95% zeros: the threshold is 0 and clamping zeroes every row.
        let mut sparse = vec![0.0f32; 80];
        sparse[0] = 1.0;
        sparse[40] = 1.0;
        let err = prepare(&m(2, 40, &sparse), "x", &Prepare::default()).unwrap_err();
        assert!(err.to_string().contains("after clamping outliers"), "{err}");
    }
}
