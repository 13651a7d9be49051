//! Chance levels: a metric's expected score when the rows of y are paired with those of x at
//! random (a uniform permutation), exact where there is a closed form.
//!
//! Under a random pairing, row i's neighbour list in y is a uniformly random ordered list of
//! k of the n − 1 other rows, whatever x's table is (the permutation maps y's list for the
//! row paired with i onto i's others one to one). Each neighbourhood metric averages a score
//! per row, so its chance level is the mean of that row score's expectation:
//! - `mutual_knn`: k/(n − 1) ([`super::mutual_knn_chance`]).
//! - `cycle_knn`: row i scores when one of its k random neighbours j has i among x's
//!   neighbours of j; with r_i such rows j, 1 − C(n − 1 − r_i, k) / C(n − 1, k)
//!   ([`cycle_knn_chance`], from x's table).
//! - `lcs_knn`: the lists share m rows, m hypergeometric; their order in y is a uniform
//!   permutation of their order in x, and the LCS is its longest increasing subsequence,
//!   whose mean is Σ_λ λ₁ f_λ² / m! over the shapes λ ⊢ m (RSK) ([`lcs_knn_chance`]).
//! - `edit_distance_knn` has no closed form (the distance depends on where the shared rows
//!   sit, not only on their order): none is given.
//!
//! The kernel metrics: `cka` in `kernel.rs` (exact, data-dependent), `unbiased_cka` 0 (the
//! unbiased HSIC averages exactly 0 over permutations); `cknna` (its mask moves with the
//! pairing) and `svcca` have none.

use super::knn::Knn;

/// The largest k for which [`lcs_knn_chance`] is given: it sums over the partitions of every
/// m ≤ k (204,226 of 50; 37,338 of 40, a few milliseconds).
pub const LCS_CHANCE_MAX_K: usize = 40;

/// ln C(a, b).
fn ln_choose(a: usize, b: usize) -> f64 {
    (1..=b).map(|i| ((a - b + i) as f64 / i as f64).ln()).sum()
}

/// `cycle_knn`'s expected score when y's rows are paired at random, given x's table `a`
/// (the table whose rows are searched for i: `cycle_knn(a, b)`).
pub fn cycle_knn_chance(a: &Knn) -> f64 {
    let others = a.n - 1;
    let mut reached = vec![0usize; a.n];
    for &j in &a.indices {
        reached[j as usize] += 1;
    }
    let miss = |r: usize| -> f64 {
        // C(others − r, k) / C(others, k) as a product, 0 when fewer than k rows are left
        (0..a.k)
            .map(|t| (others.saturating_sub(r + t)) as f64 / (others - t) as f64)
            .product()
    };
    reached.iter().map(|&r| 1.0 - miss(r)).sum::<f64>() / a.n as f64
}

/// Calls `visit` with every partition of `m` (parts in decreasing order).
fn partitions(m: usize, visit: &mut impl FnMut(&[usize])) {
    fn go(left: usize, largest: usize, parts: &mut Vec<usize>, visit: &mut impl FnMut(&[usize])) {
        if left == 0 {
            visit(parts);
            return;
        }
        for p in (1..=largest.min(left)).rev() {
            parts.push(p);
            go(left - p, p, parts, visit);
            parts.pop();
        }
    }
    go(m, m, &mut Vec::with_capacity(m), visit);
}

/// The mean length of the longest increasing subsequence of a uniform permutation of m:
/// Σ over shapes λ ⊢ m of λ₁ · f_λ² / m!, f_λ by the hook length formula.
pub fn expected_lis(m: usize) -> f64 {
    let ln_fact: f64 = (2..=m).map(|i| (i as f64).ln()).sum();
    let mut total = 0.0;
    partitions(m, &mut |rows| {
        // hook of box (i, j): arm (rows[i] − j − 1) + leg (rows below i at least j + 1 long) + 1
        let mut ln_hooks = 0.0;
        for (i, &len) in rows.iter().enumerate() {
            for j in 0..len {
                let leg = rows[i + 1..].iter().take_while(|&&l| l > j).count();
                ln_hooks += ((len - j + leg) as f64).ln();
            }
        }
        total += rows.first().copied().unwrap_or(0) as f64 * (ln_fact - 2.0 * ln_hooks).exp();
    });
    total
}

/// `lcs_knn`'s expected score when y's rows are paired at random (n rows, k neighbours), or
/// `None` beyond [`LCS_CHANCE_MAX_K`].
pub fn lcs_knn_chance(k: usize, n: usize) -> Option<f64> {
    if k > LCS_CHANCE_MAX_K || k == 0 || k >= n {
        return None;
    }
    let others = n - 1;
    let all = ln_choose(others, k);
    // m shared rows: C(k, m) C(others − k, k − m) / C(others, k)
    let shared = (k.saturating_mul(2).saturating_sub(others))..=k;
    Some(
        shared
            .map(|m| {
                let p = (ln_choose(k, m) + ln_choose(others - k, k - m) - all).exp();
                p * expected_lis(m)
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::align::permutations;

    #[test]
    fn expected_lis_is_the_mean_over_every_permutation() {
        for m in 0..=7 {
            let perms = permutations(m);
            let mean = perms
                .iter()
                .map(|p| super::super::lcs_length(p, &(0..m as u32).collect::<Vec<_>>()) as f64)
                .sum::<f64>()
                / perms.len() as f64;
            assert!(
                (expected_lis(m) - mean).abs() < 1e-12,
                "m={m}: {} vs {mean}",
                expected_lis(m)
            );
        }
        assert!((expected_lis(3) - 2.0).abs() < 1e-12);
        // beyond brute force: it grows with m, below 2√m (Vershik–Kerov, Logan–Shepp)
        let means: Vec<f64> = (1..=LCS_CHANCE_MAX_K).map(expected_lis).collect();
        for (m, pair) in (2..).zip(means.windows(2)) {
            assert!(
                pair[1] > pair[0] && pair[1] < 2.0 * (m as f64).sqrt(),
                "m={m}: {pair:?}"
            );
        }
    }

    #[test]
    fn lcs_chance_is_the_mean_over_every_ordered_list() {
        // n − 1 = 5 other rows, k = 3: every ordered 3-list of 0..5 against (0, 1, 2)
        let (n, k) = (6, 3);
        let x = [0u32, 1, 2];
        let mut total = 0.0;
        let mut count = 0;
        for a in 0..5u32 {
            for b in (0..5u32).filter(|&b| b != a) {
                for c in (0..5u32).filter(|&c| c != a && c != b) {
                    total += super::super::lcs_length(&x, &[a, b, c]) as f64;
                    count += 1;
                }
            }
        }
        let want = total / count as f64;
        assert!((lcs_knn_chance(k, n).unwrap() - want).abs() < 1e-12);
        // k = n − 1: every row shares all k; the chance is the mean LIS of k
        assert!((lcs_knn_chance(11, 12).unwrap() - expected_lis(11)).abs() < 1e-12);
        assert_eq!(lcs_knn_chance(LCS_CHANCE_MAX_K + 1, 100), None);
    }

    #[test]
    fn cycle_chance_counts_how_often_each_row_is_reached() {
        // 4 rows, k = 1, x's table 0→1, 1→0, 2→0, 3→0: row 0 is reached by 3 rows, row 1 by
        // one, rows 2 and 3 by none. A random neighbour among 3 others reaches back with
        // probability 3/3, 1/3, 0, 0.
        let a = Knn {
            n: 4,
            k: 1,
            indices: vec![1, 0, 0, 0],
        };
        assert!((cycle_knn_chance(&a) - (1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-15);
    }
}
