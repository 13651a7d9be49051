//! Optimal transport for JavaScript: `sinkhorn`, `sinkhornCost`, `multiSinkhorn`, `m3g`.
//!
//! Point clouds cross as row-major `Float32Array`s with their sizes and dimension beside
//! them; options are plain objects with camelCase keys (unknown keys are refused by name).
//! Results keep the CLI's snake_case keys (`reg_ot_cost`, `n_iters`, …), carry
//! `backend` ("cpu", or "webgpu" from the async forms `sinkhornAsync`, `multiSinkhornAsync`,
//! `m3gAsync`, which run the WGSL kernels of `crate::gpu` when the browser offers WebGPU and
//! fall back to the CPU, saying why, when it does not or the GPU fails), and hold potentials,
//! plans and gradients as `Float32Array`s.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{
    backend_option, f32_array, forget_webgpu, set, size_arg, to_js, webgpu, Options, WebGpu,
};
use crate::core::ot::{
    self, CostFn, Epsilon, Geometry, MultiSinkhornOptions, OtError, Points, SinkhornOptions,
};
use crate::gpu::multi as gpu_multi;
use crate::gpu::sinkhorn::{sinkhorn_async as gpu_sinkhorn_async, GpuSolveError};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
/** The ground cost between points: ‖x − y‖² or 1 − cos(x, y). */
export type OtCostFn = "sqeuclidean" | "cosine";
/** Exactly one of `epsilon` (absolute) and `relativeEpsilon` (× the mean cost) is required. */
export interface SinkhornOptions {
  epsilon?: number; relativeEpsilon?: number;
  /** Point clouds only (not sinkhornCost); default "sqeuclidean". */
  costFn?: OtCostFn;
  /** Marginal weights (default uniform). */
  a?: Float32Array | number[]; b?: Float32Array | number[];
  /** Marginal relaxations in (0, 1]; 1 (default) is balanced. */
  tauA?: number; tauB?: number;
  /** Stop when the marginal error is below this (default 1e-3). */
  threshold?: number;
  /** Default 2000. */
  maxIterations?: number;
  /** Return the n × m plan (default false). */
  returnPlan?: boolean;
}
export interface SinkhornResult {
  backend: "cpu" | "webgpu";
  reg_ot_cost: number; ent_reg_cost: number; transport_cost: number; epsilon: number;
  n_iters: number; converged: boolean; errors: number[]; n: number; m: number;
  /** Potentials (-Infinity where a weight is 0). */
  f: Float32Array; g: Float32Array;
  /** n × m, row-major, when returnPlan. */
  plan?: Float32Array;
}
export interface MultiSinkhornOptions {
  epsilon?: number; relativeEpsilon?: number; costFn?: OtCostFn;
  /** One probability vector per point cloud (default uniform). */
  weights?: (Float32Array | number[])[];
  threshold?: number; maxIterations?: number;
  /** Refuse tensors with more entries (default 2^24). */
  maxTensorEntries?: number;
  /** Return the coupling tensor (default false). */
  returnCoupling?: boolean;
}
export interface MultiSinkhornResult {
  backend: "cpu" | "webgpu";
  ent_reg_cost: number; epsilon: number; n_iters: number; converged: boolean;
  errors: number[]; shape: number[];
  potentials: Float32Array[];
  /** Row-major over shape, when returnCoupling. */
  coupling?: Float32Array;
}
export interface M3gOptions {
  epsilon?: number; relativeEpsilon?: number; costFn?: OtCostFn;
  threshold?: number; maxIterations?: number; maxTensorEntries?: number;
}
export interface M3gResult {
  backend: "cpu" | "webgpu";
  m3g: number; ground_truth_cost: number; ent_reg_cost: number; epsilon: number;
  n_iters: number; converged: boolean; errors: number[]; k: number; n: number;
  potentials: Float32Array[];
  /** ∂M3G/∂views[a], one n × dim row-major array per view, when withGradient. */
  gradient?: Float32Array[];
}
/** Where an async solver runs: WebGPU when the browser has an adapter, else the CPU ("auto",
 * the default); "gpu" fails rather than fall back; "cpu" never asks for a GPU. */
