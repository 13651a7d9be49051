//! Depthwise convolutions (one filter per channel, channels first), natively: tract's own op
//! is replaced by this one at load.
//!
//! Why: in EfficientNet-Lite0 at one picture tract's `DepthWiseConv` took 47% of the time
//! (28 of 60 ms, per-op timing of the optimised plan, 2026-12-06) for about 8% of the
//! multiply-adds: its zone scanner walks each output position's taps one by one, and on the
//! stride-2 layers and the 7×7 planes of the last stages it ran at 0.4–0.9 G multiply-adds a
//! second. Here each channel's plane is zero-padded once and split into its stride phases, so
//! that every tap of the filter becomes one contiguous multiply-add over the whole output
//! plane (the few columns past the output's width are computed and dropped), which the
//! compiler vectorises; measured in BENCHMARKS.md ("Native encoders, 2026-12-06"). Small
//! output planes (EfficientNet's 7 × 7; with AVX-512 up to 28 × 28) go LANES channels side by
//! side instead, through a padded window with the channels innermost (as onnxruntime's NCHWc
//! kernels lay them out), one vector of channels per tap and position: there a plane's own
//! setup and the columns computed past its width outweighed the window's copies
//! (`SMALL_PLANE` says by how much). Where the 1×1 convolutions around such a layer run
//! their channel tile, the activations between them stay channels innermost
//! (`keep_channels_innermost`), and the window's copies are plain copies.
//!
//! Not on wasm32 (the browser's numbers are measured and kept as they are). Arithmetic: per
//! output value the bias, then the taps in row-major filter order, each a fused multiply-add
//! where the processor has FMA — float-order noise against tract's op, which the conformance
//! tests against onnxruntime bound.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PoolSpec};

use super::following::{following_clamp, nodes_of, replace_chain, Clamp};

/// A convolution's planes with every size fixed at load: `channels` planes of `h` × `w` in
/// (after any batch axis, of one), a `kh` × `kw` filter at strides `sy`, `sx` from `pad_top`,
/// `pad_left` zeros before the first row and column, `oh` × `ow` out. Shared with `im2col.rs`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(super) struct PlaneGeometry {
    pub(super) channels: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) sy: usize,
    pub(super) sx: usize,
    pub(super) pad_top: usize,
    pub(super) pad_left: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

impl PlaneGeometry {
    /// `spec`'s 2-D filter, strides (no dilation: the caller checks) and padding over
    /// `channels` planes of `h` × `w`; None where a stride or an output size is zero.
    pub(super) fn of(spec: &PoolSpec, channels: usize, h: usize, w: usize) -> Option<Self> {
        let strides = spec.strides.clone().unwrap_or_else(|| tvec!(1, 1));
        let padding = spec.computed_padding(&[h, w]);
        let geometry = PlaneGeometry {
            channels,
            h,
            w,
            kh: *spec.kernel_shape.first()?,
            kw: *spec.kernel_shape.get(1)?,
            sy: *strides.first()?,
            sx: *strides.get(1)?,
            pad_top: padding.first()?.pad_before,
            pad_left: padding.get(1)?.pad_before,
            oh: padding.first()?.convoluted,
            ow: padding.get(1)?.convoluted,
        };
        let degenerate = [geometry.oh, geometry.ow, geometry.sy, geometry.sx].contains(&0);
        (!degenerate).then_some(geometry)
    }
}

/// Whether `node` is a float 2-D convolution over channels-first planes with an [O, C/group,
/// kh, kw] kernel, no dilation, and its kernel and bias as inputs: what `PlaneGeometry` and
/// the replacements here and in `im2col.rs` take (each checks its own groups).
pub(super) fn plain_2d_convolution(conv: &Conv, node: &TypedNode) -> bool {
    let spec = &conv.pool_spec;
    conv.q_params.is_none()
        && conv.kernel_fmt == KernelFormat::OIHW
        && !spec.data_format.c_is_last()
        && spec.kernel_shape.len() == 2
        && spec
            .dilations
            .as_ref()
            .is_none_or(|d| d.iter().all(|&d| d == 1))
        && node.inputs.len() == 3
}

/// One depthwise convolution, then the clamp (EfficientNet's ReLU6) that followed it in the
/// graph, applied as the values are stored: one pass over the output less (tract's Max and
/// Min were ~4% of a picture, perf on a Zen 4, 2026-12-07).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct DepthwiseConv {
    geometry: PlaneGeometry,
    clamp: Clamp,
    /// LANES channels side by side (`block`) rather than a plane at a time (`plane`).
    channels_side_by_side: bool,
    /// The input, or the output, channels innermost in blocks of LANES (shape [channels /
    /// LANES, positions, LANES]), to or from a 1×1 convolution (`keep_channels_innermost`).
    innermost_input: bool,
    innermost_output: bool,
    /// The output's shape when the input's no longer gives it (channels innermost in, planes
    /// out).
    planes_output_shape: Option<TVec<usize>>,
}

/// `DepthwiseConv::window_layout`: the window's rows and columns, each output's first read
/// (`corners`, row-major), each tap's offset from there, and where each input position lies
/// in the window (`slots`, row-major; None for the rows and columns past the last that an
/// output reads).
struct WindowLayout {
    rows: usize,
    cols: usize,
    corners: Vec<usize>,
    taps: [usize; MAX_TAPS],
    slots: Vec<Option<usize>>,
}

/// `DepthwiseConv::phase_layout`.
struct PhaseLayout {
    first_columns: [(usize, usize); MAX_STRIDE],
    offsets: [usize; MAX_TAPS],
}

impl DepthwiseConv {
    /// Rows and columns of each stride phase of the padded plane: enough for every tap's
    /// shifted run over `oh` rows of `qw` columns.
    fn phase_dims(&self) -> (usize, usize) {
        let qw = self.geometry.ow + (self.geometry.kw - 1) / self.geometry.sx;
        let qh = self.geometry.oh + (self.geometry.kh - 1) / self.geometry.sy + 1;
        (qh, qw)
    }

    /// The output's shape for an input of `input_shape`.
    fn output_shape(&self, input_shape: &[usize]) -> TVec<usize> {
        let g = &self.geometry;
        if self.innermost_output {
            return tvec![g.channels / LANES, g.oh * g.ow, LANES];
        }
        if let Some(shape) = &self.planes_output_shape {
            return shape.clone();
        }
        let mut shape: TVec<usize> = input_shape.into();
        let rank = shape.len();
        shape[rank - 2] = g.oh;
        shape[rank - 1] = g.ow;
        shape
    }

