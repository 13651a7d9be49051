//! Decoding: argmax, seeded sampling (temperature, top-k, top-p) and beam search, with
//! per-token log-probabilities, stop strings, a token limit, streaming and cancellation.
//!
//! Sampling draws from a ChaCha stream with a fixed float conversion and sorts candidates
//! by (logit, id), so the same seed and the same logits give the same text on every
//! platform; the runtime keeps logits bit-identical across platforms (see `crate::lm`).

use std::ops::ControlFlow;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::score::{log_softmax, token_logprob};
use super::{check_tokens, LanguageModel, LmError, Logits, Tokenize, Want};

#[derive(Clone, Debug, PartialEq)]
pub struct SamplingOptions {
    /// > 0; 1 samples from the model's distribution.
    pub temperature: f64,
    /// Keep only the k most likely tokens (None: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches p (None: all).
    pub top_p: Option<f64>,
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decoder {
    Argmax,
    Sample(SamplingOptions),
    /// Beam search over whole continuations scored by Σ log p; returns the best finished beam.
    Beam {
        width: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    pub decoder: Decoder,
    pub max_tokens: usize,
    /// Generation ends when the text contains one of these; the text is cut before it.
    pub stop: Vec<String>,
    /// End at the tokenizer's end-of-sequence token (default true).
    pub stop_at_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            decoder: Decoder::Argmax,
            max_tokens: 64,
            stop: Vec::new(),
            stop_at_eos: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    MaxTokens,
    Eos,
    StopString(String),
    /// The model's context is full.
    Context,
    /// The token callback asked to stop; what was generated so far is kept.
    Cancelled,
}

impl StopReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::MaxTokens => "max_tokens",
            StopReason::Eos => "eos",
            StopReason::StopString(_) => "stop_string",
            StopReason::Context => "context",
            StopReason::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The generated text, cut before a stop string.
    pub text: String,
    /// Every generated token (the end-of-sequence token excluded).
    pub tokens: Vec<u32>,
    /// log p of each generated token under the model (before temperature).
    pub logprobs: Vec<f64>,
    pub stop: StopReason,
    pub prompt_tokens: usize,
}

/// One streamed step: the token and the text that became final with it (possibly empty
/// while a UTF-8 character or a possible stop string is incomplete).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEvent<'a> {
    pub token: u32,
    pub logprob: f64,
    pub text: &'a str,
}

fn check_options(options: &GenerateOptions) -> Result<(), LmError> {
    if options.max_tokens == 0 {
        return Err(LmError::BadOption {
            name: "max_tokens",
            value: "0".into(),
            why: "at least one token must be generated",
        });
    }
    if options.stop.iter().any(|s| s.is_empty()) {
        return Err(LmError::BadOption {
            name: "stop",
            value: "\"\"".into(),
            why: "an empty stop string would end generation at once",
        });
    }
    match &options.decoder {
        Decoder::Argmax => {}
        Decoder::Sample(s) => {
            if !(s.temperature.is_finite() && s.temperature > 0.0) {
                return Err(LmError::BadOption {
                    name: "temperature",
                    value: s.temperature.to_string(),
                    why: "must be a finite number above 0 (use the argmax decoder for greedy)",
                });
            }
            if s.top_k == Some(0) {
                return Err(LmError::BadOption {
                    name: "top_k",
                    value: "0".into(),
                    why: "must keep at least one token",
                });
            }
            if let Some(p) = s.top_p {
                if !(p > 0.0 && p <= 1.0) {
                    return Err(LmError::BadOption {
                        name: "top_p",
                        value: p.to_string(),
                        why: "must lie in (0, 1]",
                    });
                }
            }
        }
        Decoder::Beam { width } => {
            if *width == 0 || *width > 64 {
                return Err(LmError::BadOption {
                    name: "beams",
                    value: width.to_string(),
                    why: "must be between 1 and 64",
                });
            }
        }
    }
    Ok(())
}

