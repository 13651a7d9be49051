//! A narrower f32 matrix kernel for tract on wasm: 8 rows × 4 columns, registered with
//! tract-linalg's kernel inventory and preferred over its 8×8 kernel for every f32 product
//! except a matrix–vector one of known shape (tract's GEMV kernels keep those).
//!
//! Why: tract's wasm 8×8 kernel keeps 16 v128 accumulators, and V8's x64 back end has 15
//! allocatable xmm registers (xmm15 is its scratch), so its inner loop spills on every step;
//! a Chromium profile put 87% of text-encoder time in that loop. This kernel keeps 8
//! accumulators (one pair per column, rows 0–3 and 4–7) with room for its operands. Its
//! 4-column tile also wastes less on short inputs: tract puts a sentence's tokens on the
//! kernel's column side, so a 9-token sentence paid for 16 columns and now pays for 12.
//!
//! How tract finds it: where the column count is known, tract asks its dispatch tiers, and ours
//! (precedence 2) sits above tract's wasm tier (1); where it is symbolic (a sentence's tokens),
//! tract keeps the kernels of highest preference, and the boost makes that this one alone.
//!
//! Layout: A (tract's m side, the weights) is packed `[k][8]` exactly like the 8×8 kernel's;
//! B (the activations) `[k][4]`. Every fused operation of `FusedKerSpec` follows tract's generic
//! kernel (`tract_linalg::generic::mmm`): for the scalar, per-row and per-column forms the
//! operand comes first (`ScalarSub(s)` is `s - acc`).
//!
//! Tested in wasm only (it cannot run natively): `tests/js/encoders.test.mjs`, under both wasm
//! builds, runs `tests/fixtures/kernel_ops/kernel_ops.onnx` (products with the operations tract
//! fuses into a kernel, border tiles, 1 to 17 rows) against onnxruntime, and both encoders'
//! onnxruntime conformance goes through it.
#![allow(unsafe_code)]

use std::arch::wasm32::*;
use tract_onnx::tract_core::tract_linalg as linalg;

use linalg::isa::{Arch, IsaSet};
use linalg::mmm::{DynKernel, FusedKerSpec, MatMatMul, Query, Suitable};
use linalg::pack::Packing;
use tract_onnx::prelude::DatumType;

/// Name under which tract lists the kernel (its plans and errors print it).
pub const KERNEL_NAME: &str = "latentlab_wasm_f32_8x4";

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    f32x4_relaxed_madd(a, b, acc)
}

#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    f32x4_add(acc, f32x4_mul(a, b))
}

/// `acc = $f(operand, acc)` for every accumulator: `($olo, $ohi)` is the operand for rows 0–3
/// and 4–7 of column `$j`.
macro_rules! each_acc {
    ($c:ident, |$lo:ident, $hi:ident, $j:ident| ($olo:expr, $ohi:expr), $f:expr) => {
        for ($j, pair) in $c.iter_mut().enumerate() {
            let _ = $j;
            let ($lo, $hi) = ($olo, $ohi);
            pair.0 = ($f)($lo, pair.0);
            pair.1 = ($f)($hi, pair.1);
        }
    };
}

