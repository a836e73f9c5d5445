//! A pprof read straight from its bytes, never materialized: a decoded
//! [`crate::pprof::Profile`] costs several times its encoded size (a `Vec`
//! per sample, a `String` per string), which a browser tab cannot afford
//! for a 100 MB profile.
//!
//! Two passes. The first reads everything but the samples: the string table
//! (kept as ranges of the input), sample and period types, functions (their
//! names interned once) and locations (each one's frame names, root-most
//! first). The second checks each sample and keeps where its packed
//! location ids are in the input, with its values ([`Stacks`]). Checks and
//! results are those of [`crate::pprof::validate`] and the decoded path
//! (the view tests compare both on every pprof of the test data).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::build::limits;
use super::load::{address_name, malformed, not_a_profile};
use super::stacks::{Stacks, StacksBuilder};
use crate::FastMap;
use crate::error::{Error, Result};
use crate::ingest::is_dropped;
use crate::legacy::offline;
use crate::pprof::{Profile, ValueType};
use crate::profile_type::ProfileType;

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
    /// Per location, its address (named when it has no line).
    addresses: Vec<u64>,
    /// Function id per line of every location, innermost first.
    lines: Vec<u64>,
    /// String indexes the validation checks: (index, what).
    checks: Vec<(i64, &'static str)>,
    /// Bytes of the sample fields, for progress.
    sample_bytes: usize,
    /// Sample fields, to reserve room for the stacks at once.
    samples: usize,
}

fn first_pass(buf: &[u8]) -> Result<Symbols<'_>> {
    let mut s = Symbols {
        strings: Vec::new(),
        sample_types: Vec::new(),
        period_type: None,
        functions: Vec::new(),
        locations: Vec::new(),
        addresses: Vec::new(),
        lines: Vec::new(),
        checks: Vec::new(),
        sample_bytes: 0,
        samples: 0,
    };
    let mut fields = Fields::new(buf);
    while let Some((field, v)) = fields.next()? {
        match field {
            1 => s.sample_types.push(value_type(bytes(&v)?)?),
            2 => {
                s.sample_bytes += bytes(&v)?.len();
                s.samples += 1;
            }
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
                let (mut id, mut address, start) = (0, 0, s.lines.len() as u32);
                let mut f = Fields::new(bytes(&v)?);
                while let Some((field, v)) = f.next()? {
                    match field {
                        1 => id = varint(&v)?,
                        3 => address = varint(&v)?,
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
                s.addresses.push(address);
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

/// Reads a pprof from its bytes into [`Stacks`] that keep the bytes: each
/// kept sample's packed location ids are referenced where they are.
/// `progress(done, total)` reports bytes of samples read.
pub fn read_pprof(buf: Vec<u8>, progress: &mut dyn FnMut(u64, u64)) -> Result<(Stacks, Vec<ProfileType>)> {
    let (builder, types) = read_samples(&buf, progress)?;
    Ok((builder.finish(buf)?, types))
}

fn read_samples(buf: &[u8], progress: &mut dyn FnMut(u64, u64)) -> Result<(StacksBuilder, Vec<ProfileType>)> {
    let symbols = first_pass(buf)?;
    let limits = limits();
    validate(&symbols)?;
    let Symbols {
        strings,
        sample_types,
        period_type,
        functions,
        locations,
        addresses,
        lines,
        sample_bytes,
        samples,
        ..
    } = symbols;
    let types = profile_types(&strings, &sample_types, period_type);
    let columns = sample_types.len();
    drop(sample_types);

    let mut b = StacksBuilder::new(columns, locations.iter().map(|l| l.0));
    b.reserve(samples)?;
    let mut names: FastMap<i64, u32> = FastMap::default();
    let mut name_of = |b: &mut StacksBuilder, i: i64| -> u32 {
        *names.entry(i).or_insert_with(|| {
            b.intern(truncated(strings.get(i as usize).copied().unwrap_or(""), limits.max_symbol_len))
        })
    };
    // Names interned in file order; the last of equal function ids wins.
    let function_names: FastMap<u64, u32> = functions.iter().map(|&(id, name)| (id, name_of(&mut b, name))).collect();
    drop(functions);
    for (&(_, from, to), &address) in locations.iter().zip(&addresses) {
        let functions = &lines[from as usize..to as usize];
        let unsymbolized = (from == to).then(|| b.intern(&address_name(address)));
        b.location(
            unsymbolized.into_iter().chain(functions.iter().rev().filter_map(|f| function_names.get(f).copied())),
        );
    }
    drop((locations, addresses, lines));

    let total = sample_bytes as u64;
    let (mut done, mut reported) = (0usize, 0usize);
    progress(0, total);
    let mut locs: Vec<u64> = Vec::new();
    let mut values: Vec<u64> = Vec::new();
    let mut signed: Vec<i64> = Vec::new();
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
        // The one packed run of location ids, when the sample has just that.
        let mut packed: Option<&[u8]> = None;
        let mut runs = 0;
        let mut f = Fields::new(sample);
        while let Some((field, v)) = f.next()? {
            match field {
                1 => {
                    runs += 1;
                    if let Value::Bytes(run) = v {
                        packed = Some(run);
                    }
                    repeated(&v, &mut locs)?
                }
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
        // Deep stacks keep their root-most frames: the leaf-most ids go.
        let skip = locs.len().saturating_sub(limits.max_stack_depth);
        if !b.check(&locs[skip..])? {
            continue;
        }
        match packed {
            Some(run) if runs == 1 => {
                let start = run.as_ptr() as usize - buf.as_ptr() as usize;
                let skipped = varints_len(run, skip);
                b.push_range(offsets(start + skipped, start + run.len())?, signed.iter().copied())?;
            }
            _ => b.push_ids(buf.len(), &locs[skip..], signed.iter().copied())?,
        }
    }
    progress(total, total);
    Ok((b, types))
}

/// Bytes taken by the first `n` varints of `run`.
fn varints_len(run: &[u8], n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, &byte) in run.iter().enumerate() {
        if byte < 0x80 {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    run.len()
}

fn offsets(start: usize, end: usize) -> Result<(u32, u32)> {
    match (u32::try_from(start), u32::try_from(end)) {
        (Ok(s), Ok(e)) => Ok((s, e)),
        _ => Err(super::load::out_of_memory()),
    }
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
