//! Reading Redis replies. (What Redis errors mean for a caller is
//! [`super::connection::classify`]'s job.)

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;

use crate::store::StoreError;

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn unexpected(op: &str, reply: Option<&str>) -> StoreError {
    StoreError::Backend(format!("unexpected reply to {op}: {reply:?}"))
}

pub(crate) fn values(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    }
}

pub(crate) fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::SimpleString(s) => s,
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".to_owned(),
        Value::VerbatimString { text, .. } => text,
        Value::Double(d) => d.to_string(),
        _ => String::new(),
    }
}

/// A flat `[field, value, ...]` array (or a map) as a map.
pub(crate) fn pairs(v: Value) -> HashMap<String, String> {
    match v {
        Value::Map(kvs) => kvs.into_iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => {
            let flat = values(other);
            let mut out = HashMap::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.insert(text(k), text(v));
            }
            out
        }
    }
}

/// A stream entry: its id and fields.
pub(crate) type Entry = (String, HashMap<String, String>);

/// Stream entries `[[id, [field, value, ...]], ...]`.
pub(crate) fn entries(v: Value) -> Vec<Entry> {
    values(v)
        .into_iter()
        .filter_map(|e| {
            let mut parts = values(e).into_iter();
            let id = text(parts.next()?);
            Some((id, pairs(parts.next().unwrap_or(Value::Nil))))
        })
        .collect()
}

/// An `XREADGROUP` reply: `[[stream, entries], ...]` (or a map in RESP3).
pub(crate) fn stream_entries(v: Value) -> Vec<(String, Vec<Entry>)> {
    match v {
        Value::Map(kvs) => kvs
            .into_iter()
            .map(|(k, v)| (text(k), entries(v)))
            .collect(),
        other => values(other)
            .into_iter()
            .filter_map(|s| {
                let mut parts = values(s).into_iter();
                let name = text(parts.next()?);
                Some((name, entries(parts.next().unwrap_or(Value::Nil))))
            })
            .collect(),
    }
}
