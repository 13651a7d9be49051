//! Representation alignment, CPU reference: the metrics of Huh, Cheung, Wang and Isola,
//! *The Platonic Representation Hypothesis* (ICML 2024), with the definitions and defaults
//! of their code (`metrics.py` and `measure_alignment.py` in minyoungg/platonic-rep):
//! `mutual_knn` (k = 10), `cycle_knn`, `lcs_knn`, `edit_distance_knn`, `cka`,
//! `unbiased_cka`, `cknna` and `svcca` (cca_dim = 10), after the reference's feature
//! preparation (clamp outliers at the 0.95 quantile of |x|, then L2-normalise rows), which
//! is on by default. Rows of X and Y are paired: row i of each describes item i.
//!
//! `tests/align_conformance.rs` checks every metric against fixtures made by running the
//! reference code itself (`scripts/fixtures/make_align_fixtures.py`).
//!
//! Memory (n rows, d features): the kNN metrics (`mutual_knn`, `cycle_knn`, `lcs_knn`,
//! `edit_distance_knn`, `cknna`) stream inner products by blocks and keep O(n·k), so
//! n = 50,000 at d = 768 never builds an n×n matrix. `cka` and `unbiased_cka` need
//! min(max(d_x, d_y)², 2n²) f64 entries and `svcca` min(n, d)², each refused beyond
//! [`MAX_QUADRATIC_ENTRIES`] (2²⁵, 256 MiB) with [`AlignError::TooLarge`].
//!
//! - `prepare.rs` — input checks and the feature preparation ([`Prepare`]).
//! - `knn.rs` — exact k-nearest neighbours ([`nearest_neighbors`], ties by lower index) and
//!   the four neighbourhood metrics.
//! - `kernel.rs` — `cka`, `unbiased_cka`, `cknna` (linear kernels, HSIC).
//! - `svcca.rs` — `svcca` (exact SVD where the reference uses a randomised one; see there).
//! - `chance.rs` — chance levels: a metric's mean when the rows are paired at random.
//! - `error.rs` — [`AlignError`], one variant per kind of bad input.

mod chance;
mod error;
mod kernel;
mod knn;
mod prepare;
mod svcca;

use serde::Serialize;

pub use chance::{cycle_knn_chance, expected_lis, lcs_knn_chance, LCS_CHANCE_MAX_K};
pub use error::AlignError;
pub use kernel::{cka, cknna, unbiased_cka, MAX_QUADRATIC_ENTRIES};
pub use knn::{
    check_k, cycle_knn, edit_distance, edit_distance_knn, lcs_knn, lcs_length, mutual_knn,
    nearest_neighbors, Knn,
};
pub(crate) use knn::{f32_dot_error_factor, row_dot, ExactRanker};
pub use prepare::{
    normalize_rows, outlier_threshold, prepare, validate, Prepare, QuantileMode,
    DEFAULT_OUTLIER_QUANTILE,
};
pub use svcca::{svcca, DEFAULT_CCA_DIM};

use crate::core::matrix::Matrix;

/// The reference's default number of neighbours (`--topk 10`).
pub const DEFAULT_K: usize = 10;

/// One of the reference's metrics (`AlignmentMetrics.SUPPORTED_METRICS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    MutualKnn,
    CycleKnn,
    LcsKnn,
    EditDistanceKnn,
    Cka,
    UnbiasedCka,
    Cknna,
    Svcca,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::MutualKnn,
        Metric::CycleKnn,
        Metric::LcsKnn,
        Metric::EditDistanceKnn,
        Metric::Cka,
        Metric::UnbiasedCka,
        Metric::Cknna,
        Metric::Svcca,
    ];

    /// The reference's name (`"mutual_knn"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Metric::MutualKnn => "mutual_knn",
            Metric::CycleKnn => "cycle_knn",
            Metric::LcsKnn => "lcs_knn",
            Metric::EditDistanceKnn => "edit_distance_knn",
            Metric::Cka => "cka",
            Metric::UnbiasedCka => "unbiased_cka",
            Metric::Cknna => "cknna",
            Metric::Svcca => "svcca",
        }
    }

    pub fn parse(name: &str) -> Result<Metric, AlignError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| AlignError::UnknownMetric {
                name: name.to_string(),
                expected: Metric::ALL.map(Metric::name).join(", "),
            })
    }

    /// Whether the metric takes `k` (the reference passes `topk` to every metric whose name
    /// contains "knn", `cknna` included).
    pub fn uses_k(self) -> bool {
        !matches!(self, Metric::Cka | Metric::UnbiasedCka | Metric::Svcca)
    }

    /// Whether the metric compares neighbour lists of L2-normalised rows (the four
    /// neighbourhood metrics; `cknna` takes its neighbours from the kernel as given).
    fn cosine_knn(self) -> bool {
        matches!(
            self,
            Metric::MutualKnn | Metric::CycleKnn | Metric::LcsKnn | Metric::EditDistanceKnn
        )
    }
}

