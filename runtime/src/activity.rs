//! Activities: the side-effecting steps a workflow calls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::options::ActivityOptions;
use crate::registry::Registry;
use crate::resources::Resources;

/// A side-effecting step (a network call, a database write) that a workflow
/// calls. Implemented by `#[activity]`; you rarely write it by hand.
///
/// The implementing type is the activity's *call*: a struct holding the
/// arguments, so that a pending call can be checkpointed before it runs and
/// read back in `redis-cli`. Activities run at least once: a crash after an
/// attempt and before its checkpoint runs it again, with the same
/// [`ActivityContext::idempotency_key`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an activity",
    label = "not an activity",
    note = "a workflow can only await functions marked `#[activity]`"
)]
pub trait Activity: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// What a successful attempt returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// What a failed attempt returns.
    type Error: Serialize + DeserializeOwned + fmt::Display + Send + 'static;
    /// The name under which the activity is registered and checkpointed.
    const NAME: &'static str;

    /// Whether the activity declares a compensation.
    const HAS_COMPENSATION: bool = false;

    /// The task queue of the workers that run this activity, when it is not
    /// run by the worker driving the workflow (`#[activity(queue = "..")]`).
    const QUEUE: Option<&'static str> = None;

    /// Timeout and retry policy.
    fn options() -> ActivityOptions {
        ActivityOptions::DEFAULT
    }

    /// Runs one attempt.
    fn run(
        self,
        ctx: &ActivityContext,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;

    /// Whether a failed attempt may be retried. Errors for which this is
    /// `false` end the activity at once, whatever the retry policy says.
    fn is_retryable(error: &Self::Error) -> bool {
        let _ = error;
        true
    }

    /// The compensating call to checkpoint once this call has succeeded, if
    /// the activity declares one (`#[activity(compensate = ..)]`).
    fn compensation(
        &self,
        output: &Self::Output,
    ) -> Result<Option<CompensationCall>, serde_json::Error> {
        let _ = output;
        Ok(None)
    }

    /// Registers the compensating activity, if any.
    fn register_compensation(registry: &mut Registry) {
        let _ = registry;
    }
}

/// A compensating activity call, frozen when the step it undoes succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompensationCall {
    /// The compensating activity's registered name.
    pub activity: String,
    /// Its arguments, as JSON.
    pub input: serde_json::Value,
}

impl CompensationCall {
    /// Freezes a call to activity `A`.
    pub fn of<A: Activity>(call: &A) -> Result<Self, serde_json::Error> {
        Ok(Self {
            activity: A::NAME.to_owned(),
            input: serde_json::to_value(call)?,
        })
    }
}

/// What an activity sees of the workflow that called it.
#[derive(Debug, Clone)]
pub struct ActivityContext {
    workflow_id: Arc<str>,
    step: Arc<str>,
    idempotency_key: Arc<str>,
    attempt: u32,
    resources: Arc<Resources>,
}

impl ActivityContext {
    /// A context for one attempt.
    pub fn new(
        workflow_id: impl Into<Arc<str>>,
        step: impl Into<Arc<str>>,
        idempotency_key: impl Into<Arc<str>>,
        attempt: u32,
        resources: Arc<Resources>,
    ) -> Self {
        Self {
            workflow_id: workflow_id.into(),
            step: step.into(),
            idempotency_key: idempotency_key.into(),
            attempt,
            resources,
        }
    }

    /// The id of the workflow that called this activity.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The workflow step this call belongs to, e.g. `charge_card#0`.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// A key that is the same for every attempt and every re-execution of
    /// this call, and different for every other call: pass it to payment
    /// providers and databases so that a repeated attempt does nothing new.
    /// Its shape is `<workflow id>/<step>/<sequence number>`.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// Which attempt this is, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The shared resource of type `T` registered on the worker.
    ///
    /// # Panics
    /// When no value of type `T` was registered: that is a wiring mistake in
    /// the program, and the attempt fails with the panic message (which names
    /// the type). Use [`try_resource`](Self::try_resource) to handle it.
    pub fn resource<T: Send + Sync + 'static>(&self) -> &T {
        match self.resources.get::<T>() {
            Some(v) => v,
            None => panic!(
                "no resource of type `{}` is registered; add it with WorkerBuilder::resource",
                std::any::type_name::<T>()
            ),
        }
    }

    /// The shared resource of type `T`, if one was registered.
    pub fn try_resource<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.resources.get::<T>()
    }
}

/// Why an activity call ended without a result, as the workflow sees it.
///
/// Awaiting an activity in a workflow yields
/// `Result<A::Output, ActivityError<A::Error>>`; `?` converts this error
/// into the workflow's error type through `From`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActivityError<E> {
    /// The activity's registered name.
    pub activity: String,
    /// How many attempts ran.
    pub attempts: u32,
    /// What the last attempt ended with.
    pub cause: ActivityFailure<E>,
}

impl<E> ActivityError<E> {
    /// The activity's own error, when the last attempt returned one.
    pub fn error(&self) -> Option<&E> {
        match &self.cause {
            ActivityFailure::Error(e) => Some(e),
            _ => None,
        }
    }

    /// Consumes the error, giving the activity's own error if there is one.
    pub fn into_error(self) -> Option<E> {
        match self.cause {
            ActivityFailure::Error(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the last attempt ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.cause, ActivityFailure::TimedOut { .. })
    }
}

impl<E: fmt::Display> fmt::Display for ActivityError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "activity `{}` failed after {} attempt{plural}: {}",
            self.activity, self.attempts, self.cause
        )
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ActivityError<E> {}

/// What the last attempt of an activity ended with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityFailure<E> {
    /// The activity returned this error.
    Error(E),
    /// The attempt ran longer than the activity's timeout and was cancelled.
    TimedOut {
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// The activity panicked.
    Panicked(String),
}

impl<E: fmt::Display> fmt::Display for ActivityFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivityFailure::Error(e) => e.fmt(f),
            ActivityFailure::TimedOut { after_ms } => {
                write!(f, "timed out after {:?}", Duration::from_millis(*after_ms))
            }
            ActivityFailure::Panicked(msg) => write!(f, "panicked: {msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_activity_attempts_and_cause() {
        let e: ActivityError<String> = ActivityError {
            activity: "ship".into(),
            attempts: 3,
            cause: ActivityFailure::Error("carrier down".into()),
        };
        assert_eq!(
            e.to_string(),
            "activity `ship` failed after 3 attempts: carrier down"
        );
        let t: ActivityError<String> = ActivityError {
            activity: "ship".into(),
            attempts: 1,
            cause: ActivityFailure::TimedOut { after_ms: 1500 },
        };
        assert_eq!(
            t.to_string(),
            "activity `ship` failed after 1 attempt: timed out after 1.5s"
        );
        assert!(t.is_timeout());
        assert_eq!(t.error(), None);
    }
}
