//! kiln's core: everything between bytes in and answers out, with no knowledge
//! of HTTP, files or clocks. Adapters (the Spin/WASI component, the browser
//! module, the native host) hand it bytes, labels, a time and a [`kv::KvStore`].
#![no_std]

extern crate alloc;

pub mod config;
pub mod dot;
pub mod error;
pub mod flamebearer;
pub mod gzip;
pub mod ingest;
pub mod jfr;
pub(crate) mod json;
pub mod kv;
pub mod labels;
pub mod legacy;
pub mod name_tree;
pub mod pprof;
pub mod profile_type;
pub mod query;
pub mod segment;
pub mod store;
pub mod tenant;
#[cfg(test)]
mod testdata;
pub mod time;
pub mod url;
pub mod view;

pub use error::{Error, ErrorKind, Result};
pub use labels::Labels;
pub use profile_type::ProfileType;
pub mod flamegraph;
pub mod selector;
pub mod tree;

/// The hash map of the hot paths. FxHash is a multiply-and-rotate on 64-bit
/// words: as fast in wasm as natively, where foldhash's 128-bit multiply
/// is emulated.
pub(crate) type FastMap<K, V> = hashbrown::HashMap<K, V, rustc_hash::FxBuildHasher>;
pub(crate) type FastSet<T> = hashbrown::HashSet<T, rustc_hash::FxBuildHasher>;
