//! Model collapse for JavaScript: `simulateCollapse(options)` runs the replace vs accumulate
//! simulation in linear regression and returns it beside the paper's closed forms, with the
//! CLI's keys.

use wasm_bindgen::prelude::*;

use super::{js_error, to_js, Options};
use crate::core::collapse::{simulate, CollapseOptions};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export interface CollapseOptions {
  /** Defaults: d 10, t 100, sigma2 1, rounds 10, runs 100, seed 0, testPoints 1000. */
  d?: number; t?: number; sigma2?: number; rounds?: number; runs?: number; seed?: number;
  testPoints?: number;
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
