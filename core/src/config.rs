//! kiln's settings from string key/value pairs, whatever host supplies them
//! (Spin variables and `wasi:config`, the `kiln` flags). Keys are Pyroscope's
//! option names (its YAML limits), values are written as Pyroscope takes
//! them, and every key has Pyroscope's default (spec `ingest.md` §2, §9,
//! `query.md` §1, §4).

use alloc::string::{String, ToString};

use crate::ingest::IngestLimits;
use crate::query::QueryLimits;

/// Every key kiln reads. Hosts declare exactly these (spin.toml variables,
/// `kiln serve` flags).
pub const KEYS: [&str; 15] = [
    "multitenancy_enabled",
    "max_query_lookback",
    "max_query_length",
    "max_flamegraph_nodes_default",
    "max_flamegraph_nodes_max",
    "max_label_names_per_series",
    "max_label_name_length",
    "max_label_value_length",
    "max_profile_size_bytes",
    "max_profile_stacktrace_samples",
    "max_profile_stacktrace_sample_labels",
    "max_profile_stacktrace_depth",
    "max_profile_symbol_value_length",
    "reject_older_than",
    "reject_newer_than",
];

/// `max_profile_size_bytes: 0` turns Pyroscope's limit off; kiln still
/// never inflates one profile beyond its largest request body (256 MiB).
const PROFILE_SIZE_CAP: usize = 256 * 1024 * 1024;

/// Everything configurable, with Pyroscope's defaults.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `X-Scope-OrgID` is required and names the tenant; otherwise every
    /// request runs as `anonymous`.
    pub multitenancy_enabled: bool,
    pub ingest: IngestLimits,
    pub query: QueryLimits,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for {key}: {expected}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub expected: &'static str,
}

impl Settings {
    /// Defaults overridden by `vars`. Keys kiln does not know are left to
    /// whoever set them; a known key with a malformed value is an error.
    pub fn from_vars<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        for (key, value) in vars {
            s.set(key, value.trim()).map_err(|expected| ConfigError {
                key: key.to_string(),
                value: value.to_string(),
                expected,
            })?;
        }
        Ok(s)
    }

    fn set(&mut self, key: &str, v: &str) -> Result<(), &'static str> {
        let (ingest, query) = (&mut self.ingest, &mut self.query);
        match key {
            "multitenancy_enabled" => self.multitenancy_enabled = parse_bool(v)?,
            "max_query_lookback" => query.max_query_lookback_ms = parse_duration_ms(v)?,
            "max_query_length" => query.max_query_length_ms = parse_duration_ms(v)?,
            "max_flamegraph_nodes_default" => query.max_nodes_default = parse_count(v)? as i64,
            "max_flamegraph_nodes_max" => query.max_nodes_max = parse_count(v)? as i64,
            "max_label_names_per_series" => ingest.max_label_names = parse_count(v)?,
            "max_label_name_length" => ingest.max_label_name_len = parse_count(v)?,
            "max_label_value_length" => ingest.max_label_value_len = parse_count(v)?,
            "max_profile_size_bytes" => ingest.profile.max_profile_size = limit_or(parse_count(v)?, PROFILE_SIZE_CAP),
            "max_profile_stacktrace_samples" => ingest.profile.max_samples = limit_or(parse_count(v)?, usize::MAX),
            "max_profile_stacktrace_sample_labels" => {
                ingest.profile.max_sample_labels = limit_or(parse_count(v)?, usize::MAX)
            }
            "max_profile_stacktrace_depth" => ingest.profile.max_stack_depth = limit_or(parse_count(v)?, usize::MAX),
            "max_profile_symbol_value_length" => ingest.profile.max_symbol_len = limit_or(parse_count(v)?, usize::MAX),
            "reject_older_than" => ingest.reject_older_than_ms = parse_duration_ms(v)?,
            "reject_newer_than" => ingest.reject_newer_than_ms = parse_duration_ms(v)?,
            _ => {}
        }
        Ok(())
    }
}

/// Pyroscope's profile limits are off at 0.
fn limit_or(n: usize, off: usize) -> usize {
    if n == 0 { off } else { n.min(off) }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Result<bool, &'static str> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false"),
    }
}

fn parse_count(v: &str) -> Result<usize, &'static str> {
    // Bounded so every count also fits the i64 fields of the query limits.
    v.parse::<u32>().map(|n| n as usize).map_err(|_| "expected a whole number (0 to 4294967295)")
}

