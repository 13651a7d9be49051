//! Ground costs between points, point clouds as borrowed row-major views, and the input
//! checks shared by the solvers (weights, points).
//!
//! Costs follow OTT-JAX (`ott.geometry.costs`): squared Euclidean `‖x − y‖²` (computed as
//! `Σ_d (x_d − y_d)²`, which is exact for `x = y`, rather than OTT's `‖x‖² + ‖y‖² − 2⟨x, y⟩`)
//! and cosine `1 − ⟨x, y⟩ / (‖x‖‖y‖ + 1e-8)` (OTT's `Cosine` with its default ridge).

use serde::{Deserialize, Serialize};

use super::error::OtError;

/// Ridge added to the cosine denominator, as OTT-JAX's `costs.Cosine()` default.
pub const COSINE_RIDGE: f32 = 1e-8;

/// A ground cost between two points of the same dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostFn {
    /// `‖x − y‖²`.
    #[default]
    SqEuclidean,
    /// `1 − ⟨x, y⟩ / (‖x‖‖y‖ + 1e-8)`.
    Cosine,
}

/// `Σ term(xᵢ, yᵢ)` summed in 8 interleaved lanes (then pairwise), a fixed order that the
/// compiler turns into SIMD; one running sum would serialise on its additions.
#[inline(always)]
fn lanes_sum(x: &[f32], y: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, xr) = x.split_at(x.len() - x.len() % 8);
    let (yc, yr) = y.split_at(xc.len());
    for (xs, ys) in xc.chunks_exact(8).zip(yc.chunks_exact(8)) {
        for ((a, &u), &v) in acc.iter_mut().zip(xs).zip(ys) {
            *a += term(u, v);
        }
    }
    let mut tail = 0.0f32;
    for (&u, &v) in xr.iter().zip(yr) {
        tail += term(u, v);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

impl CostFn {
    /// The cost between two points of equal length.
    #[inline]
    pub fn eval(self, x: &[f32], y: &[f32]) -> f32 {
        match self {
            CostFn::SqEuclidean => lanes_sum(x, y, |a, b| {
                let d = a - b;
                d * d
            }),
            CostFn::Cosine => {
                let xy = lanes_sum(x, y, |a, b| a * b);
                let xx = lanes_sum(x, x, |a, b| a * b);
                let yy = lanes_sum(y, y, |a, b| a * b);
                1.0 - xy / (xx.sqrt() * yy.sqrt() + COSINE_RIDGE)
            }
        }
    }

    /// Adds `scale · ∂c(x, y)/∂x` to `out` (same length as `x`).
    ///
    /// For the cosine cost at `x = 0` the term through `x/‖x‖` is taken as zero.
    pub fn add_grad_x(self, x: &[f32], y: &[f32], scale: f32, out: &mut [f32]) {
        match self {
            CostFn::SqEuclidean => {
                for ((o, a), b) in out.iter_mut().zip(x).zip(y) {
                    *o += scale * 2.0 * (a - b);
                }
            }
            CostFn::Cosine => {
                let (mut xy, mut xx, mut yy) = (0.0f32, 0.0f32, 0.0f32);
                for (a, b) in x.iter().zip(y) {
                    xy += a * b;
                    xx += a * a;
                    yy += b * b;
                }
                let (nx, ny) = (xx.sqrt(), yy.sqrt());
                let s = nx * ny + COSINE_RIDGE;
                // c = 1 − xy/s ⇒ ∂c/∂x = −y/s + xy·‖y‖·x / (‖x‖ s²).
                let coef_x = if nx > 0.0 {
                    xy * ny / (nx * s * s)
                } else {
                    0.0
                };
                for ((o, a), b) in out.iter_mut().zip(x).zip(y) {
                    *o += scale * (-b / s + coef_x * a);
                }
            }
        }
    }
}

/// A point cloud: `n` points of dimension `dim`, row-major in `data` (`data.len() == n·dim`).
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    pub data: &'a [f32],
    pub n: usize,
    pub dim: usize,
}

impl<'a> Points<'a> {
    /// A view of `data` as `n × dim` points (checked by the solvers, not here).
    pub fn new(data: &'a [f32], n: usize, dim: usize) -> Self {
        Points { data, n, dim }
    }

    /// Point `i` (`i < n`; callers iterate within the checked shape).
    #[inline]
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Checks shape and values: non-empty, `data.len() == n·dim`, `dim ≥ 1`, all finite.
    pub(crate) fn check(&self, arg: &str) -> Result<(), OtError> {
        if self.n == 0 {
            return Err(OtError::Empty {
                arg: arg.to_string(),
                what: "point",
            });
        }
        if self.dim == 0 {
            return Err(OtError::Shape {
                arg: arg.to_string(),
                expected: "dimension >= 1".to_string(),
                got: "dimension 0".to_string(),
            });
        }
        let expected = self.n.checked_mul(self.dim);
        if expected != Some(self.data.len()) {
            return Err(OtError::Shape {
                arg: arg.to_string(),
                expected: format!(
                    "{} values ({} points × dimension {})",
                    self.n.saturating_mul(self.dim),
                    self.n,
                    self.dim
                ),
                got: format!("{} values", self.data.len()),
            });
        }
        if let Some(k) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(OtError::NonFinitePoint {
                arg: arg.to_string(),
                point: k / self.dim,
                coord: k % self.dim,
                value: self.data[k],
            });
        }
        Ok(())
    }
}

