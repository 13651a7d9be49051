//! The CLI from outside: command names, JSON keys, exit codes and error messages are
//! contracts.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn latentlab(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latentlab"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI starts");
    // A command refused for its arguments exits before reading stdin: the pipe is then
    // closed, which is that command's business, not a test failure.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn first_record() -> String {
    let text =
        std::fs::read_to_string(format!("{FIXTURES}/asynchow/async_benchmark.jsonl")).unwrap();
    text.lines().nth(1).unwrap().to_string()
}

const TEA: &str = r#"{"title": "How to make tea",
  "steps": [{"id": "boil", "text": "Boil water", "duration": "5 minutes"},
            {"id": "cup", "text": "Fetch a cup", "duration": "1 minute"},
            {"id": "steep", "text": "Steep the tea", "duration": "3-4 minutes"}],
  "constraints": [["boil", "steep"], ["cup", "steep"]]}"#;

#[test]
fn plan_optimal_prints_the_contract_keys_for_every_task_of_a_file() {
    let file = format!("{FIXTURES}/asynchow/seq_benchmark.jsonl");
    let out = latentlab(&["plan", "optimal", &file], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 200);
    let text = std::fs::read_to_string(&file).unwrap();
    for (line, record) in lines.iter().zip(text.lines()) {
        let record: Value = serde_json::from_str(record).unwrap();
        assert_eq!(line["title"], record["titles"]);
        assert_eq!(line["optimal_seconds"], record["task_time"]);
        assert!(line["sequential_seconds"].is_array());
        assert!(!line["critical_path"].as_array().unwrap().is_empty());
    }
}

#[test]
fn plan_optimal_reads_stdin_and_latentlab_json() {
    let out = latentlab(&["plan", "optimal", "-", "--schedule"], TEA);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["title"], "How to make tea");
    assert_eq!(line["optimal_seconds"], serde_json::json!([480.0, 540.0]));
    assert_eq!(
        line["sequential_seconds"],
        serde_json::json!([540.0, 600.0])
    );
    assert_eq!(line["critical_path"], serde_json::json!(["boil", "steep"]));
    assert_eq!(line["steps"][1]["slack"], serde_json::json!([240.0, 240.0]));
    // No file argument also means standard input.
    assert!(latentlab(&["plan", "optimal"], TEA).status.success());
}

#[test]
fn plan_prompt_in_each_encoding() {
    for encoding in [
        "none",
        "adjacency-list",
        "adjacency-matrix",
        "csr",
        "edge-list",
    ] {
        let out = latentlab(
            &["plan", "prompt", "--encoding", encoding, "-"],
            &first_record(),
        );
        assert!(out.status.success(), "{encoding}: {}", stderr(&out));
        let line = &json_lines(&out)[0];
        assert_eq!(line["encoding"], encoding);
        let prompt = line["prompt"].as_str().unwrap();
        assert!(prompt.starts_with("To go to the local water park, here are the steps"));
        assert!(prompt.ends_with("Answer the time in double quotes.\nAnswer:"));
    }
    let out = latentlab(&["plan", "prompt", "--bag", "--raw", "-"], &first_record());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Let's construct a graph with the nodes and edges first"));
}

#[test]
fn plan_score_judges_the_quoted_time() {
    let out = latentlab(
        &[
            "plan",
            "score",
            "--answer",
            "So it takes \"85 minutes\".",
            "-",
        ],
        &first_record(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["correct"], true);
    assert_eq!(line["answer_seconds"], serde_json::json!([5100.0, 5100.0]));

    let out = latentlab(
        &["plan", "score", "--answer", "about 85 minutes", "-"],
        &first_record(),
    );
    let line = &json_lines(&out)[0];
    assert_eq!(line["correct"], false);
    assert_eq!(line["reason"], "no_quoted_time");
    let out = latentlab(
        &["plan", "score", "--answer", "\"85 parsecs\"", "-"],
        &first_record(),
    );
    assert_eq!(json_lines(&out)[0]["reason"], "unknown_unit");
    let out = latentlab(
        &["plan", "score", "--answer", "\"2 hours\"", "-"],
        &first_record(),
    );
    assert_eq!(json_lines(&out)[0]["reason"], "out_of_range");
}

#[test]
fn plan_export_both_ways_round() {
    let out = latentlab(&["plan", "export", "--to", "asynchow", "-"], TEA);
    assert!(out.status.success(), "{}", stderr(&out));
    let record = json_lines(&out).remove(0);
    assert_eq!(record["titles"], "How to make tea");
    assert_eq!(record["task_time"], serde_json::json!([480.0, 540.0]));
    let back = latentlab(
        &["plan", "export", "--to", "latentlab", "-"],
        &record.to_string(),
    );
    assert!(back.status.success(), "{}", stderr(&back));
    let plan = json_lines(&back).remove(0);
    assert_eq!(plan["steps"][2]["duration"], "3-4 minutes");
    assert_eq!(
        plan["constraints"],
        serde_json::json!([["1", "3"], ["2", "3"]])
    );
}

#[test]
fn bad_input_is_a_clear_error_with_a_non_zero_exit() {
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["plan", "optimal", "-"],
            "{\"title\": ",
            "invalid JSON: EOF while parsing",
        ),
        (
            &["plan", "optimal", "-"],
            r#"{"steps": [{"id": "a", "duration": "1 min"}, {"id": "b", "duration": "1 min"}],
                "constraints": [["a", "b"], ["b", "a"]]}"#,
            "the constraints form a cycle: a → b → a",
        ),
        (
            &["plan", "optimal", "-"],
            r#"{"steps": [{"id": "a", "duration": "5 fortnights"}]}"#,
            "step \"a\" has a bad duration \"5 fortnights\": unknown unit \"fortnights\"",
        ),
        (
            &["plan", "optimal", "-"],
            r#"{"steps": [{"id": "a", "duration": "1 min"}], "constraints": [["a", "zz"]]}"#,
            "constraint 0 names unknown step \"zz\"",
        ),
        (
            &["plan", "optimal", "/no/such/file.json"],
            "",
            "cannot read /no/such/file.json",
        ),
        (
            &["plan", "prompt", "--encoding", "csr", "--bag", "-"],
            TEA,
            "BaG asks the model to build the graph itself",
        ),
    ];
    for (args, stdin, message) in cases {
        let out = latentlab(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn one_bad_record_does_not_hide_the_others() {
    let input = format!(
        "{}\n{{\"steps\": []}}\n{}\n",
        first_record(),
        first_record()
    );
    let out = latentlab(&["plan", "optimal", "-"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out).len(), 2);
    assert!(stderr(&out).contains("record 2: a plan needs at least one step"));
}

#[test]
fn unknown_encodings_are_refused_by_name() {
    let out = latentlab(&["plan", "prompt", "--encoding", "matrix", "-"], TEA);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'matrix'"),
        "{}",
        stderr(&out)
    );
}
