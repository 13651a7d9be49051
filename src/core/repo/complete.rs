//! One line completion by a causal language model, with and without the retrieved
//! cross-file context, as the reference's non-FIM prompt builds it (`eval_hf.py`,
//! `prepare_features_cfc`): the cross-file context cut on the right to its budget, then the
//! left context cut on the left to the rest; without retrieval the left context alone gets
//! the whole budget. Greedy, at most 50 tokens (`gen_length`), ending early once a
//! non-empty line is finished — the reference generates 50 tokens and then keeps the
//! target's number of non-empty lines (one), so the kept text is the same.
//!
//! Token healing: the cursor stands at the start of a line, so the prompt ends with a
//! newline token, a boundary the model rarely saw in training (byte-level BPE writes a
//! newline and the next line's indentation as one token). Left as it is, SmolLM2 answers
//! with a comment or nothing at all. So a prompt ending in a whitespace-only token ends
//! one token earlier, and the first generated token must begin with that token's text
//! (which is then taken off the completion) — the technique of guidance's token healing.

use crate::core::lm::{log_softmax, LanguageModel, Tokenize, Want};
use crate::core::stats::mean;

use super::RepoError;

/// Prompt and generation sizes, in tokens.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompletionOptions {
    /// The whole prompt plus the generation (the reference: 2,048).
    pub max_sequence: usize,
    /// The cross-file context's share (the reference: 512).
    pub context_tokens: usize,
    /// The most generated tokens (the reference: 50 for lines).
    pub max_new_tokens: usize,
    /// How many first generated tokens the confidence signals average over.
    pub confidence_tokens: usize,
}

impl Default for CompletionOptions {
    /// The reference's sizes except the prompt: 1,024 tokens instead of 2,048, which on two
    /// CPU cores halves the time a task takes (a reduced setting; the README says so).
    fn default() -> Self {
        CompletionOptions {
            max_sequence: 1024,
            context_tokens: 512,
            max_new_tokens: 50,
            confidence_tokens: 4,
        }
    }
}

impl CompletionOptions {
    pub fn check(&self) -> Result<(), RepoError> {
        let bad = |name: &'static str, value: usize, why: &'static str| {
            Err(RepoError::Option {
                name,
                value: value.to_string(),
                why,
            })
        };
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens", 0, "at least one token must be generated");
        }
        if self.confidence_tokens == 0 {
            return bad(
                "confidence_tokens",
                0,
                "the confidence needs at least one token",
            );
        }
        let in_file = self
            .max_sequence
            .checked_sub(self.context_tokens)
            .and_then(|r| r.checked_sub(self.max_new_tokens));
        if in_file.is_none_or(|r| r < 16) {
            return bad(
                "max_sequence",
                self.max_sequence,
                "must leave at least 16 tokens of left context after the cross-file context and the generation",
            );
        }
        Ok(())
    }

    /// Left-context tokens with and without retrieval.
    fn in_file_budget(&self, with_retrieval: bool) -> usize {
        let total = self.max_sequence - self.max_new_tokens;
        if with_retrieval {
            total - self.context_tokens
        } else {
            total
        }
    }
}

/// The last `budget` tokens of `text`. Only the text's tail is tokenised (eight characters
/// a token is more than code needs), and the first token — possibly cut mid-word — is
/// dropped whenever the tail was cut.
fn tail_tokens<T: Tokenize>(tok: &T, text: &str, budget: usize) -> Result<Vec<u32>, RepoError> {
    let chars = budget.saturating_mul(8).saturating_add(64);
    let start = text.char_indices().rev().nth(chars).map_or(0, |(i, _)| i);
    let mut ids = tok.encode(&text[start..]).map_err(RepoError::Lm)?;
    if start > 0 && !ids.is_empty() {
        ids.remove(0);
    }
    let keep = ids.len().saturating_sub(budget);
    Ok(ids.split_off(keep))
}

/// A prompt: its token ids and the text taken off its end for the first generated token
/// to begin with (token healing; empty when nothing was taken).
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    pub ids: Vec<u32>,
    pub healed: String,
}

