//! Sketch-aware decoding (LMQL's dclib, src/lmql/runtime/dclib/decoders.py): holes are
//! filled under their constraints, template text between them is forced but scored, and
//! the decoders differ in how far they look ahead:
//! - `argmax`, `sample`: one hypothesis, token by token;
//! - `beam(n)`: token-level beam over holes and forced text, ranked by
//!   Σ log p / L^0.7 (dclib's default `alpha_length_normalized`);
//! - `var(b, n)`: a beam of width b inside the current hole until it ends, the top b values
//!   get the next template text forced, the top n go on to the next hole;
//! - `beam_var(n, α)`: token-level beam pooled by hole, kept in banks by how many holes each
//!   hypothesis has completed (Post & Vilar 2018), ranked by Σ log p / L^α over template
//!   tokens plus the same over generated tokens; stops after 2n completions or when the best
//!   active hypothesis scores below the worst finished one.
//!
//! `var` and `beam_var` return the finished hypothesis with the highest joint Σ log p.
//!
//! Hypotheses are lazy: choosing a token only records it; the forward pass runs when a
//! surviving hypothesis is extended again, so a beam of n costs n forward passes a step,
//! not n².

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::template::{Hole, Part, Sketch};
use crate::core::lm::{log_softmax, uniform, LanguageModel, LmError, Tokenize, Want};

#[derive(Clone, Debug, PartialEq)]
pub enum SketchDecoder {
    Argmax,
    Sample { temperature: f64, seed: u64 },
    Beam { n: usize },
    Var { b: usize, n: usize },
    BeamVar { n: usize, alpha: f64 },
}

