//! Information elicitation without ground truth (Robertson, Cha, Sheha, Koyejo 2024): a
//! report A is scored by how much a peer's report B about the same item tells a language
//! model about A — no answer key is needed.
//!
//! Prompts follow the authors' `evaluation/log_peer_prediction.py` (llm-peer-prediction):
//! a task header, then `B + "\n" + A` with the peer, `A` alone without it. Here the header
//! names the word being defined (`Options::template`). Every prefix state (the header; the
//! header with a peer) is computed once per item and cloned for each report, since the
//! same honest and manipulated reports are all scored after it.
//!
//! Mechanisms (higher is better for all three):
//! - PMI: mean over A's tokens of log q(A | task, B) − log q(A | task) — the reference's
//!   `logp_cond − logp_base` (a difference of per-token means over the same tokens).
//! - GPPM: Σ log q(B | task, A), the peer's report predicted from A. The reference stores
//!   `gppm_sums[j, i] = −Σ log q(T_j | task, T_i)` (a loss, lower is better) and averages it
//!   for agent i over peers j; we keep Lu et al.'s reward sign (the negative of that loss)
//!   so that every mechanism ranks the same way.
//! - TVD-MI: E_P[f] − E_Q[f] with the critic f(A, B) = 1[PMI(A, B) > τ]; P pairs a report
//!   with the peer about the same item, Q with the peer about another item (seeded). Per
//!   report the score is f(A, B_same) − f(A, B_other); its mean is the estimate.

mod manipulate;
mod stats;

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use manipulate::{Manipulation, GENERIC};
pub use stats::{auc, cohens_d, compare, Ci95, Comparison};

use crate::core::lm::{check_tokens, log_softmax, LanguageModel, LmError, Tokenize, Want};

/// Everything that can go wrong. Messages name the value at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ElicitError {
    #[error("pair file line {line}: {why}")]
    BadLine { line: usize, why: String },
    #[error("pair file line {line} (word {word:?}): field {field:?} is empty")]
    EmptyField {
        line: usize,
        word: String,
        field: &'static str,
    },
    #[error(
        "the pairs are {n}: at least 2 are needed (another word's report, TVD-MI's other peer)"
    )]
    TooFewItems { n: usize },
    #[error("unknown mechanism {0:?}: use pmi, gppm or tvd-mi")]
    UnknownMechanism(String),
    #[error(
        "the task template is empty: a report's first token needs a prefix to be predicted from"
    )]
    EmptyTemplate,
    #[error("bootstrap is {0}: at most {MAX_BOOTSTRAP} resamples")]
    TooManyResamples(usize),
    #[error("{what} (word {word:?}): {source}")]
    Lm {
        what: &'static str,
        word: String,
        source: LmError,
    },
    #[error("cancelled")]
    Cancelled,
}

/// One item: a word, a report about it (the one scored) and a peer's report.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Item {
    pub word: String,
    pub report: String,
    pub peer: String,
}

impl Item {
    pub fn new(word: &str, report: &str, peer: &str) -> Item {
        Item {
            word: word.into(),
            report: report.into(),
            peer: peer.into(),
        }
    }
}

/// Reads JSON lines `{"word", "report", "peer", …}` (other fields are kept out); blank
/// lines are skipped. Each line must have the three fields as non-empty strings.
pub fn parse_pairs(text: &str) -> Result<Vec<Item>, ElicitError> {
    #[derive(serde::Deserialize)]
    struct Line {
        word: String,
        report: String,
        peer: String,
    }
    let mut items = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(raw).map_err(|e| ElicitError::BadLine {
            line,
            why: e.to_string(),
        })?;
        for (field, value) in [("word", &l.word), ("report", &l.report), ("peer", &l.peer)] {
            if value.trim().is_empty() {
                return Err(ElicitError::EmptyField {
                    line,
                    word: l.word.clone(),
                    field,
                });
            }
        }
        items.push(Item {
            word: l.word,
            report: l.report,
            peer: l.peer,
        });
    }
    Ok(items)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Mechanism {
    #[serde(rename = "pmi")]
    Pmi,
    #[serde(rename = "gppm")]
    Gppm,
    #[serde(rename = "tvd-mi")]
    TvdMi,
}

