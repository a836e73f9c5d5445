//! The Push pipeline: labelled raw pprofs in, validated series segments out,
//! written through [`Storage`]. Mirrors Pyroscope's distributor: required
//! `__name__`, defaulted `service_name`, server-derived `__profile_type__`
//! labels, sample labels promoted to series labels, one series per sample type.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::FastMap as HashMap;
use kiln_proto::types::v1::LabelPair;
use prost::Message;

use crate::error::{Error, Result};
use crate::kv::KvStore;
use crate::labels::Labels;
use crate::name_tree::NameTree;
use crate::pprof::{self, Profile};
use crate::profile_type::ProfileType;
use crate::segment::{Segment, SegmentBuilder, StoredProfile};
use crate::store::{Batch, SeriesWrite, Storage};
use crate::time::rfc3339_ms;

/// Validation settings with Pyroscope's defaults.
#[derive(Clone, Debug)]
pub struct IngestLimits {
    pub profile: pprof::Limits,
    pub reject_older_than_ms: i64,
    pub reject_newer_than_ms: i64,
    pub max_label_names: usize,
    pub max_label_name_len: usize,
    pub max_label_value_len: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            profile: pprof::Limits::default(),
            reject_older_than_ms: 3_600_000,
            reject_newer_than_ms: 600_000,
            max_label_names: 30,
            max_label_name_len: 1024,
            max_label_value_len: 2048,
        }
    }
}

/// One uploaded profile with the labels of its series.
pub struct RawProfile<'a> {
    pub labels: &'a [LabelPair],
    pub bytes: &'a [u8],
}

/// What an accepted push stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub profiles: usize,
    pub series: usize,
}

