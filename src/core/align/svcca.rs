//! SVCCA (`AlignmentMetrics.svcca`, default `cca_dim = 10`): standardise each column
//! (`(x − mean) / (std + 1e-8)`, unbiased std), keep the top `cca_dim` left singular vectors
//! of each matrix, run CCA between them and average the `cca_dim` canonical correlations.
//!
//! Two deliberate differences from the reference, which compute the same quantity:
//! - The reference takes the singular vectors with `torch.svd_lowrank(x, q=cca_dim)`, a
//!   *randomised* approximation (2 power iterations, no oversampling) that depends on
//!   torch's random generator; here they are exact (a symmetric eigen-decomposition of the
//!   d×d or n×n Gram matrix in f64). The two agree when the spectrum has a gap after
//!   `cca_dim` and can differ otherwise (the reference's own score then varies with the seed).
//! - The reference fits scikit-learn's iterative `CCA(n_components=cca_dim)` and takes
//!   `np.corrcoef` of each pair of components (plus 1e-10 noise "to avoid nan"). Between two
//!   sets of `cca_dim` orthonormal, centred columns the canonical correlations are exactly
//!   the cosines of the principal angles between their spans, which is what is computed
//!   here: the singular values of Q₁ᵀQ₂.
//!
//! Memory: the Gram matrix of min(n, d)² f64 entries, limited by
//! [`MAX_QUADRATIC_ENTRIES`](super::MAX_QUADRATIC_ENTRIES); time O(n·d·min(n, d)).

use nalgebra::{DMatrix, SymmetricEigen};

use super::error::AlignError;
use super::kernel::{check_size, cross_product, gram_rows};
use crate::core::matrix::Matrix;

/// The reference's default number of canonical directions.
pub const DEFAULT_CCA_DIM: usize = 10;

/// Eigenvalues below this fraction of the largest count as zero when checking the rank.
const RANK_TOL: f64 = 1e-12;

struct Standardise<'a> {
    x: &'a Matrix,
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardise<'_> {
    fn new(x: &Matrix) -> Standardise<'_> {
        let (n, d) = (x.rows, x.cols);
        let mut mean = vec![0.0f64; d];
        for row in x.iter_rows() {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; d];
        for row in x.iter_rows() {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                let c = *v as f64 - m;
                *s += c * c;
            }
        }
        let scale = var
            .iter()
            .map(|s| 1.0 / ((s / (n as f64 - 1.0)).sqrt() + 1e-8))
            .collect();
        Standardise { x, mean, scale }
    }

    fn row(&self, r: usize, out: &mut [f64]) {
        for (((o, v), m), s) in out
            .iter_mut()
            .zip(self.x.row(r))
            .zip(&self.mean)
            .zip(&self.scale)
        {
            *o = (*v as f64 - m) * s;
        }
    }
}

/// An orthonormal basis (n × c, column after column) of the span of the top `c` left
/// singular vectors of the standardised `x`.
fn top_left_singular(x: &Matrix, arg: &'static str, c: usize) -> Result<Vec<Vec<f64>>, AlignError> {
    let (n, d) = (x.rows, x.cols);
    let z = Standardise::new(x);
    let small = n.min(d);
    check_size(
        "svcca",
        format!("`{arg}` ({n}×{d}): a {small}×{small} Gram matrix"),
        (small as u128) * (small as u128),
        "use fewer rows or fewer feature dimensions",
    )?;
    let gram = if d <= n {
        // Zᵀ Z = D (Xᵀ X − n μ μᵀ) D
        let mut g = cross_product(
            n,
            d,
            d,
            |r, o| o.iter_mut().zip(x.row(r)).for_each(|(o, v)| *o = *v as f64),
            |r, o| o.iter_mut().zip(x.row(r)).for_each(|(o, v)| *o = *v as f64),
        );
        for p in 0..d {
            for q in 0..d {
                g[p * d + q] =
                    (g[p * d + q] - n as f64 * z.mean[p] * z.mean[q]) * z.scale[p] * z.scale[q];
            }
        }
        g
    } else {
        gram_rows(n, d, |r, o| z.row(r, o))
    };
    let eigen = SymmetricEigen::new(DMatrix::from_row_slice(small, small, &gram));
    let mut order: Vec<usize> = (0..small).collect();
    order.sort_by(|&i, &j| eigen.eigenvalues[j].total_cmp(&eigen.eigenvalues[i]));
    let top = eigen.eigenvalues[order[0]].max(0.0);
    let rank = order
        .iter()
        .filter(|&&i| eigen.eigenvalues[i] > top * RANK_TOL && eigen.eigenvalues[i] > 0.0)
        .count();
    if rank < c {
        return Err(AlignError::RankDeficient {
            arg,
            rank,
            cca_dim: c,
        });
    }
    let mut cols: Vec<Vec<f64>> = if d <= n {
        // U = Z V (columns scaled by the singular values; orthonormalised below)
        let v: Vec<Vec<f64>> = order[..c]
            .iter()
            .map(|&i| eigen.eigenvectors.column(i).iter().copied().collect())
            .collect();
        let mut u = vec![vec![0.0f64; n]; c];
        let mut zr = vec![0.0f64; d];
        for r in 0..n {
            z.row(r, &mut zr);
            for (uc, vc) in u.iter_mut().zip(&v) {
                uc[r] = super::kernel::dot(&zr, vc);
            }
        }
        u
    } else {
        order[..c]
            .iter()
            .map(|&i| eigen.eigenvectors.column(i).iter().copied().collect())
            .collect()
    };
    orthonormalise(&mut cols);
    Ok(cols)
}

