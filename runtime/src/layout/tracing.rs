//! The tracing deserializer: answers a type's `Deserialize` with samples
//! and writes down the shape of each place it is asked about.

use std::any::type_name;
use std::collections::BTreeMap;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, Visitor};

use super::{EnumInfo, Error, STRINGS, Shape, Tracer, VariantShape};

/// The deserializer for one place; writes the place's shape to `out`.
pub(super) struct Tracing<'a> {
    pub(super) t: &'a mut Tracer,
    pub(super) out: &'a mut Shape,
}

macro_rules! leaf {
    ($($method:ident => $visit:ident, $name:literal, [$($v:expr),*];)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            *self.out = Shape::Prim($name);
            let samples = [$($v),*];
            let pick = samples[self.t.sample().min(samples.len() - 1)];
            let r = visitor.$visit(pick);
            self.t.note_refusal(r)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Tracing<'_> {
    type Error = Error;

    leaf! {
        deserialize_bool => visit_bool, "bool", [false, true];
        deserialize_i8 => visit_i8, "i8", [0, 1];
        deserialize_i16 => visit_i16, "i16", [0, 1];
        deserialize_i32 => visit_i32, "i32", [0, 1];
        deserialize_i64 => visit_i64, "i64", [0, 1];
        deserialize_i128 => visit_i128, "i128", [0, 1];
        deserialize_u8 => visit_u8, "u8", [0, 1];
        deserialize_u16 => visit_u16, "u16", [0, 1];
        deserialize_u32 => visit_u32, "u32", [0, 1];
        deserialize_u64 => visit_u64, "u64", [0, 1];
        deserialize_u128 => visit_u128, "u128", [0, 1];
        deserialize_f32 => visit_f32, "f32", [0.0, 1.0];
        deserialize_f64 => visit_f64, "f64", [0.0, 1.0];
        deserialize_char => visit_char, "char", ['a', '0'];
        deserialize_bytes => visit_bytes, "bytes", [&[][..], &[0u8; 16][..]];
        deserialize_byte_buf => visit_bytes, "bytes", [&[][..], &[0u8; 16][..]];
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.out = Shape::Prim("str");
        let pick = STRINGS[self.t.sample().min(STRINGS.len() - 1)];
        let r = visitor.visit_str(pick);
        self.t.note_refusal(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.out = Shape::Opaque(type_name::<V::Value>());
        let r = visitor.visit_unit();
        self.t.note_refusal(r)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.out = Shape::Prim("()");
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.out = Shape::Prim("()");
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.t.cut > 0 {
            return visitor.visit_none();
        }
        let mut inner = Shape::Unknown;
        self.t.path.push("?".to_owned());
        let r = visitor.visit_some(Tracing {
            t: self.t,
            out: &mut inner,
        });
        self.t.path.pop();
        *self.out = Shape::Option(Box::new(inner));
        r
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        // `struct Id(String)` is a string in JSON.
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = if self.t.cut > 0 { 0 } else { 1 };
        let (r, mut items) = seq(self.t, n, "[]", |access| visitor.visit_seq(access));
        *self.out = Shape::Seq(Box::new(items.pop().unwrap_or(Shape::Unknown)));
        r
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let (r, items) = seq(self.t, len, "()", |access| visitor.visit_seq(access));
        *self.out = Shape::Tuple(items);
        r
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let key = type_name::<V::Value>();
        if let Some(up) = self.t.enter(key)? {
            *self.out = Shape::Ref(up);
        }
        let (r, items) = seq(self.t, len, "()", |access| visitor.visit_seq(access));
        self.t.leave();
        if *self.out == Shape::Unknown {
            *self.out = Shape::Tuple(items);
        }
        r
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let keys = if self.t.cut > 0 {
            Vec::new()
        } else {
            vec![None]
        };
        let mut access = MapAccess {
            t: self.t,
            keys,
            next: 0,
            shapes: Vec::new(),
        };
        let r = visitor.visit_map(&mut access);
        let mut shapes = std::mem::take(&mut access.shapes).into_iter();
        let (k, v) = shapes.next().unwrap_or((Shape::Unknown, Shape::Unknown));
        *self.out = Shape::Map(Box::new(k), Box::new(v));
        r
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let key = type_name::<V::Value>();
        if let Some(up) = self.t.enter(key)? {
            *self.out = Shape::Ref(up);
        }
        let mut access = MapAccess {
            t: self.t,
            keys: fields.iter().map(|f| Some(*f)).collect(),
            next: 0,
            shapes: Vec::new(),
        };
        let r = visitor.visit_map(&mut access);
        let shapes = std::mem::take(&mut access.shapes);
        self.t.leave();
        if *self.out == Shape::Unknown {
            *self.out = Shape::Struct(
                fields
                    .iter()
                    .zip(shapes)
                    .map(|(f, (_, s))| ((*f).to_owned(), s))
                    .collect(),
            );
        }
        r
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let key = type_name::<V::Value>();
        let again = self.t.enter(key)?;
        let idx = if self.t.cut > 0 {
            0
        } else {
            self.t
                .enums
                .entry(key)
                .or_insert(EnumInfo {
                    variants,
                    seen: BTreeMap::new(),
                    chosen: 0,
                })
                .chosen
        };
        let Some(name) = variants.get(idx) else {
            self.t.leave();
            return Err(Error("an enum without variants".to_owned()));
        };
        let mut variant = VariantShape::Unit;
        self.t.path.push(format!("{key}::{name}"));
        let r = visitor.visit_enum(EnumAccess {
            t: self.t,
            name,
            out: &mut variant,
        });
        self.t.path.pop();
        let recording = self.t.cut == 0;
        self.t.leave();
        if recording
            && r.is_ok()
            && let Some(e) = self.t.enums.get_mut(key)
        {
            e.seen.insert(idx, variant);
        }
        *self.out = match again {
            Some(up) => Shape::Ref(up),
            None => Shape::Enum(key),
        };
        r
    }

    fn is_human_readable(&self) -> bool {
        // Checkpoints are JSON.
        true
    }
}

/// Runs `visit` over a sequence of `n` traced places; their shapes.
fn seq<T>(
    t: &mut Tracer,
    n: usize,
    mark: &str,
    visit: impl FnOnce(&mut SeqAccess<'_>) -> Result<T, Error>,
) -> (Result<T, Error>, Vec<Shape>) {
    let mut access = SeqAccess {
        t,
        left: n,
        mark: mark.to_owned(),
        shapes: Vec::new(),
    };
    let r = visit(&mut access);
    (r, access.shapes)
}

struct SeqAccess<'a> {
    t: &'a mut Tracer,
    left: usize,
    mark: String,
    shapes: Vec<Shape>,
}

impl<'de> de::SeqAccess<'de> for &mut SeqAccess<'_> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut shape = Shape::Unknown;
        self.t
            .path
            .push(format!("{}{}", self.mark, self.shapes.len()));
        let r = seed.deserialize(Tracing {
            t: self.t,
            out: &mut shape,
        });
        self.t.path.pop();
        self.shapes.push(shape);
        r.map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// A struct's fields (named keys) or a map's one entry (traced keys).
struct MapAccess<'a> {
    t: &'a mut Tracer,
    keys: Vec<Option<&'static str>>,
    next: usize,
    shapes: Vec<(Shape, Shape)>,
}

impl<'de> de::MapAccess<'de> for &mut MapAccess<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(key) = self.keys.get(self.next).copied() else {
            return Ok(None);
        };
        let mut shape = Shape::Unknown;
        let r = match key {
            Some(name) => {
                shape = Shape::Prim("str");
                seed.deserialize(StrDeserializer::<Error>::new(name))
            }
            None => {
                self.t.path.push("key".to_owned());
                let r = seed.deserialize(Tracing {
                    t: self.t,
                    out: &mut shape,
                });
                self.t.path.pop();
                r
            }
        };
        self.shapes.push((shape, Shape::Unknown));
        r.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let place = match self.keys.get(self.next).copied().flatten() {
            Some(name) => name.to_owned(),
            None => "value".to_owned(),
        };
        self.next += 1;
        let mut shape = Shape::Unknown;
        self.t.path.push(place);
        let r = seed.deserialize(Tracing {
            t: self.t,
            out: &mut shape,
        });
        self.t.path.pop();
        if let Some(last) = self.shapes.last_mut() {
            last.1 = shape;
        }
        r
    }
}

struct EnumAccess<'a> {
    t: &'a mut Tracer,
    name: &'static str,
    out: &'a mut VariantShape,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let v = seed.deserialize(StrDeserializer::<Error>::new(self.name))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        *self.out = VariantShape::Unit;
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        let mut shape = Shape::Unknown;
        let r = seed.deserialize(Tracing {
            t: self.t,
            out: &mut shape,
        });
        *self.out = VariantShape::Newtype(shape);
        r
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let (r, items) = seq(self.t, len, "()", |access| visitor.visit_seq(access));
        *self.out = VariantShape::Tuple(items);
        r
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = MapAccess {
            t: self.t,
            keys: fields.iter().map(|f| Some(*f)).collect(),
            next: 0,
            shapes: Vec::new(),
        };
        let r = visitor.visit_map(&mut access);
        *self.out = VariantShape::Struct(
            fields
                .iter()
                .zip(std::mem::take(&mut access.shapes))
                .map(|(f, (_, s))| ((*f).to_owned(), s))
                .collect(),
        );
        r
    }
}
