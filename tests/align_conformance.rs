//! The alignment core against the Platonic Representation Hypothesis reference code itself
//! (`tests/fixtures/align/`, made by `scripts/fixtures/make_align_fixtures.py` from
//! minyoungg/platonic-rep's `metrics.py` and `measure_alignment.py`; see the README there).
//! Run with `--nocapture` to see the measured agreement.

use latentlab::core::align::{
    align_many, nearest_neighbors, normalize_rows, outlier_threshold, prepare, AlignOptions,
    Metric, Prepare, QuantileMode,
};
use latentlab::core::matrix::Matrix;
use serde_json::Value;

/// Continuous metrics (cka, unbiased_cka, cknna, svcca) against the float64 reference.
const TOL: f64 = 1e-5;

fn dir() -> String {
    format!("{}/tests/fixtures/align", env!("CARGO_MANIFEST_DIR"))
}

fn load_npy(name: &str) -> Matrix {
    let path = format!("{}/{name}", dir());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = npy.into_vec().unwrap();
    Matrix::new(shape[0], shape[1], data, name).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn prep_of(name: &str) -> Prepare {
    match name {
        "mean_of_rows" => Prepare::default(),
        "exact" => Prepare {
            quantile_mode: QuantileMode::Exact,
            ..Prepare::default()
        },
        "off" => Prepare::OFF,
        other => panic!("unknown preparation {other}"),
    }
}

/// Neighbour tables as `align` finds them for the four neighbourhood metrics.
fn cosine_features(m: &Matrix, arg: &'static str, prep: &Prepare) -> Matrix {
    let mut p = prepare(m, arg, prep).unwrap();
    if !prep.normalize {
        normalize_rows(&mut p);
    }
    p
}

#[test]
fn matches_the_reference_code() {
    let text = std::fs::read_to_string(format!("{}/cases.json", dir())).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let (mut worst_knn, mut worst_cont, mut worst_svcca) = (0.0f64, 0.0f64, 0.0f64);
    let mut worst_vs_f32 = 0.0f64;
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let x = load_npy(case["x"].as_str().unwrap());
        let y = load_npy(case["y"].as_str().unwrap());
        let prep = prep_of(case["prepare"].as_str().unwrap());
        let results = &case["results"];

        if prep.outlier_quantile < 1.0 {
            for (m, key) in [(&x, "threshold_x"), (&y, "threshold_y")] {
                let ours = outlier_threshold(m, prep.outlier_quantile, prep.quantile_mode);
                let want = num(&results[key]) as f32;
                // torch's float32 mean of the per-row quantiles rounds differently from our
                // f64 mean: a few ulps
                let ulp = (want.to_bits() as i64 - ours.to_bits() as i64).abs();
                assert!(ulp <= 4, "{name} {key}: {ours} vs {want} ({ulp} ulps)");
            }
        }
        let (cx, cy) = (
            cosine_features(&x, "x", &prep),
            cosine_features(&y, "y", &prep),
        );

        for k in case["ks"].as_array().unwrap() {
            let k = k.as_u64().unwrap() as usize;
            let r = &results[k.to_string()];
            // neighbour tables: exactly the reference's
            for (m, key) in [(&cx, "knn_x"), (&cy, "knn_y")] {
                let want: Vec<u32> = r[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                let got = nearest_neighbors(m, k).unwrap();
                assert_eq!(got.indices, want, "{name} k={k} {key}");
            }
            let opts = AlignOptions {
                k,
                prepare: prep,
                ..AlignOptions::default()
            };
            let scores = align_many(&x, &y, &Metric::ALL, &opts).unwrap();
            for s in &scores {
                let ref32 = num(&r["float32"][s.metric]);
                match s.metric {
                    "mutual_knn" | "cycle_knn" | "lcs_knn" | "edit_distance_knn" => {
                        // Same neighbour lists, so the same counts: the reference differs only
                        // by rounding its mean to float32.
                        let err = (s.score - ref32).abs();
                        worst_knn = worst_knn.max(err);
                        assert!(
                            err <= 2e-6 * ref32.abs().max(1.0),
                            "{name} k={k} {}: {} vs {ref32}",
                            s.metric,
                            s.score
                        );
                    }
                    "svcca" => {
                        let exact = num(&r["float64"]["svcca_exact"]);
                        let err = (s.score - exact).abs();
                        worst_svcca = worst_svcca.max(err);
                        assert!(err < TOL, "{name} svcca: {} vs {exact}", s.score);
                        println!(
                            "{name:22} k={k:2} svcca {:.7} exact-SVD reference {exact:.7} \
                             randomised reference (f32) {ref32:.7}",
                            s.score
                        );
                    }
                    _ => {
                        let ref64 = num(&r["float64"][s.metric]);
                        let err = (s.score - ref64).abs();
                        worst_cont = worst_cont.max(err);
                        worst_vs_f32 = worst_vs_f32.max((s.score - ref32).abs());
                        assert!(
                            err < TOL,
                            "{name} k={k} {}: {} vs {ref64}",
                            s.metric,
                            s.score
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    println!(
        "{checked} scores: kNN metrics max |Δ| {worst_knn:.1e} (float32 reference; neighbour \
         tables identical); cka/unbiased_cka/cknna max |Δ| {worst_cont:.1e} vs float64, \
         {worst_vs_f32:.1e} vs float32; svcca max |Δ| {worst_svcca:.1e} vs the exact-SVD \
         reference"
    );
    assert!(checked >= 48);
}
