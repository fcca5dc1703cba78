//! Workflows that wait: timers, signals, queries, children, continue-as-new,
//! activity task queues, and two versions of one workflow.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::WorkerBuilder;
use steadfast::prelude::*;

use super::Journal;
use super::workflows::{TestError, note, reserve};

/// Registers every workflow below except the versioned twins (a worker runs
/// one version of a workflow).
pub fn register(b: WorkerBuilder) -> WorkerBuilder {
    b.register::<reminder>()
        .register::<approval>()
        .register::<collector>()
        .register::<guarded>()
        .register::<countdown>()
        .register::<parent>()
        .register::<rendering>()
        .register::<report>()
        .register::<dozer>()
        .register::<long_call>()
}

const DAY: Duration = Duration::from_secs(86_400);

// ----- signals ----------------------------------------------------------------

/// A decision on an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub by: String,
}

impl Signal for Decision {
    const NAME: &'static str = "decision";
}

/// One item for `collector`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item(pub u32);

impl Signal for Item {
    const NAME: &'static str = "item";
}

/// Lets `guarded` go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proceed;

impl Signal for Proceed {
    const NAME: &'static str = "proceed";
}

// ----- activities ---------------------------------------------------------------

/// Sleeps for `millis` (cancellable: the engine drops it when the run is
/// cancelled), recording start and end.
#[activity(retry(max_attempts = 1), timeout = "1h")]
pub async fn nap(ctx: &ActivityContext, millis: u64) -> Result<(), TestError> {
    let journal = ctx.resource::<Journal>();
    journal.record(format!("nap {millis} started"));
    tokio::time::sleep(Duration::from_millis(millis)).await;
    journal.record(format!("nap {millis} finished"));
    Ok(())
}

/// Runs only on workers of queue `gpu`; records the worker's tag.
#[activity(queue = "gpu", retry(max_attempts = 1))]
pub async fn render(ctx: &ActivityContext, frame: u32) -> Result<String, TestError> {
    let tag = ctx.resource::<WorkerTag>().0.clone();
    ctx.resource::<Journal>()
        .record(format!("render {frame} on {tag}"));
    Ok(format!("frame {frame} by {tag}"))
}

/// Which worker an activity ran on.
#[derive(Clone, Debug)]
pub struct WorkerTag(pub String);

// ----- workflows -------------------------------------------------------------------

/// Waits seven days, then reminds.
#[workflow]
pub async fn reminder(ctx: &mut WorkflowContext, user: String) -> Result<String, TestError> {
    note(format!("scheduled {user}")).await?;
    ctx.set_query("status", "sleeping");
    ctx.sleep(7 * DAY).await;
    ctx.set_query("status", "reminded");
    note(format!("remind {user}")).await?;
    Ok(format!("reminded {user}"))
}

/// Waits up to an hour for a decision.
#[workflow]
pub async fn approval(ctx: &mut WorkflowContext, order: String) -> Result<String, TestError> {
    ctx.set_query("status", "awaiting approval");
    let decision = ctx
        .signal_within::<Decision>(Duration::from_secs(3600))
        .await;
    let verdict: String = match decision {
        Some(d) if d.approved => format!("{order} approved by {}", d.by),
        Some(d) => format!("{order} rejected by {}", d.by),
        None => format!("{order} expired"),
    };
    ctx.set_query("status", &verdict);
    note(verdict.clone()).await?;
    Ok(verdict)
}

/// Collects `n` items, in the order they were sent.
#[workflow]
pub async fn collector(ctx: &mut WorkflowContext, n: u32) -> Result<Vec<u32>, TestError> {
    let mut items: Vec<u32> = Vec::new();
    while (items.len() as u32) < n {
        let item = ctx.signal::<Item>().await;
        items.push(item.0);
        ctx.set_query("count", &items.len());
    }
    Ok(items)
}

/// Reserves, then waits for `Proceed` before a (long) nap: cancel it while
/// it waits or naps.
#[workflow]
pub async fn guarded(
    ctx: &mut WorkflowContext,
    name: String,
    nap_ms: u64,
) -> Result<String, TestError> {
    let reservation = reserve(name.clone()).await?;
    ctx.signal::<Proceed>().await;
    nap(nap_ms).await?;
    note(format!("proceeded {name}")).await?;
    Ok(reservation)
}