/// Modified Gram–Schmidt, twice (enough for full f64 orthogonality).
fn orthonormalise(cols: &mut [Vec<f64>]) {
    for _ in 0..2 {
        for i in 0..cols.len() {
            let (done, rest) = cols.split_at_mut(i);
            let ci = &mut rest[0];
            for q in done.iter() {
                let p = super::kernel::dot(q, ci);
                ci.iter_mut().zip(q).for_each(|(c, q)| *c -= p * q);
            }
            let norm = super::kernel::dot(ci, ci).sqrt();
            if norm > 0.0 {
                ci.iter_mut().for_each(|c| *c /= norm);
            }
        }
    }
}

/// SVCCA similarity: the mean of the `cca_dim` canonical correlations between the top
/// `cca_dim` singular directions of the standardised `a` and `b`.
pub fn svcca(a: &Matrix, b: &Matrix, cca_dim: usize) -> Result<f64, AlignError> {
    if a.rows != b.rows {
        return Err(AlignError::RowMismatch {
            x_rows: a.rows,
            y_rows: b.rows,
        });
    }
    if cca_dim == 0 {
        return Err(AlignError::Option {
            name: "cca_dim",
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    if a.rows <= cca_dim {
        return Err(AlignError::TooFewRows {
            metric: "svcca",
            n: a.rows,
            min: cca_dim + 1,
            why: " (more rows than `cca_dim`, since centring removes one direction)",
        });
    }
    let qa = top_left_singular(a, "x", cca_dim)?;
    let qb = top_left_singular(b, "y", cca_dim)?;
    let mut m = DMatrix::<f64>::zeros(cca_dim, cca_dim);
    for (i, ca) in qa.iter().enumerate() {
        for (j, cb) in qb.iter().enumerate() {
            m[(i, j)] = super::kernel::dot(ca, cb);
        }
    }
    let sv = m.singular_values();
    Ok(sv.iter().map(|s| s.min(1.0)).sum::<f64>() / cca_dim as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::align::test_matrix as pseudo;

    #[test]
    fn identical_and_linearly_related_inputs_score_one() {
        let a = pseudo(40, 12, 7);
        assert!((svcca(&a, &a, 5).unwrap() - 1.0).abs() < 1e-9);
        // the same span through both routes (n > d and n < d)
        let wide = pseudo(8, 30, 3);
        assert!((svcca(&wide, &wide, 3).unwrap() - 1.0).abs() < 1e-9);
        let other = pseudo(40, 12, 9);
        let s = svcca(&a, &other, 5).unwrap();
        assert!(s > 0.0 && s < 1.0, "{s}");
    }

    #[test]
    fn refuses_too_few_rows_and_rank() {
        let a = pseudo(10, 12, 7);
        assert!(matches!(
            svcca(&a, &a, 10),
            Err(AlignError::TooFewRows { .. })
        ));
        let narrow = pseudo(40, 3, 7);
        assert!(matches!(
            svcca(&narrow, &narrow, 5),
            Err(AlignError::RankDeficient { rank: 3, .. })
        ));
        assert!(matches!(svcca(&a, &a, 0), Err(AlignError::Option { .. })));
    }
}
