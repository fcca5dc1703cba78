//! A run's envelope as the fields of its Redis hash, and back.
//!
//! Every value is readable text: numbers in decimal, the state, pending
//! command, compensations, input, output and error as JSON. Optional fields
//! are absent when empty.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::envelope::{
    CompensationEntry, Envelope, HistoryEntry, Interrupt, Pending, SignalEntry, Status,
};

/// Fields written once, when the run is created.
const CREATION_ONLY: &[&str] = &[
    "id",
    "workflow",
    "queue",
    "created_at",
    "parent",
    "deadline_at",
    "signal_bound",
];

/// Optional fields, deleted when empty.
const OPTIONAL: &[&str] = &[
    "pending",
    "waiting",
    "output",
    "error",
    "error_message",
    "last_error",
    "reason",
    "stopped",
    "ending",
    "outcome",
];

/// Query values are stored one field each, under this prefix.
pub(crate) const QUERY_PREFIX: &str = "query:";

fn json(v: &impl serde::Serialize) -> String {
    // Serializing a `serde_json::Value` or our own plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Every field of a new run.
pub(crate) fn creation_fields(env: &Envelope) -> Vec<(String, String)> {
    let mut f = vec![
        ("id".to_owned(), env.id.clone()),
        ("workflow".to_owned(), env.workflow.clone()),
        ("queue".to_owned(), env.queue.clone()),
        ("created_at".to_owned(), env.created_at_ms.to_string()),
    ];
    if let Some(p) = &env.parent {
        f.push(("parent".to_owned(), p.clone()));
    }
    if let Some(d) = env.deadline_ms {
        f.push(("deadline_at".to_owned(), d.to_string()));
    }
    if let Some(b) = env.signal_bound {
        f.push(("signal_bound".to_owned(), b.to_string()));
    }
    f.extend(commit_fields(env, true).0);
    f
}

/// The fields a commit sets, and the optional fields it deletes. The
/// fields of a generation (`input`, `generation`, `patches`) change only
/// when the run starts or continues as new (`new_generation`); the
/// `interrupt` field is never written here: it belongs to whoever asks a
/// run to stop.
pub(crate) fn commit_fields(
    env: &Envelope,
    new_generation: bool,
) -> (Vec<(String, String)>, Vec<&'static str>) {
    let mut set: Vec<(String, String)> = vec![
        ("status".into(), env.status.as_str().to_owned()),
        ("seq".into(), env.seq.to_string()),
        ("step".into(), env.step.clone()),
        ("state_fp".into(), env.state_fp.clone()),
        ("state".into(), json(&env.state)),
        ("compensations".into(), json(&env.compensations)),
        ("attempts".into(), env.attempts.to_string()),
        ("updated_at".into(), env.updated_at_ms.to_string()),
    ];
    if new_generation {
        set.push(("input".into(), json(&env.input)));
        set.push(("generation".into(), env.generation.to_string()));
        set.push(("patches".into(), json(&env.patches)));
    }
    for (name, value) in &env.queries {
        set.push((format!("{QUERY_PREFIX}{name}"), json(value)));
    }
    let mut delete = Vec::new();
    let mut optional = |name: &'static str, value: Option<String>| match value {
        Some(v) => set.push((name.to_owned(), v)),
        None => delete.push(name),
    };
    optional("pending", env.pending.as_ref().map(json));
    optional("waiting", env.pending.as_ref().and_then(Pending::waiting));
    optional("output", env.output.as_ref().map(json));
    optional("error", env.error.as_ref().map(json));
    optional("error_message", env.error_message.clone());
    optional("last_error", env.last_error.clone());
    optional("reason", env.reason.clone());
    optional("stopped", env.stopped.clone());
    optional("ending", env.ending.map(|s| s.as_str().to_owned()));
    optional("outcome", env.outcome.as_ref().map(json));
    debug_assert!(delete.iter().all(|d| OPTIONAL.contains(d)));
    debug_assert!(
        set.iter()
            .all(|(n, _)| !CREATION_ONLY.contains(&n.as_str()))
    );
    (set, delete)
}

