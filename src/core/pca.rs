//! Principal component analysis, shared by the steering page's 2-D views (`pcaProject`) and
//! XRM's feature reduction (`xrm run --pca`, `xrmCompare`): the top eigenvectors of the
//! (biased) covariance, each signed so its largest-magnitude entry is positive (deterministic
//! across platforms).

use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;

use crate::core::matrix::Matrix;

/// Bad input to [`Pca::fit`] or [`Pca::project`], named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcaError {
    #[error("`{arg}` is empty: expected at least one row and one column")]
    Empty { arg: &'static str },
    #[error("`{arg}` row {row}, column {column} is {value}: expected a finite number")]
    NonFinite {
        arg: &'static str,
        row: usize,
        column: usize,
        value: f32,
    },
    #[error("`components` is {value}: expected 1 ..= {max} (the number of columns)")]
    Components { value: usize, max: usize },
    #[error("`{arg}` has {got} columns: expected {expected}, those the components were fitted on")]
    Columns {
        arg: &'static str,
        got: usize,
        expected: usize,
    },
}

fn check(x: &Matrix, arg: &'static str) -> Result<(), PcaError> {
    if x.rows == 0 || x.cols == 0 {
        return Err(PcaError::Empty { arg });
    }
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        return Err(PcaError::NonFinite {
            arg,
            row: i / x.cols,
            column: i % x.cols,
            value: x.data[i],
        });
    }
    Ok(())
}

/// A fitted projection onto `components.len()` principal directions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// Unit directions, largest variance first (zero where the data has no variance left).
    pub components: Vec<Vec<f64>>,
    /// Variance along each direction.
    pub explained_variance: Vec<f64>,
    /// Total variance (trace of the covariance), to report shares.
    pub total_variance: f64,
}

impl Pca {
    /// Fits `k` components to the rows of `x`.
    pub fn fit(x: &Matrix, k: usize) -> Result<Pca, PcaError> {
        check(x, "x")?;
        if k == 0 || k > x.cols {
            return Err(PcaError::Components {
                value: k,
                max: x.cols,
            });
        }
        let (n, d) = (x.rows, x.cols);
        let mut mean = vec![0.0f64; d];
        for row in x.iter_rows() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64 / n as f64;
            }
        }
        // d × n, one centred row per column
        let centred = DMatrix::from_fn(d, n, |j, i| x.row(i)[j] as f64 - mean[j]);
        let total_variance = centred.iter().map(|v| v * v).sum::<f64>() / n as f64;
        let mut components = Vec::with_capacity(k);
        let mut explained_variance = Vec::with_capacity(k);
        if n < d {
            // Fewer rows than columns (800 pictures × 1280 features): the n × n Gram matrix
            // has the covariance's non-zero spectrum and is far cheaper to decompose — in
            // wasm the d × d route took seconds. v = Xᵀu/√λ is u's covariance eigenvector.
            let eig = SymmetricEigen::new(centred.transpose() * &centred);
            let order = descending(eig.eigenvalues.as_slice());
            let top = eig.eigenvalues[order[0]].max(0.0);
            for j in 0..k {
                let (lambda, v) = match order.get(j) {
                    Some(&c) if eig.eigenvalues[c] > top * 1e-12 && eig.eigenvalues[c] > 0.0 => {
                        let lambda = eig.eigenvalues[c];
                        let v = &centred * eig.eigenvectors.column(c) / lambda.sqrt();
                        (lambda, v.iter().copied().collect())
                    }
                    _ => (0.0, vec![0.0; d]),
                };
                components.push(signed(v));
                explained_variance.push(lambda / n as f64);
            }
        } else {
            let eig = SymmetricEigen::new((&centred * centred.transpose()) / n as f64);
            let order = descending(eig.eigenvalues.as_slice());
            for &c in order.iter().take(k) {
                components.push(signed(eig.eigenvectors.column(c).iter().copied().collect()));
                explained_variance.push(eig.eigenvalues[c].max(0.0));
            }
        }
        Ok(Pca {
            mean,
            components,
            explained_variance,
            total_variance,
        })
    }

    /// Coordinates of the rows of `x` along the components (rows × k).
    pub fn project(&self, x: &Matrix) -> Result<Matrix, PcaError> {
        self.project_as(x, "x", false)
    }

    /// As [`Pca::project`], `arg` naming `x` in errors; `whiten` divides each coordinate by
    /// its component's standard deviation (components without variance give 0).
    pub fn project_as(
        &self,
        x: &Matrix,
        arg: &'static str,
        whiten: bool,
    ) -> Result<Matrix, PcaError> {
        check(x, arg)?;
        if x.cols != self.mean.len() {
            return Err(PcaError::Columns {
                arg,
                got: x.cols,
                expected: self.mean.len(),
            });
        }
        let scale: Vec<f64> = self
            .explained_variance
            .iter()
            .map(|v| match (whiten, v.sqrt() > 1e-12) {
                (false, _) => 1.0,
                (true, true) => 1.0 / v.sqrt(),
                (true, false) => 0.0,
            })
            .collect();
        let k = self.components.len();
        let mut out = Matrix::zeros(x.rows, k);
        let mut centred = vec![0.0f64; x.cols];
        for (i, row) in x.iter_rows().enumerate() {
            for ((c, v), m) in centred.iter_mut().zip(row).zip(&self.mean) {
                *c = *v as f64 - m;
            }
            for (c, component) in self.components.iter().enumerate() {
                let dot: f64 = centred.iter().zip(component).map(|(a, e)| a * e).sum();
                out.row_mut(i)[c] = (dot * scale[c]) as f32;
            }
        }
        Ok(out)
    }
}

