//! Workflows and activities used by the integration tests.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::WorkerBuilder;
use steadfast::prelude::*;

use super::Journal;

/// The error of the test activities and workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum TestError {
    #[error("{0}")]
    Failed(String),
    #[error("permanent: {0}")]
    Permanent(String),
    #[error("step failed: {0}")]
    Step(String),
}

impl TestError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, TestError::Permanent(_))
    }
}

impl From<ActivityError<TestError>> for TestError {
    fn from(e: ActivityError<TestError>) -> Self {
        TestError::Step(e.to_string())
    }
}

/// Registers every workflow below.
pub fn register(b: WorkerBuilder) -> WorkerBuilder {
    b.register::<branchy>()
        .register::<hoisting>()
        .register::<saga>()
        .register::<outcomes>()
        .register::<retrying>()
        .register::<slow>()
        .register::<panicky>()
        .register::<shadowing_ok>()
        .register::<nested_loops>()
        .register::<deferred_init>()
}

// ----- activities -----------------------------------------------------------

/// Adds two numbers, and records the call.
#[activity(retry(max_attempts = 1))]
pub async fn add(ctx: &ActivityContext, a: u64, b: u64) -> Result<u64, TestError> {
    ctx.resource::<Journal>().record(format!("add {a} {b}"));
    Ok(a + b)
}

/// Records a note (a side effect without a result).
#[activity(retry(max_attempts = 1))]
pub async fn note(ctx: &ActivityContext, text: String) -> Result<(), TestError> {
    ctx.resource::<Journal>().record(format!("note {text}"));
    Ok(())
}

/// Does a step that can be undone by `undo`.
#[activity(retry(max_attempts = 1), compensate = undo)]
pub async fn reserve(ctx: &ActivityContext, name: String) -> Result<String, TestError> {
    ctx.resource::<Journal>().record(format!("reserve {name}"));
    Ok(format!("r-{name}"))
}

/// Undoes a `reserve`.
#[activity(retry(max_attempts = 2, initial_interval = "10ms"))]
pub async fn undo(ctx: &ActivityContext, reservation: String) -> Result<(), TestError> {
    let journal = ctx.resource::<Journal>();
    journal.record(format!("undo {reservation}"));
    if reservation.contains("sticky") {
        journal.record(format!(
            "key of undo {reservation}: {}",
            ctx.idempotency_key()
        ));
        return Err(TestError::Failed(format!("cannot undo {reservation}")));
    }
    Ok(())
}

/// Books something whose compensation takes the booking and an argument.
#[activity(retry(max_attempts = 1), compensate = cancel_booking(output, guest))]
pub async fn book(ctx: &ActivityContext, guest: String, nights: u32) -> Result<u64, TestError> {
    ctx.resource::<Journal>()
        .record(format!("book {guest} {nights}"));
    Ok(u64::from(nights) * 100)
}

/// Cancels a booking.
#[activity(retry(max_attempts = 1))]
pub async fn cancel_booking(
    ctx: &ActivityContext,
    price: u64,
    guest: String,
) -> Result<(), TestError> {
    ctx.resource::<Journal>()
        .record(format!("cancel {guest} {price}"));
    Ok(())
}

/// Fails with the given message.
#[activity(retry(max_attempts = 1))]
pub async fn fail(ctx: &ActivityContext, why: String) -> Result<u64, TestError> {
    ctx.resource::<Journal>().record(format!("fail {why}"));
    Err(TestError::Failed(why))
}

/// Fails its first `failures` attempts, then succeeds with the attempt
/// number (deterministic per attempt, so a re-run attempt fails the same way).
#[activity(retry(max_attempts = 3, initial_interval = "5ms", backoff = 2.0, non_retryable = TestError::is_permanent))]
pub async fn flaky(
    ctx: &ActivityContext,
    failures: u32,
    permanent: bool,
) -> Result<u32, TestError> {
    ctx.resource::<Journal>()
        .record(format!("flaky attempt {}", ctx.attempt()));
    if ctx.attempt() <= failures {
        let msg = format!("failure {}", ctx.attempt());
        return Err(if permanent {
            TestError::Permanent(msg)
        } else {
            TestError::Failed(msg)
        });
    }
    Ok(ctx.attempt())
}

/// Sleeps, honouring nothing but cancellation.
#[activity(timeout = "50ms", retry(max_attempts = 2, initial_interval = "5ms"))]
pub async fn sleepy(ctx: &ActivityContext, millis: u64) -> Result<(), TestError> {
    let journal = ctx.resource::<Journal>().clone();
    journal.record(format!("sleepy start {}", ctx.attempt()));
    tokio::time::sleep(Duration::from_millis(millis)).await;
    journal.record("sleepy end");
    Ok(())
}

/// Panics.
#[activity(retry(max_attempts = 2, initial_interval = "5ms"))]
pub async fn boom(ctx: &ActivityContext, message: String) -> Result<(), TestError> {
    ctx.resource::<Journal>().record("boom");
    panic!("{message}");
}

// ----- workflows ------------------------------------------------------------

