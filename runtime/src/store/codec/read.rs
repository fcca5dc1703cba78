//! Reading a record back from its fields: strictly for deciding, leniently
//! for showing a parked record to an operator.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Fields, Pending, QUERY_PREFIX};
use crate::core::{
    CompensationEntry, Ending, HistoryEntry, Interrupt, Outcome, ParkKind, Phase, RunRecord,
    SignalEntry, StateSnapshot, Status, Wait, Work,
};
use crate::telemetry::TraceContext;

/// Reads fields one by one, saying exactly what is wrong with one that
/// does not read.
struct Reader<'a>(&'a Fields);

impl Reader<'_> {
    fn text(&self, name: &str) -> Result<String, String> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("field `{name}` is missing"))
    }

    fn opt_text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn number(&self, name: &str) -> Result<u64, String> {
        let raw = self.text(name)?;
        raw.parse()
            .map_err(|_| format!("field `{name}` is `{raw}`, not a number"))
    }

    fn opt_number(&self, name: &str) -> Result<Option<u64>, String> {
        self.0
            .get(name)
            .map(|raw| {
                raw.parse()
                    .map_err(|_| format!("field `{name}` is `{raw}`, not a number"))
            })
            .transpose()
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, String> {
        let raw = self.text(name)?;
        serde_json::from_str(&raw).map_err(|e| {
            if serde_json::from_str::<Value>(&raw).is_err() {
                format!("field `{name}` is not JSON: {e}")
            } else {
                format!("field `{name}` does not decode: {e}")
            }
        })
    }

    fn opt_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, String> {
        match self.0.get(name) {
            None => Ok(None),
            Some(_) => self.json(name).map(Some),
        }
    }
}

/// The reason a stopped run's requester gave: the `stopped` (or `reason`)
/// field without its `cancelled: ` or `terminated: ` prefix.
fn requester_reason(r: &Reader<'_>) -> String {
    let text = r
        .opt_text("stopped")
        .or_else(|| r.opt_text("reason"))
        .unwrap_or_default();
    ["cancelled: ", "terminated: "]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .map_or_else(|| text.clone(), str::to_owned)
}

fn ending_of(r: &Reader<'_>, status: &str) -> Result<Ending, String> {
    Ok(match status {
        "failed" => Ending::Failed {
            error: r.opt_json("error")?.unwrap_or(Value::Null),
            message: r.opt_text("error_message").unwrap_or_default(),
        },
        "cancelled" => Ending::Cancelled {
            reason: requester_reason(r),
        },
        "timed_out" => Ending::TimedOut,
        other => return Err(format!("field `ending` is `{other}`, not a way to end")),
    })
}

fn state_of(r: &Reader<'_>) -> Result<StateSnapshot, String> {
    Ok(StateSnapshot {
        step: r.opt_text("step").unwrap_or_default(),
        fingerprint: r.opt_text("state_fp").unwrap_or_default(),
        json: r.json("state")?,
    })
}

/// The phase of a running run, from `pending` and the state.
fn forward_phase(r: &Reader<'_>) -> Result<Phase, String> {
    let pending: Pending = r
        .opt_json("pending")?
        .ok_or_else(|| "the run is running but has no `pending` field".to_owned())?;
    let state = state_of(r)?;
    Ok(match pending {
        Pending::Start => Phase::Running {
            state,
            work: Work::Start,
        },
        Pending::Activity {
            activity,
            step,
            input,
            key,
            queue,
        } => Phase::Running {
            state,
            work: Work::Activity {
                activity,
                step,
                input,
                key,
                queue,
                outcome: r.opt_json("outcome")?,
            },
        },
        Pending::Timer { step, until_ms } => Phase::Waiting {
            state,
            wait: Wait::Timer { step, until_ms },
        },
        Pending::Signal {
            step,
            name,
            deadline_ms,
        } => Phase::Waiting {
            state,
            wait: Wait::Signal {
                step,
                name,
                deadline_ms,
            },
        },
        Pending::Child {
            step,
            workflow,
            id,
            input,
            start_state,
            start_fp,
            queue,
            patches,
        } => Phase::Waiting {
            state,
            wait: Wait::Child {
                step,
                workflow,
                id,
                input,
                start_state,
                start_fp,
                queue,
                patches,
            },
        },
    })
}

