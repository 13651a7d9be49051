//! tinyBenchmarks' estimators against the reference package itself (`tests/fixtures/tiny/`,
//! made by `scripts/fixtures/make_tiny_fixtures.py` from felipemaiapolo/tinyBenchmarks'
//! `evaluate` and `fit_theta` on synthetic benchmarks, and the tutorial's KMeans anchors).

use latentlab::core::tiny::{
    balance_weights, estimate, fit_theta, select_anchors, Irt, ItemFeatures, Scenario,
};
use serde_json::Value;

fn fixtures() -> Value {
    let path = format!(
        "{}/tests/fixtures/tiny/cases.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

const SCENARIOS: [&str; 2] = ["arc", "hellaswag"];

struct Case {
    irt: Irt,
    bw: Vec<f64>,
    seen: Vec<usize>,
    y: Vec<f64>,
    value: Value,
}

fn case(c: &Value) -> Case {
    let dim = c["dim"].as_u64().unwrap() as usize;
    let a: Vec<f64> = c["a"].as_array().unwrap().iter().flat_map(f64s).collect();
    let irt = Irt::new(dim, a, f64s(&c["b"])).unwrap();
    // balance weights per scenario, items numbered scenario by scenario as in the fixture
    let mut bw = Vec::new();
    for s in SCENARIOS {
        let sizes: Vec<usize> = c["subscenarios"][s]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_array().unwrap().len())
            .collect();
        bw.extend(balance_weights(&sizes).unwrap());
    }
    Case {
        irt,
        bw,
        seen: usizes(&c["seen_examples"]),
        y: f64s(&c["y_input"]),
        value: c.clone(),
    }
}

fn check_estimates(c: &Case, theta: &[f64], seen: &[usize], y: &[f64], key: &str, tol: f64) {
    for (s, want) in c.value[key].as_object().unwrap() {
        let scenario = Scenario {
            items: &usizes(&c.value["scenarios"][s]),
            gp_lambda: c.value["optimal_lambdas"][s].as_f64().unwrap(),
        };
        let weights = f64s(&c.value["examples_weights"][s]);
        let got = estimate(&c.irt, theta, &c.bw, seen, y, &weights, scenario).unwrap();
        for (name, value) in [("irt", got.irt), ("pirt", got.pirt), ("gpirt", got.gpirt)] {
            let w = want[name].as_f64().unwrap();
            assert!(
                (value - w).abs() <= tol,
                "seed {} {key} {s} {name}: {value} vs the package's {w}",
                c.value["seed"]
            );
        }
    }
}

#[test]
fn estimates_equal_the_packages_with_its_theta() {
    // θ injected: the estimators' arithmetic alone, to rounding
    for c in fixtures()["cases"].as_array().unwrap() {
        let c = case(c);
        let theta = f64s(&c.value["theta_lb"]);
        check_estimates(&c, &theta, &c.seen, &c.y, "evaluate_lb", 1e-12);
    }
}

#[test]
fn theta_and_estimates_equal_the_packages_from_the_answers() {
    for c in fixtures()["cases"].as_array().unwrap() {
        let c = case(c);
        assert!(c.value["well_conditioned"].as_bool().unwrap());
        let fit = fit_theta(&c.irt, &c.seen, &c.y).unwrap();
        let want = f64s(&c.value["theta_lb"]);
        let nll = c.value["neg_log_like_lb"].as_f64().unwrap();
        println!(
            "seed {}: θ {:?} vs {want:?}, nll {} vs {nll}, {} iterations",
            c.value["seed"], fit.theta, fit.neg_log_like, fit.iterations
        );
        assert!(fit.converged);
        // scipy stops at a gradient of 1e-5 with a finite-difference gradient; we iterate
        // further, so our likelihood is at least as high and θ agrees to scipy's accuracy
        assert!(
            fit.neg_log_like <= nll + 1e-9,
            "{} vs {nll}",
            fit.neg_log_like
        );
        for (t, w) in fit.theta.iter().zip(&want) {
            assert!((t - w).abs() < 1e-4, "θ {:?} vs {want:?}", fit.theta);
        }
        check_estimates(&c, &fit.theta, &c.seen, &c.y, "evaluate_lb", 1e-6);
        // a single scenario: θ from that scenario's 100 anchors only, as `evaluate(y, "arc")`
        let (seen, y) = (&c.seen[..100], &c.y[..100]);
        let fit = fit_theta(&c.irt, seen, y).unwrap();
        check_estimates(&c, &fit.theta, seen, y, "evaluate_arc", 1e-6);
    }
}

#[test]
fn anchors_equal_the_tutorials_kmeans_on_separated_clusters() {
    for c in fixtures()["anchor_cases"].as_array().unwrap() {
        let rows = c["x"].as_array().unwrap();
        let features = rows[0].as_array().unwrap().len();
        let x: Vec<f64> = rows.iter().flat_map(f64s).collect();
        let bw = f64s(&c["balance_weights"]);
        let count = c["clusters"].as_u64().unwrap() as usize;
        let got =
            select_anchors(ItemFeatures::Matrix { x: &x, features }, &bw, count, 5, 0).unwrap();
        assert_eq!(got.items, usizes(&c["anchors"]));
        for (g, w) in got.weights.iter().zip(f64s(&c["weights"])) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
        let inertia = c["inertia"].as_f64().unwrap();
        assert!((got.inertia - inertia).abs() <= 1e-9 * inertia.max(1.0));
    }
}
