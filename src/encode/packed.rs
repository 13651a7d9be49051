//! `c = a · W` for a weight matrix W known at load: W packed once into column panels, then
//! every product streams its panels past a block of `a`'s rows held in registers.
//!
//! Why hand-written: in MiniLM at one thread tract's matrix products took ~70% of a sentence
//! (perf, 2026-12-06), and for a handful of rows (one sentence is 8–30 tokens) tract's kernel
//! packs the activations on every call and runs tiles much taller than the sentence. Here the
//! weights are packed once at load into panels of a few columns, the activations are read
//! where they are, and one register tile covers up to `ROWS_AVX512` rows × one panel.
//! Measured in BENCHMARKS.md ("Native encoders").
//!
//! A panel is as wide as the kernel's register tile (`Kernel::panel_width`), so the panels of
//! W lie one after another in the order they are read. With AVX2, while the first row tile of
//! a panel runs it asks for the next panel's rows (a prefetch into L2), so that a small batch
//! does not wait on memory at every panel: a model's weights (42 MB for MiniLM) do not stay in
//! cache from one batch to the next. (On a Zen 4 with AVX-512 hidden, a 43 × 384 × 384
//! product with weights out of cache: 40–42 G multiply-adds a second without the prefetch,
//! 46–47 with it, 52–53 with the weights in cache; AVX-512's tile measured no faster with it.)
//!
//! A bias added right after the product (a linear layer's) is folded in: the accumulators start
//! from it, as MLAS's do, and tract's separate Add pass over the output goes.
//!
//! Arithmetic: each output value is the sum over k in order, starting from the bias (or zero),
//! one fused multiply-add per term where the processor has FMA (else a multiply and an add). A value does
//! not depend on how rows and columns are split into tiles or over threads, so results are the
//! same bits at any thread count.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;

use super::following::{constant_operand, only_successor};

/// Columns of a panel for the AVX-512 and portable tiles: two AVX-512 registers.
const WIDE_PANEL: usize = 32;
/// Columns of a panel for the AVX2 tile: two AVX2 registers, one 64-byte line per row.
const AVX2_PANEL: usize = 16;
/// Rows of one register tile with AVX-512: 2 × 12 accumulators + 2 weights + 1 broadcast of
/// the 32 registers.
const ROWS_AVX512: usize = 12;
/// Rows of one AVX2 tile, which covers a panel of 16 columns: 6 × 2 accumulators, two
/// weight registers and a broadcast of AVX2's 16. Not 32 columns: a 3 × 32 tile needs 4
/// weight registers on top of its 12 accumulators, one more than there are, and the
/// compiler's version of it reloaded every weight once per row (perf annotate, Zen 3) and ran
/// at about half the FMA units' rate; a panel of k = 384 rows (24 KB) also stays in L1 while
/// every row tile passes over it. (The AVX2 tile once read half of a 32-column panel, every
/// other cache line: panels of its own width, read as one stream, and the prefetch of the
/// next took a 43 × 384 × 384 product with weights not in cache from 37–40 to 46–47 G
/// multiply-adds a second on a Zen 4 with AVX-512 hidden, 52–53 with them in cache.)
const ROWS_AVX2: usize = 6;
/// Rows of one portable tile.
const ROWS_PORTABLE: usize = 3;

/// The kernels this processor can run, chosen once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    Portable,
}

impl Kernel {
    pub(crate) fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Portable
    }

    fn rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => ROWS_AVX512,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => ROWS_AVX2,
            Kernel::Portable => ROWS_PORTABLE,
        }
    }

    /// Columns of one panel, which is one register tile's width.
    pub(crate) fn panel_width(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => AVX2_PANEL,
            _ => WIDE_PANEL,
        }
    }
}

/// W (k × n) in panels of `width` columns: panel p holds columns p·width.. as k rows of
/// width values, the last panel's missing columns zero; and the bias, n values padded to
/// whole panels (zeros when there is none).
#[derive(Debug)]
pub(crate) struct PackedWeights {
    k: usize,
    n: usize,
    width: usize,
    /// The panels start at `values[start]`, on a 64-byte boundary: a panel's row (16 or 32
    /// values) is then one or two whole cache lines.
    values: Vec<f32>,
    start: usize,
    bias: Vec<f32>,
}

/// Values per cache line.
const LINE: usize = 16;

