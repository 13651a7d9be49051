//! Evaluation of a steering function, as the paper reports it: a held-out logistic-regression
//! probe for the concept before and after steering (can the concept still be read off?),
//! the same for the main task when its labels are given (is what the task needs kept?), and
//! the RMS TPR-gap of the main-task probe across its classes (is it still biased?).
//!
//! Protocol: one random split of the rows (`test_fraction`, `seed`). "Before" probes are fit
//! on the original training rows and scored on the original test rows; "after" probes are
//! fit on the steered training rows and scored on the steered test rows. Steering is
//! applied to every row selected by `apply_to`.
//!
//! TPR-gap, as the reference computes it (`classification/utils.py`, `compute_tpr_gap`): for
//! each main-task class y, `gap_y = TPR(y | z = 1) − TPR(y | z = 0)`, TPR being the share of
//! test rows of class y and concept z that the task probe labels y (gold y and gold z);
//! `GAP^RMS = sqrt(mean_y gap_y²)` over the classes that the *after* probe gets right at
//! least once, for both the before and the after figure. A class of that set with test rows
//! in only one concept group has no gap (the reference would return NaN); it is listed as
//! skipped instead.
//!
//! Which rows are steered (`apply_to`): `split` is the paper's protocol for held-out data —
//! training rows by their gold concept label, test rows where the steering function's concept
//! classifier predicts the source group. `source`, `predicted` and `all` use one rule for all.
//! The reference's Bios concept classifier is a small MLP; ours is the logistic probe.
//!
//! [`fit_and_evaluate`] fits the steering function on the training rows only, as the paper
//! does; [`evaluate`] takes a given one (fitted on the same rows, its figures are optimistic).

use serde::Serialize;

use super::probe::{train_test_split, LinearProbe, ProbeOptions};
use super::{check_matrix, ApplyTo, FitOptions, SteerError, Steering};
use crate::core::matrix::Matrix;

/// How to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    pub apply_to: ApplyTo,
    /// Fraction of rows held out for scoring (default 0.3).
    pub test_fraction: f64,
    /// Seed of the train/test split (default 0).
    pub seed: u64,
    pub probe: ProbeOptions,
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions {
            apply_to: ApplyTo::Split,
            test_fraction: 0.3,
            seed: 0,
            probe: ProbeOptions::default(),
        }
    }
}

/// One main-task class's true-positive rates in the two concept groups.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassGap {
    pub class: usize,
    pub tpr_z0: f64,
    pub tpr_z1: f64,
    /// `tpr_z1 − tpr_z0`.
    pub gap: f64,
    pub n_z0: usize,
    pub n_z1: usize,
}

/// Per-class TPR gaps and their root mean square.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TprGap {
    /// NaN when no class has test rows in both groups.
    pub rms: f64,
    pub classes: Vec<ClassGap>,
    /// Classes with test rows in only one concept group.
    pub skipped: Vec<usize>,
}

/// Everything `latentlab steer eval` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub method: &'static str,
    pub apply_to: &'static str,
    pub n: usize,
    pub n_train: usize,
    pub n_test: usize,
    /// Rows the steering function moved.
    pub n_steered: usize,
    pub concept_chance: f64,
    pub concept_accuracy_before: f64,
    pub concept_accuracy_after: f64,
    pub task_chance: Option<f64>,
    pub task_accuracy_before: Option<f64>,
    pub task_accuracy_after: Option<f64>,
    pub tpr_gap_rms_before: Option<f64>,
    pub tpr_gap_rms_after: Option<f64>,
    pub tpr_gap_before: Option<TprGap>,
    pub tpr_gap_after: Option<TprGap>,
    /// The steered rows, for callers that show them (not serialised).
    #[serde(skip)]
    pub steered_x: Matrix,
}

