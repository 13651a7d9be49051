//! The multi-marginal matching gap (M3G) of Piran, Klein, Thornton and Cuturi (ICML 2024),
//! for k views of the same n items, and its gradient with respect to the views.
//!
//! Definition used here: with `C` the multi-marginal cost tensor of the k views (see
//! [`super::multi`]) and uniform weights `1/n`,
//!
//! ```text
//! M3G(x_1..x_k) = (1/n) Σ_i C[i, i, …, i]  −  ent_reg_cost(x_1..x_k)
//! ```
//!
//! i.e. the cost of the ground-truth polymatching (item i of every view matched together,
//! mass 1/n each) minus the entropic multi-marginal OT value, as OTT-JAX's `MMSinkhorn`
//! reports it (`ent_reg_cost = ⟨P, C⟩ + ε Σ P log P` at the optimum). Because the
//! ground-truth polymatching is itself feasible with `Σ J log J = −log n`, M3G ≥ ε log n;
//! the paper's Fenchel–Young form differs from this one by that constant `ε log n` only,
//! so the gradient is the same.
//!
//! The gradient holds the potentials and ε fixed (Danskin / envelope theorem, OTT's
//! `use_danskin=True`; ε is computed once from the tensor and not differentiated, as OTT's
//! `stop_gradient`): `∂ent_reg_cost/∂C = P`, so for view a, point i,
//!
//! ```text
//! ∇_{x_a[i]} = (1/n) Σ_{b≠a} ∇_x c(x_a[i], x_b[i])  −  Σ_{b≠a} Σ_j P_ab[i, j] ∇_x c(x_a[i], x_b[j])
//! ```
//!
//! with `P_ab` the (a, b) two-marginal of the coupling. It is exact only at convergence.

use serde::Serialize;

use super::cost::{CostFn, Points};
use super::error::OtError;
use super::multi::{check_clouds, entry, for_each_index, solve, MultiSinkhornOptions, Solved};

/// The result of [`m3g`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct M3gOutput {
    /// The matching gap: `ground_truth_cost − ent_reg_cost`.
    pub m3g: f32,
    /// `(1/n) Σ_i C[i, …, i]`.
    pub ground_truth_cost: f32,
    /// The multi-marginal `ent_reg_cost`.
    pub ent_reg_cost: f32,
    /// The ε used.
    pub epsilon: f32,
    /// The multi-marginal Sinkhorn errors at each check.
    pub errors: Vec<f32>,
    /// Iterations run.
    pub n_iters: usize,
    /// Whether multi-marginal Sinkhorn converged (the gradient is exact only then).
    pub converged: bool,
    /// The potentials, one per view.
    pub potentials: Vec<Vec<f32>>,
    /// `∂M3G/∂x_a`, one `n × dim` row-major matrix per view, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradient: Option<Vec<Vec<f32>>>,
}

/// M3G of k ≥ 2 views, each `n × dim` with the same n and dim (row `i` of every view is
/// item i). `opts.return_coupling` is honoured by nothing here (the coupling stays
/// internal); `with_gradient` adds the gradient.
pub fn m3g(
    views: &[Points],
    cost: CostFn,
    opts: &MultiSinkhornOptions,
    with_gradient: bool,
) -> Result<M3gOutput, OtError> {
    check_views(views, opts)?;
    let solved = solve(views, &[], cost, &m3g_solve_options(opts))?;
    Ok(from_solved(views, cost, solved, with_gradient))
}

/// The multi-marginal options M3G solves with: `opts` without the coupling.
pub(crate) fn m3g_solve_options(opts: &MultiSinkhornOptions) -> MultiSinkhornOptions {
    MultiSinkhornOptions {
        return_coupling: false,
        ..opts.clone()
    }
}

/// Checks k ≥ 2 views of the same n items in the same dimension, within the tensor limit.
pub(crate) fn check_views(views: &[Points], opts: &MultiSinkhornOptions) -> Result<(), OtError> {
    check_clouds(views, opts.max_tensor_entries, "views")?;
    let n = views[0].n;
    for (l, v) in views.iter().enumerate() {
        if v.n != n {
            return Err(OtError::Shape {
                arg: format!("views[{l}]"),
                expected: format!("{n} points (that of views[0]: one per item)"),
                got: format!("{} points", v.n),
            });
        }
    }
    Ok(())
}

