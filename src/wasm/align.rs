//! Representation alignment for JavaScript: `alignRepresentations` (the Platonic metrics
//! between the paired rows of two embedding matrices) and `nearestNeighbors`.
//!
//! Matrices cross as row-major `Float32Array`s with their row count and widths beside them;
//! results keep the CLI's keys (`metric`, `k`, `score`, `chance`, `n`, `backend`).

use wasm_bindgen::prelude::*;

use super::{js_error, to_js, Options};
use crate::core::align::{
    align_many, nearest_neighbors, normalize_rows, validate, AlignOptions, Metric, Prepare,
    QuantileMode,
};
use crate::core::matrix::Matrix;

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
  metric: AlignMetric; score: number | null; k: number | null; chance: number | null;
  cca_dim: number | null; n: number; backend: "cpu";
}
"#;

const ALIGN_KEYS: &[&str] = &["metrics", "k", "ccaDim", "prepare", "exactQuantile"];

fn matrix(data: &[f32], rows: usize, cols: usize, what: &str) -> Result<Matrix, JsError> {
    Matrix::new(rows, cols, data.to_vec(), what).map_err(js_error)
}

/// Every requested metric between `x` (n × dx) and `y` (n × dy), rows paired.
#[wasm_bindgen(js_name = alignRepresentations, unchecked_return_type = "AlignScore[]")]
pub fn align_representations(
    x: &[f32],
    n: usize,
    dx: usize,
    y: &[f32],
    dy: usize,
    #[wasm_bindgen(unchecked_param_type = "AlignOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let options = Options::optional(options, ALIGN_KEYS, "alignRepresentations options")?;
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
    let x = matrix(x, n, dx, "x")?;
    let y = matrix(y, n, dy, "y")?;
    let scores = align_many(&x, &y, &metrics, &opts).map_err(js_error)?;
    let rows: Vec<serde_json::Value> = scores
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["backend"] = "cpu".into();
            v
        })
        .collect();
    to_js(&rows)
}

/// The k nearest neighbours of every row by cosine similarity (self excluded, ties to the
/// lower row): an n × k row-major `Uint32Array`.
#[wasm_bindgen(js_name = nearestNeighbors)]
pub fn nearest_neighbors_js(
    x: &[f32],
    n: usize,
    dim: usize,
    k: usize,
) -> Result<Vec<u32>, JsError> {
    let mut x = matrix(x, n, dim, "x")?;
    validate(&x, "x").map_err(js_error)?;
    normalize_rows(&mut x);
    let knn = nearest_neighbors(&x, k).map_err(js_error)?;
    Ok((0..n).flat_map(|i| knn.row(i).to_vec()).collect())
}
