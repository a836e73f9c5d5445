//! [`NameTree`]: the function-name view of a segment's stack nodes. Flame
//! graphs key frames by function name only, so this is all they need of the
//! symbols; it is stored beside them so a flame-graph query never decodes
//! locations, mappings or file names.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use prost::Message;

use crate::FastMap;
use crate::segment::{SampleFilter, Segment, StoredProfile, node_values};
use crate::tree::StackTree;

#[derive(Clone, PartialEq, Message)]
pub struct NameTree {
    /// Function names, concatenated (one allocation to decode, not one per
    /// name); name `i` ends at byte `name_ends[i]`.
    #[prost(bytes = "vec", tag = "1")]
    pub names: Vec<u8>,
    #[prost(uint32, repeated, tag = "2")]
    pub name_ends: Vec<u32>,
    /// Name-tree node `k` (1-based) has parent `parents[k-1]` (0 = root) and
    /// name `name_ids[k-1]`; parents precede children.
    #[prost(uint32, repeated, tag = "3")]
    pub parents: Vec<u32>,
    #[prost(uint32, repeated, tag = "4")]
    pub name_ids: Vec<u32>,
    /// Stack node `j` (1-based) of the segment ends at name-tree node
    /// `stack_nodes[j-1]` (0 = root). Inlined frames make a stack node span
    /// several name-tree nodes.
    #[prost(uint32, repeated, tag = "5")]
    pub stack_nodes: Vec<u32>,
}

impl NameTree {
    /// The name tree of `segment`'s stack nodes.
    pub fn of(segment: &Segment) -> NameTree {
        let mut out = NameTree::default();
        let mut name_index: FastMap<&str, u32> = FastMap::default();
        let function_names: Vec<u32> = segment
            .functions
            .iter()
            .map(|f| {
                let name = segment.strings.get(f.name as usize).map_or("", String::as_str);
                *name_index.entry(name).or_insert_with(|| {
                    out.names.extend_from_slice(name.as_bytes());
                    out.name_ends.push(out.names.len() as u32);
                    out.name_ends.len() as u32 - 1
                })
            })
            .collect();
        let mut children: FastMap<(u32, u32), u32> = FastMap::default();
        out.stack_nodes.reserve(segment.stack_parents.len());
        for (&parent, &location) in segment.stack_parents.iter().zip(&segment.stack_locations) {
            let mut node = if parent == 0 { 0 } else { out.stack_nodes[parent as usize - 1] };
            if let Some(loc) = segment.locations.get((location as usize).wrapping_sub(1)) {
                // line[0] is the innermost inlined call: walk root-most first.
                for line in loc.line.iter().rev() {
                    let Some(&name) = function_names.get((line.function_id as usize).wrapping_sub(1)) else {
                        continue;
                    };
                    let next = out.parents.len() as u32 + 1;
                    node = *children.entry((node, name)).or_insert_with(|| {
                        out.parents.push(node);
                        out.name_ids.push(name);
                        next
                    });
                }
            }
            out.stack_nodes.push(node);
        }
        out
    }

    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.name_ends.get(i - 1).copied().unwrap_or(0) as usize };
        let end = self.name_ends.get(i).copied().unwrap_or(0) as usize;
        core::str::from_utf8(self.names.get(start..end).unwrap_or_default()).unwrap_or_default()
    }

    /// Per stack node (index 0 = empty stack), whether its root-most frames
    /// are the function names of `call_site` (Pyroscope keeps such stacks
    /// whole rather than re-rooting them).
    pub fn through_call_site(&self, call_site: &[String]) -> Vec<bool> {
        const MISMATCH: usize = usize::MAX;
        // Per name-tree node: call-site frames its path matched, or MISMATCH.
        let mut matched = vec![0usize; self.parents.len() + 1];
        for k in 1..matched.len() {
            let m = matched.get(self.parents[k - 1] as usize).copied().unwrap_or(MISMATCH);
            matched[k] = match m {
                MISMATCH => MISMATCH,
                m if m == call_site.len() => m,
                m if self.name(self.name_ids[k - 1] as usize) == call_site[m] => m + 1,
                _ => MISMATCH,
            };
        }
        let mut out = Vec::with_capacity(self.stack_nodes.len() + 1);
        out.push(call_site.is_empty());
        out.extend(self.stack_nodes.iter().map(|&node| matched.get(node as usize) == Some(&call_site.len())));
        out
    }

    /// [`node_values`] over this tree's stack nodes.
    pub fn node_values(
        &self,
        profiles: &[StoredProfile],
        keep: impl FnMut(&StoredProfile) -> bool,
        filter: &SampleFilter<'_>,
    ) -> Option<Vec<i64>> {
        let call_site = (!filter.call_site.is_empty()).then(|| self.through_call_site(filter.call_site));
        node_values(self.stack_nodes.len(), profiles, keep, filter, call_site.as_deref())
    }

    /// Adds `node_values` (summed values per stack node, index 0 = empty
    /// stack) into `tree`.
    pub fn merge_into(&self, node_values: &[i64], tree: &mut StackTree) {
        let names: Vec<u32> = (0..self.name_ends.len()).map(|i| tree.intern(self.name(i))).collect();
        // Nodes from `fresh` on are created by this merge. Each name-tree
        // node has its own name path, so a fresh node receives each child
        // name once and needs no lookup.
        let fresh = (tree.node_count() + 1) as u32;
        let mut tree_nodes = vec![StackTree::ROOT; self.parents.len() + 1];
        for k in 1..tree_nodes.len() {
            let parent = tree_nodes.get(self.parents[k - 1] as usize).copied().unwrap_or(StackTree::ROOT);
            let Some(&name) = names.get(self.name_ids[k - 1] as usize) else {
                tree_nodes[k] = parent;
                continue;
            };
            tree_nodes[k] = if parent >= fresh { tree.append_child(parent, name) } else { tree.child(parent, name) };
        }
        for (j, &value) in node_values.iter().enumerate().filter(|(_, v)| **v != 0) {
            let node = if j == 0 { 0 } else { self.stack_nodes.get(j - 1).copied().unwrap_or(0) };
            tree.add_self(tree_nodes.get(node as usize).copied().unwrap_or(StackTree::ROOT), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::tests::sample_profile;
    use crate::segment::SegmentBuilder;

    #[test]
    fn merges_like_the_segment_and_folds_inlined_frames() {
        let mut p = sample_profile();
        // Location 2 is `a` inlined into `b`: stack main;b;a.
        p.location[1].line.push(crate::pprof::Line { function_id: 3, line: 7 });
        let mut b = SegmentBuilder::new(&p, 100);
        let stacks: Vec<u32> = p.sample.iter().map(|s| b.add_stack(s).unwrap()).collect();
        let segment = b.finish();
        let names = NameTree::decode(&NameTree::of(&segment).encode_to_vec()[..]).unwrap();
        let mut values = vec![0i64; segment.stack_parents.len() + 1];
        for (s, &node) in p.sample.iter().zip(&stacks) {
            values[node as usize] += s.value[1];
        }
        let mut tree = StackTree::new();
        names.merge_into(&values, &mut tree);
        assert_eq!(tree.collapsed(), [("main;b".into(), 20), ("main;b;a".into(), 30)]);
        assert_eq!(names.name_ends.len(), 3, "each name once");
    }
}
