//! AnalyzeQuery: what a query over a time range would read. Like Pyroscope's
//! v1 querier, the scope counts everything stored in the range (kiln has one
//! storage component; its "blocks" are the series' hourly segment logs read
//! whole) and the impact counts the series the query's selector matches.

use alloc::collections::BTreeSet;
use alloc::vec;

use kiln_proto::querier::v1::{AnalyzeQueryRequest, AnalyzeQueryResponse, QueryImpact, QueryScope};

use super::{Context, parse_selector};
use crate::error::{Error, Result};
use crate::kv::KvStore;
use crate::selector::{Matcher, Selector};

pub fn analyze_query<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &AnalyzeQueryRequest,
) -> Result<AnalyzeQueryResponse> {
    let selector = query_selector(&req.query)?;
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(AnalyzeQueryResponse::default()) };
    let series = cx.storage.series(start, end)?;
    let footprint = cx.storage.footprint(&series)?;
    let distinct = |f: fn(&crate::store::SeriesRef) -> u64| series.iter().map(f).collect::<BTreeSet<u64>>().len();
    let scope = QueryScope {
        component_type: "Storage".into(),
        component_count: 1,
        block_count: footprint.segments,
        series_count: distinct(|s| s.id) as u64,
        profile_count: footprint.profiles,
        sample_count: footprint.samples,
        index_bytes: footprint.index_bytes,
        profile_bytes: footprint.profile_bytes,
        symbol_bytes: footprint.symbol_bytes,
    };
    let queried: BTreeSet<u64> = series.iter().filter(|s| selector.matches(&s.labels)).map(|s| s.id).collect();
    Ok(AnalyzeQueryResponse {
        query_impact: Some(QueryImpact {
            total_bytes_in_time_range: footprint.index_bytes + footprint.profile_bytes + footprint.symbol_bytes,
            total_queried_series: queried.len() as u64,
            deduplication_needed: false,
        }),
        query_scopes: vec![scope],
    })
}

/// The query as a selector whose metric name is the profile type
/// (`process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="x"}`), as
/// Pyroscope reads it; empty selects everything.
fn query_selector(query: &str) -> Result<Selector> {
    if query.trim().is_empty() {
        return Ok(Selector::default());
    }
    let mut out = Selector::default();
    for m in parse_selector(query)?.matchers() {
        let name = if m.name == "__name__" { "__profile_type__" } else { m.name.as_str() };
        out.push(Matcher::new(name, m.op, m.value.clone()).map_err(|e| Error::invalid(alloc::format!("{e}")))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{self, IngestLimits, RawProfile};
    use crate::pprof::tests::sample_profile;
    use crate::query::QueryLimits;
    use crate::store::{MemoryStore, Storage};
    use kiln_proto::types::v1::LabelPair;
    use prost::Message;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn scope_counts_the_range_and_impact_the_matches() {
        let kv = MemoryStore::default();
        for service in ["a", "b"] {
            let mut p = sample_profile();
            p.time_nanos = (NOW - 1000) * 1_000_000;
            let bytes = p.encode_to_vec();
            let labels = [
                LabelPair { name: "__name__".into(), value: "process_cpu".into() },
                LabelPair { name: "service_name".into(), value: service.into() },
            ];
            let raw = [RawProfile { labels: &labels, bytes: &bytes }];
            ingest::push(&Storage::new(&kv, "t"), &raw, NOW, &mut || [1; 16], &IngestLimits::default()).unwrap();
        }
        let limits = QueryLimits::default();
        let cx =
            Context { storage: Storage::new(&kv, "t"), now_ms: NOW, limits: &limits, allow_utf8_label_names: false };
        let req = AnalyzeQueryRequest {
            start: NOW - 60_000,
            end: NOW,
            query: r#"process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="a"}"#.into(),
        };
        let out = analyze_query(&cx, &req).unwrap();
        let scope = &out.query_scopes[0];
        // Two services × two sample types.
        assert_eq!((scope.series_count, scope.profile_count, scope.sample_count), (4, 4, 8));
        assert!(scope.profile_bytes > 0 && scope.symbol_bytes > 0 && scope.index_bytes > 0);
        let impact = out.query_impact.unwrap();
        assert_eq!(impact.total_queried_series, 1);
        assert_eq!(impact.total_bytes_in_time_range, scope.index_bytes + scope.profile_bytes + scope.symbol_bytes);
        let all = analyze_query(&cx, &AnalyzeQueryRequest { query: " ".into(), ..req.clone() }).unwrap();
        assert_eq!(all.query_impact.unwrap().total_queried_series, 4);
        assert!(analyze_query(&cx, &AnalyzeQueryRequest { query: "{".into(), ..req.clone() }).is_err());
        assert!(analyze_query(&cx, &AnalyzeQueryRequest { start: 0, ..req }).is_err());
    }
}
