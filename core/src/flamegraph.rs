//! Pyroscope's outputs of a merged [`StackTree`]: the flame graph of
//! `SelectMergeStacktraces` / `/pyroscope/render`, and the `PROFILE_FORMAT_TREE`
//! bytes (also the legacy `/ingest?format=tree` input), both truncated to
//! `max_nodes` (spec `query.md` §4.2–4.4).
//!
//! Every walk uses an explicit stack (stacks can be thousands of frames deep),
//! reads per-node totals from one flat vector and children from a
//! compact index of the nodes that survive truncation, and only clones the
//! names it emits.

use alloc::borrow::Cow;
use alloc::collections::BinaryHeap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;

use kiln_proto::querier::v1::{FlameGraph, FlameGraphDiff, Level};

use crate::FastMap;
use crate::tree::{ChildIndex, StackTree};

/// Name of the synthetic node that replaces truncated siblings.
pub const OTHER: &str = "other";
/// Name of the flame graph's root (`names[0]`).
pub const TOTAL: &str = "total";

const ROOT: u32 = StackTree::ROOT;
/// Stands for a synthetic `other` node in walks (never a real node id: ids
/// are `< u32::MAX` because the root takes one).
const SYNTHETIC_OTHER: u32 = u32::MAX;

/// The smallest total a node needs to survive truncation to `max_nodes`:
/// the `max_nodes`-th largest node total, or 0 (keep everything) when the tree
/// has at most `max_nodes` nodes or `max_nodes` is 0.
///
/// `totals` is [`StackTree::totals`] (index 0, the root, is not a node).
/// Pyroscope finds the same value with a min-heap over a pruned DFS. Here,
/// for a small `max_nodes`, a min-heap is fed by a linear scan (parents
/// precede children, so large totals come early and most later ones fail one
/// comparison); for a large one, a histogram pass finds the bucket holding the
/// answer and only that bucket's values are selected from. Neither copies
/// `totals`.
pub fn min_value(totals: &[i64], max_nodes: usize) -> i64 {
    let nodes = totals.get(1..).unwrap_or_default();
    if max_nodes == 0 || nodes.len() <= max_nodes {
        return 0;
    }
    if max_nodes <= nodes.len() / 32 {
        let mut heap: BinaryHeap<Reverse<i64>> = BinaryHeap::with_capacity(max_nodes);
        for &total in nodes {
            if heap.len() < max_nodes {
                heap.push(Reverse(total));
            } else if let Some(mut smallest) = heap.peek_mut()
                && total > smallest.0
            {
                *smallest = Reverse(total);
            }
        }
        return heap.peek().map_or(0, |r| r.0);
    }
    // Consecutive totals are often equal (chains of single children): four
    // interleaved histograms keep their increments from waiting on each other.
    let mut lanes = vec![[0u32; 4]; BUCKETS];
    let mut chunks = nodes.chunks_exact(4);
    for c in &mut chunks {
        lanes[bucket(c[0])][0] += 1;
        lanes[bucket(c[1])][1] += 1;
        lanes[bucket(c[2])][2] += 1;
        lanes[bucket(c[3])][3] += 1;
    }
    for &total in chunks.remainder() {
        lanes[bucket(total)][0] += 1;
    }
    let counts: Vec<u32> = lanes.iter().map(|l| l.iter().sum()).collect();
    // Walk down from the largest bucket to the one holding the k-th largest.
    let mut above = 0; // values in buckets above `b`
    let mut b = BUCKETS - 1;
    while above + (counts[b] as usize) < max_nodes {
        above += counts[b] as usize;
        b -= 1;
    }
    if (1..=EXACT).contains(&b) {
        // Small totals have a bucket each: no need to look at the values.
        return b as i64 - 1;
    }
    let mut candidates: Vec<i64> = nodes.iter().copied().filter(|&t| bucket(t) == b).collect();
    let (_, kth, _) = candidates.select_nth_unstable_by(max_nodes - above - 1, |x, y| y.cmp(x));
    *kth
}

/// Histogram buckets of [`min_value`], a monotone float-like key: 0 for
/// negative values, then one bucket per value below 256, then 128 buckets per
/// power of two above (the 8 leading bits of the value).
const EXACT: usize = 256;
const BUCKETS: usize = 2 + (55 << 8) + 255;

#[inline]
fn bucket(v: i64) -> usize {
    if v < 0 {
        return 0;
    }
    let u = v as u64;
    // Bits beyond the 8 leading ones are shifted out (none for u < 256).
    let shift = (64 - u.leading_zeros()).saturating_sub(8);
    1 + ((shift as usize) << 8) + (u >> shift) as usize
}

/// The part of a tree that survives truncation, renumbered densely ("local"
/// ids: the root is 0, parents precede children).
///
/// Built in one forward pass over the nodes: a node is kept iff its parent is
/// kept and `keep` accepts it. Only a bitset is probed for the (usually many)
/// nodes under dropped parents, and what the encoders need of a kept node is
/// copied while the pass reads it sequentially, so the walks that follow touch
/// only these compact arrays.
struct Kept {
    /// Per local id.
    info: Vec<KeptNode>,
    /// Kept children per local id, in ascending local id order.
    children: ChildIndex,
}

