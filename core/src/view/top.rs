//! Per-function views of a merged tree: the top-functions table and the
//! sandwich (callers and callees of one function).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

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
/// (0 = all).
pub fn top(tree: &StackTree, limit: usize) -> Vec<TopRow> {
    let names = tree.names().len();
    let mut selfs = vec![0i64; names];
    let mut totals = vec![0i64; names];
    let node_totals = tree.totals();
    let parents = tree.parents();
    // A node whose name occurs among its ancestors is already counted there.
    let recursive = recursive_nodes(tree);
    for node in 1..parents.len() {
        let name = tree.name_id_of(node as u32) as usize;
        selfs[name] += tree.self_of(node as u32);
        if !recursive[node] {
            totals[name] += node_totals[node];
        }
    }
    let mut rows: Vec<TopRow> = (0..names)
        .filter(|&n| totals[n] != 0 || selfs[n] != 0)
        .map(|n| TopRow { name: tree.name(n as u32).into(), self_value: selfs[n], total: totals[n] })
        .collect();
    rows.sort_unstable_by(|a, b| b.self_value.cmp(&a.self_value).then(b.total.cmp(&a.total)).then(a.name.cmp(&b.name)));
    if limit != 0 {
        rows.truncate(limit);
    }
    rows
}

/// Per node id, whether an ancestor has the same name. One depth-first walk
/// keeping, per name, how many nodes of the current path carry it.
fn recursive_nodes(tree: &StackTree) -> Vec<bool> {
    let children = tree.child_index();
    let mut on_path = vec![0u32; tree.names().len()];
    let mut out = vec![false; tree.node_count() + 1];
    // (node, entering): a node is pushed again to be left after its subtree.
    let mut stack: Vec<(u32, bool)> = children.children(StackTree::ROOT).iter().map(|&c| (c, true)).collect();
    while let Some((node, entering)) = stack.pop() {
        let name = tree.name_id_of(node) as usize;
        if !entering {
            on_path[name] -= 1;
            continue;
        }
        out[node as usize] = on_path[name] > 0;
        on_path[name] += 1;
        stack.push((node, false));
        stack.extend(children.children(node).iter().map(|&c| (c, true)));
    }
    out
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
