//! AVX-512 versions of the forward pass's f32 loops that are not matrix products: a
//! prompt's attention (`Llama::attend_blocked`), `libm::expf` and the SwiGLU product.
//!
//! Why: with the int8 products on VNNI panels (`super::int8::Panels`), a 1,000-token
//! prompt spent most of its time here, in scalar code: one horizontal sum per (query, key)
//! score in `dot`, each value row read again from memory for every query, one `libm::expf`
//! call per score (BENCHMARKS.md has the profile). Every function gives the bits of the
//! scalar code it replaces — the same IEEE operations on each element in the same order,
//! only several elements at a time, never a fused multiply-add — so a build without AVX-512
//! (or wasm) computes the same model; the tests check each against its scalar original.

use std::arch::x86_64::*;

/// Whether this CPU runs the functions of this module (all of them need only AVX-512 F).
pub(crate) fn supported() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether `AttentionTask::run` takes heads of `hd` floats.
pub(crate) fn supports(hd: usize) -> bool {
    matches!(hd, 16 | 32 | 64)
}

/// `|x|` bits from which `libm::expf` leaves its main path (overflow, underflow, NaN).
const EXPF_LIMIT: u32 = 0x42ae_ac50;

/// `libm::expf` (FreeBSD's `e_expf.c`) on 16 floats, bit for bit: the same argument
/// reduction (`k`, `hi`, `lo`), the same polynomial, and `scalbnf(y, k)`, which for the
/// `k` of |x| < 87.34 (−126 ≤ k ≤ 126) is one product with 2^k. Lanes outside that range
/// (rare: softmax inputs beyond −87 or NaN) make the whole vector take `libm::expf`.
///
/// # Safety
/// AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn expf16(x: __m512) -> __m512 {
    // libm's constants, by their bits.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
    #[allow(clippy::excessive_precision)]
    const P1: f32 = 1.6666625440e-1;
    #[allow(clippy::excessive_precision)]
    const P2: f32 = -2.7667332906e-3;
    let bits = _mm512_castps_si512(x);
    let hx = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    if _mm512_cmpge_epu32_mask(hx, _mm512_set1_epi32(EXPF_LIMIT as i32)) != 0 {
        let mut v = [0f32; 16];
        // SAFETY: `v` is 16 writable floats.
        unsafe { _mm512_storeu_ps(v.as_mut_ptr(), x) };
        v.iter_mut().for_each(|x| *x = libm::expf(*x));
        // SAFETY: `v` is 16 readable floats.
        return unsafe { _mm512_loadu_ps(v.as_ptr()) };
    }
    let negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
    // |x| > 1.5 ln 2: k = (x / ln 2 ± ½) truncated; 0.5 ln 2 < |x| ≤ 1.5 ln 2: k = ±1;
    // smaller: k = 0, where hi = x − 0·LN2_HI = x and lo = 0 are the scalar branch's values.
    let big = _mm512_cmpgt_epu32_mask(hx, _mm512_set1_epi32(0x3f85_1592));
    let mid = _mm512_cmpgt_epu32_mask(hx, _mm512_set1_epi32(0x3eb1_7218)) & !big;
    let half = _mm512_mask_blend_ps(negative, _mm512_set1_ps(0.5), _mm512_set1_ps(-0.5));
    let k_big = _mm512_cvttps_epi32(_mm512_add_ps(
        _mm512_mul_ps(_mm512_set1_ps(INV_LN2), x),
        half,
    ));
    let k_mid = _mm512_mask_blend_epi32(negative, _mm512_set1_epi32(1), _mm512_set1_epi32(-1));
    let k = _mm512_mask_blend_epi32(big, _mm512_maskz_mov_epi32(mid, k_mid), k_big);
    let kf = _mm512_cvtepi32_ps(k);
    let hi = _mm512_sub_ps(x, _mm512_mul_ps(kf, _mm512_set1_ps(LN2_HI)));
    let lo = _mm512_mul_ps(kf, _mm512_set1_ps(LN2_LO));
    let r = _mm512_sub_ps(hi, lo);
    let rr = _mm512_mul_ps(r, r);
    let p = _mm512_add_ps(_mm512_set1_ps(P1), _mm512_mul_ps(rr, _mm512_set1_ps(P2)));
    let c = _mm512_sub_ps(r, _mm512_mul_ps(rr, p));
    let q = _mm512_div_ps(_mm512_mul_ps(r, c), _mm512_sub_ps(_mm512_set1_ps(2.0), c));
    let y = _mm512_add_ps(_mm512_set1_ps(1.0), _mm512_add_ps(_mm512_sub_ps(q, lo), hi));
    // 2^k as a float (k ≥ −126 here, so a normal number); y · 2^0 = y for k = 0.
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_add_epi32(k, _mm512_set1_epi32(127)),
        23,
    ));
    let y = _mm512_mul_ps(y, scale);
    // |x| ≤ 2^−14: 1 + x.
    let tiny = _mm512_cmple_epu32_mask(hx, _mm512_set1_epi32(0x3900_0000));
    _mm512_mask_blend_ps(tiny, y, _mm512_add_ps(_mm512_set1_ps(1.0), x))
}

