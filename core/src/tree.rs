//! [`StackTree`]: the call tree that query results are merged into.
//!
//! Frames are keyed by function *name* only (spec `query.md` §4.1 step 5), so
//! stacks from many profiles, with different symbol tables, collapse into one
//! tree. It is the hot path of every query, hence the layout:
//!
//! * nodes live in flat parallel vectors indexed by node id (no per-node
//!   allocation); node 0 is a virtual root and every node is created after its
//!   parent, so `parent(n) < n` and one reverse pass accumulates totals;
//! * names are interned once; nodes store a `u32` name id;
//! * the only per-insert work is one probe of a hash map keyed by
//!   `(parent id, name id)` packed in a `u64`, hashed with FxHash (fast natively and in wasm).
//!
//! Children are not stored per node (that would need a `Vec` per node);
//! [`StackTree::child_index`] builds them on demand as compact CSR arrays.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::hash::BuildHasher;

use hashbrown::hash_map::Entry;
use hashbrown::{HashMap, HashTable};
use rustc_hash::FxBuildHasher;

/// A call tree with summed sample values, keyed by function name.
#[derive(Clone, Debug, Default)]
pub struct StackTree {
    /// Interned names, indexed by name id.
    names: Vec<String>,
    /// Name ids, hashed by the string they stand for (so each name is stored once).
    name_ids: HashTable<u32>,
    /// Per node (index = node id): parent node id (0 for the root itself).
    parents: Vec<u32>,
    /// Per node: name id (meaningless for the root).
    node_names: Vec<u32>,
    /// Per node: value of samples whose stack ends exactly here.
    selfs: Vec<i64>,
    /// `(parent << 32 | name)` → child node id, for every node whose parent
    /// is below `unindexed_parents`.
    children: HashMap<u64, u32, FxBuildHasher>,
    /// Children of nodes from this id on may be missing from `children`
    /// (see [`StackTree::append_child`]); `u32::MAX` when none are.
    unindexed_parents: u32,
    /// Sum of all self values, kept up to date by `add_self`.
    total: i64,
}

impl StackTree {
    /// The virtual root every stack hangs from.
    pub const ROOT: u32 = 0;

    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A tree with room for `nodes` nodes before reallocating.
    pub fn with_capacity(nodes: usize) -> Self {
        let mut t = StackTree {
            names: Vec::new(),
            name_ids: HashTable::new(),
            parents: Vec::with_capacity(nodes + 1),
            node_names: Vec::with_capacity(nodes + 1),
            selfs: Vec::with_capacity(nodes + 1),
            children: HashMap::with_capacity_and_hasher(nodes, FxBuildHasher),
            unindexed_parents: u32::MAX,
            total: 0,
        };
        t.parents.push(Self::ROOT);
        t.node_names.push(u32::MAX);
        t.selfs.push(0);
        t
    }

    /// The id of `name`, adding it if new. Intern each distinct name once per
    /// input (e.g. per function of a profile) and reuse the id for every frame.
    pub fn intern(&mut self, name: &str) -> u32 {
        let Self { names, name_ids, .. } = self;
        let hash = FxBuildHasher.hash_one(name);
        if let Some(&id) = name_ids.find(hash, |&id| names[id as usize] == name) {
            return id;
        }
        let id = to_id(names.len());
        names.push(String::from(name));
        name_ids.insert_unique(hash, id, |&id| FxBuildHasher.hash_one(names[id as usize].as_str()));
        id
    }

    /// The id of `name` if it was interned.
    pub fn lookup_name(&self, name: &str) -> Option<u32> {
        let hash = FxBuildHasher.hash_one(name);
        self.name_ids.find(hash, |&id| self.names[id as usize] == name).copied()
    }

