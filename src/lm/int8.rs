//! The integer kernel: inputs quantised to 8 bits per 32-element block, as llama.cpp does
//! for its quantised dot products (`Q8_1` against `Q4_1`, `Q8_0` against `Q4_0`/`Q8_0`).
//!
//! Per block the weights' levels times the input's levels are summed in `i32` — exactly, so
//! the order of that sum (and so the SIMD width) cannot change the result — and only the
//! block's scales are floating point: `(d_w · d_x) · Σ q_w q_x (+ m_w · d_x · Σ q_x)`, added into four
//! lanes by block number (`b mod 4`) that are summed once per row, `(l0 + l1) + (l2 + l3)`.
//! No fused multiply-add, so the portable, AVX2, AVX-512 VNNI and wasm simd128 builds give
//! the same bits.
//!
//! Why: the f32 kernel spends most of its instructions turning nibbles into floats; here a
//! block is four integer instructions on AVX2 (`maddubs`), and generation on this model went
//! from 50 to the figure in BENCHMARKS.md. Where the CPU has AVX-512 VNNI the weights are
//! regrouped once into panels of 16 rows ([`Panels`]) and a block of 16 rows × 4 inputs is
//! a few `vpdpbusd`s with no horizontal sums: 7–8× the AVX2 kernel's products per second
//! on a prompt chunk, 6× for one input (BENCHMARKS.md). The price is rounding each input to 8 bits
//! (relative error about 1/254 of the block's largest value), which moves logits by a few
//! hundredths: `tests/lm_smollm2.rs` states and checks the tolerance against `transformers`.

use super::quant::{GgmlType, QMatrix};

/// Rows of inputs quantised per 32-element block.
pub(crate) struct Int8Rows {
    /// `t × cols` levels in −127..=127.
    q: Vec<i8>,
    /// Per block: its scale `d_x` (the largest magnitude / 127), Σ of its levels, and the sum
    /// of its rounded values `d_x · Σ levels`, which a Q4_1 block's offset multiplies.
    ///
    /// The rounded sum, not the true one: then a Q4_1 product is exactly the dequantised
    /// weights `d_w·q + m_w` times the rounded inputs, whose rounding errors meet weights
    /// centred on zero. With the true sum the errors met `d_w·q` alone (levels 0..15, all of one
    /// sign), about twice the spread: the mean log-likelihood moved 2.7e-2 nats/token from
    /// transformers' instead of the figure `tests/lm_smollm2.rs` states. llama.cpp's Q8_1 keeps
    /// the same rounded sum (`s = d · Σ q`).
    scale: Vec<f32>,
    level_sum: Vec<i32>,
    sum: Vec<f32>,
    blocks: usize,
}

impl Int8Rows {
    /// Input rows.
    pub(crate) fn rows(&self) -> usize {
        self.scale.len().checked_div(self.blocks).unwrap_or(0)
    }

    /// `x` is whole rows of `cols` values, `cols` a multiple of 32.
    pub(crate) fn quantize(x: &[f32], cols: usize) -> Int8Rows {
        debug_assert_eq!(cols % 32, 0);
        let n = x.len() / 32;
        let mut rows = Int8Rows {
            q: vec![0; x.len()],
            scale: Vec::with_capacity(n),
            level_sum: Vec::with_capacity(n),
            sum: Vec::with_capacity(n),
            blocks: cols / 32,
        };
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        for (block, q) in x.chunks_exact(32).zip(rows.q.chunks_exact_mut(32)) {
            #[cfg(target_arch = "x86_64")]
            if avx512 {
                // SAFETY: AVX-512 F was detected; both are 32 elements.
                if let Some((d, levels)) = unsafe { quantize_block_avx512(block, q) } {
                    rows.scale.push(d);
                    rows.level_sum.push(levels);
                    rows.sum.push(d * levels as f32);
                    continue;
                }
            }
            let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            let mut levels = 0i32;
            for (o, v) in q.iter_mut().zip(block) {
                // `as` saturates, and |v · inv| ≤ 127 up to rounding.
                *o = (v * inv).round() as i8;
                levels += *o as i32;
            }
            rows.scale.push(d);
            rows.level_sum.push(levels);
            rows.sum.push(d * levels as f32);
        }
        rows
    }
}

