//! URL query strings as Go's `url.ParseQuery` reads them (the legacy HTTP API
//! takes all its parameters there).

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Decoded `name=value` pairs in request order.
#[derive(Debug, Default)]
pub struct QueryString(Vec<(String, String)>);

impl QueryString {
    /// Parses `a=1&b=x+y&c=%2F`. Like Go, a bad escape or a `;` separator
    /// fails the whole request (the handlers answer 400 with this message).
    pub fn parse(query: &str) -> Result<Self> {
        pairs(query).filter_map(Result::transpose).collect::<Result<_>>().map(Self)
    }

    /// Like [`Self::parse`], but a malformed pair is dropped and the rest
    /// kept, as handlers that ignore `url.ParseQuery`'s error see it
    /// (`/ingest`).
    pub fn lenient(query: &str) -> Self {
        Self(pairs(query).filter_map(|p| p.ok().flatten()).collect())
    }

    /// The first value of `name`; Go's `Values.Get` ("" and absent alike).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Each `&`-separated pair decoded; `None` for a pair without a name.
fn pairs(query: &str) -> impl Iterator<Item = Result<Option<(String, String)>>> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|part| {
        if part.contains(';') {
            return Err(Error::invalid("invalid semicolon separator in query"));
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = unescape(name)?;
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Some((name.into_owned(), unescape(value)?.into_owned())))
    })
}

/// `+` is a space and `%XX` a byte; invalid UTF-8 is replaced.
fn unescape(s: &str) -> Result<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| core::str::from_utf8(h).ok());
                let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok().filter(|_| !h.starts_with('+')))
                else {
                    let escape: String = s[i..].chars().take(3).collect();
                    return Err(Error::invalid(format!("invalid URL escape {escape:?}")));
                };
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn decodes_like_go() {
        let q =
            QueryString::parse("query=a%3Ab%7Bx%3D%22y%22%7D&from=now-1h&groupBy=a&groupBy=b&sp=a+b&flag&=z").unwrap();
        assert_eq!(q.get("query"), "a:b{x=\"y\"}");
        assert_eq!(q.get("from"), "now-1h");
        assert_eq!(q.get("sp"), "a b");
        assert_eq!(q.get("flag"), "");
        assert_eq!(q.get("missing"), "");
        assert_eq!(q.all("groupBy").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn bad_escapes_and_separators_fail() {
        assert_eq!(QueryString::parse("a=%zz").unwrap_err().to_string(), "invalid URL escape \"%zz\"");
        assert_eq!(QueryString::parse("a=%4").unwrap_err().to_string(), "invalid URL escape \"%4\"");
        assert!(QueryString::parse("a=1;b=2").is_err());
    }
}
