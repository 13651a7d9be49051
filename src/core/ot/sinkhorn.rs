//! Entropic optimal transport between two weighted point sets: log-domain Sinkhorn in f32,
//! balanced or unbalanced, following OTT-JAX's `ott.solvers.linear.sinkhorn.Sinkhorn`
//! (`lse_mode=True`, no momentum/Anderson) in its updates, stopping rule, error and costs.
//!
//! Conventions (OTT's): the plan is `P_ij = exp((f_i + g_j − C_ij)/ε)`, so the potentials
//! absorb `ε log a` and `ε log b`. One iteration updates `g` then `f`:
//!
//! ```text
//! g_j ← τ_b (ε log b_j − ε LSE_i((f_i − C_ij)/ε))
//! f_i ← τ_a (ε log a_i − ε LSE_j((g_j − C_ij)/ε))
//! ```
//!
//! (a non-finite LSE counts as 0, as in OTT). With `τ < 1` the marginal is relaxed by
//! `ρ KL(·|a)`, `ρ = ε τ / (1 − τ)`; POT's `sinkhorn_unbalanced(..., reg=ε, reg_m=ρ,
//! reg_type="entropy")` runs the same fixed point (`τ = reg_m / (reg_m + reg)`).
//!
//! Each LSE is a per-row (or per-column) streaming reduction over costs computed on the fly
//! from the point clouds, so no `n × m` matrix exists unless the plan is requested (small
//! problems, up to [`COST_CACHE_ENTRIES`] entries, keep the costs in memory — the same f32
//! values, only faster).

use serde::Serialize;

use super::cost::{check_weights, same_mass, CostFn, Points, MASS_TOLERANCE};
use super::error::OtError;
use super::lse::{exp_fast, finite_or_zero, p_norm, Lse};
use crate::core::par;

/// Point-cloud problems with at most this many pairs keep their cost matrix in memory
/// (64 MiB): the updates then run as vectorised passes over rows, on every core.
pub const COST_CACHE_ENTRIES: usize = 1 << 24;
/// Rows (or columns) per parallel task of the dense updates.
const ROWS_PER_TASK: usize = 32;
const COLS_PER_TASK: usize = 512;

/// The transport problem's geometry: a cost matrix, or two point clouds and a ground cost.
#[derive(Debug, Clone, Copy)]
pub enum Geometry<'a> {
    /// `cost` is `n × m`, row-major.
    CostMatrix { cost: &'a [f32], n: usize, m: usize },
    /// `C_ij = cost(x_i, y_j)`; `x` and `y` share their dimension.
    PointClouds {
        x: Points<'a>,
        y: Points<'a>,
        cost: CostFn,
    },
}

/// The entropic regularisation ε, absolute or relative to the cost's statistics (OTT-JAX's
/// `epsilon` / `relative_epsilon`). Mean and standard deviation are over all `n·m` entries
/// of the cost (population standard deviation), as OTT's `mean_cost_matrix` /
/// `std_cost_matrix`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Epsilon {
    /// ε itself.
    Absolute(f32),
    /// ε = value × mean of the cost.
    RelativeToMean(f32),
    /// ε = value × standard deviation of the cost.
    RelativeToStd(f32),
}

/// OTT-JAX's `DEFAULT_EPSILON_SCALE`: ε defaults to 0.05 × std of the cost.
pub const DEFAULT_EPSILON_SCALE: f32 = 0.05;

impl Default for Epsilon {
    fn default() -> Self {
        Epsilon::RelativeToStd(DEFAULT_EPSILON_SCALE)
    }
}

/// Options of [`sinkhorn`]; defaults are OTT-JAX's.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkhornOptions {
    /// Default: 0.05 × std of the cost.
    pub epsilon: Epsilon,
    /// Marginal relaxation in (0, 1]; 1 (default) is a hard constraint.
    pub tau_a: f32,
    /// Marginal relaxation in (0, 1]; 1 (default) is a hard constraint.
    pub tau_b: f32,
    /// Stop when the marginal error is below this (default 1e-3).
    pub threshold: f32,
    /// The p of the p-norm of the marginal error (default 1).
    pub norm_error: f32,
    /// Check interval: the error is computed every this many iterations (default 10).
    pub inner_iterations: usize,
    /// No stop, and no error computed, before this many iterations (default 0).
    pub min_iterations: usize,
    /// At most this many iterations (default 2000).
    pub max_iterations: usize,
    /// Return the `n × m` plan (default false).
    pub return_plan: bool,
}

impl Default for SinkhornOptions {
    fn default() -> Self {
        SinkhornOptions {
            epsilon: Epsilon::default(),
            tau_a: 1.0,
            tau_b: 1.0,
            threshold: 1e-3,
            norm_error: 1.0,
            inner_iterations: 10,
            min_iterations: 0,
            max_iterations: 2000,
            return_plan: false,
        }
    }
}

/// The result of [`sinkhorn`]. Not converging is reported by `converged`, not as an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkhornOutput {
    /// Potential of the first marginal (length `n`); `-∞` where `a_i = 0`.
    pub f: Vec<f32>,
    /// Potential of the second marginal (length `m`); `-∞` where `b_j = 0`.
    pub g: Vec<f32>,
    /// The ε used.
    pub epsilon: f32,
    /// OTT's `reg_ot_cost` (= `kl_reg_cost`): `⟨P, C⟩ + ε KL(P | a⊗b)` plus, when
    /// unbalanced, `ρ_a KL(P1 | a) + ρ_b KL(Pᵀ1 | b)`, evaluated from the potentials.
    pub reg_ot_cost: f32,
    /// OTT's `ent_reg_cost`: `reg_ot_cost − ε (H(a) + H(b))`, `H(a) = −Σ a log a`
    /// (= `⟨P, C⟩ + ε Σ P log P` when balanced).
    pub ent_reg_cost: f32,
    /// The bare transport cost `⟨P, C⟩` (what POT's `sinkhorn2` returns).
    pub transport_cost: f32,
    /// The marginal error at each check, in order (only the computed ones).
    pub errors: Vec<f32>,
    /// Iterations run.
    pub n_iters: usize,
    /// Whether the last computed error is finite and below the threshold.
    pub converged: bool,
    /// The plan `P`, `n × m` row-major, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<f32>>,
}

