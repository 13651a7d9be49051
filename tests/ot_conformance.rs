//! The optimal-transport core against reference results from POT and OTT-JAX
//! (`tests/fixtures/ot/`, made by `scripts/fixtures/make_ot_fixtures.py`; see the README
//! there). References ran in float64; we run in f32. Run with `--nocapture` to see the
//! measured errors.

use latentlab::core::ot::{
    m3g, multi_sinkhorn, sinkhorn, CostFn, Epsilon, Geometry, MultiSinkhornOptions, Points,
    SinkhornOptions,
};
use serde_json::Value;

/// Relative tolerance on costs and on plans (max entry error over max entry).
const TOL: f64 = 1e-4;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/ot/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Numbers of a JSON array; null (a non-finite reference value) becomes -inf.
fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NEG_INFINITY))
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    f64s(v).into_iter().map(|x| x as f32).collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-12)
}

/// max |got − want| / max |want| over the finite reference entries.
fn rel_max(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want
        .iter()
        .filter(|w| w.is_finite())
        .fold(0.0f64, |m, w| m.max(w.abs()));
    let err = got
        .iter()
        .zip(want)
        .filter(|(_, w)| w.is_finite())
        .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
    err / scale.max(1e-12)
}

/// Potentials are defined up to constants: compare after removing the mean (finite entries).
fn centred_rel(got: &[f32], want: &[f64]) -> f64 {
    let fin: Vec<usize> = (0..want.len()).filter(|&i| want[i].is_finite()).collect();
    for &i in &fin {
        assert!(got[i].is_finite());
    }
    for i in 0..want.len() {
        if !want[i].is_finite() {
            assert_eq!(got[i], f32::NEG_INFINITY, "entry {i} should be -inf");
        }
    }
    let mg = fin.iter().map(|&i| got[i] as f64).sum::<f64>() / fin.len() as f64;
    let mw = fin.iter().map(|&i| want[i]).sum::<f64>() / fin.len() as f64;
    let g: Vec<f32> = fin.iter().map(|&i| (got[i] as f64 - mg) as f32).collect();
    let w: Vec<f64> = fin.iter().map(|&i| want[i] - mw).collect();
    rel_max(&g, &w).min(
        // absolute, for potentials that are all close to 0
        g.iter()
            .zip(&w)
            .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs())),
    )
}

fn cost_fn(v: &Value) -> CostFn {
    match v.as_str() {
        Some("sq_euclidean") => CostFn::SqEuclidean,
        Some("cosine") => CostFn::Cosine,
        other => panic!("unknown cost {other:?}"),
    }
}

fn epsilon(v: &Value) -> Epsilon {
    let value = num(&v["value"]) as f32;
    match v["kind"].as_str() {
        Some("absolute") => Epsilon::Absolute(value),
        Some("relative_to_mean") => Epsilon::RelativeToMean(value),
        Some("relative_to_std") => Epsilon::RelativeToStd(value),
        other => panic!("unknown epsilon {other:?}"),
    }
}

