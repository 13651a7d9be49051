//! Cross-file retrieval exactly as Repoformer's RepoEval setting
//! (`repo_eval/cfc_retrieval/attach_cfc.py` with `run.sh`'s line-completion arguments):
//! the other files of the repository, nearest in the directory tree first, cut into
//! chunks of 10 non-empty lines every 5 lines; the query is the last 10 non-empty lines
//! before the cursor; chunks ranked by Jaccard similarity of their word sets; for each of
//! the top 10 the chunk *after* it is used (`use_next_chunk_as_cfc`, on for this query
//! type: what follows code like mine), duplicates dropped; the result written as comments
//! with each fragment's path.

use std::collections::{HashMap, HashSet};

/// `run.sh`'s line-completion settings.
pub const CHUNK_LINES: usize = 10;
pub const CHUNK_STRIDE: usize = 5;
pub const QUERY_LINES: usize = 10;
pub const TOP_K: usize = 10;
/// `--maximum_cross_files` and `--maximum_chunk_to_rerank`: only the first 1,000 files and
/// the first 1,000 chunks (nearest files first) are ranked.
pub const MAX_FILES: usize = 1000;
pub const MAX_CHUNKS: usize = 1000;

/// The reference's `tokenize_nltk`: NLTK's `word_tokenize`, then the `\w+` runs of each
/// word. Here the `\w+` runs of the text directly (letters, digits and `_` in Unicode's
/// sense, as Python's `\w`): the same words except where NLTK splits a contraction
/// ("don't" → "do", "n't" gives "do", "n", "t" there, "don", "t" here), which code rarely has.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// `jaccard_similarity(query, doc)`: |A ∩ B| / |A ∪ B| of the two word sets (0 for two
/// empty sets, where the reference would divide by zero; chunks without words are never
/// made, and an empty query matches nothing).
pub fn jaccard(a: &HashSet<&str>, b: &HashSet<&str>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// `file_distance`: the number of directory steps between two repository-relative paths
/// through their common directory.
pub fn file_distance(a: &str, b: &str) -> usize {
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    let common = pa
        .iter()
        .zip(&pb)
        .take_while(|(x, y)| x == y)
        .count()
        .min(pa.len() - 1)
        .min(pb.len() - 1);
    (pa.len() - 1 - common) + (pb.len() - 1 - common)
}

/// Python's `str.splitlines()` line boundaries.
fn py_splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let boundary = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if boundary {
            lines.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// One file of a repository: its path relative to the repository and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// A ranked chunk: where it is from and the text that goes into the prompt.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetrievedChunk {
    /// Repository-relative path of the chunk's file.
    pub path: String,
    /// The chunk's text (the next chunk after the best-matching one, as the reference does).
    pub text: String,
    /// Jaccard similarity of the *matched* chunk to the query.
    pub score: f64,
}

struct Chunk {
    file: usize,
    index: usize,
    text: String,
}

/// The query of a cursor: the last `QUERY_LINES` non-empty lines of the left context.
pub fn query_of(left_context: &str) -> String {
    let lines: Vec<&str> = left_context
        .split('\n')
        .filter(|l| !super::metrics::py_strip(l).is_empty())
        .collect();
    lines[lines.len().saturating_sub(QUERY_LINES)..].join("\n")
}

/// Retrieves the cross-file context for the cursor at the end of `left_context` in file
/// `current` of `files` (the repository; `current` itself is never searched).
pub fn retrieve(files: &[SourceFile], current: &str, left_context: &str) -> Vec<RetrievedChunk> {
    // Other files, nearest first (the reference sorts (distance, path) pairs).
    let mut others: Vec<(usize, &str, usize)> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.path != current)
        .map(|(i, f)| (file_distance(&f.path, current), f.path.as_str(), i))
        .collect();
    others.sort();
    others.truncate(MAX_FILES);

    let mut chunks: Vec<Chunk> = Vec::new();
    let mut id_of: HashMap<(usize, usize), usize> = HashMap::new();
    for &(_, _, file) in &others {
        let lines: Vec<&str> = files[file]
            .text
            .split('\n')
            .filter(|l| !super::metrics::py_strip(l).is_empty())
            .collect();
        let mut index = 0;
        for start in (0..lines.len()).step_by(CHUNK_STRIDE) {
            let text = lines[start..(start + CHUNK_LINES).min(lines.len())].join("\n");
            if !words(&text).is_empty() {
                id_of.insert((file, index), chunks.len());
                chunks.push(Chunk { file, index, text });
                index += 1;
            }
        }
    }
    // Only the first MAX_CHUNKS are ranked; the next chunk of one of them may lie beyond.
    let ranked_count = chunks.len().min(MAX_CHUNKS);
    let query = query_of(left_context);
    let query_words: HashSet<&str> = words(&query).into_iter().collect();
    let mut ranked: Vec<(f64, String, usize)> = chunks[..ranked_count]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let doc: HashSet<&str> = words(&c.text).into_iter().collect();
            // The reference sorts (score, "path|index") pairs in reverse: ties go to the
            // larger id string.
            let id = format!("{}|{}", files[c.file].path, c.index);
            (jaccard(&query_words, &doc), id, i)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));

    let mut out: Vec<RetrievedChunk> = Vec::new();
    for (score, _, i) in ranked.into_iter().take(TOP_K) {
        let c = &chunks[i];
        let next = id_of.get(&(c.file, c.index + 1)).map_or(i, |&n| n);
        let text = &chunks[next].text;
        if out.iter().all(|o| &o.text != text) {
            out.push(RetrievedChunk {
                path: files[c.file].path.clone(),
                text: text.clone(),
                score,
            });
        }
    }
    out
}

