//! The multidimensional 2PL IRT model: its item curve, the ability fit of a new model
//! (maximum likelihood, as the reference's `fit_theta`) and the item-parameter fit.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::{check_positive, check_scores, TinyError};

/// The reference's per-term clip of the logit.
const CLIP: f64 = 30.0;
/// The largest gradient entry at which [`fit_theta`] counts as converged (scipy's BFGS gtol).
const CONVERGED_GRADIENT: f64 = 1e-5;
/// An ability this far out in any dimension has run off (see [`ThetaFit::converged`]).
const RUNAWAY_THETA: f64 = 10.0;
/// The reference's guard inside the logarithms of the likelihood.
const LOG_EPS: f64 = 1e-10;

/// Item parameters of a D-dimensional 2PL model: discriminations `a` (items × D, row-major)
/// and difficulties `b` (one per item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Irt {
    pub dim: usize,
    pub a: Vec<f64>,
    pub b: Vec<f64>,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Irt {
    /// Checks the shapes: `a` holds `b.len()` rows of `dim`, all finite.
    pub fn new(dim: usize, a: Vec<f64>, b: Vec<f64>) -> Result<Irt, TinyError> {
        check_positive("dim", dim)?;
        if a.len() != b.len() * dim {
            return Err(TinyError::Length {
                name: "a",
                got: a.len(),
                expected: format!("{} (items {} × dim {dim})", b.len() * dim, b.len()),
            });
        }
        if let Some(v) = a.iter().chain(&b).find(|v| !v.is_finite()) {
            return Err(TinyError::Parameter {
                name: "IRT parameters",
                value: v.to_string(),
                expected: "finite numbers".into(),
            });
        }
        Ok(Irt { dim, a, b })
    }

    pub fn items(&self) -> usize {
        self.b.len()
    }

    fn alpha(&self, item: usize) -> &[f64] {
        &self.a[item * self.dim..(item + 1) * self.dim]
    }

    /// `Σ_d clip(α_id θ_d − b_i, −30, 30)`.
    pub fn logit(&self, theta: &[f64], item: usize) -> f64 {
        let b = self.b[item];
        self.alpha(item)
            .iter()
            .zip(theta)
            .map(|(a, t)| (a * t - b).clamp(-CLIP, CLIP))
            .sum()
    }

    /// P(item answered right | θ).
    pub fn prob(&self, theta: &[f64], item: usize) -> f64 {
        sigmoid(self.logit(theta, item))
    }

    /// The reference's negative log-likelihood of answers `y` on `items`, and its gradient.
    fn neg_log_like(&self, theta: &[f64], items: &[usize], y: &[f64], grad: &mut [f64]) -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut nll = 0.0;
        for (&i, &yi) in items.iter().zip(y) {
            let p = self.prob(theta, i);
            nll -= yi * (p + LOG_EPS).ln() + (1.0 - yi) * (1.0 - p + LOG_EPS).ln();
            // d nll / d logit, through P; clipped terms do not move
            let dz = (-yi / (p + LOG_EPS) + (1.0 - yi) / (1.0 - p + LOG_EPS)) * p * (1.0 - p);
            let b = self.b[i];
            for ((g, &a), &t) in grad.iter_mut().zip(self.alpha(i)).zip(theta) {
                if (a * t - b).abs() < CLIP {
                    *g += dz * a;
                }
            }
        }
        nll
    }
}

/// A new model's ability, fitted on its answers to some items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThetaFit {
    pub theta: Vec<f64>,
    /// The negative log-likelihood at `theta`.
    pub neg_log_like: f64,
    pub iterations: usize,
    /// Whether the gradient vanished (max |∂| ≤ 1e-5, scipy's tolerance) at a θ within ±10
    /// in every dimension (the training abilities have a standard-normal prior: a θ ten
    /// deviations out is running off, not converging). Answers that a
    /// hyperplane separates have no maximum-likelihood θ: it grows until the clipped logits
    /// flatten the likelihood, as in the reference (whose BFGS stops there too).
    pub converged: bool,
}

