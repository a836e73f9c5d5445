//! kiln's core: everything between bytes in and answers out, with no knowledge
//! of HTTP, files or clocks. Adapters (the Spin/WASI component, the browser
//! module, the native host) hand it bytes, labels, a time and a [`kv::KvStore`].
#![no_std]

extern crate alloc;

pub mod kv;
pub mod labels;

pub use labels::Labels;
pub mod flamegraph;
pub mod selector;
pub mod tree;
