//! Exact k-nearest neighbours by inner product, streamed by blocks (memory O(n·k) plus one
//! 512 × 512 block of inner products per task, never an n×n matrix), and the reference's
//! neighbourhood metrics: `mutual_knn`, `cycle_knn`, `lcs_knn`, `edit_distance_knn`.
//!
//! The reference (`metrics.compute_nearest_neighbors`) sorts each row of `x xᵀ`, with the
//! diagonal set to −1e8, by `argsort(descending=True)` and keeps the first k: self is never
//! a neighbour while k < n.
//!
//! **The order defined here** is by the inner product summed in f64 from the f32 features
//! (each product is exact in f64; [`row_dot`]), largest first; **ties** (equal inner
//! products) go to the lower row index, so results are deterministic on every platform.
//! torch's unstable argsort orders ties as it pleases, and a float32 reference may also
//! order two neighbours whose inner products differ by less than ~1e-7 differently.
//!
//! **How it is fast and still exact.** Candidates are scored with a blocked f32 matrix
//! product (`matrixmultiply`, SIMD): each pair of row blocks once, since `x xᵀ` is
//! symmetric, the pairs spread over the cores. Each row keeps its best `2k + 16` by that
//! score. The f32 score of a pair is within δ = γ_{d+2}·‖xᵢ‖·max‖xⱼ‖ of the
//! f64 one (γ_m = m·u/(1 − m·u), u = 2⁻²⁴: the standard bound for a dot product in any
//! summation order), so every true top-k member scores at least τ − 2δ in f32, where τ is
//! the k-th best f32 score. Those candidates are re-scored in f64 and ranked exactly. A row
//! whose kept list does not reach below τ − 2δ (a crowd of near-ties) is scanned again
//! exactly in f64 — slower, never wrong.

use super::error::AlignError;
use crate::core::matrix::Matrix;
use crate::core::par;
use std::sync::Mutex;

/// Rows per block: the inner products are computed block pair by block pair, each pair
/// once (the matrix is symmetric), so one pair is a `BLOCK × BLOCK` f32 product.
const BLOCK: usize = 512;

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

/// The exact scan's bounded top list: descending f64 score, ties in arrival order (the scan
/// offers rows in ascending index, so ties keep the lower index first).
struct Top {
    cap: usize,
    vals: Vec<f64>,
    idx: Vec<u32>,
}

impl Top {
    fn new(cap: usize) -> Top {
        Top {
            cap,
            vals: Vec::with_capacity(cap + 1),
            idx: Vec::with_capacity(cap + 1),
        }
    }

    #[inline]
    fn push(&mut self, v: f64, j: u32) {
        let len = self.vals.len();
        if len == self.cap && v <= self.vals[len - 1] {
            return;
        }
        // first position whose value is smaller than v (strictly): equal values stay first
        let pos = self.vals.partition_point(|&x| x >= v);
        if len == self.cap {
            self.vals.pop();
            self.idx.pop();
        }
        self.vals.insert(pos, v);
        self.idx.insert(pos, j);
    }
}

/// γ_m = m·u/(1 − m·u) for u = 2⁻²⁴, with m = d + 2 (products, sums, and one spare rounding):
/// |f32 dot − exact dot| ≤ γ·Σ|aᵢbᵢ| ≤ γ·‖a‖·‖b‖ in any summation order, FMA or not.
pub(crate) fn f32_dot_error_factor(d: usize) -> f64 {
    let mu = (d as f64 + 2.0) * f64::from(f32::EPSILON) / 2.0;
    // the f64 sums we compare against err by ~d·2⁻⁵³ relative: covered by the 1e-9 slack
    mu / (1.0 - mu) * (1.0 + 1e-9)
}

/// Ranks f32 candidates exactly: what both the CPU and the GPU searches end with. Built once
/// per matrix (it checks `k` and the values, and holds the row norms the error bound needs).
pub(crate) struct ExactRanker<'a> {
    x: &'a Matrix,
    k: usize,
    norms: Vec<f64>,
    max_norm: f64,
    gamma: f64,
    /// Scores so large that f32 products could overflow: rank every row by the f64 scan.
    overflow_risk: bool,
}