/// The cross-file context as the reference writes it into the prompt: a header comment,
/// then each fragment's path and lines as `# ` comments. `repository` prefixes the paths
/// (the reference's paths start with the repository's name). Empty without chunks.
pub fn cross_file_context(repository: &str, chunks: &[RetrievedChunk]) -> String {
    if chunks.is_empty() {
        return String::new();
    }
    let mut cfc =
        String::from("# Here are some relevant code fragments from other files of the repo:\n\n");
    for c in chunks {
        cfc.push_str("# the below code fragment can be found in:\n");
        cfc.push_str(&format!("# {repository}/{}\n", c.path));
        let lines: Vec<String> = py_splitlines(c.text.trim_matches('\n'))
            .into_iter()
            .map(|l| format!("# {l}"))
            .collect();
        cfc.push_str(&lines.join("\n"));
        cfc.push_str("\n\n");
    }
    cfc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn distance_counts_directory_steps() {
        assert_eq!(file_distance("a.py", "b.py"), 0);
        assert_eq!(file_distance("x/a.py", "b.py"), 1);
        assert_eq!(file_distance("x/a.py", "y/b.py"), 2);
        assert_eq!(file_distance("x/y/a.py", "x/b.py"), 1);
        // os.path.commonpath of a path and itself is the path: distance 0
        assert_eq!(file_distance("x/a.py", "x/a.py"), 0);
    }

    #[test]
    fn words_and_jaccard() {
        assert_eq!(
            words("self.x_1 = foo(bar)  # é"),
            ["self", "x_1", "foo", "bar", "é"]
        );
        let a: HashSet<&str> = ["a", "b", "c"].into();
        let b: HashSet<&str> = ["b", "c", "d"].into();
        assert_eq!(jaccard(&a, &b), 0.5);
        assert_eq!(jaccard(&HashSet::new(), &HashSet::new()), 0.0);
    }

    #[test]
    fn query_is_the_last_ten_non_empty_lines() {
        let left: String = (0..15).map(|i| format!("l{i}\n\n")).collect();
        assert_eq!(
            query_of(&left),
            (5..15)
                .map(|i| format!("l{i}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(query_of(""), "");
    }

    #[test]
    fn the_chunk_after_the_best_match_is_returned() {
        // 20 non-empty lines: chunks start at 0, 5, 10, 15 (four chunks).
        let other: String = (0..20).map(|i| format!("w{i} common\n")).collect();
        let files = [
            file("pkg/cur.py", "w3 w4 w5\n"),
            file("pkg/other.py", &other),
        ];
        let hits = retrieve(&files, "pkg/cur.py", "w12 w13 w14 w15");
        // chunk 2 (lines 10..20) and chunk 3 (15..20) match w12–w15 best; chunk 2's next
        // is chunk 3, chunk 3 has no next and is itself: one fragment after de-duplication.
        assert_eq!(hits[0].path, "pkg/other.py");
        assert_eq!(
            hits[0].text,
            (15..20)
                .map(|i| format!("w{i} common"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            hits.iter().all(|h| h.path != "pkg/cur.py"),
            "the current file is never searched"
        );
        let texts: HashSet<&String> = hits.iter().map(|h| &h.text).collect();
        assert_eq!(texts.len(), hits.len(), "no fragment twice");
        assert!(hits.len() <= TOP_K);
    }

    #[test]
    fn nearest_files_come_first_within_the_chunk_limit() {
        // 1,001 chunks in a far file after 1 in a near one: the near one is ranked.
        let far: String = (0..(MAX_CHUNKS * CHUNK_STRIDE + 5))
            .map(|i| format!("far{i}\n"))
            .collect();
        let files = [
            file("a/cur.py", ""),
            file("a/near.py", "target words\n"),
            file("b/c/far.py", &far),
        ];
        let hits = retrieve(&files, "a/cur.py", "target words");
        assert_eq!(hits[0].path, "a/near.py");
        assert_eq!(hits[0].score, 1.0);
    }

    #[test]
    fn context_is_written_as_the_reference_writes_it() {
        let chunks = [RetrievedChunk {
            path: "x/y.py".into(),
            text: "\ndef f():\n    return 1\n".into(),
            score: 0.5,
        }];
        assert_eq!(
            cross_file_context("email", &chunks),
            "# Here are some relevant code fragments from other files of the repo:\n\n\
             # the below code fragment can be found in:\n# email/x/y.py\n\
             # def f():\n#     return 1\n\n"
        );
        assert_eq!(cross_file_context("email", &[]), "");
        assert_eq!(py_splitlines("a\r\nb\rc\u{2028}d"), ["a", "b", "c", "d"]);
    }
}
