//! When to retrieve: each policy turns the per-task runs into one completion per task, a
//! retrieval rate and a time per task, with bootstrap intervals over the tasks.
//!
//! Times are composed from what was measured, so that every policy is charged for exactly
//! the work it would do: `never` the completion without retrieval; `always` retrieval plus
//! the completion with it; `oracle` (retrieve iff it helps — Repoformer's label: edit
//! similarity with retrieval above without) the path it picks; `confidence` the prompt and
//! the first k tokens without retrieval, then — if it retrieves — retrieval and the
//! completion with it (else the rest of the completion without); `probe` the prompt
//! without retrieval (its last hidden state), then likewise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::complete::{Completion, CompletionOptions};
use super::metrics::CompletionScores;
use super::retrieve::RetrievedChunk;
use super::RepoError;
use crate::core::matrix::Matrix;
use crate::core::stats::{mean, percentile_interval};
use crate::core::steer::probe::{LinearProbe, ProbeOptions};

/// A completion and its scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub completion: Completion,
    pub scores: CompletionScores,
}

/// What was run for one task (cached between commands).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    pub task_id: String,
    pub repository: String,
    pub without: Option<Outcome>,
    pub with: Option<Outcome>,
    pub retrieval_seconds: Option<f64>,
    #[serde(default)]
    pub retrieved: Vec<RetrievedChunk>,
}

impl TaskRun {
    /// Repoformer's label: retrieval helps iff edit similarity with it is higher.
    pub fn retrieval_helps(&self) -> Option<bool> {
        Some(
            self.with.as_ref()?.scores.edit_similarity
                > self.without.as_ref()?.scores.edit_similarity,
        )
    }
}

/// The model's self-assessment without retrieval, read from its first generated tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Mean log-probability: retrieve when it is *below* the threshold.
    Logprob,
    /// Mean entropy: retrieve when it is *above* the threshold.
    Entropy,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    Never,
    Always,
    Oracle,
    Confidence {
        signal: Signal,
        threshold: f64,
    },
    /// Retrieve when the probe's probability that retrieval helps exceeds the threshold.
    Probe {
        threshold: f64,
    },
}

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Never => "never",
            Policy::Always => "always",
            Policy::Oracle => "oracle",
            Policy::Confidence { .. } => "confidence",
            Policy::Probe { .. } => "probe",
        }
    }

    pub fn threshold(&self) -> Option<f64> {
        match *self {
            Policy::Confidence { threshold, .. } | Policy::Probe { threshold } => Some(threshold),
            _ => None,
        }
    }
}

/// A policy's results over the tasks. `ci95` holds 95% bootstrap intervals (percentile,
/// tasks resampled) of the named means; `vs_always` the paired differences to always
/// retrieving (this policy minus always) with their intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub n: usize,
    pub exact_match: f64,
    pub edit_similarity: f64,
    pub edit_similarity_repoeval: f64,
    pub retrieval_rate: f64,
    pub seconds_per_task: f64,
    pub ci95: Intervals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_always: Option<Differences>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    pub exact_match: [f64; 2],
    pub edit_similarity: [f64; 2],
    pub retrieval_rate: [f64; 2],
    pub seconds_per_task: [f64; 2],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Differences {
    pub exact_match: f64,
    pub exact_match_ci95: [f64; 2],
    pub edit_similarity: f64,
    pub edit_similarity_ci95: [f64; 2],
    pub seconds_per_task: f64,
    pub seconds_per_task_ci95: [f64; 2],
}

/// Bootstrap resamples for the intervals.
const RESAMPLES: usize = 2000;

struct Choice {
    retrieve: bool,
    scores: CompletionScores,
    seconds: f64,
}

fn need<'a, T>(
    x: &'a Option<T>,
    run: &TaskRun,
    what: &str,
    policy: &str,
) -> Result<&'a T, RepoError> {
    x.as_ref().ok_or_else(|| RepoError::Task {
        task: run.task_id.clone(),
        why: format!(
            "has no completion {what}, which policy {policy} needs (run it again with that policy)"
        ),
    })
}

