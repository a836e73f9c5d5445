//! SelectMergeProfile (and SelectMergeStacktraces' pprof format): the
//! selected profiles merged into one pprof that keeps every symbol detail
//! ingested (mappings, functions, file names, lines, addresses). Samples with
//! the same location list are summed. An explicit `max_nodes` truncates the
//! stacks by function-name totals, ending cut stacks in an `other` frame;
//! `go_pgo` trims stacks to their leaf-most locations instead.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{SelectMergeProfileRequest, SelectMergeStacktracesRequest};
use kiln_proto::types::v1::GoPgo;

use super::merge::max_nodes;
use super::selection::Selection;
use super::{Context, profile_selector};
use crate::FastMap;
use crate::error::Result;
use crate::flamegraph::{OTHER, min_value};
use crate::kv::KvStore;
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample, ValueType};
use crate::profile_type::ProfileType;
use crate::segment::{SampleFilter, Segment, StoredProfile};
use crate::tree::StackTree;

pub fn select_merge_profile<S: KvStore + ?Sized>(
    cx: &Context<'_, S>,
    req: &SelectMergeProfileRequest,
) -> Result<Profile> {
    pprof(
        cx,
        &SelectMergeStacktracesRequest {
            profile_type_id: req.profile_type_id.clone(),
            label_selector: req.label_selector.clone(),
            start: req.start,
            end: req.end,
            max_nodes: req.max_nodes,
            stack_trace_selector: req.stack_trace_selector.clone(),
            profile_id_selector: req.profile_id_selector.clone(),
            trace_id_selector: req.trace_id_selector.clone(),
            ..Default::default()
        },
    )
}

/// The merged pprof of what `req` selects. Unlike the flame graph, no
/// `max_nodes` means no truncation (Pyroscope's default for pprof exports);
/// with `go_pgo`, the call site and `max_nodes` are not applied.
pub(super) fn pprof<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &SelectMergeStacktracesRequest) -> Result<Profile> {
    let go_pgo = req.stack_trace_selector.as_ref().and_then(|s| s.go_pgo);
    let mut selection = Selection::of(req)?;
    if go_pgo.is_some() {
        selection = selection.without_call_site();
    }
    let selector = profile_selector(&req.profile_type_id, &req.label_selector)?;
    let profile_type = ProfileType::parse(&req.profile_type_id)?;
    let Some((start, end)) = cx.range(req.start, req.end)? else { return Ok(Profile::default()) };
    let series = cx.select(&selector, start, end)?;
    let mut out = PprofBuilder { go_pgo, ..Default::default() };
    let filter = selection.samples();
    cx.storage.for_each_segment(&series, (start, end), selection.detail(), |_, symbols, profiles| {
        out.add(symbols, profiles, |p| p.timestamp_ms >= start && p.timestamp_ms < end && selection.keeps(p), &filter);
        Ok(())
    })?;
    if let Some(n) = req.max_nodes.filter(|&n| n > 0 && go_pgo.is_none()) {
        out.truncate(max_nodes(Some(n), cx.limits)?);
    }
    Ok(out.finish(&profile_type, end))
}

/// What makes two locations the same: mapping, address, lines, folding.
type LocationKey = (u64, u64, Vec<(u64, i64)>, bool);

/// Accumulates segments into one pprof, de-duplicating symbols by content.
#[derive(Default)]
struct PprofBuilder {
    go_pgo: Option<GoPgo>,
    strings: Vec<String>,
    string_ids: FastMap<String, i64>,
    mappings: Vec<Mapping>,
    mapping_ids: FastMap<Mapping, u64>,
    functions: Vec<Function>,
    function_ids: FastMap<Function, u64>,
    locations: Vec<Location>,
    location_ids: FastMap<LocationKey, u64>,
    /// Location ids, leaf first -> summed value.
    samples: FastMap<Vec<u64>, i64>,
}

impl PprofBuilder {
    fn add(
        &mut self,
        symbols: &Segment,
        profiles: &[StoredProfile],
        keep: impl FnMut(&StoredProfile) -> bool,
        filter: &SampleFilter<'_>,
    ) {
        let Some(values) = symbols.node_values(profiles, keep, filter) else { return };
        let keep_locations = match self.go_pgo {
            Some(GoPgo { keep_locations: n @ 1.., .. }) => n as usize,
            _ => usize::MAX,
        };
        let aggregate_callees = self.go_pgo.is_some_and(|p| p.aggregate_callees);
        // Segment location index -> output location id, made on first use;
        // the second map holds leaf variants whose first line number is 0.
        let mut location_map = vec![0u64; symbols.locations.len()];
        let mut callee_map = vec![0u64; if aggregate_callees { symbols.locations.len() } else { 0 }];
        for (node, &value) in values.iter().enumerate().filter(|(_, v)| **v != 0) {
            // Go PGO profiles drop samples without a stack, as Pyroscope does.
            if node == 0 && self.go_pgo.is_some() {
                continue;
            }
            let mut stack = Vec::new();
            let mut k = node;
            // Parents precede children, so this walk ends at the root.
            while k != 0 && stack.len() < keep_locations {
                let loc = symbols.stack_locations[k - 1] as usize - 1;
                let id = if aggregate_callees && stack.is_empty() {
                    if callee_map[loc] == 0 {
                        callee_map[loc] = self.location(symbols, loc, true);
                    }
                    callee_map[loc]
                } else {
                    if location_map[loc] == 0 {
                        location_map[loc] = self.location(symbols, loc, false);
                    }
                    location_map[loc]
                };
                stack.push(id);
                k = symbols.stack_parents[k - 1] as usize;
            }
            *self.samples.entry(stack).or_default() += value;
        }
    }

