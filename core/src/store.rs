//! The storage layout over a [`KvStore`]: where series and segments live and
//! how a query finds them without listing keys.
//!
//! Data is partitioned by tenant and by hour (`h` = Unix ms / 3,600,000). Per
//! hour there is an append-only *series log* and, per series, an append-only
//! *segment log*. An append takes a slot from an atomic counter, then writes
//! the slot's key, so concurrent writers (Spin runs one instance per request)
//! never overwrite each other and no compare-and-swap is needed. A reader
//! reads a counter and fetches slots `0..n` with one batched get; a slot whose
//! writer has not finished yet (or crashed after taking it) is simply absent.
//!
//! Symbols (strings, functions, locations, mappings, stack tree) are stored
//! once per upload and label group, content-addressed, and shared by the
//! series of every sample type cut from it: a heap profile's four series
//! write its symbols once. Equal content means an equal key, so concurrent
//! writers of the same symbols cannot conflict.
//!
//! ```text
//! k1/{tenant}/{h}/sn               counter: series-log length
//! k1/{tenant}/{h}/s/{i}            series-log entry i: series id + labels
//! k1/{tenant}/{h}/m/{sid}          marker: series sid is in hour h's log
//! k1/{tenant}/{h}/{sid}/n          counter: segment-log length of series sid
//! k1/{tenant}/{h}/{sid}/{j}        segment j: symbols hash (16 bytes) + profiles
//! k1/{tenant}/{h}/y/{hash}         symbols, by 128-bit content hash
//! {any value key}.{c}              chunk c of a value over the value limit
//! ```
//!
//! Every value starts with a tag: 0 = the bytes follow, 1 = a chunk count
//! follows and the bytes are in the chunks. `sid` is a 64-bit hash of the
//! series labels in hex. Keys stay under [`MAX_KEY_LEN`] because tenant IDs
//! are at most 150 bytes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};
use kiln_proto::types::v1::LabelPair;
use prost::Message;

use crate::error::{Error, Result};
use crate::kv::{KvStore, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::labels::Labels;
use crate::segment::{Segment, StoredProfile};

pub const HOUR_MS: i64 = 3_600_000;
/// Keys per batched read: bounds the memory one `get_many` brings in.
const READ_BATCH: usize = 256;

const TAG_INLINE: u8 = 0;
const TAG_CHUNKED: u8 = 1;

/// A tenant's view of the store.
pub struct Storage<'a, S: KvStore + ?Sized> {
    kv: &'a S,
    tenant: &'a str,
}

/// What one upload appends: shared symbol blobs and per-series profiles.
#[derive(Debug, Default)]
pub struct Batch {
    pub symbols: Vec<SymbolsWrite>,
    pub series: Vec<SeriesWrite>,
}

/// An encoded [`Segment`] holding only symbols, addressed by its content.
#[derive(Debug)]
pub struct SymbolsWrite {
    pub timestamp_ms: i64,
    pub hash: u128,
    pub bytes: Vec<u8>,
}

/// One series' profiles (an encoded [`Segment`] holding only `profiles`),
/// referring to the symbols they were cut from.
#[derive(Debug)]
pub struct SeriesWrite {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub symbols: u128,
    pub profiles: Vec<u8>,
}

impl Batch {
    pub fn extend(&mut self, other: Batch) {
        self.symbols.extend(other.symbols);
        self.series.extend(other.series);
    }
}

