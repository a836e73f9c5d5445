//! Prometheus label selectors (`ParseMetricSelector`), as Pyroscope accepts them
//! in `labelSelector`, `matchers` and the `query` of `/pyroscope/render`.
//!
//! Grammar (spec `query.md` §2):
//!
//! ```text
//! selector := [metric_name] [ "{" [ item { "," item } [","] ] "}" ]   (at least one part)
//! item     := label_name op string | string          (a lone string is the metric name)
//! op       := "=" | "!=" | "=~" | "!~"
//! ```
//!
//! Metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`
//! or any quoted string (Prometheus 3 UTF-8 names). Strings are Go literals:
//! `"…"` / `'…'` with backslash escapes, or back-tick raw strings. Whitespace and
//! `#` comments may appear between tokens, as in PromQL.
//!
//! Regexes are compiled like Prometheus does (`^(?s:re)$`: fully anchored, `.`
//! matches newlines). One known difference with Go's RE2: `\d`, `\w`, `\s` and
//! `\b` are Unicode-aware here, ASCII-only in Go.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use regex_automata::meta::Regex;
use regex_syntax::hir::{Hir, Look};

use crate::Labels;

/// The label Prometheus stores the metric name under.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// Why a selector or matcher was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Syntax error, formatted like Prometheus (`1:7: parse error: …`) because
    /// Pyroscope passes that text through in its 400 responses.
    #[error("{line}:{col}: parse error: {msg}")]
    Parse { line: usize, col: usize, msg: String },
    /// A `=~` / `!~` value that is not a valid regular expression.
    #[error("error parsing regexp: {0}")]
    Regex(String),
}

/// Comparison of a [`Matcher`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `name op "value"` condition. Build it with [`Matcher::new`], which
/// compiles the regex of `=~` / `!~` once.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// Compiled, anchored regex for `Re` / `Nre`.
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        // The regex is derived from (op, value), so it needs no comparison.
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    /// A matcher; fails only when a regex operator gets an invalid regex.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Matcher, SelectorError> {
        let value = value.into();
        let re = match op {
            MatchOp::Re | MatchOp::Nre => Some(compile_anchored(&value)?),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(Matcher { name: name.into(), op, value, re })
    }

    /// Whether a label value satisfies this matcher (absent labels are `""`).
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => self.value == value,
            MatchOp::Neq => self.value != value,
            MatchOp::Re => self.regex_matches(value),
            MatchOp::Nre => !self.regex_matches(value),
        }
    }

    fn regex_matches(&self, value: &str) -> bool {
        // `re` is always set for regex operators by construction.
        self.re.as_ref().is_some_and(|re| re.is_match(value))
    }
}

impl fmt::Display for Matcher {
    /// `name="value"`, quoting the name when it is not a plain identifier.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        write_quoted(f, &self.value)
    }
}

