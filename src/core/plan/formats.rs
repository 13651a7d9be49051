//! Reading and writing plans: latentlab's own plan JSON and AsyncHow records.
//!
//! latentlab's plan JSON (documented in the README):
//! ```json
//! {"title": "How to make tea",
//!  "steps": [{"id": "boil", "text": "Boil water", "duration": "5 minutes"},
//!            {"id": "cup", "text": "Fetch a cup", "duration": 60},
//!            {"id": "steep", "text": "Steep the tea", "duration": [120, 300]}],
//!  "constraints": [["boil", "steep"], ["cup", "steep"]]}
//! ```
//! A duration is a phrase, a number of seconds, or a `[low, high]` range of seconds.
//! An AsyncHow record is one line of the benchmark's JSON (`titles`, `steps`,
//! `step_deps`, `time_dic`, optionally `timedelta_dic` and `edge_list`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};

use super::prompt::GraphStructures;
use super::{
    format_duration, parse_duration, schedule, AsyncHowLayout, Plan, PlanError, Seconds, Step,
};

/// latentlab's plan JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    #[serde(default)]
    pub title: String,
    pub steps: Vec<PlanFileStep>,
    #[serde(default)]
    pub constraints: Vec<(StepId, StepId)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFileStep {
    pub id: StepId,
    #[serde(default)]
    pub text: String,
    pub duration: DurationSpec,
}

/// A step id: a string, or a whole number written without quotes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct StepId(pub String);

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StepId, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(StepId(s)),
            Value::Number(n) if n.is_u64() || n.is_i64() => Ok(StepId(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "a step id must be a string or a whole number, not {other}"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationSpec {
    Phrase(String),
    Seconds(f64),
    Range([f64; 2]),
}

/// The fields of an AsyncHow record that define a plan; the others are derived.
#[derive(Clone, Debug, Deserialize)]
pub struct AsyncHowRecord {
    pub titles: String,
    pub steps: Vec<String>,
    #[serde(default)]
    pub step_deps: Vec<(String, String)>,
    pub time_dic: Map<String, Value>,
    #[serde(default)]
    pub timedelta_dic: Option<Map<String, Value>>,
    #[serde(default)]
    pub edge_list: Option<Vec<(String, String)>>,
}

const NOT_A_PLAN: &str = "expected a latentlab plan (title, steps, constraints) or an AsyncHow record (titles, steps, step_deps, time_dic)";

/// Reads one plan, or a JSON array of plans, or JSON lines of plans, in either format.
/// Each record gives its own result, so one bad record does not hide the others; a JSON
/// syntax error ends the input there.
pub fn parse_plans(text: &str) -> Vec<Result<Plan, PlanError>> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return vec![Err(PlanError::Format("the input holds no plan".into()))];
    }
    let mut values = Vec::new();
    let mut syntax_error = None;
    for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match item {
            Ok(Value::Array(items)) => values.extend(items),
            Ok(v) => values.push(v),
            Err(e) => {
                syntax_error = Some(PlanError::Format(format!("invalid JSON: {e}")));
                break;
            }
        }
    }
    let many = values.len() > 1 || (values.len() == 1 && syntax_error.is_some());
    let mut out: Vec<Result<Plan, PlanError>> = values
        .iter()
        .enumerate()
        .map(|(k, v)| {
            parse_plan_value(v).map_err(|error| {
                if many {
                    PlanError::InRecord {
                        record: k + 1,
                        error: Box::new(error),
                    }
                } else {
                    error
                }
            })
        })
        .collect();
    out.extend(syntax_error.map(Err));
    out
}

