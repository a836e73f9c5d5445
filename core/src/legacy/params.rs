//! The query string of `/ingest`: URL decoding (`+` and `%20` are spaces, as
//! Go's `url.ParseQuery` reads them) and the parameters Pyroscope reads.

use crate::time::parse_attime;
use crate::url::QueryString;
use alloc::string::String;

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
        let q = QueryString::lenient(query);
        let name = name::parse(q.get("name")).map_err(|e| alloc::format!("name: {e}"))?;
        // Absent or empty means now.
        let time = |key| parse_attime(q.get(key), now_ns);
        // Unparsable or negative rates silently fall back to the default.
        let sample_rate = q.get("sampleRate").parse::<u32>().unwrap_or(DEFAULT_SAMPLE_RATE);
        let spy_name = match q.get("spyName") {
            "" => "unknown",
            spy => spy,
        };
        Ok(Self {
            name,
            from_ns: time("from"),
            until_ns: time("until"),
            format: q.get("format").into(),
            sample_rate,
            spy_name: spy_name.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_582_000_000_000_000;

    #[test]
    fn malformed_pairs_are_dropped() {
        let q = QueryString::lenient("a=1&&b&c=%zz&d=x%3Dy&e=a+b%20c%2Bd%2F%28x%29");
        assert_eq!((q.get("a"), q.get("b"), q.get("c")), ("1", "", ""));
        assert_eq!((q.get("d"), q.get("e")), ("x=y", "a b c+d/(x)"));
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
