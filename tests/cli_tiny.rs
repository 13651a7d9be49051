//! `latentlab tiny responses|fit|estimate|eval` from outside: the contract keys, a fitted
//! benchmark that estimates held-out models better than a plain mean of their anchor
//! answers, real retrieval configurations on Tux Paint stamps, and bad input named.

mod common;

use common::{fails_with, json, latentlab, read_npy, TempDir};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Answers of `models` models on `items` items from a random 2-D 2PL model; every item is
/// answered both ways by someone (row 0 all right, row 1 all wrong would make none constant,
/// so constant columns are only what the draw gives).
fn synthetic(models: usize, items: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let a: Vec<[f64; 2]> = (0..items)
        .map(|_| {
            [
                rng.random::<f64>() * 2.0 - 0.5,
                rng.random::<f64>() * 2.0 - 1.0,
            ]
        })
        .collect();
    let b: Vec<f64> = (0..items).map(|_| rng.random::<f64>() - 0.5).collect();
    let mut y = Vec::with_capacity(models * items);
    for _ in 0..models {
        let t = [
            rng.random::<f64>() * 4.0 - 2.0,
            rng.random::<f64>() * 2.0 - 1.0,
        ];
        for i in 0..items {
            let z = a[i][0] * t[0] + a[i][1] * t[1] - 2.0 * b[i];
            let p = 1.0 / (1.0 + (-z).exp());
            y.push(f32::from(u8::from(rng.random::<f64>() < p)));
        }
    }
    y
}

#[test]
fn fit_estimate_and_eval_print_the_contract_keys() {
    let dir = TempDir::new("tiny", "fit");
    let (models, items) = (40, 120);
    let y = synthetic(models, items);
    let r = dir.npy("R.npy", models as u64, items as u64, &y);
    let bench = dir.path("bench.json");
    let fit = json(&latentlab(&[
        "tiny",
        "fit",
        "--responses",
        &r,
        "--drop-constant-items",
        "--dims",
        "2",
        "--epochs",
        "200",
        "--anchors",
        "12",
        "--out",
        &bench,
    ]));
    for key in [
        "anchors",
        "anchor_weights",
        "gp_lambda",
        "bias",
        "variance",
        "kept_items",
    ] {
        assert!(fit.get(key).is_some(), "no {key} in {fit}");
    }
    let anchors: Vec<usize> = fit["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let kept: Vec<usize> = fit["kept_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert!(!anchors.is_empty() && anchors.len() <= 12);
    // the first model's answers on the anchors (indices among the kept items)
    let answers: Vec<f32> = anchors.iter().map(|&a| y[kept[a]]).collect();
    let ans = dir.npy("y.npy", 1, answers.len() as u64, &answers);
    let est = json(&latentlab(&[
        "tiny",
        "estimate",
        "--benchmark",
        &bench,
        "--answers",
        &ans,
    ]));
    for key in ["irt", "pirt", "gpirt", "theta", "theta_converged"] {
        assert!(est.get(key).is_some(), "no {key} in {est}");
    }
    for key in ["irt", "pirt", "gpirt"] {
        let v = est[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert_eq!(est["theta"].as_array().unwrap().len(), 2);

    let eval = json(&latentlab(&[
        "tiny",
        "eval",
        "--responses",
        &r,
        "--drop-constant-items",
        "--dims",
        "2",
        "--epochs",
        "200",
        "--anchors",
        "10,30",
        "--seeds",
        "2",
    ]));
    let rows = eval["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(eval["test_models"].as_array().unwrap().len(), 10);
    for row in rows {
        for key in [
            "random",
            "irt",
            "pirt",
            "gpirt",
            "random_pirt",
            "random_gpirt",
        ] {
            let e = row[key].as_f64().unwrap();
            assert!((0.0..0.5).contains(&e), "{key} {e} in {row}");
        }
        // the IRT-based estimates beat a plain mean of the same number of random answers
        assert!(
            row["pirt"].as_f64().unwrap() < row["random"].as_f64().unwrap(),
            "{row}"
        );
    }
}

#[test]
fn bad_input_is_named() {
    let dir = TempDir::new("tiny", "bad");
    // item 1 is answered alike by every model
    let constant = dir.npy(
        "c.npy",
        3,
        3,
        &[1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    );
    let out = dir.path("b.json");
    fails_with(
        &latentlab(&["tiny", "fit", "--responses", &constant, "--out", &out]),
        &["--responses", "c.npy", "item 1", "--drop-constant-items"],
    );
    let scores = dir.npy("s.npy", 2, 2, &[1.0, 2.0, 0.0, 1.0]);
    fails_with(
        &latentlab(&["tiny", "fit", "--responses", &scores, "--out", &out]),
        &["--responses", "s.npy", "2", "row 0, column 1"],
    );
    let r = dir.npy("r.npy", 10, 8, &synthetic(10, 8));
    fails_with(
        &latentlab(&["tiny", "eval", "--responses", &r, "--test-fraction", "1"]),
        &["--test-fraction", "test fraction` is 1"],
    );
    fails_with(
        &latentlab(&[
            "tiny",
            "fit",
            "--responses",
            &r,
            "--drop-constant-items",
            "--anchors",
            "0",
            "--epochs",
            "10",
            "--out",
            &out,
        ]),
        &["anchors", "at least 1"],
    );
    let not_json = dir.npy("n.npy", 1, 2, &[1.0, 0.0]);
    fails_with(
        &latentlab(&[
            "tiny",
            "estimate",
            "--benchmark",
            &not_json,
            "--answers",
            &not_json,
        ]),
        &["--benchmark", "n.npy"],
    );
}

#[test]
fn responses_of_real_retrieval_configurations_on_stamps() {
    let dir = TempDir::new("tiny", "stamps");
    let r = dir.path("R.npy");
    let describe = dir.path("d.json");
    let v = json(&latentlab(&[
        "tiny",
        "responses",
        "--limit",
        "24",
        "--out",
        &r,
        "--describe",
        &describe,
    ]));
    assert_eq!(v["configs"], 100);
    assert_eq!(v["items"], 24);
    let (shape, data) = read_npy(&r);
    assert_eq!(shape, vec![100, 24]);
    assert!(data.iter().all(|&x| x == 0.0 || x == 1.0));
    // top-30 of 24 pictures finds everything; top-1 at 24 dimensions does not
    let described: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&describe).unwrap()).unwrap();
    let configs = described["configs"].as_array().unwrap();
    for (c, row) in configs.iter().zip(data.chunks(24)) {
        if c["k"] == 30 {
            assert!(row.iter().all(|&x| x == 1.0), "{c}");
        }
    }
    let first_k1 = configs.iter().position(|c| c["k"] == 1).unwrap();
    let acc1: f32 = data[first_k1 * 24..(first_k1 + 1) * 24].iter().sum::<f32>() / 24.0;
    assert!(acc1 < 1.0, "{acc1}");
    assert_eq!(described["items"].as_array().unwrap().len(), 24);
}