/// The prompt: `context` (the cross-file context; empty without retrieval) cut to its
/// budget on the right, then `left` cut on the left, then a trailing whitespace-only token
/// taken off for healing.
pub fn prompt_ids<T: Tokenize>(
    tok: &T,
    context: &str,
    left: &str,
    options: &CompletionOptions,
) -> Result<Prompt, RepoError> {
    let with_retrieval = !context.is_empty();
    let mut ids = Vec::new();
    if with_retrieval {
        ids = tok.encode(context).map_err(RepoError::Lm)?;
        ids.truncate(options.context_tokens);
    }
    ids.extend(tail_tokens(
        tok,
        left,
        options.in_file_budget(with_retrieval),
    )?);
    let mut healed = String::new();
    if ids.len() > 1 {
        let last = ids[ids.len() - 1];
        let text = tok.decode(&[last]).map_err(RepoError::Lm)?;
        if !text.is_empty() && text.chars().all(char::is_whitespace) {
            ids.pop();
            healed = text;
        }
    }
    if ids.is_empty() {
        return Err(RepoError::Input(
            "the prompt is empty: the cursor is at the very start of an empty file".into(),
        ));
    }
    Ok(Prompt { ids, healed })
}

/// A generated completion with what the policies need from it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// The generated text (up to the end of its first non-empty line).
    pub text: String,
    pub prompt_tokens: usize,
    /// log p of each generated token (an end of sequence included).
    pub logprobs: Vec<f64>,
    /// Entropy (nats) of the next-token distribution at each generated token.
    pub entropies: Vec<f64>,
    /// Seconds to read the prompt.
    pub prompt_seconds: f64,
    /// Seconds from the start to the end of each generated token (cumulative).
    pub token_seconds: Vec<f64>,
    /// The model's final hidden state after the prompt, where it exposes one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hidden: Option<Vec<f32>>,
}

impl Completion {
    pub fn seconds(&self) -> f64 {
        self.token_seconds
            .last()
            .copied()
            .unwrap_or(self.prompt_seconds)
    }

    /// Mean log-probability of the first `k` generated tokens (higher: more confident).
    pub fn mean_logprob(&self, k: usize) -> f64 {
        mean(self.logprobs[..k.min(self.logprobs.len())].iter().copied())
    }

    /// Mean entropy of the first `k` next-token distributions (lower: more confident).
    pub fn mean_entropy(&self, k: usize) -> f64 {
        mean(
            self.entropies[..k.min(self.entropies.len())]
                .iter()
                .copied(),
        )
    }

    /// Seconds until the first `k` tokens were generated: what a confidence decision costs.
    pub fn seconds_to_token(&self, k: usize) -> f64 {
        match k.min(self.token_seconds.len()) {
            0 => self.prompt_seconds,
            n => self.token_seconds[n - 1],
        }
    }
}

/// True once `text` holds a finished non-empty line.
fn line_finished(text: &str) -> bool {
    text.split_inclusive('\n')
        .any(|l| l.ends_with('\n') && !super::metrics::py_strip(l).is_empty())
}

