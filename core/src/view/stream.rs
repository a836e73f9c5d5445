//! A pprof read straight from its bytes into trees, never materialized: a
//! decoded [`crate::pprof::Profile`] costs several times its encoded size
//! (a `Vec` per sample, a `String` per string), which a browser tab cannot
//! afford for a 100 MB profile.
//!
//! Two passes. The first reads everything but the samples: the string table
//! (kept as ranges of the input), sample and period types, functions (their
//! names interned once) and locations (each one's frame names, root-most
//! first, in one flat array). The second walks each sample's stack into the
//! shared tree shape; consecutive samples usually share their root-most
//! locations, so the nodes of the previous stack are reused up to the first
//! location that differs. Checks and results are those of
//! [`crate::pprof::validate`] and the decoded path ([`super::load`]'s tests
//! compare both on every pprof of the test data).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::build::{TreesBuilder, limits};
use super::load::{malformed, not_a_profile};
use crate::FastMap;
use crate::error::{Error, Result};
use crate::ingest::is_dropped;
use crate::legacy::offline;
use crate::pprof::{Profile, ValueType};
use crate::profile_type::ProfileType;
use crate::tree::StackTree;

/// Bytes of samples between two progress reports.
const PROGRESS_STEP: usize = 1 << 20;

/// One field of a protobuf message.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32 or 64 bits: no pprof field of interest has them.
    Fixed,
}

/// Protobuf fields over a byte slice.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else { return Err(bad("truncated varint")) };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }

    /// The next field as (number, value); `None` at the end.
    #[inline]
    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 {
            return Err(bad("field number 0"));
        }
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            2 => {
                let len = self.varint()?;
                let end = usize::try_from(len).ok().and_then(|l| self.pos.checked_add(l));
                let bytes = end.and_then(|end| self.buf.get(self.pos..end)).ok_or_else(|| bad("truncated field"))?;
                self.pos += bytes.len();
                Value::Bytes(bytes)
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if self.buf.len() - self.pos < n {
                    return Err(bad("truncated field"));
                }
                self.pos += n;
                Value::Fixed
            }
            _ => return Err(bad(&format!("invalid wire type {wire}"))),
        };
        Ok(Some((field, value)))
    }
}

fn bad(why: &str) -> Error {
    not_a_profile(&format!("not a pprof ({why})"))
}

/// A varint field's value, or an error for a field of another wire type.
#[inline]
fn varint(v: &Value<'_>) -> Result<u64> {
    match v {
        Value::Varint(n) => Ok(*n),
        _ => Err(bad("invalid wire type for an integer")),
    }
}

fn bytes<'a>(v: &Value<'a>) -> Result<&'a [u8]> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(bad("invalid wire type for a message")),
    }
}

/// Appends a repeated integer field, packed or not.
#[inline]
fn repeated(v: &Value<'_>, out: &mut Vec<u64>) -> Result<()> {
    match v {
        Value::Varint(n) => out.push(*n),
        Value::Bytes(packed) => {
            let mut f = Fields::new(packed);
            while f.pos < packed.len() {
                out.push(f.varint()?);
            }
        }
        Value::Fixed => return Err(bad("invalid wire type for an integer")),
    }
    Ok(())
}

fn value_type(bytes: &[u8]) -> Result<ValueType> {
    let mut vt = ValueType::default();
    let mut f = Fields::new(bytes);
    while let Some((field, v)) = f.next()? {
        match field {
            1 => vt.r#type = varint(&v)? as i64,
            2 => vt.unit = varint(&v)? as i64,
            _ => {}
        }
    }
    Ok(vt)
}

/// What the first pass keeps.
struct Symbols<'a> {
    /// Per string index, its bytes in the input.
    strings: Vec<&'a str>,
    sample_types: Vec<ValueType>,
    period_type: Option<ValueType>,
    /// Per function: id and its name's string index.
    functions: Vec<(u64, i64)>,
    /// Per location: id and the range of its lines in `lines`.
    locations: Vec<(u64, u32, u32)>,
    /// Function id per line of every location, innermost first.
    lines: Vec<u64>,
    /// String indexes the validation checks: (index, what).
    checks: Vec<(i64, &'static str)>,
    /// Bytes of the sample fields, for progress.
    sample_bytes: usize,
}

