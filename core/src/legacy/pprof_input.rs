//! What `/ingest` does to a pprof before the Push pipeline (§6 of the
//! spec): a start time for 1970 timestamps, the spy-specific rewrites, and
//! the metric name derived from the sample types and `sample_type_config`.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use crate::pprof::Profile;

/// The multipart field `sample_type_config`: per sample type, Pyroscope
/// reads only `display-name` (units, aggregation, ... have no effect).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct SampleTypeConfig(BTreeMap<String, SampleTypeEntry>);

#[derive(Debug, Default, Deserialize)]
struct SampleTypeEntry {
    #[serde(rename = "display-name", default)]
    display_name: Option<String>,
}

impl SampleTypeConfig {
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("parsing sample type config: {e}"))
    }
}

/// Unix nanoseconds of 1971-01-01: earlier timestamps are µs or ms values of
/// old agents.
const YEAR_1971_NS: i64 = 365 * 86_400 * 1_000_000_000;

/// Applies the `/ingest` fix-ups to `p` and returns its metric name.
pub fn prepare(p: &mut Profile, from_ns: i64, spy_name: &str, config: Option<&SampleTypeConfig>) -> String {
    if p.time_nanos < YEAR_1971_NS {
        p.time_nanos = from_ns;
    }
    if matches!(spy_name, "pyspy" | "rbspy" | "scripting") {
        prefix_file_names(p, spy_name == "pyspy");
    }
    let dotnet_config = config.is_some_and(|c| c.0.contains_key("inuse-space"));
    if spy_name == "dotnetspy" || (spy_name == "unknown" && dotnet_config) {
        fix_dotnet(p);
    }
    metric_name(p, config)
}

/// Function names become `<file name> <name>` (pyspy keeps names whose file
/// is an absolute path).
fn prefix_file_names(p: &mut Profile, skip_absolute: bool) {
    let s = |i: i64| p.string_table.get(i as usize).map_or("", String::as_str);
    let renamed: Vec<(usize, String)> = p
        .function
        .iter()
        .enumerate()
        .filter(|(_, f)| !(skip_absolute && s(f.filename).starts_with('/')))
        .map(|(i, f)| (i, format!("{} {}", s(f.filename), s(f.name))))
        .collect();
    for (i, name) in renamed {
        p.function[i].name = p.string_table.len() as i64;
        p.string_table.push(name);
    }
}

