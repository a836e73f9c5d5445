//! The persistent key-value store behind `wasi:keyvalue`: one redb table of
//! string keys to byte values.
//!
//! Reads run directly on redb read transactions from the calling thread.
//! Writes go through a single writer thread that does *group commit*: it takes
//! every write waiting in its queue, applies them all in one write transaction
//! and pays for one fsync (`Durability::Immediate`) before answering each
//! caller. Under concurrent pushes this turns N fsyncs into one while every
//! caller still gets a durable write when its call returns. Groups of counter
//! increments only are the exception (see `apply_all`).

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// Upper bound on writes folded into one transaction, so one commit's latency
/// stays bounded when the queue is very long.
const MAX_GROUP: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Storage(redb::Error),
    /// A write shared a group-commit transaction that failed.
    #[error("write transaction failed: {0}")]
    GroupFailed(String),
    #[error("the store is closed")]
    Closed,
    #[error("value of key {0:?} is not an 8-byte counter")]
    NotACounter(String),
    #[error("counter {0:?} would leave the range 0..=i64::MAX")]
    CounterRange(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn storage(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage(err.into())
}

/// A write queued for the writer thread.
enum Write {
    SetMany(Vec<(String, Vec<u8>)>),
    DeleteMany(Vec<String>),
    Increment { key: String, delta: i64 },
    CompareAndSwap { key: String, expected: Option<Vec<u8>>, value: Vec<u8> },
}

/// What a write produced, once committed.
enum Outcome {
    Done,
    Counter(u64),
    Swapped(bool),
}

struct Queued {
    write: Write,
    reply: oneshot::Sender<Result<Outcome>>,
}

pub struct Store {
    db: Arc<Database>,
    /// `None` once closed; writers only take the read lock to enqueue.
    queue: RwLock<Option<mpsc::Sender<Queued>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Store {
    /// Opens (or creates) the database file at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Store> {
        let db = Arc::new(Database::create(path).map_err(storage)?);
        // Create the table up front so read transactions can always open it.
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(TABLE).map_err(storage)?;
        txn.commit().map_err(storage)?;

        let (tx, rx) = mpsc::channel();
        let writer_db = Arc::clone(&db);
        let writer = std::thread::Builder::new()
            .name("kiln-store-writer".into())
            .spawn(move || write_loop(&writer_db, &rx))
            .map_err(|e| storage(redb::Error::Io(e)))?;
        Ok(Store { db, queue: RwLock::new(Some(tx)), writer: Mutex::new(Some(writer)) })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TABLE).map_err(storage)?;
        let value = table.get(key).map_err(storage)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    pub fn exists(&self, key: &str) -> Result<bool> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TABLE).map_err(storage)?;
        Ok(table.get(key).map_err(storage)?.is_some())
    }

    /// Returns the `(key, value)` pairs of the keys that exist, in request
    /// order, all from one consistent snapshot.
    pub fn get_many(&self, keys: Vec<String>) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TABLE).map_err(storage)?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = table.get(key.as_str()).map_err(storage)? {
                let value = value.value().to_vec();
                found.push((key, value));
            }
        }
        Ok(found)
    }

    /// All keys in ascending order, starting after `after` when given.
    pub fn keys(&self, after: Option<&str>) -> Result<Vec<String>> {
        use std::ops::Bound;
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TABLE).map_err(storage)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut keys = Vec::new();
        for entry in table.range::<&str>((lower, Bound::Unbounded)).map_err(storage)? {
            let (key, _) = entry.map_err(storage)?;
            keys.push(key.value().to_owned());
        }
        Ok(keys)
    }

    /// Reads a counter without writing (absent = 0).
    pub fn counter(&self, key: &str) -> Result<u64> {
        decode_counter(key, self.get(key)?.as_deref())
    }

    /// Writes all pairs in one atomic, durable transaction.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.submit(Write::SetMany(pairs)).await.map(|_| ())
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<()> {
        self.set_many(vec![(key, value)]).await
    }

    /// Deletes the keys (absent ones are skipped) atomically and durably.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        self.submit(Write::DeleteMany(keys)).await.map(|_| ())
    }

    pub async fn delete(&self, key: String) -> Result<()> {
        self.delete_many(vec![key]).await
    }

    /// Atomically adds `delta` to the 8-byte little-endian counter at `key`
    /// (absent = 0) and returns the new value. A zero delta only reads.
    pub async fn increment(&self, key: String, delta: i64) -> Result<u64> {
        if delta == 0 {
            return self.counter(&key);
        }
        match self.submit(Write::Increment { key, delta }).await? {
            Outcome::Counter(value) => Ok(value),
            Outcome::Done | Outcome::Swapped(_) => unreachable!("increment yields a counter"),
        }
    }

    /// Sets `key` to `value` only if its current value is `expected` (`None`
    /// = absent). Returns whether the swap happened.
    pub async fn compare_and_swap(&self, key: String, expected: Option<Vec<u8>>, value: Vec<u8>) -> Result<bool> {
        let write = Write::CompareAndSwap { key, expected, value };
        match self.submit(write).await? {
            Outcome::Swapped(swapped) => Ok(swapped),
            Outcome::Done | Outcome::Counter(_) => unreachable!("compare-and-swap yields a flag"),
        }
    }

    /// Stops accepting writes, waits until every queued write is committed
    /// and stops the writer thread. Reads keep working until the store drops.
    pub fn close(&self) {
        let queue = self.queue.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(queue);
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }

    async fn submit(&self, write: Write) -> Result<Outcome> {
        let (reply, outcome) = oneshot::channel();
        {
            let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
            let queue = queue.as_ref().ok_or(StoreError::Closed)?;
            queue.send(Queued { write, reply }).map_err(|_| StoreError::Closed)?;
        }
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_loop(db: &Database, queue: &mpsc::Receiver<Queued>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        commit_group(db, group);
    }
    // Closing: make any non-durable (increment-only) commit durable too.
    let flushed = db.begin_write().map_err(storage).and_then(|mut txn| {
        txn.set_durability(Durability::Immediate).map_err(storage)?;
        txn.commit().map_err(storage)
    });
    if let Err(err) = flushed {
        tracing::error!(error = %err, "final store flush failed");
    }
}