impl SketchDecoder {
    pub fn name(&self) -> &'static str {
        match self {
            SketchDecoder::Argmax => "argmax",
            SketchDecoder::Sample { .. } => "sample",
            SketchDecoder::Beam { .. } => "beam",
            SketchDecoder::Var { .. } => "var",
            SketchDecoder::BeamVar { .. } => "beam_var",
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SketchError {
    #[error("hole {hole}: no token can satisfy its constraints after {value:?} (contradictory constraints, or options the vocabulary cannot spell)")]
    Unsatisfiable { hole: String, value: String },
    #[error("option {name} is {value}: {why}")]
    BadOption {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("the sketch was cancelled")]
    Cancelled,
    #[error(transparent)]
    Lm(#[from] LmError),
}

/// What the decoder holds best so far, reported after every step: with `argmax` and
/// `sample` a plain stream; with the beam decoders the leading hypothesis, which may change
/// (LMQL's playground shows the same).
#[derive(Clone, Debug, PartialEq)]
pub struct SketchStep {
    /// The template filled up to where the leading hypothesis is.
    pub text: String,
    /// (hole, value so far) for the holes it has reached.
    pub values: Vec<(String, String)>,
    /// The hole it is filling (None once it is past the last hole).
    pub hole: Option<String>,
    pub tokens_generated: usize,
    /// `text` in pieces: template text (None) and hole values (Some(hole)), for display.
    pub segments: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SketchResult {
    /// (hole, value) in template order.
    pub values: Vec<(String, String)>,
    /// The whole filled template.
    pub text: String,
    /// Joint log-probability: template tokens after the first plus generated tokens (and the
    /// end-of-sequence choices that ended holes).
    pub logprob: f64,
    pub template_logprob: f64,
    pub generated_logprob: f64,
    pub tokens_generated: usize,
    pub decoder: &'static str,
}

impl SketchResult {
    /// The result as `latentlab sketch run` prints it and `LanguageModel.sketch` returns it
    /// (the keys are a contract, kept here once for both).
    pub fn report(&self, model: &str, seconds: f64) -> serde_json::Value {
        let values: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "model": model,
            "values": values,
            "text": self.text,
            "logprob": self.logprob,
            "template_logprob": self.template_logprob,
            "generated_logprob": self.generated_logprob,
            "decoder": self.decoder,
            "tokens_generated": self.tokens_generated,
            "seconds": seconds,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Choice {
    Token(u32),
    End,
}

#[derive(Clone)]
struct Hyp<S> {
    state: S,
    /// Tokens chosen but not yet read by `state`.
    pending: Vec<u32>,
    /// log-softmax of the next-token row after `state` (valid when `pending` is empty).
    next: Arc<Vec<f64>>,
    /// Index of the current part (a hole, or `parts.len()` when finished).
    part: usize,
    value: Vec<u8>,
    hole_tokens: usize,
    hole_done: bool,
    values: Vec<String>,
    /// Every scored step after the prompt: (log p, deterministic?).
    scores: Vec<(f64, bool)>,
    generated: usize,
    parent: usize,
    holes_done: usize,
}

impl<S> Hyp<S> {
    fn sum(&self) -> f64 {
        self.scores.iter().map(|s| s.0).sum()
    }
    fn part_sum(&self, det: bool) -> (f64, usize) {
        self.scores
            .iter()
            .filter(|s| s.1 == det)
            .fold((0.0, 0), |(t, n), s| (t + s.0, n + 1))
    }
    /// dclib's `alpha_length_normalized`: Σ / L^α.
    fn alpha(&self, alpha: f64) -> f64 {
        normalized(self.sum(), self.scores.len(), alpha)
    }
    /// dclib's `alpha_length_normalized_det`.
    fn alpha_det(&self, alpha: f64) -> f64 {
        let (d, nd) = self.part_sum(true);
        let (g, ng) = self.part_sum(false);
        normalized(d, nd, alpha) + normalized(g, ng, alpha)
    }
}

fn normalized(sum: f64, n: usize, alpha: f64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / (n as f64).powf(alpha)
    }
}

/// What the sketch needs of the vocabulary, computed once.
struct Vocabulary {
    bytes: Vec<Option<Vec<u8>>>,
    eos: Option<u32>,
}

type OnStep<'a> = &'a mut dyn FnMut(&SketchStep) -> ControlFlow<()>;

struct Engine<'a, M: LanguageModel, T: Tokenize> {
    model: &'a M,
    tokenizer: &'a T,
    sketch: &'a Sketch,
    vocab: Vocabulary,
    next_id: usize,
    on_step: OnStep<'a>,
}

fn is_int_prefix(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b" ").unwrap_or(v);
    digits.iter().all(u8::is_ascii_digit)
}

impl<'a, M: LanguageModel, T: Tokenize> Engine<'a, M, T> {
    fn hole(&self, h: &Hyp<M::State>) -> &'a Hole {
        match &self.sketch.parts[h.part] {
            Part::Hole(hole) => hole,
            Part::Text(_) => unreachable!("hypotheses wait only at holes"),
        }
    }

    fn start(&mut self) -> Result<Hyp<M::State>, SketchError> {
        let Part::Text(prompt) = &self.sketch.parts[0] else {
            unreachable!("Sketch::parse requires a text first")
        };
        let ids = self.tokenizer.encode(prompt)?;
        if ids.is_empty() {
            return Err(LmError::Empty {
                what: "the sketch's first text".into(),
                why: "it has no tokens",
            }
            .into());
        }
        let mut state = self.model.new_state();
        let logits = self.model.extend(&mut state, &ids, Want::Last)?;
        let row = logits
            .last()
            .ok_or_else(|| LmError::Model("no logits".into()))?;
        let mut h = Hyp {
            state,
            pending: Vec::new(),
            next: Arc::new(log_softmax(row)),
            part: 1,
            value: Vec::new(),
            hole_tokens: 0,
            hole_done: false,
            values: Vec::new(),
            scores: Vec::new(),
            generated: 0,
            parent: 0,
            holes_done: 0,
        };
        self.advance(&mut h)?;
        Ok(h)
    }

    fn finished(&self, h: &Hyp<M::State>) -> bool {
        h.part >= self.sketch.parts.len()
    }

    /// Reads pending tokens, and after a finished hole the next template text (scored).
    fn advance(&self, h: &mut Hyp<M::State>) -> Result<(), SketchError> {
        let mut feed = std::mem::take(&mut h.pending);
        let pending = feed.len();
        let mut text_tokens = 0;
        if h.hole_done {
            h.values
                .push(String::from_utf8_lossy(&h.value).into_owned());
            h.value.clear();
            h.hole_tokens = 0;
            h.hole_done = false;
            h.holes_done += 1;
            h.part += 1;
            if let Some(Part::Text(text)) = self.sketch.parts.get(h.part) {
                let ids = self.tokenizer.encode(text)?;
                text_tokens = ids.len();
                feed.extend(ids);
                h.part += 1;
            }
        }
        if feed.is_empty() {
            return Ok(());
        }
        let logits = self.model.extend(&mut h.state, &feed, Want::All)?;
        // Row i predicts token i + 1; the first text token is predicted by the row before it.
        let mut row = h.next.clone();
        for (i, &tok) in feed.iter().enumerate() {
            if i >= pending {
                h.scores.push((row[tok as usize], true));
            }
            row = Arc::new(log_softmax(logits.row(i)));
        }
        debug_assert!(text_tokens == feed.len() - pending);
        h.next = row;
        Ok(())
    }

    /// Allowed choices in the current hole with the model's log-probabilities, best first.
    fn candidates(&self, h: &Hyp<M::State>) -> Result<Vec<(Choice, f64)>, SketchError> {
        let hole = self.hole(h);
        let mut out = Vec::new();
        let options: Option<Vec<&[u8]>> = hole
            .options
            .as_ref()
            .map(|o| o.iter().map(|s| s.as_bytes()).collect());
        let mut candidate = h.value.clone();
        let base = candidate.len();
        for (id, bytes) in self.vocab.bytes.iter().enumerate() {
            let Some(bytes) = bytes else { continue };
            if bytes.is_empty() {
                continue;
            }
            candidate.truncate(base);
            candidate.extend_from_slice(bytes);
            if hole.int && !is_int_prefix(&candidate) {
                continue;
            }
            if let Some(opts) = &options {
                if !opts.iter().any(|o| o.starts_with(&candidate)) {
                    continue;
                }
            }
            let lp = h.next[id];
            if lp.is_finite() {
                out.push((Choice::Token(id as u32), lp));
            }
        }
        let value_ok = !h.value.is_empty()
            && (!hole.int || h.value.iter().any(u8::is_ascii_digit))
            && options
                .as_ref()
                .is_none_or(|o| o.contains(&h.value.as_slice()));
        if let (true, Some(eos)) = (value_ok, self.vocab.eos) {
            let lp = h.next[eos as usize];
            if lp.is_finite() {
                out.push((Choice::End, lp));
            }
        }
        if out.is_empty() {
            return Err(SketchError::Unsatisfiable {
                hole: hole.name.clone(),
                value: String::from_utf8_lossy(&h.value).into_owned(),
            });
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(key(a.0).cmp(&key(b.0))));
        Ok(out)
    }

    /// Records a choice (lazily: the forward pass waits for `advance`).
    fn apply(
        &mut self,
        h: &Hyp<M::State>,
        choice: Choice,
        lp: f64,
    ) -> Result<Hyp<M::State>, SketchError> {
        let hole = self.hole(h);
        let mut next = h.clone();
        next.parent = self.next_id;
        next.scores.push((lp, false));
        match choice {
            Choice::End => next.hole_done = true,
            Choice::Token(t) => {
                let before = next.value.len();
                let bytes = self.vocab.bytes[t as usize].as_deref().unwrap_or_default();
                next.value.extend_from_slice(bytes);
                next.hole_tokens += 1;
                next.generated += 1;
                next.pending.push(t);
                if let Some(cut) = first_stop(&next.value, &hole.stops) {
                    next.hole_done = true;
                    if cut < next.value.len() {
                        // The token ran past the stop string: keep the value up to it and
                        // let the model read exactly that text.
                        next.pending.pop();
                        let kept = String::from_utf8_lossy(&next.value[before..cut]).into_owned();
                        next.pending.extend(self.tokenizer.encode(&kept)?);
                        next.value.truncate(cut);
                    }
                }
                if let Some(opts) = &hole.options {
                    let v = next.value.as_slice();
                    let complete = opts.iter().any(|o| o.as_bytes() == v);
                    let extendable = opts
                        .iter()
                        .any(|o| o.len() > v.len() && o.as_bytes().starts_with(v));
                    if complete && (!extendable || self.vocab.eos.is_none()) {
                        next.hole_done = true;
                    }
                }
                if next.hole_tokens >= hole.max_tokens {
                    next.hole_done = true;
                }
            }
        }
        Ok(next)
    }

    fn step(&mut self, h: &mut Hyp<M::State>) -> Result<(), SketchError> {
        self.advance(h)?;
        self.next_id += 1;
        Ok(())
    }

    /// Tells the caller where `best` is; the caller may cancel.
    fn report(&mut self, best: Option<&Hyp<M::State>>) -> Result<(), SketchError> {
        let Some(h) = best else { return Ok(()) };
        let mut step = SketchStep {
            text: String::new(),
            values: Vec::new(),
            hole: None,
            tokens_generated: h.generated,
            segments: Vec::new(),
        };
        let mut done = h.values.iter();
        for (i, part) in self.sketch.parts.iter().enumerate() {
            match part {
                Part::Text(t) if i < h.part => {
                    step.text.push_str(t);
                    step.segments.push((t.clone(), None));
                }
                Part::Hole(hole) if i <= h.part => {
                    let value = match done.next() {
                        Some(v) => v.clone(),
                        None => String::from_utf8_lossy(&h.value).into_owned(),
                    };
                    step.text.push_str(&value);
                    step.segments.push((value.clone(), Some(hole.name.clone())));
                    step.values.push((hole.name.clone(), value));
                    if i == h.part {
                        step.hole = Some(hole.name.clone());
                    }
                }
                _ => break,
            }
        }
        match (self.on_step)(&step) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(SketchError::Cancelled),
        }
    }

    fn result(&self, h: &Hyp<M::State>, decoder: &'static str) -> SketchResult {
        let mut text = String::new();
        let mut values = Vec::new();
        let mut holes = h.values.iter();
        for part in &self.sketch.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Hole(hole) => {
                    let v = holes.next().cloned().unwrap_or_default();
                    text.push_str(&v);
                    values.push((hole.name.clone(), v));
                }
            }
        }
        let (template, _) = h.part_sum(true);
        let (generated, _) = h.part_sum(false);
        SketchResult {
            values,
            text,
            logprob: template + generated,
            template_logprob: template,
            generated_logprob: generated,
            tokens_generated: h.generated,
            decoder,
        }
    }
}

