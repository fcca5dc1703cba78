//! Messages to runs from outside a worker — signals, stop requests, an
//! operator's resume or signal removal, a child waking its parent — as
//! decisions: read the run, [`decide`], apply on top of the `seq` read;
//! read and decide again when a worker committed meanwhile.

use tracing::debug;

use crate::core::{self, Guard, Input, Refusal, Status, Write, decide};
use crate::store::{Applied, Store, StoreError};

/// How often a message is decided again when the run keeps changing under
/// it (a worker committing between the read and the write).
const ATTEMPTS: u32 = 50;

/// Why a message could not be delivered.
#[derive(Debug)]
pub(crate) enum Failure {
    NotFound,
    /// The record does not read; the run was woken so that a worker parks it.
    Unreadable(String),
    Refused(Refusal),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Decides `input` on run `id` as it is now, and applies the decision.
/// Returns what applying found, and the status the decision left the run
/// in when it wrote the record.
///
/// A message that writes no record (a signal, a stop request, a wake-up)
/// is applied on the run as it is then, refused only if it has ended
/// meanwhile — a busy run committing every millisecond must not starve it.
/// One that writes the record (a resume, a signal removal) is applied on
/// top of the `seq` it was decided on, and decided again when a worker
/// committed meanwhile.
pub(crate) async fn send(
    store: &dyn Store,
    id: &str,
    input: Input,
    now_ms: u64,
) -> Result<(Applied, Option<Status>), Failure> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        let record = match store.load(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Failure::NotFound),
            Err(StoreError::Corrupt { reason, .. }) => {
                wake_unreadable(store, id).await;
                return Err(Failure::Unreadable(reason));
            }
            Err(e) => return Err(e.into()),
        };
        let decision = decide(&record, input.clone(), now_ms).map_err(Failure::Refused)?;
        let guard = match decision.write {
            Write::Nothing => Guard::Unended,
            _ => Guard::Current { seq: record.seq },
        };
        let status = decision.record().map(|r| r.status());
        match store.apply(id, &guard, &decision).await {
            Ok(applied) => return Ok((applied, status)),
            Err(StoreError::Ended { status, .. }) => {
                return Err(Failure::Refused(Refusal::Settled {
                    id: id.to_owned(),
                    status,
                }));
            }
            Err(StoreError::Stale { .. }) => {
                // A worker committed meanwhile: look again, after a short,
                // growing pause so a busy run lets us in.
                let pause = std::time::Duration::from_millis(u64::from(attempt.min(20)));
                tokio::time::sleep(pause).await;
            }
            Err(StoreError::NotFound(_)) => return Err(Failure::NotFound),
            Err(e) => return Err(e.into()),
        }
        last = Some(record.seq);
    }
    Err(Failure::Store(StoreError::Backend(format!(
        "run `{id}` kept changing while a message to it was decided ({ATTEMPTS} tries, last at seq {}); try again",
        last.unwrap_or_default()
    ))))
}

/// Queues a task for a run whose record does not read, so that a worker
/// takes it and parks it with the reason (its queue read from the raw
/// record, which may not read either: then nothing is done).
async fn wake_unreadable(store: &dyn Store, id: &str) {
    let Some(admin) = store.admin() else { return };
    let queue = match admin.raw_record(id).await {
        Ok(Some(fields)) => fields
            .into_iter()
            .find(|(k, _)| k == "queue")
            .map(|(_, v)| v),
        _ => None,
    };
    let Some(queue) = queue else { return };
    if let Err(e) = store
        .apply(id, &Guard::Exists, &core::wake_unreadable(&queue))
        .await
    {
        debug!(run = %id, error = %e, "could not wake a run whose record does not read");
    }
}
