//! Repoformer's metrics and RepoEval retrieval against the reference code's own outputs
//! (tests/fixtures/repo/cases.json, made by scripts/fixtures/make_repoformer_fixtures.py
//! from amazon-science/Repoformer's `eval_metric.py` and `attach_cfc.py`).

use latentlab::core::repo::metrics::{
    edit_similarity, edit_similarity_repoeval, exact_match, tokenize_code, truncate_to_target_lines,
};
use latentlab::core::repo::{cross_file_context, retrieve, SourceFile};
use serde_json::Value;

fn cases() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/repo/cases.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn metrics_equal_the_references() {
    let cases = cases();
    let metrics = cases["metrics"].as_array().unwrap();
    assert!(metrics.len() >= 50);
    for c in metrics {
        let (pred, target) = (
            c["prediction"].as_str().unwrap(),
            c["target"].as_str().unwrap(),
        );
        let cut = truncate_to_target_lines(pred, target);
        assert_eq!(
            cut,
            c["cut"].as_str().unwrap(),
            "cut of {pred:?} for {target:?}"
        );
        let tokens: Vec<String> = serde_json::from_value(c["tokens"].clone()).unwrap();
        assert_eq!(tokenize_code(pred), tokens, "tokens of {pred:?}");
        assert_eq!(
            exact_match(&cut, target),
            c["exact_match"].as_bool().unwrap(),
            "{pred:?} {target:?}"
        );
        let es = c["edit_similarity"].as_f64().unwrap();
        assert!(
            (edit_similarity(&cut, target) - es).abs() < 1e-12,
            "fuzz.ratio of {cut:?}, {target:?}: {es}"
        );
        let es2 = c["edit_similarity_repoeval"].as_f64().unwrap();
        assert!(
            (edit_similarity_repoeval(&cut, target) - es2).abs() < 1e-12,
            "RepoEval ES of {cut:?}, {target:?}: {es2}"
        );
    }
}

#[test]
fn retrieval_writes_the_references_cross_file_context() {
    let cases = cases();
    let repo = cases["repository"].as_str().unwrap();
    let files: Vec<SourceFile> = cases["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, text)| SourceFile {
            path: path.clone(),
            text: text.as_str().unwrap().to_string(),
        })
        .collect();
    for r in cases["retrieval"].as_array().unwrap() {
        let current = r["current"].as_str().unwrap();
        let chunks = retrieve(&files, current, r["left_context"].as_str().unwrap());
        assert_eq!(
            cross_file_context(repo, &chunks),
            r["crossfile_context"].as_str().unwrap(),
            "context for the cursor in {current}"
        );
    }
}
