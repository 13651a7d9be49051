//! Principal components of the training features, fitted once and applied to every split
//! (`xrm run --pca`, `xrmCompare`'s `pca`): full-batch linear heads on 1280 raw dimensions
//! move slowly in the reference's 3000 steps; a few dozen components carry the picture.

use nalgebra::{DMatrix, SymmetricEigen};

use super::XrmError;

/// The training mean and the first `k` principal directions (`k × dim`, row-major), each
/// divided by its standard deviation when whitened.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    mean: Vec<f64>,
    basis: Vec<f64>,
    dim: usize,
    k: usize,
}

impl Pca {
    /// Fits on `x` (`rows × dim`, row-major). `k` is capped at `min(dim, rows)`; directions
    /// of zero variance come out as zero rows rather than arbitrary ones.
    pub fn fit(x: &[f32], dim: usize, k: usize, whiten: bool) -> Result<Pca, XrmError> {
        if dim == 0 || x.len() % dim != 0 {
            return Err(XrmError::Length {
                name: "features".into(),
                got: x.len(),
                expected: format!("a multiple of dim {dim}"),
            });
        }
        let n = x.len() / dim;
        if n < 2 {
            return Err(XrmError::Empty {
                name: "features".into(),
                why: "principal components need at least 2 rows".into(),
            });
        }
        if k == 0 {
            return Err(XrmError::Parameter {
                name: "pca",
                value: "0".into(),
                expected: "at least 1 component".into(),
            });
        }
        if let Some(v) = x.iter().find(|v| !v.is_finite()) {
            return Err(XrmError::Parameter {
                name: "features",
                value: v.to_string(),
                expected: "finite numbers".into(),
            });
        }
        let mut mean = vec![0.0f64; dim];
        for row in x.chunks_exact(dim) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centred = DMatrix::from_row_iterator(
            n,
            dim,
            x.chunks_exact(dim)
                .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| *v as f64 - m)),
        );
        let k = k.min(dim).min(n);
        // With fewer rows than dimensions (the usual case: 800 pictures, 1280 features) the
        // n × n Gram matrix has the same non-zero spectrum and is far cheaper to decompose —
        // in wasm the d × d route took seconds.
        let (values, directions) = if n < dim {
            let eig = SymmetricEigen::new(&centred * centred.transpose());
            let order = descending(eig.eigenvalues.as_slice());
            let top = eig.eigenvalues[order[0]].max(0.0);
            let mut dirs = DMatrix::<f64>::zeros(dim, k);
            let mut vals = Vec::with_capacity(k);
            for (j, &c) in order.iter().take(k).enumerate() {
                let lambda = eig.eigenvalues[c];
                vals.push(lambda.max(0.0));
                if lambda > top * 1e-12 && lambda > 0.0 {
                    // v = Xᵀu / √λ is the unit covariance eigenvector belonging to u
                    let v = centred.transpose() * eig.eigenvectors.column(c) / lambda.sqrt();
                    dirs.set_column(j, &v);
                }
            }
            (vals, dirs)
        } else {
            let eig = SymmetricEigen::new(centred.transpose() * &centred);
            let order = descending(eig.eigenvalues.as_slice());
            let mut dirs = DMatrix::<f64>::zeros(dim, k);
            let mut vals = Vec::with_capacity(k);
            for (j, &c) in order.iter().take(k).enumerate() {
                vals.push(eig.eigenvalues[c].max(0.0));
                dirs.set_column(j, &eig.eigenvectors.column(c));
            }
            (vals, dirs)
        };
        let mut basis = Vec::with_capacity(k * dim);
        for (j, lambda) in values.iter().enumerate() {
            let sd = (lambda / n as f64).sqrt();
            let scale = match (whiten, sd > 1e-12) {
                (false, _) => 1.0,
                (true, true) => 1.0 / sd,
                (true, false) => 0.0,
            };
            basis.extend(directions.column(j).iter().map(|v| v * scale));
        }
        Ok(Pca {
            mean,
            basis,
            dim,
            k,
        })
    }

    /// Components kept.
    pub fn components(&self) -> usize {
        self.k
    }

    /// `x` (`rows × dim`) on the components: `rows × components`.
    pub fn project(&self, x: &[f32], name: &str) -> Result<Vec<f32>, XrmError> {
        if x.len() % self.dim != 0 {
            return Err(XrmError::Length {
                name: name.into(),
                got: x.len(),
                expected: format!("a multiple of dim {}", self.dim),
            });
        }
        let mut out = Vec::with_capacity(x.len() / self.dim * self.k);
        let mut centred = vec![0.0f64; self.dim];
        for row in x.chunks_exact(self.dim) {
            for ((c, v), m) in centred.iter_mut().zip(row).zip(&self.mean) {
                *c = *v as f64 - m;
            }
            for b in self.basis.chunks_exact(self.dim) {
                out.push(b.iter().zip(&centred).map(|(w, c)| w * c).sum::<f64>() as f32);
            }
        }
        Ok(out)
    }
}