impl std::str::FromStr for Mechanism {
    type Err = ElicitError;
    fn from_str(s: &str) -> Result<Mechanism, ElicitError> {
        match s {
            "pmi" => Ok(Mechanism::Pmi),
            "gppm" => Ok(Mechanism::Gppm),
            "tvd-mi" => Ok(Mechanism::TvdMi),
            other => Err(ElicitError::UnknownMechanism(other.to_string())),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub mechanism: Mechanism,
    /// The task header; `{word}` is replaced by the item's word.
    pub template: String,
    /// TVD-MI's critic threshold τ on the PMI.
    pub threshold: f64,
    /// Seeds the manipulations, TVD-MI's other peers and the bootstrap.
    pub seed: u64,
    pub bootstrap: usize,
}

/// The most bootstrap resamples a comparison keeps (two f64 each).
pub const MAX_BOOTSTRAP: usize = 1_000_000;

/// The task header of the runs in the README.
pub const DEFAULT_TEMPLATE: &str = "A dictionary definition of the word \"{word}\":\n";

impl Default for Options {
    fn default() -> Options {
        Options {
            mechanism: Mechanism::Pmi,
            template: DEFAULT_TEMPLATE.to_string(),
            threshold: 0.0,
            seed: 0,
            bootstrap: 1000,
        }
    }
}

/// What the model has read, and the logits that predict the next token.
struct Prefix<S> {
    state: S,
    next: Vec<f32>,
}

/// Scores reports with one model, caching prefix states by their text.
pub struct Scorer<'a, M: LanguageModel, T: Tokenize> {
    model: &'a M,
    tokenizer: &'a T,
    cache: HashMap<String, Prefix<M::State>>,
    /// Log-probabilities already computed after each prefix: a report whose tokens begin
    /// another's (the truncated report begins the honest one) is read off, not recomputed.
    scored: HashMap<String, Vec<Scored>>,
}

/// A report's token ids and their log-probabilities after one prefix.
type Scored = (Vec<u32>, Vec<f64>);

impl<'a, M: LanguageModel, T: Tokenize> Scorer<'a, M, T> {
    pub fn new(model: &'a M, tokenizer: &'a T) -> Self {
        Scorer {
            model,
            tokenizer,
            cache: HashMap::new(),
            scored: HashMap::new(),
        }
    }

    /// Forgets the cached prefixes (between items, so memory stays bounded).
    pub fn clear(&mut self) {
        self.cache.clear();
        self.scored.clear();
    }

    fn prefix(&mut self, text: &str) -> Result<&Prefix<M::State>, LmError> {
        if !self.cache.contains_key(text) {
            let ids = self.tokenizer.encode(text)?;
            if ids.is_empty() {
                return Err(LmError::Empty {
                    what: "the prompt's prefix".into(),
                    why: "it has no tokens",
                });
            }
            check_tokens(self.model, "the prefix", 0, &ids)?;
            let mut state = self.model.new_state();
            let logits = self.model.extend(&mut state, &ids, Want::Last)?;
            let next = logits.last().map(<[f32]>::to_vec).unwrap_or_default();
            self.cache.insert(text.to_string(), Prefix { state, next });
        }
        Ok(&self.cache[text])
    }

    /// log q of each token of `text` after `prefix`.
    pub fn logprobs(&mut self, prefix: &str, text: &str) -> Result<Vec<f64>, LmError> {
        let ids = self.tokenizer.encode(text)?;
        if ids.is_empty() {
            return Err(LmError::Empty {
                what: "the report".into(),
                why: "it has no tokens",
            });
        }
        if let Some(done) = self.scored.get(prefix).and_then(|v| {
            v.iter()
                .find(|(seen, _)| seen.starts_with(&ids))
                .map(|(_, lp)| lp[..ids.len()].to_vec())
        }) {
            return Ok(done);
        }
        let model = self.model;
        let p = self.prefix(prefix)?;
        check_tokens(model, "prefix + report", model.state_len(&p.state), &ids)?;
        let mut out = Vec::with_capacity(ids.len());
        out.push(log_softmax(&p.next)[ids[0] as usize]);
        if ids.len() > 1 {
            let mut state = p.state.clone();
            let logits = model.extend(&mut state, &ids[..ids.len() - 1], Want::All)?;
            for (row, &id) in ids[1..].iter().enumerate() {
                out.push(log_softmax(logits.row(row))[id as usize]);
            }
        }
        self.scored
            .entry(prefix.to_string())
            .or_default()
            .push((ids, out.clone()));
        Ok(out)
    }

    /// PMI(report; peer) per token: mean of log q(report | task, peer) − log q(report | task).
    pub fn pmi(&mut self, task: &str, report: &str, peer: &str) -> Result<f64, LmError> {
        let with = self.logprobs(&format!("{task}{peer}\n"), report)?;
        let without = self.logprobs(task, report)?;
        let n = with.len() as f64;
        Ok(with.iter().zip(&without).map(|(a, b)| a - b).sum::<f64>() / n)
    }

