//! ggml tensor types and the matrix product over them.
//!
//! Weights stay quantised in memory. A product with a quantised matrix works block by block
//! (`BlockKernel`: per 32 weights `d · Σ q·x + m · Σ x`, each block unpacked once for every
//! input row of a prompt chunk), in f32 with eight lanes summed in a fixed order and no
//! fused multiply-add, so native and wasm builds give the same bits whatever the SIMD width
//! (Rust never contracts `a * b + c` on its own). Why not candle: BENCHMARKS.md.

use std::sync::Arc;

use half::f16;

use super::int8::{Int8Kernel, Int8Rows, Panels};
use crate::core::par::{for_each_chunk_mut, for_each_owned};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
}

impl GgmlType {
    pub const SUPPORTED: &'static str = "F32, F16, Q4_0, Q4_1 and Q8_0";

    pub fn from_id(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
        }
    }

    /// ggml's names for its type ids, for error messages about the ones not run here.
    pub fn name_of(id: u32) -> &'static str {
        const NAMES: [&str; 31] = [
            "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
            "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
            "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
            "BF16",
        ];
        NAMES.get(id as usize).copied().unwrap_or("unknown")
    }

    pub fn name(self) -> &'static str {
        GgmlType::name_of(self.id())
    }

    /// (elements per block, bytes per block).
    pub fn block(self) -> (u64, u64) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q8_0 => (32, 34),
        }
    }

    /// Bytes of a tensor of these dims; None if a row is not whole blocks or the size
    /// overflows.
    pub fn byte_len(self, dims: &[u64]) -> Option<u64> {
        let (per, bytes) = self.block();
        let row = *dims.first()?;
        if row % per != 0 {
            return None;
        }
        let rows = dims[1..].iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        (row / per).checked_mul(bytes)?.checked_mul(rows)
    }
}

fn half(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// Dequantises the whole blocks in `src` into `out` (`out.len()` elements).
pub fn dequantize(dtype: GgmlType, src: &[u8], out: &mut [f32]) {
    match dtype {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                *o = half(b);
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(src.chunks_exact(18)) {
                let d = half(b);
                for j in 0..16 {
                    o[j] = ((b[2 + j] & 15) as i32 - 8) as f32 * d;
                    o[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, b) in out.chunks_exact_mut(32).zip(src.chunks_exact(20)) {
                let (d, m) = (half(b), half(&b[2..]));
                for j in 0..16 {
                    o[j] = (b[4 + j] & 15) as f32 * d + m;
                    o[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
                }
            }
        }
        GgmlType::Q8_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(src.chunks_exact(34)) {
                let d = half(b);
                for j in 0..32 {
                    o[j] = (b[2 + j] as i8) as f32 * d;
                }
            }
        }
    }
}

/// Encodes `values` (whole blocks) in `dtype`, as llama.cpp's reference quantisers do.
pub fn quantize(dtype: GgmlType, values: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    match dtype {
        GgmlType::F32 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
        GgmlType::F16 => values
            .iter()
            .for_each(|v| out.extend(f16::from_f32(*v).to_le_bytes())),
        GgmlType::Q4_0 => {
            for block in values.chunks_exact(32) {
                let max = block
                    .iter()
                    .copied()
                    .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                    .unwrap_or(0.0);
                let d = max / -8.0;
                let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                let q = |x: f32| ((x * inv + 8.5) as i32).clamp(0, 15) as u8;
                for j in 0..16 {
                    out.push(q(block[j]) | (q(block[j + 16]) << 4));
                }
            }
        }
        GgmlType::Q4_1 => {
            for block in values.chunks_exact(32) {
                let min = block.iter().copied().fold(f32::INFINITY, f32::min);
                let max = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let d = (max - min) / 15.0;
                let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(f16::from_f32(min).to_le_bytes());
                let q = |x: f32| (((x - min) * inv + 0.5) as i32).clamp(0, 15) as u8;
                for j in 0..16 {
                    out.push(q(block[j]) | (q(block[j + 16]) << 4));
                }
            }
        }
        GgmlType::Q8_0 => {
            for block in values.chunks_exact(32) {
                let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(f16::from_f32(d).to_le_bytes());
                out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
            }
        }
    }
    out
}

/// Σ a·b with eight independent lanes summed in a fixed order: vectorised by the compiler,
/// the same bits on every target.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        lanes[i] += x * y;
    }
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
}

