//! Layer normalisation over the last axis, with the residual Add before it, as one op,
//! natively: `y = (x − mean(x)) / sqrt(mean((x − mean(x))²) + eps) · gamma + beta`, where
//! `x = a + b` when an Add that only the normalisation reads comes first.
//!
//! Why: decluttered, tract runs each of MiniLM's 13 layer norms as six ops — the residual
//! Add, Reduce<Sum>, Mul by 1/n, Sub, RmsNorm and a Mul+Add by gamma and beta — each a pass
//! over the activations with an output of its own, and its Add ran at ~0.7 G values a second.
//! Per-op timing of 430 captions on a Zen 4 (2026-12-07): 67 of 1,017 ms at one thread, 55 of
//! 571 ms at two (the small ops split over threads got slower). Here a row is read once from
//! each input, normalised in place in its output row, and written once.
//!
//! Arithmetic: per row the sum in 16 interleaved partial sums, the graph's own 1/n constant
//! for the mean, the squares' sum the same way divided by n, `1 / sqrt(ms + eps)`, then
//! `d · inv · gamma + beta` without fused multiply-adds — float-order noise against tract's
//! chain, bounded by the conformance tests against onnxruntime. Rows are independent, so the
//! thread count changes no bit.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Add, Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

use super::following::{constant_operand, nodes_of, only_successor, replace_chain};

#[derive(Debug, PartialEq)]
struct Params {
    /// The normalised axis's length.
    n: usize,
    /// What the row's sum is multiplied by to give its mean (the graph's constant, 1/n).
    mean_scale: f32,
    eps: f32,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

#[derive(Debug, Clone)]
struct LayerNorm {
    params: Arc<Params>,
    /// Two inputs, summed before normalising (the residual Add folded in), or one.
    residual: bool,
}

impl PartialEq for LayerNorm {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.params, &other.params) && self.residual == other.residual
    }
}

impl Eq for LayerNorm {}

/// Below this many values a layer norm stays on one thread.
const MIN_SPLIT_VALUES: usize = 1 << 20;

/// Partial sums kept apart, so that the compiler vectorises the sums.
const LANES: usize = 16;

