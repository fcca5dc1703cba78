//! A handle on one run: its record, messages to it, its result.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Client, ClientError, RunError, SendError};
use crate::core::{Ending, Outcome, Phase, RunRecord, Status};
use crate::workflow::{Signal, Workflow};

/// A handle on one run, by workflow id.
pub struct RunHandle<W> {
    pub(super) id: String,
    pub(super) client: Client,
    pub(super) _workflow: PhantomData<fn() -> W>,
}

impl<W> Clone for RunHandle<W> {
    fn clone(&self) -> Self {
        RunHandle {
            id: self.id.clone(),
            client: self.client.clone(),
            _workflow: PhantomData,
        }
    }
}

impl<W> std::fmt::Debug for RunHandle<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle").field("id", &self.id).finish()
    }
}

impl<W: Workflow> RunHandle<W> {
    /// The workflow id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The run's record as it is now.
    pub async fn describe(&self) -> Result<RunRecord, ClientError> {
        let record = self
            .client
            .describe(&self.id)
            .await?
            .ok_or_else(|| ClientError::NotFound(self.id.clone()))?;
        self.check_type(&record)?;
        Ok(record)
    }

    /// Sends signal `S` to the run (see [`Client::signal`]).
    pub async fn signal<S: Signal>(&self, signal: S) -> Result<(), SendError> {
        self.client.signal(&self.id, signal).await
    }

    /// Asks the run to stop and compensate (see [`Client::cancel`]).
    pub async fn cancel(&self, reason: impl Into<String>) -> Result<(), SendError> {
        self.client.cancel(&self.id, reason).await
    }

    /// Stops the run without compensating (see [`Client::terminate`]).
    pub async fn terminate(&self, reason: impl Into<String>) -> Result<(), SendError> {
        self.client.terminate(&self.id, reason).await
    }

    /// The value the workflow last set for query `name` (`ctx.set_query`),
    /// read from the checkpoint: it needs no running worker. `None` when
    /// the workflow has not set it.
    pub async fn query<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ClientError> {
        let record = self.describe().await?;
        record
            .queries
            .get(name)
            .map(|v| serde_json::from_value(v.clone()).map_err(|e| self.decode_failed(e)))
            .transpose()
    }

    /// Waits, without polling, until the run settles, and returns its result.
    pub async fn result(&self) -> Result<W::Output, RunError<W::Error>> {
        loop {
            match self.result_within(Duration::from_secs(3600)).await {
                Err(RunError::Client(ClientError::Timeout { .. })) => continue,
                other => return other,
            }
        }
    }

    /// Like [`result`](Self::result), giving up after `timeout` with
    /// [`ClientError::Timeout`].
    pub async fn result_within(&self, timeout: Duration) -> Result<W::Output, RunError<W::Error>> {
        let record = self
            .client
            .store
            .wait_settled(&self.id, timeout)
            .await
            .map_err(ClientError::from)?
            .ok_or_else(|| ClientError::NotFound(self.id.clone()))?;
        self.check_type(&record)?;
        let decode_error = |e: &serde_json::Value| -> Result<W::Error, ClientError> {
            serde_json::from_value(e.clone()).map_err(|e| self.decode_failed(e))
        };
        match &record.phase {
            Phase::Settled { outcome } => match outcome {
                Outcome::Completed { output } => Ok(
                    serde_json::from_value(output.clone()).map_err(|e| self.decode_failed(e))?
                ),
                Outcome::Failed { error, .. } => Err(RunError::Failed(decode_error(error)?)),
                Outcome::Cancelled { reason } => Err(RunError::Cancelled {
                    reason: reason.clone(),
                }),
                Outcome::Terminated { reason } => Err(RunError::Terminated {
                    reason: reason.clone(),
                }),
                Outcome::TimedOut => Err(RunError::TimedOut),
            },
            Phase::Parked { reason, .. } if record.status() == Status::CompensationFailed => {
                let error = match record.phase.ending() {
                    Some(Ending::Failed { error, .. }) => Some(decode_error(error)?),
                    _ => None,
                };
                Err(RunError::CompensationFailed {
                    error,
                    reason: reason.clone(),
                })
            }
            Phase::Parked { reason, .. } => Err(RunError::Parked {
                reason: reason.clone(),
            }),
            _ => Err(ClientError::Timeout {
                id: self.id.clone(),
                waited: timeout,
            }
            .into()),
        }
    }

    fn check_type(&self, record: &RunRecord) -> Result<(), ClientError> {
        if record.workflow == W::NAME {
            Ok(())
        } else {
            Err(ClientError::WrongType {
                id: self.id.clone(),
                expected: W::NAME,
                found: record.workflow.clone(),
            })
        }
    }

    fn decode_failed(&self, e: serde_json::Error) -> ClientError {
        ClientError::Decode {
            id: self.id.clone(),
            reason: e.to_string(),
        }
    }
}