/// Validates every profile, then stores them all in one write. Any invalid
/// profile rejects the whole request before anything is written, so a client
/// retry never double-counts the valid part.
pub fn push<S: KvStore + ?Sized>(
    storage: &Storage<'_, S>,
    profiles: &[RawProfile<'_>],
    now_ms: i64,
    new_id: &mut dyn FnMut() -> [u8; 16],
    limits: &IngestLimits,
) -> Result<PushSummary> {
    if profiles.is_empty() {
        return Err(Error::invalid("no profiles received"));
    }
    let prepared: Vec<_> = profiles.iter().map(|raw| prepare(raw, now_ms, new_id(), limits)).collect();
    store_all(storage, prepared)
}

/// Stores the writes of every prepared profile in one batch, or nothing if
/// any of them failed (the first error is returned).
pub fn store_all<S: KvStore + ?Sized>(storage: &Storage<'_, S>, prepared: Vec<Result<Batch>>) -> Result<PushSummary> {
    let profiles = prepared.len();
    let mut batch = Batch::default();
    for b in prepared {
        batch.extend(b?);
    }
    let summary = PushSummary { profiles, series: batch.series.len() };
    storage.write(batch)?;
    Ok(summary)
}

/// Turns one labelled raw pprof into the writes of its series.
pub fn prepare(raw: &RawProfile<'_>, now_ms: i64, id: [u8; 16], limits: &IngestLimits) -> Result<Batch> {
    let labels = series_labels(raw.labels)?;
    let profile = pprof::decode(raw.bytes, &limits.profile)?;
    prepare_decoded(labels, profile, now_ms, id, limits)
}

/// The pipeline after decoding, shared by Push and `/ingest`: validation,
/// symbol truncation, the ingestion window, then the split into series.
pub fn prepare_decoded(
    labels: Labels,
    mut profile: Profile,
    now_ms: i64,
    id: [u8; 16],
    limits: &IngestLimits,
) -> Result<Batch> {
    pprof::validate(&profile, &limits.profile)?;
    pprof::truncate_symbols(&mut profile, limits.profile.max_symbol_len);
    let timestamp_ms = if profile.time_nanos <= 0 { now_ms } else { profile.time_nanos.div_euclid(1_000_000) };
    check_window(&labels, timestamp_ms, now_ms, limits)?;
    split(&profile, &labels, timestamp_ms, id, limits)
}

/// Applies Pyroscope's rules to the labels a client sent with a series.
pub fn series_labels(pairs: &[LabelPair]) -> Result<Labels> {
    let mut labels = Labels::new();
    for p in pairs {
        if labels.get(&p.name).is_some() {
            let all = Labels::from_pairs(pairs.iter().map(|p| (p.name.as_str(), p.value.as_str())));
            return Err(Error::invalid(format!("profile with labels '{all}' has duplicate label name: '{}'", p.name)));
        }
        if !p.value.is_empty() {
            labels.set(p.name.clone(), p.value.clone());
        }
    }
    match labels.get("__name__") {
        None | Some("") => {
            return Err(Error::invalid(format!("invalid labels '{labels}' with error: invalid metric name")));
        }
        Some(name) => {
            // Default relabel rule: godeltaprof_memory → memory, and so on.
            if let Some(base) = name.strip_prefix("godeltaprof_") {
                let (base, original) = (base.to_string(), name.to_string());
                labels.set("__name__".into(), base);
                labels.set("__name_replaced__".into(), original);
            }
        }
    }
    if labels.get("service_name").is_none() {
        labels.set("service_name".into(), "unknown_service".into());
    }
    for private in ["__delta__", "__order__", "__session_id__"] {
        labels.remove(private);
    }
    Ok(labels)
}

/// Pyroscope's ingestion window, `(now - reject_older_than, now +
/// reject_newer_than)`; a zero duration leaves that side open.
fn check_window(labels: &Labels, ts: i64, now: i64, limits: &IngestLimits) -> Result<()> {
    let start = (limits.reject_older_than_ms != 0).then(|| now - limits.reject_older_than_ms);
    let end = (limits.reject_newer_than_ms != 0).then(|| now + limits.reject_newer_than_ms);
    if start.is_none_or(|start| ts > start) && end.is_none_or(|end| ts < end) {
        return Ok(());
    }
    let window = match (start, end) {
        (Some(start), Some(end)) => {
            format!("the ingestion window starts at {} and ends at {}", rfc3339_ms(start), rfc3339_ms(end))
        }
        (Some(start), None) => format!("the ingestion window starts at {}", rfc3339_ms(start)),
        (None, Some(end)) => format!("the ingestion window ends at {}", rfc3339_ms(end)),
        (None, None) => unreachable!("an open window admits every timestamp"),
    };
    Err(Error::invalid(format!(
        "profile with labels '{labels}' is outside of ingestion window (profile timestamp: {}, {window})",
        rfc3339_ms(ts)
    )))
}

/// Sample labels that stay per sample instead of splitting series.
const SPAN_ID: &str = "span_id";
const TRACE_ID: &str = "trace_id";

/// Splits a profile into series: one per distinct set of sample labels and
/// per sample type.
fn split(profile: &Profile, labels: &Labels, timestamp_ms: i64, id: [u8; 16], limits: &IngestLimits) -> Result<Batch> {
    let strings = &profile.string_table;
    let s = |i: i64| strings.get(i as usize).map_or("", String::as_str);

    // Group sample indices by their string labels; drop samples Pyroscope's
    // normalisation drops (a negative value, or all values zero).
    // Sample labels -> (sample index, ids) of the samples carrying them.
    type Group<'a> = Vec<(&'a str, &'a str)>;
    let mut groups: BTreeMap<Group<'_>, Vec<(usize, SampleIds)>> = BTreeMap::new();
    for (i, sample) in profile.sample.iter().enumerate() {
        if is_dropped(&sample.value) {
            continue;
        }
        let mut key = Vec::new();
        let mut ids = SampleIds::default();
        for l in &sample.label {
            let (name, value) = (s(l.key), s(l.str));
            if value.is_empty() {
                continue;
            }
            match name {
                SPAN_ID | "profile_id" => ids.span = parse_span_id(value),
                TRACE_ID => ids.trace = parse_trace_id(value),
                _ => key.push((name, value)),
            }
        }
        key.sort_unstable();
        key.dedup_by(|a, b| a.0 == b.0);
        groups.entry(key).or_default().push((i, ids));
    }

    let name = labels.get("__name__").unwrap_or_default();
    let period = profile.period_type.as_ref().map(|p| (s(p.r#type), s(p.unit)));
    let mut batch = Batch::default();
    for (group, samples) in groups {
        let mut builder = SegmentBuilder::new(profile, limits.profile.max_stack_depth);
        let mut stacks = Vec::with_capacity(samples.len());
        for &(i, _) in &samples {
            stacks.push(builder.add_stack(&profile.sample[i])?);
        }
        // Encoded once for the series of every sample type.
        let symbols = builder.finish();
        let names = NameTree::of(&symbols).encode_to_vec();
        let symbols = symbols.encode_to_vec();
        let has_spans = samples.iter().any(|(_, ids)| ids.span != 0);
        let has_traces = samples.iter().any(|(_, ids)| ids.trace != 0);

        let mut base = labels.clone();
        for (k, v) in &group {
            if base.get(k).is_none() {
                base.set((*k).into(), (*v).into());
            }
        }
        for column in 0..profile.sample_type.len() {
            let mut series = base.clone();
            let pt = profile_type(name, profile, column);
            if pt.name != name {
                series.set("__name__".into(), pt.name.clone());
                series.set("__name_replaced__".into(), name.into());
            }
            series.set("__profile_type__".into(), pt.id());
            series.set("__type__".into(), pt.sample_type.clone());
            series.set("__unit__".into(), pt.sample_unit.clone());
            if let Some((ptype, punit)) = period {
                series.set("__period_type__".into(), ptype.into());
                series.set("__period_unit__".into(), punit.into());
            }
            let service = series.get("service_name").unwrap_or_default().to_string();
            series.set("__service_name__".into(), service);
            validate_labels(&series, limits)?;

            let stored = column_values(profile, &samples, &stacks, column, (has_spans, has_traces), id, timestamp_ms);
            // A sample type without a single non-zero value has no series,
            // as in Pyroscope (whose normalisation drops zero samples per type).
            if stored.stacks.is_empty() {
                continue;
            }
            let profile = Segment { profiles: vec![stored], ..Default::default() }.encode_to_vec();
            batch.series.push(SeriesWrite {
                labels: series,
                timestamp_ms,
                profile,
                names: names.clone(),
                symbols: symbols.clone(),
            });
        }
    }
    Ok(batch)
}

/// Whether Pyroscope's normalisation drops a sample with these values: any
/// negative value, or all zero.
pub fn is_dropped(values: &[i64]) -> bool {
    values.iter().any(|&v| v < 0) || values.iter().all(|&v| v == 0)
}

/// The profile type of sample type `column` of `profile` stored under the
/// metric `name` (the series' `__name__`), after the default relabel rule
/// that turns wall profiles of cpu type into process_cpu.
pub fn profile_type(name: &str, profile: &Profile, column: usize) -> ProfileType {
    let s = |i: i64| profile.string_table.get(i as usize).map_or("", String::as_str);
    let (sample_type, sample_unit) = profile.sample_type.get(column).map_or(("", ""), |st| (s(st.r#type), s(st.unit)));
    let period = profile.period_type.as_ref().map(|p| (s(p.r#type), s(p.unit)));
    let name = if name == "wall" && sample_type == "cpu" { "process_cpu" } else { name };
    ProfileType {
        name: name.into(),
        sample_type: sample_type.into(),
        sample_unit: sample_unit.into(),
        period_type: period.map_or("", |p| p.0).into(),
        period_unit: period.map_or("", |p| p.1).into(),
    }
}

/// The span and trace ids a sample carries (0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct SampleIds {
    span: u64,
    trace: u128,
}

/// The values of one sample type, with identical (stack, span, trace)
/// samples summed; span and trace ids are stored if any sample has one.
fn column_values(
    profile: &Profile,
    samples: &[(usize, SampleIds)],
    stacks: &[u32],
    column: usize,
    (has_spans, has_traces): (bool, bool),
    id: [u8; 16],
    timestamp_ms: i64,
) -> StoredProfile {
    let mut index: HashMap<(u32, SampleIds), usize> =
        HashMap::with_capacity_and_hasher(samples.len(), Default::default());
    let mut out = StoredProfile { id: id.to_vec(), timestamp_ms, ..Default::default() };
    for (&(i, ids), &stack) in samples.iter().zip(stacks) {
        let value = profile.sample[i].value[column];
        if value == 0 {
            continue;
        }
        out.total += value;
        match index.entry((stack, ids)) {
            hashbrown::hash_map::Entry::Occupied(e) => out.values[*e.get()] += value,
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(out.values.len());
                out.stacks.push(stack);
                out.values.push(value);
                if has_spans {
                    out.span_ids.push(ids.span);
                }
                if has_traces {
                    out.trace_ids.extend_from_slice(&ids.trace.to_be_bytes());
                }
            }
        }
    }
    out
}

/// Span ids are 16 hex digits; anything else counts as "no span" (0).
pub(crate) fn parse_span_id(value: &str) -> u64 {
    if value.len() != 16 {
        return 0;
    }
    u64::from_str_radix(value, 16).unwrap_or(0)
}

/// Trace ids are 32 hex digits; anything else counts as "no trace" (0).
pub(crate) fn parse_trace_id(value: &str) -> u128 {
    if value.len() != 32 {
        return 0;
    }
    u128::from_str_radix(value, 16).unwrap_or(0)
}

/// Server-derived labels do not count towards the client's label limits.
const DERIVED: [&str; 6] =
    ["__profile_type__", "__type__", "__unit__", "__period_type__", "__period_unit__", "__service_name__"];

fn validate_labels(labels: &Labels, limits: &IngestLimits) -> Result<()> {
    let count = labels.iter().filter(|(n, _)| !DERIVED.contains(n)).count();
    if count > limits.max_label_names {
        return Err(Error::invalid(format!(
            "profile series '{labels}' has {count} label names; limit {}",
            limits.max_label_names
        )));
    }
    // Like their count, the derived labels' lengths are the server's doing.
    for (n, v) in labels.iter().filter(|(n, _)| !DERIVED.contains(n)) {
        if n.len() > limits.max_label_name_len {
            return Err(Error::invalid(format!("profile with labels '{labels}' has label name too long: '{n}'")));
        }
        if v.len() > limits.max_label_value_len {
            return Err(Error::invalid(format!("profile with labels '{labels}' has label value too long: '{v}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::tests::sample_profile;
    use crate::store::MemoryStore;
    use kiln_proto::google::v1::Label;

    const NOW: i64 = 1_800_000_000_000;

    fn pairs(list: &[(&str, &str)]) -> Vec<LabelPair> {
        list.iter().map(|(n, v)| LabelPair { name: (*n).into(), value: (*v).into() }).collect()
    }

    fn fresh_profile() -> Profile {
        let mut p = sample_profile();
        p.time_nanos = (NOW - 1000) * 1_000_000;
        p
    }

    #[test]
    fn one_series_per_sample_type_with_derived_labels() {
        let bytes = fresh_profile().encode_to_vec();
        let labels = pairs(&[("__name__", "process_cpu"), ("service_name", "svc"), ("__delta__", "false")]);
        let batch =
            prepare(&RawProfile { labels: &labels, bytes: &bytes }, NOW, [7; 16], &IngestLimits::default()).unwrap();
        let writes = &batch.series;
        assert_eq!(writes.len(), 2);
        let l = &writes[1].labels;
        assert_eq!(l.get("__profile_type__"), Some("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
        assert_eq!(l.get("__service_name__"), Some("svc"));
        assert_eq!(l.get("__period_type__"), Some("cpu"));
        assert_eq!(l.get("__delta__"), None);
        assert_eq!(writes[0].labels.get("__profile_type__"), Some("process_cpu:samples:count:cpu:nanoseconds"));
        let seg = Segment::decode_bytes(&writes[1].profile).unwrap();
        assert_eq!(seg.profiles[0].total, 50);
        assert_eq!(Segment::decode_bytes(&writes[1].symbols).unwrap().functions.len(), 3);
        assert_eq!(writes[1].timestamp_ms, NOW - 1000);
    }

    #[test]
    fn sample_labels_become_series_and_spans_stay_per_sample() {
        let mut p = fresh_profile();
        p.string_table.extend(["thread".into(), "t1".into(), "span_id".into(), "00000000000000ff".into()]);
        let n = p.string_table.len() as i64;
        p.sample[0].label = vec![Label { key: n - 4, str: n - 3, ..Default::default() }];
        p.sample[1].label = vec![Label { key: n - 2, str: n - 1, ..Default::default() }];
        let bytes = p.encode_to_vec();
        let labels = pairs(&[("__name__", "process_cpu")]);
        let batch =
            prepare(&RawProfile { labels: &labels, bytes: &bytes }, NOW, [0; 16], &IngestLimits::default()).unwrap();
        let writes = &batch.series;
        assert_eq!(writes.len(), 4);
        assert_eq!(writes[0].labels.get("service_name"), Some("unknown_service"));
        let threads: Vec<_> = writes.iter().map(|w| w.labels.get("thread")).collect();
        assert_eq!(threads, [None, None, Some("t1"), Some("t1")]);
        let seg = Segment::decode_bytes(&writes[0].profile).unwrap();
        assert_eq!(seg.profiles[0].span_ids, [0xff]);
        assert!(seg.profiles[0].trace_ids.is_empty(), "no sample has a trace id");
    }

    #[test]
    fn trace_ids_stay_per_sample() {
        let mut p = fresh_profile();
        p.string_table.extend(["trace_id".into(), "0123456789abcdef0123456789ABCDEF".into()]);
        let n = p.string_table.len() as i64;
        p.sample[1].label = vec![Label { key: n - 2, str: n - 1, ..Default::default() }];
        let bytes = p.encode_to_vec();
        let labels = pairs(&[("__name__", "process_cpu")]);
        let batch =
            prepare(&RawProfile { labels: &labels, bytes: &bytes }, NOW, [0; 16], &IngestLimits::default()).unwrap();
        assert_eq!(batch.series.len(), 2, "a trace id does not split series");
        let seg = Segment::decode_bytes(&batch.series[0].profile).unwrap();
        let stored = &seg.profiles[0];
        let traces: Vec<u128> = (0..stored.values.len()).map(|i| stored.trace_id(i)).collect();
        assert_eq!(traces, [0, 0x0123456789abcdef0123456789abcdef]);
    }

    #[test]
    fn rejections() {
        let limits = IngestLimits::default();
        let bytes = fresh_profile().encode_to_vec();
        let err = |labels: &[(&str, &str)], bytes: &[u8], now: i64| {
            let l = pairs(labels);
            prepare(&RawProfile { labels: &l, bytes }, now, [0; 16], &limits).unwrap_err().to_string()
        };
        assert!(err(&[("service_name", "x")], &bytes, NOW).ends_with("invalid metric name"));
        assert!(err(&[("__name__", "a"), ("__name__", "b")], &bytes, NOW).contains("duplicate label name: '__name__'"));
        assert!(err(&[("__name__", "a")], &bytes, NOW + 7_200_000).contains("outside of ingestion window"));
        assert!(err(&[("__name__", "a")], b"not a profile", NOW).starts_with("failed to parse profile"));
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        let empty = push(&store, &[], NOW, &mut || [0; 16], &limits).unwrap_err();
        assert_eq!(empty.to_string(), "no profiles received");
    }

    #[test]
    fn zero_durations_open_the_ingestion_window() {
        let mut p = fresh_profile();
        p.time_nanos = (NOW - 30 * 86_400_000) * 1_000_000;
        let old = p.encode_to_vec();
        p.time_nanos = (NOW + 86_400_000) * 1_000_000;
        let future = p.encode_to_vec();
        let labels = pairs(&[("__name__", "a")]);
        let run = |bytes: &[u8], older: i64, newer: i64| {
            let limits =
                IngestLimits { reject_older_than_ms: older, reject_newer_than_ms: newer, ..Default::default() };
            prepare(&RawProfile { labels: &labels, bytes }, NOW, [0; 16], &limits).map_err(|e| e.to_string())
        };
        assert!(run(&old, 0, 600_000).is_ok());
        assert!(run(&future, 3_600_000, 0).is_ok());
        let err = run(&future, 0, 600_000).unwrap_err();
        assert!(err.ends_with(&format!("the ingestion window ends at {})", rfc3339_ms(NOW + 600_000))), "{err}");
        let err = run(&old, 3_600_000, 0).unwrap_err();
        assert!(err.ends_with(&format!("the ingestion window starts at {})", rfc3339_ms(NOW - 3_600_000))), "{err}");
    }

    #[test]
    fn godeltaprof_and_wall_relabel() {
        let l = series_labels(&pairs(&[("__name__", "godeltaprof_memory")])).unwrap();
        assert_eq!(l.get("__name__"), Some("memory"));
        assert_eq!(l.get("__name_replaced__"), Some("godeltaprof_memory"));
        let bytes = fresh_profile().encode_to_vec();
        let labels = pairs(&[("__name__", "wall")]);
        let writes = prepare(&RawProfile { labels: &labels, bytes: &bytes }, NOW, [0; 16], &IngestLimits::default())
            .unwrap()
            .series;
        assert_eq!(writes[1].labels.get("__profile_type__"), Some("process_cpu:cpu:nanoseconds:cpu:nanoseconds"));
        assert_eq!(writes[0].labels.get("__profile_type__"), Some("wall:samples:count:cpu:nanoseconds"));
    }
}
