//! The events the conversion reads, by name, and their fields. Everything
//! else in the chunk body is skipped by its record size.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::metadata::Types;
use super::plan::{self, Expect, Plan, Values};
use super::reader::Reader;
use crate::FastMap;
use crate::error::Result;

/// A recognised event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventKind {
    ExecutionSample,
    WallClockSample,
    AllocInNewTlab,
    AllocOutsideTlab,
    AllocSample,
    MonitorEnter,
    ThreadPark,
    LiveObject,
    Malloc,
    ActiveSetting,
}

impl EventKind {
    const ALL: [(&'static str, EventKind); 10] = [
        ("jdk.ExecutionSample", EventKind::ExecutionSample),
        ("profiler.WallClockSample", EventKind::WallClockSample),
        ("jdk.ObjectAllocationInNewTLAB", EventKind::AllocInNewTlab),
        ("jdk.ObjectAllocationOutsideTLAB", EventKind::AllocOutsideTlab),
        ("jdk.ObjectAllocationSample", EventKind::AllocSample),
        ("jdk.JavaMonitorEnter", EventKind::MonitorEnter),
        ("jdk.ThreadPark", EventKind::ThreadPark),
        ("profiler.LiveObject", EventKind::LiveObject),
        ("profiler.Malloc", EventKind::Malloc),
        ("jdk.ActiveSetting", EventKind::ActiveSetting),
    ];

    /// The event's own value field, if it has one.
    fn value_field(self) -> Option<&'static str> {
        match self {
            EventKind::WallClockSample => Some("samples"),
            EventKind::AllocInNewTlab => Some("tlabSize"),
            EventKind::AllocOutsideTlab => Some("allocationSize"),
            EventKind::AllocSample => Some("weight"),
            EventKind::MonitorEnter | EventKind::ThreadPark => Some("duration"),
            EventKind::Malloc => Some("size"),
            _ => None,
        }
    }

    /// Whether the event carries async-profiler's context and span ids.
    fn has_correlation(self) -> bool {
        matches!(
            self,
            EventKind::ExecutionSample
                | EventKind::WallClockSample
                | EventKind::AllocInNewTlab
                | EventKind::AllocOutsideTlab
                | EventKind::MonitorEnter
        )
    }
}

// Slots of the sample event plans. Slots 0 and 1 are the string slots
// (ActiveSetting's name and value).
const STACK: usize = 2;
const STATE: usize = 3;
const VALUE: usize = 4;
const CONTEXT: usize = 5;
const SPAN_ID: usize = 6;
const SPAN_NAME: usize = 7;

/// One decoded event.
pub(super) enum Event<'a> {
    Sample(SampleEvent),
    Setting { name: Option<Cow<'a, str>>, value: Option<Cow<'a, str>> },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct SampleEvent {
    pub kind: EventKind,
    pub stack: u64,
    pub state: u64,
    /// The event's value field (0 when the event has none or it is absent).
    pub value: u64,
    pub correlation: Correlation,
}

/// async-profiler's context and span ids (0 = absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Correlation {
    pub context: u64,
    pub span_id: u64,
    pub span_name: u64,
}

/// The recognised event types of one chunk, with their plans.
pub(super) struct EventPlans {
    by_type: FastMap<u64, (EventKind, Plan)>,
}

impl EventPlans {
    pub(super) fn new(types: &Types<'_>) -> Self {
        let stack_trace = types.id("jdk.types.StackTrace").unwrap_or(u64::MAX);
        let thread_state = types.id("jdk.types.ThreadState").unwrap_or(u64::MAX);
        let mut by_type = FastMap::default();
        for (name, kind) in EventKind::ALL {
            let Some(class) = types.id(name).and_then(|id| types.class(id)) else { continue };
            let mut wanted: Vec<(&str, Expect)> = Vec::with_capacity(plan::SLOTS);
            if kind == EventKind::ActiveSetting {
                wanted.extend([("name", Expect::String), ("value", Expect::String)]);
            } else {
                // Field names are never empty, so "" wants nothing: it pads
                // the string slots and stands for an absent value field.
                wanted.extend([("", Expect::String), ("", Expect::String)]);
                wanted.push(("stackTrace", Expect::Ref(stack_trace)));
                wanted.push(("state", Expect::Ref(thread_state)));
                wanted.push((kind.value_field().unwrap_or(""), Expect::Long));
                if kind.has_correlation() {
                    wanted.extend([("contextId", Expect::Long), ("spanId", Expect::Long), ("spanName", Expect::Long)]);
                }
            }
            by_type.insert(class.id, (kind, Plan::new(class, &wanted, true)));
        }
        EventPlans { by_type }
    }

    /// Decodes the fields of a record of type `type_id` (the reader is
    /// bounded to the record); `None` for types the conversion ignores.
    #[inline]
    pub(super) fn read<'a>(&self, types: &Types<'a>, type_id: u64, r: &mut Reader<'a>) -> Result<Option<Event<'a>>> {
        let Some((kind, plan)) = self.by_type.get(&type_id) else { return Ok(None) };
        let mut values = Values::default();
        plan.read(types, r, &mut values, &mut plan::no_array)?;
        if *kind == EventKind::ActiveSetting {
            let [name, value] = values.strings;
            return Ok(Some(Event::Setting { name, value }));
        }
        let l = &values.longs;
        Ok(Some(Event::Sample(SampleEvent {
            kind: *kind,
            stack: l[STACK],
            state: l[STATE],
            value: l[VALUE],
            correlation: Correlation { context: l[CONTEXT], span_id: l[SPAN_ID], span_name: l[SPAN_NAME] },
        })))
    }
}
