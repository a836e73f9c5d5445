//! JFR (Java Flight Recorder) recordings to profiles, as Pyroscope converts
//! them (`../shared/spec/jfr.md`): chunk after chunk, the metadata event
//! gives the types, the constant pools the stack traces, and the sample
//! events become pprof samples of one profile per profile type, labelled
//! with async-profiler's contexts from the optional `labels` part.
//!
//! One pass over the recording; samples are summed per (stack trace,
//! context) in fixed-size keys, and stacks are resolved to frame names once
//! per distinct stack and chunk. Malformed input of any kind is an
//! `InvalidArgument` error; every count and offset is checked against the
//! bytes actually present, so memory stays proportional to the input.

mod builder;
mod context;
mod events;
mod metadata;
mod plan;
mod pools;
mod reader;
mod symbols;
#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use builder::{FrameKey, ProfileBuilder, ProfileKind, Stacks};
use context::ContextLabels;
use events::{Correlation, Event, EventKind, EventPlans, SampleEvent};
use metadata::Types;
use pools::{Pools, ThreadState};
use reader::Reader;

use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::pprof::Profile;
use crate::{FastMap, gzip};

/// How to convert an upload (the `/ingest` query parameters that matter).
#[derive(Clone, Debug)]
pub struct Options {
    /// Samples per second: one CPU or wall event is worth `1e9 / sample_rate`
    /// ns (0 makes them worth 0).
    pub sample_rate: u32,
    /// Profile start and end (`from`, `until`), Unix ns.
    pub from_nanos: i64,
    pub until_nanos: i64,
    /// Largest size a gzip-compressed recording or labels part may inflate to.
    pub max_decompressed_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { sample_rate: 100, from_nanos: 0, until_nanos: 0, max_decompressed_size: 4 * 1024 * 1024 }
    }
}

/// One produced profile with the series labels the JFR conversion decides:
/// `__name__` (the metric) and, when the recording sets it, `jfr_event`
/// (async-profiler's `event` setting). Callers add the upload's own labels.
#[derive(Debug)]
pub struct JfrProfile {
    pub labels: Labels,
    pub profile: Profile,
}

/// Converts a recording (raw or gzip) and its optional `LabelsSnapshot`
/// (raw or gzip) into profiles, one per profile type that has samples.
pub fn profiles(jfr: &[u8], labels: Option<&[u8]>, options: &Options) -> Result<Vec<JfrProfile>> {
    let inflated;
    let data = if gzip::is_gzip(jfr) {
        inflated = gzip::decompress(jfr, options.max_decompressed_size)
            .map_err(|e| Error::invalid(format!("failed to decompress jfr: {e}")))?;
        &inflated[..]
    } else {
        jfr
    };
    let labels = labels.map(|l| ContextLabels::decode(l, options.max_decompressed_size)).transpose()?;
    let mut converter = Converter::new(options, labels.as_ref());
    let mut pos = 0;
    while pos < data.len() {
        pos += converter.chunk(&data[pos..])?;
    }
    Ok(converter.finish())
}

fn malformed(msg: impl core::fmt::Display) -> Error {
    Error::invalid(format!("jfr: {msg}"))
}

const MAGIC: [u8; 4] = *b"FLR\0";
const HEADER_SIZE: u64 = 68;

/// The fields of a chunk header the reader uses.
struct Header {
    size: u64,
    constant_pool_offset: u64,
    metadata_offset: u64,
}

impl Header {
    fn read(data: &[u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        if r.bytes(4).ok() != Some(&MAGIC[..]) {
            return Err(malformed("invalid chunk magic"));
        }
        let version = r.be_u32()?;
        if !(0x0002_0000..=0x0002_ffff).contains(&version) {
            return Err(malformed(format!("unsupported version {}.{}", version >> 16, version & 0xffff)));
        }
        let size = r.be_u64()?;
        let constant_pool_offset = r.be_u64()?;
        let metadata_offset = r.be_u64()?;
        if size < HEADER_SIZE {
            return Err(malformed(format!("invalid chunk size {size}")));
        }
        if size > data.len() as u64 {
            return Err(malformed(format!("chunk size {size} exceeds the {} bytes left (truncated?)", data.len())));
        }
        for (what, offset) in [("constant pool", constant_pool_offset), ("metadata", metadata_offset)] {
            if offset == 0 || offset >= size {
                return Err(malformed(format!("{what} offset {offset} outside the chunk")));
            }
        }
        Ok(Header { size, constant_pool_offset, metadata_offset })
    }
}

/// Sample values summed per chunk, before stacks are resolved.
type ChunkSamples = FastMap<(ProfileKind, u64, Correlation), [i64; 2]>;

struct Converter<'l> {
    period: i64,
    time_nanos: i64,
    duration_nanos: i64,
    labels: Option<&'l ContextLabels>,
    /// async-profiler's `event` setting, as last seen.
    event: String,
    stacks: Stacks,
    builders: [Option<ProfileBuilder>; ProfileKind::COUNT],
}

