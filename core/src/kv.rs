//! The key-value interface the core stores everything through.
//!
//! It mirrors what wasi:keyvalue (store, atomics, batch) and Spin's key-value
//! offer, and nothing more: batched reads, writes and deletes, and an atomic
//! counter. No key listing, no compare-and-swap, so the storage layout never
//! depends on either.

use alloc::string::String;
use alloc::vec::Vec;

/// Spin's documented limits: keys up to 255 bytes, values up to 1 MiB. We stay
/// a little under both.
pub const MAX_KEY_LEN: usize = 250;
pub const MAX_VALUE_LEN: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
#[error("key-value store: {0}")]
pub struct StoreError(pub String);

pub trait KvStore {
    /// Values for `keys`, in order; `None` where a key is absent.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Writes all entries; when it returns Ok they are durable.
    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StoreError>;

    /// Deletes the keys; absent ones are skipped.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Atomically adds `delta` to the counter at `key` (absent = 0) and returns
    /// the new value. `delta = 0` reads a counter. Counters are only ever read
    /// this way: hosts encode them differently.
    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError>;
}
