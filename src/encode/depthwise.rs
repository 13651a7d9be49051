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
//! compiler vectorises; measured in BENCHMARKS.md ("Native encoders, 2026-12-06").
//!
//! Not on wasm32 (the browser's numbers are measured and kept as they are). Arithmetic: per
//! output value the bias, then the taps in row-major filter order, each a fused multiply-add
//! where the processor has FMA — float-order noise against tract's op, which the conformance
//! tests against onnxruntime bound.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PoolSpec};

use super::following::{following_clamp, replace_chain, Clamp};

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
}

impl DepthwiseConv {
    /// Rows and columns of each stride phase of the padded plane: enough for every tap's
    /// shifted run over `oh` rows of `qw` columns.
    fn phase_dims(&self) -> (usize, usize) {
        let qw = self.geometry.ow + (self.geometry.kw - 1) / self.geometry.sx;
        let qh = self.geometry.oh + (self.geometry.kh - 1) / self.geometry.sy + 1;
        (qh, qw)
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
        phases: &mut Vec<f32>,
        acc: &mut Vec<f32>,
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
        // Each phase's first column and where it lands in the phase's rows: the same for every
        // row, so worked out once (a division per row and phase was a tenth of the op).
        let mut first_columns = [(0usize, 0usize); MAX_STRIDE];
        for (px, first) in first_columns.iter_mut().enumerate().take(self.geometry.sx) {
            let x0 = (px + self.geometry.sx - self.geometry.pad_left % self.geometry.sx)
                % self.geometry.sx;
            *first = (x0, (x0 + self.geometry.pad_left) / self.geometry.sx);
        }
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
        // Every tap reads the phases at its own offset, the same for every output value of
        // the flattened oh × qw grid (the few columns past the output's width are computed
        // and dropped).
        let mut offsets = [0usize; MAX_TAPS];
        for ky in 0..self.geometry.kh {
            for kx in 0..self.geometry.kw {
                let phase = (ky % self.geometry.sy) * self.geometry.sx + kx % self.geometry.sx;
                offsets[ky * self.geometry.kw + kx] =
                    phase * phase_len + (ky / self.geometry.sy) * qw + kx / self.geometry.sx;
            }
        }
        let n = (self.geometry.oh * qw).div_ceil(CHUNK) * CHUNK;
        // Every value of acc is written by taps_over.
        acc.resize(n, 0.0);
        let taps = self.geometry.kh * self.geometry.kw;
        taps_over(
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
}

/// Output values computed together, held in registers over every tap: four AVX2 registers,
/// two AVX-512 ones.
const CHUNK: usize = 32;

/// Filters up to 7 × 7 (EfficientNet's are 3 × 3 and 5 × 5) and strides up to 4; others stay
/// tract's.
const MAX_TAPS: usize = 49;
const MAX_STRIDE: usize = 4;

/// `out[i] = clamp(bias + Σ_t filter[t] · phases[offsets[t] + i])`, the taps in order: a chunk of
/// out's values stays in registers while every tap passes over it (one load and one
/// multiply-add per value and tap; a pass over the whole plane per tap loaded and stored the
/// running sums each time and ran at ~5 G multiply-adds a second). Compiled for AVX-512 and
/// for AVX2 + FMA as well as for the baseline, the widest this processor has chosen at run
/// time (x86-64 builds target the baseline, SSE2, unless told otherwise). `out.len()` is a
/// multiple of CHUNK, and every offset leaves `out.len()` values of `phases` after it.
fn taps_over(
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
    taps_over_portable(out, phases, offsets, filter, bias, clamp, false)
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
    taps_over_portable(out, phases, offsets, filter, bias, clamp, true)
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
    taps_over_portable(out, phases, offsets, filter, bias, clamp, true)
}

/// With `fused`, a fused multiply-add (only where the caller's target has FMA: elsewhere
/// `mul_add` is a library call).
#[inline(always)]
fn taps_over_portable(
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
        let mut shape: TVec<usize> = input_shape;
        let rank = shape.len();
        shape[rank - 2] = self.geometry.oh;
        shape[rank - 1] = self.geometry.ow;
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
        tract_linalg::multithread::par_chunks_mut(out, plane_out, work, |first, chunk| {
            let (mut phases, mut acc) = (Vec::new(), Vec::new());
            for (i, out) in chunk.chunks_exact_mut(plane_out).enumerate() {
                let p = first + i;
                let c = p % self.geometry.channels;
                let b = if bias.len() == 1 { bias[0] } else { bias[c] };
                self.plane(
                    &input[p * plane_in..(p + 1) * plane_in],
                    &kernel[c * taps..(c + 1) * taps],
                    b,
                    out,
                    &mut phases,
                    &mut acc,
                );
            }
            Ok(())
        })?;
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
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
    let found: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<Conv>())
        .map(|n| n.id)
        .collect();
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
            geometry,
            clamp: Clamp::NONE,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::{assert_close, values, wire_clamp};
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::math::{Max, Min};
    use tract_onnx::tract_core::ops::nn::DataFormat;

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
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec!(kh, kw),
                padding,
                dilations: None,
                strides: Some(tvec!(strides[0], strides[1])),
                input_channels: channels,
                output_channels: channels,
            },
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
