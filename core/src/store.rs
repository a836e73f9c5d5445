//! The storage layout over a [`KvStore`]: where series and profiles live, how
//! a query finds them without listing keys, and how they are compacted.
//!
//! Data is partitioned by tenant and by hour (`h` = Unix ms / 3,600,000). Per
//! hour there is an append-only *series log* and, per series, an append-only
//! *slot log*. An append takes a slot from an atomic counter, then writes the
//! slot's key, so concurrent writers (Spin runs one instance per request)
//! never overwrite each other and no compare-and-swap is needed. A reader
//! reads a counter and fetches slots `0..n` with one batched get; a slot whose
//! writer has not finished yet (or crashed after taking it) is simply absent.
//!
//! A slot holds one upload's profile for the series with its own symbols, so
//! a fresh write is one key and one read. Every [`COMPACT_EVERY`] slots, the
//! writer that fills the last one *compacts* the series-hour: slots `0..m`
//! become one *rollup* `m` with one merged symbol table (see
//! [`SymbolMerger`]), in four parts a query reads only as needed:
//!
//! - `t`: each profile's time and total (SelectSeries reads only this), and
//!   the summed values of all of them, which a query whose range covers the
//!   whole rollup uses as is;
//! - `y`: the symbols (pprof answers need them);
//! - `n`: the function-name tree of the stacks ([`NameTree`]; flame graphs
//!   need only this);
//! - `p`: every profile's samples, as frames appended one per compaction,
//!   each with its own sum.
//!
//! A slot likewise keeps its profile, name tree and symbols apart.
//!
//! Rollup `m` is built from the newest earlier rollup and the slots after it,
//! written, and only then are the slots and the older rollup deleted. Keys are
//! written once and never rewritten, so readers need no locks: a reader takes
//! the newest rollup whose `t` exists plus the slots after it, and when a part
//! or a slot it expected is gone (a compaction finished meanwhile) it looks
//! for the newer rollup and reads again.
//!
//! ```text
//! k1/{tenant}/hn                   counter: hour-log length
//! k1/{tenant}/h/{i}                hour-log entry i: an hour holding data
//! k1/{tenant}/{h}/sn               counter: series-log length
//! k1/{tenant}/{h}/s/{i}            series-log entry i: series id + labels
//! k1/{tenant}/{h}/m/{sid}          marker: series sid is in hour h's log
//! k1/{tenant}/{h}/{sid}/n          counter: slot-log length of series sid
//! k1/{tenant}/{h}/{sid}/{j}        slot j: a Segment (symbols + one profile)
//! k1/{tenant}/{h}/{sid}/r/{m}/t    rollup of slots 0..m: times, totals, sum
//! k1/{tenant}/{h}/{sid}/r/{m}/y    rollup of slots 0..m: symbols
//! k1/{tenant}/{h}/{sid}/r/{m}/n    rollup of slots 0..m: name tree
//! k1/{tenant}/{h}/{sid}/r/{m}/p    rollup of slots 0..m: profile frames
//! k1/{tenant}/{h}/{sid}/f          the hour's last rollup (its m), once done
//! {any value key}.{c}              chunk c of a value over the value limit
//! ```
//!
//! Every value ends with a tag: 0 = the bytes precede it, 1 = a chunk count
//! precedes it and the bytes are in the chunks. (At the end, a reader drops
//! it without moving the bytes.) `sid` is a 64-bit hash of the
//! series labels in hex. Keys stay under [`MAX_KEY_LEN`] because tenant IDs
//! are at most 150 bytes.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};
use kiln_proto::types::v1::LabelPair;
use prost::Message;

use crate::error::{Error, Result};
use crate::kv::{KvStore, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::labels::Labels;
use crate::name_tree::NameTree;
use crate::segment::{Segment, StoredProfile, SymbolMerger};

pub const HOUR_MS: i64 = 3_600_000;
/// Slots per compaction: small enough that a query decodes few uncompacted
/// symbol tables, large enough that compaction is rare work for writers.
pub const COMPACT_EVERY: u64 = 6;
/// Keys per batched read: bounds the memory one `get_many` brings in.
const READ_BATCH: usize = 256;
/// Series-hours read together: bounds the rollups held in memory at once.
const ROLLUP_BATCH: usize = 16;
/// A rollup part inflates to at most this many bytes.
const MAX_PART_LEN: usize = 1 << 30;
/// How often a reader re-resolves a series-hour that a compaction changed
/// under it before giving up.
const READ_RETRIES: usize = 4;
/// Deflate level for rollups: fast, and most of the gain of higher levels.
const DEFLATE_LEVEL: u8 = 3;
/// Rollup parts are rewritten by every compaction of their hour; only the
/// hour's last rollup, which stays, is worth deflating.
const PACK_RAW: u8 = 0;
const PACK_DEFLATE: u8 = 1;

const TAG_INLINE: u8 = 0;
const TAG_CHUNKED: u8 = 1;

/// A tenant's view of the store.
pub struct Storage<'a, S: KvStore + ?Sized> {
    kv: &'a S,
    tenant: &'a str,
}

/// What one upload appends: per series, a segment with one profile.
#[derive(Debug, Default)]
pub struct Batch {
    pub series: Vec<SeriesWrite>,
}

/// One series' profile: an encoded [`Segment`] holding only the profile,
/// and the encoded [`Segment`] symbols and [`NameTree`] it refers to, kept
/// apart so each query decodes only what it needs.
#[derive(Debug)]
pub struct SeriesWrite {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub profile: Vec<u8>,
    pub names: Vec<u8>,
    pub symbols: Vec<u8>,
}

impl Batch {
    pub fn extend(&mut self, other: Batch) {
        self.series.extend(other.series);
    }
}

/// A series present in one hour.
#[derive(Clone, Debug)]
pub struct SeriesRef {
    pub hour: i64,
    pub id: u64,
    pub labels: Labels,
}

/// What a query reads of each profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Samples of every profile (span or profile-id filters need them).
    Profiles,
    /// Samples, where profiles whose times all lie in the window may arrive
    /// pre-summed as one profile stamped with the first one's time.
    Merged,
}