fn sum_of(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

/// Rows of `out` (whole rows of n values), `a` and `b` (when given) the same rows of the
/// inputs.
#[inline(always)]
fn rows_portable(p: &Params, a: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    let n = p.n;
    for (r, row) in out.chunks_exact_mut(n).enumerate() {
        let a = &a[r * n..(r + 1) * n];
        match b {
            Some(b) => {
                let b = &b[r * n..(r + 1) * n];
                for ((o, &x), &y) in row.iter_mut().zip(a).zip(b) {
                    *o = x + y;
                }
            }
            None => row.copy_from_slice(a),
        }
        let mean = sum_of(row, |v| v) * p.mean_scale;
        for v in row.iter_mut() {
            *v -= mean;
        }
        let mean_square = sum_of(row, |v| v * v) / n as f32;
        let inv = 1.0 / (mean_square + p.eps).sqrt();
        for ((v, &g), &b) in row.iter_mut().zip(&p.gamma).zip(&p.beta) {
            *v = *v * inv * g + b;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(p: &Params, a: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    rows_portable(p, a, b, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(p: &Params, a: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    rows_portable(p, a, b, out);
}

/// The rows compiled for the widest vectors this processor has (x86-64 builds target the
/// baseline, SSE2, unless told otherwise); the same arithmetic on each, no fused
/// multiply-adds, so the same bits.
fn rows(p: &Params, a: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F (checked just above).
            return unsafe { rows_avx512(p, a, b, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2 (checked just above).
            return unsafe { rows_avx2(p, a, b, out) };
        }
    }
    rows_portable(p, a, b, out);
}

impl Op for LayerNorm {
    fn name(&self) -> StaticName {
        "LatentlabLayerNorm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "n={} eps={} residual={}",
            self.params.n, self.params.eps, self.residual
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for LayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let p = &*self.params;
        ensure!(
            inputs.len() == 1 + usize::from(self.residual),
            "layer norm: {} inputs",
            inputs.len()
        );
        let shape: TVec<usize> = inputs[0].shape().into();
        ensure!(
            shape.last() == Some(&p.n),
            "layer norm: an input of shape {shape:?} normalised over {} values",
            p.n
        );
        let a = inputs[0].to_plain_array_view::<f32>()?;
        let a = a.as_slice().context("layer norm: input not contiguous")?;
        let b_view = match inputs.get(1) {
            Some(b) => {
                ensure!(
                    b.shape() == &*shape,
                    "layer norm: residual inputs of shapes {shape:?} and {:?}",
                    b.shape()
                );
                Some(b.to_plain_array_view::<f32>()?)
            }
            None => None,
        };
        let b = match &b_view {
            Some(view) => Some(
                view.as_slice()
                    .context("layer norm: input not contiguous")?,
            ),
            None => None,
        };
        // SAFETY: f32 has no invalid bit patterns, and every value is written: the chunks
        // cover every row.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        {
            let mut view = output.to_plain_array_view_mut::<f32>()?;
            let out = view
                .as_slice_mut()
                .context("layer norm: output not contiguous")?;
            ensure!(
                out.len() == a.len() && out.len() % p.n == 0,
                "layer norm: {} values out for {} in, rows of {}",
                out.len(),
                a.len(),
                p.n
            );
            // Rows split over tract's executor (the encoder's threads inside `split_ops`,
            // else one) only when there are many: a batch of 32 captions (~120 K values, 60
            // µs) ran slower split in two than on one thread (waking the other thread costs
            // about as much as the work).
            let b_rows = |range: std::ops::Range<usize>| b.map(|b| &b[range]);
            if out.len() < MIN_SPLIT_VALUES {
                rows(p, a, b_rows(0..out.len()), out);
            } else {
                tract_linalg::multithread::par_chunks_mut(out, p.n, out.len(), |first, chunk| {
                    let range = first * p.n..first * p.n + chunk.len();
                    rows(p, &a[range.clone()], b_rows(range), chunk);
                    Ok(())
                })?;
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for LayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// Replaces every layer norm of `model` over the last axis as tract declutters it (Reduce<Sum>
/// over the last axis, Mul by a scalar, Sub of that mean, RmsNorm, Mul by a constant gamma,
/// Add of a constant beta, the last two along the last axis), with the residual Add before it
/// when only the normalisation reads that sum, by `LayerNorm`; run after decluttering, before
/// optimising. `LATENTLAB_TRACT_LAYER_NORM` keeps tract's.
pub(crate) fn fuse_layer_norms(model: &mut TypedModel) -> TractResult<()> {
    if std::env::var_os("LATENTLAB_TRACT_LAYER_NORM").is_some() {
        return Ok(());
    }
    let found = nodes_of::<Reduce>(model);
    for id in found {
        let Some((inputs, op, last)) = layer_norm(model, model.node(id))? else {
            continue;
        };
        replace_chain(model, &inputs, op, last)?;
    }
    Ok(())
}

/// A constant of n values along the last axis of a rank-`rank` output (ones elsewhere).
fn along_last(constant: &Tensor, rank: usize, n: usize) -> TractResult<Option<Vec<f32>>> {
    let shape = constant.shape();
    if shape.len() > rank
        || constant.len() != n
        || shape.last() != Some(&n)
        || constant.datum_type() != f32::datum_type()
    {
        return Ok(None);
    }
    let view = constant.to_plain_array_view::<f32>()?;
    Ok(Some(view.iter().copied().collect()))
}

type Match = (TVec<OutletId>, LayerNorm, usize);

fn layer_norm(model: &TypedModel, reduce_node: &TypedNode) -> TractResult<Option<Match>> {
    let Some(reduce) = reduce_node.op_as::<Reduce>() else {
        return Ok(None);
    };
    let x = reduce_node.inputs[0];
    let x_fact = model.outlet_fact(x)?;
    let rank = x_fact.rank();
    if reduce.reducer != Reducer::Sum
        || rank == 0
        || *reduce.axes != [rank - 1]
        || x_fact.datum_type != f32::datum_type()
    {
        return Ok(None);
    }
    let Ok(n) = x_fact.shape[rank - 1].to_usize() else {
        return Ok(None);
    };
    // mean = sum · (1/n)
    let Some(mean) = only_successor(model, OutletId::new(reduce_node.id, 0))? else {
        return Ok(None);
    };
    let Some(mean_scale) =
        constant_operand::<Mul>(model, mean, reduce_node.id)?.filter(|c| c.len() == 1)
    else {
        return Ok(None);
    };
    let mean_scale = mean_scale.cast_to_scalar::<f32>()?;
    // x is read by the Reduce and by `x − mean` alone.
    let readers = &model.node(x.node).outputs[x.slot].successors;
    if readers.len() != 2 {
        return Ok(None);
    }
    let Some(sub) = readers
        .iter()
        .map(|i| model.node(i.node))
        .find(|n| n.id != reduce_node.id)
    else {
        return Ok(None);
    };
    let is_sub = sub
        .op_as::<TypedBinOp>()
        .is_some_and(|b| b.0.is::<Sub>() && b.1.is_none_or(|dt| dt == f32::datum_type()));
    if !is_sub
        || sub.inputs.as_slice() != [x, OutletId::new(mean.id, 0)]
        || model.outlet_fact(OutletId::new(sub.id, 0))?.shape != x_fact.shape
    {
        return Ok(None);
    }
    // d / sqrt(mean(d²) + eps)
    let Some(norm) = only_successor(model, OutletId::new(sub.id, 0))? else {
        return Ok(None);
    };
    let Some(rms) = norm.op_as::<RmsNorm>() else {
        return Ok(None);
    };
    if rms.axis != rank - 1 || rms.eps.len() != 1 {
        return Ok(None);
    }
    let eps = rms.eps.cast_to_scalar::<f32>()?;
    // · gamma + beta
    let Some(scale) = only_successor(model, OutletId::new(norm.id, 0))? else {
        return Ok(None);
    };
    let Some(gamma) = constant_operand::<Mul>(model, scale, norm.id)? else {
        return Ok(None);
    };
    let Some(gamma) = along_last(gamma, rank, n)? else {
        return Ok(None);
    };
    let Some(shift) = only_successor(model, OutletId::new(scale.id, 0))? else {
        return Ok(None);
    };
    let Some(beta) = constant_operand::<Add>(model, shift, scale.id)? else {
        return Ok(None);
    };
    let Some(beta) = along_last(beta, rank, n)? else {
        return Ok(None);
    };
    // x = a + b, two activations of x's shape, read by nothing else: folded in.
    let producer = model.node(x.node);
    let residual = !model.output_outlets()?.contains(&x)
        && producer
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.is::<Add>() && b.1.is_none_or(|dt| dt == f32::datum_type()))
        && producer.inputs.len() == 2
        && producer.outputs.len() == 1
        && producer.inputs.iter().all(|&i| {
            model.outlet_fact(i).is_ok_and(|f| {
                f.konst.is_none() && f.datum_type == f32::datum_type() && f.shape == x_fact.shape
            })
        });
    let inputs: TVec<OutletId> = if residual {
        producer.inputs.iter().copied().collect()
    } else {
        tvec!(x)
    };
    let op = LayerNorm {
        params: Arc::new(Params {
            n,
            mean_scale,
            eps,
            gamma,
            beta,
        }),
        residual,
    };
    Ok(Some((inputs, op, shift.id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::op_testing::{assert_close, values};
    use tract_onnx::tract_core::ops::math::{add, mul, sub};

    struct Case {
        shape: Vec<usize>,
        /// The normalised input is the sum of two sources (else one source).
        residual: bool,
        /// The sum is also a model output (so it must stay).
        sum_is_output: bool,
    }

    /// The output(s) and how many layer norms were replaced.
    fn run(case: &Case, fuse: bool, threads: usize) -> TractResult<(Vec<f32>, usize)> {
        let mut model = TypedModel::default();
        let rank = case.shape.len();
        let n = case.shape[rank - 1];
        let a = model.add_source("a", f32::fact(&case.shape))?;
        let x = if case.residual {
            let b = model.add_source("b", f32::fact(&case.shape))?;
            model.wire_node("residual", add(), &[a, b])?[0]
        } else {
            a
        };
        let sum = model.wire_node("sum", Reduce::new(tvec!(rank - 1), Reducer::Sum), &[x])?[0];
        let scale = tensor0(1.0 / n as f32).broadcast_into_rank(rank)?;
        let scale = model.add_const("recip", scale)?;
        let mean = model.wire_node("mean", mul(), &[sum, scale])?[0];
        let d = model.wire_node("d", sub(), &[x, mean])?[0];
        let rms = RmsNorm {
            axis: rank - 1,
            eps: Arc::new(tensor0(1e-12f32)),
        };
        let r = model.wire_node("rms", rms, &[d])?[0];
        let mut along = vec![1; rank];
        along[rank - 1] = n;
        let gamma = Tensor::from_shape(&along, &values(n, 3))?;
        let gamma = model.add_const("gamma", gamma)?;
        let scaled = model.wire_node("scaled", mul(), &[r, gamma])?[0];
        let beta = Tensor::from_shape(&along, &values(n, 4))?;
        let beta = model.add_const("beta", beta)?;
        let y = model.wire_node("shifted", add(), &[scaled, beta])?[0];
        let outputs = if case.sum_is_output {
            vec![y, x]
        } else {
            vec![y]
        };
        model.select_output_outlets(&outputs)?;
        let mut model = model.into_decluttered()?;
        if fuse {
            fuse_layer_norms(&mut model)?;
        }
        let replaced = model
            .eval_order()?
            .iter()
            .filter(|&&n| model.node(n).op_is::<LayerNorm>())
            .count();
        let plan = model.into_optimized()?.into_runnable()?;
        let len: usize = case.shape.iter().product();
        let mut inputs = tvec!(Tensor::from_shape(&case.shape, &values(len, 5))?.into_tvalue());
        if case.residual {
            inputs.push(Tensor::from_shape(&case.shape, &values(len, 6))?.into_tvalue());
        }
        let run = || plan.run(inputs.clone());
        let out = if threads > 1 {
            use tract_linalg::multithread::{multithread_tract_scope, Executor};
            multithread_tract_scope(Executor::multithread(threads), run)?
        } else {
            run()?
        };
        let mut values = Vec::new();
        for o in &out {
            values.extend(o.to_plain_array_view::<f32>()?.iter().copied());
        }
        Ok((values, replaced))
    }

    #[test]
    fn gives_tracts_layer_norm_with_and_without_the_residual_add() -> TractResult<()> {
        for case in [
            Case {
                shape: vec![3, 5, 40],
                residual: true,
                sum_is_output: false,
            },
            Case {
                shape: vec![2, 7, 384],
                residual: false,
                sum_is_output: false,
            },
            // A sum that is also an output stays: the norm alone is replaced.
            Case {
                shape: vec![4, 19],
                residual: true,
                sum_is_output: true,
            },
        ] {
            let what = format!("{:?} residual {}", case.shape, case.residual);
            let (want, none) = run(&case, false, 1)?;
            let (got, replaced) = run(&case, true, 1)?;
            assert_eq!((none, replaced), (0, 1), "{what}");
            assert_close(&got, &want, &what);
        }
        Ok(())
    }

    #[test]
    fn threads_change_no_bit() -> TractResult<()> {
        let case = Case {
            shape: vec![64, 30, 384],
            residual: true,
            sum_is_output: false,
        };
        let (one, replaced) = run(&case, true, 1)?;
        let (two, _) = run(&case, true, 2)?;
        assert_eq!(replaced, 1);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two));
        Ok(())
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let n = 384 + 7;
        let p = Params {
            n,
            mean_scale: 1.0 / n as f32,
            eps: 1e-12,
            gamma: values(n, 1),
            beta: values(n, 2),
        };
        let (a, b) = (values(3 * n, 3), values(3 * n, 4));
        let mut want = vec![0f32; 3 * n];
        rows_portable(&p, &a, Some(&b), &mut want);
        let mut got = vec![0f32; 3 * n];
        rows(&p, &a, Some(&b), &mut got);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }
}