/// Reads one plan from a parsed JSON value, in either format.
pub fn parse_plan_value(value: &Value) -> Result<Plan, PlanError> {
    let Some(object) = value.as_object() else {
        return Err(PlanError::Format(format!(
            "{NOT_A_PLAN}, not {}",
            kind_of(value)
        )));
    };
    if object.contains_key("titles")
        || object.contains_key("step_deps")
        || object.contains_key("time_dic")
    {
        let record: AsyncHowRecord = serde_json::from_value(value.clone())
            .map_err(|e| PlanError::Format(format!("not a valid AsyncHow record: {e}")))?;
        record.into_plan()
    } else if object.contains_key("steps") {
        let file: PlanFile = serde_json::from_value(value.clone())
            .map_err(|e| PlanError::Format(format!("not a valid latentlab plan: {e}")))?;
        file.into_plan()
    } else {
        Err(PlanError::Format(NOT_A_PLAN.into()))
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl PlanFile {
    pub fn into_plan(self) -> Result<Plan, PlanError> {
        let steps = self
            .steps
            .into_iter()
            .map(|s| {
                let id = s.id.0;
                let bad = |text: String, source| PlanError::BadDuration {
                    step: id.clone(),
                    text,
                    source,
                };
                let (duration, duration_text) = match s.duration {
                    DurationSpec::Phrase(p) => {
                        (parse_duration(&p).map_err(|e| bad(p.clone(), e))?, p)
                    }
                    DurationSpec::Seconds(x) => {
                        let d = Seconds::exact(x).map_err(|e| bad(x.to_string(), e))?;
                        (d, format_duration(d))
                    }
                    DurationSpec::Range([lo, hi]) => {
                        let d =
                            Seconds::range(lo, hi).map_err(|e| bad(format!("[{lo}, {hi}]"), e))?;
                        (d, format_duration(d))
                    }
                };
                Ok(Step {
                    id,
                    text: s.text,
                    duration,
                    duration_text,
                })
            })
            .collect::<Result<Vec<_>, PlanError>>()?;
        let constraints: Vec<(String, String)> = self
            .constraints
            .into_iter()
            .map(|(a, b)| (a.0, b.0))
            .collect();
        Plan::new(self.title, steps, &constraints)
    }

    pub fn from_plan(plan: &Plan) -> PlanFile {
        PlanFile {
            title: plan.title().to_string(),
            steps: plan
                .steps()
                .iter()
                .map(|s| PlanFileStep {
                    id: StepId(s.id.clone()),
                    text: s.text.clone(),
                    // Keep the phrase when it still says the same range; else give seconds.
                    duration: if parse_duration(&s.duration_text) == Ok(s.duration) {
                        DurationSpec::Phrase(s.duration_text.clone())
                    } else {
                        DurationSpec::Range(s.duration.to_array())
                    },
                })
                .collect(),
            constraints: plan
                .constraints()
                .iter()
                .map(|&(a, b)| {
                    (
                        StepId(plan.steps()[a].id.clone()),
                        StepId(plan.steps()[b].id.clone()),
                    )
                })
                .collect(),
        }
    }
}

impl AsyncHowRecord {
    pub fn into_plan(self) -> Result<Plan, PlanError> {
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, text) in self.steps.into_iter().enumerate() {
            let id = (i + 1).to_string();
            let phrase = match self.time_dic.get(&id) {
                Some(Value::String(p)) => p.clone(),
                Some(other) => {
                    return Err(PlanError::Format(format!(
                        "time_dic[{id:?}] must be a phrase such as \"30 minutes\", not {other}"
                    )))
                }
                None => return Err(PlanError::MissingDuration { step: id }),
            };
            // The record's own seconds are authoritative where present; the phrase is what
            // a model reads. (A test checks that the two agree for the whole benchmark.)
            let recorded = self
                .timedelta_dic
                .as_ref()
                .and_then(|t| t.get(&id))
                .map(|v| recorded_range(&id, v))
                .transpose()?;
            let duration = match recorded {
                Some(d) => d,
                None => parse_duration(&phrase).map_err(|source| PlanError::BadDuration {
                    step: id.clone(),
                    text: phrase.clone(),
                    source,
                })?,
            };
            steps.push(Step {
                id,
                text,
                duration,
                duration_text: phrase,
            });
        }
        let time_keys: Vec<String> = self.time_dic.keys().cloned().collect();
        let plan = Plan::new(self.titles, steps, &self.step_deps)?;
        let layout = self.edge_list.map(|edge_list| AsyncHowLayout {
            edge_list,
            time_keys,
        });
        Ok(match layout {
            Some(layout) if layout_matches(&plan, &layout) => plan.with_asynchow_layout(layout),
            _ => plan,
        })
    }
}

fn recorded_range(id: &str, value: &Value) -> Result<Seconds, PlanError> {
    let bad = |why: String| PlanError::Format(format!("timedelta_dic[{id:?}]: {why}"));
    let pair: [f64; 2] = serde_json::from_value(value.clone())
        .map_err(|_| bad(format!("expected [low, high] seconds, not {value}")))?;
    Seconds::range(pair[0], pair[1]).map_err(|e| bad(e.to_string()))
}

/// A record's edge and time orderings are kept only if they describe the same plan,
/// so an edited record never gets a stale graph in its prompt.
fn layout_matches(plan: &Plan, layout: &AsyncHowLayout) -> bool {
    let canonical = GraphStructures::canonical_edge_list(plan);
    let mut given = layout.edge_list.clone();
    let mut expected = canonical;
    given.sort();
    given.dedup();
    expected.sort();
    expected.dedup();
    let mut keys = layout.time_keys.clone();
    keys.sort();
    let mut ids: Vec<String> = (1..=plan.steps().len()).map(|i| i.to_string()).collect();
    ids.sort();
    given == expected && keys == ids && layout.edge_list.len() == given.len()
}

/// The plan as an AsyncHow-style record, with the derived fields the benchmark carries.
/// Steps are numbered 1..n in plan order, as AsyncHow numbers them.
pub fn to_asynchow(plan: &Plan) -> Value {
    let graph = GraphStructures::of(plan);
    let number = |i: usize| (i + 1).to_string();
    let times = graph.time_entries(plan);
    let mut time_dic = Map::new();
    let mut timedelta_dic = Map::new();
    for (key, text) in &times {
        time_dic.insert(key.clone(), json!(text));
    }
    for (key, _) in &times {
        if let Some(i) = key.parse::<usize>().ok().and_then(|k| k.checked_sub(1)) {
            if let Some(step) = plan.steps().get(i) {
                timedelta_dic.insert(key.clone(), json!(step.duration.to_array()));
            }
        }
    }
    let mut adjacency_list = Map::new();
    for (node, successors) in &graph.adjacency_list {
        adjacency_list.insert(node.clone(), json!(successors));
    }
    let analysis = schedule::analyze(plan);
    json!({
        "titles": plan.title(),
        "steps": plan.steps().iter().map(|s| s.text.clone()).collect::<Vec<_>>(),
        "step_nums": plan.steps().len(),
        "step_deps": plan.constraints().iter().map(|&(a, b)| [number(a), number(b)]).collect::<Vec<_>>(),
        "edge_list": graph.edge_list.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>(),
        "adjacency_list": adjacency_list,
        "adjacency_matrix": graph.adjacency_matrix,
        "csr": [graph.csr.values, graph.csr.row_indices, graph.csr.col_indices],
        "time_dic": time_dic,
        "timedelta_dic": timedelta_dic,
        "task_time": analysis.optimal_seconds.to_array(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEA: &str = r#"{"title": "How to make tea",
        "steps": [{"id": "boil", "text": "Boil water", "duration": "5 minutes"},
                  {"id": "cup", "text": "Fetch a cup", "duration": 60},
                  {"id": "steep", "text": "Steep", "duration": [120, 300]}],
        "constraints": [["boil", "steep"], ["cup", "steep"]]}"#;

    #[test]
    fn reads_latentlab_plan_json() {
        let plans = parse_plans(TEA);
        assert_eq!(plans.len(), 1);
        let plan = plans[0].as_ref().unwrap();
        assert_eq!(
            plan.steps()[1].duration,
            Seconds {
                low: 60.0,
                high: 60.0
            }
        );
        assert_eq!(plan.steps()[1].duration_text, "1 minute");
        assert_eq!(
            plan.steps()[2].duration,
            Seconds {
                low: 120.0,
                high: 300.0
            }
        );
        assert_eq!(plan.constraints(), &[(0, 2), (1, 2)]);
    }

    #[test]
    fn plan_json_round_trips() {
        let plan = parse_plans(TEA).remove(0).unwrap();
        let text = serde_json::to_string(&PlanFile::from_plan(&plan)).unwrap();
        let again = parse_plans(&text).remove(0).unwrap();
        assert_eq!(again.steps(), plan.steps());
        assert_eq!(again.constraints(), plan.constraints());
    }

    #[test]
    fn numeric_ids_are_accepted() {
        let text = r#"{"steps": [{"id": 1, "duration": "1 min"}, {"id": 2, "duration": "1 min"}],
                       "constraints": [[1, 2]]}"#;
        let plan = parse_plans(text).remove(0).unwrap();
        assert_eq!(plan.steps()[0].id, "1");
    }

    #[test]
    fn reads_json_lines_and_arrays_with_record_numbers() {
        let lines = format!("{}\n{}\n", TEA.replace('\n', " "), r#"{"steps": []}"#);
        let plans = parse_plans(&lines);
        assert_eq!(plans.len(), 2);
        assert!(plans[0].is_ok());
        let err = plans[1].as_ref().unwrap_err();
        assert_eq!(err.to_string(), "record 2: a plan needs at least one step");
        let array = format!("[{TEA}, {TEA}]");
        assert!(parse_plans(&array).iter().all(Result::is_ok));
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        let plans = parse_plans("{\"title\": \"x\", \"steps\": [");
        let err = plans[0].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("invalid JSON:"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        assert!(parse_plans("   ")[0].is_err());
        let err = parse_plans("42")[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("not a number"), "{err}");
    }

    #[test]
    fn unknown_fields_and_units_are_named() {
        let err = parse_plans(r#"{"steps": [{"id": "a", "duration": "1 min"}], "deps": []}"#)
            .remove(0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `deps`"), "{err}");
        let err = parse_plans(r#"{"steps": [{"id": "a", "duration": "3 fortnights"}]}"#)
            .remove(0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "step \"a\" has a bad duration \"3 fortnights\": unknown unit \"fortnights\" (expected seconds, minutes, hours, days, weeks, months or years)"
        );
        let err = parse_plans(r#"{"steps": [{"id": "a", "duration": -3}]}"#)
            .remove(0)
            .unwrap_err();
        assert!(matches!(err, PlanError::BadDuration { .. }), "{err}");
    }

    const RECORD: &str = r#"{"titles": "How to go to the local water park", "steps": ["Put on swim suit", "Search online for local water park", "Find out pricing and dates its open", "Purchase tickets to park", "Get into vehicle"], "step_nums": 5, "edge_list": [["3", "4"], ["1", "5"], ["4", "5"], ["2", "3"], ["START", "1"], ["START", "2"], ["5", "END"]], "step_deps": [["1", "5"], ["2", "3"], ["3", "4"], ["4", "5"]], "time_dic": {"3": "15 minutes", "4": "5 minutes", "1": "15 minutes", "5": "5 minutes", "2": "1 hours"}, "timedelta_dic": {"3": [900.0, 900.0], "4": [300.0, 300.0], "1": [900.0, 900.0], "5": [300.0, 300.0], "2": [3600.0, 3600.0]}, "task_time": [5100.0, 5100.0]}"#;

    #[test]
    fn reads_an_asynchow_record_and_keeps_its_layout() {
        let plan = parse_plans(RECORD).remove(0).unwrap();
        assert_eq!(plan.title(), "How to go to the local water park");
        assert_eq!(plan.steps()[1].duration_text, "1 hours");
        assert!(plan.asynchow_layout().is_some());
        let out = to_asynchow(&plan);
        assert_eq!(out["edge_list"][0], json!(["3", "4"]));
        assert_eq!(out["task_time"], json!([5100.0, 5100.0]));
        assert_eq!(
            out["time_dic"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["3", "4", "1", "5", "2"]
        );
        // And back again: the export is itself a record that reads to the same plan.
        let again = parse_plan_value(&out).unwrap();
        assert_eq!(again, plan);
    }

    #[test]
    fn a_stale_edge_list_is_ignored() {
        let edited = RECORD.replace(r#"["1", "5"], ["2", "3"]"#, r#"["2", "3"]"#);
        let plan = parse_plans(&edited).remove(0).unwrap();
        assert!(plan.asynchow_layout().is_none());
        let out = to_asynchow(&plan);
        assert!(out["edge_list"]
            .as_array()
            .unwrap()
            .contains(&json!(["START", "1"])));
    }

    #[test]
    fn a_record_with_a_cycle_is_refused() {
        let cyclic = RECORD.replace(r#"["4", "5"]]"#, r#"["4", "5"], ["4", "2"]]"#);
        let err = parse_plans(&cyclic).remove(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the constraints form a cycle: 2 → 3 → 4 → 2"
        );
    }

    #[test]
    fn latentlab_plans_export_as_records() {
        let plan = parse_plans(TEA).remove(0).unwrap();
        let out = to_asynchow(&plan);
        assert_eq!(out["step_deps"], json!([["1", "3"], ["2", "3"]]));
        assert_eq!(
            out["edge_list"],
            json!([
                ["1", "3"],
                ["2", "3"],
                ["START", "1"],
                ["START", "2"],
                ["3", "END"]
            ])
        );
        assert_eq!(out["task_time"], json!([420.0, 600.0]));
        let again = parse_plan_value(&out).unwrap();
        assert_eq!(again.steps().len(), 3);
    }
}