/// `Int8Rows::quantize`'s block in AVX-512: the same scale, and each level rounded half
/// away from zero as `f32::round` does (truncate, then a step away from zero where the
/// exact remainder is at least ½) — the scalar loop called `roundf` once per element, about
/// a sixth of a long prompt's time (BENCHMARKS.md). `None` (the caller takes the scalar
/// loop) for the blocks where `as i8` would meet infinities or NaN: a NaN or infinite
/// element, or a largest magnitude below 1e-30, whose 127 / amax may overflow.
///
/// # Safety
/// AVX-512 F; `block` and `q` hold 32 elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn quantize_block_avx512(block: &[f32], q: &mut [i8]) -> Option<(f32, i32)> {
    use std::arch::x86_64::*;
    assert!(block.len() >= 32 && q.len() >= 32);
    // SAFETY: 32 floats read, 32 bytes written, asserted above.
    unsafe {
        let v = [
            _mm512_loadu_ps(block.as_ptr()),
            _mm512_loadu_ps(block.as_ptr().add(16)),
        ];
        let abs = |x: __m512| {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(x),
                _mm512_set1_epi32(0x7fff_ffff),
            ))
        };
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(abs(v[0]), abs(v[1])));
        let unordered = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v[0], v[1]);
        if unordered != 0 || !(1e-30..f32::INFINITY).contains(&amax) {
            return None;
        }
        let d = amax / 127.0;
        let inv = _mm512_set1_ps(127.0 / amax);
        let mut levels = _mm512_setzero_si512();
        for (h, &x) in v.iter().enumerate() {
            let scaled = _mm512_mul_ps(x, inv);
            let whole = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(scaled);
            let rest = abs(_mm512_sub_ps(scaled, whole));
            let away = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(rest, _mm512_set1_ps(0.5));
            // ±1 with the sign of `scaled`.
            let one = _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(scaled), _mm512_set1_epi32(i32::MIN)),
                _mm512_castps_si512(_mm512_set1_ps(1.0)),
            ));
            let rounded = _mm512_mask_add_ps(whole, away, whole, one);
            let l = _mm512_cvtps_epi32(rounded);
            levels = _mm512_add_epi32(levels, l);
            _mm_storeu_si128(
                q.as_mut_ptr().add(16 * h) as *mut __m128i,
                _mm512_cvtsepi32_epi8(l),
            );
        }
        Some((d, _mm512_reduce_add_epi32(levels)))
    }
}

/// One quantised weight matrix against quantised inputs.
pub(crate) struct Int8Kernel<'a> {
    pub m: &'a QMatrix,
    pub table: &'a [f32],
    pub x: &'a Int8Rows,
    /// The matrix regrouped for the AVX-512 VNNI kernel, where the CPU has it
    /// (`QMatrix::int8_panels`; always None elsewhere).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub panels: Option<&'a Panels>,
}

