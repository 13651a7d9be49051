//! Byte-level BPE tokenizers from a model file's embedded vocabulary (GGUF's
//! `tokenizer.ggml.*`), built with the `tokenizers` crate so that the splitting, merging and
//! byte mapping are Hugging Face's own code rather than a re-implementation.

use serde_json::{json, Value};
use tokenizers::Tokenizer;

use super::EncodeError;
use crate::core::lm::{byte_level_chars, LmError, Tokenize, VocabularySpec};

/// llama.cpp token type of control tokens (`<|im_start|>` and the like).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// A tokenizer for a language model: text ↔ ids, special tokens recognised in text.
pub struct BpeTokenizer {
    tokenizer: Tokenizer,
    /// Each token's bytes (None for control tokens), for constrained decoding.
    bytes: Vec<Option<Vec<u8>>>,
    eos: Option<u32>,
    bos: Option<u32>,
}

/// The pre-tokenizer llama.cpp names `pre` stands for, in `tokenizers`' JSON.
fn pre_tokenizer(pre: &str) -> Result<Value, EncodeError> {
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    match pre {
        // SmolLM2's own tokenizer.json: every digit alone, then GPT-2's split (llama.cpp's
        // "smollm" regexes are the same two steps).
        "smollm" => Ok(json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]})),
        "gpt2" | "default" => Ok(byte_level),
        other => Err(EncodeError::Tokenizer(format!(
            "the pre-tokenizer {other:?} is not supported (latentlab knows \"smollm\", \"gpt2\" and \"default\")"
        ))),
    }
}

impl BpeTokenizer {
    pub fn from_spec(spec: &VocabularySpec) -> Result<BpeTokenizer, EncodeError> {
        if spec.model != "gpt2" {
            return Err(EncodeError::Tokenizer(format!(
                "tokenizer model {:?} is not supported (latentlab builds byte-level BPE, \"gpt2\")",
                spec.model
            )));
        }
        let vocab: serde_json::Map<String, Value> = spec
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        if vocab.len() != spec.tokens.len() {
            return Err(EncodeError::Tokenizer(
                "the vocabulary lists a token twice".into(),
            ));
        }
        let added: Vec<Value> = spec
            .tokens
            .iter()
            .zip(&spec.token_types)
            .enumerate()
            .filter(|(_, (_, &ty))| ty == CONTROL || ty == USER_DEFINED)
            .map(|(i, (t, &ty))| {
                json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": ty == CONTROL})
            })
            .collect();
        let config = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer(&spec.pre)?,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": spec.merges},
        });
        let bytes =
            serde_json::to_vec(&config).map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        let tokenizer =
            Tokenizer::from_bytes(bytes).map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        let to_byte: std::collections::HashMap<char, u8> = byte_level_chars()
            .into_iter()
            .enumerate()
            .map(|(b, c)| (c, b as u8))
            .collect();
        let bytes = spec
            .tokens
            .iter()
            .zip(&spec.token_types)
            .map(|(t, &ty)| match ty {
                CONTROL => None,
                // User-defined tokens are matched literally in text.
                USER_DEFINED => Some(t.as_bytes().to_vec()),
                _ => t.chars().map(|c| to_byte.get(&c).copied()).collect(),
            })
            .collect();
        Ok(BpeTokenizer {
            tokenizer,
            bytes,
            eos: spec.eos,
            bos: spec.bos,
        })
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}

impl Tokenize for BpeTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, LmError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| LmError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn decode(&self, ids: &[u32]) -> Result<String, LmError> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| LmError::Tokenizer(e.to_string()))
    }

    fn eos(&self) -> Option<u32> {
        self.eos
    }

    fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        self.bytes.get(id as usize).cloned().flatten()
    }
}