struct KeptNode {
    total: i64,
    self_value: i64,
    /// Summed totals of the dropped children.
    dropped: i64,
    /// Name id in the tree (`u32::MAX` for the root).
    name: u32,
}

impl Kept {
    fn new(tree: &StackTree, totals: &[i64], keep: impl Fn(u32, i64) -> bool) -> Kept {
        let parents = tree.parents();
        let names = tree.node_name_ids();
        let selfs = tree.self_values();
        let n = parents.len();
        let mut kept_bits = vec![0u64; n.div_ceil(64)];
        // Local id per tree node, written only for kept nodes. Zeroed memory
        // is cheap to allocate and untouched pages cost nothing.
        let mut local = vec![0u32; n];
        kept_bits[0] = 1;
        let mut info = vec![KeptNode { total: totals[0], self_value: 0, dropped: 0, name: u32::MAX }];
        let mut local_parents = vec![0u32];
        for (i, &p) in parents.iter().enumerate().skip(1) {
            let p = p as usize;
            if kept_bits[p / 64] & (1 << (p % 64)) == 0 {
                continue;
            }
            let lp = local[p];
            let total = totals[i];
            if keep(names[i], total) {
                kept_bits[i / 64] |= 1 << (i % 64);
                local[i] = info.len() as u32;
                info.push(KeptNode { total, self_value: selfs[i], dropped: 0, name: names[i] });
                local_parents.push(lp);
            } else {
                info[lp as usize].dropped += total;
            }
        }
        Kept { info, children: ChildIndex::from_parents(&local_parents) }
    }

    /// The name of a kept node (`""` for the root).
    fn name<'t>(&self, tree: &'t StackTree, local: u32) -> &'t str {
        match local {
            0 => "",
            _ => tree.name(self.info[local as usize].name),
        }
    }
}

/// One node waiting on the flame graph walk's stack.
struct Frame {
    /// Local id in [`Kept`], or `SYNTHETIC_OTHER`.
    local: u32,
    depth: usize,
    /// Absolute x: where the node's span starts.
    x: i64,
    total: i64,
}

/// Pyroscope's flame graph of `tree` truncated to `max_nodes` (0 = no limit).
///
/// Layout (spec §4.3): a node's self occupies the left of its span, then its
/// kept children sorted by name, then one synthetic `other` holding the
/// summed totals of the dropped children (and of any child already named
/// `other`). `levels[d]` lists the nodes at depth d as
/// `[x_delta, total, self, name_index]`, by increasing x, with
/// `x_delta = x - (x_prev + total_prev)`. `names` is in visit order of a DFS
/// that takes the last child first, as Pyroscope's, with `names[0] = "total"`.
/// The root's total is the tree's total whatever is cut.
pub fn flamegraph(tree: &StackTree, max_nodes: usize) -> FlameGraph {
    let totals = tree.totals();
    let min_val = min_value(&totals, max_nodes);
    let other_name = tree.lookup_name(OTHER);
    let kept = Kept::new(tree, &totals, |name, total| total >= min_val && Some(name) != other_name);

    // Flame graph name index per tree name id, given on first emission. Names
    // are deduplicated by string like Pyroscope: a frame called "total" shares
    // index 0, and `other` shares the slot of a frame called "other".
    const UNSET: u32 = u32::MAX;
    let mut name_index = vec![UNSET; tree.names().len()];
    let mut names = vec![String::from(TOTAL)];
    if let Some(id) = tree.lookup_name(TOTAL) {
        name_index[id as usize] = 0;
    }
    let mut other_index = UNSET; // when no frame is called "other"
    let mut index_of = |slot: &mut u32, name: &str| -> i64 {
        if *slot == UNSET {
            *slot = names.len() as u32;
            names.push(String::from(name));
        }
        i64::from(*slot)
    };

    // Nodes are appended to their level in visit order as reversed tuples
    // [name, self, total, x]. The walk visits each level right to left, so
    // reversing a level's vector at the end yields ascending x with tuples in
    // the right field order, without sorting.
    let mut levels: Vec<Vec<i64>> = Vec::new();
    let mut max_self = 0;
    let mut stack = vec![Frame { local: 0, depth: 0, x: 0, total: totals[ROOT as usize] }];
    let mut children: Vec<u32> = Vec::new();
    while let Some(f) = stack.pop() {
        let (self_value, name) = match f.local {
            SYNTHETIC_OTHER => {
                let slot = match other_name {
                    Some(id) => &mut name_index[id as usize],
                    None => &mut other_index,
                };
                (f.total, index_of(slot, OTHER))
            }
            0 => (0, 0),
            local => {
                let node = &kept.info[local as usize];
                let id = node.name;
                let name = index_of(&mut name_index[id as usize], tree.name(id));
                (node.self_value, name)
            }
        };
        max_self = max_self.max(self_value);
        if f.depth == levels.len() {
            levels.push(Vec::new());
        }
        levels[f.depth].extend_from_slice(&[name, self_value, f.total, f.x]);
        if f.local == SYNTHETIC_OTHER {
            continue;
        }

        children.clear();
        children.extend_from_slice(kept.children.children(f.local));
        if children.len() > 1 {
            // Siblings have distinct names: the unstable sort is deterministic.
            children.sort_unstable_by(|&a, &b| kept.name(tree, a).cmp(kept.name(tree, b)));
        }
        let mut x = f.x + self_value;
        for &child in &children {
            let total = kept.info[child as usize].total;
            stack.push(Frame { local: child, depth: f.depth + 1, x, total });
            x += total;
        }
        let other_total = kept.info[f.local as usize].dropped;
        if other_total != 0 {
            stack.push(Frame { local: SYNTHETIC_OTHER, depth: f.depth + 1, x, total: other_total });
        }
    }

    let levels = levels
        .into_iter()
        .map(|mut values| {
            values.reverse();
            let mut end = 0; // x + total of the previous node on this level
            for node in values.chunks_exact_mut(4) {
                let x = node[0];
                node[0] = x - end;
                end = x + node[1];
            }
            Level { values }
        })
        .collect();
    FlameGraph { names, levels, total: totals[ROOT as usize], max_self }
}