    /// The string of name id `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// All interned names, indexed by name id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The child of `parent` called `name` (a name id), created if missing.
    #[inline]
    pub fn child(&mut self, parent: u32, name: u32) -> u32 {
        debug_assert!((parent as usize) < self.parents.len());
        debug_assert!((name as usize) < self.names.len());
        if parent >= self.unindexed_parents {
            self.index_children();
        }
        match self.children.entry(child_key(parent, name)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let id = to_id(self.parents.len());
                self.parents.push(parent);
                self.node_names.push(name);
                self.selfs.push(0);
                e.insert(id);
                id
            }
        }
    }

    /// Adds a child of `parent` called `name` without looking for an
    /// existing one: for a caller that knows there is none, because `parent`
    /// is new and each of its children is added once (a merge copying a
    /// subtree that did not exist). Skipping the child map makes such copies
    /// several times faster; the map catches up when next needed.
    pub fn append_child(&mut self, parent: u32, name: u32) -> u32 {
        debug_assert!((parent as usize) < self.parents.len());
        self.unindexed_parents = self.unindexed_parents.min(parent);
        let id = to_id(self.parents.len());
        self.parents.push(parent);
        self.node_names.push(name);
        self.selfs.push(0);
        id
    }

    /// Puts the nodes [`Self::append_child`] added into the child map.
    fn index_children(&mut self) {
        let from = self.unindexed_parents as usize + 1;
        for id in from..self.parents.len() {
            self.children.entry(child_key(self.parents[id], self.node_names[id])).or_insert(id as u32);
        }
        self.unindexed_parents = u32::MAX;
    }

    /// The child of `parent` called `name`, if it exists.
    pub fn find_child(&self, parent: u32, name: u32) -> Option<u32> {
        if parent >= self.unindexed_parents {
            // Not in the map yet: children come after their parent.
            let after = parent as usize + 1;
            let found =
                (after..self.parents.len()).find(|&id| self.parents[id] == parent && self.node_names[id] == name);
            return found.map(to_id);
        }
        self.children.get(&child_key(parent, name)).copied()
    }

    /// Adds `value` to the self value of `node`.
    ///
    /// Values added to [`ROOT`](Self::ROOT) are dropped: a sample with no frame
    /// (e.g. only unsymbolized locations) has no place in Pyroscope's tree or
    /// flame graph, whose total is the sum of the top-level frames.
    #[inline]
    pub fn add_self(&mut self, node: u32, value: i64) {
        if node != Self::ROOT {
            self.selfs[node as usize] += value;
            self.total += value;
        }
    }

    /// Adds one stack, given root-most frame first. Empty stacks and zero
    /// values are ignored (no node is created for them).
    pub fn insert<'a, I: IntoIterator<Item = &'a str>>(&mut self, root_first: I, value: i64) {
        if value == 0 {
            return;
        }
        let mut node = Self::ROOT;
        for name in root_first {
            let id = self.intern(name);
            node = self.child(node, id);
        }
        self.add_self(node, value);
    }

    /// Adds every stack of `other` into `self`.
    pub fn merge(&mut self, other: &StackTree) {
        if self.node_count() == 0 && self.names.is_empty() {
            // Nothing to merge with (and no name id handed out that a copy
            // would invalidate): a copy is far cheaper than re-inserting.
            *self = other.clone();
            return;
        }
        let names: Vec<u32> = other.names.iter().map(|n| self.intern(n)).collect();
        // Parents precede children in `other`, so one forward pass maps every
        // node through its already-mapped parent.
        let mut map = vec![Self::ROOT; other.parents.len()];
        for i in 1..other.parents.len() {
            let parent = map[other.parents[i] as usize];
            let node = self.child(parent, names[other.node_names[i] as usize]);
            map[i] = node;
            self.add_self(node, other.selfs[i]);
        }
    }

    /// This tree's names with the given nodes (parent, name id and self
    /// value per node id; index 0 is the root, every parent precedes its
    /// children), in the compact state ([`Self::compact`]).
    pub fn with_nodes(self, parents: Vec<u32>, node_names: Vec<u32>, mut selfs: Vec<i64>) -> StackTree {
        assert!(parents.len() == node_names.len() && parents.len() == selfs.len() && !parents.is_empty());
        assert!(parents.iter().enumerate().skip(1).all(|(i, &p)| (p as usize) < i), "parents precede children");
        selfs[Self::ROOT as usize] = 0;
        let mut tree = StackTree { total: selfs.iter().sum(), parents, node_names, selfs, ..self };
        tree.compact();
        tree
    }

    /// Frees what only adding nodes needs (the child map, spare capacity):
    /// for a tree that is kept to be read or merged from. Adding to it again
    /// works, after rebuilding the map once.
    pub fn compact(&mut self) {
        self.children = HashMap::default();
        self.unindexed_parents = 0;
        self.parents.shrink_to_fit();
        self.node_names.shrink_to_fit();
        self.selfs.shrink_to_fit();
        self.names.shrink_to_fit();
        self.name_ids.shrink_to_fit(|&id| FxBuildHasher.hash_one(self.names[id as usize].as_str()));
    }

    /// Sum of all sample values (= the root's total).
    pub fn total(&self) -> i64 {
        self.total
    }

    /// Number of nodes, not counting the virtual root: the count Pyroscope
    /// compares with `max_nodes`. Node ids range over `0..=node_count()`.
    pub fn node_count(&self) -> usize {
        self.parents.len() - 1
    }

    /// True when no stack was added.
    pub fn is_empty(&self) -> bool {
        self.node_count() == 0
    }

    /// Parent node of `node` (the root is its own parent).
    pub fn parent(&self, node: u32) -> u32 {
        self.parents[node as usize]
    }

    /// Name id of `node` (not meaningful for the root).
    pub fn name_id_of(&self, node: u32) -> u32 {
        self.node_names[node as usize]
    }

    /// Function name of `node` (`""` for the root).
    pub fn name_of(&self, node: u32) -> &str {
        match node {
            Self::ROOT => "",
            _ => self.name(self.node_names[node as usize]),
        }
    }

    /// Self value of `node`.
    pub fn self_of(&self, node: u32) -> i64 {
        self.selfs[node as usize]
    }

    /// Per node id, the node's total: its self value plus its descendants'.
    pub fn totals(&self) -> Vec<i64> {
        let mut totals = self.selfs.clone();
        // Children have larger ids than their parent: visiting ids in reverse
        // finishes every node before it is added to its parent.
        for i in (1..totals.len()).rev() {
            let p = self.parents[i] as usize;
            totals[p] += totals[i];
        }
        totals
    }

    /// The children of every node.
    pub fn child_index(&self) -> ChildIndex {
        ChildIndex::from_parents(&self.parents)
    }

    /// Parent node id per node id (index 0, the root, holds 0). Parents
    /// always precede their children.
    pub fn parents(&self) -> &[u32] {
        &self.parents
    }

    /// Name id per node id (index 0, the root, holds `u32::MAX`).
    pub fn node_name_ids(&self) -> &[u32] {
        &self.node_names
    }

    /// Self value per node id.
    pub fn self_values(&self) -> &[i64] {
        &self.selfs
    }

    /// Every stack with a non-zero self value as `("a;b;c", self)`, root-most
    /// frame first, sorted. Meant for tests and debugging, not for hot paths.
    pub fn collapsed(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        for node in 1..self.parents.len() {
            let value = self.selfs[node];
            if value == 0 {
                continue;
            }
            path.clear();
            let mut n = node as u32;
            while n != Self::ROOT {
                path.push(self.name_of(n));
                n = self.parent(n);
            }
            path.reverse();
            out.push((path.join(";"), value));
        }
        out.sort_unstable();
        out
    }
}

