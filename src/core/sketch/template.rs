//! Sketch templates: text with holes and LMQL-style constraints.
//!
//! ```text
//! Q: Which is larger, 7 or 12?
//! A: The larger number is [ANSWER].
//! Reason: [REASON]
//! where ANSWER in ["7", "12"] and STOPS_AT(REASON, "\n") and len(TOKENS(REASON)) < 30
//! ```
//!
//! Everything before the first line that starts with `where` is the template; `[NAME]` is a
//! hole (`[[` stands for a literal `[`). The `where` clause joins constraints with `and`:
//! `NAME in ["a", "b"]` (the value is one of the options), `INT(NAME)` (digits),
//! `STOPS_AT(NAME, "s")` (the value ends once it contains `s`, kept), and
//! `len(TOKENS(NAME)) < N` (at most N − 1 tokens; `<=` too). These are LMQL's operators
//! (src/lmql/ops/ops.py) with its semantics.

use std::fmt;

/// Tokens a hole may take when its constraints set no limit.
pub const DEFAULT_MAX_TOKENS: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub struct Hole {
    pub name: String,
    /// `in [...]`: the value must be one of these.
    pub options: Option<Vec<String>>,
    /// `INT`: digits only (one leading space allowed, as a tokenizer may attach it).
    pub int: bool,
    /// `STOPS_AT`: the hole ends once its value contains one of these.
    pub stops: Vec<String>,
    pub max_tokens: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Hole(Hole),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sketch {
    pub parts: Vec<Part>,
}

/// A syntax error with its 1-based line and column in the template file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct SketchSyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SketchSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

fn syntax_error(src: &str, byte: usize, message: String) -> SketchSyntaxError {
    let (line, column) = position(src, byte);
    SketchSyntaxError {
        line,
        column,
        message,
    }
}

fn position(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

struct Cursor<'a> {
    src: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.at..]
    }
    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.src.len() - trimmed.len();
    }
    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())
            })
            .map(|(i, c)| i + c.len_utf8())
            .last()?;
        self.at += len;
        Some(&rest[..len])
    }
    /// A JSON-style double-quoted string with \n, \t, \", \\ escapes.
    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let rest = self.rest();
        if !rest.starts_with('"') {
            return Err("expected a \"quoted string\"".into());
        }
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
                },
                c => out.push(c),
            }
        }
        Err("a string is not closed".into())
    }
    fn number(&mut self) -> Option<usize> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        self.at += len;
        rest[..len].parse().ok()
    }
}

