//! Model collapse for JavaScript: `simulateCollapse(options)` runs the replace vs accumulate
//! simulation in linear regression and returns it beside the paper's closed forms, with the
//! CLI's keys.

use wasm_bindgen::prelude::*;

use super::{js_error, size_arg, to_js, Options};
use crate::core::collapse::{gaussian_resampling, simulate, CollapseOptions};
use crate::core::matrix::Matrix;

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export interface CollapseOptions {
  /** Defaults: d 10, t 100, sigma2 1, rounds 10, runs 100, seed 0, testPoints 1000. */
  d?: number; t?: number; sigma2?: number; rounds?: number; runs?: number; seed?: number;
  testPoints?: number;
}
export interface ResamplingResult {
  /** tr Σ_g / tr Σ_0 and ‖μ_g − μ_0‖² / tr Σ_0 per generation (0 = the real rows). */
  replace_variance: number[]; accumulate_variance: number[];
  replace_mean_shift: number[]; accumulate_mean_shift: number[];
}
export interface CollapseResult {
  replace: number[]; accumulate: number[];
  replace_theory: number[]; accumulate_theory: number[];
  replace_sem: number[]; accumulate_sem: number[];
}
"#;

const KEYS: &[&str] = &["d", "t", "sigma2", "rounds", "runs", "seed", "testPoints"];

/// Mean test error per round for both strategies, simulated and in closed form.
#[wasm_bindgen(js_name = simulateCollapse, unchecked_return_type = "CollapseResult")]
pub fn simulate_collapse(
    #[wasm_bindgen(unchecked_param_type = "CollapseOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let o = Options::optional(options, KEYS, "simulateCollapse options")?;
    let d = CollapseOptions::default();
    let options = CollapseOptions {
        d: o.get("d")?.unwrap_or(d.d),
        t: o.get("t")?.unwrap_or(d.t),
        sigma2: o.get("sigma2")?.unwrap_or(d.sigma2),
        rounds: o.get("rounds")?.unwrap_or(d.rounds),
        runs: o.get("runs")?.unwrap_or(d.runs),
        seed: o.get("seed")?.unwrap_or(d.seed),
        test_points: o.get("testPoints")?.unwrap_or(d.test_points),
    };
    to_js(&simulate(&options, |_| {}).map_err(js_error)?)
}

/// Fits a Gaussian to `n` real rows of `dim` features and resamples it generation after
/// generation, replacing or accumulating the data (an extension beyond the paper).
#[wasm_bindgen(js_name = resampleGaussian, unchecked_return_type = "ResamplingResult")]
pub fn resample_gaussian(
    x: &[f32],
    n: f64,
    dim: f64,
    #[wasm_bindgen(
        unchecked_param_type = "{ generations?: number; runs?: number; seed?: number }"
    )]
    options: JsValue,
) -> Result<JsValue, JsError> {
    let o = Options::optional(
        options,
        &["generations", "runs", "seed"],
        "resampleGaussian options",
    )?;
    let (n, dim) = (size_arg(n, "n", 0)?, size_arg(dim, "dim", 1)?);
    let x = Matrix::new(n, dim, x.to_vec(), "x").map_err(js_error)?;
    let result = gaussian_resampling(
        &x,
        o.get("generations")?.unwrap_or(20),
        o.get("runs")?.unwrap_or(50),
        o.get("seed")?.unwrap_or(0),
    )
    .map_err(js_error)?;
    to_js(&result)
}
