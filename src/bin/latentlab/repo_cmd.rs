//! `latentlab repo …`: Repoformer-style selective retrieval for line completion on real
//! repositories (by default the Python standard library as Debian installs it).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use latentlab::core::repo::{
    self, evaluate, probe_scores, sample_tasks, sweep, CompletionOptions, Needs, Policy,
    Repository, Signal, SourceFile, Task, TaskRun,
};
use sha2::Digest;

use crate::common::{emit, progress};
use crate::lm_cmd::{load, ModelArgs};

/// Where Debian's `libpython3.11-stdlib` puts the standard library.
const DEFAULT_ROOT: &str = "/usr/lib/python3.11";

/// Folders under a root that are never repositories: CPython's own test suite (its files
/// are test data more than code), installed third-party packages, bytecode caches, and the
/// generated codec tables of `encodings`.
const EXCLUDED: [&str; 6] = [
    "test",
    "site-packages",
    "dist-packages",
    "__pycache__",
    "encodings",
    "lib-dynload",
];

#[derive(Subcommand)]
pub enum RepoCommand {
    /// Sample line-completion tasks from the repositories under a folder (each
    /// sub-folder with at least three Python files is one repository); writes JSON lines.
    Tasks(TasksArgs),
    /// Complete the tasks with the language model under one retrieval policy; one JSON
    /// line with its accuracy, retrieval rate and time per task.
    Eval(EvalArgs),
    /// The confidence (or probe) policy at thresholds from never to always retrieving;
    /// one JSON line per threshold.
    Sweep(SweepArgs),
    /// Writes the tasks and their repositories' files as JSON for the browser (the site's
    /// Repoformer page, or `LanguageModel.repoRun`): `index.json` (tasks, repositories) and
    /// one `<repository>.json` each ({repository, files: [{path, text}]}).
    Bundle(BundleArgs),
}

#[derive(Args)]
pub struct BundleArgs {
    #[arg(long, value_name = "FILE.jsonl")]
    tasks: PathBuf,
    /// The folder the tasks' repositories are under.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// The folder to write (created; files in it are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Said in index.json: where the files come from and under which licence.
    #[arg(
        long,
        default_value = "the Python 3.11 standard library as Debian's libpython3.11-stdlib installs it (PSF License Agreement)"
    )]
    source: String,
}

#[derive(Args)]
pub struct TasksArgs {
    /// The folder whose sub-folders are the repositories.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
    root: PathBuf,
    #[arg(long, value_name = "FILE.jsonl")]
    out: PathBuf,
    #[arg(long, default_value_t = 500)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only these repositories (comma-separated sub-folder names).
    #[arg(long, value_delimiter = ',')]
    repos: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyName {
    Never,
    Always,
    Oracle,
    Confidence,
    Probe,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalName {
    /// Mean log-probability of the first generated tokens (retrieve when below).
    Logprob,
    /// Mean entropy of the first next-token distributions (retrieve when above).
    Entropy,
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(long, value_name = "FILE.jsonl")]
    tasks: PathBuf,
    /// The folder the tasks' repositories are under.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Completions are kept here, one JSON line per task, and reused by later commands
    /// (an interrupted run loses nothing).
    #[arg(long, value_name = "FILE.jsonl")]
    runs: Option<PathBuf>,
    /// Only N tasks, taken from the repositories in turn (each one's first tasks first), so
    /// that a quick run covers every repository and its runs are reused by a full one.
    #[arg(long)]
    limit: Option<usize>,
    /// Prompt plus generation, in tokens (the reference: 2048).
    #[arg(long, default_value_t = 1024)]
    max_sequence: usize,
    /// The cross-file context's share of the prompt, in tokens (the reference: 512).
    #[arg(long, default_value_t = 512)]
    context_tokens: usize,
    /// How many first generated tokens the confidence averages over.
    #[arg(long, default_value_t = 4)]
    confidence_tokens: usize,
    /// Seeds the bootstrap intervals.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long, value_enum)]
    policy: PolicyName,
    /// The confidence policy's threshold (default: log 0.5 for logprob, log 2 for
    /// entropy) or the probe's probability (default 0.5).
    #[arg(long)]
    threshold: Option<f64>,
    #[arg(long, value_enum, default_value = "logprob")]
    signal: SignalName,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
pub struct SweepArgs {
    /// `confidence` (with --signal) or `probe`.
    #[arg(long, value_enum, default_value = "confidence")]
    policy: PolicyName,
    #[arg(long, value_enum, default_value = "logprob")]
    signal: SignalName,
    /// Points from never to always retrieving.
    #[arg(long, default_value_t = 21)]
    steps: usize,
    #[command(flatten)]
    run: RunArgs,
}

pub fn run(command: RepoCommand) -> Result<bool> {
    match command {
        RepoCommand::Tasks(a) => tasks_cmd(a),
        RepoCommand::Eval(a) => eval_cmd(a),
        RepoCommand::Sweep(a) => sweep_cmd(a),
        RepoCommand::Bundle(a) => bundle_cmd(a),
    }
}

/// The `.py` files under `dir`, sorted, as repository-relative paths; files that are not
/// UTF-8 are left out and reported.
fn read_repository(
    name: &str,
    dir: &Path,
    skipped: &mut Vec<serde_json::Value>,
) -> Result<(Repository, HashMap<String, String>)> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "__pycache__") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "py") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    let mut files = Vec::new();
    let mut digests = HashMap::new();
    for path in paths {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let digest = format!("{:x}", sha2::Sha256::digest(&bytes));
        match String::from_utf8(bytes) {
            Ok(text) => {
                digests.insert(rel.clone(), digest);
                files.push(SourceFile { path: rel, text });
            }
            Err(e) => skipped.push(serde_json::json!({
                "path": path.display().to_string(),
                "reason": format!("not UTF-8 ({e})"),
            })),
        }
    }
    Ok((
        Repository {
            name: name.to_string(),
            files,
        },
        digests,
    ))
}

