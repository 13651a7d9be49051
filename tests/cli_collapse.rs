//! `latentlab collapse` from outside: the contract keys, agreement of the simulation with the
//! paper's closed forms within sampling error, and clear errors for bad parameters.

mod common;
use common::{fails_with, json, latentlab};

#[test]
fn simulation_and_closed_forms_side_by_side() {
    let v = json(&latentlab(&[
        "collapse", "--d", "4", "--t", "30", "--sigma2", "0.5", "--rounds", "5", "--runs", "300",
        "--seed", "3",
    ]));
    let series = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (replace, accumulate) = (series("replace"), series("accumulate"));
    let (replace_theory, accumulate_theory) =
        (series("replace_theory"), series("accumulate_theory"));
    let (replace_sem, accumulate_sem) = (series("replace_sem"), series("accumulate_sem"));
    for s in [&replace, &accumulate, &replace_theory, &accumulate_theory] {
        assert_eq!(s.len(), 5);
    }
    // σ² d / (t − d − 1) = 0.5 · 4 / 25 = 0.08 per round when replacing.
    assert!((replace_theory[4] - 0.4).abs() < 1e-12);
    for r in 0..5 {
        assert!(
            (replace[r] - replace_theory[r]).abs()
                < 5.0 * replace_sem[r] + 0.02 * replace_theory[r],
            "{v}"
        );
        assert!(
            (accumulate[r] - accumulate_theory[r]).abs()
                < 5.0 * accumulate_sem[r] + 0.02 * accumulate_theory[r],
            "{v}"
        );
    }
    assert_eq!(v["d"], 4);
    assert_eq!(v["runs"], 300);
}

#[test]
fn bad_parameters_get_a_clear_error() {
    fails_with(
        &latentlab(&["collapse", "--d", "10", "--t", "11"]),
        &["t > d + 1"],
    );
    fails_with(
        &latentlab(&["collapse", "--rounds", "0"]),
        &["`rounds` is 0"],
    );
    fails_with(
        &latentlab(&["collapse", "--sigma2=-1"]),
        &["`sigma2` is -1"],
    );
}
