//! Kernel metrics with linear (inner-product) kernels K = A Aᵀ, L = B Bᵀ:
//! `cka` (biased HSIC, `trace(K H L H)`), `unbiased_cka` (Song et al.'s unbiased HSIC, the
//! reference's `hsic_unbiased`) and `cknna` (unbiased HSIC restricted to mutual k-nearest
//! neighbours), each `hsic(K, L) / (sqrt(hsic(K, K) · hsic(L, L)) + 1e-6)` as the reference.
//!
//! Memory: `cka` and `unbiased_cka` never build more than a max(d_x, d_y)² feature
//! cross-product when n ≥ max(d_x, d_y) (HSIC as ‖Aᵀ H B‖²_F), else two n×n kernels; either
//! must stay under [`MAX_QUADRATIC_ENTRIES`]. `cknna` keeps only the neighbour tables,
//! O(n·k). Sums are in f64.

use super::error::AlignError;
use super::knn::{check_k, nearest_neighbors, row_dot, Knn};
use crate::core::matrix::Matrix;

/// The most f64 entries a quadratic buffer (n×n kernels, d×d cross-products, SVCCA's Gram
/// matrix) may hold: 2²⁵ entries, 256 MiB.
pub const MAX_QUADRATIC_ENTRIES: usize = 1 << 25;

const BLOCK: usize = 64;

/// Σ_r a_r b_rᵀ: the `d1 × d2` cross-product of two matrices given row by row (f64), in
/// blocks of rows transposed so that each update is a contiguous dot product.
pub(crate) fn cross_product<FA, FB>(n: usize, d1: usize, d2: usize, fa: FA, fb: FB) -> Vec<f64>
where
    FA: Fn(usize, &mut [f64]),
    FB: Fn(usize, &mut [f64]),
{
    let mut out = vec![0.0f64; d1 * d2];
    let mut ta = vec![0.0f64; d1 * BLOCK];
    let mut tb = vec![0.0f64; d2 * BLOCK];
    let mut ra = vec![0.0f64; d1];
    let mut rb = vec![0.0f64; d2];
    for r0 in (0..n).step_by(BLOCK) {
        let len = (n - r0).min(BLOCK);
        for r in 0..len {
            fa(r0 + r, &mut ra);
            fb(r0 + r, &mut rb);
            for (p, v) in ra.iter().enumerate() {
                ta[p * BLOCK + r] = *v;
            }
            for (q, v) in rb.iter().enumerate() {
                tb[q * BLOCK + r] = *v;
            }
        }
        for p in 0..d1 {
            let col_a = &ta[p * BLOCK..p * BLOCK + len];
            let out_row = &mut out[p * d2..(p + 1) * d2];
            for (q, o) in out_row.iter_mut().enumerate() {
                let col_b = &tb[q * BLOCK..q * BLOCK + len];
                *o += dot(col_a, col_b);
            }
        }
    }
    out
}