/// Where the costs come from: a borrowed matrix, a cached one, or computed on the fly.
pub(crate) enum Costs<'a> {
    Borrowed(&'a [f32], usize),
    Owned(Vec<f32>, usize),
    OnTheFly(Points<'a>, Points<'a>, CostFn),
}

impl Costs<'_> {
    #[inline]
    pub(crate) fn at(&self, i: usize, j: usize) -> f32 {
        match self {
            Costs::Borrowed(c, m) => c[i * m + j],
            Costs::Owned(c, m) => c[i * m + j],
            Costs::OnTheFly(x, y, cost) => cost.eval(x.row(i), y.row(j)),
        }
    }
}

/// Checks the geometry and returns `(n, m, costs)`; `cache` keeps small point-cloud costs
/// in memory.
fn check_geometry<'a>(
    geom: &Geometry<'a>,
    cache: bool,
) -> Result<(usize, usize, Costs<'a>), OtError> {
    match *geom {
        Geometry::CostMatrix { cost, n, m } => {
            if n == 0 || m == 0 || cost.is_empty() {
                return Err(OtError::Empty {
                    arg: "cost".into(),
                    what: "row and column",
                });
            }
            if n.checked_mul(m) != Some(cost.len()) {
                return Err(OtError::Shape {
                    arg: "cost".into(),
                    expected: format!("{} values ({n} × {m})", n.saturating_mul(m)),
                    got: format!("{} values", cost.len()),
                });
            }
            if let Some(k) = cost.iter().position(|v| !v.is_finite()) {
                return Err(OtError::NonFiniteCost {
                    row: k / m,
                    col: k % m,
                    value: cost[k],
                });
            }
            Ok((n, m, Costs::Borrowed(cost, m)))
        }
        Geometry::PointClouds { x, y, cost } => {
            x.check("x")?;
            y.check("y")?;
            if x.dim != y.dim {
                return Err(OtError::Shape {
                    arg: "y".into(),
                    expected: format!("dimension {} (that of x)", x.dim),
                    got: format!("dimension {}", y.dim),
                });
            }
            let (n, m) = (x.n, y.n);
            let costs = match n.checked_mul(m) {
                Some(nm) if cache && nm <= COST_CACHE_ENTRIES => {
                    let mut c = vec![0.0f32; nm];
                    par::for_each_chunk_mut(&mut c, m, |i, row| {
                        for (j, cij) in row.iter_mut().enumerate() {
                            *cij = cost.eval(x.row(i), y.row(j));
                        }
                    });
                    Costs::Owned(c, m)
                }
                _ => Costs::OnTheFly(x, y, cost),
            };
            Ok((n, m, costs))
        }
    }
}

