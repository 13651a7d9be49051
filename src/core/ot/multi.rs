//! Entropic multi-marginal OT between k ≥ 2 weighted point clouds, following OTT-JAX's
//! `ott.experimental.mmsinkhorn.MMSinkhorn` (Piran et al., ICML 2024, Algorithm 1) in its
//! updates, defaults, error and `ent_reg_cost`.
//!
//! The cost tensor is `C[i_1..i_k] = Σ_{a<b} c(x_a[i_a], x_b[i_b])` (one ground cost for
//! every pair); only the k(k−1)/2 pairwise cost matrices are stored and the tensor is
//! summed on the fly. The coupling is `P = exp((f_1 ⊕ … ⊕ f_k − C)/ε)`. One iteration
//! updates each potential in turn (l = 1..k):
//!
//! ```text
//! f_l[i] ← ε log a_l[i] − ε LSE_{i_j, j≠l}((Σ_{j≠l} f_j[i_j] − C[.., i_l = i, ..])/ε)
//! ```
//!
//! The error is `Σ_l ‖a_l − P's l-th marginal‖_p`, computed every `inner_iterations`.
//! `ent_reg_cost = Σ_l ⟨f_l, a_l⟩ + ε (1 − Σ P)` (= `⟨P, C⟩ + ε Σ P log P` at the optimum).
//! ε defaults to 0.05 × the standard deviation of all entries of the tensor.

use serde::Serialize;

use super::cost::{check_weights, same_mass, CostFn, Points, MASS_TOLERANCE};
use super::error::OtError;
use super::lse::{finite_or_zero, p_norm, Lse};
use super::sinkhorn::{check_loop_options, mean_std, resolve_epsilon, Epsilon};

/// Default limit on the entries of the cost tensor: 2^24 (64 MiB as f32), e.g. k = 4 views
/// of 64 points.
pub const DEFAULT_MAX_TENSOR_ENTRIES: usize = 1 << 24;

/// Options of [`multi_sinkhorn`]; defaults are OTT-JAX's `MMSinkhorn()`.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiSinkhornOptions {
    /// Default: 0.05 × std of the cost tensor.
    pub epsilon: Epsilon,
    /// Stop when the error is below this (default 1e-3).
    pub threshold: f32,
    /// The p of the p-norm of each marginal's error (default 1).
    pub norm_error: f32,
    /// Check interval (default 10).
    pub inner_iterations: usize,
    /// No stop, and no error computed, before this many iterations (default 0).
    pub min_iterations: usize,
    /// At most this many iterations (default 2000).
    pub max_iterations: usize,
    /// Problems whose tensor has more entries are refused (default 2^24).
    pub max_tensor_entries: usize,
    /// Return the coupling tensor (default false).
    pub return_coupling: bool,
}

impl Default for MultiSinkhornOptions {
    fn default() -> Self {
        MultiSinkhornOptions {
            epsilon: Epsilon::default(),
            threshold: 1e-3,
            norm_error: 1.0,
            inner_iterations: 10,
            min_iterations: 0,
            max_iterations: 2000,
            max_tensor_entries: DEFAULT_MAX_TENSOR_ENTRIES,
            return_coupling: false,
        }
    }
}

/// The result of [`multi_sinkhorn`]. Not converging is reported by `converged`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultiSinkhornOutput {
    /// One potential per marginal (lengths `shape`); `-∞` where a weight is 0.
    pub potentials: Vec<Vec<f32>>,
    /// The ε used.
    pub epsilon: f32,
    /// OTT's `ent_reg_cost`: `Σ_l ⟨f_l, a_l⟩ + ε (1 − Σ P)`.
    pub ent_reg_cost: f32,
    /// The error at each check, in order (only the computed ones).
    pub errors: Vec<f32>,
    /// Iterations run.
    pub n_iters: usize,
    /// Whether the last computed error is finite and below the threshold.
    pub converged: bool,
    /// The sizes `n_1..n_k`.
    pub shape: Vec<usize>,
    /// The coupling tensor, row-major over `shape`, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupling: Option<Vec<f32>>,
}

