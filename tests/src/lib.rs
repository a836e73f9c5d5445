//! Test support: a real kiln server on a loopback port, an HTTP client for
//! it, and access to the shared test data.

pub mod fixtures;
pub mod server;

pub use server::Server;