/// The 128-bit content hash that names a symbols blob.
pub fn symbols_hash(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// A series present in one hour.
#[derive(Clone, Debug)]
pub struct SeriesRef {
    pub hour: i64,
    pub id: u64,
    pub labels: Labels,
}

#[derive(Clone, PartialEq, Message)]
struct SeriesEntry {
    #[prost(fixed64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "2")]
    labels: Vec<LabelPair>,
}

impl<'a, S: KvStore + ?Sized> Storage<'a, S> {
    pub fn new(kv: &'a S, tenant: &'a str) -> Self {
        Self { kv, tenant }
    }

    /// Appends every write durably; when this returns Ok the data is visible
    /// to any later query.
    pub fn write(&self, batch: Batch) -> Result<()> {
        let Batch { symbols, series: writes } = batch;
        if writes.is_empty() {
            return Ok(());
        }
        let placed: Vec<(i64, u64)> =
            writes.iter().map(|w| (w.timestamp_ms.div_euclid(HOUR_MS), series_id(&w.labels))).collect();

        // Register series not yet in their hour's log. Two writers racing on
        // the same new series may both append it: readers de-duplicate.
        let mut unique: Vec<usize> = Vec::new();
        let mut seen = HashSet::new();
        for (i, p) in placed.iter().enumerate() {
            if seen.insert(*p) {
                unique.push(i);
            }
        }
        let markers: Vec<String> =
            unique.iter().map(|&i| self.key(format_args!("{}/m/{:016x}", placed[i].0, placed[i].1))).collect();
        let present = self.kv.get_many(&markers)?;
        let mut fresh: Vec<(usize, String)> = Vec::new();
        for (&i, (marker, found)) in unique.iter().zip(markers.into_iter().zip(present)) {
            if found.is_none() {
                fresh.push((i, marker));
            }
        }
        // One increment per hour reserves the log slots of all its new series.
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        fresh.sort_by_key(|(i, _)| placed[*i].0);
        for group in fresh.chunk_by(|a, b| placed[a.0].0 == placed[b.0].0) {
            let hour = placed[group[0].0].0;
            let end = self.kv.increment(&self.key(format_args!("{hour}/sn")), group.len() as u64)?;
            let first = end - group.len() as u64;
            for (slot, (i, marker)) in (first..).zip(group) {
                let entry = SeriesEntry { id: placed[*i].1, labels: to_pairs(&writes[*i].labels) };
                entries.push((self.key(format_args!("{hour}/s/{slot}")), entry.encode_to_vec()));
                entries.push((marker.clone(), alloc::vec![1]));
            }
        }

        for sym in symbols {
            let hour = sym.timestamp_ms.div_euclid(HOUR_MS);
            push_value(&mut entries, self.key(format_args!("{hour}/y/{:032x}", sym.hash)), &sym.bytes);
        }
        for (w, &(hour, id)) in writes.into_iter().zip(&placed) {
            let slot = self.kv.increment(&self.key(format_args!("{hour}/{id:016x}/n")), 1)? - 1;
            let key = self.key(format_args!("{hour}/{id:016x}/{slot}"));
            let mut value = Vec::with_capacity(16 + w.profiles.len());
            value.extend_from_slice(&w.symbols.to_le_bytes());
            value.extend_from_slice(&w.profiles);
            push_value(&mut entries, key, &value);
        }
        // Symbols, segments and series entries land together: a reader that
        // finds a series in the log finds its data.
        self.kv.set_many(entries)?;
        Ok(())
    }

    /// Every series with data in the hours overlapping `[start_ms, end_ms)`.
    pub fn series(&self, start_ms: i64, end_ms: i64) -> Result<Vec<SeriesRef>> {
        let hours: Vec<i64> = hours(start_ms, end_ms).collect();
        let mut keys = Vec::new();
        for &hour in &hours {
            let n = self.kv.increment(&self.key(format_args!("{hour}/sn")), 0)?;
            keys.extend((0..n).map(|i| (hour, self.key(format_args!("{hour}/s/{i}")))));
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for batch in keys.chunks(READ_BATCH) {
            let names: Vec<String> = batch.iter().map(|(_, k)| k.clone()).collect();
            for ((hour, _), value) in batch.iter().zip(self.kv.get_many(&names)?) {
                let Some(value) = value else { continue };
                let entry =
                    SeriesEntry::decode(&value[..]).map_err(|e| Error::Corrupt(format!("series entry: {e}")))?;
                if seen.insert((*hour, entry.id)) {
                    let labels = Labels::from_pairs(entry.labels.into_iter().map(|l| (l.name, l.value)));
                    out.push(SeriesRef { hour: *hour, id: entry.id, labels });
                }
            }
        }
        Ok(out)
    }

    /// Calls `f` with every stored segment of the given series, one at a
    /// time: the symbols it refers to and its profiles.
    pub fn for_each_segment(
        &self,
        series: &[SeriesRef],
        mut f: impl FnMut(&SeriesRef, &Segment, Vec<StoredProfile>) -> Result<()>,
    ) -> Result<()> {
        // Symbols are fetched once per batch of segments that share them;
        // dropping the cache with the batch keeps memory bounded.
        self.read_segments(series, |segments| {
            let mut wanted: Vec<(i64, u128)> = segments.iter().map(|(i, hash, _)| (series[*i].hour, *hash)).collect();
            wanted.sort_unstable();
            wanted.dedup();
            let names = wanted.iter().map(|(h, hash)| self.key(format_args!("{h}/y/{hash:032x}"))).collect();
            let mut symbols: HashMap<(i64, u128), Segment> = HashMap::with_capacity(wanted.len());
            for (id, value) in wanted.into_iter().zip(self.get_values(names)?) {
                let value = value.ok_or_else(|| Error::Corrupt(format!("symbols {:032x} missing", id.1)))?;
                symbols.insert(id, Segment::decode_bytes(&value)?);
            }
            for (i, hash, profiles) in segments {
                f(&series[i], &symbols[&(series[i].hour, hash)], profiles)?;
            }
            Ok(())
        })
    }

    /// Like [`Self::for_each_segment`] for callers that need no symbols
    /// (totals over time), which are then not read at all.
    pub fn for_each_profiles(
        &self,
        series: &[SeriesRef],
        mut f: impl FnMut(&SeriesRef, Vec<StoredProfile>) -> Result<()>,
    ) -> Result<()> {
        self.read_segments(series, |segments| {
            segments.into_iter().try_for_each(|(i, _, profiles)| f(&series[i], profiles))
        })
    }

    /// Reads the segment logs of `series` in batches of [`READ_BATCH`] keys;
    /// `f` gets each batch as (series index, symbols hash, profiles).
    fn read_segments(
        &self,
        series: &[SeriesRef],
        mut f: impl FnMut(Vec<(usize, u128, Vec<StoredProfile>)>) -> Result<()>,
    ) -> Result<()> {
        let mut keys: Vec<(usize, String)> = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let n = self.kv.increment(&self.key(format_args!("{}/{:016x}/n", s.hour, s.id)), 0)?;
            keys.extend((0..n).map(|j| (i, self.key(format_args!("{}/{:016x}/{j}", s.hour, s.id)))));
        }
        for batch in keys.chunks(READ_BATCH) {
            let values = self.get_values(batch.iter().map(|(_, k)| k.clone()).collect())?;
            let mut segments = Vec::new();
            for ((i, key), value) in batch.iter().zip(values) {
                let Some(value) = value else { continue };
                if value.len() < 16 {
                    return Err(Error::Corrupt(format!("segment {key}: too short")));
                }
                let hash = u128::from_le_bytes(value[..16].try_into().expect("16 bytes"));
                segments.push((*i, hash, Segment::decode_bytes(&value[16..])?.profiles));
            }
            f(segments)?;
        }
        Ok(())
    }

    /// Batched get that resolves chunked values.
    fn get_values(&self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>> {
        let values = self.kv.get_many(&keys)?;
        let mut out = Vec::with_capacity(values.len());
        for (key, value) in keys.iter().zip(values) {
            out.push(match value {
                None => None,
                Some(mut v) => match v.first() {
                    Some(&TAG_INLINE) => {
                        v.remove(0);
                        Some(v)
                    }
                    Some(&TAG_CHUNKED) => Some(self.read_chunks(key, &v[1..])?),
                    _ => return Err(Error::Corrupt(format!("value {key}: unknown tag"))),
                },
            });
        }
        Ok(out)
    }

    fn read_chunks(&self, key: &str, count: &[u8]) -> Result<Vec<u8>> {
        let count: [u8; 4] = count.try_into().map_err(|_| Error::Corrupt(format!("value {key}: bad manifest")))?;
        let names: Vec<String> = (0..u32::from_le_bytes(count)).map(|c| format!("{key}.{c}")).collect();
        let mut bytes = Vec::new();
        for chunk in self.kv.get_many(&names)? {
            bytes.extend(chunk.ok_or_else(|| Error::Corrupt(format!("value {key}: missing chunk")))?);
        }
        Ok(bytes)
    }

    fn key(&self, rest: core::fmt::Arguments<'_>) -> String {
        let key = format!("k1/{}/{}", self.tenant, rest);
        debug_assert!(key.len() <= MAX_KEY_LEN, "key too long: {key}");
        key
    }
}

/// Stores `value` under `key` behind its tag, split into chunks when over the
/// value limit. Chunks precede the manifest in the batch; all land in one
/// `set_many`.
fn push_value(entries: &mut Vec<(String, Vec<u8>)>, key: String, value: &[u8]) {
    if value.len() < MAX_VALUE_LEN {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.push(TAG_INLINE);
        v.extend_from_slice(value);
        entries.push((key, v));
        return;
    }
    let chunks = value.chunks(MAX_VALUE_LEN);
    let mut manifest = alloc::vec![TAG_CHUNKED];
    manifest.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (c, chunk) in chunks.enumerate() {
        entries.push((format!("{key}.{c}"), chunk.to_vec()));
    }
    entries.push((key, manifest));
}

fn hours(start_ms: i64, end_ms: i64) -> impl Iterator<Item = i64> {
    let first = start_ms.div_euclid(HOUR_MS);
    let last = (end_ms - 1).max(start_ms).div_euclid(HOUR_MS);
    first..=last
}

fn to_pairs(labels: &Labels) -> Vec<LabelPair> {
    labels.iter().map(|(n, v)| LabelPair { name: n.into(), value: v.into() }).collect()
}

/// A stable 64-bit series id: FNV-1a over `name 0xff value 0xff` pairs, then
/// a splitmix64 finalizer to spread FNV's weak low bits.
pub fn series_id(labels: &Labels) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, v) in labels.iter() {
        for b in n.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// An in-memory [`KvStore`] for tests and the browser.
#[derive(Default)]
pub struct MemoryStore {
    map: core::cell::RefCell<HashMap<String, Vec<u8>>>,
}

impl KvStore for MemoryStore {
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, crate::kv::StoreError> {
        let map = self.map.borrow();
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }

    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), crate::kv::StoreError> {
        let mut map = self.map.borrow_mut();
        for (k, v) in entries {
            assert!(k.len() <= MAX_KEY_LEN && v.len() <= MAX_VALUE_LEN, "store limits exceeded: {k}");
            map.insert(k, v);
        }
        Ok(())
    }

    fn increment(&self, key: &str, delta: u64) -> Result<u64, crate::kv::StoreError> {
        let mut map = self.map.borrow_mut();
        let current = map.get(key).map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()));
        if delta > 0 {
            map.insert(key.into(), (current + delta).to_le_bytes().to_vec());
        }
        Ok(current + delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn labels(service: &str) -> Labels {
        Labels::from_pairs([("__name__", "process_cpu"), ("service_name", service)])
    }

    /// A batch of one series whose symbols are `symbols` strings and whose
    /// profile is marked by `marker`.
    fn batch(service: &str, timestamp_ms: i64, symbols: &[&str], marker: i64) -> Batch {
        let sym = Segment { strings: symbols.iter().map(|s| (*s).into()).collect(), ..Default::default() };
        let bytes = sym.encode_to_vec();
        let hash = symbols_hash(&bytes);
        let profile = StoredProfile { timestamp_ms, total: marker, ..Default::default() };
        Batch {
            symbols: vec![SymbolsWrite { timestamp_ms, hash, bytes }],
            series: vec![SeriesWrite {
                labels: labels(service),
                timestamp_ms,
                symbols: hash,
                profiles: Segment { profiles: vec![profile], ..Default::default() }.encode_to_vec(),
            }],
        }
    }

    fn read_all<S: KvStore>(store: &Storage<'_, S>, series: &[SeriesRef]) -> Vec<(String, String, i64)> {
        let mut seen = Vec::new();
        store
            .for_each_segment(series, |s, symbols, profiles| {
                seen.push((s.labels.get("service_name").unwrap().into(), symbols.strings.concat(), profiles[0].total));
                Ok(())
            })
            .unwrap();
        seen.sort();
        seen
    }

    #[test]
    fn written_series_and_segments_are_found_by_hour() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "anonymous");
        let t = 10 * HOUR_MS + 5;
        let mut first = batch("a", t, &["", "x"], 1);
        first.extend(batch("b", t + HOUR_MS, &["", "y"], 2));
        store.write(first).unwrap();
        store.write(batch("a", t + 1, &["", "x"], 3)).unwrap();

        let first_hour = store.series(t, t + 10).unwrap();
        assert_eq!(first_hour.len(), 1);
        assert_eq!(first_hour[0].labels.get("service_name"), Some("a"));
        let both = store.series(t, t + HOUR_MS).unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(
            read_all(&store, &both),
            [("a".into(), "x".into(), 1), ("a".into(), "x".into(), 3), ("b".into(), "y".into(), 2)]
        );
        // Another tenant sees nothing.
        assert!(Storage::new(&kv, "other").series(t, t + HOUR_MS).unwrap().is_empty());
    }

    #[test]
    fn large_values_are_chunked() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        let big: String = (0..2_500_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        store.write(batch("a", 0, &["", &big], 7)).unwrap();
        let series = store.series(0, 1).unwrap();
        assert_eq!(read_all(&store, &series), [("a".into(), big, 7)]);
    }

    /// Records the longest key any operation used.
    #[derive(Default)]
    struct KeyLengths {
        inner: MemoryStore,
        longest: core::cell::Cell<usize>,
    }

    impl KeyLengths {
        fn saw(&self, key: &str) {
            self.longest.set(self.longest.get().max(key.len()));
        }
    }

    impl KvStore for KeyLengths {
        fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, crate::kv::StoreError> {
            keys.iter().for_each(|k| self.saw(k));
            self.inner.get_many(keys)
        }

        fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), crate::kv::StoreError> {
            entries.iter().for_each(|(k, _)| self.saw(k));
            self.inner.set_many(entries)
        }

        fn increment(&self, key: &str, delta: u64) -> Result<u64, crate::kv::StoreError> {
            self.saw(key);
            self.inner.increment(key, delta)
        }
    }

    #[test]
    fn keys_of_the_longest_tenant_fit_the_key_limit() {
        let kv = KeyLengths::default();
        let tenant = "x".repeat(crate::tenant::MAX_TENANT_LEN);
        let store = Storage::new(&kv, &tenant);
        let big: String = (0..1_500_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        // The widest hour numbers, and a chunked value (key suffix `.c`).
        for t in [i64::MIN / 2, -1, i64::MAX / 2] {
            store.write(batch("a", t, &["", &big], 1)).unwrap();
            let series = store.series(t, t + 1).unwrap();
            assert_eq!(read_all(&store, &series).len(), 1);
        }
        assert!(kv.longest.get() <= MAX_KEY_LEN, "longest key {}", kv.longest.get());
    }

    #[test]
    fn series_id_is_stable() {
        assert_eq!(series_id(&labels("a")), series_id(&labels("a")));
        assert_ne!(series_id(&labels("a")), series_id(&labels("b")));
    }
}