    fn string(&mut self, symbols: &Segment, i: i64) -> i64 {
        let s = symbols.strings.get(i as usize).map_or("", String::as_str);
        self.intern_string(s)
    }

    fn intern_string(&mut self, s: &str) -> i64 {
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

    /// The output id of segment location `i`; with `zero_first_line`, of its
    /// variant whose first (innermost) line number is 0 (Go PGO's aggregated
    /// callee).
    fn location(&mut self, symbols: &Segment, i: usize, zero_first_line: bool) -> u64 {
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
        if zero_first_line && let Some(first) = line.first_mut() {
            first.line = 0;
        }
        self.intern_location(Location { id: 0, mapping_id, address: src.address, line, is_folded: src.is_folded })
    }

    fn intern_location(&mut self, mut location: Location) -> u64 {
        let key: LocationKey = (
            location.mapping_id,
            location.address,
            location.line.iter().map(|l| (l.function_id, l.line)).collect(),
            location.is_folded,
        );
        if let Some(&id) = self.location_ids.get(&key) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        location.id = id;
        self.locations.push(location);
        self.location_ids.insert(key, id);
        id
    }

    /// Cuts every stack below the nodes of the function-name tree that do not
    /// survive truncation to `max_nodes` (the same cut as the flame graph):
    /// the kept root-side locations stay and one `other` location replaces
    /// the rest. Samples whose stacks become equal are summed.
    fn truncate(&mut self, max_nodes: usize) {
        let mut tree = StackTree::new();
        let names: Vec<u32> = (0..self.functions.len())
            .map(|i| tree.intern(self.strings.get(self.functions[i].name as usize).map_or("", String::as_str)))
            .collect();
        let frames = |loc: &Location| -> Vec<u32> {
            // line[0] is the innermost inlined call: root-most first here.
            loc.line.iter().rev().filter_map(|l| names.get((l.function_id as usize).wrapping_sub(1)).copied()).collect()
        };
        let location_frames: Vec<Vec<u32>> = self.locations.iter().map(frames).collect();
        for (stack, &value) in &self.samples {
            let mut node = StackTree::ROOT;
            for &loc in stack.iter().rev() {
                for &name in &location_frames[loc as usize - 1] {
                    node = tree.child(node, name);
                }
            }
            tree.add_self(node, value);
        }
        let totals = tree.totals();
        let min = min_value(&totals, max_nodes);
        if min == 0 {
            return;
        }
        let mut other = 0;
        let mut truncated: FastMap<Vec<u64>, i64> = FastMap::default();
        for (mut stack, value) in core::mem::take(&mut self.samples) {
            // Index (leaf first) of the leaf-most location kept, if cut.
            let mut node = StackTree::ROOT;
            let mut cut = None;
            for (i, &loc) in stack.iter().enumerate().rev() {
                let frames = &location_frames[loc as usize - 1];
                let Some(&first) = frames.first() else { continue };
                let first_node = tree.find_child(node, first).expect("the tree holds every stack");
                if totals[first_node as usize] < min {
                    cut = Some(i + 1);
                    break;
                }
                node = first_node;
                for &name in &frames[1..] {
                    node = tree.find_child(node, name).expect("the tree holds every stack");
                }
            }
            if let Some(cut) = cut {
                if other == 0 {
                    other = self.other_location();
                }
                stack.drain(..cut - 1);
                stack[0] = other;
            }
            *truncated.entry(stack).or_default() += value;
        }
        self.samples = truncated;
    }

    /// The synthetic location standing for truncated frames.
    fn other_location(&mut self) -> u64 {
        let name = self.intern_string(OTHER);
        let key = Function { id: 0, name, system_name: name, filename: 0, start_line: 0 };
        let function_id = intern(&mut self.functions, &mut self.function_ids, key, |f, id| f.id = id);
        let mapping_id = if self.mappings.is_empty() { 0 } else { 1 };
        self.intern_location(Location {
            id: 0,
            mapping_id,
            address: 0,
            line: vec![Line { function_id, line: 0 }],
            is_folded: false,
        })
    }

    fn finish(mut self, profile_type: &ProfileType, end_ms: i64) -> Profile {
        if self.samples.is_empty() {
            return Profile::default();
        }
        let sample_type = ValueType {
            r#type: self.intern_string(&profile_type.sample_type),
            unit: self.intern_string(&profile_type.sample_unit),
        };
        let period_type =
            (!profile_type.period_type.is_empty() || !profile_type.period_unit.is_empty()).then(|| ValueType {
                r#type: self.intern_string(&profile_type.period_type),
                unit: self.intern_string(&profile_type.period_unit),
            });
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
    use kiln_proto::types::v1::{LabelPair, StackTraceSelector};
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

        let empty = SelectMergeProfileRequest { label_selector: "{service_name=\"none\"}".into(), ..req };
        assert_eq!(select_merge_profile(&cx, &empty).unwrap(), Profile::default());
    }

    /// A store holding `input` once, and a request for its cpu column.
    fn stored(input: &Profile) -> (MemoryStore, SelectMergeProfileRequest) {
        let kv = MemoryStore::default();
        let mut input = input.clone();
        input.time_nanos = (NOW - 1000) * 1_000_000;
        let bytes = input.encode_to_vec();
        let labels = [LabelPair { name: "__name__".into(), value: "process_cpu".into() }];
        let raw = [RawProfile { labels: &labels, bytes: &bytes }];
        ingest::push(&Storage::new(&kv, "t"), &raw, NOW, &mut || [0; 16], &IngestLimits::default()).unwrap();
        let req = SelectMergeProfileRequest {
            profile_type_id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".into(),
            label_selector: "{}".into(),
            start: NOW - 60_000,
            end: NOW,
            ..Default::default()
        };
        (kv, req)
    }

    fn query(kv: &MemoryStore, req: &SelectMergeProfileRequest) -> Profile {
        let limits = QueryLimits::default();
        let cx =
            Context { storage: Storage::new(kv, "t"), now_ms: NOW, limits: &limits, allow_utf8_label_names: false };
        let merged = select_merge_profile(&cx, req).unwrap();
        if merged != Profile::default() {
            crate::pprof::validate(&merged, &crate::pprof::Limits::default()).unwrap();
        }
        merged
    }

    fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
        v.iter().map(|(s, n)| ((*s).into(), *n)).collect()
    }

