//! The query string of `/ingest`: URL decoding (`+` and `%20` are spaces, as
//! Go's `url.ParseQuery` reads them) and the parameters Pyroscope reads.

use alloc::string::String;
use alloc::vec::Vec;

use super::attime;
use super::name::{self, AppName};

/// The parameters of one `/ingest` request.
#[derive(Debug)]
pub struct Params {
    pub name: AppName,
    /// Profile start, Unix nanoseconds.
    pub from_ns: i64,
    /// Profile end, Unix nanoseconds (only the JFR reader uses it).
    pub until_ns: i64,
    pub format: String,
    pub sample_rate: u32,
    pub spy_name: String,
}

/// Pyroscope's default `sampleRate` (Hz).
pub const DEFAULT_SAMPLE_RATE: u32 = 100;

impl Params {
    /// Reads the parameters; only a bad `name` is an error (the message is
    /// Pyroscope's `name: <error>`).
    pub fn parse(query: &str, now_ns: i64) -> Result<Self, String> {
        let pairs = decode_query(query);
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let name = name::parse(get("name").unwrap_or_default()).map_err(|e| alloc::format!("name: {e}"))?;
        let time = |key| get(key).map_or(now_ns, |v| attime::parse(v, now_ns));
        // Unparsable or negative rates silently fall back to the default.
        let sample_rate = get("sampleRate").and_then(|v| v.parse::<u32>().ok()).unwrap_or(DEFAULT_SAMPLE_RATE);
        Ok(Self {
            name,
            from_ns: time("from"),
            until_ns: time("until"),
            format: get("format").unwrap_or_default().into(),
            sample_rate,
            spy_name: get("spyName").filter(|s| !s.is_empty()).unwrap_or("unknown").into(),
        })
    }
}

/// `k=v&k2=v2` into decoded pairs, in order. Like Go's `url.ParseQuery`, a
/// pair with a malformed escape is dropped and the rest is kept.
pub fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(k)?, unescape(v)?))
        })
        .collect()
}

/// Percent-decoding with `+` as space; `None` on a malformed escape.
pub fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |b: u8| (b as char).to_digit(16);
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_582_000_000_000_000;

    #[test]
    fn url_decoding() {
        assert_eq!(unescape("a+b%20c%2Bd%2F%28x%29").unwrap(), "a b c+d/(x)");
        assert_eq!(unescape("bad%zz"), None);
        assert_eq!(unescape("%4"), None);
        let pairs = decode_query("a=1&&b&c=%zz&d=x%3Dy");
        assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "".into()), ("d".into(), "x=y".into())]);
    }

    #[test]
    fn parameters_and_defaults() {
        let p = Params::parse("name=app.cpu%7Bk%3Dv%7D&from=1795582180&sampleRate=-3&aggregationType=", NOW).unwrap();
        assert_eq!(p.name.app, "app.cpu");
        assert_eq!(p.from_ns, 1_795_582_180_000_000_000);
        assert_eq!(p.until_ns, NOW);
        assert_eq!(p.sample_rate, 100);
        assert_eq!(p.spy_name, "unknown");
        assert_eq!(Params::parse("name=a&sampleRate=0", NOW).unwrap().sample_rate, 0);
        assert_eq!(Params::parse("from=1", NOW).unwrap_err(), "name: service name is required");
    }
}
