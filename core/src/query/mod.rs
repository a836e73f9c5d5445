//! Queries over stored series, one module per method family. Requests and
//! responses are Pyroscope's own messages, so adapters only translate codecs.

mod analyze;
mod diff;
mod heatmap;
mod merge;
mod merge_profile;
mod metadata;
mod points;
mod render;
mod select_series;
mod selection;
mod stats;
mod timeline;

pub use analyze::analyze_query;
pub use diff::diff;
pub use heatmap::select_heatmap;
pub use merge::{select_merge_span_profile, select_merge_stacktraces};
pub use merge_profile::select_merge_profile;
pub use metadata::{label_names, label_values, profile_types, series};
pub use render::{Rendered, legacy_label_values, render, render_diff};
pub use select_series::select_series;
pub use stats::get_profile_stats;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::kv::KvStore;
use crate::profile_type::ProfileType;
use crate::selector::{self, MatchOp, Matcher, Selector};
use crate::store::{SeriesRef, Storage};
use crate::time::go_duration_ms;

const DAY_MS: i64 = 86_400_000;

/// Query limits with Pyroscope's defaults. A zero duration disables a limit.
#[derive(Clone, Debug)]
pub struct QueryLimits {
    pub max_query_lookback_ms: i64,
    pub max_query_length_ms: i64,
    pub max_nodes_default: i64,
    pub max_nodes_max: i64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_query_lookback_ms: 7 * DAY_MS,
            max_query_length_ms: DAY_MS,
            max_nodes_default: 8192,
            max_nodes_max: 1_048_576,
        }
    }
}

/// What every query needs: a tenant's storage, the time and the limits.
pub struct Context<'a, S: KvStore + ?Sized> {
    pub storage: Storage<'a, S>,
    pub now_ms: i64,
    pub limits: &'a QueryLimits,
    /// The client asked for label names that are not Prometheus identifiers
    /// (`Accept: ...; allow-utf8-labelnames=true`).
    pub allow_utf8_label_names: bool,
}

impl<S: KvStore + ?Sized> Context<'_, S> {
    /// Validates `[start, end)` in ms and applies the lookback clamp; `None`
    /// means the range lies entirely before the lookback and the answer is
    /// empty.
    fn range(&self, start: i64, end: i64) -> Result<Option<(i64, i64)>> {
        if start == 0 || end == 0 {
            return Err(Error::invalid("missing time range in the query"));
        }
        if start > end {
            return Err(Error::invalid("query start time is after end time"));
        }
        let mut start = start;
        let lookback = self.limits.max_query_lookback_ms;
        if lookback > 0 {
            let oldest = self.now_ms - lookback;
            if end < oldest {
                return Ok(None);
            }
            start = start.max(oldest);
        }
        let length = self.limits.max_query_length_ms;
        if length > 0 && end - start > length {
            return Err(Error::invalid(format!(
                "the query time range exceeds the limit (max_query_length, actual: {}, limit: {})",
                go_duration_ms(end - start),
                prometheus_duration(length)
            )));
        }
        Ok(Some((start, end)))
    }

    /// Series overlapping the range whose labels match `selector`.
    fn select(&self, selector: &Selector, start: i64, end: i64) -> Result<Vec<SeriesRef>> {
        let mut series = self.storage.series(start, end)?;
        series.retain(|s| selector.matches(&s.labels));
        Ok(series)
    }
}

/// Joins a list of selectors with AND, as Pyroscope's v2 read path does.
fn parse_matchers(matchers: &[String]) -> Result<Selector> {
    let mut all = Selector::default();
    for m in matchers {
        for matcher in parse_selector(m)?.matchers() {
            all.push(matcher.clone());
        }
    }
    Ok(all)
}

fn parse_selector(s: &str) -> Result<Selector> {
    selector::parse(s).map_err(|e| Error::invalid(format!("{e}")))
}

/// `label_selector` plus a `__profile_type__` matcher for `profile_type_id`.
fn profile_selector(profile_type_id: &str, label_selector: &str) -> Result<Selector> {
    let profile_type = ProfileType::parse(profile_type_id)?;
    let mut selector = parse_selector(label_selector)?;
    let matcher =
        Matcher::new("__profile_type__", MatchOp::Eq, profile_type.id()).map_err(|e| Error::invalid(format!("{e}")))?;
    selector.push(matcher);
    Ok(selector)
}

/// Prometheus `model.Duration` style, as Pyroscope prints limits: `1d`, `1w`.
fn prometheus_duration(ms: i64) -> String {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * DAY_MS),
        ("w", 7 * DAY_MS),
        ("d", DAY_MS),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = ms;
    let mut out = String::new();
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// Prometheus' legacy label-name syntax, `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Data the query tests share.
#[cfg(test)]
pub(crate) mod test_data {
    use crate::ingest::{self, IngestLimits, RawProfile};
    use crate::pprof::tests::sample_profile;
    use crate::store::{MemoryStore, Storage};
    use kiln_proto::types::v1::LabelPair;
    use prost::Message;

    /// The "now" of the query tests, in ms.
    pub const NOW: i64 = 1_800_000_000_000;

    /// Pushes the sample profile (cpu total 50: main;a 30, main;b 20) for
    /// `service` at `t` ms as upload `id`, into tenant "t".
    pub fn push_sample(kv: &MemoryStore, service: &str, t: i64, id: [u8; 16]) {
        let mut p = sample_profile();
        p.time_nanos = t * 1_000_000;
        let bytes = p.encode_to_vec();
        let labels = [
            LabelPair { name: "__name__".into(), value: "process_cpu".into() },
            LabelPair { name: "service_name".into(), value: service.into() },
        ];
        let raw = [RawProfile { labels: &labels, bytes: &bytes }];
        ingest::push(&Storage::new(kv, "t"), &raw, NOW, &mut || id, &IngestLimits::default()).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_names() {
        assert_eq!(prometheus_duration(DAY_MS), "1d");
        assert_eq!(prometheus_duration(7 * DAY_MS), "1w");
        assert!(is_legacy_label_name("service_name"));
        assert!(!is_legacy_label_name("otel.scope.name"));
        assert!(!is_legacy_label_name("1a"));
    }
}