impl<'a> ExactRanker<'a> {
    /// Errors unless 1 ≤ k < n and every value is finite.
    pub(crate) fn new(x: &'a Matrix, k: usize) -> Result<ExactRanker<'a>, AlignError> {
        check_k(k, x.rows)?;
        let d = x.cols;
        if let Some(pos) = x.data.iter().position(|v| !v.is_finite()) {
            return Err(AlignError::NonFinite {
                arg: "x",
                row: pos / d.max(1),
                col: pos % d.max(1),
                value: x.data[pos],
            });
        }
        let norms: Vec<f64> = x.iter_rows().map(|r| dot64(r, r).sqrt()).collect();
        let max_norm = norms.iter().fold(0.0f64, |m, &v| m.max(v));
        Ok(ExactRanker {
            x,
            k,
            overflow_risk: max_norm * max_norm > 1e30,
            norms,
            max_norm,
            gamma: f32_dot_error_factor(d),
        })
    }

    /// How many f32 candidates each row should keep.
    pub(crate) fn keep(&self) -> usize {
        (2 * self.k + 16).min(self.x.rows - 1)
    }

    /// Writes row `i`'s k neighbours to `out` from its best f32 candidates (`vals`, sorted
    /// descending, with their row indices `idx`; every score left out is at most the last),
    /// or by the exact f64 scan when the candidates may not hold every true neighbour.
    /// Returns whether it had to scan.
    pub(crate) fn finish_row(&self, i: usize, vals: &[f32], idx: &[u32], out: &mut [u32]) -> bool {
        let (x, k, n) = (self.x, self.k, self.x.rows);
        let qrow = x.row(i);
        let margin = 2.0 * self.gamma * self.norms[i] * self.max_norm;
        let threshold = vals
            .get(k - 1)
            .map_or(f64::INFINITY, |&v| f64::from(v) - margin);
        let complete = vals.len() == n - 1;
        let reaches_below = vals.last().is_some_and(|&v| f64::from(v) < threshold);
        if self.overflow_risk || vals.len() < k || (!complete && !reaches_below) {
            let mut exact = Top::new(k);
            for j in (0..n).filter(|&j| j != i) {
                exact.push(dot64(qrow, x.row(j)), j as u32);
            }
            out.copy_from_slice(&exact.idx);
            return true;
        }
        let mut cands: Vec<(f64, u32)> = vals
            .iter()
            .zip(idx)
            .filter(|(&s, _)| f64::from(s) >= threshold)
            .map(|(_, &j)| (dot64(qrow, x.row(j as usize)), j))
            .collect();
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (o, c) in out.iter_mut().zip(&cands) {
            *o = c.1;
        }
        false
    }
}

/// The best f32 candidates of a block of rows: for each row a list of at most `cap` scores,
/// sorted descending, and `floor`, the score a newcomer must beat once the list is full.
/// Every score offered and not kept is at most the row's final last score, whatever order
/// the scores arrive in — all that [`ExactRanker::finish_row`] needs.
struct Candidates {
    cap: usize,
    len: Vec<usize>,
    floor: Vec<f32>,
    vals: Vec<f32>,
    idx: Vec<u32>,
}

/// Sorts scores descending (ties by index), carrying their indices along.
fn sort_descending(vals: &mut [f32], idx: &mut [u32]) {
    let mut pairs: Vec<(f32, u32)> = vals.iter().copied().zip(idx.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for ((v, j), (pv, pj)) in vals.iter_mut().zip(idx.iter_mut()).zip(pairs) {
        *v = pv;
        *j = pj;
    }
}

impl Candidates {
    fn new(rows: usize, cap: usize) -> Candidates {
        Candidates::with_floors(vec![f32::NEG_INFINITY; rows], cap)
    }

    /// Empty lists that refuse scores at or below `floor` (another list's floors: scores it
    /// would refuse anyway, so the property above still holds once this one is merged in).
    fn with_floors(floor: Vec<f32>, cap: usize) -> Candidates {
        let rows = floor.len();
        Candidates {
            cap,
            len: vec![0; rows],
            floor,
            vals: vec![0.0; rows * cap],
            idx: vec![0; rows * cap],
        }
    }

    #[inline(always)]
    fn offer(&mut self, r: usize, v: f32, j: u32) {
        if v > self.floor[r] {
            self.insert(r, v, j);
        }
    }

    /// A score above the floor: appended while the list fills (sorted once, when full),
    /// then put in its place, dropping the last.
    #[inline(never)]
    fn insert(&mut self, r: usize, v: f32, j: u32) {
        let cap = self.cap;
        let len = self.len[r];
        let vals = &mut self.vals[r * cap..(r + 1) * cap];
        let idx = &mut self.idx[r * cap..(r + 1) * cap];
        if len < cap {
            vals[len] = v;
            idx[len] = j;
            self.len[r] = len + 1;
            if len + 1 == cap {
                sort_descending(vals, idx);
                self.floor[r] = vals[cap - 1];
            }
            return;
        }
        let pos = vals.partition_point(|&x| x >= v);
        vals.copy_within(pos..cap - 1, pos + 1);
        idx.copy_within(pos..cap - 1, pos + 1);
        vals[pos] = v;
        idx[pos] = j;
        self.floor[r] = vals[cap - 1];
    }

    /// Offers every kept score of `other` (the same rows) to these lists.
    fn merge(&mut self, other: &Candidates) {
        for r in 0..self.len.len() {
            let (vals, idx) = other.row(r);
            for (&v, &j) in vals.iter().zip(idx) {
                self.offer(r, v, j);
            }
        }
    }

    /// Row `r`'s kept scores and indices, in no particular order until the list is full.
    fn row(&self, r: usize) -> (&[f32], &[u32]) {
        let span = r * self.cap..r * self.cap + self.len[r];
        (&self.vals[span.clone()], &self.idx[span])
    }

    /// Row `r`'s kept scores, sorted descending, with their indices.
    fn sorted_row(&mut self, r: usize) -> (&[f32], &[u32]) {
        let span = r * self.cap..r * self.cap + self.len[r];
        sort_descending(&mut self.vals[span.clone()], &mut self.idx[span.clone()]);
        (&self.vals[span.clone()], &self.idx[span])
    }
}

/// The `k` rows with the largest inner product with each row (self excluded), most similar
/// first, ties by lower index. Rows are compared as given: pass L2-normalised rows for
/// cosine neighbours. Errors unless 1 ≤ k < n and every value is finite.
pub fn nearest_neighbors(x: &Matrix, k: usize) -> Result<Knn, AlignError> {
    let ranker = ExactRanker::new(x, k)?;
    let n = x.rows;
    let keep = ranker.keep();
    let blocks = n.div_ceil(BLOCK);
    let span = |b: usize| (b * BLOCK, BLOCK.min(n - b * BLOCK));
    let lists: Vec<Mutex<Candidates>> = (0..blocks)
        .map(|b| Mutex::new(Candidates::new(span(b).1, keep)))
        .collect();
    let pairs: Vec<(usize, usize)> = (0..blocks)
        .flat_map(|p| (p..blocks).map(move |q| (p, q)))
        .collect();
    // A poisoned lock only means another task panicked; its lists are still well formed.
    let lock = |b: usize| lists[b].lock().unwrap_or_else(|e| e.into_inner());
    par::for_each(&pairs, |&(p, q)| {
        let ((p0, prows), (q0, qrows)) = (span(p), span(q));
        let mut sims = vec![0.0f32; prows * qrows];
        f32_products(x, p0, prows, q0, qrows, &mut sims);
        // Each pair selects into lists of its own, then merges them under short locks, so
        // tasks sharing a block do not queue behind each other's scans.
        // Seeded with the block's current floors: most scores are refused at a glance.
        let mut for_p = Candidates::with_floors(lock(p).floor.clone(), keep);
        for (r, line) in sims.chunks_exact(qrows).enumerate() {
            for (c, &s) in line.iter().enumerate() {
                if p != q || r != c {
                    for_p.offer(r, s, (q0 + c) as u32);
                }
            }
        }
        lock(p).merge(&for_p);
        if p != q {
            let mut for_q = Candidates::with_floors(lock(q).floor.clone(), keep);
            for (r, line) in sims.chunks_exact(qrows).enumerate() {
                for (c, &s) in line.iter().enumerate() {
                    for_q.offer(c, s, (p0 + r) as u32);
                }
            }
            lock(q).merge(&for_q);
        }
    });
    let mut indices = vec![0u32; n * k];
    par::for_each_chunk_mut(&mut indices, BLOCK * k, |b, out| {
        let mut block = lock(b);
        for (r, dst) in out.chunks_exact_mut(k).enumerate() {
            let (vals, idx) = block.sorted_row(r);
            ranker.finish_row(b * BLOCK + r, vals, idx, dst);
        }
    });
    Ok(Knn { n, k, indices })
}

/// `out (rows × cols) = x[q0..q0+rows] · x[c0..c0+cols]ᵀ` in f32.
fn f32_products(x: &Matrix, q0: usize, rows: usize, c0: usize, cols: usize, out: &mut [f32]) {
    let d = x.cols;
    let queries = &x.data[q0 * d..(q0 + rows) * d];
    let candidates = &x.data[c0 * d..(c0 + cols) * d];
    assert_eq!(out.len(), rows * cols);
    // SAFETY: `queries` is rows×d and `candidates` cols×d, both row-major (row stride d,
    // column stride 1); the candidates are read as their d×cols transpose (row stride 1,
    // column stride d); `out` is rows×cols row-major and was checked to have that length.
    // All three slices are live, distinct borrows for the whole call.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            d,
            cols,
            1.0,
            queries.as_ptr(),
            d as isize,
            1,
            candidates.as_ptr(),
            1,
            d as isize,
            0.0,
            out.as_mut_ptr(),
            cols as isize,
            1,
        );
    }
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

