//! How far apart two sets of scores are: AUC (Mann–Whitney, ties count half), Cohen's d
//! (pooled standard deviation) and seeded bootstrap 95% intervals over items.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::core::stats::percentile_interval;

/// P(a > b) + ½ P(a = b) for a drawn from `a` and b from `b`, by ranks (average ranks for
/// ties). None when either side is empty.
pub fn auc(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        rank_sum_a += mean_rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    Some((rank_sum_a - na * (na + 1.0) / 2.0) / (na * nb))
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = if x.len() > 1 {
        x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var)
}

/// (mean a − mean b) / pooled standard deviation. None when a side has fewer than two
/// values or both sides are constant (the ratio is undefined).
pub fn cohens_d(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let pooled = (((na - 1.0) * va + (nb - 1.0) * vb) / (na + nb - 2.0)).sqrt();
    (pooled > 0.0).then(|| (ma - mb) / pooled)
}

/// Honest scores against one manipulation's, item by item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub auc: Option<f64>,
    pub cohens_d: Option<f64>,
    pub ci95: Ci95,
    pub n: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ci95 {
    pub auc: Option<[f64; 2]>,
    pub cohens_d: Option<[f64; 2]>,
}

/// Compares `honest[i]` with `other[i]` (the same item's manipulated report). Intervals
/// are percentile bootstrap intervals over `resamples` resamplings of the items (the same
/// items on both sides, since both scores of an item share its peer report), seeded.
pub fn compare(honest: &[f64], other: &[f64], resamples: usize, seed: u64) -> Comparison {
    debug_assert_eq!(honest.len(), other.len());
    let n = honest.len().min(other.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut aucs = Vec::with_capacity(resamples);
    let mut ds = Vec::with_capacity(resamples);
    let (mut h, mut o) = (vec![0.0; n], vec![0.0; n]);
    if n > 0 {
        for _ in 0..resamples {
            for k in 0..n {
                let i = rng.random_range(0..n);
                h[k] = honest[i];
                o[k] = other[i];
            }
            aucs.extend(auc(&h, &o));
            ds.extend(cohens_d(&h, &o));
        }
    }
    Comparison {
        auc: auc(&honest[..n], &other[..n]),
        cohens_d: cohens_d(&honest[..n], &other[..n]),
        ci95: Ci95 {
            auc: percentile_interval(aucs),
            cohens_d: percentile_interval(ds),
        },
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_and_half_ties() {
        // Pairs (a, b): 3>1, 3>2, 2>1, 2=2 → (3 + 0.5) / 4.
        assert_eq!(auc(&[3.0, 2.0], &[1.0, 2.0]), Some(3.5 / 4.0));
        assert_eq!(auc(&[5.0, 6.0], &[1.0, 2.0, 3.0]), Some(1.0));
        assert_eq!(auc(&[1.0], &[2.0]), Some(0.0));
        assert_eq!(auc(&[], &[2.0]), None);
    }

    #[test]
    fn cohens_d_is_the_standardised_mean_difference() {
        // Both sides have variance 1 (sample), means 2 apart.
        let d = cohens_d(&[1.0, 2.0, 3.0], &[-1.0, 0.0, 1.0]).unwrap();
        assert!((d - 2.0).abs() < 1e-12, "{d}");
        assert_eq!(cohens_d(&[1.0, 1.0], &[1.0, 1.0]), None);
        assert_eq!(cohens_d(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn bootstrap_intervals_hold_the_estimate_and_are_seeded() {
        let honest: Vec<f64> = (0..60).map(|i| (i % 7) as f64 + 1.0).collect();
        let other: Vec<f64> = (0..60).map(|i| (i % 5) as f64).collect();
        let c = compare(&honest, &other, 500, 3);
        let [lo, hi] = c.ci95.auc.unwrap();
        let auc = c.auc.unwrap();
        assert!(lo <= auc && auc <= hi && lo < hi, "{c:?}");
        let [lo, hi] = c.ci95.cohens_d.unwrap();
        let d = c.cohens_d.unwrap();
        assert!(lo <= d && d <= hi && lo < hi, "{c:?}");
        assert_eq!(c, compare(&honest, &other, 500, 3));
        assert_ne!(c.ci95, compare(&honest, &other, 500, 4).ci95);
        assert_eq!(c.n, 60);
    }
}
