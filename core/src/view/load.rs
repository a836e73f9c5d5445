//! One file's bytes to its trees: the format sniffed from the content (gzip
//! first), then the format's reader.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::build::{TreesBuilder, limits};
use super::stream;
use super::{Format, Loaded, TypeTree};
use crate::FastMap;
use crate::error::{Error, Result};
use crate::ingest::{is_dropped, profile_type};
use crate::legacy::offline;
use crate::pprof::{self, Profile};
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
    let mut types = Vec::new();
    match format {
        Format::Pprof => {
            let (trees, names) = stream::read_pprof(&bytes, progress)?;
            drop(bytes);
            trees.finish(names, &mut types)?;
        }
        Format::Jfr => {
            let options = jfr::Options { max_decompressed_size: usize::MAX, ..jfr::Options::default() };
            let profiles = jfr::profiles(&bytes, None, &options).map_err(|e| not_a_profile(&e.to_string()))?;
            drop(bytes);
            for p in profiles {
                let metric = p.labels.get("__name__").unwrap_or_default().to_string();
                profile_trees(&metric, p.profile, &mut types)?;
            }
        }
        Format::Folded => {
            let (metric, profile) = offline::folded(&bytes).map_err(|e| not_a_profile(&format!("folded: {e}")))?;
            drop(bytes);
            profile_trees(&metric, profile, &mut types)?;
        }
        Format::Speedscope => {
            let profiles = offline::speedscope(&bytes).map_err(|e| not_a_profile(&e))?;
            drop(bytes);
            for (metric, profile) in profiles {
                profile_trees(&metric, profile, &mut types)?;
            }
        }
    }
    progress(total, total);
    loaded(format, types)
}

fn loaded(format: Format, types: Vec<TypeTree>) -> Result<Loaded> {
    if types.is_empty() {
        return Err(not_a_profile("no stack with a non-zero value"));
    }
    Ok(Loaded { format, types })
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

/// [`load`] of a pprof decoded whole (prost): the same trees, built from a
/// materialized profile, for comparisons.
pub fn load_decoded_pprof(profile: Profile) -> Result<Loaded> {
    let metric = offline::pprof_metric(&profile);
    let mut types = Vec::new();
    profile_trees(&metric, profile, &mut types)?;
    loaded(Format::Pprof, types)
}

/// A decoded profile's trees, checked and named as the server's ingest does.
pub(super) fn profile_trees(metric: &str, mut p: Profile, out: &mut Vec<TypeTree>) -> Result<()> {
    let limits = limits();
    pprof::validate(&p, &limits).map_err(|e| malformed(&e.to_string()))?;
    pprof::truncate_symbols(&mut p, limits.max_symbol_len);
    let types = (0..p.sample_type.len()).map(|column| profile_type(metric, &p, column)).collect();
    let mut b = TreesBuilder::new(p.sample_type.len());
    let name = |i: i64| p.string_table.get(i as usize).map_or("", String::as_str);
    let functions: FastMap<u64, u32> = p.function.iter().map(|f| (f.id, b.intern(name(f.name)))).collect();
    // Per location id, its frames' name ids, root-most (last line) first.
    let locations: FastMap<u64, Vec<u32>> = p
        .location
        .iter()
        .map(|l| (l.id, l.line.iter().rev().filter_map(|line| functions.get(&line.function_id).copied()).collect()))
        .collect();
    for sample in p.sample.iter().filter(|s| !is_dropped(&s.value)) {
        let ids = &sample.location_id;
        let skip = ids.len().saturating_sub(limits.max_stack_depth);
        let mut node = crate::tree::StackTree::ROOT;
        for id in ids[skip..].iter().rev() {
            let frames =
                locations.get(id).ok_or_else(|| malformed(&format!("sample references unknown location id {id}")))?;
            for &name in frames {
                node = b.child(node, name)?;
            }
        }
        b.add(node, &sample.value);
    }
    b.finish(types, out)
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
