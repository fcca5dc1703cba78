//! The pre-deploy check: before rolling new code out, ask it which of the
//! runs in flight it will resume as they are, migrate, or park — and why.
//!
//! Run it from the new build, with the registry its workers will have (a
//! `check` subcommand of your worker binary, say; `examples/order_saga.rs`
//! shows one with `--check`), against the store the old build's workers
//! use. It reads every run that has not settled (and those parked for an
//! operator, as they would be on resume), decodes each one's state with
//! the new code, looks for a migration where it does not decode, and
//! checks that the activities and compensations it needs next are
//! registered. Nothing is written.
//!
//! ```no_run
//! # use steadfast_runtime::{check, MemoryStore, Registry};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::new();
//! // registry.workflow::<order>();
//! let store = MemoryStore::new();
//! let report = check::check(&registry, &store).await?;
//! print!("{report}");
//! if !report.passes() {
//!     std::process::exit(1); // block the rollout
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::core::{Phase, RunRecord, Work};
use crate::registry::{Registry, StateCheck};
use crate::store::{RunList, Store, StoreError};

/// What the new code will do with a run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// It resumes the run as it is.
    Resume,
    /// It migrates the run's state first.
    Migrate {
        /// The migration that applies.
        migration: String,
    },
    /// It parks the run: it cannot go on with this code.
    Park {
        /// Why.
        reason: String,
    },
}

/// Runs that share a workflow type, a state, its layout and a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Group {
    /// The workflow type.
    pub workflow: String,
    /// The state the runs are in (empty: no state, e.g. compensating).
    pub step: String,
    /// The layout fingerprint they were checkpointed with.
    pub fingerprint: String,
    /// Whether they are parked now (the verdict is for their resume).
    pub parked: bool,
    /// What the new code does with them.
    pub verdict: Verdict,
    /// How many runs.
    pub runs: usize,
    /// A few of their ids.
    pub examples: Vec<String>,
}

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The runs checked, grouped.
    pub groups: Vec<Group>,
}

impl Report {
    /// How many runs the new code would park.
    pub fn would_park(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Park { .. }))
    }

    /// How many runs the new code would migrate.
    pub fn would_migrate(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Migrate { .. }))
    }

    /// How many runs it resumes as they are.
    pub fn would_resume(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Resume))
    }

    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.groups
            .iter()
            .filter(|g| f(&g.verdict))
            .map(|g| g.runs)
            .sum()
    }

    /// Whether the rollout is safe: no run would park.
    pub fn passes(&self) -> bool {
        self.would_park() == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} run(s) checked: {} resume as they are, {} migrate, {} would park",
            self.would_resume() + self.would_migrate() + self.would_park(),
            self.would_resume(),
            self.would_migrate(),
            self.would_park()
        )?;
        for g in &self.groups {
            let state = if g.step.is_empty() {
                "(no state)".to_owned()
            } else {
                format!("{} [{}]", g.step, g.fingerprint)
            };
            let parked = if g.parked { " (parked now)" } else { "" };
            let verdict = match &g.verdict {
                Verdict::Resume => "resume".to_owned(),
                Verdict::Migrate { migration } => format!("migrate with `{migration}`"),
                Verdict::Park { reason } => format!("PARK: {reason}"),
            };
            writeln!(
                f,
                "  {} {state}{parked}: {} run(s) -> {verdict}   e.g. {}",
                g.workflow,
                g.runs,
                g.examples.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Why the check could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The store cannot list runs.
    #[error("this store cannot list its runs (it has no administration side)")]
    NoAdmin,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many example ids a group keeps.
const EXAMPLES: usize = 5;

/// Checks every run that has not settled, and every parked one, against
/// the code in `registry`. Writes nothing.
pub async fn check(registry: &Registry, store: &dyn Store) -> Result<Report, CheckError> {
    let admin = store.admin().ok_or(CheckError::NoAdmin)?;
    let mut ids = admin.list_runs(RunList::Active, usize::MAX).await?;
    ids.extend(admin.list_runs(RunList::Attention, usize::MAX).await?);
    let mut groups: BTreeMap<(String, String, String, bool, Verdict), Group> = BTreeMap::new();
    for id in ids {
        let (workflow, step, fingerprint, parked, verdict) = match store.load(&id).await {
            Ok(Some(record)) => classify(registry, &record),
            Ok(None) => continue,
            Err(StoreError::Corrupt { reason, .. }) => (
                "?".to_owned(),
                String::new(),
                String::new(),
                false,
                Verdict::Park {
                    reason: format!("the record does not read: {reason}"),
                },
            ),
            Err(e) => return Err(e.into()),
        };
        let key = (
            workflow.clone(),
            step.clone(),
            fingerprint.clone(),
            parked,
            verdict.clone(),
        );
        let group = groups.entry(key).or_insert_with(|| Group {
            workflow,
            step,
            fingerprint,
            parked,
            verdict,
            runs: 0,
            examples: Vec::new(),
        });
        group.runs += 1;
        if group.examples.len() < EXAMPLES {
            group.examples.push(id);
        }
    }
    Ok(Report {
        groups: groups.into_values().collect(),
    })
}

/// What the code in `registry` does with one run: (workflow, step,
/// fingerprint, parked now, verdict).
fn classify(registry: &Registry, record: &RunRecord) -> (String, String, String, bool, Verdict) {
    let (phase, parked) = match &record.phase {
        Phase::Parked {
            resume_to: Some(p), ..
        } => (p.as_ref(), true),
        other => (other, false),
    };
    let state = phase.state();
    let step = state.map(|s| s.step.clone()).unwrap_or_default();
    let fingerprint = state.map(|s| s.fingerprint.clone()).unwrap_or_default();
    let park = |reason: String| Verdict::Park { reason };
    let verdict = if let Phase::Parked {
        resume_to: None,
        reason,
        ..
    } = &record.phase
    {
        park(format!(
            "its record does not read ({reason}); repair it first"
        ))
    } else if let Some(workflow) = registry.find_workflow(&record.workflow) {
        let mut verdict = Verdict::Resume;
        if let Some(s) = state.filter(|_| phase.is_forward()) {
            verdict = match workflow.check_state(&s.step, &s.fingerprint, &s.json) {
                StateCheck::Current(_) => Verdict::Resume,
                StateCheck::Migrated { migration, .. } => Verdict::Migrate { migration },
                StateCheck::Unreadable(reason) => park(reason),
            };
        }
        let needed: Vec<&str> = match phase {
            Phase::Running {
                work: Work::Activity { activity, .. },
                ..
            } => vec![activity.as_str()],
            Phase::Compensating { .. } => record
                .compensations
                .iter()
                .map(|c| c.activity.as_str())
                .collect(),
            _ => Vec::new(),
        };
        let missing: Vec<&str> = needed
            .into_iter()
            .filter(|a| registry.find_activity(a).is_none())
            .collect();
        if !missing.is_empty() && !matches!(verdict, Verdict::Park { .. }) {
            verdict = park(format!(
                "activity `{}` is not registered in this build",
                missing.join("`, `")
            ));
        }
        verdict
    } else {
        park(format!(
            "workflow type `{}` is not registered in this build",
            record.workflow
        ))
    };
    (record.workflow.clone(), step, fingerprint, parked, verdict)
}
