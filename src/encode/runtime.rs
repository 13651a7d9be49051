//! tract, wrapped: read an ONNX graph from bytes, optimise it once, run it many times,
//! addressing inputs and outputs by name.

use std::sync::Arc;

use tract_onnx::prelude::*;

use super::EncodeError;
use crate::core::par::Pool;

/// The threads an encoder runs on, natively: a pool of its own (`core::par::Pool`) shared by
/// the encoder's own split of pictures or batches and by tract's matrix products, depthwise
/// convolutions and element-wise ops (tract-linalg's `multithread-mm`, which splits each
/// operation's output into tiles computed exactly as on one thread, so results do not depend
/// on the count). On wasm32 always one: a page has no threads, and tract is built there
/// without the feature.
#[derive(Clone, Debug, Default)]
pub(crate) struct Threads {
    pool: Pool,
}

impl Threads {
    /// `threads` threads; 0: one per core.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(what: &str, threads: usize) -> Result<Threads, EncodeError> {
        let pool = Pool::new(threads).map_err(|message| EncodeError::Inference {
            what: what.to_string(),
            message,
        })?;
        Ok(Threads { pool })
    }

    pub fn count(&self) -> usize {
        self.pool.threads()
    }

    /// Runs `f` (tract runs) with every tract operation split over the pool.
    ///
    /// `f` itself runs on one of the pool's threads, not the caller's: an operation split in
    /// two then runs one half on that thread and wakes one other, where from outside the pool
    /// it woke two while the caller slept. Over the 430 captions at 2 threads (per-op timing,
    /// equal-length batches) the matrix products took 467 and 428 ms this way against 486 and
    /// 451 ms from outside, in two alternating pairs of runs.
    pub fn split_ops<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(pool) = self.pool.rayon() {
            use tract_linalg::multithread::{multithread_tract_scope, Executor};
            return pool
                .install(|| multithread_tract_scope(Executor::MultiThread(pool.clone()), f));
        }
        f()
    }

    /// `f(index, item)` for every item, items spread over the pool, each on one thread (tract's
    /// operations not split further: whole runs side by side keep every core busy without
    /// the hand-offs between the steps of one run); results in item order.
    pub fn map<T, R, F>(&self, items: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(usize, &T) -> R + Sync + Send,
    {
        self.pool.map(items, |i, item| {
            #[cfg(not(target_arch = "wasm32"))]
            {
                use tract_linalg::multithread::{multithread_tract_scope, Executor};
                multithread_tract_scope(Executor::SingleThread, || f(i, item))
            }
            #[cfg(target_arch = "wasm32")]
            f(i, item)
        })
    }
}

/// One output: its shape and its values, row-major.
pub(crate) type Output = (Vec<usize>, Vec<f32>);

pub(crate) struct OnnxModel {
    what: String,
    runnable: Arc<TypedRunnableModel>,
    input_names: Vec<String>,
    output_names: Vec<String>,
}

/// Replaces every cast of a constant by its result, whatever the size.
///
/// tract folds a constant subgraph at load only while the result does not outgrow its inputs
/// (or stays under 4 MiB), so a float16 weight cast to float32 above that size is cast again
/// on every run. In MiniLM that is the 30,522-token embedding table (47 MB as f32): in
/// Chromium it was 46% of every sentence's time, 76 ms for a three-token one. Weights are
/// decoded once here instead, trading memory (the f32 copy) for that time.
fn fold_constant_casts(model: &mut TypedModel) -> TractResult<()> {
    let casts_of_constants: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|node| {
            node.op_is::<tract_onnx::tract_core::ops::cast::Cast>()
                && node.inputs.len() == 1
                && model
                    .outlet_fact(node.inputs[0])
                    .is_ok_and(|fact| fact.konst.is_some())
        })
        .map(|node| node.id)
        .collect();
    for id in casts_of_constants {
        let node = model.node(id);
        let Some(value) = model.outlet_fact(node.inputs[0])?.konst.clone() else {
            continue;
        };
        let Some(mut result) = node.op.eval_out_of_plan(tvec!(value.into_tvalue()))? else {
            continue;
        };
        let name = node.name.clone();
        let mut patch = TypedModelPatch::default();
        let wire = patch.add_const(&name, result.remove(0).into_arc_tensor())?;
        patch.shunt_outside(model, OutletId::new(id, 0), wire)?;
        patch.apply(model)?;
    }
    Ok(())
}

