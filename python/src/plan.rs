//! Plan graphs: the `Plan` class (read, analyse, prompt, score, export) and the duration
//! helpers, with the wasm package's `Plan` API and `latentlab plan`'s JSON keys.

use pyo3::prelude::*;
use pyo3::types::PyType;

use latentlab::core::plan::{
    self, GraphEncoding, Plan as CorePlan, PlanFile, PromptOptions, ORDERING_TEMPLATES,
};

use crate::convert::{json_to_py, to_py, value_error};

/// A validated plan: steps with [low, high] durations and precedence constraints, no cycle.
#[pyclass(module = "latentlab", frozen)]
pub struct Plan {
    inner: CorePlan,
}

#[pymethods]
impl Plan {
    /// Reads one plan from JSON text: latentlab plan JSON or an AsyncHow record.
    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Plan> {
        let mut plans = plan::parse_plans(text);
        if plans.len() != 1 {
            return Err(value_error(format!(
                "expected one plan, found {} (parse_plans reads several)",
                plans.len()
            )));
        }
        let inner = plans.remove(0).map_err(value_error)?;
        Ok(Plan { inner })
    }

    #[getter]
    fn title(&self) -> &str {
        self.inner.title()
    }

    /// The steps: `id`, `text`, `duration` ([low, high] seconds), `duration_text`.
    #[getter]
    fn steps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let steps: Vec<serde_json::Value> = self
            .inner
            .steps()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "text": s.text, "duration": s.duration,
                    "duration_text": s.duration_text,
                })
            })
            .collect();
        json_to_py(py, &serde_json::Value::Array(steps))
    }

    /// Precedence constraints as (before, after) step ids.
    #[getter]
    fn constraints(&self) -> Vec<(String, String)> {
        let steps = self.inner.steps();
        self.inner
            .constraints()
            .iter()
            .map(|&(a, b)| (steps[a].id.clone(), steps[b].id.clone()))
            .collect()
    }

    /// Optimal time with unlimited parallelism, the critical path and every step's schedule
    /// (`latentlab plan optimal --schedule`'s keys).
    fn analyze<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &plan::analyze(&self.inner))
    }

    /// The PLaG prompt for this plan.
    #[pyo3(signature = (*, encoding="none", bag=false, chain_of_thought=false,
        ordering_template=plan::DEFAULT_ORDERING_TEMPLATE))]
    fn prompt(
        &self,
        encoding: &str,
        bag: bool,
        chain_of_thought: bool,
        ordering_template: usize,
    ) -> PyResult<String> {
        let options = PromptOptions {
            encoding: encoding.parse::<GraphEncoding>().map_err(value_error)?,
            bag,
            chain_of_thought,
            ordering_template,
        };
        plan::prompt(&self.inner, options).map_err(value_error)
    }

    /// Judges a language model's answer (the time in double quotes) against the optimal time.
    fn score<'py>(&self, py: Python<'py>, answer: &str) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &plan::score_answer(&self.inner, answer))
    }

    /// The plan as an AsyncHow-style record (JSON text).
    fn to_asynchow(&self) -> String {
        plan::to_asynchow(&self.inner).to_string()
    }

    /// The plan as latentlab plan JSON (text).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&PlanFile::from_plan(&self.inner)).map_err(value_error)
    }

    fn __repr__(&self) -> String {
        format!(
            "Plan(title={:?}, steps={})",
            self.inner.title(),
            self.inner.steps().len()
        )
    }
}

/// Every plan in JSON text: one plan, an array, or JSON lines. Fails on the first bad
/// record, naming it.
#[pyfunction]
pub fn parse_plans(text: &str) -> PyResult<Vec<Plan>> {
    plan::parse_plans(text)
        .into_iter()
        .map(|p| p.map(|inner| Plan { inner }).map_err(value_error))
        .collect()
}

/// A duration phrase ("2 months", "1 hour 30 minutes") as (low, high) seconds.
#[pyfunction]
pub fn parse_duration(phrase: &str) -> PyResult<(f64, f64)> {
    plan::parse_duration(phrase)
        .map(|d| (d.low, d.high))
        .map_err(|e| value_error(format!("{phrase:?}: {e}")))
}

/// Seconds for people: "1 h 25 min".
#[pyfunction]
pub fn format_seconds(seconds: f64) -> String {
    plan::humanize_seconds(seconds)
}

/// The names `Plan.prompt` accepts as `encoding`.
#[pyfunction]
pub fn graph_encodings() -> Vec<&'static str> {
    GraphEncoding::NAMES.to_vec()
}

/// The paper's ten phrasings of a precedence constraint (`ordering_template` indexes them).
#[pyfunction]
pub fn ordering_templates() -> Vec<&'static str> {
    ORDERING_TEMPLATES.to_vec()
}
