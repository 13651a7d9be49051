//! A learned image+instruction fusion (MagicLens-style), plugged into composed search in place
//! of `core::search::fuse`'s weighted interpolation when its ONNX is supplied: inputs
//! `image_embeds` and `text_embeds` (`batch × dim` each), output `query_embeds` (`batch × dim`),
//! L2-normalised here like every embedding.

use tract_onnx::prelude::Tensor;

use super::runtime::OnnxModel;
use super::{EncodeError, Matrix};

pub struct FusionModel {
    what: String,
    model: OnnxModel,
    image_input: usize,
    text_input: usize,
    output: usize,
}

impl FusionModel {
    /// `what` names the model in errors.
    pub fn from_bytes(what: &str, bytes: &[u8]) -> Result<FusionModel, EncodeError> {
        let model = OnnxModel::from_bytes(what, bytes, None)?;
        let image_input = model.require_input("image_embeds")?;
        let text_input = model.require_input("text_embeds")?;
        if model.input_names().len() != 2 {
            return Err(EncodeError::Manifest(format!(
                "fusion model {what:?} takes {} inputs ({}); a fusion model takes image_embeds and text_embeds",
                model.input_names().len(),
                model.input_names().join(", ")
            )));
        }
        let output = model.output_index("query_embeds")?;
        Ok(FusionModel {
            what: what.to_string(),
            model,
            image_input,
            text_input,
            output,
        })
    }

    /// One normalised query per row: row i fuses `image` row i with `text` row i.
    pub fn fuse(&self, image: &Matrix, text: &Matrix) -> Result<Matrix, EncodeError> {
        if image.rows == 0 {
            return Err(EncodeError::NothingToEncode("query"));
        }
        if (image.rows, image.cols) != (text.rows, text.cols) {
            return Err(EncodeError::Inference {
                what: self.what.clone(),
                message: format!(
                    "image embeddings are {}×{} but text embeddings {}×{}: expected one of each per query, of one width",
                    image.rows, image.cols, text.rows, text.cols
                ),
            });
        }
        let tensor = |m: &Matrix| {
            Tensor::from_shape(&[m.rows, m.cols], &m.data).map_err(|e| EncodeError::Inference {
                what: self.what.clone(),
                message: format!("{e:#}"),
            })
        };
        let mut inputs = vec![Tensor::default(), Tensor::default()];
        inputs[self.image_input] = tensor(image)?;
        inputs[self.text_input] = tensor(text)?;
        let (shape, values) = self
            .model
            .run(inputs, &[self.output])?
            .pop()
            .ok_or_else(|| EncodeError::Inference {
                what: self.what.clone(),
                message: "no query_embeds in the result".into(),
            })?;
        if shape.len() != 2 || shape[0] != image.rows {
            return Err(EncodeError::Inference {
                what: self.what.clone(),
                message: format!(
                    "query_embeds has shape {shape:?} for {} queries",
                    image.rows
                ),
            });
        }
        let mut m = Matrix {
            rows: shape[0],
            cols: shape[1],
            data: values,
        };
        m.normalize_rows();
        Ok(m)
    }
}
