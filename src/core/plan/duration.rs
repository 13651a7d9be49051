//! Durations as ranges of seconds, parsed from the phrases AsyncHow uses.
//!
//! Conventions follow the paper's generator (`get_timedelta_interval` in
//! fangru-lin/graph-llm-asynchow-plan): a month is 28–31 days and a year 365–366 days,
//! so "2 months" is the range [56, 62] days; every other unit is exact. A phrase may
//! sum several parts ("1 hour 30 minutes") or give a range ("10-15 minutes").
//!
//! One deliberate difference: the paper's answer parser reads a bare "m" as *months*.
//! Here "m" is refused as ambiguous, because "5m" far more often means minutes.

use std::fmt;

use serde::{Deserialize, Serialize};

const MINUTE: f64 = 60.0;
const HOUR: f64 = 3_600.0;
const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;

/// A duration known only to lie within `[low, high]` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "[f64; 2]", try_from = "[f64; 2]")]
pub struct Seconds {
    pub low: f64,
    pub high: f64,
}

impl Seconds {
    pub const ZERO: Seconds = Seconds {
        low: 0.0,
        high: 0.0,
    };

    /// A range, checked: both ends finite, non-negative, `low <= high`.
    pub fn range(low: f64, high: f64) -> Result<Seconds, DurationError> {
        if !low.is_finite() || !high.is_finite() {
            return Err(DurationError::NotFinite);
        }
        if low < 0.0 || high < 0.0 {
            return Err(DurationError::Negative);
        }
        if low > high {
            return Err(DurationError::LowAboveHigh { low, high });
        }
        Ok(Seconds { low, high })
    }

    pub fn exact(seconds: f64) -> Result<Seconds, DurationError> {
        Seconds::range(seconds, seconds)
    }

    pub fn to_array(self) -> [f64; 2] {
        [self.low, self.high]
    }
}

impl std::ops::Add for Seconds {
    type Output = Seconds;
    fn add(self, other: Seconds) -> Seconds {
        Seconds {
            low: self.low + other.low,
            high: self.high + other.high,
        }
    }
}

impl From<Seconds> for [f64; 2] {
    fn from(s: Seconds) -> [f64; 2] {
        s.to_array()
    }
}

impl TryFrom<[f64; 2]> for Seconds {
    type Error = DurationError;
    fn try_from([low, high]: [f64; 2]) -> Result<Seconds, DurationError> {
        Seconds::range(low, high)
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("the duration is empty")]
    Empty,
    #[error("no number before the unit in {0:?}")]
    MissingNumber(String),
    #[error("{0:?} is not a number")]
    BadNumber(String),
    #[error("no unit after the number in {0:?} (expected seconds, minutes, hours, days, weeks, months or years)")]
    MissingUnit(String),
    #[error("unknown unit {0:?} (expected seconds, minutes, hours, days, weeks, months or years)")]
    UnknownUnit(String),
    #[error("ambiguous unit {0:?}: write \"min\" for minutes or \"month\" for months")]
    AmbiguousUnit(String),
    #[error("a duration cannot be negative")]
    Negative,
    #[error("a duration must be a finite number of seconds")]
    NotFinite,
    #[error("the low end {low} s is above the high end {high} s")]
    LowAboveHigh { low: f64, high: f64 },
}

/// The range one unit spans, in seconds, by the paper's conventions.
pub fn unit_seconds(unit: &str) -> Result<Seconds, DurationError> {
    let exact = |s: f64| Seconds { low: s, high: s };
    Ok(match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => exact(1.0),
        "min" | "mins" | "minute" | "minutes" => exact(MINUTE),
        "h" | "hr" | "hrs" | "hour" | "hours" => exact(HOUR),
        "d" | "day" | "days" => exact(DAY),
        "w" | "wk" | "wks" | "week" | "weeks" => exact(WEEK),
        "mo" | "month" | "months" => Seconds {
            low: 28.0 * DAY,
            high: 31.0 * DAY,
        },
        "y" | "yr" | "yrs" | "year" | "years" => Seconds {
            low: 365.0 * DAY,
            high: 366.0 * DAY,
        },
        "m" => return Err(DurationError::AmbiguousUnit(unit.to_string())),
        _ => return Err(DurationError::UnknownUnit(unit.to_string())),
    })
}

/// Splits text into alternating number and word tokens; anything else separates them.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Number(&'a str),
    Word(&'a str),
    Dash,
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || bytes[i] == b'.'
                    || (bytes[i] == b',' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(Token::Number(&text[start..i]));
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Token::Word(&text[start..i]));
        } else if c == b'-' {
            out.push(Token::Dash);
            i += 1;
        } else {
            // Multi-byte characters (an en dash, say) count as a range dash; others separate.
            let ch = text[i..].chars().next().unwrap_or(' ');
            if ch == '–' || ch == '—' {
                out.push(Token::Dash);
            }
            i += ch.len_utf8();
        }
    }
    out
}

