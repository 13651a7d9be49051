//! The wasm facade, compiled to wasm32 and run in Node by wasm-bindgen-test
//! (`cargo test --target wasm32-unknown-unknown --test wasm_facade`).
#![cfg(target_arch = "wasm32")]

use latentlab::wasm::{parse_duration, parse_plans, JsPlan};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const RECORD: &str = include_str!("fixtures/asynchow/para_benchmark.jsonl");

fn water_park() -> &'static str {
    include_str!("fixtures/asynchow/async_benchmark.jsonl")
        .lines()
        .nth(1)
        .unwrap()
}

fn get(value: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

fn message(error: wasm_bindgen::JsError) -> String {
    let value: JsValue = error.into();
    let error: js_sys::Error = value.dyn_into().expect("a JS Error");
    error.message().into()
}

#[wasm_bindgen_test]
fn analyze_returns_plain_objects_with_the_cli_keys() {
    let plan = JsPlan::from_json(water_park()).unwrap();
    assert_eq!(plan.title(), "How to go to the local water park");
    let analysis = plan.analyze().unwrap();
    let optimal: js_sys::Array = get(&analysis, "optimal_seconds").dyn_into().unwrap();
    assert_eq!(optimal.get(0).as_f64(), Some(5100.0));
    assert_eq!(optimal.get(1).as_f64(), Some(5100.0));
    let path: js_sys::Array = get(&analysis, "critical_path").dyn_into().unwrap();
    let ids: Vec<String> = path.iter().map(|v| v.as_string().unwrap()).collect();
    assert_eq!(ids, ["2", "3", "4", "5"]);
    assert_eq!(
        get(&analysis, "optimal_text").as_string().unwrap(),
        "1 h 25 min"
    );
}

#[wasm_bindgen_test]
fn prompt_options_and_scoring() {
    let plan = JsPlan::from_json(water_park()).unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"encoding".into(), &"edge-list".into()).unwrap();
    let prompt = plan.prompt(Some(options.into())).unwrap();
    assert!(prompt.contains("Here is the edge list representation"));
    assert!(plan.prompt(None).unwrap().ends_with("Answer:"));

    let bad = js_sys::Object::new();
    js_sys::Reflect::set(&bad, &"encoding".into(), &"matrix".into()).unwrap();
    let err = message(plan.prompt(Some(bad.into())).unwrap_err());
    assert!(err.contains("unknown graph encoding \"matrix\""), "{err}");
    let typo = js_sys::Object::new();
    js_sys::Reflect::set(&typo, &"encodng".into(), &"csr".into()).unwrap();
    let err = message(plan.prompt(Some(typo.into())).unwrap_err());
    assert!(err.contains("encodng"), "{err}");

    let score = plan.score("the answer is \"1 hour 25 minutes\"").unwrap();
    assert_eq!(get(&score, "correct").as_bool(), Some(true));
    let score = plan.score("no idea").unwrap();
    assert_eq!(get(&score, "reason").as_string().unwrap(), "no_quoted_time");
}

#[wasm_bindgen_test]
fn bad_input_throws_errors_that_name_the_value() {
    let cases = [
        ("{\"title\": ", "invalid JSON"),
        (
            r#"{"steps": [{"id": "a", "duration": "1 min"}], "constraints": [["a", "a"]]}"#,
            "the constraints form a cycle: a → a",
        ),
        (
            r#"{"steps": [{"id": "a", "duration": "2 lightyears"}]}"#,
            "unknown unit \"lightyears\"",
        ),
    ];
    for (input, expected) in cases {
        let err = message(JsPlan::from_json(input).err().expect("an error"));
        assert!(err.contains(expected), "{input}: {err}");
    }
    let err = message(parse_duration("3 m").unwrap_err());
    assert!(err.contains("ambiguous unit"), "{err}");
}

#[wasm_bindgen_test]
fn parse_plans_reads_json_lines_and_round_trips() {
    let plans = parse_plans(RECORD).unwrap();
    assert_eq!(plans.len(), 200);
    let again = JsPlan::from_json(&plans[0].to_asynchow()).unwrap();
    assert_eq!(again.title(), plans[0].title());
    let as_json = JsPlan::from_json(&plans[0].to_json().unwrap()).unwrap();
    assert_eq!(as_json.title(), plans[0].title());
    assert_eq!(
        parse_duration("2 months").unwrap(),
        vec![4_838_400.0, 5_356_800.0]
    );
}
