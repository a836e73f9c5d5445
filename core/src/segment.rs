//! A `Segment` is the unit kiln stores: the profiles of one series, with the
//! symbols and stack traces they reference, de-duplicated.
//!
//! Stack traces form a prefix tree in two parallel arrays (`stack_parents`,
//! `stack_locations`), each node created after its parent. That makes both
//! query shapes cheap: a flame graph maps every stack node to a function-name
//! tree node in one forward pass; a pprof rebuilds a stack by walking parents.
//!
//! The store keeps the two halves apart: a segment holding only symbols is
//! shared by the series cut from one pprof, and each series stores a segment
//! holding only its profiles (see [`crate::store`]).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::FastMap as HashMap;
use crate::FastSet;
use prost::Message;

use crate::error::{Error, Result};
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample};
use crate::tree::StackTree;

#[derive(Clone, PartialEq, Message)]
pub struct Segment {
    /// Index 0 is "".
    #[prost(string, repeated, tag = "1")]
    pub strings: Vec<String>,
    /// pprof messages whose ids are their 1-based positions here and whose
    /// string fields index `strings`.
    #[prost(message, repeated, tag = "2")]
    pub mappings: Vec<Mapping>,
    #[prost(message, repeated, tag = "3")]
    pub functions: Vec<Function>,
    #[prost(message, repeated, tag = "4")]
    pub locations: Vec<Location>,
    /// Stack node `k` (1-based) has parent `stack_parents[k-1]` (0 = root)
    /// and location `stack_locations[k-1]` (1-based).
    #[prost(uint32, repeated, tag = "5")]
    pub stack_parents: Vec<u32>,
    #[prost(uint32, repeated, tag = "6")]
    pub stack_locations: Vec<u32>,
    #[prost(message, repeated, tag = "7")]
    pub profiles: Vec<StoredProfile>,
}

/// One ingested profile of one sample type.
#[derive(Clone, PartialEq, Message)]
pub struct StoredProfile {
    /// Server-assigned UUID, shared by the series cut from one upload.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub timestamp_ms: i64,
    /// Sum of `values`.
    #[prost(int64, tag = "3")]
    pub total: i64,
    /// Stack node per sample (0 = empty stack).
    #[prost(uint32, repeated, tag = "4")]
    pub stacks: Vec<u32>,
    #[prost(int64, repeated, tag = "5")]
    pub values: Vec<i64>,
    /// Span id per sample (0 = none); empty when no sample has one.
    #[prost(fixed64, repeated, tag = "6")]
    pub span_ids: Vec<u64>,
    /// Trace id per sample, 16 big-endian bytes each (all zero = none);
    /// empty when no sample has one.
    #[prost(bytes = "vec", tag = "7")]
    pub trace_ids: Vec<u8>,
}

impl StoredProfile {
    /// The trace id of sample `i` (0 = none).
    pub fn trace_id(&self, i: usize) -> u128 {
        self.trace_ids.get(i * 16..i * 16 + 16).map_or(0, |b| u128::from_be_bytes(b.try_into().expect("16 bytes")))
    }
}

impl Segment {
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self> {
        Segment::decode(bytes).map_err(|e| Error::Corrupt(alloc::format!("segment: {e}")))
    }

    /// The summed value per stack node (index 0 = empty stack) of the samples
    /// of the `profiles` that `keep` accepts, whose stacks refer to this
    /// segment's symbols, restricted by `filter`. `None` when no sample
    /// counted.
    pub fn node_values(
        &self,
        profiles: &[StoredProfile],
        mut keep: impl FnMut(&StoredProfile) -> bool,
        filter: &SampleFilter<'_>,
    ) -> Option<Vec<i64>> {
        let through_call_site = (!filter.call_site.is_empty()).then(|| self.through_call_site(filter.call_site));
        let mut node_values = vec![0i64; self.stack_parents.len() + 1];
        let mut any = false;
        for p in profiles.iter().filter(|p| keep(p)) {
            for (i, (&node, &value)) in p.stacks.iter().zip(&p.values).enumerate() {
                if let Some(spans) = filter.spans {
                    let span = p.span_ids.get(i).copied().unwrap_or(0);
                    if span == 0 || !spans.contains(&span) {
                        continue;
                    }
                }
                if let Some(traces) = filter.traces {
                    let trace = p.trace_id(i);
                    if trace == 0 || !traces.contains(&trace) {
                        continue;
                    }
                }
                if through_call_site.as_ref().is_some_and(|kept| !kept.get(node as usize).copied().unwrap_or(false)) {
                    continue;
                }
                if let Some(slot) = node_values.get_mut(node as usize) {
                    *slot += value;
                    any = true;
                }
            }
        }
        any.then_some(node_values)
    }