impl Sketch {
    pub fn parse(src: &str) -> Result<Sketch, SketchSyntaxError> {
        let err = |byte: usize, message: String| syntax_error(src, byte, message);
        // The where clause starts at the first line beginning with "where".
        let mut split = src.len();
        let mut offset = 0;
        for line in src.split_inclusive('\n') {
            if line.starts_with("where ") || line.trim_end() == "where" {
                split = offset;
                break;
            }
            offset += line.len();
        }
        let (template, clause) = src.split_at(split);
        // A template ends where its text ends: the newline before `where` belongs to the file.
        let template = if split < src.len() {
            template.strip_suffix('\n').unwrap_or(template)
        } else {
            template
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        let mut base = 0;
        while let Some(i) = rest.find('[') {
            text.push_str(&rest[..i]);
            if rest[i..].starts_with("[[") {
                text.push('[');
                base += i + 2;
                rest = &rest[i + 2..];
                continue;
            }
            let close = rest[i..]
                .find(']')
                .ok_or_else(|| err(base + i, "a hole \"[\" is not closed by \"]\"".into()))?;
            let name = &rest[i + 1..i + close];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(err(
                    base + i,
                    format!(
                        "{:?} is not a hole name (letters, digits and _; write [[ for a literal [)",
                        name
                    ),
                ));
            }
            if parts
                .iter()
                .any(|p| matches!(p, Part::Hole(h) if h.name == name))
            {
                return Err(err(base + i, format!("hole {name} appears twice")));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            } else if matches!(parts.last(), Some(Part::Hole(_))) {
                return Err(err(
                    base + i,
                    format!("hole {name} follows another hole with no text between them"),
                ));
            }
            parts.push(Part::Hole(Hole {
                name: name.to_string(),
                options: None,
                int: false,
                stops: Vec::new(),
                max_tokens: DEFAULT_MAX_TOKENS,
            }));
            base += i + close + 1;
            rest = &rest[i + close + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !matches!(parts.first(), Some(Part::Text(_))) {
            return Err(err(
                0,
                "a sketch must start with text for the model to continue".into(),
            ));
        }
        let mut sketch = Sketch { parts };
        if !clause.is_empty() {
            sketch.parse_where(src, split)?;
        }
        Ok(sketch)
    }

    fn hole_mut(&mut self, name: &str) -> Option<&mut Hole> {
        self.parts.iter_mut().find_map(|p| match p {
            Part::Hole(h) if h.name == name => Some(h),
            _ => None,
        })
    }

    fn parse_where(&mut self, src: &str, start: usize) -> Result<(), SketchSyntaxError> {
        let mut c = Cursor { src, at: start };
        let err = |byte: usize, message: String| syntax_error(src, byte, message);
        c.eat("where");
        loop {
            c.skip_ws();
            let at = c.at;
            let word = c
                .ident()
                .ok_or_else(|| err(at, "expected a constraint (NAME in [...], INT(NAME), STOPS_AT(NAME, \"s\"), len(TOKENS(NAME)) < N)".into()))?;
            let unknown = |name: &str| {
                err(
                    at,
                    format!("constraint on {name}, which is not a hole of the template"),
                )
            };
            match word {
                "INT" | "STOPS_AT" => {
                    if !c.eat("(") {
                        return Err(err(c.at, format!("expected \"(\" after {word}")));
                    }
                    let name = c
                        .ident()
                        .ok_or_else(|| err(c.at, "expected a hole name".into()))?;
                    let stop = if word == "STOPS_AT" {
                        if !c.eat(",") {
                            return Err(err(c.at, "expected \",\" and the stop string".into()));
                        }
                        let s = c.string().map_err(|m| err(c.at, m))?;
                        if s.is_empty() {
                            return Err(err(c.at, "a stop string cannot be empty".into()));
                        }
                        Some(s)
                    } else {
                        None
                    };
                    if !c.eat(")") {
                        return Err(err(c.at, "expected \")\"".into()));
                    }
                    let hole = self.hole_mut(name).ok_or_else(|| unknown(name))?;
                    match stop {
                        Some(s) => hole.stops.push(s),
                        None => hole.int = true,
                    }
                }
                "len" => {
                    let ok = c.eat("(") && c.eat("TOKENS") && c.eat("(");
                    if !ok {
                        return Err(err(c.at, "expected len(TOKENS(NAME)) < N".into()));
                    }
                    let name = c
                        .ident()
                        .ok_or_else(|| err(c.at, "expected a hole name".into()))?;
                    if !(c.eat(")") && c.eat(")")) {
                        return Err(err(c.at, "expected \"))\"".into()));
                    }
                    let inclusive = if c.eat("<=") {
                        true
                    } else if c.eat("<") {
                        false
                    } else {
                        return Err(err(c.at, "expected \"<\" or \"<=\"".into()));
                    };
                    let n = c
                        .number()
                        .ok_or_else(|| err(c.at, "expected a number of tokens".into()))?;
                    let max = if inclusive { n } else { n.saturating_sub(1) };
                    if max == 0 {
                        return Err(err(c.at, format!("{name} would get no token at all")));
                    }
                    self.hole_mut(name).ok_or_else(|| unknown(name))?.max_tokens = max.min(4096);
                }
                name => {
                    if !c.eat("in") {
                        return Err(err(c.at, format!("expected \"in [...]\" after {name} (or an unknown constraint {name:?})")));
                    }
                    if !c.eat("[") {
                        return Err(err(c.at, "expected \"[\" and the options".into()));
                    }
                    let mut options = Vec::new();
                    loop {
                        options.push(c.string().map_err(|m| err(c.at, m))?);
                        if c.eat("]") {
                            break;
                        }
                        if !c.eat(",") {
                            return Err(err(c.at, "expected \",\" or \"]\"".into()));
                        }
                    }
                    if options.iter().any(|o| o.is_empty()) {
                        return Err(err(c.at, format!("an option of {name} is empty")));
                    }
                    self.hole_mut(name).ok_or_else(|| unknown(name))?.options = Some(options);
                }
            }
            c.skip_ws();
            if c.rest().is_empty() {
                return Ok(());
            }
            if !(c.eat("and") || c.eat("where")) {
                return Err(err(c.at, "expected \"and\" between constraints".into()));
            }
        }
    }

    pub fn holes(&self) -> impl Iterator<Item = &Hole> {
        self.parts.iter().filter_map(|p| match p {
            Part::Hole(h) => Some(h),
            Part::Text(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_constraints_parse() {
        let s = Sketch::parse(
            "Q: 7 or 12?\nA: [ANSWER]. Why: [WHY]\nwhere ANSWER in [\"7\", \"12\"] and STOPS_AT(WHY, \"\\n\")\nwhere len(TOKENS(WHY)) < 30 and INT(ANSWER)",
        )
        .unwrap();
        assert_eq!(s.parts.len(), 4, "{:?}", s.parts);
        assert_eq!(s.parts[0], Part::Text("Q: 7 or 12?\nA: ".into()));
        let holes: Vec<&Hole> = s.holes().collect();
        assert_eq!(
            holes[0].options,
            Some(vec!["7".to_string(), "12".to_string()])
        );
        assert!(holes[0].int);
        assert_eq!(holes[1].stops, vec!["\n".to_string()]);
        assert_eq!(holes[1].max_tokens, 29);
        assert_eq!(s.parts[2], Part::Text(". Why: ".into()));
    }

    #[test]
    fn literal_brackets_and_a_template_without_constraints() {
        let s = Sketch::parse("a [[b] [X] c").unwrap();
        assert_eq!(s.parts[0], Part::Text("a [b] ".into()));
        assert_eq!(s.parts[2], Part::Text(" c".into()));
    }

    #[test]
    fn syntax_errors_name_their_position() {
        let e = |src: &str| Sketch::parse(src).unwrap_err().to_string();
        assert!(
            e("a [X").contains("line 1, column 3: a hole"),
            "{}",
            e("a [X")
        );
        assert!(e("a\nb [1x]").contains("line 2, column 3"));
        assert!(e("[X] a").contains("must start with text"));
        assert!(e("a [X][Y]").contains("follows another hole"));
        assert!(e("a [X] b [X]").contains("appears twice"));
        assert!(e("a [X]\nwhere Y in [\"a\"]").contains("Y, which is not a hole"));
        assert!(e("a [X]\nwhere X in [\"a\" \"b\"]")
            .contains("line 2, column 17: expected \",\" or \"]\""));
        assert!(e("a [X]\nwhere FOO(X)").contains("unknown constraint \"FOO\""));
        assert!(e("a [X]\nwhere len(TOKENS(X)) < 1").contains("no token at all"));
        assert!(e("a [X]\nwhere X in [\"a\"] X in [\"b\"]").contains("expected \"and\""));
    }
}