/// How products with quantised weights treat their f32 inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activations {
    /// Kept in f32 (`QMatrix::matmul`): the result `transformers` is compared with at 1e-3.
    #[default]
    F32,
    /// Rounded to 8 bits per 32-element block, integer block products
    /// (`QMatrix::matmul_int8`), as llama.cpp computes.
    Int8,
}

/// A 2-D weight `rows × cols` (ggml: dims `[cols, rows]`), stored as the file has it.
#[derive(Clone)]
pub struct QMatrix {
    pub dtype: GgmlType,
    pub rows: usize,
    pub cols: usize,
    bytes: Arc<Vec<u8>>,
    start: usize,
    row_bytes: usize,
    /// The rows regrouped for the AVX-512 VNNI int8 kernel, built on first use where the
    /// CPU has it (shared by clones: the tied output embedding is the input one).
    panels: Arc<std::sync::OnceLock<Option<Panels>>>,
}

/// Rows a parallel task takes: enough to amortise the task, few enough to share 2 cores.
const ROWS_PER_TASK: usize = 32;

impl QMatrix {
    /// `bytes[start..]` must hold `rows` rows of `cols` elements of `dtype` (checked by the
    /// GGUF reader).
    pub fn new(
        dtype: GgmlType,
        rows: usize,
        cols: usize,
        bytes: Arc<Vec<u8>>,
        start: usize,
    ) -> QMatrix {
        let (per, b) = dtype.block();
        let row_bytes = (cols as u64 / per * b) as usize;
        QMatrix {
            dtype,
            rows,
            cols,
            bytes,
            start,
            row_bytes,
            panels: Arc::default(),
        }
    }

    /// The panels of `super::int8::Panels`, where this CPU runs their kernel.
    pub(crate) fn int8_panels(&self) -> Option<&Panels> {
        if !Panels::supported() {
            return None;
        }
        self.panels
            .get_or_init(|| Panels::build(self, f16_table()))
            .as_ref()
    }

    /// Row `r`'s bytes as the file stores them.
    pub(crate) fn row_bytes_of(&self, r: usize) -> &[u8] {
        let at = self.start + r * self.row_bytes;
        &self.bytes[at..at + self.row_bytes]
    }

    pub fn row_into(&self, r: usize, out: &mut [f32]) {
        let at = self.start + r * self.row_bytes;
        dequantize(
            self.dtype,
            &self.bytes[at..at + self.row_bytes],
            &mut out[..self.cols],
        );
    }

