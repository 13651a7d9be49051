//! Plans as DAGs, after "Graph-enhanced Large Language Models in Asynchronous Plan
//! Reasoning" (PLaG / AsyncHow, Lin et al., ICML 2024).
//!
//! A [`Plan`] is a list of steps, each with a duration range, and precedence constraints
//! between them. Building one validates it (ids, durations, acyclicity); everything else
//! here — the schedule, the prompts, the answer scorer, the file formats — takes a valid
//! plan and cannot fail on its graph.

mod duration;
mod formats;
mod prompt;
mod schedule;
mod score;

pub use duration::{
    format_duration, humanize, humanize_seconds, parse_duration, parse_duration_lenient,
    unit_seconds, DurationError, Seconds,
};
pub use formats::{
    parse_plan_value, parse_plans, to_asynchow, AsyncHowRecord, DurationSpec, PlanFile,
    PlanFileStep, StepId,
};
pub use prompt::{
    prompt, Csr, GraphEncoding, GraphStructures, PromptError, PromptOptions,
    DEFAULT_ORDERING_TEMPLATE, ORDERING_TEMPLATES,
};
pub use schedule::{analyze, Analysis, StepTiming};
pub use score::{score_answer, Score, ScoreFailure};

use std::collections::HashMap;

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub id: String,
    pub text: String,
    pub duration: Seconds,
    /// The phrase shown to a language model, e.g. "30 minutes".
    pub duration_text: String,
}

/// A validated plan: unique step ids, constraints between known steps, no cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    title: String,
    steps: Vec<Step>,
    /// (before, after) as indices into `steps`, in the order they were given.
    constraints: Vec<(usize, usize)>,
    successors: Vec<Vec<usize>>,
    predecessors: Vec<Vec<usize>>,
    /// A topological order of step indices (Kahn's algorithm, lowest index first).
    topological: Vec<usize>,
    /// Orderings an AsyncHow record listed its edges and times in, kept so that prompts and
    /// exports of a record reproduce the paper's text exactly. `None` for other plans.
    asynchow_layout: Option<AsyncHowLayout>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AsyncHowLayout {
    /// The record's `edge_list`, START and END edges included, in its order.
    pub edge_list: Vec<(String, String)>,
    /// The record's `time_dic` keys in its order.
    pub time_keys: Vec<String>,
}

/// Why a plan is not valid. Every variant names the offending step or value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("a plan needs at least one step")]
    NoSteps,
    #[error("step {index} has an empty id")]
    EmptyStepId { index: usize },
    #[error("step id {id:?} is used twice")]
    DuplicateStep { id: String },
    #[error("constraint {index} names unknown step {id:?}")]
    UnknownStep { index: usize, id: String },
    #[error("step {step:?} has a bad duration {text:?}: {source}")]
    BadDuration {
        step: String,
        text: String,
        source: DurationError,
    },
    #[error("step {step:?} has no duration")]
    MissingDuration { step: String },
    #[error("the constraints form a cycle: {}", cycle_text(.steps))]
    Cycle { steps: Vec<String> },
    #[error("{0}")]
    Format(String),
    #[error("record {record}: {error}")]
    InRecord {
        record: usize,
        error: Box<PlanError>,
    },
}

fn cycle_text(steps: &[String]) -> String {
    let mut parts: Vec<&str> = steps.iter().map(String::as_str).collect();
    if let Some(first) = steps.first() {
        parts.push(first);
    }
    parts.join(" → ")
}

