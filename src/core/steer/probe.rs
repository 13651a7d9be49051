//! Linear probes: multinomial logistic regression with an L2 penalty, the classifier the
//! paper (and scikit-learn's `LogisticRegression`, whose objective this is) uses to ask
//! "can the concept still be read off the embeddings?".
//!
//! Objective, as scikit-learn's with `C`: `C · Σ_i CE(softmax(W x_i + b), y_i) + ½‖W‖²`
//! (the intercept is not penalised), divided here by `C·n` so the step size does not
//! depend on n. It is smooth and strongly convex, so it is minimised by Nesterov's
//! accelerated gradient with the fixed step 1/L, L = ½·λ_max(X̃ᵀX̃/n) + 1/(C·n) (X̃ = X with
//! a column of ones; ½ bounds the softmax Hessian) and adaptive restart
//! (O'Donoghue & Candès). Deterministic: the same data give the same weights everywhere.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::SteerError;
use crate::core::matrix::Matrix;

/// How to fit a probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeOptions {
    /// Inverse regularisation strength, as scikit-learn's `C` (default 1).
    pub c: f64,
    /// Default 2000.
    pub max_iter: usize,
    /// Stop when the largest gradient entry is below this (default 1e-5).
    pub tol: f64,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            c: 1.0,
            max_iter: 2000,
            tol: 1e-5,
        }
    }
}

/// A fitted linear classifier over `dim` features and `classes` classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearProbe {
    pub classes: usize,
    pub dim: usize,
    /// `classes` rows of `dim` weights.
    pub weights: Vec<Vec<f64>>,
    pub bias: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
}

/// A random split of `n` rows into (train, test) row indices, reproducible from `seed`.
pub fn train_test_split(
    n: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), SteerError> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(SteerError::Option {
            name: "test_fraction",
            value: test_fraction.to_string(),
            expected: "a number strictly between 0 and 1".into(),
        });
    }
    if n < 2 {
        return Err(SteerError::Option {
            name: "x",
            value: format!("{n} rows"),
            expected: "at least 2 rows to hold some out".into(),
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_test = ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1);
    let test = order.split_off(n - n_test);
    Ok((order, test))
}

fn softmax_in_place(logits: &mut [f64]) {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for l in logits.iter_mut() {
        *l = (*l - max).exp();
        sum += *l;
    }
    logits.iter_mut().for_each(|l| *l /= sum);
}

/// Parameters as one flat vector: `classes × dim` weights, then `classes` biases.
struct Problem<'a> {
    x: &'a Matrix,
    rows: &'a [usize],
    labels: &'a [usize],
    classes: usize,
    alpha: f64,
}

impl Problem<'_> {
    fn logits(&self, theta: &[f64], row: &[f32], out: &mut [f64]) {
        let d = self.x.cols;
        let bias = &theta[self.classes * d..];
        for (c, o) in out.iter_mut().enumerate() {
            let w = &theta[c * d..(c + 1) * d];
            *o = bias[c] + w.iter().zip(row).map(|(w, v)| w * *v as f64).sum::<f64>();
        }
    }

    /// Objective and gradient at `theta`.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let d = self.x.cols;
        let n = self.rows.len() as f64;
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut p = vec![0.0; self.classes];
        let mut loss = 0.0;
        for &r in self.rows {
            let row = self.x.row(r);
            let y = self.labels[r];
            self.logits(theta, row, &mut p);
            softmax_in_place(&mut p);
            loss -= p[y].max(f64::MIN_POSITIVE).ln();
            p[y] -= 1.0;
            for (c, &g) in p.iter().enumerate() {
                let gw = &mut grad[c * d..(c + 1) * d];
                for (gw, v) in gw.iter_mut().zip(row) {
                    *gw += g * *v as f64;
                }
                grad[self.classes * d + c] += g;
            }
        }
        grad.iter_mut().for_each(|g| *g /= n);
        let weights = self.classes * d;
        let mut penalty = 0.0;
        for (g, t) in grad[..weights].iter_mut().zip(&theta[..weights]) {
            *g += self.alpha * t;
            penalty += t * t;
        }
        loss / n + 0.5 * self.alpha * penalty
    }

    /// λ_max of X̃ᵀX̃/n by power iteration (X̃ = rows with a trailing 1).
    fn gram_top_eigenvalue(&self) -> f64 {
        let d = self.x.cols;
        let n = self.rows.len() as f64;
        let mut v = vec![1.0 / ((d + 1) as f64).sqrt(); d + 1];
        let mut lambda = 0.0;
        for _ in 0..100 {
            let mut next = vec![0.0; d + 1];
            for &r in self.rows {
                let row = self.x.row(r);
                let dot = v[d] + row.iter().zip(&v).map(|(a, b)| *a as f64 * b).sum::<f64>();
                for (o, a) in next.iter_mut().zip(row) {
                    *o += dot * *a as f64;
                }
                next[d] += dot;
            }
            next.iter_mut().for_each(|o| *o /= n);
            let norm = next.iter().map(|o| o * o).sum::<f64>().sqrt();
            if norm == 0.0 {
                return 0.0;
            }
            let converged = (norm - lambda).abs() <= 1e-9 * norm;
            lambda = norm;
            v = next.into_iter().map(|o| o / norm).collect();
            if converged {
                break;
            }
        }
        lambda
    }
}