    /// Where each phase's rows and each tap's reads start: the same for every plane, so worked
    /// out once per run of planes (per plane, its divisions by the strides were ~1% of a
    /// picture).
    fn phase_layout(&self) -> PhaseLayout {
        let g = &self.geometry;
        let (qh, qw) = self.phase_dims();
        let phase_len = qh * qw;
        // Each phase's first column and where it lands in the phase's rows: the same for every
        // row (a division per row and phase was a tenth of the op).
        let mut first_columns = [(0usize, 0usize); MAX_STRIDE];
        for (px, first) in first_columns.iter_mut().enumerate().take(g.sx) {
            let x0 = (px + g.sx - g.pad_left % g.sx) % g.sx;
            *first = (x0, (x0 + g.pad_left) / g.sx);
        }
        // Every tap reads the phases at its own offset, the same for every output value of
        // the flattened oh × qw grid (the few columns past the output's width are computed
        // and dropped).
        let mut offsets = [0usize; MAX_TAPS];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let phase = (ky % g.sy) * g.sx + kx % g.sx;
                offsets[ky * g.kw + kx] = phase * phase_len + (ky / g.sy) * qw + kx / g.sx;
            }
        }
        PhaseLayout {
            first_columns,
            offsets,
        }
    }

    /// One plane: `input` (h × w) → `out` (oh × ow); `phases` and `acc` are scratch, kept
    /// from one plane to the next of the same op: every plane writes the same positions of
    /// `phases`, so the padding zeroed the first time stays zero.
    fn plane(
        &self,
        input: &[f32],
        filter: &[f32],
        bias: f32,
        out: &mut [f32],
        layout: &PhaseLayout,
        (phases, acc): (&mut Vec<f32>, &mut Vec<f32>),
    ) {
        let (qh, qw) = self.phase_dims();
        let phase_len = qh * qw;
        // phases[(py * sx + px) * phase_len + j * qw + i] = padded[j * sy + py][i * sx + px];
        // the last chunk of taps reads up to CHUNK values past the phases: zeros, dropped
        // with it.
        let phases_len = self.geometry.sy * self.geometry.sx * phase_len + CHUNK;
        if phases.len() != phases_len {
            phases.clear();
            phases.resize(phases_len, 0.0);
        }
        let PhaseLayout {
            first_columns,
            offsets,
        } = layout;
        let (mut py, mut j) = (
            self.geometry.pad_top % self.geometry.sy,
            self.geometry.pad_top / self.geometry.sy,
        );
        for y in 0..self.geometry.h {
            // Padded rows past the phase's height are never read by an output that is kept.
            if j >= qh {
                break;
            }
            let row = &input[y * self.geometry.w..(y + 1) * self.geometry.w];
            for (px, &(x0, i0)) in first_columns[..self.geometry.sx].iter().enumerate() {
                let start = (py * self.geometry.sx + px) * phase_len + j * qw + i0;
                let dest = &mut phases[start..start + qw.saturating_sub(i0)];
                let src = row.get(x0..).unwrap_or_default();
                // the common strides spelled out, so that the copies vectorise
                match self.geometry.sx {
                    1 => {
                        let n = dest.len().min(src.len());
                        dest[..n].copy_from_slice(&src[..n]);
                    }
                    2 => {
                        let pairs = src.chunks_exact(2);
                        let last = pairs.remainder().first().copied();
                        let mut copied = 0;
                        for (d, pair) in dest.iter_mut().zip(pairs) {
                            *d = pair[0];
                            copied += 1;
                        }
                        if let (Some(d), Some(v)) = (dest.get_mut(copied), last) {
                            *d = v;
                        }
                    }
                    sx => dest
                        .iter_mut()
                        .zip(src.iter().step_by(sx))
                        .for_each(|(d, &v)| *d = v),
                }
            }
            py += 1;
            if py == self.geometry.sy {
                (py, j) = (0, j + 1);
            }
        }
        let n = (self.geometry.oh * qw).div_ceil(CHUNK) * CHUNK;
        // Every value of acc is written by taps_over.
        acc.resize(n, 0.0);
        let taps = self.geometry.kh * self.geometry.kw;
        taps_over_dispatched(
            acc,
            phases,
            &offsets[..taps],
            &filter[..taps],
            bias,
            self.clamp,
        );
        for (oy, row) in out.chunks_exact_mut(self.geometry.ow).enumerate() {
            row.copy_from_slice(&acc[oy * qw..oy * qw + self.geometry.ow]);
        }
    }

    /// The zero-padded window that the outputs read, and where each output's taps read it:
    /// the same for every block, so worked out once per run of blocks (as `phase_layout`).
    fn window_layout(&self) -> WindowLayout {
        let g = &self.geometry;
        let (rows, cols) = ((g.oh - 1) * g.sy + g.kh, (g.ow - 1) * g.sx + g.kw);
        let corners = (0..g.oh)
            .flat_map(|oy| (0..g.ow).map(move |ox| oy * g.sy * cols + ox * g.sx))
            .collect();
        let mut taps = [0usize; MAX_TAPS];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                taps[ky * g.kw + kx] = ky * cols + kx;
            }
        }
        let slots = (0..g.h)
            .flat_map(|y| (0..g.w).map(move |x| (g.pad_top + y, g.pad_left + x)))
            .map(|(r, c)| (r < rows && c < cols).then_some(r * cols + c))
            .collect();
        WindowLayout {
            rows,
            cols,
            corners,
            taps,
            slots,
        }
    }

    /// Up to LANES planes side by side: `input` holds the block's planes (h × w each), `out`
    /// their output planes; `filters[t]` is tap t's weight for each lane and `bias` each
    /// lane's bias (lanes past the block's planes: zeros). `window` is scratch kept from one
    /// block to the next: every block writes the same positions of it, so the padding zeroed
    /// the first time stays zero (lanes past the block's planes hold zeros or an earlier
    /// block's values, multiplied by zero weights and never stored).
    fn block(
        &self,
        input: &[f32],
        filters: &[[f32; LANES]],
        bias: &[f32; LANES],
        out: &mut [f32],
        layout: &WindowLayout,
        (window, sums): (&mut Vec<Lanes>, &mut Vec<Lanes>),
    ) {
        let g = &self.geometry;
        let (rows, cols) = (layout.rows, layout.cols);
        if window.len() != rows * cols {
            window.clear();
            window.resize(rows * cols, Lanes([0.0; LANES]));
        }
        let positions = g.oh * g.ow;
        sums.resize(positions, Lanes([0.0; LANES]));
        // With AVX-512 the planes go in and out of the lanes 16 × 16 values at a time,
        // transposed in registers; value by value these copies had taken about as long as the
        // taps (perf, Zen 4, 2026-12-07). Channels innermost, they are plain copies.
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        if self.innermost_input {
            assert!(
                input.len() == layout.slots.len() * LANES,
                "depthwise block: channels innermost, not a block of {LANES}"
            );
            for (values, slot) in input.chunks_exact(LANES).zip(&layout.slots) {
                if let Some(slot) = *slot {
                    window[slot].0.copy_from_slice(values);
                }
            }
        } else if avx512 {
            // SAFETY: the processor has AVX-512F; the planes, slots and window are the
            // geometry's sizes (checked there).
            #[cfg(target_arch = "x86_64")]
            unsafe {
                planes_into_lanes_avx512(input, g.h * g.w, &layout.slots, window)
            };
        } else {
            // window[r * cols + c].0[l] = plane l at (r - pad_top, c - pad_left)
            for (l, plane) in input.chunks_exact(g.h * g.w).enumerate() {
                for (r, row) in (g.pad_top..rows).zip(plane.chunks_exact(g.w)) {
                    let line = &mut window[r * cols..(r + 1) * cols];
                    for (c, &v) in (g.pad_left..cols).zip(row) {
                        line[c].0[l] = v;
                    }
                }
            }
        }
        if avx512 {
            // SAFETY: the processor has AVX-512F; the window, taps and sums are checked there.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                blocked_taps_avx512(self, window, layout, filters, bias, sums)
            };
        } else {
            blocked_taps_dispatched(self, window, layout, filters, bias, sums);
        }
        if self.innermost_output {
            assert!(
                out.len() == positions * LANES,
                "depthwise block: channels innermost, not a block of {LANES}"
            );
            for (values, sum) in out.chunks_exact_mut(LANES).zip(sums.iter()) {
                values.copy_from_slice(&sum.0);
            }
        } else if avx512 {
            // SAFETY: the processor has AVX-512F; sums and outputs are checked there.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                lanes_into_planes_avx512(sums, out)
            };
        } else {
            for (l, plane) in out.chunks_exact_mut(positions).enumerate() {
                for (o, sum) in plane.iter_mut().zip(sums.iter()) {
                    *o = sum.0[l];
                }
            }
        }
    }
}

