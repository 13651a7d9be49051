//! `latentlab elicit pairs|score` from outside: the JSON keys per manipulation (a
//! contract), seeds, and clean failures on bad input. Scoring runs a tiny random GGUF the
//! test writes (labelled random in its metadata): its numbers are noise, only their shape
//! and the errors are checked here. `elicit pairs` reads the installed dict-wn and
//! dict-gcide (scripts/lib.sh installs them for the test command).

mod common;
use common::{fails_with, json, latentlab, TempDir};
use latentlab::lm::testing::{random_tiny_llama, TinyShape};

const PAIRS: &str = "tests/fixtures/elicit/pairs.jsonl";
const MANIPULATIONS: [&str; 5] = ["shuffled", "truncated", "generic", "other_word", "copied"];

fn tiny_model(dir: &TempDir) -> String {
    let path = dir.path("tiny-random.gguf");
    std::fs::write(&path, random_tiny_llama(5, &TinyShape::default())).unwrap();
    path
}

fn score(model: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["elicit", "score", "--pairs", PAIRS, "--model", model];
    args.extend_from_slice(extra);
    latentlab(&args)
}

#[test]
fn score_prints_auc_cohens_d_ci95_and_n_per_manipulation() {
    let dir = TempDir::new("latentlab-cli-elicit", "keys");
    let model = tiny_model(&dir);
    for mechanism in ["pmi", "gppm", "tvd-mi"] {
        let v = json(&score(
            &model,
            &["--mechanism", mechanism, "--bootstrap", "50"],
        ));
        assert_eq!(v["mechanism"], mechanism, "{v}");
        assert_eq!(v["n"], 6);
        assert!(v["model"].as_str().unwrap().contains("random"));
        assert!(v["honest_mean_score"].as_f64().unwrap().is_finite(), "{v}");
        let m = v["manipulations"].as_object().unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), MANIPULATIONS, "{v}");
        for (name, entry) in m {
            assert_eq!(entry["n"], 6, "{name}: {entry}");
            let auc = entry["auc"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&auc), "{name}: {entry}");
            let [lo, hi] = [0, 1].map(|i| entry["ci95"]["auc"][i].as_f64().unwrap());
            assert!(0.0 <= lo && lo <= hi && hi <= 1.0, "{name}: {entry}");
            // Cohen's d is null only when both sides are constant (TVD-MI's 0/±1 scores).
            let d = &entry["cohens_d"];
            assert!(
                d.is_null() || d.as_f64().unwrap().is_finite(),
                "{name}: {entry}"
            );
            assert!(entry["ci95"]["cohens_d"].is_array() || entry["ci95"]["cohens_d"].is_null());
        }
    }
}

#[test]
fn a_seeded_sample_repeats_and_n_picks_that_many() {
    let dir = TempDir::new("latentlab-cli-elicit", "seed");
    let model = tiny_model(&dir);
    let run = |seed: &str| {
        let mut v = json(&score(
            &model,
            &[
                "--n",
                "4",
                "--seed",
                seed,
                "--bootstrap",
                "50",
                "--per-item",
            ],
        ));
        v.as_object_mut().unwrap().remove("seconds");
        v
    };
    let a = run("3");
    assert_eq!(a["n"], 4);
    assert_eq!(a["pairs"], 6);
    assert_eq!(a["words"].as_array().unwrap().len(), 4);
    assert_eq!(a["honest_scores"].as_array().unwrap().len(), 4);
    assert_eq!(a, run("3"));
}

#[test]
fn bad_input_fails_by_name() {
    let dir = TempDir::new("latentlab-cli-elicit", "bad");
    let model = tiny_model(&dir);
    fails_with(
        &score(&model, &["--mechanism", "kl"]),
        &["unknown mechanism \"kl\""],
    );
    let cat = "{\"word\": \"cat\", \"report\": \"a pet\", \"peer\": \"a feline\"}\n";
    let cases: [(&str, String, &[&str]); 3] = [
        (
            "missing.jsonl",
            format!("{cat}{{\"word\": \"dog\", \"report\": \"a pet\"}}\n"),
            &["missing.jsonl", "line 2", "missing field `peer`"],
        ),
        (
            "empty.jsonl",
            "{\"word\": \"cat\", \"report\": \"\", \"peer\": \"a feline\"}\n".into(),
            &["line 1", "\"cat\"", "\"report\" is empty"],
        ),
        ("one.jsonl", cat.into(), &["the pairs are 1", "at least 2"]),
    ];
    for (name, text, needles) in cases {
        let path = dir.path(name);
        std::fs::write(&path, text).unwrap();
        let out = latentlab(&["elicit", "score", "--pairs", &path, "--model", &model]);
        fails_with(&out, needles);
    }
    fails_with(
        &latentlab(&[
            "elicit",
            "score",
            "--pairs",
            &dir.path("nope.jsonl"),
            "--model",
            &model,
        ]),
        &["cannot read", "nope.jsonl"],
    );
    fails_with(
        &latentlab(&[
            "elicit",
            "pairs",
            "--out",
            &dir.path("p.jsonl"),
            "--dict-dir",
            &dir.path("no-dictionaries"),
        ]),
        &["wn.index is missing", "dict-wn"],
    );
}

#[test]
fn pairs_from_the_installed_dictionaries() {
    assert!(
        std::path::Path::new("/usr/share/dictd/gcide.index").exists()
            && std::path::Path::new("/usr/share/dictd/wn.index").exists(),
        "install Debian's dict-wn and dict-gcide (scripts/lib.sh does, for the test command)"
    );
    let dir = TempDir::new("latentlab-cli-elicit", "pairs");
    let out = dir.path("pairs.jsonl");
    let run = latentlab(&["elicit", "pairs", "--out", &out]);
    assert!(run.status.success(), "{}", common::stderr(&run));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 1000, "{} pairs", lines.len());
    let words: Vec<&str> = lines.iter().map(|l| l["word"].as_str().unwrap()).collect();
    assert!(
        words.windows(2).all(|w| w[0] < w[1]),
        "sorted, one line per word"
    );
    for l in &lines {
        for field in ["report", "peer"] {
            let s = l[field].as_str().unwrap();
            assert!(
                !s.is_empty() && !s.contains(['{', '}', '[', ']', '\\', '"']),
                "{l}"
            );
        }
    }
    let dog = lines
        .iter()
        .find(|l| l["word"] == "dog")
        .expect("dog is defined by both");
    assert!(dog["report"].as_str().unwrap().contains("Canis"), "{dog}");
    assert!(dog["peer"].as_str().unwrap().contains("Canis"), "{dog}");
    // Deterministic: a second run writes the same bytes.
    let again = dir.path("again.jsonl");
    assert!(latentlab(&["elicit", "pairs", "--out", &again])
        .status
        .success());
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());
}