/// TPR gaps of predictions `predicted` against `truth` on `rows`, split by concept `z`, over
/// the classes in `classes` (ascending).
pub fn tpr_gap(
    truth: &[usize],
    predicted: &[usize],
    z: &[u8],
    rows: &[usize],
    classes: &[usize],
) -> TprGap {
    let mut gaps = Vec::new();
    let mut skipped = Vec::new();
    for &class in classes {
        let (mut count, mut hit) = ([0usize; 2], [0usize; 2]);
        for &r in rows.iter().filter(|&&r| truth[r] == class) {
            let g = usize::from(z[r]);
            count[g] += 1;
            hit[g] += usize::from(predicted[r] == class);
        }
        let [n0, n1] = count;
        if n0 == 0 || n1 == 0 {
            skipped.push(class);
            continue;
        }
        let tpr_z0 = hit[0] as f64 / n0 as f64;
        let tpr_z1 = hit[1] as f64 / n1 as f64;
        gaps.push(ClassGap {
            class,
            tpr_z0,
            tpr_z1,
            gap: tpr_z1 - tpr_z0,
            n_z0: n0,
            n_z1: n1,
        });
    }
    let rms = if gaps.is_empty() {
        f64::NAN
    } else {
        (gaps.iter().map(|g| g.gap * g.gap).sum::<f64>() / gaps.len() as f64).sqrt()
    };
    TprGap {
        rms,
        classes: gaps,
        skipped,
    }
}

/// The classes that `predicted` gets right at least once on `rows` (the reference's
/// `set(y_pred[y_pred == y_dev])`), ascending.
pub fn correctly_predicted_classes(
    truth: &[usize],
    predicted: &[usize],
    rows: &[usize],
) -> Vec<usize> {
    let mut classes: Vec<usize> = rows
        .iter()
        .filter(|&&r| predicted[r] == truth[r])
        .map(|&r| truth[r])
        .collect();
    classes.sort_unstable();
    classes.dedup();
    classes
}

fn majority_share(labels: &[usize], rows: &[usize]) -> f64 {
    let classes = rows.iter().map(|&r| labels[r] + 1).max().unwrap_or(0);
    let mut count = vec![0usize; classes];
    rows.iter().for_each(|&r| count[labels[r]] += 1);
    count.into_iter().max().unwrap_or(0) as f64 / rows.len().max(1) as f64
}

/// Probes `labels` on `x` (train rows → test rows); returns accuracy and test predictions.
fn probe(
    x: &Matrix,
    labels: &[usize],
    classes: usize,
    split: &(Vec<usize>, Vec<usize>),
    options: &ProbeOptions,
) -> Result<(f64, Vec<usize>), SteerError> {
    let model = LinearProbe::fit_rows(x, labels, &split.0, classes, options)?;
    let predicted: Vec<usize> = x.iter_rows().map(|r| model.predict(r)).collect();
    Ok((model.accuracy(x, labels, &split.1), predicted))
}

fn check_labels(x: &Matrix, z: &[u8], y: Option<&[usize]>) -> Result<(), SteerError> {
    check_matrix(x, "x")?;
    if z.len() != x.rows {
        return Err(SteerError::LengthMismatch {
            arg: "z",
            got: z.len(),
            rows: x.rows,
        });
    }
    if let Some(y) = y {
        if y.len() != x.rows {
            return Err(SteerError::LengthMismatch {
                arg: "y",
                got: y.len(),
                rows: x.rows,
            });
        }
    }
    Ok(())
}

/// Evaluates a given `steering` on rows `x` with concept labels `z` and optional task
/// labels `y`.
pub fn evaluate(
    steering: &Steering,
    x: &Matrix,
    z: &[u8],
    y: Option<&[usize]>,
    options: &EvalOptions,
) -> Result<Evaluation, SteerError> {
    check_labels(x, z, y)?;
    let split = train_test_split(x.rows, options.test_fraction, options.seed)?;
    evaluate_on_split(steering, x, z, y, &split, options)
}

/// Fits a steering function on the training rows of the split only, then evaluates it on
/// the held-out rows (the paper's protocol).
pub fn fit_and_evaluate(
    x: &Matrix,
    z: &[u8],
    y: Option<&[usize]>,
    fit: &FitOptions,
    options: &EvalOptions,
) -> Result<(Steering, Evaluation), SteerError> {
    check_labels(x, z, y)?;
    let split = train_test_split(x.rows, options.test_fraction, options.seed)?;
    let mut train = Matrix::zeros(split.0.len(), x.cols);
    for (i, &r) in split.0.iter().enumerate() {
        train.row_mut(i).copy_from_slice(x.row(r));
    }
    let train_z: Vec<u8> = split.0.iter().map(|&r| z[r]).collect();
    let steering = super::fit(&train, &train_z, fit)?;
    let evaluation = evaluate_on_split(&steering, x, z, y, &split, options)?;
    Ok((steering, evaluation))
}