#[test]
fn sinkhorn_matches_pot_and_ott() {
    let fx = load("sinkhorn.json");
    let cases = fx["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let geo = &case["geometry"];
        let (n, m) = (usize_of(&geo["n"]), usize_of(&geo["m"]));
        let (cost, x, y);
        let geom = if geo["kind"] == "cost_matrix" {
            cost = f32s(&geo["cost"]);
            Geometry::CostMatrix { cost: &cost, n, m }
        } else {
            let dim = usize_of(&geo["dim"]);
            x = f32s(&geo["x"]);
            y = f32s(&geo["y"]);
            Geometry::PointClouds {
                x: Points::new(&x, n, dim),
                y: Points::new(&y, m, dim),
                cost: cost_fn(&geo["cost_fn"]),
            }
        };
        let opts = SinkhornOptions {
            epsilon: epsilon(&case["epsilon"]),
            tau_a: num(&case["tau_a"]) as f32,
            tau_b: num(&case["tau_b"]) as f32,
            threshold: 1e-5,
            max_iterations: 100_000,
            return_plan: true,
            ..Default::default()
        };
        let (a, b) = (f32s(&case["a"]), f32s(&case["b"]));
        let out = sinkhorn(&geom, &a, &b, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &case["expected"];
        let mut report = format!(
            "{name}: converged={} n_iters={}",
            out.converged, out.n_iters
        );
        assert!(
            out.converged,
            "{name}: did not converge ({:?})",
            out.errors.last()
        );

        let plan_err = rel_max(out.plan.as_deref().expect("plan"), &f64s(&exp["plan"]));
        report += &format!(" plan {plan_err:.1e}");
        assert!(plan_err <= TOL, "{name}: plan relative error {plan_err:e}");
        let t = rel(out.transport_cost as f64, num(&exp["transport_cost"]));
        report += &format!(" transport_cost {t:.1e}");
        assert!(t <= TOL, "{name}: transport cost relative error {t:e}");
        if let Some(e) = exp["epsilon"].as_f64() {
            let r = rel(out.epsilon as f64, e);
            report += &format!(" epsilon {r:.1e}");
            assert!(r <= 1e-6, "{name}: epsilon {} vs {e}", out.epsilon);
        }
        for key in ["reg_ot_cost", "ent_reg_cost"] {
            if let Some(want) = exp[key].as_f64() {
                let got = if key == "reg_ot_cost" {
                    out.reg_ot_cost
                } else {
                    out.ent_reg_cost
                };
                let r = rel(got as f64, want);
                report += &format!(" {key} {r:.1e}");
                assert!(r <= TOL, "{name}: {key} {got} vs {want} ({r:e})");
            }
        }
        if exp["f"].is_array() {
            let ef = centred_rel(&out.f, &f64s(&exp["f"]));
            let eg = centred_rel(&out.g, &f64s(&exp["g"]));
            report += &format!(" f {ef:.1e} g {eg:.1e}");
            assert!(ef <= 1e-4 && eg <= 1e-4, "{name}: potentials {ef:e} {eg:e}");
        }
        eprintln!("{report}");
    }
}

fn clouds(case: &Value) -> (Vec<Vec<f32>>, Vec<usize>, usize) {
    let sizes: Vec<usize> = case["sizes"]
        .as_array()
        .expect("sizes")
        .iter()
        .map(usize_of)
        .collect();
    let data = case["x_s"]
        .as_array()
        .expect("x_s")
        .iter()
        .map(f32s)
        .collect();
    (data, sizes, usize_of(&case["dim"]))
}

#[test]
fn multi_sinkhorn_matches_ott_mmsinkhorn() {
    let fx = load("mmsinkhorn.json");
    let cases = fx["cases"].as_array().expect("cases");
    let mut ks = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let (data, sizes, dim) = clouds(case);
        ks.push(sizes.len());
        let pts: Vec<Points> = data
            .iter()
            .zip(&sizes)
            .map(|(d, &n)| Points::new(d, n, dim))
            .collect();
        let ws: Vec<Vec<f32>> = case["a_s"]
            .as_array()
            .expect("a_s")
            .iter()
            .map(f32s)
            .collect();
        let wrefs: Vec<&[f32]> = ws.iter().map(|w| w.as_slice()).collect();
        let opts = MultiSinkhornOptions {
            epsilon: epsilon(&case["epsilon"]),
            threshold: 1e-5,
            max_iterations: 100_000,
            return_coupling: true,
            ..Default::default()
        };
        let cost = cost_fn(&case["cost_fn"]);
        let out =
            multi_sinkhorn(&pts, &wrefs, cost, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &case["expected"];
        assert!(
            out.converged,
            "{name}: did not converge ({:?})",
            out.errors.last()
        );
        assert_eq!(out.shape, sizes);
        let re = rel(out.epsilon as f64, num(&exp["epsilon"]));
        assert!(
            re <= 1e-6,
            "{name}: epsilon {} vs {}",
            out.epsilon,
            exp["epsilon"]
        );
        let rc = rel(out.ent_reg_cost as f64, num(&exp["ent_reg_cost"]));
        assert!(
            rc <= TOL,
            "{name}: ent_reg_cost {} vs {} ({rc:e})",
            out.ent_reg_cost,
            exp["ent_reg_cost"]
        );
        let rp = rel_max(
            out.coupling.as_deref().expect("coupling"),
            &f64s(&exp["coupling"]),
        );
        assert!(rp <= TOL, "{name}: coupling relative error {rp:e}");
        let mut pe = 0.0f64;
        for (p, w) in out
            .potentials
            .iter()
            .zip(exp["potentials"].as_array().expect("potentials"))
        {
            pe = pe.max(centred_rel(p, &f64s(w)));
        }
        assert!(pe <= 1e-4, "{name}: potentials {pe:e}");
        let mut report = format!(
            "{name}: n_iters={} epsilon {re:.1e} ent_reg_cost {rc:.1e} coupling {rp:.1e} potentials {pe:.1e}",
            out.n_iters
        );

        if let Some(lin_ref) = exp["linear_ent_reg_cost"].as_f64() {
            // k = 2 equals ordinary Sinkhorn (OTT's own test), here and in the reference.
            let geom = Geometry::PointClouds {
                x: pts[0],
                y: pts[1],
                cost,
            };
            let (a, b) = (
                ws.first().cloned().unwrap_or_default(),
                ws.get(1).cloned().unwrap_or_default(),
            );
            let lin = sinkhorn(
                &geom,
                &a,
                &b,
                &SinkhornOptions {
                    epsilon: Epsilon::Absolute(out.epsilon),
                    threshold: 1e-5,
                    max_iterations: 100_000,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let r1 = rel(lin.ent_reg_cost as f64, out.ent_reg_cost as f64);
            let r2 = rel(lin.ent_reg_cost as f64, lin_ref);
            report += &format!(" k2-vs-sinkhorn {r1:.1e} vs-ott-linear {r2:.1e}");
            assert!(
                r1 <= TOL && r2 <= TOL,
                "{name}: k = 2 vs Sinkhorn {r1:e} {r2:e}"
            );
        }
        eprintln!("{report}");
    }
    ks.sort_unstable();
    ks.dedup();
    assert_eq!(ks, vec![2, 3, 4]);
}

#[test]
fn m3g_matches_ott_and_jax_grad() {
    let fx = load("m3g.json");
    for case in fx["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (k, n, dim) = (
            usize_of(&case["k"]),
            usize_of(&case["n"]),
            usize_of(&case["dim"]),
        );
        let data: Vec<Vec<f32>> = case["x_s"]
            .as_array()
            .expect("x_s")
            .iter()
            .map(f32s)
            .collect();
        assert_eq!(data.len(), k);
        let pts: Vec<Points> = data.iter().map(|d| Points::new(d, n, dim)).collect();
        let opts = MultiSinkhornOptions {
            epsilon: epsilon(&case["epsilon"]),
            threshold: 1e-5,
            max_iterations: 100_000,
            ..Default::default()
        };
        let out = m3g(&pts, cost_fn(&case["cost_fn"]), &opts, true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.converged, "{name}");
        let exp = &case["expected"];
        let rm = rel(out.m3g as f64, num(&exp["m3g"]));
        let rg = rel(out.ground_truth_cost as f64, num(&exp["ground_truth_cost"]));
        let rc = rel(out.ent_reg_cost as f64, num(&exp["ent_reg_cost"]));
        let mut ge = 0.0f64;
        for (g, w) in out
            .gradient
            .as_ref()
            .expect("gradient")
            .iter()
            .zip(exp["gradient"].as_array().expect("gradient"))
        {
            ge = ge.max(rel_max(g, &f64s(w)));
        }
        eprintln!("{name}: n_iters={} m3g {rm:.1e} ground_truth {rg:.1e} ent_reg_cost {rc:.1e} gradient {ge:.1e}", out.n_iters);
        assert!(
            rm <= TOL && rg <= TOL && rc <= TOL,
            "{name}: {rm:e} {rg:e} {rc:e}"
        );
        assert!(ge <= 1e-4, "{name}: gradient relative error {ge:e}");
    }
}