/// The `n × n` Gram matrix of rows given by `f` (f64), in blocks of rows.
pub(crate) fn gram_rows<F>(n: usize, d: usize, f: F) -> Vec<f64>
where
    F: Fn(usize, &mut [f64]),
{
    let mut out = vec![0.0f64; n * n];
    let mut bi = vec![0.0f64; d * BLOCK];
    let mut bj = vec![0.0f64; d * BLOCK];
    for i0 in (0..n).step_by(BLOCK) {
        let li = (n - i0).min(BLOCK);
        for r in 0..li {
            f(i0 + r, &mut bi[r * d..(r + 1) * d]);
        }
        for j0 in (0..=i0).step_by(BLOCK) {
            let lj = (n - j0).min(BLOCK);
            for r in 0..lj {
                f(j0 + r, &mut bj[r * d..(r + 1) * d]);
            }
            for a in 0..li {
                for b in 0..lj {
                    let (i, j) = (i0 + a, j0 + b);
                    if j > i {
                        continue;
                    }
                    let v = dot(&bi[a * d..(a + 1) * d], &bj[b * d..(b + 1) * d]);
                    out[i * n + j] = v;
                    out[j * n + i] = v;
                }
            }
        }
    }
    out
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let split = a.len() - a.len() % 4;
    for (x, y) in a[..split].chunks_exact(4).zip(b[..split].chunks_exact(4)) {
        for ((acc, x), y) in acc.iter_mut().zip(x).zip(y) {
            *acc += x * y;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in a[split..].iter().zip(&b[split..]) {
        s += x * y;
    }
    s
}

fn f64_row(m: &Matrix) -> impl Fn(usize, &mut [f64]) + '_ {
    move |r, out| {
        for (o, v) in out.iter_mut().zip(m.row(r)) {
            *o = *v as f64;
        }
    }
}

fn col_sums(m: &Matrix) -> Vec<f64> {
    let mut s = vec![0.0f64; m.cols];
    for row in m.iter_rows() {
        for (a, v) in s.iter_mut().zip(row) {
            *a += *v as f64;
        }
    }
    s
}

/// Checks the memory a quadratic buffer needs against [`MAX_QUADRATIC_ENTRIES`].
pub(crate) fn check_size(
    metric: &'static str,
    what: String,
    entries: u128,
    hint: &'static str,
) -> Result<(), AlignError> {
    if entries > MAX_QUADRATIC_ENTRIES as u128 {
        return Err(AlignError::TooLarge {
            metric,
            what,
            entries,
            limit: MAX_QUADRATIC_ENTRIES,
            hint,
        });
    }
    Ok(())
}

/// Which way the kernels are computed: feature cross-products or n×n kernels.
enum Route {
    Features,
    Kernels,
}

fn route(metric: &'static str, a: &Matrix, b: &Matrix) -> Result<Route, AlignError> {
    route_for(metric, a.rows, a.cols.max(b.cols))
}

/// The cheaper way for n rows of at most d features, or [`AlignError::TooLarge`].
fn route_for(metric: &'static str, n: usize, d: usize) -> Result<Route, AlignError> {
    let (n, d) = (n as u128, d as u128);
    if d <= n {
        check_size(
            metric,
            format!("{n}×{d} features (a {d}×{d} cross-product)"),
            d * d,
            "use fewer feature dimensions",
        )?;
        Ok(Route::Features)
    } else {
        check_size(
            metric,
            format!("{n} rows (two {n}×{n} kernels)"),
            2 * n * n,
            "use fewer rows",
        )?;
        Ok(Route::Kernels)
    }
}

fn frob2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}

fn check_pair(a: &Matrix, b: &Matrix) -> Result<(), AlignError> {
    if a.rows != b.rows {
        return Err(AlignError::RowMismatch {
            x_rows: a.rows,
            y_rows: b.rows,
        });
    }
    Ok(())
}

/// Linear CKA with the biased HSIC, `trace(K H L H)` (`AlignmentMetrics.cka`, default
/// `kernel_metric='ip'`).
pub fn cka(a: &Matrix, b: &Matrix) -> Result<f64, AlignError> {
    Ok(cka_and_chance(a, b)?.0)
}

/// Σᵢ ‖aᵢ − ā‖²: the trace of the centred kernel H K H.
fn centred_trace(m: &Matrix) -> f64 {
    let s = col_sums(m);
    let squares: f64 = m.iter_rows().map(|r| row_dot(r, r)).sum();
    squares - s.iter().map(|v| v * v).sum::<f64>() / m.rows as f64
}

/// [`cka`] and its chance level: its mean over every re-pairing of b's rows with a's. With
/// centred kernels K̄, L̄ and a uniform permutation P, E[tr(K̄ P L̄ Pᵀ)] = tr K̄ · tr L̄ / (n − 1)
/// (the diagonal of L̄ averages tr L̄ / n, its off-diagonal entries −tr L̄ / (n(n − 1)), since
/// a centred kernel sums to 0), and the denominator does not depend on the pairing, so the
/// chance level is tr K̄ · tr L̄ / ((n − 1)(‖K̄‖ ‖L̄‖ + 1e-6)): √(r_a r_b) / (n − 1) for the
/// effective ranks r = (tr K̄)² / ‖K̄‖², far from 0 when there are few rows.
pub(crate) fn cka_and_chance(a: &Matrix, b: &Matrix) -> Result<(f64, f64), AlignError> {
    check_pair(a, b)?;
    let n = a.rows;
    let (kl, kk, ll) = match route("cka", a, b)? {
        Route::Features => {
            let (sa, sb) = (col_sums(a), col_sums(b));
            // ‖Xᵀ H Y‖² = ‖Xᵀ Y − s_x s_yᵀ / n‖²
            let centred = |x: &Matrix, y: &Matrix, sx: &[f64], sy: &[f64]| {
                let mut c = cross_product(n, x.cols, y.cols, f64_row(x), f64_row(y));
                for p in 0..x.cols {
                    for q in 0..y.cols {
                        c[p * y.cols + q] -= sx[p] * sy[q] / n as f64;
                    }
                }
                frob2(&c)
            };
            (
                centred(a, b, &sa, &sb),
                centred(a, a, &sa, &sa),
                centred(b, b, &sb, &sb),
            )
        }
        Route::Kernels => {
            let centre = |m: &Matrix| {
                let mut k = gram_rows(n, m.cols, f64_row(m));
                let means: Vec<f64> = k
                    .chunks_exact(n)
                    .map(|r| r.iter().sum::<f64>() / n as f64)
                    .collect();
                let all = means.iter().sum::<f64>() / n as f64;
                for i in 0..n {
                    for j in 0..n {
                        k[i * n + j] += all - means[i] - means[j];
                    }
                }
                k
            };
            let (k, l) = (centre(a), centre(b));
            (dot(&k, &l), frob2(&k), frob2(&l))
        }
    };
    let denominator = (kk * ll).sqrt() + 1e-6;
    let chance = centred_trace(a) * centred_trace(b) / (n as f64 - 1.0) / denominator;
    Ok((kl / denominator, chance))
}

