//! Principal component analysis for the 2-D views of the steering page: the top
//! eigenvectors of the (biased) covariance, each signed so its largest-magnitude entry is
//! positive (deterministic across platforms).

use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;

use super::{check_matrix, SteerError};
use crate::core::matrix::Matrix;

/// A fitted projection onto `components.len()` principal directions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// Unit directions, largest variance first.
    pub components: Vec<Vec<f64>>,
    /// Variance along each direction.
    pub explained_variance: Vec<f64>,
    /// Total variance (trace of the covariance), to report shares.
    pub total_variance: f64,
}

impl Pca {
    /// Fits `k` components to the rows of `x`.
    pub fn fit(x: &Matrix, k: usize) -> Result<Pca, SteerError> {
        check_matrix(x, "x")?;
        if k == 0 || k > x.cols {
            return Err(SteerError::Option {
                name: "components",
                value: k.to_string(),
                expected: format!("1 ..= {} (the number of columns)", x.cols),
            });
        }
        let (n, d) = (x.rows as f64, x.cols);
        let mut mean = vec![0.0f64; d];
        for row in x.iter_rows() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64 / n;
            }
        }
        let centred = DMatrix::from_fn(d, x.rows, |j, i| x.row(i)[j] as f64 - mean[j]);
        let cov = (&centred * centred.transpose()) / n;
        let total_variance = cov.trace();
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let mut components = Vec::with_capacity(k);
        let mut explained_variance = Vec::with_capacity(k);
        for &c in order.iter().take(k) {
            let mut v: Vec<f64> = eig.eigenvectors.column(c).iter().copied().collect();
            let largest = v
                .iter()
                .fold(0.0f64, |m, &e| if e.abs() > m.abs() { e } else { m });
            if largest < 0.0 {
                v.iter_mut().for_each(|e| *e = -*e);
            }
            components.push(v);
            explained_variance.push(eig.eigenvalues[c].max(0.0));
        }
        Ok(Pca {
            mean,
            components,
            explained_variance,
            total_variance,
        })
    }

    /// Coordinates of the rows of `x` along the components (rows × k).
    pub fn project(&self, x: &Matrix) -> Result<Matrix, SteerError> {
        check_matrix(x, "x")?;
        if x.cols != self.mean.len() {
            return Err(SteerError::DimMismatch {
                got: x.cols,
                expected: self.mean.len(),
            });
        }
        let k = self.components.len();
        let mut out = Matrix::zeros(x.rows, k);
        for (i, row) in x.iter_rows().enumerate() {
            for (c, component) in self.components.iter().enumerate() {
                let dot: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(component)
                    .map(|((v, m), e)| (*v as f64 - m) * e)
                    .sum();
                out.row_mut(i)[c] = dot as f32;
            }
        }
        Ok(out)
    }
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
}
