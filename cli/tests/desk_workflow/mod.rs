//! The `desk` workflow the CLI and console tests drive: a booking
//! (compensated by `unbook`, which fails while [`Broken`] is set), a wait
//! for the `go` signal, then `finish` (which fails when `ok` is false).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use steadfast::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum DeskError {
    #[error("{0}")]
    Failed(String),
}

impl From<ActivityError<DeskError>> for DeskError {
    fn from(e: ActivityError<DeskError>) -> Self {
        DeskError::Failed(e.to_string())
    }
}

/// Lets a `desk` run go on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Go {
    pub by: String,
}

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// Whether the booking system refuses cancellations.
#[derive(Clone, Default)]
pub struct Broken(pub Arc<AtomicBool>);

#[activity(retry(max_attempts = 1), compensate = unbook)]
async fn book(_ctx: &ActivityContext, order: String) -> Result<String, DeskError> {
    Ok(format!("booking-{order}"))
}

#[activity(retry(max_attempts = 1))]
async fn unbook(ctx: &ActivityContext, booking: String) -> Result<(), DeskError> {
    if ctx.resource::<Broken>().0.load(Ordering::SeqCst) {
        return Err(DeskError::Failed(format!("cannot cancel {booking}")));
    }
    Ok(())
}

#[activity(retry(max_attempts = 1))]
async fn finish(_ctx: &ActivityContext, order: String, ok: bool) -> Result<String, DeskError> {
    if ok {
        Ok(format!("done-{order}"))
    } else {
        Err(DeskError::Failed(format!("{order} cannot be finished")))
    }
}

/// Books, waits for `Go`, finishes; a failure cancels the booking.
#[workflow]
pub async fn desk(ctx: &mut WorkflowContext, order: String, ok: bool) -> Result<String, DeskError> {
    ctx.set_query("status", "booking");
    let booking = book(order.clone()).await?;
    ctx.set_query("status", "waiting for go");
    let go = ctx.signal::<Go>().await;
    let done = finish(order, ok).await?;
    Ok(format!("{booking} {done} by {}", go.by))
}
