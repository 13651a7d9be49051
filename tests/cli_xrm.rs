//! `latentlab xrm data|run|select` from outside: a small Waterbirds-like set made from Tux Paint's
//! birds and photos (installed by scripts/test), the contract keys of the run, and bad input
//! named.

mod common;

use common::{fails_with, json, latentlab, read_npy, TempDir};

#[test]
fn data_then_run_on_a_small_set() {
    let dir = TempDir::new("xrm", "small");
    let out = dir.path("data");
    let v = json(&latentlab(&[
        "xrm", "data", "--out", &out, "--train", "24", "--val", "12", "--test", "12", "--size",
        "96",
    ]));
    assert_eq!(v["splits"]["train"]["n"], 24);
    // test species are not training species
    let species = |split: &str| -> Vec<String> {
        v["splits"][split]["species"]["water"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert!(species("test")
        .iter()
        .all(|s| !species("train").contains(s)));
    let (shape, _) = read_npy(&format!("{out}/train_x.npy"));
    assert_eq!(shape, vec![24, 1280]);
    assert!(
        std::path::Path::new(&format!("{out}/samples"))
            .read_dir()
            .unwrap()
            .count()
            >= 12
    );
    let r = json(&latentlab(&[
        "xrm", "run", "--data", &out, "--seeds", "2", "--steps", "100", "--pca", "8",
    ]));
    assert_eq!(r["dim"], 8);
    assert_eq!(r["runs"].as_array().unwrap().len(), 2);
    for method in ["erm", "groupdro_classes", "groupdro_xrm", "groupdro_true"] {
        let wga = r["table"][method]["test_worst_group"]["mean"]
            .as_f64()
            .unwrap();
        assert!((0.0..=1.0).contains(&wga), "{method} {wga}");
    }
    for key in [
        "train_precision",
        "train_recall",
        "val_precision",
        "val_recall",
    ] {
        assert!(r["recovery"][key]["mean"].is_number(), "{key}: {r}");
    }
    let history = r["runs"][0]["flip_rates"].as_array().unwrap();
    assert_eq!(history.len(), 10, "every 10 steps: {r}");

    // phase-1 selection: every (components, whitening, steps) at seed 0, the largest final
    // flip rate kept (degenerate runs score 0), first on ties
    let s = json(&latentlab(&[
        "xrm", "select", "--data", &out, "--pca", "4,8,0", "--steps", "50,100",
    ]));
    let candidates = s["candidates"].as_array().unwrap();
    // 4 and 8 components plain and whitened, all 1280 plain; two step counts each
    assert_eq!(candidates.len(), 5 * 2, "{s}");
    let score = |c: &serde_json::Value| c["score"].as_f64().unwrap();
    for c in candidates {
        let expected = if c["degenerate"].as_bool().unwrap() {
            0.0
        } else {
            c["flip_rate"].as_f64().unwrap()
        };
        assert_eq!(score(c), expected, "{c}");
    }
    let best = (0..candidates.len()).fold(0, |b, i| {
        if score(&candidates[i]) > score(&candidates[b]) {
            i
        } else {
            b
        }
    });
    for key in ["pca", "whiten", "steps"] {
        assert_eq!(s["selected"][key], candidates[best][key], "{key}: {s}");
    }
    // the 100-step candidate is the 100-step run: the same as `xrm run --steps 100` at seed 0
    let eight = candidates
        .iter()
        .find(|c| c["pca"] == 8 && c["whiten"] == false && c["steps"] == 100)
        .unwrap();
    assert_eq!(eight["flip_rate"], r["runs"][0]["flip_rate"], "{s}");
    // whitening scales principal components: with none it is refused, not silently skipped
    fails_with(
        &latentlab(&["xrm", "run", "--data", &out, "--pca", "0", "--whiten"]),
        &["--whiten", "--pca"],
    );
}

#[test]
fn bad_input_is_named() {
    let dir = TempDir::new("xrm", "bad");
    let out = dir.path("d");
    fails_with(
        &latentlab(&["xrm", "data", "--out", &out, "--agree", "1.5"]),
        &["--agree 1.5"],
    );
    fails_with(
        &latentlab(&["xrm", "data", "--out", &out, "--tuxpaint", "/nonexistent"]),
        &["/nonexistent", "tuxpaint-data"],
    );
    fails_with(
        &latentlab(&["xrm", "run", "--data", "/nonexistent"]),
        &["train_x.npy"],
    );
    fails_with(
        &latentlab(&["xrm", "select", "--data", "/nonexistent"]),
        &["train_x.npy"],
    );
}

#[test]
fn the_larger_variant_and_the_site_pictures() {
    let dir = TempDir::new("xrm", "animals");
    let out = dir.path("data");
    let v = json(&latentlab(&[
        "xrm",
        "data",
        "--variant",
        "animals",
        "--out",
        &out,
        "--train",
        "12",
        "--val",
        "6",
        "--test",
        "6",
        "--size",
        "64",
        "--thumbnails",
        "32",
    ]));
    assert_eq!(v["variant"], "animals");
    let all: Vec<String> = ["train", "test"]
        .iter()
        .flat_map(|s| ["water", "land"].map(|k| v["splits"][s]["species"][k].clone()))
        .flat_map(|a| a.as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    for kind in ["birds/", "fish/", "mammals/aquatic/", "marsupials/"] {
        assert!(all.iter().any(|s| s.starts_with(kind)), "{kind}: {all:?}");
    }
    // pictures.json lists every picture with its label, background and thumbnail
    let listing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{out}/pictures.json")).unwrap())
            .unwrap();
    let train = listing["pictures"]["train"].as_array().unwrap();
    assert_eq!(train.len(), 12);
    for p in train {
        let file = p["file"].as_str().unwrap();
        let bytes = std::fs::read(format!("{out}/{file}")).unwrap();
        assert_eq!(&bytes[..2], &[0xff, 0xd8], "{file} is a JPEG");
        assert!(p["y"] == 0 || p["y"] == 1);
        let species = p["species"].as_str().unwrap();
        assert!(all.iter().any(|s| s == species), "{species}");
    }
}