impl Int8Kernel<'_> {
    /// `out[j × n + i] = W[first + i] · x[j]` for the `t` input rows and `n = out.len() / t`
    /// weight rows (input-major, so that a panel's 16 rows are one store).
    pub(crate) fn rows(&self, first: usize, out: &mut [f32]) {
        let t = self.x.rows();
        let n = out.len() / t;
        #[allow(unused_mut)]
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if let Some(panels) = self.panels {
            if first.is_multiple_of(PANEL) {
                done = n / PANEL * PANEL;
                // SAFETY: `Panels` exist only where the CPU has AVX-512 F, BW and VNNI
                // (`Panels::supported`); rows first..first + done are whole panels of the
                // matrix they were built from (`first` is a multiple of 16, and
                // first + done ≤ n's end ≤ the matrix's rows).
                unsafe { self.panel_rows(panels, first, done, out) };
            }
        }
        for i in done..n {
            let row = self.m.row_bytes_of(first + i);
            for j in 0..t {
                out[j * n + i] = self.row_dot(row, j);
            }
        }
    }

    #[inline(always)]
    fn row_dot(&self, row: &[u8], j: usize) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above), the only requirement.
            return unsafe { self.row_dot_avx2(row, j) };
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return self.row_dot_simd128(row, j);
        #[allow(unreachable_code)]
        self.row_dot_portable(row, j)
    }

    /// The block's scale, offset (Q4_1) and where its levels start.
    #[inline(always)]
    fn scales(&self, block: &[u8]) -> (f32, f32) {
        let h = |at: usize| self.table[u16::from_le_bytes([block[at], block[at + 1]]) as usize];
        match self.m.dtype {
            GgmlType::Q4_1 => (h(0), h(2)),
            _ => (h(0), 0.0),
        }
    }

    /// One block's contribution from its exact level sum: the only floating point.
    #[inline(always)]
    fn contribution(&self, block: &[u8], b: usize, levels: i32) -> f32 {
        let x = self.x;
        let (d, m) = self.scales(block);
        let c = (d * x.scale[b]) * levels as f32;
        if self.m.dtype == GgmlType::Q4_1 {
            c + m * x.sum[b]
        } else {
            c
        }
    }

    /// The definition the SIMD versions reproduce bit for bit.
    fn row_dot_portable(&self, row: &[u8], j: usize) -> f32 {
        let x = self.x;
        let bytes = self.m.dtype.block().1 as usize;
        let mut lanes = [0f32; 4];
        for (b, block) in row.chunks_exact(bytes).enumerate() {
            let g = j * x.blocks + b;
            let xq = &x.q[g * 32..g * 32 + 32];
            let levels: i32 = match self.m.dtype {
                GgmlType::Q4_1 | GgmlType::Q4_0 => {
                    let at = if self.m.dtype == GgmlType::Q4_1 { 4 } else { 2 };
                    let mut s = 0i32;
                    for k in 0..16 {
                        let w = block[at + k];
                        s += (w & 15) as i32 * xq[k] as i32 + (w >> 4) as i32 * xq[k + 16] as i32;
                    }
                    if self.m.dtype == GgmlType::Q4_0 {
                        s - 8 * x.level_sum[g]
                    } else {
                        s
                    }
                }
                GgmlType::Q8_0 => (0..32)
                    .map(|k| block[2 + k] as i8 as i32 * xq[k] as i32)
                    .sum(),
                GgmlType::F32 | GgmlType::F16 => unreachable!("matmul_dequantised takes these"),
            };
            lanes[b % 4] += self.contribution(block, g, levels);
        }
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    }

    /// `row_dot_portable` in AVX2: a block's 32 products in `maddubs` + `madd`, four blocks'
    /// sums gathered by `hadd`, then the same four lanes of floats. Written without closures
    /// and per weight type (`Q`: `Q4_1`, `Q4_0` or `Q8_0` as in `avx2::block_levels`) because
    /// the closure version was not inlined (a third of the time in its calls, slower than the
    /// f32 kernel).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_dot_avx2(&self, row: &[u8], j: usize) -> f32 {
        match self.m.dtype {
            GgmlType::Q4_1 => unsafe { self.row_dot_avx2_of::<{ avx2::Q4_1 }>(row, j) },
            GgmlType::Q4_0 => unsafe { self.row_dot_avx2_of::<{ avx2::Q4_0 }>(row, j) },
            GgmlType::Q8_0 => unsafe { self.row_dot_avx2_of::<{ avx2::Q8_0 }>(row, j) },
            GgmlType::F32 | GgmlType::F16 => unreachable!("matmul_dequantised takes these"),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_dot_avx2_of<const Q: u8>(&self, row: &[u8], j: usize) -> f32 {
        use std::arch::x86_64::*;
        let x = self.x;
        let bytes = avx2::block_bytes(Q);
        let blocks = x.blocks;
        let first = j * blocks;
        // Everything read below lies in these slices, checked once here.
        assert_eq!(row.len(), blocks * bytes);
        let xq = &x.q[first * 32..(first + blocks) * 32];
        let (xs, sums, level_sums) = (
            &x.scale[first..first + blocks],
            &x.sum[first..first + blocks],
            &x.level_sum[first..first + blocks],
        );
        let table = self.table;
        debug_assert_eq!(table.len(), 1 << 16);
        // SAFETY: block `b` is row[b·bytes..], its inputs xq[32b..32b + 32], b < blocks.
        let levels = |b: usize| unsafe {
            avx2::block_levels::<Q>(row.as_ptr().add(b * bytes), xq.as_ptr().add(b * 32))
        };
        // SAFETY: the table has all 2^16 entries, so any two bytes index it.
        let half = |b: usize, at: usize| unsafe {
            let p = row.as_ptr().add(b * bytes + at);
            *table.get_unchecked(u16::from_le_bytes([*p, *p.add(1)]) as usize)
        };
        let mut lanes = _mm_setzero_ps();
        let whole = blocks / 4 * 4;
        for b in (0..whole).step_by(4) {
            let (s0, s1, s2, s3) = (levels(b), levels(b + 1), levels(b + 2), levels(b + 3));
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
            let mut total =
                _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            // SAFETY (the loads): b + 4 ≤ blocks, the length of these slices.
            if Q == avx2::Q4_0 {
                let ls = unsafe { _mm_loadu_si128(level_sums.as_ptr().add(b) as *const __m128i) };
                total = _mm_sub_epi32(total, _mm_slli_epi32(ls, 3));
            }
            let d = _mm_set_ps(half(b + 3, 0), half(b + 2, 0), half(b + 1, 0), half(b, 0));
            let dd = _mm_mul_ps(d, unsafe { _mm_loadu_ps(xs.as_ptr().add(b)) });
            let mut c = _mm_mul_ps(dd, _mm_cvtepi32_ps(total));
            if Q == avx2::Q4_1 {
                let m = _mm_set_ps(half(b + 3, 2), half(b + 2, 2), half(b + 1, 2), half(b, 2));
                c = _mm_add_ps(
                    c,
                    _mm_mul_ps(m, unsafe { _mm_loadu_ps(sums.as_ptr().add(b)) }),
                );
            }
            lanes = _mm_add_ps(lanes, c);
        }
        let mut l = [0f32; 4];
        // SAFETY: `l` is four writable floats.
        unsafe { _mm_storeu_ps(l.as_mut_ptr(), lanes) };
        for b in whole..blocks {
            let s = levels(b);
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(s, s), _mm256_hadd_epi32(s, s));
            let mut total = _mm_cvtsi128_si32(_mm_add_epi32(
                _mm256_castsi256_si128(h),
                _mm256_extracti128_si256(h, 1),
            ));
            if Q == avx2::Q4_0 {
                total -= 8 * level_sums[b];
            }
            let mut c = (half(b, 0) * xs[b]) * total as f32;
            if Q == avx2::Q4_1 {
                c += half(b, 2) * sums[b];
            }
            l[b % 4] += c;
        }
        (l[0] + l[1]) + (l[2] + l[3])
    }

    /// `rows` over whole panels: rows `first..first + n` (multiples of 16) for every input.
    ///
    /// # Safety
    /// AVX-512 F, BW and VNNI; `panels` built from `self.m`, whose rows `first..first + n`
    /// exist; `out` holds `t × out_n` values with `out_n ≥ n` (input-major, as `rows`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn panel_rows(&self, panels: &Panels, first: usize, n: usize, out: &mut [f32]) {
        match self.m.dtype {
            GgmlType::Q4_1 => unsafe {
                self.panel_rows_of::<{ avx2::Q4_1 }>(panels, first, n, out)
            },
            GgmlType::Q4_0 => unsafe {
                self.panel_rows_of::<{ avx2::Q4_0 }>(panels, first, n, out)
            },
            GgmlType::Q8_0 => unsafe {
                self.panel_rows_of::<{ avx2::Q8_0 }>(panels, first, n, out)
            },
            GgmlType::F32 | GgmlType::F16 => unreachable!("matmul_dequantised takes these"),
        }
    }

    /// # Safety
    /// As `panel_rows`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn panel_rows_of<const Q: u8>(
        &self,
        panels: &Panels,
        first: usize,
        n: usize,
        out: &mut [f32],
    ) {
        let t = self.x.rows();
        let out_n = out.len() / t;
        // The bounds every access below relies on, checked once.
        assert!(first.is_multiple_of(PANEL) && n.is_multiple_of(PANEL) && n <= out_n);
        assert!((first + n) / PANEL * panels.blocks * PANEL <= panels.d.len());
        assert_eq!(panels.blocks, self.x.blocks);
        for p in 0..n / PANEL {
            let panel = first / PANEL + p;
            let mut j = 0;
            // SAFETY (all four): the bounds asserted above, j + N ≤ t.
            while j + 4 <= t {
                unsafe { self.panel_tile::<Q, 4>(panels, panel, j, out_n, p * PANEL, out) };
                j += 4;
            }
            match t - j {
                1 => unsafe { self.panel_tile::<Q, 1>(panels, panel, j, out_n, p * PANEL, out) },
                2 => unsafe { self.panel_tile::<Q, 2>(panels, panel, j, out_n, p * PANEL, out) },
                3 => unsafe { self.panel_tile::<Q, 3>(panels, panel, j, out_n, p * PANEL, out) },
                _ => {}
            }
        }
    }

    /// One panel (16 weight rows) times inputs `j0..j0 + N`: `out[(j0 + jj) × out_n + at..][..16]`.
    /// Each block's levels are unpacked once into eight registers and multiplied into the N
    /// inputs; per (row, input) the block sum is exact in its lane and the floats are
    /// `row_dot_portable`'s, in its order: `lanes[b mod 4] += (d · d_x) · Σ (+ m · s_x)`, then
    /// `(l0 + l1) + (l2 + l3)`, 16 rows at a time.
    ///
    /// # Safety
    /// As `panel_rows`, with `panel` one of its panels, `j0 + N ≤ t` and `at + 16 ≤ out_n`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn panel_tile<const Q: u8, const N: usize>(
        &self,
        panels: &Panels,
        panel: usize,
        j0: usize,
        out_n: usize,
        at: usize,
        out: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let x = self.x;
        let blocks = x.blocks;
        let per = if Q == avx2::Q8_0 { 8 } else { 4 };
        // SAFETY: the caller's bounds: panel `panel`'s blocks lie in `groups`, `d` and `m`;
        // input j0 + jj's blocks in `x`; the stores in `out`.
        unsafe {
            let mut lanes = [[_mm512_setzero_ps(); 4]; N];
            let nibbles = _mm512_set1_epi8(15);
            for b4 in (0..blocks).step_by(4) {
                for (k, b) in (b4..(b4 + 4).min(blocks)).enumerate() {
                    let pb = panel * blocks + b;
                    let gp = panels.groups.as_ptr().add(pb * per) as *const __m512i;
                    let mut w = [_mm512_setzero_si512(); 8];
                    if Q == avx2::Q8_0 {
                        for (g, w) in w.iter_mut().enumerate() {
                            *w = _mm512_load_si512(gp.add(g));
                        }
                    } else {
                        for g in 0..4 {
                            let v = _mm512_load_si512(gp.add(g));
                            w[g] = _mm512_and_si512(v, nibbles);
                            w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibbles);
                        }
                    }
                    let d = _mm512_loadu_ps(panels.d.as_ptr().add(pb * PANEL));
                    let m = if Q == avx2::Q4_1 {
                        _mm512_loadu_ps(panels.m.as_ptr().add(pb * PANEL))
                    } else {
                        _mm512_setzero_ps()
                    };
                    for (jj, lanes) in lanes.iter_mut().enumerate() {
                        let gx = (j0 + jj) * blocks + b;
                        let xq = x.q.as_ptr().add(gx * 32);
                        let mut s = _mm512_setzero_si512();
                        for (g, &w) in w.iter().enumerate() {
                            let four = (xq.add(4 * g) as *const i32).read_unaligned();
                            s = _mm512_dpbusd_epi32(s, w, _mm512_set1_epi32(four));
                        }
                        match Q {
                            avx2::Q4_0 => {
                                let ls = *x.level_sum.get_unchecked(gx);
                                s = _mm512_sub_epi32(s, _mm512_set1_epi32(8 * ls));
                            }
                            avx2::Q8_0 => {
                                let ls = *x.level_sum.get_unchecked(gx);
                                s = _mm512_sub_epi32(s, _mm512_set1_epi32(128 * ls));
                            }
                            _ => {}
                        }
                        let dd = _mm512_mul_ps(d, _mm512_set1_ps(*x.scale.get_unchecked(gx)));
                        let mut c = _mm512_mul_ps(dd, _mm512_cvtepi32_ps(s));
                        if Q == avx2::Q4_1 {
                            let sx = _mm512_set1_ps(*x.sum.get_unchecked(gx));
                            c = _mm512_add_ps(c, _mm512_mul_ps(m, sx));
                        }
                        lanes[k] = _mm512_add_ps(lanes[k], c);
                    }
                }
            }
            for (jj, l) in lanes.iter().enumerate() {
                let total = _mm512_add_ps(_mm512_add_ps(l[0], l[1]), _mm512_add_ps(l[2], l[3]));
                _mm512_storeu_ps(out.as_mut_ptr().add((j0 + jj) * out_n + at), total);
            }
        }
    }

    /// `row_dot_portable` in wasm simd128: products in `i32x4_dot_i16x8`, four blocks' sums
    /// gathered by shuffles, then the same four lanes of floats.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn row_dot_simd128(&self, row: &[u8], j: usize) -> f32 {
        use core::arch::wasm32::*;
        let x = self.x;
        let dtype = self.m.dtype;
        let bytes = dtype.block().1 as usize;
        let blocks = row.len() / bytes;
        let first = j * x.blocks;
        let load = |b: &[u8]| -> v128 {
            let b: &[u8; 16] = b[..16].try_into().expect("16 bytes");
            // SAFETY: `b` is 16 readable bytes; wasm loads need no alignment.
            unsafe { v128_load(b.as_ptr() as *const v128) }
        };
        let dot = |w: v128, x: v128| -> v128 {
            // w and x as i8x16 → two i16x8 products summed in pairs.
            i32x4_add(
                i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), i16x8_extend_low_i8x16(x)),
                i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), i16x8_extend_high_i8x16(x)),
            )
        };
        // Four i32 partial sums whose total is the block's Σ q_w q_x.
        let block_sum = |b: usize| -> v128 {
            let block = &row[b * bytes..(b + 1) * bytes];
            let g = (first + b) * 32;
            // SAFETY-free: i8 and u8 have the same layout; `load` checks the length.
            let xq: &[u8] = bytemuck_i8(&x.q[g..g + 32]);
            let (x0, x1) = (load(xq), load(&xq[16..]));
            match dtype {
                GgmlType::Q4_1 | GgmlType::Q4_0 => {
                    let at = if dtype == GgmlType::Q4_1 { 4 } else { 2 };
                    let v = load(&block[at..]);
                    let lo = v128_and(v, u8x16_splat(15));
                    let hi = u8x16_shr(v, 4);
                    i32x4_add(dot(lo, x0), dot(hi, x1))
                }
                GgmlType::Q8_0 => {
                    i32x4_add(dot(load(&block[2..]), x0), dot(load(&block[18..]), x1))
                }
                GgmlType::F32 | GgmlType::F16 => unreachable!("matmul_dequantised takes these"),
            }
        };
        let mut lanes = f32x4_splat(0.0);
        let whole = blocks / 4 * 4;
        for b in (0..whole).step_by(4) {
            let (s0, s1, s2, s3) = (
                block_sum(b),
                block_sum(b + 1),
                block_sum(b + 2),
                block_sum(b + 3),
            );
            // Transpose-and-add: lane k becomes the total of s_k.
            let t01 = i32x4_add(
                i32x4_shuffle::<0, 4, 1, 5>(s0, s1),
                i32x4_shuffle::<2, 6, 3, 7>(s0, s1),
            );
            let t23 = i32x4_add(
                i32x4_shuffle::<0, 4, 1, 5>(s2, s3),
                i32x4_shuffle::<2, 6, 3, 7>(s2, s3),
            );
            let mut levels = i32x4_add(
                i32x4_shuffle::<0, 1, 4, 5>(t01, t23),
                i32x4_shuffle::<2, 3, 6, 7>(t01, t23),
            );
            let g = first + b;
            if dtype == GgmlType::Q4_0 {
                let ls = &x.level_sum[g..g + 4];
                levels = i32x4_sub(levels, i32x4_shl(i32x4(ls[0], ls[1], ls[2], ls[3]), 3));
            }
            let scale = |k: usize| self.scales(&row[(b + k) * bytes..]);
            let (c0, c1, c2, c3) = (scale(0), scale(1), scale(2), scale(3));
            let xs = &x.scale[g..g + 4];
            let dd = f32x4_mul(
                f32x4(c0.0, c1.0, c2.0, c3.0),
                f32x4(xs[0], xs[1], xs[2], xs[3]),
            );
            let mut c = f32x4_mul(dd, f32x4_convert_i32x4(levels));
            if dtype == GgmlType::Q4_1 {
                let s = &x.sum[g..g + 4];
                c = f32x4_add(
                    c,
                    f32x4_mul(f32x4(c0.1, c1.1, c2.1, c3.1), f32x4(s[0], s[1], s[2], s[3])),
                );
            }
            lanes = f32x4_add(lanes, c);
        }
        let mut l = [
            f32x4_extract_lane::<0>(lanes),
            f32x4_extract_lane::<1>(lanes),
            f32x4_extract_lane::<2>(lanes),
            f32x4_extract_lane::<3>(lanes),
        ];
        for b in whole..blocks {
            let s = block_sum(b);
            let mut levels = i32x4_extract_lane::<0>(s)
                + i32x4_extract_lane::<1>(s)
                + i32x4_extract_lane::<2>(s)
                + i32x4_extract_lane::<3>(s);
            if dtype == GgmlType::Q4_0 {
                levels -= 8 * x.level_sum[first + b];
            }
            l[b % 4] += self.contribution(&row[b * bytes..], first + b, levels);
        }
        (l[0] + l[1]) + (l[2] + l[3])
    }
}

