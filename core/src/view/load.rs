//! One file's bytes to its stacks: the format sniffed from the content (gzip
//! first), then the format's reader.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::build::limits;
use super::stacks::{Stacks, StacksBuilder};
use super::stream;
use super::{Format, Loaded};
use crate::FastMap;
use crate::error::{Error, Result};
use crate::ingest::{is_dropped, profile_type};
use crate::legacy::offline;
use crate::pprof::{self, Profile};
use crate::profile_type::ProfileType;
use crate::{gzip, jfr};

/// JFR chunks start with this magic.
const JFR_MAGIC: &[u8] = b"FLR\0";

/// Parses one file. `progress(done, total)` reports bytes of the (inflated)
/// input read so far.
pub fn load(bytes: Vec<u8>, progress: &mut dyn FnMut(u64, u64)) -> Result<Loaded> {
    if bytes.is_empty() {
        return Err(not_a_profile("the file is empty"));
    }
    let bytes = if gzip::is_gzip(&bytes) {
        let mut inflated = Vec::new();
        gzip::decompress_into(&bytes, &mut inflated, usize::MAX).map_err(|e| match e {
            gzip::GzipError::OutOfMemory => out_of_memory(),
            e => not_a_profile(&e.to_string()),
        })?;
        drop(bytes);
        inflated
    } else {
        bytes
    };
    let total = bytes.len() as u64;
    progress(0, total);
    let format = detect(&bytes);
    let mut loaded = Loaded { format, stacks: Vec::new(), types: Vec::new() };
    match format {
        Format::Pprof => {
            let (stacks, types) = stream::read_pprof(bytes, progress)?;
            loaded.add(stacks, types);
        }
        Format::Jfr => {
            let options = jfr::Options { max_decompressed_size: usize::MAX, ..jfr::Options::default() };
            let profiles = jfr::profiles(&bytes, None, &options).map_err(|e| not_a_profile(&e.to_string()))?;
            drop(bytes);
            for p in profiles {
                let metric = p.labels.get("__name__").unwrap_or_default().to_string();
                let (stacks, types) = profile_stacks(&metric, p.profile)?;
                loaded.add(stacks, types);
            }
        }
        Format::Folded => {
            let (metric, profile) = offline::folded(&bytes).map_err(|e| not_a_profile(&format!("folded: {e}")))?;
            drop(bytes);
            let (stacks, types) = profile_stacks(&metric, profile)?;
            loaded.add(stacks, types);
        }
        Format::Speedscope => {
            let profiles = offline::speedscope(&bytes).map_err(|e| not_a_profile(&e))?;
            drop(bytes);
            for (metric, profile) in profiles {
                let (stacks, types) = profile_stacks(&metric, profile)?;
                loaded.add(stacks, types);
            }
        }
    }
    progress(total, total);
    checked(loaded)
}

fn checked(loaded: Loaded) -> Result<Loaded> {
    if loaded.types.is_empty() {
        return Err(not_a_profile("no stack with a non-zero value"));
    }
    Ok(loaded)
}

/// The format of (inflated) bytes: JFR by its magic, speedscope by its
/// opening brace, folded stacks if the start reads as text, else pprof.
fn detect(bytes: &[u8]) -> Format {
    if bytes.starts_with(JFR_MAGIC) {
        return Format::Jfr;
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Format::Speedscope;
    }
    // pprof starts with a field tag and a length or varint: control bytes
    // that text does not have.
    let text = head.iter().all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
    if text { Format::Folded } else { Format::Pprof }
}

/// [`load`] of a pprof decoded whole (prost): the same stacks, read from a
/// materialized profile, for comparisons.
pub fn load_decoded_pprof(profile: Profile) -> Result<Loaded> {
    let metric = offline::pprof_metric(&profile);
    let mut loaded = Loaded { format: Format::Pprof, stacks: Vec::new(), types: Vec::new() };
    let (stacks, types) = profile_stacks(&metric, profile)?;
    loaded.add(stacks, types);
    checked(loaded)
}

/// A decoded profile's stacks, checked and named as the server's ingest does.
fn profile_stacks(metric: &str, mut p: Profile) -> Result<(Stacks, Vec<ProfileType>)> {
    let limits = limits();
    pprof::validate(&p, &limits).map_err(|e| malformed(&e.to_string()))?;
    pprof::truncate_symbols(&mut p, limits.max_symbol_len);
    let types = (0..p.sample_type.len()).map(|column| profile_type(metric, &p, column)).collect();
    let mut b = StacksBuilder::new(p.sample_type.len(), p.location.iter().map(|l| l.id));
    let name = |i: i64| p.string_table.get(i as usize).map_or("", String::as_str);
    let functions: FastMap<u64, u32> = p.function.iter().map(|f| (f.id, b.intern(name(f.name)))).collect();
    for l in &p.location {
        let unsymbolized = l.line.is_empty().then(|| b.intern(&address_name(l.address)));
        let named = l.line.iter().rev().filter_map(|line| functions.get(&line.function_id).copied());
        b.location(unsymbolized.into_iter().chain(named));
    }
    b.reserve(p.sample.len())?;
    for sample in p.sample.iter().filter(|s| !is_dropped(&s.value)) {
        let ids = &sample.location_id;
        let ids = &ids[ids.len().saturating_sub(limits.max_stack_depth)..];
        if b.check(ids)? {
            b.push_ids(0, ids, sample.value.iter().copied())?;
        }
    }
    Ok((b.finish(Vec::new())?, types))
}

/// The frame of a location without line information (unsymbolized code):
/// its address, as pprof draws it. The server, like Pyroscope, drops such
/// locations; a viewer of a file shows everything the file holds, so a
/// stripped profile still has a flame graph and its file's total.
pub(super) fn address_name(address: u64) -> String {
    format!("0x{address:x}")
}

pub(super) fn not_a_profile(why: &str) -> Error {
    Error::invalid(format!("not a profile: {why}"))
}

pub(super) fn malformed(why: &str) -> Error {
    Error::invalid(format!("malformed pprof: {why}"))
}

pub(super) fn out_of_memory() -> Error {
    Error::invalid("out of memory: the file is too large for this page")
}
