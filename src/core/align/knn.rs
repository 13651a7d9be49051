//! Exact k-nearest neighbours by inner product, streamed by blocks (memory O(n·k), never an
//! n×n matrix), and the reference's neighbourhood metrics: `mutual_knn`, `cycle_knn`,
//! `lcs_knn`, `edit_distance_knn`.
//!
//! The reference (`metrics.compute_nearest_neighbors`) sorts each row of `x xᵀ`, with the
//! diagonal set to −1e8, by `argsort(descending=True)` and keeps the first k: self is never
//! a neighbour while k < n. Inner products here are summed in f64 from the f32 features, in
//! a fixed order. **Ties** (equal inner products) are broken by the lower row index first,
//! so results are deterministic on every platform; torch's unstable argsort orders ties as
//! it pleases, and a float32 reference may also order two neighbours whose inner products
//! differ by less than ~1e-7 differently from this exact order.

use super::error::AlignError;
use crate::core::matrix::Matrix;

/// Rows of queries per block, and of candidates per block.
const QUERY_BLOCK: usize = 32;
const CANDIDATE_BLOCK: usize = 256;

/// The k nearest neighbours of every row, most similar first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knn {
    pub n: usize,
    pub k: usize,
    /// `n × k` row indices, row after row.
    pub indices: Vec<u32>,
}

impl Knn {
    /// The neighbours of row `i`, most similar first.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }
}

/// Checks 1 ≤ k < n.
pub fn check_k(k: usize, n: usize) -> Result<(), AlignError> {
    if k == 0 || k >= n {
        return Err(AlignError::K {
            k,
            expected: format!(
                "1 <= k < n, the number of rows ({n}), since a row is never its own neighbour"
            ),
        });
    }
    if n > u32::MAX as usize {
        return Err(AlignError::Option {
            name: "n",
            value: n.to_string(),
            expected: format!("at most {} rows", u32::MAX),
        });
    }
    Ok(())
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, ra) = a.split_at(a.len() - a.len() % 4);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(4).zip(cb.chunks_exact(4)) {
        for ((acc, x), y) in acc.iter_mut().zip(x).zip(y) {
            *acc += *x as f64 * *y as f64;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += *x as f64 * *y as f64;
    }
    s
}

/// Inner product of two rows, as the metrics use it (f64 sum of f32 products).
pub(crate) fn row_dot(a: &[f32], b: &[f32]) -> f64 {
    dot64(a, b)
}

/// A sorted top-k list: descending value, ties in arrival (ascending index) order.
struct Top {
    vals: Vec<f64>,
    idx: Vec<u32>,
}

impl Top {
    fn push(&mut self, k: usize, v: f64, j: u32) {
        let len = self.vals.len();
        if len == k && v <= self.vals[len - 1] {
            return;
        }
        // first position whose value is smaller than v (strictly): equal values stay first
        let pos = self.vals.partition_point(|&x| x >= v);
        if len == k {
            self.vals.pop();
            self.idx.pop();
        }
        self.vals.insert(pos, v);
        self.idx.insert(pos, j);
    }
}

/// The `k` rows with the largest inner product with each row (self excluded), most similar
/// first, ties by lower index. Rows are compared as given: pass L2-normalised rows for
/// cosine neighbours. Errors unless 1 ≤ k < n.
pub fn nearest_neighbors(x: &Matrix, k: usize) -> Result<Knn, AlignError> {
    let n = x.rows;
    check_k(k, n)?;
    let mut indices = vec![0u32; n * k];
    let mut tops: Vec<Top> = Vec::with_capacity(QUERY_BLOCK);
    for q0 in (0..n).step_by(QUERY_BLOCK) {
        let q1 = (q0 + QUERY_BLOCK).min(n);
        tops.clear();
        for _ in q0..q1 {
            tops.push(Top {
                vals: Vec::with_capacity(k + 1),
                idx: Vec::with_capacity(k + 1),
            });
        }
        for c0 in (0..n).step_by(CANDIDATE_BLOCK) {
            let c1 = (c0 + CANDIDATE_BLOCK).min(n);
            for (qi, top) in (q0..q1).zip(tops.iter_mut()) {
                let qrow = x.row(qi);
                for j in c0..c1 {
                    if j != qi {
                        top.push(k, dot64(qrow, x.row(j)), j as u32);
                    }
                }
            }
        }
        for (qi, top) in (q0..q1).zip(&tops) {
            indices[qi * k..(qi + 1) * k].copy_from_slice(&top.idx);
        }
    }
    Ok(Knn { n, k, indices })
}

