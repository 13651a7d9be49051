//! XRM for JavaScript: `xrmCompare` discovers environments on a labelled training split and
//! compares ERM, GroupDRO with class labels, with XRM's groups and with the true groups —
//! the same core code as `latentlab xrm run`, keys as its JSON.
//!
//! Each split is `{ x: Float32Array (rows × dim, row-major), y, attribute }` with one class
//! and one true spurious attribute (e.g. the background) per row.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{js_error, progress_reporter, size_arg, to_js, Options};
use crate::core::matrix::Matrix;
use crate::core::pca::Pca;
use crate::core::xrm::DroResult;
use crate::core::xrm::{compare, AttributedSplit, SeedRun, Summary, XrmOptions};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export interface XrmSplit {
  /** rows × dim features, row-major. */
  x: Float32Array;
  /** Class per row (0, 1, …). */
  y: Uint32Array | Int32Array | number[];
  /** True spurious attribute per row (0/1: e.g. land or water background). */
  attribute: Uint32Array | Int32Array | number[];
}
export interface XrmCompareOptions {
  /** Seeds 0..seeds of XRM's discovery (default 10). */
  seeds?: number;
  /** Full-batch steps of every training (default 3000, the reference's quick_run). */
  steps?: number;
  /** Steps of XRM's twins alone (phase 1; default: steps), as phase-1 selection chooses them. */
  twinSteps?: number;
  /** Project on this many principal components fitted on train first (default 64; 0 keeps all). */
  pca?: number;
  /** Scale each principal component to unit variance (default false; needs 0 < pca < dim). */
  whiten?: boolean;
}
export interface XrmMeanStd { mean: number; std: number }
export interface XrmDroResult {
  test_worst_group: number; test_average: number; validation_worst_group: number; step: number;
}
export interface XrmRecovery {
  precision: number; recall: number; inferred_minority: number; true_minority: number;
}
export interface XrmSeedRun {
  seed: number;
  /** 0/1 per training and validation row (1: a twin got it wrong against its label). */
  environments: { train: number[]; validation: number[]; flip_rate: number; /** after every 10 steps, and after the last */ flip_rates: number[]; degenerate: boolean };
  recovery_train: XrmRecovery; recovery_val: XrmRecovery; groupdro_xrm: XrmDroResult;
}
export interface XrmComparison {
  dim: number; n: { train: number; val: number; test: number };
  recovery: { train_precision: XrmMeanStd; train_recall: XrmMeanStd; val_precision: XrmMeanStd; val_recall: XrmMeanStd };
  table: Record<"erm" | "groupdro_classes" | "groupdro_xrm" | "groupdro_true", { test_worst_group: XrmMeanStd; test_average: XrmMeanStd }>;
  erm: XrmDroResult; groupdro_classes: XrmDroResult; groupdro_true: XrmDroResult;
  runs: XrmSeedRun[];
}
"#;

const SPLIT_KEYS: &[&str] = &["x", "y", "attribute"];
const COMPARE_KEYS: &[&str] = &["seeds", "steps", "twinSteps", "pca", "whiten"];

struct Split {
    x: Matrix,
    y: Vec<usize>,
    attribute: Vec<usize>,
}

/// Class numbers from any array-like of numbers, each checked: a non-negative integer.
fn classes(value: JsValue, name: &str, rows: usize) -> Result<Vec<usize>, JsError> {
    if value.is_undefined() || value.is_null() {
        return Err(JsError::new(&format!(
            "`{name}` is missing: expected one class number per row ({rows})"
        )));
    }
    // a bare number would make `new Float64Array(n)`: n zeros
    if !value.is_object() {
        return Err(JsError::new(&format!(
            "`{name}` must be an array of class numbers, one per row ({rows})"
        )));
    }
    let numbers = js_sys::Float64Array::new(&value).to_vec();
    if numbers.len() != rows {
        return Err(JsError::new(&format!(
            "`{name}` has {} entries: expected one per row ({rows})",
            numbers.len()
        )));
    }
    numbers
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f64 {
                Ok(v as usize)
            } else {
                Err(JsError::new(&format!(
                    "`{name}[{i}]` is {v}: expected a class number 0, 1, 2, …"
                )))
            }
        })
        .collect()
}

