//! SelectHeatmap: how the values of individual profiles (or of spans) are
//! distributed over time. Each series is a grid of time slots (right edges
//! `start, start+step, …`, covering `(t−step, t]`) by 20 value buckets shared
//! by all series, counting the points in each cell; the largest point of a
//! cell is its exemplar. Reads profile values only, never symbols.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{HeatmapQueryType, SelectHeatmapRequest, SelectHeatmapResponse};
use kiln_proto::types::v1::{ExemplarType, HeatmapSeries, HeatmapSlot, LabelPair};

use super::points::{PointKey, Points};
use super::{Context, profile_selector};
use crate::error::{Error, Result};
use crate::kv::KvStore;

/// Value buckets per slot (Pyroscope's `DefaultYAxisBuckets`).
const VALUE_BUCKETS: usize = 20;

type GroupKey = Vec<(String, String)>;

pub fn select_heatmap<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectHeatmapRequest,
) -> Result<SelectHeatmapResponse> {
    if req.step.is_nan() || req.step < 0.001 {
        return Err(Error::invalid(format!("step must be >= 1ms, got {:.6}", req.step)));
    }
    if let Some(limit) = req.limit.filter(|&l| l < 0) {
        return Err(Error::invalid(format!("limit must be non-negative, got {limit}")));
    }
    if req.start >= req.end {
        return Err(Error::invalid(format!(
            "start time must be before end time, got start={} end={}",
            req.start, req.end
        )));
    }
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(SelectHeatmapResponse::default()) };
    let selector = profile_selector(&req.profile_type_id, &req.label_selector)?;
    let spans = match HeatmapQueryType::try_from(req.query_type) {
        Ok(HeatmapQueryType::Individual) => false,
        Ok(HeatmapQueryType::Span) => true,
        _ => return Err(Error::invalid("valid heatmap query type must be specified")),
    };
    let exemplars = match ExemplarType::try_from(req.exemplar_type) {
        Ok(ExemplarType::Unspecified | ExemplarType::None) => false,
        Ok(ExemplarType::Individual) if !spans => true,
        Ok(ExemplarType::Individual) => {
            return Err(Error::invalid("individual exemplars only available for individual query type"));
        }
        Ok(ExemplarType::Span) if spans => true,
        Ok(ExemplarType::Span) => return Err(Error::invalid("span exemplars only available for span query type")),
        Err(_) => return Err(Error::invalid(format!("unknown exemplar type: {}", req.exemplar_type))),
    };
    let step = ((req.step * 1000.0) as i64).max(1);

    // The first slot ends at `start`, so one step before it is read.
    let mut groups: BTreeMap<GroupKey, Points> = BTreeMap::new();
    let series = cx.select(&selector, start - step, end)?;
    cx.storage.for_each_profiles(&series, |s, profiles| {
        let mut key: GroupKey =
            req.group_by.iter().filter_map(|n| s.labels.get(n).map(|v| (n.clone(), v.to_string()))).collect();
        key.sort();
        key.dedup();
        let points = groups.entry(key).or_default();
        for p in profiles.iter().filter(|p| p.timestamp_ms >= start - step && p.timestamp_ms < end) {
            let timestamp = p.timestamp_ms;
            if !spans {
                if let Ok(profile_id) = <[u8; 16]>::try_from(&p.id[..]) {
                    points.add(s, PointKey { timestamp, span_id: 0, trace_id: 0, profile_id }, p.total);
                }
                continue;
            }
            for (i, (&span_id, &value)) in
                p.span_ids.iter().zip(&p.values).enumerate().filter(|(_, (span, _))| **span != 0)
            {
                let key = PointKey { timestamp, span_id, trace_id: p.trace_id(i), profile_id: [0; 16] };
                points.add(s, key, value);
            }
        }
        Ok(())
    })?;
    groups.retain(|_, points| points.iter().next().is_some());

    let values = || groups.values().flat_map(|points| points.iter().map(|(_, p)| p.value));
    let (Some(min), Some(max)) = (values().min(), values().max()) else {
        return Ok(SelectHeatmapResponse::default());
    };
    let buckets = value_buckets(min, max.max(min + 1));
    let slots = Slots { start, end: round_up(end, start, step), step };
    let mut series: Vec<HeatmapSeries> = groups
        .into_iter()
        .map(|(key, points)| HeatmapSeries {
            labels: key.into_iter().map(|(name, value)| LabelPair { name, value }).collect(),
            slots: grid(&points, &buckets, &slots, exemplars.then_some(&req.group_by[..])),
        })
        .collect();
    if let Some(limit) = req.limit.filter(|&l| l > 0).map(|l| l as usize)
        && series.len() > limit
    {
        let count = |s: &HeatmapSeries| -> i64 { s.slots.iter().flat_map(|s| &s.counts).map(|&c| i64::from(c)).sum() };
        series.sort_by(|a, b| count(b).cmp(&count(a)).then_with(|| label_order(&a.labels, &b.labels)));
        series.truncate(limit);
    }
    Ok(SelectHeatmapResponse { series })
}

