//! The few JSON pieces the legacy HTTP API writes by hand, escaped the way
//! Go's `encoding/json` does (so bodies match Pyroscope's byte for byte).

use alloc::string::String;
use core::fmt::{Display, Write};

/// Appends `s` as a JSON string. Like Go, `<`, `>`, `&`, U+2028 and U+2029 are
/// escaped too, so the output is safe to embed in HTML.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escaped);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `[a,b,c]` of numbers (or anything whose `Display` is JSON).
pub fn array<T: Display>(out: &mut String, items: impl IntoIterator<Item = T>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{item}");
    }
    out.push(']');
}

/// Appends `["a","b"]`.
pub fn string_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}<vector<int>>&é\u{2028}");
        assert_eq!(out, r#""a\"b\\c\nd\u0001\u003cvector\u003cint\u003e\u003e\u0026é\u2028""#);
        out.clear();
        array(&mut out, [1i64, -2, 3]);
        string_array(&mut out, ["x", "y"]);
        assert_eq!(out, r#"[1,-2,3]["x","y"]"#);
    }
}
