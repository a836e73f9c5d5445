//! Host side of `wasi:keyvalue@0.2.0-draft2` (`store`, `atomics`, `batch`)
//! over [`Store`]. Only the bucket named `"default"` exists.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::store::{Store, StoreError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// The one bucket identifier that exists.
pub const DEFAULT_BUCKET: &str = "default";

/// An open handle to the default bucket; it carries no state of its own.
pub struct Bucket;

/// A compare-and-swap handle: the key and the value it had when the handle
/// was made.
pub struct Cas {
    key: String,
    current: Option<Vec<u8>>,
}

/// What the keyvalue host functions see of the per-request state.
pub struct KeyValueCtx<'a> {
    pub table: &'a mut ResourceTable,
    pub store: &'a Store,
}

struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = KeyValueCtx<'a>;
}

/// Adds the three interfaces to `linker`, reaching their state via `get`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KeyValueCtx<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, KeyValue>(linker, get)?;
    atomics::add_to_linker::<T, KeyValue>(linker, get)?;
    batch::add_to_linker::<T, KeyValue>(linker, get)?;
    Ok(())
}

fn to_wit(err: StoreError) -> store::Error {
    store::Error::Other(err.to_string())
}

impl store::Host for KeyValueCtx<'_> {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<Bucket>, store::Error>> {
        if identifier != DEFAULT_BUCKET {
            return Ok(Err(store::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket)?))
    }
}

impl store::HostBucket for KeyValueCtx<'_> {
    async fn get(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        Ok(self.store.get(&key).map_err(to_wit))
    }

    async fn set(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        Ok(self.store.set(key, value).await.map_err(to_wit))
    }

    async fn delete(&mut self, _bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<(), store::Error>> {
        Ok(self.store.delete(key).await.map_err(to_wit))
    }

    async fn exists(&mut self, _bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<bool, store::Error>> {
        Ok(self.store.exists(&key).map_err(to_wit))
    }

    /// Answers with every key (after `cursor`, if given) in one response and
    /// no further cursor, as Spin does: callers that ignore cursors still
    /// see every key.
    async fn list_keys(
        &mut self,
        _bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        let keys = self.store.keys(cursor.as_deref());
        Ok(keys.map(|keys| store::KeyResponse { keys, cursor: None }).map_err(to_wit))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueCtx<'_> {
    async fn increment(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, store::Error>> {
        // The store keeps counters within 0..=i64::MAX, so the cast is exact.
        let value = self.store.increment(key, delta).await;
        Ok(value.map(|v| v as i64).map_err(to_wit))
    }

    async fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas { key, current } = self.table.delete(cas)?;
        let swapped = self.store.compare_and_swap(key.clone(), current, value).await;
        Ok(match swapped {
            Ok(true) => Ok(()),
            Ok(false) => match self.store.get(&key) {
                Ok(current) => Err(atomics::CasError::CasFailed(self.table.push(Cas { key, current })?)),
                Err(err) => Err(atomics::CasError::StoreError(to_wit(err))),
            },
            Err(err) => Err(atomics::CasError::StoreError(to_wit(err))),
        })
    }
}

impl atomics::HostCas for KeyValueCtx<'_> {
    async fn new(
        &mut self,
        _bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, store::Error>> {
        match self.store.get(&key) {
            Ok(current) => Ok(Ok(self.table.push(Cas { key, current })?)),
            Err(err) => Ok(Err(to_wit(err))),
        }
    }

    async fn current(&mut self, cas: Resource<Cas>) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KeyValueCtx<'_> {
    /// Returns pairs only for the keys that exist, as Spin does.
    async fn get_many(
        &mut self,
        _bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, store::Error>> {
        let found = self.store.get_many(keys).map_err(to_wit);
        Ok(found.map(|pairs| pairs.into_iter().map(|(k, v)| (k, Some(v))).collect()))
    }

    async fn set_many(
        &mut self,
        _bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        Ok(self.store.set_many(key_values).await.map_err(to_wit))
    }

    async fn delete_many(
        &mut self,
        _bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        Ok(self.store.delete_many(keys).await.map_err(to_wit))
    }
}