/// Time slots: right edges `start + k·step`, clamped to `[start, end]`.
struct Slots {
    start: i64,
    end: i64,
    step: i64,
}

impl Slots {
    fn of(&self, timestamp: i64) -> i64 {
        round_up(timestamp, self.start, self.step).clamp(self.start, self.end)
    }
}

/// The first slot edge (`start + k·step`) at or after `t`.
fn round_up(t: i64, start: i64, step: i64) -> i64 {
    let offset = start.rem_euclid(step);
    offset + (t - offset).div_euclid(step) * step + if (t - offset).rem_euclid(step) != 0 { step } else { 0 }
}

/// `VALUE_BUCKETS` equal-width `[min, max)` value ranges over `[min, max]`;
/// the last one also takes `max`.
fn value_buckets(min: i64, max: i64) -> Vec<(i64, i64)> {
    let width = (max - min) as f64 / VALUE_BUCKETS as f64;
    let mut buckets: Vec<(i64, i64)> =
        (0..VALUE_BUCKETS).map(|i| (min + (i as f64 * width) as i64, min + ((i + 1) as f64 * width) as i64)).collect();
    buckets[VALUE_BUCKETS - 1].1 = max;
    buckets
}

fn value_bucket(value: i64, buckets: &[(i64, i64)]) -> Option<usize> {
    buckets
        .iter()
        .position(|&(lo, hi)| value >= lo && value < hi)
        .or_else(|| buckets.last().filter(|(lo, _)| value >= *lo).map(|_| buckets.len() - 1))
}

/// One series' slots, in time order; with `exemplars` (the group-by labels),
/// each counted cell's largest point is an exemplar.
fn grid(points: &Points, buckets: &[(i64, i64)], slots: &Slots, exemplars: Option<&[String]>) -> Vec<HeatmapSlot> {
    // Per slot: count and largest point per value bucket.
    type Cell<'a> = (i32, Option<(&'a PointKey, &'a super::points::Point)>);
    let mut grid: BTreeMap<i64, Vec<Cell<'_>>> = BTreeMap::new();
    for (key, point) in points.iter() {
        let Some(y) = value_bucket(point.value, buckets) else { continue };
        let cells = grid.entry(slots.of(key.timestamp)).or_insert_with(|| vec![(0, None); buckets.len()]);
        let (count, best) = &mut cells[y];
        *count += 1;
        if best.is_none_or(|(k, b)| (point.value, core::cmp::Reverse(key)) > (b.value, core::cmp::Reverse(k))) {
            *best = Some((key, point));
        }
    }
    grid.into_iter()
        .map(|(timestamp, cells)| HeatmapSlot {
            timestamp,
            y_min: buckets.iter().map(|&(lo, _)| lo as f64).collect(),
            counts: cells.iter().map(|(count, _)| *count).collect(),
            exemplars: match exemplars {
                Some(group_by) => {
                    cells.iter().filter_map(|(_, best)| best.map(|(k, p)| points.exemplar(k, p, group_by))).collect()
                }
                None => vec![],
            },
        })
        .collect()
}