/// `g[i] = g[i] / (1 + expf(−g[i])) · u[i]`, SwiGLU as `Llama::forward_chunk` writes it.
///
/// # Safety
/// AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn swiglu(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let whole = n / 16 * 16;
    let sign = _mm512_set1_epi32(i32::MIN);
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 ≤ n, within both slices.
        unsafe {
            let gv = _mm512_loadu_ps(g.as_ptr().add(i));
            let uv = _mm512_loadu_ps(u.as_ptr().add(i));
            let neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(gv), sign));
            let e = expf16(neg);
            let s = _mm512_div_ps(gv, _mm512_add_ps(_mm512_set1_ps(1.0), e));
            _mm512_storeu_ps(g.as_mut_ptr().add(i), _mm512_mul_ps(s, uv));
        }
    }
    for (gv, uv) in g[whole..n].iter_mut().zip(&u[whole..n]) {
        *gv = *gv / (1.0 + libm::expf(-*gv)) * uv;
    }
}

/// `llama::attend_one` (a generated token's attention for one head) compiled for AVX-512,
/// with `expf16` for the exps: the same operations in the same order, so the same bits;
/// `Llama::attend_each` was an eighth of a Repoformer task's time once prompts were fast.
///
/// # Safety
/// AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn attend_one<'a>(
    qv: &[f32],
    upto: usize,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    scale: f32,
    o: &mut [f32],
) {
    super::llama::attend_one(qv, upto, key, value, scale, o, |s| {
        let mut chunks = s.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: AVX-512 F (this function's); 16 floats each way.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), expf16(_mm512_loadu_ps(c.as_ptr()))) };
        }
        chunks
            .into_remainder()
            .iter_mut()
            .for_each(|s| *s = libm::expf(*s));
    })
}

/// Where one attention task reads: `key(p)` / `value(p)` are position p's `hd` floats of
/// the task's key/value head.
pub(crate) struct AttentionTask<'a, K: Fn(usize) -> &'a [f32], W: Fn(usize) -> &'a [f32]> {
    pub key: K,
    pub value: W,
    pub hd: usize,
    /// Query heads per key/value head: rows `r = i · group + g` are query i's heads.
    pub group: usize,
    /// The task's queries (`n` of them, `n · group` rows of `hd`), row r at `query(r)`.
    pub queries: &'a [&'a [f32]],
    /// Query i sees positions `0..first + i + 1`.
    pub first: usize,
    pub scale: f32,
}