fn key(c: Choice) -> u64 {
    match c {
        Choice::Token(t) => t as u64,
        Choice::End => u64::MAX,
    }
}

/// Where the value must end: just after the first stop string it contains.
fn first_stop(value: &[u8], stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter_map(|s| {
            value
                .windows(s.len())
                .position(|w| w == s.as_bytes())
                .map(|at| at + s.len())
        })
        .min()
}

fn top<S>(mut hyps: Vec<Hyp<S>>, k: usize, score: impl Fn(&Hyp<S>) -> f64) -> Vec<Hyp<S>> {
    hyps.sort_by(|a, b| score(b).total_cmp(&score(a)));
    hyps.truncate(k);
    hyps
}

fn check(decoder: &SketchDecoder) -> Result<(), SketchError> {
    let width = |name: &'static str, v: usize| {
        if v == 0 || v > 32 {
            Err(SketchError::BadOption {
                name,
                value: v.to_string(),
                why: "must be between 1 and 32",
            })
        } else {
            Ok(())
        }
    };
    match *decoder {
        SketchDecoder::Argmax => Ok(()),
        SketchDecoder::Sample { temperature, .. } => {
            if temperature.is_finite() && temperature > 0.0 {
                Ok(())
            } else {
                Err(SketchError::BadOption {
                    name: "temperature",
                    value: temperature.to_string(),
                    why: "must be a finite number above 0",
                })
            }
        }
        SketchDecoder::Beam { n } => width("beams", n),
        SketchDecoder::Var { b, n } => width("b", b).and(width("beams", n)),
        SketchDecoder::BeamVar { n, alpha } => {
            width("beams", n)?;
            if (0.0..=2.0).contains(&alpha) {
                Ok(())
            } else {
                Err(SketchError::BadOption {
                    name: "alpha",
                    value: alpha.to_string(),
                    why: "must lie in [0, 2]",
                })
            }
        }
    }
}