/// Times, totals and ids of a rollup's profiles, in slot order, and their
/// sum.
#[derive(Clone, PartialEq, Message)]
struct Totals {
    #[prost(int64, repeated, tag = "1")]
    timestamps_ms: Vec<i64>,
    #[prost(int64, repeated, tag = "2")]
    totals: Vec<i64>,
    /// Stamped with the first profile's time.
    #[prost(message, optional, tag = "3")]
    sum: Option<StoredProfile>,
    /// Profile ids, 16 bytes each.
    #[prost(bytes = "vec", tag = "4")]
    ids: Vec<u8>,
}

/// One stored profile as [`Storage::for_each_total`] reports it.
#[derive(Clone, Copy, Debug)]
pub struct ProfileTotal<'a> {
    pub timestamp_ms: i64,
    pub total: i64,
    /// The profile's id (16 bytes, or empty if it has none).
    pub id: &'a [u8],
}

/// Sizes and counts of stored data (see [`Storage::footprint`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Slots and rollups read.
    pub segments: u64,
    pub profiles: u64,
    pub samples: u64,
    /// Series-log entries.
    pub index_bytes: u64,
    pub profile_bytes: u64,
    pub symbol_bytes: u64,
}

/// Which symbols a read decodes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Symbols {
    None,
    Names,
    Full,
}

