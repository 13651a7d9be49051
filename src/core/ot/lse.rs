//! Streaming log-sum-exp in f32: one running maximum and one running sum, as a GPU thread
//! would keep them while it walks a row of on-the-fly costs.

/// Running `log Σ exp(v)` over the values pushed so far; `-∞` values are skipped (they
/// contribute `exp(-∞) = 0`), so zero weights (potentials of `-∞`) never produce NaN.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lse {
    max: f32,
    sum: f32,
}

impl Lse {
    pub(crate) const EMPTY: Lse = Lse {
        max: f32::NEG_INFINITY,
        sum: 0.0,
    };

    #[inline]
    pub(crate) fn push(&mut self, v: f32) {
        if v == f32::NEG_INFINITY {
            return;
        }
        if v > self.max {
            self.sum = self.sum * (self.max - v).exp() + 1.0;
            self.max = v;
        } else {
            self.sum += (v - self.max).exp();
        }
    }

    /// `log Σ exp(v)`: `-∞` when nothing (finite) was pushed, NaN when a NaN was.
    #[inline]
    pub(crate) fn value(&self) -> f32 {
        if self.sum == 0.0 {
            f32::NEG_INFINITY
        } else {
            self.max + self.sum.ln()
        }
    }
}

/// OTT-JAX's guard in `update_potential`: a non-finite log-sum-exp counts as 0.
#[inline]
pub(crate) fn finite_or_zero(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// `(Σ |d|^p)^(1/p)` of the differences `d`, accumulated in f64.
pub(crate) fn p_norm(diffs: impl Iterator<Item = f32>, p: f32) -> f32 {
    if p == 1.0 {
        diffs.map(|d| (d as f64).abs()).sum::<f64>() as f32
    } else {
        let p = p as f64;
        let s: f64 = diffs.map(|d| (d as f64).abs().powf(p)).sum();
        s.powf(1.0 / p) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lse_is_stable_and_skips_minus_infinity() {
        let mut l = Lse::EMPTY;
        assert_eq!(l.value(), f32::NEG_INFINITY);
        for v in [1000.0f32, f32::NEG_INFINITY, 1000.0, 999.0] {
            l.push(v);
        }
        let want = 1000.0 + (2.0f32 + (-1.0f32).exp()).ln();
        assert!((l.value() - want).abs() < 1e-4);
        let mut l = Lse::EMPTY;
        for v in [-1000.0f32, -1001.0] {
            l.push(v);
        }
        assert!((l.value() - (-1000.0 + (1.0f32 + (-1.0f32).exp()).ln())).abs() < 1e-4);
    }

    #[test]
    fn norms() {
        assert_eq!(p_norm([3.0f32, -4.0].into_iter(), 1.0), 7.0);
        assert!((p_norm([3.0f32, -4.0].into_iter(), 2.0) - 5.0).abs() < 1e-6);
    }
}