/// Children of every node of a [`StackTree`] (compressed sparse rows), in
/// creation order. Built by [`StackTree::child_index`]; stale once the tree
/// changes.
#[derive(Clone, Debug)]
pub struct ChildIndex {
    /// `offsets[n]..offsets[n + 1]` is the range of `ids` holding n's children.
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

impl ChildIndex {
    /// The children of a forest given as parent id per node id, where entry 0
    /// is the root (its own entry is ignored) and every other entry is smaller
    /// than its index. Two linear passes (a counting sort by parent).
    pub fn from_parents(parents: &[u32]) -> ChildIndex {
        let n = parents.len().max(1);
        // Counts go two slots ahead so that after the prefix sum
        // `offsets[p + 1]` is where p's children start; filling then advances
        // it to where they end, i.e. where p + 1's start, which leaves
        // `offsets[p]..offsets[p + 1]` spanning p's children without a copy.
        let mut offsets = vec![0u32; n + 2];
        for &p in parents.iter().skip(1) {
            offsets[p as usize + 2] += 1;
        }
        for i in 2..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut ids = vec![0u32; n - 1];
        for (i, &p) in parents.iter().enumerate().skip(1) {
            let slot = &mut offsets[p as usize + 1];
            ids[*slot as usize] = i as u32;
            *slot += 1;
        }
        offsets.truncate(n + 1);
        ChildIndex { offsets, ids }
    }

