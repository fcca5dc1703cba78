//! Keeping a lease, and proving it on the worker's own clock.
//!
//! A worker frozen past its lease (a GC pause, a stopped VM, SIGSTOP) and
//! then continued may finish the attempt it was in — its commit is then
//! fenced — but must not start anything new: another worker may have taken
//! the run over and be running the same step. Each acquisition, renewal and
//! kept-lease commit extends a deadline measured from when its request was
//! *sent*, on the monotonic clock (which keeps counting while the process
//! is stopped); before starting an activity attempt the worker checks that
//! deadline, and renews first when it is near.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::debug;

use super::{AbortGuard, DriveError, Engine};
use crate::core::Interrupt;
use crate::store::{Lease, StoreError};

/// Until when the worker can prove it holds a lease.
#[derive(Debug)]
pub(crate) struct LeaseProof {
    valid_until: Mutex<Instant>,
}

impl LeaseProof {
    /// A proof for a lease whose acquisition was sent at `sent`.
    pub(crate) fn new(sent: Instant, lease_for: Duration) -> Arc<Self> {
        Arc::new(LeaseProof {
            valid_until: Mutex::new(sent + lease_for),
        })
    }

    /// A request that extended the lease by `lease_for` was sent at `sent`.
    pub(crate) fn extended(&self, sent: Instant, lease_for: Duration) {
        let mut until = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        *until = (*until).max(sent + lease_for);
    }

    /// Whether the lease is still ours for at least `margin`.
    pub(crate) fn holds_for(&self, margin: Duration) -> bool {
        let until = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        Instant::now() + margin < until
    }
}

/// A run this worker holds: its lease, the proof of it, and stop requests
/// seen by the lease renewals.
pub(crate) struct Held<'a> {
    pub(crate) lease: &'a Lease,
    pub(crate) proof: Arc<LeaseProof>,
    pub(crate) interrupts: watch::Receiver<Option<Interrupt>>,
    /// Whether renewals still report (false once they stopped).
    pub(crate) live: bool,
}

impl Held<'_> {
    /// The error of a drive whose lease is gone.
    pub(crate) fn lost(&self) -> DriveError {
        DriveError::Store(StoreError::Fenced {
            workflow_id: self.lease.workflow_id.clone(),
            fence: self.lease.fence,
        })
    }
}

impl Engine {
    /// Renews the lease in the background until the returned guard drops,
    /// extending `proof` and reporting the stop requests the renewals see.
    pub(crate) fn keep_lease(
        self: &Arc<Self>,
        lease: &Lease,
        proof: &Arc<LeaseProof>,
    ) -> (AbortGuard, watch::Receiver<Option<Interrupt>>) {
        let engine = Arc::clone(self);
        let lease = lease.clone();
        let proof = Arc::clone(proof);
        let every = self.lease_for / 3;
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let sent = Instant::now();
                match engine.store.renew(&lease, engine.lease_for).await {
                    Ok(interrupt) => {
                        proof.extended(sent, engine.lease_for);
                        if interrupt.is_some() {
                            tx.send_replace(interrupt);
                        }
                    }
                    Err(e) => {
                        debug!(workflow_id = %lease.workflow_id, error = %e, "lease renewal failed");
                        // The lease is lost (another worker took the run) or
                        // will be: ending here closes the channel, which
                        // cancels the activity attempt in progress.
                        if !e.is_transient() {
                            return;
                        }
                    }
                }
            }
        });
        (AbortGuard(task), rx)
    }

    /// Makes sure the lease is provably ours for a while before new work
    /// starts: renews it now when the proof is about to run out, and fails
    /// with the lease lost when that renewal is refused or cannot be made.
    /// Returns a stop request the renewal saw.
    pub(crate) async fn prove_lease(
        &self,
        held: &mut Held<'_>,
    ) -> Result<Option<Interrupt>, DriveError> {
        // Renewals that stopped (the lease was refused) prove nothing,
        // whatever the clock says.
        if !held.live || held.interrupts.has_changed().is_err() {
            held.live = false;
            return Err(held.lost());
        }
        if held.proof.holds_for(self.lease_for / 3) {
            return Ok(None);
        }
        let sent = Instant::now();
        match self.store.renew(held.lease, self.lease_for).await {
            Ok(interrupt) => {
                held.proof.extended(sent, self.lease_for);
                Ok(interrupt)
            }
            Err(e) => {
                debug!(workflow_id = %held.lease.workflow_id, error = %e, "cannot prove the lease; starting nothing");
                held.live = false;
                Err(held.lost())
            }
        }
    }
}
