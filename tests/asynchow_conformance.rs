//! Every AsyncHow task (1,998): latentlab's optimal time, duration parsing and graph
//! structures must reproduce the benchmark's published values.

use latentlab::core::plan::{
    analyze, parse_duration, parse_plan_value, to_asynchow, Plan, Seconds,
};
use serde_json::Value;

const FILES: [&str; 3] = [
    "async_benchmark.jsonl",
    "para_benchmark.jsonl",
    "seq_benchmark.jsonl",
];

/// The two tasks whose published lower bound is not the longest path of lower durations.
/// The generator (`generate_task_time`) keeps, as the lower bound, the low sum of whichever
/// path it met last among those whose high sum reaches the running lower bound — not the
/// largest low sum. Their correct values, checked below against every path, are ours.
const PUBLISHED_LOW_BOUND_IS_NOT_THE_LONGEST_PATH: [(&str, [f64; 2]); 2] = [
    ("How to Live Like a Minimalist", [6_220_800.0, 6_739_200.0]),
    ("How to Freeze Watermelon", [29_034_900.0, 32_145_300.0]),
];

fn records() -> Vec<(String, usize, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/asynchow");
    let mut out = Vec::new();
    for file in FILES {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("fixture readable");
        for (line, record) in text.lines().enumerate() {
            let value: Value = serde_json::from_str(record).expect("fixture is JSON");
            out.push((file.to_string(), line + 1, value));
        }
    }
    out
}

fn pair(v: &Value) -> [f64; 2] {
    serde_json::from_value(v.clone()).expect("a [low, high] pair")
}

/// The longest path by brute force over the record's own list of every START→END path.
fn longest_over_all_paths(record: &Value) -> [f64; 2] {
    let durations = &record["timedelta_dic"];
    let mut best = [0.0f64, 0.0f64];
    for path in record["all_paths"].as_array().expect("all_paths") {
        let mut sum = [0.0, 0.0];
        for node in path.as_array().expect("a path") {
            let node = node.as_str().expect("a node label");
            if node != "START" && node != "END" {
                let d = pair(&durations[node]);
                sum[0] += d[0];
                sum[1] += d[1];
            }
        }
        best[0] = best[0].max(sum[0]);
        best[1] = best[1].max(sum[1]);
    }
    best
}

#[test]
fn optimal_time_equals_task_time_for_every_task() {
    let all = records();
    assert_eq!(all.len(), 1_998);
    let mut exceptions_seen = Vec::new();
    for (file, line, record) in &all {
        let plan = parse_plan_value(record)
            .unwrap_or_else(|e| panic!("{file}:{line}: not read as a plan: {e}"));
        let ours = analyze(&plan).optimal_seconds.to_array();
        let published = pair(&record["task_time"]);
        let title = record["titles"].as_str().expect("a title");
        match PUBLISHED_LOW_BOUND_IS_NOT_THE_LONGEST_PATH
            .iter()
            .find(|(t, _)| *t == title)
        {
            None => assert_eq!(ours, published, "{file}:{line} {title:?}"),
            Some((_, correct)) => {
                exceptions_seen.push(title.to_string());
                assert_eq!(ours, *correct, "{file}:{line} {title:?}");
                assert_eq!(ours, longest_over_all_paths(record), "{title:?}");
                assert_eq!(ours[1], published[1], "the high bound agrees");
                assert!(published[0] < ours[0], "the published low bound is too low");
            }
        }
    }
    exceptions_seen.sort();
    assert_eq!(
        exceptions_seen,
        vec!["How to Freeze Watermelon", "How to Live Like a Minimalist"]
    );
}

#[test]
fn optimal_time_equals_brute_force_over_every_path() {
    for (file, line, record) in records() {
        let plan = parse_plan_value(&record).unwrap();
        assert_eq!(
            analyze(&plan).optimal_seconds.to_array(),
            longest_over_all_paths(&record),
            "{file}:{line}"
        );
    }
}

