//! Plan graphs for JavaScript: `Plan`, `parsePlans`, `parseDuration`, …

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{js_error, reject_unknown_keys, to_js};
use crate::core::plan::{
    self, GraphEncoding, Plan as CorePlan, PlanFile, PromptOptions, ORDERING_TEMPLATES,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
/** A duration known to lie within [low, high] seconds. */
export type SecondsRange = [number, number];
export type GraphEncodingName = "none" | "adjacency-list" | "adjacency-matrix" | "csr" | "edge-list";
export interface PlanStep { id: string; text: string; duration: SecondsRange; duration_text: string; }
export interface StepTiming {
  id: string; duration: SecondsRange;
  earliest_start: SecondsRange; earliest_finish: SecondsRange;
  latest_start: SecondsRange; latest_finish: SecondsRange;
  slack: SecondsRange; critical: boolean;
}
export interface PlanAnalysis {
  title: string;
  optimal_seconds: SecondsRange; sequential_seconds: SecondsRange;
  speedup: [number | null, number | null];
  critical_path: string[];
  optimal_text: string; sequential_text: string;
  steps: StepTiming[];
}
export interface PromptOptions {
  encoding?: GraphEncodingName; bag?: boolean; chainOfThought?: boolean;
  /** Index into orderingTemplates(), default 1. */
  orderingTemplate?: number;
}
export interface AnswerScore {
  correct: boolean; answer_text: string | null; answer_seconds: SecondsRange | null;
  expected_seconds: SecondsRange;
  reason: "no_quoted_time" | "unknown_unit" | "range_answer" | "out_of_range" | null;
  message: string;
}
"#;

/// A validated plan: steps with durations and precedence constraints, no cycle.
#[wasm_bindgen(js_name = Plan)]
pub struct JsPlan {
    inner: CorePlan,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsPromptOptions {
    encoding: Option<String>,
    bag: Option<bool>,
    chain_of_thought: Option<bool>,
    ordering_template: Option<usize>,
}

impl JsPromptOptions {
    const KEYS: &'static [&'static str] =
        &["encoding", "bag", "chainOfThought", "orderingTemplate"];
}

#[wasm_bindgen(js_class = Plan)]
impl JsPlan {
    /// Reads one plan from JSON text: latentlab plan JSON or an AsyncHow record.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(text: &str) -> Result<JsPlan, JsError> {
        let mut plans = plan::parse_plans(text);
        if plans.len() != 1 {
            return Err(JsError::new(&format!(
                "expected one plan, found {} (parsePlans reads several)",
                plans.len()
            )));
        }
        let inner = plans.remove(0).map_err(js_error)?;
        Ok(JsPlan { inner })
    }

    #[wasm_bindgen(getter)]
    pub fn title(&self) -> String {
        self.inner.title().to_string()
    }

    #[wasm_bindgen(getter, unchecked_return_type = "PlanStep[]")]
    pub fn steps(&self) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct StepOut<'a> {
            id: &'a str,
            text: &'a str,
            duration: plan::Seconds,
            duration_text: &'a str,
        }
        let steps: Vec<StepOut> = self
            .inner
            .steps()
            .iter()
            .map(|s| StepOut {
                id: &s.id,
                text: &s.text,
                duration: s.duration,
                duration_text: &s.duration_text,
            })
            .collect();
        to_js(&steps)
    }

    /// Precedence constraints as [before, after] step ids.
    #[wasm_bindgen(getter, unchecked_return_type = "[string, string][]")]
    pub fn constraints(&self) -> Result<JsValue, JsError> {
        let steps = self.inner.steps();
        let pairs: Vec<[&str; 2]> = self
            .inner
            .constraints()
            .iter()
            .map(|&(a, b)| [steps[a].id.as_str(), steps[b].id.as_str()])
            .collect();
        to_js(&pairs)
    }

    /// Optimal time with unlimited parallelism, critical path and schedule.
    #[wasm_bindgen(unchecked_return_type = "PlanAnalysis")]
    pub fn analyze(&self) -> Result<JsValue, JsError> {
        to_js(&plan::analyze(&self.inner))
    }

    /// The PLaG prompt for this plan.
    pub fn prompt(
        &self,
        #[wasm_bindgen(unchecked_param_type = "PromptOptions")] options: Option<JsValue>,
    ) -> Result<String, JsError> {
        let given: JsPromptOptions = match options {
            Some(o) if !o.is_undefined() && !o.is_null() => {
                reject_unknown_keys(&o, JsPromptOptions::KEYS, "prompt options")?;
                serde_wasm_bindgen::from_value(o)
                    .map_err(|e| JsError::new(&format!("bad prompt options: {e}")))?
            }
            _ => JsPromptOptions::default(),
        };
        let defaults = PromptOptions::default();
        let encoding = match given.encoding {
            Some(name) => name.parse::<GraphEncoding>().map_err(js_error)?,
            None => defaults.encoding,
        };
        let options = PromptOptions {
            encoding,
            bag: given.bag.unwrap_or(defaults.bag),
            chain_of_thought: given.chain_of_thought.unwrap_or(defaults.chain_of_thought),
            ordering_template: given
                .ordering_template
                .unwrap_or(defaults.ordering_template),
        };
        plan::prompt(&self.inner, options).map_err(js_error)
    }

    /// Judges a language model's answer (the time in double quotes).
    #[wasm_bindgen(unchecked_return_type = "AnswerScore")]
    pub fn score(&self, answer: &str) -> Result<JsValue, JsError> {
        to_js(&plan::score_answer(&self.inner, answer))
    }

    /// The plan as an AsyncHow-style record (JSON text).
    #[wasm_bindgen(js_name = toAsyncHow)]
    pub fn to_asynchow(&self) -> String {
        plan::to_asynchow(&self.inner).to_string()
    }

    /// The plan as latentlab plan JSON (text).
    #[wasm_bindgen(js_name = toJson)]
    pub fn to_json(&self) -> Result<String, JsError> {
        serde_json::to_string(&PlanFile::from_plan(&self.inner)).map_err(js_error)
    }
}

/// Reads every plan in JSON text: one plan, an array, or JSON lines. Fails on the first
/// bad record, naming it.
#[wasm_bindgen(js_name = parsePlans)]
pub fn parse_plans(text: &str) -> Result<Vec<JsPlan>, JsError> {
    plan::parse_plans(text)
        .into_iter()
        .map(|p| p.map(|inner| JsPlan { inner }).map_err(js_error))
        .collect()
}

/// A duration phrase ("2 months", "1 hour 30 minutes") as [low, high] seconds.
#[wasm_bindgen(js_name = parseDuration)]
pub fn parse_duration(phrase: &str) -> Result<Vec<f64>, JsError> {
    plan::parse_duration(phrase)
        .map(|d| d.to_array().to_vec())
        .map_err(|e| JsError::new(&format!("{phrase:?}: {e}")))
}

/// Seconds for people: "1 h 25 min".
#[wasm_bindgen(js_name = formatSeconds)]
pub fn format_seconds(seconds: f64) -> String {
    plan::humanize_seconds(seconds)
}

/// The names `Plan.prompt` accepts as `encoding`.
#[wasm_bindgen(js_name = graphEncodings)]
pub fn graph_encodings() -> Vec<String> {
    GraphEncoding::NAMES.iter().map(|s| s.to_string()).collect()
}

/// The paper's ten phrasings of a precedence constraint.
#[wasm_bindgen(js_name = orderingTemplates)]
pub fn ordering_templates() -> Vec<String> {
    ORDERING_TEMPLATES.iter().map(|s| s.to_string()).collect()
}