impl Plan {
    /// Validates and builds a plan. `constraints` are (before, after) step ids.
    pub fn new(
        title: impl Into<String>,
        steps: Vec<Step>,
        constraints: &[(String, String)],
    ) -> Result<Plan, PlanError> {
        if steps.is_empty() {
            return Err(PlanError::NoSteps);
        }
        let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            if step.id.trim().is_empty() {
                return Err(PlanError::EmptyStepId { index: i });
            }
            if index_of.insert(step.id.as_str(), i).is_some() {
                return Err(PlanError::DuplicateStep {
                    id: step.id.clone(),
                });
            }
        }
        let lookup = |index: usize, id: &str| {
            index_of
                .get(id)
                .copied()
                .ok_or_else(|| PlanError::UnknownStep {
                    index,
                    id: id.to_string(),
                })
        };
        let mut edges = Vec::with_capacity(constraints.len());
        for (k, (before, after)) in constraints.iter().enumerate() {
            edges.push((lookup(k, before)?, lookup(k, after)?));
        }
        let n = steps.len();
        let mut successors = vec![Vec::new(); n];
        let mut predecessors = vec![Vec::new(); n];
        for &(a, b) in &edges {
            if !successors[a].contains(&b) {
                successors[a].push(b);
                predecessors[b].push(a);
            }
        }
        let topological =
            topological_order(&successors, &predecessors).map_err(|cycle| PlanError::Cycle {
                steps: cycle.iter().map(|&i| steps[i].id.clone()).collect(),
            })?;
        Ok(Plan {
            title: title.into(),
            steps,
            constraints: edges,
            successors,
            predecessors,
            topological,
            asynchow_layout: None,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// (before, after) step indices, in the order given.
    pub fn constraints(&self) -> &[(usize, usize)] {
        &self.constraints
    }
    pub fn successors(&self, step: usize) -> &[usize] {
        &self.successors[step]
    }
    pub fn predecessors(&self, step: usize) -> &[usize] {
        &self.predecessors[step]
    }
    pub fn topological_order(&self) -> &[usize] {
        &self.topological
    }

    pub(crate) fn with_asynchow_layout(mut self, layout: AsyncHowLayout) -> Plan {
        self.asynchow_layout = Some(layout);
        self
    }

    pub(crate) fn asynchow_layout(&self) -> Option<&AsyncHowLayout> {
        self.asynchow_layout.as_ref()
    }
}

/// Kahn's algorithm taking the lowest ready index first, so the order is deterministic.
/// On a cycle, returns the steps of one cycle in order.
fn topological_order(
    successors: &[Vec<usize>],
    predecessors: &[Vec<usize>],
) -> Result<Vec<usize>, Vec<usize>> {
    let n = successors.len();
    let mut indegree: Vec<usize> = predecessors.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &successors[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every step left over has a predecessor that is also left over, so walking back
    // through left-over predecessors must revisit a step: that stretch is a cycle.
    let left: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
    let mut position = vec![usize::MAX; n];
    let mut walk = Vec::new();
    let mut current = (0..n).find(|&i| left[i]).unwrap_or(0);
    while position[current] == usize::MAX {
        position[current] = walk.len();
        walk.push(current);
        current = predecessors[current]
            .iter()
            .copied()
            .find(|&p| left[p])
            .unwrap_or(current);
    }
    let mut cycle = walk[position[current]..].to_vec();
    cycle.reverse();
    // Start the report at the cycle's lowest index, for a stable message.
    if let Some(min_at) = (0..cycle.len()).min_by_key(|&k| cycle[k]) {
        cycle.rotate_left(min_at);
    }
    Err(cycle)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn step(id: &str, phrase: &str) -> Step {
        Step {
            id: id.to_string(),
            text: format!("do {id}"),
            duration: parse_duration(phrase).unwrap(),
            duration_text: phrase.to_string(),
        }
    }

    pub fn edges(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn builds_a_valid_plan() {
        let plan = Plan::new(
            "How to make tea",
            vec![step("a", "5 min"), step("b", "1 min"), step("c", "3 min")],
            &edges(&[("a", "c"), ("b", "c")]),
        )
        .unwrap();
        assert_eq!(plan.topological_order(), &[0, 1, 2]);
        assert_eq!(plan.predecessors(2), &[0, 1]);
    }

    #[test]
    fn names_unknown_and_duplicate_steps() {
        let err = Plan::new("t", vec![step("a", "1 min")], &edges(&[("a", "zz")])).unwrap_err();
        assert_eq!(
            err,
            PlanError::UnknownStep {
                index: 0,
                id: "zz".into()
            }
        );
        assert!(err.to_string().contains("\"zz\""));
        let err = Plan::new("t", vec![step("a", "1 min"), step("a", "2 min")], &[]).unwrap_err();
        assert_eq!(err, PlanError::DuplicateStep { id: "a".into() });
        assert_eq!(Plan::new("t", vec![], &[]).unwrap_err(), PlanError::NoSteps);
        let err = Plan::new("t", vec![step(" ", "1 min")], &[]).unwrap_err();
        assert_eq!(err, PlanError::EmptyStepId { index: 0 });
    }

    #[test]
    fn reports_the_steps_of_a_cycle() {
        let err = Plan::new(
            "t",
            vec![
                step("start", "1 min"),
                step("x", "1 min"),
                step("y", "1 min"),
                step("z", "1 min"),
            ],
            &edges(&[("start", "x"), ("x", "y"), ("y", "z"), ("z", "x")]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PlanError::Cycle {
                steps: vec!["x".into(), "y".into(), "z".into()]
            }
        );
        assert_eq!(
            err.to_string(),
            "the constraints form a cycle: x → y → z → x"
        );
    }

    #[test]
    fn a_self_constraint_is_a_cycle() {
        let err = Plan::new("t", vec![step("a", "1 min")], &edges(&[("a", "a")])).unwrap_err();
        assert_eq!(
            err,
            PlanError::Cycle {
                steps: vec!["a".into()]
            }
        );
    }
}
