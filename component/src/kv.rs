//! [`KvStore`] over wasi:keyvalue (store, atomics, batch), which both Spin and
//! the `kiln` host provide.

use kiln_core::kv::{KvStore, StoreError};
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};

pub struct WasiKv(store::Bucket);

impl WasiKv {
    /// Opens the component's store; Spin grants it through
    /// `key_value_stores = ["default"]`.
    pub fn open() -> Result<Self, StoreError> {
        store::open("default").map(Self).map_err(err)
    }
}

fn err(e: store::Error) -> StoreError {
    StoreError(match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied (is the component granted the \"default\" store?)".into(),
        store::Error::Other(m) => m,
    })
}

impl KvStore for WasiKv {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Hosts may leave missing keys out of the answer: match by key.
        let found = batch::get_many(&self.0, keys).map_err(err)?;
        let mut by_key: std::collections::HashMap<String, Vec<u8>> =
            found.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        Ok(keys.iter().map(|k| by_key.remove(k)).collect())
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        batch::set_many(&self.0, &entries).map_err(err)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        batch::delete_many(&self.0, keys).map_err(err)
    }

    fn increment(&self, key: &str, delta: u64) -> Result<u64, StoreError> {
        let delta = i64::try_from(delta).map_err(|_| StoreError("increment delta out of range".into()))?;
        let value = atomics::increment(&self.0, key, delta).map_err(err)?;
        u64::try_from(value).map_err(|_| StoreError(format!("counter {key} is negative")))
    }
}