/// Walks the tree truncated to `max_nodes` in pre-order as Pyroscope's
/// `MarshalTruncate` does, calling `visit(name, self, child_count)` per node,
/// starting with the root (name `""`, self 0).
///
/// Children whose total is below `minVal` are dropped; their totals are added
/// to the self of a child named `other` (an existing one is always kept, with
/// its subtree) or of a new `other` leaf. Children are visited in reverse name
/// order (Pyroscope pushes them sorted on a stack).
fn walk_truncated(tree: &StackTree, max_nodes: usize, mut visit: impl FnMut(&str, i64, usize)) {
    /// A node to visit, with the dropped total it absorbs.
    struct Item {
        /// Local id in [`Kept`], or `SYNTHETIC_OTHER`.
        local: u32,
        extra_self: i64,
    }

    let totals = tree.totals();
    let min_val = min_value(&totals, max_nodes);
    let other_name = tree.lookup_name(OTHER);
    let kept = Kept::new(tree, &totals, |name, total| total >= min_val || Some(name) == other_name);
    let name_of = |item: &Item| match item.local {
        SYNTHETIC_OTHER => OTHER,
        local => kept.name(tree, local),
    };

    let mut stack = vec![Item { local: 0, extra_self: 0 }];
    let mut children: Vec<Item> = Vec::new();
    while let Some(item) = stack.pop() {
        if item.local == SYNTHETIC_OTHER {
            visit(OTHER, item.extra_self, 0);
            continue;
        }
        children.clear();
        children.extend(kept.children.children(item.local).iter().map(|&local| Item { local, extra_self: 0 }));
        let node = &kept.info[item.local as usize];
        if node.dropped > 0 {
            let existing = children.iter_mut().find(|c| Some(kept.info[c.local as usize].name) == other_name);
            match existing {
                Some(other) => other.extra_self += node.dropped,
                None => children.push(Item { local: SYNTHETIC_OTHER, extra_self: node.dropped }),
            }
        }
        children.sort_unstable_by(|a, b| name_of(a).cmp(name_of(b)));
        visit(name_of(&item), node.self_value + item.extra_self, children.len());
        stack.append(&mut children);
    }
}

/// The `PROFILE_FORMAT_TREE` bytes of `tree` truncated to `max_nodes`
/// (0 = no limit): pre-order DFS, per node `uvarint(len(name))`, name,
/// `uvarint(self)`, `uvarint(child_count)`, starting with a virtual root with
/// empty name and self 0. An empty tree gives empty bytes.
pub fn tree_bytes(tree: &StackTree, max_nodes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if tree.is_empty() {
        return out;
    }
    let emitted = if max_nodes == 0 { tree.node_count() } else { tree.node_count().min(max_nodes) };
    out.reserve(16 * (emitted + 1));
    walk_truncated(tree, max_nodes, |name, self_value, children| {
        put_uvarint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        // Negative values cannot occur in Pyroscope's trees; they wrap as its
        // uint64 conversion does.
        put_uvarint(&mut out, self_value as u64);
        put_uvarint(&mut out, children as u64);
    });
    out
}

/// `tree` truncated to `max_nodes` exactly as [`tree_bytes`] truncates it
/// (`other` nodes included), as a new tree. This is what Pyroscope's storage
/// backend hands its query frontend, which may truncate again when it builds
/// the flame graph.
pub fn truncate(tree: &StackTree, max_nodes: usize) -> StackTree {
    let mut builder = PreorderBuilder::new();
    walk_truncated(tree, max_nodes, |name, self_value, children| {
        builder.node(name, self_value, children as u64);
    });
    builder.tree
}

/// Why [`parse_tree_bytes`] rejected its input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeBytesError {
    #[error("malformed tree bytes: unexpected end of input")]
    UnexpectedEnd,
    #[error("malformed tree bytes: varint overflows 64 bits")]
    VarintOverflow,
    #[error("tree node name length {len} exceeds the limit {max}")]
    NameTooLong { len: u64, max: u64 },
    #[error("tree node child count {count} exceeds the limit {max}")]
    TooManyChildren { count: u64, max: u64 },
}

