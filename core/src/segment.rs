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
use crate::name_tree::NameTree;
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample};

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

    /// [`node_values`] over this segment's stack nodes.
    pub fn node_values(
        &self,
        profiles: &[StoredProfile],
        keep: impl FnMut(&StoredProfile) -> bool,
        filter: &SampleFilter<'_>,
    ) -> Option<Vec<i64>> {
        let call_site = (!filter.call_site.is_empty()).then(|| NameTree::of(self).through_call_site(filter.call_site));
        node_values(self.stack_parents.len(), profiles, keep, filter, call_site.as_deref())
    }
}

/// The summed value per stack node (index 0 = empty stack, then nodes
/// `1..=stack_nodes`) of the samples of the `profiles` that `keep` accepts,
/// restricted by `filter` (`through_call_site` is its call-site test per
/// stack node). `None` when no sample counted.
pub fn node_values(
    stack_nodes: usize,
    profiles: &[StoredProfile],
    mut keep: impl FnMut(&StoredProfile) -> bool,
    filter: &SampleFilter<'_>,
    through_call_site: Option<&[bool]>,
) -> Option<Vec<i64>> {
    let mut node_values = vec![0i64; stack_nodes + 1];
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
            if through_call_site.is_some_and(|kept| !kept.get(node as usize).copied().unwrap_or(false)) {
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

/// Folds the symbols of many segments into one table, append-only: ids
/// already handed out never change, so profiles remapped earlier stay valid
/// when more segments join. Compaction uses it to give a series' profiles
/// one shared symbol table.
pub struct SymbolMerger {
    symbols: Segment,
    strings: HashMap<String, u32>,
    mappings: HashMap<MappingKey, u32>,
    functions: HashMap<[i64; 4], u32>,
    locations: HashMap<LocationKey, u32>,
    stacks: HashMap<(u32, u32), u32>,
}

type MappingKey = (u64, u64, u64, i64, i64, [bool; 4]);
type LocationKey = (u64, u64, bool, Vec<(u64, i64)>);

impl SymbolMerger {
    /// Starts from `symbols` (its `profiles` are ignored), keeping its ids.
    pub fn new(mut symbols: Segment) -> Self {
        symbols.profiles.clear();
        if symbols.strings.is_empty() {
            symbols.strings.push(String::new());
        }
        let strings = symbols.strings.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
        let mappings = symbols.mappings.iter().enumerate().map(|(i, m)| (mapping_key(m), i as u32 + 1)).collect();
        let functions = symbols.functions.iter().enumerate().map(|(i, f)| (function_key(f), i as u32 + 1)).collect();
        let locations = symbols.locations.iter().enumerate().map(|(i, l)| (location_key(l), i as u32 + 1)).collect();
        let stacks = symbols
            .stack_parents
            .iter()
            .zip(&symbols.stack_locations)
            .enumerate()
            .map(|(k, (&parent, &loc))| ((parent, loc), k as u32 + 1))
            .collect();
        Self { symbols, strings, mappings, functions, locations, stacks }
    }

    /// Adds the symbols of `segment`; returns the merged stack node of each
    /// of its stack nodes (index 0, the empty stack, maps to 0).
    pub fn add(&mut self, segment: &Segment) -> Vec<u32> {
        let strings: Vec<u32> = segment.strings.iter().map(|s| self.string(s)).collect();
        let s = |i: i64| strings.get(i as usize).map_or(0, |&v| i64::from(v));
        let mappings: Vec<u32> = segment
            .mappings
            .iter()
            .map(|m| {
                let m = Mapping { id: 0, filename: s(m.filename), build_id: s(m.build_id), ..*m };
                let key = mapping_key(&m);
                let next = self.symbols.mappings.len() as u32 + 1;
                *self.mappings.entry(key).or_insert_with(|| {
                    self.symbols.mappings.push(Mapping { id: u64::from(next), ..m });
                    next
                })
            })
            .collect();
        let functions: Vec<u32> = segment
            .functions
            .iter()
            .map(|f| {
                let f = Function {
                    id: 0,
                    name: s(f.name),
                    system_name: s(f.system_name),
                    filename: s(f.filename),
                    start_line: f.start_line,
                };
                let next = self.symbols.functions.len() as u32 + 1;
                *self.functions.entry(function_key(&f)).or_insert_with(|| {
                    self.symbols.functions.push(Function { id: u64::from(next), ..f });
                    next
                })
            })
            .collect();
        let remap = |table: &[u32], id: u64| table.get((id as usize).wrapping_sub(1)).map_or(0, |&v| u64::from(v));
        let locations: Vec<u32> = segment
            .locations
            .iter()
            .map(|l| {
                let loc = Location {
                    id: 0,
                    mapping_id: remap(&mappings, l.mapping_id),
                    address: l.address,
                    line: l
                        .line
                        .iter()
                        .map(|line| Line { function_id: remap(&functions, line.function_id), line: line.line })
                        .collect(),
                    is_folded: l.is_folded,
                };
                let next = self.symbols.locations.len() as u32 + 1;
                *self.locations.entry(location_key(&loc)).or_insert_with(|| {
                    self.symbols.locations.push(Location { id: u64::from(next), ..loc });
                    next
                })
            })
            .collect();
        let mut nodes = vec![0u32; segment.stack_parents.len() + 1];
        for k in 1..nodes.len() {
            // Parents precede children, so the parent is already mapped.
            let parent = nodes.get(segment.stack_parents[k - 1] as usize).copied().unwrap_or(0);
            let loc = locations.get((segment.stack_locations[k - 1] as usize).wrapping_sub(1)).copied().unwrap_or(0);
            let next = self.symbols.stack_parents.len() as u32 + 1;
            nodes[k] = *self.stacks.entry((parent, loc)).or_insert_with(|| {
                self.symbols.stack_parents.push(parent);
                self.symbols.stack_locations.push(loc);
                next
            });
        }
        nodes
    }

    /// The merged symbols (no profiles).
    pub fn finish(self) -> Segment {
        self.symbols
    }

    fn string(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.symbols.strings.len() as u32;
        self.symbols.strings.push(s.into());
        self.strings.insert(s.into(), i);
        i
    }
}

fn mapping_key(m: &Mapping) -> MappingKey {
    let flags = [m.has_functions, m.has_filenames, m.has_line_numbers, m.has_inline_frames];
    (m.memory_start, m.memory_limit, m.file_offset, m.filename, m.build_id, flags)
}

fn function_key(f: &Function) -> [i64; 4] {
    [f.name, f.system_name, f.filename, f.start_line]
}

fn location_key(l: &Location) -> LocationKey {
    (l.mapping_id, l.address, l.is_folded, l.line.iter().map(|line| (line.function_id, line.line)).collect())
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
    use crate::tree::StackTree;

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
        let values = seg.node_values(&seg.profiles, |_| true, &SampleFilter::default()).unwrap();
        NameTree::of(&seg).merge_into(&values, &mut tree);
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
            let filter = SampleFilter { call_site: &call_site, ..Default::default() };
            if let Some(values) = seg.node_values(&seg.profiles, |_| true, &filter) {
                NameTree::of(&seg).merge_into(&values, &mut tree);
            }
            tree.collapsed()
        };
        assert_eq!(merged(&["main", "b"]), [("main;b".into(), 20)]);
        assert_eq!(merged(&["main"]).len(), 2);
        assert!(merged(&["b"]).is_empty(), "anchored at the root");
        assert!(merged(&["main", "b", "c"]).is_empty(), "longer than every stack");
    }
}