/// The phase a parked run resumes to: compensating when it was unwinding
/// (its `ending` is set), forward otherwise.
fn inner_phase(r: &Reader<'_>) -> Result<Phase, String> {
    match r.opt_text("ending") {
        Some(ending) => Ok(Phase::Compensating {
            ending: ending_of(r, &ending)?,
        }),
        None => forward_phase(r),
    }
}

fn phase_of(r: &Reader<'_>, status: Status) -> Result<Phase, String> {
    Ok(match status {
        Status::Running => forward_phase(r)?,
        Status::Compensating => {
            let ending = r
                .opt_text("ending")
                .ok_or_else(|| "the run is compensating but has no `ending` field".to_owned())?;
            Phase::Compensating {
                ending: ending_of(r, &ending)?,
            }
        }
        Status::Parked | Status::CompensationFailed => Phase::Parked {
            kind: if status == Status::Parked {
                ParkKind::Stuck
            } else {
                ParkKind::CompensationFailed
            },
            reason: r.opt_text("reason").unwrap_or_default(),
            resume_to: Some(Box::new(inner_phase(r)?)),
        },
        Status::Completed => Phase::Settled {
            outcome: Outcome::Completed {
                output: r.opt_json("output")?.unwrap_or(Value::Null),
            },
        },
        Status::Failed => Phase::Settled {
            outcome: Outcome::Failed {
                error: r.opt_json("error")?.unwrap_or(Value::Null),
                message: r.opt_text("error_message").unwrap_or_default(),
            },
        },
        Status::Cancelled => Phase::Settled {
            outcome: Outcome::Cancelled {
                reason: requester_reason(r),
            },
        },
        Status::Terminated => Phase::Settled {
            outcome: Outcome::Terminated {
                reason: requester_reason(r),
            },
        },
        Status::TimedOut => Phase::Settled {
            outcome: Outcome::TimedOut,
        },
    })
}

/// Reads a record from its fields, strictly: any field that does not read
/// makes the whole record unreadable, with a reason naming the field.
/// Buffered signals are read separately ([`parse_signals`]).
pub(crate) fn parse(fields: &Fields) -> Result<RunRecord, String> {
    let r = Reader(fields);
    let status_text = r.text("status")?;
    let status = Status::parse(&status_text)
        .ok_or_else(|| format!("field `status` is `{status_text}`, not a known status"))?;
    let mut queries = BTreeMap::new();
    for (name, raw) in fields {
        if let Some(q) = name.strip_prefix(QUERY_PREFIX) {
            let value = serde_json::from_str(raw)
                .map_err(|e| format!("field `{name}` does not decode: {e}"))?;
            queries.insert(q.to_owned(), value);
        }
    }
    let attempts = r.opt_number("attempts")?.unwrap_or(0);
    Ok(RunRecord {
        id: r.text("id")?,
        workflow: r.text("workflow")?,
        queue: r.text("queue")?,
        seq: r.number("seq")?,
        phase: phase_of(&r, status)?,
        compensations: r
            .opt_json::<Vec<CompensationEntry>>("compensations")?
            .unwrap_or_default(),
        input: r.json("input")?,
        attempts: u32::try_from(attempts).map_err(|_| "field `attempts` is too large")?,
        last_error: r.opt_text("last_error"),
        interrupt: r.opt_json::<Interrupt>("interrupt")?,
        deadline_ms: r.opt_number("deadline_at")?,
        signal_bound: r
            .opt_number("signal_bound")?
            .map(|b| u32::try_from(b).map_err(|_| "field `signal_bound` is too large"))
            .transpose()?,
        queries,
        patches: r.opt_json("patches")?.unwrap_or_default(),
        parent: r.opt_text("parent"),
        generation: r.opt_number("generation")?.unwrap_or(0),
        signals: Vec::new(),
        trace: trace_of(fields),
        created_at_ms: r.number("created_at")?,
        updated_at_ms: r.number("updated_at")?,
    })
}

