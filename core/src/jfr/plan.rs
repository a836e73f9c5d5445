//! Field plans: a type's fields in declared order, each either skipped by its
//! encoding or bound to a slot. A field is bound only when its name, type,
//! constant-pool flag and array flag are what the converter expects, so an
//! unexpected layout degrades to "absent" (0 / no string) instead of
//! misreading bytes.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::metadata::{Class, Kind, Types};
use super::reader::Reader;
use crate::error::Result;

/// What a wanted field must look like.
#[derive(Clone, Copy)]
pub(super) enum Expect {
    /// A constant-pool reference to the type with this id.
    Ref(u64),
    /// An inline integer (`int`, `long`, …).
    Long,
    String,
    /// An inline array of the struct type with this id.
    Array(u64),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    kind: Kind,
    array: bool,
    /// Index into the wanted list, when bound.
    slot: Option<u8>,
}

/// Up to this many bound fields per plan.
pub(super) const SLOTS: usize = 8;

/// The bound values of one record.
#[derive(Default)]
pub(super) struct Values<'a> {
    pub longs: [u64; SLOTS],
    pub strings: [Option<Cow<'a, str>>; 2],
}

#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    /// The plan for `class`, binding the `wanted` fields (slot = position in
    /// `wanted`). With `stop_early`, fields after the last bound one are not
    /// planned at all: events carry their size, so the rest is skipped whole.
    pub(super) fn new(class: &Class<'_>, wanted: &[(&str, Expect)], stop_early: bool) -> Self {
        debug_assert!(wanted.len() <= SLOTS);
        let mut steps: Vec<Step> = class
            .fields
            .iter()
            .map(|f| {
                let slot = wanted.iter().position(|(name, expect)| {
                    f.name == *name
                        && match *expect {
                            Expect::Ref(t) => f.constant_pool && !f.array && f.type_id == t,
                            Expect::Long => !f.constant_pool && !f.array && f.kind == Kind::Varint,
                            Expect::String => !f.constant_pool && !f.array && f.kind == Kind::String,
                            Expect::Array(t) => !f.constant_pool && f.array && f.type_id == t,
                        }
                });
                Step { kind: f.kind, array: f.array, slot: slot.map(|s| s as u8) }
            })
            .collect();
        if stop_early {
            let keep = steps.iter().rposition(|s| s.slot.is_some()).map_or(0, |i| i + 1);
            steps.truncate(keep);
        }
        Plan { steps }
    }

    /// Reads one record. Bound integers and strings land in `values` at
    /// their slot (string fields must be wanted first, in slots 0 and 1); a
    /// bound array is handed to `array` with its element count.
    #[inline]
    pub(super) fn read<'a>(
        &self,
        types: &Types<'a>,
        r: &mut Reader<'a>,
        values: &mut Values<'a>,
        array: &mut impl FnMut(&mut Reader<'a>, usize) -> Result<()>,
    ) -> Result<()> {
        for step in &self.steps {
            match (step.slot, step.kind, step.array) {
                (None, kind, array) => types.skip(r, kind, array)?,
                (Some(_), _, true) => {
                    let n = r.count()?;
                    array(r, n)?;
                }
                (Some(slot), Kind::String, false) => match values.strings.get_mut(slot as usize) {
                    Some(value) => *value = r.string()?,
                    None => r.skip_string()?,
                },
                (Some(slot), _, false) => values.longs[slot as usize] = r.varlong()?,
            }
        }
        Ok(())
    }
}

/// The array handler of plans that bind no array (never called for them).
pub(super) fn no_array(_: &mut Reader<'_>, _: usize) -> Result<()> {
    Err(super::malformed("unexpected array field"))
}