/// θ maximising the likelihood of answers `y` (scores in [0, 1]) on `items`, from 0 —
/// the reference's `fit_theta` (which uses scipy's BFGS with a numerical gradient; this is
/// BFGS with the exact gradient and a backtracking line search, at most 200·D iterations as
/// scipy's default).
pub fn fit_theta(irt: &Irt, items: &[usize], y: &[f64]) -> Result<ThetaFit, TinyError> {
    if items.len() != y.len() {
        return Err(TinyError::Length {
            name: "answers",
            got: y.len(),
            expected: format!("{} (one per anchor item)", items.len()),
        });
    }
    if let Some(&i) = items.iter().find(|&&i| i >= irt.items()) {
        return Err(TinyError::Parameter {
            name: "anchor item",
            value: i.to_string(),
            expected: format!("an item index below {}", irt.items()),
        });
    }
    check_scores("answers", y, 1)?;
    let d = irt.dim;
    let mut theta = vec![0.0; d];
    let mut grad = vec![0.0; d];
    let mut f = irt.neg_log_like(&theta, items, y, &mut grad);
    // inverse Hessian estimate, row-major d × d
    let mut h: Vec<f64> = (0..d * d)
        .map(|k| if k % (d + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let max_iter = 200 * d;
    let mut iterations = 0;
    let mut new_grad = vec![0.0; d];
    // iterate to rounding level; call it converged at scipy's BFGS tolerance
    let gtol = 1e-11 * items.len().max(1) as f64;
    while iterations < max_iter && grad.iter().any(|g| g.abs() > gtol) {
        iterations += 1;
        let dir: Vec<f64> = (0..d)
            .map(|r| -(0..d).map(|c| h[r * d + c] * grad[c]).sum::<f64>())
            .collect();
        let mut slope: f64 = dir.iter().zip(&grad).map(|(p, g)| p * g).sum();
        let dir = if slope < 0.0 {
            dir
        } else {
            // not a descent direction: restart from steepest descent
            h.iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = if k % (d + 1) == 0 { 1.0 } else { 0.0 });
            slope = -grad.iter().map(|g| g * g).sum::<f64>();
            grad.iter().map(|g| -g).collect()
        };
        let mut step = 1.0;
        let mut next;
        let mut f_next;
        loop {
            next = theta
                .iter()
                .zip(&dir)
                .map(|(t, p)| t + step * p)
                .collect::<Vec<_>>();
            f_next = irt.neg_log_like(&next, items, y, &mut new_grad);
            if f_next <= f + 1e-4 * step * slope || step < 1e-14 {
                break;
            }
            step *= 0.5;
        }
        if f_next > f {
            break; // no decrease along any step: at the optimum to rounding
        }
        let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = new_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy: f64 = s.iter().zip(&yv).map(|(a, b)| a * b).sum();
        if sy > 1e-12 {
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..d)
                .map(|r| (0..d).map(|c| h[r * d + c] * yv[c]).sum())
                .collect();
            let yhy: f64 = yv.iter().zip(&hy).map(|(a, b)| a * b).sum();
            for r in 0..d {
                for c in 0..d {
                    h[r * d + c] += -rho * (hy[r] * s[c] + s[r] * hy[c])
                        + (rho * rho * yhy + rho) * s[r] * s[c];
                }
            }
        }
        let moved = s.iter().any(|v| v.abs() > 0.0);
        theta = next;
        f = f_next;
        std::mem::swap(&mut grad, &mut new_grad);
        if !moved {
            break;
        }
    }
    let converged = grad.iter().all(|g| g.abs() <= CONVERGED_GRADIENT)
        && theta.iter().all(|t| t.abs() < RUNAWAY_THETA);
    Ok(ThetaFit {
        theta,
        neg_log_like: f,
        iterations,
        converged,
    })
}

/// How [`fit_irt`] fits.
#[derive(Debug, Clone, PartialEq)]
pub struct IrtFitOptions {
    /// D, the dimension of abilities and discriminations (the reference picks 10 of
    /// {2, 5, 10, 15} by validation).
    pub dim: usize,
    /// Full-batch Adam steps (the reference's SVI runs 2000 epochs at lr 0.1).
    pub epochs: usize,
    pub learning_rate: f64,
    /// Seeds the small random start of the discriminations (θ and b start at 0).
    pub seed: u64,
}