impl std::str::FromStr for Metric {
    type Err = AlignError;
    fn from_str(s: &str) -> Result<Metric, AlignError> {
        Metric::parse(s)
    }
}

/// Options of [`align`]: the reference's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlignOptions {
    /// Neighbours per row for the kNN metrics and `cknna`.
    pub k: usize,
    /// Canonical directions for `svcca`.
    pub cca_dim: usize,
    /// Feature preparation applied to X and Y first.
    pub prepare: Prepare,
}

impl Default for AlignOptions {
    fn default() -> AlignOptions {
        AlignOptions {
            k: DEFAULT_K,
            cca_dim: DEFAULT_CCA_DIM,
            prepare: Prepare::default(),
        }
    }
}

/// One score. `k` is set for the metrics that use it, `cca_dim` for `svcca`, and `chance`
/// where it has a closed form: the expected score when the rows of y are paired with those
/// of x at random (`chance.rs`) — k/(n−1) for `mutual_knn`, exact for `cycle_knn`,
/// `lcs_knn` (k ≤ [`LCS_CHANCE_MAX_K`]) and `cka` (from the data), 0 for `unbiased_cka`;
/// `None` for `edit_distance_knn`, `cknna` and `svcca`.
/// A NaN score (possible for `cknna`, as in the reference) serialises as null.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alignment {
    pub metric: &'static str,
    pub score: f64,
    pub k: Option<usize>,
    pub chance: Option<f64>,
    pub cca_dim: Option<usize>,
    pub n: usize,
}

/// The chance level of `mutual_knn`: k/(n−1), the expected overlap of two independent
/// random k-subsets of the n−1 other rows.
pub fn mutual_knn_chance(k: usize, n: usize) -> f64 {
    k as f64 / (n as f64 - 1.0)
}

/// Measures one metric between paired rows of `x` and `y`.
pub fn align(
    x: &Matrix,
    y: &Matrix,
    metric: Metric,
    opts: &AlignOptions,
) -> Result<Alignment, AlignError> {
    let mut out = align_many(x, y, &[metric], opts)?;
    out.pop().ok_or(AlignError::Option {
        name: "metrics",
        value: "[]".into(),
        expected: "at least one metric".into(),
    })
}

/// Whether [`align_many_with`] runs its neighbour search for these metrics: for the four
/// neighbourhood metrics, and for cknna when the rows are normalised (its kernel's neighbours
/// are then the cosine ones).
pub fn searches_neighbours(metrics: &[Metric], opts: &AlignOptions) -> bool {
    metrics.iter().any(|m| m.cosine_knn())
        || (opts.prepare.normalize && metrics.contains(&Metric::Cknna))
}

/// The matrices [`align_many_with`] hands its neighbour search, x's then y's: the prepared
/// features with L2-normalised rows. For callers that must search before measuring (an
/// asynchronous GPU).
pub fn neighbour_inputs(
    x: &Matrix,
    y: &Matrix,
    opts: &AlignOptions,
) -> Result<(Matrix, Matrix), AlignError> {
    validate(x, "x")?;
    validate(y, "y")?;
    let mut a = prepare(x, "x", &opts.prepare)?;
    let mut b = prepare(y, "y", &opts.prepare)?;
    if !opts.prepare.normalize {
        normalize_rows(&mut a);
        normalize_rows(&mut b);
    }
    Ok((a, b))
}

/// Measures several metrics, preparing the features and finding neighbours once.
pub fn align_many(
    x: &Matrix,
    y: &Matrix,
    metrics: &[Metric],
    opts: &AlignOptions,
) -> Result<Vec<Alignment>, AlignError> {
    align_many_with(x, y, metrics, opts, nearest_neighbors)
}