fn same_shape(a: &Knn, b: &Knn) -> Result<(), AlignError> {
    if a.n != b.n || a.k != b.k || a.indices.len() != a.n * a.k || b.indices.len() != b.n * b.k {
        return Err(AlignError::Option {
            name: "knn",
            value: format!("{}×{} and {}×{}", a.n, a.k, b.n, b.k),
            expected: "two neighbour tables of the same n and k".into(),
        });
    }
    Ok(())
}

/// Mean over rows of |N_A(i) ∩ N_B(i)| / k (`AlignmentMetrics.mutual_knn`).
pub fn mutual_knn(a: &Knn, b: &Knn) -> Result<f64, AlignError> {
    same_shape(a, b)?;
    let mut stamp = vec![u32::MAX; a.n];
    let mut total = 0u64;
    for i in 0..a.n {
        for &j in a.row(i) {
            stamp[j as usize] = i as u32;
        }
        total += b
            .row(i)
            .iter()
            .filter(|&&j| stamp[j as usize] == i as u32)
            .count() as u64;
    }
    Ok(total as f64 / (a.n as f64 * a.k as f64))
}

/// Fraction of rows i such that some B-neighbour j of i has i among its A-neighbours
/// (`AlignmentMetrics.cycle_knn`: `compute_knn_accuracy(knn_A[knn_B])`). Not symmetric.
pub fn cycle_knn(a: &Knn, b: &Knn) -> Result<f64, AlignError> {
    same_shape(a, b)?;
    let mut sorted = a.indices.clone();
    for row in sorted.chunks_exact_mut(a.k) {
        row.sort_unstable();
    }
    let hits = (0..a.n)
        .filter(|&i| {
            b.row(i).iter().any(|&j| {
                let j = j as usize;
                sorted[j * a.k..(j + 1) * a.k]
                    .binary_search(&(i as u32))
                    .is_ok()
            })
        })
        .count();
    Ok(hits as f64 / a.n as f64)
}