impl Default for IrtFitOptions {
    fn default() -> Self {
        IrtFitOptions {
            dim: 10,
            epochs: 2000,
            learning_rate: 0.1,
            seed: 42,
        }
    }
}

/// A fitted IRT model and the training models' abilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IrtFit {
    pub irt: Irt,
    /// models × D, row-major.
    pub thetas: Vec<f64>,
    /// The negative log-posterior (per answer) every 100 epochs and at the end.
    pub loss: Vec<f64>,
}

/// Fits a D-dimensional 2PL model to `responses` (`models × items`, row-major, scores in
/// [0, 1]): the posterior mode under standard-normal priors on θ, α and b, by full-batch
/// Adam (the reference's likelihood; see the module documentation for how the fit differs).
/// Items answered alike by every model are refused by name: nothing identifies them.
pub fn fit_irt(
    responses: &[f64],
    models: usize,
    items: usize,
    opts: &IrtFitOptions,
) -> Result<IrtFit, TinyError> {
    check_positive("models", models)?;
    check_positive("items", items)?;
    check_positive("dim", opts.dim)?;
    check_positive("epochs", opts.epochs)?;
    super::check_irt_size(models, items, opts.dim)?;
    if !(opts.learning_rate > 0.0 && opts.learning_rate.is_finite()) {
        return Err(TinyError::Parameter {
            name: "learning_rate",
            value: opts.learning_rate.to_string(),
            expected: "a positive number".into(),
        });
    }
    if models.checked_mul(items) != Some(responses.len()) {
        return Err(TinyError::Length {
            name: "responses",
            got: responses.len(),
            expected: format!("models {models} × items {items}"),
        });
    }
    check_scores("responses", responses, items)?;
    check_informative(responses, models, items)?;
    fit_irt_unchecked(responses, models, items, opts, &mut || {})
}

/// How often an IRT fit records its loss and reports progress.
pub(crate) const EPOCHS_PER_TICK: usize = 100;

/// How many times [`fit_irt_unchecked`] calls its `tick` for `epochs` epochs.
pub(crate) fn fit_ticks(epochs: usize) -> usize {
    epochs.div_ceil(EPOCHS_PER_TICK)
}

/// Refuses items every model answers alike, by name.
pub(crate) fn check_informative(
    responses: &[f64],
    models: usize,
    items: usize,
) -> Result<(), TinyError> {
    for i in 0..items {
        let first = responses[i];
        if (1..models).all(|m| responses[m * items + i] == first) {
            return Err(TinyError::ConstantItem {
                item: i,
                value: first,
            });
        }
    }
    Ok(())
}