export type OtBackend = "auto" | "gpu" | "cpu";
/** What the async solvers add: the adapter used, or why they fell back to the CPU. */
export interface OtBackendReport { adapter?: string; fallback?: string }
"#;

const SINKHORN_KEYS: &[&str] = &[
    "epsilon",
    "relativeEpsilon",
    "costFn",
    "a",
    "b",
    "tauA",
    "tauB",
    "threshold",
    "maxIterations",
    "returnPlan",
];
const SINKHORN_COST_KEYS: &[&str] = &[
    "epsilon",
    "relativeEpsilon",
    "a",
    "b",
    "tauA",
    "tauB",
    "threshold",
    "maxIterations",
    "returnPlan",
];
const MULTI_KEYS: &[&str] = &[
    "epsilon",
    "relativeEpsilon",
    "costFn",
    "weights",
    "threshold",
    "maxIterations",
    "maxTensorEntries",
    "returnCoupling",
];
const M3G_KEYS: &[&str] = &[
    "epsilon",
    "relativeEpsilon",
    "costFn",
    "threshold",
    "maxIterations",
    "maxTensorEntries",
];

const EPSILON_HINT: &str = "give at least { epsilon } or { relativeEpsilon }";

/// Core argument names → the JS names a caller passed.
const SINKHORN_NAMES: &[(&str, &str)] = &[
    ("a", "options.a"),
    ("b", "options.b"),
    ("tau_a", "options.tauA"),
    ("tau_b", "options.tauB"),
    ("threshold", "options.threshold"),
    ("max_iterations", "options.maxIterations"),
];
const MULTI_NAMES: &[(&str, &str)] = &[
    ("x_s", "clouds"),
    ("a_s", "options.weights"),
    ("threshold", "options.threshold"),
    ("max_iterations", "options.maxIterations"),
    ("max_tensor_entries", "options.maxTensorEntries"),
];

/// A core error as a `JsError` whose message uses the JS names of the arguments.
fn ot_error(e: OtError, names: &[(&str, &str)]) -> JsError {
    let mut message = e.to_string();
    for (core, js) in names {
        message = message
            .replace(&format!("`{core}`"), &format!("`{js}`"))
            .replace(&format!("`{core}["), &format!("`{js}["))
            .replace(&format!("that of {core}["), &format!("that of {js}["));
    }
    JsError::new(&message)
}

impl Options {
    fn epsilon(&self) -> Result<Epsilon, JsError> {
        match (self.get::<f32>("epsilon")?, self.get::<f32>("relativeEpsilon")?) {
            (Some(e), None) => Ok(Epsilon::Absolute(e)),
            (None, Some(r)) => Ok(Epsilon::RelativeToMean(r)),
            (Some(_), Some(_)) => Err(JsError::new(
                "options.epsilon and options.relativeEpsilon are both given: give one",
            )),
            (None, None) => Err(JsError::new(
                "options.epsilon (absolute) or options.relativeEpsilon (× the mean cost) is required",
            )),
        }
    }

    fn cost_fn(&self) -> Result<CostFn, JsError> {
        match self.get::<String>("costFn")?.as_deref() {
            None | Some("sqeuclidean") => Ok(CostFn::SqEuclidean),
            Some("cosine") => Ok(CostFn::Cosine),
            Some(other) => Err(JsError::new(&format!(
                "options.costFn is {other:?}: expected \"sqeuclidean\" or \"cosine\""
            ))),
        }
    }

    fn sinkhorn(&self) -> Result<(SinkhornOptions, Vec<f32>, Vec<f32>), JsError> {
        let d = SinkhornOptions::default();
        let opts = SinkhornOptions {
            epsilon: self.epsilon()?,
            tau_a: self.get("tauA")?.unwrap_or(d.tau_a),
            tau_b: self.get("tauB")?.unwrap_or(d.tau_b),
            threshold: self.get("threshold")?.unwrap_or(d.threshold),
            max_iterations: self.get("maxIterations")?.unwrap_or(d.max_iterations),
            return_plan: self.get("returnPlan")?.unwrap_or(false),
            ..d
        };
        let a = self.weights("a")?;
        let b = self.weights("b")?;
        Ok((opts, a, b))
    }