/// What the unbiased HSIC needs of one kernel K (diagonal excluded): its diagonal, its row
/// sums without the diagonal, and their total.
struct KernelStats {
    diag: Vec<f64>,
    rows: Vec<f64>,
    total: f64,
}

fn stats_from_features(m: &Matrix) -> KernelStats {
    let s = col_sums(m);
    let mut diag = Vec::with_capacity(m.rows);
    let mut rows = Vec::with_capacity(m.rows);
    for row in m.iter_rows() {
        let d: f64 = row.iter().map(|&v| v as f64 * v as f64).sum();
        let r: f64 = row.iter().zip(&s).map(|(&v, s)| v as f64 * s).sum::<f64>() - d;
        diag.push(d);
        rows.push(r);
    }
    let total = rows.iter().sum();
    KernelStats { diag, rows, total }
}

fn stats_from_kernel(k: &[f64], n: usize) -> KernelStats {
    let diag: Vec<f64> = (0..n).map(|i| k[i * n + i]).collect();
    let rows: Vec<f64> = (0..n)
        .map(|i| k[i * n..(i + 1) * n].iter().sum::<f64>() - diag[i])
        .collect();
    let total = rows.iter().sum();
    KernelStats { diag, rows, total }
}

/// The reference's `hsic_unbiased` from Σ_{i≠j} K̃_ij L̃_ji and the two kernels' statistics.
fn hsic_unbiased(t1: f64, sk: f64, sl: f64, t3: f64, n: usize) -> f64 {
    let m = n as f64;
    (t1 + sk * sl / ((m - 1.0) * (m - 2.0)) - 2.0 * t3 / (m - 2.0)) / (m * (m - 3.0))
}

fn hsic_from_stats(cross_offdiag: f64, k: &KernelStats, l: &KernelStats, n: usize) -> f64 {
    let t3: f64 = k.rows.iter().zip(&l.rows).map(|(a, b)| a * b).sum();
    hsic_unbiased(cross_offdiag, k.total, l.total, t3, n)
}

fn need_rows(metric: &'static str, n: usize) -> Result<(), AlignError> {
    if n < 4 {
        return Err(AlignError::TooFewRows {
            metric,
            n,
            min: 4,
            why: " (the unbiased HSIC divides by n·(n−3))",
        });
    }
    Ok(())
}