/// Prometheus' `model.Duration`, which Pyroscope's limits use: units
/// `y w d h m s ms` in that order, each at most once (`7d`, `1h30m`, `24h`),
/// or `0`. Returns milliseconds; 0 disables a limit.
pub fn parse_duration_ms(v: &str) -> Result<i64, &'static str> {
    const EXPECTED: &str = "expected a duration such as 24h, 7d, 1h30m or 0";
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if v == "0" {
        return Ok(0);
    }
    let mut rest = v;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let letters = rest[digits..].find(|c: char| !c.is_ascii_lowercase()).map_or(rest.len(), |i| digits + i);
        let (number, unit) = (&rest[..digits], &rest[digits..letters]);
        let n: i64 = number.parse().map_err(|_| EXPECTED)?;
        let i = UNITS[next_unit..].iter().position(|(u, _)| *u == unit).ok_or(EXPECTED)? + next_unit;
        total = n.checked_mul(UNITS[i].1).and_then(|ms| total.checked_add(ms)).ok_or("duration out of range")?;
        next_unit = i + 1;
        rest = &rest[letters..];
    }
    if v.is_empty() { Err(EXPECTED) } else { Ok(total) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pyroscopes() {
        let s = Settings::from_vars([]).unwrap();
        assert!(!s.multitenancy_enabled);
        assert_eq!(s.query.max_query_lookback_ms, 7 * 86_400_000);
        assert_eq!(s.query.max_query_length_ms, 86_400_000);
        assert_eq!((s.query.max_nodes_default, s.query.max_nodes_max), (8192, 1_048_576));
        let i = &s.ingest;
        assert_eq!((i.max_label_names, i.max_label_name_len, i.max_label_value_len), (30, 1024, 2048));
        assert_eq!((i.reject_older_than_ms, i.reject_newer_than_ms), (3_600_000, 600_000));
        let p = &i.profile;
        assert_eq!(
            (p.max_profile_size, p.max_samples, p.max_sample_labels, p.max_stack_depth, p.max_symbol_len),
            (4 * 1024 * 1024, 16_000, 100, 1000, 65_535)
        );
    }

    #[test]
    fn every_key_is_read() {
        let counts = KEYS
            .iter()
            .filter(|k| !k.starts_with("max_query") && !k.starts_with("reject") && **k != "multitenancy_enabled");
        let s = Settings::from_vars(counts.map(|k| (*k, "7"))).unwrap();
        let (i, p) = (&s.ingest, &s.ingest.profile);
        assert_eq!(
            [p.max_profile_size, p.max_samples, p.max_sample_labels, p.max_stack_depth, p.max_symbol_len],
            [7; 5]
        );
        assert_eq!([i.max_label_names, i.max_label_name_len, i.max_label_value_len], [7; 3]);
        assert_eq!([s.query.max_nodes_default, s.query.max_nodes_max], [7; 2]);

        let s = Settings::from_vars([
            ("multitenancy_enabled", "true"),
            ("max_query_lookback", "2h"),
            ("max_query_length", "1h30m"),
            ("reject_older_than", "0"),
            ("reject_newer_than", "5m"),
        ])
        .unwrap();
        assert!(s.multitenancy_enabled);
        assert_eq!((s.query.max_query_lookback_ms, s.query.max_query_length_ms), (7_200_000, 5_400_000));
        assert_eq!((s.ingest.reject_older_than_ms, s.ingest.reject_newer_than_ms), (0, 300_000));
    }

    #[test]
    fn zero_turns_profile_limits_off() {
        let s = Settings::from_vars([
            ("max_profile_size_bytes", "0"),
            ("max_profile_stacktrace_samples", "0"),
            ("max_profile_stacktrace_depth", "0"),
        ])
        .unwrap();
        assert_eq!(s.ingest.profile.max_profile_size, PROFILE_SIZE_CAP);
        assert_eq!(s.ingest.profile.max_samples, usize::MAX);
        assert_eq!(s.ingest.profile.max_stack_depth, usize::MAX);
    }

    #[test]
    fn malformed_values_name_the_key() {
        let e = Settings::from_vars([("max_query_length", "1 day")]).unwrap_err();
        assert_eq!(e.key, "max_query_length");
        assert_eq!(
            e.to_string(),
            "invalid value \"1 day\" for max_query_length: expected a duration such as 24h, 7d, 1h30m or 0"
        );
        assert!(Settings::from_vars([("multitenancy_enabled", "yes")]).is_err());
        assert!(Settings::from_vars([("max_label_names_per_series", "-1")]).is_err());
        assert!(Settings::from_vars([("max_profile_size_bytes", "4MB")]).is_err());
        // Keys of someone else are not kiln's business.
        assert!(Settings::from_vars([("region", "eu")]).is_ok());
    }

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("1w"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("1s500ms"), Ok(1500));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        for bad in ["", "h", "24", "1.5h", "30m1h", "1h1h", "-1h", "1H", "1 h", "1hour", "9999999999y"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn go_booleans() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(f), Ok(false));
        }
        assert!(parse_bool("yes").is_err());
    }
}
