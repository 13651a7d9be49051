//! The language model for JavaScript: `LanguageModel` (GGUF bytes in; generate, score,
//! sketch, elicitScore, tokenize) and `tinyRandomLlamaGguf` (an untrained tiny model for tests).
//!
//! Bytes in, plain objects out with the CLI's keys. Fetching, caching and sha256 of the
//! download are the JS layer's; `onToken` returning `false` cancels (what was generated
//! so far is returned with `stop: "cancelled"`).

use std::ops::ControlFlow;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{js_error, optional_string, size_arg, to_js, Options};
use crate::core::lm::{
    chat_user_prompt, generate, score_continuation, Decoder, GenerateOptions, SamplingOptions,
    Tokenize,
};
use crate::core::sketch::{
    run_sketch_streaming, wilson_ci95, ChoiceTask, EvalMode, Part, Sketch, SketchDecoder,
};
use crate::encode::BpeTokenizer;
use crate::lm::testing::{random_tiny_llama, TinyShape};
use crate::lm::{Activations, GgufModel, Llama};

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
export interface SketchOptions {
  /** Default "argmax". */
  decoder?: "argmax" | "sample" | "beam" | "var" | "beam_var";
  /** Beam width (beam, beam_var) or hypotheses kept between holes (var); default 2. */
  beams?: number;
  /** var's beam width inside a hole (default: beams). */
  varWidth?: number;
  /** beam_var's length normalisation exponent (default 0.7). */
  alpha?: number;
  temperature?: number; seed?: number;
}
/** The decoder's leading hypothesis after a step (with beam decoders it may change). */
/** Text in pieces: [template text, null] and [hole value, hole name]. */
export type SketchSegment = [string, string | null];
export interface SketchStep {
  text: string; values: Record<string, string>; hole: string | null; tokens_generated: number;
  segments: SketchSegment[];
}
export interface SketchResult {
  model: string; values: Record<string, string>; text: string; logprob: number;
  template_logprob: number; generated_logprob: number;
  decoder: "argmax" | "sample" | "beam" | "var" | "beam_var";
  tokens_generated: number; seconds: number; segments: SketchSegment[];
}
export interface ChoiceExample { input: string; options: string[]; correct: number; lead: string; }
export interface ChoiceOptions {
  /** "direct" (free generation, answer parsed), "sketch" (a choice hole) or "rank". */
  mode: "direct" | "sketch" | "rank";
  /** The sketch's decoder (mode "sketch"); default "argmax". */
  decoder?: "argmax" | "sample" | "beam" | "var" | "beam_var";
  beams?: number; alpha?: number;
  /** Tokens a direct answer may take (default 24). */
  maxTokens?: number;
}
export interface ChoiceOutcome {
  predicted: string | null; target: string; correct: boolean; output: string; tokens: number; seconds: number;
}
export interface ScoreResult {
  model: string; logprob: number; mean_logprob: number; tokens: number[]; per_token: number[];
}
export interface ElicitScoreOptions {
  /** "pmi" (default), "gppm" or "tvd-mi". */
  mechanism?: "pmi" | "gppm" | "tvd-mi";
  /** The item's word, put into the template's `{word}` (required by the default template). */
  word?: string;
  /** The task header before the reports (default: `A dictionary definition of the word "{word}":\n`). */
  template?: string;
  /** TVD-MI's critic threshold on the PMI (default 0). */
  threshold?: number;
  /** TVD-MI only, required there: a peer report about a different item. */
  otherPeer?: string;
}
export interface ElicitScoreResult {
  model: string; mechanism: "pmi" | "gppm" | "tvd-mi"; score: number; seconds: number;
}
/** A report changed in one of the ways `latentlab elicit score` tests. */
export interface ElicitManipulated {
  manipulation: "shuffled" | "truncated" | "generic" | "other_word" | "copied";
  report: string;
}
"#;

const SKETCH_KEYS: &[&str] = &[
    "decoder",
    "beams",
    "varWidth",
    "alpha",
    "temperature",
    "seed",
];

const CHOICE_KEYS: &[&str] = &["mode", "decoder", "beams", "alpha", "maxTokens"];

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
    pub(crate) llama: Llama,
    pub(crate) tokenizer: BpeTokenizer,
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

