//! Balance weights and anchor points: weighted k-means over item representations, the item
//! nearest each centroid, weighted by its cluster's share of balance weight (the reference
//! tutorial's `anchor_points.ipynb`, the paper's "IRT" and "correct." anchors).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{check_positive, Irt, TinyError};

/// `w_i = N / (n_sub · n_k)` for item i of subscenario k (of size n_k) among n_sub
/// subscenarios of N items, so that the balance-weighted mean over items is the mean of the
/// subscenarios' means (the reference's `balance_weights`). Items are numbered subscenario by
/// subscenario.
pub fn balance_weights(subscenario_sizes: &[usize]) -> Result<Vec<f64>, TinyError> {
    if subscenario_sizes.is_empty() || subscenario_sizes.contains(&0) {
        return Err(TinyError::Parameter {
            name: "subscenario sizes",
            value: format!("{subscenario_sizes:?}"),
            expected: "at least one subscenario, none empty".into(),
        });
    }
    let total: usize = subscenario_sizes.iter().sum();
    let n_sub = subscenario_sizes.len() as f64;
    Ok(subscenario_sizes
        .iter()
        .flat_map(|&n| std::iter::repeat_n(total as f64 / (n_sub * n as f64), n))
        .collect())
}

/// What each item looks like to the clustering.
#[derive(Debug, Clone, Copy)]
pub enum ItemFeatures<'a> {
    /// `[α_i, b_i]` from a fitted model (the paper's "IRT" anchors).
    Irt(&'a Irt),
    /// Item i's column of training answers, `models × items` row-major (the "correct."
    /// anchors).
    Answers { responses: &'a [f64], models: usize },
    /// Any representation: items × `features`, row-major.
    Matrix { x: &'a [f64], features: usize },
}

impl ItemFeatures<'_> {
    /// items × features, row-major.
    fn matrix(&self, items: usize) -> (Vec<f64>, usize) {
        match *self {
            ItemFeatures::Irt(irt) => {
                let f = irt.dim + 1;
                let mut x = Vec::with_capacity(items * f);
                for i in 0..items {
                    x.extend_from_slice(&irt.a[i * irt.dim..(i + 1) * irt.dim]);
                    x.push(irt.b[i]);
                }
                (x, f)
            }
            ItemFeatures::Answers { responses, models } => {
                let mut x = Vec::with_capacity(items * models);
                for i in 0..items {
                    x.extend((0..models).map(|m| responses[m * items + i]));
                }
                (x, models)
            }
            ItemFeatures::Matrix { x, features } => (x.to_vec(), features),
        }
    }
}

/// Anchor items (ascending) and their weights (summing to 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anchors {
    pub items: Vec<usize>,
    pub weights: Vec<f64>,
    /// The weighted within-cluster sum of squares of the clustering kept.
    pub inertia: f64,
}

