//! `latentlab align` from outside: JSON keys, agreement with the reference fixtures
//! (`tests/fixtures/align/`), the backend flag, exit codes and error messages. Bad inputs
//! are written by the tests into a temporary folder.

mod common;
use common::{fails_with, json, latentlab};

use serde_json::Value;

const X: &str = "tests/fixtures/align/shared_x.npy";
const Y: &str = "tests/fixtures/align/shared_y.npy";

struct Dir(common::TempDir);

impl Dir {
    fn new(name: &str) -> Dir {
        Dir(common::TempDir::new("latentlab-cli-align", name))
    }

    fn npy(&self, name: &str, rows: u64, cols: u64, data: &[f32]) -> String {
        self.0.npy(name, rows, cols, data)
    }
}

/// The reference's float32 score of `metric` for the `shared` fixture at k = 10.
fn reference(metric: &str) -> f64 {
    let text = std::fs::read_to_string("tests/fixtures/align/cases.json")
        .or_else(|_| {
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/align/cases.json"
            ))
        })
        .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "shared")
        .unwrap();
    case["results"]["10"]["float32"][metric].as_f64().unwrap()
}

#[test]
fn mutual_knn_by_default_with_chance() {
    let v = json(&latentlab(&["align", "--x", X, "--y", Y]));
    assert_eq!(v["metric"], "mutual_knn");
    assert_eq!(v["k"], 10);
    assert_eq!(v["n"], 256);
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["dims"], serde_json::json!([40, 56]));
    assert_eq!(v["prepare"]["outlier_quantile"], 0.95);
    assert!((v["chance"].as_f64().unwrap() - 10.0 / 255.0).abs() < 1e-15);
    let score = v["score"].as_f64().unwrap();
    assert!((score - reference("mutual_knn")).abs() < 2e-6, "{score}");
}

#[test]
fn every_metric_and_all() {
    let all = json(&latentlab(&[
        "align",
        "--x",
        X,
        "--y",
        Y,
        "--metric",
        "all",
        "--backend",
        "cpu",
    ]));
    assert_eq!(all["metric"], "all");
    let scores = all["scores"].as_object().unwrap();
    assert_eq!(scores.len(), 8);
    for (name, score) in scores {
        let one = json(&latentlab(&["align", "--x", X, "--y", Y, "--metric", name]));
        assert_eq!(one["metric"], name.as_str());
        assert_eq!(&one["score"], score, "{name}");
        let want = reference(name);
        let tol = if name == "svcca" { 1e-2 } else { 1e-5 };
        assert!(
            (score.as_f64().unwrap() - want).abs() < tol,
            "{name}: {score} vs {want}"
        );
        let uses_k = !matches!(name.as_str(), "cka" | "unbiased_cka" | "svcca");
        assert_eq!(one["k"].is_null(), !uses_k, "{name}");
        // the mean under a random pairing, where there is a closed form (core::align::chance)
        let has_chance = matches!(
            name.as_str(),
            "mutual_knn" | "cycle_knn" | "lcs_knn" | "cka" | "unbiased_cka"
        );
        assert_eq!(one["chance"].is_null(), !has_chance, "{name}");
    }
}

#[test]
fn preparation_flags() {
    let off = json(&latentlab(&[
        "align",
        "--x",
        X,
        "--y",
        Y,
        "--metric",
        "cka",
        "--no-prepare",
    ]));
    assert_eq!(off["prepare"], false);
    let on = json(&latentlab(&[
        "align", "--x", X, "--y", Y, "--metric", "cka",
    ]));
    assert_ne!(off["score"], on["score"]);
    let exact = json(&latentlab(&[
        "align",
        "--x",
        X,
        "--y",
        Y,
        "--exact-quantile",
        "--k",
        "5",
    ]));
    assert_eq!(exact["prepare"]["quantile"], "exact");
    assert_eq!(exact["k"], 5);
}

#[test]
fn the_gpu_backend_gives_the_cpu_answer_or_says_why_not() {
    let run = |backend: &str| {
        latentlab(&[
            "align",
            "--x",
            X,
            "--y",
            Y,
            "--metric",
            "all",
            "--backend",
            backend,
        ])
    };
    let cpu = json(&run("cpu"));
    let out = run("gpu");
    if out.status.success() {
        let gpu = json(&out);
        assert_eq!(gpu["backend"], "gpu");
        assert!(gpu["adapter"].is_string(), "{gpu}");
        // the same neighbour tables, so the same scores, to the last bit
        assert_eq!(gpu["scores"], cpu["scores"]);
    } else {
        assert!(
            std::env::var_os("LATENTLAB_REQUIRE_GPU").is_none(),
            "a GPU adapter is required here: {}",
            common::stderr(&out)
        );
        fails_with(&out, &["--backend gpu: no GPU adapter is available"]);
    }
    // auto runs on a hardware GPU, or on the CPU saying why
    let auto = json(&run("auto"));
    assert_eq!(auto["scores"], cpu["scores"]);
    if auto["backend"] == "cpu" {
        assert!(auto["fallback"].is_string(), "{auto}");
    } else {
        assert_eq!(auto["backend"], "gpu");
    }
    assert!(cpu.get("fallback").is_none());
}

