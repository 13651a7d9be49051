//! Representation alignment for JavaScript: `alignRepresentations` (the Platonic metrics
//! between the paired rows of two embedding matrices) and `nearestNeighbors`.
//!
//! Matrices cross as row-major `Float32Array`s with their row count and widths beside them;
//! results keep the CLI's keys (`metric`, `k`, `score`, `chance`, `n`, `backend`).

use wasm_bindgen::prelude::*;

use super::{backend_option, forget_webgpu, js_error, size_arg, to_js, webgpu, Options};
use crate::core::align::{
    align_many, align_many_with, check_k, nearest_neighbors, neighbour_inputs, normalize_rows,
    searches_neighbours, validate, AlignError, AlignOptions, Alignment, Knn, Metric, Prepare,
    QuantileMode,
};
use crate::core::matrix::Matrix;
use crate::gpu::knn::{nearest_neighbors_async, GpuKnnError, GpuKnnOptions, MAX_K};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export type AlignMetric = "mutual_knn" | "cycle_knn" | "lcs_knn" | "edit_distance_knn"
  | "cka" | "unbiased_cka" | "cknna" | "svcca";
export interface AlignOptions {
  /** One metric, a list, or "all" (default "mutual_knn"). */
  metrics?: AlignMetric | AlignMetric[] | "all";
  /** Neighbours per row (default 10; 1 ≤ k < n). */
  k?: number;
  /** Canonical directions for svcca (default 10). */
  ccaDim?: number;
  /** The reference's preparation: clamp at the 0.95 quantile, then L2-normalise (default true). */
  prepare?: boolean;
  /** Clamp threshold over all values (the reference's exact mode) instead of the mean of per-row quantiles. */
  exactQuantile?: boolean;
}
export interface AlignScore {
  metric: AlignMetric; score: number | null; k: number | null;
  /** The mean score when the rows are paired at random, where it has a closed form
   * (mutual_knn k/(n−1), cycle_knn, lcs_knn for k ≤ 40, cka, unbiased_cka 0); else null. */
  chance: number | null;
  cca_dim: number | null; n: number; backend: "cpu" | "webgpu";
}
"#;

const ALIGN_KEYS: &[&str] = &["metrics", "k", "ccaDim", "prepare", "exactQuantile"];

fn matrix(data: &[f32], rows: usize, cols: usize, what: &str) -> Result<Matrix, JsError> {
    Matrix::new(rows, cols, data.to_vec(), what).map_err(js_error)
}

/// The metrics and options of an `alignRepresentations` call.
fn parse_options(
    options: JsValue,
    keys: &[&str],
    what: &'static str,
) -> Result<(Vec<Metric>, AlignOptions, Options), JsError> {
    let options = Options::optional(options, keys, what)?;
    let metrics: Vec<Metric> = match options.raw("metrics")? {
        v if v.is_undefined() || v.is_null() => vec![Metric::MutualKnn],
        v if v.as_string().as_deref() == Some("all") => Metric::ALL.to_vec(),
        v if v.is_string() => {
            vec![Metric::parse(&v.as_string().unwrap_or_default()).map_err(js_error)?]
        }
        _ => options
            .get::<Vec<String>>("metrics")?
            .unwrap_or_default()
            .iter()
            .map(|m| Metric::parse(m).map_err(js_error))
            .collect::<Result<_, _>>()?,
    };
    let defaults = AlignOptions::default();
    let prepare = match (
        options.get::<bool>("prepare")?.unwrap_or(true),
        options.get::<bool>("exactQuantile")?.unwrap_or(false),
    ) {
        (false, _) => Prepare::OFF,
        (true, exact) => Prepare {
            quantile_mode: if exact {
                QuantileMode::Exact
            } else {
                QuantileMode::MeanOfRows
            },
            ..Prepare::default()
        },
    };
    let opts = AlignOptions {
        k: options.get("k")?.unwrap_or(defaults.k),
        cca_dim: options.get("ccaDim")?.unwrap_or(defaults.cca_dim),
        prepare,
    };
    Ok((metrics, opts, options))
}

fn score_rows(scores: Vec<Alignment>, backend: &str) -> Vec<serde_json::Value> {
    scores
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["backend"] = backend.into();
            v
        })
        .collect()
}

/// Every requested metric between `x` (n × dx) and `y` (n × dy), rows paired.
#[wasm_bindgen(js_name = alignRepresentations, unchecked_return_type = "AlignScore[]")]
pub fn align_representations(
    x: &[f32],
    n: f64,
    dx: f64,
    y: &[f32],
    dy: f64,
    #[wasm_bindgen(unchecked_param_type = "AlignOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let (metrics, opts, _) = parse_options(options, ALIGN_KEYS, "alignRepresentations options")?;
    let (n, dx, dy) = (
        size_arg(n, "n", 0)?,
        size_arg(dx, "dx", 1)?,
        size_arg(dy, "dy", 1)?,
    );
    let x = matrix(x, n, dx, "x")?;
    let y = matrix(y, n, dy, "y")?;
    let scores = align_many(&x, &y, &metrics, &opts).map_err(js_error)?;
    to_js(&score_rows(scores, "cpu"))
}