/// Greedy completion of `prompt` (ids). `clock` gives seconds (the caller's clock: the
/// core runs where `Instant` does not).
pub fn complete<M: LanguageModel, T: Tokenize>(
    model: &M,
    tok: &T,
    prompt: &Prompt,
    options: &CompletionOptions,
    clock: &mut dyn FnMut() -> f64,
) -> Result<Completion, RepoError> {
    options.check()?;
    // The tokens the first step may choose: those that begin with the healed text.
    let first_allowed: Option<Vec<bool>> = (!prompt.healed.is_empty()).then(|| {
        (0..model.vocab_size())
            .map(|id| {
                tok.token_bytes(id as u32)
                    .is_some_and(|b| b.starts_with(prompt.healed.as_bytes()))
            })
            .collect()
    });
    let prompt_text_len = prompt.healed.len();
    let prompt = &prompt.ids[..];
    let start = clock();
    let mut state = model.new_state();
    let mut logits = model
        .extend(&mut state, prompt, Want::Last)
        .map_err(RepoError::Lm)?;
    let hidden = model.last_hidden(&state);
    let prompt_seconds = clock() - start;
    let eos = tok.eos();
    let mut out = Completion {
        text: String::new(),
        prompt_tokens: prompt.len(),
        logprobs: Vec::new(),
        entropies: Vec::new(),
        prompt_seconds,
        token_seconds: Vec::new(),
        hidden,
    };
    let mut ids = Vec::new();
    for step in 0..options.max_new_tokens {
        let row = logits
            .last()
            .ok_or_else(|| RepoError::Lm(crate::core::lm::LmError::Model("no logits".into())))?;
        let logp = log_softmax(row);
        let allowed = |id: usize| step > 0 || first_allowed.as_ref().is_none_or(|a| a[id]);
        let (best, &best_logp) = logp
            .iter()
            .enumerate()
            .filter(|&(id, _)| allowed(id))
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .ok_or_else(|| RepoError::Lm(crate::core::lm::LmError::Model("empty logits".into())))?;
        let entropy: f64 = logp
            .iter()
            .filter(|l| l.is_finite())
            .map(|&l| -l.exp() * l)
            .sum();
        let best = best as u32;
        // The end of sequence counts in the confidence signals (stopping at once is a
        // choice the model is more or less sure of) but not in the text.
        out.logprobs.push(best_logp);
        out.entropies.push(entropy);
        if Some(best) == eos {
            out.token_seconds.push(clock() - start);
            break;
        }
        ids.push(best);
        let text = tok.decode(&ids).map_err(RepoError::Lm)?;
        out.text = text.get(prompt_text_len..).unwrap_or("").to_string();
        let done = line_finished(&out.text)
            || step + 1 == options.max_new_tokens
            || state_full(model, &state);
        if !done {
            logits = model
                .extend(&mut state, &[best], Want::Last)
                .map_err(RepoError::Lm)?;
        }
        out.token_seconds.push(clock() - start);
        if done {
            break;
        }
    }
    Ok(out)
}

fn state_full<M: LanguageModel>(model: &M, state: &M::State) -> bool {
    model.state_len(state) + 1 >= model.context_length()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::repo::testing::{HintModel, HintTokenizer};

    #[test]
    fn line_ends_only_after_content() {
        assert!(!line_finished("\n  "));
        assert!(!line_finished("  x = 1"));
        assert!(line_finished("\n  x = 1\n"));
    }

    #[test]
    fn options_are_checked() {
        assert!(CompletionOptions::default().check().is_ok());
        let tight = CompletionOptions {
            max_sequence: 570,
            ..Default::default()
        };
        assert!(tight
            .check()
            .unwrap_err()
            .to_string()
            .contains("max_sequence"));
        let none = CompletionOptions {
            max_new_tokens: 0,
            ..Default::default()
        };
        assert!(none.check().is_err());
    }

    #[test]
    fn greedy_completion_stops_at_the_end_of_the_line() {
        let (model, tok) = (HintModel, HintTokenizer);
        let prompt = prompt_ids(&tok, "", "x = 1\n", &CompletionOptions::default()).unwrap();
        assert_eq!(prompt.healed, "\n", "the newline is healed");
        let mut t = 0.0;
        let mut clock = || {
            t += 1.0;
            t
        };
        let c = complete(
            &model,
            &tok,
            &prompt,
            &CompletionOptions::default(),
            &mut clock,
        )
        .unwrap();
        assert_eq!(c.text, "x = 1\n");
        assert_eq!(c.hidden, Some(vec![0.0, 1.0]));
        // the healed newline, x, " ", "=" are certain; " 1" has probability 0.6
        assert!((c.mean_logprob(5) - 0.6f64.ln() / 5.0).abs() < 1e-6);
        assert_eq!(c.logprobs.len(), c.entropies.len());
        assert_eq!(c.token_seconds.len(), c.logprobs.len());
        assert!(c.logprobs.iter().all(|&l| l <= 0.0));
        assert!(c.entropies.iter().all(|&e| e >= 0.0));
        assert!(c.prompt_seconds > 0.0 && c.seconds() > c.prompt_seconds);
    }
}
