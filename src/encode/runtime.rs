//! tract, wrapped: read an ONNX graph from bytes, optimise it once, run it many times,
//! addressing inputs and outputs by name.

use std::sync::Arc;

use tract_onnx::prelude::*;

use super::EncodeError;

/// One output: its shape and its values, row-major.
pub(crate) type Output = (Vec<usize>, Vec<f32>);

pub(crate) struct OnnxModel {
    what: String,
    runnable: Arc<TypedRunnableModel>,
    input_names: Vec<String>,
    output_names: Vec<String>,
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
        let runnable = model
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
                let view = tensor.to_plain_array_view::<f32>().map_err(failed)?;
                Ok((view.shape().to_vec(), view.iter().copied().collect()))
            })
            .collect()
    }
}
