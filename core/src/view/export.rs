//! A merge as a pprof download: one function and one location per distinct
//! name, one sample per stack with a non-zero value. Samples are encoded
//! straight from the stacks: a decoded profile of a large merge would cost
//! several times its bytes.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use super::graph::{Part, names_of};
use super::load::out_of_memory;
use crate::error::Result;
use crate::gzip;
use crate::pprof::{Function, Line, Location, Profile, ValueType};
use crate::profile_type::ProfileType;

/// `Profile.sample`, and in a sample its location ids and values.
const SAMPLE: u32 = 2;
const LOCATION_ID: u32 = 1;
const VALUE: u32 = 2;

/// The merge of `parts` as an encoded pprof of the one sample type
/// `profile_type`.
pub fn pprof(parts: &[Part<'_>], profile_type: &ProfileType) -> Result<Vec<u8>> {
    let (names, maps) = names_of(parts);
    let count = names.len() as u64;
    // Strings: "", the names (string i + 1 = name id i), then the type's.
    let mut strings: Vec<String> = Vec::with_capacity(names.len() + 5);
    strings.push(String::new());
    strings.extend(names);
    let mut intern = |s: &str| match strings.iter().position(|x| x == s) {
        Some(i) => i as i64,
        None => {
            strings.push(s.into());
            strings.len() as i64 - 1
        }
    };
    let sample_type = ValueType { r#type: intern(&profile_type.sample_type), unit: intern(&profile_type.sample_unit) };
    let period_type = (!profile_type.period_type.is_empty() || !profile_type.period_unit.is_empty())
        .then(|| ValueType { r#type: intern(&profile_type.period_type), unit: intern(&profile_type.period_unit) });
    // Function and location ids are name id + 1.
    let ids = 1..=count;
    let function = ids.clone().map(|id| Function { id, name: id as i64, system_name: id as i64, ..Default::default() });
    let location = ids.map(|id| Location { id, line: vec![Line { function_id: id, line: 0 }], ..Default::default() });
    let tables = Profile {
        sample_type: vec![sample_type],
        default_sample_type: sample_type.r#type,
        location: location.collect(),
        function: function.collect(),
        string_table: strings,
        period_type,
        period: 1,
        ..Default::default()
    };
    let mut out = tables.encode_to_vec();
    drop(tables);

    let (mut ids, mut packed, mut sample) = (Vec::new(), Vec::new(), Vec::new());
    for (part, map) in parts.iter().zip(&maps) {
        let stacks = part.stacks;
        for s in 0..stacks.count() {
            let value = stacks.value(s, part.column);
            if value == 0 {
                continue;
            }
            ids.clear();
            stacks.for_each_frame(s, |name| ids.push(u64::from(map[name as usize]) + 1));
            packed.clear();
            for &id in ids.iter().rev() {
                encode_varint(id, &mut packed);
            }
            sample.clear();
            encode_key(LOCATION_ID, WireType::LengthDelimited, &mut sample);
            encode_varint(packed.len() as u64, &mut sample);
            sample.extend_from_slice(&packed);
            encode_key(VALUE, WireType::LengthDelimited, &mut sample);
            encode_varint(encoded_len_varint(value as u64) as u64, &mut sample);
            encode_varint(value as u64, &mut sample);
            out.try_reserve(sample.len() + 16).map_err(|_| out_of_memory())?;
            encode_key(SAMPLE, WireType::LengthDelimited, &mut out);
            encode_varint(sample.len() as u64, &mut out);
            out.extend_from_slice(&sample);
        }
    }
    Ok(out)
}

/// [`pprof`], gzipped.
pub fn gzipped_pprof(parts: &[Part<'_>], profile_type: &ProfileType) -> Result<Vec<u8>> {
    Ok(gzip::compress(&pprof(parts, profile_type)?))
}