fn choose(
    run: &TaskRun,
    policy: Policy,
    probe: Option<f64>,
    options: &CompletionOptions,
) -> Result<Choice, RepoError> {
    let name = policy.name();
    let retrieval = || run.retrieval_seconds.unwrap_or(0.0);
    let with = |decide: f64| -> Result<Choice, RepoError> {
        let w = need(&run.with, run, "with retrieval", name)?;
        Ok(Choice {
            retrieve: true,
            scores: w.scores,
            seconds: decide + retrieval() + w.completion.seconds(),
        })
    };
    let without = || -> Result<Choice, RepoError> {
        let w = need(&run.without, run, "without retrieval", name)?;
        Ok(Choice {
            retrieve: false,
            scores: w.scores,
            seconds: w.completion.seconds(),
        })
    };
    match policy {
        Policy::Never => without(),
        Policy::Always => with(0.0),
        Policy::Oracle => {
            let helps = run.retrieval_helps().ok_or_else(|| RepoError::Task {
                task: run.task_id.clone(),
                why: "the oracle needs both completions".into(),
            })?;
            if helps {
                with(0.0)
            } else {
                without()
            }
        }
        Policy::Confidence { signal, threshold } => {
            let w = need(&run.without, run, "without retrieval", name)?;
            let k = options.confidence_tokens;
            let retrieve = match signal {
                Signal::Logprob => w.completion.mean_logprob(k) < threshold,
                Signal::Entropy => w.completion.mean_entropy(k) > threshold,
            };
            if retrieve {
                with(w.completion.seconds_to_token(k))
            } else {
                without()
            }
        }
        Policy::Probe { threshold } => {
            let w = need(&run.without, run, "without retrieval", name)?;
            let p = probe.ok_or_else(|| RepoError::Task {
                task: run.task_id.clone(),
                why: "has no probe score".into(),
            })?;
            if p > threshold {
                with(w.completion.prompt_seconds)
            } else {
                without()
            }
        }
    }
}

/// Percentile bootstrap interval of the mean of `values` (resampling tasks).
fn bootstrap(values: &[f64], rng: &mut ChaCha8Rng) -> [f64; 2] {
    let n = values.len();
    if n == 0 {
        return [f64::NAN, f64::NAN];
    }
    let means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    percentile_interval(means).unwrap_or([f64::NAN, f64::NAN])
}

/// Evaluates `policy` on `runs`. `probe` gives each run's probe probability (for
/// `Policy::Probe`; see [`probe_scores`]). `seed` fixes the bootstrap.
pub fn evaluate(
    runs: &[TaskRun],
    policy: Policy,
    probe: Option<&[f64]>,
    options: &CompletionOptions,
    seed: u64,
) -> Result<PolicyResult, RepoError> {
    if runs.is_empty() {
        return Err(RepoError::Input("no tasks to evaluate".into()));
    }
    if let Some(p) = probe {
        if p.len() != runs.len() {
            return Err(RepoError::Input(format!(
                "{} probe scores for {} tasks",
                p.len(),
                runs.len()
            )));
        }
    }
    let choices: Vec<Choice> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| choose(r, policy, probe.map(|p| p[i]), options))
        .collect::<Result<_, _>>()?;
    // Paired with always-retrieve where every task has its completion with retrieval.
    let always: Option<Vec<Choice>> = runs
        .iter()
        .map(|r| choose(r, Policy::Always, None, options).ok())
        .collect();
    let em: Vec<f64> = choices
        .iter()
        .map(|c| f64::from(u8::from(c.scores.exact_match)))
        .collect();
    let es: Vec<f64> = choices.iter().map(|c| c.scores.edit_similarity).collect();
    let rate: Vec<f64> = choices
        .iter()
        .map(|c| f64::from(u8::from(c.retrieve)))
        .collect();
    let secs: Vec<f64> = choices.iter().map(|c| c.seconds).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ci95 = Intervals {
        exact_match: bootstrap(&em, &mut rng),
        edit_similarity: bootstrap(&es, &mut rng),
        retrieval_rate: bootstrap(&rate, &mut rng),
        seconds_per_task: bootstrap(&secs, &mut rng),
    };
    let vs_always = always.filter(|_| policy != Policy::Always).map(|a| {
        let diff = |f: &dyn Fn(&Choice) -> f64| -> Vec<f64> {
            choices.iter().zip(&a).map(|(c, a)| f(c) - f(a)).collect()
        };
        let d_em = diff(&|c| f64::from(u8::from(c.scores.exact_match)));
        let d_es = diff(&|c| c.scores.edit_similarity);
        let d_s = diff(&|c| c.seconds);
        Differences {
            exact_match: mean(d_em.iter().copied()),
            exact_match_ci95: bootstrap(&d_em, &mut rng),
            edit_similarity: mean(d_es.iter().copied()),
            edit_similarity_ci95: bootstrap(&d_es, &mut rng),
            seconds_per_task: mean(d_s.iter().copied()),
            seconds_per_task_ci95: bootstrap(&d_s, &mut rng),
        }
    });
    Ok(PolicyResult {
        policy: policy.name().into(),
        signal: match policy {
            Policy::Confidence { signal, .. } => Some(signal),
            _ => None,
        },
        threshold: policy.threshold(),
        n: runs.len(),
        exact_match: mean(em.iter().copied()),
        edit_similarity: mean(es.iter().copied()),
        edit_similarity_repoeval: mean(choices.iter().map(|c| c.scores.edit_similarity_repoeval)),
        retrieval_rate: mean(rate.iter().copied()),
        seconds_per_task: mean(secs.iter().copied()),
        ci95,
        vs_always,
    })
}