/// [`align_many`] with the neighbour search supplied by the caller — the GPU's
/// (`crate::gpu::knn`) gives the same tables as [`nearest_neighbors`] — and errors of the
/// caller's type, so a GPU failure can travel beside the input errors. `neighbours` is
/// called only when [`searches_neighbours`], on x's matrix first and then y's (those of
/// [`neighbour_inputs`]).
pub fn align_many_with<E, F>(
    x: &Matrix,
    y: &Matrix,
    metrics: &[Metric],
    opts: &AlignOptions,
    mut neighbours: F,
) -> Result<Vec<Alignment>, E>
where
    E: From<AlignError>,
    F: FnMut(&Matrix, usize) -> Result<Knn, E>,
{
    validate(x, "x")?;
    validate(y, "y")?;
    if x.rows != y.rows {
        return Err(AlignError::RowMismatch {
            x_rows: x.rows,
            y_rows: y.rows,
        }
        .into());
    }
    let n = x.rows;
    let k = opts.k;
    if metrics.iter().any(|m| m.uses_k()) {
        knn::check_k(k, n)?;
    }
    if metrics.contains(&Metric::Cknna) && k < 2 {
        return Err(AlignError::K {
            k,
            expected: "k >= 2 for cknna (as the reference requires)".into(),
        }
        .into());
    }
    let a = prepare(x, "x", &opts.prepare)?;
    let b = prepare(y, "y", &opts.prepare)?;

    // Cosine neighbour tables, shared by the four neighbourhood metrics (and cknna).
    let cosine = if searches_neighbours(metrics, opts) {
        let (na, nb) = if opts.prepare.normalize {
            (neighbours(&a, k)?, neighbours(&b, k)?)
        } else {
            let (mut ua, mut ub) = (a.clone(), b.clone());
            normalize_rows(&mut ua);
            normalize_rows(&mut ub);
            (neighbours(&ua, k)?, neighbours(&ub, k)?)
        };
        Some((na, nb))
    } else {
        None
    };

    let mut out = Vec::with_capacity(metrics.len());
    for &metric in metrics {
        let mut chance = None;
        let score = match (metric, &cosine) {
            (Metric::MutualKnn, Some((na, nb))) => {
                chance = Some(mutual_knn_chance(k, n));
                mutual_knn(na, nb)?
            }
            (Metric::CycleKnn, Some((na, nb))) => {
                chance = Some(cycle_knn_chance(na));
                cycle_knn(na, nb)?
            }
            (Metric::LcsKnn, Some((na, nb))) => {
                chance = lcs_knn_chance(k, n);
                lcs_knn(na, nb)?
            }
            (Metric::EditDistanceKnn, Some((na, nb))) => edit_distance_knn(na, nb)?,
            (Metric::Cka, _) => {
                let (score, expected) = kernel::cka_and_chance(&a, &b)?;
                chance = (n >= 2).then_some(expected);
                score
            }
            (Metric::UnbiasedCka, _) => {
                chance = Some(0.0);
                unbiased_cka(&a, &b)?
            }
            (Metric::Cknna, _) => {
                // Neighbours by the kernel as given; after the default preparation the rows
                // are unit vectors, so these are the cosine tables again.
                match (&cosine, opts.prepare.normalize) {
                    (Some((na, nb)), true) => kernel::cknna_from(&a, &b, na, nb),
                    _ => cknna(&a, &b, k)?,
                }
            }
            (Metric::Svcca, _) => svcca(&a, &b, opts.cca_dim)?,
            // The tables exist whenever a neighbourhood metric is asked for.
            (_, None) => f64::NAN,
        };
        let uses_k = metric.uses_k();
        out.push(Alignment {
            metric: metric.name(),
            score,
            k: uses_k.then_some(k),
            chance,
            cca_dim: (metric == Metric::Svcca).then_some(opts.cca_dim),
            n,
        });
    }
    Ok(out)
}

/// Every permutation of 0..n (Heap's algorithm), for the module's unit tests.
#[cfg(test)]
pub(crate) fn permutations(n: usize) -> Vec<Vec<u32>> {
    fn heap(k: usize, a: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, a, out);
            a.swap(if k.is_multiple_of(2) { i } else { 0 }, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n as u32).collect(), &mut out);
    out
}