    /// Per stack node, whether its root-most frames (inlined frames count,
    /// root-most first) are the function names of `call_site`.
    fn through_call_site(&self, call_site: &[String]) -> Vec<bool> {
        const MISMATCH: usize = usize::MAX;
        // Per node: how many call-site frames its path matched, or MISMATCH.
        let mut matched = vec![0usize; self.stack_parents.len() + 1];
        for k in 1..matched.len() {
            let mut m = matched.get(self.stack_parents[k - 1] as usize).copied().unwrap_or(MISMATCH);
            if let Some(loc) = self.locations.get((self.stack_locations[k - 1] as usize).wrapping_sub(1)) {
                for line in loc.line.iter().rev() {
                    if m == MISMATCH || m == call_site.len() {
                        break;
                    }
                    let Some(f) = self.functions.get((line.function_id as usize).wrapping_sub(1)) else { continue };
                    let name = self.strings.get(f.name as usize).map_or("", String::as_str);
                    m = if name == call_site[m] { m + 1 } else { MISMATCH };
                }
            }
            matched[k] = m;
        }
        matched.into_iter().map(|m| m == call_site.len()).collect()
    }

    /// Adds the samples [`Self::node_values`] selects into `tree`, merging
    /// frames by function name.
    pub fn merge_into(
        &self,
        profiles: &[StoredProfile],
        tree: &mut StackTree,
        keep: impl FnMut(&StoredProfile) -> bool,
        filter: &SampleFilter<'_>,
    ) {
        let Some(node_values) = self.node_values(profiles, keep, filter) else { return };
        // Function name ids in the tree, interned once per function.
        let fn_names: Vec<u32> = self
            .functions
            .iter()
            .map(|f| tree.intern(self.strings.get(f.name as usize).map_or("", String::as_str)))
            .collect();
        let mut tree_nodes = vec![StackTree::ROOT; node_values.len()];
        for k in 1..node_values.len() {
            let parent = self.stack_parents[k - 1] as usize;
            let mut node = tree_nodes.get(parent).copied().unwrap_or(StackTree::ROOT);
            if let Some(loc) = self.locations.get((self.stack_locations[k - 1] as usize).wrapping_sub(1)) {
                // line[0] is the innermost inlined call: walk root-most first.
                for line in loc.line.iter().rev() {
                    if let Some(&name) = fn_names.get((line.function_id as usize).wrapping_sub(1)) {
                        node = tree.child(node, name);
                    }
                }
            }
            tree_nodes[k] = node;
        }
        for (k, &value) in node_values.iter().enumerate() {
            if value != 0 {
                tree.add_self(tree_nodes[k], value);
            }
        }
    }
}

/// Which samples of a segment count, beyond the choice of profiles.
#[derive(Clone, Copy, Debug, Default)]
pub struct SampleFilter<'a> {
    /// Only samples carrying one of these span ids.
    pub spans: Option<&'a FastSet<u64>>,
    /// Only samples carrying one of these trace ids.
    pub traces: Option<&'a FastSet<u128>>,
    /// Only stacks whose root-most frames are these function names (whole
    /// stacks are kept, not re-rooted). Empty = every stack.
    pub call_site: &'a [String],
}

/// Builds the symbol part of a segment from a subset of a pprof's samples.
pub struct SegmentBuilder<'p> {
    profile: &'p Profile,
    location_index: LocationIndex,
    max_depth: usize,
    strings: Vec<u32>,
    mappings: Vec<u32>,
    functions: Vec<u32>,
    locations: Vec<u32>,
    function_index: HashMap<u64, usize>,
    mapping_index: HashMap<u64, usize>,
    stacks: HashMap<(u32, u32), u32>,
    segment: Segment,
}