fn split(value: JsValue, name: &'static str, dim: usize) -> Result<Split, JsError> {
    let o = Options::required(value, SPLIT_KEYS, name, "{ x, y, attribute }")?;
    let x = o
        .raw("x")?
        .dyn_into::<js_sys::Float32Array>()
        .map_err(|_| {
            JsError::new(&format!(
                "`{name}.x` must be a Float32Array (rows × dim {dim}, row-major)"
            ))
        })?
        .to_vec();
    if dim == 0 || x.len() % dim != 0 {
        return Err(JsError::new(&format!(
            "`{name}.x` has {} values: expected rows × dim {dim}",
            x.len()
        )));
    }
    let rows = x.len() / dim;
    let x = Matrix::new(rows, dim, x, name).map_err(js_error)?;
    Ok(Split {
        x,
        y: classes(o.raw("y")?, &format!("{name}.y"), rows)?,
        attribute: classes(o.raw("attribute")?, &format!("{name}.attribute"), rows)?,
    })
}

fn attributed(s: &Split) -> AttributedSplit<'_> {
    AttributedSplit::of(&s.x, &s.y, &s.attribute)
}

#[derive(Serialize)]
struct Compared<'a> {
    dim: usize,
    n: Sizes,
    #[serde(flatten)]
    summary: Summary,
    erm: &'a DroResult,
    groupdro_classes: &'a DroResult,
    groupdro_true: &'a DroResult,
    runs: &'a [SeedRun],
}

#[derive(Serialize)]
struct Sizes {
    train: usize,
    val: usize,
    test: usize,
}

/// XRM's environments and the accuracy table over seeds (see `XrmCompareOptions`).
/// `onProgress(done, total)`, when given, follows each training (3 + seeds in all).
#[wasm_bindgen(js_name = xrmCompare, unchecked_return_type = "XrmComparison")]
pub fn xrm_compare(
    #[wasm_bindgen(unchecked_param_type = "XrmSplit")] train: JsValue,
    #[wasm_bindgen(unchecked_param_type = "XrmSplit")] validation: JsValue,
    #[wasm_bindgen(unchecked_param_type = "XrmSplit")] test: JsValue,
    dim: f64,
    #[wasm_bindgen(unchecked_param_type = "XrmCompareOptions")] options: JsValue,
    #[wasm_bindgen(js_name = onProgress, unchecked_param_type = "(done: number, total: number) => void")]
    on_progress: Option<js_sys::Function>,
) -> Result<JsValue, JsError> {
    let o = Options::optional(options, COMPARE_KEYS, "xrmCompare options")?;
    let dim = size_arg(dim, "dim", 1)?;
    let (mut train, mut validation, mut test) = (
        split(train, "train", dim)?,
        split(validation, "validation", dim)?,
        split(test, "test", dim)?,
    );
    let seeds: u64 = o.get("seeds")?.unwrap_or(10);
    let steps: usize = o.get("steps")?.unwrap_or(3000);
    let twin_steps: Option<usize> = o.get("twinSteps")?;
    let components: usize = o.get("pca")?.unwrap_or(64);
    let whiten: bool = o.get("whiten")?.unwrap_or(false);
    if whiten && (components == 0 || components >= dim) {
        return Err(JsError::new(&format!(
            "xrmCompare options.whiten needs options.pca between 1 and {} (whitening scales \
             principal components; pca {components} keeps the features as they are)",
            dim - 1
        )));
    }
    if components > 0 && components < dim {
        let pca = Pca::fit(&train.x, components).map_err(js_error)?;
        for (s, name) in [
            (&mut train, "train.x"),
            (&mut validation, "validation.x"),
            (&mut test, "test.x"),
        ] {
            s.x = pca.project_as(&s.x, name, whiten).map_err(js_error)?;
        }
    }
    let opts = XrmOptions {
        steps,
        twin_steps,
        ..XrmOptions::default()
    };
    let result = compare(
        attributed(&train),
        attributed(&validation),
        attributed(&test),
        seeds,
        &opts,
        progress_reporter(on_progress),
    )
    .map_err(js_error)?;
    to_js(&Compared {
        dim: train.x.cols,
        n: Sizes {
            train: train.y.len(),
            val: validation.y.len(),
            test: test.y.len(),
        },
        summary: result.summary(),
        erm: &result.erm,
        groupdro_classes: &result.groupdro_classes,
        groupdro_true: &result.groupdro_true,
        runs: &result.runs,
    })
}
