//! Repoformer (Wu et al., ICML 2024): retrieve cross-file context for code completion only
//! when it helps. Pure logic over the language-model traits of `crate::core::lm`:
//! task sampling from real repositories ([`tasks`]), RepoEval's Jaccard retrieval
//! ([`retrieve`]), the reference's metrics ([`metrics`]), one completion with and without
//! the retrieved context ([`complete`]), and the policies that decide when to retrieve —
//! never, always, an oracle, the model's own confidence, a probe on its hidden state —
//! with their accuracy, retrieval rate and time ([`policy`]).
//!
//! Reduced against the paper, and said so wherever results are shown: a general 135M chat
//! model (SmolLM2) instead of StarCoder-class code models, no fill-in-the-middle (SmolLM2
//! has no FIM tokens: left context only), no self-evaluation token `<cc>` (the model was
//! not trained with Repoformer's objective, so its confidence is read from its first
//! generated tokens or a probe instead), and a 1,024-token prompt instead of 2,048.

pub mod complete;
pub mod metrics;
pub mod policy;
pub mod retrieve;
pub mod tasks;
#[cfg(test)]
pub(crate) mod testing;

pub use complete::{complete, prompt_ids, Completion, CompletionOptions, Prompt};
pub use metrics::{score_completion, tokenize_code, CompletionScores};
pub use policy::{evaluate, probe_scores, sweep, Outcome, Policy, PolicyResult, Signal, TaskRun};
pub use retrieve::{cross_file_context, retrieve, RetrievedChunk, SourceFile};
pub use tasks::{sample_tasks, Repository, Task};

use crate::core::lm::{LanguageModel, LmError, Tokenize};

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RepoError {
    #[error("{0}")]
    Input(String),
    #[error("task {task}: {why}")]
    Task { task: String, why: String },
    #[error("option {name} is {value}: {why}")]
    Option {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(transparent)]
    Lm(LmError),
}

/// Which completions a task needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    pub without: bool,
    pub with: bool,
}

/// Runs one task: the completions `needs` asks for (keeping those `previous` already has),
/// each scored against the target, retrieval timed apart from generation.
#[allow(clippy::too_many_arguments)]
pub fn run_task<M: LanguageModel, T: Tokenize>(
    model: &M,
    tok: &T,
    files: &[SourceFile],
    task: &Task,
    needs: Needs,
    previous: Option<TaskRun>,
    options: &CompletionOptions,
    clock: &mut dyn FnMut() -> f64,
) -> Result<TaskRun, RepoError> {
    let file = files
        .iter()
        .find(|f| f.path == task.path)
        .ok_or_else(|| RepoError::Task {
            task: task.task_id.clone(),
            why: format!("{} is not in repository {}", task.path, task.repository),
        })?;
    let left = task.left_context(&file.text)?;
    let mut run = previous.unwrap_or_else(|| TaskRun {
        task_id: task.task_id.clone(),
        repository: task.repository.clone(),
        without: None,
        with: None,
        retrieval_seconds: None,
        retrieved: Vec::new(),
    });
    let outcome = |completion: Completion| Outcome {
        scores: score_completion(&completion.text, &task.target),
        completion,
    };
    if needs.without && run.without.is_none() {
        let prompt = prompt_ids(tok, "", left, options)?;
        run.without = Some(outcome(complete(model, tok, &prompt, options, clock)?));
    }
    if needs.with && run.with.is_none() {
        let start = clock();
        let chunks = retrieve(files, &task.path, left);
        let context = cross_file_context(&task.repository, &chunks);
        run.retrieval_seconds = Some(clock() - start);
        let prompt = prompt_ids(tok, &context, left, options)?;
        run.with = Some(outcome(complete(model, tok, &prompt, options, clock)?));
        run.retrieved = chunks;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::testing::{HintModel, HintTokenizer};
    use super::*;

    #[test]
    fn retrieval_brings_the_hint_from_another_file_and_changes_the_answer() {
        let mut current: String = (0..11).map(|_| "y = 1\n").collect();
        current.push_str("x = 2\n");
        let files = [
            SourceFile {
                path: "y.x".into(),
                text: current,
            },
            SourceFile {
                path: "x/y.x".into(),
                text: "x = 2 hint\n".into(),
            },
        ];
        let task = Task {
            task_id: "x/0".into(),
            repository: "x".into(),
            path: "y.x".into(),
            line: 12,
            sha256: String::new(),
            target: "x = 2".into(),
        };
        let mut t = 0.0;
        let mut clock = || {
            t += 0.25;
            t
        };
        let both = Needs {
            without: true,
            with: true,
        };
        let o = CompletionOptions::default();
        let run = run_task(
            &HintModel,
            &HintTokenizer,
            &files,
            &task,
            both,
            None,
            &o,
            &mut clock,
        )
        .unwrap();
        let (without, with) = (run.without.as_ref().unwrap(), run.with.as_ref().unwrap());
        assert_eq!(without.completion.text, "x = 1\n");
        assert_eq!(with.completion.text, "x = 2\n");
        assert!(with.scores.exact_match && !without.scores.exact_match);
        assert_eq!(run.retrieval_helps(), Some(true));
        assert_eq!(run.retrieved.len(), 1);
        assert_eq!(run.retrieved[0].path, "x/y.x");
        assert!(run.retrieval_seconds.unwrap() > 0.0);
        // a second call with the run keeps what it has
        let again = run_task(
            &HintModel,
            &HintTokenizer,
            &files,
            &task,
            both,
            Some(run.clone()),
            &o,
            &mut clock,
        )
        .unwrap();
        assert_eq!(again, run);
        // a task whose file is missing is named
        let lost = Task {
            path: "gone.x".into(),
            ..task
        };
        let err = run_task(
            &HintModel,
            &HintTokenizer,
            &files,
            &lost,
            both,
            None,
            &o,
            &mut clock,
        )
        .unwrap_err();
        assert!(err.to_string().contains("gone.x"));
    }
}
