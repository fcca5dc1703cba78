//! How large a run's data may grow, as rules checked before anything is
//! written: corrupt or oversized data parks one run with a readable
//! reason, and nothing is lost.
//!
//! - A worker checks each decision (and each activity's result) against
//!   the [`Limits`] before applying it: one that outgrows them is not
//!   written; the run is parked instead, keeping its last good checkpoint,
//!   with a reason naming what, how large, and the limit.
//! - A client checks a start's input and a signal's payload, and refuses
//!   them with an error, before anything is sent.
//!
//! Sizes are those of the JSON encoding, as stored.

use std::fmt;

use serde::Serialize;

use super::{Cause, Decision, Effect, Input, Outcome, Phase, RunRecord, SignalEntry, Wait, Work};

/// The largest data a run may hold or be sent. Lower limits keep Redis
/// fast (every transition rewrites the state) and its memory bounded.
///
/// ```
/// use steadfast_runtime::core::Limits;
/// let limits = Limits::default().state_bytes(4 << 20);
/// assert_eq!(limits.state_bytes, 4 << 20);
/// assert_eq!(limits.signal_payload_bytes, 256 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// A run's state; also, separately, its query values together, and
    /// the compensations it owes together (default 1 MiB).
    pub state_bytes: usize,
    /// An activity's or compensation's arguments (default 256 KiB).
    pub activity_input_bytes: usize,
    /// An activity's result (or error), and the workflow's (default 1 MiB).
    pub output_bytes: usize,
    /// A run's arguments: at its start, for a child, when it continues as
    /// new (default 256 KiB).
    pub workflow_input_bytes: usize,
    /// One signal's payload (default 256 KiB).
    pub signal_payload_bytes: usize,
    /// The largest signal buffer a run may be started with
    /// ([`StartOptions::signal_bound`](crate::StartOptions::signal_bound);
    /// default 10 000 signals). Each transition of a run scans its buffer.
    pub signal_buffer: u32,
}

impl Limits {
    /// The defaults: 1 MiB of state, 256 KiB of activity input, 1 MiB of
    /// output, 256 KiB of workflow input and of signal payload, 10 000
    /// buffered signals.
    pub const DEFAULT: Limits = Limits {
        state_bytes: 1 << 20,
        activity_input_bytes: 256 << 10,
        output_bytes: 1 << 20,
        workflow_input_bytes: 256 << 10,
        signal_payload_bytes: 256 << 10,
        signal_buffer: 10_000,
    };

    /// Sets [`state_bytes`](Self#structfield.state_bytes).
    pub fn state_bytes(mut self, bytes: usize) -> Self {
        self.state_bytes = bytes;
        self
    }

    /// Sets [`activity_input_bytes`](Self#structfield.activity_input_bytes).
    pub fn activity_input_bytes(mut self, bytes: usize) -> Self {
        self.activity_input_bytes = bytes;
        self
    }

    /// Sets [`output_bytes`](Self#structfield.output_bytes).
    pub fn output_bytes(mut self, bytes: usize) -> Self {
        self.output_bytes = bytes;
        self
    }

    /// Sets [`workflow_input_bytes`](Self#structfield.workflow_input_bytes).
    pub fn workflow_input_bytes(mut self, bytes: usize) -> Self {
        self.workflow_input_bytes = bytes;
        self
    }

    /// Sets [`signal_payload_bytes`](Self#structfield.signal_payload_bytes).
    pub fn signal_payload_bytes(mut self, bytes: usize) -> Self {
        self.signal_payload_bytes = bytes;
        self
    }

    /// Sets [`signal_buffer`](Self#structfield.signal_buffer).
    pub fn signal_buffer(mut self, signals: u32) -> Self {
        self.signal_buffer = signals;
        self
    }

    /// Checks everything a decision writes that can grow: the record's
    /// state, query values, compensations, pending activity input and
    /// recorded outcome, input, a child's input and start state, the
    /// workflow's result, and a buffered signal's payload.
    pub fn check_decision(&self, decision: &Decision) -> Result<(), Oversize> {
        if let Some(record) = decision.record() {
            self.check_record(record)?;
        }
        for effect in &decision.effects {
            if let Effect::AppendSignal { signal, .. } = effect {
                self.check_signal(signal)?;
            }
        }
        Ok(())
    }

