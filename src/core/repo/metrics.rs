//! Code-completion metrics as Repoformer's `repo_eval/eval_metric.py` computes them: the
//! prediction cut to the target's number of non-empty lines, exact match on
//! `tokenize_code` token lists, and edit similarity both ways — CrossCodeEval's
//! `fuzz.ratio` and RepoEval's 1 − Levenshtein / max length.
//!
//! Hand-written rather than a crate: the reference's definitions are a few lines each, and
//! matching them exactly (Python's `str.strip`, banker's rounding in `fuzz.ratio`, the
//! regular expressions of `tokenize_code`) matters more than speed; the unit tests pin each
//! one to values worked out from the reference's code.

/// Python's `str.isspace` (and so `\s` and `str.strip()`): Unicode whitespace plus the
/// four ASCII separators 0x1C–0x1F, which Rust's `char::is_whitespace` leaves out.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// `tokenize_code` of the reference: runs of `[A-Za-z0-9_]` (split where a lower-case
/// letter meets an upper-case one), every other non-space character a token of its own,
/// quotes (`"`, `'`) written as a backtick.
pub fn tokenize_code(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for c in code.chars() {
        if word_char(c) {
            // `re.sub(r"([a-z])([A-Z])", r"\1 \2")`: a lower-case letter followed by an
            // upper-case one ends a token.
            if c.is_ascii_uppercase() && word.chars().last().is_some_and(|p| p.is_ascii_lowercase())
            {
                tokens.push(std::mem::take(&mut word));
            }
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !py_space(c) {
            tokens.push(match c {
                '"' | '\'' => "`".to_string(),
                other => other.to_string(),
            });
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// The reference's post-processing for line completion: the prediction's non-empty lines,
/// as many as the target has, joined by newlines.
pub fn truncate_to_target_lines(prediction: &str, target: &str) -> String {
    let keep = target
        .split('\n')
        .filter(|l| !py_strip(l).is_empty())
        .count();
    prediction
        .split('\n')
        .filter(|l| !py_strip(l).is_empty())
        .take(keep)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `cal_exact_match`: the two token lists equal.
pub fn exact_match(prediction: &str, target: &str) -> bool {
    tokenize_code(prediction) == tokenize_code(target)
}

/// Levenshtein distance over Unicode code points (Python strings), unit costs:
/// `editdistance.eval`.
pub fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The insertion/deletion distance (a substitution costs 2), which python-Levenshtein's
/// `ratio` — and so `fuzz.ratio` — is built on: len(a) + len(b) − 2·LCS.
fn indel_distance(a: &[char], b: &[char]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for &ca in a {
        let mut diagonal = 0;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    a.len() + b.len() - 2 * row[b.len()]
}

/// Python's `round` (half to even), which fuzzywuzzy's `intr` uses.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// `cal_edit_sim` for one pair: fuzzywuzzy's `fuzz.ratio` of the stripped strings (with
/// python-Levenshtein: an integer 0–100; equal strings 100 even when empty, one empty 0),
/// divided by 100 here so that both edit similarities are on 0–1.
pub fn edit_similarity(prediction: &str, target: &str) -> f64 {
    let (p, t) = (py_strip(prediction), py_strip(target));
    if p == t {
        return 1.0;
    }
    if p.is_empty() || t.is_empty() {
        return 0.0;
    }
    let (a, b): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
    let total = (a.len() + b.len()) as f64;
    let ratio = (total - indel_distance(&a, &b) as f64) / total;
    round_half_even(100.0 * ratio) / 100.0
}

/// `cal_edit_sim_repoeval` for one pair: 1 − Levenshtein / max length of the stripped
/// strings; 0 when both are empty (the reference skips the pair but still divides by it).
pub fn edit_similarity_repoeval(prediction: &str, target: &str) -> f64 {
    let a: Vec<char> = py_strip(prediction).chars().collect();
    let b: Vec<char> = py_strip(target).chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    1.0 - levenshtein(&a, &b) as f64 / longest as f64
}

/// The three scores of one completion, after the reference's line truncation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompletionScores {
    pub exact_match: bool,
    pub edit_similarity: f64,
    pub edit_similarity_repoeval: f64,
}

/// Scores `prediction` (raw model output) against the target line(s).
pub fn score_completion(prediction: &str, target: &str) -> CompletionScores {
    let cut = truncate_to_target_lines(prediction, target);
    CompletionScores {
        exact_match: exact_match(&cut, target),
        edit_similarity: edit_similarity(&cut, target),
        edit_similarity_repoeval: edit_similarity_repoeval(&cut, target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_code_follows_the_reference_regexes() {
        // re.sub(r"([^A-Za-z0-9_])", r" \1 ", ...) then the camelCase split, then quotes.
        assert_eq!(
            tokenize_code("x = self.getValue('a_b')"),
            ["x", "=", "self", ".", "get", "Value", "(", "`", "a_b", "`", ")"]
        );
        // "aBCd": only the lower→upper boundary splits; digits and underscores stay.
        assert_eq!(tokenize_code("aBCd9_x"), ["a", "BCd9_x"]);
        assert_eq!(tokenize_code("  \t\n"), Vec::<String>::new());
        // non-ASCII letters are not word characters in [A-Za-z0-9_]
        assert_eq!(tokenize_code("naïve"), ["na", "ï", "ve"]);
        assert_eq!(tokenize_code("\"s\""), ["`", "s", "`"]);
    }

    #[test]
    fn exact_match_ignores_spacing_but_not_tokens() {
        assert!(exact_match("foo(a,b)", "  foo( a , b )"));
        assert!(!exact_match("foo(a, c)", "foo(a, b)"));
        // both quote kinds are one token
        assert!(exact_match("x = 'a'", "x = \"a\""));
    }

    #[test]
    fn edit_similarities_match_the_references_values() {
        // fuzz.ratio("kitten", "sitting") with python-Levenshtein: indel distance 5 over
        // 13 characters → 8/13 = 61.5 → 62.
        assert_eq!(edit_similarity("kitten", "sitting"), 0.62);
        // editdistance.eval("kitten", "sitting") = 3, max length 7.
        assert!((edit_similarity_repoeval("kitten", "sitting") - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        assert_eq!(edit_similarity(" same ", "same"), 1.0);
        assert_eq!(edit_similarity("", ""), 1.0);
        assert_eq!(edit_similarity("", "x"), 0.0);
        assert_eq!(edit_similarity_repoeval("", ""), 0.0);
        // "ab" vs "ba": LCS 1, indel 2 over 4 → 50.0 exactly, kept at 50 by half-to-even
        assert_eq!(edit_similarity("ab", "ba"), 0.5);
        // 100·(1 − 1/8)… a value with .5 rounds to even: "abcd" vs "abce" → 6/8 = 75
        assert_eq!(edit_similarity("abcd", "abce"), 0.75);
    }

    #[test]
    fn round_half_even_is_pythons_round() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(62.4), 62.0);
        assert_eq!(round_half_even(62.6), 63.0);
    }

    #[test]
    fn levenshtein_counts_code_points() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&c("é"), &c("e")), 1);
        assert_eq!(levenshtein(&c(""), &c("abc")), 3);
        assert_eq!(levenshtein(&c("flaw"), &c("lawn")), 2);
        assert_eq!(indel_distance(&c("flaw"), &c("lawn")), 2);
    }

    #[test]
    fn predictions_are_cut_to_the_targets_non_empty_lines() {
        let raw = "\n  return x\n    y = 2\n";
        assert_eq!(
            truncate_to_target_lines(raw, "    return x\n"),
            "  return x"
        );
        let s = score_completion(raw, "    return x");
        assert!(s.exact_match);
        assert_eq!(s.edit_similarity, 1.0);
        assert_eq!(s.edit_similarity_repoeval, 1.0);
    }
}
