//! Line-completion tasks sampled from real repositories by a fixed, seeded procedure, so
//! that a committed task list (file, line, sha256 of the file) makes runs comparable.
//!
//! A line is a candidate when it is code a completion could be asked for: not blank, not a
//! comment, not inside (or opening) a triple-quoted string, at least three code tokens (a
//! lone `)` or `else:` says little), at least [`super::retrieve::QUERY_LINES`] non-empty
//! lines after the file's start (a full retrieval query), and not found verbatim (after
//! stripping) anywhere else in the repository — a line that is copied elsewhere would be
//! answered by retrieval trivially. Candidates are shuffled per repository with one seeded
//! generator and taken round-robin over the repositories (sorted by name) until `n`.

use std::collections::HashMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::metrics::{py_strip, tokenize_code};
use super::retrieve::{SourceFile, QUERY_LINES};
use super::RepoError;

/// One repository: its name and its files (paths relative to it).
#[derive(Clone, Debug)]
pub struct Repository {
    pub name: String,
    pub files: Vec<SourceFile>,
}

/// A line to complete. Serialised one per line in `tasks.jsonl`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Task {
    pub task_id: String,
    pub repository: String,
    /// The file, relative to the repository.
    pub path: String,
    /// 1-based line number of the target line.
    pub line: usize,
    /// sha256 of the file's bytes, so that a run on other files is refused.
    pub sha256: String,
    /// The target line as in the file (without its newline).
    pub target: String,
}

impl Task {
    /// The text before the target line: the cursor stands at the start of that line.
    pub fn left_context<'a>(&self, text: &'a str) -> Result<&'a str, RepoError> {
        if self.line == 0 {
            return Err(RepoError::Task {
                task: self.task_id.clone(),
                why: "line is 0: lines are numbered from 1".into(),
            });
        }
        let mut offset = 0;
        for _ in 1..self.line {
            match text[offset..].find('\n') {
                Some(i) => offset += i + 1,
                None => {
                    return Err(RepoError::Task {
                        task: self.task_id.clone(),
                        why: format!("{} has fewer than {} lines", self.path, self.line),
                    })
                }
            }
        }
        let line = text[offset..].split('\n').next().unwrap_or("");
        if line != self.target {
            return Err(RepoError::Task {
                task: self.task_id.clone(),
                why: format!(
                    "line {} of {} is {line:?}, not the task's target {:?}",
                    self.line, self.path, self.target
                ),
            });
        }
        Ok(&text[..offset])
    }
}

/// Per line of `text`: whether it lies inside, opens or closes a triple-quoted string.
/// A small scanner (triple quotes only; a `#` before any quote ends the line's code) —
/// enough to leave docstrings out, which are prose rather than code.
fn in_triple_quoted(text: &str) -> Vec<bool> {
    let mut open: Option<&str> = None;
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut touched = open.is_some();
        let mut rest = line;
        loop {
            match open {
                Some(delim) => match rest.find(delim) {
                    Some(i) => {
                        rest = &rest[i + 3..];
                        open = None;
                    }
                    None => break,
                },
                None => {
                    let next = ["\"\"\"", "'''"]
                        .into_iter()
                        .filter_map(|d| rest.find(d).map(|i| (i, d)))
                        .min();
                    let comment = rest.find('#');
                    match next {
                        Some((i, d)) if comment.is_none_or(|c| c > i) => {
                            touched = true;
                            rest = &rest[i + 3..];
                            open = Some(d);
                        }
                        _ => break,
                    }
                }
            }
        }
        out.push(touched);
    }
    out
}

/// The candidate lines (0-based) of one file, given the repository's stripped-line counts.
fn candidates(text: &str, counts: &HashMap<&str, usize>) -> Vec<usize> {
    let quoted = in_triple_quoted(text);
    let mut non_empty_before = 0;
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let s = py_strip(line);
        if s.is_empty() {
            continue;
        }
        if non_empty_before >= QUERY_LINES
            && !s.starts_with('#')
            && !quoted[i]
            && tokenize_code(s).len() >= 3
            && counts.get(s) == Some(&1)
        {
            out.push(i);
        }
        non_empty_before += 1;
    }
    out
}