    /// Checks what an input brings that no decision stores as such: an
    /// activity's result or error, fed to the workflow (`record` names the
    /// activity).
    pub fn check_input(&self, record: &RunRecord, input: &Input) -> Result<(), Oversize> {
        let cause = match input {
            Input::Stepped { cause, .. } | Input::OutcomeRecorded { cause } => cause,
            Input::SendSignal { signal, .. } => return self.check_signal(signal),
            _ => return Ok(()),
        };
        let outcome = match cause {
            Cause::ActivitySucceeded { outcome, .. } | Cause::ActivityGaveUp { outcome, .. } => {
                outcome
            }
            _ => return Ok(()),
        };
        let activity = match record.work() {
            Some(Work::Activity { activity, .. }) => format!("activity `{activity}`"),
            _ => "the activity".to_owned(),
        };
        bytes(
            format!("the result of {activity}"),
            outcome,
            self.output_bytes,
            "output_bytes",
        )
    }

    /// Checks a new run before it is created: its input, its start state,
    /// its signal bound.
    pub fn check_start(&self, record: &RunRecord) -> Result<(), Oversize> {
        if let Some(bound) = record.signal_bound
            && bound > self.signal_buffer
        {
            return Err(Oversize {
                what: "the signal bound".to_owned(),
                size: bound as usize,
                limit: self.signal_buffer as usize,
                limit_name: "signal_buffer",
                unit: SizeUnit::Signals,
            });
        }
        self.check_record(record)
    }

    /// Checks a signal's payload.
    pub fn check_signal(&self, signal: &SignalEntry) -> Result<(), Oversize> {
        bytes(
            format!("the payload of signal `{}`", signal.name),
            &signal.payload,
            self.signal_payload_bytes,
            "signal_payload_bytes",
        )
    }

    fn check_record(&self, record: &RunRecord) -> Result<(), Oversize> {
        bytes(
            "the workflow's input".to_owned(),
            &record.input,
            self.workflow_input_bytes,
            "workflow_input_bytes",
        )?;
        if let Some(state) = record.phase.state() {
            bytes(
                format!("the state of step `{}`", state.step),
                &state.json,
                self.state_bytes,
                "state_bytes",
            )?;
        }
        if !record.queries.is_empty() {
            bytes(
                "the query values".to_owned(),
                &record.queries,
                self.state_bytes,
                "state_bytes",
            )?;
        }
        if !record.compensations.is_empty() {
            for c in &record.compensations {
                bytes(
                    format!("the input of compensation `{}`", c.activity),
                    &c.input,
                    self.activity_input_bytes,
                    "activity_input_bytes",
                )?;
            }
            bytes(
                "the compensations owed".to_owned(),
                &record.compensations,
                self.state_bytes,
                "state_bytes",
            )?;
        }
        self.check_phase(&record.phase)
    }

    fn check_phase(&self, phase: &Phase) -> Result<(), Oversize> {
        match phase {
            Phase::Running {
                work:
                    Work::Activity {
                        activity,
                        input,
                        outcome,
                        ..
                    },
                ..
            } => {
                bytes(
                    format!("the input of activity `{activity}`"),
                    input,
                    self.activity_input_bytes,
                    "activity_input_bytes",
                )?;
                if let Some(outcome) = outcome {
                    bytes(
                        format!("the result of activity `{activity}`"),
                        outcome,
                        self.output_bytes,
                        "output_bytes",
                    )?;
                }
                Ok(())
            }
            Phase::Waiting {
                wait:
                    Wait::Child {
                        id,
                        input,
                        start_state,
                        ..
                    },
                ..
            } => {
                bytes(
                    format!("the input of child run `{id}`"),
                    input,
                    self.workflow_input_bytes,
                    "workflow_input_bytes",
                )?;
                bytes(
                    format!("the start state of child run `{id}`"),
                    start_state,
                    self.state_bytes,
                    "state_bytes",
                )
            }
            Phase::Settled {
                outcome: Outcome::Completed { output },
            } => bytes(
                "the workflow's result".to_owned(),
                output,
                self.output_bytes,
                "output_bytes",
            ),
            Phase::Settled {
                outcome: Outcome::Failed { error, .. },
            } => bytes(
                "the workflow's error".to_owned(),
                error,
                self.output_bytes,
                "output_bytes",
            ),
            _ => match phase.ending() {
                Some(super::Ending::Failed { error, .. }) => bytes(
                    "the workflow's error".to_owned(),
                    error,
                    self.output_bytes,
                    "output_bytes",
                ),
                _ => Ok(()),
            },
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What a size is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeUnit {
    /// Bytes of JSON.
    Bytes,
    /// Signals in a buffer.
    Signals,
}

/// Data over its limit: what, how large, and which limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct Oversize {
    /// What is too large (`the state of step \`charge_card#0\``).
    pub what: String,
    /// Its size.
    pub size: usize,
    /// The limit.
    pub limit: usize,
    /// The [`Limits`] field that sets it (`state_bytes`).
    pub limit_name: &'static str,
    /// What `size` and `limit` count.
    pub unit: SizeUnit,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            SizeUnit::Bytes => write!(
                f,
                "{} is {} ({} bytes), over the limit of {} (Limits::{})",
                self.what,
                human(self.size),
                self.size,
                human(self.limit),
                self.limit_name
            ),
            SizeUnit::Signals => write!(
                f,
                "{} is {} signals, over the limit of {} (Limits::{})",
                self.what, self.size, self.limit, self.limit_name
            ),
        }
    }
}