    /// The definition itself: every other row scored in f64, sorted by (score desc, index).
    fn brute_force(x: &Matrix, k: usize) -> Vec<u32> {
        let n = x.rows;
        let mut out = Vec::with_capacity(n * k);
        for i in 0..n {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (dot64(x.row(i), x.row(j)), j))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            out.extend(all[..k].iter().map(|p| p.1 as u32));
        }
        out
    }

    #[test]
    fn brute_force_agrees_across_blocks() {
        // more rows than one query block and one candidate block, pseudo-random data
        let n = 2 * BLOCK + 37;
        let x = crate::core::align::test_matrix(n, 5, 12345);
        let knn = nearest_neighbors(&x, 7).unwrap();
        assert_eq!(knn.indices, brute_force(&x, 7));
    }

    #[test]
    fn crowds_of_exact_ties_are_ranked_by_index() {
        // entries in {-1, 0, 1}: most inner products tie, so the f32 lists cannot reach
        // below the margin and rows fall back to the exact scan
        let n = BLOCK + 90;
        let data: Vec<f32> = (0..n * 3)
            .map(|i| ((i * 7919 + i / 3) % 3) as f32 - 1.0)
            .collect();
        let x = Matrix::new(n, 3, data, "t").unwrap();
        for k in [1, 5, 40] {
            assert_eq!(
                nearest_neighbors(&x, k).unwrap().indices,
                brute_force(&x, k)
            );
        }
    }

    #[test]
    fn near_ties_below_f32_resolution_follow_the_f64_order() {
        // rows whose inner products with row 0 differ by ~1e-9, far below f32's 6e-8 steps
        let n = 64;
        let mut data = Vec::with_capacity(n * 4);
        for i in 0..n {
            let t = 1e-9f64 * i as f64 * if i % 2 == 0 { 1.0 } else { -1.0 };
            data.extend_from_slice(&[1.0f32, (0.25 + t) as f32, 0.5, (i as f32) * 1e-4]);
        }
        let x = Matrix::new(n, 4, data, "t").unwrap();
        for k in [1, 3, 10] {
            assert_eq!(
                nearest_neighbors(&x, k).unwrap().indices,
                brute_force(&x, k)
            );
        }
    }

    #[test]
    fn non_finite_values_are_refused_by_position() {
        let x = m(&[&[1.0, 0.0], &[0.0, f32::NAN], &[1.0, 1.0]]);
        assert!(matches!(
            nearest_neighbors(&x, 1),
            Err(AlignError::NonFinite { row: 1, col: 1, .. })
        ));
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