impl<'l> Converter<'l> {
    fn new(options: &Options, labels: Option<&'l ContextLabels>) -> Self {
        let period = if options.sample_rate == 0 { 0 } else { 1_000_000_000 / options.sample_rate as i64 };
        Converter {
            period,
            time_nanos: options.from_nanos,
            duration_nanos: options.until_nanos.wrapping_sub(options.from_nanos),
            labels,
            event: String::new(),
            stacks: Stacks::default(),
            builders: Default::default(),
        }
    }

    /// Converts the chunk at the start of `data`; returns its size.
    fn chunk(&mut self, data: &[u8]) -> Result<usize> {
        let header = Header::read(data)?;
        let chunk = &data[..header.size as usize];
        let types = Types::read(chunk, header.metadata_offset as usize)?;
        let pools = Pools::read(chunk, header.constant_pool_offset, &types)?;
        let plans = EventPlans::new(&types);
        let mut samples = ChunkSamples::default();
        let mut pos = HEADER_SIZE as usize;
        while pos < chunk.len() {
            let mut r = Reader::at(chunk, pos);
            let size = r.varlong()?;
            let end = (pos as u64).checked_add(size).filter(|&e| e <= chunk.len() as u64);
            let end = match (size, end) {
                (0, _) => return Err(malformed(format!("event of size 0 at offset {pos}"))),
                (_, None) => return Err(malformed(format!("event at offset {pos} exceeds its chunk"))),
                (_, Some(end)) => end as usize,
            };
            let mut r = Reader::at(&chunk[..end], r.pos());
            let type_id = r.varlong()?;
            match plans.read(&types, type_id, &mut r)? {
                Some(Event::Sample(event)) => self.sample(&event, &pools, &mut samples),
                Some(Event::Setting { name: Some(name), value }) if name == "event" => {
                    self.event = value.unwrap_or_default().into_owned();
                }
                _ => {}
            }
            pos = end;
        }
        self.flush(&pools, samples);
        Ok(chunk.len())
    }

    /// Maps one sample event to its profiles and values (jfr.md §5.1).
    fn sample(&self, e: &SampleEvent, pools: &Pools<'_>, samples: &mut ChunkSamples) {
        let mut add = |kind: ProfileKind, values: [i64; 2]| {
            let sum = samples.entry((kind, e.stack, e.correlation)).or_default();
            sum[0] = sum[0].wrapping_add(values[0]);
            sum[1] = sum[1].wrapping_add(values[1]);
        };
        let state = pools.states.get(&e.state).copied();
        let wall_mode = self.event == "wall";
        let value = e.value as i64;
        match e.kind {
            EventKind::ExecutionSample => {
                if state.is_some_and(|s| s != ThreadState::Sleeping) {
                    add(ProfileKind::Cpu, [self.period, 0]);
                }
                if wall_mode {
                    add(ProfileKind::Wall, [self.period, 0]);
                }
            }
            EventKind::WallClockSample => {
                let ns = value.wrapping_mul(self.period);
                add(ProfileKind::Wall, [ns, 0]);
                if wall_mode && state == Some(ThreadState::Runnable) {
                    add(ProfileKind::Cpu, [ns, 0]);
                }
            }
            EventKind::AllocInNewTlab => add(ProfileKind::AllocInNewTlab, [1, value]),
            EventKind::AllocOutsideTlab => add(ProfileKind::AllocOutsideTlab, [1, value]),
            EventKind::AllocSample => add(ProfileKind::AllocSample, [1, value]),
            EventKind::MonitorEnter => add(ProfileKind::Lock, [1, value]),
            EventKind::ThreadPark => add(ProfileKind::ThreadPark, [1, value]),
            EventKind::LiveObject => add(ProfileKind::LiveObject, [1, 0]),
            EventKind::Malloc => add(ProfileKind::Malloc, [1, value]),
            EventKind::ActiveSetting => {}
        }
    }