/// Limits checked while parsing tree bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeLimits {
    /// Longest accepted node name, in bytes.
    pub max_name_len: u64,
    /// Most children accepted under one node.
    pub max_children: u64,
}

impl TreeLimits {
    pub const UNLIMITED: TreeLimits = TreeLimits { max_name_len: u64::MAX, max_children: u64::MAX };
    /// Pyroscope's `/ingest` defaults (spec `ingest.md` §5.4):
    /// `max_profile_symbol_value_length` and `max_profile_stacktrace_samples`.
    pub const INGEST: TreeLimits = TreeLimits { max_name_len: 65535, max_children: 16000 };
}

/// Parses tree bytes (the `PROFILE_FORMAT_TREE` layout, also the legacy
/// `/ingest` `tree` format) without limits. See [`parse_tree_bytes_with_limits`].
pub fn parse_tree_bytes(bytes: &[u8]) -> Result<StackTree, TreeBytesError> {
    parse_tree_bytes_with_limits(bytes, TreeLimits::UNLIMITED)
}

/// Parses tree bytes into a [`StackTree`].
///
/// The first node is the root: its name and self are ignored. Siblings with
/// the same name merge. As in Pyroscope, empty input is an empty tree and
/// bytes after the last node are ignored; names that are not UTF-8 are
/// converted lossily; self values are read as `uint64` and cast to `i64`.
pub fn parse_tree_bytes_with_limits(bytes: &[u8], limits: TreeLimits) -> Result<StackTree, TreeBytesError> {
    let mut builder = PreorderBuilder::new();
    let mut rest = bytes;
    while !rest.is_empty() && !builder.done() {
        let name_len = get_uvarint(&mut rest)?;
        if name_len > limits.max_name_len {
            return Err(TreeBytesError::NameTooLong { len: name_len, max: limits.max_name_len });
        }
        let name_len = usize::try_from(name_len).map_err(|_| TreeBytesError::UnexpectedEnd)?;
        if name_len > rest.len() {
            return Err(TreeBytesError::UnexpectedEnd);
        }
        let (name, tail) = rest.split_at(name_len);
        rest = tail;
        let self_value = get_uvarint(&mut rest)? as i64;
        let children = get_uvarint(&mut rest)?;
        if children > limits.max_children {
            return Err(TreeBytesError::TooManyChildren { count: children, max: limits.max_children });
        }
        let name = match core::str::from_utf8(name) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(name),
        };
        builder.node(&name, self_value, children);
    }
    if builder.started() && !builder.done() {
        return Err(TreeBytesError::UnexpectedEnd);
    }
    Ok(builder.tree)
}

/// Rebuilds a tree from a pre-order stream of `(name, self, child_count)`.
struct PreorderBuilder {
    tree: StackTree,
    /// Open nodes and how many of their children are still to come.
    open: Vec<(u32, u64)>,
    started: bool,
}

impl PreorderBuilder {
    fn new() -> Self {
        PreorderBuilder { tree: StackTree::new(), open: Vec::new(), started: false }
    }

    fn started(&self) -> bool {
        self.started
    }

    /// True once the root and all announced descendants were read.
    fn done(&self) -> bool {
        self.started && self.open.is_empty()
    }