/// The stored trace context. It came from another process through Redis:
/// one that does not read is ignored (the run's spans then start a trace
/// of their own), never an error.
fn trace_of(fields: &Fields) -> Option<TraceContext> {
    let traceparent = fields.get("traceparent")?;
    match TraceContext::parse(traceparent, fields.get("tracestate").map(String::as_str)) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            tracing::warn!(workflow_id = ?fields.get("id"), error = %e, "ignoring the stored trace context");
            None
        }
    }
}

/// Reads a record for a client or a tool. Like [`parse`], except that a
/// parked run (parked, most likely, because a field does not read) is
/// still shown: with what reads of it, and no phase to resume to, so that
/// nothing is decided on what was guessed.
pub(crate) fn parse_for_display(fields: &Fields) -> Result<RunRecord, String> {
    let strict = parse(fields);
    let parked = fields
        .get("status")
        .and_then(|s| Status::parse(s))
        .filter(|s| s.needs_attention());
    let (Err(problem), Some(status)) = (&strict, parked) else {
        return strict;
    };
    let r = Reader(fields);
    let number = |name: &str| r.opt_number(name).ok().flatten().unwrap_or(0);
    let lenient_json = |name: &str| match fields.get(name) {
        Some(raw) => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone())),
        None => Value::Null,
    };
    let reason = r.opt_text("reason").unwrap_or_default();
    Ok(RunRecord {
        id: r.text("id")?,
        workflow: r.opt_text("workflow").unwrap_or_default(),
        queue: r.opt_text("queue").unwrap_or_default(),
        seq: number("seq"),
        phase: Phase::Parked {
            kind: if status == Status::Parked {
                ParkKind::Stuck
            } else {
                ParkKind::CompensationFailed
            },
            reason: if reason.is_empty() {
                problem.clone()
            } else {
                reason
            },
            resume_to: None,
        },
        compensations: r
            .opt_json("compensations")
            .ok()
            .flatten()
            .unwrap_or_default(),
        input: lenient_json("input"),
        attempts: u32::try_from(number("attempts")).unwrap_or(u32::MAX),
        last_error: r.opt_text("last_error"),
        interrupt: r.opt_json("interrupt").ok().flatten(),
        deadline_ms: r.opt_number("deadline_at").ok().flatten(),
        signal_bound: r
            .opt_number("signal_bound")
            .ok()
            .flatten()
            .and_then(|b| u32::try_from(b).ok()),
        queries: fields
            .keys()
            .filter_map(|n| {
                n.strip_prefix(QUERY_PREFIX)
                    .map(|q| (q.to_owned(), lenient_json(n)))
            })
            .collect(),
        patches: r.opt_json("patches").ok().flatten().unwrap_or_default(),
        parent: r.opt_text("parent"),
        generation: number("generation"),
        signals: Vec::new(),
        trace: trace_of(fields),
        created_at_ms: number("created_at"),
        updated_at_ms: number("updated_at"),
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

/// Reads a run's buffered signals for a client or a tool: an entry that
/// does not read is shown with name `(unreadable)` and its raw text as
/// the payload.
pub(crate) fn parse_signals_for_display(entries: &[String]) -> Vec<SignalEntry> {
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

/// Reads a history entry's fields.
pub(crate) fn parse_history(fields: &Fields) -> Result<HistoryEntry, String> {
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
    Ok(HistoryEntry::new(
        num("seq")?,
        get("step")?,
        Status::parse(&status_text)
            .ok_or_else(|| format!("history field `status` is `{status_text}`"))?,
        get("event")?,
        num("at")?,
    ))
}