/// Fills `sketch` with `model` using `decoder`.
pub fn run_sketch<M: LanguageModel, T: Tokenize>(
    model: &M,
    tokenizer: &T,
    sketch: &Sketch,
    decoder: &SketchDecoder,
) -> Result<SketchResult, SketchError> {
    run_sketch_streaming(model, tokenizer, sketch, decoder, &mut |_| {
        ControlFlow::Continue(())
    })
}

/// [`run_sketch`] that reports every step to `on_step`; `Break` cancels
/// ([`SketchError::Cancelled`]).
pub fn run_sketch_streaming<M: LanguageModel, T: Tokenize>(
    model: &M,
    tokenizer: &T,
    sketch: &Sketch,
    decoder: &SketchDecoder,
    on_step: &mut dyn FnMut(&SketchStep) -> ControlFlow<()>,
) -> Result<SketchResult, SketchError> {
    check(decoder)?;
    // `Sketch::parse` guarantees this shape; a sketch built by hand must have it too.
    let alternates = matches!(sketch.parts.first(), Some(Part::Text(_)))
        && sketch.parts.windows(2).all(|w| {
            matches!(
                (&w[0], &w[1]),
                (Part::Text(_), Part::Hole(_)) | (Part::Hole(_), Part::Text(_))
            )
        });
    if !alternates {
        return Err(SketchError::BadOption {
            name: "sketch",
            value: format!("{} parts", sketch.parts.len()),
            why: "must start with text and alternate text and holes (build it with Sketch::parse)",
        });
    }
    let vocab = Vocabulary {
        bytes: (0..model.vocab_size() as u32)
            .map(|i| tokenizer.token_bytes(i))
            .collect(),
        eos: tokenizer.eos(),
    };
    let mut e = Engine {
        model,
        tokenizer,
        sketch,
        vocab,
        next_id: 1,
        on_step,
    };
    let start = e.start()?;
    let name = decoder.name();
    let best = match *decoder {
        SketchDecoder::Argmax => single(&mut e, start, None)?,
        SketchDecoder::Sample { temperature, seed } => single(
            &mut e,
            start,
            Some((temperature, ChaCha8Rng::seed_from_u64(seed))),
        )?,
        SketchDecoder::Beam { n } => beam(&mut e, start, n)?,
        SketchDecoder::Var { b, n } => var(&mut e, start, b, n)?,
        SketchDecoder::BeamVar { n, alpha } => beam_var(&mut e, start, n, alpha)?,
    };
    Ok(e.result(&best, name))
}