impl<'a, K: Fn(usize) -> &'a [f32], W: Fn(usize) -> &'a [f32]> AttentionTask<'a, K, W> {
    /// `Llama::attend_blocked`'s task with 16 rows (query heads) in the lanes of a register:
    /// the queries transposed once, so that each key's scores for 16 rows are 16 `dot`s side
    /// by side (lane by lane the same eight partial sums, combined in the same order), the
    /// scores key-major so that the max, exp and sum of a row run down its lane in position
    /// order, and each value row read once for all of a query's heads. `o[r · hd..]` gets
    /// row r's output.
    ///
    /// # Safety
    /// AVX-512 F; `hd` 16, 32 or 64 (`supports`); every position below the last query's
    /// `first + n` has `hd` floats of key and value.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn run(&self, o: &mut [f32]) {
        let (hd, group) = (self.hd, self.group);
        assert!(supports(hd) && group > 0);
        let rows = self.queries.len();
        let n = rows.div_ceil(group);
        let keys = self.first + n;
        let width = rows.div_ceil(16) * 16;
        let upto = |r: usize| self.first + r / group + 1;
        // qt[e · width + r] = query(r)[e], padded with zero rows.
        let mut qt = vec![0f32; hd * width];
        for (r, q) in self.queries.iter().enumerate() {
            for (e, &v) in q[..hd].iter().enumerate() {
                qt[e * width + r] = v;
            }
        }
        let mut scores = vec![0f32; keys * width];
        let mut max = vec![f32::NEG_INFINITY; width];
        let chunks = hd / 8;
        // SAFETY (every load and store below): offsets within `qt` (hd × width), `scores`
        // (keys × width), `max`/`sums` (width), the key and value rows (hd each, checked
        // by the slicing `key`/`value` do) and `o` (asserted).
        unsafe {
            for p in 0..keys {
                let k = (self.key)(p);
                assert!(k.len() >= hd);
                for v in (0..width).step_by(16) {
                    // `dot`'s lanes: acc[i] = Σ over c of q[8c + i] · k[8c + i], from 0.
                    let mut acc = [_mm512_setzero_ps(); 8];
                    for c in 0..chunks {
                        for (i, acc) in acc.iter_mut().enumerate() {
                            let e = 8 * c + i;
                            let qv = _mm512_loadu_ps(qt.as_ptr().add(e * width + v));
                            let kv = _mm512_set1_ps(*k.get_unchecked(e));
                            *acc = _mm512_add_ps(*acc, _mm512_mul_ps(qv, kv));
                        }
                    }
                    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
                    let s = _mm512_add_ps(
                        _mm512_add_ps(_mm512_add_ps(a0, a4), _mm512_add_ps(a1, a5)),
                        _mm512_add_ps(_mm512_add_ps(a2, a6), _mm512_add_ps(a3, a7)),
                    );
                    let s = _mm512_mul_ps(s, _mm512_set1_ps(self.scale));
                    _mm512_storeu_ps(scores.as_mut_ptr().add(p * width + v), s);
                    // Rows that see p: the max over their positions (exact in any order).
                    let seen = lanes_seeing(p, v, rows, self.first, group);
                    let m = _mm512_loadu_ps(max.as_ptr().add(v));
                    _mm512_storeu_ps(max.as_mut_ptr().add(v), _mm512_mask_max_ps(m, seen, m, s));
                }
            }
            // exp(s − max) in place, 0 where a row does not see p, summed by position.
            let mut sums = vec![0f32; width];
            for p in 0..keys {
                for v in (0..width).step_by(16) {
                    let seen = lanes_seeing(p, v, rows, self.first, group);
                    let at = scores.as_mut_ptr().add(p * width + v);
                    let m = _mm512_loadu_ps(max.as_ptr().add(v));
                    // Unseen lanes: exp(0), then 0 (their s − max may be anything).
                    let x = _mm512_maskz_sub_ps(seen, _mm512_loadu_ps(at), m);
                    let e = _mm512_maskz_mov_ps(seen, expf16(x));
                    _mm512_storeu_ps(at, e);
                    let s = _mm512_loadu_ps(sums.as_ptr().add(v));
                    _mm512_storeu_ps(sums.as_mut_ptr().add(v), _mm512_add_ps(s, e));
                }
            }
            // The weights s / sum, then each query's heads over its positions.
            for p in 0..keys {
                for v in (0..width).step_by(16) {
                    let at = scores.as_mut_ptr().add(p * width + v);
                    let w =
                        _mm512_div_ps(_mm512_loadu_ps(at), _mm512_loadu_ps(sums.as_ptr().add(v)));
                    _mm512_storeu_ps(at, w);
                }
            }
            assert!(o.len() >= rows * hd);
            for i in 0..n {
                let r0 = i * group;
                let heads = group.min(rows - r0);
                for h0 in (0..heads).step_by(4) {
                    let tile = (heads - h0).min(4);
                    let out = &mut o[(r0 + h0) * hd..(r0 + h0 + tile) * hd];
                    let w = &scores[r0 + h0..];
                    // Registers for every accumulator: the shapes as constants.
                    macro_rules! tiles {
                        ($($v:literal, $t:literal);*) => {
                            match (hd / 16, tile) {
                                $(($v, $t) => self.values::<$v, $t>(upto(r0), w, width, out),)*
                                _ => unreachable!("hd ≤ 64 and tiles of 1 to 4 heads"),
                            }
                        };
                    }
                    tiles!(1, 1; 1, 2; 1, 3; 1, 4; 2, 1; 2, 2; 2, 3; 2, 4; 4, 1; 4, 2; 4, 3; 4, 4);
                }
            }
        }
    }

    /// `out[h · hd..]` = Σ over p < upto of w[p · width + h] · value(p), by position from 0,
    /// for `T` heads of one query (`hd = 16 V`).
    ///
    /// # Safety
    /// AVX-512 F; `w` holds `(upto − 1) · width + T` weights, `out` `T · hd` floats.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn values<const V: usize, const T: usize>(
        &self,
        upto: usize,
        w: &[f32],
        width: usize,
        out: &mut [f32],
    ) {
        assert!(out.len() >= T * 16 * V && (upto == 0 || w.len() >= (upto - 1) * width + T));
        let mut acc = [[_mm512_setzero_ps(); V]; T];
        for p in 0..upto {
            let val = (self.value)(p);
            assert!(val.len() >= 16 * V);
            // SAFETY: the lengths asserted above.
            unsafe {
                let mut vv = [_mm512_setzero_ps(); V];
                for (e, vv) in vv.iter_mut().enumerate() {
                    *vv = _mm512_loadu_ps(val.as_ptr().add(16 * e));
                }
                for (h, acc) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*w.get_unchecked(p * width + h));
                    for (acc, &vv) in acc.iter_mut().zip(&vv) {
                        *acc = _mm512_add_ps(*acc, _mm512_mul_ps(wv, vv));
                    }
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            for (e, &a) in acc.iter().enumerate() {
                // SAFETY: h · hd + 16 e + 16 ≤ T · hd, asserted.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(h * 16 * V + 16 * e), a) };
            }
        }
    }
}

