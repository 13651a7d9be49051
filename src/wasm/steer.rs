//! Affine steering for JavaScript: the `Steering` class (fit, apply, JSON round trip),
//! `evaluateSteering` and `pcaProject`.
//!
//! Embeddings cross as row-major `Float32Array`s with their row count and dimension beside
//! them; labels as `Int32Array`s (or plain arrays of numbers). Options are plain objects with
//! camelCase keys; unknown keys are refused by name. Result objects keep the CLI's
//! snake_case keys.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{f32_array, js_error, set, size_arg, to_js, Options};
use crate::core::matrix::Matrix;
use crate::core::pca::Pca;
use crate::core::steer::{
    self, check_concept, check_task, ApplyTo, EvalOptions, FitOptions, Method,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export type SteeringMethod = "mean" | "mean-cov";
/** Which rows to move: by concept label, by the stored classifier, or all. */
export type SteeringApplyTo = "source" | "predicted" | "all";
export interface SteeringFitOptions {
  /** Default "mean-cov". */
  method?: SteeringMethod;
  /** The concept label (0 or 1) of the rows to move; default 1. */
  sourceLabel?: number;
  /** Regularisation added to both covariances (mean-cov); at most one of reg, relativeReg. */
  reg?: number;
  /** Regularisation × the mean variance (e.g. 0.01). Needed when a group has ≤ dim rows. */
  relativeReg?: number;
}
export interface SteeringApplyOptions {
  /** Default "predicted". */
  applyTo?: SteeringApplyTo;
  /** Concept labels, one per row: required for applyTo "source". */
  z?: Int32Array | number[];
}
export interface SteeringApplyResult {
  /** n × dim, row-major. */
  x: Float32Array;
  /** 1 where the row was moved. */
  steered: Uint8Array;
  n_steered: number;
}
export interface SteeringEvalOptions extends SteeringFitOptions {
  /** Main-task labels (0, 1, 2, …), one per row: adds the task probe and the TPR-gap. */
  y?: Int32Array | number[];
  /** A fitted steering function; without it one is fitted on the training split. */
  steering?: Steering;
  /** Default "split": training rows by label, held-out rows by the classifier (the paper). */
  applyTo?: SteeringApplyTo | "split";
  /** Default 0.3. */
  testFraction?: number;
  /** Seed of the split; default 0. */
  seed?: number;
}
export interface SteeringClassGap {
  class: number; tpr_z0: number; tpr_z1: number; gap: number; n_z0: number; n_z1: number;
}
export interface SteeringTprGap { rms: number; classes: SteeringClassGap[]; skipped: number[] }
export interface SteeringEvaluation {
  method: SteeringMethod; apply_to: string; fitted_on: "given" | "train split";
  n: number; n_train: number; n_test: number; n_steered: number;
  concept_chance: number; concept_accuracy_before: number; concept_accuracy_after: number;
  task_chance: number | null; task_accuracy_before: number | null; task_accuracy_after: number | null;
  tpr_gap_rms_before: number | null; tpr_gap_rms_after: number | null;
  tpr_gap_before: SteeringTprGap | null; tpr_gap_after: SteeringTprGap | null;
  /** The rows after steering (n × dim). */
  steered_x: Float32Array;
  /** Row indices held out for scoring. */
  test_rows: Uint32Array;
}
export interface PcaResult {
  /** n × components, row-major. */
  projected: Float32Array;
  components: number;
  explained_variance: number[];
  total_variance: number;
}
"#;

const FIT_KEYS: &[&str] = &["method", "sourceLabel", "reg", "relativeReg"];
const APPLY_KEYS: &[&str] = &["applyTo", "z"];
const EVAL_KEYS: &[&str] = &[
    "method",
    "sourceLabel",
    "reg",
    "relativeReg",
    "y",
    "steering",
    "applyTo",
    "testFraction",
    "seed",
];
const PCA_KEYS: &[&str] = &["components", "fitOn", "fitRows"];

/// `x` as `n × dim`, the sizes checked as numbers first.
fn matrix(x: &[f32], n: f64, dim: f64) -> Result<Matrix, JsError> {
    let (n, dim) = (size_arg(n, "n", 0)?, size_arg(dim, "dim", 1)?);
    Matrix::new(n, dim, x.to_vec(), "x").map_err(js_error)
}

fn labels(options: &Options, key: &str) -> Result<Option<Vec<i64>>, JsError> {
    Ok(options.get::<Vec<f64>>(key)?.map(|v| {
        v.into_iter()
            .map(|l| if l.fract() == 0.0 { l as i64 } else { -1 })
            .collect()
    }))
}

fn fit_options(options: &Options) -> Result<FitOptions, JsError> {
    let method = match options.get::<String>("method")? {
        None => Method::MeanCov,
        Some(name) => Method::parse(&name).map_err(js_error)?,
    };
    let source_label = match options.get::<f64>("sourceLabel")? {
        None => 1,
        Some(l) if l == 0.0 || l == 1.0 => l as u8,
        Some(l) => {
            return Err(JsError::new(&format!(
                "options.sourceLabel is {l}: expected 0 or 1"
            )))
        }
    };
    Ok(FitOptions {
        method,
        source_label,
        reg: options.get("reg")?,
        relative_reg: options.get("relativeReg")?,
        ..FitOptions::default()
    })
}

fn apply_to(options: &Options, default: ApplyTo) -> Result<ApplyTo, JsError> {
    match options.get::<String>("applyTo")? {
        None => Ok(default),
        Some(name) => ApplyTo::parse(&name).map_err(js_error),
    }
}

/// A fitted affine steering function `x ↦ x·W + b`.
#[wasm_bindgen]
pub struct Steering {
    inner: steer::Steering,
}

#[wasm_bindgen]
impl Steering {
    /// Fits on `n` rows of `dim` numbers with concept labels `z` (0/1, one per row).
    #[wasm_bindgen(js_name = fit)]
    pub fn fit(
        x: &[f32],
        n: f64,
        dim: f64,
        #[wasm_bindgen(unchecked_param_type = "Int32Array | ArrayLike<number>")] z: Vec<f64>,
        #[wasm_bindgen(unchecked_param_type = "SteeringFitOptions")] options: JsValue,
    ) -> Result<Steering, JsError> {
        let options = Options::optional(options, FIT_KEYS, "Steering.fit options")?;
        let x = matrix(x, n, dim)?;
        let n = x.rows;
        let z = concept(&z, n)?;
        let inner = steer::fit(&x, &z, &fit_options(&options)?).map_err(js_error)?;
        Ok(Steering { inner })
    }

    /// Reads a steering function written by `toJson` or `latentlab steer fit --out`.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(text: &str) -> Result<Steering, JsError> {
        let inner = steer::Steering::from_json(text).map_err(js_error)?;
        Ok(Steering { inner })
    }

    #[wasm_bindgen(js_name = toJson)]
    pub fn to_json(&self) -> String {
        self.inner.to_json()
    }

    #[wasm_bindgen(getter)]
    pub fn method(&self) -> String {
        self.inner.method.name().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.inner.dim
    }

    #[wasm_bindgen(getter, js_name = sourceLabel)]
    pub fn source_label(&self) -> u8 {
        self.inner.source_label
    }

    /// The regularisation added to both covariances (0 for mean matching).
    #[wasm_bindgen(getter)]
    pub fn reg(&self) -> f64 {
        self.inner.reg
    }

    #[wasm_bindgen(getter, js_name = nSource)]
    pub fn n_source(&self) -> usize {
        self.inner.n_source
    }

    #[wasm_bindgen(getter, js_name = nTarget)]
    pub fn n_target(&self) -> usize {
        self.inner.n_target
    }

    /// W, dim × dim row-major.
    #[wasm_bindgen(js_name = weights)]
    pub fn weights(&self) -> Vec<f32> {
        self.inner.w.iter().flatten().map(|&v| v as f32).collect()
    }

    /// b, dim numbers.
    #[wasm_bindgen(js_name = bias)]
    pub fn bias(&self) -> Vec<f32> {
        self.inner.b.iter().map(|&v| v as f32).collect()
    }

    /// Applies the map to `n` rows (see SteeringApplyOptions).
    #[wasm_bindgen(js_name = apply, unchecked_return_type = "SteeringApplyResult")]
    pub fn apply(
        &self,
        x: &[f32],
        n: f64,
        #[wasm_bindgen(unchecked_param_type = "SteeringApplyOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let options = Options::optional(options, APPLY_KEYS, "Steering.apply options")?;
        let x = matrix(x, n, self.inner.dim as f64)?;
        let n = x.rows;
        let z = labels(&options, "z")?
            .map(|z| check_concept(&z, n).map_err(js_error))
            .transpose()?;
        let to = apply_to(&options, ApplyTo::Predicted)?;
        let steered = self.inner.apply(&x, z.as_deref(), to).map_err(js_error)?;
        let result: JsValue = js_sys::Object::new().into();
        set(&result, "x", &f32_array(&steered.x.data))?;
        let flags: Vec<u8> = steered.steered.iter().map(|&s| u8::from(s)).collect();
        set(
            &result,
            "steered",
            &js_sys::Uint8Array::from(&flags[..]).into(),
        )?;
        let count = flags.iter().filter(|&&f| f == 1).count();
        set(&result, "n_steered", &JsValue::from(count as u32))?;
        Ok(result)
    }
}