/// A deterministic n × d matrix of values in [−0.5, 0.5) for the module's unit tests.
#[cfg(test)]
pub(crate) fn test_matrix(n: usize, d: usize, seed: u64) -> Matrix {
    let mut s = seed;
    let data = (0..n * d)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Matrix {
        rows: n,
        cols: d,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::align::{permutations, test_matrix as pseudo};

    #[test]
    fn identical_inputs_align_perfectly() {
        let x = pseudo(60, 16, 1);
        let all = align_many(&x, &x, &Metric::ALL, &AlignOptions::default()).unwrap();
        let get = |name: &str| all.iter().find(|a| a.metric == name).unwrap().score;
        assert_eq!(get("mutual_knn"), 1.0);
        assert_eq!(get("cycle_knn"), 1.0);
        assert_eq!(get("lcs_knn"), 10.0);
        assert_eq!(get("edit_distance_knn"), 1.0);
        // the reference's + 1e-6 in the denominator keeps kernel scores just below 1
        for m in ["cka", "unbiased_cka", "cknna", "svcca"] {
            assert!((get(m) - 1.0).abs() < 1e-3, "{m}: {}", get(m));
        }
        let mk = &all[0];
        assert_eq!(mk.chance, Some(10.0 / 59.0));
        assert_eq!(mk.k, Some(10));
        assert_eq!(all[4].k, None);
    }

    #[test]
    fn chance_is_the_mean_over_every_pairing_of_the_rows() {
        // Each chance level given is the metric's exact mean over all 5040 ways of pairing
        // y's 7 rows with x's; the others are given none.
        let (n, k) = (7, 3);
        let x = pseudo(n, 5, 3);
        let y = pseudo(n, 4, 4);
        let opts = AlignOptions {
            k,
            cca_dim: 2,
            ..AlignOptions::default()
        };
        let given = align_many(&x, &y, &Metric::ALL, &opts).unwrap();
        let perms = permutations(n);
        let mut sums = vec![0.0; Metric::ALL.len()];
        for p in &perms {
            let data = p.iter().flat_map(|&r| y.row(r as usize).to_vec()).collect();
            let shuffled = Matrix {
                rows: n,
                cols: y.cols,
                data,
            };
            for (sum, s) in sums
                .iter_mut()
                .zip(align_many(&x, &shuffled, &Metric::ALL, &opts).unwrap())
            {
                *sum += s.score;
            }
        }
        for (s, sum) in given.iter().zip(&sums) {
            let mean = sum / perms.len() as f64;
            match s.metric {
                "edit_distance_knn" | "cknna" | "svcca" => {
                    assert_eq!(s.chance, None, "{}", s.metric)
                }
                _ => {
                    let chance = s.chance.unwrap();
                    assert!(
                        (chance - mean).abs() < 1e-9,
                        "{}: chance {chance}, mean {mean}",
                        s.metric
                    );
                }
            }
        }
        let get = |name: &str| given.iter().find(|s| s.metric == name).unwrap().chance;
        assert_eq!(get("mutual_knn"), Some(0.5));
        assert_eq!(get("unbiased_cka"), Some(0.0));
        // few rows: CKA of unrelated data is far from 0
        assert!(get("cka").unwrap() > 0.3, "{:?}", get("cka"));
    }

    #[test]
    fn unrelated_inputs_are_near_chance() {
        let x = pseudo(400, 32, 1);
        let y = pseudo(400, 32, 2);
        let a = align(&x, &y, Metric::MutualKnn, &AlignOptions::default()).unwrap();
        let chance = a.chance.unwrap();
        assert!((a.score - chance).abs() < 0.02, "{} vs {chance}", a.score);
    }

    #[test]
    fn bad_input_is_an_error_naming_the_argument() {
        let x = pseudo(20, 4, 1);
        let y = pseudo(21, 4, 2);
        let o = AlignOptions::default();
        let e = align(&x, &y, Metric::MutualKnn, &o).unwrap_err();
        assert_eq!(
            e,
            AlignError::RowMismatch {
                x_rows: 20,
                y_rows: 21
            }
        );
        let small = pseudo(10, 4, 1);
        let e = align(&small, &small, Metric::MutualKnn, &o).unwrap_err();
        assert!(
            e.to_string().starts_with("`k` is 10: expected 1 <= k < n"),
            "{e}"
        );
        let zero_k = AlignOptions { k: 0, ..o };
        assert!(matches!(
            align(&x, &x, Metric::LcsKnn, &zero_k),
            Err(AlignError::K { k: 0, .. })
        ));
        // k is not checked for metrics that do not use it
        assert!(align(&small, &small, Metric::Cka, &o).is_ok());
        let mut nan = x.clone();
        nan.data[5] = f32::INFINITY;
        let e = align(&x, &nan, Metric::Cka, &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`y` row 1, column 1 is inf: expected a finite number"
        );
        assert!(Metric::parse("bogus")
            .unwrap_err()
            .to_string()
            .contains("mutual_knn"));
    }
}
