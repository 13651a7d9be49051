//! `latentlab lm generate|score`: the bundled language model (SmolLM2-135M-Instruct, GGUF)
//! or any Llama GGUF file given with `--model`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use latentlab::core::lm::{
    chat_user_prompt, generate, score_continuation, Decoder, GenerateOptions, SamplingOptions,
    Tokenize,
};
use latentlab::core::sketch::{
    run_sketch, wilson_ci95, ChoiceTask, EvalMode, Sketch, SketchDecoder,
};
use latentlab::encode::BpeTokenizer;
use latentlab::lm::{Activations, GgufModel, Llama};
use serde_json::json;

use crate::common::{emit, models_dir, progress, Models};

#[derive(Subcommand)]
pub enum LmCommand {
    /// Continue a prompt: one JSON line with the text, its tokens and the speed (with
    /// --stream, a line per token before it).
    Generate(GenerateArgs),
    /// The log-probability of a text after a context.
    Score(ScoreArgs),
}

#[derive(Args)]
pub struct ModelArgs {
    /// A GGUF file (default: the manifest's first language model, checked by sha256).
    #[arg(long, value_name = "FILE.gguf")]
    pub model: Option<PathBuf>,
    /// Folder of manifest.json (default: $LATENTLAB_MODELS, ./models or the repository's).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// How products with the quantised weights treat their inputs: `f32` keeps them exact
    /// (the answers compared with `transformers`), `int8` rounds them to 8 bits per block as
    /// llama.cpp does (faster; logits move by a few hundredths).
    #[arg(long, value_enum, default_value = "f32")]
    pub activations: ActivationsName,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivationsName {
    F32,
    Int8,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecoderName {
    Argmax,
    Sample,
    Beam,
}

#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt as a user turn of the model's chat template.
    #[arg(long)]
    pub chat: bool,
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    #[arg(long, value_enum, default_value = "argmax")]
    pub decoder: DecoderName,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Beam width of --decoder beam.
    #[arg(long, default_value_t = 4)]
    pub beams: usize,
    /// End when the text contains this (repeatable); the text is cut before it.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Print a JSON line per token as it is generated.
    #[arg(long)]
    pub stream: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args)]
pub struct ScoreArgs {
    #[arg(long)]
    pub text: String,
    #[arg(long, default_value = "")]
    pub context: String,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub struct Loaded {
    pub llama: Llama,
    pub tokenizer: BpeTokenizer,
    pub name: String,
}

/// Opens the model `args` names: a file given by path is taken as it is, the bundled one
/// is checked against the manifest's sha256.
pub fn load(args: &ModelArgs) -> Result<Loaded> {
    if let Some(n) = args.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        // Only fails if a pool already exists, which a fresh process never has.
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .ok();
    }
    let (path, sha, name) = match &args.model {
        Some(path) => (path.clone(), None, None),
        None => {
            let models = Models::open(args.models.as_deref())?;
            let entry = models.manifest.language_models.first().with_context(|| {
                format!(
                    "{} lists no language model",
                    models_dir(args.models.as_deref())
                        .join("manifest.json")
                        .display()
                )
            })?;
            (
                models.dir.join(&entry.file),
                Some(entry.sha256.clone()),
                Some(entry.name.clone()),
            )
        }
    };
    let bytes = read_model(&path)?;
    let mut model = GgufModel::from_bytes(bytes, sha.as_deref())
        .with_context(|| format!("in {}", path.display()))?;
    model.llama.set_activations(match args.activations {
        ActivationsName::F32 => Activations::F32,
        ActivationsName::Int8 => Activations::Int8,
    });
    let tokenizer = BpeTokenizer::from_spec(&model.vocabulary)
        .with_context(|| format!("the tokenizer of {}", path.display()))?;
    let name = name
        .or(model.name.clone())
        .unwrap_or_else(|| path.display().to_string());
    Ok(Loaded {
        llama: model.llama,
        tokenizer,
        name,
    })
}

fn read_model(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "cannot read {} (the bundled language model is fetched by scripts/build, or python3 models/build_models.py)",
            path.display()
        )
    })
}

pub fn run(command: LmCommand) -> Result<bool> {
    match command {
        LmCommand::Generate(args) => generate_cmd(args),
        LmCommand::Score(args) => score_cmd(args),
    }
}