/// `count` anchors among `items` items (with balance weights `bw`), by k-means weighted by
/// the normalised `bw`: `restarts` k-means++ starts (the paper keeps the best inertia of 5;
/// the tutorial runs 1), each refined by Lloyd's iterations (at most 300, until the centroids
/// move less than 1e-4 of the features' mean variance, sklearn's rule). Two clusters whose
/// nearest item is the same give one anchor with both weights.
pub fn select_anchors(
    features: ItemFeatures,
    bw: &[f64],
    count: usize,
    restarts: usize,
    seed: u64,
) -> Result<Anchors, TinyError> {
    let items = bw.len();
    check_positive("anchors", count)?;
    check_positive("restarts", restarts)?;
    if count > items {
        return Err(TinyError::Parameter {
            name: "anchors",
            value: count.to_string(),
            expected: format!("at most the number of items ({items})"),
        });
    }
    if let ItemFeatures::Irt(irt) = features {
        if irt.items() != items {
            return Err(TinyError::Length {
                name: "balance weights",
                got: items,
                expected: format!("{} (one per item of the IRT model)", irt.items()),
            });
        }
    }
    if let ItemFeatures::Answers { responses, models } = features {
        if models.checked_mul(items) != Some(responses.len()) {
            return Err(TinyError::Length {
                name: "responses",
                got: responses.len(),
                expected: format!("models {models} × items {items}"),
            });
        }
    }
    if let ItemFeatures::Matrix { x, features } = features {
        if features == 0 || x.len() != features * items || x.iter().any(|v| !v.is_finite()) {
            return Err(TinyError::Length {
                name: "item features",
                got: x.len(),
                expected: format!(
                    "{} finite values (items {items} × features {features})",
                    items * features
                ),
            });
        }
    }
    if let Some(w) = bw.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(TinyError::Parameter {
            name: "balance weights",
            value: w.to_string(),
            expected: "positive numbers".into(),
        });
    }
    let (x, f) = features.matrix(items);
    let total: f64 = bw.iter().sum();
    let w: Vec<f64> = bw.iter().map(|v| v / total).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(f64, Vec<usize>, Vec<f64>)> = None;
    for _ in 0..restarts {
        let centres = kmeans_plus_plus(&x, f, &w, count, &mut rng);
        let (inertia, labels, centres) = lloyd(&x, f, &w, centres);
        if best.as_ref().is_none_or(|b| inertia < b.0) {
            best = Some((inertia, labels, centres));
        }
    }
    let Some((inertia, labels, centres)) = best else {
        return Err(TinyError::Parameter {
            name: "restarts",
            value: "0".into(),
            expected: "at least 1".into(),
        });
    };
    let mut pairs: Vec<(usize, f64)> = (0..count)
        .map(|c| {
            let centre = &centres[c * f..(c + 1) * f];
            let nearest = (0..items)
                .min_by(|&p, &q| {
                    sq_dist(&x[p * f..(p + 1) * f], centre)
                        .total_cmp(&sq_dist(&x[q * f..(q + 1) * f], centre))
                })
                .unwrap_or(0);
            let weight: f64 = (0..items).filter(|&i| labels[i] == c).map(|i| w[i]).sum();
            (nearest, weight)
        })
        .collect();
    pairs.sort_by_key(|p| p.0);
    let mut anchors = Anchors {
        items: Vec::with_capacity(count),
        weights: Vec::with_capacity(count),
        inertia,
    };
    for (item, weight) in pairs {
        if anchors.items.last() == Some(&item) {
            if let Some(last) = anchors.weights.last_mut() {
                *last += weight;
            }
        } else {
            anchors.items.push(item);
            anchors.weights.push(weight);
        }
    }
    Ok(anchors)
}

fn sq_dist(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// Greedy weighted k-means++ (sklearn's: 2 + ln k candidates per step, each drawn with
/// probability ∝ weight × squared distance to the nearest centre, the one lowering the
/// potential most kept).
fn kmeans_plus_plus(x: &[f64], f: usize, w: &[f64], k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = w.len();
    let row = |i: usize| &x[i * f..(i + 1) * f];
    let draw = |rng: &mut ChaCha8Rng, mass: &[f64]| -> usize {
        let total: f64 = mass.iter().sum();
        if total <= 0.0 {
            return rng.random_range(0..n);
        }
        let mut u = rng.random::<f64>() * total;
        for (i, &m) in mass.iter().enumerate() {
            u -= m;
            if u <= 0.0 {
                return i;
            }
        }
        n - 1
    };
    let first = draw(rng, w);
    let mut centres: Vec<f64> = row(first).to_vec();
    let mut closest: Vec<f64> = (0..n).map(|i| sq_dist(row(i), row(first))).collect();
    let trials = 2 + (k as f64).ln() as usize;
    for _ in 1..k {
        let mass: Vec<f64> = closest.iter().zip(w).map(|(d, w)| d * w).collect();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let c = draw(rng, &mass);
            let updated: Vec<f64> = (0..n)
                .map(|i| closest[i].min(sq_dist(row(i), row(c))))
                .collect();
            let potential: f64 = updated.iter().zip(w).map(|(d, w)| d * w).sum();
            if best.as_ref().is_none_or(|b| potential < b.0) {
                best = Some((potential, c, updated));
            }
        }
        if let Some((_, c, updated)) = best {
            centres.extend_from_slice(row(c));
            closest = updated;
        }
    }
    centres
}

