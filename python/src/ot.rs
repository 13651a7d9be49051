//! Optimal transport: `sinkhorn`, `sinkhorn_cost`, `multi_sinkhorn`, `m3g`, with the options,
//! defaults and result keys of `latentlab ot` and the wasm package (snake_case here), on the
//! CPU path.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use latentlab::core::matrix::Matrix;
use latentlab::core::ot::{
    self, CostFn, Epsilon, Geometry, MultiSinkhornOptions, OtError, Points, SinkhornOptions,
    DEFAULT_MAX_TENSOR_ENTRIES,
};

use crate::convert::{matrix, tensor_out, value_error, vector, vector_out, vectors_out};

/// Core argument names → the Python names a caller passed (the rest are the same).
const MULTI_NAMES: &[(&str, &str)] = &[("x_s", "clouds"), ("a_s", "weights")];

fn ot_error(e: OtError, names: &[(&str, &str)]) -> PyErr {
    let mut message = e.to_string();
    for (core, py) in names {
        message = message
            .replace(&format!("`{core}`"), &format!("`{py}`"))
            .replace(&format!("`{core}["), &format!("`{py}["))
            .replace(&format!("that of {core}["), &format!("that of {py}["));
    }
    value_error(message)
}

fn epsilon(epsilon: Option<f32>, relative_epsilon: Option<f32>) -> PyResult<Epsilon> {
    match (epsilon, relative_epsilon) {
        (Some(e), None) => Ok(Epsilon::Absolute(e)),
        (None, Some(r)) => Ok(Epsilon::RelativeToMean(r)),
        (Some(_), Some(_)) => Err(value_error(
            "epsilon and relative_epsilon are both given: give one",
        )),
        (None, None) => Err(value_error(
            "epsilon (absolute) or relative_epsilon (× the mean cost) is required",
        )),
    }
}

fn cost_fn(name: &str) -> PyResult<CostFn> {
    match name {
        "sqeuclidean" => Ok(CostFn::SqEuclidean),
        "cosine" => Ok(CostFn::Cosine),
        other => Err(value_error(format!(
            "cost_fn is {other:?}: expected \"sqeuclidean\" or \"cosine\""
        ))),
    }
}

/// Weights given as an array; None is uniform, an empty array is refused (it would silently
/// mean uniform too).
fn weights(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<f32>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let w = vector(obj, what)?;
    if w.is_empty() {
        return Err(value_error(format!(
            "{what} is empty: leave it out (None) for uniform weights"
        )));
    }
    Ok(w)
}

struct SinkhornArgs {
    opts: SinkhornOptions,
    a: Vec<f32>,
    b: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn sinkhorn_args(
    eps: Option<f32>,
    relative_epsilon: Option<f32>,
    a: Option<&Bound<'_, PyAny>>,
    b: Option<&Bound<'_, PyAny>>,
    tau_a: f32,
    tau_b: f32,
    threshold: f32,
    max_iterations: usize,
    return_plan: bool,
) -> PyResult<SinkhornArgs> {
    Ok(SinkhornArgs {
        opts: SinkhornOptions {
            epsilon: epsilon(eps, relative_epsilon)?,
            tau_a,
            tau_b,
            threshold,
            max_iterations,
            return_plan,
            ..SinkhornOptions::default()
        },
        a: weights(a, "a")?,
        b: weights(b, "b")?,
    })
}

fn sinkhorn_result<'py>(
    py: Python<'py>,
    out: ot::SinkhornOutput,
    n: usize,
    m: usize,
    cost_fn: Option<&str>,
    opts: &SinkhornOptions,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("backend", "cpu")?;
    d.set_item("reg_ot_cost", out.reg_ot_cost)?;
    d.set_item("ent_reg_cost", out.ent_reg_cost)?;
    d.set_item("transport_cost", out.transport_cost)?;
    d.set_item("epsilon", out.epsilon)?;
    d.set_item("n_iters", out.n_iters)?;
    d.set_item("converged", out.converged)?;
    d.set_item("errors", vector_out(py, out.errors))?;
    d.set_item("n", n)?;
    d.set_item("m", m)?;
    d.set_item("cost_fn", cost_fn)?;
    d.set_item("tau_a", opts.tau_a)?;
    d.set_item("tau_b", opts.tau_b)?;
    d.set_item("f", vector_out(py, out.f))?;
    d.set_item("g", vector_out(py, out.g))?;
    if let Some(plan) = out.plan {
        d.set_item("plan", tensor_out(py, &[n, m], plan)?)?;
    }
    Ok(d)
}

/// Entropic OT between the rows of `x` (n × d) and `y` (m × d): log-domain Sinkhorn,
/// balanced or unbalanced, as `latentlab ot sinkhorn`.
#[pyfunction]
#[pyo3(signature = (x, y, *, epsilon=None, relative_epsilon=None, cost_fn="sqeuclidean",
    a=None, b=None, tau_a=1.0, tau_b=1.0, threshold=1e-3, max_iterations=2000, return_plan=false))]
