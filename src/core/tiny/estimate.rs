//! The accuracy estimates of one scenario from a model's answers on its seen items, as the
//! reference package's `evaluate` computes them, and the parts of gp-IRT's λ.

use serde::{Deserialize, Serialize};

use super::{check_scores, Irt, TinyError};

/// How the seen items were chosen: σ² in gp-IRT's λ is `v/(4n)` for anchors (clustering is
/// taken to cut the variance about four times) and `v/n` for a random sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    Anchor,
    Random,
}

/// One scenario of a benchmark: its items (global indices) and the gp-IRT λ chosen for it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario<'a> {
    pub items: &'a [usize],
    pub gp_lambda: f64,
}

/// The package's three estimates for one scenario (keys as its `evaluate` returns them),
/// with the parts of p-IRT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimates {
    /// Σ_k w_k y_k over the scenario's seen items: the anchor-weighted mean (the package calls
    /// it `irt`; the paper's "IRT" anchors with the naive estimator).
    pub irt: f64,
    /// λ_p · data_part + (1 − λ_p) · irt_part.
    pub pirt: f64,
    /// λ · irt + (1 − λ) · pirt.
    pub gpirt: f64,
    /// mean over the seen items of bw·y.
    pub data_part: f64,
    /// mean over the unseen items of bw·P(θ) (0 when every item was seen).
    pub irt_part: f64,
    /// seen / all items of the scenario.
    pub lambda_p: f64,
}

/// The estimates for `scenario` of a model with ability `theta` (fitted on all of `seen`)
/// whose answers on the seen items (global indices, in order) are `y`; `weights` are the
/// anchor weights of the seen items that belong to the scenario, in the same order; `bw` the
/// balance weights of every item.
pub fn estimate(
    irt: &Irt,
    theta: &[f64],
    bw: &[f64],
    seen: &[usize],
    y: &[f64],
    weights: &[f64],
    scenario: Scenario,
) -> Result<Estimates, TinyError> {
    if theta.len() != irt.dim {
        return Err(TinyError::Length {
            name: "theta",
            got: theta.len(),
            expected: format!("{} (the IRT model's dimension)", irt.dim),
        });
    }
    if bw.len() != irt.items() {
        return Err(TinyError::Length {
            name: "balance weights",
            got: bw.len(),
            expected: format!("{} (one per item)", irt.items()),
        });
    }
    if y.len() != seen.len() {
        return Err(TinyError::Length {
            name: "answers",
            got: y.len(),
            expected: format!("{} (one per seen item)", seen.len()),
        });
    }
    check_scores("answers", y, 1)?;
    if let Some(&i) = seen
        .iter()
        .chain(scenario.items)
        .find(|&&i| i >= irt.items())
    {
        return Err(TinyError::Parameter {
            name: "item",
            value: i.to_string(),
            expected: format!("an index below {}", irt.items()),
        });
    }
    if !(0.0..=1.0).contains(&scenario.gp_lambda) {
        return Err(TinyError::Parameter {
            name: "gp_lambda",
            value: scenario.gp_lambda.to_string(),
            expected: "a number in [0, 1]".into(),
        });
    }
    let mut in_scenario = vec![false; irt.items()];
    for &i in scenario.items {
        in_scenario[i] = true;
    }
    let mut is_seen = vec![false; irt.items()];
    for &i in seen {
        is_seen[i] = true;
    }
    let seen_here: Vec<(usize, f64)> = seen
        .iter()
        .zip(y)
        .filter(|(i, _)| in_scenario[**i])
        .map(|(&i, &v)| (i, v))
        .collect();
    if seen_here.is_empty() {
        return Err(TinyError::Parameter {
            name: "seen items",
            value: "none in this scenario".into(),
            expected: "at least one answered item of the scenario".into(),
        });
    }
    if weights.len() != seen_here.len() {
        return Err(TinyError::Length {
            name: "anchor weights",
            got: weights.len(),
            expected: format!("{} (one per seen item of the scenario)", seen_here.len()),
        });
    }
    let naive: f64 = weights
        .iter()
        .zip(&seen_here)
        .map(|(w, (_, v))| w * v)
        .sum();
    let data_part = seen_here.iter().map(|&(i, v)| bw[i] * v).sum::<f64>() / seen_here.len() as f64;
    let unseen: Vec<usize> = scenario
        .items
        .iter()
        .copied()
        .filter(|&i| !is_seen[i])
        .collect();
    let irt_part = if unseen.is_empty() {
        0.0
    } else {
        unseen
            .iter()
            .map(|&i| bw[i] * irt.prob(theta, i))
            .sum::<f64>()
            / unseen.len() as f64
    };
    let lambda_p = seen_here.len() as f64 / scenario.items.len() as f64;
    let pirt = lambda_p * data_part + (1.0 - lambda_p) * irt_part;
    let gpirt = scenario.gp_lambda * naive + (1.0 - scenario.gp_lambda) * pirt;
    Ok(Estimates {
        irt: naive,
        pirt,
        gpirt,
        data_part,
        irt_part,
        lambda_p,
    })
}

