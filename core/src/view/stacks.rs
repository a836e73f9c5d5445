//! A file's samples as the views keep them: each stack as its location ids,
//! packed varints leaf-first as pprof writes them (for a streamed pprof, in
//! the input itself: nothing is copied), its values, and per location its
//! frame names. A tree of every stack of a large profile costs many times
//! the file; views merge stacks only as far as they need (see
//! [`super::graph`]).
//!
//! Stacks are read root-first by decoding the varints backward: the last
//! byte of a varint is the only one without the continuation bit.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::load::{malformed, out_of_memory};
use crate::FastMap;
use crate::error::Result;

/// One file's (or one decoded profile's) kept samples.
#[derive(Debug)]
pub struct Stacks {
    /// Holds every stack's location ids.
    buf: Vec<u8>,
    /// Per stack: its location ids in `buf`.
    ranges: Vec<(u32, u32)>,
    /// Per stack, `columns` values.
    values: Vec<i64>,
    columns: usize,
    /// Per location id: its frames in `frames`.
    locations: Locations,
    /// Name ids, each location's root-most frame first.
    frames: Vec<u32>,
    names: Vec<String>,
}

/// The parts of [`Stacks`] a reader fills in before the buffer is handed over.
pub(super) struct StacksBuilder {
    ranges: Vec<(u32, u32)>,
    values: Vec<i64>,
    columns: usize,
    locations: Locations,
    /// Location ids in the order [`Self::location`] gets their frames.
    ids: Vec<u64>,
    frames: Vec<u32>,
    names: Vec<String>,
    name_ids: FastMap<String, u32>,
    /// Locations given their frames so far.
    added: usize,
    /// Stacks re-encoded because the input does not hold them as one packed
    /// run; appended to the buffer by [`Self::finish`].
    extra: Vec<u8>,
}

impl StacksBuilder {
    /// `location_ids` in the file's order (the last of equal ids wins, as in
    /// the server).
    pub fn new(columns: usize, location_ids: impl IntoIterator<Item = u64>) -> Self {
        let ids: Vec<u64> = location_ids.into_iter().collect();
        Self {
            ranges: Vec::new(),
            values: Vec::new(),
            columns,
            locations: Locations::new(&ids),
            ids,
            frames: Vec::new(),
            names: Vec::new(),
            name_ids: FastMap::default(),
            added: 0,
            extra: Vec::new(),
        }
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.name_ids.insert(name.into(), id);
        id
    }

    /// The next location's frames (name ids, root-most first); locations
    /// are given in the order of `location_ids`.
    pub fn location(&mut self, frames: impl IntoIterator<Item = u32>) {
        let start = self.frames.len() as u32;
        self.frames.extend(frames);
        let id = self.ids[self.added];
        self.added += 1;
        self.locations.set(id, (start, self.frames.len() as u32));
    }

    /// Checks a stack's location ids (leaf-first, the depth limit already
    /// applied): an error for an unknown id; false if it has no frame (no
    /// place in a flame graph).
    pub fn check(&self, ids: &[u64]) -> Result<bool> {
        let mut framed = false;
        for &id in ids {
            let (start, end) = self.locations.get(id).ok_or_else(|| unknown_location(id))?;
            framed |= start != end;
        }
        Ok(framed)
    }

    /// Adds a stack whose ids are at `range` of the buffer that
    /// [`Self::finish`] will get.
    pub fn push_range(&mut self, range: (u32, u32), values: impl IntoIterator<Item = i64>) -> Result<()> {
        if self.ranges.len() == self.ranges.capacity() {
            self.reserve((self.ranges.len() / 2).max(1024))?;
        }
        self.ranges.push(range);
        self.values.extend(values);
        Ok(())
    }

    /// Adds a stack by its ids (leaf-first), copied; `base` is the length of
    /// the buffer [`Self::finish`] will get.
    pub fn push_ids(&mut self, base: usize, ids: &[u64], values: impl IntoIterator<Item = i64>) -> Result<()> {
        let start = base + self.extra.len();
        self.extra.try_reserve(ids.len() * 10).map_err(|_| out_of_memory())?;
        for &id in ids {
            put_varint(&mut self.extra, id);
        }
        let range = (offset(start)?, offset(base + self.extra.len())?);
        self.push_range(range, values)
    }

