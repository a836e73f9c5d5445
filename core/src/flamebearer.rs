//! Pyroscope's `FlamebearerProfile` JSON, the body of `/pyroscope/render` and
//! `/pyroscope/render-diff` (spec `query.md` §11.1–11.2): the flame graph
//! with plain-number levels, metadata derived from the profile type, and
//! timelines. Field order and encoding follow Go's `encoding/json`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use kiln_proto::querier::v1::Level;

use crate::json;
use crate::profile_type::ProfileType;

/// Total per time bucket: `samples[i]` covers
/// `[start_time + i·duration_delta, start_time + (i+1)·duration_delta)` seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    pub start_time: i64,
    pub samples: Vec<u64>,
    pub duration_delta: i64,
}

/// A flame graph as the encoders produce it: 4 integers per node for a
/// single profile, 7 for a diff.
pub struct FlameGraphRef<'a> {
    pub names: &'a [String],
    pub levels: &'a [Level],
    pub total: i64,
    pub max_self: i64,
}

/// `single` (render) or `double` (render-diff, with both sides' totals).
pub enum Format {
    Single,
    Double { left_ticks: i64, right_ticks: i64 },
}

/// The whole JSON body, with Go's trailing newline.
pub fn profile_json(
    flame: &FlameGraphRef<'_>,
    profile_type: &ProfileType,
    format: &Format,
    timeline: Option<&Timeline>,
    groups: Option<&BTreeMap<String, Timeline>>,
) -> String {
    let mut out = String::with_capacity(64 + flame.names.iter().map(|n| n.len() + 3).sum::<usize>());
    out.push_str("{\"version\":1,\"flamebearer\":{\"names\":");
    json::string_array(&mut out, flame.names.iter().map(String::as_str));
    out.push_str(",\"levels\":[");
    for (i, level) in flame.levels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::array(&mut out, &level.values);
    }
    let _ = write!(out, "],\"numTicks\":{},\"maxSelf\":{}}}", flame.total, flame.max_self);

    let (units, sample_rate) = units(profile_type);
    let format_name = match format {
        Format::Single => "single",
        Format::Double { .. } => "double",
    };
    let _ = write!(
        out,
        ",\"metadata\":{{\"format\":\"{format_name}\",\"spyName\":\"\",\"sampleRate\":{sample_rate},\"units\":"
    );
    json::string(&mut out, units);
    out.push_str(",\"name\":");
    json::string(&mut out, &profile_type.sample_type);
    out.push_str("},\"timeline\":");
    match timeline {
        Some(t) => timeline_json(&mut out, t),
        None => out.push_str("null"),
    }
    out.push_str(",\"groups\":");
    match groups {
        Some(groups) => {
            out.push('{');
            for (i, (key, t)) in groups.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::string(&mut out, key);
                out.push(':');
                timeline_json(&mut out, t);
            }
            out.push('}');
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"heatmap\":null");
    if let Format::Double { left_ticks, right_ticks } = format {
        // `omitempty` in Go: zero totals are left out.
        if *left_ticks != 0 {
            let _ = write!(out, ",\"leftTicks\":{left_ticks}");
        }
        if *right_ticks != 0 {
            let _ = write!(out, ",\"rightTicks\":{right_ticks}");
        }
    }
    out.push_str("}\n");
    out
}

fn timeline_json(out: &mut String, t: &Timeline) {
    let _ = write!(out, "{{\"startTime\":{},\"samples\":", t.start_time);
    json::array(out, &t.samples);
    let _ = write!(out, ",\"durationDelta\":{},\"watermarks\":null}}", t.duration_delta);
}

/// `metadata.units` and `metadata.sampleRate` by sample type.
fn units(profile_type: &ProfileType) -> (&str, u32) {
    match profile_type.sample_type.as_str() {
        "cpu" => ("samples", 1_000_000_000),
        "inuse_objects" | "alloc_objects" | "goroutine" | "samples" => ("objects", 100),
        _ => (profile_type.sample_unit.as_str(), 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn single_profile_shape() {
        let names = vec!["total".into(), "a<b>".into()];
        let levels = vec![Level { values: vec![0, 5, 0, 0] }, Level { values: vec![0, 5, 5, 1] }];
        let flame = FlameGraphRef { names: &names, levels: &levels, total: 5, max_self: 5 };
        let cpu = ProfileType::parse("process_cpu:cpu:nanoseconds:cpu:nanoseconds").unwrap();
        let t = Timeline { start_time: 1_577_836_800, samples: vec![0, 5], duration_delta: 15 };
        let mut groups = BTreeMap::new();
        groups.insert("b".into(), t.clone());
        groups.insert("*".into(), Timeline { samples: vec![0, 0], ..t.clone() });
        let body = profile_json(&flame, &cpu, &Format::Single, Some(&t), Some(&groups));
        assert_eq!(
            body,
            concat!(
                r#"{"version":1,"flamebearer":{"names":["total","a\u003cb\u003e"],"levels":[[0,5,0,0],[0,5,5,1]],"numTicks":5,"maxSelf":5},"#,
                r#""metadata":{"format":"single","spyName":"","sampleRate":1000000000,"units":"samples","name":"cpu"},"#,
                r#""timeline":{"startTime":1577836800,"samples":[0,5],"durationDelta":15,"watermarks":null},"#,
                r#""groups":{"*":{"startTime":1577836800,"samples":[0,0],"durationDelta":15,"watermarks":null},"#,
                r#""b":{"startTime":1577836800,"samples":[0,5],"durationDelta":15,"watermarks":null}},"heatmap":null}"#,
                "\n"
            )
        );
    }

    #[test]
    fn double_profile_and_units() {
        let names = vec!["total".into()];
        let levels = vec![Level { values: vec![0, 3, 0, 0, 0, 0, 0] }];
        let flame = FlameGraphRef { names: &names, levels: &levels, total: 3, max_self: 0 };
        let heap = ProfileType::parse("memory:inuse_space:bytes:space:bytes").unwrap();
        let body = profile_json(&flame, &heap, &Format::Double { left_ticks: 3, right_ticks: 0 }, None, None);
        assert!(
            body.contains(r#""format":"double","spyName":"","sampleRate":100,"units":"bytes","name":"inuse_space""#)
        );
        assert!(body.ends_with(",\"timeline\":null,\"groups\":null,\"heatmap\":null,\"leftTicks\":3}\n"), "{body}");
        let objects = ProfileType::parse("memory:alloc_objects:count:space:bytes").unwrap();
        assert_eq!(units(&objects), ("objects", 100));
    }
}