/// Length of the longest common subsequence (classic dynamic programme).
pub fn lcs_length(x: &[u32], y: &[u32]) -> usize {
    let mut prev = vec![0usize; y.len() + 1];
    let mut cur = vec![0usize; y.len() + 1];
    for &xi in x {
        for (j, &yj) in y.iter().enumerate() {
            cur[j + 1] = if xi == yj {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[y.len()]
}

/// Levenshtein distance (insertions, deletions, substitutions of cost 1), as
/// `torchaudio.functional.edit_distance`.
pub fn edit_distance(x: &[u32], y: &[u32]) -> usize {
    let mut old: Vec<usize> = (0..=y.len()).collect();
    let mut new = vec![0usize; y.len() + 1];
    for (i, &xi) in x.iter().enumerate() {
        new[0] = i + 1;
        for (j, &yj) in y.iter().enumerate() {
            new[j + 1] = if xi == yj {
                old[j]
            } else {
                (old[j] + 1).min(new[j] + 1).min(old[j + 1] + 1)
            };
        }
        std::mem::swap(&mut old, &mut new);
    }
    old[y.len()]
}

/// Mean over rows of the LCS length of the two ordered neighbour lists
/// (`AlignmentMetrics.lcs_knn`; a length in [0, k], not divided by k, as in the reference).
pub fn lcs_knn(a: &Knn, b: &Knn) -> Result<f64, AlignError> {
    same_shape(a, b)?;
    let total: usize = (0..a.n).map(|i| lcs_length(a.row(i), b.row(i))).sum();
    Ok(total as f64 / a.n as f64)
}

/// 1 − mean over rows of the edit distance of the two ordered neighbour lists / k
/// (`AlignmentMetrics.edit_distance_knn`).
pub fn edit_distance_knn(a: &Knn, b: &Knn) -> Result<f64, AlignError> {
    same_shape(a, b)?;
    let total: usize = (0..a.n).map(|i| edit_distance(a.row(i), b.row(i))).sum();
    Ok(1.0 - total as f64 / a.n as f64 / a.k as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a line: neighbours by inner product of the raw rows.
    fn m(rows: &[&[f32]]) -> Matrix {
        let cols = rows[0].len();
        Matrix::new(rows.len(), cols, rows.concat(), "t").unwrap()
    }

    #[test]
    fn neighbours_exclude_self_and_break_ties_by_index() {
        // unit vectors at angles 0, 10, 20, 30 degrees, and a copy of row 1
        let deg = |a: f32| {
            let r = a.to_radians();
            [r.cos(), r.sin()]
        };
        let rows = [deg(0.0), deg(10.0), deg(20.0), deg(30.0), deg(10.0)];
        let x = m(&rows.iter().map(|r| &r[..]).collect::<Vec<_>>());
        let knn = nearest_neighbors(&x, 2).unwrap();
        assert_eq!(knn.row(0), &[1, 4]); // tie between 1 and 4: lower index first
        assert_eq!(knn.row(1)[0], 4); // its copy first (inner product 1)
        assert_eq!(knn.row(3), &[2, 1]); // 1 and 4 are equal: lower index first
        assert_eq!(knn.row(4)[0], 1);
    }

    #[test]
    fn brute_force_agrees_across_blocks() {
        // more rows than one block, pseudo-random data
        let n = 300;
        let x = crate::core::align::test_matrix(n, 5, 12345);
        let knn = nearest_neighbors(&x, 7).unwrap();
        for i in [0, 31, 32, 255, 256, 299] {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (dot64(x.row(i), x.row(j)), j))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all[..7].iter().map(|p| p.1 as u32).collect();
            assert_eq!(knn.row(i), &want[..]);
        }
    }

    #[test]
    fn k_is_checked() {
        let x = m(&[&[1.0], &[2.0], &[3.0]]);
        assert!(matches!(
            nearest_neighbors(&x, 0),
            Err(AlignError::K { k: 0, .. })
        ));
        assert!(matches!(
            nearest_neighbors(&x, 3),
            Err(AlignError::K { k: 3, .. })
        ));
        assert!(nearest_neighbors(&x, 2).is_ok());
    }

    #[test]
    fn sequence_distances() {
        assert_eq!(lcs_length(&[1, 2, 3, 4], &[2, 4, 3]), 2);
        assert_eq!(lcs_length(&[], &[1]), 0);
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 3, 4]), 2);
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(edit_distance(&[5, 6], &[]), 2);
    }

    #[test]
    fn metrics_on_hand_made_tables() {
        let a = Knn {
            n: 3,
            k: 2,
            indices: vec![1, 2, 0, 2, 0, 1],
        };
        let b = Knn {
            n: 3,
            k: 2,
            indices: vec![2, 1, 2, 0, 1, 0],
        };
        // overlaps: {1,2}∩{2,1}=2, {0,2}∩{2,0}=2, {0,1}∩{1,0}=2
        assert_eq!(mutual_knn(&a, &b).unwrap(), 1.0);
        assert_eq!(cycle_knn(&a, &b).unwrap(), 1.0);
        // LCS of reversed pairs is 1 each; edit distance 2 each
        assert_eq!(lcs_knn(&a, &b).unwrap(), 1.0);
        assert_eq!(edit_distance_knn(&a, &b).unwrap(), 0.0);
        let c = Knn {
            n: 3,
            k: 1,
            indices: vec![1, 0, 0],
        };
        let d = Knn {
            n: 3,
            k: 1,
            indices: vec![2, 2, 1],
        };
        assert!((mutual_knn(&c, &d).unwrap() - 0.0).abs() < 1e-12);
        // row 0: B-neighbour 2, A-neighbours of 2 = {0} ∋ 0 → hit; row 1: 2 → {0} no;
        // row 2: 1 → {0} no
        assert!((cycle_knn(&c, &d).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!(mutual_knn(&a, &c).is_err());
    }
}