/// Weight rows a panel puts side by side: one per 32-bit lane of a 512-bit register.
pub(crate) const PANEL: usize = 16;

/// 64 bytes aligned to a cache line, so that a panel group's load never straddles two.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Group([u8; 64]);

/// A matrix's whole panels of 16 rows regrouped for `vpdpbusd` (AVX-512 VNNI): per (panel,
/// block) the block's levels as groups of 64 bytes whose 32-bit lane `r` holds four
/// consecutive levels of the panel's row `r`, and the 16 rows' scales (and Q4_1 offsets)
/// as floats. Broadcasting four input levels then multiplies them into 16 rows at once,
/// and eight such products add up each row's block sum exactly in its own lane: no
/// horizontal sum per (row, input, block), which is where `row_dot_avx2` spends most of its
/// instructions (hadd trees and a table look-up per scale), and each panel's levels are
/// unpacked once for four input rows (`Int8Kernel::panel_tile`).
///
/// Q4_1/Q4_0 keep the file's packed bytes (byte k: level k in the low nibble, level k + 16
/// in the high one), four groups a block, unpacked by a mask and a shift. Q8_0's signed
/// levels are stored plus 128 as unsigned bytes, eight groups a block, because `vpdpbusd`
/// multiplies unsigned by signed bytes; Σ (w + 128) x − 128 Σ x is the same integer.
/// Built once per matrix, on first use (`QMatrix::int8_panels`): about the size of the
/// quantised matrix again.
pub(crate) struct Panels {
    groups: Vec<Group>,
    /// Per (panel, block): the 16 rows' `d`.
    d: Vec<f32>,
    /// Per (panel, block): the 16 rows' `m` (Q4_1; empty otherwise).
    m: Vec<f32>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    blocks: usize,
}