impl OnnxModel {
    /// `what` names the model in error messages. Without `fixed_input` the batch and
    /// sequence dimensions stay symbolic, so one optimised plan serves every batch size;
    /// with it, the single f32 input is pinned to that shape first.
    pub fn from_bytes(
        what: &str,
        bytes: &[u8],
        fixed_input: Option<&[usize]>,
    ) -> Result<OnnxModel, EncodeError> {
        let invalid = |e: TractError| EncodeError::InvalidModel {
            what: what.to_string(),
            message: format!("{e:#}"),
        };
        let unsupported = |e: TractError| EncodeError::UnsupportedModel {
            what: what.to_string(),
            message: format!("{e:#}"),
        };
        let mut reader = bytes;
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut reader)
            .map_err(invalid)?;
        if let Some(shape) = fixed_input {
            model = model
                .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))
                .map_err(invalid)?;
        }
        let input_names = model
            .input_outlets()
            .map_err(invalid)?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let output_names = model
            .output_outlets()
            .map_err(invalid)?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(o.node).name.clone())
            })
            .collect();
        let mut typed = model.into_typed().map_err(unsupported)?;
        fold_constant_casts(&mut typed).map_err(unsupported)?;
        // Natively, tract's depthwise convolutions are replaced by latentlab's
        // (`depthwise.rs` says why); they exist in their final form once decluttered.
        #[cfg(not(target_arch = "wasm32"))]
        let typed = {
            let mut typed = typed.into_decluttered().map_err(unsupported)?;
            super::depthwise::replace_depthwise_convolutions(&mut typed).map_err(unsupported)?;
            // 1×1 convolutions too, on AVX2 and AVX-512 machines (`pointwise.rs` says why).
            #[cfg(target_arch = "x86_64")]
            super::pointwise::replace_pointwise_convolutions(&mut typed).map_err(unsupported)?;
            // And convolutions over few channels (the stem) as patches times that tile
            // (`im2col.rs` says why).
            #[cfg(target_arch = "x86_64")]
            super::im2col::replace_small_convolutions(&mut typed).map_err(unsupported)?;
            // And between the 1×1 and depthwise convolutions of small planes, activations kept
            // channels innermost (`depthwise.rs` says why).
            #[cfg(target_arch = "x86_64")]
            super::depthwise::keep_channels_innermost(&mut typed).map_err(unsupported)?;
            // And products by constant weights by latentlab's (`packed.rs` says why).
            super::packed::replace_const_weight_products(&mut typed).map_err(unsupported)?;
            // And attention's chain of ops by one (`attention.rs` says why).
            super::attention::fuse_attention(&mut typed).map_err(unsupported)?;
            // And each layer norm's chain of ops, with the residual Add before it, by one
            // (`layer_norm.rs` says why).
            super::layer_norm::fuse_layer_norms(&mut typed).map_err(unsupported)?;
            typed
        };
        let runnable = typed
            .into_optimized()
            .map_err(unsupported)?
            .into_runnable()
            .map_err(unsupported)?;
        Ok(OnnxModel {
            what: what.to_string(),
            runnable,
            input_names,
            output_names,
        })
    }

    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    pub fn output_index(&self, name: &str) -> Result<usize, EncodeError> {
        self.output_names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| EncodeError::MissingOutput {
                what: self.what.clone(),
                name: name.to_string(),
                available: self.output_names.clone(),
            })
    }

    pub fn require_input(&self, name: &str) -> Result<usize, EncodeError> {
        self.input_names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| EncodeError::MissingInput {
                what: self.what.clone(),
                name: name.to_string(),
                available: self.input_names.clone(),
            })
    }

    /// Runs with inputs in the model's input order; returns the requested outputs as
    /// (shape, values).
    pub fn run(&self, inputs: Vec<Tensor>, outputs: &[usize]) -> Result<Vec<Output>, EncodeError> {
        let failed = |e: TractError| EncodeError::Inference {
            what: self.what.clone(),
            message: format!("{e:#}"),
        };
        let values: TVec<TValue> = inputs.into_iter().map(|t| t.into()).collect();
        let result = self.runnable.run(values).map_err(failed)?;
        outputs
            .iter()
            .map(|&i| {
                let tensor = result.get(i).ok_or_else(|| EncodeError::Inference {
                    what: self.what.clone(),
                    message: format!("output {i} missing from the result"),
                })?;
                // Half-precision exports give float16 outputs: widened here, so every caller
                // sees f32 (a no-op, borrowed, for f32 outputs).
                let tensor = tensor.cast_to::<f32>().map_err(failed)?;
                let view = tensor.to_plain_array_view::<f32>().map_err(failed)?;
                Ok((view.shape().to_vec(), view.iter().copied().collect()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::{array::Gather, cast::Cast};

    /// Token ids looking up a float16 table cast to float32, as in MiniLM: 3 M entries (6 MB
    /// as f16, 12 MB as f32), above what tract folds by itself.
    fn embedding_lookup() -> TractResult<TypedModel> {
        let mut model = TypedModel::default();
        let ids = model.add_source("ids", i64::fact([2]))?;
        let values: Vec<f16> = (0..3_000_000)
            .map(|i| f16::from_f32((i % 1000) as f32 / 8.0))
            .collect();
        let table = model.add_const("table", tensor1(&values).into_shape(&[30_000, 100])?)?;
        let table = model.wire_node("decode", Cast::new(f32::datum_type()), &[table])?[0];
        let rows = model.wire_node("lookup", Gather::new(0), &[table, ids])?;
        model.select_output_outlets(&rows)?;
        Ok(model)
    }

    fn casts_left(model: &TypedModel) -> usize {
        model.nodes().iter().filter(|n| n.op_is::<Cast>()).count()
    }

    fn lookup(model: TypedModel) -> TractResult<Tensor> {
        let out = model
            .into_runnable()?
            .run(tvec!(tensor1(&[3i64, 29_999]).into_tvalue()))?;
        Ok(out[0].clone().into_tensor())
    }

    #[test]
    fn a_large_constant_cast_runs_once_at_load_not_on_every_run() -> TractResult<()> {
        let as_tract_leaves_it = embedding_lookup()?.into_optimized()?;
        assert_eq!(
            casts_left(&as_tract_leaves_it),
            1,
            "tract folds this cast by itself now: fold_constant_casts may be unnecessary"
        );
        let mut model = embedding_lookup()?;
        fold_constant_casts(&mut model)?;
        let folded = model.into_optimized()?;
        assert_eq!(casts_left(&folded), 0);
        let expected = lookup(as_tract_leaves_it)?;
        let got = lookup(folded)?;
        assert_eq!(got.shape(), &[2, 100]);
        assert_eq!(got, expected);
        assert_eq!(got.to_plain_array_view::<f32>()?[[0, 0]], 300.0 / 8.0);
        Ok(())
    }
}
