//! Diff: two selections merged side by side into Pyroscope's diff flame graph
//! (7 integers per node: left x delta, total, self; right x delta, total,
//! self; name index).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{DiffRequest, DiffResponse, FlameGraphDiff, Level, SelectMergeStacktracesRequest};

use super::Context;
use super::merge::{max_nodes, merge};
use crate::FastMap;
use crate::error::{Error, Result};
use crate::flamegraph::min_value;
use crate::kv::KvStore;
use crate::tree::StackTree;

pub fn diff<S: KvStore + ?Sized>(cx: &Context<'_, S>, req: &DiffRequest) -> Result<DiffResponse> {
    let side = |r: &Option<SelectMergeStacktracesRequest>, which: &str| {
        r.clone().ok_or_else(|| Error::invalid(alloc::format!("{which} profile is required")))
    };
    let (left, right) = (side(&req.left, "left")?, side(&req.right, "right")?);
    let limit = max_nodes(left.max_nodes.max(right.max_nodes), cx.limits)?;
    // Any failure of either side is the client's: Pyroscope answers 400.
    let as_invalid = |e: Error| match e {
        Error::Store(_) | Error::Corrupt(_) => e,
        other => Error::InvalidArgument(alloc::format!("{other}")),
    };
    let left = merge(cx, &left).map_err(as_invalid)?;
    let right = merge(cx, &right).map_err(as_invalid)?;
    Ok(DiffResponse { flamegraph: Some(encode(&left, &right, limit)) })
}

/// Aligns both trees by name path under one root and encodes them with the
/// same `max_nodes` cut as a flame graph, applied to `max(left, right)`.
fn encode(left: &StackTree, right: &StackTree, max_nodes: usize) -> FlameGraphDiff {
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
    use crate::tree::tests::tree;

    #[test]
    fn aligned_sides_and_encoding() {
        let left = tree(&[("a;b", 3), ("a;c", 2)]);
        let right = tree(&[("a;b", 1), ("d", 4)]);
        let fg = encode(&left, &right, 100);
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
        let fg = encode(&t, &t, 3);
        for level in &fg.levels {
            for row in level.values.chunks(7) {
                assert_eq!(row[..3], row[3..6]);
            }
        }
        assert_eq!(fg.levels[0].values[1], t.total(), "truncation keeps the total");
    }
}
