//! Stacks with counts, the common output of the text and tree readers, and
//! the single-sample-type pprof Pyroscope makes of them (§5.6 of the spec):
//! one function and location per distinct frame name, one fake mapping.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::FastMap;
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample, ValueType};

/// The metric an app-name suffix selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub sample_type: String,
    pub unit: &'static str,
    /// CPU and wall counts are samples, worth `1e9 / sampleRate` ns each.
    pub scaled: bool,
}

impl Metric {
    /// Pyroscope's suffix table; `None` for an unknown suffix.
    pub fn for_suffix(suffix: &str) -> Option<Self> {
        let (name, sample_type, unit, scaled) = match suffix {
            "cpu" | "itimer" => ("process_cpu", "cpu", "nanoseconds", true),
            "wall" | "seconds" | "nanoseconds" | "microseconds" | "milliseconds" => {
                ("wall", "wall", "nanoseconds", true)
            }
            "inuse_objects" | "alloc_objects" | "alloc_in_new_tlab_objects" | "alloc_outside_tlab_objects" => {
                ("memory", suffix, "count", false)
            }
            "inuse_space" | "alloc_space" | "alloc_in_new_tlab_bytes" | "alloc_outside_tlab_bytes" => {
                ("memory", suffix, "bytes", false)
            }
            "goroutines" => ("goroutine", "goroutines", "count", false),
            "mutex_count" => ("mutex", "contentions", "count", false),
            "mutex_duration" => ("mutex", "delay", "nanoseconds", false),
            "block_count" | "lock_count" => ("block", "contentions", "count", false),
            "block_duration" | "lock_duration" => ("block", "delay", "nanoseconds", false),
            "live" => ("memory", "live", "count", false),
            "exceptions" => ("exceptions", "samples", "count", false),
            "bytes" => ("memory", "samples", "bytes", false),
            _ => return None,
        };
        Some(Self { name, sample_type: sample_type.into(), unit, scaled })
    }
}

/// Distinct stacks (root first) with summed values.
#[derive(Default)]
pub struct StackCounts {
    names: FastMap<String, u64>,
    /// Frame names by location id − 1.
    frames: Vec<String>,
    samples: FastMap<Vec<u64>, i64>,
    /// Location ids of the stack being added, leaf first (pprof order).
    scratch: Vec<u64>,
}

impl StackCounts {
    /// Adds `value` to the stack `frames` (root first). Empty stacks count
    /// nothing, as Pyroscope's trees have no node for them.
    pub fn add<'a>(&mut self, frames: impl IntoIterator<Item = &'a str>, value: i64) {
        self.scratch.clear();
        for frame in frames {
            let id = match self.names.get(frame) {
                Some(&id) => id,
                None => {
                    self.frames.push(frame.into());
                    let id = self.frames.len() as u64;
                    self.names.insert(frame.into(), id);
                    id
                }
            };
            self.scratch.push(id);
        }
        if self.scratch.is_empty() {
            return;
        }
        self.scratch.reverse();
        match self.samples.get_mut(self.scratch.as_slice()) {
            Some(v) => *v = v.wrapping_add(value),
            None => {
                self.samples.insert(self.scratch.clone(), value);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The pprof of these stacks as `metric`, taken at `time_nanos`. Scaled
    /// metrics turn counts into nanoseconds at `sample_rate` Hz; with a rate
    /// of 0 they stay `samples:count`.
    pub fn into_profile(self, metric: &Metric, sample_rate: u32, time_nanos: i64) -> Profile {
        let mut strings: Vec<String> = vec![String::new()];
        let mut intern = |s: &str| {
            strings.push(s.into());
            strings.len() as i64 - 1
        };
        let period = if metric.scaled && sample_rate != 0 { 1_000_000_000 / i64::from(sample_rate) } else { 0 };
        let (sample_type, period_type) = if !metric.scaled {
            (ValueType { r#type: intern(&metric.sample_type), unit: intern(metric.unit) }, None)
        } else if sample_rate == 0 {
            (ValueType { r#type: intern("samples"), unit: intern("count") }, None)
        } else {
            let st = ValueType { r#type: intern(&metric.sample_type), unit: intern(metric.unit) };
            (st, Some(ValueType { r#type: intern("cpu"), unit: intern("nanoseconds") }))
        };
        let first_frame = strings.len() as i64;
        strings.extend(self.frames);
        let ids = 1..=(strings.len() as i64 - first_frame) as u64;
        let function =
            ids.clone().map(|id| Function { id, name: first_frame + id as i64 - 1, ..Default::default() }).collect();
        let location = ids
            .map(|id| Location {
                id,
                mapping_id: 1,
                line: vec![Line { function_id: id, line: 0 }],
                ..Default::default()
            })
            .collect();
        let scale = if period_type.is_some() { period } else { 1 };
        let sample = self
            .samples
            .into_iter()
            .map(|(location_id, v)| Sample { location_id, value: vec![v.wrapping_mul(scale)], label: vec![] })
            .collect();
        Profile {
            sample_type: vec![sample_type],
            sample,
            mapping: vec![Mapping { id: 1, has_functions: true, ..Default::default() }],
            location,
            function,
            string_table: strings,
            time_nanos,
            period_type,
            period,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::collapsed;
    use alloc::string::ToString;

    fn counts() -> StackCounts {
        let mut c = StackCounts::default();
        c.add(["a", "b"], 2);
        c.add(["a", "c"], 1);
        c.add(["a", "b"], 3);
        c.add([], 7);
        c
    }

    fn id(p: &Profile) -> String {
        let s = |i: i64| p.string_table[i as usize].as_str();
        let st = &p.sample_type[0];
        let (pt, pu) = p.period_type.as_ref().map_or(("", ""), |v| (s(v.r#type), s(v.unit)));
        [s(st.r#type), s(st.unit), pt, pu].join(":")
    }

    #[test]
    fn cpu_counts_become_nanoseconds() {
        let p = counts().into_profile(&Metric::for_suffix("cpu").unwrap(), 100, 5);
        assert_eq!(id(&p), "cpu:nanoseconds:cpu:nanoseconds");
        assert_eq!(p.period, 10_000_000);
        assert_eq!(p.time_nanos, 5);
        let want = [("a;b".to_string(), 50_000_000), ("a;c".to_string(), 10_000_000)];
        assert_eq!(collapsed(&p, 0), want);
        crate::pprof::validate(&p, &Default::default()).unwrap();
    }

    #[test]
    fn sample_rate_zero_and_unscaled_metrics() {
        let p = counts().into_profile(&Metric::for_suffix("wall").unwrap(), 0, 0);
        assert_eq!(id(&p), "samples:count::");
        assert_eq!(collapsed(&p, 0)[0], ("a;b".to_string(), 5));
        let p = counts().into_profile(&Metric::for_suffix("alloc_space").unwrap(), 100, 0);
        assert_eq!(id(&p), "alloc_space:bytes::");
        assert_eq!(Metric::for_suffix("goroutines").unwrap().name, "goroutine");
        assert_eq!(Metric::for_suffix("app"), None);
    }
}
