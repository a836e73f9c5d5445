//! The in-browser views: profile files parsed straight into function-name
//! trees (one per profile type), merged on demand and answered in the shapes
//! of the server's query API, so the offline viewer and the server's UI draw
//! the same JSON.
//!
//! A file is parsed once: its bytes are released and only its trees stay.
//! Profile type ids are the ones the server would give the same file on
//! `/ingest` with default parameters (see [`crate::legacy::offline`]).

mod build;
mod export;
mod load;
mod stream;
#[cfg(test)]
mod tests;
mod top;

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kiln_proto::querier::v1::{FlameGraph, FlameGraphDiff};

use crate::error::{Error, Result};
use crate::flamegraph::{flamegraph, flamegraph_diff};
use crate::profile_type::ProfileType;
use crate::tree::StackTree;

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

/// The merged stacks of one profile type of a file.
#[derive(Clone, Debug)]
pub struct TypeTree {
    pub profile_type: ProfileType,
    pub tree: StackTree,
}

/// What a file holds once parsed.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub format: Format,
    /// In the order the file declares them.
    pub types: Vec<TypeTree>,
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

    /// The merge of profile type `type_id` of the files `ids` (files without
    /// that type add nothing). Borrowed when only one file has it.
    pub fn merge(&self, ids: &[u32], type_id: &str) -> Result<Cow<'_, StackTree>> {
        let mut trees = Vec::new();
        for &id in ids {
            let file = self.files.iter().find(|f| f.id == id).ok_or_else(|| Error::invalid(format!("no file {id}")))?;
            trees.extend(file.loaded.types.iter().filter(|t| t.profile_type.id() == type_id).map(|t| &t.tree));
        }
        Ok(match trees.as_slice() {
            [] => Cow::Owned(StackTree::new()),
            [one] => Cow::Borrowed(*one),
            [first, rest @ ..] => {
                let mut merged = (*first).clone();
                for t in rest {
                    merged.merge(t);
                }
                Cow::Owned(merged)
            }
        })
    }

    /// The flame graph of the merge, as SelectMergeStacktraces answers it.
    pub fn flamegraph(&self, ids: &[u32], type_id: &str, max_nodes: usize) -> Result<FlameGraph> {
        Ok(flamegraph(&*self.merge(ids, type_id)?, nodes(max_nodes)))
    }

    /// Functions of the merge by self value, at most `limit` (0 = all).
    pub fn top(&self, ids: &[u32], type_id: &str, limit: usize) -> Result<Vec<TopRow>> {
        Ok(top::top(&*self.merge(ids, type_id)?, limit))
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
        let merged = self.merge(ids, type_id)?;
        let (callers, callees) = top::sandwich(&merged, name);
        Ok((flamegraph(&callers, nodes(max_nodes)), flamegraph(&callees, nodes(max_nodes))))
    }

    /// The diff flame graph of two merges, as the server's Diff answers it.
    pub fn diff(&self, left: &[u32], right: &[u32], type_id: &str, max_nodes: usize) -> Result<FlameGraphDiff> {
        Ok(flamegraph_diff(&*self.merge(left, type_id)?, &*self.merge(right, type_id)?, nodes(max_nodes)))
    }

    /// The merge as a gzipped pprof of the one sample type.
    pub fn export_pprof(&self, ids: &[u32], type_id: &str) -> Result<Vec<u8>> {
        let profile_type = ProfileType::parse(type_id)?;
        Ok(export::gzipped_pprof(&*self.merge(ids, type_id)?, &profile_type))
    }
}

fn nodes(max_nodes: usize) -> usize {
    if max_nodes == 0 { DEFAULT_MAX_NODES } else { max_nodes }
}
