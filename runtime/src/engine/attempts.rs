//! Running one activity call: attempts with a timeout, retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde_json::Value;

use crate::activity::{ActivityContext, ActivityError, ActivityFailure, CompensationCall};
use crate::registry::{AttemptResult, ErasedActivity};

/// How an activity call ended, once the retry policy has had its say.
pub(crate) enum CallEnd {
    Succeeded {
        output: Value,
        compensation: Option<CompensationCall>,
    },
    GaveUp {
        attempts: u32,
        failure: Failure,
    },
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
