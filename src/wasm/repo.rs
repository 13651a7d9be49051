//! Repoformer's selective retrieval for JavaScript (see `latentlab repo`): one task's
//! completion without and with the retrieved cross-file context on the loaded language
//! model (`LanguageModel.repoRun`), RepoEval's Jaccard retrieval alone (`repoRetrieve`), the
//! reference's metrics (`repoScore`), and the policies over a set of runs (`repoEvaluate`,
//! `repoSweep`). Runs are the CLI's `--runs` lines as objects, so a page's runs and a
//! terminal's mean the same.

use serde::Deserialize;
use sha2::Digest;
use wasm_bindgen::prelude::*;

use super::{js_error, to_js, LanguageModel, Options};
use crate::core::repo::{
    self, evaluate, score_completion, sweep, CompletionOptions, Needs, Policy, Signal, SourceFile,
    Task, TaskRun,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &str = r#"
/** One file of a repository: its path relative to the repository and its text. */
export interface RepoFile { path: string; text: string; }
/** A line to complete (a line of `latentlab repo tasks`' output). `sha256`, when given, must
 * be the digest of the file's UTF-8 bytes. */
export interface RepoTask {
  task_id: string; repository: string; path: string;
  /** 1-based line number of the target line. */
  line: number;
  target: string; sha256?: string;
}
export interface RepoCompletionOptions {
  /** Prompt plus generation, in tokens (default 1024; the reference 2048). */
  maxSequence?: number;
  /** The cross-file context's share of the prompt (default 512). */
  contextTokens?: number;
  /** How many first generated tokens the confidence averages over (default 4). */
  confidenceTokens?: number;
}
export interface RetrievedChunk { path: string; text: string; score: number; }
export interface RepoScores { exact_match: boolean; edit_similarity: number; edit_similarity_repoeval: number; }
export interface RepoCompletion {
  text: string; prompt_tokens: number; logprobs: number[]; entropies: number[];
  prompt_seconds: number; token_seconds: number[]; hidden?: number[];
}
export interface RepoOutcome { completion: RepoCompletion; scores: RepoScores; }
/** One task's run, as a line of the CLI's `--runs` file. */
export interface RepoTaskRun {
  task_id: string; repository: string;
  without: RepoOutcome | null; with: RepoOutcome | null;
  retrieval_seconds: number | null; retrieved: RetrievedChunk[];
}
export interface RepoRunResult extends RepoTaskRun {
  /** The cross-file context as it went into the prompt (before its token budget cut it). */
  cross_file_context: string;
  /** Mean log-probability and entropy of the first `confidenceTokens` tokens without retrieval. */
  confidence: { logprob: number; entropy: number };
  retrieval_helps: boolean;
}
export interface RepoPolicyOptions {
  /** Default "confidence". "probe" needs tasks from at least two repositories. */
  policy?: "never" | "always" | "oracle" | "confidence" | "probe";
  /** The confidence policy's signal (default "logprob"). */
  signal?: "logprob" | "entropy";
  /** Default: log 0.5 (logprob), log 2 (entropy), 0.5 (probe). */
  threshold?: number;
  confidenceTokens?: number;
  /** Seeds the bootstrap intervals (default 0). */
  seed?: number;
}
export interface RepoSweepOptions {
  /** "confidence" (default) or "probe". */
  policy?: "confidence" | "probe";
  signal?: "logprob" | "entropy";
  /** Points from never to always retrieving (2–1001, default 21). */
  steps?: number;
  confidenceTokens?: number;
  seed?: number;
}
export interface RepoPolicyResult {
  policy: string; signal?: "logprob" | "entropy"; threshold?: number; n: number;
  exact_match: number; edit_similarity: number; edit_similarity_repoeval: number;
  retrieval_rate: number; seconds_per_task: number;
  ci95: { exact_match: [number, number]; edit_similarity: [number, number];
          retrieval_rate: [number, number]; seconds_per_task: [number, number] };
  vs_always?: { exact_match: number; exact_match_ci95: [number, number];
                edit_similarity: number; edit_similarity_ci95: [number, number];
                seconds_per_task: number; seconds_per_task_ci95: [number, number] };
}
"#;

/// A task as JavaScript gives it: the sha256 may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsTask {
    task_id: String,
    repository: String,
    path: String,
    line: usize,
    target: String,
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsFile {
    path: String,
    text: String,
}

/// serde-wasm-bindgen's message without the "Error: " its JS error's text starts with.
fn plain(e: serde_wasm_bindgen::Error) -> String {
    let text = e.to_string();
    text.strip_prefix("Error: ").unwrap_or(&text).to_string()
}

fn read_files(files: JsValue) -> Result<Vec<SourceFile>, JsError> {
    if !js_sys::Array::is_array(&files) {
        return Err(JsError::new(
            "files must be an array of {path, text} objects (the repository's files)",
        ));
    }
    let files: Vec<JsFile> = serde_wasm_bindgen::from_value(files).map_err(|e| {
        JsError::new(&format!(
            "files: {} (expected [{{path, text}}, …])",
            plain(e)
        ))
    })?;
    if files.is_empty() {
        return Err(JsError::new(
            "files is empty: a repository needs at least the task's own file",
        ));
    }
    Ok(files
        .into_iter()
        .map(|f| SourceFile {
            path: f.path,
            text: f.text,
        })
        .collect())
}

fn completion_options(o: &Options) -> Result<CompletionOptions, JsError> {
    let d = CompletionOptions::default();
    let size = |key: &str, default: usize| -> Result<usize, JsError> {
        match o.get::<f64>(key)? {
            None => Ok(default),
            Some(v) => super::size_arg(v, &format!("options.{key}"), 1),
        }
    };
    let options = CompletionOptions {
        max_sequence: size("maxSequence", d.max_sequence)?,
        context_tokens: size("contextTokens", d.context_tokens)?,
        max_new_tokens: d.max_new_tokens,
        confidence_tokens: size("confidenceTokens", d.confidence_tokens)?,
    };
    options.check().map_err(js_error)?;
    Ok(options)
}

fn read_runs(runs: JsValue) -> Result<Vec<TaskRun>, JsError> {
    if !js_sys::Array::is_array(&runs) {
        return Err(JsError::new(
            "runs must be an array of task runs (LanguageModel.repoRun results or the CLI's --runs lines)",
        ));
    }
    let runs: Vec<TaskRun> = serde_wasm_bindgen::from_value(runs)
        .map_err(|e| JsError::new(&format!("runs: {}", plain(e))))?;
    if runs.is_empty() {
        return Err(JsError::new("runs is empty: nothing to evaluate"));
    }
    Ok(runs)
}

fn signal_of(o: &Options) -> Result<Signal, JsError> {
    match o.get::<String>("signal")?.as_deref() {
        None | Some("logprob") => Ok(Signal::Logprob),
        Some("entropy") => Ok(Signal::Entropy),
        Some(other) => Err(JsError::new(&format!(
            "options.signal is {other:?}: expected \"logprob\" or \"entropy\""
        ))),
    }
}

/// The policies read only the confidence tokens of the completion options.
fn policy_options(o: &Options) -> Result<CompletionOptions, JsError> {
    Ok(CompletionOptions {
        confidence_tokens: match o.get::<f64>("confidenceTokens")? {
            None => CompletionOptions::default().confidence_tokens,
            Some(v) => super::size_arg(v, "options.confidenceTokens", 1)?,
        },
        ..CompletionOptions::default()
    })
}

fn seed_of(o: &Options) -> Result<u64, JsError> {
    Ok(match o.get::<f64>("seed")? {
        None => 0,
        Some(v) => super::size_arg(v, "options.seed", 0)? as u64,
    })
}

/// The probe's probabilities, which need tasks from two repositories or more.
fn probe_of(runs: &[TaskRun]) -> Result<Vec<f64>, JsError> {
    repo::probe_scores(runs).map_err(js_error)
}

#[wasm_bindgen]
impl LanguageModel {
    /// Completes `task`'s line twice (greedy, up to the end of the line): without retrieval,
    /// and with the cross-file context retrieved from the repository's other `files`
    /// (RepoEval's Jaccard retrieval: 10-line chunks, stride 5, top 10) placed before the
    /// left context as comments. Scores both against the target and times retrieval apart.
    #[wasm_bindgen(js_name = repoRun, unchecked_return_type = "RepoRunResult")]
    pub fn repo_run(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RepoTask")] task: JsValue,
        #[wasm_bindgen(unchecked_param_type = "RepoFile[]")] files: JsValue,
        #[wasm_bindgen(unchecked_param_type = "RepoCompletionOptions")] options: JsValue,
    ) -> Result<JsValue, JsError> {
        let o = Options::optional(
            options,
            &["maxSequence", "contextTokens", "confidenceTokens"],
            "repoRun options",
        )?;
        let options = completion_options(&o)?;
        if options.max_sequence > self.llama.config.context {
            return Err(JsError::new(&format!(
                "options.maxSequence is {}: the model's context holds {} tokens",
                options.max_sequence, self.llama.config.context
            )));
        }
        if task.is_undefined() || task.is_null() {
            return Err(JsError::new(
                "task is required: {task_id, repository, path, line, target}",
            ));
        }
        let task: JsTask = serde_wasm_bindgen::from_value(task).map_err(|e| {
            JsError::new(&format!(
                "task: {} (expected {{task_id, repository, path, line, target, sha256?}})",
                plain(e)
            ))
        })?;
        let files = read_files(files)?;
        let file = files.iter().find(|f| f.path == task.path).ok_or_else(|| {
            JsError::new(&format!(
                "task {}: its file {:?} is not among the {} files given",
                task.task_id,
                task.path,
                files.len()
            ))
        })?;
        if let Some(expected) = &task.sha256 {
            let digest = format!("{:x}", sha2::Sha256::digest(file.text.as_bytes()));
            if !digest.eq_ignore_ascii_case(expected) {
                return Err(JsError::new(&format!(
                    "task {}: {} has sha256 {digest}, the task was made from {expected}",
                    task.task_id, task.path
                )));
            }
        }
        let task = Task {
            task_id: task.task_id,
            repository: task.repository,
            path: task.path,
            line: task.line,
            sha256: task.sha256.unwrap_or_default(),
            target: task.target,
        };
        let mut clock = super::lm::now_seconds;
        let run = repo::run_task(
            &self.llama,
            &self.tokenizer,
            &files,
            &task,
            Needs {
                without: true,
                with: true,
            },
            None,
            &options,
            &mut clock,
        )
        .map_err(js_error)?;
        let without = run
            .without
            .as_ref()
            .ok_or_else(|| JsError::new("internal: no completion without retrieval"))?;
        let k = options.confidence_tokens;
        let mut value =
            serde_json::to_value(&run).map_err(|e| JsError::new(&format!("result: {e}")))?;
        value["cross_file_context"] =
            repo::cross_file_context(&run.repository, &run.retrieved).into();
        value["confidence"] = serde_json::json!({
            "logprob": without.completion.mean_logprob(k),
            "entropy": without.completion.mean_entropy(k),
        });
        value["retrieval_helps"] = run.retrieval_helps().unwrap_or(false).into();
        to_js(&value)
    }
}

/// RepoEval's retrieval alone: the top-10 chunks of the repository's other files for the
/// cursor at the end of `leftContext` in file `currentPath` (never searched itself).
#[wasm_bindgen(js_name = repoRetrieve, unchecked_return_type = "RetrievedChunk[]")]
pub fn repo_retrieve(
    #[wasm_bindgen(unchecked_param_type = "RepoFile[]")] files: JsValue,
    current_path: &str,
    left_context: &str,
) -> Result<JsValue, JsError> {
    let files = read_files(files)?;
    to_js(&repo::retrieve(&files, current_path, left_context))
}

/// The reference's metrics of one completion: exact match on code tokens and edit
/// similarity both ways, the prediction cut to the target's number of non-empty lines.
#[wasm_bindgen(js_name = repoScore, unchecked_return_type = "RepoScores")]
pub fn repo_score(prediction: &str, target: &str) -> Result<JsValue, JsError> {
    to_js(&score_completion(prediction, target))
}

/// One policy's accuracy, retrieval rate and time over `runs`, with bootstrap intervals
/// and paired differences to always retrieving (see `latentlab repo eval`).
#[wasm_bindgen(js_name = repoEvaluate, unchecked_return_type = "RepoPolicyResult")]
pub fn repo_evaluate(
    #[wasm_bindgen(unchecked_param_type = "RepoTaskRun[]")] runs: JsValue,
    #[wasm_bindgen(unchecked_param_type = "RepoPolicyOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let o = Options::optional(
        options,
        &["policy", "signal", "threshold", "confidenceTokens", "seed"],
        "repoEvaluate options",
    )?;
    let runs = read_runs(runs)?;
    let signal = signal_of(&o)?;
    let threshold: Option<f64> = o.get("threshold")?;
    if let Some(t) = threshold.filter(|t| !t.is_finite()) {
        return Err(JsError::new(&format!(
            "options.threshold is {t}: expected a finite number"
        )));
    }
    let completion = policy_options(&o)?;
    let mut probe = None;
    let policy = match o.get::<String>("policy")?.as_deref() {
        Some("never") => Policy::Never,
        Some("always") => Policy::Always,
        Some("oracle") => Policy::Oracle,
        None | Some("confidence") => Policy::Confidence {
            signal,
            threshold: threshold.unwrap_or(match signal {
                Signal::Logprob => 0.5f64.ln(),
                Signal::Entropy => 2f64.ln(),
            }),
        },
        Some("probe") => {
            probe = Some(probe_of(&runs)?);
            Policy::Probe {
                threshold: threshold.unwrap_or(0.5),
            }
        }
        Some(other) => {
            return Err(JsError::new(&format!(
                "options.policy is {other:?}: expected never, always, oracle, confidence or probe"
            )))
        }
    };
    let result =
        evaluate(&runs, policy, probe.as_deref(), &completion, seed_of(&o)?).map_err(js_error)?;
    to_js(&result)
}

