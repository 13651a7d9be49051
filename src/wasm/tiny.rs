//! tinyBenchmarks for JavaScript: `fitTinyBenchmark` (IRT model, anchors, gp-IRT's λ) on a
//! `models × items` response matrix, `estimateTiny` (a model's accuracy from its anchor
//! answers) and `tinyHoldout` (the paper's held-out evaluation). Keys as the CLI's.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{check_shape, js_error, size_arg, to_js, Options};
use crate::core::tiny::{
    fit_benchmark, holdout, random_split, BenchmarkOptions, HoldoutRow, IrtFitOptions, Progress,
    ResponseMatrix, Sampling, TinyBenchmark,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export interface TinyFitOptions {
  /** Candidate dimensions D, chosen by validation (default [1, 2, 3, 5, 10]). */
  dims?: number[];
  /** IRT fit: full-batch Adam steps (default 2000) and learning rate (0.1). */
  epochs?: number; learningRate?: number;
  /** Leave out the items every model answers alike (default false: they are an error). */
  dropConstantItems?: boolean;
}
export interface TinyBenchmarkResult {
  /** The fitted benchmark as JSON, for estimateTiny. */
  benchmark: string;
  dim: number; dim_errors: [number, number][];
  /** Indices among the kept items, and their weights (summing to 1). */
  anchors: number[]; anchor_weights: number[];
  gp_lambda: number; bias: number; variance: number;
  /** Indices (in the given matrix) of the items the benchmark is over. */
  kept_items: number[];
}
export interface TinyEstimate {
  irt: number; pirt: number; gpirt: number;
  data_part: number; irt_part: number; lambda_p: number;
  theta: number[]; theta_converged: boolean;
}
export interface TinyHoldoutRow {
  anchors: number; random: number; random_pirt: number; random_gpirt: number;
  irt: number; pirt: number; gpirt: number; theta_not_converged: number; fits: number;
}
/**
 * Progress of fitTinyBenchmark and tinyHoldout: `done` of `total` steps (each IRT fit counts
 * one step per 100 epochs; choosing the anchors, or one anchor draw of the held-out
 * evaluation, one step) and, in words, what is being computed now. Called when a stage
 * starts and after each step; the last call has done === total.
 */
export type TinyProgress = (done: number, total: number, stage: string) => void;
export interface TinyHoldoutResult {
  dim: number; dim_errors: [number, number][]; test_models: number[]; kept_items: number[];
  rows: TinyHoldoutRow[];
}
"#;

const FIT_KEYS: &[&str] = &[
    "dims",
    "epochs",
    "learningRate",
    "dropConstantItems",
    "anchors",
    "sampling",
    "seed",
];
const HOLDOUT_KEYS: &[&str] = &[
    "dims",
    "epochs",
    "learningRate",
    "dropConstantItems",
    "anchors",
    "seeds",
    "testFraction",
    "splitSeed",
];

/// The answers as f64, checked for shape, constant items dropped on request.
fn matrix(
    responses: &[f32],
    models: f64,
    items: f64,
    o: &Options,
) -> Result<ResponseMatrix, JsError> {
    let models = size_arg(models, "models", 1)?;
    let items = size_arg(items, "items", 1)?;
    check_shape(
        responses.len(),
        &[("models", models), ("items", items)],
        "responses",
    )?;
    let y: Vec<f64> = responses.iter().map(|&v| v as f64).collect();
    let drop = o.get("dropConstantItems")?.unwrap_or(false);
    ResponseMatrix::new(y, models, items, drop).map_err(js_error)
}

fn options(o: &Options) -> Result<BenchmarkOptions, JsError> {
    let d = BenchmarkOptions::default();
    let dims: Vec<usize> = o.get("dims")?.unwrap_or_else(|| vec![1, 2, 3, 5, 10]);
    Ok(BenchmarkOptions {
        irt: IrtFitOptions {
            dim: dims.first().copied().unwrap_or(1),
            epochs: o.get("epochs")?.unwrap_or(d.irt.epochs),
            learning_rate: o.get("learningRate")?.unwrap_or(d.irt.learning_rate),
            ..d.irt
        },
        dims,
        ..d
    })
}

/// Calls `on_progress(done, total, stage)` with each of a fit's [`Progress`] reports; what
/// the callback throws is ignored, as by the other labs' progress reports.
fn reporter(on_progress: Option<js_sys::Function>) -> impl FnMut(Progress) {
    move |p| {
        if let Some(f) = &on_progress {
            let _ = f.call3(
                &JsValue::NULL,
                &JsValue::from(p.done as f64),
                &JsValue::from(p.total as f64),
                &JsValue::from(p.stage.to_string()),
            );
        }
    }
}

#[derive(Serialize)]
struct Fitted<'a> {
    benchmark: String,
    dim: usize,
    dim_errors: &'a [(usize, f64)],
    anchors: &'a [usize],
    anchor_weights: &'a [f64],
    gp_lambda: f64,
    bias: f64,
    variance: f64,
    kept_items: &'a [usize],
}

