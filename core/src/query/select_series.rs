//! SelectSeries: the total of each selected profile over time, bucketed by
//! `step` and grouped by labels, optionally with the largest profile of each
//! bucket as its exemplar. Reads profile totals only, never symbols.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{SelectSeriesRequest, SelectSeriesResponse};
use kiln_proto::types::v1::{ExemplarType, LabelPair, Point, Series, TimeSeriesAggregationType};

use super::points::{PointKey, Points};
use super::{Context, profile_selector};
use crate::FastMap;
use crate::error::{Error, Result};
use crate::kv::KvStore;

type GroupKey = Vec<(String, String)>;

/// One output series in the making: (sum, count) per bucket timestamp, and
/// the individual profiles when exemplars are asked for.
#[derive(Default)]
struct Group {
    buckets: BTreeMap<i64, (f64, u32)>,
    points: Points,
}

pub fn select_series<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectSeriesRequest,
) -> Result<SelectSeriesResponse> {
    if req.exemplar_type == ExemplarType::Span as i32 {
        return Err(Error::Unimplemented("exemplars of type span are not supported".into()));
    }
    let selector = profile_selector(&req.profile_type_id, &req.label_selector)?;
    if req.step.is_nan() || req.step < 0.001 {
        return Err(Error::invalid("step must be >= 1ms"));
    }
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(SelectSeriesResponse::default()) };
    let step = ((req.step * 1000.0) as i64).max(1);
    let average = req.aggregation == Some(TimeSeriesAggregationType::Average as i32);
    let exemplars = req.exemplar_type == ExemplarType::Individual as i32;
    let bucket_of = |t: i64| start + (t - start + step - 1).div_euclid(step).max(0) * step;

    // Bucket timestamps are start, start+step, … ≤ end; a profile goes to
    // the first one at or after its time, so [start−step, end) is read.
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let series = cx.select(&selector, start - step, end)?;
    // Group keys per series, computed once rather than per profile.
    let keys: Vec<GroupKey> = series
        .iter()
        .map(|s| {
            let mut key: GroupKey =
                req.group_by.iter().filter_map(|n| s.labels.get(n).map(|v| (n.clone(), v.to_string()))).collect();
            key.sort();
            key.dedup();
            key
        })
        .collect();
    cx.storage.for_each_total(&series, |i, p| {
        let t = p.timestamp_ms;
        if t <= start - step || t >= end {
            return;
        }
        let bucket = bucket_of(t);
        if bucket > end {
            return;
        }
        let group = match groups.get_mut(&keys[i]) {
            Some(group) => group,
            None => groups.entry(keys[i].clone()).or_default(),
        };
        let slot = group.buckets.entry(bucket).or_insert((0.0, 0));
        slot.0 += p.total as f64;
        slot.1 += 1;
        if exemplars && let Ok(profile_id) = <[u8; 16]>::try_from(p.id) {
            group.points.add(&series[i], PointKey { timestamp: t, span_id: 0, trace_id: 0, profile_id }, p.total);
        }
    })?;

    let mut out: Vec<(f64, Series)> = groups
        .into_iter()
        .filter(|(_, group)| !group.buckets.is_empty())
        .map(|(key, group)| {
            // The largest point of each bucket is its exemplar.
            let mut best: FastMap<i64, (&PointKey, &super::points::Point)> = FastMap::default();
            for (k, point) in group.points.iter() {
                let slot = best.entry(bucket_of(k.timestamp)).or_insert((k, point));
                if (point.value, core::cmp::Reverse(k)) > (slot.1.value, core::cmp::Reverse(slot.0)) {
                    *slot = (k, point);
                }
            }
            let points: Vec<Point> = group
                .buckets
                .into_iter()
                .map(|(timestamp, (sum, n))| Point {
                    value: if average { sum / f64::from(n) } else { sum },
                    timestamp,
                    exemplars: best
                        .get(&timestamp)
                        .map(|(k, point)| vec![group.points.exemplar(k, point, &req.group_by)])
                        .unwrap_or_default(),
                    ..Default::default()
                })
                .collect();
            let total = points.iter().map(|p| p.value).sum();
            let labels = key.into_iter().map(|(name, value)| LabelPair { name, value }).collect();
            (total, Series { labels, points })
        })
        .collect();
    // Largest total first; equal totals by label set (already in key order).
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    if let Some(limit) = req.limit.filter(|&l| l > 0) {
        out.truncate(limit as usize);
    }
    Ok(SelectSeriesResponse { series: out.into_iter().map(|(_, s)| s).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::QueryLimits;
    use crate::store::{MemoryStore, Storage};

    use crate::query::test_data::{NOW, push_sample};
    const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

    fn push(kv: &MemoryStore, service: &str, t: i64) {
        push_sample(kv, service, t, [0; 16]);
    }

    fn query(kv: &MemoryStore, req: SelectSeriesRequest) -> Result<SelectSeriesResponse> {
        let limits = QueryLimits::default();
        let cx =
            Context { storage: Storage::new(kv, "t"), now_ms: NOW, limits: &limits, allow_utf8_label_names: false };
        select_series(&cx, &req)
    }

    fn request(step: f64, group_by: &[&str]) -> SelectSeriesRequest {
        SelectSeriesRequest {
            profile_type_id: CPU.into(),
            label_selector: "{}".into(),
            start: NOW - 60_000,
            end: NOW,
            step,
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn buckets_groups_and_order() {
        let kv = MemoryStore::default();
        push(&kv, "a", NOW - 59_000); // bucket NOW-50s
        push(&kv, "a", NOW - 55_000); // same bucket
        push(&kv, "b", NOW - 1_000); // bucket NOW
        push(&kv, "b", NOW - 65_000); // (start-step, start]: bucket start
        push(&kv, "b", NOW - 75_000); // before start-step: not read
        let all = query(&kv, request(10.0, &[])).unwrap();
        assert_eq!(all.series.len(), 1);
        assert!(all.series[0].labels.is_empty());
        let points: Vec<(i64, f64)> = all.series[0].points.iter().map(|p| (p.timestamp, p.value)).collect();
        assert_eq!(points, [(NOW - 60_000, 50.0), (NOW - 50_000, 100.0), (NOW, 50.0)]);

        let grouped = query(&kv, request(10.0, &["service_name"])).unwrap();
        let names: Vec<&str> = grouped.series.iter().map(|s| s.labels[0].value.as_str()).collect();
        assert_eq!(names, ["a", "b"], "equal totals: by labels");
        push(&kv, "b", NOW - 2_000);
        let grouped = query(&kv, request(10.0, &["service_name"])).unwrap();
        let names: Vec<&str> = grouped.series.iter().map(|s| s.labels[0].value.as_str()).collect();
        assert_eq!(names, ["b", "a"], "largest total first");

        let mut top = request(10.0, &["service_name"]);
        top.limit = Some(1);
        top.aggregation = Some(TimeSeriesAggregationType::Average as i32);
        let top = query(&kv, top).unwrap();
        assert_eq!(top.series.len(), 1);
        let bucket_now = top.series[0].points.iter().find(|p| p.timestamp == NOW).unwrap();
        assert_eq!(bucket_now.value, 50.0, "average of two profiles");
    }

    #[test]
    fn validation() {
        let kv = MemoryStore::default();
        assert_eq!(query(&kv, request(0.0, &[])).unwrap_err().to_string(), "step must be >= 1ms");
        let mut bad = request(1.0, &[]);
        bad.profile_type_id = "x".into();
        assert!(query(&kv, bad).is_err());
    }

    #[test]
    fn exemplars_are_the_largest_profile_of_each_bucket() {
        let kv = MemoryStore::default();
        push_sample(&kv, "a", NOW - 59_000, [1; 16]);
        push_sample(&kv, "a", NOW - 58_000, [2; 16]);
        push_sample(&kv, "a", NOW - 58_000, [2; 16]); // same upload id and time: one profile of 100
        push_sample(&kv, "b", NOW - 1_000, [3; 16]);
        let mut req = request(10.0, &["service_name"]);
        assert!(
            query(&kv, req.clone()).unwrap().series.iter().all(|s| s.points.iter().all(|p| p.exemplars.is_empty()))
        );
        req.exemplar_type = ExemplarType::Individual as i32;
        let out = query(&kv, req).unwrap();
        let a = &out.series[0];
        assert_eq!(a.labels[0].value, "a");
        assert_eq!(a.points.len(), 1);
        let e = &a.points[0].exemplars;
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].profile_id.as_str(), e[0].value, e[0].timestamp),
            ("02020202-0202-0202-0202-020202020202", 100, NOW - 58_000)
        );
        assert!(e[0].labels.iter().all(|l| l.name != "service_name"), "group-by labels are the series'");
        assert!(e[0].labels.iter().any(|l| l.name == "__profile_type__"));
        assert_eq!(out.series[1].points[0].exemplars[0].value, 50);
        let mut span = request(10.0, &[]);
        span.exemplar_type = ExemplarType::Span as i32;
        assert!(query(&kv, span).is_err());
    }
}
