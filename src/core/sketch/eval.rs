//! Multiple-choice evaluation of the three ways to get an answer out of a language model
//! that the Prompt Sketching paper compares: ask directly and parse what comes back, fill a
//! sketch whose answer hole is constrained to the options (with a greedy or a sketch-aware
//! decoder), or rank the options by their log-likelihood.
//!
//! Every mode sees the same text before the answer (`ChoiceFormat::lead`), so the modes
//! differ only in how the answer is decoded. The sketch is the paper's idea reduced to one
//! choice hole followed by template text; the paper's sketches for these tasks also have
//! reasoning holes, which a 135M model fills with noise at several seconds per example.

use serde::Deserialize;

use super::decode::{run_sketch, SketchDecoder, SketchError};
use super::template::{Hole, Part, Sketch, DEFAULT_MAX_TOKENS};
use crate::core::lm::{
    generate, log_softmax, Decoder, GenerateOptions, LanguageModel, LmError, Tokenize, Want,
};

/// One multiple-choice question.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceExample {
    pub input: String,
    pub options: Vec<String>,
    /// Index into `options`.
    pub correct: usize,
}

/// The text around the answer, per task.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceFormat {
    /// Text before the question.
    pub before: String,
    /// Text between the question and the answer; the answer follows it after one space.
    pub after: String,
    /// Template text after the answer (scored by the sketch decoders).
    pub suffix: String,
    /// Direct answers are read with `normalise_dates` first.
    pub dates: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceTask {
    pub name: String,
    pub format: ChoiceFormat,
    pub examples: Vec<ChoiceExample>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EvalMode {
    /// Greedy free generation of at most `max_tokens`, ending at a newline; the answer is the
    /// option that appears first in it (none: counted wrong and in `named_no_option`).
    Direct { max_tokens: usize },
    /// The sketch `lead[ANSWER]suffix` with `ANSWER in options`.
    Sketch(SketchDecoder),
    /// The option with the highest Σ log p after `lead`.
    Rank,
}

impl EvalMode {
    pub fn name(&self) -> &'static str {
        match self {
            EvalMode::Direct { .. } => "direct",
            EvalMode::Sketch(_) => "sketch",
            EvalMode::Rank => "rank",
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("task {task}: {why}")]
    BadTask { task: String, why: String },
    // The inner error is part of the message and deliberately not a `source`, or
    // anyhow's chain would print it twice.
    #[error("task {task}, example {index}: {error}")]
    Sketch {
        task: String,
        index: usize,
        error: SketchError,
    },
    #[error("task {task}, example {index}: {error}")]
    Lm {
        task: String,
        index: usize,
        error: LmError,
    },
}

/// What one example gave.
#[derive(Clone, Debug, PartialEq)]
pub struct ExampleOutcome {
    /// The chosen option (None: the direct answer named no option).
    pub predicted: Option<usize>,
    pub correct: bool,
    /// What the model produced: the generation (direct), the hole value (sketch) or the
    /// best option (rank).
    pub output: String,
    /// Tokens the model read or generated for this example.
    pub tokens: usize,
}

#[derive(Deserialize)]
struct BigBenchFile {
    examples: Vec<BigBenchExample>,
}

#[derive(Deserialize)]
struct BigBenchExample {
    input: String,
    target_scores: serde_json::Map<String, serde_json::Value>,
}

impl ChoiceTask {
    /// The two BIG-bench tasks the CLI and the page evaluate, with their answer formats.
    pub fn format_for(name: &str) -> Option<ChoiceFormat> {
        match name {
            // "Q: Yesterday was … in MM/DD/YYYY?\nA: The date is 05/01/2021."
            "date_understanding" => Some(ChoiceFormat {
                before: "Q: ".into(),
                after: "\nA: The date is".into(),
                suffix: ".\n".into(),
                dates: true,
            }),
            // The question ends "At the end of the game, Alice has the "; the options
            // ("blue ball.") complete that sentence.
            "tracking_shuffled_objects_three" => Some(ChoiceFormat {
                before: String::new(),
                after: String::new(),
                suffix: "\n".into(),
                dates: false,
            }),
            _ => None,
        }
    }

    /// Reads a BIG-bench `task.json` (`examples[].input`, `examples[].target_scores`, one
    /// option scored 1).
    pub fn from_bigbench_json(
        name: &str,
        format: ChoiceFormat,
        json: &str,
    ) -> Result<ChoiceTask, EvalError> {
        let bad = |why: String| EvalError::BadTask {
            task: name.to_string(),
            why,
        };
        let file: BigBenchFile =
            serde_json::from_str(json).map_err(|e| bad(format!("not a BIG-bench task: {e}")))?;
        let mut examples = Vec::with_capacity(file.examples.len());
        for (i, ex) in file.examples.into_iter().enumerate() {
            let mut options = Vec::new();
            let mut correct = Vec::new();
            for (option, score) in ex.target_scores {
                let score = score.as_f64().ok_or_else(|| {
                    bad(format!("example {i}: score of {option:?} is not a number"))
                })?;
                if score == 1.0 {
                    correct.push(options.len());
                }
                options.push(option.trim_end().to_string());
            }
            if options.len() < 2 || correct.len() != 1 {
                return Err(bad(format!(
                    "example {i}: needs at least two options and exactly one scored 1 ({} options, {} scored 1)",
                    options.len(),
                    correct.len()
                )));
            }
            if options.iter().any(|o| o.trim().is_empty()) {
                return Err(bad(format!("example {i}: an option is empty")));
            }
            examples.push(ChoiceExample {
                input: ex.input,
                options,
                correct: correct[0],
            });
        }
        if examples.is_empty() {
            return Err(bad("it has no examples".into()));
        }
        Ok(ChoiceTask {
            name: name.to_string(),
            format,
            examples,
        })
    }

    /// The text every mode puts before the answer.
    pub fn lead(&self, example: &ChoiceExample) -> String {
        let input = example.input.trim_end();
        format!("{}{}{}", self.format.before, input, self.format.after)
    }

    /// The answer as it follows the lead: one space, then the option.
    pub fn answer_text(option: &str) -> String {
        format!(" {}", option.trim_start())
    }

    /// The sketch for `example`: `lead[ANSWER]suffix` where `ANSWER in options`.
    pub fn sketch(&self, example: &ChoiceExample) -> Sketch {
        let hole = Hole {
            name: "ANSWER".into(),
            options: Some(
                example
                    .options
                    .iter()
                    .map(|o| Self::answer_text(o))
                    .collect(),
            ),
            int: false,
            stops: Vec::new(),
            max_tokens: DEFAULT_MAX_TOKENS,
        };
        let mut parts = vec![Part::Text(self.lead(example)), Part::Hole(hole)];
        if !self.format.suffix.is_empty() {
            parts.push(Part::Text(self.format.suffix.clone()));
        }
        Sketch { parts }
    }

    pub fn evaluate<M: LanguageModel, T: Tokenize>(
        &self,
        model: &M,
        tokenizer: &T,
        index: usize,
        mode: &EvalMode,
    ) -> Result<ExampleOutcome, EvalError> {
        let example = self.examples.get(index).ok_or_else(|| EvalError::BadTask {
            task: self.name.clone(),
            why: format!("no example {index} (it has {})", self.examples.len()),
        })?;
        let lm = |error: LmError| EvalError::Lm {
            task: self.name.clone(),
            index,
            error,
        };
        let (predicted, output, tokens) = match mode {
            EvalMode::Direct { max_tokens } => {
                let prompt = tokenizer.encode(&self.lead(example)).map_err(lm)?;
                let options = GenerateOptions {
                    decoder: Decoder::Argmax,
                    max_tokens: *max_tokens,
                    stop: vec!["\n".into()],
                    stop_at_eos: true,
                };
                let g = generate(model, tokenizer, &prompt, &options, |_| {
                    std::ops::ControlFlow::Continue(())
                })
                .map_err(lm)?;
                let tokens = prompt.len() + g.tokens.len();
                let named = if self.format.dates {
                    first_option_named(&normalise_dates(&g.text), &example.options)
                } else {
                    first_option_named(&g.text, &example.options)
                };
                (named, g.text, tokens)
            }
            EvalMode::Sketch(decoder) => {
                let r = run_sketch(model, tokenizer, &self.sketch(example), decoder).map_err(
                    |error| EvalError::Sketch {
                        task: self.name.clone(),
                        index,
                        error,
                    },
                )?;
                let value = r.values.first().map(|v| v.1.clone()).unwrap_or_default();
                let predicted = example
                    .options
                    .iter()
                    .position(|o| Self::answer_text(o) == value);
                let tokens = tokenizer.encode(&r.text).map_err(lm)?.len();
                (predicted, value, tokens.max(r.tokens_generated))
            }
            EvalMode::Rank => {
                let (best, tokens) = self.rank(model, tokenizer, example).map_err(lm)?;
                (Some(best), example.options[best].clone(), tokens)
            }
        };
        Ok(ExampleOutcome {
            predicted,
            correct: predicted == Some(example.correct),
            output,
            tokens,
        })
    }

    /// Reads the lead once and each option from a copy of its state (the KV cache's blocks
    /// are shared, so the copies are cheap). Returns the best option and the tokens read.
    fn rank<M: LanguageModel, T: Tokenize>(
        &self,
        model: &M,
        tokenizer: &T,
        example: &ChoiceExample,
    ) -> Result<(usize, usize), LmError> {
        let lead = tokenizer.encode(&self.lead(example))?;
        if lead.is_empty() {
            return Err(LmError::Empty {
                what: "the question".into(),
                why: "it has no tokens",
            });
        }
        let mut state = model.new_state();
        let logits = model.extend(&mut state, &lead, Want::Last)?;
        let first = log_softmax(
            logits
                .last()
                .ok_or_else(|| LmError::Model("no logits".into()))?,
        );
        let mut tokens = lead.len();
        let mut best: Option<(usize, f64)> = None;
        for (i, option) in example.options.iter().enumerate() {
            let ids = tokenizer.encode(&Self::answer_text(option))?;
            let Some((&head, _)) = ids.split_first() else {
                return Err(LmError::Empty {
                    what: format!("option {option:?}"),
                    why: "it has no tokens",
                });
            };
            let mut logprob = first[head as usize];
            if ids.len() > 1 {
                let mut s = state.clone();
                let rows = model.extend(&mut s, &ids[..ids.len() - 1], Want::All)?;
                for (r, &next) in ids[1..].iter().enumerate() {
                    logprob += log_softmax(rows.row(r))[next as usize];
                }
            }
            tokens += ids.len();
            if best.is_none_or(|(_, b)| logprob > b) {
                best = Some((i, logprob));
            }
        }
        Ok((best.map(|b| b.0).unwrap_or(0), tokens))
    }
}

/// The option that `text` names first (an option counts when it appears with no letter or
/// digit glued to either side; a trailing "." of the option is optional).
pub fn first_option_named(text: &str, options: &[String]) -> Option<usize> {
    let mut best: Option<(usize, usize, usize)> = None; // (position, -len, index)
    for (i, option) in options.iter().enumerate() {
        let needle = option.trim().trim_end_matches('.');
        if needle.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(found) = text[from..].find(needle) {
            let start = from + found;
            let end = start + needle.len();
            let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
            if !glued(text[..start].chars().next_back()) && !glued(text[end..].chars().next()) {
                // Earliest wins; at the same position the longer option ("blue ball" over
                // "blue").
                let key = (start, usize::MAX - needle.len(), i);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
                break;
            }
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    best.map(|b| b.2)
}

/// The Wilson score interval for `correct` successes in `n` trials at 95% (z = 1.96): unlike
/// the normal approximation it stays inside [0, 1] and is honest at small n.
pub fn wilson_ci95(correct: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = n as f64;
    let p = correct as f64 / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    // Exact at the ends (the formula leaves rounding noise such as 5e-17 there).
    let lo = if correct == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if correct as f64 == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (lo, hi)
}

/// Dates written `YYYY-MM-DD` or `M/D/YYYY` rewritten as `MM/DD/YYYY`, the format the date
/// task's options use: a direct answer that names the right day in another common format
/// counts (SmolLM2 often answers in ISO form although the question asks for MM/DD/YYYY).
pub fn normalise_dates(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let s: String = chars.get(from..from + n)?.iter().collect();
        (s.len() == n && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let is_digit = |i: usize| chars.get(i).is_some_and(|c| c.is_ascii_digit());
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number = !(i > 0 && is_digit(i - 1));
        if starts_number {
            // YYYY-MM-DD
            if let (Some(y), Some('-'), Some(m), Some('-'), Some(d)) = (
                digits(i, 4),
                chars.get(i + 4).copied(),
                digits(i + 5, 2),
                chars.get(i + 7).copied(),
                digits(i + 8, 2),
            ) {
                if !is_digit(i + 10) {
                    out.push_str(&format!("{m:02}/{d:02}/{y:04}"));
                    i += 10;
                    continue;
                }
            }
            // M/D/YYYY with one- or two-digit month and day
            let mut matched = false;
            for ml in [1, 2] {
                for dl in [1, 2] {
                    if matched {
                        continue;
                    }
                    if let (Some(m), Some('/'), Some(d), Some('/'), Some(y)) = (
                        digits(i, ml),
                        chars.get(i + ml).copied(),
                        digits(i + ml + 1, dl),
                        chars.get(i + ml + 1 + dl).copied(),
                        digits(i + ml + dl + 2, 4),
                    ) {
                        let end = i + ml + dl + 6;
                        if !is_digit(end) {
                            out.push_str(&format!("{m:02}/{d:02}/{y:04}"));
                            i = end;
                            matched = true;
                        }
                    }
                }
            }
            if matched {
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lm::table::{TableModel, TableTokenizer};

    const VOCAB: [&str; 9] = [
        "<eos>", "Q", ":", " is", " red", " blue", ".", "\n", " ball",
    ];

    /// After " is": " red" 0.6, " blue" 0.4; after " red": "." 0.2, " ball" 0.8; after
    /// " blue": "." 0.9. So greedy (and rank, which scores only the option) pick red,
    /// while the sketch decoders, which also score the template text "." after the value,
    /// pick blue (0.4 · 0.9 > 0.6 · 0.2).
    fn table() -> (TableModel, TableTokenizer) {
        let model = TableModel {
            vocab: VOCAB.to_vec(),
            rules: vec![
                (vec![], vec![(6, 0.6), (7, 0.4)]),
                (vec![3], vec![(4, 0.6), (5, 0.4)]),
                (vec![4], vec![(6, 0.2), (8, 0.8)]),
                (vec![5], vec![(6, 0.9), (8, 0.1)]),
                (vec![6], vec![(7, 1.0)]),
            ],
            context: 64,
        };
        (
            model,
            TableTokenizer {
                vocab: VOCAB.to_vec(),
            },
        )
    }

    fn task(correct: usize) -> ChoiceTask {
        ChoiceTask {
            name: "colours".into(),
            format: ChoiceFormat {
                before: String::new(),
                after: String::new(),
                suffix: ".".into(),
                dates: false,
            },
            examples: vec![ChoiceExample {
                input: "Q: is".into(),
                options: vec!["red".into(), "blue".into()],
                correct,
            }],
        }
    }

    #[test]
    fn each_mode_picks_what_its_decoding_favours() {
        let (model, tok) = table();
        let t = task(1);
        let direct = t
            .evaluate(&model, &tok, 0, &EvalMode::Direct { max_tokens: 4 })
            .unwrap();
        // Greedy: " red ball." then "\n" ends it.
        assert_eq!(direct.output, " red ball.");
        assert_eq!(direct.predicted, Some(0));
        assert!(!direct.correct);
        let rank = t.evaluate(&model, &tok, 0, &EvalMode::Rank).unwrap();
        assert_eq!((rank.predicted, rank.output.as_str()), (Some(0), "red"));
        let argmax = t
            .evaluate(&model, &tok, 0, &EvalMode::Sketch(SketchDecoder::Argmax))
            .unwrap();
        assert_eq!(argmax.predicted, Some(0));
        let beam_var = t
            .evaluate(
                &model,
                &tok,
                0,
                &EvalMode::Sketch(SketchDecoder::BeamVar { n: 2, alpha: 0.7 }),
            )
            .unwrap();
        assert_eq!(beam_var.output, " blue");
        assert_eq!(beam_var.predicted, Some(1));
        assert!(beam_var.correct);
    }

    #[test]
    fn bigbench_json_is_read_and_checked() {
        let json = r#"{"examples": [{"input": "x?", "target_scores": {"a ": 0, "b": 1}}]}"#;
        let f = ChoiceTask::format_for("date_understanding").unwrap();
        let t = ChoiceTask::from_bigbench_json("t", f.clone(), json).unwrap();
        assert_eq!(t.examples[0].options, vec!["a", "b"]);
        assert_eq!(t.examples[0].correct, 1);
        assert_eq!(t.lead(&t.examples[0]), "Q: x?\nA: The date is");
        for (bad, why) in [
            (r#"{"examples": []}"#, "no examples"),
            (
                r#"{"examples": [{"input": "x", "target_scores": {"a": 1, "b": 1}}]}"#,
                "exactly one",
            ),
            (
                r#"{"examples": [{"input": "x", "target_scores": {"a": "1"}}]}"#,
                "not a number",
            ),
            ("[1]", "not a BIG-bench task"),
        ] {
            let e = ChoiceTask::from_bigbench_json("t", f.clone(), bad).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn the_first_named_option_is_the_answer() {
        let opts: Vec<String> = ["blue ball.", "red ball.", "05/01/2021"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            first_option_named(" red ball, not the blue ball", &opts),
            Some(1)
        );
        assert_eq!(first_option_named(" 05/01/2021.", &opts), Some(2));
        assert_eq!(first_option_named(" 105/01/2021", &opts), None);
        assert_eq!(first_option_named(" a green ball", &opts), None);
        assert_eq!(first_option_named("", &opts), None);
    }

    #[test]
    fn wilson_interval_matches_known_values() {
        // p = 0.5, n = 100: 0.4038 – 0.5962.
        let (lo, hi) = wilson_ci95(50, 100);
        assert!(
            (lo - 0.4038).abs() < 1e-4 && (hi - 0.5962).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_ci95(0, 10);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.2775).abs() < 1e-4, "{hi}");
        assert_eq!(wilson_ci95(0, 0), (0.0, 1.0));
        assert_eq!(wilson_ci95(3, 3).1, 1.0);
    }

    #[test]
    fn dates_in_other_formats_become_mm_dd_yyyy() {
        assert_eq!(normalise_dates(" 2021-04-30."), " 04/30/2021.");
        assert_eq!(
            normalise_dates("on 4/3/2021 or 12/25/2020"),
            "on 04/03/2021 or 12/25/2020"
        );
        // Not dates: longer digit runs, a two-digit year.
        assert_eq!(normalise_dates("12021-04-301"), "12021-04-301");
        assert_eq!(normalise_dates("4/3/21"), "4/3/21");
        assert_eq!(normalise_dates("é 2021-04-30"), "é 04/30/2021");
    }
}
