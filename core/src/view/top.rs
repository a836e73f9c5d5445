//! Per-function views: the top-functions table (from the stacks) and the
//! sandwich (callers and callees of one function, from a merged tree).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::graph::{Part, names_of};
use crate::error::Result;
use crate::tree::StackTree;

/// One function of the top table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopRow {
    pub name: String,
    /// Value of the stacks that end in the function.
    pub self_value: i64,
    /// Value of the stacks that contain the function (once per stack, however
    /// often it recurs).
    pub total: i64,
}

/// Functions by self value (largest first, then by name), at most `limit`
/// (0 = all). One pass over the stacks: no tree is needed.
pub fn top(parts: &[Part<'_>], limit: usize) -> Result<Vec<TopRow>> {
    let (names, maps) = names_of(parts);
    let mut selfs = vec![0i64; names.len()];
    let mut totals = vec![0i64; names.len()];
    // The last stack that counted each name: a recursive function counts
    // once per stack.
    let mut counted = vec![u32::MAX; names.len()];
    let mut stack_id = 0u32;
    for (part, map) in parts.iter().zip(&maps) {
        let stacks = part.stacks;
        for s in 0..stacks.count() {
            let value = stacks.value(s, part.column);
            let mut leaf = None;
            let mut cursor = stacks.cursor(s);
            while let Some(local) = stacks.next(&mut cursor) {
                let name = map[local as usize] as usize;
                if counted[name] != stack_id {
                    counted[name] = stack_id;
                    totals[name] += value;
                }
                leaf = Some(name);
            }
            if let Some(leaf) = leaf {
                selfs[leaf] += value;
            }
            stack_id = stack_id.wrapping_add(1);
            if stack_id == u32::MAX {
                counted.fill(u32::MAX);
                stack_id = 0;
            }
        }
    }
    let mut rows: Vec<TopRow> = names
        .into_iter()
        .enumerate()
        .filter(|&(n, _)| totals[n] != 0 || selfs[n] != 0)
        .map(|(n, name)| TopRow { name, self_value: selfs[n], total: totals[n] })
        .collect();
    rows.sort_unstable_by(|a, b| b.self_value.cmp(&a.self_value).then(b.total.cmp(&a.total)).then(a.name.cmp(&b.name)));
    if limit != 0 {
        rows.truncate(limit);
    }
    Ok(rows)
}

/// The sandwich of function `name`: `(callers, callees)`.
///
/// Callees: the subtrees under the root-most occurrence of the function on
/// each stack, merged under one `name` node. Callers: each stack through the
/// function, cut at its leaf-most occurrence and reversed, so the function is
/// the top frame and its callers hang below it. Both totals are the
/// function's total.
pub fn sandwich(tree: &StackTree, name: &str) -> (StackTree, StackTree) {
    let mut callers = StackTree::new();
    let mut callees = StackTree::new();
    let Some(target) = tree.lookup_name(name) else { return (callers, callees) };
    let parents = tree.parents();
    const NONE: u32 = u32::MAX;
    // Per node: the callee-tree node it maps to (NONE outside the function),
    // and the leaf-most occurrence of the function on its path.
    let mut callee_node = vec![NONE; parents.len()];
    let mut nearest = vec![NONE; parents.len()];
    // Value of the stacks whose leaf-most occurrence is the node.
    let mut through = vec![0i64; parents.len()];
    let callee_root = callees.intern(name);
    let callee_root = callees.child(StackTree::ROOT, callee_root);
    for node in 1..parents.len() {
        let parent = parents[node] as usize;
        let is_target = tree.name_id_of(node as u32) == target;
        callee_node[node] = match callee_node[parent] {
            NONE if is_target => callee_root,
            NONE => NONE,
            above => {
                let id = callees.intern(tree.name_of(node as u32));
                callees.child(above, id)
            }
        };
        nearest[node] = if is_target { node as u32 } else { nearest[parent] };
        let value = tree.self_of(node as u32);
        if value != 0 && callee_node[node] != NONE {
            callees.add_self(callee_node[node], value);
            through[nearest[node] as usize] += value;
        }
    }
    for (occurrence, &value) in through.iter().enumerate().filter(|(_, v)| **v != 0) {
        let mut inverted = StackTree::ROOT;
        let mut node = occurrence as u32;
        while node != StackTree::ROOT {
            let id = callers.intern(tree.name_of(node));
            inverted = callers.child(inverted, id);
            node = tree.parent(node);
        }
        callers.add_self(inverted, value);
    }
    (callers, callees)
}
