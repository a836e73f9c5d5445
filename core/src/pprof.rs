//! pprof decoding and validation: raw bytes (gzip or not) to a checked
//! [`Profile`]. Everything kiln ingests becomes a pprof first, as in Pyroscope.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use prost::Message;

use crate::error::{Error, Result};
use crate::gzip;
pub use kiln_proto::google::v1::{Function, Line, Location, Mapping, Profile, Sample, ValueType};

/// Pyroscope's per-profile validation limits (`pkg/validation` defaults).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Uncompressed pprof size.
    pub max_profile_size: usize,
    /// Samples per profile, counted before de-duplication.
    pub max_samples: usize,
    pub max_sample_labels: usize,
    /// Deeper stacks keep their root-most frames.
    pub max_stack_depth: usize,
    /// Longer strings keep their last bytes.
    pub max_symbol_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_profile_size: 4 * 1024 * 1024,
            max_samples: 16_000,
            max_sample_labels: 100,
            max_stack_depth: 1_000,
            max_symbol_len: 65_535,
        }
    }
}

/// Decodes a pprof, gunzipping it first if it starts with the gzip magic.
pub fn decode(raw: &[u8], limits: &Limits) -> Result<Profile> {
    let inflated;
    let bytes = if gzip::is_gzip(raw) {
        inflated = gzip::decompress(raw, limits.max_profile_size).map_err(|e| match e {
            gzip::GzipError::TooLarge(_) => too_large(limits.max_profile_size),
            other => Error::invalid(format!("failed to decompress profile: {other}")),
        })?;
        &inflated[..]
    } else {
        raw
    };
    if bytes.len() > limits.max_profile_size {
        return Err(too_large(limits.max_profile_size));
    }
    let profile = Profile::decode(bytes).map_err(|e| Error::invalid(format!("failed to parse profile: {e}")))?;
    Ok(profile)
}

fn too_large(limit: usize) -> Error {
    Error::invalid(format!("uncompressed profile payload size exceeds limit of {}", humanize_bytes(limit as u64)))
}

/// SI units with one decimal, as Go's `humanize.Bytes` prints them.
fn humanize_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if n < 10 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 { format!("{:.1} {}", value, UNITS[unit]) } else { format!("{:.0} {}", value, UNITS[unit]) }
}

