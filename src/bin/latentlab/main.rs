//! The `latentlab` command-line tool: batch work on files, JSON on stdout, errors on
//! stderr with a non-zero exit, progress bars on long work. Command names and JSON keys
//! are contracts tested from outside (tests/cli.rs, tests/cli_encode.rs, tests/cli_parquet.rs, tests/cli_ot.rs,
//! tests/cli_align.rs, tests/cli_steer.rs, tests/cli_collapse.rs, tests/cli_tiny.rs).

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod align_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod collapse_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod common;
#[cfg(not(target_arch = "wasm32"))]
mod elicit_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod embed_table;
#[cfg(not(target_arch = "wasm32"))]
mod encode_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod index_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod lm_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod npy;
#[cfg(not(target_arch = "wasm32"))]
mod ot_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod parquet;
#[cfg(not(target_arch = "wasm32"))]
mod plan_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod repo_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod steer_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod tiny_cmd;
#[cfg(not(target_arch = "wasm32"))]
mod xrm_cmd;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::{Parser, Subcommand};

    #[derive(Parser)]
    #[command(
        name = "latentlab",
        version,
        about = "ICML 2024 ideas on your own device"
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Plan graphs (PLaG / AsyncHow): optimal time, prompts, answer scoring.
        #[command(subcommand)]
        Plan(plan_cmd::PlanCommand),
        /// Embed texts or images with an ONNX encoder.
        #[command(subcommand)]
        Embed(encode_cmd::EmbedCommand),
        /// Search a gallery of images or a corpus of sentences.
        Search(encode_cmd::SearchArgs),
        /// Embedding tables (Parquet) to index files for the browser, and searching them.
        #[command(subcommand)]
        Index(index_cmd::IndexCommand),
        /// Evaluate an encoder.
        #[command(subcommand)]
        Eval(encode_cmd::EvalCommand),
        /// Optimal transport (M3G): Sinkhorn, multi-marginal Sinkhorn and the M3G loss.
        #[command(subcommand)]
        Ot(ot_cmd::OtCommand),
        /// Representation alignment (Platonic Representation Hypothesis): mutual k-NN,
        /// CKA, CKNNA, SVCCA and more between the paired rows of two feature matrices.
        Align(align_cmd::AlignArgs),
        /// Affine steering (Representation Surgery): fit, apply and evaluate mean or
        /// mean+covariance matching that erases a binary concept from embeddings.
        #[command(subcommand)]
        Steer(steer_cmd::SteerCommand),
        /// Model collapse (Gerstgrasser et al.): replace vs accumulate in linear regression,
        /// simulated beside the closed forms.
        Collapse(collapse_cmd::CollapseArgs),
        /// tinyBenchmarks (Maia Polo et al.): response matrices of retrieval configurations,
        /// IRT-based tiny benchmarks, accuracy estimates from a few anchor items.
        #[command(subcommand)]
        Tiny(tiny_cmd::TinyCommand),
        /// XRM (Pezeshki et al.): discover environments without group labels on a
        /// Waterbirds-like set of real pictures, then GroupDRO on them.
        #[command(subcommand)]
        Xrm(xrm_cmd::XrmCommand),
        /// A small language model (SmolLM2-135M-Instruct, GGUF): generate and score text.
        #[command(subcommand)]
        Lm(lm_cmd::LmCommand),
        /// Prompt Sketching (LMQL's constraints and sketch-aware decoders) on the language model.
        #[command(subcommand)]
        Sketch(lm_cmd::SketchCommand),
        /// Repoformer (Wu et al.): line completion on real repositories with cross-file
        /// retrieval only when it helps — tasks, policies and their threshold sweep.
        #[command(subcommand)]
        Repo(repo_cmd::RepoCommand),
        /// Information elicitation without ground truth: two dictionaries' definitions of
        /// the same words scored by how much each tells the model about the other.
        #[command(subcommand)]
        Elicit(elicit_cmd::ElicitCommand),
    }

    let result = match Cli::parse().command {
        Command::Plan(c) => plan_cmd::run(c),
        Command::Embed(c) => encode_cmd::embed(c),
        Command::Search(a) => encode_cmd::search(a),
        Command::Index(c) => index_cmd::run(c),
        Command::Eval(c) => encode_cmd::eval(c),
        Command::Ot(c) => ot_cmd::run(c),
        Command::Align(a) => align_cmd::run(a),
        Command::Steer(c) => steer_cmd::run(c),
        Command::Collapse(a) => collapse_cmd::run(a),
        Command::Tiny(c) => tiny_cmd::run(c),
        Command::Xrm(c) => xrm_cmd::run(c),
        Command::Lm(c) => lm_cmd::run(c),
        Command::Sketch(c) => lm_cmd::run_sketch_cmd(c),
        Command::Repo(c) => repo_cmd::run(c),
        Command::Elicit(c) => elicit_cmd::run(c),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("latentlab: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