/// M3G and its gradient from a solved multi-marginal problem over `views` (checked by
/// [`check_views`]), whichever path solved it.
pub(crate) fn from_solved(
    views: &[Points],
    cost: CostFn,
    solved: Solved,
    with_gradient: bool,
) -> M3gOutput {
    let n = views[0].n;
    let out = solved.out;
    let k = views.len();
    let dim = views[0].dim;

    let mut gt = 0.0f64;
    for i in 0..n {
        for a in 0..k {
            for b in a + 1..k {
                gt += cost.eval(views[a].row(i), views[b].row(i)) as f64;
            }
        }
    }
    gt /= n as f64;

    let gradient = with_gradient.then(|| {
        // Two-marginals P_ab (a < b), accumulated in f64 in one pass over the tensor.
        let tensor = &solved.tensor;
        let mut pair_margs: Vec<Vec<f64>> = tensor
            .pairs
            .iter()
            .map(|(a, b, _)| vec![0.0; views[*a].n * views[*b].n])
            .collect();
        for_each_index(&tensor.shape, None, |idx| {
            let p = entry(tensor, &out.potentials, idx, out.epsilon) as f64;
            for (pm, (a, b, _)) in pair_margs.iter_mut().zip(&tensor.pairs) {
                pm[idx[*a] * n + idx[*b]] += p;
            }
        });
        let mut grads: Vec<Vec<f32>> = (0..k).map(|_| vec![0.0f32; n * dim]).collect();
        let inv_n = 1.0 / n as f32;
        for (pm, (a, b, _)) in pair_margs.iter().zip(&tensor.pairs) {
            let (a, b) = (*a, *b);
            for i in 0..n {
                let xi = views[a].row(i);
                for j in 0..n {
                    let yj = views[b].row(j);
                    let w = if i == j { inv_n } else { 0.0 } - pm[i * n + j] as f32;
                    if w == 0.0 {
                        continue;
                    }
                    // C_ab[i, j] = c(x_a[i], x_b[j]) moves with both x_a[i] and x_b[j]
                    // (the costs are symmetric, so ∇_y c(x, y) = ∇_x c(y, x)).
                    cost.add_grad_x(xi, yj, w, &mut grads[a][i * dim..(i + 1) * dim]);
                    cost.add_grad_x(yj, xi, w, &mut grads[b][j * dim..(j + 1) * dim]);
                }
            }
        }
        grads
    });

    M3gOutput {
        m3g: (gt - out.ent_reg_cost as f64) as f32,
        ground_truth_cost: gt as f32,
        ent_reg_cost: out.ent_reg_cost,
        epsilon: out.epsilon,
        errors: out.errors,
        n_iters: out.n_iters,
        converged: out.converged,
        potentials: out.potentials,
        gradient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ot::Epsilon;

    fn views(k: usize, n: usize, d: usize) -> Vec<Vec<f32>> {
        let mut s = 0x9E37_79B9u32;
        (0..k)
            .map(|l| {
                (0..n * d)
                    .map(|t| {
                        s ^= s << 13;
                        s ^= s >> 17;
                        s ^= s << 5;
                        // Views of the same items: a shared signal plus per-view noise.
                        ((t * 7 % 11) as f32 / 11.0)
                            + 0.3 * l as f32 * ((s % 1000) as f32 / 1000.0 - 0.5)
                    })
                    .collect()
            })
            .collect()
    }

    fn fd_check(cost: CostFn, eps: f32) {
        let (k, n, d) = (3, 4, 2);
        let data = views(k, n, d);
        let pts: Vec<Points> = data.iter().map(|v| Points::new(v, n, d)).collect();
        let opts = MultiSinkhornOptions {
            epsilon: Epsilon::Absolute(eps),
            threshold: 1e-6,
            max_iterations: 50_000,
            ..Default::default()
        };
        let out = m3g(&pts, cost, &opts, true).unwrap();
        assert!(out.converged);
        assert!(
            out.m3g >= eps * (n as f32).ln() - 1e-4,
            "M3G ≥ ε log n: {}",
            out.m3g
        );
        let grad = out.gradient.unwrap();
        // Directional derivative along a fixed direction, central differences.
        let h = 1e-2f32;
        let dir: Vec<Vec<f32>> = (0..k)
            .map(|l| {
                (0..n * d)
                    .map(|t| (((t + 3 * l) % 5) as f32 - 2.0) / 2.0)
                    .collect()
            })
            .collect();
        let shifted = |sign: f32| {
            let moved: Vec<Vec<f32>> = data
                .iter()
                .zip(&dir)
                .map(|(v, dv)| v.iter().zip(dv).map(|(a, b)| a + sign * h * b).collect())
                .collect();
            let p: Vec<Points> = moved.iter().map(|v| Points::new(v, n, d)).collect();
            m3g(&p, cost, &opts, false).unwrap().m3g as f64
        };
        let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * h as f64);
        let an: f64 = grad
            .iter()
            .zip(&dir)
            .flat_map(|(g, dv)| g.iter().zip(dv).map(|(a, b)| *a as f64 * *b as f64))
            .sum();
        assert!(
            (fd - an).abs() < 2e-3 * an.abs().max(1.0),
            "{cost:?}: fd {fd} vs {an}"
        );
    }

    #[test]
    fn gradient_matches_finite_differences_sq_euclidean() {
        fd_check(CostFn::SqEuclidean, 0.3);
    }

    #[test]
    fn gradient_matches_finite_differences_cosine() {
        fd_check(CostFn::Cosine, 0.1);
    }

    #[test]
    fn views_must_have_the_same_items() {
        let (a, b) = (vec![0.0f32; 6], vec![0.0f32; 4]);
        let p = [Points::new(&a, 3, 2), Points::new(&b, 2, 2)];
        let err = m3g(
            &p,
            CostFn::SqEuclidean,
            &MultiSinkhornOptions::default(),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("views[1]"), "{err}");
        let err = m3g(
            &p[..1],
            CostFn::SqEuclidean,
            &MultiSinkhornOptions::default(),
            false,
        )
        .unwrap_err();
        assert_eq!(err, OtError::TooFewMarginals { k: 1 });
    }
}
