//! The metadata event: the chunk's type system. Type ids differ per
//! recording, so everything is resolved by name here, once per chunk, into
//! field layouts the pool and event readers follow.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::malformed;
use super::reader::Reader;
use crate::FastMap;
use crate::error::Result;

/// Nesting of the metadata element tree (root → metadata → class → field →
/// annotation is 5 deep in practice).
const MAX_ELEMENT_DEPTH: usize = 32;

/// How one field is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `int`, `long`, `short`, `char`, `float`, and constant-pool references.
    Varint,
    /// `boolean`, `byte`.
    Byte,
    /// `double`: 8 raw bytes.
    Double,
    String,
    /// Fields inline, in declared order (index into [`Types::classes`]).
    Struct(u32),
    /// A struct that never occupies a byte (no fields, transitively).
    Empty,
    /// A type id the metadata does not declare: reading it is an error.
    Unknown,
}

#[derive(Clone, Debug)]
pub(super) struct Field<'a> {
    pub name: Cow<'a, str>,
    pub type_id: u64,
    pub constant_pool: bool,
    pub array: bool,
    pub kind: Kind,
}

#[derive(Debug)]
pub(super) struct Class<'a> {
    pub id: u64,
    pub name: Cow<'a, str>,
    pub fields: Vec<Field<'a>>,
}

/// The types of one chunk.
pub(super) struct Types<'a> {
    pub classes: Vec<Class<'a>>,
    by_id: FastMap<u64, u32>,
}

/// Types jfr-parser requires in every chunk.
const MANDATORY: [&str; 16] = [
    "int",
    "long",
    "short",
    "float",
    "boolean",
    "java.lang.String",
    "jdk.types.FrameType",
    "jdk.types.ThreadState",
    "java.lang.Thread",
    "java.lang.Class",
    "jdk.types.Method",
    "jdk.types.Package",
    "jdk.types.Symbol",
    "jdk.types.StackTrace",
    "jdk.types.ClassLoader",
    "jdk.types.StackFrame",
];

