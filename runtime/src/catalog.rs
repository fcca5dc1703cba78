//! What workers run, written where tools that do not link the workflows'
//! code can read it.
//!
//! On start, a worker writes one [`CatalogEntry`] per registered workflow
//! type to its store ([`AdminStore::register_workflow`]): the state graph
//! (states and edges, compensation edges included), each state's
//! fingerprint, the patches the code knows. The `steadfast` command and the
//! console read them back ([`AdminStore::catalog`]) to draw a run's
//! diagram. On Redis the catalog is one hash, `<prefix>catalog`, a JSON
//! value per workflow type (see `docs/redis-layout.md`).
//!
//! [`AdminStore::register_workflow`]: crate::AdminStore::register_workflow
//! [`AdminStore::catalog`]: crate::AdminStore::catalog

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::registry::Registry;
use crate::workflow::WorkflowInfo;

/// The largest catalog entry a worker writes, as JSON: a workflow whose
/// graph is larger is not registered (the worker logs a warning and runs
/// it all the same). Bounds what one entry costs Redis and the tools that
/// read every entry.
pub const MAX_ENTRY_BYTES: usize = 256 << 10;

/// One workflow type as a worker registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CatalogEntry {
    /// The workflow's registered name.
    pub workflow: String,
    /// The version of steadfast the registering worker runs.
    pub version: String,
    /// A hash of every state's fingerprint and the patches the code knows:
    /// two workers with the same fingerprint read each other's checkpoints
    /// as they are.
    pub fingerprint: String,
    /// The task queue its runs go to unless started with another.
    pub queue: String,
    /// The patch names the code knows (`ctx.patched("..")`).
    pub patches: Vec<String>,
    /// Every persisted state, `start` first.
    pub states: Vec<CatalogState>,
    /// The transitions between states, and to the ends.
    pub edges: Vec<CatalogEdge>,
    /// When the entry was written, in ms since the Unix epoch.
    pub registered_at_ms: u64,
    /// The id of the worker that wrote it.
    pub worker: String,
}

/// One persisted state of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CatalogState {
    /// The stable name (`charge_card#0`).
    pub name: String,
    /// What the state waits for (`activity charge_card`, `timer`, ...).
    pub waits_for: String,
    /// The fingerprint of the state's layout.
    pub fingerprint: String,
    /// Whether the activity it waits for declares a compensation: once it
    /// succeeded, the run owes that compensation.
    pub compensable: bool,
}

/// What an edge of the graph stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EdgeKind {
    /// The workflow goes on from one state to the next.
    Next,
    /// The workflow returns `Ok` (the edge goes to [`COMPLETED`]).
    Completes,
    /// The workflow returns `Err` (to [`FAILED`]); its compensations run.
    Fails,
    /// The workflow continues as new (to [`CONTINUED`]).
    Continues,
    /// A compensation: the state's activity is undone when the run
    /// unwinds (to [`COMPENSATING`]).
    Compensation,
}

/// One edge of a workflow's graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CatalogEdge {
    /// The state it leaves.
    pub from: String,
    /// The state it enters, or one of the ends ([`COMPLETED`], [`FAILED`],
    /// [`CONTINUED`], [`COMPENSATING`]).
    pub to: String,
    /// What it stands for.
    pub kind: EdgeKind,
}

/// The end a workflow that returned `Ok` goes to.
pub const COMPLETED: &str = "(completed)";
/// The end a workflow that returned `Err` goes to.
pub const FAILED: &str = "(failed)";
/// The end a workflow that continued as new goes to.
pub const CONTINUED: &str = "(continued)";
/// Where compensation edges go: the run unwinds, newest compensation first.
pub const COMPENSATING: &str = "(compensating)";

/// Why a catalog entry could not be built or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The entry is over [`MAX_ENTRY_BYTES`]: the workflow is not
    /// registered; split it into child workflows to draw it.
    #[error(
        "the catalog entry of `{workflow}` is {bytes} bytes, over the limit of {max}; \
         it is not registered (its runs still run)"
    )]
    TooLarge {
        /// The workflow.
        workflow: String,
        /// The entry's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A stored entry does not read as JSON of this version.
    #[error(
        "the catalog entry of `{workflow}` does not read: {reason}; \
         a worker of this version rewrites it when it starts"
    )]
    Unreadable {
        /// The workflow.
        workflow: String,
        /// What is wrong.
        reason: String,
    },
}