/// gp-IRT's λ = b² / (σ² + b²), σ² = v/(4n) for anchors and v/n for random samples; `bias`
/// is the IRT prediction's mean absolute error on validation models, `variance` the mean
/// per-model variance of answers across the scenario's items ([`variance_term`]), `n` the
/// number of seen items.
pub fn gp_lambda(bias: f64, variance: f64, n: usize, sampling: Sampling) -> Result<f64, TinyError> {
    if !(bias >= 0.0 && bias.is_finite()) {
        return Err(TinyError::Parameter {
            name: "bias",
            value: bias.to_string(),
            expected: "a finite number ≥ 0".into(),
        });
    }
    if !(variance >= 0.0 && variance.is_finite()) {
        return Err(TinyError::Parameter {
            name: "variance",
            value: variance.to_string(),
            expected: "a finite number ≥ 0".into(),
        });
    }
    super::check_positive("n", n)?;
    let sigma2 = match sampling {
        Sampling::Anchor => variance / (4.0 * n as f64),
        Sampling::Random => variance / n as f64,
    };
    if sigma2 + bias * bias == 0.0 {
        return Err(TinyError::Parameter {
            name: "bias and variance",
            value: "both 0".into(),
            expected: "one of them positive (λ = b²/(σ² + b²))".into(),
        });
    }
    Ok(bias * bias / (sigma2 + bias * bias))
}

/// The mean over models of the (population) variance of each model's answers across
/// `items`, from `responses` (`models × all items`, row-major).
pub fn variance_term(responses: &[f64], models: usize, all_items: usize, items: &[usize]) -> f64 {
    let n = items.len() as f64;
    let mut total = 0.0;
    for m in 0..models {
        let row = &responses[m * all_items..(m + 1) * all_items];
        let mean = items.iter().map(|&i| row[i]).sum::<f64>() / n;
        total += items.iter().map(|&i| (row[i] - mean).powi(2)).sum::<f64>() / n;
    }
    total / models as f64
}

/// The IRT model's prediction of the balance-weighted accuracy on `items`: mean of bw·P(θ).
pub fn irt_prediction(irt: &Irt, theta: &[f64], bw: &[f64], items: &[usize]) -> f64 {
    items
        .iter()
        .map(|&i| bw[i] * irt.prob(theta, i))
        .sum::<f64>()
        / items.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_follows_the_sampling_rule() {
        let l = gp_lambda(0.02, 0.2, 100, Sampling::Random).unwrap();
        assert!((l - 0.0004 / (0.002 + 0.0004)).abs() < 1e-15);
        let l = gp_lambda(0.02, 0.2, 100, Sampling::Anchor).unwrap();
        assert!((l - 0.0004 / (0.0005 + 0.0004)).abs() < 1e-15);
        assert!(gp_lambda(0.0, 0.0, 10, Sampling::Anchor).is_err());
        assert!(gp_lambda(-1.0, 0.1, 10, Sampling::Anchor).is_err());
        assert!(gp_lambda(0.1, 0.1, 0, Sampling::Anchor).is_err());
    }

    #[test]
    fn all_items_seen_gives_the_plain_balanced_mean() {
        let irt = Irt::new(1, vec![1.0; 3], vec![0.0; 3]).unwrap();
        let e = estimate(
            &irt,
            &[0.0],
            &[1.0; 3],
            &[0, 1, 2],
            &[1.0, 0.0, 1.0],
            &[0.2, 0.3, 0.5],
            Scenario {
                items: &[0, 1, 2],
                gp_lambda: 0.5,
            },
        )
        .unwrap();
        assert!((e.pirt - 2.0 / 3.0).abs() < 1e-15);
        assert!((e.irt - 0.7).abs() < 1e-15);
        assert!((e.gpirt - (0.35 + 1.0 / 3.0)).abs() < 1e-15);
        assert_eq!(variance_term(&[1.0, 0.0, 1.0, 1.0], 2, 2, &[0, 1]), 0.125);
    }
}