/// Pyroscope's label-set order: pair by pair, name then value; shorter first.
fn label_order(a: &[LabelPair], b: &[LabelPair]) -> core::cmp::Ordering {
    a.iter().map(|l| (&l.name, &l.value)).cmp(b.iter().map(|l| (&l.name, &l.value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{self, IngestLimits, RawProfile};
    use crate::pprof::tests::sample_profile;
    use crate::query::QueryLimits;
    use crate::store::{MemoryStore, Storage};
    use kiln_proto::google::v1::Label;
    use prost::Message;

    const NOW: i64 = 1_800_000_000_000;
    const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

    /// Pushes the sample profile with its values times `scale` (cpu total
    /// 50 × scale); with `span`, its first sample (cpu 30 × scale) carries it.
    fn push(kv: &MemoryStore, service: &str, t: i64, scale: i64, id: u8, span: Option<&str>) {
        let mut p = sample_profile();
        p.time_nanos = t * 1_000_000;
        p.sample.iter_mut().flat_map(|s| &mut s.value).for_each(|v| *v *= scale);
        if let Some(span) = span {
            p.string_table.extend(["span_id".into(), span.into()]);
            let n = p.string_table.len() as i64;
            p.sample[0].label.push(Label { key: n - 2, str: n - 1, ..Default::default() });
        }
        let bytes = p.encode_to_vec();
        let labels = [
            LabelPair { name: "__name__".into(), value: "process_cpu".into() },
            LabelPair { name: "service_name".into(), value: service.into() },
        ];
        let raw = [RawProfile { labels: &labels, bytes: &bytes }];
        ingest::push(&Storage::new(kv, "t"), &raw, NOW, &mut || [id; 16], &IngestLimits::default()).unwrap();
    }

    fn query(kv: &MemoryStore, req: &SelectHeatmapRequest) -> Result<SelectHeatmapResponse> {
        let limits = QueryLimits::default();
        let cx =
            Context { storage: Storage::new(kv, "t"), now_ms: NOW, limits: &limits, allow_utf8_label_names: false };
        select_heatmap(&cx, req)
    }

    fn request(query_type: HeatmapQueryType, exemplar_type: ExemplarType) -> SelectHeatmapRequest {
        SelectHeatmapRequest {
            profile_type_id: CPU.into(),
            label_selector: "{}".into(),
            start: NOW - 60_000,
            end: NOW,
            step: 10.0,
            group_by: vec!["service_name".into()],
            query_type: query_type as i32,
            exemplar_type: exemplar_type as i32,
            limit: None,
        }
    }

    #[test]
    fn individual_profiles_counted_per_slot_and_value_bucket() {
        let kv = MemoryStore::default();
        push(&kv, "a", NOW - 59_000, 1, 1, None); // 50
        push(&kv, "a", NOW - 55_000, 2, 2, None); // 100
        push(&kv, "b", NOW - 1_000, 3, 3, None); // 150
        push(&kv, "b", NOW - 75_000, 3, 4, None); // before the first slot
        let out = query(&kv, &request(HeatmapQueryType::Individual, ExemplarType::Individual)).unwrap();
        assert_eq!(out.series.len(), 2);
        let a = &out.series[0];
        assert_eq!(a.labels, [LabelPair { name: "service_name".into(), value: "a".into() }]);
        assert_eq!(a.slots.len(), 1);
        let slot = &a.slots[0];
        assert_eq!(slot.timestamp, NOW - 50_000, "slot (t-step, t]");
        assert_eq!(slot.y_min.len(), 20);
        assert_eq!((slot.y_min[0], slot.y_min[10], slot.y_min[19]), (50.0, 100.0, 145.0));
        let mut counts = vec![0; 20];
        (counts[0], counts[10]) = (1, 1);
        assert_eq!(slot.counts, counts);
        let exemplars: Vec<(i64, &str)> = slot.exemplars.iter().map(|e| (e.value, e.profile_id.as_str())).collect();
        assert_eq!(
            exemplars,
            [(50, "01010101-0101-0101-0101-010101010101"), (100, "02020202-0202-0202-0202-020202020202")]
        );
        let b = &out.series[1];
        assert_eq!((b.slots.len(), b.slots[0].timestamp, b.slots[0].counts[19]), (1, NOW, 1));

        let mut top = request(HeatmapQueryType::Individual, ExemplarType::None);
        top.limit = Some(1);
        let top = query(&kv, &top).unwrap();
        assert_eq!(top.series.len(), 1);
        assert_eq!(top.series[0].labels[0].value, "a", "most points first");
        assert!(top.series[0].slots[0].exemplars.is_empty());
    }

    #[test]
    fn spans_are_points_of_their_own() {
        let kv = MemoryStore::default();
        push(&kv, "a", NOW - 30_000, 1, 1, Some("00000000000000ff"));
        push(&kv, "a", NOW - 20_000, 1, 2, None);
        let out = query(&kv, &request(HeatmapQueryType::Span, ExemplarType::Span)).unwrap();
        assert_eq!(out.series.len(), 1);
        let slots = &out.series[0].slots;
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].exemplars.len(), 1);
        let e = &slots[0].exemplars[0];
        assert_eq!((e.span_id.as_str(), e.value, e.profile_id.as_str()), ("00000000000000ff", 30, ""));
    }

    #[test]
    fn validation() {
        let kv = MemoryStore::default();
        let err = |f: fn(&mut SelectHeatmapRequest)| {
            let mut req = request(HeatmapQueryType::Individual, ExemplarType::None);
            f(&mut req);
            query(&kv, &req).unwrap_err().to_string()
        };
        assert_eq!(err(|r| r.step = 0.0), "step must be >= 1ms, got 0.000000");
        assert_eq!(err(|r| r.limit = Some(-1)), "limit must be non-negative, got -1");
        assert!(err(|r| r.start = r.end).starts_with("start time must be before end time"));
        assert_eq!(err(|r| r.query_type = 0), "valid heatmap query type must be specified");
        assert_eq!(
            err(|r| r.exemplar_type = ExemplarType::Span as i32),
            "span exemplars only available for span query type"
        );
        assert!(query(&kv, &request(HeatmapQueryType::Individual, ExemplarType::None)).unwrap().series.is_empty());
    }

    #[test]
    fn slot_edges_follow_start() {
        assert_eq!(round_up(95, 5, 10), 95);
        assert_eq!(round_up(96, 5, 10), 105);
        assert_eq!(round_up(-4, 5, 10), 5);
        let slots = Slots { start: 5, end: 25, step: 10 };
        assert_eq!((slots.of(-20), slots.of(12), slots.of(40)), (5, 15, 25));
        assert_eq!(value_bucket(150, &value_buckets(50, 150)), Some(19));
        assert_eq!(value_bucket(10, &value_buckets(50, 150)), None);
    }
}
