//! Layouts: what changes them and what does not.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::of;

fn layout<T: serde::de::DeserializeOwned>() -> String {
    of::<T>().expect("traces")
}

mod before {
    #[derive(serde::Deserialize)]
    pub(super) struct Receipt {
        pub(super) id: String,
        pub(super) cents: u64,
    }
}

mod respelled {
    type Text = std::string::String;

    #[derive(serde::Deserialize)]
    pub(super) struct Invoice {
        pub(super) cents: u64,
        pub(super) id: Text,
    }
}

mod added {
    #[derive(serde::Deserialize)]
    pub(super) struct Receipt {
        pub(super) id: String,
        pub(super) cents: u64,
        pub(super) currency: String,
    }
}

mod retyped {
    #[derive(serde::Deserialize)]
    pub(super) struct Receipt {
        pub(super) id: String,
        pub(super) cents: i64,
    }
}

#[derive(Deserialize)]
struct Order {
    lines: Vec<before::Receipt>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct OrderAdded {
    lines: Vec<added::Receipt>,
    note: Option<String>,
}

#[test]
fn spelling_and_names_do_not_matter_fields_do() {
    assert_eq!(layout::<String>(), layout::<std::string::String>());
    // Another name, another field order, an alias: the same JSON.
    assert_eq!(layout::<before::Receipt>(), layout::<respelled::Invoice>());
    assert_ne!(layout::<before::Receipt>(), layout::<added::Receipt>());
    assert_ne!(layout::<before::Receipt>(), layout::<retyped::Receipt>());
    // Nested inside a Vec of a struct too.
    assert_ne!(layout::<Order>(), layout::<OrderAdded>());
    assert_eq!(
        layout::<before::Receipt>(),
        "{cents:u64,id:str}",
        "the canonical text"
    );
}

#[derive(Deserialize)]
enum Step {
    Start,
    Paid(u64),
    Shipped {
        carrier: String,
        at: Option<Box<Step>>,
    },
}

#[derive(Deserialize)]
enum Carrier {
    Post,
    Courier { name: String },
}

#[derive(Deserialize)]
struct Deep {
    carriers: Option<Vec<Carrier>>,
    by_id: HashMap<u32, Carrier>,
}

#[test]
fn every_variant_is_traced_even_deep_inside() {
    let deep = layout::<Deep>();
    assert!(deep.contains("Post:()"), "{deep}");
    assert!(deep.contains("Courier:{name:str}"), "{deep}");
    let step = layout::<Step>();
    assert!(step.contains("Start:()"), "{step}");
    assert!(step.contains("Paid:u64"), "{step}");
    assert!(
        step.contains("Shipped:{at:option<ref<1>>,carrier:str}"),
        "{step}"
    );
}

#[derive(Deserialize)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[derive(Deserialize)]
struct WithAny {
    id: String,
    extra: serde_json::Value,
    tags: BTreeMap<String, u8>,
}

/// A time that only accepts RFC 3339 text, as chrono's does.
struct Stamp;

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() == 20 && s.contains('T') {
            Ok(Stamp)
        } else {
            Err(serde::de::Error::custom("not a time"))
        }
    }
}

/// An id that only accepts 36 characters, as uuid's does.
struct Uuid;

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() == 36 {
            Ok(Uuid)
        } else {
            Err(serde::de::Error::custom("not a uuid"))
        }
    }
}

#[derive(Deserialize)]
struct Dated {
    at: Stamp,
    id: Uuid,
    n: std::num::NonZeroU32,
}

#[test]
fn recursion_opaque_leaves_and_picky_types() {
    assert_eq!(layout::<Tree>(), "{children:seq<ref<1>>,label:str}");
    let any = layout::<WithAny>();
    assert!(
        any.contains("extra:opaque<serde_json::value::Value>"),
        "{any}"
    );
    assert!(any.contains("id:str"), "{any}");
    assert_eq!(layout::<Dated>(), "{at:str,id:str,n:u32}");
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(u64),
    Text(String),
}

#[test]
fn what_cannot_be_traced_says_so() {
    assert!(of::<Loose>().is_err());
}

#[derive(Deserialize)]
enum ListNilFirst {
    Nil,
    Cons(u32, Box<ListNilFirst>),
}

#[derive(Deserialize)]
enum ListConsFirst {
    Cons(u32, Box<ListConsFirst>),
    Nil,
}

#[derive(Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    A(u32),
    B { x: String },
}

#[derive(Deserialize)]
#[serde(tag = "kind")]
enum Internal {
    A { n: u32 },
}

#[test]
fn recursion_through_enums_and_tagged_representations() {
    assert_eq!(layout::<ListNilFirst>(), "enum{Cons:(u32,ref<1>)|Nil:()}");
    assert!(of::<ListConsFirst>().is_err());
    assert!(of::<Adjacent>().is_err());
    assert!(of::<Internal>().is_err());
}