/// Checks the options shared by the Sinkhorn solvers.
pub(crate) fn check_loop_options(
    threshold: f32,
    norm_error: f32,
    inner_iterations: usize,
    max_iterations: usize,
) -> Result<(), OtError> {
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(OtError::Option {
            name: "threshold",
            value: threshold.to_string(),
            expected: "a finite number >= 0",
        });
    }
    if !(norm_error.is_finite() && norm_error >= 1.0) {
        return Err(OtError::Option {
            name: "norm_error",
            value: norm_error.to_string(),
            expected: "a finite p >= 1",
        });
    }
    if inner_iterations == 0 {
        return Err(OtError::Option {
            name: "inner_iterations",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    if max_iterations == 0 {
        return Err(OtError::Option {
            name: "max_iterations",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    Ok(())
}

/// Resolves ε from its spec and the cost's mean and standard deviation (computed lazily by
/// `stats`, which returns `(mean, std)`).
pub(crate) fn resolve_epsilon(
    spec: Epsilon,
    stats: impl FnOnce() -> (f64, f64),
) -> Result<f32, OtError> {
    let (mult, what) = match spec {
        Epsilon::Absolute(v) => {
            if v.is_finite() && v > 0.0 {
                return Ok(v);
            }
            return Err(OtError::Epsilon {
                value: v,
                detail: String::new(),
            });
        }
        Epsilon::RelativeToMean(v) => (v, "mean"),
        Epsilon::RelativeToStd(v) => (v, "standard deviation"),
    };
    if !(mult.is_finite() && mult > 0.0) {
        return Err(OtError::Epsilon {
            value: mult,
            detail: format!(" (as the multiplier of the cost's {what})"),
        });
    }
    let (mean, std) = stats();
    let scale = if what == "mean" { mean } else { std };
    let eps = (mult as f64 * scale) as f32;
    if eps.is_finite() && eps > 0.0 {
        Ok(eps)
    } else {
        Err(OtError::Epsilon {
            value: eps,
            detail: format!(
                " (resolved as {mult} × the cost's {what} = {mult} × {scale}); pass an absolute epsilon"
            ),
        })
    }
}

/// Mean and population standard deviation of values, accumulated in f64.
pub(crate) fn mean_std(values: impl Iterator<Item = f32>) -> (f64, f64) {
    let (mut n, mut s, mut s2) = (0u64, 0.0f64, 0.0f64);
    for v in values {
        let v = v as f64;
        n += 1;
        s += v;
        s2 += v * v;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = s / n as f64;
    let var = (s2 / n as f64 - mean * mean).max(0.0);
    (mean, var.sqrt())
}

fn check_tau(name: &'static str, tau: f32) -> Result<(), OtError> {
    if tau.is_finite() && tau > 0.0 && tau <= 1.0 {
        Ok(())
    } else {
        Err(OtError::Option {
            name,
            value: tau.to_string(),
            expected: "a number in (0, 1] (1 = balanced marginal)",
        })
    }
}

/// `ρ = ε τ / (1 − τ)` (infinite for τ = 1).
pub fn rho(epsilon: f32, tau: f32) -> f32 {
    epsilon * tau / (1.0 - tau)
}

/// A checked problem: sizes, weights (uniform filled in) and their masses. Shared by the CPU
/// solver and the GPU one (`crate::gpu`), so both refuse the same inputs with the same words.
pub(crate) struct Checked<'a> {
    pub n: usize,
    pub m: usize,
    pub costs: Costs<'a>,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub mass_a: f64,
    pub mass_b: f64,
    pub balanced: bool,
}

/// Validates geometry, weights and options (everything but ε, which may need the costs);
/// `cache_costs` lets small point-cloud problems keep their cost matrix in memory.
pub(crate) fn check_problem<'a>(
    geom: &Geometry<'a>,
    a: &[f32],
    b: &[f32],
    opts: &SinkhornOptions,
    cache_costs: bool,
) -> Result<Checked<'a>, OtError> {
    let (n, m, costs) = check_geometry(geom, cache_costs)?;
    let (a, mass_a) = check_weights("a", a, n)?;
    let (b, mass_b) = check_weights("b", b, m)?;
    check_tau("tau_a", opts.tau_a)?;
    check_tau("tau_b", opts.tau_b)?;
    check_loop_options(
        opts.threshold,
        opts.norm_error,
        opts.inner_iterations,
        opts.max_iterations,
    )?;
    let balanced = opts.tau_a == 1.0 && opts.tau_b == 1.0;
    if balanced && !same_mass(mass_b, mass_a) {
        return Err(OtError::MassMismatch {
            arg: "b".into(),
            mass: mass_b,
            expected: mass_a,
            why: "a balanced problem (tau_a = tau_b = 1) needs b to carry the mass of a",
            tolerance: MASS_TOLERANCE,
        });
    }
    Ok(Checked {
        n,
        m,
        costs,
        a,
        b,
        mass_a,
        mass_b,
        balanced,
    })
}

/// Whether the loop checks the error after `n_iters` iterations (OTT's schedule).
pub(crate) fn is_check(n_iters: usize, opts: &SinkhornOptions) -> bool {
    (n_iters.is_multiple_of(opts.inner_iterations) && n_iters > opts.min_iterations)
        || n_iters == opts.max_iterations
}

/// Whether the loop stops after an error of `err` at `n_iters` iterations.
pub(crate) fn should_stop(err: f32, n_iters: usize, opts: &SinkhornOptions) -> bool {
    !err.is_finite() || (err < opts.threshold && n_iters >= opts.min_iterations)
}

/// `reg_ot_cost` and `ent_reg_cost` from the potentials and the plan's total mass `total`
/// (OTT's `compute_kl_reg_cost`), reductions in f64.
pub(crate) fn regularised_costs(
    p: &Checked,
    f: &[f32],
    g: &[f32],
    eps: f32,
    opts: &SinkhornOptions,
    total: f64,
) -> (f64, f64) {
    let div = |w: &[f32], pot: &[f32], tau: f32| -> f64 {
        let mut s = 0.0f64;
        for (&wi, &q) in w.iter().zip(pot) {
            if wi > 0.0 {
                let h = (q - eps * wi.ln()) as f64;
                if tau == 1.0 {
                    s += wi as f64 * h;
                } else {
                    let r = rho(eps, tau) as f64;
                    s -= wi as f64 * r * ((-h / r).exp() - 1.0);
                }
            }
        }
        s
    };
    let reg_ot_cost = div(&p.a, f, opts.tau_a)
        + div(&p.b, g, opts.tau_b)
        + eps as f64 * (p.mass_a * p.mass_b - total);
    let entr = |w: &[f32]| -> f64 {
        w.iter()
            .filter(|&&v| v > 0.0)
            .map(|&v| -(v as f64) * (v as f64).ln())
            .sum()
    };
    let ent_reg_cost = reg_ot_cost - eps as f64 * (entr(&p.a) + entr(&p.b));
    (reg_ot_cost, ent_reg_cost)
}

/// Entropic OT between `a` (length `n`, empty = uniform) and `b` (length `m`, empty =
/// uniform) under `geom`. See the module documentation for the conventions.
pub fn sinkhorn(
    geom: &Geometry,
    a: &[f32],
    b: &[f32],
    opts: &SinkhornOptions,
) -> Result<SinkhornOutput, OtError> {
    let problem = check_problem(geom, a, b, opts, true)?;
    let (n, m) = (problem.n, problem.m);
    let costs = &problem.costs;
    let eps = resolve_epsilon(opts.epsilon, || {
        mean_std(
            (0..n)
                .flat_map(|i| (0..m).map(move |j| (i, j)))
                .map(|(i, j)| costs.at(i, j)),
        )
    })?;
    let (a, b) = (&problem.a, &problem.b);

    let log_a: Vec<f32> = a.iter().map(|v| v.ln()).collect();
    let log_b: Vec<f32> = b.iter().map(|v| v.ln()).collect();
    let (tau_a, tau_b) = (opts.tau_a, opts.tau_b);
    let mut f = vec![0.0f32; n];
    let mut g = vec![0.0f32; m];
    let mut errors = Vec::new();
    let mut n_iters = 0;

    // The error (OTT's `solution_error`): balanced, the column marginal against b (rows
    // match a exactly after the f update); unbalanced, both marginals against OTT's
    // gradient of the marginal fit, `a · exp(−f/ρ_a)` and `b · exp(−g/ρ_b)`.
    //
    // With the costs in memory, one pass per iteration: the f update walks the rows and, while
    // each row is in cache, adds its terms to the column log-sum-exps of the new f, which are
    // what the next g update and the error need (`dense_fused_pass`). Memory traffic halves.
    let dense = costs.dense();
    // the column LSEs of the current f, when the fused pass (or an error check) made them
    let mut col_lse_of_f: Option<Vec<f32>> = None;
    for it in 0..opts.max_iterations {
        let col_lse = match col_lse_of_f.take() {
            Some(l) => l,
            None => costs.col_lse(&f, m, eps),
        };
        set_potential(&mut g, &col_lse, &log_b, eps, tau_b);
        // the row LSEs of the new g, from which f is set
        let row_lse = match dense {
            Some((c, cols)) => {
                let (rows, next_cols) = dense_fused_pass(c, cols, &g, &col_lse, &log_a, eps, tau_a);
                col_lse_of_f = Some(next_cols);
                rows
            }
            None => costs.row_lse(&g, n, eps),
        };
        set_potential(&mut f, &row_lse, &log_a, eps, tau_a);
        n_iters = it + 1;
        if !is_check(n_iters, opts) {
            continue;
        }
        let col_lse = col_lse_of_f.get_or_insert_with(|| costs.col_lse(&f, m, eps));
        let col = marginal_from_lse(&g, col_lse, eps);
        let err = if problem.balanced {
            p_norm(col.iter().zip(b).map(|(c, t)| c - t), opts.norm_error)
        } else {
            let row = marginal_from_lse(&f, &row_lse, eps);
            let ta = marginal_fit_grad(a, &f, eps, tau_a);
            let tb = marginal_fit_grad(b, &g, eps, tau_b);
            p_norm(row.iter().zip(&ta).map(|(c, t)| c - t), opts.norm_error)
                + p_norm(col.iter().zip(&tb).map(|(c, t)| c - t), opts.norm_error)
        };
        errors.push(err);
        if should_stop(err, n_iters, opts) {
            break;
        }
    }
    let mut total = 0.0f64;
    let mut transport = 0.0f64;
    let mut plan = if opts.return_plan {
        Some(Vec::with_capacity(n * m))
    } else {
        None
    };
    for (i, &fi) in f.iter().enumerate() {
        for (j, &gj) in g.iter().enumerate() {
            let c = costs.at(i, j);
            let p = ((fi + gj - c) / eps).exp();
            total += p as f64;
            transport += p as f64 * c as f64;
            if let Some(plan) = plan.as_mut() {
                plan.push(p);
            }
        }
    }
    Ok(finish(
        &problem,
        opts,
        eps,
        (f, g),
        (total, transport),
        (errors, n_iters),
        plan,
    ))
}

/// The output from the final potentials, the plan's sums `(Σ P, Σ P C)` and the loop's
/// `(errors, n_iters)`: `converged` and the costs are derived here, for both paths.
pub(crate) fn finish(
    problem: &Checked,
    opts: &SinkhornOptions,
    eps: f32,
    (f, g): (Vec<f32>, Vec<f32>),
    (total, transport): (f64, f64),
    (errors, n_iters): (Vec<f32>, usize),
    plan: Option<Vec<f32>>,
) -> SinkhornOutput {
    let converged = errors
        .last()
        .is_some_and(|e| e.is_finite() && *e < opts.threshold);
    let (reg_ot_cost, ent_reg_cost) = regularised_costs(problem, &f, &g, eps, opts, total);
    SinkhornOutput {
        f,
        g,
        epsilon: eps,
        reg_ot_cost: reg_ot_cost as f32,
        ent_reg_cost: ent_reg_cost as f32,
        transport_cost: transport as f32,
        errors,
        n_iters,
        converged,
        plan,
    }
}

impl Costs<'_> {
    /// The cost matrix when it is in memory (`n × m`, row-major, and `m`).
    fn dense(&self) -> Option<(&[f32], usize)> {
        match self {
            Costs::Borrowed(c, m) => Some((c, *m)),
            Costs::Owned(c, m) => Some((c.as_slice(), *m)),
            Costs::OnTheFly(..) => None,
        }
    }

    /// `LSE_i((h_i − C_ij)/ε)` for every column j.
    fn col_lse(&self, h: &[f32], m: usize, eps: f32) -> Vec<f32> {
        if let Some((c, m)) = self.dense() {
            return dense_col_lse(c, m, h, 1.0 / eps);
        }
        (0..m)
            .map(|j| {
                let mut l = Lse::EMPTY;
                for (i, &hi) in h.iter().enumerate() {
                    l.push((hi - self.at(i, j)) / eps);
                }
                l.value()
            })
            .collect()
    }

    /// `LSE_j((h_j − C_ij)/ε)` for every row i.
    fn row_lse(&self, h: &[f32], n: usize, eps: f32) -> Vec<f32> {
        if let Some((c, m)) = self.dense() {
            return dense_row_lse(c, m, h, 1.0 / eps);
        }
        (0..n)
            .map(|i| {
                let mut l = Lse::EMPTY;
                for (j, &hj) in h.iter().enumerate() {
                    l.push((hj - self.at(i, j)) / eps);
                }
                l.value()
            })
            .collect()
    }
}

/// The largest value (−∞ for none), in 8 lanes so that it vectorises.
#[inline(always)]
fn lanes_max(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let (body, tail) = v.split_at(v.len() - v.len() % 8);
    for xs in body.chunks_exact(8) {
        for (a, &x) in acc.iter_mut().zip(xs) {
            *a = if x > *a { x } else { *a };
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `Σ v`, in 8 lanes.
#[inline(always)]
fn lanes_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (body, tail) = v.split_at(v.len() - v.len() % 8);
    for xs in body.chunks_exact(8) {
        for (a, &x) in acc.iter_mut().zip(xs) {
            *a += x;
        }
    }
    let rest: f32 = tail.iter().sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + rest
}

/// `log Σ exp(v)` from the maximum and the shifted sum: −∞ when every value is −∞.
#[inline(always)]
fn lse_from(max: f32, sum: f32) -> f32 {
    if max == f32::NEG_INFINITY || sum == 0.0 {
        f32::NEG_INFINITY
    } else {
        max + sum.ln()
    }
}

/// Row log-sum-exps of a dense cost: per row, one pass to a buffer and its maximum, one
/// pass of exponentials, one sum; rows spread over the cores.
fn dense_row_lse(c: &[f32], m: usize, h: &[f32], inv_eps: f32) -> Vec<f32> {
    let n = c.len() / m.max(1);
    let mut out = vec![0.0f32; n];
    par::for_each_chunk_mut(&mut out, ROWS_PER_TASK, |t, chunk| {
        let mut buf = vec![0.0f32; m];
        for (r, o) in chunk.iter_mut().enumerate() {
            let i = t * ROWS_PER_TASK + r;
            *o = simd::row_lse(&c[i * m..(i + 1) * m], h, inv_eps, &mut buf);
        }
    });
    out
}

/// Column log-sum-exps of a dense cost: each task owns a band of columns and walks the rows
/// in steps (maxima, then shifted sums, per step), reading contiguous memory and vectorising
/// across columns.
fn dense_col_lse(c: &[f32], m: usize, h: &[f32], inv_eps: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; m];
    par::for_each_chunk_mut(&mut out, COLS_PER_TASK, |t, chunk| {
        simd::col_band_lse(c, m, t * COLS_PER_TASK, h, inv_eps, chunk);
    });
    out
}

/// The dense updates' inner loops, compiled twice on x86-64: for the baseline (SSE2) and
/// for AVX2 + FMA, chosen at run time — twice the lanes for the exponentials.
mod simd {
    use super::{exp_fast, lanes_max, lanes_sum, lse_from};

    #[inline(always)]
    fn row_lse_body(row: &[f32], h: &[f32], inv_eps: f32, buf: &mut [f32]) -> f32 {
        for ((b, &cij), &hj) in buf.iter_mut().zip(row).zip(h) {
            *b = (hj - cij) * inv_eps;
        }
        let max = lanes_max(buf);
        let shift = if max == f32::NEG_INFINITY { 0.0 } else { max };
        // two simple loops, each vectorised; exponentials summed in one would not be
        for b in buf.iter_mut() {
            *b = exp_fast(*b - shift);
        }
        lse_from(max, lanes_sum(buf))
    }

    /// Rows per step of the column pass: a step's maxima are found first and its
    /// exponentials summed next, while its rows are still in cache, so the cost matrix is
    /// read from memory once per update.
    const ROW_STEP: usize = 64;

    #[inline(always)]
    fn col_band_body(c: &[f32], m: usize, j0: usize, h: &[f32], inv_eps: f32, out: &mut [f32]) {
        let w = out.len();
        let shift_of = |v: f32| if v == f32::NEG_INFINITY { 0.0 } else { v };
        let mut shift = vec![0.0f32; w];
        let mut max = vec![f32::NEG_INFINITY; w];
        let mut sum = vec![0.0f32; w];
        for i0 in (0..h.len()).step_by(ROW_STEP) {
            let rows = i0..(i0 + ROW_STEP).min(h.len());
            let band = |i: usize| &c[i * m + j0..i * m + j0 + w];
            for i in rows.clone() {
                let hi = h[i];
                for (mx, &cij) in max.iter_mut().zip(band(i)) {
                    let v = (hi - cij) * inv_eps;
                    *mx = if v > *mx { v } else { *mx };
                }
            }
            // the sums so far were taken against the old shifts: rescale them to the new ones
            for ((s, sh), &mx) in sum.iter_mut().zip(shift.iter_mut()).zip(&max) {
                let new = shift_of(mx);
                *s *= exp_fast(*sh - new);
                *sh = new;
            }
            for i in rows {
                let hi = h[i];
                for ((s, &sh), &cij) in sum.iter_mut().zip(&shift).zip(band(i)) {
                    *s += exp_fast((hi - cij) * inv_eps - sh);
                }
            }
        }
        for ((o, &mx), &s) in out.iter_mut().zip(&max).zip(&sum) {
            *o = lse_from(mx, s);
        }
    }

    #[inline(always)]
    fn add_shifted_exps_body(row: &[f32], fi: f32, inv_eps: f32, shifts: &[f32], sums: &mut [f32]) {
        for ((s, &sh), &cij) in sums.iter_mut().zip(shifts).zip(row) {
            *s += exp_fast((fi - cij) * inv_eps - sh);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_shifted_exps_avx2(row: &[f32], fi: f32, inv_eps: f32, shifts: &[f32], sums: &mut [f32]) {
        add_shifted_exps_body(row, fi, inv_eps, shifts, sums)
    }

    /// `sums_j += exp((f_i − C_ij)·inv_eps − shifts_j)` for one row `C_i·`.
    pub(super) fn add_shifted_exps(
        row: &[f32],
        fi: f32,
        inv_eps: f32,
        shifts: &[f32],
        sums: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { add_shifted_exps_avx2(row, fi, inv_eps, shifts, sums) };
        }
        add_shifted_exps_body(row, fi, inv_eps, shifts, sums)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn row_lse_avx2(row: &[f32], h: &[f32], inv_eps: f32, buf: &mut [f32]) -> f32 {
        row_lse_body(row, h, inv_eps, buf)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn col_band_avx2(c: &[f32], m: usize, j0: usize, h: &[f32], inv_eps: f32, out: &mut [f32]) {
        col_band_body(c, m, j0, h, inv_eps, out)
    }

    #[cfg(target_arch = "x86_64")]
    fn has_avx2() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// `LSE_j((h_j − row_j)·inv_eps)`, with `buf` (the row's length) as scratch.
    pub(super) fn row_lse(row: &[f32], h: &[f32], inv_eps: f32, buf: &mut [f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { row_lse_avx2(row, h, inv_eps, buf) };
        }
        row_lse_body(row, h, inv_eps, buf)
    }

    /// `out[j − j0] = LSE_i((h_i − C_ij)·inv_eps)` for the columns `j0..j0 + out.len()`.
    pub(super) fn col_band_lse(
        c: &[f32],
        m: usize,
        j0: usize,
        h: &[f32],
        inv_eps: f32,
        out: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { col_band_avx2(c, m, j0, h, inv_eps, out) };
        }
        col_band_body(c, m, j0, h, inv_eps, out)
    }
}

/// The potential update from its log-sum-exps: `f_i ← τ (ε log a_i − ε LSE_i)` (and the same
/// for g).
fn set_potential(pot: &mut [f32], lse: &[f32], log_w: &[f32], eps: f32, tau: f32) {
    for ((p, &lw), &l) in pot.iter_mut().zip(log_w).zip(lse) {
        *p = potential(lw, l, eps, tau);
    }
}

#[inline(always)]
fn potential(log_w: f32, lse: f32, eps: f32, tau: f32) -> f32 {
    tau * (eps * log_w - eps * finite_or_zero(lse))
}

/// A marginal from its potential and log-sum-exps: `exp(h_i/ε + LSE_i)`.
fn marginal_from_lse(h: &[f32], lse: &[f32], eps: f32) -> Vec<f32> {
    h.iter()
        .zip(lse)
        .map(|(&hi, &l)| (hi / eps + l).exp())
        .collect()
}

/// Rows per task of the fused pass; each task keeps its own column sums (`m` floats).
const FUSED_ROWS_PER_TASK: usize = 128;

/// A column sum taken against a guessed shift is kept when its log lies in ±this: no
/// overflow, and the terms lost below `exp_fast`'s floor (−87 from the shift) are under
/// `exp(−47)` of the largest.
const SHIFTED_LOG_SUM_LIMIT: f32 = 40.0;

/// One pass over a dense cost (`n × m`, row-major) that updates f from g and measures the
/// new f's columns: returns the row log-sum-exps `LSE_j((g_j − C_ij)/ε)` (from which f is set,
/// exactly as `set_potential` does) and the column log-sum-exps `LSE_i((f_i − C_ij)/ε)` of
/// the new f.
///
/// The column sums are taken in the same pass as the rows, so they cannot first find each
/// column's maximum: they are shifted by `shifts` instead — the previous f's column
/// log-sum-exps, which change little from one iteration to the next. A column whose shifted
/// sum leaves `exp(±SHIFTED_LOG_SUM_LIMIT)` (early iterations, large steps) is computed again
/// exactly, so the result never depends on how good the guess was beyond rounding.
fn dense_fused_pass(
    c: &[f32],
    m: usize,
    g: &[f32],
    shifts: &[f32],
    log_a: &[f32],
    eps: f32,
    tau_a: f32,
) -> (Vec<f32>, Vec<f32>) {
    let n = log_a.len();
    let inv_eps = 1.0 / eps;
    let finite_shifts: Vec<f32> = shifts
        .iter()
        .map(|&s| if s.is_finite() { s } else { 0.0 })
        .collect();
    let mut row_lse = vec![0.0f32; n];
    let partial = par::map_chunks_mut(&mut row_lse, FUSED_ROWS_PER_TASK, |t, chunk| {
        let i0 = t * FUSED_ROWS_PER_TASK;
        let rows = &c[i0 * m..(i0 + chunk.len()) * m];
        let mut sums = vec![0.0f32; m];
        let mut buf = vec![0.0f32; m];
        for (r, (lse, row)) in chunk.iter_mut().zip(rows.chunks_exact(m)).enumerate() {
            *lse = simd::row_lse(row, g, inv_eps, &mut buf);
            let fi = potential(log_a[i0 + r], *lse, eps, tau_a);
            simd::add_shifted_exps(row, fi, inv_eps, &finite_shifts, &mut sums);
        }
        sums
    });
    let mut sums = vec![0.0f32; m];
    for p in &partial {
        for (s, &v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    let mut col_lse: Vec<f32> = sums
        .iter()
        .zip(&finite_shifts)
        .map(|(&s, &sh)| sh + s.ln())
        .collect();
    let off = |j: usize| {
        let l = sums[j].ln();
        !shifts[j].is_finite() || !(-SHIFTED_LOG_SUM_LIMIT..=SHIFTED_LOG_SUM_LIMIT).contains(&l)
    };
    if (0..m).any(off) {
        let mut f = vec![0.0f32; n];
        set_potential(&mut f, &row_lse, log_a, eps, tau_a);
        let exact = dense_col_lse(c, m, &f, inv_eps);
        for (j, l) in col_lse.iter_mut().enumerate() {
            if off(j) {
                *l = exact[j];
            }
        }
    }
    (row_lse, col_lse)
}

/// OTT's `grad_of_marginal_fit`: `w` when τ = 1, else `w · exp(−h/ρ)` (0 where `w = 0`).
fn marginal_fit_grad(w: &[f32], h: &[f32], eps: f32, tau: f32) -> Vec<f32> {
    if tau == 1.0 {
        return w.to_vec();
    }
    let r = rho(eps, tau);
    w.iter()
        .zip(h)
        .map(|(&wi, &hi)| if wi > 0.0 { wi * (-hi / r).exp() } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_log_sum_exps_match_f64_over_many_row_steps() {
        // 300 rows: several steps of the column pass; a −∞ potential (zero weight) included
        let (n, m) = (300, 37);
        let c: Vec<f32> = (0..n * m)
            .map(|k| ((k * 7919) % 1000) as f32 / 50.0)
            .collect();
        let mut h: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.3 - 2.0).collect();
        h[5] = f32::NEG_INFINITY;
        let eps = 0.7f32;
        let got = dense_col_lse(&c, m, &h, 1.0 / eps);
        for j in 0..m {
            let want = (0..n)
                .map(|i| (h[i] as f64 - c[i * m + j] as f64) / eps as f64)
                .fold(f64::NEG_INFINITY, |acc, v| {
                    let hi = acc.max(v);
                    if hi == f64::NEG_INFINITY {
                        hi
                    } else {
                        hi + ((acc - hi).exp() + (v - hi).exp()).ln()
                    }
                });
            assert!(
                (got[j] as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
                "{j}"
            );
        }
        let g: Vec<f32> = (0..m).map(|j| (j % 5) as f32 - 1.0).collect();
        let rows = dense_row_lse(&c, m, &g, 1.0 / eps);
        for i in 0..n {
            let vals: Vec<f64> = (0..m)
                .map(|j| (g[j] as f64 - c[i * m + j] as f64) / eps as f64)
                .collect();
            let mx = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let want = mx + vals.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            assert!(
                (rows[i] as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
                "{i}"
            );
        }
    }

    #[test]
    fn fused_pass_equals_separate_passes_whatever_the_shifts() {
        // 300 rows: three tasks of the fused pass; a zero weight (log a = −∞) included
        let (n, m) = (300, 37);
        let c: Vec<f32> = (0..n * m)
            .map(|k| ((k * 7919) % 1000) as f32 / 50.0)
            .collect();
        let mut log_a = vec![-(n as f32).ln(); n];
        log_a[7] = f32::NEG_INFINITY;
        let g: Vec<f32> = (0..m).map(|j| (j % 5) as f32 - 1.0).collect();
        let (eps, tau) = (0.7f32, 1.0f32);
        let rows = dense_row_lse(&c, m, &g, 1.0 / eps);
        let mut f = vec![0.0f32; n];
        set_potential(&mut f, &rows, &log_a, eps, tau);
        let cols = dense_col_lse(&c, m, &f, 1.0 / eps);
        let near: Vec<f32> = cols.iter().map(|v| v + 3.0).collect();
        let far_above: Vec<f32> = cols.iter().map(|v| v + 500.0).collect();
        let far_below: Vec<f32> = cols.iter().map(|v| v - 500.0).collect();
        let mut mixed = near.clone();
        mixed[3] = f32::NEG_INFINITY;
        mixed[4] = f32::NAN;
        mixed[5] = 1e30;
        for shifts in [&cols, &near, &far_above, &far_below, &mixed] {
            let (got_rows, got_cols) = dense_fused_pass(&c, m, &g, shifts, &log_a, eps, tau);
            assert_eq!(got_rows, rows);
            for (j, (&got, &want)) in got_cols.iter().zip(&cols).enumerate() {
                assert!(
                    (got - want).abs() < 2e-6 * want.abs().max(1.0),
                    "column {j}: {got} vs {want}"
                );
            }
        }
    }

    fn opts(eps: f32) -> SinkhornOptions {
        SinkhornOptions {
            epsilon: Epsilon::Absolute(eps),
            threshold: 1e-6,
            max_iterations: 10_000,
            return_plan: true,
            ..Default::default()
        }
    }

    #[test]
    fn two_by_two_by_hand() {
        // C = [[0, 1], [1, 0]], uniform: P = [[p, ½ − p], [½ − p, p]], p = ½ σ(1/ε).
        let cost = [0.0f32, 1.0, 1.0, 0.0];
        let geom = Geometry::CostMatrix {
            cost: &cost,
            n: 2,
            m: 2,
        };
        let eps = 0.5f32;
        let out = sinkhorn(&geom, &[], &[], &opts(eps)).unwrap();
        assert!(out.converged);
        let p = 0.5 / (1.0 + (-1.0f32 / eps).exp());
        let plan = out.plan.unwrap();
        for (got, want) in plan.iter().zip([p, 0.5 - p, 0.5 - p, p]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let transport = 2.0 * (0.5 - p);
        assert!((out.transport_cost - transport).abs() < 1e-6);
        // reg_ot_cost = ⟨P, C⟩ + ε KL(P | ab) with ab = ¼.
        let kl: f32 = plan.iter().map(|&q| q * (q / 0.25).ln()).sum();
        assert!((out.reg_ot_cost - (transport + eps * kl)).abs() < 1e-5);
        let ent: f32 = plan.iter().map(|&q| q * q.ln()).sum();
        assert!((out.ent_reg_cost - (transport + eps * ent)).abs() < 1e-5);
        assert_eq!(out.n_iters % 10, 0);
        assert_eq!(out.errors.len(), out.n_iters / 10);
    }

    #[test]
    fn one_point_each() {
        let (x, y) = ([0.0f32, 0.0], [3.0f32, 4.0]);
        let geom = Geometry::PointClouds {
            x: Points::new(&x, 1, 2),
            y: Points::new(&y, 1, 2),
            cost: CostFn::SqEuclidean,
        };
        let out = sinkhorn(&geom, &[], &[], &opts(1.0)).unwrap();
        assert!((out.transport_cost - 25.0).abs() < 1e-4);
        assert!((out.reg_ot_cost - 25.0).abs() < 1e-4);
        assert_eq!(out.plan.unwrap(), vec![1.0]);
    }

    #[test]
    fn not_converging_is_data() {
        let cost = [0.0f32, 1.0, 1.0, 0.0, 2.0, 3.0];
        let geom = Geometry::CostMatrix {
            cost: &cost,
            n: 3,
            m: 2,
        };
        let o = SinkhornOptions {
            epsilon: Epsilon::Absolute(0.01),
            threshold: 0.0,
            max_iterations: 25,
            ..Default::default()
        };
        let out = sinkhorn(&geom, &[], &[], &o).unwrap();
        assert!(!out.converged);
        assert_eq!(out.n_iters, 25);
        assert_eq!(out.errors.len(), 3); // at 10, 20 and the last iteration
        assert!(out.plan.is_none());
    }

    #[test]
    fn relative_epsilon() {
        let cost = [1.0f32, 3.0, 5.0, 7.0];
        let geom = Geometry::CostMatrix {
            cost: &cost,
            n: 2,
            m: 2,
        };
        let mut o = opts(1.0);
        o.epsilon = Epsilon::RelativeToMean(0.5);
        assert_eq!(sinkhorn(&geom, &[], &[], &o).unwrap().epsilon, 2.0);
        o.epsilon = Epsilon::default(); // 0.05 × std; std = √5
        let e = sinkhorn(&geom, &[], &[], &o).unwrap().epsilon;
        assert!((e - 0.05 * 5f32.sqrt()).abs() < 1e-7);
        // A constant cost has no spread: a relative-to-std epsilon is refused by name.
        let flat = [2.0f32; 4];
        let geom = Geometry::CostMatrix {
            cost: &flat,
            n: 2,
            m: 2,
        };
        let err = sinkhorn(&geom, &[], &[], &o).unwrap_err();
        assert!(matches!(err, OtError::Epsilon { .. }));
        assert!(err.to_string().contains("standard deviation"), "{err}");
    }

    #[test]
    fn unbalanced_with_tiny_tau_barely_moves_mass() {
        // With τ → 0 the marginals are almost free: the plan is ≈ exp(−C/ε)-scaled tiny mass
        // where costs are large; here we only check the fixed point satisfies OTT's
        // first-order conditions (the error) and costs are finite.
        let cost = [0.0f32, 4.0, 4.0, 0.0];
        let geom = Geometry::CostMatrix {
            cost: &cost,
            n: 2,
            m: 2,
        };
        let o = SinkhornOptions {
            tau_a: 0.5,
            tau_b: 0.7,
            ..opts(1.0)
        };
        let out = sinkhorn(&geom, &[0.5, 0.5], &[1.0, 1.0], &o).unwrap();
        assert!(out.converged);
        assert!(out.reg_ot_cost.is_finite());
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let cost = [0.0f32, 1.0, 1.0, 0.0];
        let geom = Geometry::CostMatrix {
            cost: &cost,
            n: 2,
            m: 2,
        };
        let o = SinkhornOptions::default();
        let e = |a: &[f32], b: &[f32], o: &SinkhornOptions| sinkhorn(&geom, a, b, o).unwrap_err();
        assert!(matches!(e(&[1.0], &[], &o), OtError::Shape { ref arg, .. } if arg == "a"));
        assert!(matches!(
            e(&[], &[0.5, -0.5], &o),
            OtError::NegativeWeight { index: 1, .. }
        ));
        assert!(matches!(
            e(&[f32::NAN, 1.0], &[], &o),
            OtError::NonFiniteWeight { .. }
        ));
        let mm = e(&[0.5, 0.5], &[1.0, 1.0], &o);
        assert!(matches!(mm, OtError::MassMismatch { ref arg, .. } if arg == "b"));
        assert!(mm.to_string().contains("balanced"), "{mm}");
        // Unequal masses are fine once unbalanced.
        let ub = SinkhornOptions {
            tau_b: 0.9,
            ..Default::default()
        };
        assert!(sinkhorn(&geom, &[0.5, 0.5], &[1.0, 1.0], &ub).is_ok());
        for eps in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
            let o = SinkhornOptions {
                epsilon: Epsilon::Absolute(eps),
                ..Default::default()
            };
            assert!(matches!(e(&[], &[], &o), OtError::Epsilon { .. }));
        }
        let o2 = SinkhornOptions {
            tau_a: 0.0,
            ..Default::default()
        };
        assert!(matches!(
            e(&[], &[], &o2),
            OtError::Option { name: "tau_a", .. }
        ));
        let o2 = SinkhornOptions {
            inner_iterations: 0,
            ..Default::default()
        };
        assert!(matches!(
            e(&[], &[], &o2),
            OtError::Option {
                name: "inner_iterations",
                ..
            }
        ));
        let o2 = SinkhornOptions {
            norm_error: 0.5,
            ..Default::default()
        };
        assert!(matches!(
            e(&[], &[], &o2),
            OtError::Option {
                name: "norm_error",
                ..
            }
        ));

        let short = Geometry::CostMatrix {
            cost: &cost,
            n: 3,
            m: 2,
        };
        assert!(matches!(
            sinkhorn(&short, &[], &[], &o),
            Err(OtError::Shape { .. })
        ));
        let nan = [0.0f32, f32::NAN];
        let g = Geometry::CostMatrix {
            cost: &nan,
            n: 1,
            m: 2,
        };
        assert!(matches!(
            sinkhorn(&g, &[], &[], &o),
            Err(OtError::NonFiniteCost { row: 0, col: 1, .. })
        ));
        let g = Geometry::CostMatrix {
            cost: &[],
            n: 0,
            m: 0,
        };
        assert!(matches!(
            sinkhorn(&g, &[], &[], &o),
            Err(OtError::Empty { .. })
        ));

        let (x, y) = ([0.0f32, 1.0], [0.0f32, 1.0, 2.0]);
        let g = Geometry::PointClouds {
            x: Points::new(&x, 1, 2),
            y: Points::new(&y, 1, 3),
            cost: CostFn::SqEuclidean,
        };
        let err = sinkhorn(&g, &[], &[], &o).unwrap_err();
        assert!(
            err.to_string().contains("`y`") && err.to_string().contains("dimension 2"),
            "{err}"
        );
        let g = Geometry::PointClouds {
            x: Points::new(&[], 0, 2),
            y: Points::new(&x, 1, 2),
            cost: CostFn::SqEuclidean,
        };
        assert!(
            matches!(sinkhorn(&g, &[], &[], &o), Err(OtError::Empty { ref arg, .. }) if arg == "x")
        );
    }

    #[test]
    fn zero_weights_give_minus_infinity_potentials_not_nan() {
        let cost = [0.0f32, 1.0, 1.0, 0.0, 0.5, 0.5];
        let geom = Geometry::CostMatrix {
            cost: &cost,
            n: 3,
            m: 2,
        };
        let out = sinkhorn(&geom, &[0.0, 0.5, 0.5], &[], &opts(0.2)).unwrap();
        assert!(out.converged);
        assert_eq!(out.f[0], f32::NEG_INFINITY);
        assert!(out.reg_ot_cost.is_finite());
        let plan = out.plan.unwrap();
        assert_eq!(&plan[0..2], &[0.0, 0.0]);
    }
}