fn descending(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn data(n: usize, dim: usize) -> Vec<f32> {
        // columns of decreasing spread, so the components are well separated
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        (0..n * dim)
            .map(|i| (rng.random::<f64>() - 0.5) as f32 * (dim - i % dim) as f32 + 3.0)
            .collect()
    }

    /// Projections agree up to sign, column by column.
    fn same_up_to_sign(a: &[f32], b: &[f32], k: usize) {
        for c in 0..k {
            let col = |v: &[f32]| -> Vec<f32> { v.iter().skip(c).step_by(k).copied().collect() };
            let (ca, cb) = (col(a), col(b));
            let sign = if ca.iter().zip(&cb).map(|(x, y)| x * y).sum::<f32>() < 0.0 {
                -1.0
            } else {
                1.0
            };
            for (x, y) in ca.iter().zip(&cb) {
                assert!(
                    (x - sign * y).abs() < 1e-3 * (1.0 + x.abs()),
                    "{c}: {x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn gram_and_covariance_routes_agree() {
        // 12 rows × 8 dims takes the covariance route; the same rows padded with 8 zero
        // columns (16 dims > 12 rows) take the Gram route and must project identically
        let (n, d, k) = (12, 8, 4);
        let x = data(n, d);
        let wide: Vec<f32> = x
            .chunks_exact(d)
            .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0.0, d)))
            .collect();
        for whiten in [false, true] {
            let a = Pca::fit(&x, d, k, whiten).unwrap();
            let b = Pca::fit(&wide, 2 * d, k, whiten).unwrap();
            same_up_to_sign(
                &a.project(&x, "x").unwrap(),
                &b.project(&wide, "x").unwrap(),
                k,
            );
        }
    }

    #[test]
    fn components_are_centred_decorrelated_and_whitened() {
        let (n, d, k) = (40, 6, 3);
        let x = data(n, d);
        let p = Pca::fit(&x, d, k, true).unwrap().project(&x, "x").unwrap();
        for a in 0..k {
            for b in 0..k {
                let cov: f64 = (0..n)
                    .map(|i| p[i * k + a] as f64 * p[i * k + b] as f64)
                    .sum::<f64>()
                    / n as f64;
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((cov - want).abs() < 1e-4, "cov[{a}][{b}] = {cov}");
            }
        }
        let plain = Pca::fit(&x, d, k, false).unwrap().project(&x, "x").unwrap();
        let var = |c: usize| plain.iter().skip(c).step_by(k).map(|v| v * v).sum::<f32>();
        assert!(var(0) >= var(1) && var(1) >= var(2));
    }

    #[test]
    fn bad_input_is_named() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        assert!(Pca::fit(&x, 3, 1, false)
            .unwrap_err()
            .to_string()
            .contains("multiple of dim 3"));
        assert!(Pca::fit(&x, 4, 1, false)
            .unwrap_err()
            .to_string()
            .contains("at least 2 rows"));
        assert!(Pca::fit(&x, 2, 0, false)
            .unwrap_err()
            .to_string()
            .contains("`pca` is 0"));
        let p = Pca::fit(&x, 2, 5, false).unwrap();
        assert_eq!(p.components(), 2);
        assert!(p
            .project(&x[..3], "test.x")
            .unwrap_err()
            .to_string()
            .contains("test.x"));
    }
}
