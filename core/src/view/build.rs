//! Samples into per-profile-type [`StackTree`]s, following the server's
//! ingest rules so that a file viewed offline shows what the server would
//! store: samples with a negative or no non-zero value are dropped, stacks
//! deeper than the depth limit keep their root-most frames, long names keep
//! their tail, and a sample type with no non-zero value has no tree.

use alloc::vec;
use alloc::vec::Vec;

use super::TypeTree;
use crate::pprof::Limits;
use crate::profile_type::ProfileType;
use crate::tree::StackTree;

/// The server's limits that shape what is stored (depth, name length).
/// Counts and sizes are not limited offline: a viewer opens what it is given.
pub(super) fn limits() -> Limits {
    Limits { max_profile_size: usize::MAX, max_samples: usize::MAX, max_sample_labels: usize::MAX, ..Limits::default() }
}

/// The nodes of every kept sample's stack, with one column of self values per
/// sample type. All types share the nodes, as the server's series of one
/// profile share its name tree.
pub struct TreesBuilder {
    pub shape: StackTree,
    columns: Vec<Vec<i64>>,
}

impl TreesBuilder {
    pub fn new(types: usize) -> Self {
        Self { shape: StackTree::new(), columns: vec![vec![0]; types] }
    }

    /// Adds the values of one sample ending at `node` (of [`Self::shape`]).
    /// Samples [`crate::ingest::is_dropped`] must not get here: their stacks make no nodes.
    #[inline]
    pub fn add(&mut self, node: u32, values: &[i64]) {
        let len = self.shape.node_count() + 1;
        for (column, &v) in self.columns.iter_mut().zip(values) {
            if column.len() < len {
                column.resize(len, 0);
            }
            column[node as usize] += v;
        }
    }

    /// One tree per type with a non-zero value, added to `out` (merged into a
    /// tree of the same type already there).
    pub fn finish(mut self, types: Vec<ProfileType>, out: &mut Vec<TypeTree>) {
        // Each type's tree copies the shape: without its child map.
        self.shape.compact();
        let len = self.shape.node_count() + 1;
        for (mut column, profile_type) in self.columns.into_iter().zip(types) {
            column.resize(len, 0);
            // Stacks without a frame have no place in a flame graph.
            column[StackTree::ROOT as usize] = 0;
            if column.iter().all(|&v| v == 0) {
                continue;
            }
            let tree = self.shape.with_self_values(column);
            match out.iter_mut().find(|t| t.profile_type == profile_type) {
                Some(existing) => {
                    existing.tree.merge(&tree);
                    existing.tree.compact();
                }
                None => out.push(TypeTree { profile_type, tree }),
            }
        }
    }
}
