//! A hand-written code model for the tests: after `=` it writes ` 1` (probability 0.6)
//! or ` 2` (0.4) and ends the line — unless it has read the word `hint` anywhere before,
//! in which case it writes ` 2` with probability 0.9. So retrieval (which brings `hint`
//! from another file) changes the answer, the model's confidence is lower without it, and
//! its "hidden state" (whether `hint` was read, and a constant) is a perfect probe feature.
//! From the start of a line it writes `x = 1` or `x = 2` and a newline.

use crate::core::lm::{LanguageModel, LmError, Logits, Tokenize, Want};

pub(crate) const VOCAB: [&str; 12] = [
    "<eos>", "\n", "#", " ", "x", "y", "=", " 1", " 2", "hint", "/", ".",
];
const EQ: u32 = 6;
const ONE: u32 = 7;
const TWO: u32 = 8;
const HINT: u32 = 9;
const NEWLINE: u32 = 1;
const SPACE: u32 = 3;
const X: u32 = 4;
/// What any character outside the vocabulary is read as (the prompt's English header).
const OTHER: u32 = 11;

pub(crate) struct HintModel;

impl HintModel {
    fn next(read: &[u32]) -> Vec<f32> {
        let mut p = vec![0f64; VOCAB.len()];
        match read.last() {
            Some(&EQ) if read.contains(&HINT) => {
                p[TWO as usize] = 0.9;
                p[ONE as usize] = 0.1;
            }
            Some(&EQ) => {
                p[ONE as usize] = 0.6;
                p[TWO as usize] = 0.4;
            }
            Some(&ONE) | Some(&TWO) => p[NEWLINE as usize] = 1.0,
            Some(&NEWLINE) => p[X as usize] = 1.0,
            Some(&X) => p[SPACE as usize] = 1.0,
            Some(&SPACE) => p[EQ as usize] = 1.0,
            _ => p[0] = 1.0,
        }
        p.iter().map(|&x| x.ln() as f32).collect()
    }
}

impl LanguageModel for HintModel {
    type State = Vec<u32>;
    fn vocab_size(&self) -> usize {
        VOCAB.len()
    }
    fn context_length(&self) -> usize {
        4096
    }
    fn new_state(&self) -> Vec<u32> {
        Vec::new()
    }
    fn state_len(&self, state: &Vec<u32>) -> usize {
        state.len()
    }
    fn extend(&self, state: &mut Vec<u32>, tokens: &[u32], want: Want) -> Result<Logits, LmError> {
        crate::core::lm::check_tokens(self, "input", state.len(), tokens)?;
        let mut data = Vec::new();
        for (i, &t) in tokens.iter().enumerate() {
            state.push(t);
            if want == Want::All || i + 1 == tokens.len() {
                data.extend(HintModel::next(state));
            }
        }
        Ok(Logits {
            vocab: VOCAB.len(),
            data,
        })
    }
    fn last_hidden(&self, state: &Vec<u32>) -> Option<Vec<f32>> {
        Some(vec![f32::from(u8::from(state.contains(&HINT))), 1.0])
    }
}

/// Longest-match tokenizer over [`VOCAB`]; any other character is read as `.`.
pub(crate) struct HintTokenizer;

impl Tokenize for HintTokenizer {
    fn encode(&self, mut text: &str) -> Result<Vec<u32>, LmError> {
        let mut ids = Vec::new();
        while !text.is_empty() {
            match VOCAB
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, v)| text.starts_with(**v))
                .max_by_key(|(_, v)| v.len())
            {
                Some((id, piece)) => {
                    ids.push(id as u32);
                    text = &text[piece.len()..];
                }
                None => {
                    ids.push(OTHER);
                    let c = text.chars().next().map_or(1, char::len_utf8);
                    text = &text[c..];
                }
            }
        }
        Ok(ids)
    }
    fn decode(&self, ids: &[u32]) -> Result<String, LmError> {
        Ok(ids.iter().map(|&i| VOCAB[i as usize]).collect())
    }
    fn eos(&self) -> Option<u32> {
        Some(0)
    }
    fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        (id != 0).then(|| VOCAB[id as usize].as_bytes().to_vec())
    }
}
