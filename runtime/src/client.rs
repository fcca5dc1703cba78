//! The client: start runs by id, wait for their results, describe them.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::envelope::{Envelope, HistoryEntry, Status};
use crate::store::{Started, Store, StoreError};
use crate::workflow::Workflow;

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
    /// The client could not get the result.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Options for [`Client::start_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StartOptions {
    /// The workflow id: the idempotency key of the run.
    pub id: String,
    /// The task queue; the workflow's own queue when `None`.
    pub queue: Option<String>,
    /// Fail with [`ClientError::AlreadyStarted`] when the id is taken,
    /// instead of returning the existing run's handle.
    pub reject_duplicate: bool,
}

impl StartOptions {
    /// Options for a run with this id, on the workflow's own queue.
    pub fn new(id: impl Into<String>) -> Self {
        StartOptions {
            id: id.into(),
            queue: None,
            reject_duplicate: false,
        }
    }

    /// Serves the run on `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Fails instead of returning the existing run when the id is taken.
    pub fn reject_duplicate(mut self) -> Self {
        self.reject_duplicate = true;
        self
    }
}

/// Starts runs and reads their results. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client on `store`.
    pub fn new(store: impl Store) -> Self {
        Self::new_shared(Arc::new(store))
    }

    /// A client on a store shared with other components.
    pub fn new_shared(store: Arc<dyn Store>) -> Self {
        Client {
            store,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for creation timestamps.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store the client works on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Starts a run of `W` with workflow id `id`. The id is the idempotency
    /// key: if a run with this id exists, nothing new starts and its handle
    /// is returned.
    pub async fn start<W: Workflow>(
        &self,
        id: impl Into<String>,
        input: W::Input,
    ) -> Result<RunHandle<W>, ClientError> {
        self.start_with::<W>(StartOptions::new(id), input).await
    }

    /// Starts a run of `W` with the given options.
    pub async fn start_with<W: Workflow>(
        &self,
        options: StartOptions,
        input: W::Input,
    ) -> Result<RunHandle<W>, ClientError> {
        let encode = |source| ClientError::Encode {
            workflow: W::NAME,
            source,
        };
        let input_json = serde_json::to_value(&input).map_err(encode)?;
        let state = W::start(input);
        let state_json = serde_json::to_value(&state).map_err(encode)?;
        let start_fp = W::info()
            .state(W::state_name(&state))
            .map(|s| s.fingerprint)
            .unwrap_or("");
        let envelope = Envelope::new_run(
            options.id.clone(),
            W::NAME.to_owned(),
            options.queue.unwrap_or_else(|| W::info().queue.to_owned()),
            input_json,
            state_json,
            start_fp.to_owned(),
            self.clock.now_ms(),
        );
        match self.store.start(envelope).await? {
            Started::Created => {}
            Started::Existing(existing) => {
                if options.reject_duplicate {
                    return Err(ClientError::AlreadyStarted {
                        id: options.id,
                        workflow: existing.workflow,
                        status: existing.status,
                    });
                }
                if existing.workflow != W::NAME {
                    return Err(ClientError::WrongType {
                        id: options.id,
                        expected: W::NAME,
                        found: existing.workflow,
                    });
                }
            }
        }
        Ok(self.handle(options.id))
    }

    /// A handle on the run with workflow id `id` (not checked until used).
    pub fn handle<W: Workflow>(&self, id: impl Into<String>) -> RunHandle<W> {
        RunHandle {
            id: id.into(),
            client: self.clone(),
            _workflow: PhantomData,
        }
    }

    /// The run's checkpoint as it is now, if the run exists.
    pub async fn describe(&self, id: &str) -> Result<Option<Envelope>, ClientError> {
        Ok(self.store.load(id).await?)
    }

    /// The run's committed transitions, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self.store.history(id).await?)
    }
}

/// A handle on one run, by workflow id.
pub struct RunHandle<W> {
    id: String,
    client: Client,
    _workflow: PhantomData<fn() -> W>,
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

    /// The run's checkpoint as it is now.
    pub async fn describe(&self) -> Result<Envelope, ClientError> {
        let env = self
            .client
            .describe(&self.id)
            .await?
            .ok_or_else(|| ClientError::NotFound(self.id.clone()))?;
        self.check_type(&env)?;
        Ok(env)
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
        let env = self
            .client
            .store
            .wait_settled(&self.id, timeout)
            .await
            .map_err(ClientError::from)?
            .ok_or_else(|| ClientError::NotFound(self.id.clone()))?;
        self.check_type(&env)?;
        let decode_error = || -> Result<Option<W::Error>, ClientError> {
            env.error
                .clone()
                .map(|e| serde_json::from_value(e).map_err(|e| self.decode_failed(e)))
                .transpose()
        };
        match env.status {
            Status::Completed => {
                let output = env.output.clone().unwrap_or(serde_json::Value::Null);
                Ok(serde_json::from_value(output).map_err(|e| self.decode_failed(e))?)
            }
            Status::Failed => match decode_error()? {
                Some(e) => Err(RunError::Failed(e)),
                None => Err(ClientError::Decode {
                    id: self.id.clone(),
                    reason: "the run failed but stored no error".into(),
                }
                .into()),
            },
            Status::CompensationFailed => Err(RunError::CompensationFailed {
                error: decode_error()?,
                reason: env.reason.clone().unwrap_or_default(),
            }),
            Status::Parked => Err(RunError::Parked {
                reason: env.reason.clone().unwrap_or_default(),
            }),
            Status::Running | Status::Compensating => Err(ClientError::Timeout {
                id: self.id.clone(),
                waited: timeout,
            }
            .into()),
        }
    }

    fn check_type(&self, env: &Envelope) -> Result<(), ClientError> {
        if env.workflow == W::NAME {
            Ok(())
        } else {
            Err(ClientError::WrongType {
                id: self.id.clone(),
                expected: W::NAME,
                found: env.workflow.clone(),
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