/// Linear CKA with the unbiased HSIC (`AlignmentMetrics.unbiased_cka`). Needs n ≥ 4.
pub fn unbiased_cka(a: &Matrix, b: &Matrix) -> Result<f64, AlignError> {
    check_pair(a, b)?;
    let n = a.rows;
    need_rows("unbiased_cka", n)?;
    let (kl, kk, ll) = match route("unbiased_cka", a, b)? {
        Route::Features => {
            let (ka, kb) = (stats_from_features(a), stats_from_features(b));
            let off = |x: &Matrix, y: &Matrix, sx: &KernelStats, sy: &KernelStats| {
                let c = cross_product(n, x.cols, y.cols, f64_row(x), f64_row(y));
                frob2(&c)
                    - sx.diag
                        .iter()
                        .zip(&sy.diag)
                        .map(|(p, q)| p * q)
                        .sum::<f64>()
            };
            (
                hsic_from_stats(off(a, b, &ka, &kb), &ka, &kb, n),
                hsic_from_stats(off(a, a, &ka, &ka), &ka, &ka, n),
                hsic_from_stats(off(b, b, &kb, &kb), &kb, &kb, n),
            )
        }
        Route::Kernels => {
            let k = gram_rows(n, a.cols, f64_row(a));
            let l = gram_rows(n, b.cols, f64_row(b));
            let (ks, ls) = (stats_from_kernel(&k, n), stats_from_kernel(&l, n));
            let off = |x: &[f64], y: &[f64], sx: &KernelStats, sy: &KernelStats| {
                dot(x, y)
                    - sx.diag
                        .iter()
                        .zip(&sy.diag)
                        .map(|(p, q)| p * q)
                        .sum::<f64>()
            };
            (
                hsic_from_stats(off(&k, &l, &ks, &ls), &ks, &ls, n),
                hsic_from_stats(off(&k, &k, &ks, &ks), &ks, &ks, n),
                hsic_from_stats(off(&l, &l, &ls, &ls), &ls, &ls, n),
            )
        }
    };
    Ok(kl / ((kk * ll).sqrt() + 1e-6))
}

/// Unbiased HSIC of M∘K and M∘L where M_ij = [j is among the k nearest of i in both
/// tables] (the reference's `similarity` inside `cknna`, with `unbiased=True`).
fn masked_hsic(a: &Matrix, b: &Matrix, ka: &Knn, kb: &Knn) -> f64 {
    let n = a.rows;
    // I_i = N_A(i) ∩ N_B(i), sorted
    let mut stamp = vec![u32::MAX; n];
    let mut sets: Vec<Vec<u32>> = Vec::with_capacity(n);
    for i in 0..n {
        for &j in ka.row(i) {
            stamp[j as usize] = i as u32;
        }
        let mut set: Vec<u32> = kb
            .row(i)
            .iter()
            .copied()
            .filter(|&j| stamp[j as usize] == i as u32)
            .collect();
        set.sort_unstable();
        sets.push(set);
    }
    let (mut t1, mut sk, mut sl) = (0.0f64, 0.0f64, 0.0f64);
    let mut col_k = vec![0.0f64; n];
    let mut row_l = vec![0.0f64; n];
    for (i, set) in sets.iter().enumerate() {
        for &j in set {
            let j = j as usize;
            let kij = row_dot(a.row(i), a.row(j));
            let lij = row_dot(b.row(i), b.row(j));
            sk += kij;
            sl += lij;
            col_k[j] += kij;
            row_l[i] += lij;
            if sets[j].binary_search(&(i as u32)).is_ok() {
                t1 += kij * lij;
            }
        }
    }
    let t3: f64 = col_k.iter().zip(&row_l).map(|(c, r)| c * r).sum();
    hsic_unbiased(t1, sk, sl, t3, n)
}

/// CKNNA (`AlignmentMetrics.cknna`, `unbiased=True`, `distance_agnostic=False`): the unbiased
/// HSIC of the kernels restricted to pairs that are k-nearest neighbours (by the kernel,
/// self excluded) in both. Needs k ≥ 2 and n ≥ 4. NaN when a self-similarity term is
/// negative, as in the reference.
pub fn cknna(a: &Matrix, b: &Matrix, k: usize) -> Result<f64, AlignError> {
    check_pair(a, b)?;
    need_rows("cknna", a.rows)?;
    if k < 2 {
        return Err(AlignError::K {
            k,
            expected: "k >= 2 for cknna (as the reference requires)".into(),
        });
    }
    check_k(k, a.rows)?;
    let ka = nearest_neighbors(a, k)?;
    let kb = nearest_neighbors(b, k)?;
    Ok(cknna_from(a, b, &ka, &kb))
}