/// Each run's probability that retrieval helps, from a logistic probe (scikit-learn's
/// objective, C = 1) on the last hidden state without retrieval, trained on the *other*
/// repositories' tasks only (cross-fitting by repository), so no repository's tasks are
/// scored by a probe that saw them.
pub fn probe_scores(runs: &[TaskRun]) -> Result<Vec<f64>, RepoError> {
    let mut features: Vec<&[f32]> = Vec::with_capacity(runs.len());
    let mut labels = Vec::with_capacity(runs.len());
    for r in runs {
        let hidden = r
            .without
            .as_ref()
            .and_then(|w| w.completion.hidden.as_deref())
            .ok_or_else(|| RepoError::Task {
                task: r.task_id.clone(),
                why: "has no hidden state without retrieval (the model exposes none, or the run predates it)".into(),
            })?;
        features.push(hidden);
        labels.push(usize::from(r.retrieval_helps().ok_or_else(|| {
            RepoError::Task {
                task: r.task_id.clone(),
                why: "the probe's label needs both completions (run the oracle policy first)"
                    .into(),
            }
        })?));
    }
    let dim = features[0].len();
    if features.iter().any(|f| f.len() != dim) {
        return Err(RepoError::Input("hidden states of different sizes".into()));
    }
    let data: Vec<f32> = features.iter().flat_map(|f| f.iter().copied()).collect();
    let x = Matrix::new(runs.len(), dim, data, "hidden states")
        .map_err(|e| RepoError::Input(e.to_string()))?;
    let mut repos: Vec<&str> = runs.iter().map(|r| r.repository.as_str()).collect();
    repos.sort_unstable();
    repos.dedup();
    if repos.len() < 2 {
        return Err(RepoError::Input(
            "the probe is trained on other repositories: the tasks come from only one".into(),
        ));
    }
    // Features standardised on each training fold (hidden states have a few huge
    // dimensions that would otherwise dominate the regularised fit).
    let mut scores = vec![f64::NAN; runs.len()];
    for repo in repos {
        let train: Vec<usize> = (0..runs.len())
            .filter(|&i| runs[i].repository != repo)
            .collect();
        let test: Vec<usize> = (0..runs.len())
            .filter(|&i| runs[i].repository == repo)
            .collect();
        let (mu, sd) = column_stats(&x, &train);
        let z = standardise(&x, &mu, &sd);
        let classes_seen =
            train.iter().any(|&i| labels[i] == 1) && train.iter().any(|&i| labels[i] == 0);
        if !classes_seen {
            // One class only in training: its base rate is the best estimate.
            let rate = train.iter().filter(|&&i| labels[i] == 1).count() as f64
                / train.len().max(1) as f64;
            test.iter().for_each(|&i| scores[i] = rate);
            continue;
        }
        let probe = LinearProbe::fit_rows(&z, &labels, &train, 2, &ProbeOptions::default())
            .map_err(|e| RepoError::Input(format!("the probe: {e}")))?;
        for &i in &test {
            let row = z.row(i);
            let logit = |c: usize| {
                probe.bias[c]
                    + probe.weights[c]
                        .iter()
                        .zip(row)
                        .map(|(w, v)| w * *v as f64)
                        .sum::<f64>()
            };
            scores[i] = 1.0 / (1.0 + (logit(0) - logit(1)).exp());
        }
    }
    Ok(scores)
}

fn column_stats(x: &Matrix, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len().max(1) as f64;
    let mut mu = vec![0f64; x.cols];
    for &r in rows {
        mu.iter_mut()
            .zip(x.row(r))
            .for_each(|(m, &v)| *m += v as f64 / n);
    }
    let mut var = vec![0f64; x.cols];
    for &r in rows {
        var.iter_mut()
            .zip(x.row(r))
            .zip(&mu)
            .for_each(|((s, &v), m)| *s += (v as f64 - m).powi(2) / n);
    }
    let sd = var
        .into_iter()
        .map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 })
        .collect();
    (mu, sd)
}

