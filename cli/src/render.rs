//! How runs, histories and schedules are printed for people.

use std::fmt::Write as _;

use steadfast_runtime::{HistoryEntry, RunRecord, ScheduleSpec, Wait, Work};

/// `2026-12-01 09:00:00.123Z`, or the raw number if it is no time.
pub(crate) fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Pads each column to its widest cell; the last column is not padded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// What a run is doing or why it stopped, in a few words.
pub(crate) fn note(env: &RunRecord) -> String {
    if let Some(reason) = env.reason() {
        return reason;
    }
    if let Some(wait) = env.wait() {
        return waiting(wait);
    }
    match env.work() {
        Some(Work::Activity { activity, .. }) if env.attempts > 0 => format!(
            "calling {activity} (attempt {}, last error: {})",
            env.attempts + 1,
            env.last_error.as_deref().unwrap_or("?")
        ),
        Some(Work::Activity { activity, .. }) => format!("calling {activity}"),
        _ => env
            .error()
            .map(|(_, message)| message.to_owned())
            .unwrap_or_default(),
    }
}

/// What a run waits for outside the worker, in words; times keep their
/// colons (`sleeping until 2026-12-01 09:00:00.000Z`).
pub(crate) fn waiting(wait: &Wait) -> String {
    match wait {
        Wait::Timer { until_ms, .. } => format!("sleeping until {}", time(*until_ms)),
        Wait::Signal {
            name,
            deadline_ms: Some(deadline),
            ..
        } => format!("waiting for signal {name} until {}", time(*deadline)),
        Wait::Signal { name, .. } => format!("waiting for signal {name}"),
        Wait::Child { id, workflow, .. } => format!("waiting for child {id} ({workflow})"),
        other => other.describe(),
    }
}

/// One row of `steadfast runs`.
pub(crate) fn run_row(env: &RunRecord) -> Vec<String> {
    vec![
        env.id.clone(),
        env.workflow.clone(),
        env.status().to_string(),
        env.step().to_owned(),
        time(env.updated_at_ms),
        note(env),
    ]
}

/// The header of `steadfast runs`.
pub(crate) const RUN_HEADER: [&str; 6] = ["ID", "WORKFLOW", "STATUS", "STEP", "UPDATED", "NOTE"];

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<does not encode: {e}>"))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// `steadfast show`: every field an operator needs, state pretty-printed.
pub(crate) fn run(env: &RunRecord, run_key: &str) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| {
        if !value.is_empty() {
            let _ = writeln!(out, "{name:<14}{value}");
        }
    };
    field("id", env.id.clone());
    field("workflow", env.workflow.clone());
    field("queue", env.queue.clone());
    field("status", env.status().to_string());
    field("step", env.step().to_owned());
    field("seq", env.seq.to_string());
    field("reason", env.reason().unwrap_or_default());
    field("stopped", env.stopped().unwrap_or_default());
    field(
        "ends as",
        env.phase
            .ending()
            .map(|e| e.status().to_string())
            .unwrap_or_default(),
    );
    if env.attempts > 0 {
        field("attempts", env.attempts.to_string());
    }
    field("last error", env.last_error.clone().unwrap_or_default());
    field(
        "error",
        env.error().map(|(_, m)| m.to_owned()).unwrap_or_default(),
    );
    field("waiting", env.wait().map(waiting).unwrap_or_default());
    field("deadline", env.deadline_ms.map(time).unwrap_or_default());
    field("parent", env.parent.clone().unwrap_or_default());
    if env.generation > 0 {
        field("generation", env.generation.to_string());
    }
    field("created", time(env.created_at_ms));
    field("updated", time(env.updated_at_ms));
    field("redis key", run_key.to_owned());
    let mut block = |name: &str, body: String| {
        let _ = write!(out, "{name}:\n{}", indent(&body));
    };
    if let Some(state) = env.phase.state() {
        block("state", pretty(&state.json));
    }
    if let Some(work) = env.work() {
        block("next", pretty(work));
    }
    if let Some(wait) = env.wait() {
        block("next", pretty(wait));
    }
    if let Some(output) = env.output() {
        block("output", pretty(output));
    }
    if !env.compensations.is_empty() {
        let lines: Vec<String> = env
            .compensations
            .iter()
            .rev()
            .map(|c| format!("{} undoes {} (key {})", c.activity, c.step, c.key))
            .collect();
        block("compensations owed, next first", lines.join("\n"));
    }
    if !env.queries.is_empty() {
        let lines: Vec<String> = env
            .queries
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        block("queries", lines.join("\n"));
    }
    if !env.signals.is_empty() {
        let lines: Vec<String> = env
            .signals
            .iter()
            .map(|s| {
                format!(
                    "{} {} (sent {}, nonce {})",
                    s.name,
                    s.payload,
                    time(s.sent_at_ms),
                    s.nonce
                )
            })
            .collect();
        block("signals waiting", lines.join("\n"));
    }
    out
}

/// `steadfast show` of a record that does not read: why, and its fields
/// as stored, for the operator to repair.
pub(crate) fn raw(id: &str, reason: &str, fields: &[(String, String)], run_key: &str) -> String {
    let mut out =
        format!("run `{id}` does not read: {reason}\nits fields as stored in {run_key}:\n");
    for (name, value) in fields {
        let _ = writeln!(out, "  {name:<14}{value}");
    }
    out
}

/// `steadfast history`.
pub(crate) fn history(entries: &[HistoryEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|h| {
            vec![
                h.seq.to_string(),
                time(h.at_ms),
                h.status.to_string(),
                h.step.clone(),
                h.event.clone(),
            ]
        })
        .collect();
    table(&["SEQ", "AT", "STATUS", "STEP", "EVENT"], &rows)
}

/// `steadfast schedules`.
pub(crate) fn schedules(specs: &[ScheduleSpec]) -> String {
    let rows: Vec<Vec<String>> = specs
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.workflow.clone(),
                format!("{} ({})", s.cron, s.timezone),
                if s.paused {
                    "paused".to_owned()
                } else {
                    s.next_ms.map(time).unwrap_or_else(|| "never".to_owned())
                },
                s.runs_started.to_string(),
            ]
        })
        .collect();
    table(&["ID", "WORKFLOW", "CRON", "NEXT", "RUNS"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(json: serde_json::Value) -> Wait {
        serde_json::from_value(json).expect("a wait")
    }

    #[test]
    fn waiting_times_keep_their_colons() {
        // 2026-12-01T09:30:15.250Z
        let at = 1_796_117_415_250_u64;
        let timer =
            pending(serde_json::json!({"kind": "timer", "step": "sleep#0", "until_ms": at}));
        assert_eq!(waiting(&timer), "sleeping until 2026-12-01 09:30:15.250Z");
        let signal = pending(serde_json::json!({
            "kind": "signal", "step": "signal_cancel#0", "name": "cancel", "deadline_ms": at
        }));
        assert_eq!(
            waiting(&signal),
            "waiting for signal cancel until 2026-12-01 09:30:15.250Z"
        );
        assert_eq!(time(at), "2026-12-01 09:30:15.250Z");
    }
}