/// Fits a tiny benchmark on `responses` (`models × items`, row-major, scores in [0, 1]):
/// options as `TinyFitOptions` plus `anchors` (default 100), `sampling` ("anchor", the IRT
/// clustering, or "random") and `seed`. `onProgress(done, total, stage)`, when given, follows
/// the validation fits, the final fit and the choice of anchors (`TinyProgress`).
#[wasm_bindgen(js_name = fitTinyBenchmark, unchecked_return_type = "TinyBenchmarkResult")]
pub fn fit_tiny_benchmark(
    responses: &[f32],
    models: f64,
    items: f64,
    #[wasm_bindgen(
        unchecked_param_type = "TinyFitOptions & { anchors?: number; sampling?: \"anchor\" | \"random\"; seed?: number }"
    )]
    options_js: JsValue,
    #[wasm_bindgen(js_name = onProgress, unchecked_optional_param_type = "TinyProgress")]
    on_progress: Option<js_sys::Function>,
) -> Result<JsValue, JsError> {
    let o = Options::optional(options_js, FIT_KEYS, "fitTinyBenchmark options")?;
    let m = matrix(responses, models, items, &o)?;
    let mut opts = options(&o)?;
    opts.anchors = o.get("anchors")?.unwrap_or(opts.anchors);
    opts.seed = o.get("seed")?.unwrap_or(opts.seed);
    opts.sampling = match o.get::<String>("sampling")?.as_deref() {
        None | Some("anchor") => Sampling::Anchor,
        Some("random") => Sampling::Random,
        Some(other) => {
            return Err(JsError::new(&format!(
                "options.sampling is {other:?}: expected \"anchor\" or \"random\""
            )))
        }
    };
    let bench = fit_benchmark(m.view(), &opts, reporter(on_progress)).map_err(js_error)?;
    to_js(&Fitted {
        benchmark: serde_json::to_string(&bench).map_err(js_error)?,
        dim: bench.irt.dim,
        dim_errors: &bench.dim_errors,
        anchors: &bench.anchors,
        anchor_weights: &bench.anchor_weights,
        gp_lambda: bench.gp_lambda,
        bias: bench.bias,
        variance: bench.variance,
        kept_items: &m.kept,
    })
}

#[derive(Serialize)]
struct Estimated<'a> {
    irt: f64,
    pirt: f64,
    gpirt: f64,
    data_part: f64,
    irt_part: f64,
    lambda_p: f64,
    theta: &'a [f64],
    theta_converged: bool,
}

/// A model's estimates from its `answers` on the anchors of `benchmark` (the JSON string of
/// `fitTinyBenchmark`), in the anchors' order.
#[wasm_bindgen(js_name = estimateTiny, unchecked_return_type = "TinyEstimate")]
pub fn estimate_tiny(benchmark: &str, answers: &[f32]) -> Result<JsValue, JsError> {
    let bench: TinyBenchmark = serde_json::from_str(benchmark).map_err(|e| {
        JsError::new(&format!(
            "`benchmark` is not a benchmark from fitTinyBenchmark: {e}"
        ))
    })?;
    let y: Vec<f64> = answers.iter().map(|&v| v as f64).collect();
    let (est, fit) = bench.estimate(&y).map_err(js_error)?;
    to_js(&Estimated {
        irt: est.irt,
        pirt: est.pirt,
        gpirt: est.gpirt,
        data_part: est.data_part,
        irt_part: est.irt_part,
        lambda_p: est.lambda_p,
        theta: &fit.theta,
        theta_converged: fit.converged,
    })
}

#[derive(Serialize)]
struct Holdout<'a> {
    dim: usize,
    dim_errors: &'a [(usize, f64)],
    test_models: &'a [usize],
    kept_items: &'a [usize],
    rows: &'a [HoldoutRow],
}

/// The paper's evaluation on `responses`: a random `testFraction` (default 0.25, seeded by
/// `splitSeed`) of the models held out, estimated from `anchors` (default [10, 30, 60, 100])
/// anchor items, `seeds` (default 5) draws each. `onProgress(done, total, stage)`, when
/// given, follows the IRT fits on the training models and each anchor draw (`TinyProgress`).
#[wasm_bindgen(js_name = tinyHoldout, unchecked_return_type = "TinyHoldoutResult")]
pub fn tiny_holdout(
    responses: &[f32],
    models: f64,
    items: f64,
    #[wasm_bindgen(
        unchecked_param_type = "TinyFitOptions & { anchors?: number[]; seeds?: number; testFraction?: number; splitSeed?: number }"
    )]
    options_js: JsValue,
    #[wasm_bindgen(js_name = onProgress, unchecked_optional_param_type = "TinyProgress")]
    on_progress: Option<js_sys::Function>,
) -> Result<JsValue, JsError> {
    let o = Options::optional(options_js, HOLDOUT_KEYS, "tinyHoldout options")?;
    let m = matrix(responses, models, items, &o)?;
    let opts = options(&o)?;
    let counts: Vec<usize> = o.get("anchors")?.unwrap_or_else(|| vec![10, 30, 60, 100]);
    let seeds = o.get("seeds")?.unwrap_or(5);
    let test = random_split(
        m.models,
        o.get("testFraction")?.unwrap_or(0.25),
        o.get("splitSeed")?.unwrap_or(0),
    )
    .map_err(js_error)?;
    let report = holdout(
        m.view(),
        &test,
        &counts,
        seeds,
        &opts,
        reporter(on_progress),
    )
    .map_err(js_error)?;
    to_js(&Holdout {
        dim: report.dim,
        dim_errors: &report.dim_errors,
        test_models: &test,
        kept_items: &m.kept,
        rows: &report.rows,
    })
}
