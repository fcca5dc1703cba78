//! The workflows the benchmark runs: the order saga (three activities that
//! return at once, two with compensations) and `steps` (n no-op activities
//! in a loop, a payload stored in every state).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use steadfast::prelude::*;

/// The saga's error.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BenchError(String);

impl From<ActivityError<BenchError>> for BenchError {
    fn from(e: ActivityError<BenchError>) -> Self {
        BenchError(e.to_string())
    }
}

/// Forward activity executions in this process (the scaling check sums
/// them over worker processes: a run driven twice would show as surplus).
pub(crate) static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn executed() {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
}

#[activity(compensate = refund)]
async fn charge_card(order_id: String) -> Result<String, BenchError> {
    executed();
    Ok(order_id)
}

#[activity]
async fn refund(payment: String) -> Result<(), BenchError> {
    let _ = payment;
    Ok(())
}

#[activity(compensate = release_inventory)]
async fn reserve_inventory(order_id: String) -> Result<String, BenchError> {
    executed();
    Ok(order_id)
}

#[activity]
async fn release_inventory(reservation: String) -> Result<(), BenchError> {
    let _ = reservation;
    Ok(())
}

#[activity]
async fn ship(order_id: String) -> Result<String, BenchError> {
    executed();
    Ok(order_id)
}

/// The order saga.
#[workflow(queue = "bench")]
pub(crate) async fn order(order_id: String) -> Result<String, BenchError> {
    let payment = charge_card(order_id.clone()).await?;
    let reservation = reserve_inventory(order_id.clone()).await?;
    let tracking = ship(order_id).await?;
    Ok(format!("{payment}/{reservation}/{tracking}"))
}

#[activity]
async fn noop_step(i: u32) -> Result<u32, BenchError> {
    Ok(i)
}

/// `n` steps, carrying `payload` in every state (for the cost of steps and
/// of state size).
#[workflow(queue = "bench")]
pub(crate) async fn steps(n: u32, payload: String) -> Result<usize, BenchError> {
    for i in 0..n {
        noop_step(i).await?;
    }
    Ok(payload.len())
}

/// Transitions committed per order saga run: start, three activities.
pub(crate) const TRANSITIONS_PER_RUN: u64 = 4;