/// CKNNA from neighbour tables already computed on the same features.
pub(crate) fn cknna_from(a: &Matrix, b: &Matrix, ka: &Knn, kb: &Knn) -> f64 {
    let kl = masked_hsic(a, b, ka, kb);
    let kk = masked_hsic(a, a, ka, ka);
    let ll = masked_hsic(b, b, kb, kb);
    kl / ((kk * ll).sqrt() + 1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::align::test_matrix as pseudo;

    /// The reference's formulas on explicit n×n kernels.
    fn naive(a: &Matrix, b: &Matrix) -> (f64, f64) {
        let n = a.rows;
        let kern = |m: &Matrix| {
            let mut k = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    k[i * n + j] = row_dot(m.row(i), m.row(j));
                }
            }
            k
        };
        let biased = |k: &[f64], l: &[f64]| {
            // trace(K H L H) with H = I − 1/n
            let h = |i: usize, j: usize| (i == j) as u8 as f64 - 1.0 / n as f64;
            let mut hk = vec![0.0; n * n];
            let mut hl = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    for t in 0..n {
                        hk[i * n + j] += k[i * n + t] * h(t, j);
                        hl[i * n + j] += l[i * n + t] * h(t, j);
                    }
                }
            }
            let mut tr = 0.0;
            for i in 0..n {
                for j in 0..n {
                    tr += hk[i * n + j] * hl[j * n + i];
                }
            }
            tr
        };
        let unb = |k: &[f64], l: &[f64]| {
            let mut kt = k.to_vec();
            let mut lt = l.to_vec();
            for i in 0..n {
                kt[i * n + i] = 0.0;
                lt[i * n + i] = 0.0;
            }
            let m = n as f64;
            let t1: f64 = (0..n * n).map(|p| kt[p] * lt[(p % n) * n + p / n]).sum();
            let mut t3 = 0.0;
            for i in 0..n {
                for j in 0..n {
                    for t in 0..n {
                        t3 += kt[i * n + t] * lt[t * n + j];
                    }
                }
            }
            let (sk, sl): (f64, f64) = (kt.iter().sum(), lt.iter().sum());
            (t1 + sk * sl / ((m - 1.0) * (m - 2.0)) - 2.0 * t3 / (m - 2.0)) / (m * (m - 3.0))
        };
        let (k, l) = (kern(a), kern(b));
        let cka = biased(&k, &l) / ((biased(&k, &k) * biased(&l, &l)).sqrt() + 1e-6);
        let ucka = unb(&k, &l) / ((unb(&k, &k) * unb(&l, &l)).sqrt() + 1e-6);
        (cka, ucka)
    }

    #[test]
    fn both_routes_match_the_reference_formulas() {
        // n > d: feature route; n < d: kernel route
        for (n, d1, d2) in [(20, 3, 5), (9, 14, 11)] {
            let a = pseudo(n, d1, 1);
            let b = pseudo(n, d2, 2);
            let (want_cka, want_u) = naive(&a, &b);
            let got = cka(&a, &b).unwrap();
            let got_u = unbiased_cka(&a, &b).unwrap();
            assert!((got - want_cka).abs() < 1e-12, "{got} {want_cka}");
            assert!((got_u - want_u).abs() < 1e-12, "{got_u} {want_u}");
        }
        let a = pseudo(12, 4, 3);
        assert!((cka(&a, &a).unwrap() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_bad_sizes() {
        let a = pseudo(3, 2, 1);
        assert!(matches!(
            unbiased_cka(&a, &a),
            Err(AlignError::TooFewRows { .. })
        ));
        let b = pseudo(10, 2, 1);
        assert!(matches!(cknna(&b, &b, 1), Err(AlignError::K { k: 1, .. })));
        assert!(matches!(
            cknna(&b, &b, 10),
            Err(AlignError::K { k: 10, .. })
        ));
        let c = pseudo(4, 2, 1);
        assert!(matches!(cka(&b, &c), Err(AlignError::RowMismatch { .. })));
    }

    #[test]
    fn sizes_beyond_the_limit_are_refused() {
        assert!(matches!(route_for("cka", 50_000, 768), Ok(Route::Features)));
        assert!(matches!(route_for("cka", 64, 8192), Ok(Route::Kernels)));
        let err = route_for("cka", 10_000, 9_000).err().unwrap();
        assert!(matches!(err, AlignError::TooLarge { .. }));
        assert!(
            err.to_string().starts_with("`cka` on 10000×9000 features"),
            "{err}"
        );
        assert!(matches!(
            route_for("cka", 5_000, 9_000),
            Err(AlignError::TooLarge { .. })
        ));
    }

    #[test]
    fn cknna_with_full_neighbourhoods_is_unbiased_cka() {
        // k = n − 1: every off-diagonal pair is a neighbour, so the mask is all ones.
        let a = pseudo(10, 3, 4);
        let b = pseudo(10, 6, 5);
        let got = cknna(&a, &b, 9).unwrap();
        let want = unbiased_cka(&a, &b).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} {want}");
    }
}