impl Symbols {
    /// The rollup part holding them.
    fn part(self) -> Option<&'static str> {
        match self {
            Symbols::None => None,
            Symbols::Names => Some("n"),
            Symbols::Full => Some("y"),
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct SeriesEntry {
    #[prost(fixed64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "2")]
    labels: Vec<LabelPair>,
}

/// Which rollup and slots hold a series-hour's profiles.
struct Layout {
    series: usize,
    rollup: u64,
    slots: u64,
}

impl<'a, S: KvStore + ?Sized> Storage<'a, S> {
    pub fn new(kv: &'a S, tenant: &'a str) -> Self {
        Self { kv, tenant }
    }

    /// Appends every write durably; when this returns Ok the data is visible
    /// to any later query. Then compacts: a series-hour whose slot log
    /// reached a multiple of [`COMPACT_EVERY`], and the previous hour of a
    /// series writing its first slot of an hour (the previous hour is then
    /// complete). A failed compaction leaves the slots in place for the next
    /// one, so it does not fail the write.
    pub fn write(&self, batch: Batch) -> Result<()> {
        let Batch { series: writes } = batch;
        if writes.is_empty() {
            return Ok(());
        }
        let placed: Vec<(i64, u64)> =
            writes.iter().map(|w| (w.timestamp_ms.div_euclid(HOUR_MS), series_id(&w.labels))).collect();
        let mut entries = self.register(&writes, &placed)?;
        let mut filled = Vec::new();
        let mut new_hour = Vec::new();
        for (w, &(hour, id)) in writes.iter().zip(&placed) {
            let slots = self.kv.increment(&self.series_key(hour, id, format_args!("n")), 1)?;
            push_value(&mut entries, self.series_key(hour, id, format_args!("{}", slots - 1)), &Slot::encode(w));
            if slots % COMPACT_EVERY == 0 {
                filled.push((hour, id, slots));
            }
            if slots == 1 {
                new_hour.push((hour - 1, id));
            }
        }
        // Slots and series entries land together: a reader that finds a
        // series in the log finds its data.
        self.kv.set_many(entries)?;
        for (hour, id, slots) in filled {
            let _ = self.compact(hour, id, slots, false);
        }
        for (hour, id) in new_hour {
            let _ = self.finalize(hour, id);
        }
        Ok(())
    }

    /// Compacts every slot of a series-hour no more writes are expected in.
    fn finalize(&self, hour: i64, id: u64) -> Result<()> {
        let slots = self.kv.increment(&self.series_key(hour, id, format_args!("n")), 0)?;
        if slots > 0 && self.newest_rollups(&[(hour, id, slots)])?[0] < slots {
            self.compact(hour, id, slots, true)?;
        }
        Ok(())
    }

    /// Series-log entries for the series not yet in their hour's log. Two
    /// writers racing on the same new series may both append it: readers
    /// de-duplicate.
    fn register(&self, writes: &[SeriesWrite], placed: &[(i64, u64)]) -> Result<Vec<(String, Vec<u8>)>> {
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
            if first == 0 {
                // This write opens the hour: note it in the tenant's hour log.
                let slot = self.kv.increment(&self.key(format_args!("hn")), 1)? - 1;
                entries.push((self.key(format_args!("h/{slot}")), hour.to_le_bytes().to_vec()));
            }
            for (slot, (i, marker)) in (first..).zip(group) {
                let entry = SeriesEntry { id: placed[*i].1, labels: to_pairs(&writes[*i].labels) };
                entries.push((self.key(format_args!("{hour}/s/{slot}")), entry.encode_to_vec()));
                entries.push((marker.clone(), vec![1]));
            }
        }
        Ok(entries)
    }

    /// Folds the newest rollup before `upto` and the slots after it into
    /// rollup `upto`, then deletes what it replaced. Gives up (leaving
    /// everything as it was) when a slot is still being written. A `last`
    /// rollup (a count that is not a multiple of [`COMPACT_EVERY`]) is named
    /// by the hour's `f` key, as readers cannot guess it.
    fn compact(&self, hour: i64, id: u64, upto: u64, last: bool) -> Result<()> {
        let base = self.newest_rollups(&[(hour, id, upto - 1)])?[0];
        let slot_keys: Vec<String> = (base..upto).map(|j| self.series_key(hour, id, format_args!("{j}"))).collect();
        let slots = self.get_values(slot_keys.clone())?;
        if slots.iter().any(Option::is_none) {
            return Ok(());
        }
        let (mut merger, mut summary, mut totals, mut frames) = if base == 0 {
            (SymbolMerger::new(Segment::default()), Vec::new(), Totals::default(), Vec::new())
        } else {
            let [t, y, _, p] = self.rollup_keys(hour, id, base);
            let parts = self.get_values(vec![t, y, p])?;
            let [Some(t), Some(y), Some(p)] = <[_; 3]>::try_from(parts).expect("three parts") else {
                return Ok(());
            };
            let mut totals = decode_totals(&t)?;
            let summary = totals.sum.take().map(|p| dense_values(&[p])).unwrap_or_default();
            (SymbolMerger::new(Segment::decode_bytes(&unpack(&y)?)?), summary, totals, p)
        };

        let mut profiles = Vec::new();
        for slot in slots.into_iter().flatten() {
            let slot = Slot::parse(&slot)?;
            let nodes = merger.add(&Segment::decode_bytes(slot.symbols)?);
            for mut p in Segment::decode_bytes(slot.profile)?.profiles {
                for stack in &mut p.stacks {
                    *stack = nodes.get(*stack as usize).copied().unwrap_or(0);
                }
                add_dense(&mut summary, &p);
                totals.timestamps_ms.push(p.timestamp_ms);
                totals.totals.push(p.total);
                let mut id = [0u8; 16];
                if p.id.len() == 16 {
                    id.copy_from_slice(&p.id);
                }
                totals.ids.extend_from_slice(&id);
                profiles.push(p);
            }
        }
        let first_ms = totals.timestamps_ms.iter().copied().min().unwrap_or(0);
        totals.sum = Some(sparse_profile(&summary, first_ms));
        let symbols = merger.finish();
        encode_frame(&mut frames, profiles);

        let [t, y, n, p] = self.rollup_keys(hour, id, upto);
        let mut entries = Vec::new();
        push_value(&mut entries, y, &pack(&symbols.encode_to_vec(), last));
        push_value(&mut entries, n, &pack(&NameTree::of(&symbols).encode_to_vec(), last));
        push_value(&mut entries, p, &frames);
        self.kv.set_many(entries)?;
        // `t` (and `f`) last: a reader trusts a rollup once its `t` exists.
        let mut entries = Vec::new();
        push_value(&mut entries, t, &pack(&totals.encode_to_vec(), true));
        if last {
            entries.push((self.series_key(hour, id, format_args!("f")), upto.to_le_bytes().to_vec()));
        }
        self.kv.set_many(entries)?;

        // The old `t` goes first, so no reader picks a rollup whose other
        // parts are being deleted without a newer one to turn to.
        let mut stale = slot_keys;
        if base > 0 {
            let [t, y, n, p] = self.rollup_keys(hour, id, base);
            self.delete_values(vec![t])?;
            stale.extend([y, n, p]);
        }
        self.delete_values(stale)
    }

    /// For each (hour, series, slots), the newest rollup covering at most
    /// that many slots (0 = none): multiples of [`COMPACT_EVERY`] probed by
    /// their `t` key, and the hour's last rollup named by `f`.
    fn newest_rollups(&self, of: &[(i64, u64, u64)]) -> Result<Vec<u64>> {
        let mut probes: Vec<(usize, Option<u64>, String)> = Vec::new();
        for (i, &(hour, id, slots)) in of.iter().enumerate() {
            for m in (COMPACT_EVERY..=slots).step_by(COMPACT_EVERY as usize) {
                probes.push((i, Some(m), self.series_key(hour, id, format_args!("r/{m}/t"))));
            }
            if slots > 0 {
                probes.push((i, None, self.series_key(hour, id, format_args!("f"))));
            }
        }
        let mut newest = vec![0u64; of.len()];
        for batch in probes.chunks(READ_BATCH) {
            let keys: Vec<String> = batch.iter().map(|(_, _, k)| k.clone()).collect();
            for ((i, m, _), found) in batch.iter().zip(self.kv.get_many(&keys)?) {
                let Some(found) = found else { continue };
                let m = match m {
                    Some(m) => *m,
                    None => found.try_into().map(u64::from_le_bytes).map_err(|_| Error::Corrupt("bad f key".into()))?,
                };
                if m <= of[*i].2 {
                    newest[*i] = newest[*i].max(m);
                }
            }
        }
        Ok(newest)
    }

    /// The hours holding data, in no particular order (each once, unless a
    /// writer crashed between opening an hour and writing it).
    pub fn hours(&self) -> Result<Vec<i64>> {
        let n = self.kv.increment(&self.key(format_args!("hn")), 0)?;
        let keys: Vec<String> = (0..n).map(|i| self.key(format_args!("h/{i}"))).collect();
        let mut hours = Vec::with_capacity(keys.len());
        for batch in keys.chunks(READ_BATCH) {
            for value in self.kv.get_many(batch)?.into_iter().flatten() {
                let bytes: [u8; 8] = value[..].try_into().map_err(|_| Error::Corrupt("hour log entry".into()))?;
                hours.push(i64::from_le_bytes(bytes));
            }
        }
        Ok(hours)
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

    /// Calls `f` with the profiles of the given series that may lie in
    /// `[start_ms, end_ms)`, a segment at a time: its symbols and profiles
    /// (callers still filter profiles by time). With [`Detail::Merged`],
    /// profiles compacted together whose times all lie in the window arrive
    /// pre-summed as one profile.
    pub fn for_each_segment(
        &self,
        series: &[SeriesRef],
        window: (i64, i64),
        detail: Detail,
        mut f: impl FnMut(&SeriesRef, &Segment, &[StoredProfile]) -> Result<()>,
    ) -> Result<()> {
        self.read_profiles(series, window, detail, Symbols::Full, |s, bytes, profiles| {
            f(s, &Segment::decode_bytes(bytes)?, profiles)
        })
    }

    /// Like [`Self::for_each_segment`] with the segment's [`NameTree`] in
    /// place of its symbols: all a flame graph needs, and far less to read.
    pub fn for_each_name_tree(
        &self,
        series: &[SeriesRef],
        window: (i64, i64),
        detail: Detail,
        mut f: impl FnMut(&SeriesRef, &NameTree, &[StoredProfile]) -> Result<()>,
    ) -> Result<()> {
        self.read_profiles(series, window, detail, Symbols::Names, |s, bytes, profiles| {
            let names = NameTree::decode(bytes).map_err(|e| Error::Corrupt(format!("name tree: {e}")))?;
            f(s, &names, profiles)
        })
    }

    fn read_profiles(
        &self,
        series: &[SeriesRef],
        (start_ms, end_ms): (i64, i64),
        detail: Detail,
        symbols: Symbols,
        mut f: impl FnMut(&SeriesRef, &[u8], &[StoredProfile]) -> Result<()>,
    ) -> Result<()> {
        let merged = detail == Detail::Merged;
        let inside = |times: &[i64]| times.iter().all(|&t| t >= start_ms && t < end_ms);
        self.read(
            series,
            symbols,
            |i, part| match part {
                Part::Slot { profiles, symbols } => f(&series[i], &symbols, &profiles),
                Part::Rollup { totals, symbols, profiles } => {
                    let symbols = unpack(&symbols)?;
                    if merged && inside(&totals.timestamps_ms) {
                        return f(&series[i], &symbols, core::slice::from_ref(&totals.sum.unwrap_or_default()));
                    }
                    let profiles = decode_frames(&profiles.unwrap_or_default(), |first, last| {
                        if last < start_ms || first >= end_ms {
                            Take::Skip
                        } else if merged && inside(&[first, last]) {
                            Take::Sum
                        } else {
                            Take::Profiles
                        }
                    })?;
                    f(&series[i], &symbols, &profiles)
                }
            },
            |totals| !merged || !inside(&totals.timestamps_ms),
        )
    }

    /// Calls `f` with the index in `series` and the time, total and id of
    /// every stored profile of the given series; reads no samples or symbols
    /// where rollups exist.
    pub fn for_each_total(&self, series: &[SeriesRef], mut f: impl FnMut(usize, ProfileTotal<'_>)) -> Result<()> {
        self.read(
            series,
            Symbols::None,
            |i, part| {
                match part {
                    Part::Slot { profiles, .. } => profiles
                        .iter()
                        .for_each(|p| f(i, ProfileTotal { timestamp_ms: p.timestamp_ms, total: p.total, id: &p.id })),
                    Part::Rollup { totals, .. } => {
                        let ids = totals.ids.chunks_exact(16).map(Some).chain(core::iter::repeat(None));
                        for ((&timestamp_ms, &total), id) in totals.timestamps_ms.iter().zip(&totals.totals).zip(ids) {
                            f(i, ProfileTotal { timestamp_ms, total, id: id.unwrap_or_default() });
                        }
                    }
                }
                Ok(())
            },
            |_| false,
        )
    }

    /// Calls `f` with every stored profile of the given series (samples,
    /// no symbols), a piece at a time.
    pub fn for_each_profiles(
        &self,
        series: &[SeriesRef],
        mut f: impl FnMut(&SeriesRef, &[StoredProfile]) -> Result<()>,
    ) -> Result<()> {
        self.read(
            series,
            Symbols::None,
            |i, part| match part {
                Part::Slot { profiles, .. } => f(&series[i], &profiles),
                Part::Rollup { profiles, .. } => {
                    f(&series[i], &decode_frames(&profiles.unwrap_or_default(), |_, _| Take::Profiles)?)
                }
            },
            |_| true,
        )
    }

    /// What the given series hold: pieces, profiles, samples and bytes, as
    /// AnalyzeQuery reports them. Reads everything.
    pub fn footprint(&self, series: &[SeriesRef]) -> Result<Footprint> {
        let mut out = Footprint {
            index_bytes: series
                .iter()
                .map(|s| SeriesEntry { id: s.id, labels: to_pairs(&s.labels) }.encoded_len() as u64)
                .sum(),
            ..Default::default()
        };
        self.read(
            series,
            Symbols::Full,
            |_, part| {
                let (profiles, profile_bytes, symbol_bytes) = match part {
                    Part::Slot { profiles, symbols } => {
                        let segment = Segment { profiles, ..Default::default() };
                        let bytes = segment.encoded_len() as u64;
                        (segment.profiles, bytes, symbols.len() as u64)
                    }
                    Part::Rollup { symbols, profiles, .. } => {
                        let frames = profiles.unwrap_or_default();
                        (decode_frames(&frames, |_, _| Take::Profiles)?, frames.len() as u64, symbols.len() as u64)
                    }
                };
                out.segments += 1;
                out.profiles += profiles.len() as u64;
                out.samples += profiles.iter().map(|p| p.stacks.len() as u64).sum::<u64>();
                out.profile_bytes += profile_bytes;
                out.symbol_bytes += symbol_bytes;
                Ok(())
            },
            |_| true,
        )?;
        Ok(out)
    }

    /// Resolves every series-hour to its newest rollup and later slots, and
    /// hands each to `f` with the `symbols` asked for; rollup profile frames
    /// are fetched when `frames(totals)` says so.
    fn read(
        &self,
        series: &[SeriesRef],
        symbols: Symbols,
        mut f: impl FnMut(usize, Part) -> Result<()>,
        frames: impl Fn(&Totals) -> bool,
    ) -> Result<()> {
        let mut counts = Vec::with_capacity(series.len());
        for s in series {
            counts.push((s.hour, s.id, self.kv.increment(&self.series_key(s.hour, s.id, format_args!("n")), 0)?));
        }
        let rollups = self.newest_rollups(&counts)?;
        let mut layouts: Vec<Layout> = (0..series.len())
            .map(|i| Layout { series: i, rollup: rollups[i], slots: counts[i].2 })
            .filter(|l| l.slots > 0)
            .collect();
        let mut retries = 0;
        while !layouts.is_empty() {
            let mut stale = Vec::new();
            for group in layouts.chunks(ROLLUP_BATCH) {
                stale.extend(self.read_group(series, group, symbols, &mut f, &frames)?);
            }
            // A compaction replaced what some layouts expected: re-resolve
            // those series-hours (nothing of them reached `f`).
            retries += 1;
            if retries > READ_RETRIES && !stale.is_empty() {
                return Err(Error::Store(crate::kv::StoreError("series changed too often while reading".into())));
            }
            layouts = stale;
        }
        Ok(())
    }

    /// Reads one group of layouts and hands each whole one to `f`; returns,
    /// re-resolved, those a compaction changed under the read. Nothing of a
    /// changed layout reaches `f`, so the retry never counts twice.
    fn read_group(
        &self,
        series: &[SeriesRef],
        group: &[Layout],
        symbols: Symbols,
        f: &mut impl FnMut(usize, Part) -> Result<()>,
        frames: &impl Fn(&Totals) -> bool,
    ) -> Result<Vec<Layout>> {
        let key = |l: &Layout, rest: core::fmt::Arguments<'_>| {
            let s = &series[l.series];
            self.series_key(s.hour, s.id, rest)
        };
        let mut stale: Vec<&Layout> = Vec::new();

        // Rollup parts: `t` first, then `y` and `p` as needed.
        let with_rollup: Vec<&Layout> = group.iter().filter(|l| l.rollup > 0).collect();
        let keys = with_rollup.iter().map(|l| key(l, format_args!("r/{}/t", l.rollup))).collect();
        let mut rollups: Vec<(&Layout, Totals)> = Vec::new();
        for (l, t) in with_rollup.into_iter().zip(self.get_values(keys)?) {
            match t {
                None => stale.push(l),
                Some(t) => rollups.push((l, decode_totals(&t)?)),
            }
        }
        let mut wanted: Vec<String> = Vec::new();
        for (l, totals) in &rollups {
            if let Some(part) = symbols.part() {
                wanted.push(key(l, format_args!("r/{}/{part}", l.rollup)));
            }
            if frames(totals) {
                wanted.push(key(l, format_args!("r/{}/p", l.rollup)));
            }
        }
        let mut values = self.get_values(wanted)?.into_iter();
        let mut parts: HashMap<usize, Part> = HashMap::new();
        for (l, totals) in rollups {
            let y = if symbols.part().is_some() { values.next().flatten() } else { Some(Vec::new()) };
            let p = if frames(&totals) { values.next().flatten().map(Some) } else { Some(None) };
            let (Some(symbols), Some(profiles)) = (y, p) else {
                stale.push(l);
                continue;
            };
            parts.insert(l.series, Part::Rollup { totals, symbols, profiles });
        }

        // Slots after each rollup. A missing slot is still being written, or
        // a newer rollup took it.
        let stale_series: HashSet<usize> = stale.iter().map(|l| l.series).collect();
        let mut slot_keys: Vec<(&Layout, String)> = Vec::new();
        for l in group.iter().filter(|l| !stale_series.contains(&l.series)) {
            slot_keys.extend((l.rollup..l.slots).map(|j| (l, key(l, format_args!("{j}")))));
        }
        let mut slots: Vec<(&Layout, Part)> = Vec::new();
        let mut gaps: Vec<&Layout> = Vec::new();
        for batch in slot_keys.chunks(READ_BATCH) {
            let values = self.get_values(batch.iter().map(|(_, k)| k.clone()).collect())?;
            for ((l, _), value) in batch.iter().zip(values) {
                match value {
                    Some(v) => {
                        let slot = Slot::parse(&v)?;
                        let profiles = Segment::decode_bytes(slot.profile)?.profiles;
                        let symbols = match symbols {
                            Symbols::None => Vec::new(),
                            Symbols::Names => slot.names.to_vec(),
                            Symbols::Full => slot.symbols.to_vec(),
                        };
                        slots.push((l, Part::Slot { profiles, symbols }));
                    }
                    None if gaps.last().is_none_or(|g| g.series != l.series) => gaps.push(l),
                    None => {}
                }
            }
        }
        let probe: Vec<(i64, u64, u64)> = gaps.iter().map(|l| self.place(series, l)).collect();
        for (l, newest) in gaps.into_iter().zip(self.newest_rollups(&probe)?) {
            if newest > l.rollup {
                stale.push(l);
            }
        }

        let stale_series: HashSet<usize> = stale.iter().map(|l| l.series).collect();
        for l in group.iter().filter(|l| !stale_series.contains(&l.series)) {
            if let Some(part) = parts.remove(&l.series) {
                f(l.series, part)?;
            }
        }
        for (l, part) in slots.into_iter().filter(|(l, _)| !stale_series.contains(&l.series)) {
            f(l.series, part)?;
        }
        let probe: Vec<(i64, u64, u64)> = stale.iter().map(|l| self.place(series, l)).collect();
        let newest = self.newest_rollups(&probe)?;
        Ok(stale
            .into_iter()
            .zip(newest)
            .map(|(l, rollup)| Layout { series: l.series, rollup, slots: l.slots })
            .collect())
    }

    fn place(&self, series: &[SeriesRef], l: &Layout) -> (i64, u64, u64) {
        (series[l.series].hour, series[l.series].id, l.slots)
    }

    /// The `t`, `y`, `n` and `p` keys of rollup `m`.
    fn rollup_keys(&self, hour: i64, id: u64, m: u64) -> [String; 4] {
        ["t", "y", "n", "p"].map(|part| self.series_key(hour, id, format_args!("r/{m}/{part}")))
    }

    /// Deletes values and the chunks of chunked ones.
    fn delete_values(&self, keys: Vec<String>) -> Result<()> {
        let mut all = Vec::with_capacity(keys.len());
        for (key, value) in keys.iter().zip(self.kv.get_many(&keys)?) {
            if let Some(v) = value
                && v.last() == Some(&TAG_CHUNKED)
            {
                all.extend((0..chunk_count(key, &v[..v.len() - 1])?).map(|c| format!("{key}.{c}")));
            }
        }
        all.extend(keys);
        self.kv.delete_many(&all)?;
        Ok(())
    }

    /// Batched get that resolves chunked values.
    fn get_values(&self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>> {
        let values = self.kv.get_many(&keys)?;
        let mut out = Vec::with_capacity(values.len());
        for (key, value) in keys.iter().zip(values) {
            out.push(match value {
                None => None,
                Some(mut v) => match v.pop() {
                    Some(TAG_INLINE) => Some(v),
                    Some(TAG_CHUNKED) => self.read_chunks(key, &v)?,
                    _ => return Err(Error::Corrupt(format!("value {key}: unknown tag"))),
                },
            });
        }
        Ok(out)
    }

    /// A chunked value; `None` when a chunk is gone (deleted meanwhile).
    fn read_chunks(&self, key: &str, count: &[u8]) -> Result<Option<Vec<u8>>> {
        let names: Vec<String> = (0..chunk_count(key, count)?).map(|c| format!("{key}.{c}")).collect();
        let mut bytes = Vec::new();
        for chunk in self.kv.get_many(&names)? {
            let Some(chunk) = chunk else { return Ok(None) };
            bytes.extend(chunk);
        }
        Ok(Some(bytes))
    }

    fn series_key(&self, hour: i64, id: u64, rest: core::fmt::Arguments<'_>) -> String {
        self.key(format_args!("{hour}/{id:016x}/{rest}"))
    }

    fn key(&self, rest: core::fmt::Arguments<'_>) -> String {
        let key = format!("k1/{}/{}", self.tenant, rest);
        debug_assert!(key.len() <= MAX_KEY_LEN, "key too long: {key}");
        key
    }
}

/// One piece of a series-hour as a reader gets it, with the encoded symbols
/// asked for (empty for none).
enum Part {
    Slot {
        profiles: Vec<StoredProfile>,
        symbols: Vec<u8>,
    },
    /// `symbols` is packed; `profiles` is the `p` part when it was read.
    Rollup {
        totals: Totals,
        symbols: Vec<u8>,
        profiles: Option<Vec<u8>>,
    },
}

fn chunk_count(key: &str, manifest: &[u8]) -> Result<u32> {
    let count: [u8; 4] = manifest.try_into().map_err(|_| Error::Corrupt(format!("value {key}: bad manifest")))?;
    Ok(u32::from_le_bytes(count))
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(bytes, DEFLATE_LEVEL)
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(bytes, MAX_PART_LEN)
        .map_err(|e| Error::Corrupt(format!("rollup part: {e}")))
}

fn decode_totals(t: &[u8]) -> Result<Totals> {
    Totals::decode(&unpack(t)?[..]).map_err(|e| Error::Corrupt(format!("rollup totals: {e}")))
}

/// A rollup part behind a byte saying whether it is deflated.
fn pack(bytes: &[u8], compress: bool) -> Vec<u8> {
    if compress {
        let mut out = vec![PACK_DEFLATE];
        out.extend(deflate(bytes));
        out
    } else {
        let mut out = Vec::with_capacity(bytes.len() + 1);
        out.push(PACK_RAW);
        out.extend_from_slice(bytes);
        out
    }
}

fn unpack(bytes: &[u8]) -> Result<Vec<u8>> {
    match bytes.split_first() {
        Some((&PACK_RAW, rest)) => Ok(rest.to_vec()),
        Some((&PACK_DEFLATE, rest)) => inflate(rest),
        _ => Err(Error::Corrupt("rollup part: unknown packing".into())),
    }
}

/// A slot's three encoded parts.
struct Slot<'a> {
    profile: &'a [u8],
    names: &'a [u8],
    symbols: &'a [u8],
}

impl<'a> Slot<'a> {
    /// Length-prefixed profile, length-prefixed name tree, then symbols.
    fn encode(w: &SeriesWrite) -> Vec<u8> {
        let mut slot = Vec::with_capacity(8 + w.profile.len() + w.names.len() + w.symbols.len());
        for part in [&w.profile, &w.names] {
            slot.extend_from_slice(&(part.len() as u32).to_le_bytes());
            slot.extend_from_slice(part);
        }
        slot.extend_from_slice(&w.symbols);
        slot
    }

    fn parse(slot: &'a [u8]) -> Result<Self> {
        let truncated = || Error::Corrupt("slot: truncated".into());
        let (profile, rest) = split_prefixed(slot).ok_or_else(truncated)?;
        let (names, symbols) = split_prefixed(rest).ok_or_else(truncated)?;
        Ok(Slot { profile, names, symbols })
    }
}

/// Splits a u32-length-prefixed piece off the front of `bytes`.
fn split_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_at_checked(4)?;
    rest.split_at_checked(u32::from_le_bytes(len.try_into().ok()?) as usize)
}

/// Appends one compaction's profiles to a `p` part as a frame: its time
/// span, the deflated sum of its profiles, the deflated profiles. A query
/// whose window covers the frame reads only the sum.
fn encode_frame(frames: &mut Vec<u8>, profiles: Vec<StoredProfile>) {
    let first = profiles.iter().map(|p| p.timestamp_ms).min().unwrap_or(0);
    let last = profiles.iter().map(|p| p.timestamp_ms).max().unwrap_or(0);
    let sum = deflate(
        &Segment { profiles: vec![sparse_profile(&dense_values(&profiles), first)], ..Default::default() }
            .encode_to_vec(),
    );
    let all = deflate(&Segment { profiles, ..Default::default() }.encode_to_vec());
    let len = 16 + 4 + sum.len() + all.len();
    frames.extend_from_slice(&(len as u32).to_le_bytes());
    frames.extend_from_slice(&first.to_le_bytes());
    frames.extend_from_slice(&last.to_le_bytes());
    frames.extend_from_slice(&(sum.len() as u32).to_le_bytes());
    frames.extend_from_slice(&sum);
    frames.extend_from_slice(&all);
}

/// How a reader takes a frame, given its time span.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    Skip,
    Sum,
    Profiles,
}

