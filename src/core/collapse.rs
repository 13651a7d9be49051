//! Model collapse in linear regression, replace vs accumulate (Gerstgrasser et al., "Is Model
//! Collapse Inevitable? Breaking the Curse of Recursion by Accumulating Real and Synthetic
//! Data", arXiv 2404.01413; the setting of Dohmatob et al.).
//!
//! One run: true weights `w* ~ N(0, I_d)`, a fixed Gaussian design `X` (T × d, entries
//! N(0, 1)). Round 1 labels the design with the truth, `y₁ = X w* + ε₁`; round n labels it
//! with the previous round's fit, `yₙ = X ŵₙ₋₁ + εₙ`, `ε ~ N(0, σ² I_T)`. "Replace" fits
//! ordinary least squares on the newest labels only; "accumulate" fits it on all rounds'
//! data stacked. Test error = mean of `(xᵀŵₙ − xᵀw*)²` over fresh points `x ~ N(0, I_d)`.
//!
//! Closed forms (expectation over X and the noise; with `P = (XᵀX)⁻¹Xᵀ` the error of round
//! n is `Σ_{i≤n} P εᵢ` when replacing and `Σ_{i≤n} P εᵢ / i` when accumulating, and
//! `E tr (XᵀX)⁻¹ = d / (T − d − 1)` for a Gaussian design):
//! - replace: `σ² d n / (T − d − 1)` — grows without bound;
//! - accumulate: `σ² d / (T − d − 1) · Σ_{i≤n} 1/i²` — bounded by `π²/6` times round 1's.
//!
//! With the design shared by every round, least squares on the stacked data equals least
//! squares on the mean of the rounds' labels, which is how it is computed (exactly, not an
//! approximation).

use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// Bad parameters of the simulation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollapseError {
    #[error("`{name}` is {value}: expected {expected}")]
    Parameter {
        name: &'static str,
        value: String,
        expected: String,
    },
    #[error(
        "`t` = {t} rows for `d` = {d} dimensions: the closed forms need t > d + 1 \
         (E[(XᵀX)⁻¹] = I/(t − d − 1) exists only then)"
    )]
    TooFewRows { t: usize, d: usize },
    #[error("XᵀX is singular in run {run}: the design has rank below d (raise t)")]
    Singular { run: usize },
    #[error(transparent)]
    Size(#[from] crate::core::budget::SizeError),
}

/// The simulation's parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollapseOptions {
    pub d: usize,
    pub t: usize,
    pub sigma2: f64,
    pub rounds: usize,
    pub runs: usize,
    pub seed: u64,
    /// Fresh points per test-error estimate.
    pub test_points: usize,
}

impl Default for CollapseOptions {
    fn default() -> CollapseOptions {
        CollapseOptions {
            d: 10,
            t: 100,
            sigma2: 1.0,
            rounds: 10,
            runs: 100,
            seed: 0,
            test_points: 1000,
        }
    }
}

/// Mean test error per round (index 0 = round 1), simulated and in closed form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collapse {
    pub replace: Vec<f64>,
    pub accumulate: Vec<f64>,
    pub replace_theory: Vec<f64>,
    pub accumulate_theory: Vec<f64>,
    /// Standard error of each simulated mean (over runs), to judge agreement.
    pub replace_sem: Vec<f64>,
    pub accumulate_sem: Vec<f64>,
}

fn check(options: &CollapseOptions) -> Result<(), CollapseError> {
    let positive = |name: &'static str, value: usize| {
        if value == 0 {
            Err(CollapseError::Parameter {
                name,
                value: "0".into(),
                expected: "at least 1".into(),
            })
        } else {
            Ok(())
        }
    };
    positive("d", options.d)?;
    positive("rounds", options.rounds)?;
    positive("runs", options.runs)?;
    positive("test_points", options.test_points)?;
    if !(options.sigma2.is_finite() && options.sigma2 >= 0.0) {
        return Err(CollapseError::Parameter {
            name: "sigma2",
            value: options.sigma2.to_string(),
            expected: "a finite number ≥ 0".into(),
        });
    }
    if options.t <= options.d.saturating_add(1) {
        return Err(CollapseError::TooFewRows {
            t: options.t,
            d: options.d,
        });
    }
    let size = options.t.saturating_mul(options.d);
    if size > 1 << 24 || options.rounds > 10_000 || options.runs > 100_000 {
        return Err(CollapseError::Parameter {
            name: "t × d, rounds or runs",
            value: format!("{size}, {}, {}", options.rounds, options.runs),
            expected: "t × d ≤ 2^24, rounds ≤ 10,000, runs ≤ 100,000".into(),
        });
    }
    // What one run holds at once: the design, its Gram matrix and the fresh test points.
    let (d, t, test) = (
        ("d", options.d),
        ("t", options.t),
        ("test_points", options.test_points),
    );
    crate::core::budget::check_together(
        "the collapse simulation",
        &[
            ("design", &[t, d], 8),
            ("gram", &[d, d], 8),
            ("test points", &[test, d], 8),
        ],
    )?;
    Ok(())
}