/// Applies a group of writes in one transaction and answers every caller.
/// Per-write refusals (not a counter, failed swap) leave the others intact; a
/// storage failure aborts the transaction and fails every write in it.
fn commit_group(db: &Database, group: Vec<Queued>) {
    let (writes, replies): (Vec<Write>, Vec<_>) = group.into_iter().map(|q| (q.write, q.reply)).unzip();
    match apply_all(db, writes) {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "store write transaction failed");
            let message = err.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::GroupFailed(message.clone())));
            }
        }
    }
}

fn apply_all(db: &Database, writes: Vec<Write>) -> Result<Vec<Result<Outcome>>> {
    let mut txn = db.begin_write().map_err(storage)?;
    // A group of counter increments alone skips the fsync: redb persists a
    // non-durable commit with the next durable one, and a reserved slot only
    // matters once data is written under it, which is always a durable
    // set-many. A crash in between loses a reservation, never data.
    let only_increments = writes.iter().all(|w| matches!(w, Write::Increment { .. }));
    let durability = if only_increments { Durability::None } else { Durability::Immediate };
    txn.set_durability(durability).map_err(storage)?;
    let outcomes = {
        let mut table = txn.open_table(TABLE).map_err(storage)?;
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            outcomes.push(apply(&mut table, write)?);
        }
        outcomes
    };
    txn.commit().map_err(storage)?;
    Ok(outcomes)
}

/// Applies one write. The outer `Result` is a storage failure (abort the
/// group); the inner one is this write's own answer.
fn apply(table: &mut redb::Table<'_, &str, &[u8]>, write: Write) -> Result<Result<Outcome>> {
    match write {
        Write::SetMany(pairs) => {
            for (key, value) in &pairs {
                table.insert(key.as_str(), value.as_slice()).map_err(storage)?;
            }
            Ok(Ok(Outcome::Done))
        }
        Write::DeleteMany(keys) => {
            for key in &keys {
                table.remove(key.as_str()).map_err(storage)?;
            }
            Ok(Ok(Outcome::Done))
        }
        Write::Increment { key, delta } => {
            let current = table.get(key.as_str()).map_err(storage)?;
            let next = decode_counter(&key, current.as_ref().map(|v| v.value()))
                .and_then(|old| add_to_counter(&key, old, delta));
            drop(current);
            let Ok(next) = next else {
                return Ok(next.map(Outcome::Counter));
            };
            table.insert(key.as_str(), next.to_le_bytes().as_slice()).map_err(storage)?;
            Ok(Ok(Outcome::Counter(next)))
        }
        Write::CompareAndSwap { key, expected, value } => {
            let current = table.get(key.as_str()).map_err(storage)?;
            let matches = current.as_ref().map(|v| v.value()) == expected.as_deref();
            drop(current);
            if matches {
                table.insert(key.as_str(), value.as_slice()).map_err(storage)?;
            }
            Ok(Ok(Outcome::Swapped(matches)))
        }
    }
}

