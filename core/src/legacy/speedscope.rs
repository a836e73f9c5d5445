//! Speedscope JSON (`format=speedscope`): sampled and evented profiles.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use super::stacks::StackCounts;

const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

/// One profile of the file (those with equal name, type, unit and start
/// merged), with its stacks in the file's unit times the precision factor.
pub struct SpeedscopeProfile {
    pub name: String,
    pub unit: Unit,
    pub stacks: StackCounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    None,
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Bytes,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "none",
            Unit::Nanoseconds => "nanoseconds",
            Unit::Microseconds => "microseconds",
            Unit::Milliseconds => "milliseconds",
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
        }
    }

    /// Pyroscope keeps two decimals of time weights by scaling them by 100.
    fn precision(self) -> f64 {
        if self == Unit::Bytes { 1.0 } else { 100.0 }
    }

    /// The sample rate that replaces the default 100 Hz, so that scaled
    /// weights end up in nanoseconds. Nanoseconds overflow Pyroscope's 32-bit
    /// arithmetic (1e11 wraps), which leaves a period of 0: kept as is.
    pub fn sample_rate(self) -> u32 {
        match self {
            Unit::Microseconds => 100_000_000,
            Unit::Milliseconds => 100_000,
            Unit::Seconds => 100,
            Unit::None => 10_000,
            Unit::Bytes => 0,
            Unit::Nanoseconds => 100_000_000_000u64 as u32,
        }
    }
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "$schema", default)]
    schema: String,
    #[serde(default)]
    profiles: Vec<Profile>,
    #[serde(default)]
    shared: Shared,
}

#[derive(Default, Deserialize)]
struct Shared {
    #[serde(default)]
    frames: Vec<Frame>,
}

#[derive(Deserialize)]
struct Frame {
    name: String,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default)]
    name: String,
    unit: Unit,
    #[serde(rename = "startValue", default)]
    start_value: f64,
    #[serde(default)]
    samples: Vec<Vec<usize>>,
    #[serde(default)]
    weights: Vec<f64>,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Sampled,
    Evented,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: EventKind,
    at: f64,
    frame: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
enum EventKind {
    O,
    C,
}

pub fn parse(body: &[u8]) -> Result<Vec<SpeedscopeProfile>, String> {
    let file: File = serde_json::from_slice(body).map_err(|e| format!("speedscope: {e}"))?;
    if file.schema != SCHEMA {
        return Err(format!("speedscope: unknown schema {:?}", file.schema));
    }
    let frames: Vec<&str> = file.shared.frames.iter().map(|f| f.name.as_str()).collect();
    let mut out: Vec<(Key, SpeedscopeProfile)> = Vec::new();
    for p in &file.profiles {
        let key = (p.name.as_str(), p.kind, p.unit, p.start_value.to_bits());
        let index = match out.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let profile = SpeedscopeProfile { name: p.name.clone(), unit: p.unit, stacks: StackCounts::default() };
                out.push((key, profile));
                out.len() - 1
            }
        };
        let stacks = &mut out[index].1.stacks;
        match p.kind {
            Kind::Sampled => sampled(p, &frames, stacks)?,
            Kind::Evented => evented(p, &frames, stacks)?,
        }
    }
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

type Key<'a> = (&'a str, Kind, Unit, u64);

fn frame<'a>(frames: &[&'a str], i: usize) -> Result<&'a str, String> {
    frames.get(i).copied().ok_or_else(|| format!("speedscope: invalid frame index {i}"))
}

fn sampled(p: &Profile, frames: &[&str], stacks: &mut StackCounts) -> Result<(), String> {
    if p.samples.len() != p.weights.len() {
        return Err(format!(
            "speedscope: profile {:?}: {} samples but {} weights",
            p.name,
            p.samples.len(),
            p.weights.len()
        ));
    }
    let precision = p.unit.precision();
    let mut names = Vec::new();
    for (sample, &weight) in p.samples.iter().zip(&p.weights) {
        if weight < 0.0 {
            return Err(format!("speedscope: profile {:?}: negative weight {weight}", p.name));
        }
        names.clear();
        for &i in sample {
            names.push(frame(frames, i)?);
        }
        stacks.add(names.iter().copied(), (weight * precision) as i64);
    }
    Ok(())
}