impl CatalogEntry {
    /// The entry of a workflow as `registry` knows it (whose activities
    /// say which states are compensable), written by `worker` at `now_ms`.
    pub(crate) fn of(info: &WorkflowInfo, registry: &Registry, worker: &str, now_ms: u64) -> Self {
        let states: Vec<CatalogState> = info
            .states
            .iter()
            .map(|s| CatalogState {
                name: s.name.to_owned(),
                waits_for: s.waits_for.to_owned(),
                fingerprint: s.fingerprint.to_owned(),
                compensable: s
                    .waits_for
                    .strip_prefix("activity ")
                    .is_some_and(|a| registry.has_compensation(a)),
            })
            .collect();
        let mut edges = edges_of(info.mermaid);
        for s in states.iter().filter(|s| s.compensable) {
            edges.push(CatalogEdge {
                from: s.name.clone(),
                to: COMPENSATING.to_owned(),
                kind: EdgeKind::Compensation,
            });
        }
        let patches: Vec<String> = info.patches.iter().map(|p| (*p).to_owned()).collect();
        CatalogEntry {
            workflow: info.name.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            fingerprint: fingerprint(&states, &patches),
            queue: info.queue.to_owned(),
            patches,
            states,
            edges,
            registered_at_ms: now_ms,
            worker: worker.to_owned(),
        }
    }

    /// The entry as stored: JSON, refused over [`MAX_ENTRY_BYTES`].
    pub fn to_json(&self) -> Result<String, CatalogError> {
        let json = serde_json::to_string(self).map_err(|e| CatalogError::Unreadable {
            workflow: self.workflow.clone(),
            reason: e.to_string(),
        })?;
        if json.len() > MAX_ENTRY_BYTES {
            return Err(CatalogError::TooLarge {
                workflow: self.workflow.clone(),
                bytes: json.len(),
                max: MAX_ENTRY_BYTES,
            });
        }
        Ok(json)
    }

    /// Reads a stored entry of `workflow`.
    pub fn from_json(workflow: &str, json: &str) -> Result<Self, CatalogError> {
        serde_json::from_str(json).map_err(|e| CatalogError::Unreadable {
            workflow: workflow.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&CatalogState> {
        self.states.iter().find(|s| s.name == name)
    }
}

/// The edges of the macro's Mermaid graph: `state "name" as id` lines name
/// the nodes, `a --> b` lines are the edges.
fn edges_of(mermaid: &str) -> Vec<CatalogEdge> {
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut edges = Vec::new();
    for line in mermaid.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("state \"")
            && let Some((name, id)) = rest.split_once("\" as ")
        {
            names.insert(id.trim(), name);
        }
    }
    for line in mermaid.lines().map(str::trim) {
        let Some((from, to)) = line.split_once(" --> ") else {
            continue;
        };
        // `failed: error`: the label follows the target.
        let to = to.split(':').next().unwrap_or(to).trim();
        let (Some(from), false) = (names.get(from.trim()), from.trim() == "[*]") else {
            continue;
        };
        let (to, kind) = match to {
            "completed" => (COMPLETED.to_owned(), EdgeKind::Completes),
            "failed" => (FAILED.to_owned(), EdgeKind::Fails),
            "continued" => (CONTINUED.to_owned(), EdgeKind::Continues),
            "[*]" => continue,
            id => match names.get(id) {
                Some(name) => ((*name).to_owned(), EdgeKind::Next),
                None => continue,
            },
        };
        // The end nodes (`completed`, `failed`, ...) are named too; their
        // own edges lead to `[*]` and were skipped above.
        if matches!(*from, "completed" | "continued as new: start again")
            || from.starts_with("failed: ")
        {
            continue;
        }
        edges.push(CatalogEdge {
            from: (*from).to_owned(),
            to,
            kind,
        });
    }
    edges
}

/// FNV-1a over the states' names and fingerprints and the patches.
fn fingerprint(states: &[CatalogState], patches: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.as_bytes().iter().chain([&0xffu8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for s in states {
        feed(&s.name);
        feed(&s.fingerprint);
    }
    for p in patches {
        feed(p);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = "stateDiagram-v2
    state \"start\" as s_start
    state \"charge#0\" as s_charge_0
    state \"completed\" as completed
    state \"failed: compensations run, newest first\" as failed
    [*] --> s_start
    s_start --> s_charge_0
    s_charge_0 --> completed
    s_charge_0 --> failed: error
    completed --> [*]
    failed --> [*]";

    #[test]
    fn edges_come_from_the_macro_graph() {
        let edges = edges_of(GRAPH);
        let pairs: Vec<(&str, &str, EdgeKind)> = edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.kind))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("start", "charge#0", EdgeKind::Next),
                ("charge#0", COMPLETED, EdgeKind::Completes),
                ("charge#0", FAILED, EdgeKind::Fails),
            ]
        );
    }

    #[test]
    fn an_oversized_entry_is_refused() {
        let entry = CatalogEntry {
            workflow: "big".into(),
            version: "0".into(),
            fingerprint: "0".into(),
            queue: "q".into(),
            patches: vec!["p".repeat(MAX_ENTRY_BYTES)],
            states: Vec::new(),
            edges: Vec::new(),
            registered_at_ms: 0,
            worker: "w".into(),
        };
        assert!(matches!(
            entry.to_json(),
            Err(CatalogError::TooLarge { .. })
        ));
    }
}