fn tasks_cmd(a: TasksArgs) -> Result<bool> {
    if !a.root.is_dir() {
        bail!("--root {} is not a folder", a.root.display());
    }
    let names: Vec<String> = if a.repos.is_empty() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&a.root)
            .with_context(|| format!("cannot list {}", a.root.display()))?
        {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if path.is_dir() && !EXCLUDED.contains(&name.as_str()) && !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        names
    } else {
        for name in &a.repos {
            if name.is_empty() || name.contains('/') || !a.root.join(name).is_dir() {
                bail!(
                    "--repos: {name:?} is not a folder under {}",
                    a.root.display()
                );
            }
        }
        a.repos.clone()
    };
    let mut skipped = Vec::new();
    let mut repos = Vec::new();
    let mut digests = HashMap::new();
    for name in &names {
        let (repo, d) = read_repository(name, &a.root.join(name), &mut skipped)?;
        // Fewer than three files: nothing to retrieve from (chosen names are kept, and
        // refused below only if none has a task).
        if a.repos.is_empty() && repo.files.len() < 3 {
            continue;
        }
        digests.insert(name.clone(), d);
        repos.push(repo);
    }
    if repos.is_empty() {
        bail!(
            "no repository under {}: each needs a sub-folder with at least three .py files",
            a.root.display()
        );
    }
    let tasks = sample_tasks(&repos, a.n, a.seed, |repo, file| {
        digests[repo][&file.path].clone()
    })?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&a.out)
            .with_context(|| format!("cannot write {}", a.out.display()))?,
    );
    let mut per_repo: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &tasks {
        serde_json::to_writer(&mut out, t)?;
        out.write_all(b"\n")?;
        *per_repo.entry(&t.repository).or_default() += 1;
    }
    out.flush()?;
    emit(&serde_json::json!({
        "out": a.out.display().to_string(),
        "n": tasks.len(),
        "seed": a.seed,
        "root": a.root.display().to_string(),
        "repositories": per_repo,
        "skipped_files": skipped,
    }))?;
    Ok(true)
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<Vec<T>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.with_context(|| format!("{} line {}: not UTF-8 text", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{} line {}: not a {what}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Up to `limit` tasks, one repository after another in turn (repositories in order of
/// first appearance, each one's tasks in file order).
fn spread_over_repositories(tasks: Vec<Task>, limit: usize) -> Vec<Task> {
    let mut order: Vec<String> = Vec::new();
    let mut by_repo: HashMap<String, std::collections::VecDeque<Task>> = HashMap::new();
    for t in tasks {
        if !by_repo.contains_key(&t.repository) {
            order.push(t.repository.clone());
        }
        by_repo
            .entry(t.repository.clone())
            .or_default()
            .push_back(t);
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let before = out.len();
        for repo in &order {
            if out.len() == limit {
                break;
            }
            if let Some(t) = by_repo.get_mut(repo).and_then(|q| q.pop_front()) {
                out.push(t);
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

struct Prepared {
    tasks: Vec<Task>,
    repos: HashMap<String, Vec<SourceFile>>,
    runs: HashMap<String, TaskRun>,
}

/// Reads the tasks and their repositories, checking every task's file against its sha256,
/// and the cached runs.
fn prepare(
    tasks_path: &Path,
    root: &Path,
    limit: Option<usize>,
    runs_path: Option<&Path>,
) -> Result<Prepared> {
    let mut tasks: Vec<Task> = read_jsonl(
        tasks_path,
        "task (task_id, repository, path, line, sha256, target)",
    )?;
    if let Some(limit) = limit {
        if limit == 0 {
            bail!("--limit is 0: nothing to run");
        }
        tasks = spread_over_repositories(tasks, limit);
    }
    if tasks.is_empty() {
        bail!("{} holds no tasks", tasks_path.display());
    }
    let mut repos: HashMap<String, Vec<SourceFile>> = HashMap::new();
    let mut digests: HashMap<String, HashMap<String, String>> = HashMap::new();
    for t in &tasks {
        if !repos.contains_key(&t.repository) {
            let dir = root.join(&t.repository);
            if !dir.is_dir() {
                bail!(
                    "task {}: repository {} is not under --root {}",
                    t.task_id,
                    t.repository,
                    root.display()
                );
            }
            let mut skipped = Vec::new();
            let (repo, d) = read_repository(&t.repository, &dir, &mut skipped)?;
            repos.insert(t.repository.clone(), repo.files);
            digests.insert(t.repository.clone(), d);
        }
        match digests[&t.repository].get(&t.path) {
            Some(d) if *d == t.sha256 => {}
            Some(d) => bail!(
                "task {}: {} has sha256 {d}, the task was made from {} (another Python version or a changed file)",
                t.task_id,
                root.join(&t.repository).join(&t.path).display(),
                t.sha256
            ),
            None => bail!(
                "task {}: {} is missing (or not UTF-8)",
                t.task_id,
                root.join(&t.repository).join(&t.path).display()
            ),
        }
    }
    let mut runs = HashMap::new();
    if let Some(path) = runs_path {
        if path.exists() {
            for r in read_jsonl::<TaskRun>(path, "task run")? {
                runs.insert(r.task_id.clone(), r);
            }
        }
    }
    Ok(Prepared { tasks, repos, runs })
}

fn options(a: &RunArgs) -> Result<CompletionOptions> {
    let o = CompletionOptions {
        max_sequence: a.max_sequence,
        context_tokens: a.context_tokens,
        max_new_tokens: CompletionOptions::default().max_new_tokens,
        confidence_tokens: a.confidence_tokens,
    };
    o.check()?;
    Ok(o)
}

/// Runs what `needs` asks for on every task (reusing and extending the cache); returns the
/// runs in task order.
fn run_all(a: &RunArgs, needs: Needs) -> Result<(Vec<TaskRun>, CompletionOptions)> {
    let o = options(a)?;
    let mut p = prepare(&a.tasks, &a.root, a.limit, a.runs.as_deref())?;
    let missing = p
        .tasks
        .iter()
        .filter(|t| {
            p.runs.get(&t.task_id).is_none_or(|r| {
                (needs.without && r.without.is_none()) || (needs.with && r.with.is_none())
            })
        })
        .count();
    let mut cache = match &a.runs {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => None,
    };
    let model = if missing > 0 {
        Some(load(&a.model)?)
    } else {
        None
    };
    let bar = progress(missing, "completing");
    let started = Instant::now();
    let mut clock = move || started.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(p.tasks.len());
    for t in &p.tasks {
        let previous = p.runs.remove(&t.task_id);
        let complete = previous.as_ref().is_some_and(|r| {
            (!needs.without || r.without.is_some()) && (!needs.with || r.with.is_some())
        });
        let run = match (&model, complete) {
            (_, true) | (None, _) => previous.context("a task without its run")?,
            (Some(m), false) => {
                let run = repo::run_task(
                    &m.llama,
                    &m.tokenizer,
                    &p.repos[&t.repository],
                    t,
                    needs,
                    previous,
                    &o,
                    &mut clock,
                )?;
                if let Some(f) = cache.as_mut() {
                    serde_json::to_writer(&mut *f, &run)?;
                    f.write_all(b"\n")?;
                    f.flush()?;
                }
                bar.inc(1);
                run
            }
        };
        out.push(run);
    }
    bar.finish_and_clear();
    Ok((out, o))
}

fn signal(s: SignalName) -> Signal {
    match s {
        SignalName::Logprob => Signal::Logprob,
        SignalName::Entropy => Signal::Entropy,
    }
}

fn eval_cmd(a: EvalArgs) -> Result<bool> {
    if a.threshold.is_some_and(|t| !t.is_finite()) {
        bail!("--threshold must be a finite number");
    }
    if a.threshold.is_some() && !matches!(a.policy, PolicyName::Confidence | PolicyName::Probe) {
        bail!("--threshold applies to the confidence and probe policies only");
    }
    let needs = match a.policy {
        PolicyName::Never => Needs {
            without: true,
            with: false,
        },
        PolicyName::Always => Needs {
            without: false,
            with: true,
        },
        // The confidence policy retrieves only where unsure, but its completions with
        // retrieval are run for every task, so that the cache serves every threshold.
        _ => Needs {
            without: true,
            with: true,
        },
    };
    let (runs, o) = run_all(&a.run, needs)?;
    let policy = match a.policy {
        PolicyName::Never => Policy::Never,
        PolicyName::Always => Policy::Always,
        PolicyName::Oracle => Policy::Oracle,
        PolicyName::Confidence => Policy::Confidence {
            signal: signal(a.signal),
            threshold: a.threshold.unwrap_or(match a.signal {
                SignalName::Logprob => 0.5f64.ln(),
                SignalName::Entropy => 2f64.ln(),
            }),
        },
        PolicyName::Probe => Policy::Probe {
            threshold: a.threshold.unwrap_or(0.5),
        },
    };
    let probe = match a.policy {
        PolicyName::Probe => Some(probe_scores(&runs)?),
        _ => None,
    };
    let result = evaluate(&runs, policy, probe.as_deref(), &o, a.run.seed)?;
    emit(&serde_json::to_value(result)?)?;
    Ok(true)
}

fn sweep_cmd(a: SweepArgs) -> Result<bool> {
    let (runs, o) = run_all(
        &a.run,
        Needs {
            without: true,
            with: true,
        },
    )?;
    let lines = match a.policy {
        PolicyName::Confidence => {
            sweep(&runs, Some(signal(a.signal)), None, a.steps, &o, a.run.seed)?
        }
        PolicyName::Probe => {
            let scores = probe_scores(&runs)?;
            sweep(&runs, None, Some(&scores), a.steps, &o, a.run.seed)?
        }
        _ => bail!("--policy for a sweep is confidence or probe (the others have no threshold)"),
    };
    for line in lines {
        emit(&serde_json::to_value(line)?)?;
    }
    Ok(true)
}

fn bundle_cmd(a: BundleArgs) -> Result<bool> {
    let p = prepare(&a.tasks, &a.root, None, None)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut names: Vec<&String> = p.repos.keys().collect();
    names.sort();
    // Each repository becomes a file name in --out: nothing that leaves the folder.
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.starts_with('.') || n.contains(['/', '\\']))
    {
        bail!("repository {bad:?} cannot name a file in --out (a sub-folder name is expected)");
    }
    let mut repositories = Vec::new();
    for name in names {
        let files = &p.repos[name];
        let file = format!("{name}.json");
        let body = serde_json::json!({
            "repository": name,
            "files": files.iter().map(|f| serde_json::json!({"path": f.path, "text": f.text})).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&body)?;
        let path = a.out.join(&file);
        std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        repositories.push(serde_json::json!({
            "name": name, "file": file, "files": files.len(), "bytes": bytes.len(),
        }));
    }
    let index = serde_json::json!({
        "source": a.source,
        "tasks": p.tasks,
        "repositories": repositories,
    });
    let path = a.out.join("index.json");
    std::fs::write(&path, serde_json::to_vec(&index)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    emit(&serde_json::json!({
        "out": a.out.display().to_string(),
        "tasks": p.tasks.len(),
        "repositories": repositories.len(),
        "bytes": repositories.iter().map(|r| r["bytes"].as_u64().unwrap_or(0)).sum::<u64>(),
    }))?;
    Ok(true)
}
