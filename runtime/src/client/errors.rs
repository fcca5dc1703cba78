//! What can go wrong for a client, and how a run ended when it did not
//! return `Ok`.

use std::time::Duration;

use crate::core::{Oversize, Refusal, Status};
use crate::operator::Failure;
use crate::schedule::ScheduleError;
use crate::store::StoreError;

/// Why a message (a signal, a stop request, a signal removal) could not be
/// delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No run has this id.
    #[error("no run with id `{0}`")]
    NotFound(String),
    /// The run has settled; nothing reads messages any more.
    #[error("run `{id}` has settled ({status}); it takes no more messages")]
    Settled {
        /// The run.
        id: String,
        /// Its final status.
        status: Status,
    },
    /// The run's signal buffer is full: it is not consuming its signals.
    #[error("run `{id}` already has {bound} signals waiting, its limit; it is not consuming them")]
    BufferFull {
        /// The run.
        id: String,
        /// The limit.
        bound: u32,
    },
    /// A worker holds the run, and the action is an operator's: try again
    /// once the worker releases it.
    #[error("a worker holds run `{0}`; try again once it releases it")]
    Held(String),
    /// The run's phase does not take this message.
    #[error(transparent)]
    Refused(Refusal),
    /// The run's record does not read; the message was not delivered, and
    /// the run was woken so that a worker parks it for an operator.
    #[error(
        "run `{id}` does not read ({reason}); the message was not delivered, and a worker will park the run for an operator"
    )]
    Unreadable {
        /// The run.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The signal's payload is over the client's limit
    /// ([`Limits::signal_payload_bytes`](crate::core::Limits)); nothing was
    /// sent.
    #[error("{0}; the signal was not sent")]
    TooLarge(Oversize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SendError {
    pub(super) fn of(id: &str, failure: Failure) -> Self {
        match failure {
            Failure::NotFound => SendError::NotFound(id.to_owned()),
            Failure::Unreadable(reason) => SendError::Unreadable {
                id: id.to_owned(),
                reason,
            },
            Failure::Refused(Refusal::Settled { id, status }) => SendError::Settled { id, status },
            Failure::Refused(r) => SendError::Refused(r),
            Failure::Store(StoreError::BufferFull { workflow_id, bound }) => {
                SendError::BufferFull {
                    id: workflow_id,
                    bound,
                }
            }
            Failure::Store(StoreError::Held(id)) => SendError::Held(id),
            Failure::Store(e) => SendError::Store(e),
        }
    }
}

/// Why a run could not be resumed by [`Client::resume`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// No run has this id.
    #[error("no run with id `{0}`")]
    NotFound(String),
    /// The run did not stop for an operator: only parked runs and failed
    /// compensations wait to be resumed.
    #[error(
        "run `{id}` is {status}; only parked runs and failed compensations (compensation_failed) can be resumed"
    )]
    NotStopped {
        /// The run.
        id: String,
        /// Its status.
        status: Status,
    },
    /// The stored record does not read far enough to resume it: repair it.
    #[error("run `{id}` does not read ({reason}); repair the record first")]
    Unrepaired {
        /// The run.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A worker holds a valid lease on the run: it is being driven.
    #[error("a worker holds run `{0}`; wait for its lease to expire")]
    Held(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ResumeError {
    pub(super) fn of(id: &str, failure: Failure) -> Self {
        match failure {
            Failure::NotFound => ResumeError::NotFound(id.to_owned()),
            Failure::Unreadable(reason) => ResumeError::Unrepaired {
                id: id.to_owned(),
                reason,
            },
            Failure::Refused(Refusal::NotStopped { id, status }) => {
                ResumeError::NotStopped { id, status }
            }
            Failure::Refused(Refusal::Settled { id, status }) => {
                ResumeError::NotStopped { id, status }
            }
            Failure::Refused(Refusal::Unrepaired { id, reason }) => {
                ResumeError::Unrepaired { id, reason }
            }
            Failure::Refused(other) => ResumeError::Store(StoreError::Backend(other.to_string())),
            Failure::Store(StoreError::Held(id)) => ResumeError::Held(id),
            Failure::Store(e) => ResumeError::Store(e),
        }
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A run with this id exists and the start asked not to reuse it.
    #[error("a run with id `{id}` already exists (workflow `{workflow}`, status {status})")]
    AlreadyStarted {
        /// The id.
        id: String,
        /// Its workflow type.
        workflow: String,
        /// Its status.
        status: Status,
    },
    /// The id belongs to a run of another workflow type.
    #[error("run `{id}` is a `{found}` workflow, not a `{expected}`")]
    WrongType {
        /// The id.
        id: String,
        /// The type asked for.
        expected: &'static str,
        /// The stored type.
        found: String,
    },
    /// No run has this id.
    #[error("no run with id `{0}`")]
    NotFound(String),
    /// The run's input or start state, or its signal bound, is over the
    /// client's [`Limits`](crate::core::Limits); nothing was written.
    #[error("{0}; the run was not started")]
    TooLarge(Oversize),
    /// The input does not encode as JSON.
    #[error("the input of workflow `{workflow}` does not encode as JSON: {source}")]
    Encode {
        /// The workflow type.
        workflow: &'static str,
        /// The encoding error.
        source: serde_json::Error,
    },
    /// The stored output or error does not decode as this code's type.
    #[error("the result of run `{id}` does not decode: {reason}")]
    Decode {
        /// The id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule's cron expression or time zone is invalid.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// No schedule has this id.
    #[error("no schedule with id `{0}`")]
    NoSchedule(String),
    /// The store keeps no schedules.
    #[error("this store keeps no schedules")]
    NoSchedules,
    /// The run did not settle in the time given.
    #[error("run `{id}` has not settled after {waited:?}")]
    Timeout {
        /// The id.
        id: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// How a run ended, when it did not return `Ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError<E> {
    /// The workflow returned this error; every compensation ran.
    #[error("workflow failed: {0}")]
    Failed(E),
    /// The workflow failed and one of its compensations failed for good; the
    /// run is kept, with the compensations still to do, for an operator.
    #[error("workflow failed and a compensation failed: {reason}")]
    CompensationFailed {
        /// The workflow's error.
        error: Option<E>,
        /// Which compensation failed, and how.
        reason: String,
    },
    /// The run was parked and waits for an operator.
    #[error("run parked: {reason}")]
    Parked {
        /// Why.
        reason: String,
    },
    /// The run was cancelled (its compensations ran).
    #[error("run cancelled: {reason}")]
    Cancelled {
        /// Why, as given by who cancelled it.
        reason: String,
    },
    /// The run was terminated (no compensation ran).
    #[error("run terminated: {reason}")]
    Terminated {
        /// Why, as given by who terminated it.
        reason: String,
    },
    /// The run's execution timeout passed (its compensations ran).
    #[error("run timed out")]
    TimedOut,
    /// The client could not get the result.
    #[error(transparent)]
    Client(#[from] ClientError),
}