    /// The child node ids of `node`.
    #[inline]
    pub fn children(&self, node: u32) -> &[u32] {
        let n = node as usize;
        &self.ids[self.offsets[n] as usize..self.offsets[n + 1] as usize]
    }
}

#[inline]
fn child_key(parent: u32, name: u32) -> u64 {
    (u64::from(parent) << 32) | u64::from(name)
}

/// Node and name ids are `u32` to halve the memory of the hot structures.
#[inline]
fn to_id(len: usize) -> u32 {
    u32::try_from(len).expect("StackTree: more than u32::MAX nodes or names")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::string::ToString;

    pub(crate) fn tree(stacks: &[(&str, i64)]) -> StackTree {
        let mut t = StackTree::new();
        for (s, v) in stacks {
            t.insert(s.split(';'), *v);
        }
        t
    }

    pub(crate) fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
        v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    #[test]
    fn appended_children_are_found_once_indexed() {
        let mut t = StackTree::new();
        let (a, b) = (t.intern("a"), t.intern("b"));
        let na = t.child(StackTree::ROOT, a);
        let nb = t.append_child(na, b);
        assert_eq!(t.find_child(na, b), Some(nb), "found before indexing");
        assert_eq!(t.child(na, b), nb, "no duplicate after indexing");
        assert_eq!(t.node_count(), 2);
    }

    #[test]
    fn insert_and_collapsed() {
        let t = tree(&[("a;b", 3), ("a;c", 2), ("d", 5), ("a;b", 1), ("a", 4)]);
        assert_eq!(t.collapsed(), pairs(&[("a", 4), ("a;b", 4), ("a;c", 2), ("d", 5)]));
        assert_eq!(t.total(), 15);
        // a, b, c, d
        assert_eq!(t.node_count(), 4);
        assert_eq!(t.names(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn same_name_at_different_depths_is_distinct_nodes() {
        let t = tree(&[("a;a;a", 1), ("a", 1), ("b;a", 1)]);
        assert_eq!(t.node_count(), 5);
        assert_eq!(t.names().len(), 2);
        assert_eq!(t.collapsed(), pairs(&[("a", 1), ("a;a;a", 1), ("b;a", 1)]));
    }

    #[test]
    fn empty_stacks_and_zero_values_are_ignored() {
        let mut t = StackTree::new();
        t.insert([], 5);
        t.insert(["a"], 0);
        t.add_self(StackTree::ROOT, 7);
        assert!(t.is_empty());
        assert_eq!(t.total(), 0);
        assert_eq!(t.totals(), [0]);
        assert!(t.collapsed().is_empty());
    }

    #[test]
    fn intern_child_lookup() {
        let mut t = StackTree::new();
        let a = t.intern("a");
        assert_eq!(t.intern("a"), a);
        let b = t.intern("b");
        assert_ne!(a, b);
        assert_eq!(t.lookup_name("b"), Some(b));
        assert_eq!(t.lookup_name("zz"), None);
        let na = t.child(StackTree::ROOT, a);
        assert_eq!(t.child(StackTree::ROOT, a), na);
        assert_eq!(t.find_child(StackTree::ROOT, a), Some(na));
        assert_eq!(t.find_child(na, a), None);
        let nb = t.child(na, b);
        assert_eq!(t.parent(nb), na);
        assert_eq!(t.name_of(nb), "b");
        assert_eq!(t.name_id_of(nb), b);
        assert_eq!(t.name_of(StackTree::ROOT), "");
        t.add_self(nb, 3);
        assert_eq!(t.self_of(nb), 3);
        assert_eq!(t.collapsed(), pairs(&[("a;b", 3)]));
    }

    #[test]
    fn totals_accumulate_descendants() {
        let t = tree(&[("a;b", 3), ("a;c", 2), ("d", 5), ("a", 1)]);
        let totals = t.totals();
        let by_name = |name: &str, parent: u32| {
            let id = t.lookup_name(name).unwrap();
            totals[t.find_child(parent, id).unwrap() as usize]
        };
        assert_eq!(totals[0], 11);
        assert_eq!(by_name("a", StackTree::ROOT), 6);
        assert_eq!(by_name("d", StackTree::ROOT), 5);
        let a = t.find_child(StackTree::ROOT, t.lookup_name("a").unwrap()).unwrap();
        assert_eq!(by_name("b", a), 3);
        assert_eq!(by_name("c", a), 2);
    }

    #[test]
    fn child_index_lists_children_in_creation_order() {
        let t = tree(&[("a;b", 1), ("d", 1), ("a;c", 1), ("a;b;e", 1)]);
        let idx = t.child_index();
        let names = |n: u32| -> Vec<&str> { idx.children(n).iter().map(|&c| t.name_of(c)).collect() };
        assert_eq!(names(StackTree::ROOT), ["a", "d"]);
        let a = idx.children(StackTree::ROOT)[0];
        assert_eq!(names(a), ["b", "c"]);
        let b = idx.children(a)[0];
        assert_eq!(names(b), ["e"]);
        assert!(idx.children(idx.children(b)[0]).is_empty());
        let empty = StackTree::new().child_index();
        assert!(empty.children(StackTree::ROOT).is_empty());
    }

    #[test]
    fn compaction_keeps_the_tree_and_adding_works_after() {
        let t = tree(&[("a;b", 6), ("a;c", 4)]);
        let mut compact = t.clone();
        compact.compact();
        assert_eq!(compact.collapsed(), t.collapsed());
        let a = compact.lookup_name("a").unwrap();
        let b = compact.lookup_name("b").unwrap();
        let na = compact.find_child(StackTree::ROOT, a).unwrap();
        assert_eq!(compact.name_of(compact.find_child(na, b).unwrap()), "b");
        compact.insert(["a", "b"], 1);
        compact.insert(["d"], 1);
        assert_eq!(compact.collapsed(), pairs(&[("a;b", 7), ("a;c", 4), ("d", 1)]));
        assert_eq!(compact.node_count(), 4);
        let mut merged = tree(&[("a", 1)]);
        merged.merge(&compact);
        assert_eq!(merged.total(), 13);
    }

    #[test]
    fn merge_adds_stacks() {
        let mut x = tree(&[("a;b", 3), ("c", 1)]);
        let y = tree(&[("c", 2), ("a;b", 1), ("a;b;z", 7), ("q;a", 4)]);
        x.merge(&y);
        assert_eq!(x.collapsed(), pairs(&[("a;b", 4), ("a;b;z", 7), ("c", 3), ("q;a", 4)]));
        assert_eq!(x.total(), 18);
        assert_eq!(x.totals()[0], 18);
        // Name ids handed out before a merge stay valid.
        let mut named = StackTree::new();
        let z = named.intern("z");
        named.merge(&x);
        assert_eq!(named.name(z), "z");
        assert_eq!(named.collapsed(), x.collapsed());
        // Merging into an empty tree, and merging an empty tree.
        let mut e = StackTree::new();
        e.merge(&x);
        assert_eq!(e.collapsed(), x.collapsed());
        e.merge(&StackTree::new());
        assert_eq!(e.collapsed(), x.collapsed());
        // Merging twice doubles every value; node count is unchanged.
        let nodes = x.node_count();
        let copy = x.clone();
        x.merge(&copy);
        assert_eq!(x.node_count(), nodes);
        assert_eq!(x.collapsed(), pairs(&[("a;b", 8), ("a;b;z", 14), ("c", 6), ("q;a", 8)]));
    }

    #[test]
    fn merge_matches_inserting_everything_into_one_tree() {
        // Deterministic pseudo-random stacks over a small alphabet.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = ["f", "g", "h", "i", "j"];
        let mut parts = [StackTree::new(), StackTree::new(), StackTree::new()];
        let mut all = StackTree::new();
        for i in 0..600 {
            let depth = 1 + (next() % 6) as usize;
            let stack: Vec<&str> = (0..depth).map(|_| alphabet[(next() % 5) as usize]).collect();
            let value = (next() % 100) as i64 + 1;
            parts[i % 3].insert(stack.iter().copied(), value);
            all.insert(stack.iter().copied(), value);
        }
        let mut merged = StackTree::new();
        for p in &parts {
            merged.merge(p);
        }
        assert_eq!(merged.collapsed(), all.collapsed());
        assert_eq!(merged.total(), all.total());
        assert_eq!(merged.node_count(), all.node_count());
        assert_eq!(merged.totals()[0], all.total());
    }
}