impl PackedWeights {
    /// `w` row-major, k × n; with `transposed`, n × k (W's transpose, as a linear layer's
    /// [out, in] weight is stored); in panels for `kernel`.
    pub(crate) fn pack(
        w: &[f32],
        k: usize,
        n: usize,
        transposed: bool,
        kernel: Kernel,
    ) -> PackedWeights {
        assert_eq!(w.len(), k * n, "weights of {k} × {n}");
        let width = kernel.panel_width();
        let panels = n.div_ceil(width);
        let mut values = vec![0f32; panels * k * width + LINE];
        let start = values.as_ptr().align_offset(LINE * 4).min(LINE);
        for p in 0..panels {
            let panel = &mut values[start + p * k * width..start + (p + 1) * k * width];
            for j in 0..width.min(n - p * width) {
                let col = p * width + j;
                for row in 0..k {
                    panel[row * width + j] = if transposed {
                        w[col * k + row]
                    } else {
                        w[row * n + col]
                    };
                }
            }
        }
        PackedWeights {
            k,
            n,
            width,
            values,
            start,
            bias: vec![0f32; panels * width],
        }
    }

    /// The same weights with `bias` (n values) added to every output row.
    pub(crate) fn with_bias(mut self, bias: &[f32]) -> PackedWeights {
        assert_eq!(bias.len(), self.n, "a bias of {} values", self.n);
        self.bias[..self.n].copy_from_slice(bias);
        self
    }

    pub(crate) fn n(&self) -> usize {
        self.n
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(self.width)
    }

    fn all_panels(&self) -> &[f32] {
        &self.values[self.start..self.start + self.panels() * self.k * self.width]
    }

    fn panel(&self, p: usize) -> &[f32] {
        let at = self.start + p * self.k * self.width;
        &self.values[at..at + self.k * self.width]
    }

    fn panel_bias(&self, p: usize) -> &[f32] {
        &self.bias[p * self.width..(p + 1) * self.width]
    }
}

/// Equal weights: the same sizes, panels and bias, wherever the panels start.
impl PartialEq for PackedWeights {
    fn eq(&self, other: &Self) -> bool {
        self.k == other.k
            && self.n == other.n
            && self.width == other.width
            && self.bias == other.bias
            && self.all_panels() == other.all_panels()
    }
}

/// Where one product writes: `c` (m × n, row-major) as a raw pointer, so that threads may
/// fill disjoint tiles of it.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    ptr: *mut f32,
    m: usize,
    n: usize,
}

// SAFETY: every user writes tiles that no other thread writes (`multiply_tiles`' contract).
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

impl Output {
    pub(crate) fn new(c: &mut [f32], m: usize, n: usize) -> Output {
        assert_eq!(c.len(), m * n, "output of {m} × {n}");
        Output {
            ptr: c.as_mut_ptr(),
            m,
            n,
        }
    }
}

/// Rows `rows` × panels `panels` of `c = a · w`, `a` being m × k row-major.
///
/// # Safety
/// No other thread may write the same tiles of `c` meanwhile, and `c` must outlive the call.
pub(crate) unsafe fn multiply_tiles(
    kernel: Kernel,
    a: &[f32],
    w: &PackedWeights,
    c: Output,
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
) {
    let k = w.k;
    assert!(a.len() == c.m * k && c.n == w.n && rows.end <= c.m && panels.end <= w.panels());
    assert_eq!(
        w.width,
        kernel.panel_width(),
        "weights packed for another kernel"
    );
    let tile_rows = kernel.rows();
    for p in panels {
        let (panel, bias) = (w.panel(p), w.panel_bias(p));
        let col = p * w.width;
        let cols = w.width.min(w.n - col);
        // Rows inside: a panel's weights stay in cache while every row tile passes over them.
        let mut row = rows.start;
        while row < rows.end {
            let r = tile_rows.min(rows.end - row);
            let a_rows = &a[row * k..(row + r) * k];
            // SAFETY: the tile lies inside c (row + r ≤ m, col + cols ≤ n) and is this
            // caller's alone.
            let c_tile = unsafe { c.ptr.add(row * c.n + col) };
            let prefetch_next = row == rows.start;
            unsafe {
                tile(
                    kernel,
                    a_rows,
                    r,
                    k,
                    panel,
                    bias,
                    c_tile,
                    c.n,
                    cols,
                    prefetch_next,
                )
            };
            row += r;
        }
    }
}

