//! A run's envelope as the fields of its Redis hash, and back.
//!
//! Every value is readable text: numbers in decimal, the state, pending
//! command, compensations, input, output and error as JSON. Optional fields
//! are absent when empty.

use std::collections::HashMap;

use serde_json::Value;

use crate::envelope::{CompensationEntry, Envelope, HistoryEntry, Pending, Status};

/// Fields written once, when the run is created.
const CREATION_ONLY: &[&str] = &["id", "workflow", "queue", "input", "created_at"];

/// Optional fields, deleted when empty.
const OPTIONAL: &[&str] = &[
    "pending",
    "output",
    "error",
    "error_message",
    "last_error",
    "reason",
];

fn json(v: &impl serde::Serialize) -> String {
    // Serializing a `serde_json::Value` or our own plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Every field of a new run.
pub(crate) fn creation_fields(env: &Envelope) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("id", env.id.clone()),
        ("workflow", env.workflow.clone()),
        ("queue", env.queue.clone()),
        ("input", json(&env.input)),
        ("created_at", env.created_at_ms.to_string()),
    ];
    f.extend(commit_fields(env).0);
    f
}

/// The fields a commit sets, and the optional fields it deletes.
pub(crate) fn commit_fields(env: &Envelope) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut set = vec![
        ("status", env.status.as_str().to_owned()),
        ("seq", env.seq.to_string()),
        ("step", env.step.clone()),
        ("state_fp", env.state_fp.clone()),
        ("state", json(&env.state)),
        ("compensations", json(&env.compensations)),
        ("attempts", env.attempts.to_string()),
        ("updated_at", env.updated_at_ms.to_string()),
    ];
    let mut delete = Vec::new();
    let mut optional = |name: &'static str, value: Option<String>| match value {
        Some(v) => set.push((name, v)),
        None => delete.push(name),
    };
    optional("pending", env.pending.as_ref().map(json));
    optional("output", env.output.as_ref().map(json));
    optional("error", env.error.as_ref().map(json));
    optional("error_message", env.error_message.clone());
    optional("last_error", env.last_error.clone());
    optional("reason", env.reason.clone());
    debug_assert!(delete.iter().all(|d| OPTIONAL.contains(d)));
    debug_assert!(set.iter().all(|(n, _)| !CREATION_ONLY.contains(n)));
    (set, delete)
}

/// Reads an envelope from a run's hash, saying exactly what is wrong with
/// a field that does not read.
pub(crate) fn parse(fields: &HashMap<String, String>) -> Result<Envelope, String> {
    let text = |name: &str| -> Result<String, String> {
        fields
            .get(name)
            .cloned()
            .ok_or_else(|| format!("field `{name}` is missing"))
    };
    let number = |name: &str| -> Result<u64, String> {
        let raw = text(name)?;
        raw.parse()
            .map_err(|_| format!("field `{name}` is `{raw}`, not a number"))
    };
    let json_of = |name: &str, raw: &str| -> Result<Value, String> {
        serde_json::from_str(raw).map_err(|e| format!("field `{name}` is not JSON: {e}"))
    };
    let optional_json = |name: &str| -> Result<Option<Value>, String> {
        fields.get(name).map(|raw| json_of(name, raw)).transpose()
    };
    let status_text = text("status")?;
    let status = Status::parse(&status_text)
        .ok_or_else(|| format!("field `status` is `{status_text}`, not a known status"))?;
    let pending = match fields.get("pending") {
        None => None,
        Some(raw) => Some(
            serde_json::from_str::<Pending>(raw)
                .map_err(|e| format!("field `pending` does not decode: {e}"))?,
        ),
    };
    let compensations: Vec<CompensationEntry> = match fields.get("compensations") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(raw)
            .map_err(|e| format!("field `compensations` does not decode: {e}"))?,
    };
    let attempts = number("attempts")?;
    Ok(Envelope {
        id: text("id")?,
        workflow: text("workflow")?,
        queue: text("queue")?,
        status,
        seq: number("seq")?,
        step: fields.get("step").cloned().unwrap_or_default(),
        state_fp: fields.get("state_fp").cloned().unwrap_or_default(),
        state: json_of("state", &text("state")?)?,
        pending,
        compensations,
        input: json_of("input", &text("input")?)?,
        output: optional_json("output")?,
        error: optional_json("error")?,
        error_message: fields.get("error_message").cloned(),
        attempts: u32::try_from(attempts)
            .map_err(|_| "field `attempts` is too large".to_owned())?,
        last_error: fields.get("last_error").cloned(),
        reason: fields.get("reason").cloned(),
        created_at_ms: number("created_at")?,
        updated_at_ms: number("updated_at")?,
    })
}