/// The profiles of a `p` part, each frame taken as `take(first, last)` says.
fn decode_frames(mut frames: &[u8], take: impl Fn(i64, i64) -> Take) -> Result<Vec<StoredProfile>> {
    let corrupt = || Error::Corrupt("rollup frame".into());
    let mut profiles = Vec::new();
    while !frames.is_empty() {
        let (frame, rest) = split_prefixed(frames).ok_or_else(corrupt)?;
        let (span, frame) = frame.split_at_checked(16).ok_or_else(corrupt)?;
        let first = i64::from_le_bytes(span[..8].try_into().expect("8 bytes"));
        let last = i64::from_le_bytes(span[8..].try_into().expect("8 bytes"));
        let (sum, all) = split_prefixed(frame).ok_or_else(corrupt)?;
        frames = rest;
        let part = match take(first, last) {
            Take::Skip => continue,
            Take::Sum => sum,
            Take::Profiles => all,
        };
        profiles.extend(Segment::decode_bytes(&inflate(part)?)?.profiles);
    }
    Ok(profiles)
}

/// The summed values per stack node of `profiles`, indexed by node.
fn dense_values(profiles: &[StoredProfile]) -> Vec<i64> {
    let mut dense = Vec::new();
    profiles.iter().for_each(|p| add_dense(&mut dense, p));
    dense
}