fn first_pass(buf: &[u8]) -> Result<Symbols<'_>> {
    let mut s = Symbols {
        strings: Vec::new(),
        sample_types: Vec::new(),
        period_type: None,
        functions: Vec::new(),
        locations: Vec::new(),
        lines: Vec::new(),
        checks: Vec::new(),
        sample_bytes: 0,
    };
    let mut fields = Fields::new(buf);
    while let Some((field, v)) = fields.next()? {
        match field {
            1 => s.sample_types.push(value_type(bytes(&v)?)?),
            2 => s.sample_bytes += bytes(&v)?.len(),
            3 => {
                let mut f = Fields::new(bytes(&v)?);
                while let Some((field, v)) = f.next()? {
                    match field {
                        5 => s.checks.push((varint(&v)? as i64, "mapping file name")),
                        6 => s.checks.push((varint(&v)? as i64, "mapping build id")),
                        _ => {}
                    }
                }
            }
            4 => {
                let (mut id, start) = (0, s.lines.len() as u32);
                let mut f = Fields::new(bytes(&v)?);
                while let Some((field, v)) = f.next()? {
                    match field {
                        1 => id = varint(&v)?,
                        4 => {
                            let mut line = Fields::new(bytes(&v)?);
                            let mut function_id = 0;
                            while let Some((field, v)) = line.next()? {
                                if field == 1 {
                                    function_id = varint(&v)?;
                                }
                            }
                            s.lines.push(function_id);
                        }
                        _ => {}
                    }
                }
                s.locations.push((id, start, s.lines.len() as u32));
            }
            5 => {
                let (mut id, mut name) = (0, 0);
                let mut f = Fields::new(bytes(&v)?);
                while let Some((field, v)) = f.next()? {
                    match field {
                        1 => id = varint(&v)?,
                        2 => name = varint(&v)? as i64,
                        3 => s.checks.push((varint(&v)? as i64, "function system name")),
                        4 => s.checks.push((varint(&v)? as i64, "function file name")),
                        _ => {}
                    }
                }
                if id == 0 {
                    return Err(malformed("function id is 0"));
                }
                s.checks.push((name, "function name"));
                s.functions.push((id, name));
            }
            6 => {
                let text = core::str::from_utf8(bytes(&v)?).map_err(|_| bad("a string is not UTF-8"))?;
                s.strings.push(text);
            }
            11 => s.period_type = Some(value_type(bytes(&v)?)?),
            _ => {}
        }
    }
    Ok(s)
}