#[allow(clippy::too_many_arguments)]
pub fn sinkhorn<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    epsilon: Option<f32>,
    relative_epsilon: Option<f32>,
    cost_fn: &str,
    a: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    tau_a: f32,
    tau_b: f32,
    threshold: f32,
    max_iterations: usize,
    return_plan: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (x, y) = (matrix(x, "x")?, matrix(y, "y")?);
    let cost = self::cost_fn(cost_fn)?;
    let args = sinkhorn_args(
        epsilon,
        relative_epsilon,
        a,
        b,
        tau_a,
        tau_b,
        threshold,
        max_iterations,
        return_plan,
    )?;
    let (n, m) = (x.rows, y.rows);
    let out = py
        .detach(|| {
            let geom = Geometry::PointClouds {
                x: Points::new(&x.data, x.rows, x.cols),
                y: Points::new(&y.data, y.rows, y.cols),
                cost,
            };
            ot::sinkhorn(&geom, &args.a, &args.b, &args.opts)
        })
        .map_err(|e| ot_error(e, &[]))?;
    sinkhorn_result(py, out, n, m, Some(cost_fn), &args.opts)
}

/// Entropic OT under an n × m cost matrix, as `latentlab ot sinkhorn --cost`.
#[pyfunction]
#[pyo3(signature = (cost, *, epsilon=None, relative_epsilon=None, a=None, b=None,
    tau_a=1.0, tau_b=1.0, threshold=1e-3, max_iterations=2000, return_plan=false))]
#[allow(clippy::too_many_arguments)]
pub fn sinkhorn_cost<'py>(
    py: Python<'py>,
    cost: &Bound<'py, PyAny>,
    epsilon: Option<f32>,
    relative_epsilon: Option<f32>,
    a: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    tau_a: f32,
    tau_b: f32,
    threshold: f32,
    max_iterations: usize,
    return_plan: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let cost = matrix(cost, "cost")?;
    let args = sinkhorn_args(
        epsilon,
        relative_epsilon,
        a,
        b,
        tau_a,
        tau_b,
        threshold,
        max_iterations,
        return_plan,
    )?;
    let (n, m) = (cost.rows, cost.cols);
    let out = py
        .detach(|| {
            let geom = Geometry::CostMatrix {
                cost: &cost.data,
                n,
                m,
            };
            ot::sinkhorn(&geom, &args.a, &args.b, &args.opts)
        })
        .map_err(|e| ot_error(e, &[]))?;
    sinkhorn_result(py, out, n, m, None, &args.opts)
}

/// Point clouds from a list of 2-D arrays with one common dimension.
fn clouds(list: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Matrix>> {
    let list = list
        .cast::<PyList>()
        .map_err(|_| value_error(format!("{what} must be a list of 2-D arrays")))?;
    let clouds: Vec<Matrix> = list
        .iter()
        .enumerate()
        .map(|(l, c)| matrix(&c, &format!("{what}[{l}]")))
        .collect::<PyResult<_>>()?;
    if let Some(first) = clouds.first() {
        if let Some((l, c)) = clouds
            .iter()
            .enumerate()
            .find(|(_, c)| c.cols != first.cols)
        {
            return Err(value_error(format!(
                "{what}[{l}] has {} columns but {what}[0] has {}: every point cloud needs the same dimension",
                c.cols, first.cols
            )));
        }
    }
    Ok(clouds)
}

fn points(clouds: &[Matrix]) -> Vec<Points<'_>> {
    clouds
        .iter()
        .map(|c| Points::new(&c.data, c.rows, c.cols))
        .collect()
}

fn multi_options(
    eps: Option<f32>,
    relative_epsilon: Option<f32>,
    threshold: f32,
    max_iterations: usize,
    max_tensor_entries: usize,
    return_coupling: bool,
) -> PyResult<MultiSinkhornOptions> {
    Ok(MultiSinkhornOptions {
        epsilon: epsilon(eps, relative_epsilon)?,
        threshold,
        max_iterations,
        max_tensor_entries,
        return_coupling,
        ..MultiSinkhornOptions::default()
    })
}

/// Entropic multi-marginal OT between k ≥ 2 point clouds (`clouds[l]` is n_l × d), as
/// OTT-JAX's `MMSinkhorn`.
#[pyfunction]
#[pyo3(signature = (clouds, *, epsilon=None, relative_epsilon=None, cost_fn="sqeuclidean",
    weights=None, threshold=1e-3, max_iterations=2000,
    max_tensor_entries=DEFAULT_MAX_TENSOR_ENTRIES, return_coupling=false))]