    /// `out[t × rows + r] = x[t] · W[r]` for the `t = x.len() / cols` input rows.
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) {
        let t = x.len() / self.cols;
        debug_assert_eq!(out.len(), t * self.rows);
        if matches!(self.dtype, GgmlType::F32 | GgmlType::F16) {
            return self.matmul_dequantised(x, t, out);
        }
        // Σ of each input row's 32-element blocks: a Q4_1 block's offset m multiplies it.
        let blocks = self.cols / 32;
        let sums: Vec<f32> = x.chunks_exact(32).map(|b| b.iter().sum()).collect();
        let table = f16_table();
        let kernel = BlockKernel {
            m: self,
            table,
            x,
            sums: &sums,
            t,
            blocks,
        };
        self.by_row_tasks(t, out, |first, out| kernel.rows(first, out));
    }

    /// Runs `rows(first, out)` (`out[i × t + j] = W[first + i] · x[j]`) over every weight row
    /// on all cores and leaves the products in `out` as `out[j × rows + r]`.
    fn by_row_tasks(
        &self,
        t: usize,
        out: &mut [f32],
        rows: impl Fn(usize, &mut [f32]) + Sync + Send,
    ) {
        if t == 1 {
            for_each_chunk_mut(out, ROWS_PER_TASK, |chunk, out| {
                rows(chunk * ROWS_PER_TASK, out)
            });
            return;
        }
        // Row-major by weight row so that tasks own contiguous output, then transposed.
        let mut by_row = vec![0f32; t * self.rows];
        for_each_chunk_mut(&mut by_row, ROWS_PER_TASK * t, |chunk, out| {
            rows(chunk * ROWS_PER_TASK, out)
        });
        for r in 0..self.rows {
            for j in 0..t {
                out[j * self.rows + r] = by_row[r * t + j];
            }
        }
    }

    /// `matmul` with the inputs rounded to 8 bits per block and integer block products
    /// (`super::int8`): faster, and further from the f32 result. F32 and F16 weights take the
    /// f32 path.
    pub fn matmul_int8(&self, x: &[f32], out: &mut [f32]) {
        let t = x.len() / self.cols;
        debug_assert_eq!(out.len(), t * self.rows);
        if matches!(self.dtype, GgmlType::F32 | GgmlType::F16) {
            return self.matmul_dequantised(x, t, out);
        }
        let xq = Int8Rows::quantize(x, self.cols);
        let kernel = Int8Kernel {
            m: self,
            table: f16_table(),
            x: &xq,
            panels: self.int8_panels(),
        };
        if t == 1 {
            for_each_chunk_mut(out, ROWS_PER_TASK, |chunk, out| {
                kernel.rows(chunk * ROWS_PER_TASK, out)
            });
            return;
        }
        // Each task's rows for every input (`Int8Kernel::rows` is input-major), then each
        // input's rows put together.
        let mut by_task = vec![0f32; t * self.rows];
        for_each_chunk_mut(&mut by_task, ROWS_PER_TASK * t, |chunk, out| {
            kernel.rows(chunk * ROWS_PER_TASK, out)
        });
        self.gather_tasks(t, &by_task, out);
    }

    /// Several matrices times the same inputs (q, k and v; gate and up) with 8-bit inputs,
    /// quantised once and in one parallel dispatch instead of one each: with two threads the
    /// per-dispatch wake-ups were a large part of a generated token's time (int8 generation
    /// at 2 threads 72 → 84 tokens/s, BENCHMARKS.md). Each output row is computed by the same
    /// kernel as in `matmul_int8`, so the bits are the same. The f32 path and other shapes
    /// take the products one by one: grouped, f32 generation at one thread measured slower
    /// (38 → 29 tokens/s), which was not investigated further.
    pub fn matvec_group(group: &mut [(&QMatrix, &mut [f32])], x: &[f32], activations: Activations) {
        let cols = group.first().map_or(0, |(m, _)| m.cols);
        let t = x.len().checked_div(cols).unwrap_or(0);
        let groupable = activations == Activations::Int8
            && t > 0
            && group.iter().all(|(m, out)| {
                m.cols == cols
                    && x.len() == t * cols
                    && out.len() == t * m.rows
                    && !matches!(m.dtype, GgmlType::F32 | GgmlType::F16)
            });
        if !groupable {
            for (m, out) in group.iter_mut() {
                match activations {
                    Activations::F32 => m.matmul(x, out),
                    Activations::Int8 => m.matmul_int8(x, out),
                }
            }
            return;
        }
        let xq = Int8Rows::quantize(x, cols);
        let table = f16_table();
        let kernels: Vec<Int8Kernel> = group
            .iter()
            .map(|(m, _)| Int8Kernel {
                m,
                table,
                x: &xq,
                panels: m.int8_panels(),
            })
            .collect();
        // One input: each task writes its rows of the output itself. Several: each task's
        // rows for every input (`Int8Kernel::rows` is input-major), put together after.
        let mut by_task: Vec<Vec<f32>> = if t == 1 {
            Vec::new()
        } else {
            group.iter().map(|(m, _)| vec![0f32; t * m.rows]).collect()
        };
        let mut chunks: Vec<(usize, usize, &mut [f32])> = Vec::new();
        if t == 1 {
            for (g, (_, out)) in group.iter_mut().enumerate() {
                for (c, chunk) in out.chunks_mut(ROWS_PER_TASK).enumerate() {
                    chunks.push((g, c * ROWS_PER_TASK, chunk));
                }
            }
        } else {
            for (g, buffer) in by_task.iter_mut().enumerate() {
                for (c, chunk) in buffer.chunks_mut(ROWS_PER_TASK * t).enumerate() {
                    chunks.push((g, c * ROWS_PER_TASK, chunk));
                }
            }
        }
        for_each_owned(chunks, |(g, first, out)| kernels[g].rows(first, out));
        for ((m, out), buffer) in group.iter_mut().zip(&by_task) {
            m.gather_tasks(t, buffer, out);
        }
    }

    /// `out[j × rows + r]` from tasks of `ROWS_PER_TASK` rows each written input-major.
    fn gather_tasks(&self, t: usize, by_task: &[f32], out: &mut [f32]) {
        for (chunk, task) in by_task.chunks(ROWS_PER_TASK * t).enumerate() {
            let n = task.len() / t;
            for (j, from) in task.chunks_exact(n).enumerate() {
                let at = j * self.rows + chunk * ROWS_PER_TASK;
                out[at..at + n].copy_from_slice(from);
            }
        }
    }

    /// F32 and F16 weights (norms and small test models): the row dequantised, then `dot`.
    fn matmul_dequantised(&self, x: &[f32], t: usize, out: &mut [f32]) {
        let mut by_row = vec![0f32; t * self.rows];
        for_each_chunk_mut(&mut by_row, ROWS_PER_TASK * t, |chunk, out| {
            let mut w = vec![0f32; self.cols];
            for (i, o) in out.chunks_mut(t).enumerate() {
                self.row_into(chunk * ROWS_PER_TASK + i, &mut w);
                for (j, v) in o.iter_mut().enumerate() {
                    *v = dot(&w, &x[j * self.cols..(j + 1) * self.cols]);
                }
            }
        });
        for r in 0..self.rows {
            for j in 0..t {
                out[j * self.rows + r] = by_row[r * t + j];
            }
        }
    }
}