/// Pyroscope's structural checks (`pkg/validation`): a profile failing any of
/// them is rejected whole with `invalid_argument`.
pub fn validate(p: &Profile, limits: &Limits) -> Result<()> {
    let strings = p.string_table.len() as i64;
    let in_range = |i: i64| (0..strings).contains(&i);
    let check = |i: i64, what: &str| {
        if in_range(i) { Ok(()) } else { Err(Error::invalid(format!("{what} string index out of range"))) }
    };
    if p.sample_type.is_empty() {
        return Err(Error::invalid("empty profile"));
    }
    if p.string_table.first().is_some_and(|s| !s.is_empty()) {
        return Err(Error::invalid("string 0 should be empty string"));
    }
    for st in &p.sample_type {
        check(st.r#type, "sample type type")?;
        check(st.unit, "sample type unit")?;
        if p.string_table[st.r#type as usize].contains('-') {
            return Err(Error::invalid("sample type contains -"));
        }
    }
    if let Some(pt) = &p.period_type {
        check(pt.r#type, "period type type")?;
        check(pt.unit, "period type unit")?;
    }
    if p.sample.len() > limits.max_samples {
        return Err(Error::invalid(format!(
            "profile exceeds the samples count limit: actual: {}, limit: {}",
            p.sample.len(),
            limits.max_samples
        )));
    }
    for s in &p.sample {
        if s.value.len() != p.sample_type.len() {
            return Err(Error::invalid("sample value length mismatch"));
        }
        if s.label.len() > limits.max_sample_labels {
            return Err(Error::invalid(format!(
                "profile exceeds the sample labels limit: actual: {}, limit: {}",
                s.label.len(),
                limits.max_sample_labels
            )));
        }
        for l in &s.label {
            check(l.key, "sample label")?;
            check(l.str, "sample label")?;
            check(l.num_unit, "sample label")?;
        }
    }
    for m in &p.mapping {
        check(m.filename, "mapping file name")?;
        check(m.build_id, "mapping build id")?;
    }
    for l in &p.location {
        if l.id == 0 {
            return Err(Error::invalid("location id is 0"));
        }
    }
    for f in &p.function {
        if f.id == 0 {
            return Err(Error::invalid("function id is 0"));
        }
        check(f.name, "function name")?;
        check(f.system_name, "function system name")?;
        check(f.filename, "function file name")?;
    }
    Ok(())
}

/// Cuts over-long strings to their last `max` bytes (on a char boundary), as
/// Pyroscope does with symbol names.
pub fn truncate_symbols(p: &mut Profile, max: usize) {
    for s in p.string_table.iter_mut().filter(|s| s.len() > max) {
        let mut cut = s.len() - max;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s.drain(..cut);
    }
}

/// The profile's stacks as `root;...;leaf` function names with the summed
/// values of sample type `column` (zeros dropped), sorted: the "collapsed"
/// form Pyroscope's tests compare profiles by. Locations without lines
/// contribute no frame, as in flame graphs.
pub fn collapsed(p: &Profile, column: usize) -> Vec<(String, i64)> {
    use alloc::collections::BTreeMap;
    let functions: crate::FastMap<u64, &Function> = p.function.iter().map(|f| (f.id, f)).collect();
    let locations: crate::FastMap<u64, &Location> = p.location.iter().map(|l| (l.id, l)).collect();
    let name = |id: u64| p.string_table.get(functions.get(&id)?.name as usize).map(String::as_str);
    let mut stacks: BTreeMap<String, i64> = BTreeMap::new();
    for sample in &p.sample {
        let value = sample.value.get(column).copied().unwrap_or(0);
        let mut frames: Vec<&str> = Vec::new();
        for id in sample.location_id.iter().rev() {
            let Some(loc) = locations.get(id) else { continue };
            frames.extend(loc.line.iter().rev().filter_map(|l| name(l.function_id)));
        }
        if value != 0 && !frames.is_empty() {
            *stacks.entry(frames.join(";")).or_default() += value;
        }
    }
    stacks.into_iter().filter(|(_, v)| *v != 0).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A small two-sample-type profile: stacks main;a (leaf a) and main;b.
    pub(crate) fn sample_profile() -> Profile {
        let strings = ["", "samples", "count", "cpu", "nanoseconds", "main", "a", "b"];
        let function = |id: u64, name: i64| Function { id, name, ..Default::default() };
        let location =
            |id: u64, f: u64| Location { id, line: vec![Line { function_id: f, line: 1 }], ..Default::default() };
        Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 2 }, ValueType { r#type: 3, unit: 4 }],
            period_type: Some(ValueType { r#type: 3, unit: 4 }),
            period: 10_000_000,
            sample: vec![
                Sample { location_id: vec![2, 1], value: vec![3, 30], label: vec![] },
                Sample { location_id: vec![3, 1], value: vec![2, 20], label: vec![] },
            ],
            location: vec![location(1, 1), location(2, 2), location(3, 3)],
            function: vec![function(1, 5), function(2, 6), function(3, 7)],
            string_table: strings.iter().map(|s| s.to_string()).collect(),
            time_nanos: 1,
            ..Default::default()
        }
    }

    /// A one-value (`cpu` / `nanoseconds`) profile of `(root;…;leaf, value)`
    /// stacks; each distinct frame name is one function and one location.
    pub(crate) fn profile_of(stacks: &[(&str, i64)]) -> Profile {
        let mut p = Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 2 }],
            string_table: ["", "cpu", "nanoseconds"].iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        for (stack, value) in stacks {
            let mut location_id: Vec<u64> = Vec::new();
            for frame in stack.split(';') {
                let id = match p.function.iter().find(|f| p.string_table[f.name as usize] == frame) {
                    Some(f) => f.id,
                    None => {
                        p.string_table.push(frame.to_string());
                        let id = p.function.len() as u64 + 1;
                        let name = p.string_table.len() as i64 - 1;
                        p.function.push(Function { id, name, ..Default::default() });
                        p.location.push(Location {
                            id,
                            line: vec![Line { function_id: id, line: 0 }],
                            ..Default::default()
                        });
                        id
                    }
                };
                location_id.insert(0, id);
            }
            p.sample.push(Sample { location_id, value: vec![*value], label: vec![] });
        }
        p
    }

    #[test]
    fn decode_plain_and_gzip_errors() {
        let p = sample_profile();
        let bytes = p.encode_to_vec();
        assert_eq!(decode(&bytes, &Limits::default()).unwrap(), p);
        assert!(decode(b"\x1f\x8b\x08\x00garbage", &Limits::default()).is_err());
        assert!(decode(&[0xff, 0xff, 0xff], &Limits::default()).is_err());
        let small = Limits { max_profile_size: 10, ..Limits::default() };
        let err = decode(&bytes, &small).unwrap_err().to_string();
        assert_eq!(err, "uncompressed profile payload size exceeds limit of 10 B");
        assert_eq!(humanize_bytes(4 * 1024 * 1024), "4.2 MB");
    }

    #[test]
    fn validation_messages() {
        let limits = Limits::default();
        validate(&sample_profile(), &limits).unwrap();
        type Case = (fn(&mut Profile), &'static str);
        let cases: Vec<Case> = vec![
            (|p| p.sample_type.clear(), "empty profile"),
            (|p| p.sample_type[0].r#type = 99, "sample type type string index out of range"),
            (|p| p.function[0].name = 99, "function name string index out of range"),
            (|p| p.string_table[0] = "x".into(), "string 0 should be empty string"),
            (|p| p.sample[0].value.pop().map(drop).unwrap_or(()), "sample value length mismatch"),
            (|p| p.location[0].id = 0, "location id is 0"),
            (|p| p.function[0].id = 0, "function id is 0"),
            (|p| p.string_table[1] = "a-b".into(), "sample type contains -"),
            (
                |p| p.mapping.push(Mapping { id: 1, filename: 99, ..Default::default() }),
                "mapping file name string index out of range",
            ),
            (
                |p| p.sample[0].label.push(kiln_proto::google::v1::Label { key: 99, ..Default::default() }),
                "sample label string index out of range",
            ),
        ];
        for (mutate, want) in cases {
            let mut p = sample_profile();
            mutate(&mut p);
            assert_eq!(validate(&p, &limits).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn long_symbols_keep_their_tail() {
        let mut p = sample_profile();
        p.string_table[5] = "abcdef".into();
        truncate_symbols(&mut p, 3);
        assert_eq!(p.string_table[5], "def");
    }
}