/// [`fit_irt`] on answers already checked, constant items allowed: a subset of the models
/// (validation, training folds) may answer an item alike, and the priors keep its
/// parameters finite. `tick` is called every [`EPOCHS_PER_TICK`] epochs and after the last
/// ([`fit_ticks`] times in all), for progress reports.
pub(crate) fn fit_irt_unchecked(
    responses: &[f64],
    models: usize,
    items: usize,
    opts: &IrtFitOptions,
    tick: &mut dyn FnMut(),
) -> Result<IrtFit, TinyError> {
    let d = opts.dim;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let start = Normal::new(0.0, 0.1).map_err(|e| TinyError::Parameter {
        name: "seed",
        value: e.to_string(),
        expected: "a usable start".into(),
    })?;
    // parameters: θ (models × d), then α (items × d), then b (items)
    let (n_theta, n_a) = (models * d, items * d);
    let mut params = vec![0.0f64; n_theta + n_a + items];
    for v in &mut params[n_theta..n_theta + n_a] {
        *v = start.sample(&mut rng);
    }
    // θ also starts small and random, or every model's ability would move in lockstep
    for v in &mut params[..n_theta] {
        *v = start.sample(&mut rng);
    }
    let mut grad = vec![0.0f64; params.len()];
    let (mut m1, mut m2) = (vec![0.0f64; params.len()], vec![0.0f64; params.len()]);
    let (beta1, beta2, adam_eps) = (0.9, 0.999, 1e-8);
    let mut loss = Vec::new();
    let answers = (models * items) as f64;
    for epoch in 1..=opts.epochs {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let (theta, rest) = params.split_at(n_theta);
        let (a, b) = rest.split_at(n_a);
        let mut nlp = 0.0;
        for m in 0..models {
            let t = &theta[m * d..(m + 1) * d];
            for i in 0..items {
                let y = responses[m * items + i];
                let al = &a[i * d..(i + 1) * d];
                let mut z = 0.0;
                for (x, w) in al.iter().zip(t) {
                    z += (x * w - b[i]).clamp(-CLIP, CLIP);
                }
                // stable BCE with logits
                nlp += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
                let dz = sigmoid(z) - y;
                for k in 0..d {
                    if (al[k] * t[k] - b[i]).abs() < CLIP {
                        grad[m * d + k] += dz * al[k];
                        grad[n_theta + i * d + k] += dz * t[k];
                        grad[n_theta + n_a + i] -= dz;
                    }
                }
            }
        }
        // standard-normal priors
        for (g, p) in grad.iter_mut().zip(&params) {
            *g += p;
            nlp += 0.5 * p * p;
        }
        if epoch % EPOCHS_PER_TICK == 0 || epoch == opts.epochs {
            loss.push(nlp / answers);
            tick();
        }
        let (c1, c2) = (1.0 - power(beta1, epoch), 1.0 - power(beta2, epoch));
        for k in 0..params.len() {
            m1[k] = beta1 * m1[k] + (1.0 - beta1) * grad[k];
            m2[k] = beta2 * m2[k] + (1.0 - beta2) * grad[k] * grad[k];
            params[k] -= opts.learning_rate * (m1[k] / c1) / ((m2[k] / c2).sqrt() + adam_eps);
        }
    }
    let b = params.split_off(n_theta + n_a);
    let a = params.split_off(n_theta);
    Ok(IrtFit {
        irt: Irt::new(d, a, b)?,
        thetas: params,
        loss,
    })
}