/// The kernel: interprets tract's fused-operation list for one 8×4 tile of C.
///
/// # Safety
/// `spec` points at a list ending in `Done`, whose pointers are valid for the tile sizes, as
/// tract's matrix-product driver guarantees for every kernel.
unsafe fn kernel_f32_8x4(spec: &[FusedKerSpec<f32>]) -> isize {
    unsafe {
        // (rows 0-3, rows 4-7) of each of the 4 columns.
        let zero = f32x4_splat(0.0);
        let mut c = [(zero, zero); 4];
        let mut pnl = spec.as_ptr();
        loop {
            match *pnl {
                FusedKerSpec::Done => break,
                FusedKerSpec::Clear => c = [(zero, zero); 4],
                FusedKerSpec::LoadTile(col_major, _row_major) => {
                    for (j, pair) in c.iter_mut().enumerate() {
                        let p = col_major.add(j * 8) as *const v128;
                        *pair = (v128_load(p), v128_load(p.add(1)));
                    }
                }
                FusedKerSpec::ScalarMin(s) => scalar(&mut c, s, |x, a| f32x4_min(x, a)),
                FusedKerSpec::ScalarMax(s) => scalar(&mut c, s, |x, a| f32x4_max(x, a)),
                FusedKerSpec::ScalarAdd(s) => scalar(&mut c, s, |x, a| f32x4_add(x, a)),
                FusedKerSpec::ScalarMul(s) => scalar(&mut c, s, |x, a| f32x4_mul(x, a)),
                FusedKerSpec::ScalarSub(s) => scalar(&mut c, s, |x, a| f32x4_sub(x, a)),
                FusedKerSpec::ScalarSubF(s) => scalar(&mut c, s, |x, a| f32x4_sub(a, x)),
                FusedKerSpec::LeakyRelu(alpha) => scalar(&mut c, alpha, |alpha, a| {
                    v128_bitselect(a, f32x4_mul(alpha, a), f32x4_gt(a, zero))
                }),
                FusedKerSpec::PerRowMin(rows) => per_row(&mut c, rows, |x, a| f32x4_min(x, a)),
                FusedKerSpec::PerRowMax(rows) => per_row(&mut c, rows, |x, a| f32x4_max(x, a)),
                FusedKerSpec::PerRowAdd(rows) => per_row(&mut c, rows, |x, a| f32x4_add(x, a)),
                FusedKerSpec::PerRowMul(rows) => per_row(&mut c, rows, |x, a| f32x4_mul(x, a)),
                FusedKerSpec::PerRowSub(rows) => per_row(&mut c, rows, |x, a| f32x4_sub(x, a)),
                FusedKerSpec::PerRowSubF(rows) => per_row(&mut c, rows, |r, a| f32x4_sub(a, r)),
                FusedKerSpec::PerColMin(cols) => per_col(&mut c, cols, |x, a| f32x4_min(x, a)),
                FusedKerSpec::PerColMax(cols) => per_col(&mut c, cols, |x, a| f32x4_max(x, a)),
                FusedKerSpec::PerColAdd(cols) => per_col(&mut c, cols, |x, a| f32x4_add(x, a)),
                FusedKerSpec::PerColMul(cols) => per_col(&mut c, cols, |x, a| f32x4_mul(x, a)),
                FusedKerSpec::PerColSub(cols) => per_col(&mut c, cols, |x, a| f32x4_sub(x, a)),
                FusedKerSpec::PerColSubF(cols) => per_col(&mut c, cols, |k, a| f32x4_sub(a, k)),
                // Quantisation steps on a float accumulator are scalings, as in tract's own
                // wasm f32 kernels.
                FusedKerSpec::QScale(shift, policy, mult) => {
                    let s = linalg::Scaler::from_fuse_params(shift, policy, mult).scale;
                    scalar(&mut c, s, |x, a| f32x4_mul(x, a))
                }
                FusedKerSpec::RoundingShiftRight(shift, _policy) => {
                    scalar(&mut c, 2f32.powi(-(shift as i32)), |x, a| f32x4_mul(x, a))
                }
                FusedKerSpec::ShiftLeft(shift) => {
                    scalar(&mut c, 2f32.powi(shift as i32), |x, a| f32x4_mul(x, a))
                }
                FusedKerSpec::AddUnicast(tile) => {
                    // f32 accumulators only ever meet f32 tiles here (the kernel stores f32
                    // only); anything else is refused rather than misread.
                    if tile.item_size != 4 {
                        return 1;
                    }
                    let at = |row: usize, col: usize| -> f32 {
                        *(tile.ptr.offset(
                            tile.row_byte_stride * row as isize
                                + tile.col_byte_stride * col as isize,
                        ) as *const f32)
                    };
                    for (j, pair) in c.iter_mut().enumerate() {
                        let lo = f32x4(at(0, j), at(1, j), at(2, j), at(3, j));
                        let hi = f32x4(at(4, j), at(5, j), at(6, j), at(7, j));
                        *pair = (f32x4_add(pair.0, lo), f32x4_add(pair.1, hi));
                    }
                }
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    let rows = rows as *const v128;
                    let (rlo, rhi) = (v128_load(rows), v128_load(rows.add(1)));
                    for (j, pair) in c.iter_mut().enumerate() {
                        let k = f32x4_splat(*cols.add(j));
                        *pair = (madd(pair.0, rlo, k), madd(pair.1, rhi, k));
                    }
                }
                FusedKerSpec::Store(tile) => {
                    if tile.item_size != 4 {
                        return 1;
                    }
                    let ptr = tile.ptr;
                    if tile.row_byte_stride == 4 {
                        // Column-major C (m contiguous): one vector store per half column.
                        for (j, (lo, hi)) in c.iter().enumerate() {
                            let p = ptr.offset(tile.col_byte_stride * j as isize) as *mut v128;
                            v128_store(p, *lo);
                            v128_store(p.add(1), *hi);
                        }
                    } else {
                        for (j, (lo, hi)) in c.iter().enumerate() {
                            let col = ptr.offset(tile.col_byte_stride * j as isize);
                            let rs = tile.row_byte_stride;
                            *(col as *mut f32) = f32x4_extract_lane::<0>(*lo);
                            *(col.offset(rs) as *mut f32) = f32x4_extract_lane::<1>(*lo);
                            *(col.offset(2 * rs) as *mut f32) = f32x4_extract_lane::<2>(*lo);
                            *(col.offset(3 * rs) as *mut f32) = f32x4_extract_lane::<3>(*lo);
                            *(col.offset(4 * rs) as *mut f32) = f32x4_extract_lane::<0>(*hi);
                            *(col.offset(5 * rs) as *mut f32) = f32x4_extract_lane::<1>(*hi);
                            *(col.offset(6 * rs) as *mut f32) = f32x4_extract_lane::<2>(*hi);
                            *(col.offset(7 * rs) as *mut f32) = f32x4_extract_lane::<3>(*hi);
                        }
                    }
                }
                FusedKerSpec::AddMatMul {
                    k, pa, pb, packing, ..
                } => {
                    if packing != 0 {
                        return 1;
                    }
                    let a = pa as *const v128;
                    let b = pb as *const f32;
                    // Locals rather than the array: V8 keeps them in registers.
                    let (mut c0l, mut c0h) = c[0];
                    let (mut c1l, mut c1h) = c[1];
                    let (mut c2l, mut c2h) = c[2];
                    let (mut c3l, mut c3h) = c[3];
                    for i in 0..k {
                        let alo = v128_load(a.add(2 * i));
                        let ahi = v128_load(a.add(2 * i + 1));
                        let bi = b.add(4 * i);
                        let b0 = v128_load32_splat(bi as *const u32);
                        c0l = madd(c0l, alo, b0);
                        c0h = madd(c0h, ahi, b0);
                        let b1 = v128_load32_splat(bi.add(1) as *const u32);
                        c1l = madd(c1l, alo, b1);
                        c1h = madd(c1h, ahi, b1);
                        let b2 = v128_load32_splat(bi.add(2) as *const u32);
                        c2l = madd(c2l, alo, b2);
                        c2h = madd(c2h, ahi, b2);
                        let b3 = v128_load32_splat(bi.add(3) as *const u32);
                        c3l = madd(c3l, alo, b3);
                        c3h = madd(c3h, ahi, b3);
                    }
                    c = [(c0l, c0h), (c1l, c1h), (c2l, c2h), (c3l, c3h)];
                }
            }
            pnl = pnl.add(1);
        }
        0
    }
}