/// Reads a pprof from its bytes into the shared tree shape of its sample
/// types (see [`TreesBuilder::finish`]), after the caller frees the bytes.
/// `progress(done, total)` reports bytes of samples read.
pub fn read_pprof(buf: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<(TreesBuilder, Vec<ProfileType>)> {
    let symbols = first_pass(buf)?;
    let limits = limits();
    validate(&symbols)?;
    let Symbols { strings, sample_types, period_type, functions, locations, lines, sample_bytes, .. } = symbols;
    let types = profile_types(&strings, &sample_types, period_type);
    let columns = sample_types.len();
    drop(sample_types);

    let mut b = TreesBuilder::new(columns);
    let mut names: FastMap<i64, u32> = FastMap::default();
    let mut name_of = |b: &mut TreesBuilder, i: i64| -> u32 {
        *names.entry(i).or_insert_with(|| {
            b.intern(truncated(strings.get(i as usize).copied().unwrap_or(""), limits.max_symbol_len))
        })
    };
    // Names interned in file order; the last of equal function ids wins.
    let function_names: FastMap<u64, u32> = functions.iter().map(|&(id, name)| (id, name_of(&mut b, name))).collect();
    drop(functions);
    // Frame names per location, root-most first, in one flat array.
    let mut frames: Vec<u32> = Vec::new();
    let mut spans: Vec<(u32, u32)> = Vec::with_capacity(locations.len());
    for &(_, from, to) in &locations {
        let start = frames.len() as u32;
        let functions = &lines[from as usize..to as usize];
        frames.extend(functions.iter().rev().filter_map(|f| function_names.get(f).copied()));
        spans.push((start, frames.len() as u32));
    }
    let index = LocationIndex::new(&locations);
    drop((locations, lines));

    let total = sample_bytes as u64;
    let (mut done, mut reported) = (0usize, 0usize);
    progress(0, total);
    let mut locs: Vec<u64> = Vec::new();
    let mut values: Vec<u64> = Vec::new();
    let mut signed: Vec<i64> = Vec::new();
    // The previous stack: location indexes root-most first, and the node
    // each one ends at.
    let mut prev_locs: Vec<u32> = Vec::new();
    let mut prev_nodes: Vec<u32> = Vec::new();
    let mut fields = Fields::new(buf);
    while let Some((field, v)) = fields.next()? {
        if field != 2 {
            continue;
        }
        let sample = bytes(&v)?;
        done += sample.len();
        if done - reported >= PROGRESS_STEP {
            reported = done;
            progress(done as u64, total);
        }
        locs.clear();
        values.clear();
        let mut f = Fields::new(sample);
        while let Some((field, v)) = f.next()? {
            match field {
                1 => repeated(&v, &mut locs)?,
                2 => repeated(&v, &mut values)?,
                3 => check_label(bytes(&v)?, strings.len())?,
                _ => {}
            }
        }
        if values.len() != columns {
            return Err(malformed("sample value length mismatch"));
        }
        signed.clear();
        signed.extend(values.iter().map(|&v| v as i64));
        if is_dropped(&signed) {
            continue;
        }
        let skip = locs.len().saturating_sub(limits.max_stack_depth);
        let stack = &locs[skip..];
        // Reuse the previous stack's nodes while the locations agree.
        let mut depth = 0;
        while depth < stack.len() && depth < prev_locs.len() {
            let loc = index.get(stack[stack.len() - 1 - depth])?;
            if loc != prev_locs[depth] {
                break;
            }
            depth += 1;
        }
        prev_locs.truncate(depth);
        prev_nodes.truncate(depth);
        let mut node = prev_nodes.last().copied().unwrap_or(StackTree::ROOT);
        for &id in stack[..stack.len() - depth].iter().rev() {
            let loc = index.get(id)?;
            let (start, end) = spans[loc as usize];
            for &name in &frames[start as usize..end as usize] {
                node = b.child(node, name)?;
            }
            prev_locs.push(loc);
            prev_nodes.push(node);
        }
        b.add(node, &signed);
    }
    progress(total, total);
    Ok((b, types))
}

/// The checks of [`crate::pprof::validate`] that need no sample.
fn validate(s: &Symbols<'_>) -> Result<()> {
    let count = s.strings.len() as i64;
    let check = |i: i64, what: &str| {
        if (0..count).contains(&i) { Ok(()) } else { Err(malformed(&format!("{what} string index out of range"))) }
    };
    if s.sample_types.is_empty() {
        return Err(malformed("empty profile"));
    }
    if s.strings.first().is_some_and(|s| !s.is_empty()) {
        return Err(malformed("string 0 should be empty string"));
    }
    for st in &s.sample_types {
        check(st.r#type, "sample type type")?;
        check(st.unit, "sample type unit")?;
        if s.strings[st.r#type as usize].contains('-') {
            return Err(malformed("sample type contains -"));
        }
    }
    if let Some(pt) = &s.period_type {
        check(pt.r#type, "period type type")?;
        check(pt.unit, "period type unit")?;
    }
    for &(i, what) in &s.checks {
        check(i, what)?;
    }
    if s.locations.iter().any(|l| l.0 == 0) {
        return Err(malformed("location id is 0"));
    }
    Ok(())
}

fn check_label(bytes: &[u8], strings: usize) -> Result<()> {
    let mut f = Fields::new(bytes);
    while let Some((field, v)) = f.next()? {
        if matches!(field, 1 | 2 | 4) && varint(&v)? >= strings as u64 {
            return Err(malformed("sample label string index out of range"));
        }
    }
    Ok(())
}

/// The type ids of a pprof's sample types, named as `/ingest` names them.
fn profile_types(strings: &[&str], sample_types: &[ValueType], period_type: Option<ValueType>) -> Vec<ProfileType> {
    // The naming rules read only these strings: a profile of just them.
    let mut string_table = vec![String::new()];
    let mut copy = |i: i64| {
        string_table.push(String::from(strings[i as usize]));
        string_table.len() as i64 - 1
    };
    let mut remap = |vt: &ValueType| ValueType { r#type: copy(vt.r#type), unit: copy(vt.unit) };
    let sample_type = sample_types.iter().map(&mut remap).collect();
    let period_type = period_type.as_ref().map(remap);
    let head = Profile { sample_type, period_type, string_table, ..Default::default() };
    let metric = offline::pprof_metric(&head);
    (0..sample_types.len()).map(|column| crate::ingest::profile_type(&metric, &head, column)).collect()
}

/// Cuts a long name to its last `max` bytes on a char boundary, as
/// [`crate::pprof::truncate_symbols`] does.
fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}

/// Location id → index: by position when ids are dense (the usual 1..=n),
/// else hashed. The last of equal ids wins, as in the server.
enum LocationIndex {
    Dense(Vec<u32>),
    Sparse(FastMap<u64, u32>),
}

const UNSET: u32 = u32::MAX;

impl LocationIndex {
    fn new(locations: &[(u64, u32, u32)]) -> Self {
        let max = locations.iter().map(|l| l.0).max().unwrap_or(0);
        if max <= (locations.len() as u64) * 2 + 16 {
            let mut dense = vec![UNSET; max as usize + 1];
            for (i, l) in locations.iter().enumerate() {
                dense[l.0 as usize] = i as u32;
            }
            LocationIndex::Dense(dense)
        } else {
            LocationIndex::Sparse(locations.iter().enumerate().map(|(i, l)| (l.0, i as u32)).collect())
        }
    }

    #[inline]
    fn get(&self, id: u64) -> Result<u32> {
        let found = match self {
            LocationIndex::Dense(v) => v.get(id as usize).copied().filter(|&i| i != UNSET),
            LocationIndex::Sparse(m) => m.get(&id).copied(),
        };
        found.ok_or_else(|| malformed(&format!("sample references unknown location id {id}")))
    }
}