    /// A weight vector; absent is uniform, an empty one is refused (it would silently
    /// mean uniform too).
    fn weights(&self, key: &str) -> Result<Vec<f32>, JsError> {
        match self.get::<Vec<f32>>(key)? {
            None => Ok(Vec::new()),
            Some(w) if w.is_empty() => Err(JsError::new(&format!(
                "options.{key} is empty: leave it out for uniform weights"
            ))),
            Some(w) => Ok(w),
        }
    }

    fn multi(&self) -> Result<MultiSinkhornOptions, JsError> {
        let d = MultiSinkhornOptions::default();
        Ok(MultiSinkhornOptions {
            epsilon: self.epsilon()?,
            threshold: self.get("threshold")?.unwrap_or(d.threshold),
            max_iterations: self.get("maxIterations")?.unwrap_or(d.max_iterations),
            max_tensor_entries: self
                .get("maxTensorEntries")?
                .unwrap_or(d.max_tensor_entries),
            return_coupling: self.get("returnCoupling")?.unwrap_or(false),
            ..d
        })
    }
}

fn f32_arrays(values: &[Vec<f32>]) -> JsValue {
    values
        .iter()
        .map(|v| f32_array(v))
        .collect::<js_sys::Array>()
        .into()
}

/// An array of `Float32Array`s (or of arrays of numbers), each copied out.
fn arrays_from_js(value: &JsValue, what: &str) -> Result<Vec<Vec<f32>>, JsError> {
    let Some(array) = value.dyn_ref::<js_sys::Array>() else {
        return Err(JsError::new(&format!(
            "{what} must be an array of Float32Array, one per point cloud"
        )));
    };
    array
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if let Some(f) = v.dyn_ref::<js_sys::Float32Array>() {
                Ok(f.to_vec())
            } else if js_sys::Array::is_array(&v) {
                Ok(js_sys::Float32Array::new(&v).to_vec())
            } else {
                Err(JsError::new(&format!(
                    "{what}[{i}] must be a Float32Array of row-major points"
                )))
            }
        })
        .collect()
}

#[derive(Serialize)]
struct SinkhornResult<'a> {
    backend: &'static str,
    reg_ot_cost: f32,
    ent_reg_cost: f32,
    transport_cost: f32,
    epsilon: f32,
    n_iters: usize,
    converged: bool,
    errors: &'a [f32],
    n: usize,
    m: usize,
}

fn run_sinkhorn(
    geom: &Geometry,
    n: usize,
    m: usize,
    options: &Options,
) -> Result<JsValue, JsError> {
    let (opts, a, b) = options.sinkhorn()?;
    let out = ot::sinkhorn(geom, &a, &b, &opts).map_err(|e| ot_error(e, SINKHORN_NAMES))?;
    sinkhorn_result(&out, "cpu", n, m)
}

fn sinkhorn_result(
    out: &ot::SinkhornOutput,
    backend: &'static str,
    n: usize,
    m: usize,
) -> Result<JsValue, JsError> {
    let result = to_js(&SinkhornResult {
        backend,
        reg_ot_cost: out.reg_ot_cost,
        ent_reg_cost: out.ent_reg_cost,
        transport_cost: out.transport_cost,
        epsilon: out.epsilon,
        n_iters: out.n_iters,
        converged: out.converged,
        errors: &out.errors,
        n,
        m,
    })?;
    set(&result, "f", &f32_array(&out.f))?;
    set(&result, "g", &f32_array(&out.g))?;
    if let Some(plan) = &out.plan {
        set(&result, "plan", &f32_array(plan))?;
    }
    Ok(result)
}