const UNSET: u32 = u32::MAX;

impl<'p> SegmentBuilder<'p> {
    pub fn new(profile: &'p Profile, max_depth: usize) -> Self {
        Self {
            profile,
            location_index: LocationIndex::new(&profile.location),
            max_depth,
            strings: vec![UNSET; profile.string_table.len()],
            mappings: vec![UNSET; profile.mapping.len()],
            functions: vec![UNSET; profile.function.len()],
            locations: vec![UNSET; profile.location.len()],
            function_index: profile.function.iter().enumerate().map(|(i, f)| (f.id, i)).collect(),
            mapping_index: profile.mapping.iter().enumerate().map(|(i, m)| (m.id, i)).collect(),
            stacks: HashMap::default(),
            segment: Segment { strings: vec![String::new()], ..Default::default() },
        }
    }

    /// Interns a sample's stack; returns its stack node (0 for an empty stack).
    /// Stacks deeper than the limit keep their root-most frames.
    pub fn add_stack(&mut self, sample: &Sample) -> Result<u32> {
        let ids = &sample.location_id;
        let skip = ids.len().saturating_sub(self.max_depth);
        let mut node = 0u32;
        for &id in ids[skip..].iter().rev() {
            let loc = self.location(id)?;
            let next = self.segment.stack_parents.len() as u32 + 1;
            node = *self.stacks.entry((node, loc)).or_insert_with(|| {
                self.segment.stack_parents.push(node);
                self.segment.stack_locations.push(loc);
                next
            });
        }
        Ok(node)
    }

    /// The symbol part, ready to be shared by several series.
    pub fn finish(self) -> Segment {
        self.segment
    }

    fn string(&mut self, i: i64) -> i64 {
        let Some(slot) = self.strings.get_mut(i as usize) else { return 0 };
        if i == 0 {
            return 0;
        }
        if *slot == UNSET {
            *slot = self.segment.strings.len() as u32;
            self.segment.strings.push(self.profile.string_table[i as usize].clone());
        }
        *slot as i64
    }

    /// Remaps a location (and what it references) into the segment; 1-based.
    fn location(&mut self, id: u64) -> Result<u32> {
        let i = self
            .location_index
            .get(id)
            .ok_or_else(|| Error::invalid(alloc::format!("sample references unknown location id {id}")))?;
        if self.locations[i] != UNSET {
            return Ok(self.locations[i]);
        }
        let src = &self.profile.location[i];
        let mapping_id = match self.mapping_index.get(&src.mapping_id) {
            Some(&m) => self.mapping(m),
            None => 0,
        };
        let mut line = Vec::with_capacity(src.line.len());
        for l in &src.line {
            let Some(&f) = self.function_index.get(&l.function_id) else { continue };
            line.push(Line { function_id: self.function(f), line: l.line });
        }
        self.segment.locations.push(Location {
            id: self.segment.locations.len() as u64 + 1,
            mapping_id,
            address: src.address,
            line,
            is_folded: src.is_folded,
        });
        let new = self.segment.locations.len() as u32;
        self.locations[i] = new;
        Ok(new)
    }

    fn function(&mut self, i: usize) -> u64 {
        if self.functions[i] == UNSET {
            let src = &self.profile.function[i];
            let f = Function {
                id: self.segment.functions.len() as u64 + 1,
                name: self.string(src.name),
                system_name: self.string(src.system_name),
                filename: self.string(src.filename),
                start_line: src.start_line,
            };
            self.segment.functions.push(f);
            self.functions[i] = self.segment.functions.len() as u32;
        }
        self.functions[i] as u64
    }

    fn mapping(&mut self, i: usize) -> u64 {
        if self.mappings[i] == UNSET {
            let src = &self.profile.mapping[i];
            let m = Mapping {
                id: self.segment.mappings.len() as u64 + 1,
                filename: self.string(src.filename),
                build_id: self.string(src.build_id),
                ..*src
            };
            self.segment.mappings.push(m);
            self.mappings[i] = self.segment.mappings.len() as u32;
        }
        self.mappings[i] as u64
    }
}

