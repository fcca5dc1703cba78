//! The serde layout of a stored type, traced from its `Deserialize` impl,
//! for state fingerprints.
//!
//! A tracing deserializer answers each request of a type's `Deserialize`
//! with a made-up value and writes down what was asked: a string, a struct
//! with these fields, a sequence of something, an enum with these variants.
//! What comes out is the shape the JSON of a checkpoint has, whatever the
//! type is called or however it is spelled: `String`, `std::string::String`
//! and an alias of it trace the same; a field added to a struct inside an
//! activity's output traces differently.
//!
//! serde-reflection does this for binary formats, but stops at what such
//! formats cannot express (`deserialize_any`), needs every enum nested in an
//! `Option` or a `Vec` traced by name, and merges containers that share a
//! name; here any stored type must trace with no help. So:
//! - every enum met is traced again until each variant has been seen;
//! - a type that asks for "anything" (`serde_json::Value`, untagged or
//!   internally tagged enums) is an opaque leaf named by its Rust type;
//! - a type that refuses a made-up value (a date parsed from a string, a
//!   `NonZeroU32`) is given the next of a few common samples;
//! - a recursive type is cut where it repeats, and recorded as a reference
//!   to the enclosing level.
//!
//! When a type still cannot be traced, [`of`] fails and the caller falls
//! back to the Rust type name (see `docs/versioning.md`).

use std::any::type_name;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, DeserializeOwned};

use tracing::Tracing;

/// How many times a type is traced at most (each time covers more enum
/// variants or tries another sample).
const MAX_PASSES: usize = 512;
/// How deep containers nest before the type counts as unbounded.
const MAX_DEPTH: usize = 64;
/// Samples for strings, tried in order at a place that rejected the
/// previous one.
const STRINGS: &[&str] = &[
    "",
    "0",
    "1970-01-01T00:00:00Z",
    "1970-01-01",
    "00:00:00",
    "00000000-0000-0000-0000-000000000000",
    "127.0.0.1",
    "http://localhost/",
];