/// A parsed selector: all matchers must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    /// The empty selector `{}` (matches everything).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// Adds a condition (e.g. the `__profile_type__` matcher a query implies,
    /// or the matchers of another selector when joining with AND).
    pub fn push(&mut self, m: Matcher) {
        self.matchers.push(m);
    }

    /// True when every matcher holds; a missing label behaves as `""`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    /// The metric name: the value of the first `__name__="…"` matcher, which is
    /// what `name{…}` and `{"name"}` produce (e.g. the profile type ID of a
    /// `/pyroscope/render` query).
    pub fn metric_name(&self) -> Option<&str> {
        self.matchers.iter().find(|m| m.name == METRIC_NAME_LABEL && m.op == MatchOp::Eq).map(|m| m.value.as_str())
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl core::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses a Prometheus metric selector such as
/// `process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="api", env=~"prod|dev"}`.
pub fn parse(input: &str) -> Result<Selector, SelectorError> {
    Parser { src: input, pos: 0 }.selector()
}

/// Compiles `pattern` as Prometheus does: `^(?s:pattern)$`. The pattern is
/// parsed on its own first, so `a)|(b` cannot escape the wrapping group.
fn compile_anchored(pattern: &str) -> Result<Regex, SelectorError> {
    let hir = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(pattern)
        .map_err(|e| SelectorError::Regex(regex_error_message(&e)))?;
    let anchored = Hir::concat(vec![Hir::look(Look::Start), hir, Hir::look(Look::End)]);
    regex_automata::meta::Builder::new().build_from_hir(&anchored).map_err(|e| SelectorError::Regex(format!("{e}")))
}

/// A one-line message (the full `Display` of regex-syntax errors spans lines).
fn regex_error_message(e: &regex_syntax::Error) -> String {
    match e {
        regex_syntax::Error::Parse(e) => format!("{}", e.kind()),
        regex_syntax::Error::Translate(e) => format!("{}", e.kind()),
        _ => format!("{e}"),
    }
}

fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Hand-written recursive-descent parser over the input's bytes; every
/// position it stops at is a char boundary because it only ever steps over
/// ASCII bytes or whole chars.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut sel = Selector::new();
        let mut has_metric_name = false;
        self.skip_ws();
        match self.peek() {
            None => return Err(self.err("unexpected end of input")),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                let start = self.pos;
                self.pos += self.src[start..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
                    .count();
                let name = &self.src[start..self.pos];
                sel.push(Matcher::new(METRIC_NAME_LABEL, MatchOp::Eq, name)?);
                has_metric_name = true;
                self.skip_ws();
            }
            _ => {}
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.braces(&mut sel, has_metric_name)?;
            }
            None if has_metric_name => {}
            _ => return Err(self.unexpected("expected metric name or \"{\"")),
        }
        self.skip_ws();
        if self.peek().is_some() {
            return Err(self.unexpected("expected end of input"));
        }
        Ok(sel)
    }

    /// The inside of `{…}`, after the opening brace.
    fn braces(&mut self, sel: &mut Selector, mut has_metric_name: bool) -> Result<(), SelectorError> {
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.item(sel, &mut has_metric_name)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                None => return Err(self.err("unexpected end of input inside braces")),
                _ => return Err(self.unexpected("expected \",\" or \"}\"")),
            }
        }
    }

    /// One matcher, or a lone quoted metric name.
    fn item(&mut self, sel: &mut Selector, has_metric_name: &mut bool) -> Result<(), SelectorError> {
        let start = self.pos;
        let name = match self.peek() {
            Some(b'"' | b'\'' | b'`') => {
                let s = self.string()?;
                self.skip_ws();
                if !matches!(self.peek(), Some(b'=' | b'!')) {
                    // `{"metric.name", …}`
                    if *has_metric_name {
                        self.pos = start;
                        return Err(self.err("metric name must not be set twice"));
                    }
                    *has_metric_name = true;
                    sel.push(Matcher::new(METRIC_NAME_LABEL, MatchOp::Eq, s)?);
                    return Ok(());
                }
                s
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let len = self.src[start..].bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
                self.pos += len;
                self.src[start..self.pos].to_owned()
            }
            None => return Err(self.err("unexpected end of input inside braces")),
            _ => return Err(self.unexpected("expected label matching")),
        };
        self.skip_ws();
        let op = self.op()?;
        self.skip_ws();
        let value_pos = self.pos;
        if !matches!(self.peek(), Some(b'"' | b'\'' | b'`')) {
            return Err(self.unexpected("expected string in label matching"));
        }
        let value = self.string()?;
        Matcher::new(name, op, value).map(|m| sel.push(m)).map_err(|e| {
            self.pos = value_pos;
            self.err(&format!("{e}"))
        })
    }

    fn op(&mut self) -> Result<MatchOp, SelectorError> {
        let rest = &self.src.as_bytes()[self.pos..];
        let (op, len) = match rest {
            [b'=', b'~', ..] => (MatchOp::Re, 2),
            [b'!', b'~', ..] => (MatchOp::Nre, 2),
            [b'!', b'=', ..] => (MatchOp::Neq, 2),
            [b'=', ..] => (MatchOp::Eq, 1),
            [] => return Err(self.err("unexpected end of input in label matching")),
            _ => return Err(self.unexpected("expected label matching operator")),
        };
        self.pos += len;
        Ok(op)
    }

    /// A quoted string at `pos` (which holds the opening quote), unescaped.
    fn string(&mut self) -> Result<String, SelectorError> {
        let quote = self.src.as_bytes()[self.pos];
        let start = self.pos;
        self.pos += 1;
        if quote == b'`' {
            let Some(len) = self.src[self.pos..].find('`') else {
                self.pos = start;
                return Err(self.err("unterminated raw string"));
            };
            // Go's strconv.Unquote drops carriage returns from raw strings.
            let s = self.src[self.pos..self.pos + len].replace('\r', "");
            self.pos += len + 1;
            return Ok(s);
        }
        // Bytes, not chars: `\xff` and octal escapes produce single bytes.
        let mut out = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(c) = rest.chars().next() else {
                self.pos = start;
                return Err(self.err("unterminated quoted string"));
            };
            match c {
                '\n' => {
                    self.pos = start;
                    return Err(self.err("unterminated quoted string"));
                }
                '\\' => {
                    self.pos += 1;
                    self.escape(quote, &mut out)?;
                }
                c if c as u32 == u32::from(quote) => {
                    self.pos += 1;
                    break;
                }
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    self.pos += c.len_utf8();
                }
            }
        }
        String::from_utf8(out).map_err(|_| {
            self.pos = start;
            self.err("invalid UTF-8 in string")
        })
    }

    /// An escape sequence after its backslash, as Go's `strconv.Unquote`.
    fn escape(&mut self, quote: u8, out: &mut Vec<u8>) -> Result<(), SelectorError> {
        let esc_pos = self.pos - 1;
        let Some(&b) = self.src.as_bytes().get(self.pos) else {
            return Err(self.err("unterminated quoted string"));
        };
        self.pos += 1;
        let simple = match b {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            q if q == quote => Some(q),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let (digits, radix) = match b {
            b'0'..=b'7' => {
                self.pos -= 1;
                (3, 8)
            }
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            _ => {
                self.pos = esc_pos;
                return Err(self.err("unknown escape sequence"));
            }
        };
        let text = self.src.get(self.pos..self.pos + digits).unwrap_or("");
        let value = (text.len() == digits)
            .then(|| u32::from_str_radix(text, radix).ok())
            .flatten()
            // from_str_radix accepts a leading '+'; Go does not.
            .filter(|_| !text.starts_with('+'));
        let Some(value) = value else {
            self.pos = esc_pos;
            return Err(self.err("invalid escape sequence"));
        };
        self.pos += digits;
        match b {
            b'x' | b'0'..=b'7' => {
                let Ok(byte) = u8::try_from(value) else {
                    self.pos = esc_pos;
                    return Err(self.err("octal escape value > 255"));
                };
                out.push(byte);
            }
            _ => {
                let Some(c) = char::from_u32(value) else {
                    self.pos = esc_pos;
                    return Err(self.err("escape sequence is invalid Unicode code point"));
                };
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// Skips PromQL whitespace and `#` comments.
    fn skip_ws(&mut self) {
        let bytes = self.src.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'#' => {
                    self.pos += bytes[self.pos..].iter().position(|&b| b == b'\n').unwrap_or(bytes.len() - self.pos);
                }
                _ => break,
            }
        }
    }

    fn unexpected(&self, expected: &str) -> SelectorError {
        let found = self.src[self.pos..].chars().next();
        let msg = match found {
            Some(c) => format!("unexpected character {c:?}, {expected}"),
            None => format!("unexpected end of input, {expected}"),
        };
        self.err(&msg)
    }

    /// An error at the current position (1-based line and column in chars).
    fn err(&self, msg: &str) -> SelectorError {
        let before = &self.src[..self.pos];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        SelectorError::Parse {
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
            msg: msg.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn m(sel: &Selector) -> Vec<(String, MatchOp, String)> {
        sel.matchers().iter().map(|m| (m.name.clone(), m.op, m.value.clone())).collect()
    }

    fn t(n: &str, op: MatchOp, v: &str) -> (String, MatchOp, String) {
        (n.to_string(), op, v.to_string())
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn empty_braces_and_empty_input() {
        assert!(parse("{}").unwrap().matchers().is_empty());
        assert!(parse("  { }  ").unwrap().matchers().is_empty());
        assert!(parse("").is_err());
        assert!(parse("   ").is_err());
        assert!(parse("{").is_err());
        assert!(parse("}").is_err());
        assert!(parse("{,}").is_err());
    }

    #[test]
    fn operators() {
        let s = parse(r#"{a="1", b!="2", c=~"3", d!~"4"}"#).unwrap();
        assert_eq!(
            m(&s),
            [t("a", MatchOp::Eq, "1"), t("b", MatchOp::Neq, "2"), t("c", MatchOp::Re, "3"), t("d", MatchOp::Nre, "4"),]
        );
        assert!(parse(r#"{a=="1"}"#).is_err());
        assert!(parse(r#"{a~"1"}"#).is_err());
        assert!(parse(r#"{a!"1"}"#).is_err());
        assert!(parse(r#"{a}"#).is_err());
        assert!(parse(r#"{a=}"#).is_err());
        assert!(parse(r#"{a=1}"#).is_err());
    }

    #[test]
    fn metric_names() {
        let s = parse("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"x\"}").unwrap();
        assert_eq!(s.metric_name(), Some("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
        assert_eq!(
            m(&s),
            [
                t("__name__", MatchOp::Eq, "process_cpu:cpu:nanoseconds:cpu:nanoseconds"),
                t("service_name", MatchOp::Eq, "x"),
            ]
        );
        let s = parse("  up  ").unwrap();
        assert_eq!(m(&s), [t("__name__", MatchOp::Eq, "up")]);
        assert_eq!(parse(":a{}").unwrap().metric_name(), Some(":a"));
        assert_eq!(parse("{a=\"b\"}").unwrap().metric_name(), None);
        assert!(parse("1abc{}").is_err());
        assert!(parse("a-b{}").is_err());
        assert!(parse("a b").is_err());
        assert!(parse("a{}{}").is_err());
    }

    #[test]
    fn quoted_metric_and_label_names() {
        let s = parse(r#"{"service.name"="x", "my.metric"}"#).unwrap();
        assert_eq!(m(&s), [t("service.name", MatchOp::Eq, "x"), t("__name__", MatchOp::Eq, "my.metric")]);
        assert_eq!(s.metric_name(), Some("my.metric"));
        let s = parse(r#"{'a b' =~ `x.*`}"#).unwrap();
        assert_eq!(m(&s), [t("a b", MatchOp::Re, "x.*")]);
        // The metric name may only be set once.
        assert!(parse(r#"foo{"bar"}"#).is_err());
        assert!(parse(r#"{"foo", "bar"}"#).is_err());
        // Label names inside braces cannot contain colons or dots unquoted.
        assert!(parse(r#"{a:b="x"}"#).is_err());
        assert!(parse(r#"{a.b="x"}"#).is_err());
    }

    #[test]
    fn trailing_comma_and_whitespace() {
        let s = parse("\n foo \t{\n a = \"1\" ,\n b=~'2' , } \n").unwrap();
        assert_eq!(m(&s), [t("__name__", MatchOp::Eq, "foo"), t("a", MatchOp::Eq, "1"), t("b", MatchOp::Re, "2"),]);
        assert!(parse(r#"{a="1",,}"#).is_err());
        assert!(parse(r#"{a="1" b="2"}"#).is_err());
        assert!(parse(r#"{a="1"} x"#).is_err());
    }

    #[test]
    fn comments() {
        let s = parse("foo # the metric\n{a=\"#1\"} # done").unwrap();
        assert_eq!(m(&s), [t("__name__", MatchOp::Eq, "foo"), t("a", MatchOp::Eq, "#1")]);
    }

    #[test]
    fn string_escapes() {
        let s = parse(r#"{a="q\"b\\s\n\t\u00e9\U0001F600\x41\101\a", b='it\'s', c=`raw\n"'`}"#).unwrap();
        assert_eq!(
            m(&s),
            [
                t("a", MatchOp::Eq, "q\"b\\s\n\té😀AA\u{7}"),
                t("b", MatchOp::Eq, "it's"),
                t("c", MatchOp::Eq, "raw\\n\"'"),
            ]
        );
        // Raw strings keep newlines (minus carriage returns); quoted ones may not.
        assert_eq!(m(&parse("{a=`x\r\ny`}").unwrap()), [t("a", MatchOp::Eq, "x\ny")]);
        assert!(parse("{a=\"x\ny\"}").is_err());
        assert!(parse(r#"{a="\q"}"#).is_err());
        assert!(parse(r#"{a="\'"}"#).is_err());
        assert!(parse(r#"{a='\"'}"#).is_err());
        assert!(parse(r#"{a="\u00e"}"#).is_err());
        assert!(parse(r#"{a="\ud800"}"#).is_err());
        assert!(parse(r#"{a="\400"}"#).is_err());
        assert!(parse(r#"{a="\xff"}"#).is_err()); // not UTF-8
        assert!(parse(r#"{a="\x+f"}"#).is_err());
        assert!(parse(r#"{a="abc}"#).is_err());
        assert!(parse(r#"{a=`abc}"#).is_err());
        assert!(parse(r#"{a="abc\"#).is_err());
        // Multi-byte UTF-8 passes through unchanged.
        assert_eq!(m(&parse("{a=\"żółw\"}").unwrap()), [t("a", MatchOp::Eq, "żółw")]);
    }

    #[test]
    fn error_messages() {
        let e = parse(r#"{a="1" b="2"}"#).unwrap_err();
        assert_eq!(e.to_string(), "1:8: parse error: unexpected character 'b', expected \",\" or \"}\"");
        let e = parse("{a=~\"(\"}").unwrap_err();
        assert!(matches!(e, SelectorError::Parse { col: 5, .. }), "{e:?}");
        assert!(e.to_string().contains("error parsing regexp"), "{e}");
        let e = parse("{\na=1}").unwrap_err();
        assert!(matches!(e, SelectorError::Parse { line: 2, col: 3, .. }), "{e:?}");
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let re = Matcher::new("a", MatchOp::Re, "fo+").unwrap();
        assert!(re.matches("foo"));
        assert!(!re.matches("xfoo"));
        assert!(!re.matches("foox"));
        let alt = Matcher::new("a", MatchOp::Re, "a|ab").unwrap();
        assert!(alt.matches("ab"));
        assert!(alt.matches("a"));
        assert!(!alt.matches("abc"));
        // `.` matches newlines (Prometheus compiles `(?s:…)`).
        assert!(Matcher::new("a", MatchOp::Re, "a.b").unwrap().matches("a\nb"));
        let nre = Matcher::new("a", MatchOp::Nre, "b.*").unwrap();
        assert!(nre.matches("ab"));
        assert!(!nre.matches("bcd"));
        // The pattern is validated alone: it cannot close the wrapping group.
        assert!(Matcher::new("a", MatchOp::Re, "a)|(b").is_err());
        assert!(Matcher::new("a", MatchOp::Re, "(").is_err());
        assert!(Matcher::new("a", MatchOp::Nre, "[").is_err());
        // Plain operators never compile their value.
        assert!(Matcher::new("a", MatchOp::Eq, "(").is_ok());
        let ci = Matcher::new("a", MatchOp::Re, "(?i)FOO|bar").unwrap();
        assert!(ci.matches("foo"));
        assert!(ci.matches("BAR"));
    }

    #[test]
    fn matching_labels() {
        let l = labels(&[("service_name", "api"), ("env", "prod")]);
        let yes = [
            "{}",
            r#"{service_name="api"}"#,
            r#"{service_name="api", env=~"prod|dev"}"#,
            r#"{missing=""}"#,
            r#"{missing=~".*"}"#,
            r#"{missing!="x"}"#,
            r#"{env!~"dev"}"#,
            r#"{env=~"p.*", env!="staging"}"#,
        ];
        for s in yes {
            assert!(parse(s).unwrap().matches(&l), "{s}");
        }
        let no = [
            r#"{service_name="API"}"#,
            r#"{missing!=""}"#,
            r#"{missing=~".+"}"#,
            r#"{env=~"pro"}"#,
            r#"{env!~"prod"}"#,
            r#"{env="prod", env="dev"}"#,
            r#"foo{}"#,
        ];
        for s in no {
            assert!(!parse(s).unwrap().matches(&l), "{s}");
        }
        let named = labels(&[("__name__", "foo"), ("service.name", "x")]);
        assert!(parse(r#"foo{"service.name"="x"}"#).unwrap().matches(&named));
    }

    #[test]
    fn push_and_display() {
        let mut s = parse(r#"cpu{a="x\"y"}"#).unwrap();
        s.push(Matcher::new("service.name", MatchOp::Nre, "a|b").unwrap());
        assert_eq!(s.to_string(), r#"{__name__="cpu", a="x\"y", "service.name"!~"a|b"}"#);
        // Display output parses back to the same selector.
        assert_eq!(parse(&s.to_string()).unwrap(), s);
        assert_eq!("{}".parse::<Selector>().unwrap(), Selector::new());
    }
}
