//! SelectMergeProfile: the selected profiles merged into one pprof that keeps
//! every symbol detail ingested (mappings, functions, file names, lines,
//! addresses). Samples with the same location list are summed.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::querier::v1::SelectMergeProfileRequest;

use super::merge::max_nodes;
use super::pprof_truncate::truncate_pprof;
use super::{Context, profile_selector};
use crate::FastMap;
use crate::error::Result;
use crate::kv::KvStore;
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample, ValueType};
use crate::profile_type::ProfileType;
use crate::segment::{Segment, StoredProfile};
use crate::store::Detail;

pub fn select_merge_profile<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectMergeProfileRequest,
) -> Result<Profile> {
    let selector = profile_selector(&req.profile_type_id, &req.label_selector)?;
    let profile_type = ProfileType::parse(&req.profile_type_id)?;
    // No truncation unless a positive `max_nodes` asks for it.
    let limit = req.max_nodes.filter(|&n| n > 0).map(|n| max_nodes(Some(n), cx.limits)).transpose()?;
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(Profile::default()) };
    let series = cx.select(&selector, start, end)?;
    let mut out = PprofBuilder::default();
    cx.storage.for_each_segment(&series, (start, end), Detail::Merged, |_, symbols, profiles| {
        out.add(symbols, profiles, |p| p.timestamp_ms >= start && p.timestamp_ms < end);
        Ok(())
    })?;
    let profile = out.finish(&profile_type, end);
    Ok(match limit {
        Some(n) => truncate_pprof(profile, n),
        None => profile,
    })
}

/// What makes two locations the same: mapping, address, lines, folding.
type LocationKey = (u64, u64, Vec<(u64, i64)>, bool);

/// Accumulates segments into one pprof, de-duplicating symbols by content.
#[derive(Default)]
struct PprofBuilder {
    strings: Vec<String>,
    string_ids: FastMap<String, i64>,
    mappings: Vec<Mapping>,
    mapping_ids: FastMap<Mapping, u64>,
    functions: Vec<Function>,
    function_ids: FastMap<Function, u64>,
    locations: Vec<Location>,
    location_ids: FastMap<LocationKey, u64>,
    samples: FastMap<Vec<u64>, i64>,
}

impl PprofBuilder {
    fn add(&mut self, symbols: &Segment, profiles: &[StoredProfile], keep: impl FnMut(&StoredProfile) -> bool) {
        let Some(values) = symbols.node_values(profiles, keep, None) else { return };
        // Segment location index -> output location id, made on first use.
        let mut location_map = vec![0u64; symbols.locations.len()];
        for (node, &value) in values.iter().enumerate().filter(|(_, v)| **v != 0) {
            let mut stack = Vec::new();
            let mut k = node;
            // Parents precede children, so this walk ends at the root.
            while k != 0 {
                let loc = symbols.stack_locations[k - 1] as usize - 1;
                if location_map[loc] == 0 {
                    location_map[loc] = self.location(symbols, loc);
                }
                stack.push(location_map[loc]);
                k = symbols.stack_parents[k - 1] as usize;
            }
            *self.samples.entry(stack).or_default() += value;
        }
    }

    fn string(&mut self, symbols: &Segment, i: i64) -> i64 {
        let s = symbols.strings.get(i as usize).map_or("", String::as_str);
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        if self.strings.is_empty() {
            self.strings.push(String::new());
            self.string_ids.insert(String::new(), 0);
            if s.is_empty() {
                return 0;
            }
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.into());
        self.string_ids.insert(s.into(), id);
        id
    }