#[test]
fn the_gpu_backend_refuses_what_it_cannot_do() {
    let out = latentlab(&[
        "align",
        "--x",
        X,
        "--y",
        Y,
        "--metric",
        "cka",
        "--backend",
        "gpu",
    ]);
    fails_with(&out, &["--backend gpu", "only the neighbourhood metrics"]);
    assert!(out.stdout.is_empty());
    let out = latentlab(&["align", "--x", X, "--y", Y, "--k", "65", "--backend", "gpu"]);
    fails_with(&out, &["--backend gpu", "--k is 65", "k <= 64"]);
    // auto falls back to the CPU for a large k, and says so
    let v = json(&latentlab(&["align", "--x", X, "--y", Y, "--k", "65"]));
    assert_eq!(v["backend"], "cpu");
    assert!(v["fallback"].as_str().unwrap().contains("k <= 64"), "{v}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = Dir::new("bad");
    let ok: Vec<f32> = (0..40).map(|i| ((i * 7 % 13) as f32) - 6.0 + 0.5).collect();
    let x = dir.npy("x.npy", 10, 4, &ok);
    let y9 = dir.npy("y9.npy", 9, 4, &ok[..36]);
    fails_with(
        &latentlab(&["align", "--x", &x, "--y", &y9]),
        &["`x` has 10 rows and `y` has 9"],
    );
    fails_with(
        &latentlab(&["align", "--x", &x, "--y", &x]),
        &["`k` is 10", "1 <= k < n"],
    );
    fails_with(
        &latentlab(&["align", "--x", &x, "--y", &x, "--k", "0"]),
        &["`k` is 0"],
    );
    fails_with(
        &latentlab(&[
            "align", "--x", &x, "--y", &x, "--k", "1", "--metric", "cknna",
        ]),
        &["`k` is 1", "cknna"],
    );
    let mut nan = ok.clone();
    nan[6] = f32::NAN;
    let nan = dir.npy("nan.npy", 10, 4, &nan);
    fails_with(
        &latentlab(&["align", "--x", &x, "--y", &nan, "--k", "3"]),
        &["`y` row 1, column 2 is NaN", "finite"],
    );
    let mut zero = ok.clone();
    zero[8..12].iter_mut().for_each(|v| *v = 0.0);
    let zero = dir.npy("zero.npy", 10, 4, &zero);
    fails_with(
        &latentlab(&["align", "--x", &zero, "--y", &x, "--k", "3"]),
        &["`x` row 2 is all zeros"],
    );
    let empty = dir.npy("empty.npy", 0, 4, &[]);
    fails_with(
        &latentlab(&["align", "--x", &empty, "--y", &empty]),
        &["`x` is empty"],
    );
    fails_with(
        &latentlab(&["align", "--x", &x, "--y", &x, "--metric", "svcca"]),
        &["svcca", "at least 11 rows"],
    );
    fails_with(
        &latentlab(&["align", "--x", "nope.npy", "--y", &x]),
        &["--x", "nope.npy"],
    );
    // clap refuses unknown metrics with exit code 2
    let out = latentlab(&["align", "--x", &x, "--y", &x, "--metric", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A `.npy` file whose header declares `shape` over `data_bytes` bytes of data (v1 header).
fn npy_with_declared_shape(dir: &Dir, name: &str, shape: &str, data_bytes: usize) -> String {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; data_bytes]);
    let path = dir.0.path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Sizes from a file header are checked before anything is allocated (issue 19): a shape
/// whose product overflows, or one far larger than the file, is a named error, never a panic
/// (debug) or a wrapped size (release). The same reader serves ot, steer and align.
#[test]
fn npy_headers_that_cannot_fit_the_file_are_refused() {
    let dir = Dir::new("shape");
    let overflow = npy_with_declared_shape(
        &dir,
        "overflow.npy",
        "(1099511627776, 1073741824, 65536)",
        16,
    );
    let huge = npy_with_declared_shape(&dir, "huge.npy", "(1000000, 1000)", 64);
    fails_with(
        &latentlab(&["align", "--x", &overflow, "--y", Y]),
        &["--x", "overflow.npy", "overflows"],
    );
    fails_with(
        &latentlab(&["align", "--x", X, "--y", &huge]),
        &["--y", "huge.npy", "1000000000 elements", "only 64 bytes"],
    );
}