/// Returns the weights to use for `n` points: uniform `1/n` when `w` is empty, else `w`
/// after checking its length and values. Returns the weights and their total mass (f64).
pub(crate) fn check_weights(arg: &str, w: &[f32], n: usize) -> Result<(Vec<f32>, f64), OtError> {
    if w.is_empty() {
        return Ok((vec![1.0 / n as f32; n], 1.0));
    }
    if w.len() != n {
        return Err(OtError::Shape {
            arg: arg.to_string(),
            expected: format!("{n} weights (one per point) or none for uniform"),
            got: format!("{} weights", w.len()),
        });
    }
    let mut mass = 0.0f64;
    for (i, &v) in w.iter().enumerate() {
        if !v.is_finite() {
            return Err(OtError::NonFiniteWeight {
                arg: arg.to_string(),
                index: i,
                value: v,
            });
        }
        if v < 0.0 {
            return Err(OtError::NegativeWeight {
                arg: arg.to_string(),
                index: i,
                value: v,
            });
        }
        mass += v as f64;
    }
    if mass <= 0.0 {
        return Err(OtError::ZeroMass {
            arg: arg.to_string(),
        });
    }
    Ok((w.to_vec(), mass))
}

/// Relative tolerance on equal masses (balanced problems, probability vectors).
pub const MASS_TOLERANCE: f64 = 1e-4;

/// `true` when `mass` and `expected` agree within [`MASS_TOLERANCE`] (relative).
pub(crate) fn same_mass(mass: f64, expected: f64) -> bool {
    (mass - expected).abs() <= MASS_TOLERANCE * mass.abs().max(expected.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_by_hand() {
        assert_eq!(CostFn::SqEuclidean.eval(&[1.0, 2.0], &[4.0, 6.0]), 25.0);
        let c = CostFn::Cosine.eval(&[1.0, 0.0], &[0.0, 2.0]);
        assert!((c - 1.0).abs() < 1e-7);
        let c = CostFn::Cosine.eval(&[1.0, 1.0], &[2.0, 2.0]);
        assert!(c.abs() < 1e-6);
        // A zero vector is at cosine distance 1 from everything, without NaN.
        assert_eq!(CostFn::Cosine.eval(&[0.0, 0.0], &[1.0, 2.0]), 1.0);
    }

    #[test]
    fn cost_gradients_match_finite_differences() {
        let x = [0.3f32, -1.2, 0.7];
        let y = [1.1f32, 0.4, -0.5];
        for cost in [CostFn::SqEuclidean, CostFn::Cosine] {
            let mut g = [0.0f32; 3];
            cost.add_grad_x(&x, &y, 1.0, &mut g);
            for d in 0..3 {
                let h = 1e-2f32;
                let (mut xp, mut xm) = (x, x);
                xp[d] += h;
                xm[d] -= h;
                let fd = (cost.eval(&xp, &y) - cost.eval(&xm, &y)) / (2.0 * h);
                assert!(
                    (fd - g[d]).abs() < 2e-3,
                    "{cost:?} d={d}: fd {fd} vs {}",
                    g[d]
                );
            }
        }
    }

    #[test]
    fn weights_checks() {
        assert_eq!(check_weights("a", &[], 4).unwrap().0, vec![0.25; 4]);
        assert!(matches!(
            check_weights("a", &[1.0], 2),
            Err(OtError::Shape { .. })
        ));
        assert!(matches!(
            check_weights("a", &[1.0, -0.1], 2),
            Err(OtError::NegativeWeight { index: 1, .. })
        ));
        assert!(matches!(
            check_weights("a", &[f32::NAN, 1.0], 2),
            Err(OtError::NonFiniteWeight { index: 0, .. })
        ));
        assert!(matches!(
            check_weights("a", &[0.0, 0.0], 2),
            Err(OtError::ZeroMass { .. })
        ));
    }

    #[test]
    fn points_checks() {
        let data = [0.0f32, 1.0, 2.0, f32::INFINITY];
        let e = Points::new(&data, 2, 2).check("x").unwrap_err();
        assert_eq!(
            e,
            OtError::NonFinitePoint {
                arg: "x".into(),
                point: 1,
                coord: 1,
                value: f32::INFINITY
            }
        );
        assert!(e.to_string().contains("`x` point 1, coordinate 1"));
        assert!(matches!(
            Points::new(&data, 3, 2).check("x"),
            Err(OtError::Shape { .. })
        ));
        assert!(matches!(
            Points::new(&[], 0, 2).check("y"),
            Err(OtError::Empty { .. })
        ));
    }
}