    /// Room for `stacks` more stacks, reserved fallibly.
    pub fn reserve(&mut self, stacks: usize) -> Result<()> {
        let ok = self.ranges.try_reserve_exact(stacks).is_ok()
            && self.values.try_reserve_exact(stacks * self.columns).is_ok();
        if ok { Ok(()) } else { Err(out_of_memory()) }
    }

    /// The stacks over `buf` (the bytes their ranges point into).
    pub fn finish(self, mut buf: Vec<u8>) -> Result<Stacks> {
        let Self { mut ranges, mut values, columns, locations, frames, mut names, extra, .. } = self;
        if !extra.is_empty() {
            buf.try_reserve_exact(extra.len()).map_err(|_| out_of_memory())?;
            buf.extend_from_slice(&extra);
        }
        buf.shrink_to_fit();
        ranges.shrink_to_fit();
        values.shrink_to_fit();
        names.shrink_to_fit();
        Ok(Stacks { buf, ranges, values, columns, locations, frames, names })
    }
}

fn offset(at: usize) -> Result<u32> {
    u32::try_from(at).map_err(|_| out_of_memory())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Stacks {
    pub fn count(&self) -> usize {
        self.ranges.len()
    }

    #[inline]
    pub fn value(&self, stack: usize, column: usize) -> i64 {
        self.values[stack * self.columns + column]
    }

    /// The sum of a column over all stacks.
    pub fn total(&self, column: usize) -> i64 {
        (0..self.count()).map(|s| self.value(s, column)).sum()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// A cursor at the root of `stack`, reading leafward.
    #[inline]
    pub fn cursor(&self, stack: usize) -> Cursor {
        let (start, end) = self.ranges[stack];
        Cursor { limit: start, pos: end, frame: 0, frames_end: 0 }
    }

    /// A cursor at the leaf of `stack`, reading rootward.
    #[inline]
    pub fn leaf_cursor(&self, stack: usize) -> Cursor {
        let (start, end) = self.ranges[stack];
        Cursor { limit: end, pos: start, frame: 0, frames_end: 0 }
    }

    /// The next frame's name id going `way`, or `None` past the stack's end.
    // Always inlined: the flame graph's inner loop is mostly this.
    #[inline(always)]
    pub fn step(&self, c: &mut Cursor, way: Way) -> Option<u32> {
        match way {
            Way::Leafward => self.next(c),
            Way::Rootward => self.next_up(c),
        }
    }

    /// The next frame's name id going leafward, or `None` past the leaf.
    #[inline(always)]
    pub fn next(&self, c: &mut Cursor) -> Option<u32> {
        loop {
            if c.frame < c.frames_end {
                let name = self.frames[c.frame as usize];
                c.frame += 1;
                return Some(name);
            }
            if c.pos <= c.limit {
                return None;
            }
            // The varint that ends at `pos`: back over its continuation bytes.
            let end = c.pos as usize;
            let mut p = end - 1;
            while p > c.limit as usize && self.buf[p - 1] & 0x80 != 0 {
                p -= 1;
            }
            c.pos = p as u32;
            (c.frame, c.frames_end) = self.frames_of(self.varint(p, end));
        }
    }

    /// The next frame's name id going rootward, or `None` past the root.
    #[inline]
    fn next_up(&self, c: &mut Cursor) -> Option<u32> {
        loop {
            // Rootward, a location's frames are read from its last.
            if c.frame > c.frames_end {
                c.frame -= 1;
                return Some(self.frames[c.frame as usize]);
            }
            if c.pos >= c.limit {
                return None;
            }
            let start = c.pos as usize;
            let mut p = start;
            while p + 1 < c.limit as usize && self.buf[p] & 0x80 != 0 {
                p += 1;
            }
            c.pos = p as u32 + 1;
            let (from, to) = self.frames_of(self.varint(start, p + 1));
            (c.frame, c.frames_end) = (to, from);
        }
    }

    #[inline]
    fn varint(&self, start: usize, end: usize) -> u64 {
        let mut v = 0u64;
        for (i, &b) in self.buf[start..end].iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
        }
        v
    }

    /// A location's range in `frames`. Ids were checked when the stack was
    /// added.
    #[inline]
    fn frames_of(&self, id: u64) -> (u32, u32) {
        self.locations.get(id).unwrap_or((0, 0))
    }

    /// Calls `f` with each frame's name id of `stack`, root first.
    pub fn for_each_frame(&self, stack: usize, mut f: impl FnMut(u32)) {
        let mut c = self.cursor(stack);
        while let Some(name) = self.next(&mut c) {
            f(name);
        }
    }
}

/// Which way a [`Cursor`] reads its stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Leafward,
    Rootward,
}

