//! Judging a language model's answer to a PLaG prompt.
//!
//! As in the paper's evaluation (`measure_perf` in `benchmark_llm.py`): the answer is the
//! time written in double quotes; of several quoted times the first and the last are
//! tried; parts are summed ("1 hour 25 minutes"); after "=" only the last expression counts,
//! after " or " only the last alternative, and a parenthesis ends the answer; months are
//! 28–31 days and years 365–366, so a stated time is itself a range, and it is correct when
//! some reading of it lies within the plan's optimal `[low, high]`: when the two ranges
//! overlap ("12 months", 336–372 days, is correct for an optimal 360 days). The reference's
//! `measure_perf` asks for either end inside, which marks that answer wrong although one
//! reading of it is exactly right; the two rules differ only for an answer whose range
//! strictly contains the optimal one. An answer that gives a range ("8 min 30 s – 10 min
//! 30 s", "2 to 3 hours") is read as one and counted wrong, as the paper does. Unlike the
//! paper, an answer without a quoted time is not searched for elsewhere: it is reported as
//! such, with the reason.

use serde::Serialize;

use super::{schedule, unit_seconds, Plan, Seconds};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreFailure {
    /// No time in double quotes.
    NoQuotedTime,
    /// A quoted number with a unit we do not know.
    UnknownUnit,
    /// A range ("2 to 3 hours"), which the paper counts as wrong.
    RangeAnswer,
    /// A readable time outside the optimal range.
    OutOfRange,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Score {
    pub correct: bool,
    /// The quoted text that was judged, if any.
    pub answer_text: Option<String>,
    pub answer_seconds: Option<Seconds>,
    pub expected_seconds: Seconds,
    /// Why the answer is not correct; `None` when it is.
    pub reason: Option<ScoreFailure>,
    pub message: String,
}

/// Scores `answer` against the optimal time of `plan`.
pub fn score_answer(plan: &Plan, answer: &str) -> Score {
    score_against(schedule::analyze(plan).optimal_seconds, answer)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Some reading of `answer` lies within `optimal`.
fn overlaps(answer: Seconds, optimal: Seconds) -> bool {
    (answer.high > optimal.low || close(answer.high, optimal.low))
        && (answer.low < optimal.high || close(answer.low, optimal.high))
}

pub(crate) fn score_against(expected: Seconds, answer: &str) -> Score {
    let quoted: Vec<String> = quoted_segments(answer)
        .into_iter()
        .filter(|q| {
            words_to_numbers(&words(q))
                .iter()
                .any(|w| matches!(w, Word::Number(_)))
        })
        .collect();
    let fail = |reason, text: Option<String>, seconds, message: String| Score {
        correct: false,
        answer_text: text,
        answer_seconds: seconds,
        expected_seconds: expected,
        reason: Some(reason),
        message,
    };
    let Some(first) = quoted.first() else {
        return fail(
            ScoreFailure::NoQuotedTime,
            None,
            None,
            "no time in double quotes in the answer".to_string(),
        );
    };
    let mut candidates = vec![first.clone()];
    if let Some(last) = quoted.last().filter(|l| *l != first) {
        candidates.push(last.clone());
    }
    let mut outcome = None;
    for text in candidates {
        let judged = match read_time(&text) {
            Ok(seconds) if overlaps(seconds, expected) => {
                return Score {
                    correct: true,
                    answer_text: Some(text),
                    answer_seconds: Some(seconds),
                    expected_seconds: expected,
                    reason: None,
                    message: "correct".to_string(),
                };
            }
            Ok(seconds) => fail(
                ScoreFailure::OutOfRange,
                Some(text.clone()),
                Some(seconds),
                format!(
                    "\"{text}\" is {}, outside the optimal {}",
                    super::humanize(seconds),
                    super::humanize(expected)
                ),
            ),
            Err((reason, why)) => fail(
                reason,
                Some(text.clone()),
                None,
                format!("\"{text}\": {why}"),
            ),
        };
        // A readable but wrong time says more than an unreadable one.
        if outcome.is_none() || judged.reason == Some(ScoreFailure::OutOfRange) {
            outcome = Some(judged);
        }
    }
    outcome.unwrap_or_else(|| {
        fail(
            ScoreFailure::NoQuotedTime,
            None,
            None,
            "no time in double quotes in the answer".into(),
        )
    })
}

/// Text between straight or curly double quotes.
fn quoted_segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match (c, open) {
            ('"' | '\u{201c}' | '\u{201d}', Some(start)) if c != '\u{201c}' => {
                out.push(text[start..i].trim().to_string());
                open = None;
            }
            ('"' | '\u{201c}', None) => open = Some(i + c.len_utf8()),
            _ => {}
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Word {
    Number(f64),
    Text(String),
}

fn words(text: &str) -> Vec<Word> {
    let lowered = text.to_lowercase();
    let mut out = Vec::new();
    let chars: Vec<char> = lowered.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || (chars[i] == ',' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            let digits: String = chars[start..i].iter().filter(|c| **c != ',').collect();
            match digits.trim_end_matches('.').parse::<f64>() {
                Ok(v) => out.push(Word::Number(v)),
                Err(_) => out.push(Word::Text(digits)),
            }
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '-') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            for part in word.split('-').filter(|p| !p.is_empty()) {
                out.push(Word::Text(part.to_string()));
            }
        } else if matches!(c, '=' | '(' | '-' | '–' | '—') {
            out.push(Word::Text(c.to_string()));
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

fn number_word(w: &str) -> Option<f64> {
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = SMALL.iter().position(|s| *s == w) {
        return Some(i as f64);
    }
    TENS.iter()
        .position(|s| *s == w)
        .map(|i| (i as f64 + 2.0) * 10.0)
}

fn is_unit(word: &Word) -> bool {
    matches!(word, Word::Text(w) if unit_seconds(w).is_ok() || w == "m")
}

/// Number words become numbers: "forty five" → 45, "an hour" → 1 hour,
/// "half an hour" → 0.5 hour, "two and a half hours" → 2.5 hours,
/// "1 hour and a half" → 1.5 hour. Other words are kept.
fn words_to_numbers(input: &[Word]) -> Vec<Word> {
    let text = |k: usize| match input.get(k) {
        Some(Word::Text(t)) => Some(t.as_str()),
        _ => None,
    };
    let mut out: Vec<Word> = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if text(i) == Some("half")
            && matches!(text(i + 1), Some("a" | "an"))
            && input.get(i + 2).is_some_and(is_unit)
        {
            out.push(Word::Number(0.5));
            i += 2;
            continue;
        }
        if matches!(text(i), Some("a" | "an")) && input.get(i + 1).is_some_and(is_unit) {
            out.push(Word::Number(1.0));
            i += 1;
            continue;
        }
        if text(i) == Some("and")
            && matches!(text(i + 1), Some("a" | "an"))
            && text(i + 2) == Some("half")
        {
            // Adds to the number before it, with or without its unit in between.
            let n = out.len();
            let target = match out.last() {
                Some(Word::Number(_)) => Some(n - 1),
                Some(w) if n >= 2 && is_unit(w) && matches!(out[n - 2], Word::Number(_)) => {
                    Some(n - 2)
                }
                _ => None,
            };
            if let Some(t) = target {
                if let Word::Number(v) = out[t] {
                    out[t] = Word::Number(v + 0.5);
                }
                i += 3;
                continue;
            }
        }
        if let Some(mut value) = text(i).and_then(number_word) {
            i += 1;
            loop {
                match text(i) {
                    Some("hundred") => value *= 100.0,
                    Some(w) if number_word(w).is_some() => value += number_word(w).unwrap_or(0.0),
                    // "one hundred and five"
                    Some("and") if text(i + 1).and_then(number_word).is_some() => {}
                    _ => break,
                }
                i += 1;
            }
            out.push(Word::Number(value));
            continue;
        }
        out.push(input[i].clone());
        i += 1;
    }
    out
}

fn after_last(words: Vec<Word>, marker: &str) -> Vec<Word> {
    match words
        .iter()
        .rposition(|w| matches!(w, Word::Text(t) if t == marker))
    {
        Some(k) => words[k + 1..].to_vec(),
        None => words,
    }
}

/// Reads the time in one quoted answer.
fn read_time(text: &str) -> Result<Seconds, (ScoreFailure, String)> {
    let mut ws = words_to_numbers(&words(text));
    ws = after_last(ws, "=");
    ws = after_last(ws, "or");
    if let Some(k) = ws
        .iter()
        .position(|w| matches!(w, Word::Text(t) if t == "("))
    {
        ws.truncate(k);
    }
    // A dash or "to" with a number on both sides, units or not in between: "2-3 hours",
    // "8 min 30 s – 10 min 30 s", "2 hours to 3 hours".
    let is_number = |w: &Word| matches!(w, Word::Number(_));
    let range_at = ws.iter().enumerate().position(|(k, w)| {
        matches!(w, Word::Text(t) if matches!(t.as_str(), "-" | "–" | "—" | "to"))
            && ws[..k].iter().any(is_number)
            && ws[k + 1..].iter().any(is_number)
    });
    if let Some(k) = range_at {
        // "2-3 hours": the unit after the second number is the first's too.
        let mut left = ws[..k].to_vec();
        if !left.last().is_some_and(is_unit) {
            left.extend(ws[k + 1..].iter().find(|w| is_unit(w)).cloned());
        }
        let why = match (sum_time(&left), sum_time(&ws[k + 1..])) {
            (Ok(a), Ok(b)) => format!(
                "a range ({} to {}), not one time; the paper counts a range as wrong",
                super::humanize(a),
                super::humanize(b)
            ),
            _ => "a range, not one time; the paper counts a range as wrong".to_string(),
        };
        return Err((ScoreFailure::RangeAnswer, why));
    }
    sum_time(&ws)
}

/// The sum of the number-unit pairs in `ws` ("1 hour 25 minutes").
fn sum_time(ws: &[Word]) -> Result<Seconds, (ScoreFailure, String)> {
    let mut total: Option<Seconds> = None;
    for (k, w) in ws.iter().enumerate() {
        let Word::Number(n) = w else { continue };
        let unit = match ws.get(k + 1) {
            Some(Word::Text(u)) => {
                unit_seconds(u).map_err(|e| (ScoreFailure::UnknownUnit, e.to_string()))?
            }
            _ => {
                return Err((
                    ScoreFailure::UnknownUnit,
                    format!("no unit after the number {n}"),
                ))
            }
        };
        let part = Seconds {
            low: n * unit.low,
            high: n * unit.high,
        };
        total = Some(total.unwrap_or(Seconds::ZERO) + part);
    }
    total.ok_or((
        ScoreFailure::NoQuotedTime,
        "no time in the quoted answer".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: f64 = 3600.0;
    fn exact(s: f64) -> Seconds {
        Seconds { low: s, high: s }
    }

    #[test]
    fn reads_the_quoted_time() {
        let s = score_against(
            exact(5100.0),
            "The shortest possible time is \"85 minutes\".",
        );
        assert!(s.correct, "{s:?}");
        assert_eq!(s.answer_seconds, Some(exact(5100.0)));
        assert_eq!(s.reason, None);
        let s = score_against(exact(5100.0), "So: \"1 hour 25 min\"");
        assert!(s.correct, "{s:?}");
        let s = score_against(
            exact(17100.0),
            "30 min + 4 hours + 15 min = 4 hours 45 min = \"285 min\"",
        );
        assert!(s.correct, "{s:?}");
    }

    #[test]
    fn first_or_last_quoted_time_counts() {
        let answer = "Step \"Boil water\" first. I guess \"2 hours\"... no, \"85 min\".";
        assert!(score_against(exact(5100.0), answer).correct);
        let answer = "\"85 min\", or maybe \"3 hours\"";
        assert!(score_against(exact(5100.0), answer).correct);
    }

    #[test]
    fn words_equals_or_and_parentheses() {
        assert!(score_against(exact(1.5 * HOUR), "\"an hour and a half\"").correct);
        assert!(score_against(exact(1.5 * HOUR), "\"one and a half hours\"").correct);
        assert!(score_against(exact(0.5 * HOUR), "\"half an hour\"").correct);
        assert!(score_against(exact(45.0 * 60.0), "\"forty-five minutes\"").correct);
        assert!(score_against(exact(HOUR), "\"60 min = 1 hour\"").correct);
        assert!(score_against(exact(HOUR), "\"2 hours or 1 hour\"").correct);
        assert!(score_against(exact(HOUR), "\"1 hour (60 minutes)\"").correct);
        assert!(score_against(exact(HOUR), "“1 hour”").correct);
    }

    #[test]
    fn months_and_years_use_the_papers_ranges() {
        let expected = Seconds {
            low: 56.0 * 86400.0,
            high: 62.0 * 86400.0,
        };
        assert!(score_against(expected, "\"2 months\"").correct);
        assert!(score_against(expected, "\"60 days\"").correct);
        assert!(!score_against(expected, "\"9 weeks\"").correct);
    }

    #[test]
    fn an_answer_whose_reading_contains_the_optimal_time_is_correct() {
        // "12 months" is 336–372 days; an optimal 360 days is one reading of it.
        let s = score_against(exact(360.0 * 86400.0), "\"12 months\"");
        assert!(s.correct, "{s:?}");
        assert_eq!(s.message, "correct");
        let s = score_against(exact(400.0 * 86400.0), "\"12 months\"");
        assert!(!s.correct);
        assert!(s.message.contains("outside"), "{}", s.message);
    }

    #[test]
    fn ranges_are_read_as_ranges_and_counted_wrong() {
        let optimal = Seconds {
            low: 510.0,
            high: 630.0,
        };
        for answer in [
            "\"8 min 30 s – 10 min 30 s\"",
            "\"8 min 30 s - 10 min 30 s\"",
            "\"8.5 to 10.5 minutes\"",
            "\"8.5-10.5 minutes\"",
            "\"8 minutes 30 seconds to 10 minutes 30 seconds\"",
        ] {
            let s = score_against(optimal, answer);
            assert_eq!(s.reason, Some(ScoreFailure::RangeAnswer), "{answer}: {s:?}");
            assert!(!s.correct);
            assert!(
                s.message.contains("8 min 30 s to 10 min 30 s"),
                "{answer}: {}",
                s.message
            );
        }
        // Not a range: a dash with no number after it.
        assert!(score_against(exact(HOUR), "\"1 hour - roughly\"").correct);
    }

    #[test]
    fn says_why_an_answer_is_wrong() {
        let s = score_against(exact(HOUR), "It takes one hour.");
        assert_eq!(s.reason, Some(ScoreFailure::NoQuotedTime));
        assert_eq!(s.answer_text, None);
        let s = score_against(exact(HOUR), "\"3 fortnights\"");
        assert_eq!(s.reason, Some(ScoreFailure::UnknownUnit));
        assert!(s.message.contains("fortnights"), "{}", s.message);
        let s = score_against(exact(HOUR), "\"2 hours\"");
        assert_eq!(s.reason, Some(ScoreFailure::OutOfRange));
        assert_eq!(s.answer_seconds, Some(exact(2.0 * HOUR)));
        assert!(
            s.message.contains("outside the optimal 1 h"),
            "{}",
            s.message
        );
        let s = score_against(exact(HOUR), "\"1 to 2 hours\"");
        assert_eq!(s.reason, Some(ScoreFailure::RangeAnswer));
        let s = score_against(exact(HOUR), "\"1-2 hours\"");
        assert_eq!(s.reason, Some(ScoreFailure::RangeAnswer));
        let s = score_against(exact(HOUR), "\"60\"");
        assert_eq!(s.reason, Some(ScoreFailure::UnknownUnit));
    }
}
