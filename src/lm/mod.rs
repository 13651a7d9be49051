//! The language-model runtime: the only place that knows GGUF and its kernels.
//!
//! [`GgufModel::from_bytes`] reads a GGUF file (checked by sha256 when one is given), builds
//! the [`Llama`] forward pass over its still-quantised weights and hands out the embedded
//! vocabulary as plain data ([`VocabularySpec`]) for `crate::encode` to turn into a
//! tokenizer. Decoding, scoring and sketching are core logic over
//! [`crate::core::lm::LanguageModel`], which [`Llama`] implements.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod gguf;
mod int8;
mod llama;
pub mod quant;
pub mod testing;

use std::sync::Arc;

pub use gguf::{Gguf, GgufWriter, MetaValue, TensorInfo};
pub use llama::{KvCache, Llama, LlamaConfig};
pub use quant::{Activations, GgmlType};

use crate::core::lm::VocabularySpec;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LmRuntimeError {
    #[error("not a GGUF file (it does not start with \"GGUF\")")]
    NotGguf,
    #[error("the GGUF file is corrupt: {0}")]
    Corrupt(String),
    #[error("the GGUF file uses something latentlab does not run: {0}")]
    Unsupported(String),
    #[error("the GGUF file's metadata is wrong: {0}")]
    Metadata(String),
    #[error("{what}: sha256 is {actual}, expected {expected} (a corrupt or wrong file)")]
    Sha256 {
        what: String,
        expected: String,
        actual: String,
    },
}

/// A model file opened for use: the network and its vocabulary.
pub struct GgufModel {
    pub llama: Llama,
    pub vocabulary: VocabularySpec,
    /// `general.name`, if the file has one.
    pub name: Option<String>,
}

impl GgufModel {
    /// Opens a GGUF file's bytes. With `sha256`, the bytes must have that digest.
    pub fn from_bytes(bytes: Vec<u8>, sha256: Option<&str>) -> Result<GgufModel, LmRuntimeError> {
        if let Some(expected) = sha256 {
            use sha2::Digest;
            let actual = format!("{:x}", sha2::Sha256::digest(&bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(LmRuntimeError::Sha256 {
                    what: "the language model".into(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        let bytes = Arc::new(bytes);
        let g = Gguf::parse(&bytes)?;
        let vocabulary = vocabulary(&g)?;
        let llama = Llama::from_parsed(&g, bytes.clone())?;
        if llama.config.vocab != vocabulary.tokens.len() {
            return Err(LmRuntimeError::Metadata(format!(
                "the vocabulary has {} tokens but the embedding {} rows",
                vocabulary.tokens.len(),
                llama.config.vocab
            )));
        }
        Ok(GgufModel {
            llama,
            vocabulary,
            name: g
                .get("general.name")
                .and_then(|v| v.as_str())
                .map(String::from),
        })
    }
}

fn strings(g: &Gguf, key: &str) -> Result<Vec<String>, LmRuntimeError> {
    match g.get(key) {
        Some(MetaValue::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| LmRuntimeError::Metadata(format!("{key} holds a non-string"))),
        None => Ok(Vec::new()),
        Some(v) => Err(LmRuntimeError::Metadata(format!(
            "{key} is {v:?}, not a list of strings"
        ))),
    }
}

/// The embedded tokenizer as plain data.
fn vocabulary(g: &Gguf) -> Result<VocabularySpec, LmRuntimeError> {
    let text = |key: &str| g.get(key).and_then(|v| v.as_str()).map(String::from);
    let model = text("tokenizer.ggml.model")
        .ok_or_else(|| LmRuntimeError::Metadata("tokenizer.ggml.model is missing".into()))?;
    let tokens = strings(g, "tokenizer.ggml.tokens")?;
    if tokens.is_empty() {
        return Err(LmRuntimeError::Metadata(
            "tokenizer.ggml.tokens is missing or empty".into(),
        ));
    }
    let token_types = match g.get("tokenizer.ggml.token_type") {
        Some(MetaValue::Array(items)) => items
            .iter()
            .map(|v| match v {
                MetaValue::I32(x) => Some(*x),
                other => other.as_u64().and_then(|x| i32::try_from(x).ok()),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                LmRuntimeError::Metadata("tokenizer.ggml.token_type holds a non-integer".into())
            })?,
        _ => vec![1; tokens.len()],
    };
    if token_types.len() != tokens.len() {
        return Err(LmRuntimeError::Metadata(format!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            token_types.len(),
            tokens.len()
        )));
    }
    let id = |key: &str| -> Result<Option<u32>, LmRuntimeError> {
        match g.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|&i| (i as usize) < tokens.len())
                .map(|i| Some(i as u32))
                .ok_or_else(|| LmRuntimeError::Metadata(format!("{key} is {v:?}, not a token id"))),
        }
    };
    Ok(VocabularySpec {
        model,
        pre: text("tokenizer.ggml.pre").unwrap_or_else(|| "default".into()),
        merges: strings(g, "tokenizer.ggml.merges")?,
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        chat_template: text("tokenizer.chat_template"),
        token_types,
        tokens,
    })
}
