//! Running one activity call: attempts with a timeout, retried with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde_json::Value;

use tracing::{Instrument, Span, debug};

use super::lease::Held;
use super::{DriveError, Engine};
use crate::activity::{ActivityContext, ActivityError, ActivityFailure, CompensationCall};
use crate::core::{Input, Interrupt, RunRecord};
use crate::registry::{AttemptResult, ErasedActivity};
use crate::telemetry::metrics::{self, AttemptOutcome};
use crate::telemetry::spans;

/// How an activity call ended, once the retry policy has had its say.
pub(crate) enum CallEnd {
    /// A stop request or the execution deadline interrupted it; the attempt
    /// in progress was cancelled and its outcome is unknown.
    Interrupted,
    Succeeded {
        output: Value,
        compensation: Option<CompensationCall>,
    },
    GaveUp {
        attempts: u32,
        failure: Failure,
    },
    /// No retry can help: the run must be parked.
    Broken(String),
}

/// One failed attempt.
pub(crate) struct Failure {
    pub(crate) cause: ActivityFailure<Value>,
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

/// How one attempt ended.
pub(crate) enum AttemptEnd {
    Succeeded {
        output: Value,
        compensation: Option<CompensationCall>,
    },
    Failed(Failure),
    /// No retry can help: the run must be parked.
    Broken(String),
}

/// Runs one attempt: a panic is caught and is a failed attempt; a timeout
/// cancels it (its future is dropped, so the activity stops at its next
/// await); dropping the drive (a shutdown, a simulated crash) cancels it too.
pub(crate) async fn run_attempt(
    activity: &Arc<dyn ErasedActivity>,
    input: Value,
    ctx: ActivityContext,
    timeout: Duration,
) -> AttemptEnd {
    let attempt = AssertUnwindSafe(activity.attempt(input, ctx)).catch_unwind();
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(AttemptResult::Succeeded {
            output,
            compensation,
        })) => AttemptEnd::Succeeded {
            output,
            compensation,
        },
        Ok(Ok(AttemptResult::Failed {
            error,
            message,
            retryable,
        })) => AttemptEnd::Failed(Failure {
            cause: ActivityFailure::Error(error),
            message,
            retryable,
        }),
        Ok(Ok(AttemptResult::Broken(reason))) => AttemptEnd::Broken(reason),
        Ok(Err(panic)) => {
            let message = panic_message(panic.as_ref());
            AttemptEnd::Failed(Failure {
                message: format!("panicked: {message}"),
                cause: ActivityFailure::Panicked(message),
                retryable: true,
            })
        }
        Err(_elapsed) => {
            let after_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            AttemptEnd::Failed(Failure {
                cause: ActivityFailure::TimedOut { after_ms },
                message: format!("timed out after {timeout:?}"),
                retryable: true,
            })
        }
    }
}

