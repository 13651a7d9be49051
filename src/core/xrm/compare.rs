//! The paper's comparison on one data set: ERM, GroupDRO with class labels only, GroupDRO
//! with XRM's environments (one discovery per seed) and GroupDRO with the true groups, plus
//! how well each seed's environments recover the true minority. What `xrm run` prints and
//! `xrmCompare` returns.

use serde::Serialize;

use crate::core::matrix::Matrix;

use super::{
    discover_environments, erm, group_dro, recovery, DroResult, Environments, Grouped, Labelled,
    Recovery, XrmError, XrmOptions,
};

/// A labelled split and its true spurious attribute per example (the background, for the
/// birds); the minority is where the attribute differs from the label.
#[derive(Debug, Clone, Copy)]
pub struct AttributedSplit<'a> {
    pub data: Labelled<'a>,
    pub attribute: &'a [usize],
}

impl<'a> AttributedSplit<'a> {
    /// The rows of `x` with their classes and attributes.
    pub fn of(x: &'a Matrix, y: &'a [usize], attribute: &'a [usize]) -> Self {
        AttributedSplit {
            data: Labelled {
                x: &x.data,
                dim: x.cols,
                y,
            },
            attribute,
        }
    }

    fn minority(&self) -> Vec<bool> {
        self.data
            .y
            .iter()
            .zip(self.attribute)
            .map(|(y, a)| y != a)
            .collect()
    }
}

/// One seed of XRM: its environments, their recovery of the minority, GroupDRO on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedRun {
    pub seed: u64,
    pub environments: Environments,
    pub recovery_train: Recovery,
    pub recovery_val: Recovery,
    pub groupdro_xrm: DroResult,
}

/// Every method's result. ERM and GroupDRO with given groups start from zero and draw no
/// random numbers, so they are trained once, not per seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub erm: DroResult,
    pub groupdro_classes: DroResult,
    pub groupdro_true: DroResult,
    pub runs: Vec<SeedRun>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    /// Sample standard deviation (0 for a single value).
    pub std: f64,
}