impl Oversize {
    /// `what` of `size` bytes over `limit` (the [`Limits`] field
    /// `limit_name`).
    pub fn new(
        what: impl Into<String>,
        size: usize,
        limit: usize,
        limit_name: &'static str,
    ) -> Self {
        Oversize {
            what: what.into(),
            size,
            limit,
            limit_name,
            unit: SizeUnit::Bytes,
        }
    }

    /// The reason a worker parks a run with when its next decision is over
    /// a limit.
    pub fn park_reason(&self) -> String {
        format!(
            "{self}; it was not written, and the run keeps its last checkpoint \
             (raise the limit with WorkerBuilder::limits, then resume the run)"
        )
    }
}

/// `1.5 MiB`, `256.0 KiB`, `12 B`.
fn human(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Checks the JSON size of `value`, counted without building the text.
fn bytes(
    what: String,
    value: &impl Serialize,
    limit: usize,
    limit_name: &'static str,
) -> Result<(), Oversize> {
    let size = encoded_len(value);
    if size <= limit {
        return Ok(());
    }
    Err(Oversize {
        what,
        size,
        limit,
        limit_name,
        unit: SizeUnit::Bytes,
    })
}

/// The length of `value`'s JSON encoding, counted without building it.
pub fn encoded_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Values that do not encode are refused elsewhere; count what did.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::{StateSnapshot, create, decide};

    fn run(state: serde_json::Value) -> RunRecord {
        RunRecord::new_run(
            "r-1",
            "hoard",
            "q",
            json!("in"),
            StateSnapshot::new("start", "fp", state),
            0,
        )
    }

    #[test]
    fn sizes_are_those_of_the_json() {
        assert_eq!(encoded_len(&json!({"a": "xy"})), r#"{"a":"xy"}"#.len());
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(2 << 20), "2.0 MiB");
    }

    #[test]
    fn a_state_over_the_limit_is_named_with_its_size() {
        let limits = Limits {
            state_bytes: 100,
            ..Limits::DEFAULT
        };
        let small = create(run(json!({"start": {"x": "y"}})));
        assert_eq!(limits.check_decision(&small), Ok(()));
        let big = create(run(json!({"start": {"x": "y".repeat(200)}})));
        let over = limits.check_decision(&big).expect_err("over the limit");
        assert_eq!(over.limit_name, "state_bytes");
        assert!(over.size > 200, "{over}");
        let text = over.park_reason();
        assert!(
            text.starts_with("the state of step `start` is 2")
                && text.contains("over the limit of 100 B (Limits::state_bytes)")
                && text.contains("not written"),
            "{text}"
        );
    }

    #[test]
    fn inputs_payloads_results_and_bounds_have_their_own_limits() {
        let limits = Limits {
            workflow_input_bytes: 10,
            signal_payload_bytes: 10,
            output_bytes: 10,
            signal_buffer: 5,
            ..Limits::DEFAULT
        };
        let mut record = run(json!({"start": {}}));
        record.input = json!("a longer input than ten bytes");
        let over = limits.check_start(&record).expect_err("input");
        assert_eq!(over.limit_name, "workflow_input_bytes");
        record.input = json!(1);
        record.signal_bound = Some(6);
        let over = limits.check_start(&record).expect_err("bound");
        assert_eq!(over.unit, SizeUnit::Signals);
        assert!(over.to_string().contains("6 signals"), "{over}");
        record.signal_bound = Some(5);
        assert_eq!(limits.check_start(&record), Ok(()));

        let signal = SignalEntry {
            name: "go".into(),
            payload: json!("a payload of more than ten bytes"),
            sent_at_ms: 0,
            nonce: 1,
        };
        let send = Input::SendSignal {
            signal: signal.clone(),
            bound: 5,
        };
        assert!(limits.check_input(&record, &send).is_err());
        let decision = decide(&record, send, 1).expect("a signal is buffered");
        let over = limits.check_decision(&decision).expect_err("payload");
        assert!(over.what.contains("signal `go`"), "{over}");

        let result = Input::OutcomeRecorded {
            cause: Cause::ActivitySucceeded {
                outcome: json!({"Ok": "a result of more than ten bytes"}),
                compensation: None,
            },
        };
        let over = limits.check_input(&record, &result).expect_err("result");
        assert_eq!(over.limit_name, "output_bytes");
    }
}