impl Panels {
    /// Whether this CPU runs the panel kernel.
    pub(crate) fn supported() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The whole panels of `m` (its first `rows / 16 · 16` rows); None for F32/F16.
    pub(crate) fn build(m: &QMatrix, table: &[f32]) -> Option<Panels> {
        let (levels_at, per) = match m.dtype {
            GgmlType::Q4_1 => (4, 4),
            GgmlType::Q4_0 => (2, 4),
            GgmlType::Q8_0 => (2, 8),
            GgmlType::F32 | GgmlType::F16 => return None,
        };
        let blocks = m.cols / 32;
        let bytes = m.dtype.block().1 as usize;
        let panels = m.rows / PANEL;
        let mut p = Panels {
            groups: vec![Group([0; 64]); panels * blocks * per],
            d: vec![0.0; panels * blocks * PANEL],
            m: if m.dtype == GgmlType::Q4_1 {
                vec![0.0; panels * blocks * PANEL]
            } else {
                Vec::new()
            },
            blocks,
        };
        let half = |b: &[u8]| table[u16::from_le_bytes([b[0], b[1]]) as usize];
        for panel in 0..panels {
            for r in 0..PANEL {
                let row = m.row_bytes_of(panel * PANEL + r);
                for (b, block) in row.chunks_exact(bytes).enumerate() {
                    let pb = panel * blocks + b;
                    p.d[pb * PANEL + r] = half(block);
                    if m.dtype == GgmlType::Q4_1 {
                        p.m[pb * PANEL + r] = half(&block[2..]);
                    }
                    for g in 0..per {
                        let lane = &mut p.groups[pb * per + g].0[4 * r..4 * r + 4];
                        let src = &block[levels_at + 4 * g..levels_at + 4 * g + 4];
                        for (o, &v) in lane.iter_mut().zip(src) {
                            *o = if m.dtype == GgmlType::Q8_0 {
                                v ^ 0x80
                            } else {
                                v
                            };
                        }
                    }
                }
            }
        }
        Some(p)
    }
}