/// f16 bits → f32 for all 65,536 patterns, built once: every block scale goes through it.
/// (`half`'s conversion asks the CPU for F16C on each call, which profiled at a tenth of
/// generation time; the table is 256 KiB and stays in cache.)
pub(crate) fn f16_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| (0..=u16::MAX).map(|b| f16::from_bits(b).to_f32()).collect())
}

/// The fused product of quantised rows with f32 inputs, without unpacking a row into
/// memory: per 32-weight block `d · Σ q·x (+ m · Σ x)`, the Σ q·x in eight lanes that carry
/// across blocks and are summed once per row in a fixed order. No fused multiply-add and a
/// fixed order, so the same bits on every build (baseline x86-64, AVX2, wasm simd128).
/// Hand-written because candle's CPU kernels are scalar for Q4_1 (BENCHMARKS.md); measured
/// there against the unpack-then-dot path it replaced.
struct BlockKernel<'a> {
    m: &'a QMatrix,
    table: &'a [f32],
    x: &'a [f32],
    sums: &'a [f32],
    t: usize,
    blocks: usize,
}

impl BlockKernel<'_> {
    /// `out[i × t + j] = W[first + i] · x[j]`.
    fn rows(&self, first: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above), the only requirement of
            // `rows_avx2`.
            unsafe { self.rows_avx2(first, out) };
            return;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return self.rows_simd128(first, out);
        #[allow(unreachable_code)]
        self.rows_portable(first, out)
    }

    /// `rows_portable` written out in wasm simd128: LLVM left the portable code's nibble
    /// unpacking scalar on wasm32 (Chromium generated 10 tokens/s). The same operations in
    /// the same order — lanes 0–3 and 4–7 of the eight are two vectors — so the same bits;
    /// tests/js/lm.test.mjs compares its log-probabilities with the native CLI's.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn rows_simd128(&self, first: usize, out: &mut [f32]) {
        use core::arch::wasm32::*;
        let (t, m) = (self.t, self.m);
        let block_bytes = m.dtype.block().1 as usize;
        let mut acc = vec![[f32x4_splat(0.0); 2]; t];
        let mut offsets = vec![0f32; t];
        let load = |b: &[u8], at: usize| -> v128 {
            let bytes: &[u8; 16] = b[at..at + 16].try_into().expect("16 bytes");
            // SAFETY: `bytes` is 16 readable bytes; wasm loads need no alignment.
            unsafe { v128_load(bytes.as_ptr() as *const v128) }
        };
        let loadf = |x: &[f32], at: usize| -> v128 {
            let v: &[f32; 4] = x[at..at + 4].try_into().expect("4 floats");
            // SAFETY: `v` is 16 readable bytes; wasm loads need no alignment.
            unsafe { v128_load(v.as_ptr() as *const v128) }
        };
        // Sixteen u8 → four f32x4 (elements 0–3, 4–7, 8–11, 12–15).
        let unsigned = |v: v128| -> [v128; 4] {
            let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
            [
                f32x4_convert_u32x4(u32x4_extend_low_u16x8(lo)),
                f32x4_convert_u32x4(u32x4_extend_high_u16x8(lo)),
                f32x4_convert_u32x4(u32x4_extend_low_u16x8(hi)),
                f32x4_convert_u32x4(u32x4_extend_high_u16x8(hi)),
            ]
        };
        let signed = |v: v128, minus: i32| -> [v128; 4] {
            let (lo, hi) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
            let f = |w: v128| f32x4_convert_i32x4(i32x4_sub(w, i32x4_splat(minus)));
            [
                f(i32x4_extend_low_i16x8(lo)),
                f(i32x4_extend_high_i16x8(lo)),
                f(i32x4_extend_low_i16x8(hi)),
                f(i32x4_extend_high_i16x8(hi)),
            ]
        };
        for (i, o) in out.chunks_mut(t).enumerate() {
            let at = m.start + (first + i) * m.row_bytes;
            let row = &m.bytes[at..at + m.row_bytes];
            acc.iter_mut().for_each(|a| *a = [f32x4_splat(0.0); 2]);
            offsets.iter_mut().for_each(|v| *v = 0.0);
            for (b, block) in row.chunks_exact(block_bytes).enumerate() {
                let scale =
                    |at: usize| self.table[u16::from_le_bytes([block[at], block[at + 1]]) as usize];
                // q[0..32] as eight f32x4, and the block's scale and offset.
                let (q, d, off): ([v128; 8], f32, Option<f32>) = match m.dtype {
                    GgmlType::Q4_1 | GgmlType::Q4_0 => {
                        let start = if m.dtype == GgmlType::Q4_1 { 4 } else { 2 };
                        let bytes = load(block, start);
                        let lo = v128_and(bytes, u8x16_splat(15));
                        let hi = u8x16_shr(bytes, 4);
                        let (l, h) = if m.dtype == GgmlType::Q4_1 {
                            (unsigned(lo), unsigned(hi))
                        } else {
                            // Nibbles are below 16, so reading them as signed is the same.
                            (signed(lo, 8), signed(hi, 8))
                        };
                        let off = (m.dtype == GgmlType::Q4_1).then(|| scale(2));
                        (
                            [l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]],
                            scale(0),
                            off,
                        )
                    }
                    GgmlType::Q8_0 => {
                        let (a, c) = (signed(load(block, 2), 0), signed(load(block, 18), 0));
                        (
                            [a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3]],
                            scale(0),
                            None,
                        )
                    }
                    GgmlType::F32 | GgmlType::F16 => unreachable!("matmul_dequantised takes these"),
                };
                let dv = f32x4_splat(d);
                for j in 0..t {
                    let base = (j * self.blocks + b) * 32;
                    let (mut p0, mut p1) = (f32x4_splat(0.0), f32x4_splat(0.0));
                    for k in 0..4 {
                        p0 = f32x4_add(p0, f32x4_mul(q[2 * k], loadf(self.x, base + 8 * k)));
                        p1 =
                            f32x4_add(p1, f32x4_mul(q[2 * k + 1], loadf(self.x, base + 8 * k + 4)));
                    }
                    let a = &mut acc[j];
                    a[0] = f32x4_add(a[0], f32x4_mul(dv, p0));
                    a[1] = f32x4_add(a[1], f32x4_mul(dv, p1));
                    if let Some(off) = off {
                        offsets[j] += off * self.sums[j * self.blocks + b];
                    }
                }
            }
            for j in 0..t {
                let [lo, hi] = acc[j];
                let a = [
                    f32x4_extract_lane::<0>(lo),
                    f32x4_extract_lane::<1>(lo),
                    f32x4_extract_lane::<2>(lo),
                    f32x4_extract_lane::<3>(lo),
                    f32x4_extract_lane::<0>(hi),
                    f32x4_extract_lane::<1>(hi),
                    f32x4_extract_lane::<2>(hi),
                    f32x4_extract_lane::<3>(hi),
                ];
                o[j] =
                    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + offsets[j];
            }
        }
    }

    /// `rows_portable` in AVX2 intrinsics: the eight lanes are one 256-bit register, the same
    /// operations in the same order, so the same bits (`avx2_kernel_gives_the_portable_bits`).
    /// Written out because LLVM's code for the portable source kept the unpacking narrow:
    /// generation 31 tokens/s with it (BENCHMARKS.md has the figure with this).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn rows_avx2(&self, first: usize, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let (t, m) = (self.t, self.m);
        let block_bytes = m.dtype.block().1 as usize;
        let mut acc = vec![_mm256_setzero_ps(); t];
        let mut offsets = vec![0f32; t];
        // SAFETY (every load below): the slices are checked to hold the bytes read; the
        // loadu/loadl forms need no alignment.
        let load16 = |b: &[u8], at: usize| -> __m128i {
            let bytes: &[u8; 16] = b[at..at + 16].try_into().expect("16 bytes");
            unsafe { _mm_loadu_si128(bytes.as_ptr() as *const __m128i) }
        };
        let loadx = |x: &[f32], at: usize| -> __m256 {
            let v: &[f32; 8] = x[at..at + 8].try_into().expect("8 floats");
            unsafe { _mm256_loadu_ps(v.as_ptr()) }
        };
        // A block's q[0..32] as four f32x8, its scale and offset.
        let unpack = |block: &[u8]| -> ([__m256; 4], f32, Option<f32>) {
            let scale =
                |at: usize| self.table[u16::from_le_bytes([block[at], block[at + 1]]) as usize];
            match m.dtype {
                GgmlType::Q4_1 | GgmlType::Q4_0 => {
                    let q4_1 = m.dtype == GgmlType::Q4_1;
                    let bytes = load16(block, if q4_1 { 4 } else { 2 });
                    let mask = _mm_set1_epi8(15);
                    let lo = _mm_and_si128(bytes, mask);
                    let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
                    let minus = _mm256_set1_epi32(if q4_1 { 0 } else { 8 });
                    let f = |v: __m128i| {
                        _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(v), minus))
                    };
                    let q = [
                        f(lo),
                        f(_mm_srli_si128(lo, 8)),
                        f(hi),
                        f(_mm_srli_si128(hi, 8)),
                    ];
                    (q, scale(0), q4_1.then(|| scale(2)))
                }
                GgmlType::Q8_0 => {
                    let (a, c) = (load16(block, 2), load16(block, 18));
                    let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
                    let q = [f(a), f(_mm_srli_si128(a, 8)), f(c), f(_mm_srli_si128(c, 8))];
                    (q, scale(0), None)
                }
                GgmlType::F32 | GgmlType::F16 => {
                    unreachable!("matmul_dequantised takes these")
                }
            }
        };
        if t == 1 {
            // One input row (generation): the accumulators stay in registers.
            for (i, o) in out.iter_mut().enumerate() {
                let at = m.start + (first + i) * m.row_bytes;
                let mut acc = _mm256_setzero_ps();
                let mut offset = 0f32;
                for (b, block) in m.bytes[at..at + m.row_bytes]
                    .chunks_exact(block_bytes)
                    .enumerate()
                {
                    let (q, d, off) = unpack(block);
                    let mut p = _mm256_setzero_ps();
                    for (k, qk) in q.iter().enumerate() {
                        p = _mm256_add_ps(p, _mm256_mul_ps(*qk, loadx(self.x, b * 32 + 8 * k)));
                    }
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(d), p));
                    if let Some(off) = off {
                        offset += off * self.sums[b];
                    }
                }
                let mut a = [0f32; 8];
                // SAFETY: `a` is eight writable floats.
                unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc) };
                *o = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + offset;
            }
            return;
        }
        for (i, o) in out.chunks_mut(t).enumerate() {
            let at = m.start + (first + i) * m.row_bytes;
            let row = &m.bytes[at..at + m.row_bytes];
            acc.iter_mut().for_each(|a| *a = _mm256_setzero_ps());
            offsets.iter_mut().for_each(|v| *v = 0.0);
            for (b, block) in row.chunks_exact(block_bytes).enumerate() {
                let (q, d, off) = unpack(block);
                let dv = _mm256_set1_ps(d);
                for j in 0..t {
                    let base = (j * self.blocks + b) * 32;
                    let mut p = _mm256_setzero_ps();
                    for (k, qk) in q.iter().enumerate() {
                        p = _mm256_add_ps(p, _mm256_mul_ps(*qk, loadx(self.x, base + 8 * k)));
                    }
                    acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(dv, p));
                    if let Some(off) = off {
                        offsets[j] += off * self.sums[j * self.blocks + b];
                    }
                }
            }
            for j in 0..t {
                let mut a = [0f32; 8];
                // SAFETY: `a` is eight writable floats.
                unsafe { _mm256_storeu_ps(a.as_mut_ptr(), acc[j]) };
                o[j] =
                    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + offsets[j];
            }
        }
    }

    #[inline(always)]
    fn rows_portable(&self, first: usize, out: &mut [f32]) {
        let (t, m) = (self.t, self.m);
        let block_bytes = m.dtype.block().1 as usize;
        let mut acc = vec![[0f32; 8]; t];
        let mut offsets = vec![0f32; t];
        for (i, o) in out.chunks_mut(t).enumerate() {
            let at = m.start + (first + i) * m.row_bytes;
            let row = &m.bytes[at..at + m.row_bytes];
            acc.iter_mut().for_each(|a| *a = [0.0; 8]);
            offsets.iter_mut().for_each(|v| *v = 0.0);
            for (b, block) in row.chunks_exact(block_bytes).enumerate() {
                let mut q = [0f32; 32];
                let (d, off) = unpack(m.dtype, block, self.table, &mut q);
                for j in 0..t {
                    let x: &[f32; 32] = self.x[(j * self.blocks + b) * 32..][..32]
                        .try_into()
                        .expect("32 elements");
                    // Written as whole-lane loops over local arrays so that LLVM keeps the
                    // lanes in one vector register (an expression per lane stayed scalar).
                    let mut p = [0f32; 8];
                    for k in 0..4 {
                        for l in 0..8 {
                            p[l] += q[8 * k + l] * x[8 * k + l];
                        }
                    }
                    let mut a = acc[j];
                    for l in 0..8 {
                        a[l] += d * p[l];
                    }
                    acc[j] = a;
                    if let Some(off) = off {
                        offsets[j] += off * self.sums[j * self.blocks + b];
                    }
                }
            }
            for j in 0..t {
                let a = &acc[j];
                o[j] =
                    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + offsets[j];
            }
        }
    }
}