fn decode_counter(key: &str, value: Option<&[u8]>) -> Result<u64> {
    match value {
        None => Ok(0),
        Some(bytes) => bytes.try_into().map(u64::from_le_bytes).map_err(|_| StoreError::NotACounter(key.to_owned())),
    }
}

/// Counters are u64 on disk but travel as WIT `s64`, so they stay within
/// `0..=i64::MAX`.
fn add_to_counter(key: &str, old: u64, delta: i64) -> Result<u64> {
    old.checked_add_signed(delta)
        .filter(|next| i64::try_from(*next).is_ok())
        .ok_or_else(|| StoreError::CounterRange(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    fn pairs(items: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect()
    }

    #[test]
    fn set_get_many_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.redb")).unwrap();
        block_on(store.set_many(pairs(&[("a", b"1"), ("b", b"22"), ("c", b"")]))).unwrap();

        assert_eq!(store.get("b").unwrap().as_deref(), Some(&b"22"[..]));
        assert_eq!(store.get("zz").unwrap(), None);
        assert!(store.exists("c").unwrap());
        let keys = ["c", "missing", "a"].map(String::from).to_vec();
        assert_eq!(store.get_many(keys).unwrap(), pairs(&[("c", b""), ("a", b"1")]));

        block_on(store.delete_many(vec!["a".into(), "missing".into()])).unwrap();
        block_on(store.delete("c".into())).unwrap();
        assert!(!store.exists("a").unwrap());
        assert_eq!(store.keys(None).unwrap(), vec!["b".to_string()]);
    }

    #[test]
    fn keys_in_order_after_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.redb")).unwrap();
        block_on(store.set_many(pairs(&[("b", b""), ("a", b""), ("c", b"")]))).unwrap();
        assert_eq!(store.keys(None).unwrap(), ["a", "b", "c"]);
        assert_eq!(store.keys(Some("a")).unwrap(), ["b", "c"]);
    }

    #[test]
    fn concurrent_increments_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("kv.redb")).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    block_on(async {
                        let mut seen = Vec::new();
                        for _ in 0..500 {
                            seen.push(store.increment("ctr".into(), 1).await.unwrap());
                        }
                        seen
                    })
                })
            })
            .collect();
        let mut all = HashSet::new();
        for thread in threads {
            for value in thread.join().unwrap() {
                assert!(all.insert(value), "value {value} handed out twice");
            }
        }
        assert_eq!(all, (1..=4000).collect::<HashSet<u64>>());
        assert_eq!(store.counter("ctr").unwrap(), 4000);
        assert_eq!(store.get("ctr").unwrap().unwrap(), 4000u64.to_le_bytes().to_vec());
    }

    #[test]
    fn increment_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.redb")).unwrap();
        assert_eq!(block_on(store.increment("n".into(), 0)).unwrap(), 0);
        assert!(!store.exists("n").unwrap(), "a zero delta must not write");
        assert_eq!(block_on(store.increment("n".into(), 5)).unwrap(), 5);
        assert_eq!(block_on(store.increment("n".into(), -2)).unwrap(), 3);
        assert!(matches!(block_on(store.increment("n".into(), -4)), Err(StoreError::CounterRange(_))));
        block_on(store.set("s".into(), b"text".to_vec())).unwrap();
        assert!(matches!(block_on(store.increment("s".into(), 1)), Err(StoreError::NotACounter(_))));
    }

    #[test]
    fn compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.redb")).unwrap();
        assert!(block_on(store.compare_and_swap("k".into(), None, b"1".to_vec())).unwrap());
        assert!(!block_on(store.compare_and_swap("k".into(), None, b"2".to_vec())).unwrap());
        let swapped = store.compare_and_swap("k".into(), Some(b"1".to_vec()), b"3".to_vec());
        assert!(block_on(swapped).unwrap());
        assert_eq!(store.get("k").unwrap().unwrap(), b"3");
    }

    #[test]
    fn survives_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        {
            let store = Store::open(&path).unwrap();
            block_on(store.set("k".into(), b"v".to_vec())).unwrap();
            block_on(store.increment("n".into(), 7)).unwrap();
            store.close();
            assert!(matches!(block_on(store.set("x".into(), Vec::new())), Err(StoreError::Closed)));
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get("k").unwrap().unwrap(), b"v");
        assert_eq!(store.counter("n").unwrap(), 7);
    }
}