fn standardise(x: &Matrix, mu: &[f64], sd: &[f64]) -> Matrix {
    let data = (0..x.rows)
        .flat_map(|r| {
            x.row(r)
                .iter()
                .zip(mu.iter().zip(sd))
                .map(|(&v, (m, s))| ((v as f64 - m) / s) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    Matrix {
        rows: x.rows,
        cols: x.cols,
        data,
    }
}

/// The most points a sweep evaluates (each one a full evaluation with its bootstrap).
pub const MAX_SWEEP_STEPS: usize = 1001;

/// Thresholds for `signal` (or the probe's probability when `signal` is None) that make the
/// retrieval rate run from 0 to 1 in `steps` even steps, then each threshold's result.
pub fn sweep(
    runs: &[TaskRun],
    signal: Option<Signal>,
    probe: Option<&[f64]>,
    steps: usize,
    options: &CompletionOptions,
    seed: u64,
) -> Result<Vec<PolicyResult>, RepoError> {
    if !(2..=MAX_SWEEP_STEPS).contains(&steps) {
        return Err(RepoError::Option {
            name: "steps",
            value: steps.to_string(),
            why: "a sweep has from 2 to 1001 points",
        });
    }
    let k = options.confidence_tokens;
    // Values ordered from "retrieve first" to "retrieve last".
    let mut values: Vec<f64> = match (signal, probe) {
        (Some(Signal::Logprob), _) => runs
            .iter()
            .map(|r| r.without.as_ref().map(|w| w.completion.mean_logprob(k)))
            .collect::<Option<_>>(),
        (Some(Signal::Entropy), _) => runs
            .iter()
            .map(|r| r.without.as_ref().map(|w| -w.completion.mean_entropy(k)))
            .collect::<Option<_>>(),
        (None, Some(p)) => Some(p.iter().map(|&x| -x).collect()),
        (None, None) => {
            return Err(RepoError::Input(
                "a sweep needs a signal or probe scores".into(),
            ))
        }
    }
    .ok_or_else(|| {
        RepoError::Input("the sweep needs every task's completion without retrieval".into())
    })?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(RepoError::Input(
            "a task's confidence is not a number (a completion without tokens)".into(),
        ));
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mut out = Vec::with_capacity(steps);
    let mut last_rate = None;
    for s in 0..steps {
        let want = (s as f64 / (steps - 1) as f64 * n as f64).round() as usize;
        // retrieve the tasks whose value is below the cut ("retrieve first" end)
        let cut = if want >= n {
            values[n - 1] + 1.0
        } else {
            values[want]
        };
        let policy = match (signal, probe) {
            (Some(Signal::Logprob), _) => Policy::Confidence {
                signal: Signal::Logprob,
                threshold: cut,
            },
            (Some(Signal::Entropy), _) => Policy::Confidence {
                signal: Signal::Entropy,
                threshold: -cut,
            },
            _ => Policy::Probe { threshold: -cut },
        };
        let result = evaluate(runs, policy, probe, options, seed)?;
        // ties can make two cuts equal: keep one line per distinct rate
        if last_rate != Some(result.retrieval_rate) {
            last_rate = Some(result.retrieval_rate);
            out.push(result);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(es: f64, em: bool, logprob: f64, seconds: f64, hidden: Vec<f32>) -> Outcome {
        Outcome {
            completion: Completion {
                text: String::new(),
                prompt_tokens: 10,
                logprobs: vec![logprob; 4],
                entropies: vec![-logprob; 4],
                prompt_seconds: seconds / 2.0,
                token_seconds: vec![seconds * 0.6, seconds * 0.7, seconds * 0.8, seconds],
                hidden: Some(hidden),
            },
            scores: CompletionScores {
                exact_match: em,
                edit_similarity: es,
                edit_similarity_repoeval: es,
            },
        }
    }

    /// Task i: retrieval helps iff i is even; the model is unsure exactly then.
    fn runs(n: usize) -> Vec<TaskRun> {
        (0..n)
            .map(|i| {
                let helps = i % 2 == 0;
                TaskRun {
                    task_id: format!("r{}/{i}", i % 3),
                    repository: format!("r{}", i % 3),
                    without: Some(outcome(
                        if helps { 0.4 } else { 0.9 },
                        !helps,
                        if helps { -2.0 } else { -0.1 },
                        1.0,
                        vec![f32::from(u8::from(helps)), 0.5],
                    )),
                    with: Some(outcome(
                        if helps { 0.8 } else { 0.9 },
                        true,
                        -0.2,
                        2.0,
                        vec![0.0, 0.5],
                    )),
                    retrieval_seconds: Some(0.5),
                    retrieved: Vec::new(),
                }
            })
            .collect()
    }

    #[test]
    fn fixed_policies_and_their_costs() {
        let runs = runs(10);
        let o = CompletionOptions::default();
        let never = evaluate(&runs, Policy::Never, None, &o, 1).unwrap();
        let always = evaluate(&runs, Policy::Always, None, &o, 1).unwrap();
        let oracle = evaluate(&runs, Policy::Oracle, None, &o, 1).unwrap();
        assert_eq!(never.retrieval_rate, 0.0);
        assert!((never.edit_similarity - 0.65).abs() < 1e-12);
        assert_eq!(never.seconds_per_task, 1.0);
        assert_eq!(always.retrieval_rate, 1.0);
        assert_eq!(always.seconds_per_task, 2.5);
        assert!((always.edit_similarity - 0.85).abs() < 1e-12);
        assert!(always.vs_always.is_none());
        // the oracle retrieves for the five tasks it helps: always's accuracy, half the work
        assert_eq!(oracle.retrieval_rate, 0.5);
        assert!((oracle.edit_similarity - 0.85).abs() < 1e-12);
        assert!((oracle.seconds_per_task - (0.5 * 2.5 + 0.5 * 1.0)).abs() < 1e-12);
        let d = oracle.vs_always.unwrap();
        assert!(d.edit_similarity.abs() < 1e-12 && d.seconds_per_task < 0.0);
        let [lo, hi] = never.ci95.edit_similarity;
        assert!(lo <= never.edit_similarity && never.edit_similarity <= hi && lo < hi);
    }

    #[test]
    fn confidence_retrieves_when_unsure_and_pays_for_deciding() {
        let runs = runs(10);
        let o = CompletionOptions::default();
        let p = Policy::Confidence {
            signal: Signal::Logprob,
            threshold: -1.0,
        };
        let r = evaluate(&runs, p, None, &o, 1).unwrap();
        assert_eq!(r.retrieval_rate, 0.5);
        assert!((r.edit_similarity - 0.85).abs() < 1e-12);
        // unsure tasks: 4 tokens without (1.0 s) + retrieval 0.5 + with 2.0
        assert!((r.seconds_per_task - (0.5 * 3.5 + 0.5 * 1.0)).abs() < 1e-12);
        let e = evaluate(
            &runs,
            Policy::Confidence {
                signal: Signal::Entropy,
                threshold: 1.0,
            },
            None,
            &o,
            1,
        )
        .unwrap();
        assert_eq!(e.retrieval_rate, 0.5);
    }

    #[test]
    fn a_sweep_runs_from_never_to_always() {
        let runs = runs(10);
        let o = CompletionOptions::default();
        let lines = sweep(&runs, Some(Signal::Logprob), None, 11, &o, 1).unwrap();
        assert_eq!(lines.first().unwrap().retrieval_rate, 0.0);
        assert_eq!(lines.last().unwrap().retrieval_rate, 1.0);
        assert!(lines
            .windows(2)
            .all(|w| w[0].retrieval_rate < w[1].retrieval_rate));
        assert!(sweep(&runs, None, None, 11, &o, 1).is_err());
        let huge = sweep(&runs, Some(Signal::Logprob), None, usize::MAX, &o, 1).unwrap_err();
        assert!(huge.to_string().contains("steps"), "{huge}");
    }

    #[test]
    fn the_probe_is_scored_out_of_repository() {
        let runs = runs(30);
        let scores = probe_scores(&runs).unwrap();
        for (r, s) in runs.iter().zip(&scores) {
            if r.retrieval_helps().unwrap() {
                assert!(*s > 0.5, "{s}");
            } else {
                assert!(*s < 0.5, "{s}");
            }
        }
        let o = CompletionOptions::default();
        let r = evaluate(
            &runs,
            Policy::Probe { threshold: 0.5 },
            Some(&scores),
            &o,
            1,
        )
        .unwrap();
        assert_eq!(r.retrieval_rate, 0.5);
        let one_repo: Vec<TaskRun> = runs
            .iter()
            .filter(|r| r.repository == "r0")
            .cloned()
            .collect();
        assert!(probe_scores(&one_repo)
            .unwrap_err()
            .to_string()
            .contains("only one"));
    }

    #[test]
    fn missing_completions_are_named() {
        let mut runs = runs(2);
        runs[1].with = None;
        let err = evaluate(
            &runs,
            Policy::Always,
            None,
            &CompletionOptions::default(),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("r1/1") && err.to_string().contains("with retrieval"));
        assert!(evaluate(&[], Policy::Never, None, &CompletionOptions::default(), 1).is_err());
    }
}
