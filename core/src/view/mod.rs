//! The in-browser views: profile files parsed into their stacks (see
//! [`stacks`]), merged on demand and answered in the shapes of the server's
//! query API, so the offline viewer and the server's UI draw the same JSON.
//!
//! A file is parsed once. A pprof keeps its bytes, which hold its stacks as
//! compactly as anything built from them; other formats are converted.
//! Profile type ids are the ones the server would give the same file on
//! `/ingest` with default parameters (see [`crate::legacy::offline`]).

mod build;
mod export;
mod graph;
mod load;
mod stacks;
mod stream;
#[cfg(test)]
mod tests;
mod top;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{FlameGraph, FlameGraphDiff};

use crate::error::{Error, Result};
use crate::flamegraph::{flamegraph, flamegraph_diff};
use crate::profile_type::ProfileType;
use crate::tree::StackTree;
use build::TreeBuilder;
use graph::{Part, sandwich_trees, truncated_tree, truncated_trees};
pub use stacks::Stacks;

pub use load::{load, load_decoded_pprof};
pub use top::TopRow;

/// Flame graph nodes when the caller asks for 0 (the server's default
/// `max-flamegraph-nodes-default`).
pub const DEFAULT_MAX_NODES: usize = 8192;

/// A file's format, detected from its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pprof,
    Jfr,
    Folded,
    Speedscope,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pprof => "pprof",
            Format::Jfr => "jfr",
            Format::Folded => "folded",
            Format::Speedscope => "speedscope",
        }
    }
}

/// A profile type of a file, and where its values are.
#[derive(Clone, Debug)]
pub struct FileType {
    pub profile_type: ProfileType,
    /// (index in [`Loaded::stacks`], column) of each set holding the type.
    parts: Vec<(usize, usize)>,
    /// The sum of its values.
    pub total: i64,
    /// Stacks in the sets that hold it.
    pub stacks: usize,
}

/// What a file holds once parsed.
#[derive(Debug)]
pub struct Loaded {
    pub format: Format,
    /// One set per profile in the file (JFR recordings hold several).
    pub stacks: Vec<Stacks>,
    /// In the order the file declares them.
    pub types: Vec<FileType>,
}

impl Loaded {
    /// Adds a set of stacks and the profile types of its columns; a type
    /// with no non-zero value is left out (and a set without any such type),
    /// one seen before is merged.
    fn add(&mut self, stacks: Stacks, types: Vec<ProfileType>) {
        let set = self.stacks.len();
        let mut used = false;
        for (column, profile_type) in types.into_iter().enumerate() {
            let total = stacks.total(column);
            if total == 0 {
                continue;
            }
            let ty = match self.types.iter_mut().position(|t| t.profile_type == profile_type) {
                Some(i) => &mut self.types[i],
                None => {
                    self.types.push(FileType { profile_type, parts: Vec::new(), total: 0, stacks: 0 });
                    self.types.last_mut().expect("just pushed")
                }
            };
            ty.parts.push((set, column));
            ty.total += total;
            ty.stacks += stacks.count();
            used = true;
        }
        if used {
            self.stacks.push(stacks);
        }
    }

    fn parts<'a>(&'a self, type_id: &str, out: &mut Vec<Part<'a>>) {
        for t in self.types.iter().filter(|t| t.profile_type.id() == type_id) {
            out.extend(t.parts.iter().map(|&(set, column)| Part { stacks: &self.stacks[set], column }));
        }
    }

    /// The whole tree of one type (empty when the file has no such type).
    pub fn tree(&self, type_id: &str) -> Result<StackTree> {
        let mut parts = Vec::new();
        self.parts(type_id, &mut parts);
        TreeBuilder::of(&parts)
    }
}

/// A loaded file.
#[derive(Debug)]
pub struct File {
    pub id: u32,
    pub name: String,
    pub loaded: Loaded,
}

/// The files loaded in one page, and the queries over them.
#[derive(Debug, Default)]
pub struct Workspace {
    files: Vec<File>,
    last_id: u32,
}

impl Workspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `bytes` (consumed: they are freed before this returns) as a new
    /// file. `progress(done, total)` is called as the parse advances.
    pub fn load(&mut self, name: &str, bytes: Vec<u8>, progress: &mut dyn FnMut(u64, u64)) -> Result<&File> {
        let loaded = load(bytes, progress)?;
        self.last_id += 1;
        self.files.push(File { id: self.last_id, name: name.into(), loaded });
        Ok(self.files.last().expect("just pushed"))
    }

    /// Forgets a file; false if there was none with this id.
    pub fn remove(&mut self, id: u32) -> bool {
        let before = self.files.len();
        self.files.retain(|f| f.id != id);
        self.files.len() != before
    }

    pub fn files(&self) -> &[File] {
        &self.files
    }

    /// Profile type `type_id` of the files `ids` (files without that type
    /// add nothing).
    fn parts(&self, ids: &[u32], type_id: &str) -> Result<Vec<Part<'_>>> {
        let mut parts = Vec::new();
        for &id in ids {
            let file = self.files.iter().find(|f| f.id == id).ok_or_else(|| Error::invalid(format!("no file {id}")))?;
            file.loaded.parts(type_id, &mut parts);
        }
        Ok(parts)
    }

    /// The whole tree of the merge of profile type `type_id` of the files
    /// `ids`.
    pub fn merge(&self, ids: &[u32], type_id: &str) -> Result<StackTree> {
        TreeBuilder::of(&self.parts(ids, type_id)?)
    }

    /// The flame graph of the merge, as SelectMergeStacktraces answers it.
    /// Only the nodes it keeps are merged.
    pub fn flamegraph(&self, ids: &[u32], type_id: &str, max_nodes: usize) -> Result<FlameGraph> {
        Ok(flamegraph(&truncated_tree(&self.parts(ids, type_id)?, nodes(max_nodes))?, 0))
    }

    /// Functions of the merge by self value, at most `limit` (0 = all).
    pub fn top(&self, ids: &[u32], type_id: &str, limit: usize) -> Result<Vec<TopRow>> {
        top::top(&self.parts(ids, type_id)?, limit)
    }

    /// The callers (inverted, `name` at the top) and callees flame graphs of
    /// function `name` in the merge.
    pub fn sandwich(
        &self,
        ids: &[u32],
        type_id: &str,
        name: &str,
        max_nodes: usize,
    ) -> Result<(FlameGraph, FlameGraph)> {
        let (callers, callees) = sandwich_trees(&self.parts(ids, type_id)?, name, nodes(max_nodes))?;
        Ok((flamegraph(&callers, 0), flamegraph(&callees, 0)))
    }

    /// The diff flame graph of two merges, as the server's Diff answers it.
    pub fn diff(&self, left: &[u32], right: &[u32], type_id: &str, max_nodes: usize) -> Result<FlameGraphDiff> {
        let (left, right) = (self.parts(left, type_id)?, self.parts(right, type_id)?);
        let [left, right] = truncated_trees(&left, &right, nodes(max_nodes))?;
        Ok(flamegraph_diff(&left, &right, 0))
    }

    /// The merge as a gzipped pprof of the one sample type.
    pub fn export_pprof(&self, ids: &[u32], type_id: &str) -> Result<Vec<u8>> {
        let profile_type = ProfileType::parse(type_id)?;
        export::gzipped_pprof(&self.parts(ids, type_id)?, &profile_type)
    }
}

fn nodes(max_nodes: usize) -> usize {
    if max_nodes == 0 { DEFAULT_MAX_NODES } else { max_nodes }
}
