//! ONNX encoders: the only place that knows tract and tokenizers.
//!
//! A model is described by a [`ModelEntry`] of `models/manifest.json` (or of a user's own
//! manifest) and loaded from bytes: the sha256 is checked, the graph is read with
//! `model_for_read`, optimised once and kept runnable, then run on many batches.
//! Results are [`Matrix`] values with L2-normalised rows, the type the rest of latentlab
//! works with.

#[cfg(not(target_arch = "wasm32"))]
mod attention;
mod bpe;
#[cfg(not(target_arch = "wasm32"))]
mod depthwise;
#[cfg(not(target_arch = "wasm32"))]
mod following;
mod fusion;
#[cfg(target_arch = "x86_64")]
mod im2col;
mod image;
#[cfg(not(target_arch = "wasm32"))]
mod layer_norm;
mod manifest;
#[cfg(not(target_arch = "wasm32"))]
mod models;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod op_testing;
#[cfg(not(target_arch = "wasm32"))]
mod packed;
#[cfg(target_arch = "x86_64")]
mod pointwise;
mod runtime;
mod text;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm_kernel;

pub use bpe::BpeTokenizer;
pub use fusion::FusionModel;
pub use image::{decode_image, preprocess, ImageEncoder, RgbaImage, MAX_IMAGE_PIXELS};
pub use manifest::{
    Filter, LanguageModelEntry, Manifest, ModelEntry, ModelKind, Pooling, Preprocessing,
    ResizeMode, TensorSpec,
};
#[cfg(not(target_arch = "wasm32"))]
pub use models::{models_dir, Models, ModelsError};
pub use text::TextEncoder;

pub use crate::core::matrix::Matrix;

/// Everything that can go wrong loading or running an encoder. Messages name the file,
/// input or value at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("{what}: sha256 is {actual}, expected {expected} (a corrupt or wrong file)")]
    Sha256 {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} is not a readable ONNX model (corrupt or truncated?): {message}")]
    InvalidModel { what: String, message: String },
    #[error("{what} cannot run here (an unsupported operator or shape?): {message}")]
    UnsupportedModel { what: String, message: String },
    #[error("{what} has no input {name:?} (it has: {})", .available.join(", "))]
    MissingInput {
        what: String,
        name: String,
        available: Vec<String>,
    },
    #[error("{what} has no output {name:?} (it has: {})", .available.join(", "))]
    MissingOutput {
        what: String,
        name: String,
        available: Vec<String>,
    },
    #[error("{what} needs input {name:?}, which a text encoder cannot fill (known: input_ids, attention_mask, token_type_ids)")]
    UnknownInput { what: String, name: String },
    #[error("the tokenizer cannot be read: {0}")]
    Tokenizer(String),
    #[error("text {index} is empty")]
    EmptyText { index: usize },
    #[error("no {0} to encode")]
    NothingToEncode(&'static str),
    #[error("image {index} is {width}×{height}: an image needs at least one pixel each way")]
    EmptyImage {
        index: usize,
        width: u32,
        height: u32,
    },
    #[error("image {index} is {width}×{height}, more than the {max} pixels latentlab accepts")]
    ImageTooLarge {
        index: usize,
        width: u32,
        height: u32,
        max: u64,
    },
    #[error("{what} cannot be decoded as a picture: {message}")]
    Undecodable { what: String, message: String },
    #[error("image {index}: {actual} bytes of RGBA for {width}×{height} ({expected} expected)")]
    PixelBuffer {
        index: usize,
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("{what} failed while running: {message}")]
    Inference { what: String, message: String },
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks `bytes` against an expected sha256; an empty expectation checks nothing.
pub fn check_sha256(what: &str, bytes: &[u8], expected: &str) -> Result<(), EncodeError> {
    if expected.is_empty() {
        return Ok(());
    }
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(EncodeError::Sha256 {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}