    /// Adds the next node. Must not be called once `done()`.
    fn node(&mut self, name: &str, self_value: i64, children: u64) {
        let node = if !self.started {
            self.started = true;
            ROOT
        } else {
            let Some(top) = self.open.last_mut() else {
                debug_assert!(false, "node after the end of the tree");
                return;
            };
            top.1 -= 1;
            let parent = top.0;
            if top.1 == 0 {
                self.open.pop();
            }
            let name = self.tree.intern(name);
            self.tree.child(parent, name)
        };
        // The root's self is dropped by `add_self`.
        self.tree.add_self(node, self_value);
        if children > 0 {
            self.open.push((node, children));
        }
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a Go `binary.Uvarint` (LEB128, at most 10 bytes) off the front of `rest`.
fn get_uvarint(rest: &mut &[u8]) -> Result<u64, TreeBytesError> {
    let mut v = 0u64;
    for (i, &b) in rest.iter().enumerate() {
        if i == 9 && b > 1 {
            return Err(TreeBytesError::VarintOverflow);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *rest = &rest[i + 1..];
            return Ok(v);
        }
        if i == 9 {
            return Err(TreeBytesError::VarintOverflow);
        }
    }
    Err(TreeBytesError::UnexpectedEnd)
}

/// Pyroscope's diff flame graph (7 integers per node: left x delta, total,
/// self; right x delta, total, self; name index): aligns both trees by name path under one root and encodes them with the
/// same `max_nodes` cut as a flame graph, applied to `max(left, right)`.
pub fn flamegraph_diff(left: &StackTree, right: &StackTree, max_nodes: usize) -> FlameGraphDiff {
    // The union of both trees, with each side's self values.
    let mut union = StackTree::new();
    let mut selfs: [Vec<i64>; 2] = [vec![0], vec![0]];
    for (side, tree) in [left, right].into_iter().enumerate() {
        let mut map = vec![StackTree::ROOT; tree.node_count() + 1];
        let parents = tree.parents();
        for n in 1..map.len() {
            let name = union.intern(tree.name_of(n as u32));
            map[n] = union.child(map[parents[n] as usize], name);
            for s in &mut selfs {
                s.resize(union.node_count() + 1, 0);
            }
            selfs[side][map[n] as usize] += tree.self_of(n as u32);
        }
    }
    let nodes = union.node_count() + 1;
    let parents = union.parents();
    let mut totals = [selfs[0].clone(), selfs[1].clone()];
    for n in (1..nodes).rev() {
        for t in &mut totals {
            t[parents[n] as usize] += t[n];
        }
    }
    let larger: Vec<i64> = (0..nodes).map(|n| totals[0][n].max(totals[1][n])).collect();
    let cut = min_value(&larger, max_nodes);
    let children = union.child_index();

    let mut names: Vec<String> = vec!["total".into()];
    let mut name_ids: FastMap<String, i64> = FastMap::default();
    let mut name_id = |name: &str| -> i64 {
        if let Some(&id) = name_ids.get(name) {
            return id;
        }
        names.push(name.into());
        name_ids.insert(name.into(), names.len() as i64 - 1);
        names.len() as i64 - 1
    };

    /// A node to emit: a union node, or `None` for an `other` node.
    struct Emit {
        node: Option<u32>,
        total: [i64; 2],
        own: [i64; 2],
        x: [i64; 2],
    }
    let root = Emit { node: Some(0), total: [totals[0][0], totals[1][0]], own: [0, 0], x: [0, 0] };
    let mut level = vec![root];
    let mut levels = Vec::new();
    let mut max_self = 0;
    while !level.is_empty() {
        let mut values = Vec::with_capacity(level.len() * 7);
        let mut prev_end = [0i64; 2];
        let mut next = Vec::new();
        for e in &level {
            let name = match e.node {
                Some(0) => 0,
                Some(n) => name_id(union.name_of(n)),
                None => name_id("other"),
            };
            // [xL, totalL, selfL, xR, totalR, selfR] then the name.
            for (side, end) in prev_end.iter_mut().enumerate() {
                values.extend([e.x[side] - *end, e.total[side], e.own[side]]);
                *end = e.x[side] + e.total[side];
                max_self = max_self.max(e.own[side]);
            }
            values.push(name);
            let Some(node) = e.node else { continue };
            let mut kids: Vec<u32> = children.children(node).to_vec();
            kids.sort_unstable_by(|a, b| union.name_of(*a).as_bytes().cmp(union.name_of(*b).as_bytes()));
            let mut x = [e.x[0] + e.own[0], e.x[1] + e.own[1]];
            let mut other = [0i64; 2];
            for k in kids {
                let k_total = [totals[0][k as usize], totals[1][k as usize]];
                if larger[k as usize] < cut || union.name_of(k) == "other" {
                    other[0] += k_total[0];
                    other[1] += k_total[1];
                    continue;
                }
                let own = [selfs[0][k as usize], selfs[1][k as usize]];
                next.push(Emit { node: Some(k), total: k_total, own, x });
                x = [x[0] + k_total[0], x[1] + k_total[1]];
            }
            if other != [0, 0] {
                next.push(Emit { node: None, total: other, own: other, x });
            }
        }
        levels.push(Level { values });
        level = next;
    }
    let (left_ticks, right_ticks) = (totals[0][0], totals[1][0]);
    FlameGraphDiff { names, levels, total: left_ticks + right_ticks, max_self, left_ticks, right_ticks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    use crate::tree::tests::{pairs, tree};

    fn levels(fg: &FlameGraph) -> Vec<Vec<i64>> {
        fg.levels.iter().map(|l| l.values.clone()).collect()
    }

    /// Decodes a flame graph back into collapsed stacks (non-zero selfs): a
    /// node's parent is the node one level up whose span contains its x.
    fn decode(fg: &FlameGraph) -> Vec<(String, i64)> {
        // Per level: (x, total, self, name, path).
        let mut rows: Vec<Vec<(i64, i64, i64, String)>> = Vec::new();
        let mut out = Vec::new();
        for (depth, level) in fg.levels.iter().enumerate() {
            let mut row = Vec::new();
            let mut end = 0;
            for v in level.values.chunks_exact(4) {
                let x = end + v[0];
                end = x + v[1];
                let name = &fg.names[v[3] as usize];
                let path = if depth == 0 {
                    String::new()
                } else {
                    let parent = rows[depth - 1]
                        .iter()
                        .find(|(px, pt, ps, _)| x >= px + ps && x < px + pt)
                        .unwrap_or_else(|| panic!("no parent for x={x} at depth {depth}"));
                    if parent.3.is_empty() { name.clone() } else { alloc::format!("{};{}", parent.3, name) }
                };
                if depth > 0 && v[2] != 0 {
                    out.push((path.clone(), v[2]));
                }
                row.push((x, v[1], v[2], path));
            }
            rows.push(row);
        }
        out.sort_unstable();
        out
    }

    /// Small deterministic PRNG (xorshift64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn random_tree(seed: u64, stacks: usize, alphabet: &[&str]) -> StackTree {
        let mut rng = Rng(seed);
        let mut t = StackTree::new();
        for _ in 0..stacks {
            let depth = 1 + (rng.next() % 7) as usize;
            let stack: Vec<&str> =
                (0..depth).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect();
            t.insert(stack, (rng.next() % 50) as i64 + 1);
        }
        t
    }

    #[test]
    fn spec_worked_example() {
        let t = tree(&[("a;b", 3), ("a;c", 2), ("d", 5)]);
        let fg = flamegraph(&t, 8192);
        assert_eq!(fg.names, ["total", "d", "a", "c", "b"]);
        assert_eq!(levels(&fg), [vec![0, 10, 0, 0], vec![0, 5, 0, 2, 0, 5, 5, 1], vec![0, 3, 3, 4, 0, 2, 2, 3]]);
        assert_eq!(fg.total, 10);
        assert_eq!(fg.max_self, 5);
    }

    #[test]
    fn empty_tree() {
        let fg = flamegraph(&StackTree::new(), 8192);
        assert_eq!(fg.names, ["total"]);
        assert_eq!(levels(&fg), [vec![0, 0, 0, 0]]);
        assert_eq!((fg.total, fg.max_self), (0, 0));
        assert!(tree_bytes(&StackTree::new(), 8192).is_empty());
        assert!(parse_tree_bytes(&[]).unwrap().is_empty());
    }

    #[test]
    fn self_comes_before_children_and_gaps_are_deltas() {
        // a has self 4 and children b (3), c (2); x of b = 4, c = 7.
        let t = tree(&[("a", 4), ("a;c", 2), ("a;b", 3), ("e;f", 1)]);
        let fg = flamegraph(&t, 0);
        assert_eq!(fg.names, ["total", "e", "f", "a", "c", "b"]);
        assert_eq!(
            levels(&fg),
            [
                vec![0, 10, 0, 0],
                vec![0, 9, 4, 3, 0, 1, 0, 1],
                // b at x=4 (after a's self), c at 7, f at 9.
                vec![4, 3, 3, 5, 0, 2, 2, 4, 0, 1, 1, 2],
            ]
        );
        assert_eq!(fg.max_self, 4);
        assert_eq!(decode(&fg), t.collapsed());
    }

    #[test]
    fn truncation_sums_dropped_siblings_into_other() {
        // Node totals: a 10, a;x 6, a;y 3, a;z 1, b 2, b;w 2, c 1 → 7 nodes.
        let t = tree(&[("a;x", 6), ("a;y", 3), ("a;z", 1), ("b;w", 2), ("c", 1)]);
        assert_eq!(t.node_count(), 7);
        let totals = t.totals();
        // 3rd largest total is 3: a, x, y kept; b and c (3) and z (1) dropped.
        assert_eq!(min_value(&totals, 3), 3);
        assert_eq!(min_value(&totals, 7), 0);
        assert_eq!(min_value(&totals, 0), 0);
        let fg = flamegraph(&t, 3);
        assert_eq!(fg.total, 13);
        assert_eq!(decode(&fg), pairs(&[("a;other", 1), ("a;x", 6), ("a;y", 3), ("other", 3)]));
        assert_eq!(fg.names, ["total", "other", "a", "y", "x"]);
        assert_eq!(
            levels(&fg),
            [vec![0, 13, 0, 0], vec![0, 10, 0, 2, 0, 3, 3, 1], vec![0, 6, 6, 4, 0, 3, 3, 3, 0, 1, 1, 1],]
        );
        assert_eq!(fg.max_self, 6);
        // With ties at minVal every tied node stays.
        let ties = tree(&[("p", 1), ("q", 1), ("r", 1)]);
        assert_eq!(decode(&flamegraph(&ties, 2)), ties.collapsed());
    }

    #[test]
    fn existing_other_nodes_fold_into_the_synthetic_one() {
        let t = tree(&[("other;x", 4), ("other", 1), ("a", 2), ("a;other", 3)]);
        let fg = flamegraph(&t, 0);
        assert_eq!(decode(&fg), pairs(&[("a", 2), ("a;other", 3), ("other", 5)]));
        // "other" gets one slot in names, shared by every `other` node.
        assert_eq!(fg.names.iter().filter(|n| *n == "other").count(), 1);
        assert_eq!(fg.total, 10);
    }

    #[test]
    fn frame_named_total_shares_index_zero() {
        let t = tree(&[("total;a", 1), ("", 2)]);
        let fg = flamegraph(&t, 0);
        assert_eq!(fg.names, ["total", "a", ""]);
        assert_eq!(levels(&fg)[1], [0, 2, 2, 2, 0, 1, 0, 0]);
    }

    #[test]
    fn min_value_matches_sorting_all_totals() {
        for seed in 1..20u64 {
            let t = random_tree(seed * 7919, 300, &["a", "b", "c", "d", "e", "f"]);
            let totals = t.totals();
            let mut sorted: Vec<i64> = totals[1..].to_vec();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            for k in [1, 2, 5, 17, 100, sorted.len() - 1] {
                assert_eq!(min_value(&totals, k), sorted[k - 1], "seed {seed} k {k}");
            }
        }
    }

    #[test]
    fn min_value_over_wide_ranges_and_ties() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for round in 0..30 {
            let n = 50 + (rng.next() % 2000) as usize;
            // Totals from 0 to 2^62, many repeated, a few negative.
            let mut totals = vec![0i64];
            for _ in 0..n {
                let v = match rng.next() % 4 {
                    0 => (rng.next() >> (1 + rng.next() % 63)) as i64,
                    1 => 1_000_000 + (rng.next() % 3) as i64,
                    2 => (rng.next() % 300) as i64,
                    _ => (rng.next() % 5) as i64 - 2,
                };
                totals.push(v);
            }
            let mut sorted = totals[1..].to_vec();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            for k in [1, 2, n / 3, n / 2, n - 1] {
                assert_eq!(min_value(&totals, k), sorted[k - 1], "round {round} k {k}");
            }
        }
        assert_eq!(min_value(&[0, i64::MAX, i64::MAX - 1, 5], 2), i64::MAX - 1);
        assert_eq!(min_value(&[0], 1), 0);
        assert_eq!(min_value(&[], 1), 0);
    }

    #[test]
    fn flamegraph_is_the_truncated_tree() {
        for seed in 1..12u64 {
            let t = random_tree(seed * 104_729, 400, &["a", "b", "c", "d", "e", "f", "g"]);
            let fg = flamegraph(&t, 0);
            assert_eq!(decode(&fg), t.collapsed());
            assert_eq!(fg.total, t.total());
            let max_self = t.collapsed().iter().map(|(_, v)| *v).max().unwrap();
            assert_eq!(fg.max_self, max_self);
            for max_nodes in [1, 10, 50, 200] {
                let fg = flamegraph(&t, max_nodes);
                let cut = truncate(&t, max_nodes);
                assert_eq!(decode(&fg), cut.collapsed(), "seed {seed} max_nodes {max_nodes}");
                assert_eq!(fg.total, t.total());
                assert_eq!(cut.total(), t.total());
                assert_eq!(fg.levels[0].values[1], t.total());
            }
        }
    }

    #[test]
    fn tree_bytes_layout() {
        let t = tree(&[("a;b", 3), ("a;c", 2), ("d", 5)]);
        let bytes = tree_bytes(&t, 0);
        // Root, then children last-to-first: d, a, then a's children c, b.
        #[rustfmt::skip]
        let expected = [
            0, 0, 2,
            1, b'd', 5, 0,
            1, b'a', 0, 2,
            1, b'c', 2, 0,
            1, b'b', 3, 0,
        ];
        assert_eq!(bytes, expected);
        // Truncated to 1 node: minVal = 5, both a and d stay, a's children go.
        let bytes = tree_bytes(&t, 1);
        #[rustfmt::skip]
        let expected = [
            0, 0, 2,
            1, b'd', 5, 0,
            1, b'a', 0, 1,
            5, b'o', b't', b'h', b'e', b'r', 5, 0,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn tree_bytes_round_trip() {
        for seed in 1..10u64 {
            let t = random_tree(seed * 15_485_863, 300, &["a", "b", "c", "dd", "éé", ""]);
            let back = parse_tree_bytes(&tree_bytes(&t, 0)).unwrap();
            assert_eq!(back.collapsed(), t.collapsed());
            assert_eq!(back.node_count(), t.node_count());
            for max_nodes in [1, 7, 40] {
                let back = parse_tree_bytes(&tree_bytes(&t, max_nodes)).unwrap();
                assert_eq!(back.collapsed(), truncate(&t, max_nodes).collapsed());
                assert_eq!(back.total(), t.total());
            }
        }
        // Large values use multi-byte varints.
        let big = tree(&[("x;y", 1 << 40), ("x", 300)]);
        assert_eq!(parse_tree_bytes(&tree_bytes(&big, 0)).unwrap().collapsed(), big.collapsed());
    }

    #[test]
    fn tree_bytes_keeps_an_existing_other_and_adds_to_it() {
        // Totals: a 10, other 2, other;k 2, b 1, c 1 → max_nodes 2 → minVal 2.
        let t = tree(&[("a", 10), ("other;k", 2), ("b", 1), ("c", 1)]);
        let back = parse_tree_bytes(&tree_bytes(&t, 2)).unwrap();
        assert_eq!(back.collapsed(), pairs(&[("a", 10), ("other", 2), ("other;k", 2)]));
        assert_eq!(back.total(), t.total());
        // The flame graph folds it all into one `other` leaf instead.
        assert_eq!(decode(&flamegraph(&t, 2)), pairs(&[("a", 10), ("other", 4)]));
    }

    #[test]
    fn parse_merges_duplicate_siblings_and_ignores_root_and_trailing_bytes() {
        #[rustfmt::skip]
        let bytes = [
            4, b'r', b'o', b'o', b't', 9, 3, // root name and self are ignored
            1, b'a', 1, 0,
            1, b'b', 2, 1,
            1, b'c', 4, 0,
            1, b'a', 3, 0,
            0xde, 0xad, // trailing garbage
        ];
        let t = parse_tree_bytes(&bytes).unwrap();
        assert_eq!(t.collapsed(), pairs(&[("a", 4), ("b", 2), ("b;c", 4)]));
        assert_eq!(t.total(), 10);
    }

    #[test]
    fn parse_errors() {
        let good = tree_bytes(&tree(&[("a;b", 3), ("c", 1)]), 0);
        for cut in 1..good.len() {
            assert_eq!(parse_tree_bytes(&good[..cut]).unwrap_err(), TreeBytesError::UnexpectedEnd, "cut at {cut}");
        }
        // Name longer than the input.
        assert_eq!(parse_tree_bytes(&[0, 0, 1, 9, b'a']).unwrap_err(), TreeBytesError::UnexpectedEnd);
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(parse_tree_bytes(&overflow).unwrap_err(), TreeBytesError::VarintOverflow);
        let max = [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0];
        assert!(parse_tree_bytes(&max).unwrap().is_empty());
        // Limits.
        let long = tree_bytes(&tree(&[("abcdef", 1)]), 0);
        let limits = TreeLimits { max_name_len: 5, max_children: 10 };
        assert_eq!(
            parse_tree_bytes_with_limits(&long, limits).unwrap_err(),
            TreeBytesError::NameTooLong { len: 6, max: 5 }
        );
        let wide = tree_bytes(&tree(&[("a", 1), ("b", 1), ("c", 1)]), 0);
        let limits = TreeLimits { max_name_len: 5, max_children: 2 };
        assert_eq!(
            parse_tree_bytes_with_limits(&wide, limits).unwrap_err(),
            TreeBytesError::TooManyChildren { count: 3, max: 2 }
        );
        assert!(parse_tree_bytes_with_limits(&wide, TreeLimits::INGEST).is_ok());
        // Names that are not UTF-8 are kept lossily.
        let t = parse_tree_bytes(&[0, 0, 1, 2, 0xff, b'x', 1, 0]).unwrap();
        assert_eq!(t.collapsed(), pairs(&[("\u{fffd}x", 1)]));
    }

    #[test]
    fn deep_trees_need_no_recursion() {
        let depth = 20_000;
        let frames: Vec<String> = (0..depth).map(|i| alloc::format!("f{}", i % 3)).collect();
        let mut t = StackTree::new();
        t.insert(frames.iter().map(String::as_str), 7);
        t.insert(frames[..depth / 2].iter().map(String::as_str), 1);
        let fg = flamegraph(&t, 0);
        assert_eq!(fg.levels.len(), depth + 1);
        assert_eq!(fg.total, 8);
        let back = parse_tree_bytes(&tree_bytes(&t, 0)).unwrap();
        assert_eq!(back.collapsed(), t.collapsed());
        // minVal = 8 keeps the first half of the chain; the rest becomes `other`.
        assert_eq!(flamegraph(&t, 10).levels.len(), depth / 2 + 2);
    }

    #[test]
    fn aligned_sides_and_encoding() {
        let left = tree(&[("a;b", 3), ("a;c", 2)]);
        let right = tree(&[("a;b", 1), ("d", 4)]);
        let fg = flamegraph_diff(&left, &right, 100);
        assert_eq!((fg.left_ticks, fg.right_ticks, fg.total), (5, 5, 10));
        let name = |row: &[i64]| fg.names[row[6] as usize].as_str();
        assert_eq!(fg.levels[0].values, [0, 5, 0, 0, 5, 0, 0]);
        let level1: Vec<&[i64]> = fg.levels[1].values.chunks(7).collect();
        assert_eq!(level1.iter().map(|r| name(r)).collect::<Vec<_>>(), ["a", "d"]);
        assert_eq!(level1[0][..6], [0, 5, 0, 0, 1, 0]);
        assert_eq!(level1[1][..6], [0, 0, 0, 0, 4, 4], "d: absent on the left");
        let level2: Vec<&[i64]> = fg.levels[2].values.chunks(7).collect();
        assert_eq!(level2.iter().map(|r| name(r)).collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(level2[1][..6], [0, 2, 2, 0, 0, 0]);
        assert_eq!(fg.max_self, 4);
    }

    #[test]
    fn a_tree_against_itself_is_equal_on_both_sides() {
        let t = tree(&[("a;b", 3), ("a;c", 2), ("d", 5), ("d;e;f", 7)]);
        let fg = flamegraph_diff(&t, &t, 3);
        for level in &fg.levels {
            for row in level.values.chunks(7) {
                assert_eq!(row[..3], row[3..6]);
            }
        }
        assert_eq!(fg.levels[0].values[1], t.total(), "truncation keeps the total");
    }
}