pub(crate) fn now_seconds() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// Calls a JS callback with `event`; `false` from it (or a throw, kept in `error`) stops.
fn call_back(
    f: Option<&js_sys::Function>,
    name: &str,
    event: &serde_json::Value,
    error: &mut Option<JsError>,
) -> ControlFlow<()> {
    let Some(f) = f else {
        return ControlFlow::Continue(());
    };
    let arg = match to_js(event) {
        Ok(v) => v,
        Err(e) => {
            *error = Some(e);
            return ControlFlow::Break(());
        }
    };
    match f.call1(&JsValue::NULL, &arg) {
        Ok(v) if v == JsValue::FALSE => ControlFlow::Break(()),
        Ok(_) => ControlFlow::Continue(()),
        Err(e) => {
            *error = Some(JsError::new(&format!(
                "{name} threw: {}",
                e.as_string().unwrap_or_else(|| format!("{e:?}"))
            )));
            ControlFlow::Break(())
        }
    }
}

fn values_object(values: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

#[wasm_bindgen]
impl LanguageModel {
    /// Opens a GGUF file's bytes; with `sha256`, the bytes must have that digest.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        bytes: Vec<u8>,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] sha256: Option<JsValue>,
    ) -> Result<LanguageModel, JsError> {
        let sha256 = optional_string(sha256, "LanguageModel.fromBytes: sha256")?;
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

    /// `"f32"` (the default: inputs of the quantised products kept exact) or `"int8"`
    /// (rounded to 8 bits per block as llama.cpp does: faster, logits move by hundredths).
    #[wasm_bindgen(getter, unchecked_return_type = "\"f32\" | \"int8\"")]
    pub fn activations(&self) -> String {
        match self.llama.activations() {
            Activations::F32 => "f32".into(),
            Activations::Int8 => "int8".into(),
        }
    }

    #[wasm_bindgen(js_name = setActivations)]
    pub fn set_activations(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "\"f32\" | \"int8\"")] activations: &str,
    ) -> Result<(), JsError> {
        self.llama.set_activations(match activations {
            "f32" => Activations::F32,
            "int8" => Activations::Int8,
            other => {
                return Err(JsError::new(&format!(
                    "activations is {other:?}: expected \"f32\" or \"int8\""
                )))
            }
        });
        Ok(())
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
            let event = serde_json::json!({
                "token": event.token, "text": event.text, "logprob": event.logprob,
            });
            call_back(on_token.as_ref(), "onToken", &event, &mut callback_error)
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

    /// Fills a sketch template (see `latentlab sketch run`). `onStep(step)` sees the
    /// decoder's leading hypothesis after every step; returning `false` cancels (an error
    /// "the sketch was cancelled").
    #[wasm_bindgen(unchecked_return_type = "SketchResult")]
    pub fn sketch(
        &self,
        template: &str,
        #[wasm_bindgen(unchecked_param_type = "SketchOptions")] options: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(step: SketchStep) => boolean | void")]
        on_step: Option<js_sys::Function>,
    ) -> Result<JsValue, JsError> {
        let o = Options::optional(options, SKETCH_KEYS, "sketch options")?;
        let decoder = sketch_decoder(&o)?;
        let sketch = Sketch::parse(template).map_err(js_error)?;
        let start = now_seconds();
        let mut callback_error = None;
        let result = run_sketch_streaming(
            &self.llama,
            &self.tokenizer,
            &sketch,
            &decoder,
            &mut |step| {
                let event = serde_json::json!({
                    "text": step.text,
                    "values": values_object(&step.values),
                    "hole": step.hole,
                    "tokens_generated": step.tokens_generated,
                    "segments": step.segments,
                });
                call_back(on_step.as_ref(), "onStep", &event, &mut callback_error)
            },
        );
        if let Some(e) = callback_error {
            return Err(e);
        }
        let r = result.map_err(js_error)?;
        let mut values = r.values.iter();
        let segments: Vec<(String, Option<String>)> = sketch
            .parts
            .iter()
            .map(|part| match part {
                Part::Text(t) => (t.clone(), None),
                Part::Hole(h) => (
                    values.next().map(|v| v.1.clone()).unwrap_or_default(),
                    Some(h.name.clone()),
                ),
            })
            .collect();
        let mut report = r.report(&self.name, now_seconds() - start);
        report["segments"] = serde_json::json!(segments);
        to_js(&report)
    }

    /// One example of `task` answered in `options.mode` (see `latentlab sketch eval`).
    #[wasm_bindgen(js_name = evaluateChoice, unchecked_return_type = "ChoiceOutcome")]
    pub fn evaluate_choice(
        &self,
        task: &JsChoiceTask,
        index: f64,
        #[wasm_bindgen(unchecked_param_type = "ChoiceOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let index = size_arg(index, "index", 0)?;
        let o = Options::optional(options, CHOICE_KEYS, "choice options")?;
        let mode = match o.get::<String>("mode")?.as_deref() {
            Some("direct") => {
                let max_tokens: usize = o.get("maxTokens")?.unwrap_or(24);
                if max_tokens == 0 {
                    return Err(JsError::new(
                        "options.maxTokens is 0: a direct answer needs at least one token",
                    ));
                }
                EvalMode::Direct { max_tokens }
            }
            Some("sketch") => EvalMode::Sketch(sketch_decoder(&o)?),
            Some("rank") => EvalMode::Rank,
            None => {
                return Err(JsError::new(
                    "options.mode is required: \"direct\", \"sketch\" or \"rank\"",
                ))
            }
            Some(other) => {
                return Err(JsError::new(&format!(
                    "options.mode is {other:?}: expected \"direct\", \"sketch\" or \"rank\""
                )))
            }
        };
        let start = now_seconds();
        let outcome = task
            .task
            .evaluate(&self.llama, &self.tokenizer, index, &mode)
            .map_err(js_error)?;
        let example = &task.task.examples[index];
        to_js(&serde_json::json!({
            "predicted": outcome.predicted.map(|p| example.options[p].clone()),
            "target": example.options[example.correct],
            "correct": outcome.correct,
            "output": outcome.output,
            "tokens": outcome.tokens,
            "seconds": now_seconds() - start,
        }))
    }

    /// Information elicitation without ground truth (see `latentlab elicit score`): the
    /// score of `report` given a peer's report about the same item — PMI (nats per token of
    /// the report: log q(report | task, peer) − log q(report | task)), GPPM (log q(peer |
    /// task, report)) or one TVD-MI term (critic 1[PMI > threshold] with the peer minus
    /// with `otherPeer`). Higher is better for every mechanism.
    #[wasm_bindgen(js_name = elicitScore, unchecked_return_type = "ElicitScoreResult")]
    pub fn elicit_score(
        &self,
        report: &str,
        peer: &str,
        #[wasm_bindgen(unchecked_param_type = "ElicitScoreOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        use crate::core::elicit::{score_report, Item, Mechanism, Scorer, DEFAULT_TEMPLATE};
        let o = Options::optional(
            options,
            &["mechanism", "word", "template", "threshold", "otherPeer"],
            "elicitScore options",
        )?;
        for (name, text) in [("report", report), ("peer", peer)] {
            if text.trim().is_empty() {
                return Err(JsError::new(&format!(
                    "{name} is empty: a report must have text to score"
                )));
            }
        }
        let mechanism: Mechanism = o
            .get::<String>("mechanism")?
            .as_deref()
            .unwrap_or("pmi")
            .parse()
            .map_err(js_error)?;
        let template: String = o
            .get("template")?
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        let word: Option<String> = o.get("word")?;
        if word.is_none() && template.contains("{word}") {
            return Err(JsError::new(
                "options.word is missing: the template names the item's word ({word})",
            ));
        }
        let threshold: f64 = o.get("threshold")?.unwrap_or(0.0);
        if !threshold.is_finite() {
            return Err(JsError::new(&format!(
                "options.threshold is {threshold}: expected a finite number"
            )));
        }
        let other_peer: Option<String> = o.get("otherPeer")?;
        if mechanism == Mechanism::TvdMi
            && other_peer.as_deref().is_none_or(|p| p.trim().is_empty())
        {
            return Err(JsError::new(
                "options.otherPeer is missing: TVD-MI sets the peer against a report about another item",
            ));
        }
        let opts = crate::core::elicit::Options {
            mechanism,
            template,
            threshold,
            ..Default::default()
        };
        let start = now_seconds();
        let item = Item::new(word.as_deref().unwrap_or(""), report, peer);
        let mut scorer = Scorer::new(&self.llama, &self.tokenizer);
        let score = score_report(
            &mut scorer,
            &opts,
            &item,
            report,
            other_peer.as_deref().unwrap_or(""),
        )
        .map_err(js_error)?;
        to_js(&serde_json::json!({
            "model": self.name,
            "mechanism": mechanism,
            "score": score,
            "seconds": now_seconds() - start,
        }))
    }

    /// The log-probability of `text` after `context` (see `latentlab lm score`).
    #[wasm_bindgen(unchecked_return_type = "ScoreResult")]
    pub fn score(
        &self,
        text: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] context: Option<JsValue>,
    ) -> Result<JsValue, JsError> {
        let context = optional_string(context, "score: the context")?;
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

/// The sketch decoder of `options` (`decoder`, `beams`, `varWidth`, `alpha`, `temperature`,
/// `seed`, each optional).
fn sketch_decoder(o: &Options) -> Result<SketchDecoder, JsError> {
    let beams: usize = o.get("beams")?.unwrap_or(2);
    Ok(match o.get::<String>("decoder")?.as_deref() {
            None | Some("argmax") => SketchDecoder::Argmax,
        Some("sample") => SketchDecoder::Sample {
            temperature: o.get("temperature")?.unwrap_or(1.0),
            seed: o.get("seed")?.unwrap_or(0),
        },
        Some("beam") => SketchDecoder::Beam { n: beams },
        Some("var") => SketchDecoder::Var {
            b: o.get("varWidth")?.unwrap_or(beams),
            n: beams,
        },
        Some("beam_var") => SketchDecoder::BeamVar {
            n: beams,
            alpha: o.get("alpha")?.unwrap_or(0.7),
        },
        Some(other) => {
            return Err(JsError::new(&format!(
                "options.decoder is {other:?}: expected \"argmax\", \"sample\", \"beam\", \"var\" or \"beam_var\""
            )))
        }
    })
}

/// A multiple-choice task (BIG-bench `task.json`) to evaluate with
/// `LanguageModel.evaluateChoice`, as `latentlab sketch eval` does.
#[wasm_bindgen(js_name = ChoiceTask)]
pub struct JsChoiceTask {
    task: ChoiceTask,
}

#[wasm_bindgen(js_class = ChoiceTask)]
impl JsChoiceTask {
    /// `name`: "date_understanding" or "tracking_shuffled_objects_three" (it picks the text
    /// around the answer); `json`: the task file.
    #[wasm_bindgen(js_name = fromBigBench)]
    pub fn from_bigbench(name: &str, json: &str) -> Result<JsChoiceTask, JsError> {
        let format = ChoiceTask::format_for(name).ok_or_else(|| {
            JsError::new(&format!(
                "task {name:?}: expected \"date_understanding\" or \"tracking_shuffled_objects_three\""
            ))
        })?;
        let task = ChoiceTask::from_bigbench_json(name, format, json).map_err(js_error)?;
        Ok(JsChoiceTask { task })
    }

    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.task.name.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.task.examples.len()
    }

    #[wasm_bindgen(unchecked_return_type = "ChoiceExample")]
    pub fn example(&self, index: f64) -> Result<JsValue, JsError> {
        let index = size_arg(index, "index", 0)?;
        let e = self.task.examples.get(index).ok_or_else(|| {
            JsError::new(&format!(
                "example {index}: the task has {} examples",
                self.task.examples.len()
            ))
        })?;
        to_js(&serde_json::json!({
            "input": e.input, "options": e.options, "correct": e.correct,
            "lead": self.task.lead(e),
        }))
    }
}

