//! The top-functions table: per function, the value of the stacks that end
//! in it and of those that contain it.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::graph::{Part, names_of};
use crate::error::Result;

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
    // The last stack (numbered from 1) that counted each name: a recursive
    // function counts once per stack.
    let mut counted = vec![0u64; names.len()];
    let mut stack_id = 0u64;
    for (part, map) in parts.iter().zip(&maps) {
        let stacks = part.stacks;
        for s in 0..stacks.count() {
            let value = stacks.value(s, part.column);
            stack_id += 1;
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