/// Samples up to `n` tasks from `repositories` with `seed` (see the module's rules).
/// `sha256` gives each file's digest (the caller read its bytes).
pub fn sample_tasks(
    repositories: &[Repository],
    n: usize,
    seed: u64,
    sha256: impl Fn(&str, &SourceFile) -> String,
) -> Result<Vec<Task>, RepoError> {
    if n == 0 {
        return Err(RepoError::Input("n is 0: ask for at least one task".into()));
    }
    let mut order: Vec<&Repository> = repositories.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pools: Vec<(&Repository, Vec<(usize, usize)>)> = Vec::new();
    for repo in order {
        let mut files: Vec<usize> = (0..repo.files.len()).collect();
        files.sort_by(|&a, &b| repo.files[a].path.cmp(&repo.files[b].path));
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for f in &repo.files {
            for line in f.text.split('\n') {
                *counts.entry(py_strip(line)).or_default() += 1;
            }
        }
        let mut pool: Vec<(usize, usize)> = files
            .iter()
            .flat_map(|&f| {
                candidates(&repo.files[f].text, &counts)
                    .into_iter()
                    .map(move |l| (f, l))
            })
            .collect();
        pool.shuffle(&mut rng);
        pool.reverse(); // taken from the end below, so the shuffled order is kept
        pools.push((repo, pool));
    }
    if pools.iter().all(|(_, p)| p.is_empty()) {
        return Err(RepoError::Input(
            "no repository has a candidate line (each needs Python files with code lines after their first ten)".into(),
        ));
    }
    let mut picked: Vec<(&Repository, usize, usize)> = Vec::new();
    'fill: loop {
        let mut any = false;
        for (repo, pool) in pools.iter_mut() {
            if picked.len() == n {
                break 'fill;
            }
            if let Some((f, l)) = pool.pop() {
                picked.push((repo, f, l));
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    picked.sort_by(|a, b| {
        (a.0.name.as_str(), a.0.files[a.1].path.as_str(), a.2).cmp(&(
            b.0.name.as_str(),
            b.0.files[b.1].path.as_str(),
            b.2,
        ))
    });
    let mut digests: HashMap<(&str, usize), String> = HashMap::new();
    let mut tasks = Vec::with_capacity(picked.len());
    for (i, (repo, f, l)) in picked.into_iter().enumerate() {
        let file = &repo.files[f];
        let digest = digests
            .entry((repo.name.as_str(), f))
            .or_insert_with(|| sha256(&repo.name, file))
            .clone();
        tasks.push(Task {
            task_id: format!("{}/{i}", repo.name),
            repository: repo.name.clone(),
            path: file.path.clone(),
            line: l + 1,
            sha256: digest,
            target: file.text.split('\n').nth(l).unwrap_or("").to_string(),
        });
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, files: &[(&str, String)]) -> Repository {
        Repository {
            name: name.into(),
            files: files
                .iter()
                .map(|(p, t)| SourceFile {
                    path: p.to_string(),
                    text: t.clone(),
                })
                .collect(),
        }
    }

    fn code(prefix: &str, lines: usize) -> String {
        (0..lines)
            .map(|i| format!("{prefix}_{i} = compute({i}, x)\n"))
            .collect()
    }

    #[test]
    fn docstrings_are_marked() {
        let text = "x = 1\n\"\"\"doc\nmore\n\"\"\"\ny = '''a''' + z\n# '''not\nw = 2";
        assert_eq!(
            in_triple_quoted(text),
            [false, true, true, true, true, false, false]
        );
    }

    #[test]
    fn candidates_follow_the_rules() {
        let mut text = code("a", 12);
        text.push_str("\n# a comment here ok\n\"\"\"doc string line\"\"\"\n)\nshared = line(1)\nunique_line = f(2)\n");
        let counts_owner = format!("{text}shared = line(1)\n");
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for l in counts_owner.split('\n') {
            *counts.entry(py_strip(l)).or_default() += 1;
        }
        let lines: Vec<&str> = text.split('\n').collect();
        let got: Vec<&str> = candidates(&text, &counts)
            .into_iter()
            .map(|i| lines[i])
            .collect();
        // the first ten code lines give no full query; comment, docstring, ")" and the
        // duplicated line are skipped
        assert_eq!(
            got,
            [
                "a_10 = compute(10, x)",
                "a_11 = compute(11, x)",
                "unique_line = f(2)"
            ]
        );
    }

    #[test]
    fn sampling_is_seeded_round_robin_and_checks_its_input() {
        let repos = [
            repo("b", &[("m.py", code("b", 40)), ("n.py", code("bn", 40))]),
            repo("a", &[("x/y.py", code("a", 30))]),
        ];
        let digest = |_: &str, f: &SourceFile| format!("sha-{}", f.path);
        let t1 = sample_tasks(&repos, 10, 7, digest).unwrap();
        let t2 = sample_tasks(&repos, 10, 7, digest).unwrap();
        let t3 = sample_tasks(&repos, 10, 8, digest).unwrap();
        assert_eq!(t1, t2);
        assert_ne!(t1, t3);
        assert_eq!(t1.len(), 10);
        assert_eq!(
            t1.iter().filter(|t| t.repository == "a").count(),
            5,
            "round robin"
        );
        for t in &t1 {
            let file = repos
                .iter()
                .find(|r| r.name == t.repository)
                .and_then(|r| r.files.iter().find(|f| f.path == t.path))
                .unwrap();
            let left = t.left_context(&file.text).unwrap();
            assert!(left.ends_with('\n'));
            assert_eq!(t.sha256, format!("sha-{}", t.path));
        }
        // more than there are: all candidates, no error
        let all = sample_tasks(&repos, 10_000, 1, digest).unwrap();
        assert_eq!(all.len(), (40 - 10) * 2 + (30 - 10));
        assert!(matches!(
            sample_tasks(&repos, 0, 1, digest),
            Err(RepoError::Input(_))
        ));
        assert!(matches!(
            sample_tasks(&[repo("e", &[])], 5, 1, digest),
            Err(RepoError::Input(_))
        ));
    }

    #[test]
    fn a_changed_file_is_refused_by_line() {
        let t = Task {
            task_id: "r/0".into(),
            repository: "r".into(),
            path: "f.py".into(),
            line: 2,
            sha256: String::new(),
            target: "b = 2".into(),
        };
        assert_eq!(t.left_context("a = 1\nb = 2\n").unwrap(), "a = 1\n");
        assert!(t
            .left_context("a = 1\nb = 3\n")
            .unwrap_err()
            .to_string()
            .contains("not the task's target"));
        assert!(t
            .left_context("a = 1")
            .unwrap_err()
            .to_string()
            .contains("fewer than 2 lines"));
    }
}