/// The paper's closed forms for rounds 1..=rounds: (replace, accumulate).
pub fn theory(options: &CollapseOptions) -> Result<(Vec<f64>, Vec<f64>), CollapseError> {
    check(options)?;
    let unit = options.sigma2 * options.d as f64 / (options.t - options.d - 1) as f64;
    let replace = (1..=options.rounds).map(|n| unit * n as f64).collect();
    let mut harmonic2 = 0.0;
    let accumulate = (1..=options.rounds)
        .map(|n| {
            harmonic2 += 1.0 / (n * n) as f64;
            unit * harmonic2
        })
        .collect();
    Ok((replace, accumulate))
}

fn gaussian_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| rng.sample(StandardNormal))
}

fn gaussian_vector(rng: &mut ChaCha8Rng, len: usize, scale: f64) -> DVector<f64> {
    DVector::from_fn(len, |_, _| scale * rng.sample::<f64, _>(StandardNormal))
}

/// Runs the simulation; `progress(run)` is called after each run (for progress bars).
pub fn simulate(
    options: &CollapseOptions,
    mut progress: impl FnMut(usize),
) -> Result<Collapse, CollapseError> {
    let (replace_theory, accumulate_theory) = theory(options)?;
    let (d, t, rounds) = (options.d, options.t, options.rounds);
    let sigma = options.sigma2.sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut sums = [vec![0.0f64; rounds], vec![0.0f64; rounds]];
    let mut squares = [vec![0.0f64; rounds], vec![0.0f64; rounds]];
    for run in 0..options.runs {
        let truth = gaussian_vector(&mut rng, d, 1.0);
        let x = gaussian_matrix(&mut rng, t, d);
        let gram = x.transpose() * &x;
        let cholesky = gram.cholesky().ok_or(CollapseError::Singular { run })?;
        let fit = |labels: &DVector<f64>| cholesky.solve(&(x.transpose() * labels));
        let test = gaussian_matrix(&mut rng, options.test_points, d);
        let test_error =
            |w: &DVector<f64>| (&test * (w - &truth)).norm_squared() / options.test_points as f64;

        let mut replaced = truth.clone();
        let mut accumulated = truth.clone();
        let mut label_sum = DVector::<f64>::zeros(t);
        for round in 0..rounds {
            // Each strategy labels the design with its own previous fit, with fresh noise.
            let y_replace = &x * &replaced + gaussian_vector(&mut rng, t, sigma);
            let y_accumulate = &x * &accumulated + gaussian_vector(&mut rng, t, sigma);
            replaced = fit(&y_replace);
            label_sum += y_accumulate;
            accumulated = fit(&(&label_sum / (round + 1) as f64));
            for (k, w) in [&replaced, &accumulated].into_iter().enumerate() {
                let e = test_error(w);
                sums[k][round] += e;
                squares[k][round] += e * e;
            }
        }
        progress(run + 1);
    }
    let runs = options.runs as f64;
    let mean = |s: &[f64]| s.iter().map(|v| v / runs).collect::<Vec<f64>>();
    let sem = |s: &[f64], q: &[f64]| {
        s.iter()
            .zip(q)
            .map(|(s, q)| {
                let m = s / runs;
                let var = if runs > 1.0 {
                    (q / runs - m * m).max(0.0) * runs / (runs - 1.0)
                } else {
                    0.0
                };
                (var / runs).sqrt()
            })
            .collect::<Vec<f64>>()
    };
    Ok(Collapse {
        replace: mean(&sums[0]),
        accumulate: mean(&sums[1]),
        replace_sem: sem(&sums[0], &squares[0]),
        accumulate_sem: sem(&sums[1], &squares[1]),
        replace_theory,
        accumulate_theory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theory_by_hand() {
        let o = CollapseOptions {
            d: 10,
            t: 111,
            sigma2: 2.0,
            rounds: 3,
            ..CollapseOptions::default()
        };
        let (r, a) = theory(&o).unwrap();
        // σ² d / (T − d − 1) = 2 · 10 / 100 = 0.2.
        assert_eq!(r, vec![0.2, 0.4, 0.6000000000000001]);
        assert!((a[2] - 0.2 * (1.0 + 0.25 + 1.0 / 9.0)).abs() < 1e-12);
    }

    #[test]
    fn the_simulation_agrees_with_the_closed_forms_within_sampling_error() {
        let o = CollapseOptions {
            d: 5,
            t: 40,
            sigma2: 1.0,
            rounds: 6,
            runs: 400,
            seed: 7,
            test_points: 500,
        };
        let c = simulate(&o, |_| {}).unwrap();
        for round in 0..o.rounds {
            for (what, sim, theory, sem) in [
                (
                    "replace",
                    c.replace[round],
                    c.replace_theory[round],
                    c.replace_sem[round],
                ),
                (
                    "accumulate",
                    c.accumulate[round],
                    c.accumulate_theory[round],
                    c.accumulate_sem[round],
                ),
            ] {
                // Five standard errors, plus the fresh-point estimate's own small bias-free noise.
                assert!(
                    (sim - theory).abs() < 5.0 * sem + 0.02 * theory,
                    "{what} round {}: simulated {sim} ± {sem}, theory {theory}",
                    round + 1
                );
            }
        }
        // Replace grows linearly; accumulate stays below π²/6 × round 1.
        assert!(c.replace[5] > 4.0 * c.replace[0]);
        assert!(c.accumulate[5] < 1.7 * c.accumulate_theory[0]);
    }

    #[test]
    fn bad_parameters_are_named() {
        let too_few = CollapseOptions {
            d: 10,
            t: 11,
            ..CollapseOptions::default()
        };
        let e = simulate(&too_few, |_| {}).unwrap_err();
        assert!(e.to_string().contains("t > d + 1"), "{e}");
        let e = theory(&CollapseOptions {
            rounds: 0,
            ..CollapseOptions::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("`rounds` is 0"), "{e}");
        let e = theory(&CollapseOptions {
            sigma2: f64::NAN,
            ..CollapseOptions::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("`sigma2` is NaN"), "{e}");
    }
}

/// Resampling real features through fitted Gaussians, generation after generation — an
/// extension of the paper's question beyond its linear-regression setting, on real data.
///
/// Generation 0 fits a Gaussian (mean, biased covariance) to the real rows; each later
/// generation draws as many rows from the latest fit and refits, on those rows alone
/// ("replace") or on the real rows plus every synthetic row so far ("accumulate"). Sampling
/// uses the fitted data as the covariance's factor (`μ + Cᵀz/√N`, C the centred rows), so it
/// is exact for rank-deficient covariances (fewer rows than dimensions) without ever forming
/// the d × d matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resampling {
    /// `tr Σ_g / tr Σ_0`, mean over runs, generations 0..=generations.
    pub replace_variance: Vec<f64>,
    pub accumulate_variance: Vec<f64>,
    /// `‖μ_g − μ_0‖² / tr Σ_0`, mean over runs.
    pub replace_mean_shift: Vec<f64>,
    pub accumulate_mean_shift: Vec<f64>,
}

/// Mean and total variance of rows, and the centred rows (the sampling factor).
struct Fit {
    mean: Vec<f64>,
    centred: Vec<Vec<f64>>,
    trace: f64,
}

fn fit_gaussian(rows: &[Vec<f64>]) -> Fit {
    let d = rows[0].len();
    let n = rows.len() as f64;
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect();
    let trace = centred.iter().flatten().map(|v| v * v).sum::<f64>() / n;
    Fit {
        mean,
        centred,
        trace,
    }
}

fn sample(fit: &Fit, count: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let scale = 1.0 / (fit.centred.len() as f64).sqrt();
    (0..count)
        .map(|_| {
            let mut row = fit.mean.clone();
            for c in &fit.centred {
                let z: f64 = rng.sample(StandardNormal);
                for (o, v) in row.iter_mut().zip(c) {
                    *o += scale * z * v;
                }
            }
            row
        })
        .collect()
}

/// Runs the resampling extension on the rows of `x` (`x.rows ≥ 2`).
pub fn gaussian_resampling(
    x: &crate::core::matrix::Matrix,
    generations: usize,
    runs: usize,
    seed: u64,
) -> Result<Resampling, CollapseError> {
    if x.rows < 2 || x.cols == 0 {
        return Err(CollapseError::Parameter {
            name: "x",
            value: format!("{} × {}", x.rows, x.cols),
            expected: "at least 2 rows and 1 column".into(),
        });
    }
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        return Err(CollapseError::Parameter {
            name: "x",
            value: format!("{} at row {}, column {}", x.data[i], i / x.cols, i % x.cols),
            expected: "finite numbers".into(),
        });
    }
    if generations == 0 || generations > 1000 || runs == 0 || runs > 10_000 {
        return Err(CollapseError::Parameter {
            name: "generations, runs",
            value: format!("{generations}, {runs}"),
            expected: "1 ..= 1000 generations and 1 ..= 10,000 runs".into(),
        });
    }
    let real: Vec<Vec<f64>> = x
        .iter_rows()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let base = fit_gaussian(&real);
    if base.trace <= 0.0 {
        return Err(CollapseError::Parameter {
            name: "x",
            value: "rows that are all equal".into(),
            expected: "rows that vary (a covariance with a positive trace)".into(),
        });
    }
    let n = real.len();
    // Per generation: [replace variance, accumulate variance, replace shift, accumulate shift].
    let mut out = vec![[0.0f64; 4]; generations + 1];
    let shift = |fit: &Fit| -> f64 {
        fit.mean
            .iter()
            .zip(&base.mean)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / base.trace
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..runs {
        let mut replaced = fit_gaussian(&real);
        let mut pool = real.clone();
        let mut accumulated = fit_gaussian(&pool);
        out[0][0] += 1.0;
        out[0][1] += 1.0;
        for sums in out.iter_mut().skip(1) {
            let fresh = sample(&replaced, n, &mut rng);
            replaced = fit_gaussian(&fresh);
            let more = sample(&accumulated, n, &mut rng);
            pool.extend(more);
            accumulated = fit_gaussian(&pool);
            sums[0] += replaced.trace / base.trace;
            sums[1] += accumulated.trace / base.trace;
            sums[2] += shift(&replaced);
            sums[3] += shift(&accumulated);
        }
    }
    let mean = |k: usize| out.iter().map(|s| s[k] / runs as f64).collect();
    Ok(Resampling {
        replace_variance: mean(0),
        accumulate_variance: mean(1),
        replace_mean_shift: mean(2),
        accumulate_mean_shift: mean(3),
    })
}

#[cfg(test)]
mod resampling_tests {
    use super::*;
    use crate::core::matrix::Matrix;

    #[test]
    fn replacing_loses_variance_and_accumulating_keeps_it() {
        // 10 rows in 30 dimensions (fewer rows than dimensions, as with the gallery).
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let data: Vec<f32> = (0..300)
            .map(|_| rng.sample::<f64, _>(StandardNormal) as f32)
            .collect();
        let x = Matrix::new(10, 30, data, "x").unwrap();
        let r = gaussian_resampling(&x, 20, 200, 1).unwrap();
        assert_eq!(r.replace_variance.len(), 21);
        assert_eq!(r.replace_variance[0], 1.0);
        // With the biased fit, E tr Σ_g = ((n−1)/n)^g tr Σ_0 when replacing.
        let expected = 0.9f64.powi(20);
        assert!(
            (r.replace_variance[20] - expected).abs() < 0.05,
            "{} vs {expected}",
            r.replace_variance[20]
        );
        assert!(
            r.accumulate_variance[20] > 0.75,
            "{}",
            r.accumulate_variance[20]
        );
        assert!(r.replace_mean_shift[20] > r.accumulate_mean_shift[20]);
        assert!(
            gaussian_resampling(&Matrix::new(1, 3, vec![0.0; 3], "x").unwrap(), 5, 5, 0).is_err()
        );
    }
}