/// The sizes of two point clouds from JavaScript, checked as numbers.
fn cloud_sizes(n: f64, m: f64, dim: f64) -> Result<(usize, usize, usize), JsError> {
    Ok((
        size_arg(n, "n", 0)?,
        size_arg(m, "m", 0)?,
        size_arg(dim, "dim", 1)?,
    ))
}

/// Entropic OT between `x` (`n × dim`, row-major) and `y` (`m × dim`): log-domain
/// Sinkhorn as OTT-JAX, balanced or unbalanced. Weights default to uniform.
#[wasm_bindgen(unchecked_return_type = "SinkhornResult")]
pub fn sinkhorn(
    x: &[f32],
    n: f64,
    y: &[f32],
    m: f64,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "SinkhornOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let options = Options::required(options, SINKHORN_KEYS, "sinkhorn options", EPSILON_HINT)?;
    let (n, m, dim) = cloud_sizes(n, m, dim)?;
    let geom = Geometry::PointClouds {
        x: Points::new(x, n, dim),
        y: Points::new(y, m, dim),
        cost: options.cost_fn()?,
    };
    run_sinkhorn(&geom, n, m, &options)
}

/// `sinkhorn` on WebGPU when the browser has an adapter, else (or when the GPU fails
/// mid-solve, e.g. a lost device) on the CPU; the result says which (`backend`: "webgpu" or
/// "cpu") and why it fell back (`fallback`). `options.backend`: "auto" (default), "gpu"
/// (fail rather than fall back) or "cpu".
#[wasm_bindgen(js_name = sinkhornAsync, unchecked_return_type = "SinkhornResult & OtBackendReport")]
pub async fn sinkhorn_async(
    x: Vec<f32>,
    n: f64,
    y: Vec<f32>,
    m: f64,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "SinkhornOptions & { backend?: OtBackend }")]
    options: JsValue,
) -> Result<JsValue, JsError> {
    // sinkhorn's options plus the backend choice.
    let keys: Vec<&str> = SINKHORN_KEYS.iter().copied().chain(["backend"]).collect();
    let options = Options::required(options, &keys, "sinkhornAsync options", EPSILON_HINT)?;
    let backend = backend_option(&options)?;
    let (n, m, dim) = cloud_sizes(n, m, dim)?;
    let geom = Geometry::PointClouds {
        x: Points::new(&x, n, dim),
        y: Points::new(&y, m, dim),
        cost: options.cost_fn()?,
    };
    let (opts, a, b) = options.sinkhorn()?;
    let on_gpu = on_webgpu(&backend, SINKHORN_NAMES, |shared| {
        let (geom, a, b, opts) = (&geom, &a, &b, &opts);
        async move { gpu_sinkhorn_async(&shared.gpu, shared.sinkhorn(), geom, a, b, opts).await }
    })
    .await?;
    match on_gpu {
        WebGpuOutcome::Solved(out, adapter) => {
            report(sinkhorn_result(&out, "webgpu", n, m)?, Some(adapter), None)
        }
        WebGpuOutcome::Cpu(fallback) => {
            let out =
                ot::sinkhorn(&geom, &a, &b, &opts).map_err(|e| ot_error(e, SINKHORN_NAMES))?;
            report(sinkhorn_result(&out, "cpu", n, m)?, None, fallback)
        }
    }
}

/// Entropic OT under an `n × m` cost matrix (row-major).
#[wasm_bindgen(js_name = sinkhornCost, unchecked_return_type = "SinkhornResult")]
pub fn sinkhorn_cost(
    cost: &[f32],
    n: f64,
    m: f64,
    #[wasm_bindgen(unchecked_param_type = "Omit<SinkhornOptions, \"costFn\">")] options: JsValue,
) -> Result<JsValue, JsError> {
    let options = Options::required(
        options,
        SINKHORN_COST_KEYS,
        "sinkhornCost options",
        EPSILON_HINT,
    )?;
    let (n, m) = (size_arg(n, "n", 0)?, size_arg(m, "m", 0)?);
    let geom = Geometry::CostMatrix { cost, n, m };
    run_sinkhorn(&geom, n, m, &options)
}