fn single<M: LanguageModel, T: Tokenize>(
    e: &mut Engine<M, T>,
    mut h: Hyp<M::State>,
    mut sampling: Option<(f64, ChaCha8Rng)>,
) -> Result<Hyp<M::State>, SketchError> {
    while !e.finished(&h) {
        let cands = e.candidates(&h)?;
        let (choice, lp) = match sampling.as_mut() {
            None => cands[0],
            Some((temperature, rng)) => {
                // Masked and renormalised at the temperature, drawn as core::lm samples.
                let scaled: Vec<f32> = cands.iter().map(|c| (c.1 / *temperature) as f32).collect();
                let probs: Vec<f64> = log_softmax(&scaled).into_iter().map(libm::exp).collect();
                let mut u = uniform(rng);
                let mut pick = cands.len() - 1;
                for (i, p) in probs.iter().enumerate() {
                    if u < *p {
                        pick = i;
                        break;
                    }
                    u -= p;
                }
                cands[pick]
            }
        };
        h = e.apply(&h, choice, lp)?;
        e.step(&mut h)?;
        e.report(Some(&h))?;
    }
    Ok(h)
}

/// Expands every hypothesis by its `k` best allowed choices (not yet read by the model).
fn expand<M: LanguageModel, T: Tokenize>(
    e: &mut Engine<M, T>,
    hyps: &[Hyp<M::State>],
    k: usize,
) -> Result<Vec<Hyp<M::State>>, SketchError> {
    let mut out = Vec::new();
    for h in hyps {
        let parent = e.next_id;
        e.next_id += 1;
        for (choice, lp) in e.candidates(h)?.into_iter().take(k) {
            let mut child = e.apply(h, choice, lp)?;
            child.parent = parent;
            out.push(child);
        }
    }
    Ok(out)
}