/// Weighted Lloyd iterations from `centres`: (inertia, labels, centres).
fn lloyd(x: &[f64], f: usize, w: &[f64], mut centres: Vec<f64>) -> (f64, Vec<usize>, Vec<f64>) {
    let n = w.len();
    let k = centres.len() / f;
    let row = |i: usize| &x[i * f..(i + 1) * f];
    // sklearn's tolerance: 1e-4 × the mean over features of the (unweighted) variance
    let mut var = 0.0;
    for c in 0..f {
        let mean = (0..n).map(|i| x[i * f + c]).sum::<f64>() / n as f64;
        var += (0..n).map(|i| (x[i * f + c] - mean).powi(2)).sum::<f64>() / n as f64;
    }
    let tol = 1e-4 * var / f as f64;
    let assign = |centres: &[f64]| -> Vec<usize> {
        (0..n)
            .map(|i| {
                (0..k)
                    .min_by(|&p, &q| {
                        sq_dist(row(i), &centres[p * f..(p + 1) * f])
                            .total_cmp(&sq_dist(row(i), &centres[q * f..(q + 1) * f]))
                    })
                    .unwrap_or(0)
            })
            .collect()
    };
    let mut labels = assign(&centres);
    for _ in 0..300 {
        let mut sums = vec![0.0; k * f];
        let mut mass = vec![0.0; k];
        for i in 0..n {
            let c = labels[i];
            mass[c] += w[i];
            for (s, v) in sums[c * f..(c + 1) * f].iter_mut().zip(row(i)) {
                *s += w[i] * v;
            }
        }
        let mut next = centres.clone();
        for c in 0..k {
            // an emptied cluster keeps its centre
            if mass[c] > 0.0 {
                for (nc, s) in next[c * f..(c + 1) * f]
                    .iter_mut()
                    .zip(&sums[c * f..(c + 1) * f])
                {
                    *nc = s / mass[c];
                }
            }
        }
        let shift = sq_dist(&next, &centres);
        centres = next;
        labels = assign(&centres);
        if shift <= tol {
            break;
        }
    }
    let inertia = (0..n)
        .map(|i| w[i] * sq_dist(row(i), &centres[labels[i] * f..(labels[i] + 1) * f]))
        .sum();
    (inertia, labels, centres)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_weights_make_the_weighted_mean_the_mean_of_subscenario_means() {
        let bw = balance_weights(&[1, 3]).unwrap();
        assert_eq!(bw, vec![2.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]);
        let y = [1.0, 0.0, 0.0, 1.0];
        let weighted: f64 = bw.iter().zip(y).map(|(w, y)| w * y).sum::<f64>() / 4.0;
        assert!((weighted - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-15);
        assert_eq!(balance_weights(&[5]).unwrap(), vec![1.0; 5]);
        assert!(balance_weights(&[2, 0]).is_err());
    }

    #[test]
    fn anchors_on_answer_columns_and_bad_counts() {
        // two groups of items answered alike: two anchors, one per group, weights by size
        let responses = [
            1.0, 1.0, 1.0, 0.0, 0.0, //
            1.0, 1.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 1.0, 1.0,
        ];
        let f = ItemFeatures::Answers {
            responses: &responses,
            models: 3,
        };
        let a = select_anchors(f, &[1.0; 5], 2, 3, 0).unwrap();
        assert_eq!(a.items.len(), 2);
        assert!(a.items[0] < 3 && a.items[1] >= 3, "{a:?}");
        assert!((a.weights[0] - 0.6).abs() < 1e-12 && (a.weights[1] - 0.4).abs() < 1e-12);
        assert!(select_anchors(f, &[1.0; 5], 6, 1, 0).is_err());
        assert!(select_anchors(f, &[1.0; 5], 0, 1, 0).is_err());
        assert!(select_anchors(f, &[1.0, 1.0, -1.0, 1.0, 1.0], 2, 1, 0).is_err());
    }
}