/// Counts down to zero, one run generation per number.
#[workflow]
pub async fn countdown(ctx: &mut WorkflowContext, n: u32, total: u64) -> Result<u64, TestError> {
    note(format!("tick {n}")).await?;
    if n == 0 {
        return Ok(total);
    }
    let next = n - 1;
    ctx.continue_as_new((next, total + u64::from(n))).await
}

/// Ships an order in a child run, and releases the reservation when the
/// child fails.
#[workflow]
pub async fn parent(
    ctx: &mut WorkflowContext,
    order: String,
    child_nap_ms: u64,
) -> Result<String, TestError> {
    reserve(order.clone()).await?;
    let shipped = ctx
        .child::<guarded>(
            format!("{}/ship", ctx.workflow_id()),
            (order.clone(), child_nap_ms),
        )
        .await;
    match shipped {
        Ok(r) => Ok(format!("{order} shipped with {r}")),
        Err(e) => Err(TestError::Step(format!("shipping failed: {e}"))),
    }
}

/// Renders two frames on the `gpu` queue.
#[workflow]
pub async fn rendering(frames: u32) -> Result<Vec<String>, TestError> {
    let mut out: Vec<String> = Vec::new();
    for frame in 0..frames {
        let r = render(frame).await?;
        out.push(r);
    }
    note(format!("rendered {frames}")).await?;
    Ok(out)
}

/// One activity that outlasts the worker's lease several times over.
#[workflow]
pub async fn long_call(millis: u64) -> Result<(), TestError> {
    nap(millis).await?;
    Ok(())
}

/// The weekly report a schedule starts.
#[workflow]
pub async fn report(ctx: &mut WorkflowContext, team: String) -> Result<String, TestError> {
    let at = ctx.now_ms();
    note(format!("report {team} at {at}")).await?;
    Ok(format!("report {team}"))
}

/// Short waits for crash tests: a timer, then a signal wait that times out,
/// between two activities.
#[workflow]
pub async fn dozer(ctx: &mut WorkflowContext, name: String) -> Result<String, TestError> {
    let reservation = reserve(name.clone()).await?;
    ctx.set_query("status", "dozing");
    ctx.sleep(Duration::from_millis(40)).await;
    let nudge = ctx.signal_within::<Item>(Duration::from_millis(40)).await;
    note(format!("{name} woke, nudged: {}", nudge.is_some())).await?;
    ctx.set_query("status", "awake");
    Ok(reservation)
}

// ----- two versions of one workflow -------------------------------------------------

/// Version 1 of `greeting`.
#[workflow(name = "greeting")]
pub async fn greeting_v1(ctx: &mut WorkflowContext, who: String) -> Result<String, TestError> {
    note(format!("hello {who}")).await?;
    ctx.signal::<Proceed>().await;
    note(format!("bye {who}")).await?;
    Ok(format!("v1 {who}"))
}

/// Version 2 of `greeting`: adds an audit step for runs it starts, and
/// leaves runs started by version 1 on their old path.
#[workflow(name = "greeting")]
pub async fn greeting_v2(ctx: &mut WorkflowContext, who: String) -> Result<String, TestError> {
    note(format!("hello {who}")).await?;
    ctx.signal::<Proceed>().await;
    if ctx.patched("audit") {
        note(format!("audit {who}")).await?;
    }
    note(format!("bye {who}")).await?;
    Ok(format!("v2 {who}"))
}

/// Version 3 of `greeting`: keeps a new local across the wait, so its
/// waiting state has another layout; runs checkpointed there by earlier
/// versions cannot be read by it.
#[workflow(name = "greeting")]
pub async fn greeting_v3(ctx: &mut WorkflowContext, who: String) -> Result<String, TestError> {
    let greeted: u64 = ctx.now_ms();
    note(format!("hello {who}")).await?;
    ctx.signal::<Proceed>().await;
    note(format!("bye {who} greeted at {greeted}")).await?;
    Ok(format!("v3 {who}"))
}
