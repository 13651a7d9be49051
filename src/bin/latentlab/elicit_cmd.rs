//! `latentlab elicit pairs|score`: information elicitation without ground truth on two
//! dictionaries' definitions of the same words (WordNet 3.0 and GCIDE), scored by the
//! bundled language model.
//!
//! `pairs` runs the committed builder `scripts/elicit_pairs.py` (Python 3 standard library)
//! on the installed Debian dictionaries: one implementation of the cleaning, shared by the
//! test scripts and the CLI; `score` is all Rust.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use latentlab::core::elicit::{evaluate, parse_pairs, Manipulation, Mechanism, Options};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::{emit, progress};
use crate::lm_cmd::{load, ModelArgs};

#[derive(Subcommand)]
pub enum ElicitCommand {
    /// Pair WordNet's and GCIDE's first noun definitions of each word both define (JSON lines
    /// {word, report, peer}), from the installed dict-wn and dict-gcide.
    Pairs(PairsArgs),
    /// Score honest and manipulated reports against their peers; one JSON object with, per
    /// manipulation, `auc`, `cohens_d`, `ci95` and `n`.
    Score(ScoreArgs),
}

#[derive(Args)]
pub struct PairsArgs {
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: PathBuf,
    /// Folder of the dictd files (wn.index, wn.dict.dz, gcide.index, gcide.dict.dz).
    #[arg(long, default_value = "/usr/share/dictd")]
    pub dict_dir: PathBuf,
    /// The builder script (default: the repository's scripts/elicit_pairs.py).
    #[arg(long)]
    pub script: Option<PathBuf>,
}

#[derive(Args)]
pub struct ScoreArgs {
    #[arg(long, value_name = "FILE.jsonl")]
    pub pairs: PathBuf,
    /// pmi, gppm or tvd-mi.
    #[arg(long, default_value = "pmi")]
    pub mechanism: String,
    /// Score a seeded sample of this many pairs (default: all).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seeds the sample, the manipulations and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// TVD-MI's critic threshold on the PMI (nats per token).
    #[arg(long, default_value_t = 0.0)]
    pub threshold: f64,
    /// Bootstrap resamples for the intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Also print every item's scores.
    #[arg(long)]
    pub per_item: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(command: ElicitCommand) -> Result<bool> {
    match command {
        ElicitCommand::Pairs(args) => pairs_cmd(args),
        ElicitCommand::Score(args) => score_cmd(args),
    }
}

fn pairs_cmd(args: PairsArgs) -> Result<bool> {
    let script = args.script.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/elicit_pairs.py")
    });
    if !script.is_file() {
        bail!("the pairs builder {} is missing", script.display());
    }
    let status = Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(&args.out)
        .arg("--dict-dir")
        .arg(&args.dict_dir)
        .status()
        .context("cannot run python3 (the pairs builder needs it)")?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(true)
}

fn score_cmd(args: ScoreArgs) -> Result<bool> {
    let mechanism: Mechanism = args.mechanism.parse()?;
    if args.n.is_some_and(|n| n < 2) {
        bail!("--n must be at least 2");
    }
    let text = std::fs::read_to_string(&args.pairs)
        .with_context(|| format!("cannot read {}", args.pairs.display()))?;
    let mut items = parse_pairs(&text).with_context(|| format!("in {}", args.pairs.display()))?;
    let total = items.len();
    if let Some(n) = args.n.filter(|&n| n < items.len()) {
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
        let mut picked: Vec<usize> = (0..items.len()).collect();
        picked.shuffle(&mut rng);
        picked.truncate(n);
        picked.sort_unstable();
        items = picked.into_iter().map(|i| items[i].clone()).collect();
    }
    let opts = Options {
        mechanism,
        threshold: args.threshold,
        seed: args.seed,
        bootstrap: args.bootstrap,
        ..Options::default()
    };
    let loaded = load(&args.model)?;
    let start = Instant::now();
    let bar = progress(items.len(), "words");
    let ev = evaluate(
        &loaded.llama,
        &loaded.tokenizer,
        &items,
        &Manipulation::ALL,
        &opts,
        |_| {
            bar.inc(1);
            true
        },
    )
    .with_context(|| format!("scoring {}", args.pairs.display()))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let mut manipulations = serde_json::Map::new();
    for m in &ev.manipulations {
        let c = &m.comparison;
        let mut entry = json!({
            "auc": c.auc,
            "cohens_d": c.cohens_d,
            "ci95": c.ci95,
            "n": c.n,
            "mean_score": m.mean,
        });
        if args.per_item {
            entry["scores"] = json!(m.scores);
        }
        manipulations.insert(m.manipulation.name().to_string(), entry);
    }
    let mut out = json!({
        "model": loaded.name,
        "mechanism": ev.mechanism,
        "template": opts.template,
        "pairs": total,
        "n": ev.n,
        "seed": args.seed,
        "honest_mean_score": ev.honest_mean,
        "manipulations": manipulations,
        "seconds": seconds,
    });
    if args.per_item {
        out["words"] = json!(items.iter().map(|i| &i.word).collect::<Vec<_>>());
        out["honest_scores"] = json!(ev.honest);
    }
    emit(&out)?;
    Ok(true)
}
