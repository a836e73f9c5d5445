//! The flame graph of many stacks without their whole tree. A large
//! profile's tree costs many times the file, yet a flame graph keeps only
//! the `max_nodes` largest nodes (and ties): the cut of
//! [`crate::flamegraph::flamegraph`]. Since a node's total is at most its
//! parent's, merging nodes best-first, largest total first, meets them in
//! that order: once `max_nodes` are merged, the last one's total is the cut,
//! and merging stops at the first node below it.
//!
//! A node is a range of the stacks that share its path, each with a cursor
//! just past it; merging a node moves every cursor one frame leafward and
//! partitions the range by the frame's name into the children. The work is
//! the kept nodes' stack counts, not the profile's frames. The diff (two
//! sides, cut by the larger total) and the sandwich (stacks read from an
//! occurrence of a function, either way) are merged the same way.

use alloc::collections::BinaryHeap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;

use super::load::out_of_memory;
use super::stacks::{Cursor, Stacks, Way};
use crate::FastMap;
use crate::error::Result;
use crate::flamegraph::OTHER;
use crate::tree::StackTree;

/// One column of one set of stacks: a profile type of a file.
#[derive(Clone, Copy)]
pub struct Part<'a> {
    pub stacks: &'a Stacks,
    pub column: usize,
}

/// The names of several parts under one id space.
pub struct Names<'a> {
    pub names: Vec<&'a str>,
    /// Per part, its name ids in `names`.
    pub maps: Vec<Vec<u32>>,
}