impl<'a> Types<'a> {
    /// Reads the metadata event starting at `pos` of `chunk`.
    pub(super) fn read(chunk: &'a [u8], pos: usize) -> Result<Self> {
        let mut r = Reader::at(chunk, pos);
        let size = r.varlong()?;
        let end = (pos as u64).checked_add(size).filter(|&e| size > 0 && e <= chunk.len() as u64);
        let end = end.ok_or_else(|| malformed("metadata event exceeds its chunk"))? as usize;
        let mut r = Reader::at(&chunk[..end], r.pos());
        if r.varlong()? != 0 {
            return Err(malformed("metadata offset does not point at a metadata event"));
        }
        r.varlong()?; // start ticks
        r.varlong()?; // duration
        r.varlong()?; // metadata id
        let n = r.count()?;
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            strings.push(r.string()?.unwrap_or_default());
        }
        let mut types = Types { classes: Vec::new(), by_id: FastMap::default() };
        Tree { r: &mut r, strings: &strings }.element(Parent::Top, 0, &mut types)?;
        types.resolve_kinds();
        for name in MANDATORY {
            if types.id(name).is_none() {
                return Err(malformed(alloc::format!("missing mandatory type {name}")));
            }
        }
        Ok(types)
    }

    /// The id of the type called `name`.
    pub(super) fn id(&self, name: &str) -> Option<u64> {
        self.classes.iter().find(|c| c.name == name).map(|c| c.id)
    }

    pub(super) fn class(&self, id: u64) -> Option<&Class<'a>> {
        self.by_id.get(&id).map(|&i| &self.classes[i as usize])
    }

    /// How a value of type `id` is encoded (structs as [`Kind::Struct`],
    /// even when empty).
    pub(super) fn kind_of(&self, id: u64) -> Kind {
        match self.by_id.get(&id) {
            None => Kind::Unknown,
            Some(&i) => match &*self.classes[i as usize].name {
                "int" | "long" | "short" | "char" | "float" => Kind::Varint,
                "boolean" | "byte" => Kind::Byte,
                "double" => Kind::Double,
                "java.lang.String" => Kind::String,
                _ => Kind::Struct(i),
            },
        }
    }

    /// Decides every field's [`Kind`]; structs that can never hold a byte
    /// become [`Kind::Empty`], so skipping them costs nothing and a
    /// self-nesting type cannot recurse forever.
    fn resolve_kinds(&mut self) {
        let kinds: Vec<Vec<Kind>> = self
            .classes
            .iter()
            .map(|c| {
                c.fields
                    .iter()
                    .map(|f| {
                        if f.constant_pool {
                            return Kind::Varint;
                        }
                        self.kind_of(f.type_id)
                    })
                    .collect()
            })
            .collect();
        // A struct is non-empty if any field is an array, a non-struct, or a
        // non-empty struct: iterate to the fixpoint.
        let mut non_empty = alloc::vec![false; self.classes.len()];
        loop {
            let mut changed = false;
            for (i, class_kinds) in kinds.iter().enumerate() {
                if non_empty[i] {
                    continue;
                }
                let fields = &self.classes[i].fields;
                let holds_bytes = class_kinds.iter().zip(fields).any(|(k, f)| match k {
                    Kind::Struct(j) => f.array || non_empty[*j as usize],
                    _ => true,
                });
                if holds_bytes {
                    non_empty[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (class, class_kinds) in self.classes.iter_mut().zip(kinds) {
            for (field, kind) in class.fields.iter_mut().zip(class_kinds) {
                field.kind = match kind {
                    Kind::Struct(j) if !non_empty[j as usize] => Kind::Empty,
                    k => k,
                };
            }
        }
    }

    /// Skips one value of `field`'s type (an array when `array`).
    pub(super) fn skip(&self, r: &mut Reader<'_>, kind: Kind, array: bool) -> Result<()> {
        if array {
            let n = r.count()?;
            if kind != Kind::Empty {
                for _ in 0..n {
                    self.skip_value(r, kind, 0)?;
                }
            }
            Ok(())
        } else {
            self.skip_value(r, kind, 0)
        }
    }

    fn skip_value(&self, r: &mut Reader<'_>, kind: Kind, depth: usize) -> Result<()> {
        match kind {
            Kind::Varint => r.varlong().map(drop),
            Kind::Byte => r.u8().map(drop),
            Kind::Double => r.bytes(8).map(drop),
            Kind::String => r.skip_string(),
            Kind::Empty => Ok(()),
            Kind::Unknown => Err(malformed("field of an undeclared type")),
            Kind::Struct(i) => {
                if depth > MAX_ELEMENT_DEPTH {
                    return Err(malformed("struct nesting too deep"));
                }
                for f in &self.classes[i as usize].fields {
                    if f.array {
                        let n = r.count()?;
                        if f.kind != Kind::Empty {
                            for _ in 0..n {
                                self.skip_value(r, f.kind, depth + 1)?;
                            }
                        }
                    } else {
                        self.skip_value(r, f.kind, depth + 1)?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Parent {
    /// The root element's own position.
    Top,
    Root,
    Metadata,
    Class(usize),
    Other,
}

/// The element tree reader: `name`, attributes, children, recursively.
struct Tree<'r, 'a, 's> {
    r: &'r mut Reader<'a>,
    strings: &'s [Cow<'a, str>],
}

impl<'a> Tree<'_, 'a, '_> {
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let i = self.r.varlong()?;
        self.strings.get(i as usize).cloned().ok_or_else(|| malformed("metadata string index out of range"))
    }

    fn element(&mut self, parent: Parent, depth: usize, types: &mut Types<'a>) -> Result<()> {
        if depth > MAX_ELEMENT_DEPTH {
            return Err(malformed("metadata nesting too deep"));
        }
        let name = self.string()?;
        let n = self.r.count()?;
        let mut attrs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(n.min(16));
        for _ in 0..n {
            attrs.push((self.string()?, self.string()?));
        }
        let attr = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let number = |key: &str| -> Result<u64> {
            let v = attr(key).ok_or_else(|| malformed(alloc::format!("metadata element {name} without {key}")))?;
            v.parse().map_err(|_| malformed(alloc::format!("metadata attribute {key}={v} is not a number")))
        };
        let this = match (parent, &*name) {
            (Parent::Top, _) => Parent::Root,
            (Parent::Root, "metadata") => Parent::Metadata,
            (Parent::Metadata, "class") => {
                let id = number("id")?;
                let name = attr("name").cloned().unwrap_or_default();
                types.by_id.insert(id, types.classes.len() as u32);
                types.classes.push(Class { id, name, fields: Vec::new() });
                Parent::Class(types.classes.len() - 1)
            }
            (Parent::Class(c), "field") => {
                let field = Field {
                    name: attr("name").cloned().unwrap_or_default(),
                    type_id: number("class")?,
                    constant_pool: attr("constantPool").is_some_and(|v| v == "true"),
                    array: attr("dimension").is_some_and(|v| v == "1"),
                    kind: Kind::Unknown,
                };
                types.classes[c].fields.push(field);
                Parent::Other
            }
            _ => Parent::Other,
        };
        let children = self.r.count()?;
        for _ in 0..children {
            self.element(this, depth + 1, types)?;
        }
        Ok(())
    }
}
