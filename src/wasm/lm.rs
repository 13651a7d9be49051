//! The language model for JavaScript: `LanguageModel` (GGUF bytes in; generate, score,
//! tokenize) and `tinyRandomLlamaGguf` (an untrained tiny model for tests).
//!
//! Bytes in, plain objects out with the CLI's keys. Fetching, caching and sha256 of the
//! download are the JS layer's; `onToken` returning `false` cancels (what was generated
//! so far is returned with `stop: "cancelled"`).

use std::ops::ControlFlow;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{js_error, to_js, Options};
use crate::core::lm::{
    chat_user_prompt, generate, score_continuation, Decoder, GenerateOptions, SamplingOptions,
    Tokenize,
};
use crate::encode::BpeTokenizer;
use crate::lm::testing::{random_tiny_llama, TinyShape};
use crate::lm::{GgufModel, Llama};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
export interface GenerateOptions {
  /** Default 64. */
  maxTokens?: number;
  /** Default "argmax". */
  decoder?: "argmax" | "sample" | "beam";
  temperature?: number; topK?: number; topP?: number; seed?: number;
  /** Beam width of the beam decoder (default 4). */
  beams?: number;
  /** Generation ends at the first of these; the text is cut before it. */
  stop?: string[];
  /** Wrap the prompt as a user turn of the model's chat template. */
  chat?: boolean;
}
export interface TokenEvent { token: number; text: string; logprob: number; }
export interface GenerateResult {
  model: string; text: string; tokens: number[]; logprobs: number[];
  stop: "max_tokens" | "eos" | "stop_string" | "context" | "cancelled";
  prompt_tokens: number; seconds: number; seconds_to_first_token: number; tokens_per_second: number;
}
export interface ScoreResult {
  model: string; logprob: number; mean_logprob: number; tokens: number[]; per_token: number[];
}
"#;

const GENERATE_KEYS: &[&str] = &[
    "maxTokens",
    "decoder",
    "temperature",
    "topK",
    "topP",
    "seed",
    "beams",
    "stop",
    "chat",
];

#[wasm_bindgen]
pub struct LanguageModel {
    llama: Llama,
    tokenizer: BpeTokenizer,
    name: String,
}

#[derive(Serialize)]
struct GenerateResult<'a> {
    model: &'a str,
    text: String,
    tokens: Vec<u32>,
    logprobs: Vec<f64>,
    stop: &'static str,
    prompt_tokens: usize,
    seconds: f64,
    seconds_to_first_token: f64,
    tokens_per_second: f64,
}

#[derive(Serialize)]
struct ScoreResult<'a> {
    model: &'a str,
    logprob: f64,
    mean_logprob: f64,
    tokens: Vec<u32>,
    per_token: Vec<f64>,
}

fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