impl<'a> Names<'a> {
    pub fn new(parts: &[Part<'a>]) -> Self {
        let mut ids: FastMap<&'a str, u32> = FastMap::default();
        let mut names = Vec::new();
        let maps = parts
            .iter()
            .map(|p| {
                p.stacks
                    .names()
                    .iter()
                    .map(|n| {
                        *ids.entry(n.as_str()).or_insert_with(|| {
                            names.push(n.as_str());
                            names.len() as u32 - 1
                        })
                    })
                    .collect()
            })
            .collect();
        Names { names, maps }
    }
}

/// The nodes of the merge of `parts` that survive the cut to `max_nodes`,
/// each kept node's other children summed into one child named `other`:
/// `flamegraph(&tree, 0)` of it is `flamegraph(&merged, max_nodes)`.
pub fn truncated_tree(parts: &[Part<'_>], max_nodes: usize) -> Result<StackTree> {
    let [tree, _] = cut_trees([parts, &[]], Start::Root, max_nodes)?;
    Ok(tree)
}

/// The sandwich of function `name`, cut as [`truncated_tree`]: `(callers,
/// callees)`. Callees: the stacks through the function from its root-most
/// occurrence on, under one `name` node. Callers: the same stacks from its
/// leaf-most occurrence rootward, so the function is the top frame and its
/// callers hang below it. Both totals are the function's total.
pub fn sandwich_trees(parts: &[Part<'_>], name: &str, max_nodes: usize) -> Result<(StackTree, StackTree)> {
    let [callers, _] = cut_trees([parts, &[]], Start::Callers(name), max_nodes)?;
    let [callees, _] = cut_trees([parts, &[]], Start::Callees(name), max_nodes)?;
    Ok((callers, callees))
}

/// [`truncated_tree`] of two merges at once, cut as a diff flame graph cuts
/// them (by the larger of a node's two totals): `flamegraph_diff(&l, &r, 0)`
/// of them is `flamegraph_diff(&left, &right, max_nodes)`.
pub fn truncated_trees(left: &[Part<'_>], right: &[Part<'_>], max_nodes: usize) -> Result<[StackTree; 2]> {
    cut_trees([left, right], Start::Root, max_nodes)
}

/// Where the merged stacks start.
#[derive(Clone, Copy)]
enum Start<'n> {
    /// At their roots.
    Root,
    /// At the root-most occurrence of a function, read leafward.
    Callees(&'n str),
    /// At the leaf-most occurrence of a function, read rootward.
    Callers(&'n str),
}

fn cut_trees(sides: [&[Part<'_>]; 2], start: Start<'_>, max_nodes: usize) -> Result<[StackTree; 2]> {
    let parts: Vec<Part<'_>> = sides.iter().flat_map(|s| s.iter().copied()).collect();
    let names = Names::new(&parts);
    let mut m = Members::new(&parts, sides[0].len(), &names, start)?;
    let other = names.names.iter().position(|&n| n == OTHER).map(|i| i as u32);

    // The kept nodes, as [`StackTree::with_nodes`] takes them (self values
    // per side).
    let mut shape = StackTree::new();
    let mut tree_names = vec![UNSET; names.names.len()];
    let (mut parents, mut node_names, mut selfs) = (vec![StackTree::ROOT], vec![u32::MAX], vec![[0i64; 2]]);
    // Per kept node: its totals, and the totals of its kept children.
    let (mut totals, mut kept) = (vec![[0i64; 2]], vec![[0i64; 2]]);

    let mut pending = Vec::new();
    let mut heap = BinaryHeap::new();
    let mut floor = Floor::new(max_nodes);
    let mut children = Vec::new();
    // The root: stacks that end there have no frame and count for nothing.
    m.expand(0, m.len(), &mut children);
    for c in children.drain(..) {
        add(&mut totals[0], c.total);
        if floor.admits(c.larger()) {
            heap.push((c.larger(), Reverse(pending.len() as u32)));
            pending.push(Node { child: c, parent: StackTree::ROOT });
        }
    }
    let (mut merged, mut cut) = (0usize, i64::MIN);
    while let Some(&(larger, Reverse(index))) = heap.peek() {
        if merged >= max_nodes && larger < cut {
            break;
        }
        heap.pop();
        merged += 1;
        if merged == max_nodes {
            cut = larger;
        }
        let Node { child, parent } = pending[index as usize];
        let self_values = m.expand(child.start, child.end, &mut children);
        // A frame called `other` goes with the cut ones, as in the flame
        // graph; it and its subtree still count toward the cut.
        let node = if parent == HIDDEN || Some(child.name) == other {
            HIDDEN
        } else {
            let slot = &mut tree_names[child.name as usize];
            if *slot == UNSET {
                *slot = shape.intern(names.names[child.name as usize]);
            }
            add(&mut kept[parent as usize], child.total);
            parents.push(parent);
            node_names.push(*slot);
            selfs.push(self_values);
            totals.push(child.total);
            kept.push([0; 2]);
            parents.len() as u32 - 1
        };
        for c in children.drain(..) {
            if floor.admits(c.larger()) {
                heap.push((c.larger(), Reverse(pending.len() as u32)));
                pending.push(Node { child: c, parent: node });
            }
        }
    }
    drop((m, pending, heap, floor));

    let other = shape.intern(OTHER);
    Ok([0, 1].map(|side| {
        let (mut parents, mut node_names) = (parents.clone(), node_names.clone());
        let mut side_selfs: Vec<i64> = selfs.iter().map(|s| s[side]).collect();
        for node in 0..totals.len() {
            let cut = totals[node][side] - selfs[node][side] - kept[node][side];
            if cut != 0 {
                parents.push(node as u32);
                node_names.push(other);
                side_selfs.push(cut);
            }
        }
        shape.clone().with_nodes(parents, node_names, side_selfs)
    }))
}

fn add(to: &mut [i64; 2], values: [i64; 2]) {
    to[0] += values[0];
    to[1] += values[1];
}

/// A lower bound of the cut: the `max_nodes`-th largest total of the nodes
/// found so far (all nodes include them). A node below it can never be
/// kept: it is not queued, and counts only in its parent's `other`.
struct Floor {
    /// The `max_nodes` largest totals found, smallest on top.
    largest: BinaryHeap<Reverse<i64>>,
    max_nodes: usize,
}

impl Floor {
    fn new(max_nodes: usize) -> Self {
        Floor { largest: BinaryHeap::new(), max_nodes }
    }

    /// Counts a node found; false if it can be left out.
    fn admits(&mut self, total: i64) -> bool {
        if self.largest.len() < self.max_nodes {
            self.largest.push(Reverse(total));
            return true;
        }
        let Some(mut smallest) = self.largest.peek_mut() else { return true };
        if total > smallest.0 {
            *smallest = Reverse(total);
            return true;
        }
        total == smallest.0
    }
}

const UNSET: u32 = u32::MAX;
/// The parent of nodes that are merged for the cut but not kept.
const HIDDEN: u32 = u32::MAX;
/// The key of a stack that ends at the node being merged.
const END: u32 = u32::MAX;

/// A node found by merging its parent.
#[derive(Clone, Copy)]
struct Child {
    /// Name id in [`Names`].
    name: u32,
    /// Per side.
    total: [i64; 2],
    /// Its stacks in [`Members::order`].
    start: u32,
    end: u32,
}

impl Child {
    /// What the cut compares.
    fn larger(&self) -> i64 {
        self.total[0].max(self.total[1])
    }
}

#[derive(Clone, Copy)]
struct Node {
    child: Child,
    /// Kept node id, or `HIDDEN`.
    parent: u32,
}

/// Every stack of the parts, with its cursor and value.
struct Members<'a> {
    parts: &'a [Part<'a>],
    /// Parts before this one are the left side's.
    right_from: usize,
    way: Way,
    maps: &'a [Vec<u32>],
    part_of: Vec<u32>,
    cursors: Vec<Cursor>,
    values: Vec<i64>,
    /// Stack indexes, each node's stacks contiguous.
    order: Vec<u32>,
    /// Per position of `order`, scratch for partitions.
    keys: Vec<u32>,
    scratch: Vec<u32>,
    /// Children of the node being merged: per name, its index in `slots`.
    slot_of: FastMap<u32, u32>,
    slots: Vec<Child>,
}

impl<'a> Members<'a> {
    fn new(parts: &'a [Part<'a>], right_from: usize, names: &'a Names<'_>, start: Start<'_>) -> Result<Self> {
        let n: usize = parts.iter().map(|p| p.stacks.count()).sum();
        let way = if matches!(start, Start::Callers(_)) { Way::Rootward } else { Way::Leafward };
        let mut m = Members {
            parts,
            right_from,
            way,
            maps: &names.maps,
            part_of: Vec::new(),
            cursors: Vec::new(),
            values: Vec::new(),
            order: Vec::new(),
            keys: Vec::new(),
            scratch: Vec::new(),
            slot_of: FastMap::default(),
            slots: Vec::new(),
        };
        let ok = m.part_of.try_reserve_exact(n).is_ok()
            && m.cursors.try_reserve_exact(n).is_ok()
            && m.values.try_reserve_exact(n).is_ok();
        if !ok || u32::try_from(n).is_err() {
            return Err(out_of_memory());
        }
        for (i, p) in parts.iter().enumerate() {
            let stacks = p.stacks;
            let target = match start {
                Start::Root => None,
                Start::Callees(name) | Start::Callers(name) => match stacks.names().iter().position(|n| n == name) {
                    Some(id) => Some(id as u32),
                    None => continue,
                },
            };
            for s in 0..stacks.count() {
                let value = stacks.value(s, p.column);
                let cursor = match target {
                    None => stacks.cursor(s),
                    Some(target) if value != 0 => {
                        let Some(at) = occurrence(stacks, s, way, target) else { continue };
                        at
                    }
                    Some(_) => continue,
                };
                m.part_of.push(i as u32);
                m.cursors.push(cursor);
                m.values.push(value);
            }
        }
        let n = m.cursors.len();
        let ok = m.order.try_reserve_exact(n).is_ok()
            && m.keys.try_reserve_exact(n).is_ok()
            && m.scratch.try_reserve_exact(n).is_ok();
        if !ok {
            return Err(out_of_memory());
        }
        m.order.extend(0..n as u32);
        m.keys.resize(n, 0);
        m.scratch.resize(n, 0);
        Ok(m)
    }

    fn len(&self) -> u32 {
        self.order.len() as u32
    }

    /// Merges the node whose stacks are `order[start..end]`: moves each
    /// cursor one frame on, regroups the range by that frame (the stacks
    /// that end here first) and gives the children. Returns the self values.
    fn expand(&mut self, start: u32, end: u32, children: &mut Vec<Child>) -> [i64; 2] {
        let (start, end) = (start as usize, end as usize);
        self.slot_of.clear();
        self.slots.clear();
        let (mut self_values, mut ended) = ([0i64; 2], 0u32);
        let (mut last_name, mut last_slot) = (END, 0u32);
        for i in start..end {
            let member = self.order[i] as usize;
            let part = self.part_of[member] as usize;
            let value = self.values[member];
            let side = usize::from(part >= self.right_from);
            let Some(local) = self.parts[part].stacks.step(&mut self.cursors[member], self.way) else {
                self.keys[i] = END;
                self_values[side] += value;
                ended += 1;
                continue;
            };
            let name = self.maps[part][local as usize];
            if name != last_name {
                last_name = name;
                let next = self.slots.len() as u32;
                last_slot = *self.slot_of.entry(name).or_insert(next);
                if last_slot == next {
                    self.slots.push(Child { name, total: [0; 2], start: 0, end: 0 });
                }
            }
            self.keys[i] = last_slot;
            let slot = &mut self.slots[last_slot as usize];
            slot.total[side] += value;
            slot.end += 1;
        }
        // Each slot's range: the ended stacks first, then the slots in order.
        let mut at = (start as u32) + ended;
        for slot in &mut self.slots {
            let count = slot.end;
            slot.start = at;
            slot.end = at;
            at += count;
        }
        if self.slots.len() > 1 || ended > 0 {
            let mut ended_at = start;
            for i in start..end {
                let member = self.order[i];
                let dest = match self.keys[i] {
                    END => {
                        ended_at += 1;
                        ended_at - 1
                    }
                    slot => {
                        let slot = &mut self.slots[slot as usize];
                        slot.end += 1;
                        slot.end as usize - 1
                    }
                };
                self.scratch[dest] = member;
            }
            self.order[start..end].copy_from_slice(&self.scratch[start..end]);
        } else if let Some(slot) = self.slots.first_mut() {
            slot.end = end as u32;
        }
        children.extend_from_slice(&self.slots);
        self_values
    }
}

/// A cursor just before the first frame called `target` met going `way`
/// from the stack's end, if there is one.
fn occurrence(stacks: &Stacks, stack: usize, way: Way, target: u32) -> Option<Cursor> {
    let mut c = if way == Way::Leafward { stacks.cursor(stack) } else { stacks.leaf_cursor(stack) };
    loop {
        let before = c;
        if stacks.step(&mut c, way)? == target {
            return Some(before);
        }
    }
}

/// The names of `parts` merged, for callers that fold stacks themselves.
pub fn names_of<'a>(parts: &[Part<'a>]) -> (Vec<String>, Vec<Vec<u32>>) {
    let names = Names::new(parts);
    (names.names.iter().map(|&n| String::from(n)).collect(), names.maps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flamegraph::{flamegraph, flamegraph_diff};
    use crate::view::stacks::StacksBuilder;

    /// Stacks of one column from `(root-first frames, value)`.
    fn stacks(samples: &[(&str, i64)]) -> Stacks {
        let mut names: Vec<&str> = samples.iter().flat_map(|(s, _)| s.split(';')).collect();
        names.sort_unstable();
        names.dedup();
        let mut b = StacksBuilder::new(1, 1..=names.len() as u64);
        for n in &names {
            let id = b.intern(n);
            b.location([id]);
        }
        for (stack, value) in samples {
            let ids: Vec<u64> =
                stack.split(';').rev().map(|f| names.iter().position(|n| n == &f).unwrap() as u64 + 1).collect();
            b.push_ids(0, &ids, [*value]).unwrap();
        }
        b.finish(Vec::new()).unwrap()
    }

    fn full_tree(parts: &[(&str, i64)]) -> StackTree {
        let mut t = StackTree::new();
        for (s, v) in parts {
            t.insert(s.split(';'), *v);
        }
        t
    }

    #[test]
    fn the_cut_tree_draws_the_flame_graph_of_the_whole_tree() {
        let a = [("a;b;c", 5), ("a;b;d", 3), ("a;e", 1), ("f;g", 4), ("f;other;x", 2), ("a", 2), ("h", 1)];
        let b = [("a;b;c", 1), ("f;g;z", 6), ("i;j;k", 1), ("a;e", 1)];
        let (sa, sb) = (stacks(&a), stacks(&b));
        let parts = [Part { stacks: &sa, column: 0 }, Part { stacks: &sb, column: 0 }];
        let all: Vec<(&str, i64)> = a.iter().chain(&b).copied().collect();
        for max_nodes in [1, 2, 3, 4, 5, 7, 10, 100] {
            let cut = truncated_tree(&parts, max_nodes).unwrap();
            assert_eq!(flamegraph(&cut, 0), flamegraph(&full_tree(&all), max_nodes), "max_nodes {max_nodes}");
            let [l, r] = truncated_trees(&parts[..1], &parts[1..], max_nodes).unwrap();
            let whole = flamegraph_diff(&full_tree(&a), &full_tree(&b), max_nodes);
            assert_eq!(flamegraph_diff(&l, &r, 0), whole, "diff, max_nodes {max_nodes}");
        }
    }
}