/// Channels computed side by side by `DepthwiseConv::block`: one AVX-512 register, two AVX2
/// ones.
const LANES: usize = 16;

/// One position's LANES channels, on a cache line of its own.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Lanes([f32; LANES]);

/// The mask of an AVX-512 register's first `n` lanes (all 16 from n = 16 up).
#[cfg(target_arch = "x86_64")]
pub(super) fn first_lanes(n: usize) -> u16 {
    if n >= 16 {
        u16::MAX
    } else {
        (1u16 << n) - 1
    }
}

/// Transposes 16 registers of 16 values: afterwards `r[i]` holds what was lane i of each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn transpose_16x16(r: &mut [std::arch::x86_64::__m512; 16]) {
    use std::arch::x86_64::*;
    // Pairs of rows interleaved by 32 bits, then by 64, then 128-bit quarters gathered twice.
    let mut t = [_mm512_setzero_ps(); 16];
    for k in 0..8 {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    let pd = _mm512_castps_pd;
    for k in 0..4 {
        let (a, b, c, d) = (t[4 * k], t[4 * k + 1], t[4 * k + 2], t[4 * k + 3]);
        r[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        r[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        r[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        r[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    for half in [0, 8] {
        for i in 0..4 {
            t[half + i] = _mm512_shuffle_f32x4::<0x88>(r[half + i], r[half + i + 4]);
            t[half + i + 4] = _mm512_shuffle_f32x4::<0xdd>(r[half + i], r[half + i + 4]);
        }
    }
    for i in 0..8 {
        r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
        r[i + 8] = _mm512_shuffle_f32x4::<0xdd>(t[i], t[i + 8]);
    }
}

/// `DepthwiseConv::block`'s window from its planes (`input`: up to LANES planes of
/// `plane_len` values), 16 positions at a time: position p's lanes to `window[slots[p]]`.
/// Lanes past the block's planes get zeros.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn planes_into_lanes_avx512(
    input: &[f32],
    plane_len: usize,
    slots: &[Option<usize>],
    window: &mut [Lanes],
) {
    use std::arch::x86_64::*;
    let lanes = input.len() / plane_len.max(1);
    assert!(
        lanes <= LANES
            && slots.len() == plane_len
            && slots.iter().flatten().all(|&s| s < window.len()),
        "depthwise window: planes, slots and window disagree"
    );
    for p0 in (0..plane_len).step_by(16) {
        let n = (plane_len - p0).min(16);
        let mask = first_lanes(n);
        let mut r = [_mm512_setzero_ps(); 16];
        for (l, r) in r.iter_mut().enumerate().take(lanes) {
            // SAFETY: the mask enables plane l's positions p0..p0 + n, inside input (masked-off
            // lanes are neither read nor fault; wrapping_add forms their address).
            *r = unsafe {
                _mm512_maskz_loadu_ps(mask, input.as_ptr().wrapping_add(l * plane_len + p0))
            };
        }
        transpose_16x16(&mut r);
        for (&slot, &values) in slots[p0..p0 + n].iter().zip(&r) {
            let Some(slot) = slot else { continue };
            // SAFETY: slot < window.len() (checked above); Lanes is 64 values' worth, aligned.
            unsafe { _mm512_store_ps(window[slot].0.as_mut_ptr(), values) };
        }
    }
}

/// `DepthwiseConv::block`'s output planes (`out`: up to LANES planes of `sums.len()` values)
/// from its sums, 16 positions at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn lanes_into_planes_avx512(sums: &[Lanes], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let positions = sums.len();
    let lanes = out.len() / positions.max(1);
    assert!(
        lanes <= LANES && out.len() == lanes * positions,
        "depthwise block: sums and outputs disagree"
    );
    for p0 in (0..positions).step_by(16) {
        let n = (positions - p0).min(16);
        let mask = first_lanes(n);
        let mut r = [_mm512_setzero_ps(); 16];
        for (r, sum) in r.iter_mut().zip(&sums[p0..p0 + n]) {
            // SAFETY: Lanes is 64 values' worth, aligned.
            *r = unsafe { _mm512_load_ps(sum.0.as_ptr()) };
        }
        transpose_16x16(&mut r);
        for (l, &values) in r.iter().enumerate().take(lanes) {
            // SAFETY: the mask stores plane l's positions p0..p0 + n, inside out.
            unsafe {
                _mm512_mask_storeu_ps(
                    out.as_mut_ptr().wrapping_add(l * positions + p0),
                    mask,
                    values,
                )
            };
        }
    }
}

/// Outputs computed together by `DepthwiseConv::block`, each tap's weights loaded once for
/// all of them: eight chains of multiply-adds, enough to hide their latency.
const RUN: usize = 8;

/// `blocked_taps` compiled for AVX2 + FMA where the processor has them (as
/// `taps_over_dispatched`; the window's copies stay outside, as there). AVX-512 machines take
/// `DepthwiseConv::block`'s own path, `blocked_taps_avx512`.
fn blocked_taps_dispatched(
    op: &DepthwiseConv,
    window: &[Lanes],
    layout: &WindowLayout,
    filters: &[[f32; LANES]],
    bias: &[f32; LANES],
    sums: &mut [Lanes],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor has AVX2 and FMA (checked just above).
            return unsafe { blocked_taps_avx2(op, window, layout, filters, bias, sums) };
        }
    }
    blocked_taps(op, window, layout, filters, bias, sums, false)
}

/// `blocked_taps` in AVX-512 registers, the same bits: each tap's weights loaded once into a
/// register for the run's RUN outputs (compiled from `blocked_taps`, every multiply-add
/// loaded them again, two 64-byte loads per multiply-add where the window's is the only one
/// needed), and the window read without a bounds check per value (checked once, here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn blocked_taps_avx512(
    op: &DepthwiseConv,
    window: &[Lanes],
    layout: &WindowLayout,
    filters: &[[f32; LANES]],
    bias: &[f32; LANES],
    sums: &mut [Lanes],
) {
    use std::arch::x86_64::*;
    let g = &op.geometry;
    let positions = g.oh * g.ow;
    let (corners, taps) = (&layout.corners[..positions], &layout.taps[..g.kh * g.kw]);
    let last_tap = taps.iter().copied().max().unwrap_or(0);
    assert!(
        filters.len() == taps.len()
            && sums.len() >= positions
            && corners.iter().all(|&c| c + last_tap < window.len()),
        "depthwise block: window, taps and sums disagree"
    );
    let bias = _mm512_loadu_ps(bias.as_ptr());
    let (floor, ceiling) = (
        _mm512_set1_ps(op.clamp.floor),
        _mm512_set1_ps(op.clamp.ceiling),
    );
    // max then min, as `blocked_taps`' f32::max/min: a NaN sum becomes the floor.
    let clamp = |sum: __m512| _mm512_min_ps(_mm512_max_ps(sum, floor), ceiling);
    let mut at = 0;
    while at < positions {
        if positions < RUN {
            let [sum] = blocked_run_avx512::<1>(window, &corners[at..], taps, filters, bias);
            // SAFETY: Lanes is 64 values' worth, aligned.
            unsafe { _mm512_store_ps(sums[at].0.as_mut_ptr(), clamp(sum)) };
            at += 1;
        } else {
            let first = at.min(positions - RUN);
            let run = blocked_run_avx512::<RUN>(window, &corners[first..], taps, filters, bias);
            for (slot, sum) in sums[first..first + RUN].iter_mut().zip(run) {
                // SAFETY: as above.
                unsafe { _mm512_store_ps(slot.0.as_mut_ptr(), clamp(sum)) };
            }
            at += RUN;
        }
    }
}