/// One register tile: r rows of `a` (k apart) times one panel (k rows of the kernel's panel
/// width) plus its bias into `c` (`ldc` apart), `cols` of the panel's columns kept; with
/// `prefetch_next`, the AVX2 tile prefetches the rows of the panel that follows it in memory
/// into L2 on the way.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    kernel: Kernel,
    a: &[f32],
    r: usize,
    k: usize,
    panel: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    prefetch_next: bool,
) {
    macro_rules! rows_dispatch {
        ($f:ident, $($n:literal)*) => {
            match r {
                $($n => $f::<$n>(a, k, panel, bias, c, ldc, cols),)*
                _ => unreachable!("a tile of {r} rows"),
            }
        };
    }
    macro_rules! rows_dispatch_prefetching {
        ($f:ident, $($n:literal)*) => {
            match (r, prefetch_next) {
                $(($n, true) => $f::<$n, true>(a, k, panel, bias, c, ldc, cols),)*
                $(($n, false) => $f::<$n, false>(a, k, panel, bias, c, ldc, cols),)*
                _ => unreachable!("a tile of {r} rows"),
            }
        };
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY (all arms): the kernel was detected on this processor; a holds r rows of k,
        // panel k rows of the kernel's panel width, bias that many values, and c r rows of
        // cols values ldc apart.
        Kernel::Avx512 => unsafe { rows_dispatch!(tile_avx512, 1 2 3 4 5 6 7 8 9 10 11 12) },
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma => unsafe { rows_dispatch_prefetching!(tile_avx2, 1 2 3 4 5 6) },
        Kernel::Portable => unsafe { rows_dispatch!(tile_portable, 1 2 3) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize>(
    a: &[f32],
    k: usize,
    panel: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    const PANEL: usize = WIDE_PANEL;
    debug_assert!(a.len() >= R * k && panel.len() >= k * PANEL && bias.len() >= PANEL);
    // SAFETY: bias holds PANEL values.
    let (bias_lo, bias_hi) = unsafe {
        (
            _mm512_loadu_ps(bias.as_ptr()),
            _mm512_loadu_ps(bias.as_ptr().add(16)),
        )
    };
    let mut lo = [bias_lo; R];
    let mut hi = [bias_hi; R];
    let (a, b) = (a.as_ptr(), panel.as_ptr());
    for kk in 0..k {
        // SAFETY: kk < k, so every read is inside a's R rows and the panel's k rows. (No
        // prefetch of the next panel here: with AVX-512's 12-row tiles it measured no faster.)
        unsafe {
            let b_lo = _mm512_loadu_ps(b.add(kk * PANEL));
            let b_hi = _mm512_loadu_ps(b.add(kk * PANEL + 16));
            for r in 0..R {
                let x = _mm512_set1_ps(*a.add(r * k + kk));
                lo[r] = _mm512_fmadd_ps(x, b_lo, lo[r]);
                hi[r] = _mm512_fmadd_ps(x, b_hi, hi[r]);
            }
        }
    }
    let mask_lo: __mmask16 = if cols >= 16 {
        0xffff
    } else {
        (1u16 << cols) - 1
    };
    let mask_hi: __mmask16 = if cols >= PANEL {
        0xffff
    } else if cols > 16 {
        (1u16 << (cols - 16)) - 1
    } else {
        0
    };
    for r in 0..R {
        // SAFETY: row r of the tile has cols values at c + r·ldc (the caller's contract).
        unsafe {
            let row = c.add(r * ldc);
            _mm512_mask_storeu_ps(row, mask_lo, lo[r]);
            _mm512_mask_storeu_ps(row.add(16), mask_hi, hi[r]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize, const PREFETCH_NEXT: bool>(
    a: &[f32],
    k: usize,
    panel: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    const PANEL: usize = AVX2_PANEL;
    debug_assert!(R <= ROWS_AVX2 && a.len() >= R * k && bias.len() >= PANEL);
    debug_assert!(panel.len() >= k * PANEL);
    // SAFETY: bias holds PANEL values.
    let (bias_lo, bias_hi) = unsafe {
        (
            _mm256_loadu_ps(bias.as_ptr()),
            _mm256_loadu_ps(bias.as_ptr().add(8)),
        )
    };
    let mut lo = [bias_lo; R];
    let mut hi = [bias_hi; R];
    let (a, b) = (a.as_ptr(), panel.as_ptr());
    for kk in 0..k {
        // SAFETY: kk < k, so every read is inside a's R rows and the panel's k rows. A
        // prefetch reads nothing and cannot fault, wherever it points (past the last panel).
        unsafe {
            if PREFETCH_NEXT {
                _mm_prefetch::<_MM_HINT_T1>(b.wrapping_add((k + kk) * PANEL) as *const i8);
            }
            let b_lo = _mm256_loadu_ps(b.add(kk * PANEL));
            let b_hi = _mm256_loadu_ps(b.add(kk * PANEL + 8));
            for r in 0..R {
                let x = _mm256_broadcast_ss(&*a.add(r * k + kk));
                lo[r] = _mm256_fmadd_ps(x, b_lo, lo[r]);
                hi[r] = _mm256_fmadd_ps(x, b_hi, hi[r]);
            }
        }
    }
    for r in 0..R {
        // SAFETY: row r of the tile has cols values at c + r·ldc (the caller's contract).
        unsafe {
            let row = c.add(r * ldc);
            if cols == PANEL {
                _mm256_storeu_ps(row, lo[r]);
                _mm256_storeu_ps(row.add(8), hi[r]);
            } else {
                let mut all = [0f32; PANEL];
                _mm256_storeu_ps(all.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(all.as_mut_ptr().add(8), hi[r]);
                std::ptr::copy_nonoverlapping(all.as_ptr(), row, cols);
            }
        }
    }
}

unsafe fn tile_portable<const R: usize>(
    a: &[f32],
    k: usize,
    panel: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    unsafe { tile_generic::<R>(a, k, panel, bias, c, ldc, cols) }
}

/// The same tile in plain Rust, which the compiler vectorises for the caller's target (a
/// multiply and an add per term: `mul_add` is a library call where the target has no FMA).
#[inline(always)]
unsafe fn tile_generic<const R: usize>(
    a: &[f32],
    k: usize,
    panel: &[f32],
    bias: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    const PANEL: usize = WIDE_PANEL;
    let bias: [f32; PANEL] = bias[..PANEL]
        .try_into()
        .expect("a panel's bias is PANEL values");
    let mut acc = [bias; R];
    for kk in 0..k {
        let b: &[f32; PANEL] = panel[kk * PANEL..(kk + 1) * PANEL]
            .try_into()
            .expect("a panel row is PANEL values");
        for r in 0..R {
            let x = a[r * k + kk];
            for (acc, &b) in acc[r].iter_mut().zip(b) {
                *acc += x * b;
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r of the tile has cols values at c + r·ldc (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), cols) };
        row.copy_from_slice(&acc[..cols]);
    }
}

/// `c = a · w` (a: m × k, c: m × n, row-major) on one thread.
#[cfg(test)]
fn multiply(kernel: Kernel, a: &[f32], m: usize, w: &PackedWeights, c: &mut [f32]) {
    let out = Output::new(c, m, w.n);
    // SAFETY: one caller, every tile.
    unsafe { multiply_tiles(kernel, a, w, out, 0..m, 0..w.panels()) }
}

/// The product of an activation whose last axis is k by constant weights, as a tract op:
/// `x[.., k] → y[.., n]`.
#[derive(Debug, Clone)]
struct ConstWeightProduct {
    kernel: Kernel,
    weights: Arc<PackedWeights>,
}

impl PartialEq for ConstWeightProduct {
    fn eq(&self, other: &Self) -> bool {
        self.kernel == other.kernel && Arc::ptr_eq(&self.weights, &other.weights)
    }
}

impl Eq for ConstWeightProduct {}

impl ConstWeightProduct {
    /// `c = a · W`, split over tract's executor (the encoder's threads inside `split_ops`):
    /// by panels, so that each thread streams only its share of the weights (a text encoder's
    /// batch is a few hundred rows, its weights megabytes), else by rows when there are fewer
    /// panels than threads. Tiles never share an output value, so the split changes no bit.
    fn run(&self, a: &[f32], m: usize, c: &mut [f32]) {
        let w = &*self.weights;
        let panels = w.panels();
        let out = Output::new(c, m, w.n);
        let threads = match tract_linalg::multithread::current_tract_executor() {
            tract_linalg::multithread::Executor::MultiThread(pool)
                if pool.current_num_threads() > 1 && m * w.k * w.n >= MIN_SPLIT_WORK =>
            {
                Some(pool)
            }
            _ => None,
        };
        let Some(pool) = threads else {
            // SAFETY: one caller, every tile.
            return unsafe { multiply_tiles(self.kernel, a, w, out, 0..m, 0..panels) };
        };
        let parts = pool.current_num_threads();
        let tile_rows = self.kernel.rows();
        pool.scope(|scope| {
            if panels < parts && m >= parts * tile_rows {
                let per = m.div_ceil(parts).div_ceil(tile_rows) * tile_rows;
                for start in (0..m).step_by(per) {
                    let rows = start..m.min(start + per);
                    // SAFETY: each part writes its own rows, and the scope ends before c does.
                    scope.spawn(move |_| unsafe {
                        multiply_tiles(self.kernel, a, w, out, rows, 0..panels)
                    });
                }
            } else {
                let per = panels.div_ceil(parts);
                for start in (0..panels).step_by(per) {
                    let cols = start..panels.min(start + per);
                    // SAFETY: each part writes its own panels' columns.
                    scope.spawn(move |_| unsafe {
                        multiply_tiles(self.kernel, a, w, out, 0..m, cols)
                    });
                }
            }
        });
    }
}

/// Below this many multiply-adds a product stays on one thread: handing work to another
/// costs a few microseconds.
const MIN_SPLIT_WORK: usize = 1 << 20;

impl Op for ConstWeightProduct {
    fn name(&self) -> StaticName {
        "LatentlabConstWeightProduct".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "k={} n={} kernel={:?}",
            self.weights.k, self.weights.n, self.kernel
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for ConstWeightProduct {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (k, n) = (self.weights.k, self.weights.n);
        let mut shape: TVec<usize> = input.shape().into();
        ensure!(
            shape.last() == Some(&k),
            "product by constant weights: input of shape {shape:?}, weights of {k} rows"
        );
        let input = input.to_plain_array_view::<f32>()?;
        let a = input
            .as_slice()
            .context("product by constant weights: input not contiguous")?;
        let m = a.len() / k.max(1);
        *shape.last_mut().expect("rank ≥ 1, checked above") = n;
        // SAFETY: f32 has no invalid bit patterns, and every value is written below: the
        // tiles cover every row and column (or k = 0 fills it).
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        {
            let mut view = output.to_plain_array_view_mut::<f32>()?;
            let c = view
                .as_slice_mut()
                .context("product by constant weights: output not contiguous")?;
            if k == 0 {
                c.fill(0.0);
            } else {
                self.run(a, m, c);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for ConstWeightProduct {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        let last = shape.len().checked_sub(1).context("a scalar input")?;
        shape[last] = self.weights.n.into();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Replaces every float EinSum of `model` that multiplies an activation's last axis by a
/// constant 2-D weight (`..k,kn->..n` or `..k,nk->..n`, either operand first) by
/// `ConstWeightProduct`, together with the Add of a constant bias that alone follows it; run
/// after decluttering, before optimising. Products of two activations (attention's) are left
/// to tract. Setting `LATENTLAB_TRACT_PRODUCTS` keeps tract's own everywhere, to compare the two.
pub(crate) fn replace_const_weight_products(model: &mut TypedModel) -> TractResult<()> {
    if std::env::var_os("LATENTLAB_TRACT_PRODUCTS").is_some() {
        return Ok(());
    }
    let kernel = Kernel::detect();
    let found: Vec<(usize, ConstWeights)> = model
        .nodes()
        .iter()
        .filter_map(|node| {
            let einsum = node.op_as::<EinSum>()?;
            const_weight_product(model, node, einsum, kernel)
                .ok()
                .flatten()
                .map(|found| (node.id, found))
        })
        .collect();
    for (id, found) in found {
        let ConstWeights {
            x_slot,
            contracted_axes,
            weights,
        } = found;
        // Read the activation's outlet now: an earlier replacement may have rewired it.
        let node = model.node(id);
        let mut patch = TypedModelPatch::default();
        let mut tap = patch.tap_model(model, node.inputs[x_slot])?;
        if contracted_axes > 1 {
            // The contracted trailing axes merged into one of k (a reshape of contiguous data).
            let shape = &patch.outlet_fact(tap)?.shape;
            let at = shape.len() - contracted_axes;
            let from: TVec<TDim> = shape.iter().skip(at).cloned().collect();
            let merge = AxisOp::Reshape(at, from, tvec!(weights.k.to_dim()));
            let name = format!("{}.merge_k", node.name);
            tap = patch.wire_node(name, merge, &[tap])?[0];
        }
        let (replaced, weights) = match following_bias(model, node, weights.n())? {
            Some((add, bias)) => (add, weights.with_bias(&bias)),
            None => (id, weights),
        };
        let op = ConstWeightProduct {
            kernel,
            weights: Arc::new(weights),
        };
        let name = model.node(replaced).name.clone();
        let wire = patch.wire_node(name, op, &[tap])?;
        patch.shunt_outside(model, OutletId::new(replaced, 0), wire[0])?;
        patch.apply(model)?;
    }
    Ok(())
}

/// The Add that alone reads `product`'s output, when its other operand is a constant f32 bias
/// of the product's n values along the last axis (so the sum has the product's shape): that
/// node and the bias.
fn following_bias(
    model: &TypedModel,
    product: &TypedNode,
    n: usize,
) -> TractResult<Option<(usize, Vec<f32>)>> {
    let out = OutletId::new(product.id, 0);
    let Some(add) = only_successor(model, out)? else {
        return Ok(None);
    };
    let Some(bias) = constant_operand::<Add>(model, add, product.id)? else {
        return Ok(None);
    };
    if bias.rank() > model.outlet_fact(out)?.rank()
        || bias.shape().last() != Some(&n)
        || bias.len() != n
    {
        return Ok(None);
    }
    let values = bias.to_plain_array_view::<f32>()?;
    Ok(Some((add.id, values.iter().copied().collect())))
}

/// A product by constant weights found in the graph.
struct ConstWeights {
    /// The activation's input slot.
    x_slot: usize,
    /// How many trailing axes of the activation the product contracts (merged into k).
    contracted_axes: usize,
    weights: PackedWeights,
}

/// The product's activation and packed weights, when `einsum` multiplies the activation's
/// trailing axes by constant weights: `..k,kn->..n` or `..k,nk->..n`, or with k spread over
/// several axes (`..hd,hdn->..n`: decluttering folds the reshape of attention's heads into
/// the output layer's weights), either operand first.
fn const_weight_product(
    model: &TypedModel,
    node: &TypedNode,
    einsum: &EinSum,
    kernel: Kernel,
) -> TractResult<Option<ConstWeights>> {
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let facts = [
        model.outlet_fact(node.inputs[0])?,
        model.outlet_fact(node.inputs[1])?,
    ];
    let Some(w_slot) = (0..2).find(|&s| facts[s].konst.is_some() && facts[s].rank() >= 2) else {
        return Ok(None);
    };
    let x_slot = 1 - w_slot;
    if facts[x_slot].konst.is_some() || facts.iter().any(|f| f.datum_type != f32::datum_type()) {
        return Ok(None);
    }
    let (inputs, outputs) = einsum.axes.to_strs();
    let x: Vec<char> = inputs[x_slot].chars().collect();
    let w: Vec<char> = inputs[w_slot].chars().collect();
    let out: Vec<char> = outputs[0].chars().collect();
    let contracted_axes = w.len() - 1;
    if x.len() < contracted_axes {
        return Ok(None);
    }
    let contracted = &x[x.len() - contracted_axes..];
    let (transposed, n_label) = if w[..contracted_axes] == *contracted {
        (false, w[contracted_axes])
    } else if w[1..] == *contracted {
        (true, w[0])
    } else {
        return Ok(None);
    };
    let distinct = x.iter().enumerate().all(|(i, c)| !x[..i].contains(c));
    let mut want = x[..x.len() - contracted_axes].to_vec();
    want.push(n_label);
    if x.contains(&n_label) || !distinct || out != want {
        return Ok(None);
    }
    let weights = facts[w_slot]
        .konst
        .clone()
        .context("a constant, checked above")?;
    let w_shape = weights.shape();
    let (k_dims, n) = if transposed {
        (&w_shape[1..], w_shape[0])
    } else {
        (&w_shape[..contracted_axes], w_shape[contracted_axes])
    };
    let k: usize = k_dims.iter().product();
    let x_shape = &facts[x_slot].shape;
    let x_k_dims = &x_shape[x.len() - contracted_axes..];
    if x_k_dims.len() != k_dims.len()
        || x_k_dims.iter().zip(k_dims).any(|(d, &k)| *d != k.to_dim())
        || k == 0
        || n == 0
    {
        return Ok(None);
    }
    let values = weights.to_plain_array_view::<f32>()?;
    let Some(values) = values.as_slice() else {
        return Ok(None);
    };
    Ok(Some(ConstWeights {
        x_slot,
        contracted_axes,
        weights: PackedWeights::pack(values, k, n, transposed, kernel),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::values;

    fn reference(a: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|kk| a[i * k + kk] as f64 * w[kk * n + j] as f64)
                    .sum();
            }
        }
        c.into_iter().map(|v| v as f32).collect()
    }

    fn kernels() -> Vec<Kernel> {
        let mut all = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                all.push(Kernel::Avx2Fma);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Kernel::Avx512);
            }
        }
        all
    }

    #[test]
    fn every_kernel_matches_the_definition_on_ragged_sizes() {
        for kernel in kernels() {
            for (m, k, n) in [
                (1, 1, 1),
                (5, 7, 33),
                (13, 64, 31),
                (25, 40, 96),
                (12, 3, 65),
            ] {
                let (a, w) = (values(m * k, 1), values(k * n, 2));
                let want = reference(&a, m, k, &w, n);
                let packed = PackedWeights::pack(&w, k, n, false, kernel);
                let mut c = vec![f32::NAN; m * n];
                multiply(kernel, &a, m, &packed, &mut c);
                for (i, (&got, &want)) in c.iter().zip(&want).enumerate() {
                    assert!(
                        (got - want).abs() <= 1e-5 * (k as f32),
                        "{kernel:?} {m}×{k}×{n} at {i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn transposed_weights_pack_to_the_same_panels() {
        let (k, n) = (9, 40);
        let w = values(k * n, 3);
        let mut wt = vec![0f32; k * n];
        for row in 0..k {
            for col in 0..n {
                wt[col * k + row] = w[row * n + col];
            }
        }
        for kernel in kernels() {
            assert_eq!(
                PackedWeights::pack(&w, k, n, false, kernel),
                PackedWeights::pack(&wt, k, n, true, kernel)
            );
        }
    }

    #[test]
    fn a_value_does_not_depend_on_the_tiles_around_it() {
        let (m, k, n) = (29, 50, 70);
        let (a, w) = (values(m * k, 4), values(k * n, 5));
        for kernel in kernels() {
            let packed = PackedWeights::pack(&w, k, n, false, kernel);
            let mut whole = vec![0f32; m * n];
            multiply(kernel, &a, m, &packed, &mut whole);
            // The same product tile range by tile range, split at odd places.
            let mut split = vec![f32::NAN; m * n];
            let out = Output::new(&mut split, m, n);
            for rows in [0..7, 7..8, 8..29] {
                for panels in [0..1, 1..2, 2..packed.panels()] {
                    unsafe { multiply_tiles(kernel, &a, &packed, out, rows.clone(), panels) };
                }
            }
            assert_eq!(
                whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                split.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{kernel:?}"
            );
            // And row by row: each row alone is its own tile.
            for i in 0..m {
                let mut row = vec![0f32; n];
                multiply(kernel, &a[i * k..(i + 1) * k], 1, &packed, &mut row);
                assert_eq!(row, whole[i * n..(i + 1) * n], "{kernel:?} row {i}");
            }
        }
    }

    /// x (shape `x_shape`) times a constant of `w_shape` by EinSum `formula` (the weight its
    /// first operand where the formula's first term is "kn"), optimised by tract, with or
    /// without the replacement; the plan and how many products it replaced.
    fn product_model(
        formula: (&[&str], &str),
        x_shape: &[usize],
        w_shape: &[usize],
        replace: bool,
    ) -> TractResult<(Arc<TypedRunnableModel>, usize)> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(x_shape))?;
        let w_len = w_shape.iter().product();
        let w = model.add_const("w", Tensor::from_shape(w_shape, &values(w_len, 7))?)?;
        let axes = AxesMapping::from_strs(formula.0, &[formula.1])?;
        let inputs = if formula.0[0] == "kn" { [w, x] } else { [x, w] };
        let y = model.wire_node("product", EinSum::new(axes, f32::datum_type()), &inputs)?;
        model.select_output_outlets(&y)?;
        let mut model = model.into_decluttered()?;
        if replace {
            replace_const_weight_products(&mut model)?;
        }
        let replaced = model
            .nodes()
            .iter()
            .filter(|n| n.op_is::<ConstWeightProduct>())
            .count();
        Ok((model.into_optimized()?.into_runnable()?, replaced))
    }

    fn run(model: &Arc<TypedRunnableModel>, x: &Tensor) -> TractResult<Vec<f32>> {
        let out = model.run(tvec!(x.clone().into_tvalue()))?;
        Ok(out[0]
            .to_plain_array_view::<f32>()?
            .iter()
            .copied()
            .collect())
    }

    #[test]
    fn the_op_gives_tracts_products_for_every_layout_of_the_weights() -> TractResult<()> {
        for (formula, x_shape, w_shape) in [
            ((&["abk", "kn"][..], "abn"), &[2, 13, 40][..], &[40, 70][..]),
            ((&["abk", "nk"][..], "abn"), &[2, 13, 40], &[70, 40]),
            ((&["kn", "abk"][..], "abn"), &[2, 13, 40], &[40, 70]),
            // k over two axes, as attention's output layer once decluttered.
            ((&["abhd", "hdn"][..], "abn"), &[2, 13, 4, 10], &[4, 10, 70]),
            ((&["abhd", "nhd"][..], "abn"), &[2, 13, 4, 10], &[70, 4, 10]),
        ] {
            let len = x_shape.iter().product();
            let x = Tensor::from_shape(x_shape, &values(len, 8))?;
            let (ours, replaced) = product_model(formula, x_shape, w_shape, true)?;
            assert_eq!(replaced, 1, "{formula:?}");
            let (tracts, _) = product_model(formula, x_shape, w_shape, false)?;
            let (got, want) = (run(&ours, &x)?, run(&tracts, &x)?);
            assert_eq!(got.len(), 2 * 13 * 70);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-5, "{formula:?} at {i}: {g} vs {w}");
            }
        }
        Ok(())
    }

    /// x [3, 7, 40] times a constant [40, 70] plus a constant bias of shape `bias_shape`, and a
    /// second product reading that sum; optimised, with or without the replacement.
    fn biased_model(bias_shape: &[usize], replace: bool) -> TractResult<Arc<TypedRunnableModel>> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([3, 7, 40]))?;
        let w = model.add_const("w", Tensor::from_shape(&[40, 70], &values(2800, 11))?)?;
        let bias_len = bias_shape.iter().product();
        let b = model.add_const("b", Tensor::from_shape(bias_shape, &values(bias_len, 12))?)?;
        let w2 = model.add_const("w2", Tensor::from_shape(&[70, 9], &values(630, 13))?)?;
        let axes = AxesMapping::from_strs(&["abk", "kn"], &["abn"])?;
        let y = model.wire_node("p1", EinSum::new(axes.clone(), f32::datum_type()), &[x, w])?;
        let y = model.wire_node("bias", tract_onnx::tract_core::ops::math::add(), &[y[0], b])?;
        let z = model.wire_node("p2", EinSum::new(axes, f32::datum_type()), &[y[0], w2])?;
        model.select_output_outlets(&z)?;
        let mut model = model.into_decluttered()?;
        if replace {
            replace_const_weight_products(&mut model)?;
        }
        model.into_optimized()?.into_runnable()
    }

    #[test]
    fn a_bias_added_after_the_product_is_folded_in() -> TractResult<()> {
        let x = Tensor::from_shape(&[3, 7, 40], &values(3 * 7 * 40, 14))?;
        // (tract's typed binary ops take operands of one rank: ONNX's [70] arrives as [1, 1, 70])
        {
            let bias_shape = [1, 1, 70];
            let ours = biased_model(&bias_shape, true)?;
            let ops: Vec<String> = ours
                .model()
                .nodes()
                .iter()
                .map(|n| n.op().name().to_string())
                .collect();
            // the source and the two products: the Add went into the first
            assert_eq!(
                ops,
                [
                    "Source",
                    "LatentlabConstWeightProduct",
                    "LatentlabConstWeightProduct"
                ]
            );
            let (got, want) = (
                run(&ours, &x)?,
                run(&biased_model(&bias_shape, false)?, &x)?,
            );
            assert_eq!(got.len(), 3 * 7 * 9);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4, "{bias_shape:?} at {i}: {g} vs {w}");
            }
        }
        // A bias that broadcasts the product to a larger shape stays an Add of its own.
        let ours = biased_model(&[1, 7, 70], true)?;
        let ops: Vec<String> = ours
            .model()
            .nodes()
            .iter()
            .map(|n| n.op().name().to_string())
            .collect();
        let products = ops.iter().filter(|op| *op == "LatentlabConstWeightProduct");
        assert_eq!(products.count(), 2, "{ops:?}");
        assert!(ops.iter().any(|op| op == "Add"), "{ops:?}");
        Ok(())
    }

    #[test]
    fn products_that_are_not_by_a_constant_on_the_last_axis_stay_tracts() -> TractResult<()> {
        // The activation's first axis contracted: not this op's shape.
        let (_, replaced) = product_model((&["ka", "kn"], "an"), &[40, 3], &[40, 70], true)?;
        assert_eq!(replaced, 0);
        // Two contracted axes in another order than the activation's.
        let formula = (&["abhd", "dhn"][..], "abn");
        let (_, replaced) = product_model(formula, &[2, 3, 4, 10], &[10, 4, 70], true)?;
        assert_eq!(replaced, 0);
        // Two activations (attention's products).
        let mut model = TypedModel::default();
        let a = model.add_source("a", f32::fact([4, 8]))?;
        let b = model.add_source("b", f32::fact([8, 5]))?;
        let axes = AxesMapping::from_strs(&["mk", "kn"], &["mn"])?;
        let y = model.wire_node("product", EinSum::new(axes, f32::datum_type()), &[a, b])?;
        model.select_output_outlets(&y)?;
        let mut model = model.into_decluttered()?;
        replace_const_weight_products(&mut model)?;
        assert!(!model
            .nodes()
            .iter()
            .any(|n| n.op_is::<ConstWeightProduct>()));
        Ok(())
    }

    #[test]
    fn threads_change_no_bit() -> TractResult<()> {
        use tract_linalg::multithread::{multithread_tract_scope, Executor};
        // Enough work to be split (MIN_SPLIT_WORK): by panels (n = 1536: 48 or 96 panels, with
        // 300 rows and with 5), and by rows (n = 16: one panel for 2 or 3 threads, whatever the
        // kernel's panel width).
        for (m, n) in [(300, 1536), (5, 1536), (300, 16)] {
            let x = Tensor::from_shape(&[m, 384], &values(m * 384, 9))?;
            let formula = (&["ak", "kn"][..], "an");
            let (model, replaced) = product_model(formula, &[m, 384], &[384, n], true)?;
            assert_eq!(replaced, 1);
            let one = run(&model, &x)?;
            for threads in [2, 3] {
                let many =
                    multithread_tract_scope(Executor::multithread(threads), || run(&model, &x))?;
                assert_eq!(one.len(), many.len());
                assert!(
                    one.iter()
                        .zip(&many)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{m} × {n}, {threads} threads"
                );
            }
        }
        Ok(())
    }
}