/// Branches, `match`, `while`, `for` over a range and a vector, a `loop`
/// with valued breaks, `continue`, early return and hoisted awaits.
#[workflow]
pub async fn branchy(ctx: &mut WorkflowContext, n: u64) -> Result<u64, TestError> {
    let _ = ctx.workflow_id();
    let mut total: u64 = 0;
    if n % 2 == 0 {
        total = add(total, 10).await?;
    } else {
        let x = add(1, 2).await?;
        total += x;
    }
    match n {
        0 => return Ok(total),
        1..=3 => {
            total = add(total, 100).await?;
        }
        _ => {}
    }
    let mut i: u64 = 0;
    while i < n {
        total = add(total, i).await?;
        i += 1;
        if total > 1000 {
            break;
        }
    }
    for k in 0..n {
        if k == 2 {
            continue;
        }
        total = add(total, k * 1000).await?;
    }
    let items: Vec<u64> = vec![1, 2, 3];
    for item in items {
        total = add(total, item).await?;
    }
    let label = loop {
        total = add(total, 1).await?;
        if total.is_multiple_of(3) {
            break "three";
        }
        if total.is_multiple_of(5) {
            break "five";
        }
    };
    let bonus: u64 = if label == "three" {
        add(0, 7).await?
    } else {
        5
    };
    Ok(total + bonus + add(add(1, 1).await?, 1).await?)
}

/// The same computation as `branchy`, without activities.
pub fn branchy_expected(n: u64) -> u64 {
    let mut total: u64 = 0;
    if n.is_multiple_of(2) {
        total += 10;
    } else {
        total += 3;
    }
    match n {
        0 => return total,
        1..=3 => total += 100,
        _ => {}
    }
    let mut i = 0;
    while i < n {
        total += i;
        i += 1;
        if total > 1000 {
            break;
        }
    }
    for k in 0..n {
        if k == 2 {
            continue;
        }
        total += k * 1000;
    }
    for item in [1, 2, 3] {
        total += item;
    }
    let label = loop {
        total += 1;
        if total.is_multiple_of(3) {
            break "three";
        }
        if total.is_multiple_of(5) {
            break "five";
        }
    };
    let bonus: u64 = if label == "three" { 7 } else { 5 };
    total + bonus + 3
}

/// Awaits inside larger expressions, evaluated in written order.
#[workflow]
pub async fn hoisting(a: u64, b: u64) -> Result<Vec<u64>, TestError> {
    let sum: u64 = add(a, 1).await? + add(b, 1).await?;
    let pair = [add(sum, 10).await?, add(sum, 20).await?];
    let mut out: Vec<u64> = Vec::new();
    out.push(add(pair[0], pair[1]).await?);
    if add(0, 0).await? == 0 {
        out.push(sum);
    }
    let chosen = match add(a, b).await? {
        0 => 0,
        s => add(s, s).await?,
    };
    out.push(chosen);
    Ok(out)
}

/// A saga: reservations compensated newest first when a later step fails.
#[workflow]
pub async fn saga(
    ctx: &mut WorkflowContext,
    names: Vec<String>,
    fail_at_end: bool,
) -> Result<Vec<String>, TestError> {
    let _ = ctx.seq();
    let mut done: Vec<String> = Vec::new();
    for name in names {
        let r = reserve(name).await?;
        done.push(r);
    }
    let price = book("ada".to_owned(), 2).await?;
    note(format!("booked for {price}")).await?;
    if fail_at_end {
        fail("the last step".to_owned()).await?;
    }
    Ok(done)
}

/// Awaits without `?`: the workflow sees activity errors as values.
#[workflow]
pub async fn outcomes(fail_first: bool) -> Result<String, TestError> {
    let first = if fail_first {
        fail("first".to_owned()).await
    } else {
        add(1, 1).await
    };
    let text: String = match first {
        Ok(v) => format!("ok {v}"),
        Err(e) => format!(
            "err after {} attempt(s): {}",
            e.attempts,
            e.error().map(ToString::to_string).unwrap_or_default()
        ),
    };
    note(text.clone()).await?;
    if let Err(e) = fail("second".to_owned()).await {
        return Ok(format!("{text}; then {}", e.cause));
    }
    Ok(text)
}

/// Calls `flaky` with the given behaviour.
#[workflow]
pub async fn retrying(failures: u32, permanent: bool) -> Result<u32, TestError> {
    let attempt = flaky(failures, permanent).await?;
    Ok(attempt)
}

/// Calls `sleepy`.
#[workflow]
pub async fn slow(millis: u64) -> Result<(), TestError> {
    sleepy(millis).await?;
    Ok(())
}

/// Calls `boom`, or panics in its own code.
#[workflow]
pub async fn panicky(in_workflow: bool) -> Result<(), TestError> {
    if in_workflow {
        note("before".to_owned()).await?;
        let v: Vec<u32> = Vec::new();
        let _ = v[3];
    }
    boom("kaboom".to_owned()).await?;
    Ok(())
}

/// Shadowing that is fine: the shadowed local is dead by then.
#[workflow]
pub async fn shadowing_ok(x: u64) -> Result<u64, TestError> {
    let x = add(x, 1).await?;
    let x = x * 2;
    let y = {
        let x = 5;
        x + 1
    };
    let x = add(x, y).await?;
    Ok(x)
}

/// Labeled loops, `break 'outer` and `continue 'outer` across awaits.
#[workflow]
pub async fn nested_loops(rows: u64, cols: u64) -> Result<Vec<String>, TestError> {
    let mut seen: Vec<String> = Vec::new();
    let mut r: u64 = 0;
    'outer: loop {
        if r == rows {
            break;
        }
        r += 1;
        let mut c: u64 = 0;
        loop {
            c += 1;
            if c > cols {
                continue 'outer;
            }
            let v = add(r * 10, c).await?;
            if v == 23 {
                seen.push("stop".to_owned());
                break 'outer;
            }
            seen.push(v.to_string());
        }
    }
    Ok(seen)
}

/// A local declared without a value and set by each branch.
#[workflow]
pub async fn deferred_init(flag: bool) -> Result<String, TestError> {
    let out: String;
    if flag {
        let v = add(2, 3).await?;
        out = format!("yes {v}");
    } else {
        out = "no".to_owned();
    }
    note(out.clone()).await?;
    Ok(out)
}