    /// GPPM: Σ log q(peer | task, report).
    pub fn gppm(&mut self, task: &str, report: &str, peer: &str) -> Result<f64, LmError> {
        Ok(self
            .logprobs(&format!("{task}{report}\n"), peer)?
            .iter()
            .sum())
    }
}

/// `template` with the word filled in.
pub fn task_text(template: &str, word: &str) -> String {
    template.replace("{word}", word)
}

/// One report's score under `opts.mechanism`; `other_peer` is TVD-MI's peer about a
/// different item.
pub fn score_report<M: LanguageModel, T: Tokenize>(
    scorer: &mut Scorer<M, T>,
    opts: &Options,
    item: &Item,
    report: &str,
    other_peer: &str,
) -> Result<f64, ElicitError> {
    let task = task_text(&opts.template, &item.word);
    let wrap = |what: &'static str| {
        let word = item.word.clone();
        move |source| ElicitError::Lm { what, word, source }
    };
    match opts.mechanism {
        Mechanism::Pmi => scorer
            .pmi(&task, report, &item.peer)
            .map_err(wrap("scoring a report")),
        Mechanism::Gppm => scorer
            .gppm(&task, report, &item.peer)
            .map_err(wrap("scoring a report")),
        Mechanism::TvdMi => {
            let critic = |pmi: f64| if pmi > opts.threshold { 1.0 } else { 0.0 };
            let same = scorer
                .pmi(&task, report, &item.peer)
                .map_err(wrap("scoring a report"))?;
            let other = scorer
                .pmi(&task, report, other_peer)
                .map_err(wrap("scoring a report against another item's peer"))?;
            Ok(critic(same) - critic(other))
        }
    }
}

/// Scores of every item's honest and manipulated reports, and their comparisons.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub mechanism: Mechanism,
    pub n: usize,
    /// The mean honest score: for PMI an estimate of the mutual information (nats per
    /// token), for TVD-MI the TVD-MI estimate.
    pub honest_mean: f64,
    pub honest: Vec<f64>,
    pub manipulations: Vec<ManipulationResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManipulationResult {
    pub manipulation: Manipulation,
    pub mean: f64,
    pub scores: Vec<f64>,
    pub comparison: Comparison,
}

/// Scores each item's honest report and each manipulation of it, and compares them.
/// `progress(done)` is called after each item; returning false cancels.
pub fn evaluate<M: LanguageModel, T: Tokenize>(
    model: &M,
    tokenizer: &T,
    items: &[Item],
    manipulations: &[Manipulation],
    opts: &Options,
    mut progress: impl FnMut(usize) -> bool,
) -> Result<Evaluation, ElicitError> {
    if items.len() < 2 {
        return Err(ElicitError::TooFewItems { n: items.len() });
    }
    if opts.template.is_empty() {
        return Err(ElicitError::EmptyTemplate);
    }
    // Each comparison keeps every resample's statistics: bound them before allocating.
    if opts.bootstrap > MAX_BOOTSTRAP {
        return Err(ElicitError::TooManyResamples(opts.bootstrap));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut scorer = Scorer::new(model, tokenizer);
    let mut honest = Vec::with_capacity(items.len());
    let mut scores = vec![Vec::with_capacity(items.len()); manipulations.len()];
    for (i, item) in items.iter().enumerate() {
        let other_peer = &items[manipulate::other_index(items.len(), i, &mut rng)].peer;
        honest.push(score_report(
            &mut scorer,
            opts,
            item,
            &item.report,
            other_peer,
        )?);
        for (m, out) in manipulations.iter().zip(&mut scores) {
            let report = m.apply(items, i, &mut rng);
            out.push(score_report(&mut scorer, opts, item, &report, other_peer)?);
        }
        scorer.clear();
        if !progress(i + 1) {
            return Err(ElicitError::Cancelled);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let manipulations = manipulations
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(k, (&manipulation, s))| ManipulationResult {
            manipulation,
            mean: mean(&s),
            comparison: compare(&honest, &s, opts.bootstrap, opts.seed ^ (k as u64 + 1)),
            scores: s,
        })
        .collect();
    Ok(Evaluation {
        mechanism: opts.mechanism,
        n: items.len(),
        honest_mean: mean(&honest),
        honest,
        manipulations,
    })
}

#[cfg(test)]
mod tests;