fn evaluate_on_split(
    steering: &Steering,
    x: &Matrix,
    z: &[u8],
    y: Option<&[usize]>,
    split: &(Vec<usize>, Vec<usize>),
    options: &EvalOptions,
) -> Result<Evaluation, SteerError> {
    for label in [0u8, 1] {
        let count = split.0.iter().filter(|&&r| z[r] == label).count();
        if count == 0 {
            return Err(SteerError::GroupTooSmall {
                group: if label == steering.source_label {
                    "source"
                } else {
                    "target"
                },
                label,
                count,
                min: 1,
            });
        }
    }
    let mask = match options.apply_to {
        ApplyTo::Split => {
            let predicted = steering.predicted_source(x)?;
            let mut mask: Vec<bool> = z.iter().map(|&l| l == steering.source_label).collect();
            for &r in &split.1 {
                mask[r] = predicted[r];
            }
            mask
        }
        to => steering.select(x, Some(z), to)?,
    };
    let steered = steering.apply_mask(x, &mask)?;
    let concept: Vec<usize> = z.iter().map(|&l| usize::from(l)).collect();
    let (concept_before, _) = probe(x, &concept, 2, split, &options.probe)?;
    let (concept_after, _) = probe(&steered.x, &concept, 2, split, &options.probe)?;

    let mut evaluation = Evaluation {
        method: steering.method.name(),
        apply_to: options.apply_to.name(),
        n: x.rows,
        n_train: split.0.len(),
        n_test: split.1.len(),
        n_steered: mask.iter().filter(|&&s| s).count(),
        concept_chance: majority_share(&concept, &split.1),
        concept_accuracy_before: concept_before,
        concept_accuracy_after: concept_after,
        task_chance: None,
        task_accuracy_before: None,
        task_accuracy_after: None,
        tpr_gap_rms_before: None,
        tpr_gap_rms_after: None,
        tpr_gap_before: None,
        tpr_gap_after: None,
        steered_x: Matrix::zeros(0, 0),
    };
    if let Some(y) = y {
        let classes = y.iter().max().map_or(0, |m| m + 1).max(2);
        let (before, predicted_before) = probe(x, y, classes, split, &options.probe)?;
        let (after, predicted_after) = probe(&steered.x, y, classes, split, &options.probe)?;
        let measured = correctly_predicted_classes(y, &predicted_after, &split.1);
        let gap_before = tpr_gap(y, &predicted_before, z, &split.1, &measured);
        let gap_after = tpr_gap(y, &predicted_after, z, &split.1, &measured);
        evaluation.task_chance = Some(majority_share(y, &split.1));
        evaluation.task_accuracy_before = Some(before);
        evaluation.task_accuracy_after = Some(after);
        evaluation.tpr_gap_rms_before = Some(gap_before.rms);
        evaluation.tpr_gap_rms_after = Some(gap_after.rms);
        evaluation.tpr_gap_before = Some(gap_before);
        evaluation.tpr_gap_after = Some(gap_after);
    }
    evaluation.steered_x = steered.x;
    Ok(evaluation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpr_gap_by_hand() {
        // Class 0: z0 rows 0,1 (both right) vs z1 rows 2,3 (one right) → gap −0.5.
        // Class 1: z0 row 4 (wrong) vs z1 row 5 (right) → gap 1.
        // Class 2: only z0 → skipped.
        let truth = [0, 0, 0, 0, 1, 1, 2];
        let predicted = [0, 0, 0, 1, 0, 1, 2];
        let z = [0, 0, 1, 1, 0, 1, 0];
        let rows: Vec<usize> = (0..7).collect();
        let classes = correctly_predicted_classes(&truth, &predicted, &rows);
        assert_eq!(classes, vec![0, 1, 2]);
        let g = tpr_gap(&truth, &predicted, &z, &rows, &classes);
        assert_eq!(g.classes.len(), 2);
        assert_eq!(g.classes[0].gap, -0.5);
        assert_eq!(g.classes[1].gap, 1.0);
        assert_eq!(g.skipped, vec![2]);
        assert!((g.rms - ((0.25 + 1.0) / 2.0f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn majority_share_is_the_largest_class_fraction() {
        assert_eq!(majority_share(&[0, 1, 1, 2], &[0, 1, 2, 3]), 0.5);
    }
}