#[test]
fn critical_path_is_a_longest_source_to_sink_path() {
    for (file, line, record) in records() {
        let plan: Plan = parse_plan_value(&record).unwrap();
        let analysis = analyze(&plan);
        let index = |id: &str| plan.steps().iter().position(|s| s.id == id).unwrap();
        let path: Vec<usize> = analysis.critical_path.iter().map(|id| index(id)).collect();
        assert!(!path.is_empty(), "{file}:{line}");
        assert!(
            plan.predecessors(path[0]).is_empty(),
            "{file}:{line} starts at a source"
        );
        assert!(
            plan.successors(*path.last().unwrap()).is_empty(),
            "{file}:{line} ends at a sink"
        );
        for w in path.windows(2) {
            assert!(
                plan.successors(w[0]).contains(&w[1]),
                "{file}:{line} follows edges"
            );
        }
        let high: f64 = path.iter().map(|&i| plan.steps()[i].duration.high).sum();
        assert_eq!(high, analysis.optimal_seconds.high, "{file}:{line}");
        for &i in &path {
            assert!(analysis.steps[i].critical, "{file}:{line}");
        }
    }
}

#[test]
fn duration_phrases_parse_to_the_recorded_seconds() {
    let mut checked = 0;
    let mut multi_part = 0;
    for (file, line, record) in records() {
        let times = record["time_dic"].as_object().unwrap();
        for (step, phrase) in times {
            let phrase = phrase.as_str().unwrap();
            let parsed = parse_duration(phrase)
                .unwrap_or_else(|e| panic!("{file}:{line} step {step} {phrase:?}: {e}"));
            let recorded = pair(&record["timedelta_dic"][step]);
            let recorded = Seconds {
                low: recorded[0],
                high: recorded[1],
            };
            let parts: Vec<&str> = phrase.split_whitespace().collect();
            if parts.len() > 2 {
                // The generator keeps only the last "number unit" of a phrase, so eight
                // phrases such as "2 hours 30 minutes" were recorded as their last part
                // (30 minutes). We sum the parts; records keep their recorded seconds.
                let last = parts[parts.len() - 2..].join(" ");
                assert_eq!(
                    parse_duration(&last).unwrap(),
                    recorded,
                    "{file}:{line} {phrase:?}"
                );
                assert!(parsed.high > recorded.high);
                multi_part += 1;
            } else {
                assert_eq!(parsed, recorded, "{file}:{line} {phrase:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 10_221);
    assert_eq!(multi_part, 8);
}

#[test]
fn exported_graph_structures_equal_the_records() {
    for (file, line, record) in records() {
        let plan = parse_plan_value(&record).unwrap();
        let exported = to_asynchow(&plan);
        for key in [
            "titles",
            "steps",
            "step_nums",
            "step_deps",
            "edge_list",
            "adjacency_list",
            "adjacency_matrix",
            "csr",
            "time_dic",
        ] {
            assert_eq!(exported[key], record[key], "{file}:{line} {key}");
        }
    }
}

#[test]
fn graph_structures_are_rebuilt_exactly_without_the_records_orderings() {
    // Drop the record's own edge list: the canonical one must still give the same sets.
    for (file, line, mut record) in records().into_iter().take(300) {
        let object = record.as_object_mut().unwrap();
        let original_edges = object.remove("edge_list").unwrap();
        let plan = parse_plan_value(&record).unwrap();
        let exported = to_asynchow(&plan);
        let mut ours: Vec<Value> = exported["edge_list"].as_array().unwrap().clone();
        let mut theirs: Vec<Value> = original_edges.as_array().unwrap().clone();
        let key = |v: &Value| v.to_string();
        ours.sort_by_key(key);
        theirs.sort_by_key(key);
        assert_eq!(ours, theirs, "{file}:{line}");
        assert_eq!(
            exported["adjacency_matrix"], record["adjacency_matrix"],
            "{file}:{line}"
        );
    }
}
