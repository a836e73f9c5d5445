//! A merged tree as a pprof download: one function and one location per
//! distinct name, one sample per node with a self value.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use prost::Message;

use crate::gzip;
use crate::pprof::{Function, Line, Location, Profile, Sample, ValueType};
use crate::profile_type::ProfileType;
use crate::tree::StackTree;

/// The tree as a pprof of the one sample type `profile_type`.
pub fn pprof(tree: &StackTree, profile_type: &ProfileType) -> Profile {
    // Strings: "", the names (string i + 1 = name id i), then the type's.
    let mut strings: Vec<String> = Vec::with_capacity(tree.names().len() + 5);
    strings.push(String::new());
    strings.extend(tree.names().iter().cloned());
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
    let ids = 1..=tree.names().len() as u64;
    let function = ids.clone().map(|id| Function { id, name: id as i64, system_name: id as i64, ..Default::default() });
    let location = ids.map(|id| Location { id, line: vec![Line { function_id: id, line: 0 }], ..Default::default() });
    let mut sample = Vec::new();
    for node in 1..=tree.node_count() as u32 {
        let value = tree.self_of(node);
        if value == 0 {
            continue;
        }
        let mut location_id = Vec::new();
        let mut n = node;
        while n != StackTree::ROOT {
            location_id.push(u64::from(tree.name_id_of(n)) + 1);
            n = tree.parent(n);
        }
        sample.push(Sample { location_id, value: vec![value], label: vec![] });
    }
    Profile {
        sample_type: vec![sample_type],
        default_sample_type: sample_type.r#type,
        sample,
        location: location.collect(),
        function: function.collect(),
        string_table: strings,
        period_type,
        period: 1,
        ..Default::default()
    }
}

/// [`pprof`], encoded and gzipped.
pub fn gzipped_pprof(tree: &StackTree, profile_type: &ProfileType) -> Vec<u8> {
    gzip::compress(&pprof(tree, profile_type).encode_to_vec())
}