/// `blocked_run` in AVX-512 registers. The caller checked that every corner plus every tap
/// lies inside the window.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[inline]
fn blocked_run_avx512<const N: usize>(
    window: &[Lanes],
    corners: &[usize],
    taps: &[usize],
    filters: &[[f32; LANES]],
    bias: std::arch::x86_64::__m512,
) -> [std::arch::x86_64::__m512; N] {
    use std::arch::x86_64::*;
    let mut corners_here = [0usize; N];
    corners_here.copy_from_slice(&corners[..N]);
    let mut acc = [bias; N];
    let base = window.as_ptr();
    for (&tap, weights) in taps.iter().zip(filters) {
        // SAFETY: weights is LANES values.
        let k = unsafe { _mm512_loadu_ps(weights.as_ptr()) };
        for (acc, &corner) in acc.iter_mut().zip(&corners_here) {
            // SAFETY: corner + tap < window.len() (the caller's check); Lanes is 64 values'
            // worth, aligned.
            let x = unsafe { _mm512_load_ps(base.add(corner + tap).cast::<f32>()) };
            *acc = _mm512_fmadd_ps(x, k, *acc);
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn blocked_taps_avx2(
    op: &DepthwiseConv,
    window: &[Lanes],
    layout: &WindowLayout,
    filters: &[[f32; LANES]],
    bias: &[f32; LANES],
    sums: &mut [Lanes],
) {
    blocked_taps(op, window, layout, filters, bias, sums, true)
}

/// Each output value as `taps_over` computes it (the bias, then the taps in row-major order,
/// fused where `fused`), so the two paths give the same bits. Outputs go RUN at a time in
/// row-major order across rows (a run may span two rows), the last run of a plane ending at
/// its last output (recomputing a few: same values).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn blocked_taps(
    op: &DepthwiseConv,
    window: &[Lanes],
    layout: &WindowLayout,
    filters: &[[f32; LANES]],
    bias: &[f32; LANES],
    sums: &mut [Lanes],
    fused: bool,
) {
    let g = &op.geometry;
    let positions = g.oh * g.ow;
    let (corners, taps) = (&layout.corners, &layout.taps[..g.kh * g.kw]);
    let clamp = |sum: [f32; LANES]| Lanes(sum.map(|v| v.max(op.clamp.floor).min(op.clamp.ceiling)));
    let mut at = 0;
    while at < positions {
        if positions < RUN {
            let [sum] = blocked_run::<1>(window, &corners[at..], taps, filters, bias, fused);
            sums[at] = clamp(sum);
            at += 1;
        } else {
            let first = at.min(positions - RUN);
            let run = blocked_run::<RUN>(window, &corners[first..], taps, filters, bias, fused);
            for (slot, sum) in sums[first..first + RUN].iter_mut().zip(run) {
                *slot = clamp(sum);
            }
            at += RUN;
        }
    }
}

/// The sums of the `N` outputs whose first taps read the window at `corners[..N]`, every lane.
#[inline(always)]
fn blocked_run<const N: usize>(
    window: &[Lanes],
    corners: &[usize],
    taps: &[usize],
    filters: &[[f32; LANES]],
    bias: &[f32; LANES],
    fused: bool,
) -> [[f32; LANES]; N] {
    let corners: &[usize; N] = corners[..N].try_into().expect("N corners");
    let mut acc = [*bias; N];
    for (&tap, weights) in taps.iter().zip(filters) {
        for (acc, &corner) in acc.iter_mut().zip(corners) {
            let x = &window[corner + tap].0;
            for ((a, &v), &k) in acc.iter_mut().zip(x).zip(weights) {
                *a = if fused { v.mul_add(k, *a) } else { *a + v * k };
            }
        }
    }
    acc
}

/// Output values computed together, held in registers over every tap: eight AVX2 registers,
/// four AVX-512 ones — chains enough to hide the multiply-adds' latency (with 32, two AVX-512
/// chains: EfficientNet-Lite0's 14 × 14 layers 125 → 112 ms, its stride-2 56 × 56 one 220 →
/// 189–209 ms per 430 pictures, one thread).
const CHUNK: usize = 64;

/// Filters up to 7 × 7 (EfficientNet's are 3 × 3 and 5 × 5) and strides up to 4; others stay
/// tract's.
const MAX_TAPS: usize = 49;
const MAX_STRIDE: usize = 4;

/// `taps_over` compiled for AVX-512 and for AVX2 + FMA as well as for the baseline, the
/// widest this processor has chosen at run time. (The plane path's copies stay outside:
/// inlined with them into one function per instruction set, the op ran 1.5× slower.)
fn taps_over_dispatched(
    out: &mut [f32],
    phases: &[f32],
    offsets: &[usize],
    filter: &[f32],
    bias: f32,
    clamp: Clamp,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F (checked just above).
            return unsafe { taps_over_avx512(out, phases, offsets, filter, bias, clamp) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor has AVX2 and FMA (checked just above).
            return unsafe { taps_over_avx2(out, phases, offsets, filter, bias, clamp) };
        }
    }
    taps_over(out, phases, offsets, filter, bias, clamp, false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn taps_over_avx512(
    out: &mut [f32],
    phases: &[f32],
    offsets: &[usize],
    filter: &[f32],
    bias: f32,
    clamp: Clamp,
) {
    taps_over(out, phases, offsets, filter, bias, clamp, true)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn taps_over_avx2(
    out: &mut [f32],
    phases: &[f32],
    offsets: &[usize],
    filter: &[f32],
    bias: f32,
    clamp: Clamp,
) {
    taps_over(out, phases, offsets, filter, bias, clamp, true)
}

/// `out[i] = clamp(bias + Σ_t filter[t] · phases[offsets[t] + i])`, the taps in order: a chunk of
/// out's values stays in registers while every tap passes over it (one load and one
/// multiply-add per value and tap; a pass over the whole plane per tap loaded and stored the
/// running sums each time and ran at ~5 G multiply-adds a second). `out.len()` is a
/// multiple of CHUNK, and every offset leaves `out.len()` values of `phases` after it.
/// With `fused`, a fused multiply-add (only where the caller's target has FMA: elsewhere
/// `mul_add` is a library call).
#[inline(always)]
fn taps_over(
    out: &mut [f32],
    phases: &[f32],
    offsets: &[usize],
    filter: &[f32],
    bias: f32,
    clamp: Clamp,
    fused: bool,
) {
    for (c, chunk) in out.chunks_exact_mut(CHUNK).enumerate() {
        let at = c * CHUNK;
        let mut acc = [bias; CHUNK];
        for (&offset, &k) in offsets.iter().zip(filter) {
            let x: &[f32; CHUNK] = phases[offset + at..offset + at + CHUNK]
                .try_into()
                .expect("a slice of CHUNK values");
            for (a, &v) in acc.iter_mut().zip(x) {
                *a = if fused { v.mul_add(k, *a) } else { *a + v * k };
            }
        }
        for (o, a) in chunk.iter_mut().zip(acc) {
            *o = a.max(clamp.floor).min(clamp.ceiling);
        }
    }
}

/// A convolution's input planes, kernel and bias (one, or one per channel), as `eval` has them.
struct Sources<'a> {
    input: &'a [f32],
    kernel: &'a [f32],
    bias: &'a [f32],
}

/// Planes `first`.. of the input into `out` (whole output planes): LANES at a time or one by
/// one, as `op` says.
fn convolve_planes(op: &DepthwiseConv, sources: &Sources, first: usize, out: &mut [f32]) {
    let g = &op.geometry;
    let (plane_in, plane_out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let bias_of = |c: usize| {
        if sources.bias.len() == 1 {
            sources.bias[0]
        } else {
            sources.bias[c]
        }
    };
    if op.channels_side_by_side {
        let (mut window, mut sums) = (Vec::new(), Vec::new());
        let layout = op.window_layout();
        for (b, out) in out.chunks_mut(LANES * plane_out).enumerate() {
            let p0 = first + b * LANES;
            let lanes = out.len() / plane_out;
            let mut filters = [[0f32; LANES]; MAX_TAPS];
            let mut biases = [0f32; LANES];
            for l in 0..lanes {
                let c = (p0 + l) % g.channels;
                biases[l] = bias_of(c);
                for (t, f) in filters[..taps].iter_mut().enumerate() {
                    f[l] = sources.kernel[c * taps + t];
                }
            }
            op.block(
                &sources.input[p0 * plane_in..(p0 + lanes) * plane_in],
                &filters[..taps],
                &biases,
                out,
                &layout,
                (&mut window, &mut sums),
            );
        }
        return;
    }
    let (mut phases, mut acc) = (Vec::new(), Vec::new());
    let layout = op.phase_layout();
    for (i, out) in out.chunks_exact_mut(plane_out).enumerate() {
        let p = first + i;
        let c = p % g.channels;
        op.plane(
            &sources.input[p * plane_in..(p + 1) * plane_in],
            &sources.kernel[c * taps..(c + 1) * taps],
            bias_of(c),
            out,
            &layout,
            (&mut phases, &mut acc),
        );
    }
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "LatentlabDepthwiseConv".into()
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (input, kernel, bias) = args_3!(inputs);
        let input_shape: TVec<usize> = input.shape().into();
        let input = input.to_plain_array_view::<f32>()?;
        let input = input
            .as_slice()
            .context("depthwise convolution: input not contiguous")?;
        let kernel = kernel.cast_to::<f32>()?;
        let kernel = kernel.to_plain_array_view::<f32>()?;
        let kernel = kernel.as_slice().context("kernel not contiguous")?;
        let bias = bias.cast_to::<f32>()?;
        let bias = bias.to_plain_array_view::<f32>()?;
        let bias: Vec<f32> = bias.iter().copied().collect();
        let (plane_in, plane_out, taps) = (
            self.geometry.h * self.geometry.w,
            self.geometry.oh * self.geometry.ow,
            self.geometry.kh * self.geometry.kw,
        );
        ensure!(input.len() % plane_in == 0 && kernel.len() == self.geometry.channels * taps);
        ensure!(bias.len() == 1 || bias.len() == self.geometry.channels);
        let planes = input.len() / plane_in;
        ensure!(
            !self.innermost_input || input_shape[..] == [planes / LANES, plane_in, LANES],
            "depthwise convolution: an input of shape {input_shape:?}, not channels innermost"
        );
        let shape = self.output_shape(&input_shape);
        // SAFETY: f32 has no invalid bit patterns, and every value is written: each plane's
        // rows are copied whole from its sums.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let mut view = output.to_plain_array_view_mut::<f32>()?;
        let out = view
            .as_slice_mut()
            .context("depthwise convolution: output not contiguous")?;
        // Planes split over tract's executor (the encoder's threads inside `split_ops`,
        // else one): each plane is computed alone, so the split changes no bit.
        let work = planes * plane_out * taps;
        let sources = Sources {
            input,
            kernel,
            bias: &bias,
        };
        // Whole blocks of LANES planes to a thread where the planes divide evenly.
        let unit = if self.channels_side_by_side && planes % LANES == 0 {
            LANES
        } else {
            1
        };
        tract_linalg::multithread::par_chunks_mut(out, unit * plane_out, work, |first, chunk| {
            convolve_planes(self, &sources, first * unit, chunk);
            Ok(())
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        if self.innermost_input || self.innermost_output {
            let shape = inputs[0]
                .shape
                .as_concrete()
                .context("channels innermost: an input of concrete shape")?;
            return Ok(tvec!(f32::fact(self.output_shape(shape))));
        }
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        let rank = shape.len();
        shape[rank - 2] = self.geometry.oh.into();
        shape[rank - 1] = self.geometry.ow.into();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Replaces every float depthwise convolution of `model` whose sizes are known (channels
/// first, one filter per channel, no dilation, a kernel of [channels, 1, kh, kw]), with the
/// Max/Min clamp that alone follows it, by `DepthwiseConv`; run after decluttering (which
/// folds batch norms and paddings into the convolution and drops a batch axis of one),
/// before optimising.
pub(crate) fn replace_depthwise_convolutions(model: &mut TypedModel) -> TractResult<()> {
    let found = nodes_of::<Conv>(model);
    for id in found {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        let Some(mut op) = depthwise(model, node, conv).ok().flatten() else {
            continue;
        };
        let (clamp, last) = following_clamp(model, id)?;
        op.clamp = clamp;
        // The inputs read now: an earlier replacement may have rewired them.
        let inputs = node.inputs.clone();
        replace_chain(model, &inputs, op, last)?;
    }
    Ok(())
}

fn depthwise(
    model: &TypedModel,
    node: &TypedNode,
    conv: &Conv,
) -> TractResult<Option<DepthwiseConv>> {
    let spec = &conv.pool_spec;
    let channels = spec.input_channels;
    if !plain_2d_convolution(conv, node)
        || conv.group != channels
        || spec.output_channels != channels
    {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let kernel = model.outlet_fact(node.inputs[1])?;
    let bias = model.outlet_fact(node.inputs[2])?;
    let Some(shape) = input.shape.as_concrete() else {
        return Ok(None);
    };
    if input.datum_type != f32::datum_type() || shape.len() < 3 || shape.len() > 4 {
        return Ok(None);
    }
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    let strides = spec.strides.clone().unwrap_or_else(|| tvec!(1, 1));
    if kh * kw > MAX_TAPS || strides.iter().any(|&s| s > MAX_STRIDE) {
        return Ok(None);
    }
    let Some(kernel_shape) = kernel.shape.as_concrete() else {
        return Ok(None);
    };
    if kernel_shape != [channels, 1, kh, kw]
        || !(bias.shape.volume() == 1.to_dim() || bias.shape.volume() == channels.to_dim())
    {
        return Ok(None);
    }
    let rank = shape.len();
    if shape[rank - 3] != channels || (rank == 4 && shape[0] != 1) {
        return Ok(None);
    }
    let (h, w) = (shape[rank - 2], shape[rank - 1]);
    Ok(
        PlaneGeometry::of(spec, channels, h, w).map(|geometry| DepthwiseConv {
            channels_side_by_side: side_by_side(&geometry, avx512()),
            geometry,
            clamp: Clamp::NONE,
            innermost_input: false,
            innermost_output: false,
            planes_output_shape: None,
        }),
    )
}

/// Keeps activations channels innermost, in blocks of LANES (as onnxruntime's NCHWc16), from
/// a 1×1 convolution on the channel tile into a depthwise one side by side and from there into
/// the next such 1×1: the 1×1 tile then stores its registers as they are and the depthwise
/// window is filled, and its sums stored, by plain copies, where each side had transposed
/// 16 × 16 blocks (EfficientNet's 14 × 14 and 7 × 7 blocks: expand, depthwise, project). Run
/// after both replacements, before optimising. Changes no value: each op's arithmetic is the
/// same, only where it reads and writes. Per-op timing over 64 pictures, one thread, Zen 4,
/// five alternating runs (2026-12-07): those depthwise layers 78–92 → 60–71 ms, the 1×1
/// layers on those planes 352–427 → 334–379 ms.
#[cfg(target_arch = "x86_64")]
pub(crate) fn keep_channels_innermost(model: &mut TypedModel) -> TractResult<()> {
    use super::following::only_successor;
    use super::pointwise::PointwiseConv;
    let found = nodes_of::<DepthwiseConv>(model);
    for id in found {
        let node = model.node(id);
        let Some(depthwise) = node.op_as::<DepthwiseConv>() else {
            continue;
        };
        let g = &depthwise.geometry;
        if !depthwise.channels_side_by_side || !avx512() || g.channels % LANES != 0 {
            continue;
        }
        let Some(plain_output) = model.outlet_fact(OutletId::new(id, 0))?.shape.as_concrete()
        else {
            continue;
        };
        let plain_output: TVec<usize> = plain_output.into();
        let mut depthwise = depthwise.clone();
        let input = node.inputs[0];
        let feeds_only_this = only_successor(model, input)?.is_some_and(|n| n.id == id);
        let producer = model
            .node(input.node)
            .op_as::<PointwiseConv>()
            .filter(|p| feeds_only_this && p.positions() == g.h * g.w)
            .and_then(|p| p.channels_innermost(false, true));
        let consumer = only_successor(model, OutletId::new(id, 0))?
            .and_then(|n| Some((n.id, n.op_as::<PointwiseConv>()?)))
            .filter(|(_, c)| c.positions() == g.oh * g.ow)
            .and_then(|(at, c)| Some((at, c.channels_innermost(true, false)?)));
        if let Some(producer) = producer {
            let shape = producer.output_shape().clone();
            model.node_mut(input.node).op = Box::new(producer);
            model.set_outlet_fact(input, f32::fact(shape))?;
            depthwise.innermost_input = true;
            depthwise.planes_output_shape = Some(plain_output);
        }
        if let Some((at, consumer)) = consumer {
            model.node_mut(at).op = Box::new(consumer);
            depthwise.innermost_output = true;
        }
        if depthwise.innermost_input || depthwise.innermost_output {
            let shape = depthwise.output_shape(&[]);
            model.node_mut(id).op = Box::new(depthwise);
            model.set_outlet_fact(OutletId::new(id, 0), f32::fact(shape))?;
        }
    }
    Ok(())
}

/// Whether `geometry`'s planes run LANES at a time, channels side by side: output planes under
/// SMALL_PLANE positions, or SMALL_PLANE_AVX512 where the processor has AVX-512.
fn side_by_side(geometry: &PlaneGeometry, avx512: bool) -> bool {
    let limit = if avx512 {
        SMALL_PLANE_AVX512
    } else {
        SMALL_PLANE
    };
    geometry.oh * geometry.ow < limit
}

/// Whether this processor has AVX-512 (where the side-by-side path has its own kernel).
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Below this many output positions a plane's own setup (its phases, its row copies, and the
/// columns past the output's width that a chunk computes: 128 values for a 7 × 7 output)
/// costs more than the taps, and channels go side by side instead. Per-op timing over 430
/// pictures, one thread, Zen 4 (2026-12-07): EfficientNet-Lite0's 7 × 7 layers (5 × 5 filters
/// over 1,152 channels) 117 → 82–86 ms, the 672-channel one 83 → 71 ms; at 14 × 14 channels
/// side by side were slower (112 → 143–147 ms: the window's scattered copies), and at 56 × 56
/// three times slower.
const SMALL_PLANE: usize = 64;

/// SMALL_PLANE with AVX-512, where the window's copies are 16 × 16 transposes in registers and
/// each tap's weights stay in a register over a run (`blocked_taps_avx512`): EfficientNet's
/// 14 × 14 and 28 × 28 output planes go side by side too. Per op over 64 pictures, one
/// thread, Zen 4, three alternated runs (2026-12-07): layers with 14 × 14 inputs 54–66 → 47
/// ms, 28 × 28 inputs 24–29 → 21–22 ms; with 56 × 56 and 112 × 112 inputs side by side too,
/// slower again (31–35 → 39–46 ms and 49–52 → 59–67 ms).
const SMALL_PLANE_AVX512: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::{assert_close, values, wire_clamp};
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::math::{Max, Min};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    /// A depthwise convolution's pooling spec: channels first, `channels` in and out.
    fn depthwise_spec(
        channels: usize,
        (kh, kw): (usize, usize),
        strides: [usize; 2],
        padding: PaddingSpec,
    ) -> PoolSpec {
        PoolSpec {
            data_format: DataFormat::NCHW,
            kernel_shape: tvec!(kh, kw),
            padding,
            dilations: None,
            strides: Some(tvec!(strides[0], strides[1])),
            input_channels: channels,
            output_channels: channels,
        }
    }

    /// A depthwise convolution of `channels` planes of h × w, as tract builds it, then
    /// `clamp`'s Max and Min if any, with or without the replacement; the plan's output, how
    /// many ops were replaced and how many Max or Min ops are left.
    fn convolve_clamped(
        (channels, h, w): (usize, usize, usize),
        (kh, kw): (usize, usize),
        strides: [usize; 2],
        padding: PaddingSpec,
        clamp: Option<(f32, f32)>,
        replace: bool,
    ) -> TractResult<(Vec<f32>, usize, usize)> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, channels, h, w]))?;
        let kernel = tensor1(&values(channels * kh * kw, 7)).into_shape(&[channels, 1, kh, kw])?;
        let kernel = model.add_const("kernel", kernel)?;
        let bias = model.add_const("bias", tensor1(&values(channels, 8)))?;
        let conv = Conv {
            pool_spec: depthwise_spec(channels, (kh, kw), strides, padding),
            kernel_fmt: KernelFormat::OIHW,
            group: channels,
            q_params: None,
        };
        let mut y = model.wire_node("conv", conv, &[x, kernel, bias])?[0];
        if let Some(bounds) = clamp {
            y = wire_clamp(&mut model, y, bounds)?;
        }
        model.select_output_outlets(&[y])?;
        let mut model = model.into_decluttered()?;
        if replace {
            replace_depthwise_convolutions(&mut model)?;
        }
        let count = |what: fn(&TypedNode) -> bool| {
            let model = &model;
            // Nodes a patch left without readers are not part of the plan.
            let eval_order = model.eval_order().unwrap_or_default();
            eval_order.iter().filter(|&&n| what(model.node(n))).count()
        };
        let replaced = count(|n| n.op_is::<DepthwiseConv>());
        let clamps = count(|n| {
            n.op_as::<TypedBinOp>()
                .is_some_and(|b| b.0.is::<Max>() || b.0.is::<Min>())
        });
        let input = tensor1(&values(channels * h * w, 9)).into_shape(&[1, channels, h, w])?;
        let out = model
            .into_optimized()?
            .into_runnable()?
            .run(tvec!(input.into_tvalue()))?;
        let out = out[0].to_plain_array_view::<f32>()?;
        Ok((out.iter().copied().collect(), replaced, clamps))
    }

    fn convolve(
        planes: (usize, usize, usize),
        filter: (usize, usize),
        strides: [usize; 2],
        padding: PaddingSpec,
        replace: bool,
    ) -> TractResult<(Vec<f32>, usize)> {
        let (out, replaced, _) = convolve_clamped(planes, filter, strides, padding, None, replace)?;
        Ok((out, replaced))
    }

    #[test]
    fn gives_tracts_convolution_for_every_stride_padding_and_filter() -> TractResult<()> {
        let cases = [
            ((3, 9, 11), (3, 3), [1, 1], PaddingSpec::SameUpper),
            ((2, 10, 10), (3, 3), [2, 2], PaddingSpec::SameUpper),
            ((4, 7, 7), (5, 5), [1, 1], PaddingSpec::SameUpper),
            ((2, 13, 12), (5, 5), [2, 2], PaddingSpec::SameUpper),
            // Zero padding on the left only, as EfficientNet-Lite's TensorFlow-style stride 2.
            (
                (2, 12, 12),
                (3, 3),
                [2, 2],
                PaddingSpec::Explicit(tvec!(0, 0), tvec!(1, 1)),
            ),
            ((1, 6, 40), (1, 3), [1, 3], PaddingSpec::Valid),
            ((2, 17, 19), (3, 5), [4, 3], PaddingSpec::SameUpper),
            ((2, 9, 8), (3, 3), [2, 2], PaddingSpec::SameUpper),
            ((2, 5, 5), (7, 7), [1, 1], PaddingSpec::SameLower),
            // Small planes, channels side by side: a last block of fewer than LANES.
            ((17, 7, 7), (5, 5), [1, 1], PaddingSpec::SameUpper),
            ((35, 13, 13), (3, 3), [2, 2], PaddingSpec::SameUpper),
        ];
        for (planes, filter, strides, padding) in cases {
            let what = format!("{planes:?} {filter:?} {strides:?} {padding:?}");
            let (want, none) = convolve(planes, filter, strides, padding.clone(), false)?;
            let (got, replaced) = convolve(planes, filter, strides, padding, true)?;
            assert_eq!((none, replaced), (0, 1), "{what}");
            assert_close(&got, &want, &what);
        }
        Ok(())
    }

    /// EfficientNet-Lite0's 7 × 7 planes go side by side, its 14 × 14 ones one at a time; with
    /// AVX-512 its planes up to 28 × 28 out go side by side, 56 × 56 not (the measured choices,
    /// `SMALL_PLANE` and `SMALL_PLANE_AVX512`).
    #[test]
    fn only_small_planes_go_side_by_side() -> TractResult<()> {
        let cases = [
            ((7, 1), (true, true)),
            ((14, 2), (true, true)),
            ((14, 1), (false, true)),
            ((28, 1), (false, true)),
            ((56, 2), (false, true)),
            ((56, 1), (false, false)),
            ((112, 2), (false, false)),
        ];
        for ((h, stride), expected) in cases {
            let spec = depthwise_spec(1152, (5, 5), [stride, stride], PaddingSpec::SameUpper);
            let geometry = PlaneGeometry::of(&spec, 1152, h, h).context("a geometry")?;
            let chosen = (
                side_by_side(&geometry, false),
                side_by_side(&geometry, true),
            );
            assert_eq!(chosen, expected, "{h} × {h}, stride {stride}");
        }
        Ok(())
    }

    /// Planes convolved side by side (channels innermost in or out too) and one at a time,
    /// without tract: the same bits.
    #[test]
    fn channels_side_by_side_give_the_bits_of_planes_one_at_a_time() -> TractResult<()> {
        let cases = [
            // EfficientNet-Lite0's 7 × 7 stage: 5 × 5 and 3 × 3, whole blocks of LANES.
            ((32, 7, 7), (5, 5), [1, 1], PaddingSpec::SameUpper),
            ((16, 7, 7), (3, 3), [1, 1], PaddingSpec::SameUpper),
            // Its stride-2 way in, zeros on the right and below only.
            (
                (16, 14, 14),
                (5, 5),
                [2, 2],
                PaddingSpec::Explicit(tvec!(1, 1), tvec!(2, 2)),
            ),
            (
                (20, 14, 14),
                (5, 5),
                [2, 2],
                PaddingSpec::Explicit(tvec!(1, 1), tvec!(2, 2)),
            ),
            // Fewer outputs than a run (RUN), a last block of fewer than LANES.
            ((3, 2, 3), (3, 3), [1, 1], PaddingSpec::SameUpper),
            ((5, 6, 6), (7, 7), [1, 1], PaddingSpec::SameLower),
            ((2, 9, 9), (3, 5), [4, 3], PaddingSpec::Valid),
            // A large plane, forced side by side.
            ((18, 12, 12), (3, 3), [1, 1], PaddingSpec::SameUpper),
        ];
        for ((channels, h, w), (kh, kw), strides, padding) in cases {
            let what = format!("{channels} × {h} × {w}, {kh} × {kw}, {strides:?}, {padding:?}");
            let spec = depthwise_spec(channels, (kh, kw), strides, padding);
            let geometry = PlaneGeometry::of(&spec, channels, h, w).context("a geometry")?;
            let (input, kernel, bias) = (
                values(channels * h * w, 1),
                values(channels * kh * kw, 2),
                values(channels, 3),
            );
            // Planes one at a time, side by side, and, where the channels come in whole blocks
            // of LANES, side by side with them innermost in, out, or both.
            let mut layouts = vec![(false, false, false), (true, false, false)];
            if channels % LANES == 0 {
                layouts.extend([(true, true, false), (true, false, true), (true, true, true)]);
            }
            let blocked = if channels % LANES == 0 {
                reorder(&input, channels, true)
            } else {
                Vec::new()
            };
            let outputs: Vec<Vec<f32>> = layouts
                .into_iter()
                .map(
                    |(channels_side_by_side, innermost_input, innermost_output)| {
                        let op = DepthwiseConv {
                            geometry: geometry.clone(),
                            clamp: Clamp {
                                floor: -0.5,
                                ceiling: 0.75,
                            },
                            channels_side_by_side,
                            innermost_input,
                            innermost_output,
                            planes_output_shape: None,
                        };
                        let sources = Sources {
                            input: if innermost_input { &blocked } else { &input },
                            kernel: &kernel,
                            bias: &bias,
                        };
                        let mut out = vec![f32::NAN; channels * geometry.oh * geometry.ow];
                        convolve_planes(&op, &sources, 0, &mut out);
                        if innermost_output {
                            out = reorder(&out, channels, false);
                        }
                        out
                    },
                )
                .collect();
            assert!(outputs[0].iter().all(|v| v.is_finite()), "{what}");
            assert!(
                outputs[0].contains(&-0.5) && outputs[0].iter().any(|&v| v > -0.5 && v < 0.75),
                "{what}: the clamp should bite and let values through"
            );
            for (layout, out) in outputs.iter().enumerate().skip(1) {
                let same = outputs[0]
                    .iter()
                    .zip(out)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{what}, layout {layout}");
            }
        }
        Ok(())
    }

    /// Planes of `channels` (a multiple of LANES) channels innermost in blocks of LANES, and
    /// back (`innermost` false).
    fn reorder(planes: &[f32], channels: usize, innermost: bool) -> Vec<f32> {
        let positions = planes.len() / channels;
        let mut out = vec![f32::NAN; planes.len()];
        for c in 0..channels {
            for p in 0..positions {
                let blocked = ((c / LANES) * positions + p) * LANES + c % LANES;
                let plain = c * positions + p;
                if innermost {
                    out[blocked] = planes[plain];
                } else {
                    out[plain] = planes[blocked];
                }
            }
        }
        out
    }

    /// An EfficientNet block as tract declutters it (1×1 expand with its bias and ReLU6, the
    /// depthwise convolution with its ReLU6, 1×1 project), each op replaced, with activations
    /// kept channels innermost between them and without: the same bits. With AVX-512 the
    /// channels go innermost around every depthwise convolution whose channels come in whole
    /// blocks of 16, not around the others; without, nothing changes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn channels_kept_innermost_around_a_block_change_no_bit() -> TractResult<()> {
        use crate::encode::pointwise::replace_pointwise_convolutions;
        let one_by_one = |outputs, inputs| Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec!(1, 1),
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: inputs,
                output_channels: outputs,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        // (in, expanded, out channels), plane side, filter, stride
        let cases = [
            ((24, 48, 40), 7, 5, 1),
            ((16, 64, 24), 14, 3, 2),
            ((16, 40, 24), 7, 3, 1),
            // 28 × 28: the 1×1 convolutions go over to the channel tile for it; 30 × 30: not.
            ((16, 32, 16), 28, 3, 1),
            ((16, 32, 16), 30, 3, 1),
        ];
        for ((c_in, c_mid, c_out), side, k, stride) in cases {
            let what =
                format!("{c_in} → {c_mid} → {c_out} on {side} × {side}, {k} × {k} / {stride}");
            let run = |innermost: bool| -> TractResult<(Vec<u32>, usize)> {
                let mut model = TypedModel::default();
                let x = model.add_source("x", f32::fact([1, c_in, side, side]))?;
                // ReLU6 as `wire_clamp` wires it, named apart each time.
                let relu6 = |model: &mut TypedModel, y: OutletId| -> TractResult<OutletId> {
                    use tract_onnx::tract_core::ops::math::{max, min};
                    let at = model.nodes().len();
                    let floor = tensor0(0f32).broadcast_into_rank(4)?;
                    let floor = model.add_const(format!("floor{at}"), floor)?;
                    let y = model.wire_node(format!("max{at}"), max(), &[y, floor])?[0];
                    let ceiling = tensor0(6f32).broadcast_into_rank(4)?;
                    let ceiling = model.add_const(format!("ceiling{at}"), ceiling)?;
                    Ok(model.wire_node(format!("min{at}"), min(), &[y, ceiling])?[0])
                };
                let wire_conv = |model: &mut TypedModel,
                                 name: &str,
                                 conv: Conv,
                                 x: OutletId,
                                 kernel_shape: [usize; 4],
                                 seed: u32| {
                    let len = kernel_shape.iter().product();
                    let kernel = tensor1(&values(len, seed)).into_shape(&kernel_shape)?;
                    let kernel = model.add_const(format!("{name}.kernel"), kernel)?;
                    let bias = tensor1(&values(conv.pool_spec.output_channels, seed + 1));
                    let bias = model.add_const(format!("{name}.bias"), bias)?;
                    let y = model.wire_node(name, conv, &[x, kernel, bias])?[0];
                    TractResult::Ok(y)
                };
                let y = wire_conv(
                    &mut model,
                    "expand",
                    one_by_one(c_mid, c_in),
                    x,
                    [c_mid, c_in, 1, 1],
                    1,
                )?;
                let y = relu6(&mut model, y)?;
                let depthwise = Conv {
                    pool_spec: depthwise_spec(
                        c_mid,
                        (k, k),
                        [stride, stride],
                        PaddingSpec::SameUpper,
                    ),
                    kernel_fmt: KernelFormat::OIHW,
                    group: c_mid,
                    q_params: None,
                };
                let y = wire_conv(&mut model, "depthwise", depthwise, y, [c_mid, 1, k, k], 3)?;
                let y = relu6(&mut model, y)?;
                let y = wire_conv(
                    &mut model,
                    "project",
                    one_by_one(c_out, c_mid),
                    y,
                    [c_out, c_mid, 1, 1],
                    5,
                )?;
                model.select_output_outlets(&[y])?;
                let mut model = model.into_decluttered()?;
                replace_depthwise_convolutions(&mut model)?;
                replace_pointwise_convolutions(&mut model)?;
                if innermost {
                    keep_channels_innermost(&mut model)?;
                }
                let kept = model
                    .nodes()
                    .iter()
                    .filter_map(|n| n.op_as::<DepthwiseConv>())
                    .map(|d| usize::from(d.innermost_input) + usize::from(d.innermost_output))
                    .sum();
                let input =
                    tensor1(&values(c_in * side * side, 9)).into_shape(&[1, c_in, side, side])?;
                let out = model
                    .into_optimized()?
                    .into_runnable()?
                    .run(tvec!(input.into_tvalue()))?;
                let out = out[0].to_plain_array_view::<f32>()?;
                Ok((out.iter().map(|v| v.to_bits()).collect(), kept))
            };
            let (planes, none) = run(false)?;
            let (innermost, kept) = run(true)?;
            assert_eq!(none, 0, "{what}");
            let whole_blocks = c_mid % LANES == 0;
            let small = side * side <= 784;
            let expected = if avx512() && whole_blocks && small {
                2
            } else {
                0
            };
            assert_eq!(kept, expected, "{what}");
            assert_eq!(
                planes.len(),
                c_out * (side / stride) * (side / stride),
                "{what}"
            );
            assert!(planes == innermost, "{what}");
        }
        Ok(())
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn transposes_16_registers() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let rows: [[f32; 16]; 16] =
            std::array::from_fn(|i| std::array::from_fn(|j| (i * 16 + j) as f32));
        // SAFETY: the processor has AVX-512F (checked above).
        let transposed = unsafe {
            use std::arch::x86_64::*;
            let mut r = rows.map(|row| _mm512_loadu_ps(row.as_ptr()));
            transpose_16x16(&mut r);
            r.map(|v| {
                let mut row = [0f32; 16];
                _mm512_storeu_ps(row.as_mut_ptr(), v);
                row
            })
        };
        for (i, row) in transposed.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                assert_eq!(v, rows[j][i], "at {i}, {j}");
            }
        }
    }

    #[test]
    fn filters_larger_than_seven_by_seven_or_strides_above_four_stay_tracts() -> TractResult<()> {
        let (_, replaced) = convolve((2, 9, 9), (9, 9), [1, 1], PaddingSpec::SameUpper, true)?;
        assert_eq!(replaced, 0);
        let (_, replaced) = convolve((2, 20, 20), (3, 3), [5, 1], PaddingSpec::Valid, true)?;
        assert_eq!(replaced, 0);
        Ok(())
    }

    #[test]
    fn a_following_relu6_is_folded_in() -> TractResult<()> {
        // Sums of 9 taps of values in [-1, 1]: each clamp bites at both ends.
        for (strides, clamp) in [([1, 1], (0.0, 1.0)), ([2, 2], (-0.5, 0.25))] {
            let case = ((3, 11, 9), (3, 3), strides, PaddingSpec::SameUpper);
            let (want, _, before) =
                convolve_clamped(case.0, case.1, case.2, case.3.clone(), Some(clamp), false)?;
            let (got, replaced, after) =
                convolve_clamped(case.0, case.1, case.2, case.3, Some(clamp), true)?;
            assert_eq!((before, replaced, after), (2, 1, 0), "{strides:?}");
            assert!(got.contains(&clamp.0) && got.contains(&clamp.1));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-5, "{strides:?} at {i}: {g} vs {w}");
            }
        }
        Ok(())
    }
}