/// The lanes `v..v + 16` (rows) that see position `p`: rows `r < rows` of the queries
/// `i = r / group` with `p < first + i + 1`, i.e. `r ≥ (p − first) · group`.
#[inline(always)]
fn lanes_seeing(p: usize, v: usize, rows: usize, first: usize, group: usize) -> __mmask16 {
    let from = p.saturating_sub(first) * group;
    let below = |r: usize| -> u16 {
        // Lanes l with v + l < r.
        match r.saturating_sub(v) {
            0 => 0,
            k if k >= 16 => u16::MAX,
            k => (1u16 << k) - 1,
        }
    };
    below(rows) & !below(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expf16` is `libm::expf` bit for bit, across the exponent range, signs, the branch
    /// edges and the specials.
    #[test]
    fn expf16_is_libm_expf() {
        if !supported() {
            return;
        }
        let mut xs: Vec<f32> = (0..=0x42b4_0000u32)
            .step_by(4093)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .collect();
        for edge in [
            0x3900_0000u32,
            0x3eb1_7218,
            0x3f85_1592,
            EXPF_LIMIT,
            0x42b1_7218,
            0x42cf_f1b5,
        ] {
            for b in edge - 3..=edge + 3 {
                xs.extend([f32::from_bits(b), -f32::from_bits(b)]);
            }
        }
        xs.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-45]);
        while !xs.len().is_multiple_of(16) {
            xs.push(0.5);
        }
        for chunk in xs.chunks_exact(16) {
            let mut got = [0f32; 16];
            // SAFETY: AVX-512 F was detected; 16 floats each way.
            unsafe { _mm512_storeu_ps(got.as_mut_ptr(), expf16(_mm512_loadu_ps(chunk.as_ptr()))) };
            for (x, g) in chunk.iter().zip(got) {
                let want = libm::expf(*x);
                assert!(
                    want.to_bits() == g.to_bits() || (want.is_nan() && g.is_nan()),
                    "expf({x:e}) = {want:e}, vector {g:e}"
                );
            }
        }
    }

    #[test]
    fn swiglu_is_the_scalar_loop() {
        if !supported() {
            return;
        }
        let g: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 23.0)
            .collect();
        let u: Vec<f32> = (0..1000)
            .map(|i| ((i * 31 % 97) as f32 - 48.0) / 7.0)
            .collect();
        let mut want = g.clone();
        for (gv, uv) in want.iter_mut().zip(&u) {
            *gv = *gv / (1.0 + libm::expf(-*gv)) * uv;
        }
        let mut got = g.clone();
        // SAFETY: AVX-512 F was detected.
        unsafe { swiglu(&mut got, &u) };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }
}