/// The cost tensor as its pairwise matrices.
pub(crate) struct TensorCost {
    pub(crate) shape: Vec<usize>,
    /// `(a, b, C_ab)` for a < b, `C_ab` row-major `n_a × n_b`.
    pub(crate) pairs: Vec<(usize, usize, Vec<f32>)>,
}

impl TensorCost {
    fn new(clouds: &[Points], cost: CostFn) -> Self {
        let k = clouds.len();
        let mut pairs = Vec::with_capacity(k * (k - 1) / 2);
        for a in 0..k {
            for b in a + 1..k {
                let (xa, xb) = (&clouds[a], &clouds[b]);
                let mut m = Vec::with_capacity(xa.n * xb.n);
                for i in 0..xa.n {
                    for j in 0..xb.n {
                        m.push(cost.eval(xa.row(i), xb.row(j)));
                    }
                }
                pairs.push((a, b, m));
            }
        }
        TensorCost {
            shape: clouds.iter().map(|c| c.n).collect(),
            pairs,
        }
    }

    #[inline]
    pub(crate) fn at(&self, idx: &[usize]) -> f32 {
        self.pairs
            .iter()
            .map(|(a, b, m)| m[idx[*a] * self.shape[*b] + idx[*b]])
            .sum()
    }
}

/// Visits every multi-index of `shape` in row-major order; with `fixed = Some((l, i))`
/// only those whose l-th index is `i`.
pub(crate) fn for_each_index(
    shape: &[usize],
    fixed: Option<(usize, usize)>,
    mut visit: impl FnMut(&[usize]),
) {
    let k = shape.len();
    let mut idx = vec![0usize; k];
    if let Some((l, i)) = fixed {
        idx[l] = i;
    }
    loop {
        visit(&idx);
        let mut d = k;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            if fixed.is_some_and(|(l, _)| l == d) {
                continue;
            }
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Everything the M3G loss needs besides the output.
pub(crate) struct Solved {
    pub(crate) out: MultiSinkhornOutput,
    pub(crate) tensor: TensorCost,
}

/// Checks k, the clouds, their common dimension and the tensor size.
pub(crate) fn check_clouds(
    clouds: &[Points],
    max_tensor_entries: usize,
    arg: &str,
) -> Result<(), OtError> {
    if clouds.len() < 2 {
        return Err(OtError::TooFewMarginals { k: clouds.len() });
    }
    for (l, c) in clouds.iter().enumerate() {
        c.check(&format!("{arg}[{l}]"))?;
        if c.dim != clouds[0].dim {
            return Err(OtError::Shape {
                arg: format!("{arg}[{l}]"),
                expected: format!("dimension {} (that of {arg}[0])", clouds[0].dim),
                got: format!("dimension {}", c.dim),
            });
        }
    }
    let entries: u128 = clouds.iter().map(|c| c.n as u128).product();
    if entries > max_tensor_entries as u128 {
        return Err(OtError::TensorTooLarge {
            sizes: clouds.iter().map(|c| c.n).collect(),
            entries,
            max: max_tensor_entries,
        });
    }
    // The pairwise cost matrices are kept, and the solve visits (and may return) every
    // tensor entry: both against the memory budget, whatever limit the caller raised.
    let pairs: u128 = (0..clouds.len())
        .flat_map(|a| (a + 1..clouds.len()).map(move |b| (a, b)))
        .map(|(a, b)| clouds[a].n as u128 * clouds[b].n as u128)
        .sum();
    let sizes: Vec<String> = clouds.iter().map(|c| c.n.to_string()).collect();
    crate::core::budget::check_bytes(
        "multi-marginal transport",
        format!(
            "point clouds of {} points: {pairs} pairwise costs and {entries} tensor entries",
            sizes.join(", ")
        ),
        (pairs + entries) * 4,
    )?;
    Ok(())
}

/// Entropic multi-marginal OT between the point clouds `clouds` (k ≥ 2, common dimension)
/// with weights `weights` (empty = all uniform; else one slice per cloud, an empty slice
/// meaning uniform; each a probability vector). See the module documentation.
pub fn multi_sinkhorn(
    clouds: &[Points],
    weights: &[&[f32]],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
) -> Result<MultiSinkhornOutput, OtError> {
    solve(clouds, weights, cost, opts).map(|s| s.out)
}

pub(crate) fn solve(
    clouds: &[Points],
    weights: &[&[f32]],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
) -> Result<Solved, OtError> {
    let problem = prepare(clouds, weights, cost, opts)?;
    let (tensor, shape, eps) = (&problem.tensor, &problem.tensor.shape, problem.epsilon);
    let k = shape.len();
    let mut pots: Vec<Vec<f32>> = shape.iter().map(|&n| vec![0.0f32; n]).collect();
    let mut errors = Vec::new();
    let mut n_iters = 0;
    for it in 0..opts.max_iterations {
        for l in 0..k {
            for i in 0..shape[l] {
                let mut lse = Lse::EMPTY;
                for_each_index(shape, Some((l, i)), |idx| {
                    let mut s = -tensor.at(idx);
                    for (j, p) in pots.iter().enumerate() {
                        if j != l {
                            s += p[idx[j]];
                        }
                    }
                    lse.push(s / eps);
                });
                pots[l][i] = eps * problem.log_a[l][i] - eps * finite_or_zero(lse.value());
            }
        }
        n_iters = it + 1;
        if !is_check(n_iters, opts) {
            continue;
        }
        let (margs, _) = marginals(tensor, &pots, eps);
        let err: f32 = margs
            .iter()
            .zip(&problem.a_s)
            .map(|(m, a)| p_norm(m.iter().zip(a).map(|(x, y)| *x as f32 - y), opts.norm_error))
            .sum();
        errors.push(err);
        if should_stop(err, n_iters, opts) {
            break;
        }
    }
    let (_, total) = marginals(tensor, &pots, eps);
    Ok(finish(problem, opts, pots, (errors, n_iters), total))
}

/// A checked problem: the cost tensor's pairwise matrices, the weights and ε, as both the
/// CPU loop above and the GPU's (`crate::gpu::multi`) start from.
pub(crate) struct Prepared {
    pub(crate) tensor: TensorCost,
    /// The weights, uniform filled in.
    pub(crate) a_s: Vec<Vec<f32>>,
    pub(crate) log_a: Vec<Vec<f32>>,
    pub(crate) epsilon: f32,
}

/// Validates the clouds, weights and loop options, builds the pairwise costs and resolves ε.
pub(crate) fn prepare(
    clouds: &[Points],
    weights: &[&[f32]],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
) -> Result<Prepared, OtError> {
    check_clouds(clouds, opts.max_tensor_entries, "x_s")?;
    let k = clouds.len();
    if !weights.is_empty() && weights.len() != k {
        return Err(OtError::Shape {
            arg: "a_s".into(),
            expected: format!("{k} weight vectors (one per point cloud) or none for uniform"),
            got: format!("{} weight vectors", weights.len()),
        });
    }
    let mut a_s = Vec::with_capacity(k);
    for (l, c) in clouds.iter().enumerate() {
        let w: &[f32] = weights.get(l).copied().unwrap_or(&[]);
        let arg = format!("a_s[{l}]");
        let (w, mass) = check_weights(&arg, w, c.n)?;
        if !same_mass(mass, 1.0) {
            return Err(OtError::MassMismatch {
                arg,
                mass,
                expected: 1.0,
                why: "multi-marginal weights are probability vectors",
                tolerance: MASS_TOLERANCE,
            });
        }
        a_s.push(w);
    }
    check_loop_options(
        opts.threshold,
        opts.norm_error,
        opts.inner_iterations,
        opts.max_iterations,
    )?;
    let tensor = TensorCost::new(clouds, cost);
    let epsilon = resolve_epsilon(opts.epsilon, || {
        let mut values = Vec::new();
        for_each_index(&tensor.shape, None, |idx| values.push(tensor.at(idx)));
        mean_std(values.into_iter())
    })?;
    let log_a = a_s
        .iter()
        .map(|a| a.iter().map(|v| v.ln()).collect())
        .collect();
    Ok(Prepared {
        tensor,
        a_s,
        log_a,
        epsilon,
    })
}

/// Whether the loop computes the error after `n_iters` iterations (OTT's schedule).
pub(crate) fn is_check(n_iters: usize, opts: &MultiSinkhornOptions) -> bool {
    (n_iters.is_multiple_of(opts.inner_iterations) && n_iters > opts.min_iterations)
        || n_iters == opts.max_iterations
}

/// Whether the loop stops after an error of `err` at `n_iters` iterations.
pub(crate) fn should_stop(err: f32, n_iters: usize, opts: &MultiSinkhornOptions) -> bool {
    !err.is_finite() || (err < opts.threshold && n_iters >= opts.min_iterations)
}

/// The output from the final potentials, the loop's `(errors, n_iters)` and the coupling's
/// total mass `total` (for both paths): `converged`, `ent_reg_cost` and the coupling on
/// request.
pub(crate) fn finish(
    problem: Prepared,
    opts: &MultiSinkhornOptions,
    pots: Vec<Vec<f32>>,
    (errors, n_iters): (Vec<f32>, usize),
    total: f64,
) -> Solved {
    let eps = problem.epsilon;
    let converged = errors
        .last()
        .is_some_and(|e| e.is_finite() && *e < opts.threshold);
    let mut ent_reg_cost = eps as f64 * (1.0 - total);
    for (p, a) in pots.iter().zip(&problem.a_s) {
        for (&pi, &ai) in p.iter().zip(a) {
            if pi.is_finite() {
                ent_reg_cost += pi as f64 * ai as f64;
            }
        }
    }
    let tensor = problem.tensor;
    let coupling = opts.return_coupling.then(|| {
        let mut c = Vec::with_capacity(tensor.shape.iter().product());
        for_each_index(&tensor.shape, None, |idx| {
            c.push(entry(&tensor, &pots, idx, eps))
        });
        c
    });
    Solved {
        out: MultiSinkhornOutput {
            potentials: pots,
            epsilon: eps,
            ent_reg_cost: ent_reg_cost as f32,
            errors,
            n_iters,
            converged,
            shape: tensor.shape.clone(),
            coupling,
        },
        tensor,
    }
}

/// `P[idx] = exp((Σ_l f_l[idx_l] − C[idx])/ε)`.
#[inline]
pub(crate) fn entry(tensor: &TensorCost, pots: &[Vec<f32>], idx: &[usize], eps: f32) -> f32 {
    let mut s = -tensor.at(idx);
    for (p, &i) in pots.iter().zip(idx) {
        s += p[i];
    }
    (s / eps).exp()
}

/// The k marginals of the coupling and its total mass, accumulated in f64.
fn marginals(tensor: &TensorCost, pots: &[Vec<f32>], eps: f32) -> (Vec<Vec<f64>>, f64) {
    let mut margs: Vec<Vec<f64>> = tensor.shape.iter().map(|&n| vec![0.0; n]).collect();
    let mut total = 0.0f64;
    for_each_index(&tensor.shape, None, |idx| {
        let p = entry(tensor, pots, idx, eps) as f64;
        total += p;
        for (m, &i) in margs.iter_mut().zip(idx) {
            m[i] += p;
        }
    });
    (margs, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ot::sinkhorn::{sinkhorn, Geometry, SinkhornOptions};

    fn cloud(n: usize, d: usize, seed: u32) -> Vec<f32> {
        // Small deterministic pseudo-random numbers in [-1, 1).
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..n * d)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20_000) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    fn tight() -> MultiSinkhornOptions {
        MultiSinkhornOptions {
            threshold: 1e-5,
            max_iterations: 20_000,
            return_coupling: true,
            ..Default::default()
        }
    }

    #[test]
    fn index_walks() {
        let mut seen = Vec::new();
        for_each_index(&[2, 3], None, |i| seen.push((i[0], i[1])));
        assert_eq!(seen, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        let mut seen = Vec::new();
        for_each_index(&[2, 3, 2], Some((1, 2)), |i| seen.push(i.to_vec()));
        assert_eq!(
            seen,
            vec![vec![0, 2, 0], vec![0, 2, 1], vec![1, 2, 0], vec![1, 2, 1]]
        );
    }

    #[test]
    fn marginals_match_weights_k3() {
        let (x, y, z) = (cloud(4, 2, 1), cloud(3, 2, 2), cloud(5, 2, 3));
        let clouds = [
            Points::new(&x, 4, 2),
            Points::new(&y, 3, 2),
            Points::new(&z, 5, 2),
        ];
        let w1 = [0.1f32, 0.2, 0.3, 0.4];
        let out = multi_sinkhorn(&clouds, &[&w1, &[], &[]], CostFn::SqEuclidean, &tight()).unwrap();
        assert!(out.converged);
        let p = out.coupling.unwrap();
        assert_eq!(p.len(), 60);
        let mut m1 = [0.0f32; 4];
        for_each_index(&[4, 3, 5], None, |i| {
            m1[i[0]] += p[i[0] * 15 + i[1] * 5 + i[2]]
        });
        for (g, w) in m1.iter().zip(w1) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn k2_equals_two_marginal_sinkhorn() {
        let (x, y) = (cloud(5, 3, 7), cloud(4, 3, 8));
        let clouds = [Points::new(&x, 5, 3), Points::new(&y, 4, 3)];
        let mm = multi_sinkhorn(&clouds, &[], CostFn::SqEuclidean, &tight()).unwrap();
        let geom = Geometry::PointClouds {
            x: clouds[0],
            y: clouds[1],
            cost: CostFn::SqEuclidean,
        };
        let o = SinkhornOptions {
            threshold: 1e-5,
            max_iterations: 20_000,
            return_plan: true,
            ..Default::default()
        };
        let lin = sinkhorn(&geom, &[], &[], &o).unwrap();
        assert_eq!(mm.epsilon, lin.epsilon);
        assert!(
            (mm.ent_reg_cost - lin.ent_reg_cost).abs() < 1e-5 * lin.ent_reg_cost.abs().max(1.0)
        );
        for (a, b) in mm.coupling.unwrap().iter().zip(lin.plan.unwrap()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let x = cloud(3, 2, 1);
        let o = MultiSinkhornOptions::default();
        let one = [Points::new(&x, 3, 2)];
        assert_eq!(
            multi_sinkhorn(&one, &[], CostFn::SqEuclidean, &o).unwrap_err(),
            OtError::TooFewMarginals { k: 1 }
        );
        let big = vec![0.0f32; 300];
        let clouds = [Points::new(&big, 300, 1); 3];
        let small = MultiSinkhornOptions {
            max_tensor_entries: 1_000_000,
            ..Default::default()
        };
        let err = multi_sinkhorn(&clouds, &[], CostFn::SqEuclidean, &small).unwrap_err();
        assert!(matches!(
            err,
            OtError::TensorTooLarge {
                entries: 27_000_000,
                ..
            }
        ));
        assert!(err.to_string().contains("[300, 300, 300]"), "{err}");
        let two = [Points::new(&x, 3, 2), Points::new(&x, 3, 2)];
        let err = multi_sinkhorn(&two, &[&[0.5, 0.5, 0.5]], CostFn::SqEuclidean, &o).unwrap_err();
        assert!(matches!(err, OtError::Shape { ref arg, .. } if arg == "a_s"));
        let err =
            multi_sinkhorn(&two, &[&[], &[0.5, 0.5, 0.5]], CostFn::SqEuclidean, &o).unwrap_err();
        assert!(
            matches!(err, OtError::MassMismatch { ref arg, .. } if arg == "a_s[1]"),
            "{err}"
        );
        let mixed = [Points::new(&x, 3, 2), Points::new(&x, 2, 3)];
        let err = multi_sinkhorn(&mixed, &[], CostFn::SqEuclidean, &o).unwrap_err();
        assert!(err.to_string().contains("x_s[1]"), "{err}");
        let nan = [0.0f32, f32::NAN];
        let bad = [Points::new(&x, 3, 2), Points::new(&nan, 1, 2)];
        let err = multi_sinkhorn(&bad, &[], CostFn::SqEuclidean, &o).unwrap_err();
        assert!(
            matches!(
                err,
                OtError::NonFinitePoint {
                    point: 0,
                    coord: 1,
                    ..
                }
            ),
            "{err}"
        );
        let o = MultiSinkhornOptions {
            epsilon: Epsilon::Absolute(0.0),
            ..Default::default()
        };
        assert!(matches!(
            multi_sinkhorn(&two, &[], CostFn::SqEuclidean, &o),
            Err(OtError::Epsilon { .. })
        ));
    }
}