/// Pyroscope credits time when a frame closes (scaled by the precision) and
/// when another opens on top of it (unscaled: a quirk kept for equal totals).
fn evented(p: &Profile, frames: &[&str], stacks: &mut StackCounts) -> Result<(), String> {
    let precision = p.unit.precision();
    let mut open: Vec<usize> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut last = p.start_value;
    for e in &p.events {
        let elapsed = e.at - last;
        match e.kind {
            EventKind::O => {
                if !open.is_empty() {
                    stacks.add(names.iter().copied(), elapsed as i64);
                }
                names.push(frame(frames, e.frame)?);
                open.push(e.frame);
            }
            EventKind::C => {
                if open.last() != Some(&e.frame) {
                    return Err(format!("Closing non-open frame {}", e.frame));
                }
                stacks.add(names.iter().copied(), (elapsed * precision) as i64);
                open.pop();
                names.pop();
            }
        }
        last = e.at;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legacy::stacks::Metric;
    use crate::pprof::collapsed;
    use alloc::string::ToString;

    fn collapse(p: SpeedscopeProfile) -> Vec<(String, i64)> {
        collapsed(&p.stacks.into_profile(&Metric::for_suffix("alloc_objects").unwrap(), 0, 0), 0)
    }

    const FRAMES: &str = r#""shared":{"frames":[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}]}"#;

    fn file(profiles: &str) -> String {
        format!(r#"{{"$schema":"{SCHEMA}","profiles":[{profiles}],{FRAMES}}}"#)
    }

    #[test]
    fn evented_durations_times_precision() {
        let events = r#"{"type":"evented","name":"simple.txt","unit":"none","startValue":0,"endValue":14,"events":[
            {"type":"O","at":0,"frame":0},{"type":"O","at":0,"frame":1},{"type":"O","at":0,"frame":2},
            {"type":"C","at":2,"frame":2},{"type":"O","at":2,"frame":3},{"type":"C","at":6,"frame":3},
            {"type":"O","at":6,"frame":2},{"type":"C","at":9,"frame":2},{"type":"C","at":14,"frame":1},
            {"type":"C","at":14,"frame":0}]}"#;
        let mut got = parse(file(events).as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        let p = got.remove(0);
        assert_eq!((p.name.as_str(), p.unit), ("simple.txt", Unit::None));
        let want = [("a;b", 500), ("a;b;c", 500), ("a;b;d", 400)].map(|(s, v)| (s.to_string(), v));
        assert_eq!(collapse(p), want);
    }

    #[test]
    fn sampled_profiles_merge_by_name_type_unit_start() {
        let one = r#"{"type":"sampled","name":"one","unit":"bytes","startValue":0,"endValue":1,
            "samples":[[0,1,2],[0,1]],"weights":[3,4]}"#;
        let two = one.replace("\"one\"", "\"two\"");
        let mut got = parse(file(&[one, one, &two].join(",")).as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].name, "two");
        let want = [("a;b", 8), ("a;b;c", 6)].map(|(s, v)| (s.to_string(), v));
        assert_eq!(collapse(got.remove(0)), want);
    }

    #[test]
    fn errors() {
        assert!(parse(b"{").is_err());
        assert!(parse(br#"{"$schema":"x","profiles":[]}"#).err().unwrap().contains("schema"));
        let bad_close = r#"{"type":"evented","name":"x","unit":"none","startValue":0,"events":[
            {"type":"O","at":0,"frame":0},{"type":"O","at":1,"frame":1},{"type":"C","at":2,"frame":0}]}"#;
        assert_eq!(parse(file(bad_close).as_bytes()).err().unwrap(), "Closing non-open frame 0");
        let mismatch = r#"{"type":"sampled","name":"x","unit":"none","samples":[[0]],"weights":[]}"#;
        assert!(parse(file(mismatch).as_bytes()).is_err());
        let negative = r#"{"type":"sampled","name":"x","unit":"none","samples":[[0]],"weights":[-1]}"#;
        assert!(parse(file(negative).as_bytes()).is_err());
        let out_of_range = r#"{"type":"sampled","name":"x","unit":"none","samples":[[9]],"weights":[1]}"#;
        assert!(parse(file(out_of_range).as_bytes()).is_err());
        assert_eq!(Unit::Nanoseconds.sample_rate(), 1_215_752_192);
    }
}