impl LinearProbe {
    /// Fits on every row of `x`; `labels[i] < classes`.
    pub fn fit(
        x: &Matrix,
        labels: &[usize],
        classes: usize,
        options: &ProbeOptions,
    ) -> Result<LinearProbe, SteerError> {
        let rows: Vec<usize> = (0..x.rows).collect();
        LinearProbe::fit_rows(x, labels, &rows, classes, options)
    }

    /// Fits on the rows `rows` of `x` (indices into `x` and `labels`).
    pub fn fit_rows(
        x: &Matrix,
        labels: &[usize],
        rows: &[usize],
        classes: usize,
        options: &ProbeOptions,
    ) -> Result<LinearProbe, SteerError> {
        if !(options.c.is_finite() && options.c > 0.0) {
            return Err(SteerError::Option {
                name: "c",
                value: options.c.to_string(),
                expected: "a finite number > 0".into(),
            });
        }
        if rows.is_empty() {
            return Err(SteerError::Empty {
                arg: "x",
                expected: "at least one training row for the probe",
            });
        }
        if classes < 2 {
            return Err(SteerError::Option {
                name: "classes",
                value: classes.to_string(),
                expected: "at least 2 classes".into(),
            });
        }
        if let Some(&r) = rows.iter().find(|&&r| labels[r] >= classes) {
            return Err(SteerError::Option {
                name: "labels",
                value: format!("{} at row {r}", labels[r]),
                expected: format!("a class below {classes}"),
            });
        }
        let d = x.cols;
        let problem = Problem {
            x,
            rows,
            labels,
            classes,
            alpha: 1.0 / (options.c * rows.len() as f64),
        };
        let lipschitz = 0.5 * problem.gram_top_eigenvalue() * 1.05 + problem.alpha;
        let step = 1.0 / lipschitz;
        let size = classes * (d + 1);
        let mut theta = vec![0.0; size];
        let mut previous = theta.clone();
        let mut point = theta.clone();
        let mut grad = vec![0.0; size];
        let mut momentum = 1.0f64;
        let mut value = f64::INFINITY;
        let mut iterations = 0;
        let mut converged = false;
        while iterations < options.max_iter {
            iterations += 1;
            problem.eval(&point, &mut grad);
            if grad.iter().all(|g| g.abs() < options.tol) {
                theta.copy_from_slice(&point);
                converged = true;
                break;
            }
            previous.copy_from_slice(&theta);
            for ((t, p), g) in theta.iter_mut().zip(&point).zip(&grad) {
                *t = p - step * g;
            }
            let mut scratch = vec![0.0; size];
            let new_value = problem.eval(&theta, &mut scratch);
            // Adaptive restart: drop the momentum when the objective goes up.
            let next_momentum = if new_value > value {
                1.0
            } else {
                (1.0 + (1.0 + 4.0 * momentum * momentum).sqrt()) / 2.0
            };
            let beta = if new_value > value {
                0.0
            } else {
                (momentum - 1.0) / next_momentum
            };
            value = new_value;
            momentum = next_momentum;
            for ((p, t), q) in point.iter_mut().zip(&theta).zip(&previous) {
                *p = t + beta * (t - q);
            }
        }
        if theta.iter().any(|v| !v.is_finite()) {
            return Err(SteerError::Numerical(
                "the probe's weights diverged (non-finite)".into(),
            ));
        }
        Ok(LinearProbe {
            classes,
            dim: d,
            weights: (0..classes)
                .map(|c| theta[c * d..(c + 1) * d].to_vec())
                .collect(),
            bias: theta[classes * d..].to_vec(),
            iterations,
            converged,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.weights.len() != self.classes
            || self.weights.iter().any(|w| w.len() != self.dim)
            || self.bias.len() != self.classes
        {
            return Err(format!(
                "`classifier` weights must be {} rows of {} numbers and `bias` {} numbers",
                self.classes, self.dim, self.classes
            ));
        }
        if self
            .weights
            .iter()
            .flatten()
            .chain(&self.bias)
            .any(|v| !v.is_finite())
        {
            return Err("`classifier` weights must be finite".into());
        }
        Ok(())
    }

    /// The most likely class of one row (ties to the lower class).
    pub fn predict(&self, row: &[f32]) -> usize {
        let mut best = (0, f64::NEG_INFINITY);
        for (c, (w, b)) in self.weights.iter().zip(&self.bias).enumerate() {
            let logit = b + w.iter().zip(row).map(|(w, v)| w * *v as f64).sum::<f64>();
            if logit > best.1 {
                best = (c, logit);
            }
        }
        best.0
    }

    /// Fraction of `rows` of `x` whose predicted class equals `labels`.
    pub fn accuracy(&self, x: &Matrix, labels: &[usize], rows: &[usize]) -> f64 {
        if rows.is_empty() {
            return f64::NAN;
        }
        let right = rows
            .iter()
            .filter(|&&r| self.predict(x.row(r)) == labels[r])
            .count();
        right as f64 / rows.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (Matrix, Vec<usize>) {
        // Three separable clusters in 2-D.
        let centres = [(0.0, 3.0), (3.0, 0.0), (-3.0, -3.0)];
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..60 {
            let (cx, cy) = centres[i % 3];
            let jitter = ((i * 37 % 11) as f32 - 5.0) / 10.0;
            data.extend([cx + jitter, cy - jitter]);
            labels.push(i % 3);
        }
        (Matrix::new(60, 2, data, "x").unwrap(), labels)
    }

    #[test]
    fn separable_classes_are_learned() {
        let (x, y) = blobs();
        let probe = LinearProbe::fit(&x, &y, 3, &ProbeOptions::default()).unwrap();
        let rows: Vec<usize> = (0..60).collect();
        assert_eq!(probe.accuracy(&x, &y, &rows), 1.0);
        assert!(probe.converged, "{} iterations", probe.iterations);
    }

    #[test]
    fn the_gradient_vanishes_at_the_optimum() {
        // The first-order optimality condition of the penalised objective, checked
        // independently of the stopping rule: Σ (p − onehot) x / n + W / (C n) = 0.
        let (x, y) = blobs();
        let options = ProbeOptions {
            c: 0.1,
            ..ProbeOptions::default()
        };
        let probe = LinearProbe::fit(&x, &y, 3, &options).unwrap();
        let rows: Vec<usize> = (0..60).collect();
        let problem = Problem {
            x: &x,
            rows: &rows,
            labels: &y,
            classes: 3,
            alpha: 1.0 / (0.1 * 60.0),
        };
        let mut theta: Vec<f64> = probe.weights.concat();
        theta.extend(&probe.bias);
        let mut grad = vec![0.0; theta.len()];
        problem.eval(&theta, &mut grad);
        assert!(grad.iter().all(|g| g.abs() < 1e-5), "{grad:?}");
    }

    #[test]
    fn splits_are_reproducible_and_disjoint() {
        let (a_train, a_test) = train_test_split(10, 0.3, 7).unwrap();
        let (b_train, b_test) = train_test_split(10, 0.3, 7).unwrap();
        assert_eq!((&a_train, &a_test), (&b_train, &b_test));
        assert_eq!(a_test.len(), 3);
        let mut all: Vec<usize> = a_train.iter().chain(&a_test).copied().collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(train_test_split(10, 1.0, 0).is_err());
        assert!(train_test_split(1, 0.5, 0).is_err());
    }
}
