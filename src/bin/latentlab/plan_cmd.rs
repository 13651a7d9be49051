//! `latentlab plan …`: plan graphs (PLaG / AsyncHow).

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use latentlab::core::plan::{
    self, GraphEncoding, Plan, PlanFile, PromptOptions, ORDERING_TEMPLATES,
};
use serde::Serialize;

use crate::common::{read_input, Input};

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Optimal time with unlimited parallelism: one JSON line per plan.
    Optimal {
        #[command(flatten)]
        input: Input,
        /// Also print every step's earliest/latest start and finish and slack.
        #[arg(long)]
        schedule: bool,
    },
    /// The PLaG prompt for each plan.
    Prompt {
        #[command(flatten)]
        input: Input,
        /// How the graph is given to the model.
        #[arg(long, value_enum, default_value_t = EncodingArg::None)]
        encoding: EncodingArg,
        /// Ask the model to build a graph first (BaG); only with --encoding none.
        #[arg(long)]
        bag: bool,
        /// Ask the model to think step by step.
        #[arg(long)]
        cot: bool,
        /// Which of the paper's ten phrasings of a constraint (0-9).
        #[arg(long, default_value_t = plan::DEFAULT_ORDERING_TEMPLATE)]
        template: usize,
        /// Print the prompt text itself instead of JSON lines.
        #[arg(long)]
        raw: bool,
    },
    /// Judge a model's answer against each plan's optimal time.
    Score {
        #[command(flatten)]
        input: Input,
        /// The model's answer; the time must be in double quotes.
        #[arg(long)]
        answer: String,
    },
    /// Convert plans between latentlab plan JSON and AsyncHow records.
    Export {
        #[command(flatten)]
        input: Input,
        #[arg(long, value_enum)]
        to: ExportFormat,
    },
    /// Read a duration phrase ("2 months") as [low, high] seconds.
    Duration { phrase: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EncodingArg {
    None,
    AdjacencyList,
    AdjacencyMatrix,
    Csr,
    EdgeList,
}

impl From<EncodingArg> for GraphEncoding {
    fn from(e: EncodingArg) -> GraphEncoding {
        match e {
            EncodingArg::None => GraphEncoding::None,
            EncodingArg::AdjacencyList => GraphEncoding::AdjacencyList,
            EncodingArg::AdjacencyMatrix => GraphEncoding::AdjacencyMatrix,
            EncodingArg::Csr => GraphEncoding::Csr,
            EncodingArg::EdgeList => GraphEncoding::EdgeList,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Asynchow,
    Latentlab,
}

/// Runs `each` on every plan of the input, printing its JSON line; bad records are
/// reported on stderr and make the exit non-zero, but do not stop the others.
fn for_each_plan<T: Serialize>(
    input: &Input,
    mut each: impl FnMut(&Plan) -> Result<T>,
) -> Result<bool> {
    let (source, text) = read_input(input)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_ok = true;
    for parsed in plan::parse_plans(&text) {
        match parsed.map_err(anyhow::Error::from).and_then(|p| each(&p)) {
            Ok(value) => writeln!(out, "{}", serde_json::to_string(&value)?)?,
            Err(e) => {
                all_ok = false;
                eprintln!("latentlab: {source}: {e:#}");
            }
        }
    }
    Ok(all_ok)
}

#[derive(Serialize)]
struct OptimalLine {
    title: String,
    optimal_seconds: plan::Seconds,
    sequential_seconds: plan::Seconds,
    speedup: [Option<f64>; 2],
    critical_path: Vec<String>,
    optimal_text: String,
    n_steps: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<plan::StepTiming>>,
}

#[derive(Serialize)]
struct PromptLine {
    title: String,
    encoding: &'static str,
    bag: bool,
    chain_of_thought: bool,
    ordering_template: usize,
    prompt: String,
}

#[derive(Serialize)]
struct ScoreLine {
    title: String,
    #[serde(flatten)]
    score: plan::Score,
}

pub fn run(command: PlanCommand) -> Result<bool> {
    match command {
        PlanCommand::Optimal { input, schedule } => for_each_plan(&input, |p| {
            let a = plan::analyze(p);
            Ok(OptimalLine {
                title: a.title,
                optimal_seconds: a.optimal_seconds,
                sequential_seconds: a.sequential_seconds,
                speedup: a.speedup,
                critical_path: a.critical_path,
                optimal_text: a.optimal_text,
                n_steps: p.steps().len(),
                steps: schedule.then_some(a.steps),
            })
        }),
        PlanCommand::Prompt {
            input,
            encoding,
            bag,
            cot,
            template,
            raw,
        } => {
            let options = PromptOptions {
                encoding: encoding.into(),
                bag,
                chain_of_thought: cot,
                ordering_template: template,
            };
            // Refuse bad options once, before reading any plan.
            if template >= ORDERING_TEMPLATES.len() {
                anyhow::bail!(plan::PromptError::UnknownTemplate(template));
            }
            if bag && options.encoding != GraphEncoding::None {
                anyhow::bail!(plan::PromptError::BagWithGraph(options.encoding.name()));
            }
            if raw {
                let (source, text) = read_input(&input)?;
                let mut all_ok = true;
                for (k, parsed) in plan::parse_plans(&text).into_iter().enumerate() {
                    match parsed
                        .map_err(anyhow::Error::from)
                        .and_then(|p| Ok(plan::prompt(&p, options)?))
                    {
                        Ok(prompt) => {
                            if k > 0 {
                                println!();
                            }
                            println!("{prompt}");
                        }
                        Err(e) => {
                            all_ok = false;
                            eprintln!("latentlab: {source}: {e:#}");
                        }
                    }
                }
                return Ok(all_ok);
            }
            for_each_plan(&input, |p| {
                Ok(PromptLine {
                    title: p.title().to_string(),
                    encoding: options.encoding.name(),
                    bag,
                    chain_of_thought: cot,
                    ordering_template: template,
                    prompt: plan::prompt(p, options)?,
                })
            })
        }
        PlanCommand::Score { input, answer } => for_each_plan(&input, |p| {
            Ok(ScoreLine {
                title: p.title().to_string(),
                score: plan::score_answer(p, &answer),
            })
        }),
        PlanCommand::Export { input, to } => for_each_plan(&input, |p| {
            Ok(match to {
                ExportFormat::Asynchow => plan::to_asynchow(p),
                ExportFormat::Latentlab => serde_json::to_value(PlanFile::from_plan(p))?,
            })
        }),
        PlanCommand::Duration { phrase } => {
            let d = plan::parse_duration(&phrase)
                .with_context(|| format!("cannot read the duration {phrase:?}"))?;
            println!(
                "{}",
                serde_json::json!({"phrase": phrase, "seconds": d.to_array(), "text": plan::humanize(d)})
            );
            Ok(true)
        }
    }
}