/// A block's integer levels as f32 (`q`), its scale, and its offset (Q4_1's `m`).
#[inline(always)]
fn unpack(dtype: GgmlType, b: &[u8], table: &[f32], q: &mut [f32; 32]) -> (f32, Option<f32>) {
    let scale = |at: usize| table[u16::from_le_bytes([b[at], b[at + 1]]) as usize];
    match dtype {
        GgmlType::Q4_1 => {
            for j in 0..16 {
                q[j] = (b[4 + j] & 15) as f32;
                q[j + 16] = (b[4 + j] >> 4) as f32;
            }
            (scale(0), Some(scale(2)))
        }
        GgmlType::Q4_0 => {
            for j in 0..16 {
                q[j] = ((b[2 + j] & 15) as i32 - 8) as f32;
                q[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32;
            }
            (scale(0), None)
        }
        GgmlType::Q8_0 => {
            for j in 0..32 {
                q[j] = (b[2 + j] as i8) as f32;
            }
            (scale(0), None)
        }
        GgmlType::F32 | GgmlType::F16 => unreachable!("matmul_dequantised takes these"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_then_dequantise_is_close() {
        let values: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 30.0) / 10.0)
            .collect();
        for (dtype, tol) in [
            (GgmlType::F32, 0.0),
            (GgmlType::F16, 2e-3),
            (GgmlType::Q8_0, 0.02),
            (GgmlType::Q4_1, 0.21),
            (GgmlType::Q4_0, 0.41),
        ] {
            let bytes = quantize(dtype, &values);
            assert_eq!(bytes.len() as u64, dtype.byte_len(&[64]).unwrap());
            let mut back = vec![0f32; 64];
            dequantize(dtype, &bytes, &mut back);
            let err = values
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err <= tol, "{dtype:?}: max error {err}");
        }
    }

    #[test]
    fn q4_1_block_layout_is_ggmls() {
        // d = 0.5, m = -1: element j is low nibble of byte j, element j + 16 its high nibble.
        let mut block = Vec::new();
        block.extend(f16::from_f32(0.5).to_le_bytes());
        block.extend(f16::from_f32(-1.0).to_le_bytes());
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let mut out = [0f32; 32];
        dequantize(GgmlType::Q4_1, &block, &mut out);
        assert_eq!(out[3], 3.0 * 0.5 - 1.0);
        assert_eq!(out[16 + 3], 12.0 * 0.5 - 1.0);
    }

    #[test]
    fn matmul_equals_plain_loops() {
        for dtype in [
            GgmlType::Q8_0,
            GgmlType::Q4_1,
            GgmlType::Q4_0,
            GgmlType::F16,
            GgmlType::F32,
        ] {
            matmul_equals_plain_loops_for(dtype);
        }
    }

    fn matmul_equals_plain_loops_for(dtype: GgmlType) {
        let (rows, cols) = (70, 96);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let bytes = Arc::new(quantize(dtype, &w));
        let m = QMatrix::new(dtype, rows, cols, bytes.clone(), 0);
        let mut deq = vec![0f32; rows * cols];
        dequantize(dtype, &bytes, &mut deq);
        for t in [1, 3] {
            let x: Vec<f32> = (0..t * cols).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut out = vec![0f32; t * rows];
            m.matmul(&x, &mut out);
            for j in 0..t {
                for r in 0..rows {
                    let want: f64 = (0..cols)
                        .map(|c| deq[r * cols + c] as f64 * x[j * cols + c] as f64)
                        .sum();
                    let got = out[j * rows + r] as f64;
                    assert!((got - want).abs() < 1e-4, "{dtype:?}: {got} vs {want}");
                }
            }
        }
    }

    /// The AVX2 build of the kernel must give the portable build's bits (the wasm build
    /// runs the portable code), on every quantised type and prompt-chunk shape.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernel_gives_the_portable_bits() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let (rows, cols) = (40, 128);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 997) as f32 - 498.0) / 311.0)
            .collect();
        for dtype in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_0] {
            let m = QMatrix::new(dtype, rows, cols, Arc::new(quantize(dtype, &w)), 0);
            for t in [1, 5] {
                let x: Vec<f32> = (0..t * cols)
                    .map(|i| (i as f32 * 0.731).sin() * 3.0)
                    .collect();
                let sums: Vec<f32> = x.chunks_exact(32).map(|b| b.iter().sum()).collect();
                let kernel = BlockKernel {
                    m: &m,
                    table: f16_table(),
                    x: &x,
                    sums: &sums,
                    t,
                    blocks: cols / 32,
                };
                let mut portable = vec![0f32; rows * t];
                let mut avx2 = vec![0f32; rows * t];
                kernel.rows_portable(0, &mut portable);
                // SAFETY: AVX2 was detected above.
                unsafe { kernel.rows_avx2(0, &mut avx2) };
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&portable), bits(&avx2), "{dtype:?}, t = {t}");
            }
        }
    }
}
