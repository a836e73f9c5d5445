//! pprof construction: one [`Profile`] per produced profile type, built from
//! stacks resolved to frame names. Stacks and names are interned for the
//! whole upload, so samples from several chunks merge by content even though
//! each chunk numbers its pools afresh.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::context::ContextLabels;
use super::events::Correlation;
use crate::FastMap;
use crate::pprof::{Function, Line, Location, Mapping, Profile, Sample, ValueType};
use kiln_proto::google::v1::Label;

/// The profiles a recording can produce (jfr.md §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum ProfileKind {
    Cpu,
    Wall,
    AllocInNewTlab,
    AllocOutsideTlab,
    AllocSample,
    Lock,
    ThreadPark,
    LiveObject,
    Malloc,
}

impl ProfileKind {
    pub(super) const COUNT: usize = 9;

    /// `__name__` of the produced series.
    pub(super) fn metric(self) -> &'static str {
        match self {
            ProfileKind::Cpu => "process_cpu",
            ProfileKind::Wall => "wall",
            ProfileKind::Lock => "mutex",
            ProfileKind::ThreadPark => "block",
            _ => "memory",
        }
    }

    fn sample_types(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ProfileKind::Cpu => &[("cpu", "nanoseconds")],
            ProfileKind::Wall => &[("wall", "nanoseconds")],
            ProfileKind::AllocInNewTlab => {
                &[("alloc_in_new_tlab_objects", "count"), ("alloc_in_new_tlab_bytes", "bytes")]
            }
            ProfileKind::AllocOutsideTlab => {
                &[("alloc_outside_tlab_objects", "count"), ("alloc_outside_tlab_bytes", "bytes")]
            }
            ProfileKind::AllocSample => &[("alloc_sample_objects", "count"), ("alloc_sample_bytes", "bytes")],
            ProfileKind::Lock | ProfileKind::ThreadPark => &[("contentions", "count"), ("delay", "nanoseconds")],
            ProfileKind::LiveObject => &[("live", "count")],
            ProfileKind::Malloc => &[("malloc_objects", "count"), ("malloc_bytes", "bytes")],
        }
    }

    fn period_type(self) -> Option<(&'static str, &'static str)> {
        match self {
            ProfileKind::Cpu => Some(("cpu", "nanoseconds")),
            ProfileKind::Wall => Some(("wall", "nanoseconds")),
            ProfileKind::AllocInNewTlab | ProfileKind::AllocOutsideTlab | ProfileKind::AllocSample => {
                Some(("space", "bytes"))
            }
            ProfileKind::Lock => Some(("mutex", "count")),
            ProfileKind::ThreadPark => Some(("block", "count")),
            ProfileKind::LiveObject => Some(("objects", "count")),
            ProfileKind::Malloc => None,
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// A resolved frame: interned name and line number.
pub(super) type FrameKey = (u32, u32);

/// Frame names and stacks of the whole upload.
#[derive(Default)]
pub(super) struct Stacks {
    names: Vec<String>,
    name_ids: FastMap<String, u32>,
    /// Frames of stack `i`: `frames[starts[i]..starts[i + 1]]`, leaf first.
    frames: Vec<FrameKey>,
    starts: Vec<u32>,
    stack_ids: FastMap<Vec<FrameKey>, u32>,
}

impl Stacks {
    pub(super) fn name(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.name_ids.insert(name.into(), id);
        id
    }

    pub(super) fn stack(&mut self, frames: &[FrameKey]) -> u32 {
        if let Some(&id) = self.stack_ids.get(frames) {
            return id;
        }
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let id = self.starts.len() as u32 - 1;
        self.frames.extend_from_slice(frames);
        self.starts.push(self.frames.len() as u32);
        self.stack_ids.insert(frames.to_vec(), id);
        id
    }

    fn frames(&self, stack: u32) -> &[FrameKey] {
        let (a, b) = (self.starts[stack as usize], self.starts[stack as usize + 1]);
        &self.frames[a as usize..b as usize]
    }
}

/// One profile under construction.
pub(super) struct ProfileBuilder {
    kind: ProfileKind,
    profile: Profile,
    strings: FastMap<String, i64>,
    /// pprof function id by interned name id (0 = not yet added).
    functions: Vec<u64>,
    locations: FastMap<FrameKey, u64>,
    samples: FastMap<(u32, Correlation), usize>,
}

impl ProfileBuilder {
    pub(super) fn new(kind: ProfileKind, time_nanos: i64, duration_nanos: i64) -> Self {
        let mut b = ProfileBuilder {
            kind,
            profile: Profile {
                mapping: vec![Mapping { id: 1, has_functions: true, ..Default::default() }],
                time_nanos,
                duration_nanos,
                ..Default::default()
            },
            strings: FastMap::default(),
            functions: Vec::new(),
            locations: FastMap::default(),
            samples: FastMap::default(),
        };
        b.string("");
        for (t, u) in kind.sample_types() {
            let vt = ValueType { r#type: b.string(t), unit: b.string(u) };
            b.profile.sample_type.push(vt);
        }
        if let Some((t, u)) = kind.period_type() {
            b.profile.period_type = Some(ValueType { r#type: b.string(t), unit: b.string(u) });
        }
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    /// Adds `values` to the sample of (`stack`, `correlation`).
    pub(super) fn add(
        &mut self,
        stacks: &Stacks,
        stack: u32,
        correlation: Correlation,
        values: &[i64; 2],
        labels: Option<&ContextLabels>,
    ) {
        let n = self.profile.sample_type.len();
        if let Some(&i) = self.samples.get(&(stack, correlation)) {
            let sample = &mut self.profile.sample[i];
            sample.value.iter_mut().zip(values).for_each(|(v, add)| *v += add);
            return;
        }
        let location_id = stacks.frames(stack).iter().map(|&frame| self.location(stacks, frame)).collect();
        let label = self.labels(correlation, labels);
        self.samples.insert((stack, correlation), self.profile.sample.len());
        self.profile.sample.push(Sample { location_id, value: values[..n].to_vec(), label });
    }

    fn location(&mut self, stacks: &Stacks, (name, line): FrameKey) -> u64 {
        if let Some(&id) = self.locations.get(&(name, line)) {
            return id;
        }
        if self.functions.len() <= name as usize {
            self.functions.resize(name as usize + 1, 0);
        }
        if self.functions[name as usize] == 0 {
            let id = self.profile.function.len() as u64 + 1;
            let name_index = self.string(&stacks.names[name as usize]);
            self.profile.function.push(Function { id, name: name_index, ..Default::default() });
            self.functions[name as usize] = id;
        }
        let function_id = self.functions[name as usize];
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(Location {
            id,
            mapping_id: 1,
            line: vec![Line { function_id, line: line as i64 }],
            ..Default::default()
        });
        self.locations.insert((name, line), id);
        id
    }

    /// Context labels, then `profile_id` and `span_name` (jfr.md §7).
    fn labels(&mut self, c: Correlation, labels: Option<&ContextLabels>) -> Vec<Label> {
        let mut out = Vec::new();
        let mut push = |b: &mut Self, key: &str, value: &str| {
            let (key, str) = (b.string(key), b.string(value));
            out.push(Label { key, str, ..Default::default() });
        };
        if let Some(labels) = labels {
            for (k, v) in labels.labels(c.context) {
                push(self, k, v);
            }
        }
        if c.span_id != 0 {
            push(self, "profile_id", &alloc::format!("{:016x}", c.span_id));
        }
        if c.span_name != 0 {
            let name = labels.map_or("", |l| l.string(c.span_name as i64));
            if !name.is_empty() {
                push(self, "span_name", name);
            }
        }
        out
    }

    pub(super) fn kind(&self) -> ProfileKind {
        self.kind
    }

    pub(super) fn is_empty(&self) -> bool {
        self.profile.sample.is_empty()
    }

    pub(super) fn finish(self) -> Profile {
        self.profile
    }
}