fn concept(z: &[f64], n: usize) -> Result<Vec<u8>, JsError> {
    let z: Vec<i64> = z
        .iter()
        .map(|&l| if l.fract() == 0.0 { l as i64 } else { -1 })
        .collect();
    check_concept(&z, n).map_err(js_error)
}

/// Held-out probe accuracies (concept, and task with `options.y`) and the RMS TPR-gap,
/// before and after steering. Without `options.steering`, fits one on the training split.
#[wasm_bindgen(js_name = evaluateSteering, unchecked_return_type = "SteeringEvaluation")]
pub fn evaluate_steering(
    x: &[f32],
    n: f64,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "Int32Array | ArrayLike<number>")] z: Vec<f64>,
    #[wasm_bindgen(unchecked_param_type = "SteeringEvalOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let options = Options::optional(options, EVAL_KEYS, "evaluateSteering options")?;
    let x = matrix(x, n, dim)?;
    let n = x.rows;
    let z = concept(&z, n)?;
    let y = labels(&options, "y")?
        .map(|y| check_task(&y, n).map_err(js_error))
        .transpose()?;
    let defaults = EvalOptions::default();
    let eval = EvalOptions {
        apply_to: apply_to(&options, ApplyTo::Split)?,
        test_fraction: options
            .get("testFraction")?
            .unwrap_or(defaults.test_fraction),
        seed: options.get("seed")?.unwrap_or(defaults.seed),
        ..defaults
    };
    let given = options.raw("steering")?;
    let (fitted_on, evaluation) = if given.is_undefined() || given.is_null() {
        let fit = fit_options(&options)?;
        let (_, e) =
            steer::fit_and_evaluate(&x, &z, y.as_deref(), &fit, &eval).map_err(js_error)?;
        ("train split", e)
    } else {
        // A Steering instance: read it back through its JSON (wasm-bindgen classes cannot be
        // borrowed from an options object).
        let to_json = js_sys::Reflect::get(&given, &JsValue::from_str("toJson"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .ok_or_else(|| JsError::new("options.steering must be a Steering"))?;
        let text = to_json
            .call0(&given)
            .ok()
            .and_then(|t| t.as_string())
            .ok_or_else(|| JsError::new("options.steering must be a Steering"))?;
        let s = steer::Steering::from_json(&text).map_err(js_error)?;
        (
            "given",
            steer::evaluate(&s, &x, &z, y.as_deref(), &eval).map_err(js_error)?,
        )
    };
    let split = steer::train_test_split(n, eval.test_fraction, eval.seed).map_err(js_error)?;
    let result = to_js(&evaluation)?;
    set(&result, "fitted_on", &JsValue::from_str(fitted_on))?;
    set(&result, "steered_x", &f32_array(&evaluation.steered_x.data))?;
    let test_rows: Vec<u32> = split.1.iter().map(|&r| r as u32).collect();
    set(
        &result,
        "test_rows",
        &js_sys::Uint32Array::from(&test_rows[..]).into(),
    )?;
    Ok(result)
}

/// Projects `n` rows onto their top principal components (default 2). `fitOn` (another
/// Float32Array of `fitRows` rows) fits the directions on other data, so two sets can be
/// drawn in the same axes.
#[wasm_bindgen(js_name = pcaProject, unchecked_return_type = "PcaResult")]
pub fn pca_project(
    x: &[f32],
    n: f64,
    dim: f64,
    #[wasm_bindgen(
        unchecked_param_type = "{ components?: number; fitOn?: Float32Array; fitRows?: number }"
    )]
    options: JsValue,
) -> Result<JsValue, JsError> {
    let options = Options::optional(options, PCA_KEYS, "pcaProject options")?;
    let x = matrix(x, n, dim)?;
    let dim = x.cols;
    let k = options.get::<usize>("components")?.unwrap_or(2);
    let pca = match options.get::<Vec<f32>>("fitOn")? {
        None => Pca::fit(&x, k),
        Some(data) => {
            let rows = options
                .get::<usize>("fitRows")?
                .ok_or_else(|| JsError::new("options.fitRows is required with options.fitOn"))?;
            let fit_on = Matrix::new(rows, dim, data, "options.fitOn").map_err(js_error)?;
            Pca::fit(&fit_on, k)
        }
    }
    .map_err(js_error)?;
    let projected = pca.project(&x).map_err(js_error)?;
    let result: JsValue = js_sys::Object::new().into();
    set(&result, "projected", &f32_array(&projected.data))?;
    set(&result, "components", &JsValue::from(k as u32))?;
    set(
        &result,
        "explained_variance",
        &to_js(&pca.explained_variance)?,
    )?;
    set(
        &result,
        "total_variance",
        &JsValue::from(pca.total_variance),
    )?;
    Ok(result)
}