#[derive(Serialize)]
struct MultiResult<'a> {
    backend: &'static str,
    ent_reg_cost: f32,
    epsilon: f32,
    n_iters: usize,
    converged: bool,
    errors: &'a [f32],
    shape: &'a [usize],
}

/// A multi-marginal call's inputs, checked for shape on the JS side of the boundary.
struct MultiCall {
    data: Vec<Vec<f32>>,
    sizes: Vec<usize>,
    dim: usize,
    weights: Vec<Vec<f32>>,
    cost: CostFn,
    opts: MultiSinkhornOptions,
}

impl MultiCall {
    fn points(&self) -> Vec<Points<'_>> {
        self.data
            .iter()
            .zip(&self.sizes)
            .map(|(d, &n)| Points::new(d, n, self.dim))
            .collect()
    }

    fn weights(&self) -> Vec<&[f32]> {
        self.weights.iter().map(Vec::as_slice).collect()
    }
}

fn multi_call(
    clouds: &JsValue,
    sizes: JsValue,
    dim: f64,
    options: &Options,
) -> Result<MultiCall, JsError> {
    let dim = size_arg(dim, "dim", 1)?;
    let data = arrays_from_js(clouds, "clouds")?;
    let sizes: Vec<usize> = serde_wasm_bindgen::from_value(sizes).map_err(|e| {
        JsError::new(&format!(
            "sizes must be an array of point counts, one per cloud: {e}"
        ))
    })?;
    if sizes.len() != data.len() {
        return Err(JsError::new(&format!(
            "sizes has {} entries but clouds has {}: give one size per point cloud",
            sizes.len(),
            data.len()
        )));
    }
    Ok(MultiCall {
        data,
        sizes,
        dim,
        weights: options.get::<Vec<Vec<f32>>>("weights")?.unwrap_or_default(),
        cost: options.cost_fn()?,
        opts: options.multi()?,
    })
}

fn multi_result(out: &ot::MultiSinkhornOutput, backend: &'static str) -> Result<JsValue, JsError> {
    let result = to_js(&MultiResult {
        backend,
        ent_reg_cost: out.ent_reg_cost,
        epsilon: out.epsilon,
        n_iters: out.n_iters,
        converged: out.converged,
        errors: &out.errors,
        shape: &out.shape,
    })?;
    set(&result, "potentials", &f32_arrays(&out.potentials))?;
    if let Some(coupling) = &out.coupling {
        set(&result, "coupling", &f32_array(coupling))?;
    }
    Ok(result)
}

/// Entropic multi-marginal OT between k ≥ 2 point clouds (`clouds[l]` is
/// `sizes[l] × dim`, row-major), as OTT-JAX's `MMSinkhorn`.
#[wasm_bindgen(js_name = multiSinkhorn, unchecked_return_type = "MultiSinkhornResult")]
pub fn multi_sinkhorn(
    #[wasm_bindgen(unchecked_param_type = "Float32Array[]")] clouds: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number[]")] sizes: JsValue,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "MultiSinkhornOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let options = Options::required(options, MULTI_KEYS, "multiSinkhorn options", EPSILON_HINT)?;
    let call = multi_call(&clouds, sizes, dim, &options)?;
    let out = ot::multi_sinkhorn(&call.points(), &call.weights(), call.cost, &call.opts)
        .map_err(|e| ot_error(e, MULTI_NAMES))?;
    multi_result(&out, "cpu")
}