    #[test]
    fn max_nodes_cuts_stacks_into_other() {
        // main;a = 30, main;b = 20: three function-name nodes.
        let (kv, mut req) = stored(&sample_profile());
        req.max_nodes = Some(2);
        assert_eq!(collapsed(&query(&kv, &req), 0), pairs(&[("main;a", 30), ("main;other", 20)]));
        req.max_nodes = Some(1);
        assert_eq!(collapsed(&query(&kv, &req), 0), pairs(&[("main;other", 50)]));
        for untouched in [None, Some(0), Some(-1), Some(3)] {
            req.max_nodes = untouched;
            assert_eq!(collapsed(&query(&kv, &req), 0), pairs(&[("main;a", 30), ("main;b", 20)]));
        }
    }

    #[test]
    fn call_site_keeps_whole_stacks_through_it() {
        let (kv, mut req) = stored(&sample_profile());
        let call_site = |names: &[&str]| StackTraceSelector {
            call_site: names.iter().map(|n| kiln_proto::types::v1::Location { name: (*n).into() }).collect(),
            go_pgo: None,
        };
        req.stack_trace_selector = Some(call_site(&["main", "a"]));
        assert_eq!(collapsed(&query(&kv, &req), 0), pairs(&[("main;a", 30)]));
        req.stack_trace_selector = Some(call_site(&["a"]));
        assert_eq!(query(&kv, &req), Profile::default(), "the call site is anchored at the root");
        req.stack_trace_selector = Some(call_site(&["main"]));
        assert_eq!(collapsed(&query(&kv, &req), 0), pairs(&[("main;a", 30), ("main;b", 20)]));
    }

    #[test]
    fn go_pgo_trims_stacks_and_aggregates_callees() {
        // Two call sites of `a` on different lines of main's callee.
        let mut input = sample_profile();
        input.location.push(Location { id: 4, line: vec![Line { function_id: 2, line: 7 }], ..Default::default() });
        input.sample[1].location_id = vec![4, 1];
        let (kv, mut req) = stored(&input);
        let pgo = |keep_locations, aggregate_callees| StackTraceSelector {
            call_site: vec![kiln_proto::types::v1::Location { name: "nowhere".into() }],
            go_pgo: Some(GoPgo { keep_locations, aggregate_callees }),
        };
        req.stack_trace_selector = Some(pgo(1, false));
        let trimmed = query(&kv, &req);
        assert_eq!(collapsed(&trimmed, 0), pairs(&[("a", 50)]), "call site ignored, one location kept");
        assert_eq!(trimmed.sample.len(), 2, "two leaf locations");
        req.stack_trace_selector = Some(pgo(0, true));
        let aggregated = query(&kv, &req);
        assert_eq!(aggregated.sample.len(), 1);
        assert_eq!(aggregated.sample[0].value, [50]);
        let leaf = &aggregated.location[aggregated.sample[0].location_id[0] as usize - 1];
        assert_eq!(leaf.line[0].line, 0);
        assert_eq!(collapsed(&aggregated, 0), pairs(&[("main;a", 50)]));
    }
}