/// Early .NET profilers wrote every function id as 0 (one function per
/// location) and used `-` in sample type names.
fn fix_dotnet(p: &mut Profile) {
    if p.function.iter().all(|f| f.id == 0) && p.function.len() == p.location.len() {
        for (f, l) in p.function.iter_mut().zip(&p.location) {
            f.id = l.id;
        }
    }
    for i in 0..p.sample_type.len() {
        let name = &p.string_table[p.sample_type[i].r#type as usize];
        if name.contains('-') {
            let fixed = name.replace('-', "_");
            p.sample_type[i].r#type = p.string_table.len() as i64;
            p.string_table.push(fixed);
        }
    }
}

/// Pyroscope's naming rule: `wall` if any sample type is `wall`, else the
/// first sample type whose display name matches a known family, else the
/// last sample type's name.
pub fn metric_name(p: &Profile, config: Option<&SampleTypeConfig>) -> String {
    let types: Vec<&str> =
        p.sample_type.iter().map(|st| p.string_table.get(st.r#type as usize).map_or("", String::as_str)).collect();
    if types.contains(&"wall") {
        return "wall".into();
    }
    for &t in &types {
        let display = match config {
            Some(c) => c.0.get(t).and_then(|e| e.display_name.as_deref()).unwrap_or(t),
            None => builtin_display_name(t),
        };
        let family = if display.contains("cpu") {
            "process_cpu"
        } else if display.contains("alloc_") || display.contains("inuse_") || matches!(display, "space" | "objects") {
            "memory"
        } else if display.contains("mutex_") {
            "mutex"
        } else if display.contains("block_") {
            "block"
        } else if display.contains("goroutines") {
            "goroutines"
        } else {
            continue;
        };
        return family.into();
    }
    types.last().copied().unwrap_or_default().into()
}

/// The display names Pyroscope assumes when a request has no config.
fn builtin_display_name(sample_type: &str) -> &str {
    match sample_type {
        "samples" => "cpu",
        "goroutine" => "goroutines",
        "contentions" => "mutex_count",
        "delay" => "mutex_duration",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::{Function, Location, ValueType};
    use alloc::string::ToString;
    use alloc::vec;

    fn profile(types: &[&str]) -> Profile {
        let mut strings = vec![String::new(), "count".to_string()];
        let sample_type = types
            .iter()
            .map(|t| {
                strings.push(t.to_string());
                ValueType { r#type: strings.len() as i64 - 1, unit: 1 }
            })
            .collect();
        Profile { sample_type, string_table: strings, ..Default::default() }
    }

    fn name(types: &[&str], config: Option<&str>) -> String {
        let config = config.map(|c| SampleTypeConfig::parse(c.as_bytes()).unwrap());
        prepare(&mut profile(types), 0, "gospy", config.as_ref())
    }

    #[test]
    fn metric_names() {
        assert_eq!(name(&["samples", "cpu"], None), "process_cpu");
        assert_eq!(name(&["samples", "wall", "cpu"], None), "wall");
        assert_eq!(name(&["alloc_objects", "alloc_space"], None), "memory");
        assert_eq!(name(&["objects", "space"], None), "memory");
        assert_eq!(name(&["goroutine"], None), "goroutines");
        assert_eq!(name(&["contentions", "delay"], None), "mutex");
        let block = r#"{"contentions":{"units":"lock_samples","display-name":"block_count"},"delay":{"display-name":"block_duration","sampled":true}}"#;
        assert_eq!(name(&["contentions", "delay"], Some(block)), "block");
        // A config replaces the built-in table.
        assert_eq!(name(&["samples"], Some("{}")), "samples");
        assert_eq!(name(&["sample", "CPU"], None), "CPU");
        assert!(SampleTypeConfig::parse(b"[").is_err());
    }

    #[test]
    fn old_timestamps_take_from() {
        let mut p = profile(&["cpu"]);
        p.time_nanos = 1_694_153_500_000_000;
        prepare(&mut p, 42, "unknown", None);
        assert_eq!(p.time_nanos, 42);
        p.time_nanos = 1_794_153_500_000_000_000;
        prepare(&mut p, 42, "unknown", None);
        assert_eq!(p.time_nanos, 1_794_153_500_000_000_000);
    }

    #[test]
    fn spy_rewrites() {
        let mut p = profile(&["cpu"]);
        p.string_table.extend(["main".into(), "app.py".into(), "/abs/lib.py".into()]);
        let n = p.string_table.len() as i64;
        p.function = vec![
            Function { id: 1, name: n - 3, filename: n - 2, ..Default::default() },
            Function { id: 2, name: n - 3, filename: n - 1, ..Default::default() },
        ];
        let mut scripting = p.clone();
        prepare(&mut p, 0, "pyspy", None);
        let names: Vec<&str> = p.function.iter().map(|f| p.string_table[f.name as usize].as_str()).collect();
        assert_eq!(names, ["app.py main", "main"]);
        prepare(&mut scripting, 0, "scripting", None);
        assert_eq!(scripting.string_table[scripting.function[1].name as usize], "/abs/lib.py main");
    }

    #[test]
    fn dotnet_fixes() {
        let mut p = profile(&["cpu", "alloc-size"]);
        p.function = vec![Function::default(), Function::default()];
        p.location = vec![Location { id: 7, ..Default::default() }, Location { id: 9, ..Default::default() }];
        let config = SampleTypeConfig::parse(br#"{"inuse-space":{}}"#).unwrap();
        prepare(&mut p, 0, "unknown", Some(&config));
        assert_eq!(p.function.iter().map(|f| f.id).collect::<Vec<_>>(), [7, 9]);
        assert_eq!(p.string_table[p.sample_type[1].r#type as usize], "alloc_size");
    }
}