/// Generates a continuation of `prompt_ids`. `on_token` sees each accepted token (for beam
/// search: the best beam's tokens once it is chosen) and may return `Break` to stop.
pub fn generate<M: LanguageModel, T: Tokenize>(
    model: &M,
    tokenizer: &T,
    prompt_ids: &[u32],
    options: &GenerateOptions,
    mut on_token: impl FnMut(&TokenEvent) -> ControlFlow<()>,
) -> Result<Generation, LmError> {
    check_options(options)?;
    if prompt_ids.is_empty() {
        return Err(LmError::Empty {
            what: "the prompt".into(),
            why: "a continuation needs at least one token to follow",
        });
    }
    check_tokens(model, "the prompt", 0, prompt_ids)?;
    if let Decoder::Beam { width } = options.decoder {
        return beam_search(model, tokenizer, prompt_ids, options, width, on_token);
    }
    let mut state = model.new_state();
    let logits = model.extend(&mut state, prompt_ids, Want::Last)?;
    let mut row = last_row(logits)?;
    let mut rng = match &options.decoder {
        Decoder::Sample(s) => Some(ChaCha8Rng::seed_from_u64(s.seed)),
        _ => None,
    };
    let mut text = TextTracker::new(&options.stop);
    let mut tokens = Vec::new();
    let mut logprobs = Vec::new();
    let stop = loop {
        let token = match (&options.decoder, rng.as_mut()) {
            (Decoder::Sample(s), Some(rng)) => sample(&row, s, rng),
            _ => argmax(&row),
        };
        let logprob = token_logprob(&row, token);
        if options.stop_at_eos && Some(token) == tokenizer.eos() {
            break StopReason::Eos;
        }
        tokens.push(token);
        logprobs.push(logprob);
        let (fresh, hit) = text.push(tokenizer, &tokens)?;
        let flow = on_token(&TokenEvent {
            token,
            logprob,
            text: &fresh,
        });
        if let Some(s) = hit {
            break StopReason::StopString(s);
        }
        if flow.is_break() {
            break StopReason::Cancelled;
        }
        if tokens.len() >= options.max_tokens {
            break StopReason::MaxTokens;
        }
        if model.state_len(&state) >= model.context_length() {
            break StopReason::Context;
        }
        row = last_row(model.extend(&mut state, &[token], Want::Last)?)?;
    };
    Ok(Generation {
        text: text.finish(),
        tokens,
        logprobs,
        stop,
        prompt_tokens: prompt_ids.len(),
    })
}

fn last_row(logits: Logits) -> Result<Vec<f32>, LmError> {
    match logits.last() {
        Some(row) => Ok(row.to_vec()),
        None => Err(LmError::Model("the model returned no logits".into())),
    }
}

/// The first maximum (lowest id on ties), the same on every platform.
pub(crate) fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in row.iter().enumerate() {
        if l > row[best] {
            best = i;
        }
    }
    best as u32
}

/// A uniform draw in [0, 1) from the top 53 bits: the same on every platform.
pub(crate) fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

pub(crate) fn sample(row: &[f32], options: &SamplingOptions, rng: &mut ChaCha8Rng) -> u32 {
    let mut candidates: Vec<(u32, f32)> = row
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as u32, l))
        .collect();
    if candidates.is_empty() {
        return argmax(row);
    }
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if let Some(k) = options.top_k {
        if k < candidates.len() {
            candidates.select_nth_unstable_by(k - 1, order);
            candidates.truncate(k);
        }
    }
    candidates.sort_unstable_by(order);
    let scaled: Vec<f32> = candidates
        .iter()
        .map(|&(_, l)| (l as f64 / options.temperature) as f32)
        .collect();
    let probs: Vec<f64> = log_softmax(&scaled).into_iter().map(libm::exp).collect();
    let mut keep = probs.len();
    if let Some(p) = options.top_p {
        let mut total = 0.0;
        for (i, q) in probs.iter().enumerate() {
            total += q;
            if total >= p {
                keep = i + 1;
                break;
            }
        }
    }
    let mass: f64 = probs[..keep].iter().sum();
    let mut u = uniform(rng) * mass;
    for (i, q) in probs[..keep].iter().enumerate() {
        if u < *q {
            return candidates[i].0;
        }
        u -= q;
    }
    candidates[keep - 1].0
}

