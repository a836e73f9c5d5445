//! Constant pools of one chunk: the checkpoint events reached from the
//! header's offset by following each one's `delta`. Only the pools a stack
//! trace needs are kept (stack traces, methods, classes, symbols) plus
//! thread states; every other pool is skipped by its metadata layout.

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec::Vec;

use super::malformed;
use super::metadata::{Kind, Types};
use super::plan::{self, Expect, Plan, Values};
use super::reader::Reader;
use crate::error::Result;
use crate::{FastMap, FastSet};

/// The thread states the conversion distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ThreadState {
    Runnable,
    Sleeping,
    Other,
}

/// One frame of a stack trace, leaf first as stored.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    pub method: u64,
    pub line: u32,
}

#[derive(Default)]
pub(super) struct Pools<'a> {
    pub symbols: FastMap<u64, Cow<'a, str>>,
    /// Class key → its name symbol key.
    pub classes: FastMap<u64, u64>,
    /// Method key → (class key, name symbol key).
    pub methods: FastMap<u64, (u64, u64)>,
    /// Stack trace key → range in `frames`.
    pub stacks: FastMap<u64, (u32, u32)>,
    pub frames: Vec<Frame>,
    pub states: FastMap<u64, ThreadState>,
}

/// The pool readers, planned from the chunk's metadata.
struct Plans {
    stack_trace: (u64, Plan),
    stack_frame: Plan,
    method: (u64, Plan),
    class: (u64, Plan),
    symbol: (u64, Plan),
    thread_state: (u64, Plan),
}

impl Plans {
    fn new(types: &Types<'_>) -> Result<Self> {
        let id = |name: &str| types.id(name).ok_or_else(|| malformed(format!("missing mandatory type {name}")));
        let (stack_trace, stack_frame, method, class, symbol, thread_state) = (
            id("jdk.types.StackTrace")?,
            id("jdk.types.StackFrame")?,
            id("jdk.types.Method")?,
            id("java.lang.Class")?,
            id("jdk.types.Symbol")?,
            id("jdk.types.ThreadState")?,
        );
        let plan = |type_id: u64, wanted: &[(&str, Expect)]| {
            types.class(type_id).map(|c| Plan::new(c, wanted, false)).unwrap_or_default()
        };
        Ok(Plans {
            stack_trace: (stack_trace, plan(stack_trace, &[("frames", Expect::Array(stack_frame))])),
            stack_frame: plan(stack_frame, &[("method", Expect::Ref(method)), ("lineNumber", Expect::Long)]),
            method: (method, plan(method, &[("type", Expect::Ref(class)), ("name", Expect::Ref(symbol))])),
            class: (class, plan(class, &[("name", Expect::Ref(symbol))])),
            symbol: (symbol, plan(symbol, &[("string", Expect::String)])),
            thread_state: (thread_state, plan(thread_state, &[("name", Expect::String)])),
        })
    }
}

impl<'a> Pools<'a> {
    /// Reads every checkpoint of `chunk`, starting at `offset`.
    pub(super) fn read(chunk: &'a [u8], offset: u64, types: &Types<'a>) -> Result<Self> {
        let plans = Plans::new(types)?;
        let mut pools = Pools::default();
        let mut visited = FastSet::default();
        let mut offset = offset;
        loop {
            if !visited.insert(offset) {
                return Err(malformed("constant pool chain loops"));
            }
            let delta = pools.checkpoint(chunk, offset, types, &plans)?;
            if delta == 0 {
                return Ok(pools);
            }
            offset = offset
                .checked_add_signed(delta)
                .filter(|&o| o < chunk.len() as u64)
                .ok_or_else(|| malformed("constant pool offset out of chunk"))?;
        }
    }

    /// Reads one checkpoint event; returns its delta to the previous one.
    fn checkpoint(&mut self, chunk: &'a [u8], offset: u64, types: &Types<'a>, plans: &Plans) -> Result<i64> {
        let mut r = Reader::at(chunk, offset as usize);
        let size = r.varlong()?;
        let end = offset.checked_add(size).filter(|&e| size > 0 && e <= chunk.len() as u64);
        let end = end.ok_or_else(|| malformed("constant pool event exceeds its chunk"))?;
        let mut r = Reader::at(&chunk[..end as usize], r.pos());
        if r.varlong()? != 1 {
            return Err(malformed("constant pool offset does not point at a constant pool event"));
        }
        r.varlong()?; // start ticks
        r.varlong()?; // duration
        let delta = r.varlong()? as i64;
        r.varlong()?; // flush / type mask
        let pools = r.count()?;
        for _ in 0..pools {
            let type_id = r.varlong()?;
            let count = r.count()?;
            self.pool(&mut r, type_id, count, types, plans)?;
        }
        Ok(delta)
    }

    fn pool(&mut self, r: &mut Reader<'a>, type_id: u64, count: usize, types: &Types<'a>, p: &Plans) -> Result<()> {
        let mut values = Values::default();
        let entry = |r: &mut Reader<'a>, plan: &Plan, values: &mut Values<'a>| -> Result<u64> {
            let key = r.varlong()?;
            values.longs = [0; plan::SLOTS];
            values.strings = [None, None];
            plan.read(types, r, values, &mut plan::no_array)?;
            Ok(key)
        };
        if type_id == p.stack_trace.0 {
            self.stacks.reserve(count);
            for _ in 0..count {
                let key = r.varlong()?;
                let start = self.frames.len();
                let frames = &mut self.frames;
                let mut read_frames = |r: &mut Reader<'a>, n: usize| -> Result<()> {
                    frames.reserve(n);
                    let mut v = Values::default();
                    for _ in 0..n {
                        v.longs = [0; plan::SLOTS];
                        p.stack_frame.read(types, r, &mut v, &mut plan::no_array)?;
                        frames.push(Frame { method: v.longs[0], line: v.longs[1] as u32 });
                    }
                    Ok(())
                };
                p.stack_trace.1.read(types, r, &mut values, &mut read_frames)?;
                let len = self.frames.len() - start;
                self.stacks.insert(key, (start as u32, len as u32));
            }
        } else if type_id == p.method.0 {
            self.methods.reserve(count);
            for _ in 0..count {
                let key = entry(r, &p.method.1, &mut values)?;
                self.methods.insert(key, (values.longs[0], values.longs[1]));
            }
        } else if type_id == p.class.0 {
            self.classes.reserve(count);
            for _ in 0..count {
                let key = entry(r, &p.class.1, &mut values)?;
                self.classes.insert(key, values.longs[0]);
            }
        } else if type_id == p.symbol.0 {
            self.symbols.reserve(count);
            for _ in 0..count {
                let key = entry(r, &p.symbol.1, &mut values)?;
                self.symbols.insert(key, values.strings[0].take().unwrap_or_default());
            }
        } else if type_id == p.thread_state.0 {
            for _ in 0..count {
                let key = entry(r, &p.thread_state.1, &mut values)?;
                let state = match values.strings[0].as_deref() {
                    Some("STATE_RUNNABLE") => ThreadState::Runnable,
                    Some("STATE_SLEEPING") => ThreadState::Sleeping,
                    _ => ThreadState::Other,
                };
                self.states.insert(key, state);
            }
        } else {
            // Entries of other pools: a key, then one value of the pool's
            // type (a struct's fields, or a primitive such as a string).
            let kind = types.kind_of(type_id);
            if kind == Kind::Unknown {
                return Err(malformed(format!("constant pool of undeclared type {type_id}")));
            }
            for _ in 0..count {
                r.varlong()?;
                types.skip(r, kind, false)?;
            }
        }
        Ok(())
    }
}
