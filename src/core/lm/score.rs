//! Log-probabilities of given text: the quantity Prompt Sketching scores template text with,
//! and the one `latentlab lm score` prints.

use super::{check_tokens, LanguageModel, LmError, Tokenize, Want};

/// `log softmax(logits)`, computed in f64 with `libm` so that the same logits give the same
/// bits on every platform (the system `exp`/`ln` differ between native and wasm builds).
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| libm::exp(l as f64 - max)).sum();
    let log_norm = max + libm::log(sum);
    logits.iter().map(|&l| l as f64 - log_norm).collect()
}

/// The log-probability of one token under one logit row, without materialising the row's
/// whole log-softmax.
pub(crate) fn token_logprob(logits: &[f32], token: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| libm::exp(l as f64 - max)).sum();
    logits[token as usize] as f64 - max - libm::log(sum)
}

/// How likely the model finds `text` after `context`.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// Σ log p over the scored tokens (nats).
    pub logprob: f64,
    /// The scored tokens' ids.
    pub tokens: Vec<u32>,
    /// log p of each scored token given everything before it.
    pub per_token: Vec<f64>,
}

impl Score {
    pub fn mean(&self) -> f64 {
        if self.per_token.is_empty() {
            0.0
        } else {
            self.logprob / self.per_token.len() as f64
        }
    }
}

/// Scores `text` as a continuation of `context`. The two are tokenised separately and
/// joined, so the scored tokens are exactly `text`'s. No beginning-of-sequence token is
/// added (SmolLM2 is trained without one), so with an empty context the first token of
/// `text` has nothing to be predicted from and is left unscored.
pub fn score_continuation<M: LanguageModel, T: Tokenize>(
    model: &M,
    tokenizer: &T,
    context: &str,
    text: &str,
) -> Result<Score, LmError> {
    let context_ids = tokenizer.encode(context)?;
    let text_ids = tokenizer.encode(text)?;
    if text_ids.is_empty() {
        return Err(LmError::Empty {
            what: "the text to score".into(),
            why: "it has no tokens",
        });
    }
    let mut all = context_ids.clone();
    all.extend_from_slice(&text_ids);
    check_tokens(model, "context + text", 0, &all)?;
    let mut state = model.new_state();
    let logits = model.extend(&mut state, &all, Want::All)?;
    // Row i predicts token i + 1.
    let first = context_ids.len().max(1);
    let mut per_token = Vec::with_capacity(all.len() - first);
    for (i, &token) in all.iter().enumerate().skip(first) {
        per_token.push(token_logprob(logits.row(i - 1), token));
    }
    if per_token.is_empty() {
        return Err(LmError::Empty {
            what: "the text to score".into(),
            why: "with no context its one token has nothing to be predicted from",
        });
    }
    Ok(Score {
        logprob: per_token.iter().sum(),
        tokens: all[first..].to_vec(),
        per_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lm::table::{TableModel, TableTokenizer};

    #[test]
    fn log_softmax_sums_to_one() {
        let lp = log_softmax(&[1.0, 2.0, 3.0, -1e30]);
        let total: f64 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((token_logprob(&[1.0, 2.0, 3.0, -1e30], 2) - lp[2]).abs() < 1e-12);
    }

    #[test]
    fn scores_are_the_table_models_probabilities() {
        // After "a" the table gives "b" probability 0.75; after "a b", "c" 0.5.
        let model = TableModel::example();
        let tok = TableTokenizer::example();
        let s = score_continuation(&model, &tok, "a", " b c").unwrap();
        assert_eq!(s.per_token.len(), 2);
        assert!((s.per_token[0] - 0.75f64.ln()).abs() < 1e-6, "{:?}", s);
        assert!((s.per_token[1] - 0.5f64.ln()).abs() < 1e-6, "{:?}", s);
        // Without context the first token is unscored.
        let s = score_continuation(&model, &tok, "", "a b").unwrap();
        assert_eq!(s.tokens.len(), 1);
        assert!((s.logprob - 0.75f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn empty_text_and_overlong_input_are_named() {
        let model = TableModel::example();
        let tok = TableTokenizer::example();
        let err = score_continuation(&model, &tok, "a", "").unwrap_err();
        assert!(
            err.to_string().contains("the text to score is empty"),
            "{err}"
        );
        let long = " a".repeat(model.context + 1);
        let err = score_continuation(&model, &tok, "", &long).unwrap_err();
        assert!(matches!(err, LmError::ContextOverflow { .. }), "{err}");
    }
}