fn number(text: &str) -> Result<f64, DurationError> {
    let cleaned: String = text.chars().filter(|c| *c != ',').collect();
    match cleaned.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(DurationError::BadNumber(text.to_string())),
    }
}

/// Parses "30 minutes", "1 hour 30 minutes", "10-15 min", "2 months" into seconds.
///
/// Words that are not units ("about", "and", "to") between parts are refused, so that a
/// typo never silently drops a part; use [`parse_duration_lenient`] to scan prose.
pub fn parse_duration(phrase: &str) -> Result<Seconds, DurationError> {
    let lowered = phrase.trim().to_ascii_lowercase();
    if lowered.is_empty() {
        return Err(DurationError::Empty);
    }
    if lowered.starts_with('-') {
        return Err(DurationError::Negative);
    }
    let toks = tokens(&lowered);
    let mut total = Seconds::ZERO;
    let mut i = 0;
    while i < toks.len() {
        let low_number = match toks[i] {
            Token::Number(n) => number(n)?,
            Token::Word(w) => {
                // "and" joins parts ("1 hour and 30 minutes"); anything else is out of place.
                if w == "and" {
                    i += 1;
                    continue;
                }
                return Err(match unit_seconds(w) {
                    Ok(_) | Err(DurationError::AmbiguousUnit(_)) => {
                        DurationError::MissingNumber(phrase.to_string())
                    }
                    Err(e) => e,
                });
            }
            Token::Dash => return Err(DurationError::Negative),
        };
        i += 1;
        // An optional "-N" makes the part a range.
        let mut high_number = low_number;
        if matches!(toks.get(i), Some(Token::Dash)) {
            match toks.get(i + 1) {
                Some(Token::Number(n)) => {
                    high_number = number(n)?;
                    i += 2;
                }
                _ => return Err(DurationError::MissingNumber(phrase.to_string())),
            }
        }
        let unit = match toks.get(i) {
            Some(Token::Word(w)) => unit_seconds(w)?,
            _ => return Err(DurationError::MissingUnit(phrase.to_string())),
        };
        i += 1;
        let part = Seconds::range(low_number * unit.low, high_number * unit.high)?;
        total = total + part;
    }
    Ok(total)
}

/// Sums every "number unit" part found in free text, ignoring other words, as the paper's
/// answer parser does. Returns the parts' total, or the first unit it could not read.
pub fn parse_duration_lenient(text: &str) -> Result<Option<Seconds>, DurationError> {
    let lowered = text.to_ascii_lowercase();
    let toks = tokens(&lowered);
    let mut total: Option<Seconds> = None;
    let mut i = 0;
    while i < toks.len() {
        if let Token::Number(n) = toks[i] {
            let value = number(n)?;
            match toks.get(i + 1) {
                Some(Token::Word(w)) => {
                    let unit = unit_seconds(w)?;
                    let part = Seconds::range(value * unit.low, value * unit.high)?;
                    total = Some(total.unwrap_or(Seconds::ZERO) + part);
                    i += 2;
                    continue;
                }
                _ => return Err(DurationError::MissingUnit(text.trim().to_string())),
            }
        }
        i += 1;
    }
    Ok(total)
}

/// Writes a range back as a phrase that [`parse_duration`] reads to the same range.
pub fn format_duration(d: Seconds) -> String {
    let plural = |n: f64, unit: &str| {
        let n_text = format_number(n);
        if n == 1.0 {
            format!("{n_text} {unit}")
        } else {
            format!("{n_text} {unit}s")
        }
    };
    let exact_units = [
        (WEEK, "week"),
        (DAY, "day"),
        (HOUR, "hour"),
        (MINUTE, "minute"),
    ];
    if d.low == d.high {
        for (size, name) in exact_units {
            if d.low >= size && (d.low / size).fract() == 0.0 {
                return plural(d.low / size, name);
            }
        }
        return plural(d.low, "second");
    }
    for (low, high, name) in [
        (28.0 * DAY, 31.0 * DAY, "month"),
        (365.0 * DAY, 366.0 * DAY, "year"),
    ] {
        let n = d.low / low;
        if n > 0.0 && n.fract() == 0.0 && (n * high - d.high).abs() < 1e-6 {
            return plural(n, name);
        }
    }
    format!("{}-{} seconds", format_number(d.low), format_number(d.high))
}

/// A compact human reading, "2 h 5 min", for display; not meant to be parsed back.
pub fn humanize_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "—".to_string();
    }
    let mut rest = seconds.round() as u64;
    if rest == 0 {
        return "0 s".to_string();
    }
    let mut parts = Vec::new();
    for (size, name) in [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")] {
        if rest >= size {
            parts.push(format!("{} {name}", rest / size));
            rest %= size;
        }
    }
    parts.join(" ")
}

