//! kiln's native server: runs the kiln WASI-HTTP component in wasmtime over
//! a persistent `wasi:keyvalue` store.

mod cache;
pub mod cli;
mod config;
mod keyvalue;
pub mod runtime;
pub mod server;
pub mod store;

pub use runtime::{Body, Limits};
pub use server::{COMPONENT_WASM, Config, Server, serve};