fn advance_all<M: LanguageModel, T: Tokenize>(
    e: &mut Engine<M, T>,
    hyps: &mut [Hyp<M::State>],
) -> Result<(), SketchError> {
    for h in hyps.iter_mut() {
        e.advance(h)?;
    }
    Ok(())
}

fn beam<M: LanguageModel, T: Tokenize>(
    e: &mut Engine<M, T>,
    start: Hyp<M::State>,
    n: usize,
) -> Result<Hyp<M::State>, SketchError> {
    const ALPHA: f64 = 0.7;
    let mut active = vec![start];
    let mut done: Vec<Hyp<M::State>> = Vec::new();
    while !active.is_empty() {
        advance_all(e, &mut active)?;
        let (fin, open): (Vec<_>, Vec<_>) = active.into_iter().partition(|h| e.finished(h));
        done.extend(fin);
        done = top(done, n, |h| h.alpha(ALPHA));
        if open.is_empty() {
            break;
        }
        active = top(expand(e, &open, n)?, n, |h| h.alpha(ALPHA));
        e.report(active.first())?;
        let best_active = active
            .iter()
            .map(|h| h.alpha(ALPHA))
            .fold(f64::MIN, f64::max);
        let worst_done = done.iter().map(|h| h.alpha(ALPHA)).fold(f64::MAX, f64::min);
        if done.len() >= n && best_active < worst_done {
            break;
        }
    }
    done.into_iter()
        .max_by(|a, b| a.alpha(ALPHA).total_cmp(&b.alpha(ALPHA)))
        .ok_or_else(|| LmError::Model("beam search finished no hypothesis".into()).into())
}

fn var<M: LanguageModel, T: Tokenize>(
    e: &mut Engine<M, T>,
    start: Hyp<M::State>,
    b: usize,
    n: usize,
) -> Result<Hyp<M::State>, SketchError> {
    const ALPHA: f64 = 0.7;
    // A sketch of text alone is finished at the start: no hole to search (found by the wasm
    // facade's fuzzing: `hole()` of the start indexed past the last part).
    if e.finished(&start) {
        return Ok(start);
    }
    let mut hyps = vec![start];
    let mut done: Vec<Hyp<M::State>> = Vec::new();
    while !hyps.is_empty() {
        // A beam of width b inside the current hole until its values are settled.
        let mut active = hyps;
        let mut values: Vec<Hyp<M::State>> = Vec::new();
        while !active.is_empty() {
            for h in active.iter_mut() {
                e.advance(h)?;
            }
            let expanded = expand(e, &active, b)?;
            let (ended, open): (Vec<_>, Vec<_>) = expanded.into_iter().partition(|h| h.hole_done);
            values.extend(ended);
            active = top(open, b, |h| h.alpha(ALPHA));
            e.report(active.first().or(values.last()))?;
            let best_active = active
                .iter()
                .map(|h| h.alpha(ALPHA))
                .fold(f64::MIN, f64::max);
            let worst = values
                .iter()
                .map(|h| h.alpha(ALPHA))
                .fold(f64::MAX, f64::min);
            if values.len() >= b && best_active < worst {
                break;
            }
        }
        // The top b values get the next template text forced (and scored) …
        let mut values = top(values, b, |h| h.alpha(ALPHA));
        advance_all(e, &mut values)?;
        let (fin, open): (Vec<_>, Vec<_>) = values.into_iter().partition(|h| e.finished(h));
        done.extend(fin);
        // … and the top n of those go on.
        hyps = top(open, n, |h| h.alpha(ALPHA));
    }
    done.into_iter()
        .max_by(|a, b| a.sum().total_cmp(&b.sum()))
        .ok_or_else(|| LmError::Model("var finished no hypothesis".into()).into())
}

/// Post & Vilar's bank sizes: an equal share of `beam` per bank (the remainder to the
/// furthest), then slots a bank cannot fill rolled up, then down (dclib's
/// `get_bank_sizes_post_vilar`).
fn bank_sizes(counts: &[(usize, usize)], beam: usize) -> HashMap<usize, usize> {
    let banks = counts.len();
    let mut sizes: HashMap<usize, usize> = counts.iter().map(|&(k, _)| (k, beam / banks)).collect();
    if let Some(&(last, _)) = counts.last() {
        *sizes.entry(last).or_default() += beam - beam / banks * banks;
    }
    let count: HashMap<usize, usize> = counts.iter().copied().collect();
    let mut roll = 0;
    for pass in 0..2 {
        let keys: Vec<usize> = if pass == 0 {
            counts.iter().map(|c| c.0).collect()
        } else {
            counts.iter().rev().map(|c| c.0).collect()
        };
        for k in keys {
            let size = sizes.entry(k).or_default();
            *size += roll;
            roll = 0;
            let have = count[&k];
            if *size > have {
                roll = *size - have;
                *size = have;
            }
        }
    }
    sizes
}