/// `acc = f(scalar, acc)`.
#[inline(always)]
fn scalar(c: &mut [(v128, v128); 4], s: f32, f: impl Fn(v128, v128) -> v128) {
    let s = f32x4_splat(s);
    each_acc!(c, |lo, hi, _j| (s, s), &f)
}

/// `acc = f(row operand, acc)` with the tile's 8 row values.
#[inline(always)]
unsafe fn per_row(c: &mut [(v128, v128); 4], rows: *const f32, f: impl Fn(v128, v128) -> v128) {
    unsafe {
        let rows = rows as *const v128;
        let (rlo, rhi) = (v128_load(rows), v128_load(rows.add(1)));
        each_acc!(c, |lo, hi, _j| (rlo, rhi), &f)
    }
}

/// `acc = f(column operand, acc)` with the tile's 4 column values.
#[inline(always)]
unsafe fn per_col(c: &mut [(v128, v128); 4], cols: *const f32, f: impl Fn(v128, v128) -> v128) {
    unsafe {
        each_acc!(
            c,
            |lo, hi, j| (f32x4_splat(*cols.add(j)), f32x4_splat(*cols.add(j))),
            &f
        )
    }
}

fn make_kernel() -> Box<dyn MatMatMul> {
    let mut kernel = DynKernel::<8, 4, f32>::new(
        KERNEL_NAME,
        kernel_f32_8x4,
        f32::packing(8),
        f32::packing(4),
    );
    kernel.arch = Some(Arch::Wasm32Simd128);
    // Above tract's own wasm kernels wherever it ranks by preference (a symbolic number of
    // columns, such as a sentence's tokens).
    kernel = kernel.with_boost(|| 1);
    kernel.mmm()
}

inventory::submit! {
    linalg::mmm_routines::MmmRoutine { make: make_kernel }
}

/// Where the number of columns is known: this kernel for every f32 product but a
/// matrix–vector one (tract's GEMV kernels stay better there); tract's wasm tier below answers
/// the rest.
fn preferred(
    _isa: &IsaSet,
    dt: DatumType,
    query: &Query,
    _suitable: &[Suitable],
) -> Option<&'static str> {
    match (dt, query.n) {
        (DatumType::F32, Some(1)) => None,
        (DatumType::F32, _) => Some(KERNEL_NAME),
        _ => None,
    }
}

inventory::submit! {
    linalg::mmm_tiers::MmmTier {
        arch: Some(Arch::Wasm32Simd128),
        precedence: 2,
        name: "latentlab-wasm",
        applies: |_| true,
        preferred,
    }
}