/// The shape of a value as serde sees it.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Prim(&'static str),
    Option(Box<Shape>),
    Seq(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    Tuple(Vec<Shape>),
    Struct(Vec<(String, Shape)>),
    /// An enum, by its Rust type; its variants are kept by the tracer.
    Enum(&'static str),
    /// A type that asked for any value: its Rust type name.
    Opaque(&'static str),
    /// A recursive occurrence of the container this many levels up.
    Ref(usize),
    /// Not traced (a place the deserializer never asked for).
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
enum VariantShape {
    Unit,
    Newtype(Shape),
    Tuple(Vec<Shape>),
    Struct(Vec<(String, Shape)>),
}

struct EnumInfo {
    variants: &'static [&'static str],
    seen: BTreeMap<usize, VariantShape>,
    chosen: usize,
}

#[derive(Default)]
struct Tracer {
    enums: HashMap<&'static str, EnumInfo>,
    /// The containers being traced, outermost first.
    stack: Vec<&'static str>,
    /// Inside a recursive occurrence: make the smallest value, record nothing.
    cut: usize,
    /// Where the tracer is, for sample choices: field names and markers.
    path: Vec<String>,
    samples: HashMap<String, usize>,
    /// The place whose sample was refused in this pass, first one only.
    refused: Option<String>,
    /// The last place given a sample: blamed when a type takes the sample
    /// and rejects it afterwards (`String::deserialize`, then a check).
    last_leaf: Option<String>,
}

/// The layout of `T` as canonical text, or why it could not be traced.
pub(crate) fn of<T: DeserializeOwned>() -> Result<String, String> {
    let mut t = Tracer::default();
    for _ in 0..MAX_PASSES {
        t.refused = None;
        t.last_leaf = None;
        t.stack.clear();
        t.path.clear();
        t.cut = 0;
        let mut shape = Shape::Unknown;
        match T::deserialize(Tracing {
            t: &mut t,
            out: &mut shape,
        }) {
            Ok(_) => {
                if t.next_pass() {
                    continue;
                }
                let mut text = String::new();
                t.render(&shape, &mut Vec::new(), &mut text);
                return Ok(text);
            }
            Err(e) => match t.refused.take().or_else(|| t.last_leaf.take()) {
                Some(place) => {
                    let n = t.samples.entry(place).or_insert(0);
                    *n += 1;
                    if *n >= STRINGS.len() {
                        return Err(e.0);
                    }
                }
                None => return Err(e.0),
            },
        }
    }
    Err("its enums did not all trace".to_owned())
}

/// The layout text of `T`, or `opaque<its Rust type name>` when it cannot
/// be traced.
pub(crate) fn or_type_name<T: DeserializeOwned>() -> String {
    of::<T>().unwrap_or_else(|_| format!("opaque<{}>", type_name::<T>()))
}

/// A stable hash of a state's name and its stored fields' names and
/// layouts (FNV-1a, 64 bits, as 16 hex digits). Fields are taken by name:
/// the order of a JSON object does not matter.
pub(crate) fn fingerprint(name: &str, fields: &[(&str, &str)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    feed(name);
    let mut sorted = fields.to_vec();
    sorted.sort();
    for (n, layout) in sorted {
        feed(n);
        feed(layout);
    }
    format!("{h:016x}")
}

impl Tracer {
    /// Picks the next variant of every enum; whether another pass is needed.
    fn next_pass(&mut self) -> bool {
        let mut more = false;
        for e in self.enums.values_mut() {
            match (0..e.variants.len()).find(|i| !e.seen.contains_key(i)) {
                Some(i) => {
                    e.chosen = i;
                    more = true;
                }
                // Seen in full: go round, so enums inside its variants are
                // reached again until they are seen in full too.
                None => e.chosen = (e.chosen + 1) % e.variants.len().max(1),
            }
        }
        more
    }

    fn sample(&mut self) -> usize {
        let place = self.path.join("/");
        let n = self.samples.get(&place).copied().unwrap_or(0);
        self.last_leaf = Some(place);
        n
    }

    fn note_refusal<T, E>(&mut self, r: Result<T, E>) -> Result<T, E> {
        if r.is_err() && self.refused.is_none() {
            self.refused = Some(self.path.join("/"));
        }
        r
    }

    fn render(&self, shape: &Shape, enums: &mut Vec<&'static str>, out: &mut String) {
        match shape {
            Shape::Prim(p) => out.push_str(p),
            Shape::Option(s) => wrap(out, "option<", ">", |o| self.render(s, enums, o)),
            Shape::Seq(s) => wrap(out, "seq<", ">", |o| self.render(s, enums, o)),
            Shape::Map(k, v) => wrap(out, "map<", ">", |o| {
                self.render(k, enums, o);
                o.push(',');
                self.render(v, enums, o);
            }),
            Shape::Tuple(items) => wrap(out, "(", ")", |o| self.render_list(items, enums, o)),
            Shape::Struct(fields) => self.render_fields(fields, enums, out),
            Shape::Enum(key) => match self.enums.get(key) {
                Some(e) if !enums.contains(key) => {
                    enums.push(key);
                    let mut variants: Vec<(&str, &VariantShape)> = e
                        .seen
                        .iter()
                        .filter_map(|(i, v)| Some((*e.variants.get(*i)?, v)))
                        .collect();
                    variants.sort_by_key(|(name, _)| *name);
                    out.push_str("enum{");
                    for (i, (name, v)) in variants.iter().enumerate() {
                        if i > 0 {
                            out.push('|');
                        }
                        out.push_str(name);
                        out.push(':');
                        match v {
                            VariantShape::Unit => out.push_str("()"),
                            VariantShape::Newtype(s) => self.render(s, enums, out),
                            VariantShape::Tuple(items) => {
                                wrap(out, "(", ")", |o| self.render_list(items, enums, o))
                            }
                            VariantShape::Struct(fields) => self.render_fields(fields, enums, out),
                        }
                    }
                    out.push('}');
                    enums.pop();
                }
                _ => out.push_str("enum-ref"),
            },
            Shape::Opaque(name) => {
                out.push_str("opaque<");
                out.push_str(name);
                out.push('>');
            }
            Shape::Ref(up) => out.push_str(&format!("ref<{up}>")),
            Shape::Unknown => out.push('?'),
        }
    }

    fn render_list(&self, items: &[Shape], enums: &mut Vec<&'static str>, out: &mut String) {
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.render(s, enums, out);
        }
    }

    /// Fields by name: JSON objects do not keep an order.
    fn render_fields(
        &self,
        fields: &[(String, Shape)],
        enums: &mut Vec<&'static str>,
        out: &mut String,
    ) {
        let mut sorted: Vec<&(String, Shape)> = fields.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        out.push('{');
        for (i, (name, s)) in sorted.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            out.push(':');
            self.render(s, enums, out);
        }
        out.push('}');
    }

    /// Enters container `key`; `Some(levels)` when it is already being
    /// traced that many levels up (a recursive type).
    fn enter(&mut self, key: &'static str) -> Result<Option<usize>, Error> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error("it nests without bound".to_owned()));
        }
        let again = self
            .stack
            .iter()
            .rev()
            .position(|k| *k == key)
            .map(|p| p + 1);
        self.stack.push(key);
        if again.is_some() || self.cut > 0 {
            self.cut += 1;
        }
        Ok(again)
    }

    fn leave(&mut self) {
        if self.cut > 0 {
            self.cut -= 1;
        }
        self.stack.pop();
    }
}

fn wrap(out: &mut String, open: &str, close: &str, inner: impl FnOnce(&mut String)) {
    out.push_str(open);
    inner(out);
    out.push_str(close);
}

/// A tracing failure.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

mod tracing;

#[cfg(test)]
mod tests;
