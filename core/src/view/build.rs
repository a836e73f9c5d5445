//! Samples into per-profile-type [`StackTree`]s, following the server's
//! ingest rules so that a file viewed offline shows what the server would
//! store: samples with a negative or no non-zero value are dropped, stacks
//! deeper than the depth limit keep their root-most frames, long names keep
//! their tail, and a sample type with no non-zero value has no tree.

use alloc::vec;
use alloc::vec::Vec;

use super::load::out_of_memory;
use crate::FastMap;
use crate::error::Result;

use super::TypeTree;
use crate::pprof::Limits;
use crate::profile_type::ProfileType;
use crate::tree::StackTree;

/// The server's limits that shape what is stored (depth, name length).
/// Counts and sizes are not limited offline: a viewer opens what it is given.
pub(super) fn limits() -> Limits {
    Limits { max_profile_size: usize::MAX, max_samples: usize::MAX, max_sample_labels: usize::MAX, ..Limits::default() }
}

/// Children of a node beyond this many are found through a hash map.
const WIDE: u32 = 16;
const NONE: u32 = u32::MAX;

/// The nodes of every kept sample's stack, with the self values of each
/// sample type. All types share the nodes, as the server's series of one
/// profile share its name tree. The first type's values are kept per node;
/// the others per sample (far fewer than nodes in large profiles) until
/// [`Self::finish`].
///
/// Children are found through sibling lists, not [`StackTree`]'s child map:
/// large profiles create most nodes under a node just created, which has no
/// children to search, and the lists cost 8 bytes a node where the map costs
/// 20 to 40. Nodes with many children get their children hashed.
pub struct TreesBuilder {
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
    /// Per type after the first: (node, value) of each sample.
    others: Vec<Vec<(u32, i64)>>,
}

impl TreesBuilder {
    pub fn new(types: usize) -> Self {
        Self {
            names: StackTree::new(),
            parents: vec![StackTree::ROOT],
            node_names: vec![u32::MAX],
            selfs: vec![0],
            first_child: vec![NONE],
            next_sibling: vec![NONE],
            wide_bits: vec![0],
            wide: FastMap::default(),
            others: vec![Vec::new(); types.saturating_sub(1)],
        }
    }

    /// The id of `name` (see [`StackTree::intern`]).
    pub fn intern(&mut self, name: &str) -> u32 {
        self.names.intern(name)
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

    /// Adds the values of one sample ending at `node`. Samples
    /// [`crate::ingest::is_dropped`] must not get here: their stacks make no
    /// nodes.
    #[inline]
    pub fn add(&mut self, node: u32, values: &[i64]) {
        // Stacks without a frame have no place in a flame graph.
        if node == StackTree::ROOT {
            return;
        }
        let Some((&first, rest)) = values.split_first() else { return };
        self.selfs[node as usize] += first;
        for (column, &v) in self.others.iter_mut().zip(rest) {
            if v != 0 {
                column.push((node, v));
            }
        }
    }

    /// One tree per type with a non-zero value, added to `out` in the order
    /// of `types` (merged into a tree of the same type already there).
    pub fn finish(self, types: Vec<ProfileType>, out: &mut Vec<TypeTree>) -> Result<()> {
        let Self { names, parents, node_names, selfs, first_child, next_sibling, wide_bits, wide, others } = self;
        drop((first_child, next_sibling, wide_bits, wide));
        let len = parents.len();
        // Each other type's tree copies the nodes: fail now, not abort later,
        // if there is no room for them (16 bytes a node).
        let copies = others.iter().filter(|c| !c.is_empty()).count();
        let mut probe: Vec<u8> = Vec::new();
        probe.try_reserve_exact(len * 16 * copies).map_err(|_| out_of_memory())?;
        drop(probe);
        let shape = names.with_nodes(parents, node_names, selfs);
        let mut trees = Vec::with_capacity(types.len());
        let others: Vec<Option<StackTree>> = others
            .into_iter()
            .map(|column| {
                if column.is_empty() {
                    return None;
                }
                let mut selfs = vec![0i64; len];
                for (node, v) in column {
                    selfs[node as usize] += v;
                }
                Some(shape.with_self_values(selfs))
            })
            .collect();
        trees.push((shape.total() != 0).then_some(shape));
        trees.extend(others);
        for (tree, profile_type) in trees.into_iter().zip(types) {
            let Some(tree) = tree else { continue };
            match out.iter_mut().find(|t| t.profile_type == profile_type) {
                Some(existing) => {
                    existing.tree.merge(&tree);
                    existing.tree.compact();
                }
                None => out.push(TypeTree { profile_type, tree }),
            }
        }
        Ok(())
    }
}

#[inline]
fn key(parent: u32, name: u32) -> u64 {
    (u64::from(parent) << 32) | u64::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::pairs;

    #[test]
    fn wide_nodes_and_sibling_lists_find_the_same_children() {
        let mut b = TreesBuilder::new(2);
        let names: Vec<u32> = (0..100).map(|i| b.intern(&alloc::format!("f{i}"))).collect();
        // Root gets 100 children (hashed past WIDE); each has one chain.
        for round in 0..2 {
            for (i, &n) in names.iter().enumerate() {
                let top = b.child(StackTree::ROOT, n).unwrap();
                let leaf = b.child(top, names[(i + 1) % 100]).unwrap();
                b.add(leaf, &[1, if round == 0 { 0 } else { 5 }]);
            }
        }
        assert_eq!(b.parents.len(), 201, "no duplicates");
        let types = ["a:x:y::", "a:z:y::"].map(|id| ProfileType::parse(id).unwrap()).to_vec();
        let mut out = Vec::new();
        b.finish(types, &mut out).unwrap();
        assert_eq!(out[0].tree.total(), 200);
        assert_eq!(out[1].tree.total(), 500);
        assert_eq!(out[0].tree.collapsed()[0], pairs(&[("f0;f1", 2)])[0]);
        assert_eq!(out[0].tree.node_count(), 200);
    }
}