/// The generated text so far, what of it may be streamed, and stop-string detection.
struct TextTracker<'a> {
    stops: &'a [String],
    text: String,
    emitted: usize,
    cut: Option<usize>,
}

impl<'a> TextTracker<'a> {
    fn new(stops: &'a [String]) -> Self {
        TextTracker {
            stops,
            text: String::new(),
            emitted: 0,
            cut: None,
        }
    }

    /// Re-decodes the generated tokens; returns the newly final text and the stop string
    /// if one now occurs.
    fn push<T: Tokenize>(
        &mut self,
        tokenizer: &T,
        tokens: &[u32],
    ) -> Result<(String, Option<String>), LmError> {
        self.text = tokenizer.decode(tokens)?;
        let first_hit = self
            .stops
            .iter()
            .filter_map(|s| self.text.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, s)) = first_hit {
            self.cut = Some(at);
            let fresh = self.take_until(at);
            return Ok((fresh, Some(s.clone())));
        }
        // Hold back an incomplete UTF-8 character and anything that may start a stop string.
        let mut safe = self.text.len();
        if self.text.ends_with('\u{FFFD}') {
            safe -= '\u{FFFD}'.len_utf8();
        }
        let hold = self.stops.iter().map(|s| s.len() - 1).max().unwrap_or(0);
        safe = safe.saturating_sub(hold);
        while !self.text.is_char_boundary(safe) {
            safe -= 1;
        }
        Ok((self.take_until(safe), None))
    }

    fn take_until(&mut self, end: usize) -> String {
        if end <= self.emitted {
            return String::new();
        }
        let fresh = self.text[self.emitted..end].to_string();
        self.emitted = end;
        fresh
    }

    fn finish(mut self) -> String {
        if let Some(at) = self.cut {
            self.text.truncate(at);
        }
        self.text
    }
}

struct Beam<S> {
    state: S,
    tokens: Vec<u32>,
    logprobs: Vec<f64>,
    /// log-probabilities of the next token (the row after `tokens`).
    next: Vec<f64>,
    total: f64,
}

