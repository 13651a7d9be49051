//! Convolutions over few input channels (EfficientNet-Lite0's stem: 3 → 32 channels, 3×3,
//! stride 2), natively on x86-64 AVX2/AVX-512 machines: the input's patches laid out once as
//! a [C·kh·kw, oh·ow] matrix, then `pointwise.rs`'s tile multiplies it by the [O, C·kh·kw]
//! weights with the bias and the clamp (ReLU6) that follows folded in.
//!
//! Why: tract ran the stem as a lazily-packed product at ~14 G multiply-adds a second and the
//! ReLU6 after it as a separate pass: 67.6 of 908 ms over 60 pictures at one thread (7.4%;
//! per-op timing on a Zen 4, 2026-12-07). Only where C·kh·kw ≤ `MAX_PATCH` (the matrix is
//! then at most as many rows as a 1×1 convolution's inputs usually are); larger convolutions
//! stay tract's.
//!
//! Arithmetic: per output the bias, then the patch in (channel, row, column) order, one fused
//! multiply-add each, then the clamp: float-order noise against tract, bounded by the
//! conformance tests against onnxruntime; the thread count changes no bit.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::Conv;

use super::depthwise::{plain_2d_convolution, PlaneGeometry};
use super::following::{following_clamp, nodes_of, replace_chain};
use super::pointwise::{PointwiseConv, Tile};

/// The largest patch (C·kh·kw) replaced.
const MAX_PATCH: usize = 256;