fn add_dense(dense: &mut Vec<i64>, p: &StoredProfile) {
    for (&stack, &value) in p.stacks.iter().zip(&p.values) {
        if dense.len() <= stack as usize {
            dense.resize(stack as usize + 1, 0);
        }
        dense[stack as usize] += value;
    }
}

/// The inverse of [`dense_values`]: one sample per non-zero node.
fn sparse_profile(dense: &[i64], timestamp_ms: i64) -> StoredProfile {
    let mut p = StoredProfile { timestamp_ms, ..Default::default() };
    for (node, &value) in dense.iter().enumerate().filter(|(_, v)| **v != 0) {
        p.stacks.push(node as u32);
        p.values.push(value);
        p.total += value;
    }
    p
}

/// Stores `value` under `key` followed by its tag, split into chunks when over the
/// value limit. Chunks precede the manifest in the batch; all land in one
/// `set_many`.
fn push_value(entries: &mut Vec<(String, Vec<u8>)>, key: String, value: &[u8]) {
    if value.len() < MAX_VALUE_LEN {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.extend_from_slice(value);
        v.push(TAG_INLINE);
        entries.push((key, v));
        return;
    }
    let chunks = value.chunks(MAX_VALUE_LEN);
    let mut manifest = (chunks.len() as u32).to_le_bytes().to_vec();
    manifest.push(TAG_CHUNKED);
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

impl MemoryStore {
    /// Every stored key and value, as a host copies them into its own store.
    pub fn into_entries(self) -> Vec<(String, Vec<u8>)> {
        self.map.into_inner().into_iter().collect()
    }
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

    fn delete_many(&self, keys: &[String]) -> Result<(), crate::kv::StoreError> {
        let mut map = self.map.borrow_mut();
        for k in keys {
            map.remove(k);
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
    use crate::segment::SegmentBuilder;
    use alloc::string::ToString;

    fn labels(service: &str) -> Labels {
        Labels::from_pairs([("__name__", "process_cpu"), ("service_name", service)])
    }

    /// A batch of one series: a profile of one sample `root;leaf` worth
    /// `value`, whose function names are `root` and `leaf`.
    fn batch(service: &str, timestamp_ms: i64, leaf: &str, value: i64) -> Batch {
        let mut p = crate::pprof::tests::sample_profile();
        p.string_table[6] = leaf.to_string();
        let mut b = SegmentBuilder::new(&p, 100);
        let stack = b.add_stack(&p.sample[0]).unwrap();
        let segment = b.finish();
        let profile = StoredProfile {
            timestamp_ms,
            total: value,
            stacks: vec![stack],
            values: vec![value],
            ..Default::default()
        };
        let profile = Segment { profiles: vec![profile], ..Default::default() }.encode_to_vec();
        Batch {
            series: vec![SeriesWrite {
                labels: labels(service),
                timestamp_ms,
                profile,
                names: NameTree::of(&segment).encode_to_vec(),
                symbols: segment.encode_to_vec(),
            }],
        }
    }

    /// (service, leaf function, time, total) of every profile read.
    fn read_all(
        store: &Storage<'_, MemoryStore>,
        series: &[SeriesRef],
        detail: Detail,
    ) -> Vec<(String, String, i64, i64)> {
        let mut seen = Vec::new();
        store
            .for_each_segment(series, (i64::MIN, i64::MAX), detail, |s, symbols, profiles| {
                for p in profiles {
                    for &node in &p.stacks {
                        let loc = &symbols.locations[symbols.stack_locations[node as usize - 1] as usize - 1];
                        let f = &symbols.functions[loc.line[0].function_id as usize - 1];
                        let name = symbols.strings[f.name as usize].clone();
                        seen.push((s.labels.get("service_name").unwrap().into(), name, p.timestamp_ms, p.total));
                    }
                }
                Ok(())
            })
            .unwrap();
        seen.sort();
        seen
    }

    fn keys(kv: &MemoryStore) -> Vec<String> {
        let mut keys: Vec<String> = kv.map.borrow().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn written_series_and_segments_are_found_by_hour() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "anonymous");
        let t = 10 * HOUR_MS + 5;
        let mut first = batch("a", t, "x", 1);
        first.extend(batch("b", t + HOUR_MS, "y", 2));
        store.write(first).unwrap();
        store.write(batch("a", t + 1, "x", 3)).unwrap();

        let first_hour = store.series(t, t + 10).unwrap();
        assert_eq!(first_hour.len(), 1);
        assert_eq!(first_hour[0].labels.get("service_name"), Some("a"));
        let both = store.series(t, t + HOUR_MS).unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(
            read_all(&store, &both, Detail::Profiles),
            [
                ("a".into(), "x".into(), t, 1),
                ("a".into(), "x".into(), t + 1, 3),
                ("b".into(), "y".into(), t + HOUR_MS, 2)
            ]
        );
        // Another tenant sees nothing.
        assert!(Storage::new(&kv, "other").series(t, t + HOUR_MS).unwrap().is_empty());
    }

    #[test]
    fn large_values_are_chunked() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        let big: String = (0..2_500_000u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        store.write(batch("a", 0, &big, 7)).unwrap();
        let series = store.series(0, 1).unwrap();
        assert_eq!(read_all(&store, &series, Detail::Profiles), [("a".into(), big, 0, 7)]);
    }

    #[test]
    fn compaction_keeps_every_profile_once_and_drops_the_slots() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        let n = 2 * COMPACT_EVERY as i64 + 3;
        for i in 0..n {
            store.write(batch("a", i, if i % 2 == 0 { "even" } else { "odd" }, i + 1)).unwrap();
        }
        let keys = keys(&kv);
        let prefix = format!("k1/t/0/{:016x}/", series_id(&labels("a")));
        let slot_keys =
            keys.iter().filter_map(|k| k.strip_prefix(&prefix)).filter(|rest| rest.parse::<u64>().is_ok()).count();
        assert_eq!(slot_keys, 3, "only the slots after the last compaction stay: {keys:?}");
        assert_eq!(keys.iter().filter(|k| k.contains("/r/")).count(), 4, "one rollup of four parts: {keys:?}");

        let series = store.series(0, n).unwrap();
        let all = read_all(&store, &series, Detail::Profiles);
        let expected: Vec<_> = (0..n)
            .map(|i| ("a".to_string(), (if i % 2 == 0 { "even" } else { "odd" }).to_string(), i, i + 1))
            .collect();
        let mut expected = expected;
        expected.sort();
        assert_eq!(all, expected);

        // Merged: the rollup arrives summed, the later slots one by one.
        let merged = read_all(&store, &series, Detail::Merged);
        let rollup_sum: i64 = (1..=2 * COMPACT_EVERY as i64).sum();
        let merged_total: i64 = merged.iter().filter(|m| m.2 == 0).map(|m| m.3).collect::<Vec<_>>()[0];
        assert_eq!(merged_total, rollup_sum);
        assert_eq!(merged.len(), 2 + 3, "two leaf functions in the summary, three slots");

        let mut totals = Vec::new();
        store.for_each_total(&series, |_, p| totals.push((p.timestamp_ms, p.total))).unwrap();
        totals.sort();
        assert_eq!(totals, (0..n).map(|i| (i, i + 1)).collect::<Vec<_>>());
    }

    #[test]
    fn a_compaction_that_stopped_before_deleting_counts_nothing_twice() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        for i in 0..COMPACT_EVERY as i64 - 1 {
            store.write(batch("a", i, "f", 1)).unwrap();
        }
        // Keep the slots the compaction is about to delete, then put them
        // back as if it had crashed before deleting.
        let before = kv.map.borrow().clone();
        store.write(batch("a", 99, "f", 1)).unwrap();
        for (k, v) in before {
            kv.map.borrow_mut().entry(k).or_insert(v);
        }
        let series = store.series(0, 100).unwrap();
        let mut total = 0;
        store.for_each_total(&series, |_, p| total += p.total).unwrap();
        assert_eq!(total, COMPACT_EVERY as i64);
    }

    #[test]
    fn a_slot_still_being_written_is_skipped_and_blocks_compaction() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        // A writer took slot 0 and has not written it yet.
        let s = series_id(&labels("a"));
        store.write(batch("a", 0, "f", 1)).unwrap();
        let slot0 = format!("k1/t/0/{s:016x}/0");
        let pending = kv.map.borrow_mut().remove(&slot0).unwrap();
        for i in 1..COMPACT_EVERY as i64 {
            store.write(batch("a", i, "f", 1)).unwrap();
        }
        assert!(keys(&kv).iter().all(|k| !k.contains("/r/")), "no rollup over a missing slot");
        let series = store.series(0, 100).unwrap();
        let mut total = 0;
        store.for_each_total(&series, |_, p| total += p.total).unwrap();
        assert_eq!(total, COMPACT_EVERY as i64 - 1);
        // The late slot lands; the next compaction takes everything.
        kv.map.borrow_mut().insert(slot0, pending);
        for i in 0..COMPACT_EVERY as i64 {
            store.write(batch("a", 100 + i, "f", 1)).unwrap();
        }
        let mut total = 0;
        store.for_each_total(&series, |_, p| total += p.total).unwrap();
        assert_eq!(total, 2 * COMPACT_EVERY as i64);
        assert_eq!(keys(&kv).iter().filter(|k| k.contains("/r/")).count(), 4);
    }

    #[test]
    fn the_first_write_of_an_hour_compacts_the_previous_hour() {
        let kv = MemoryStore::default();
        let store = Storage::new(&kv, "t");
        for i in 0..3 {
            store.write(batch("a", i, "f", 1)).unwrap();
        }
        store.write(batch("a", HOUR_MS, "f", 10)).unwrap();
        let hour0: Vec<String> =
            keys(&kv).into_iter().filter(|k| k.starts_with("k1/t/0/") && !k.contains("/s/")).collect();
        assert!(hour0.iter().any(|k| k.ends_with("/r/3/t")) && hour0.iter().any(|k| k.ends_with("/f")), "{hour0:?}");
        assert!(!hour0.iter().any(|k| k.ends_with("/0")), "slots compacted: {hour0:?}");
        // A late write to the finished hour is still read, once.
        store.write(batch("a", 5, "f", 100)).unwrap();
        let series = store.series(0, 2 * HOUR_MS).unwrap();
        let mut total = 0;
        store.for_each_total(&series, |_, p| total += p.total).unwrap();
        assert_eq!(total, 113);
        let merged: i64 = read_all(&store, &series, Detail::Merged).iter().map(|r| r.3).sum();
        assert_eq!(merged, 113);
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

        fn delete_many(&self, keys: &[String]) -> Result<(), crate::kv::StoreError> {
            keys.iter().for_each(|k| self.saw(k));
            self.inner.delete_many(keys)
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
        // The widest hour numbers, chunked values (key suffix `.c`), a
        // compaction and an hour's last rollup (`f`).
        for t in [i64::MIN / 2, -1, i64::MAX / 2] {
            let t = t.div_euclid(HOUR_MS) * HOUR_MS;
            for i in 0..COMPACT_EVERY as i64 {
                store.write(batch("a", t + i, &big, 1)).unwrap();
            }
            store.write(batch("a", t + HOUR_MS, "f", 1)).unwrap();
            let series = store.series(t, t + COMPACT_EVERY as i64).unwrap();
            let mut total = 0;
            store.for_each_total(&series, |_, p| total += p.total).unwrap();
            assert_eq!(total, COMPACT_EVERY as i64);
        }
        assert!(kv.longest.get() <= MAX_KEY_LEN, "longest key {}", kv.longest.get());
    }

    #[test]
    fn series_id_is_stable() {
        assert_eq!(series_id(&labels("a")), series_id(&labels("a")));
        assert_ne!(series_id(&labels("a")), series_id(&labels("b")));
    }
}