/// A range for display: "55 min", or "56 d – 62 d" when the ends differ.
pub fn humanize(d: Seconds) -> String {
    if d.low == d.high {
        humanize_seconds(d.low)
    } else {
        format!("{} – {}", humanize_seconds(d.low), humanize_seconds(d.high))
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(low: f64, high: f64) -> Seconds {
        Seconds { low, high }
    }

    #[test]
    fn asynchow_phrases() {
        assert_eq!(parse_duration("30 minutes"), Ok(s(1800.0, 1800.0)));
        assert_eq!(parse_duration("5 min"), Ok(s(300.0, 300.0)));
        assert_eq!(parse_duration("1 hours"), Ok(s(3600.0, 3600.0)));
        assert_eq!(parse_duration("2 hour"), Ok(s(7200.0, 7200.0)));
        assert_eq!(parse_duration("180 days"), Ok(s(180.0 * DAY, 180.0 * DAY)));
        assert_eq!(parse_duration("1 week"), Ok(s(WEEK, WEEK)));
        assert_eq!(parse_duration("45 sec"), Ok(s(45.0, 45.0)));
        assert_eq!(parse_duration("10 seconds"), Ok(s(10.0, 10.0)));
    }

    #[test]
    fn months_and_years_are_ranges() {
        assert_eq!(parse_duration("1 month"), Ok(s(28.0 * DAY, 31.0 * DAY)));
        assert_eq!(parse_duration("3 month"), Ok(s(84.0 * DAY, 93.0 * DAY)));
        assert_eq!(parse_duration("1 year"), Ok(s(365.0 * DAY, 366.0 * DAY)));
        assert_eq!(parse_duration("2 years"), Ok(s(730.0 * DAY, 732.0 * DAY)));
    }

    #[test]
    fn sums_ranges_and_decimals() {
        assert_eq!(parse_duration("1 hour 30 minutes"), Ok(s(5400.0, 5400.0)));
        assert_eq!(parse_duration("1 hour and 30 min"), Ok(s(5400.0, 5400.0)));
        assert_eq!(parse_duration("1.5 hours"), Ok(s(5400.0, 5400.0)));
        assert_eq!(parse_duration("10-15 minutes"), Ok(s(600.0, 900.0)));
        assert_eq!(parse_duration("10–15 min"), Ok(s(600.0, 900.0)));
        assert_eq!(parse_duration("1,000 seconds"), Ok(s(1000.0, 1000.0)));
        assert_eq!(parse_duration("  2 HOURS "), Ok(s(7200.0, 7200.0)));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("   "), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("5 fortnights"),
            Err(DurationError::UnknownUnit("fortnights".into()))
        );
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert_eq!(
            parse_duration("minutes"),
            Err(DurationError::MissingNumber("minutes".into()))
        );
        assert_eq!(parse_duration("-5 minutes"), Err(DurationError::Negative));
        assert_eq!(
            parse_duration("5 m"),
            Err(DurationError::AmbiguousUnit("m".into()))
        );
        assert!(matches!(
            parse_duration("15-10 minutes"),
            Err(DurationError::LowAboveHigh { .. })
        ));
        assert!(matches!(
            parse_duration("about 5 minutes"),
            Err(DurationError::UnknownUnit(_))
        ));
    }

    #[test]
    fn lenient_scan_sums_parts_in_prose() {
        assert_eq!(
            parse_duration_lenient("4 hours 45 min"),
            Ok(Some(s(17100.0, 17100.0)))
        );
        assert_eq!(parse_duration_lenient("no time here"), Ok(None));
        assert_eq!(
            parse_duration_lenient("5 parsecs"),
            Err(DurationError::UnknownUnit("parsecs".into()))
        );
    }

    #[test]
    fn format_round_trips() {
        for phrase in [
            "30 minutes",
            "1 hour",
            "90 seconds",
            "3 days",
            "2 weeks",
            "1 month",
            "6 months",
            "2 years",
            "10-15 seconds",
        ] {
            let d = parse_duration(phrase).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{phrase}");
        }
        assert_eq!(format_duration(s(5400.0, 5400.0)), "90 minutes");
        assert_eq!(format_duration(s(28.0 * DAY, 31.0 * DAY)), "1 month");
    }

    #[test]
    fn humanized() {
        assert_eq!(humanize_seconds(5100.0), "1 h 25 min");
        assert_eq!(humanize_seconds(0.0), "0 s");
        assert_eq!(humanize(s(60.0, 120.0)), "1 min – 2 min");
    }

    #[test]
    fn seconds_checks_its_ends() {
        assert_eq!(Seconds::range(-1.0, 2.0), Err(DurationError::Negative));
        assert_eq!(Seconds::range(f64::NAN, 2.0), Err(DurationError::NotFinite));
        assert!(Seconds::range(3.0, 2.0).is_err());
    }
}