fn beam_search<M: LanguageModel, T: Tokenize>(
    model: &M,
    tokenizer: &T,
    prompt_ids: &[u32],
    options: &GenerateOptions,
    width: usize,
    mut on_token: impl FnMut(&TokenEvent) -> ControlFlow<()>,
) -> Result<Generation, LmError> {
    let mut state = model.new_state();
    let row = last_row(model.extend(&mut state, prompt_ids, Want::Last)?)?;
    let mut active = vec![Beam {
        state,
        tokens: Vec::new(),
        logprobs: Vec::new(),
        next: log_softmax(&row),
        total: 0.0,
    }];
    // (total, tokens, logprobs, reason)
    let mut finished: Vec<(f64, Vec<u32>, Vec<f64>, StopReason)> = Vec::new();
    while !active.is_empty() && finished.len() < width {
        // Candidates: (total, beam index, token).
        let mut candidates: Vec<(f64, usize, u32)> = Vec::new();
        for (b, beam) in active.iter().enumerate() {
            let mut best: Vec<(f64, u32)> = beam
                .next
                .iter()
                .enumerate()
                .map(|(i, &l)| (l, i as u32))
                .filter(|(l, _)| l.is_finite())
                .collect();
            let k = width.min(best.len());
            if k == 0 {
                continue;
            }
            let order = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
            best.select_nth_unstable_by(k - 1, order);
            best.truncate(k);
            candidates.extend(best.into_iter().map(|(l, t)| (beam.total + l, b, t)));
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        candidates.truncate(width);
        let mut next_active = Vec::new();
        for (total, b, token) in candidates {
            let parent = &active[b];
            let logprob = parent.next[token as usize];
            if options.stop_at_eos && Some(token) == tokenizer.eos() {
                finished.push((
                    total,
                    parent.tokens.clone(),
                    parent.logprobs.clone(),
                    StopReason::Eos,
                ));
                continue;
            }
            let mut tokens = parent.tokens.clone();
            tokens.push(token);
            let mut logprobs = parent.logprobs.clone();
            logprobs.push(logprob);
            let text = tokenizer.decode(&tokens)?;
            if let Some(s) = options.stop.iter().find(|s| text.contains(s.as_str())) {
                finished.push((total, tokens, logprobs, StopReason::StopString(s.clone())));
                continue;
            }
            if tokens.len() >= options.max_tokens
                || model.state_len(&parent.state) >= model.context_length()
            {
                let reason = if tokens.len() >= options.max_tokens {
                    StopReason::MaxTokens
                } else {
                    StopReason::Context
                };
                finished.push((total, tokens, logprobs, reason));
                continue;
            }
            let mut state = parent.state.clone();
            let row = last_row(model.extend(&mut state, &[token], Want::Last)?)?;
            next_active.push(Beam {
                state,
                tokens,
                logprobs,
                next: log_softmax(&row),
                total,
            });
        }
        active = next_active;
    }
    let (_, tokens, logprobs, stop) = finished
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .ok_or_else(|| LmError::Model("beam search finished no beam".into()))?;
    // Stream the chosen beam token by token, as the other decoders do.
    let mut tracker = TextTracker::new(&options.stop);
    let mut stop = stop;
    for (i, (&token, &logprob)) in tokens.iter().zip(&logprobs).enumerate() {
        let (fresh, _) = tracker.push(tokenizer, &tokens[..=i])?;
        let flow = on_token(&TokenEvent {
            token,
            logprob,
            text: &fresh,
        });
        if flow.is_break() {
            stop = StopReason::Cancelled;
            break;
        }
    }
    let text = match &stop {
        StopReason::Cancelled => tracker.finish(),
        _ => {
            let mut text = tokenizer.decode(&tokens)?;
            if let StopReason::StopString(s) = &stop {
                if let Some(at) = text.find(s.as_str()) {
                    text.truncate(at);
                }
            }
            text
        }
    };
    Ok(Generation {
        text,
        tokens,
        logprobs,
        stop,
        prompt_tokens: prompt_ids.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lm::table::{TableModel, TableTokenizer};

    fn run(decoder: Decoder, prompt: &str, max_tokens: usize, stop: &[&str]) -> Generation {
        let model = TableModel::example();
        let tok = TableTokenizer::example();
        let ids = tok.encode(prompt).unwrap();
        let options = GenerateOptions {
            decoder,
            max_tokens,
            stop: stop.iter().map(|s| s.to_string()).collect(),
            stop_at_eos: true,
        };
        generate(&model, &tok, &ids, &options, |_| ControlFlow::Continue(())).unwrap()
    }

    #[test]
    fn argmax_follows_the_most_likely_token() {
        // a → " b" (0.75) → " c"/" d" at 0.5 each, ties go to the lowest id (" c") → the
        // fallback rule's " a"/<eos> tie goes to <eos> (id 0).
        let g = run(Decoder::Argmax, "a", 10, &[]);
        assert_eq!(g.text, " b c");
        assert_eq!(g.tokens, vec![3, 4]);
        assert_eq!(g.stop, StopReason::Eos);
        assert!((g.logprobs[0] - 0.75f64.ln()).abs() < 1e-6);
        assert!((g.logprobs[1] - 0.5f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn max_tokens_and_stop_strings_end_generation() {
        let g = run(Decoder::Argmax, "a", 1, &[]);
        assert_eq!((g.text.as_str(), &g.stop), (" b", &StopReason::MaxTokens));
        let g = run(Decoder::Argmax, "a", 10, &[" c"]);
        assert_eq!(g.text, " b");
        assert_eq!(g.stop, StopReason::StopString(" c".into()));
        assert_eq!(g.tokens, vec![3, 4]);
    }

    #[test]
    fn streaming_delivers_the_text_and_cancel_keeps_what_was_made() {
        let model = TableModel::example();
        let tok = TableTokenizer::example();
        let mut streamed = String::new();
        let options = GenerateOptions {
            max_tokens: 10,
            ..Default::default()
        };
        let g = generate(&model, &tok, &[1], &options, |e| {
            streamed.push_str(e.text);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(streamed, g.text);
        let g = generate(&model, &tok, &[1], &options, |_| ControlFlow::Break(())).unwrap();
        assert_eq!((g.tokens.len(), &g.stop), (1, &StopReason::Cancelled));
        assert_eq!(g.text, " b");
    }

    #[test]
    fn sampling_is_seeded_and_follows_the_distribution() {
        let sampled = |seed| {
            run(
                Decoder::Sample(SamplingOptions {
                    seed,
                    ..Default::default()
                }),
                "a",
                1,
                &[],
            )
            .tokens[0]
        };
        assert_eq!(sampled(7), sampled(7));
        // After "a": " b" with 0.75, " c" with 0.25.
        let b = (0..2000).filter(|&s| sampled(s) == 3).count();
        assert!((1400..1600).contains(&b), "{b} of 2000 draws gave \" b\"");
        // top_k = 1 is argmax.
        let g = run(
            Decoder::Sample(SamplingOptions {
                top_k: Some(1),
                seed: 3,
                ..Default::default()
            }),
            "a",
            10,
            &[],
        );
        assert_eq!(g.text, " b c");
        // top_p = 0.5 after "a" keeps " b" only.
        let only_b = (0..200).all(|seed| {
            run(
                Decoder::Sample(SamplingOptions {
                    top_p: Some(0.5),
                    seed,
                    ..Default::default()
                }),
                "a",
                1,
                &[],
            )
            .tokens
                == vec![3]
        });
        assert!(only_b);
    }

    #[test]
    fn beam_search_finds_the_most_likely_whole_continuation() {
        // From "a b": " c" and " d" (0.5 each), then <eos> or " a" (0.5 each). The first
        // two finished beams are " c"+<eos> (0.25) and " c a"+<eos> (0.125): " c" wins;
        // its one generated token has log p = ln 0.5 (the <eos> is not a token of the text).
        let g = run(Decoder::Beam { width: 2 }, "a b", 5, &[]);
        assert_eq!(g.text, " c");
        assert_eq!(g.stop, StopReason::Eos);
        let total: f64 = g.logprobs.iter().sum();
        assert!((total - 0.5f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn bad_options_are_named() {
        let model = TableModel::example();
        let tok = TableTokenizer::example();
        let bad = |options: GenerateOptions, ids: &[u32]| {
            generate(&model, &tok, ids, &options, |_| ControlFlow::Continue(()))
                .unwrap_err()
                .to_string()
        };
        let sample = |s: SamplingOptions| GenerateOptions {
            decoder: Decoder::Sample(s),
            ..Default::default()
        };
        assert!(bad(GenerateOptions::default(), &[]).contains("the prompt is empty"));
        assert!(bad(
            sample(SamplingOptions {
                temperature: 0.0,
                ..Default::default()
            }),
            &[1]
        )
        .contains("temperature"));
        assert!(bad(
            sample(SamplingOptions {
                top_p: Some(1.5),
                ..Default::default()
            }),
            &[1]
        )
        .contains("top_p"));
        assert!(bad(
            GenerateOptions {
                max_tokens: 0,
                ..Default::default()
            },
            &[1]
        )
        .contains("max_tokens"));
        assert!(bad(GenerateOptions::default(), &[99]).contains("token id 99"));
    }
}