/// `patches[(c·kh + ky)·kw + kx][oy·ow + ox] = input[c][oy·sy + ky − pad_top][ox·sx + kx −
/// pad_left]`, zero where that falls in the padding; `patches` is overwritten whole.
fn patches(g: &PlaneGeometry, input: &[f32], patches: &mut [f32]) {
    let positions = g.oh * g.ow;
    for c in 0..g.channels {
        let plane = &input[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (c * g.kh + ky) * g.kw + kx;
                let row = &mut patches[row * positions..(row + 1) * positions];
                for (oy, out) in row.chunks_exact_mut(g.ow).enumerate() {
                    let iy = (oy * g.sy + ky).checked_sub(g.pad_top);
                    let Some(src) = iy.and_then(|iy| plane.get(iy * g.w..(iy + 1) * g.w)) else {
                        out.fill(0.0);
                        continue;
                    };
                    for (ox, o) in out.iter_mut().enumerate() {
                        let ix = (ox * g.sx + kx).checked_sub(g.pad_left);
                        *o = ix.and_then(|ix| src.get(ix)).copied().unwrap_or(0.0);
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Im2colConv {
    geometry: PlaneGeometry,
    /// [O, C·kh·kw] by the [C·kh·kw, oh·ow] patches.
    product: PointwiseConv,
    output_shape: TVec<usize>,
}

impl PartialEq for Im2colConv {
    fn eq(&self, other: &Self) -> bool {
        self.geometry == other.geometry && self.product == other.product
    }
}

impl Eq for Im2colConv {}

impl Op for Im2colConv {
    fn name(&self) -> StaticName {
        "LatentlabIm2colConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.geometry;
        Ok(vec![format!(
            "{}×{} over {} channels, stride {}×{} → {:?}",
            g.kh, g.kw, g.channels, g.sy, g.sx, self.output_shape
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Im2colConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let g = &self.geometry;
        let x = input.to_plain_array_view::<f32>()?;
        let x = x.as_slice().context("convolution: input not contiguous")?;
        ensure!(
            x.len() == g.channels * g.h * g.w,
            "convolution: an input of {} values for {} channels of {} × {}",
            x.len(),
            g.channels,
            g.h,
            g.w
        );
        let mut cols = vec![0f32; g.channels * g.kh * g.kw * g.oh * g.ow];
        patches(g, x, &mut cols);
        // SAFETY: f32 has no invalid bit patterns, and `product` writes every value.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut view = output.to_plain_array_view_mut::<f32>()?;
            let out = view
                .as_slice_mut()
                .context("convolution: output not contiguous")?;
            self.product.product(&cols, out)?;
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Im2colConv {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&self.output_shape)))
    }

    as_op!();
}

/// Replaces every float convolution of `model` over channels-first planes with one group, no
/// dilation, constant [O, C, kh, kw] weights and bias, concrete sizes and a patch of at most
/// MAX_PATCH values, with the Max/Min clamp that alone follows it, by `Im2colConv`; run after
/// decluttering, before optimising. `LATENTLAB_TRACT_IM2COL` keeps tract's.
pub(crate) fn replace_small_convolutions(model: &mut TypedModel) -> TractResult<()> {
    if std::env::var_os("LATENTLAB_TRACT_IM2COL").is_some() {
        return Ok(());
    }
    let Some(tile) = Tile::detect() else {
        return Ok(());
    };
    let found = nodes_of::<Conv>(model);
    for id in found {
        let node = model.node(id);
        let Some((geometry, weights, bias, output_shape)) = small_convolution(model, node)? else {
            continue;
        };
        let (clamp, last) = following_clamp(model, id)?;
        let g = &geometry;
        let patch_len = g.channels * g.kh * g.kw;
        let outputs = bias.len();
        let product = PointwiseConv::new(
            tile,
            (weights, bias),
            (outputs, patch_len, g.oh * g.ow),
            clamp,
            output_shape.clone(),
        );
        let op = Im2colConv {
            geometry,
            product,
            output_shape,
        };
        let input = node.inputs[0];
        replace_chain(model, &[input], op, last)?;
    }
    Ok(())
}

type Found = (PlaneGeometry, Vec<f32>, Vec<f32>, TVec<usize>);

/// The geometry, the [O, C·kh·kw] weights, the O biases and the output's shape, when `node`
/// is a convolution this op replaces.
fn small_convolution(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Found>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    if !plain_2d_convolution(conv, node) || conv.group != 1 {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let (Some(kernel), Some(bias)) = (
        model.outlet_fact(node.inputs[1])?.konst.clone(),
        model.outlet_fact(node.inputs[2])?.konst.clone(),
    ) else {
        return Ok(None);
    };
    let (Some(shape), Some(output_shape)) = (
        input.shape.as_concrete(),
        model
            .outlet_fact(OutletId::new(node.id, 0))?
            .shape
            .as_concrete(),
    ) else {
        return Ok(None);
    };
    let rank = shape.len();
    if input.datum_type != f32::datum_type()
        || !(rank == 3 || rank == 4 && shape[0] == 1)
        || output_shape.len() != rank
    {
        return Ok(None);
    }
    let (channels, h, w) = (shape[rank - 3], shape[rank - 2], shape[rank - 1]);
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    let outputs = spec.output_channels;
    let patch_len = channels * kh * kw;
    if channels != spec.input_channels
        || patch_len == 0
        || patch_len > MAX_PATCH
        || kernel.shape() != [outputs, channels, kh, kw]
        || !(bias.len() == 1 || bias.len() == outputs)
    {
        return Ok(None);
    }
    let Some(geometry) = PlaneGeometry::of(spec, channels, h, w) else {
        return Ok(None);
    };
    if output_shape[rank - 3..] != [outputs, geometry.oh, geometry.ow] {
        return Ok(None);
    }
    let kernel = kernel.cast_to::<f32>()?;
    let weights: Vec<f32> = kernel
        .to_plain_array_view::<f32>()?
        .iter()
        .copied()
        .collect();
    let bias = bias.cast_to::<f32>()?;
    let bias = bias.to_plain_array_view::<f32>()?;
    let bias: Vec<f32> = if bias.len() == 1 {
        vec![bias.iter().copied().next().unwrap_or(0.0); outputs]
    } else {
        bias.iter().copied().collect()
    };
    Ok(Some((geometry, weights, bias, output_shape.into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::{assert_close, values, wire_clamp};
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cnn::{KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::math::{Max, Min};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    struct Case {
        /// Input channels, height, width.
        input: (usize, usize, usize),
        outputs: usize,
        filter: (usize, usize),
        strides: [usize; 2],
        padding: PaddingSpec,
        clamp: Option<(f32, f32)>,
    }

    /// The plan's output, how many convolutions were replaced and how many Max/Min are left.
    fn run(case: &Case, replace: bool, threads: usize) -> TractResult<(Vec<f32>, usize, usize)> {
        let (c, h, w) = case.input;
        let (kh, kw) = case.filter;
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, c, h, w]))?;
        let kernel = tensor1(&values(case.outputs * c * kh * kw, 7)).into_shape(&[
            case.outputs,
            c,
            kh,
            kw,
        ])?;
        let kernel = model.add_const("kernel", kernel)?;
        let bias = model.add_const("bias", tensor1(&values(case.outputs, 8)))?;
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec!(kh, kw),
                padding: case.padding.clone(),
                dilations: None,
                strides: Some(tvec!(case.strides[0], case.strides[1])),
                input_channels: c,
                output_channels: case.outputs,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let mut y = model.wire_node("conv", conv, &[x, kernel, bias])?[0];
        if let Some(bounds) = case.clamp {
            y = wire_clamp(&mut model, y, bounds)?;
        }
        model.select_output_outlets(&[y])?;
        let mut model = model.into_decluttered()?;
        if replace {
            replace_small_convolutions(&mut model)?;
        }
        let order = model.eval_order()?;
        let count = |what: &dyn Fn(&TypedNode) -> bool| {
            order.iter().filter(|&&n| what(model.node(n))).count()
        };
        let replaced = count(&|n| n.op_is::<Im2colConv>());
        let clamps = count(&|n| {
            n.op_as::<TypedBinOp>()
                .is_some_and(|b| b.0.is::<Max>() || b.0.is::<Min>())
        });
        let plan = model.into_optimized()?.into_runnable()?;
        let input = tensor1(&values(c * h * w, 9)).into_shape(&[1, c, h, w])?;
        let run = || plan.run(tvec!(input.clone().into_tvalue()));
        let out = if threads > 1 {
            use tract_linalg::multithread::{multithread_tract_scope, Executor};
            multithread_tract_scope(Executor::multithread(threads), run)?
        } else {
            run()?
        };
        let out = out[0].to_plain_array_view::<f32>()?;
        Ok((out.iter().copied().collect(), replaced, clamps))
    }

    fn stem() -> Case {
        // EfficientNet-Lite0's stem, smaller: TensorFlow-style stride 2 padded after.
        Case {
            input: (3, 17, 15),
            outputs: 13,
            filter: (3, 3),
            strides: [2, 2],
            padding: PaddingSpec::Explicit(tvec!(0, 0), tvec!(1, 1)),
            clamp: Some((0.0, 1.0)),
        }
    }

    #[test]
    fn gives_tracts_convolution_with_its_bias_and_clamp() -> TractResult<()> {
        let cases = [
            stem(),
            Case {
                input: (4, 9, 11),
                outputs: 6,
                filter: (3, 5),
                strides: [1, 1],
                padding: PaddingSpec::SameUpper,
                clamp: None,
            },
            Case {
                input: (2, 12, 10),
                outputs: 9,
                filter: (5, 5),
                strides: [3, 2],
                padding: PaddingSpec::Valid,
                clamp: Some((-0.5, 0.25)),
            },
        ];
        for case in cases {
            let what = format!("{:?} {:?} {:?}", case.input, case.filter, case.strides);
            let (want, none, clamps) = run(&case, false, 1)?;
            let (got, replaced, left) = run(&case, true, 1)?;
            if Tile::detect().is_none() {
                // Not on this processor: tract's convolution, untouched.
                assert_eq!((replaced, &got), (0, &want), "{what}");
                continue;
            }
            assert_eq!((none, replaced, left), (0, 1, 0), "{what}");
            assert_eq!(clamps, if case.clamp.is_some() { 2 } else { 0 });
            if let Some((floor, ceiling)) = case.clamp {
                assert!(got.contains(&floor) && got.contains(&ceiling), "{what}");
            }
            assert_close(&got, &want, &what);
        }
        Ok(())
    }

    #[test]
    fn threads_change_no_bit() -> TractResult<()> {
        let mut case = stem();
        case.input = (3, 120, 100);
        case.outputs = 32;
        let (one, replaced, _) = run(&case, true, 1)?;
        let (two, _, _) = run(&case, true, 2)?;
        assert_eq!(replaced, usize::from(Tile::detect().is_some()));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two));
        Ok(())
    }

    #[test]
    fn large_patches_stay_tracts() -> TractResult<()> {
        let case = Case {
            input: (32, 6, 6),
            outputs: 4,
            filter: (3, 3),
            strides: [1, 1],
            padding: PaddingSpec::SameUpper,
            clamp: None,
        };
        let (_, replaced, _) = run(&case, true, 1)?;
        assert_eq!(replaced, 0);
        Ok(())
    }
}
