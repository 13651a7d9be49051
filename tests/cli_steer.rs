//! `latentlab steer fit|apply|eval` from outside: JSON keys, agreement with POT's
//! LinearTransport (the fixture of tests/steer_conformance.rs), round trips through files,
//! the synthetic biographies embedded by the bundled text encoder, and clear errors.

mod common;
use common::{fails_with, json, latentlab, read_npy, TempDir};
use serde_json::Value;

fn fixture_case(name: &str) -> Value {
    let text = std::fs::read_to_string("tests/fixtures/steer/steer.json").unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    cases.iter().find(|c| c["name"] == name).unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Writes a fixture case's x and z; returns (dir, x path, z path, n, d).
fn write_case(name: &str, case: &Value) -> (TempDir, String, String, usize, usize) {
    let dir = TempDir::new("latentlab-cli-steer", name);
    let n = case["n"].as_u64().unwrap();
    let d = case["d"].as_u64().unwrap();
    let x: Vec<f32> = floats(&case["x"]).iter().map(|&v| v as f32).collect();
    let z: Vec<i64> = floats(&case["z"]).iter().map(|&v| v as i64).collect();
    let xp = dir.npy("x.npy", n, d, &x);
    let zp = dir.labels("z.npy", &z);
    (dir, xp, zp, n as usize, d as usize)
}

#[test]
fn fit_writes_pots_map_and_apply_moves_the_source_group_onto_the_target() {
    let case = fixture_case("d16_unbalanced_correlated");
    let (dir, x, z, n, d) = write_case("fit", &case);
    let (out, w, b) = (dir.path("steer.json"), dir.path("W.npy"), dir.path("b.npy"));
    let fitted = json(&latentlab(&[
        "steer", "fit", "--x", &x, "--z", &z, "--method", "mean-cov", "--reg", "1e-8", "--out",
        &out, "--w-out", &w, "--b-out", &b,
    ]));
    assert_eq!(fitted["method"], "mean-cov");
    assert_eq!(fitted["dim"], d);
    assert_eq!(fitted["n_source"], 150);
    assert_eq!(fitted["n_target"], 350);
    assert_eq!(fitted["reg"], 1e-8);

    // The serialised W, b and the exported .npy pair all equal POT's.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(saved["format"], "latentlab-steering");
    let w_json: Vec<f64> = saved["W"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(floats)
        .collect();
    let pot_w = floats(&case["mean_cov"]["W"]);
    let pot_b = floats(&case["mean_cov"]["b"]);
    let (w_shape, w_npy) = read_npy(&w);
    let (b_shape, b_npy) = read_npy(&b);
    assert_eq!(w_shape, vec![d as u64, d as u64]);
    assert_eq!(b_shape, vec![1, d as u64]);
    for i in 0..d * d {
        assert!((w_json[i] - pot_w[i]).abs() < 1e-6, "W[{i}]");
        assert!((w_npy[i] as f64 - pot_w[i]).abs() < 1e-5, "W.npy[{i}]");
    }
    for j in 0..d {
        assert!((b_npy[j] as f64 - pot_b[j]).abs() < 1e-5, "b.npy[{j}]");
    }

    let steered = dir.path("y.npy");
    let applied = json(&latentlab(&[
        "steer",
        "apply",
        "--steer",
        &out,
        "--x",
        &x,
        "--out",
        &steered,
        "--apply-to",
        "source",
        "--z",
        &z,
    ]));
    assert_eq!(applied["n"], n);
    assert_eq!(applied["n_steered"], 150);
    let (shape, y) = read_npy(&steered);
    assert_eq!(shape, vec![n as u64, d as u64]);
    // The steered source group's mean is the target group's.
    let zs = floats(&case["z"]);
    let mean = |data: &[f32], label: f64| -> Vec<f64> {
        let rows: Vec<usize> = (0..n).filter(|&i| zs[i] == label).collect();
        (0..d)
            .map(|j| rows.iter().map(|&i| data[i * d + j] as f64).sum::<f64>() / rows.len() as f64)
            .collect()
    };
    let (after, target) = (mean(&y, 1.0), floats(&case["target_mean"]));
    for j in 0..d {
        assert!(
            (after[j] - target[j]).abs() < 1e-4,
            "mean[{j}]: {} vs {}",
            after[j],
            target[j]
        );
    }
}

#[test]
fn eval_reports_probe_accuracies_and_the_tpr_gap() {
    // Two concept groups told apart by a mean shift along one axis, a task along another;
    // the task class is correlated with the concept.
    let dir = TempDir::new("latentlab-cli-steer", "eval");
    let (n, d) = (240usize, 6usize);
    let mut x = Vec::new();
    let (mut z, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let zi = (i % 2) as i64;
        let yi = if i % 5 == 0 { 1 - zi } else { zi } + 2 * ((i / 7) % 2) as i64;
        let jitter = |k: usize| (((i * 31 + k * 17) % 23) as f32 - 11.0) / 11.0;
        x.extend([
            zi as f32 * 2.0 + jitter(0),
            yi as f32 + 0.3 * jitter(1),
            jitter(2),
            jitter(3),
            jitter(4),
            jitter(5),
        ]);
        z.push(zi);
        y.push(yi);
    }
    let xp = dir.npy("x.npy", n as u64, d as u64, &x);
    let zp = dir.labels("z.npy", &z);
    let yp = dir.labels("y.npy", &y);
    for method in ["mean", "mean-cov"] {
        let e = json(&latentlab(&[
            "steer", "eval", "--x", &xp, "--z", &zp, "--y", &yp, "--method", method,
        ]));
        for key in [
            "concept_accuracy_before",
            "concept_accuracy_after",
            "concept_chance",
            "task_accuracy_before",
            "task_accuracy_after",
            "task_chance",
            "tpr_gap_rms_before",
            "tpr_gap_rms_after",
        ] {
            assert!(e[key].is_number(), "{method}: {key} missing in {e}");
        }
        assert_eq!(e["method"], method);
        assert_eq!(e["apply_to"], "split");
        assert_eq!(e["fitted_on"], "train split");
        assert_eq!(e["n_test"], 72);
        let before = e["concept_accuracy_before"].as_f64().unwrap();
        let after = e["concept_accuracy_after"].as_f64().unwrap();
        assert!(
            before > 0.9,
            "{method}: the concept is readable before: {e}"
        );
        assert!(after < 0.7, "{method}: the concept is erased: {e}");
        assert!(
            e["task_accuracy_after"].as_f64().unwrap() > 0.8,
            "{method}: task kept: {e}"
        );
        assert!(e["tpr_gap_after"]["classes"].as_array().unwrap().len() >= 2);
    }

    // Without --y: no task figures.
    let e = json(&latentlab(&[
        "steer", "eval", "--x", &xp, "--z", &zp, "--method", "mean",
    ]));
    assert!(e["task_accuracy_before"].is_null());
    assert!(e["tpr_gap_rms_after"].is_null());
}

#[test]
fn the_synthetic_biographies_lose_gender_and_keep_profession() {
    // The steering page's data, embedded by the bundled text encoder (built by the test
    // command): erasing gender shrinks the profession probe's TPR-gap.
    let text = std::fs::read_to_string("www/public/bios.json").unwrap();
    let bios: Value = serde_json::from_str(&text).unwrap();
    let items = bios["items"].as_array().unwrap();
    let dir = TempDir::new("latentlab-cli-steer", "bios");
    let x = dir.path("x.npy");
    let mut args = vec!["embed", "text", "--out", &x];
    args.extend(items.iter().map(|i| i["text"].as_str().unwrap()));
    json(&latentlab(&args));
    let z: Vec<i64> = items.iter().map(|i| i["z"].as_i64().unwrap()).collect();
    let y: Vec<i64> = items.iter().map(|i| i["y"].as_i64().unwrap()).collect();
    let (zp, yp) = (dir.labels("z.npy", &z), dir.labels("y.npy", &y));
    let e = json(&latentlab(&[
        "steer",
        "eval",
        "--x",
        &x,
        "--z",
        &zp,
        "--y",
        &yp,
        "--method",
        "mean-cov",
        "--relative-reg",
        "0.01",
    ]));
    let num = |k: &str| e[k].as_f64().unwrap();
    assert!(num("concept_accuracy_before") > 0.95, "{e}");
    assert!(
        num("concept_accuracy_after") < num("concept_chance") + 0.1,
        "{e}"
    );
    assert!(
        num("tpr_gap_rms_after") < num("tpr_gap_rms_before") - 0.05,
        "{e}"
    );
    assert!(num("task_accuracy_after") > 2.0 * num("task_chance"), "{e}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = TempDir::new("latentlab-cli-steer", "bad");
    let x = dir.npy("x.npy", 4, 2, &[0.0, 1.0, 1.0, 0.0, 2.0, 1.0, 1.0, 3.0]);
    let z = dir.labels("z.npy", &[0, 1, 0, 1]);
    let fit = |x: &str, z: &str, more: &[&str]| {
        let mut args = vec!["steer", "fit", "--x", x, "--z", z];
        args.extend(more);
        latentlab(&args)
    };
    let z2 = dir.labels("z2.npy", &[0, 1, 2, 1]);
    fails_with(
        &fit(&x, &z2, &["--method", "mean"]),
        &["`z` row 2 is 2", "0 or 1"],
    );
    let short = dir.labels("short.npy", &[0, 1]);
    fails_with(
        &fit(&x, &short, &["--method", "mean"]),
        &["`z` has 2 entries", "4 rows"],
    );
    let one = dir.labels("one.npy", &[1, 1, 1, 1]);
    fails_with(
        &fit(&x, &one, &["--method", "mean"]),
        &["target group (z = 0) has 0 rows"],
    );
    // Two rows per group in 2-D: singular covariances.
    fails_with(
        &fit(&x, &z, &["--method", "mean-cov"]),
        &[
            "source group (z = 1) has 2 rows for 2 dimensions",
            "singular",
            "relative_reg",
        ],
    );
    json(&fit(
        &x,
        &z,
        &["--method", "mean-cov", "--relative-reg", "0.1"],
    ));
    fails_with(
        &fit(&x, &z, &["--method", "mean-cov", "--reg=-1"]),
        &["`reg` is -1"],
    );
    let nan = dir.npy(
        "nan.npy",
        4,
        2,
        &[0.0, 1.0, f32::NAN, 0.0, 2.0, 1.0, 1.0, 3.0],
    );
    fails_with(
        &fit(&nan, &z, &["--method", "mean"]),
        &["`x` row 1, column 0 is NaN"],
    );

    // A steering function applied to the wrong width, or a broken file.
    let steer = dir.path("s.json");
    json(&fit(&x, &z, &["--method", "mean", "--out", &steer]));
    let wide = dir.npy("wide.npy", 2, 3, &[0.0; 6]);
    let out = dir.path("y.npy");
    fails_with(
        &latentlab(&[
            "steer", "apply", "--steer", &steer, "--x", &wide, "--out", &out,
        ]),
        &["`x` has 3 columns", "fitted on 2"],
    );
    std::fs::write(
        dir.path("broken.json"),
        "{\"format\": \"latentlab-steering\"}",
    )
    .unwrap();
    fails_with(
        &latentlab(&[
            "steer",
            "apply",
            "--steer",
            &dir.path("broken.json"),
            "--x",
            &x,
            "--out",
            &out,
        ]),
        &["--steer", "missing field"],
    );
    fails_with(
        &latentlab(&[
            "steer",
            "apply",
            "--steer",
            &steer,
            "--x",
            &x,
            "--out",
            &out,
            "--apply-to",
            "source",
        ]),
        &["concept labels `z`"],
    );
}