/// pprof location ids are usually dense (1..=n); index them by position then,
/// and fall back to a map otherwise.
enum LocationIndex {
    Dense(Vec<u32>),
    Sparse(HashMap<u64, usize>),
}

impl LocationIndex {
    fn new(locations: &[Location]) -> Self {
        let max = locations.iter().map(|l| l.id).max().unwrap_or(0);
        if max <= (locations.len() as u64) * 2 + 16 {
            let mut dense = vec![UNSET; max as usize + 1];
            for (i, l) in locations.iter().enumerate() {
                dense[l.id as usize] = i as u32;
            }
            LocationIndex::Dense(dense)
        } else {
            LocationIndex::Sparse(locations.iter().enumerate().map(|(i, l)| (l.id, i)).collect())
        }
    }

    fn get(&self, id: u64) -> Option<usize> {
        match self {
            LocationIndex::Dense(v) => v.get(id as usize).filter(|&&i| i != UNSET).map(|&i| i as usize),
            LocationIndex::Sparse(m) => m.get(&id).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::tests::sample_profile;

    fn segment_of(profile: &Profile, column: usize) -> Segment {
        let mut b = SegmentBuilder::new(profile, 1000);
        let stacks: Vec<u32> = profile.sample.iter().map(|s| b.add_stack(s).unwrap()).collect();
        let mut seg = b.finish();
        let values: Vec<i64> = profile.sample.iter().map(|s| s.value[column]).collect();
        seg.profiles.push(StoredProfile {
            id: vec![1; 16],
            timestamp_ms: 5,
            total: values.iter().sum(),
            stacks,
            values,
            span_ids: vec![],
            trace_ids: vec![],
        });
        seg
    }

    #[test]
    fn stacks_share_prefixes_and_merge_by_name() {
        let p = sample_profile();
        let seg = segment_of(&p, 1);
        // main, main;a, main;b
        assert_eq!(seg.stack_parents, [0, 1, 1]);
        let mut tree = StackTree::new();
        seg.merge_into(&seg.profiles, &mut tree, |_| true, &SampleFilter::default());
        assert_eq!(tree.total(), 50);
        let collapsed = tree.collapsed();
        assert_eq!(collapsed, [("main;a".into(), 30), ("main;b".into(), 20)]);
    }

    #[test]
    fn deep_stacks_keep_root_frames() {
        let mut p = sample_profile();
        p.sample[0].location_id = vec![2, 3, 1];
        let mut b = SegmentBuilder::new(&p, 2);
        let node = b.add_stack(&p.sample[0]).unwrap();
        let seg = b.finish();
        // Root-most two frames: main (loc 1) then b (loc 3).
        assert_eq!(node, 2);
        assert_eq!(seg.stack_locations, [1, 2]);
        assert_eq!(seg.functions.len(), 2);
    }

    #[test]
    fn unknown_location_is_an_error() {
        let mut p = sample_profile();
        p.sample[0].location_id = vec![77];
        assert!(SegmentBuilder::new(&p, 10).add_stack(&p.sample[0]).is_err());
    }

    #[test]
    fn call_site_keeps_whole_stacks_rooted_in_it() {
        let p = sample_profile();
        let seg = segment_of(&p, 1);
        let merged = |call_site: &[&str]| {
            let call_site: Vec<String> = call_site.iter().map(|s| (*s).into()).collect();
            let mut tree = StackTree::new();
            seg.merge_into(
                &seg.profiles,
                &mut tree,
                |_| true,
                &SampleFilter { call_site: &call_site, ..Default::default() },
            );
            tree.collapsed()
        };
        assert_eq!(merged(&["main", "b"]), [("main;b".into(), 20)]);
        assert_eq!(merged(&["main"]).len(), 2);
        assert!(merged(&["b"]).is_empty(), "anchored at the root");
        assert!(merged(&["main", "b", "c"]).is_empty(), "longer than every stack");
    }
}