#[wasm_bindgen]
impl LanguageModel {
    /// Opens a GGUF file's bytes; with `sha256`, the bytes must have that digest.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: Vec<u8>, sha256: Option<String>) -> Result<LanguageModel, JsError> {
        let model = GgufModel::from_bytes(bytes, sha256.as_deref()).map_err(js_error)?;
        let tokenizer = BpeTokenizer::from_spec(&model.vocabulary).map_err(js_error)?;
        Ok(LanguageModel {
            name: model.name.unwrap_or_else(|| "unnamed GGUF model".into()),
            llama: model.llama,
            tokenizer,
        })
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> usize {
        self.llama.config.vocab
    }

    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> usize {
        self.llama.config.context
    }

    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.tokenizer.encode(text).map_err(js_error)
    }

    pub fn detokenize(&self, ids: Vec<u32>) -> Result<String, JsError> {
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= self.llama.config.vocab) {
            return Err(JsError::new(&format!(
                "token id {id} is outside the vocabulary of {} tokens",
                self.llama.config.vocab
            )));
        }
        self.tokenizer.decode(&ids).map_err(js_error)
    }

    /// Continues `prompt`. `onToken({token, text, logprob})` sees each token as it is
    /// accepted; returning `false` stops generation.
    #[wasm_bindgen(unchecked_return_type = "GenerateResult")]
    pub fn generate(
        &self,
        prompt: &str,
        #[wasm_bindgen(unchecked_param_type = "GenerateOptions")] options: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: TokenEvent) => boolean | void")]
        on_token: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let o = Options::optional(options, GENERATE_KEYS, "generate options")?;
        let decoder = match o.get::<String>("decoder")?.as_deref() {
            None | Some("argmax") => Decoder::Argmax,
            Some("sample") => Decoder::Sample(SamplingOptions {
                temperature: o.get("temperature")?.unwrap_or(1.0),
                top_k: o.get("topK")?,
                top_p: o.get("topP")?,
                seed: o.get("seed")?.unwrap_or(0),
            }),
            Some("beam") => Decoder::Beam {
                width: o.get("beams")?.unwrap_or(4),
            },
            Some(other) => {
                return Err(JsError::new(&format!(
                    "options.decoder is {other:?}: expected \"argmax\", \"sample\" or \"beam\""
                )))
            }
        };
        let options = GenerateOptions {
            decoder,
            max_tokens: o.get("maxTokens")?.unwrap_or(64),
            stop: o.get("stop")?.unwrap_or_default(),
            stop_at_eos: true,
        };
        let prompt = if o.get("chat")?.unwrap_or(false) {
            chat_user_prompt(prompt)
        } else {
            prompt.to_string()
        };
        let ids = self.tokenizer.encode(&prompt).map_err(js_error)?;
        let start = now_seconds();
        let mut first = None;
        let mut callback_error = None;
        let generation = generate(&self.llama, &self.tokenizer, &ids, &options, |event| {
            first.get_or_insert_with(now_seconds);
            let Some(f) = &on_token else {
                return ControlFlow::Continue(());
            };
            let arg = match to_js(&serde_json::json!({
                "token": event.token, "text": event.text, "logprob": event.logprob,
            })) {
                Ok(v) => v,
                Err(e) => {
                    callback_error = Some(e);
                    return ControlFlow::Break(());
                }
            };
            match f.call1(&JsValue::NULL, &arg) {
                Ok(v) if v == JsValue::FALSE => ControlFlow::Break(()),
                Ok(_) => ControlFlow::Continue(()),
                Err(e) => {
                    callback_error = Some(JsError::new(&format!(
                        "onToken threw: {}",
                        e.as_string().unwrap_or_else(|| format!("{e:?}"))
                    )));
                    ControlFlow::Break(())
                }
            }
        })
        .map_err(js_error)?;
        if let Some(e) = callback_error {
            return Err(e);
        }
        let end = now_seconds();
        let first = first.unwrap_or(end);
        let rest = generation.tokens.len().saturating_sub(1);
        to_js(&GenerateResult {
            model: &self.name,
            stop: generation.stop.as_str(),
            prompt_tokens: generation.prompt_tokens,
            seconds: end - start,
            seconds_to_first_token: first - start,
            tokens_per_second: if rest > 0 && end > first {
                rest as f64 / (end - first)
            } else {
                0.0
            },
            text: generation.text,
            tokens: generation.tokens,
            logprobs: generation.logprobs,
        })
    }

    /// The log-probability of `text` after `context` (see `latentlab lm score`).
    #[wasm_bindgen(unchecked_return_type = "ScoreResult")]
    pub fn score(&self, text: &str, context: Option<String>) -> Result<JsValue, JsError> {
        let s = score_continuation(
            &self.llama,
            &self.tokenizer,
            context.as_deref().unwrap_or(""),
            text,
        )
        .map_err(js_error)?;
        to_js(&ScoreResult {
            model: &self.name,
            logprob: s.logprob,
            mean_logprob: s.mean(),
            tokens: s.tokens.clone(),
            per_token: s.per_token,
        })
    }
}

/// A tiny Llama GGUF with random weights (untrained: its text is noise), for tests and
/// examples that must not download the real model.
#[wasm_bindgen(js_name = tinyRandomLlamaGguf)]
pub fn tiny_random_llama_gguf(seed: u32) -> Vec<u8> {
    random_tiny_llama(seed as u64, &TinyShape::default())
}