/// Reads an envelope for a client or a tool: like [`parse`], except that a
/// parked run (parked, most likely, because a field does not read) is still
/// shown, with each unreadable JSON field as a JSON string of its raw text,
/// an unreadable pending command as none, unreadable compensations as none.
pub(crate) fn parse_for_reading(fields: &HashMap<String, String>) -> Result<Envelope, String> {
    let strict = parse(fields);
    if strict.is_ok() || fields.get("status").map(String::as_str) != Some("parked") {
        return strict;
    }
    let mut lenient = fields.clone();
    for name in ["state", "input", "output", "error"] {
        if let Some(raw) = fields.get(name) {
            if serde_json::from_str::<Value>(raw).is_err() {
                lenient.insert(name.to_owned(), json(&Value::String(raw.clone())));
            }
        }
    }
    if fields
        .get("pending")
        .is_some_and(|raw| serde_json::from_str::<Pending>(raw).is_err())
    {
        lenient.remove("pending");
    }
    if fields
        .get("compensations")
        .is_some_and(|raw| serde_json::from_str::<Vec<CompensationEntry>>(raw).is_err())
    {
        lenient.remove("compensations");
    }
    for name in ["seq", "attempts", "created_at", "updated_at"] {
        if lenient.get(name).is_none_or(|v| v.parse::<u64>().is_err()) {
            lenient.insert(name.to_owned(), "0".to_owned());
        }
    }
    parse(&lenient)
}

/// Reads a history stream entry's fields.
pub(crate) fn parse_history(fields: &HashMap<String, String>) -> Result<HistoryEntry, String> {
    let get = |name: &str| {
        fields
            .get(name)
            .cloned()
            .ok_or_else(|| format!("history field `{name}` is missing"))
    };
    let num = |name: &str| -> Result<u64, String> {
        let raw = get(name)?;
        raw.parse()
            .map_err(|_| format!("history field `{name}` is `{raw}`, not a number"))
    };
    let status_text = get("status")?;
    Ok(HistoryEntry {
        seq: num("seq")?,
        step: get("step")?,
        status: Status::parse(&status_text)
            .ok_or_else(|| format!("history field `status` is `{status_text}`"))?,
        event: get("event")?,
        at_ms: num("at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        let mut env = Envelope::new_run(
            "order-42".into(),
            "order".into(),
            "orders".into(),
            serde_json::json!("order-42"),
            serde_json::json!({"start": {"order_id": "order-42"}}),
            "abc".into(),
            1_000,
        );
        env.compensations.push(CompensationEntry {
            step: "charge_card#0".into(),
            activity: "refund".into(),
            input: serde_json::json!({"payment": "pay-1"}),
            key: "order-42/charge_card#0/1/undo".into(),
        });
        env.last_error = Some("timeout".into());
        env
    }

    fn as_map(fields: Vec<(&'static str, String)>) -> HashMap<String, String> {
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn envelopes_round_trip_through_hash_fields() {
        let env = sample();
        let map = as_map(creation_fields(&env));
        assert_eq!(map["status"], "running");
        assert_eq!(map["state"], r#"{"start":{"order_id":"order-42"}}"#);
        assert!(!map.contains_key("output"));
        assert_eq!(parse(&map), Ok(env));
    }

    #[test]
    fn commits_delete_emptied_fields_and_skip_creation_fields() {
        let mut env = sample();
        env.last_error = None;
        let (set, delete) = commit_fields(&env);
        assert!(delete.contains(&"last_error"));
        assert!(!set.iter().any(|(n, _)| *n == "input" || *n == "id"));
    }

    #[test]
    fn parked_runs_read_with_their_raw_fields() {
        let mut map = as_map(creation_fields(&sample()));
        map.insert("state".into(), "{not json".into());
        map.insert("pending".into(), "nope".into());
        assert!(
            parse_for_reading(&map).is_err(),
            "a running record stays strict"
        );
        map.insert("status".into(), "parked".into());
        let env = parse_for_reading(&map).expect("a parked record reads");
        assert_eq!(env.state, Value::String("{not json".into()));
        assert_eq!(env.pending, None);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut map = as_map(creation_fields(&sample()));
        map.insert("state".into(), "{not json".into());
        assert!(
            parse(&map)
                .expect_err("does not read")
                .contains("field `state` is not JSON")
        );
        let mut map = as_map(creation_fields(&sample()));
        map.insert("status".into(), "sleeping".into());
        assert!(
            parse(&map)
                .expect_err("does not read")
                .contains("`sleeping`, not a known status")
        );
        let mut map = as_map(creation_fields(&sample()));
        map.remove("seq");
        assert_eq!(
            parse(&map).expect_err("does not read"),
            "field `seq` is missing"
        );
    }
}