/// `multiSinkhorn` on WebGPU (k ≤ 4) when the browser has an adapter, else (or when the GPU
/// fails, or k > 4) on the CPU; `backend`, `adapter` and `fallback` say which and why.
#[wasm_bindgen(
    js_name = multiSinkhornAsync,
    unchecked_return_type = "MultiSinkhornResult & OtBackendReport"
)]
pub async fn multi_sinkhorn_async(
    #[wasm_bindgen(unchecked_param_type = "Float32Array[]")] clouds: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number[]")] sizes: JsValue,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "MultiSinkhornOptions & { backend?: OtBackend }")]
    options: JsValue,
) -> Result<JsValue, JsError> {
    let keys: Vec<&str> = MULTI_KEYS.iter().copied().chain(["backend"]).collect();
    let options = Options::required(options, &keys, "multiSinkhornAsync options", EPSILON_HINT)?;
    let backend = backend_option(&options)?;
    let call = multi_call(&clouds, sizes, dim, &options)?;
    let (points, weights) = (call.points(), call.weights());
    let on_gpu = on_webgpu(&backend, MULTI_NAMES, |shared| {
        let (points, weights, opts) = (&points, &weights, &call.opts);
        async move {
            gpu_multi::multi_sinkhorn_async(
                &shared.gpu,
                shared.multi(),
                points,
                weights,
                call.cost,
                opts,
            )
            .await
        }
    })
    .await?;
    match on_gpu {
        WebGpuOutcome::Solved(out, adapter) => {
            report(multi_result(&out, "webgpu")?, Some(adapter), None)
        }
        WebGpuOutcome::Cpu(fallback) => {
            let out = ot::multi_sinkhorn(&points, &weights, call.cost, &call.opts)
                .map_err(|e| ot_error(e, MULTI_NAMES))?;
            report(multi_result(&out, "cpu")?, None, fallback)
        }
    }
}

#[derive(Serialize)]
struct M3gResult<'a> {
    backend: &'static str,
    m3g: f32,
    ground_truth_cost: f32,
    ent_reg_cost: f32,
    epsilon: f32,
    n_iters: usize,
    converged: bool,
    errors: &'a [f32],
    k: usize,
    n: usize,
}

fn m3g_result(
    out: &ot::M3gOutput,
    backend: &'static str,
    k: usize,
    n: usize,
) -> Result<JsValue, JsError> {
    let result = to_js(&M3gResult {
        backend,
        m3g: out.m3g,
        ground_truth_cost: out.ground_truth_cost,
        ent_reg_cost: out.ent_reg_cost,
        epsilon: out.epsilon,
        n_iters: out.n_iters,
        converged: out.converged,
        errors: &out.errors,
        k,
        n,
    })?;
    set(&result, "potentials", &f32_arrays(&out.potentials))?;
    if let Some(gradient) = &out.gradient {
        set(&result, "gradient", &f32_arrays(gradient))?;
    }
    Ok(result)
}

/// The multi-marginal matching gap (M3G) of k ≥ 2 views of the same n items (`views[l]`
/// is `n × dim`, row `i` is item i), with its gradient when `withGradient`.
#[wasm_bindgen(unchecked_return_type = "M3gResult")]
pub fn m3g(
    #[wasm_bindgen(unchecked_param_type = "Float32Array[]")] views: JsValue,
    n: f64,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "M3gOptions")] options: JsValue,
    #[wasm_bindgen(js_name = withGradient)] with_gradient: Option<bool>,
) -> Result<JsValue, JsError> {
    let options = Options::required(options, M3G_KEYS, "m3g options", EPSILON_HINT)?;
    let (n, dim) = (size_arg(n, "n", 0)?, size_arg(dim, "dim", 1)?);
    let data = arrays_from_js(&views, "views")?;
    let points: Vec<Points> = data.iter().map(|d| Points::new(d, n, dim)).collect();
    let out = ot::m3g(
        &points,
        options.cost_fn()?,
        &options.multi()?,
        with_gradient.unwrap_or(false),
    )
    .map_err(|e| ot_error(e, MULTI_NAMES))?;
    m3g_result(&out, "cpu", points.len(), n)
}