/// The manipulated versions of `report` that `latentlab elicit score` sets against the
/// honest one: its words shuffled (seeded), its first half, the generic definition,
/// `otherReport` (a report about another item) and the `peer`'s report copied.
#[wasm_bindgen(js_name = elicitManipulations, unchecked_return_type = "ElicitManipulated[]")]
pub fn elicit_manipulations(
    report: &str,
    peer: &str,
    other_report: &str,
    seed: f64,
) -> Result<JsValue, JsError> {
    use crate::core::elicit::{Item, Manipulation};
    use rand::SeedableRng;
    for (name, text) in [
        ("report", report),
        ("peer", peer),
        ("otherReport", other_report),
    ] {
        if text.trim().is_empty() {
            return Err(JsError::new(&format!(
                "{name} is empty: every manipulation starts from a report with words"
            )));
        }
    }
    let seed = size_arg(seed, "seed", 0)? as u64;
    let items = [Item::new("", report, peer), Item::new("", other_report, "")];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let out: Vec<serde_json::Value> = Manipulation::ALL
        .iter()
        .map(|m| {
            serde_json::json!({
                "manipulation": m.name(),
                "report": m.apply(&items, 0, &mut rng),
            })
        })
        .collect();
    to_js(&out)
}

/// The 95% Wilson score interval `[low, high]` for `correct` of `n`.
#[wasm_bindgen(js_name = wilsonInterval)]
pub fn wilson_interval(correct: f64, n: f64) -> Result<Vec<f64>, JsError> {
    let (correct, n) = (size_arg(correct, "correct", 0)?, size_arg(n, "n", 0)?);
    if correct > n {
        return Err(JsError::new(&format!(
            "correct is {correct}: more than n = {n}"
        )));
    }
    let (lo, hi) = wilson_ci95(correct, n);
    Ok(vec![lo, hi])
}

/// A tiny Llama GGUF with random weights (untrained: its text is noise), for tests and
/// examples that must not download the real model.
#[wasm_bindgen(js_name = tinyRandomLlamaGguf)]
pub fn tiny_random_llama_gguf(seed: u32) -> Vec<u8> {
    random_tiny_llama(seed as u64, &TinyShape::default())
}
