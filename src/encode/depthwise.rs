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
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};

/// One depthwise convolution with every size fixed at load: `channels` planes of `h` × `w`
/// in (after any batch axis, of one), of `oh` × `ow` out.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct DepthwiseConv {
    channels: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sy: usize,
    sx: usize,
    pad_top: usize,
    pad_left: usize,
    oh: usize,
    ow: usize,
}

impl DepthwiseConv {
    /// Rows and columns of each stride phase of the padded plane: enough for every tap's
    /// shifted run over `oh` rows of `qw` columns.
    fn phase_dims(&self) -> (usize, usize) {
        let qw = self.ow + (self.kw - 1) / self.sx;
        let qh = self.oh + (self.kh - 1) / self.sy + 1;
        (qh, qw)
    }

    /// One plane: `input` (h × w) → `out` (oh × ow); `phases` and `acc` are scratch.
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
        // phases[(py * sx + px) * phase_len + j * qw + i] = padded[j * sy + py][i * sx + px]
        phases.clear();
        phases.resize(self.sy * self.sx * phase_len, 0.0);
        for y in 0..self.h {
            let (py, j) = ((y + self.pad_top) % self.sy, (y + self.pad_top) / self.sy);
            // Padded rows past the phase's height are never read by an output that is kept.
            if j >= qh {
                continue;
            }
            let row = &input[y * self.w..(y + 1) * self.w];
            for px in 0..self.sx {
                // the first column of this phase and where it lands in the phase's row
                let x0 = (px + self.sx - self.pad_left % self.sx) % self.sx;
                let i0 = (x0 + self.pad_left) / self.sx;
                let start = (py * self.sx + px) * phase_len + j * qw + i0;
                let dest = &mut phases[start..start + qw.saturating_sub(i0)];
                let src = row.get(x0..).unwrap_or_default();
                // the common strides spelled out, so that the copies vectorise
                match self.sx {
                    1 => {
                        let n = dest.len().min(src.len());
                        dest[..n].copy_from_slice(&src[..n]);
                    }
                    2 => {
                        let n = dest.len().min(src.len().div_ceil(2));
                        for (i, d) in dest[..n].iter_mut().enumerate() {
                            *d = src[2 * i];
                        }
                    }
                    sx => dest
                        .iter_mut()
                        .zip(src.iter().step_by(sx))
                        .for_each(|(d, &v)| *d = v),
                }
            }
        }
        let n = self.oh * qw;
        acc.clear();
        acc.resize(n, bias);
        // A block of the output at a time, every tap over it, so that the block and the
        // phase rows it reads stay in the L1 cache (a 112×114 plane is 51 KB).
        const BLOCK: usize = 2048;
        for from in (0..n).step_by(BLOCK) {
            let to = n.min(from + BLOCK);
            let acc = &mut acc[from..to];
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let phase = (ky % self.sy) * self.sx + kx % self.sx;
                    let start = phase * phase_len + (ky / self.sy) * qw + kx / self.sx + from;
                    let k = filter[ky * self.kw + kx];
                    multiply_add(acc, &phases[start..start + acc.len()], k);
                }
            }
        }
        for (oy, row) in out.chunks_exact_mut(self.ow).enumerate() {
            row.copy_from_slice(&acc[oy * qw..oy * qw + self.ow]);
        }
    }
}

/// `acc[i] += x[i] * k` for every i: the whole kernel, compiled for AVX-512 and for AVX2 + FMA
/// as well as for the baseline, the widest this processor has chosen at run time (x86-64
/// builds target the baseline, SSE2, unless told otherwise).
fn multiply_add(acc: &mut [f32], x: &[f32], k: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F (checked just above).
            return unsafe { multiply_add_avx512(acc, x, k) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor has AVX2 and FMA (checked just above).
            return unsafe { multiply_add_avx2(acc, x, k) };
        }
    }
    multiply_add_portable(acc, x, k, false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn multiply_add_avx512(acc: &mut [f32], x: &[f32], k: f32) {
    multiply_add_portable(acc, x, k, true)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn multiply_add_avx2(acc: &mut [f32], x: &[f32], k: f32) {
    multiply_add_portable(acc, x, k, true)
}

/// With `fused`, a fused multiply-add (only where the caller's target has FMA: elsewhere
/// `mul_add` is a library call).
#[inline(always)]
fn multiply_add_portable(acc: &mut [f32], x: &[f32], k: f32, fused: bool) {
    if fused {
        acc.iter_mut()
            .zip(x)
            .for_each(|(a, &v)| *a = v.mul_add(k, *a));
    } else {
        acc.iter_mut().zip(x).for_each(|(a, &v)| *a += v * k);
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
        let (plane_in, plane_out, taps) = (self.h * self.w, self.oh * self.ow, self.kh * self.kw);
        ensure!(input.len() % plane_in == 0 && kernel.len() == self.channels * taps);
        ensure!(bias.len() == 1 || bias.len() == self.channels);
        let planes = input.len() / plane_in;
        let mut shape: TVec<usize> = input_shape;
        let rank = shape.len();
        shape[rank - 2] = self.oh;
        shape[rank - 1] = self.ow;
        let mut output = Tensor::zero::<f32>(&shape)?;
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
                let c = p % self.channels;
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
        shape[rank - 2] = self.oh.into();
        shape[rank - 1] = self.ow.into();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Replaces every float depthwise convolution of `model` whose sizes are known (channels
/// first, one filter per channel, no dilation, a kernel of [channels, 1, kh, kw]) by
/// `DepthwiseConv`; run after decluttering (which folds batch norms and paddings into the
/// convolution and drops a batch axis of one), before optimising.
pub(crate) fn replace_depthwise_convolutions(model: &mut TypedModel) -> TractResult<()> {
    let found: Vec<(usize, DepthwiseConv)> = model
        .nodes()
        .iter()
        .filter_map(|node| {
            let conv = node.op_as::<Conv>()?;
            depthwise(model, node, conv)
                .ok()
                .flatten()
                .map(|op| (node.id, op))
        })
        .collect();
    for (id, op) in found {
        let node = model.node(id);
        let inputs = node.inputs.clone();
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, op)?;
        patch.apply(model)?;
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
    if conv.q_params.is_some()
        || conv.kernel_fmt != KernelFormat::OIHW
        || conv.group != channels
        || spec.output_channels != channels
        || spec.data_format.c_is_last()
        || spec.kernel_shape.len() != 2
        || spec
            .dilations
            .as_ref()
            .is_some_and(|d| d.iter().any(|&d| d != 1))
        || node.inputs.len() != 3
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
    let strides = spec.strides.clone().unwrap_or_else(|| tvec!(1, 1));
    let padding = spec.computed_padding(&[h, w]);
    let op = DepthwiseConv {
        channels,
        h,
        w,
        kh,
        kw,
        sy: strides[0],
        sx: strides[1],
        pad_top: padding[0].pad_before,
        pad_left: padding[1].pad_before,
        oh: padding[0].convoluted,
        ow: padding[1].convoluted,
    };
    if op.oh == 0 || op.ow == 0 || op.sy == 0 || op.sx == 0 {
        return Ok(None);
    }
    Ok(Some(op))
}