    /// Resolves the chunk's stacks and moves its samples into the profiles.
    fn flush(&mut self, pools: &Pools<'_>, samples: ChunkSamples) {
        let mut resolver = Resolver {
            pools,
            names: FastMap::default(),
            stacks: FastMap::default(),
            // Bounded by the pool's size, which is bounded by the input.
            dense_names: alloc::vec![UNRESOLVED; pools.methods.len() * 2 + 1024],
            scratch: Vec::new(),
            name_buf: String::new(),
        };
        for ((kind, stack, correlation), values) in samples {
            let Some(stack) = resolver.stack(stack, &mut self.stacks) else { continue };
            let (time, duration) = (self.time_nanos, self.duration_nanos);
            let builder = self.builders[kind.index()].get_or_insert_with(|| ProfileBuilder::new(kind, time, duration));
            builder.add(&self.stacks, stack, correlation, &values, self.labels);
        }
    }

    fn finish(self) -> Vec<JfrProfile> {
        let event = self.event;
        self.builders
            .into_iter()
            .flatten()
            .filter(|b| !b.is_empty())
            .map(|b| {
                let mut labels = Labels::new();
                labels.set("__name__".into(), b.kind().metric().into());
                if !event.is_empty() {
                    labels.set("jfr_event".into(), event.clone());
                }
                JfrProfile { labels, profile: b.finish() }
            })
            .collect()
    }
}

/// Stack trace and method ids of one chunk resolved to upload-wide ids.
struct Resolver<'p, 'a> {
    pools: &'p Pools<'a>,
    names: FastMap<u64, Option<u32>>,
    stacks: FastMap<u64, Option<u32>>,
    /// Names of method keys below its length ([`UNRESOLVED`] until looked
    /// up, [`MISSING`] when the frame is skipped).
    dense_names: Vec<u32>,
    /// The frames of the stack being resolved.
    scratch: Vec<FrameKey>,
    name_buf: String,
}

impl Resolver<'_, '_> {
    /// The stack of stack trace `key`; `None` when the pool lacks it.
    fn stack(&mut self, key: u64, stacks: &mut Stacks) -> Option<u32> {
        if let Some(&id) = self.stacks.get(&key) {
            return id;
        }
        let id = self.pools.stacks.get(&key).map(|&(start, len)| {
            let frames = &self.pools.frames[start as usize..start as usize + len as usize];
            self.scratch.clear();
            for f in frames {
                if let Some(name) = self.name(f.method, stacks) {
                    self.scratch.push((name, f.line));
                }
            }
            stacks.stack(&self.scratch)
        });
        self.stacks.insert(key, id);
        id
    }

    /// The frame name of method `key`; `None` (frame skipped) when the
    /// method or its class is missing.
    fn name(&mut self, key: u64, stacks: &mut Stacks) -> Option<u32> {
        // async-profiler numbers methods densely from 1: a vector beats a
        // hash lookup on this per-frame path; other keys use the map.
        let dense = (key as usize) < self.dense_names.len();
        if dense {
            match self.dense_names[key as usize] {
                UNRESOLVED => {}
                MISSING => return None,
                id => return Some(id),
            }
        } else if let Some(&id) = self.names.get(&key) {
            return id;
        }
        let symbol = |k: u64| self.pools.symbols.get(&k).map_or("", |s| &**s);
        let id = self.pools.methods.get(&key).and_then(|&(class, name)| {
            let class_name = symbol(*self.pools.classes.get(&class)?);
            symbols::frame_name(class_name, symbol(name), &mut self.name_buf);
            Some(stacks.name(&self.name_buf))
        });
        if dense {
            self.dense_names[key as usize] = id.unwrap_or(MISSING);
        } else {
            self.names.insert(key, id);
        }
        id
    }
}

const UNRESOLVED: u32 = u32::MAX;
const MISSING: u32 = u32::MAX - 1;