impl MeanStd {
    fn of(values: impl Iterator<Item = f64>) -> MeanStd {
        let v: Vec<f64> = values.collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        MeanStd {
            mean,
            std: var.sqrt(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MethodSummary {
    pub test_worst_group: MeanStd,
    pub test_average: MeanStd,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Table {
    pub erm: MethodSummary,
    pub groupdro_classes: MethodSummary,
    pub groupdro_xrm: MethodSummary,
    pub groupdro_true: MethodSummary,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RecoverySummary {
    pub train_precision: MeanStd,
    pub train_recall: MeanStd,
    pub val_precision: MeanStd,
    pub val_recall: MeanStd,
}

/// Means and standard deviations over the seeds (the seed-free methods have std 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub recovery: RecoverySummary,
    pub table: Table,
}

impl Comparison {
    pub fn summary(&self) -> Summary {
        let over = |f: &dyn Fn(&SeedRun) -> f64| MeanStd::of(self.runs.iter().map(f));
        let fixed = |r: &DroResult| MethodSummary {
            test_worst_group: MeanStd {
                mean: r.test_worst_group,
                std: 0.0,
            },
            test_average: MeanStd {
                mean: r.test_average,
                std: 0.0,
            },
        };
        Summary {
            recovery: RecoverySummary {
                train_precision: over(&|r| r.recovery_train.precision),
                train_recall: over(&|r| r.recovery_train.recall),
                val_precision: over(&|r| r.recovery_val.precision),
                val_recall: over(&|r| r.recovery_val.recall),
            },
            table: Table {
                erm: fixed(&self.erm),
                groupdro_classes: fixed(&self.groupdro_classes),
                groupdro_xrm: MethodSummary {
                    test_worst_group: over(&|r| r.groupdro_xrm.test_worst_group),
                    test_average: over(&|r| r.groupdro_xrm.test_average),
                },
                groupdro_true: fixed(&self.groupdro_true),
            },
        }
    }
}

/// Runs the comparison with seeds `0..seeds` (`opts.seed` is ignored). `progress(done,
/// total)` follows each training: the three seed-free ones, then one per seed.
pub fn compare(
    train: AttributedSplit,
    validation: AttributedSplit,
    test: AttributedSplit,
    seeds: u64,
    opts: &XrmOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Comparison, XrmError> {
    if seeds == 0 {
        return Err(XrmError::Parameter {
            name: "seeds",
            value: "0".into(),
            expected: "at least 1".into(),
        });
    }
    for (name, s) in [
        ("train", &train),
        ("validation", &validation),
        ("test", &test),
    ] {
        if s.attribute.len() != s.data.len() {
            return Err(XrmError::Length {
                name: format!("{name} attributes"),
                got: s.attribute.len(),
                expected: format!("{} (one per example)", s.data.len()),
            });
        }
    }
    let total = 3 + seeds as usize;
    let test_g = Grouped {
        data: test.data,
        env: test.attribute,
    };
    let trained = |e_tr: &[usize], e_va: &[usize], dro: bool| {
        let t = Grouped {
            data: train.data,
            env: e_tr,
        };
        let v = Grouped {
            data: validation.data,
            env: e_va,
        };
        if dro {
            group_dro(t, v, test_g, opts)
        } else {
            erm(t, v, test_g, opts)
        }
    };
    let (zeros_tr, zeros_va) = (
        vec![0usize; train.data.len()],
        vec![0usize; validation.data.len()],
    );
    let erm_result = trained(&zeros_tr, &zeros_va, false)?;
    progress(1, total);
    let groupdro_classes = trained(&zeros_tr, &zeros_va, true)?;
    progress(2, total);
    let groupdro_true = trained(train.attribute, validation.attribute, true)?;
    progress(3, total);
    let (minority_tr, minority_va) = (train.minority(), validation.minority());
    let mut runs = Vec::with_capacity(seeds as usize);
    for seed in 0..seeds {
        let seeded = XrmOptions {
            seed,
            steps: opts.twin_steps.unwrap_or(opts.steps),
            twin_steps: None,
            ..opts.clone()
        };
        let environments = discover_environments(&train.data, &validation.data, &seeded)?;
        let groupdro_xrm = trained(&environments.train, &environments.validation, true)?;
        runs.push(SeedRun {
            seed,
            recovery_train: recovery(&environments.train, &minority_tr),
            recovery_val: recovery(&environments.validation, &minority_va),
            environments,
            groupdro_xrm,
        });
        progress(4 + seed as usize, total);
    }
    Ok(Comparison {
        erm: erm_result,
        groupdro_classes,
        groupdro_true,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::split;
    use super::*;

    fn attributed<'a>(x: &'a [f32], y: &'a [usize], a: &'a [usize]) -> AttributedSplit<'a> {
        AttributedSplit {
            data: Labelled { x, dim: 5, y },
            attribute: a,
        }
    }

    #[test]
    fn compare_reports_every_method_and_summarises_the_seeds() {
        let (xt, yt, at) = split(1, 400, 0.95);
        let (xv, yv, av) = split(2, 200, 0.5);
        let (xs, ys, as_) = split(3, 400, 0.5);
        let (train, val, test) = (
            attributed(&xt, &yt, &at),
            attributed(&xv, &yv, &av),
            attributed(&xs, &ys, &as_),
        );
        let opts = XrmOptions {
            steps: 1500,
            ..XrmOptions::default()
        };
        let mut calls = Vec::new();
        let result = compare(train, val, test, 3, &opts, |d, t| calls.push((d, t))).unwrap();
        assert_eq!(calls, (1..=6).map(|d| (d, 6)).collect::<Vec<_>>());
        assert_eq!(result.runs.len(), 3);
        // each seed is discover_environments with that seed, and its recovery is computed on it
        let again = discover_environments(
            &train.data,
            &val.data,
            &XrmOptions {
                seed: 2,
                ..opts.clone()
            },
        )
        .unwrap();
        assert_eq!(result.runs[2].environments, again);
        assert_eq!(
            result.runs[2].recovery_train,
            recovery(&again.train, &train.minority())
        );
        let summary = result.summary();
        let wga: Vec<f64> = result
            .runs
            .iter()
            .map(|r| r.groupdro_xrm.test_worst_group)
            .collect();
        let mean = wga.iter().sum::<f64>() / 3.0;
        let sd = (wga.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((summary.table.groupdro_xrm.test_worst_group.mean - mean).abs() < 1e-12);
        assert!((summary.table.groupdro_xrm.test_worst_group.std - sd).abs() < 1e-12);
        assert_eq!(
            summary.table.erm.test_worst_group.mean,
            result.erm.test_worst_group
        );
        assert_eq!(summary.table.erm.test_worst_group.std, 0.0);
        // the synthetic minority is easy to find: XRM beats ERM on the worst group
        assert!(mean > result.erm.test_worst_group + 0.15, "{summary:?}");

        // the twins' own step count (phase-1 selection) leaves the baselines' as they were
        let short_twins = XrmOptions {
            twin_steps: Some(40),
            ..opts.clone()
        };
        let apart = compare(train, val, test, 1, &short_twins, |_, _| {}).unwrap();
        assert_eq!(apart.erm, result.erm);
        assert_eq!(apart.groupdro_true, result.groupdro_true);
        let forty = XrmOptions {
            steps: 40,
            ..opts.clone()
        };
        let twins = discover_environments(&train.data, &val.data, &forty).unwrap();
        assert_eq!(apart.runs[0].environments, twins);
    }

    #[test]
    fn bad_comparisons_are_named() {
        let x = [0.0f32, 1.0, 2.0, 3.0];
        let data = Labelled {
            x: &x,
            dim: 2,
            y: &[0, 1],
        };
        let ok = AttributedSplit {
            data,
            attribute: &[0, 1],
        };
        let short = AttributedSplit {
            data,
            attribute: &[0],
        };
        let opts = XrmOptions::default();
        let err = compare(ok, short, ok, 1, &opts, |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("validation attributes"), "{err}");
        let err = compare(ok, ok, ok, 0, &opts, |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("`seeds` is 0"), "{err}");
    }
}