fn beam_var<M: LanguageModel, T: Tokenize>(
    e: &mut Engine<M, T>,
    start: Hyp<M::State>,
    n: usize,
    alpha: f64,
) -> Result<Hyp<M::State>, SketchError> {
    let score = |h: &Hyp<M::State>| h.alpha_det(alpha);
    let mut h = vec![start];
    let mut done: Vec<Hyp<M::State>> = Vec::new();
    let mut completed = 0;
    loop {
        advance_all(e, &mut h)?;
        let (fin, open): (Vec<_>, Vec<_>) = h.into_iter().partition(|x| e.finished(x));
        completed += fin.len();
        done.extend(fin);
        done = top(done, n, score);
        if open.is_empty() {
            break;
        }
        let expanded = expand(e, &open, n)?;
        let best_active = expanded.iter().map(score).fold(f64::MIN, f64::max);
        let worst_done = done.iter().map(score).fold(f64::MAX, f64::min);
        if completed >= 2 * n || (done.len() >= n && best_active < worst_done) {
            break;
        }
        // Post & Vilar: the global top n, plus each parent's best child, in banks by how
        // many holes each has completed (hypotheses waiting at the same hole share a bank).
        let mut pool: Vec<usize> = {
            let mut idx: Vec<usize> = (0..expanded.len()).collect();
            idx.sort_by(|&a, &b| score(&expanded[b]).total_cmp(&score(&expanded[a])));
            idx.truncate(n);
            idx
        };
        let mut best_child: HashMap<usize, usize> = HashMap::new();
        for (i, x) in expanded.iter().enumerate() {
            let entry = best_child.entry(x.parent).or_insert(i);
            if score(x) > score(&expanded[*entry]) {
                *entry = i;
            }
        }
        let mut parents: Vec<usize> = best_child.into_values().collect();
        parents.sort();
        for i in parents {
            if !pool.contains(&i) {
                pool.push(i);
            }
        }
        let bank_of = |i: usize| expanded[i].holes_done + usize::from(expanded[i].hole_done);
        let mut counts: Vec<(usize, usize)> = Vec::new();
        for &i in &pool {
            let k = bank_of(i);
            match counts.iter_mut().find(|c| c.0 == k) {
                Some(c) => c.1 += 1,
                None => counts.push((k, 1)),
            }
        }
        counts.sort();
        let sizes = bank_sizes(&counts, n);
        let mut keep: Vec<usize> = Vec::new();
        for &(k, _) in &counts {
            let mut bank: Vec<usize> = pool.iter().copied().filter(|&i| bank_of(i) == k).collect();
            bank.sort_by(|&a, &b| score(&expanded[b]).total_cmp(&score(&expanded[a])));
            bank.truncate(sizes[&k]);
            keep.extend(bank);
        }
        keep.sort();
        h = expanded
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, x)| x)
            .collect();
        e.report(h.iter().max_by(|a, b| score(a).total_cmp(&score(b))))?;
    }
    done.into_iter()
        .max_by(|a, b| a.sum().total_cmp(&b.sum()))
        .ok_or_else(|| LmError::Model("beam_var finished no hypothesis".into()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_sizes_follow_post_and_vilar() {
        // Three banks for a beam of 4: 1 + 1 + 2, and a bank with one member gives its
        // spare slot on.
        let s = bank_sizes(&[(0, 5), (1, 5), (2, 5)], 4);
        assert_eq!((s[&0], s[&1], s[&2]), (1, 1, 2));
        let s = bank_sizes(&[(0, 5), (1, 1), (2, 1)], 4);
        assert_eq!(s.values().sum::<usize>(), 4);
        assert_eq!((s[&1], s[&2]), (1, 1));
    }
}