#[allow(clippy::too_many_arguments)]
pub fn multi_sinkhorn<'py>(
    py: Python<'py>,
    clouds: &Bound<'py, PyAny>,
    epsilon: Option<f32>,
    relative_epsilon: Option<f32>,
    cost_fn: &str,
    weights: Option<&Bound<'py, PyAny>>,
    threshold: f32,
    max_iterations: usize,
    max_tensor_entries: usize,
    return_coupling: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let data = self::clouds(clouds, "clouds")?;
    let weights: Vec<Vec<f32>> = match weights.filter(|w| !w.is_none()) {
        None => Vec::new(),
        Some(w) => {
            let list = w.cast::<PyList>().map_err(|_| {
                value_error("weights must be a list of 1-D arrays, one per point cloud")
            })?;
            list.iter()
                .enumerate()
                .map(|(l, w)| self::weights(Some(&w), &format!("weights[{l}]")))
                .collect::<PyResult<_>>()?
        }
    };
    if !weights.is_empty() && weights.len() != data.len() {
        return Err(value_error(format!(
            "weights has {} arrays for {} point clouds: give one per cloud, or None for uniform weights",
            weights.len(),
            data.len()
        )));
    }
    let cost = self::cost_fn(cost_fn)?;
    let opts = multi_options(
        epsilon,
        relative_epsilon,
        threshold,
        max_iterations,
        max_tensor_entries,
        return_coupling,
    )?;
    let out = py
        .detach(|| {
            let w: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
            ot::multi_sinkhorn(&points(&data), &w, cost, &opts)
        })
        .map_err(|e| ot_error(e, MULTI_NAMES))?;
    let d = PyDict::new(py);
    d.set_item("backend", "cpu")?;
    d.set_item("ent_reg_cost", out.ent_reg_cost)?;
    d.set_item("epsilon", out.epsilon)?;
    d.set_item("n_iters", out.n_iters)?;
    d.set_item("converged", out.converged)?;
    d.set_item("errors", vector_out(py, out.errors))?;
    d.set_item("shape", out.shape.clone())?;
    d.set_item("k", data.len())?;
    d.set_item("sizes", data.iter().map(|c| c.rows).collect::<Vec<_>>())?;
    d.set_item("dim", data.first().map(|c| c.cols))?;
    d.set_item("cost_fn", cost_fn)?;
    d.set_item("potentials", vectors_out(py, out.potentials)?)?;
    if let Some(coupling) = out.coupling {
        d.set_item("coupling", tensor_out(py, &out.shape, coupling)?)?;
    }
    Ok(d)
}

/// The multi-marginal matching gap (M3G) of k ≥ 2 views of the same n items (`views[l]` is
/// n × d, row i is item i), with its gradient when `with_gradient`.
#[pyfunction]
#[pyo3(signature = (views, *, epsilon=None, relative_epsilon=None, cost_fn="sqeuclidean",
    threshold=1e-3, max_iterations=2000, max_tensor_entries=DEFAULT_MAX_TENSOR_ENTRIES,
    with_gradient=false))]
#[allow(clippy::too_many_arguments)]
pub fn m3g<'py>(
    py: Python<'py>,
    views: &Bound<'py, PyAny>,
    epsilon: Option<f32>,
    relative_epsilon: Option<f32>,
    cost_fn: &str,
    threshold: f32,
    max_iterations: usize,
    max_tensor_entries: usize,
    with_gradient: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let data = clouds(views, "views")?;
    let cost = self::cost_fn(cost_fn)?;
    let opts = multi_options(
        epsilon,
        relative_epsilon,
        threshold,
        max_iterations,
        max_tensor_entries,
        false,
    )?;
    let out = py
        .detach(|| ot::m3g(&points(&data), cost, &opts, with_gradient))
        .map_err(|e| ot_error(e, MULTI_NAMES))?;
    let (k, n, dim) = (
        data.len(),
        data.first().map_or(0, |c| c.rows),
        data.first().map_or(0, |c| c.cols),
    );
    let d = PyDict::new(py);
    d.set_item("backend", "cpu")?;
    d.set_item("m3g", out.m3g)?;
    d.set_item("ground_truth_cost", out.ground_truth_cost)?;
    d.set_item("ent_reg_cost", out.ent_reg_cost)?;
    d.set_item("epsilon", out.epsilon)?;
    d.set_item("n_iters", out.n_iters)?;
    d.set_item("converged", out.converged)?;
    d.set_item("errors", vector_out(py, out.errors))?;
    d.set_item("k", k)?;
    d.set_item("n", n)?;
    d.set_item("cost_fn", cost_fn)?;
    d.set_item("potentials", vectors_out(py, out.potentials)?)?;
    if let Some(gradient) = out.gradient {
        let rows = gradient
            .into_iter()
            .map(|g| tensor_out(py, &[n, dim], g))
            .collect::<PyResult<Vec<_>>>()?;
        d.set_item("gradient", PyList::new(py, rows)?)?;
    }
    Ok(d)
}