fn generate_cmd(args: GenerateArgs) -> Result<bool> {
    let decoder = match args.decoder {
        DecoderName::Argmax => Decoder::Argmax,
        DecoderName::Sample => Decoder::Sample(SamplingOptions {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        }),
        DecoderName::Beam => Decoder::Beam { width: args.beams },
    };
    let options = GenerateOptions {
        decoder,
        max_tokens: args.max_tokens,
        stop: args.stop.clone(),
        stop_at_eos: true,
    };
    let loaded = load(&args.model)?;
    let prompt = if args.chat {
        chat_user_prompt(&args.prompt)
    } else {
        args.prompt.clone()
    };
    let ids = loaded.tokenizer.encode(&prompt)?;
    let start = Instant::now();
    let mut first_token: Option<f64> = None;
    let mut stream_error = None;
    let generation = generate(&loaded.llama, &loaded.tokenizer, &ids, &options, |event| {
        first_token.get_or_insert_with(|| start.elapsed().as_secs_f64());
        if args.stream {
            let line = json!({"token": event.token, "text": event.text, "logprob": event.logprob});
            if let Err(e) = emit(&line) {
                stream_error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = stream_error {
        return Err(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    let first = first_token.unwrap_or(seconds);
    let decode_tokens = generation.tokens.len().saturating_sub(1);
    emit(&json!({
        "model": loaded.name,
        "text": generation.text,
        "tokens": generation.tokens,
        "logprobs": generation.logprobs,
        "stop": generation.stop.as_str(),
        "prompt_tokens": generation.prompt_tokens,
        "seconds": seconds,
        "seconds_to_first_token": first,
        // Tokens after the first over the time after it: the generation speed, without
        // prompt processing.
        "tokens_per_second": if decode_tokens > 0 && seconds > first {
            decode_tokens as f64 / (seconds - first)
        } else {
            0.0
        },
    }))?;
    Ok(true)
}

fn score_cmd(args: ScoreArgs) -> Result<bool> {
    let loaded = load(&args.model)?;
    let start = Instant::now();
    let score = score_continuation(&loaded.llama, &loaded.tokenizer, &args.context, &args.text)?;
    emit(&json!({
        "model": loaded.name,
        "logprob": score.logprob,
        "mean_logprob": score.mean(),
        "tokens": score.tokens,
        "per_token": score.per_token,
        "seconds": start.elapsed().as_secs_f64(),
    }))?;
    Ok(true)
}

#[derive(Subcommand)]
pub enum SketchCommand {
    /// Fill a sketch template (text with [HOLES] and a `where` clause of constraints).
    Run(SketchRunArgs),
    /// Accuracy on a BIG-bench multiple-choice task: asking directly, a sketch with a
    /// choice hole, or ranking the options by log-likelihood.
    Eval(SketchEvalArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalTaskName {
    #[value(name = "date_understanding")]
    DateUnderstanding,
    #[value(name = "tracking_shuffled_objects_three")]
    TrackingShuffledObjectsThree,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalModeName {
    Direct,
    Sketch,
    Rank,
}

#[derive(Args)]
pub struct SketchEvalArgs {
    #[arg(long, value_enum)]
    pub task: EvalTaskName,
    #[arg(long, value_enum, default_value = "sketch")]
    pub mode: EvalModeName,
    /// The sketch's decoder (--mode sketch only).
    #[arg(long, value_enum, default_value = "argmax")]
    pub decoder: SketchDecoderName,
    /// Beam width (beam, beam_var) or hypotheses kept between holes (var).
    #[arg(long, default_value_t = 2)]
    pub beams: usize,
    #[arg(long, default_value_t = 0.7)]
    pub alpha: f64,
    /// Evaluate only the task's first N examples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Tokens --mode direct may generate.
    #[arg(long, default_value_t = 24)]
    pub max_tokens: usize,
    /// Also list every example's prediction under "examples".
    #[arg(long)]
    pub per_example: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The tasks ship with the site (www/public/bigbench/, BIG-bench, Apache-2.0) and are built
/// into the CLI so that `sketch eval` needs no data folder.
fn bigbench_json(task: EvalTaskName) -> (&'static str, &'static str) {
    match task {
        EvalTaskName::DateUnderstanding => (
            "date_understanding",
            include_str!("../../../www/public/bigbench/date_understanding.json"),
        ),
        EvalTaskName::TrackingShuffledObjectsThree => (
            "tracking_shuffled_objects_three",
            include_str!("../../../www/public/bigbench/tracking_shuffled_objects_three.json"),
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SketchDecoderName {
    Argmax,
    Sample,
    Beam,
    Var,
    #[value(name = "beam_var", alias = "beam-var")]
    BeamVar,
}

#[derive(Args)]
pub struct SketchRunArgs {
    /// The template file; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    pub template: String,
    #[arg(long, value_enum, default_value = "argmax")]
    pub decoder: SketchDecoderName,
    /// Beam width (beam, beam_var) or hypotheses kept between holes (var).
    #[arg(long, default_value_t = 2)]
    pub beams: usize,
    /// var's beam width inside a hole (default: --beams).
    #[arg(long)]
    pub var_width: Option<usize>,
    /// beam_var's length normalisation exponent.
    #[arg(long, default_value_t = 0.7)]
    pub alpha: f64,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn sketch_decoder(
    name: SketchDecoderName,
    beams: usize,
    var_width: Option<usize>,
    alpha: f64,
    temperature: f64,
    seed: u64,
) -> SketchDecoder {
    match name {
        SketchDecoderName::Argmax => SketchDecoder::Argmax,
        SketchDecoderName::Sample => SketchDecoder::Sample { temperature, seed },
        SketchDecoderName::Beam => SketchDecoder::Beam { n: beams },
        SketchDecoderName::Var => SketchDecoder::Var {
            b: var_width.unwrap_or(beams),
            n: beams,
        },
        SketchDecoderName::BeamVar => SketchDecoder::BeamVar { n: beams, alpha },
    }
}

pub fn run_sketch_cmd(command: SketchCommand) -> Result<bool> {
    let args = match command {
        SketchCommand::Run(args) => args,
        SketchCommand::Eval(args) => return run_sketch_eval(args),
    };
    let source = if args.template == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read the template from standard input")?;
        s
    } else {
        std::fs::read_to_string(&args.template)
            .with_context(|| format!("cannot read {}", args.template))?
    };
    let sketch = Sketch::parse(&source).with_context(|| format!("in {}", args.template))?;
    let decoder = sketch_decoder(
        args.decoder,
        args.beams,
        args.var_width,
        args.alpha,
        args.temperature,
        args.seed,
    );
    let loaded = load(&args.model)?;
    let start = Instant::now();
    let r = run_sketch(&loaded.llama, &loaded.tokenizer, &sketch, &decoder)?;
    emit(&r.report(&loaded.name, start.elapsed().as_secs_f64()))?;
    Ok(true)
}

fn run_sketch_eval(args: SketchEvalArgs) -> Result<bool> {
    let (name, json) = bigbench_json(args.task);
    let format = ChoiceTask::format_for(name).expect("every task name has a format");
    let task = ChoiceTask::from_bigbench_json(name, format, json)?;
    let n = match args.limit {
        Some(0) => bail!("--limit 0: evaluate at least one example"),
        Some(l) => l.min(task.examples.len()),
        None => task.examples.len(),
    };
    let (mode, decoder_name) = match args.mode {
        EvalModeName::Direct => {
            if args.max_tokens == 0 {
                bail!("--max-tokens 0: a direct answer needs at least one token");
            }
            (
                EvalMode::Direct {
                    max_tokens: args.max_tokens,
                },
                "argmax",
            )
        }
        EvalModeName::Rank => (EvalMode::Rank, "none"),
        EvalModeName::Sketch => {
            let d = sketch_decoder(args.decoder, args.beams, None, args.alpha, 1.0, 0);
            let name = d.name();
            (EvalMode::Sketch(d), name)
        }
    };
    let loaded = load(&args.model)?;
    let start = Instant::now();
    let bar = progress(n, "examples");
    let (mut correct, mut named_no_option, mut tokens) = (0usize, 0usize, 0usize);
    let mut examples = Vec::new();
    for i in 0..n {
        let outcome = task.evaluate(&loaded.llama, &loaded.tokenizer, i, &mode)?;
        correct += outcome.correct as usize;
        named_no_option += outcome.predicted.is_none() as usize;
        tokens += outcome.tokens;
        if args.per_example {
            examples.push(json!({
                "index": i,
                "predicted": outcome.predicted.map(|p| task.examples[i].options[p].clone()),
                "target": task.examples[i].options[task.examples[i].correct],
                "correct": outcome.correct,
                "output": outcome.output,
            }));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let (lo, hi) = wilson_ci95(correct, n);
    let chance: f64 = task.examples[..n]
        .iter()
        .map(|e| 1.0 / e.options.len() as f64)
        .sum::<f64>()
        / n as f64;
    let mut out = json!({
        "model": loaded.name,
        "task": name,
        "mode": mode.name(),
        "decoder": decoder_name,
        "n": n,
        "correct": correct,
        "accuracy": correct as f64 / n as f64,
        "ci95": [lo, hi],
        "chance": chance,
        "named_no_option": named_no_option,
        "tokens": tokens,
        "seconds": seconds,
    });
    if args.per_example {
        out["examples"] = json!(examples);
    }
    emit(&out)?;
    Ok(true)
}
