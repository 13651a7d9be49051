//! A hand-written language model for tests: next-token probabilities are looked up by the
//! longest matching suffix of what the state has read, so every expected output can be
//! worked out by hand. Its tokenizer splits text into the longest matching vocabulary
//! entries.

use super::{LanguageModel, LmError, Logits, Tokenize, Want};

/// (suffix of the read tokens, [(next token, probability)]).
pub(crate) type Rule = (Vec<u32>, Vec<(u32, f64)>);

pub(crate) struct TableModel {
    pub vocab: Vec<&'static str>,
    /// (suffix of the read tokens, [(next token, probability)]); the longest matching
    /// suffix wins, the empty suffix is the fallback. Unlisted tokens get probability 0.
    pub rules: Vec<Rule>,
    pub context: usize,
}

pub(crate) const EXAMPLE_VOCAB: [&str; 8] = ["<eos>", "a", " a", " b", " c", " d", ".", " x"];

impl TableModel {
    /// After "a": " b" 0.75, " c" 0.25. After " b": " c" 0.5, " d" 0.5. Otherwise
    /// " a" 0.5, "<eos>" 0.5.
    pub fn example() -> TableModel {
        TableModel {
            vocab: EXAMPLE_VOCAB.to_vec(),
            rules: vec![
                (vec![], vec![(2, 0.5), (0, 0.5)]),
                (vec![1], vec![(3, 0.75), (4, 0.25)]),
                (vec![3], vec![(4, 0.5), (5, 0.5)]),
            ],
            context: 64,
        }
    }

    fn next(&self, read: &[u32]) -> Vec<f32> {
        let rule = self
            .rules
            .iter()
            .filter(|(suffix, _)| read.ends_with(suffix))
            .max_by_key(|(suffix, _)| suffix.len())
            .expect("the table has a fallback rule");
        let mut logits = vec![f32::NEG_INFINITY; self.vocab.len()];
        for &(id, p) in &rule.1 {
            logits[id as usize] = p.ln() as f32;
        }
        logits
    }
}

impl LanguageModel for TableModel {
    type State = Vec<u32>;

    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }
    fn context_length(&self) -> usize {
        self.context
    }
    fn new_state(&self) -> Vec<u32> {
        Vec::new()
    }
    fn state_len(&self, state: &Vec<u32>) -> usize {
        state.len()
    }
    fn extend(&self, state: &mut Vec<u32>, tokens: &[u32], want: Want) -> Result<Logits, LmError> {
        super::check_tokens(self, "input", state.len(), tokens)?;
        let mut data = Vec::new();
        for (i, &t) in tokens.iter().enumerate() {
            state.push(t);
            if want == Want::All || i + 1 == tokens.len() {
                data.extend(self.next(state));
            }
        }
        Ok(Logits {
            vocab: self.vocab.len(),
            data,
        })
    }
}

pub(crate) struct TableTokenizer {
    pub vocab: Vec<&'static str>,
}

impl TableTokenizer {
    pub fn example() -> TableTokenizer {
        TableTokenizer {
            vocab: EXAMPLE_VOCAB.to_vec(),
        }
    }
}

impl Tokenize for TableTokenizer {
    fn encode(&self, mut text: &str) -> Result<Vec<u32>, LmError> {
        let mut ids = Vec::new();
        while !text.is_empty() {
            let (id, piece) = self
                .vocab
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, v)| text.starts_with(**v))
                .max_by_key(|(_, v)| v.len())
                .ok_or_else(|| LmError::Tokenizer(format!("no token for {text:?}")))?;
            ids.push(id as u32);
            text = &text[piece.len()..];
        }
        Ok(ids)
    }
    fn decode(&self, ids: &[u32]) -> Result<String, LmError> {
        Ok(ids.iter().map(|&i| self.vocab[i as usize]).collect())
    }
    fn eos(&self) -> Option<u32> {
        Some(0)
    }
    fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        (id != 0).then(|| self.vocab[id as usize].as_bytes().to_vec())
    }
}