/// A position in one stack.
#[derive(Clone, Copy, Debug)]
pub struct Cursor {
    /// Where reading the stack's ids stops.
    limit: u32,
    /// The next id's end (leafward) or start (rootward).
    pos: u32,
    /// The current location's frames not yet read: `frame..frames_end`
    /// leafward, `frames_end..frame` rootward.
    frame: u32,
    frames_end: u32,
}

fn unknown_location(id: u64) -> crate::error::Error {
    malformed(&alloc::format!("sample references unknown location id {id}"))
}

/// Location id → its frames: by position when ids are dense (the usual
/// 1..=n), else hashed. The last of equal ids wins, as in the server.
#[derive(Debug)]
enum Locations {
    Dense(Vec<(u32, u32)>),
    Sparse(FastMap<u64, (u32, u32)>),
}

/// A dense slot without a location.
const NO_LOCATION: (u32, u32) = (u32::MAX, u32::MAX);

impl Locations {
    fn new(ids: &[u64]) -> Self {
        let max = ids.iter().copied().max().unwrap_or(0);
        if max <= (ids.len() as u64) * 2 + 16 {
            Locations::Dense(vec![NO_LOCATION; max as usize + 1])
        } else {
            Locations::Sparse(FastMap::default())
        }
    }

    fn set(&mut self, id: u64, frames: (u32, u32)) {
        match self {
            Locations::Dense(v) => v[id as usize] = frames,
            Locations::Sparse(m) => {
                m.insert(id, frames);
            }
        }
    }

    #[inline]
    fn get(&self, id: u64) -> Option<(u32, u32)> {
        match self {
            Locations::Dense(v) => v.get(id as usize).copied().filter(|&f| f != NO_LOCATION),
            Locations::Sparse(m) => m.get(&id).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(s: &Stacks, stack: usize) -> Vec<&str> {
        let mut out = Vec::new();
        s.for_each_frame(stack, |n| out.push(s.names()[n as usize].as_str()));
        out
    }

    fn frames_up(s: &Stacks, stack: usize) -> Vec<&str> {
        let mut out = Vec::new();
        let mut c = s.leaf_cursor(stack);
        while let Some(n) = s.step(&mut c, Way::Rootward) {
            out.push(s.names()[n as usize].as_str());
        }
        out
    }

    #[test]
    fn stacks_read_root_first_across_multi_byte_ids_and_inlined_frames() {
        // Location 1 = main; 300 = a (inlined into b: b is root-most); 5 has no frame.
        let mut b = StacksBuilder::new(1, [1, 300, 5]);
        let main = b.intern("main");
        let (a, bb) = (b.intern("a"), b.intern("b"));
        b.location([main]);
        b.location([bb, a]);
        b.location([]);
        assert!(b.check(&[300, 5, 1]).unwrap());
        assert!(!b.check(&[5]).unwrap());
        assert!(b.check(&[2]).is_err());
        b.push_ids(0, &[300, 5, 1], [7]).unwrap();
        b.push_ids(0, &[1], [2]).unwrap();
        let s = b.finish(Vec::new()).unwrap();
        assert_eq!(frames(&s, 0), ["main", "b", "a"]);
        assert_eq!(frames(&s, 1), ["main"]);
        assert_eq!(frames_up(&s, 0), ["a", "b", "main"]);
        assert_eq!(frames_up(&s, 1), ["main"]);
        assert_eq!(s.total(0), 9);
    }
}
