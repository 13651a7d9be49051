//! Language-model logic over two small traits: decoding (argmax, seeded sampling, beam
//! search), scoring a continuation, stop strings, streaming and cancellation.
//!
//! Nothing here knows GGUF or a kernel: a model is anything that turns a state plus tokens
//! into logits ([`LanguageModel`]), a tokenizer anything that maps text to ids and back
//! ([`Tokenize`]). The real runtime is `crate::lm` (SmolLM2 from GGUF); the tests here use a
//! hand-written table model whose answers are known exactly.

mod decode;
mod score;
#[cfg(test)]
pub(crate) mod table;

pub(crate) use decode::uniform;
pub use decode::{
    generate, Decoder, GenerateOptions, Generation, SamplingOptions, StopReason, TokenEvent,
};
pub use score::{log_softmax, score_continuation, Score};

/// Everything that can go wrong decoding or scoring. Messages name the value at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LmError {
    #[error("{what} is {tokens} tokens, more than the model's context of {context} tokens")]
    ContextOverflow {
        what: String,
        tokens: usize,
        context: usize,
    },
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("{what} is empty: {why}")]
    Empty { what: String, why: &'static str },
    #[error("option {name} is {value}: {why}")]
    BadOption {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("the model failed: {0}")]
    Model(String),
    #[error("the tokenizer failed: {0}")]
    Tokenizer(String),
}

/// Logit rows for consecutive positions: `rows × vocab`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    pub vocab: usize,
    pub data: Vec<f32>,
}

impl Logits {
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.vocab).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }

    pub fn last(&self) -> Option<&[f32]> {
        self.rows().checked_sub(1).map(|i| self.row(i))
    }
}

/// Which positions of a chunk need logits: the output projection is a fifth of a small
/// model's work per token, so prompt processing asks for the last row only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Last,
    All,
}

/// A causal language model. `State` holds what the model has read (a KV cache); cloning
/// it forks the sequence, which beams rely on, so it should be cheap (shared prefixes).
pub trait LanguageModel {
    type State: Clone;

    fn vocab_size(&self) -> usize;
    /// The most tokens one state may hold.
    fn context_length(&self) -> usize;
    fn new_state(&self) -> Self::State;
    /// Tokens the state has read.
    fn state_len(&self, state: &Self::State) -> usize;
    /// Reads `tokens` after what `state` holds; returns the logits that predict the token
    /// after each position (`Want::All`) or after the last one (`Want::Last`).
    fn extend(
        &self,
        state: &mut Self::State,
        tokens: &[u32],
        want: Want,
    ) -> Result<Logits, LmError>;

    /// The final hidden state (after the last norm) at the last position `state` has
    /// read, where the model exposes it: the features a probe on "what the model knows
    /// here" reads. None by default.
    fn last_hidden(&self, _state: &Self::State) -> Option<Vec<f32>> {
        None
    }
}

/// Text ↔ token ids.
pub trait Tokenize {
    fn encode(&self, text: &str) -> Result<Vec<u32>, LmError>;
    /// The text of `ids` as the model's vocabulary spells it (lossy only for ids that end
    /// inside a UTF-8 character).
    fn decode(&self, ids: &[u32]) -> Result<String, LmError>;
    /// The end-of-sequence token, if the vocabulary has one.
    fn eos(&self) -> Option<u32>;
    /// The bytes a token stands for; None for control tokens (`<|im_start|>`, the end of
    /// sequence), which constrained decoding never puts inside a value.
    fn token_bytes(&self, id: u32) -> Option<Vec<u8>>;
}

/// GPT-2's byte → printable-character map, in which byte-level BPE vocabularies spell
/// their tokens (`Ġ` is the space).
pub fn byte_level_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut chars = vec!['\0'; 256];
    for &b in &printable {
        chars[b as usize] = char::from_u32(b).unwrap_or('?');
    }
    let mut next = 256;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            chars[b as usize] = char::from_u32(next).unwrap_or('?');
            next += 1;
            printable.push(b);
        }
    }
    chars
}

/// Checks that a token sequence fits the model and its vocabulary before any work.
pub(crate) fn check_tokens<M: LanguageModel>(
    model: &M,
    what: &str,
    already: usize,
    tokens: &[u32],
) -> Result<(), LmError> {
    let total = already.saturating_add(tokens.len());
    if total > model.context_length() {
        return Err(LmError::ContextOverflow {
            what: what.to_string(),
            tokens: total,
            context: model.context_length(),
        });
    }
    let vocab = model.vocab_size();
    if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab) {
        return Err(LmError::TokenOutOfRange { id, vocab });
    }
    Ok(())
}

/// A byte-level BPE vocabulary as a model file describes it (GGUF's `tokenizer.ggml.*`):
/// plain data, turned into a tokenizer by `crate::encode`.
#[derive(Clone, Debug, PartialEq)]
pub struct VocabularySpec {
    /// `tokenizer.ggml.model`, e.g. "gpt2" (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`, the pre-tokenizer's name, e.g. "smollm".
    pub pre: String,
    pub tokens: Vec<String>,
    /// "left right" pairs, highest priority first.
    pub merges: Vec<String>,
    /// llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Vec<i32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub chat_template: Option<String>,
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// SmolLM2's system turn when a conversation brings none (its chat template's default).
pub const SMOLLM2_DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// A conversation in ChatML, as SmolLM2's chat template renders it with
/// `add_generation_prompt`: a default system turn first when the conversation has none,
/// then `<|im_start|>role\ncontent<|im_end|>\n` per turn, then the assistant's opening.
/// Equal to transformers' `apply_chat_template` on the fixture conversations
/// (tests/lm_smollm2.rs).
pub fn chatml_prompt(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    if messages.first().is_none_or(|m| m.role != "system") {
        out.push_str("<|im_start|>system\n");
        out.push_str(SMOLLM2_DEFAULT_SYSTEM);
        out.push_str("<|im_end|>\n");
    }
    for m in messages {
        out.push_str("<|im_start|>");
        out.push_str(&m.role);
        out.push('\n');
        out.push_str(&m.content);
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

/// A single user question as a chat prompt.
pub fn chat_user_prompt(user: &str) -> String {
    chatml_prompt(&[ChatMessage {
        role: "user".into(),
        content: user.into(),
    }])
}