/// Both neighbour tables on WebGPU, or why not (`Err(Ok(why))`: fall back; `Err(Err(e))`:
/// bad input, or the GPU failed with backend "gpu").
async fn gpu_tables(
    ux: &Matrix,
    uy: &Matrix,
    k: usize,
    backend: &str,
) -> Result<(Knn, Knn, String), Result<String, JsError>> {
    if k > MAX_K {
        let why = format!("the GPU path takes k <= {MAX_K}; searched on the CPU");
        return Err(if backend == "gpu" {
            Err(JsError::new(&format!("backend \"gpu\": k is {k}, {why}")))
        } else {
            Ok(why)
        });
    }
    let shared = match webgpu().await {
        Ok(shared) => shared,
        Err(why) if backend == "gpu" => {
            return Err(Err(JsError::new(&format!("backend \"gpu\": {why}"))))
        }
        Err(why) => return Err(Ok(why)),
    };
    let opts = GpuKnnOptions::default();
    let mut tables = Vec::with_capacity(2);
    for m in [ux, uy] {
        match nearest_neighbors_async(&shared.gpu, shared.knn(), m, k, &opts).await {
            Ok(found) => tables.push(found.knn),
            Err(GpuKnnError::Input(e)) => return Err(Err(js_error(e))),
            Err(GpuKnnError::Gpu(e)) => {
                forget_webgpu();
                let why = format!("{e}; searched on the CPU");
                return Err(if backend == "gpu" {
                    Err(JsError::new(&format!("backend \"gpu\": {e}")))
                } else {
                    Ok(why)
                });
            }
        }
    }
    let ty = tables.pop();
    let tx = tables.pop();
    match (tx, ty) {
        (Some(tx), Some(ty)) => Ok((tx, ty, shared.gpu.adapter.to_string())),
        _ => Err(Ok("the GPU returned no tables".into())),
    }
}

/// `alignRepresentations` with the neighbour search on WebGPU when the browser has an
/// adapter (the same tables as the CPU's, so the same scores), else on the CPU; every score
/// says which (`backend`: "webgpu" or "cpu") and, after a fallback, why (`fallback`).
/// `options.backend`: "auto" (default), "gpu" (fail rather than fall back) or "cpu".
#[wasm_bindgen(
    js_name = alignRepresentationsAsync,
    unchecked_return_type = "Array<Omit<AlignScore, 'backend'> & { backend: 'webgpu' | 'cpu'; adapter?: string; fallback?: string }>"
)]
pub async fn align_representations_async(
    x: Vec<f32>,
    n: f64,
    dx: f64,
    y: Vec<f32>,
    dy: f64,
    #[wasm_bindgen(
        unchecked_param_type = "AlignOptions & { backend?: \"auto\" | \"gpu\" | \"cpu\" }"
    )]
    options: JsValue,
) -> Result<JsValue, JsError> {
    let keys: Vec<&str> = ALIGN_KEYS.iter().copied().chain(["backend"]).collect();
    let (metrics, opts, options) =
        parse_options(options, &keys, "alignRepresentationsAsync options")?;
    let backend = backend_option(&options)?;
    let (n, dx, dy) = (
        size_arg(n, "n", 0)?,
        size_arg(dx, "dx", 1)?,
        size_arg(dy, "dy", 1)?,
    );
    let x = matrix(&x, n, dx, "x")?;
    let y = matrix(&y, n, dy, "y")?;
    let mut fallback = None;
    if backend != "cpu" && searches_neighbours(&metrics, &opts) {
        let (ux, uy) = neighbour_inputs(&x, &y, &opts).map_err(js_error)?;
        check_k(opts.k, n).map_err(js_error)?;
        match gpu_tables(&ux, &uy, opts.k, &backend).await {
            Ok((tx, ty, adapter)) => {
                // align_many_with asks for x's table, then y's
                let mut tables = vec![ty, tx];
                let scores = align_many_with(&x, &y, &metrics, &opts, |_: &Matrix, _| {
                    tables.pop().ok_or(AlignError::Option {
                        name: "neighbour tables",
                        value: "none left".into(),
                        expected: "one table for x and one for y".into(),
                    })
                })
                .map_err(js_error)?;
                let mut rows = score_rows(scores, "webgpu");
                for row in rows.iter_mut() {
                    row["adapter"] = adapter.clone().into();
                }
                return to_js(&rows);
            }
            Err(Err(e)) => return Err(e),
            Err(Ok(why)) => fallback = Some(why),
        }
    } else if backend == "gpu" {
        return Err(JsError::new(
            "backend \"gpu\": only the neighbourhood metrics (and cknna on prepared rows) \
             search on the GPU",
        ));
    }
    let scores = align_many(&x, &y, &metrics, &opts).map_err(js_error)?;
    let mut rows = score_rows(scores, "cpu");
    if let Some(why) = fallback {
        for row in rows.iter_mut() {
            row["fallback"] = why.clone().into();
        }
    }
    to_js(&rows)
}

/// The k nearest neighbours of every row by cosine similarity (self excluded, ties to the
/// lower row): an n × k row-major `Uint32Array`.
#[wasm_bindgen(js_name = nearestNeighbors)]
pub fn nearest_neighbors_js(x: &[f32], n: f64, dim: f64, k: f64) -> Result<Vec<u32>, JsError> {
    let (n, dim, k) = (
        size_arg(n, "n", 0)?,
        size_arg(dim, "dim", 1)?,
        size_arg(k, "k", 0)?,
    );
    let mut x = matrix(x, n, dim, "x")?;
    validate(&x, "x").map_err(js_error)?;
    normalize_rows(&mut x);
    let knn = nearest_neighbors(&x, k).map_err(js_error)?;
    Ok((0..n).flat_map(|i| knn.row(i).to_vec()).collect())
}