/// The confidence (or probe) policy at thresholds that make the retrieval rate run from 0
/// to 1 (see `latentlab repo sweep`): one result per distinct rate.
#[wasm_bindgen(js_name = repoSweep, unchecked_return_type = "RepoPolicyResult[]")]
pub fn repo_sweep(
    #[wasm_bindgen(unchecked_param_type = "RepoTaskRun[]")] runs: JsValue,
    #[wasm_bindgen(unchecked_param_type = "RepoSweepOptions")] options: JsValue,
) -> Result<JsValue, JsError> {
    let o = Options::optional(
        options,
        &["policy", "signal", "steps", "confidenceTokens", "seed"],
        "repoSweep options",
    )?;
    let runs = read_runs(runs)?;
    let steps = match o.get::<f64>("steps")? {
        None => 21,
        Some(v) => super::size_arg(v, "options.steps", 0)?,
    };
    let completion = policy_options(&o)?;
    let seed = seed_of(&o)?;
    let result = match o.get::<String>("policy")?.as_deref() {
        None | Some("confidence") => {
            sweep(&runs, Some(signal_of(&o)?), None, steps, &completion, seed)
        }
        Some("probe") => {
            let probe = probe_of(&runs)?;
            sweep(&runs, None, Some(&probe), steps, &completion, seed)
        }
        Some(other) => {
            return Err(JsError::new(&format!(
                "options.policy is {other:?}: a sweep is of \"confidence\" or \"probe\""
            )))
        }
    }
    .map_err(js_error)?;
    to_js(&result)
}
