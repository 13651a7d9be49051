//! `latentlab ot sinkhorn` and `ot multi` from outside: JSON keys, .npy inputs and plan
//! output, agreement with the POT/OTT-JAX fixtures (`tests/fixtures/ot/`), exit codes and
//! error messages. Inputs are written by the tests into a temporary folder.

use std::path::PathBuf;
use std::process::Output;

mod common;
use common::{json, latentlab};

use serde_json::Value;

/// Tight solver settings, as tests/ot_conformance.rs uses against the float64 references.
const TIGHT: &[&str] = &["--threshold", "1e-5", "--max-iterations", "100000"];
/// Relative tolerance on costs.
const TOL: f64 = 1e-4;

/// Asserts a clean failure (exit code 1, no panic) whose stderr contains every `needle`.
fn fails_with(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    err
}

/// A fresh temporary folder per test.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("latentlab-cli-ot-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Writes a float32 array of the given shape and returns its path as a string.
    fn npy(&self, name: &str, shape: &[u64], data: &[f32]) -> String {
        let path = self.0.join(name);
        common::write_npy(&path, shape, data);
        path.to_str().unwrap().to_string()
    }

    /// Writes a 1-D float64 array (weights as NumPy makes them by default).
    fn npy_f64(&self, name: &str, data: &[f64]) -> String {
        let path = self.0.join(name);
        common::write_npy(&path, &[data.len() as u64], data);
        path.to_str().unwrap().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn fixture_case(file: &str, name: &str) -> Value {
    let path = format!("{}/tests/fixtures/ot/{file}", env!("CARGO_MANIFEST_DIR"));
    let all: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{path} has no case {name}"))
        .clone()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (num(got), num(want));
    let rel = (g - w).abs() / w.abs().max(1e-12);
    assert!(
        rel < TOL,
        "{what}: got {g}, want {w} (relative error {rel:e})"
    );
}

/// Writes a fixture's point clouds as `x.npy` and `y.npy`.
fn write_clouds(dir: &Dir, case: &Value) -> (String, String) {
    let g = &case["geometry"];
    let (n, m, dim) = (
        g["n"].as_u64().unwrap(),
        g["m"].as_u64().unwrap(),
        g["dim"].as_u64().unwrap(),
    );
    (
        dir.npy("x.npy", &[n, dim], &f32s(&g["x"])),
        dir.npy("y.npy", &[m, dim], &f32s(&g["y"])),
    )
}

fn small_clouds(dir: &Dir) -> (String, String) {
    let x = dir.npy("x.npy", &[4, 2], &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let y = dir.npy("y.npy", &[3, 2], &[0.5, 0.5, 2.0, 0.0, 0.0, 2.0]);
    (x, y)
}

#[test]
fn sinkhorn_prints_the_contract_keys() {
    let dir = Dir::new("keys");
    let (x, y) = small_clouds(&dir);
    for backend in ["cpu", "auto"] {
        let v = json(&latentlab(&[
            "ot",
            "sinkhorn",
            "--x",
            &x,
            "--y",
            &y,
            "--epsilon",
            "0.1",
            "--backend",
            backend,
        ]));
        for key in [
            "reg_ot_cost",
            "ent_reg_cost",
            "transport_cost",
            "epsilon",
            "n_iters",
            "converged",
            "errors",
            "backend",
            "n",
            "m",
        ] {
            assert!(v.get(key).is_some(), "no {key} in {v}");
        }
        if backend == "cpu" {
            assert_eq!(v["backend"], "cpu");
            assert!(v.get("fallback").is_none());
        } else if v["backend"] == "cpu" {
            // auto chose the CPU and says why (no adapter, or only a software one).
            assert!(v["fallback"].is_string(), "{v}");
        } else {
            assert_eq!(v["backend"], "gpu");
            assert!(v["adapter"].is_string(), "{v}");
        }
        assert_eq!(v["n"], 4);
        assert_eq!(v["m"], 3);
        assert_eq!(v["epsilon"].as_f64().unwrap() as f32, 0.1);
        assert_eq!(v["converged"], true);
        assert!(v["n_iters"].as_u64().unwrap() > 0);
        assert!(!v["errors"].as_array().unwrap().is_empty());
        assert!(v.get("plan_out").is_none());
    }
    // Without --backend: auto.
    let v = json(&latentlab(&[
        "ot",
        "sinkhorn",
        "--x",
        &x,
        "--y",
        &y,
        "--epsilon",
        "0.1",
    ]));
    assert!(v["backend"] == "cpu" || v["backend"] == "gpu", "{v}");
}

#[test]
fn sinkhorn_cost_matrix_matches_pot_and_writes_the_plan() {
    let dir = Dir::new("pot");
    let case = fixture_case("sinkhorn.json", "pot_sinkhorn_log_cost_matrix");
    let g = &case["geometry"];
    let (n, m) = (g["n"].as_u64().unwrap(), g["m"].as_u64().unwrap());
    let cost = dir.npy("c.npy", &[n, m], &f32s(&g["cost"]));
    let a = dir.npy_f64("a.npy", &f64s(&case["a"]));
    let b = dir.npy_f64("b.npy", &f64s(&case["b"]));
    let plan = dir.path("plan.npy");
    let mut args = vec![
        "ot",
        "sinkhorn",
        "--cost",
        &cost,
        "--a",
        &a,
        "--b",
        &b,
        "--epsilon",
        "0.1",
        "--plan-out",
        plan.to_str().unwrap(),
    ];
    args.extend_from_slice(TIGHT);
    let v = json(&latentlab(&args));
    assert_eq!(v["converged"], true);
    assert_eq!((v["n"].as_u64(), v["m"].as_u64()), (Some(n), Some(m)));
    assert_eq!(v["cost_fn"], Value::Null);
    assert_eq!(v["plan_out"], plan.to_str().unwrap());
    close(
        &v["transport_cost"],
        &case["expected"]["transport_cost"],
        "transport_cost",
    );

    let bytes = std::fs::read(&plan).unwrap();
    let array = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(array.shape(), &[n, m]);
    let got: Vec<f32> = array.into_vec().unwrap();
    let want = f64s(&case["expected"]["plan"]);
    let scale = want.iter().fold(0.0f64, |s, w| s.max(w.abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0.0f64, |e, (g, w)| e.max((*g as f64 - w).abs()));
    assert!(err / scale < TOL, "plan: relative error {:e}", err / scale);
}

#[test]
fn sinkhorn_unbalanced_point_clouds_match_ott() {
    let dir = Dir::new("unbalanced");
    let case = fixture_case("sinkhorn.json", "ott_unbalanced");
    let (x, y) = write_clouds(&dir, &case);
    let a = dir.npy_f64("a.npy", &f64s(&case["a"]));
    // b as a 2-D single-column float32 array: also read as a vector.
    let bw = f32s(&case["b"]);
    let b = dir.npy("b.npy", &[bw.len() as u64, 1], &bw);
    let mut args = vec![
        "ot",
        "sinkhorn",
        "--x",
        &x,
        "--y",
        &y,
        "--a",
        &a,
        "--b",
        &b,
        "--epsilon",
        "0.5",
        "--tau-a",
        "0.8",
        "--tau-b",
        "0.9",
    ];
    args.extend_from_slice(TIGHT);
    let v = json(&latentlab(&args));
    let want = &case["expected"];
    assert_eq!(v["converged"], true);
    assert_eq!(v["cost_fn"], "sqeuclidean");
    close(&v["tau_a"], &Value::from(0.8), "tau_a");
    close(&v["reg_ot_cost"], &want["reg_ot_cost"], "reg_ot_cost");
    close(&v["ent_reg_cost"], &want["ent_reg_cost"], "ent_reg_cost");
    close(
        &v["transport_cost"],
        &want["transport_cost"],
        "transport_cost",
    );
}

#[test]
fn sinkhorn_cosine_with_relative_epsilon_matches_ott() {
    let dir = Dir::new("relative");
    let case = fixture_case("sinkhorn.json", "ott_cosine_relative_mean");
    let (x, y) = write_clouds(&dir, &case);
    let mut args = vec![
        "ot",
        "sinkhorn",
        "--x",
        &x,
        "--y",
        &y,
        "--cost-fn",
        "cosine",
        "--relative-epsilon",
        "0.1",
    ];
    args.extend_from_slice(TIGHT);
    let v = json(&latentlab(&args));
    let want = &case["expected"];
    assert_eq!(v["cost_fn"], "cosine");
    close(&v["epsilon"], &want["epsilon"], "epsilon");
    close(&v["reg_ot_cost"], &want["reg_ot_cost"], "reg_ot_cost");
    close(&v["ent_reg_cost"], &want["ent_reg_cost"], "ent_reg_cost");
}

#[test]
fn sinkhorn_point_cloud_plan_has_shape_n_by_m() {
    let dir = Dir::new("plan");
    let case = fixture_case("sinkhorn.json", "pot_sinkhorn_log_point_clouds");
    let (x, y) = write_clouds(&dir, &case);
    let plan = dir.path("p.npy");
    let mut args = vec![
        "ot",
        "sinkhorn",
        "--x",
        &x,
        "--y",
        &y,
        "--epsilon",
        "0.5",
        "--plan-out",
        plan.to_str().unwrap(),
    ];
    args.extend_from_slice(TIGHT);
    let v = json(&latentlab(&args));
    close(
        &v["transport_cost"],
        &case["expected"]["transport_cost"],
        "transport_cost",
    );
    let bytes = std::fs::read(&plan).unwrap();
    let array = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(array.shape(), &[12, 9]);
    let p: Vec<f32> = array.into_vec().unwrap();
    let total: f32 = p.iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "plan mass {total}");
}

#[test]
fn multi_with_three_equal_views_reports_m3g_like_ott() {
    let dir = Dir::new("m3g");
    let case = fixture_case("m3g.json", "m3g_k3_sq_euclidean");
    let (n, dim) = (case["n"].as_u64().unwrap(), case["dim"].as_u64().unwrap());
    let files: Vec<String> = case["x_s"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(l, x)| dir.npy(&format!("x{l}.npy"), &[n, dim], &f32s(x)))
        .collect();
    let mut args = vec!["ot", "multi", "--x"];
    args.extend(files.iter().map(String::as_str));
    args.extend_from_slice(&["--epsilon", "0.5", "--backend", "cpu"]);
    args.extend_from_slice(TIGHT);
    let v = json(&latentlab(&args));
    for key in ["ent_reg_cost", "m3g", "n_iters", "converged", "backend"] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    assert!(v.get("m3g_note").is_none(), "{v}");
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["converged"], true);
    assert_eq!(v["k"], 3);
    assert_eq!(v["sizes"], serde_json::json!([6, 6, 6]));
    let want = &case["expected"];
    close(&v["m3g"], &want["m3g"], "m3g");
    close(&v["ent_reg_cost"], &want["ent_reg_cost"], "ent_reg_cost");
    close(
        &v["ground_truth_cost"],
        &want["ground_truth_cost"],
        "ground_truth_cost",
    );
}

#[test]
fn multi_with_unequal_sizes_and_weights_runs_without_m3g() {
    let dir = Dir::new("mm");
    let case = fixture_case("mmsinkhorn.json", "mm_k3_cosine");
    let dim = case["dim"].as_u64().unwrap();
    let sizes: Vec<u64> = case["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    let files: Vec<String> = case["x_s"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(l, (x, &n))| dir.npy(&format!("x{l}.npy"), &[n, dim], &f32s(x)))
        .collect();
    // This case has weights: one probability vector per cloud.
    let weights: Vec<String> = case["a_s"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(l, a)| dir.npy_f64(&format!("a{l}.npy"), &f64s(a)))
        .collect();
    let mut args = vec!["ot", "multi", "--x"];
    args.extend(files.iter().map(String::as_str));
    args.push("--a");
    args.extend(weights.iter().map(String::as_str));
    args.extend_from_slice(&["--epsilon", "0.05", "--cost-fn", "cosine"]);
    args.extend_from_slice(TIGHT);
    let v = json(&latentlab(&args));
    assert_eq!(v["m3g"], Value::Null);
    let note = v["m3g_note"].as_str().expect("m3g_note says why");
    assert!(note.contains("same number of points"), "{note}");
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["converged"], true);
    close(
        &v["ent_reg_cost"],
        &case["expected"]["ent_reg_cost"],
        "ent_reg_cost",
    );
}

#[test]
fn the_gpu_backend_gives_the_cpu_answer_or_says_why_not() {
    let dir = Dir::new("gpu");
    let (x, y) = small_clouds(&dir);
    let run = |backend: &str| {
        latentlab(&[
            "ot",
            "sinkhorn",
            "--x",
            &x,
            "--y",
            &y,
            "--epsilon",
            "0.1",
            "--backend",
            backend,
        ])
    };
    let out = run("gpu");
    if out.status.success() {
        let (gpu, cpu) = (json(&out), json(&run("cpu")));
        assert_eq!(gpu["backend"], "gpu");
        assert!(gpu["adapter"].is_string(), "{gpu}");
        let (g, c) = (
            gpu["reg_ot_cost"].as_f64().unwrap(),
            cpu["reg_ot_cost"].as_f64().unwrap(),
        );
        assert!((g - c).abs() <= 1e-4 * c.abs(), "gpu {g} vs cpu {c}");
        assert_eq!(gpu["n_iters"], cpu["n_iters"]);
    } else {
        assert!(
            std::env::var_os("LATENTLAB_REQUIRE_GPU").is_none(),
            "a GPU adapter is required here: {}",
            common::stderr(&out)
        );
        fails_with(&out, &["--backend gpu: no GPU adapter is available"]);
    }
    // multi-marginal: three clouds (M3G needs equal sizes, so x, x, y runs the bare solve)
    let multi = |backend: &str, clouds: &[&str]| {
        let mut args = vec!["ot", "multi", "--x"];
        args.extend_from_slice(clouds);
        args.extend_from_slice(&["--epsilon", "0.1", "--backend", backend]);
        latentlab(&args)
    };
    for clouds in [[&x, &x, &x], [&x, &x, &y]] {
        let clouds = clouds.map(String::as_str);
        let out = multi("gpu", &clouds);
        if !out.status.success() {
            fails_with(&out, &["--backend gpu: no GPU adapter is available"]);
            continue;
        }
        let (gpu, cpu) = (json(&out), json(&multi("cpu", &clouds)));
        assert_eq!(gpu["backend"], "gpu");
        assert!(gpu["adapter"].is_string(), "{gpu}");
        for key in ["ent_reg_cost", "m3g"] {
            match (gpu[key].as_f64(), cpu[key].as_f64()) {
                (Some(g), Some(c)) => assert!((g - c).abs() <= 1e-4 * c.abs(), "{key}: {g} vs {c}"),
                (g, c) => assert_eq!(g, c, "{key}"),
            }
        }
        assert_eq!(gpu["n_iters"], cpu["n_iters"]);
    }
    // five clouds: more than the GPU kernels take
    let five = [x.as_str(); 5];
    let out = multi("gpu", &five);
    if out.status.success() {
        panic!(
            "five clouds on the GPU: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let err = common::stderr(&out);
    assert!(
        err.contains("at most 4 point clouds; got 5") || err.contains("no GPU adapter"),
        "{err}"
    );
    let v = json(&multi("auto", &five));
    assert_eq!(v["backend"], "cpu");
    assert!(v["fallback"].is_string(), "{v}");
}

#[test]
fn bad_inputs_fail_with_messages_that_name_them() {
    let dir = Dir::new("bad");
    let (x, y) = small_clouds(&dir);
    let eps = ["--epsilon", "0.1"];
    let run = |extra: &[&str]| {
        let mut args = vec!["ot", "sinkhorn"];
        args.extend_from_slice(extra);
        latentlab(&args)
    };

    // Dimensions that disagree.
    let y3 = dir.npy("y3.npy", &[2, 3], &[0.0; 6]);
    let out = run(&["--x", &x, "--y", &y3, eps[0], eps[1]]);
    assert_eq!(out.status.code(), Some(1));
    fails_with(&out, &["--y", "y3.npy", "dimension 3", "dimension 2"]);

    // Weights whose length is not the number of points.
    let a3 = dir.npy("a3.npy", &[3], &[0.2, 0.3, 0.5]);
    fails_with(
        &run(&["--x", &x, "--y", &y, "--a", &a3, eps[0], eps[1]]),
        &["--a", "a3.npy", "4 weights"],
    );

    // NaN in the points.
    let xnan = dir.npy("xnan.npy", &[2, 2], &[0.0, 1.0, f32::NAN, 0.0]);
    fails_with(
        &run(&["--x", &xnan, "--y", &y, eps[0], eps[1]]),
        &["--x", "xnan.npy", "point 1, coordinate 0 is NaN"],
    );

    // A negative weight.
    let aneg = dir.npy_f64("aneg.npy", &[0.5, 0.6, -0.1, 0.0]);
    fails_with(
        &run(&["--x", &x, "--y", &y, "--a", &aneg, eps[0], eps[1]]),
        &["--a", "aneg.npy", "must be non-negative"],
    );

    // ε ≤ 0, absolute and relative.
    for bad in [
        ["--epsilon", "0"],
        ["--epsilon", "-1"],
        ["--relative-epsilon", "-0.5"],
    ] {
        let flag = format!("{}: `epsilon` is", bad[0]);
        fails_with(
            &run(&["--x", &x, "--y", &y, bad[0], bad[1]]),
            &[&flag, "expected a positive finite number"],
        );
    }
    // ε is required, and only once.
    fails_with(&run(&["--x", &x, "--y", &y]), &["--epsilon"]);
    fails_with(
        &run(&[
            "--x",
            &x,
            "--y",
            &y,
            "--epsilon",
            "0.1",
            "--relative-epsilon",
            "0.1",
        ]),
        &["cannot be used with"],
    );

    // Out-of-range unbalanced relaxation.
    fails_with(
        &run(&["--x", &x, "--y", &y, "--tau-a", "1.5", eps[0], eps[1]]),
        &["--tau-a", "(0, 1]"],
    );

    // A missing file; a file that is not .npy.
    fails_with(
        &run(&["--x", "/nonexistent/x.npy", "--y", &y, eps[0], eps[1]]),
        &["--x", "/nonexistent/x.npy", "cannot read"],
    );
    let text = dir.path("x.txt");
    std::fs::write(&text, "1 2 3").unwrap();
    fails_with(
        &run(&["--x", text.to_str().unwrap(), "--y", &y, eps[0], eps[1]]),
        &["--x", "x.txt", "not a .npy file"],
    );

    // Point clouds and a cost matrix together; neither.
    let c = dir.npy("c.npy", &[4, 3], &[1.0; 12]);
    fails_with(
        &run(&["--x", &x, "--y", &y, "--cost", &c, eps[0], eps[1]]),
        &["cannot be used with"],
    );
    fails_with(&run(&[eps[0], eps[1]]), &["--x"]);

    // Multi-marginal: k < 2, a dimension that disagrees, NaN.
    let multi = |extra: &[&str]| {
        let mut args = vec!["ot", "multi"];
        args.extend_from_slice(extra);
        latentlab(&args)
    };
    let out = multi(&["--x", &x, eps[0], eps[1]]);
    assert_eq!(out.status.code(), Some(1));
    fails_with(&out, &["got 1 point cloud(s)", "k >= 2"]);
    fails_with(
        &multi(&["--x", &x, &y3, eps[0], eps[1]]),
        &["--x[1]", "y3.npy", "dimension"],
    );
    fails_with(
        &multi(&["--x", &x, &xnan, eps[0], eps[1]]),
        &["--x[1]", "xnan.npy", "NaN"],
    );
    fails_with(
        &multi(&["--x", &x, &y, "--epsilon", "0"]),
        &["--epsilon: `epsilon` is 0"],
    );
}