    fn location(&mut self, symbols: &Segment, i: usize) -> u64 {
        let src = &symbols.locations[i];
        let mapping_id = match symbols.mappings.get((src.mapping_id as usize).wrapping_sub(1)) {
            Some(m) => {
                let key = Mapping {
                    id: 0,
                    filename: self.string(symbols, m.filename),
                    build_id: self.string(symbols, m.build_id),
                    ..*m
                };
                intern(&mut self.mappings, &mut self.mapping_ids, key, |m, id| m.id = id)
            }
            None => 0,
        };
        let mut line = Vec::with_capacity(src.line.len());
        for l in &src.line {
            let Some(f) = symbols.functions.get((l.function_id as usize).wrapping_sub(1)) else { continue };
            let key = Function {
                id: 0,
                name: self.string(symbols, f.name),
                system_name: self.string(symbols, f.system_name),
                filename: self.string(symbols, f.filename),
                start_line: f.start_line,
            };
            let function_id = intern(&mut self.functions, &mut self.function_ids, key, |f, id| f.id = id);
            line.push(Line { function_id, line: l.line });
        }
        let key: LocationKey =
            (mapping_id, src.address, line.iter().map(|l| (l.function_id, l.line)).collect(), src.is_folded);
        if let Some(&id) = self.location_ids.get(&key) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location { id, mapping_id, address: src.address, line, is_folded: src.is_folded });
        self.location_ids.insert(key, id);
        id
    }

    fn finish(mut self, profile_type: &ProfileType, end_ms: i64) -> Profile {
        if self.samples.is_empty() {
            return Profile::default();
        }
        let mut value_type = |t: &str, u: &str| {
            let blank = Segment { strings: vec![String::new(), t.into(), u.into()], ..Default::default() };
            ValueType { r#type: self.string(&blank, 1), unit: self.string(&blank, 2) }
        };
        let sample_type = value_type(&profile_type.sample_type, &profile_type.sample_unit);
        let period_type = (!profile_type.period_type.is_empty() || !profile_type.period_unit.is_empty())
            .then(|| value_type(&profile_type.period_type, &profile_type.period_unit));
        let mut sample: Vec<Sample> = self
            .samples
            .into_iter()
            .map(|(location_id, value)| Sample { location_id, value: vec![value], label: vec![] })
            .collect();
        sample.sort_unstable_by(|a, b| a.location_id.cmp(&b.location_id));
        Profile {
            default_sample_type: sample_type.r#type,
            sample_type: vec![sample_type],
            period_type,
            // Pyroscope guesses the period from the profile name.
            period: match profile_type.name.as_str() {
                "process_cpu" => 1_000_000_000,
                "memory" => 524_288,
                _ => 1,
            },
            time_nanos: end_ms.saturating_mul(1_000_000),
            sample,
            mapping: self.mappings,
            location: self.locations,
            function: self.functions,
            string_table: self.strings,
            ..Default::default()
        }
    }
}

/// Returns the id of `key` in `items`, appending it (with id = position + 1)
/// when new.
fn intern<T: Clone + Eq + core::hash::Hash>(
    items: &mut Vec<T>,
    ids: &mut FastMap<T, u64>,
    key: T,
    set_id: impl FnOnce(&mut T, u64),
) -> u64 {
    if let Some(&id) = ids.get(&key) {
        return id;
    }
    let id = items.len() as u64 + 1;
    let mut item = key.clone();
    set_id(&mut item, id);
    items.push(item);
    ids.insert(key, id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{self, IngestLimits, RawProfile};
    use crate::pprof::{collapsed, tests::sample_profile};
    use crate::query::QueryLimits;
    use crate::store::{MemoryStore, Storage};
    use kiln_proto::types::v1::LabelPair;
    use prost::Message;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn merged_pprof_keeps_stacks_and_sums_values() {
        let kv = MemoryStore::default();
        let mut input = sample_profile();
        input.time_nanos = (NOW - 1000) * 1_000_000;
        let bytes = input.encode_to_vec();
        let labels = [LabelPair { name: "__name__".into(), value: "process_cpu".into() }];
        let raw = [RawProfile { labels: &labels, bytes: &bytes }, RawProfile { labels: &labels, bytes: &bytes }];
        ingest::push(&Storage::new(&kv, "t"), &raw, NOW, &mut || [0; 16], &IngestLimits::default()).unwrap();

        let limits = QueryLimits::default();
        let cx =
            Context { storage: Storage::new(&kv, "t"), now_ms: NOW, limits: &limits, allow_utf8_label_names: false };
        let req = SelectMergeProfileRequest {
            profile_type_id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".into(),
            label_selector: "{}".into(),
            start: NOW - 60_000,
            end: NOW,
            ..Default::default()
        };
        let merged = select_merge_profile(&cx, &req).unwrap();
        crate::pprof::validate(&merged, &crate::pprof::Limits::default()).unwrap();
        let doubled: Vec<(String, i64)> = collapsed(&input, 1).into_iter().map(|(s, v)| (s, 2 * v)).collect();
        assert_eq!(collapsed(&merged, 0), doubled);
        assert_eq!(merged.sample_type.len(), 1);
        assert_eq!(merged.string_table[merged.sample_type[0].r#type as usize], "cpu");
        assert_eq!(merged.period, 1_000_000_000);
        assert_eq!(merged.function.len(), 3, "symbols de-duplicated across profiles");

        let cut = SelectMergeProfileRequest { max_nodes: Some(1), ..req.clone() };
        let cut = select_merge_profile(&cx, &cut).unwrap();
        assert_eq!(collapsed(&cut, 0), [(String::from("main;other"), 100)], "an explicit max_nodes truncates");

        let empty = SelectMergeProfileRequest { label_selector: "{service_name=\"none\"}".into(), ..req };
        assert_eq!(select_merge_profile(&cx, &empty).unwrap(), Profile::default());
    }
}
