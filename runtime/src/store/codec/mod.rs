//! A run record as the fields of a hash, and back: the layout operators
//! read in `redis-cli` (`docs/redis-layout.md`), shared by every store so
//! that the memory store reads and breaks exactly like Redis does.
//!
//! Every value is readable text: numbers in decimal; the state, pending
//! work, compensations, input, output and error as JSON. Optional fields are
//! absent when empty. The phase is spread over `status`, `pending`,
//! `waiting`, `ending`, `reason`, `stopped`, `output` and `error`, as it
//! always was, so records written by earlier versions still read.

mod read;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::{
    Ending, Outcome, Phase, RunRecord, SignalEntry, StateSnapshot, Status, Wait, Work,
};

pub(crate) use read::{
    parse, parse_for_display, parse_history, parse_signals, parse_signals_for_display,
};

/// A record's fields by name.
pub(crate) type Fields = HashMap<String, String>;

/// Query values are stored one field each, under this prefix.
pub(crate) const QUERY_PREFIX: &str = "query:";

/// The fields a transition may delete (absent when empty).
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

fn json(v: &impl Serialize) -> String {
    // Serializing a `serde_json::Value` or our own plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// The `pending` field: the work or wait of a running run, without an
/// activity's recorded outcome (kept in `outcome`).
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Pending {
    Start,
    Activity {
        activity: String,
        step: String,
        input: Value,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
    Timer {
        step: String,
        until_ms: u64,
    },
    Signal {
        step: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
    },
    Child {
        step: String,
        workflow: String,
        id: String,
        input: Value,
        start_state: Value,
        start_fp: String,
        queue: String,
        #[serde(default)]
        patches: Vec<String>,
    },
}

fn pending_of_work(work: &Work) -> Pending {
    match work.clone() {
        Work::Start => Pending::Start,
        Work::Activity {
            activity,
            step,
            input,
            key,
            queue,
            ..
        } => Pending::Activity {
            activity,
            step,
            input,
            key,
            queue,
        },
    }
}

fn pending_of_wait(wait: &Wait) -> Pending {
    match wait.clone() {
        Wait::Timer { step, until_ms } => Pending::Timer { step, until_ms },
        Wait::Signal {
            step,
            name,
            deadline_ms,
        } => Pending::Signal {
            step,
            name,
            deadline_ms,
        },
        Wait::Child {
            step,
            workflow,
            id,
            input,
            start_state,
            start_fp,
            queue,
            patches,
        } => Pending::Child {
            step,
            workflow,
            id,
            input,
            start_state,
            start_fp,
            queue,
            patches,
        },
    }
}

/// Accumulates the fields a write sets and the optional ones it deletes.
struct FieldSet {
    set: Vec<(String, String)>,
    present: Vec<&'static str>,
}

impl FieldSet {
    fn put(&mut self, name: &'static str, value: String) {
        self.set.push((name.to_owned(), value));
        if OPTIONAL.contains(&name) {
            self.present.push(name);
        }
    }

    fn finish(self) -> (Vec<(String, String)>, Vec<&'static str>) {
        let delete = OPTIONAL
            .iter()
            .copied()
            .filter(|n| !self.present.contains(n))
            .collect();
        (self.set, delete)
    }
}

/// Writes the fields of a phase. `status` and `reason` are the outer ones
/// (a parked run's), the rest come from the phase itself.
fn phase_fields(phase: &Phase, out: &mut FieldSet) {
    match phase {
        Phase::Running { state, work } => {
            state_fields(Some(state), out);
            out.put("pending", json(&pending_of_work(work)));
            if let Work::Activity {
                outcome: Some(o), ..
            } = work
            {
                out.put("outcome", json(o));
            }
        }
        Phase::Waiting { state, wait } => {
            state_fields(Some(state), out);
            out.put("pending", json(&pending_of_wait(wait)));
            out.put("waiting", wait.describe());
        }
        Phase::Compensating { ending } => {
            state_fields(None, out);
            out.put("ending", ending.status().as_str().to_owned());
            if let Ending::Failed { error, message } = ending {
                out.put("error", json(error));
                out.put("error_message", message.clone());
            }
            if let Some(stopped) = ending.stopped() {
                out.put("stopped", stopped);
            }
        }
        Phase::Settled { outcome } => {
            state_fields(None, out);
            match outcome {
                Outcome::Completed { output } => out.put("output", json(output)),
                Outcome::Failed { error, message } => {
                    out.put("error", json(error));
                    out.put("error_message", message.clone());
                }
                _ => {}
            }
            if let Some(stopped) = outcome.stopped() {
                out.put("stopped", stopped);
            }
        }
        Phase::Parked {
            resume_to: Some(inner),
            ..
        } => phase_fields(inner, out),
        Phase::Parked {
            resume_to: None, ..
        } => {}
    }
}

fn state_fields(state: Option<&StateSnapshot>, out: &mut FieldSet) {
    match state {
        Some(s) => {
            out.put("step", s.step.clone());
            out.put("state_fp", s.fingerprint.clone());
            out.put("state", json(&s.json));
        }
        None => {
            out.put("step", String::new());
            out.put("state_fp", String::new());
            out.put("state", "null".to_owned());
        }
    }
}

/// The fields a transition sets, and the optional fields it deletes. The
/// fields of a generation (`input`, `generation`, `patches`) are written
/// only when `new_generation`; `interrupt` never: it belongs to whoever
/// asks a run to stop. A parked record that does not read (its phase is
/// unknown) gets only its status, `seq`, reason and time written.
pub(crate) fn transition_fields(
    record: &RunRecord,
    new_generation: bool,
) -> (Vec<(String, String)>, Vec<&'static str>) {
    let mut out = FieldSet {
        set: Vec::with_capacity(16),
        present: Vec::new(),
    };
    out.put("status", record.status().as_str().to_owned());
    out.put("seq", record.seq.to_string());
    out.put("updated_at", record.updated_at_ms.to_string());
    if let Phase::Parked {
        resume_to: None,
        reason,
        ..
    } = &record.phase
    {
        return (
            vec![
                ("status".into(), record.status().as_str().to_owned()),
                ("seq".into(), record.seq.to_string()),
                ("updated_at".into(), record.updated_at_ms.to_string()),
                ("reason".into(), reason.clone()),
            ],
            Vec::new(),
        );
    }
    out.put("compensations", json(&record.compensations));
    out.put("attempts", record.attempts.to_string());
    if let Some(e) = &record.last_error {
        out.put("last_error", e.clone());
    }
    if let Some(r) = record.reason() {
        out.put("reason", r);
    }
    phase_fields(&record.phase, &mut out);
    if new_generation {
        out.put("input", json(&record.input));
        out.put("generation", record.generation.to_string());
        out.put("patches", json(&record.patches));
    }
    for (name, value) in &record.queries {
        out.set.push((format!("{QUERY_PREFIX}{name}"), json(value)));
    }
    out.finish()
}

/// Every field of a new run.
pub(crate) fn creation_fields(record: &RunRecord) -> Vec<(String, String)> {
    let mut f = vec![
        ("id".to_owned(), record.id.clone()),
        ("workflow".to_owned(), record.workflow.clone()),
        ("queue".to_owned(), record.queue.clone()),
        ("created_at".to_owned(), record.created_at_ms.to_string()),
        ("fence".to_owned(), "0".to_owned()),
    ];
    if let Some(p) = &record.parent {
        f.push(("parent".to_owned(), p.clone()));
    }
    if let Some(d) = record.deadline_ms {
        f.push(("deadline_at".to_owned(), d.to_string()));
    }
    if let Some(b) = record.signal_bound {
        f.push(("signal_bound".to_owned(), b.to_string()));
    }
    if let Some(t) = &record.trace {
        f.push(("traceparent".to_owned(), t.traceparent().to_owned()));
        if let Some(state) = t.tracestate() {
            f.push(("tracestate".to_owned(), state.to_owned()));
        }
    }
    f.extend(transition_fields(record, true).0);
    f
}

/// The fields a new status of a record that does not read sets.
pub(crate) fn status_fields(
    status: Status,
    reason: &str,
    seq: u64,
    updated_at_ms: u64,
) -> Vec<(String, String)> {
    vec![
        ("status".into(), status.as_str().to_owned()),
        ("reason".into(), reason.to_owned()),
        ("seq".into(), seq.to_string()),
        ("updated_at".into(), updated_at_ms.to_string()),
    ]
}

/// The encoded form of a buffered signal.
pub(crate) fn signal_entry(signal: &SignalEntry) -> String {
    json(signal)
}

#[cfg(test)]
mod tests;