fn power(beta: f64, epoch: usize) -> f64 {
    beta.powi(epoch.min(i32::MAX as usize) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// A random D-dimensional model, and answers of `models` abilities drawn from it.
    fn synthetic(seed: u64, d: usize, items: usize, models: usize) -> (Irt, Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = Normal::new(0.0, 1.0).unwrap();
        let a: Vec<f64> = (0..items * d).map(|_| 0.8 * n.sample(&mut rng)).collect();
        let b: Vec<f64> = (0..items).map(|_| 0.4 * n.sample(&mut rng)).collect();
        let irt = Irt::new(d, a, b).unwrap();
        let thetas: Vec<f64> = (0..models * d).map(|_| n.sample(&mut rng)).collect();
        let mut y = Vec::with_capacity(models * items);
        for m in 0..models {
            for i in 0..items {
                let p = irt.prob(&thetas[m * d..(m + 1) * d], i);
                y.push(if rng.random::<f64>() < p { 1.0 } else { 0.0 });
            }
        }
        (irt, thetas, y)
    }

    #[test]
    fn item_curve_clips_each_term_and_counts_b_once_per_dimension() {
        let irt = Irt::new(2, vec![1.0, 2.0, 100.0, 0.0], vec![0.5, 0.0]).unwrap();
        // α·θ − D·b = 1·1 + 2·1 − 2·0.5
        assert!((irt.logit(&[1.0, 1.0], 0) - 2.0).abs() < 1e-15);
        // 100·1 clipped to 30, 0·1 − 0 = 0
        assert_eq!(irt.logit(&[1.0, 1.0], 1), 30.0);
        assert!((irt.prob(&[0.0, 0.0], 0) - sigmoid(-1.0)).abs() < 1e-15);
    }

    #[test]
    fn theta_gradient_matches_finite_differences() {
        let (irt, _, _) = synthetic(1, 3, 40, 1);
        let items: Vec<usize> = (0..40).step_by(2).collect();
        let y: Vec<f64> = items.iter().map(|i| (i % 3 == 0) as u8 as f64).collect();
        let theta = [0.3, -0.7, 1.1];
        let mut g = [0.0; 3];
        irt.neg_log_like(&theta, &items, &y, &mut g);
        for k in 0..3 {
            let h = 1e-6;
            let mut up = theta;
            up[k] += h;
            let mut down = theta;
            down[k] -= h;
            let mut scratch = [0.0; 3];
            let fd = (irt.neg_log_like(&up, &items, &y, &mut scratch)
                - irt.neg_log_like(&down, &items, &y, &mut scratch))
                / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6, "{k}: {fd} vs {}", g[k]);
        }
    }

    #[test]
    fn theta_fit_recovers_an_ability_from_many_answers() {
        let (irt, _, _) = synthetic(2, 2, 3000, 0);
        let truth = [0.8, -0.5];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let items: Vec<usize> = (0..3000).collect();
        let y: Vec<f64> = items
            .iter()
            .map(|&i| (rng.random::<f64>() < irt.prob(&truth, i)) as u8 as f64)
            .collect();
        let fit = fit_theta(&irt, &items, &y).unwrap();
        assert!(fit.converged, "{fit:?}");
        for (t, w) in fit.theta.iter().zip(truth) {
            assert!((t - w).abs() < 0.15, "{:?} vs {truth:?}", fit.theta);
        }
    }

    #[test]
    fn separable_answers_do_not_converge_and_say_so() {
        let irt = Irt::new(1, vec![1.0; 5], vec![0.0; 5]).unwrap();
        let fit = fit_theta(&irt, &[0, 1, 2, 3, 4], &[1.0; 5]).unwrap();
        // every answer right: the likelihood grows with θ until the clip flattens it
        assert!(fit.theta[0] > 10.0, "{fit:?}");
        assert!(!fit.converged);
        assert!(fit.neg_log_like < 1e-6);
    }

    #[test]
    fn irt_fit_predicts_held_out_answers_like_the_true_model() {
        let (d, items, models) = (2, 150, 80);
        let (truth, thetas, y) = synthetic(4, d, items, models);
        let opts = IrtFitOptions {
            dim: d,
            epochs: 600,
            ..IrtFitOptions::default()
        };
        let fit = fit_irt(&y, models, items, &opts).unwrap();
        assert!(
            fit.loss.windows(2).all(|w| w[1] <= w[0] + 1e-9),
            "{:?}",
            fit.loss
        );
        // each training model's predicted accuracy against the truth's
        let mut worst = 0.0f64;
        for m in 0..models {
            let t_fit = &fit.thetas[m * d..(m + 1) * d];
            let t_true = &thetas[m * d..(m + 1) * d];
            let acc = |irt: &Irt, t: &[f64]| {
                (0..items).map(|i| irt.prob(t, i)).sum::<f64>() / items as f64
            };
            worst = worst.max((acc(&fit.irt, t_fit) - acc(&truth, t_true)).abs());
        }
        assert!(worst < 0.06, "predicted accuracies off by up to {worst}");
    }

    #[test]
    fn bad_input_is_named() {
        let err = fit_irt(&[0.0, 1.0, 1.0, 1.0], 2, 2, &IrtFitOptions::default()).unwrap_err();
        assert_eq!(
            err,
            TinyError::ConstantItem {
                item: 1,
                value: 1.0
            }
        );
        let err = fit_irt(&[1.0, 0.5, 2.0, 0.0], 2, 2, &IrtFitOptions::default()).unwrap_err();
        assert!(err.to_string().contains("row 1, column 0"), "{err}");
        let err = fit_irt(&[1.0, 0.0], 2, 2, &IrtFitOptions::default()).unwrap_err();
        assert!(err.to_string().contains("models 2 × items 2"), "{err}");
        let irt = Irt::new(1, vec![1.0; 3], vec![0.0; 3]).unwrap();
        assert!(fit_theta(&irt, &[0, 5], &[1.0, 0.0]).is_err());
        assert!(fit_theta(&irt, &[0, 1], &[1.0, f64::NAN]).is_err());
        assert!(Irt::new(2, vec![1.0; 3], vec![0.0; 2]).is_err());
    }
}