/// Each direction signed so its largest-magnitude entry is positive.
fn signed(mut v: Vec<f64>) -> Vec<f64> {
    let largest = v
        .iter()
        .fold(0.0f64, |m, &e| if e.abs() > m.abs() { e } else { m });
    if largest < 0.0 {
        v.iter_mut().for_each(|e| *e = -*e);
    }
    v
}

fn descending(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_direction_of_largest_variance() {
        // Points on the line y = 2x (plus a little noise in the other direction).
        let mut data = Vec::new();
        for i in 0..50 {
            let t = i as f32 - 25.0;
            let e = if i % 2 == 0 { 0.1 } else { -0.1 };
            data.extend([t - 2.0 * e, 2.0 * t + e]);
        }
        let x = Matrix::new(50, 2, data, "x").unwrap();
        let pca = Pca::fit(&x, 2).unwrap();
        let c = &pca.components[0];
        let s = 5f64.sqrt();
        assert!(
            (c[0] - 1.0 / s).abs() < 1e-3 && (c[1] - 2.0 / s).abs() < 1e-3,
            "{c:?}"
        );
        assert!(pca.explained_variance[0] > 100.0 * pca.explained_variance[1]);
        let sum: f64 = pca.explained_variance.iter().sum();
        assert!((sum - pca.total_variance).abs() < 1e-6);
        let p = pca.project(&x).unwrap();
        assert_eq!((p.rows, p.cols), (50, 2));
        assert!(Pca::fit(&x, 3).is_err());
    }

    fn spread(n: usize, dim: usize) -> Matrix {
        // columns of decreasing spread, so the components are well separated
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let data = (0..n * dim)
            .map(|i| (rng.random::<f64>() - 0.5) as f32 * (dim - i % dim) as f32 + 3.0)
            .collect();
        Matrix::new(n, dim, data, "x").unwrap()
    }

    #[test]
    fn gram_and_covariance_routes_agree() {
        // 12 rows × 8 columns take the covariance route; the same rows padded with 8 zero
        // columns (16 > 12 rows) take the Gram route and must give the same components
        let (n, d, k) = (12, 8, 4);
        let x = spread(n, d);
        let wide_data = x
            .iter_rows()
            .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0.0, d)))
            .collect();
        let wide = Matrix::new(n, 2 * d, wide_data, "x").unwrap();
        let (a, b) = (Pca::fit(&x, k).unwrap(), Pca::fit(&wide, k).unwrap());
        for c in 0..k {
            assert!((a.explained_variance[c] - b.explained_variance[c]).abs() < 1e-9);
            for j in 0..d {
                assert!(
                    (a.components[c][j] - b.components[c][j]).abs() < 1e-9,
                    "{c} {j}"
                );
                assert!(b.components[c][d + j].abs() < 1e-9);
            }
        }
        assert!((a.total_variance - b.total_variance).abs() < 1e-9);
        // more components than rows: the surplus directions are zero, not arbitrary
        let many = Pca::fit(&wide, 14).unwrap();
        assert!(many.components[13].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn whitened_coordinates_are_decorrelated_with_unit_variance() {
        let (n, d, k) = (40, 6, 3);
        let x = spread(n, d);
        let p = Pca::fit(&x, k).unwrap().project_as(&x, "x", true).unwrap();
        for a in 0..k {
            for b in 0..k {
                let cov: f64 = (0..n)
                    .map(|i| p.row(i)[a] as f64 * p.row(i)[b] as f64)
                    .sum::<f64>()
                    / n as f64;
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((cov - want).abs() < 1e-4, "cov[{a}][{b}] = {cov}");
            }
        }
        let pca = Pca::fit(&x, k).unwrap();
        let err = pca.project_as(&spread(3, 5), "test.x", false).unwrap_err();
        assert!(err.to_string().contains("`test.x` has 5 columns"), "{err}");
    }
}
