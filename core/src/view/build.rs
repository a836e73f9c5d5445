//! The server's ingest rules as the views apply them, so that a file viewed
//! offline shows what the server would store (samples with a negative or no
//! non-zero value are dropped, stacks deeper than the depth limit keep their
//! root-most frames, long names keep their tail), and whole trees of stacks
//! for the views that need every node.

use alloc::vec;
use alloc::vec::Vec;

use super::load::out_of_memory;
use crate::FastMap;
use crate::error::Result;

use super::graph::{Part, names_of};
use crate::pprof::Limits;
use crate::tree::StackTree;

/// The server's limits that shape what is stored (depth, name length).
/// Counts and sizes are not limited offline: a viewer opens what it is given.
pub(super) fn limits() -> Limits {
    Limits { max_profile_size: usize::MAX, max_samples: usize::MAX, max_sample_labels: usize::MAX, ..Limits::default() }
}

/// Children of a node beyond this many are found through a hash map.
const WIDE: u32 = 16;
const NONE: u32 = u32::MAX;

/// A full [`StackTree`] of some stacks, for the views that need every node
/// (sandwich, diff, export).
///
/// Children are found through sibling lists, not [`StackTree`]'s child map:
/// large profiles create most nodes under a node just created, which has no
/// children to search, and the lists cost 8 bytes a node where the map costs
/// 20 to 40. Nodes with many children get their children hashed.
pub struct TreeBuilder {
    /// Interns the names (its nodes are unused).
    names: StackTree,
    parents: Vec<u32>,
    node_names: Vec<u32>,
    selfs: Vec<i64>,
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
    /// Bit per node: its children are in `wide`.
    wide_bits: Vec<u64>,
    wide: FastMap<u64, u32>,
}

impl TreeBuilder {
    pub fn new() -> Self {
        Self {
            names: StackTree::new(),
            parents: vec![StackTree::ROOT],
            node_names: vec![u32::MAX],
            selfs: vec![0],
            first_child: vec![NONE],
            next_sibling: vec![NONE],
            wide_bits: vec![0],
            wide: FastMap::default(),
        }
    }

    /// The tree of `parts` merged.
    pub fn of(parts: &[Part<'_>]) -> Result<StackTree> {
        let mut b = Self::new();
        let (names, maps) = names_of(parts);
        let ids: Vec<u32> = names.iter().map(|n| b.names.intern(n)).collect();
        for (part, map) in parts.iter().zip(&maps) {
            let stacks = part.stacks;
            for s in 0..stacks.count() {
                let mut node = StackTree::ROOT;
                let mut cursor = stacks.cursor(s);
                while let Some(name) = stacks.next(&mut cursor) {
                    node = b.child(node, ids[map[name as usize] as usize])?;
                }
                b.add(node, stacks.value(s, part.column));
            }
        }
        Ok(b.finish())
    }

    /// The child of `parent` called `name` (a name id), created if missing;
    /// an error when memory for it cannot be reserved.
    #[inline]
    pub fn child(&mut self, parent: u32, name: u32) -> Result<u32> {
        let p = parent as usize;
        if self.wide_bits[p / 64] & (1 << (p % 64)) != 0 {
            if let Some(&id) = self.wide.get(&key(parent, name)) {
                return Ok(id);
            }
            self.wide.try_reserve(1).map_err(|_| out_of_memory())?;
            let id = self.push(parent, name)?;
            self.wide.insert(key(parent, name), id);
            return Ok(id);
        }
        let mut c = self.first_child[p];
        let mut seen = 0;
        while c != NONE {
            if self.node_names[c as usize] == name {
                return Ok(c);
            }
            c = self.next_sibling[c as usize];
            seen += 1;
        }
        let id = self.push(parent, name)?;
        if seen >= WIDE {
            self.wide_bits[p / 64] |= 1 << (p % 64);
            let mut c = self.first_child[p];
            while c != NONE {
                self.wide.insert(key(parent, self.node_names[c as usize]), c);
                c = self.next_sibling[c as usize];
            }
        }
        Ok(id)
    }

    fn push(&mut self, parent: u32, name: u32) -> Result<u32> {
        if self.parents.len() == self.parents.capacity() {
            self.grow()?;
        }
        let id = u32::try_from(self.parents.len()).map_err(|_| out_of_memory())?;
        self.parents.push(parent);
        self.node_names.push(name);
        self.selfs.push(0);
        self.first_child.push(NONE);
        self.next_sibling.push(self.first_child[parent as usize]);
        self.first_child[parent as usize] = id;
        if self.wide_bits.len() * 64 <= id as usize {
            self.wide_bits.push(0);
        }
        Ok(id)
    }

    /// Room for half as many nodes again, reserved fallibly: a page's memory
    /// runs out on a large enough profile, which must be an error, not an
    /// abort. Growing by half, not double, keeps the peak lower (wasm memory
    /// never shrinks).
    fn grow(&mut self) -> Result<()> {
        let more = (self.parents.len() / 2).max(1024);
        let ok = self.parents.try_reserve_exact(more).is_ok()
            && self.node_names.try_reserve_exact(more).is_ok()
            && self.selfs.try_reserve_exact(more).is_ok()
            && self.first_child.try_reserve_exact(more).is_ok()
            && self.next_sibling.try_reserve_exact(more).is_ok()
            && self.wide_bits.try_reserve_exact(more / 64 + 1).is_ok();
        if ok { Ok(()) } else { Err(out_of_memory()) }
    }

    /// Adds a stack's value at the node it ends at.
    #[inline]
    pub fn add(&mut self, node: u32, value: i64) {
        // Stacks without a frame have no place in a flame graph.
        if node != StackTree::ROOT {
            self.selfs[node as usize] += value;
        }
    }

    pub fn finish(self) -> StackTree {
        let Self { names, parents, node_names, selfs, .. } = self;
        names.with_nodes(parents, node_names, selfs)
    }
}

#[inline]
fn key(parent: u32, name: u32) -> u64 {
    (u64::from(parent) << 32) | u64::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_nodes_and_sibling_lists_find_the_same_children() {
        let mut b = TreeBuilder::new();
        let names: Vec<u32> = (0..100).map(|i| b.names.intern(&alloc::format!("f{i}"))).collect();
        // Root gets 100 children (hashed past WIDE); each has one chain.
        for _ in 0..2 {
            for (i, &n) in names.iter().enumerate() {
                let top = b.child(StackTree::ROOT, n).unwrap();
                let leaf = b.child(top, names[(i + 1) % 100]).unwrap();
                b.add(leaf, 1);
            }
        }
        assert_eq!(b.parents.len(), 201, "no duplicates");
        let tree = b.finish();
        assert_eq!(tree.total(), 200);
        assert_eq!(tree.collapsed()[0], (alloc::string::String::from("f0;f1"), 2));
        assert_eq!(tree.node_count(), 200);
    }
}
