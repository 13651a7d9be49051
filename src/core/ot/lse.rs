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

/// `exp(x)` in f32 without branches or calls, so loops over slices vectorise: Cody–Waite
/// range reduction `x = k ln 2 + r`, |r| ≤ ln 2 / 2, a degree-6 Taylor polynomial for `exp(r)`
/// (truncation below 2e-8 relative there) and `2^k` assembled in the exponent bits. Relative
/// error ≲ 2e-7 (a few ulp) for x in [−87, 88]; below −87 (and for −∞) it returns 0, where the
/// true value is under 2e-38 — the log-sum-exps that use it sum terms of at least 1.
#[inline(always)]
pub(crate) fn exp_fast(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that k·LN2_HI is exact for |k| < 2^9
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // max/min, not `clamp`: they map −∞ (a zero weight's potential) into range without a
    // branch, and this is the form measured to vectorise
    #[allow(clippy::manual_clamp)]
    let clamped = x.max(-87.0).min(88.0);
    // Round to nearest by adding 1.5·2²³: the sum's low mantissa bits then hold k itself,
    // read back with integer arithmetic. (`f32::round` is a libm call on baseline x86-64,
    // and `as i32` saturates; either would stop the loop from vectorising.)
    const ROUNDER: f32 = 12_582_912.0;
    let t = clamped * LOG2_E + ROUNDER;
    let k = t - ROUNDER;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let biased = t
        .to_bits()
        .wrapping_sub(ROUNDER.to_bits())
        .wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    if x < -87.0 {
        0.0
    } else {
        p * scale
    }
}

#[cfg(test)]
mod exp_tests {
    use super::exp_fast;

    #[test]
    fn exp_fast_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_fast(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_731;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_fast(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_fast(-100.0), 0.0);
        assert_eq!(exp_fast(0.0), 1.0);
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