/// `m3g` with the multi-marginal solve on WebGPU (k ≤ 4) when the browser has an adapter,
/// else on the CPU; the gradient is computed on the CPU from the potentials either way.
#[wasm_bindgen(js_name = m3gAsync, unchecked_return_type = "M3gResult & OtBackendReport")]
pub async fn m3g_async(
    #[wasm_bindgen(unchecked_param_type = "Float32Array[]")] views: JsValue,
    n: f64,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "M3gOptions & { backend?: OtBackend }")] options: JsValue,
    #[wasm_bindgen(js_name = withGradient)] with_gradient: Option<bool>,
) -> Result<JsValue, JsError> {
    let keys: Vec<&str> = M3G_KEYS.iter().copied().chain(["backend"]).collect();
    let options = Options::required(options, &keys, "m3gAsync options", EPSILON_HINT)?;
    let backend = backend_option(&options)?;
    let (n, dim) = (size_arg(n, "n", 0)?, size_arg(dim, "dim", 1)?);
    let data = arrays_from_js(&views, "views")?;
    let points: Vec<Points> = data.iter().map(|d| Points::new(d, n, dim)).collect();
    let (cost, opts) = (options.cost_fn()?, options.multi()?);
    let with_gradient = with_gradient.unwrap_or(false);
    let k = points.len();
    let on_gpu = on_webgpu(&backend, MULTI_NAMES, |shared| {
        let (points, opts) = (&points, &opts);
        async move {
            gpu_multi::m3g_async(
                &shared.gpu,
                shared.multi(),
                points,
                cost,
                opts,
                with_gradient,
            )
            .await
        }
    })
    .await?;
    match on_gpu {
        WebGpuOutcome::Solved(out, adapter) => {
            report(m3g_result(&out, "webgpu", k, n)?, Some(adapter), None)
        }
        WebGpuOutcome::Cpu(fallback) => {
            let out = ot::m3g(&points, cost, &opts, with_gradient)
                .map_err(|e| ot_error(e, MULTI_NAMES))?;
            report(m3g_result(&out, "cpu", k, n)?, None, fallback)
        }
    }
}

/// What [`on_webgpu`] did: solved (with the adapter's name), or left it to the CPU (with why,
/// unless the caller asked for the CPU).
enum WebGpuOutcome<T> {
    Solved(T, String),
    Cpu(Option<String>),
}

/// Runs `solve` on the page's shared WebGPU device unless `backend` is "cpu". Bad input is an
/// error in the CPU path's words; with "auto" a missing adapter or a GPU failure (a lost
/// device, k > 4) leaves the problem to the CPU and says why, with "gpu" it is an error. A
/// device that failed is dropped, so the next call asks for a new one.
async fn on_webgpu<T, F, Fut>(
    backend: &str,
    names: &[(&str, &str)],
    solve: F,
) -> Result<WebGpuOutcome<T>, JsError>
where
    F: FnOnce(std::rc::Rc<WebGpu>) -> Fut,
    Fut: std::future::Future<Output = Result<T, GpuSolveError>>,
{
    if backend == "cpu" {
        return Ok(WebGpuOutcome::Cpu(None));
    }
    let why = match webgpu().await {
        Ok(shared) => {
            let adapter = shared.gpu.adapter.to_string();
            match solve(shared).await {
                Ok(out) => return Ok(WebGpuOutcome::Solved(out, adapter)),
                Err(GpuSolveError::Input(e)) => return Err(ot_error(e, names)),
                Err(GpuSolveError::Gpu(e)) => {
                    forget_webgpu();
                    format!("{e}; solved on the CPU")
                }
            }
        }
        Err(why) => why,
    };
    if backend == "gpu" {
        return Err(JsError::new(&format!("backend \"gpu\": {why}")));
    }
    Ok(WebGpuOutcome::Cpu(Some(why)))
}

/// `result` with `adapter` and `fallback` set where known.
fn report(
    result: JsValue,
    adapter: Option<String>,
    fallback: Option<String>,
) -> Result<JsValue, JsError> {
    if let Some(adapter) = adapter {
        set(&result, "adapter", &JsValue::from_str(&adapter))?;
    }
    if let Some(why) = fallback {
        set(&result, "fallback", &JsValue::from_str(&why))?;
    }
    Ok(result)
}