/// The JSON of `Result<Output, ActivityError<Error>>` that the workflow's
/// step function decodes.
pub(crate) fn outcome_json(activity: &str, end: &CallEnd) -> Result<Value, serde_json::Error> {
    match end {
        CallEnd::Succeeded { output, .. } => serde_json::to_value(Ok::<&Value, ()>(output)),
        CallEnd::Interrupted | CallEnd::Broken(_) => Ok(serde_json::Value::Null),
        CallEnd::GaveUp { attempts, failure } => {
            let error = ActivityError {
                activity: activity.to_owned(),
                attempts: *attempts,
                cause: failure.cause.clone(),
            };
            serde_json::to_value(Err::<(), _>(error))
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// The call an activity attempt belongs to.
pub(crate) struct CallSpec<'a> {
    /// The activity's name.
    pub(crate) activity: &'a str,
    /// The workflow step it belongs to.
    pub(crate) step: &'a str,
    /// Its frozen arguments.
    pub(crate) input: &'a Value,
    /// Its idempotency key.
    pub(crate) key: &'a str,
}

impl Engine {
    /// Runs an activity call with its timeout and retry policy. Every failed
    /// attempt that will be retried is a transition, so the attempt count
    /// survives a crash. No attempt starts unless the lease is provably
    /// still ours. For forward work (`forward`), any stop request and the
    /// run's execution deadline cancel the attempt in progress; for a
    /// compensation only a terminate does.
    pub(super) async fn call(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        handler: &Arc<dyn ErasedActivity>,
        spec: CallSpec<'_>,
        forward: bool,
    ) -> Result<CallEnd, DriveError> {
        let options = handler.options();
        loop {
            if let Some(interrupt) = self.prove_lease(held).await? {
                record.interrupt = Some(interrupt);
            }
            let attempt = record.attempts + 1;
            let ctx = ActivityContext::new(
                record.id.as_str(),
                spec.step,
                spec.key,
                attempt,
                Arc::clone(&self.resources),
            );
            let span = spans::attempt(spec.activity, spec.step, attempt, spec.key);
            let started = Instant::now();
            let run = run_attempt(handler, spec.input.clone(), ctx, options.timeout)
                .instrument(span.clone());
            let ended = self.unless_stopped(held, record, forward, run).await;
            self.attempt_ended(record, &spec, &span, started, ended.as_ref());
            let Some(end) = ended else {
                if !held.live {
                    return Err(held.lost());
                }
                return Ok(CallEnd::Interrupted);
            };
            let failure = match end {
                AttemptEnd::Succeeded {
                    output,
                    compensation,
                } => {
                    return Ok(CallEnd::Succeeded {
                        output,
                        compensation,
                    });
                }
                AttemptEnd::Broken(reason) => return Ok(CallEnd::Broken(reason)),
                AttemptEnd::Failed(failure) => failure,
            };
            let delay = if failure.retryable {
                options.retry.delay_after(attempt)
            } else {
                None
            };
            let Some(delay) = delay else {
                metrics::gave_up(&record.workflow, spec.activity);
                return Ok(CallEnd::GaveUp {
                    attempts: attempt,
                    failure,
                });
            };
            debug!(workflow_id = %record.id, step = %spec.step, attempt, error = %failure.message, ?delay, "attempt failed; retrying");
            metrics::retry(&record.workflow, spec.activity);
            let input = Input::AttemptFailed {
                attempt,
                message: failure.message,
                retry_in: delay,
            };
            self.decide_and_apply(held, record, input).await?;
            if self
                .unless_stopped(held, record, forward, tokio::time::sleep(delay))
                .await
                .is_none()
            {
                if !held.live {
                    return Err(held.lost());
                }
                return Ok(CallEnd::Interrupted);
            }
        }
    }

    /// Records how an attempt ended (`None`: cut short) in its span and
    /// the metrics.
    fn attempt_ended(
        &self,
        record: &RunRecord,
        spec: &CallSpec<'_>,
        span: &Span,
        started: Instant,
        end: Option<&AttemptEnd>,
    ) {
        let took = started.elapsed();
        let (outcome, error) = match end {
            None => (AttemptOutcome::Interrupted, None),
            Some(AttemptEnd::Succeeded { .. }) => (AttemptOutcome::Succeeded, None),
            Some(AttemptEnd::Broken(reason)) => (AttemptOutcome::Broken, Some(reason.as_str())),
            Some(AttemptEnd::Failed(f)) => (
                match f.cause {
                    ActivityFailure::TimedOut { .. } => AttemptOutcome::TimedOut,
                    ActivityFailure::Panicked(_) => AttemptOutcome::Panicked,
                    _ => AttemptOutcome::Failed,
                },
                Some(f.message.as_str()),
            ),
        };
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        spans::attempt_ended(span, outcome, took_ms, error);
        metrics::attempt(&record.workflow, spec.activity, outcome, took);
    }

    /// Awaits `work` unless a stop request (or, for forward work, the
    /// execution deadline) comes first: then `None`, with the request in
    /// `record.interrupt`. Also `None`, with `held.live` false, when the lease
    /// renewals stop (the lease is lost).
    async fn unless_stopped<T>(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        forward: bool,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let stops = |i: &Interrupt| forward || matches!(i, Interrupt::Terminate { .. });
        if record.interrupt.as_ref().is_some_and(stops) {
            return None;
        }
        let deadline = record
            .deadline_ms
            .filter(|_| forward)
            .map(|d| Duration::from_millis(d.saturating_sub(self.clock.now_ms())));
        let late = async {
            match deadline {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(work);
        tokio::pin!(late);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                () = &mut late => return None,
                changed = held.interrupts.changed(), if held.live => {
                    if changed.is_err() {
                        // Renewals stopped: the lease is lost, or will be
                        // before this attempt ends. Another worker carries
                        // on; cancel the attempt rather than run it beside
                        // that worker's.
                        held.live = false;
                        return None;
                    }
                    let seen = held.interrupts.borrow_and_update().clone();
                    if let Some(i) = seen.filter(|i| stops(i)) {
                        record.interrupt = Some(i);
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_json_has_the_shape_the_step_function_decodes() {
        let ok = CallEnd::Succeeded {
            output: serde_json::json!("pay-1"),
            compensation: None,
        };
        let v = outcome_json("charge", &ok).expect("encodes");
        let back: Result<String, ActivityError<String>> =
            serde_json::from_value(v).expect("decodes");
        assert_eq!(back, Ok("pay-1".to_owned()));

        let err = CallEnd::GaveUp {
            attempts: 3,
            failure: Failure {
                cause: ActivityFailure::Error(serde_json::json!("declined")),
                message: "declined".into(),
                retryable: true,
            },
        };
        let v = outcome_json("charge", &err).expect("encodes");
        let back: Result<String, ActivityError<String>> =
            serde_json::from_value(v).expect("decodes");
        let e = back.expect_err("is an error");
        assert_eq!(e.attempts, 3);
        assert_eq!(e.error().map(String::as_str), Some("declined"));

        let timeout = CallEnd::GaveUp {
            attempts: 1,
            failure: Failure {
                cause: ActivityFailure::TimedOut { after_ms: 10 },
                message: String::new(),
                retryable: true,
            },
        };
        let v = outcome_json("charge", &timeout).expect("encodes");
        let back: Result<String, ActivityError<u32>> = serde_json::from_value(v).expect("decodes");
        assert!(back.expect_err("is an error").is_timeout());
    }
}