/// Reads an envelope from a run's hash, saying exactly what is wrong with
/// a field that does not read. Buffered signals are read separately
/// ([`parse_signals`]).
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
    let optional_number = |name: &str| -> Result<Option<u64>, String> {
        fields
            .get(name)
            .map(|raw| {
                raw.parse()
                    .map_err(|_| format!("field `{name}` is `{raw}`, not a number"))
            })
            .transpose()
    };
    let json_of = |name: &str, raw: &str| -> Result<Value, String> {
        serde_json::from_str(raw).map_err(|e| format!("field `{name}` is not JSON: {e}"))
    };
    let optional_json = |name: &str| -> Result<Option<Value>, String> {
        fields.get(name).map(|raw| json_of(name, raw)).transpose()
    };
    let decoded = |name: &str| -> Option<String> { fields.get(name).cloned() };
    let status_text = text("status")?;
    let status = Status::parse(&status_text)
        .ok_or_else(|| format!("field `status` is `{status_text}`, not a known status"))?;
    let pending = match decoded("pending") {
        None => None,
        Some(raw) => Some(
            serde_json::from_str::<Pending>(&raw)
                .map_err(|e| format!("field `pending` does not decode: {e}"))?,
        ),
    };
    let compensations: Vec<CompensationEntry> = match decoded("compensations") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|e| format!("field `compensations` does not decode: {e}"))?,
    };
    let ending = match decoded("ending") {
        None => None,
        Some(raw) => Some(
            Status::parse(&raw)
                .ok_or_else(|| format!("field `ending` is `{raw}`, not a status"))?,
        ),
    };
    let interrupt = match decoded("interrupt") {
        None => None,
        Some(raw) => Some(
            serde_json::from_str::<Interrupt>(&raw)
                .map_err(|e| format!("field `interrupt` does not decode: {e}"))?,
        ),
    };
    let patches: Vec<String> = match decoded("patches") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|e| format!("field `patches` does not decode: {e}"))?,
    };
    let mut queries = BTreeMap::new();
    for (name, raw) in fields {
        if let Some(q) = name.strip_prefix(QUERY_PREFIX) {
            queries.insert(q.to_owned(), json_of(name, raw)?);
        }
    }
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
        stopped: fields.get("stopped").cloned(),
        ending,
        interrupt,
        deadline_ms: optional_number("deadline_at")?,
        signal_bound: optional_number("signal_bound")?
            .map(|b| u32::try_from(b).map_err(|_| "field `signal_bound` is too large".to_owned()))
            .transpose()?,
        queries,
        patches,
        parent: fields.get("parent").cloned(),
        outcome: optional_json("outcome")?,
        generation: optional_number("generation")?.unwrap_or(0),
        signals: Vec::new(),
        created_at_ms: number("created_at")?,
        updated_at_ms: number("updated_at")?,
    })
}

/// Reads a run's buffered signals (the entries of its signal list).
pub(crate) fn parse_signals(entries: &[String]) -> Result<Vec<SignalEntry>, String> {
    entries
        .iter()
        .map(|raw| {
            serde_json::from_str(raw).map_err(|e| format!("a buffered signal does not decode: {e}"))
        })
        .collect()
}

/// Whether a field reads.
type Readable = fn(&str) -> bool;

/// Optional fields a parked run is shown without when they do not read.
const LENIENT_CHECKS: &[(&str, Readable)] = &[
    ("interrupt", |raw| {
        serde_json::from_str::<Interrupt>(raw).is_ok()
    }),
    ("patches", |raw| {
        serde_json::from_str::<Vec<String>>(raw).is_ok()
    }),
    ("ending", |raw| Status::parse(raw).is_some()),
    ("deadline_at", |raw| raw.parse::<u64>().is_ok()),
    ("generation", |raw| raw.parse::<u64>().is_ok()),
];

/// Reads a parked run's buffered signals for a client or a tool: an entry
/// that does not read is shown with name `(unreadable)` and its raw text as
/// the payload.
pub(crate) fn parse_signals_for_reading(entries: &[String]) -> Vec<SignalEntry> {
    entries
        .iter()
        .map(|raw| {
            serde_json::from_str(raw).unwrap_or_else(|_| SignalEntry {
                name: "(unreadable)".to_owned(),
                payload: Value::String(raw.clone()),
                sent_at_ms: 0,
                nonce: 0,
            })
        })
        .collect()
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
    let query_fields = fields
        .keys()
        .filter(|n| n.starts_with(QUERY_PREFIX))
        .map(String::as_str);
    for name in ["state", "input", "output", "error", "outcome"]
        .into_iter()
        .chain(query_fields)
    {
        if let Some(raw) = fields.get(name) {
            if serde_json::from_str::<Value>(raw).is_err() {
                lenient.insert(name.to_owned(), json(&Value::String(raw.clone())));
            }
        }
    }
    for (name, readable) in LENIENT_CHECKS {
        if fields.get(*name).is_some_and(|raw| !readable(raw)) {
            lenient.remove(*name);
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
        env.queries
            .insert("status".into(), serde_json::json!("charging"));
        env.patches.push("new-step".into());
        env.deadline_ms = Some(9_000);
        env
    }

    fn as_map(fields: Vec<(String, String)>) -> HashMap<String, String> {
        fields.into_iter().collect()
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
        let (set, delete) = commit_fields(&env, false);
        assert!(delete.contains(&"last_error"));
        assert!(
            !set.iter()
                .any(|(n, _)| n == "id" || n == "created_at" || n == "input")
        );
        let (set, _) = commit_fields(&env, true);
        assert!(
            set.iter().any(|(n, _)| n == "input"),
            "continue-as-new writes the new input"
        );
        assert!(
            set.iter()
                .any(|(n, v)| n == "query:status" && v == "\"charging\"")
        );
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
