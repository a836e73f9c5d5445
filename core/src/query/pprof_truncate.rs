//! `max_nodes` for a merged pprof, as Pyroscope cuts one: the stacks form a
//! tree of locations, nodes whose total is below the `max_nodes`-th largest
//! are cut, and a cut stack ends in a stub location whose function is
//! `other` (spec `query.md` §4.4, §5).

use alloc::vec;
use alloc::vec::Vec;

use crate::flamegraph::{OTHER, min_value};
use crate::pprof::{Function, Line, Location, Profile, Sample};
use crate::{FastMap, FastSet};

/// `profile` (one value per sample, as merges produce) with at most about
/// `max_nodes` location-tree nodes.
pub fn truncate_pprof(profile: Profile, max_nodes: usize) -> Profile {
    // The location prefix tree: node 0 is the root, parents precede children.
    let mut parents: Vec<u32> = vec![0];
    let mut ids: FastMap<(u32, u64), u32> = FastMap::default();
    let mut paths: Vec<Vec<u32>> = Vec::with_capacity(profile.sample.len());
    let mut totals: Vec<i64> = vec![0];
    for sample in &profile.sample {
        let value = sample.value.first().copied().unwrap_or(0);
        let mut node = 0u32;
        let mut path = Vec::with_capacity(sample.location_id.len());
        for &loc in sample.location_id.iter().rev() {
            node = *ids.entry((node, loc)).or_insert_with(|| {
                parents.push(node);
                totals.push(0);
                parents.len() as u32 - 1
            });
            path.push(node);
        }
        totals[node as usize] += value;
        paths.push(path);
    }
    for n in (1..totals.len()).rev() {
        totals[parents[n] as usize] += totals[n];
    }
    let cut = min_value(&totals, max_nodes);
    if cut == 0 {
        return profile;
    }

    let other_location = profile.location.iter().map(|l| l.id).max().unwrap_or(0) + 1;
    let mut samples: FastMap<Vec<u64>, i64> = FastMap::default();
    let mut truncated = false;
    for (sample, path) in profile.sample.iter().zip(&paths) {
        let kept = path.iter().take_while(|&&n| totals[n as usize] >= cut).count();
        let root_first = sample.location_id.iter().rev();
        let mut stack: Vec<u64> = root_first.take(kept).copied().collect();
        if kept < path.len() {
            stack.push(other_location);
            truncated = true;
        }
        stack.reverse();
        *samples.entry(stack).or_default() += sample.value.first().copied().unwrap_or(0);
    }

    let used: FastSet<u64> = samples.keys().flatten().copied().collect();
    let mut out = Profile { sample: Vec::new(), ..profile };
    out.location.retain(|l| used.contains(&l.id));
    if truncated {
        let name = match out.string_table.iter().position(|s| s == OTHER) {
            Some(i) => i as i64,
            None => {
                out.string_table.push(OTHER.into());
                out.string_table.len() as i64 - 1
            }
        };
        let function_id = out.function.iter().map(|f| f.id).max().unwrap_or(0) + 1;
        out.function.push(Function { id: function_id, name, system_name: name, ..Default::default() });
        out.location.push(Location {
            id: other_location,
            line: vec![Line { function_id, line: 0 }],
            ..Default::default()
        });
    }
    out.sample = samples
        .into_iter()
        .map(|(location_id, value)| Sample { location_id, value: vec![value], label: vec![] })
        .collect();
    out.sample.sort_unstable_by(|a, b| a.location_id.cmp(&b.location_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::collapsed;
    use crate::pprof::tests::profile_of;

    #[test]
    fn cuts_small_subtrees_into_other() {
        let p = profile_of(&[("a;b", 10), ("a;c", 1), ("d", 5)]);
        let t = truncate_pprof(p.clone(), 3);
        assert_eq!(collapsed(&t, 0), [("a;b".into(), 10), ("a;other".into(), 1), ("d".into(), 5)]);
        assert!(t.location.iter().all(|l| l.id != 3), "c is no longer referenced");
        assert_eq!(truncate_pprof(p.clone(), 100), p, "small enough: unchanged");
        assert_eq!(collapsed(&truncate_pprof(p, 1), 0), [("a;other".into(), 11), ("other".into(), 5)]);
    }
}