/// i8 levels as bytes, for the simd128 loads.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn bytemuck_i8(v: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len()) }
}

/// The AVX2 block product, a function of its own so that it inlines into the row loop.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    pub const Q4_1: u8 = 0;
    pub const Q4_0: u8 = 1;
    pub const Q8_0: u8 = 2;

    pub const fn block_bytes(q: u8) -> usize {
        match q {
            Q4_1 => 20,
            Q4_0 => 18,
            _ => 34,
        }
    }

    /// Eight i32 partial sums whose total is the block's Σ q_w · q_x (for Q4_0 before the
    /// −8 · Σ q_x).
    ///
    /// # Safety
    /// AVX2; `block` points at one whole block of type `Q`, `xq` at 32 levels.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn block_levels<const Q: u8>(block: *const u8, xq: *const i8) -> __m256i {
        // SAFETY: the caller's contract; the loadu forms need no alignment.
        unsafe {
            let xv = _mm256_loadu_si256(xq as *const __m256i);
            let products = if Q == Q8_0 {
                let w = _mm256_loadu_si256(block.add(2) as *const __m256i);
                // maddubs multiplies unsigned by signed: |w| times x with w's sign (|w| ≤ 128,
                // |x| ≤ 127, so the i16 pairs cannot saturate).
                _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w))
            } else {
                let at = if Q == Q4_1 { 4 } else { 2 };
                let v = _mm_loadu_si128(block.add(at) as *const __m128i);
                let nibbles = _mm_set1_epi8(15);
                let lo = _mm_and_si128(v, nibbles);
                let hi = _mm_and_si128(_mm_srli_epi16(v, 4), nibbles);
                // Elements 0–15 are the low nibbles, 16–31 the high ones, as in x.
                _mm256_maddubs_epi16(_mm256_set_m128i(hi, lo), xv)
            };
            _mm256_madd_epi16(products, _mm256_set1_epi16(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::lm::quant::{dequantize, quantize};

    fn weights(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i * 7919 % 997) as f32 - 498.0) / 311.0)
            .collect()
    }

    /// Against the f64 product of the dequantised weights with the dequantised (rounded)
    /// inputs, Q4_1's offsets included: the integer sums are exact, so only the block scales'
    /// rounding remains.
    #[test]
    fn int8_product_is_the_product_of_the_rounded_inputs() {
        let (rows, cols) = (37, 224); // 7 blocks: one group of four and a tail of three
        let w = weights(rows, cols);
        for dtype in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_0] {
            let bytes = Arc::new(quantize(dtype, &w));
            let m = QMatrix::new(dtype, rows, cols, bytes.clone(), 0);
            let mut deq = vec![0f32; rows * cols];
            dequantize(dtype, &bytes, &mut deq);
            for t in [1, 3] {
                let x: Vec<f32> = (0..t * cols)
                    .map(|i| (i as f32 * 0.731).sin() * 3.0)
                    .collect();
                let xq = Int8Rows::quantize(&x, cols);
                let rounded: Vec<f64> =
                    xq.q.iter()
                        .enumerate()
                        .map(|(i, &q)| q as f64 * xq.scale[i / 32] as f64)
                        .collect();
                let mut out = vec![0f32; t * rows];
                m.matmul_int8(&x, &mut out);
                for j in 0..t {
                    for r in 0..rows {
                        let want: f64 = (0..cols)
                            .map(|c| deq[r * cols + c] as f64 * rounded[j * cols + c])
                            .sum();
                        let got = out[j * rows + r] as f64;
                        assert!(
                            (got - want).abs() < 1e-3,
                            "{dtype:?} t={t}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// The AVX-512 quantiser gives the scalar loop's levels and scales, halfway cases (which
    /// `f32::round` takes away from zero) and blocks it leaves to the scalar loop included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_quantiser_gives_the_scalar_levels() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let mut blocks: Vec<Vec<f32>> = (0..200)
            .map(|b| {
                (0..32)
                    .map(|i| ((b * 131 + i * 7919) % 1013) as f32 / 37.0 - 13.0)
                    .collect()
            })
            .collect();
        // amax 127: the levels are the values, so k + ½ is a tie.
        blocks.push(
            (0..32)
                .map(|i| i as f32 - 16.5)
                .chain([127.0])
                .skip(1)
                .collect(),
        );
        blocks.push(
            (0..32)
                .map(|i| if i == 0 { -127.0 } else { 0.5 - i as f32 })
                .collect(),
        );
        blocks.push(vec![0.0; 32]);
        blocks.push((0..32).map(|i| i as f32 * 1e-38).collect());
        blocks.push(
            (0..32)
                .map(|i| if i == 3 { f32::NAN } else { 1.0 })
                .collect(),
        );
        for block in &blocks {
            let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            let want: Vec<i8> = block.iter().map(|v| (v * inv).round() as i8).collect();
            let mut got = vec![0i8; 32];
            // SAFETY: AVX-512 F was detected; 32 elements each.
            match unsafe { quantize_block_avx512(block, &mut got) } {
                Some((d, levels)) => {
                    assert_eq!(got, want, "{block:?}");
                    assert_eq!(d.to_bits(), (amax / 127.0).to_bits());
                    assert_eq!(levels, want.iter().map(|&l| l as i32).sum::<i32>());
                }
                None => assert!(amax < 1e-30 || block.iter().any(|v| !v.is_finite())),
            }
        }
    }

    /// Every build (AVX2 or AVX-512 VNNI panels here, simd128 in wasm) must give the
    /// portable definition's bits: per row and input, and through `rows` with and without
    /// panels, for input counts that are and are not multiples of the panel kernel's four,
    /// matrices with a partial last panel, and tasks that start past the first panel.
    #[test]
    fn simd_builds_give_the_portable_bits() {
        let cols = 576; // the model's width: 18 blocks, a tail of two
        for (rows, first) in [(29, 0), (48, 16), (64, 32)] {
            let w = weights(rows, cols);
            for dtype in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_0] {
                let m = QMatrix::new(dtype, rows, cols, Arc::new(quantize(dtype, &w)), 0);
                let table = crate::lm::quant::f16_table();
                let panels = Panels::supported()
                    .then(|| Panels::build(&m, table))
                    .flatten();
                for t in [1, 2, 3, 4, 5, 7, 9] {
                    let x: Vec<f32> = (0..t * cols)
                        .map(|i| (i as f32 * 0.37).cos() * 5.0 + (i % 7) as f32 * 0.25)
                        .collect();
                    let xq = Int8Rows::quantize(&x, cols);
                    let kernel = |panels| Int8Kernel {
                        m: &m,
                        table,
                        x: &xq,
                        panels,
                    };
                    let n = rows - first;
                    let want: Vec<u32> = (0..t)
                        .flat_map(|j| (first..rows).map(move |r| (j, r)))
                        .map(|(j, r)| {
                            let k = kernel(None);
                            let row = m.row_bytes_of(r);
                            let (a, b) = (k.row_dot_portable(row, j), k.row_dot(row, j));
                            assert_eq!(a.to_bits(), b.to_bits(), "{dtype:?} row {r} input {j}");
                            a.to_bits()
                        })
                        .collect();
                    for p in [None, panels.as_ref()] {
                        let mut out = vec![0f32; t * n];
                        kernel(p).rows(first, &mut out);
                        let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(
                            got,
                            want,
                            "{dtype:?}, {rows} rows from {first}, t = {t}, panels: {}",
                            p.is_some()
                        );
                    }
                }
            }
        }
    }
}
