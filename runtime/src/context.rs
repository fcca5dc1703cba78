//! What a workflow's code sees of its run.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::workflow::{Signal, Workflow};

/// A durable timer, made by [`WorkflowContext::sleep`]; await it in a workflow.
#[derive(Debug, Clone, Copy)]
#[must_use = "a timer does nothing unless awaited in a #[workflow]"]
pub struct Sleep {
    /// How long to wait.
    pub duration: Duration,
}

/// A wait for signal `S`, made by [`WorkflowContext::signal`] and
/// [`WorkflowContext::signal_within`]; await it in a workflow. `T` is what
/// the await yields: `S`, or `Option<S>` with a timeout.
#[derive(Debug)]
#[must_use = "a signal wait does nothing unless awaited in a #[workflow]"]
pub struct SignalWait<S, T> {
    /// How long to wait, if bounded.
    pub timeout: Option<Duration>,
    _signal: PhantomData<fn() -> (S, T)>,
}

/// A child run to start and wait for, made by [`WorkflowContext::child`];
/// await it in a workflow.
#[derive(Debug)]
#[must_use = "a child run does nothing unless awaited in a #[workflow]"]
pub struct ChildStart<W: Workflow> {
    /// The child's workflow id.
    pub id: String,
    /// Its arguments.
    pub input: W::Input,
}

/// The end of a run that continues as new, made by
/// [`WorkflowContext::continue_as_new`]; await it in a workflow.
#[derive(Debug)]
#[must_use = "continue_as_new does nothing unless awaited in a #[workflow]"]
pub struct ContinueAsNew<I> {
    /// The new run's arguments.
    pub input: I,
}

/// What a workflow's code sees of its run: its id, the time, a
/// deterministic random source.
///
/// Workflow code must not read the wall clock or a random generator
/// directly (`#[workflow]` rejects `SystemTime::now`, `rand::..` and the
/// like): use [`now`](Self::now) and [`random_u64`](Self::random_u64), which
/// follow the runtime's clock (a virtual one in tests).
#[derive(Debug)]
pub struct WorkflowContext {
    workflow_id: String,
    workflow_type: &'static str,
    seq: u64,
    now_ms: u64,
    rng: u64,
    queries: BTreeMap<String, Value>,
    patches: Vec<String>,
}

impl WorkflowContext {
    /// A context for one transition of a run; `now_ms` is the clock at the
    /// start of the transition, in milliseconds since the Unix epoch.
    pub fn new(
        workflow_id: impl Into<String>,
        workflow_type: &'static str,
        seq: u64,
        now_ms: u64,
    ) -> Self {
        let workflow_id = workflow_id.into();
        let rng = seed(&workflow_id, seq);
        Self {
            workflow_id,
            workflow_type,
            seq,
            now_ms,
            rng,
            queries: BTreeMap::new(),
            patches: Vec::new(),
        }
    }

    /// The run's query values as checkpointed, and the patches its code
    /// knew when it started.
    pub fn with_run_data(mut self, queries: BTreeMap<String, Value>, patches: Vec<String>) -> Self {
        self.queries = queries;
        self.patches = patches;
        self
    }

    /// The query values after the transition, to checkpoint.
    pub fn into_queries(self) -> BTreeMap<String, Value> {
        self.queries
    }

    /// Sets a value that clients can read by name, with the run's next
    /// checkpoint (`RunHandle::query`), even when no worker runs; in Redis it
    /// is the hash field `query:<name>`.
    ///
    /// # Panics
    /// When the value does not serialize to JSON (a bug in its `Serialize`).
    pub fn set_query<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        match serde_json::to_value(value) {
            Ok(v) => {
                self.queries.insert(name.to_owned(), v);
            }
            Err(e) => panic!("query `{name}` does not serialize to JSON: {e}"),
        }
    }

    /// Whether the run started on code that knew patch `name`: new code
    /// branches with `if ctx.patched("new-step") { .. }`, and runs started
    /// before the patch existed take the old path. See `docs/versioning.md`.
    pub fn patched(&self, name: &str) -> bool {
        self.patches.iter().any(|p| p == name)
    }

    /// A durable timer: `ctx.sleep(Duration::from_secs(7 * 86_400)).await`
    /// resumes the workflow after seven days, whatever happens to workers
    /// meanwhile. Only meaningful awaited in a `#[workflow]`.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep { duration }
    }

    /// Waits for signal `S`: `ctx.signal::<Cancel>().await` yields the
    /// signal, however long it takes to come.
    pub fn signal<S: Signal>(&self) -> SignalWait<S, S> {
        SignalWait {
            timeout: None,
            _signal: PhantomData,
        }
    }

    /// Waits for signal `S` for at most `timeout`:
    /// `ctx.signal_within::<Cancel>(Duration::from_secs(30)).await` yields
    /// `Some(signal)`, or `None` when the time passed first.
    pub fn signal_within<S: Signal>(&self, timeout: Duration) -> SignalWait<S, Option<S>> {
        SignalWait {
            timeout: Some(timeout),
            _signal: PhantomData,
        }
    }

    /// Starts a child run of `W` with workflow id `id` (unless one exists)
    /// and waits for it: `ctx.child::<shipment>(id, input).await` yields
    /// `Result<W::Output, ChildError<W::Error>>`. Cancelling the parent
    /// cancels the child.
    pub fn child<W: Workflow>(&self, id: impl Into<String>, input: W::Input) -> ChildStart<W> {
        ChildStart {
            id: id.into(),
            input,
        }
    }

    /// Ends this run and starts it again with `input`, under the same id,
    /// with a fresh history: `return ctx.continue_as_new(input).await;` in a
    /// long-running loop keeps its checkpoints small.
    pub fn continue_as_new<I>(&self, input: I) -> ContinueAsNew<I> {
        ContinueAsNew { input }
    }

    /// The workflow's id (its idempotency key).
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The workflow's registered name.
    pub fn workflow_type(&self) -> &'static str {
        self.workflow_type
    }

    /// How many transitions of this run were checkpointed before this one.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The time at which this transition started, on the runtime's clock.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms)
    }

    /// [`now`](Self::now) in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// A pseudo-random number, the same for the same workflow id, transition
    /// and call order (so a transition that runs again after a crash draws
    /// the same numbers).
    pub fn random_u64(&mut self) -> u64 {
        // splitmix64: small, fast, and good enough for ids and jitter.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn seed(id: &str, seq: u64) -> u64 {
    // FNV-1a over the id, mixed with the sequence number.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_repeatable_per_id_and_seq() {
        let mut a = WorkflowContext::new("order-1", "order", 3, 0);
        let mut b = WorkflowContext::new("order-1", "order", 3, 0);
        let mut c = WorkflowContext::new("order-1", "order", 4, 0);
        let (a1, a2) = (a.random_u64(), a.random_u64());
        assert_eq!((a1, a2), (b.random_u64(), b.random_u64()));
        assert_ne!(a1, a2);
        assert_ne!(a1, c.random_u64());
    }

    #[test]
    fn now_follows_the_given_clock() {
        let ctx = WorkflowContext::new("w", "t", 0, 1_500);
        assert_eq!(ctx.now(), UNIX_EPOCH + Duration::from_millis(1_500));
    }
}
