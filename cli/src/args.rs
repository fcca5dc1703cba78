//! The command line: global connection options and one subcommand.

use clap::{Args, Parser, Subcommand};

/// Inspect and operate steadfast workflow runs kept in Redis.
///
/// Reads the same keys the workers write (see docs/redis-layout.md); it
/// needs none of the workflows' code.
#[derive(Debug, Parser)]
#[command(name = "steadfast", version)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) conn: Connection,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the runs are.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The Redis the workers use: `redis://`, `rediss://`,
    /// `redis+cluster://host:port,host:port`,
    /// `redis+sentinel://host:port,.../master` (see docs/operations.md).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub(crate) redis_url: String,
    /// The key prefix the workers were given (`RedisStoreBuilder::prefix`).
    #[arg(long, default_value = "steadfast:", global = true)]
    pub(crate) prefix: String,
    /// The number of shards the workers were given (`RedisStoreBuilder::shards`).
    #[arg(long, default_value_t = 1, global = true)]
    pub(crate) shards: u32,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List runs: in progress (default), needing an operator, or finished.
    Runs {
        /// Runs that need an operator: parked runs and failed compensations.
        #[arg(long, conflicts_with = "finished")]
        attention: bool,
        /// Runs that finished, newest first.
        #[arg(long)]
        finished: bool,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one run's checkpoint: status, state, what it does next, the
    /// compensations it owes, its query values.
    Show {
        /// The workflow id.
        id: String,
    },
    /// Show one run's history: one entry per committed transition.
    History {
        /// The workflow id.
        id: String,
    },
    /// Put a parked run or a failed compensation back to work, once its
    /// cause is fixed.
    Resume {
        /// The workflow id.
        id: String,
        /// What was fixed; recorded in the run's history.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Ask a run to stop at its next suspension point and compensate.
    Cancel {
        /// The workflow id.
        id: String,
        /// Why; recorded with the run.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
    /// Stop a run at once, without compensating.
    Terminate {
        /// The workflow id.
        id: String,
        /// Why; recorded with the run.
        #[arg(long)]
        reason: String,
    },
    /// Send a signal to a run.
    Signal {
        /// The workflow id.
        id: String,
        /// The signal's name (its type's `Signal::NAME`).
        name: String,
        /// Its payload as JSON (`'{"reason":"customer asked"}'`); `null` if left out.
        payload: Option<String>,
    },
    /// Remove a signal waiting in a run's buffer (one whose payload parks the
    /// run, say), by its nonce (`steadfast show` lists them).
    RemoveSignal {
        /// The workflow id.
        id: String,
        /// The signal's nonce.
        nonce: u64,
        /// Why; recorded in the run's history.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Delete everything of a run: record, history, signals, timer, index
    /// entries (also what a record deleted by hand left behind).
    Delete {
        /// The workflow id.
        id: String,
    },
    /// List cron schedules, or pause, resume or delete one.
    Schedules {
        #[command(subcommand)]
        action: Option<ScheduleAction>,
    },
    /// List the workflow types workers registered (their queue,
    /// fingerprint, number of states), or show one's states and edges.
    Workflows {
        /// The workflow type to show.
        name: Option<String>,
    },
    /// Serve the web console: runs, a run's diagram and history, actions,
    /// schedules (see docs/console.md).
    Ui(crate::ui::UiArgs),
    /// Check the connection: where it goes, whether the user may do what
    /// workers (or, with --read-only, the read-only views) need, and what a
    /// crash or failover of Redis can lose. Exits with 1 when the user
    /// lacks a permission.
    Doctor {
        /// Check the read-only user's permissions instead of the worker's.
        #[arg(long)]
        read_only: bool,
    },
}

/// What to do to a schedule.
#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleAction {
    /// Stop firing until resumed.
    Pause {
        /// The schedule id.
        id: String,
    },
    /// Fire again from the next due time.
    Resume {
        /// The schedule id.
        id: String,
    },
    /// Delete the schedule (runs it started are kept).
    Delete {
        /// The schedule id.
        id: String,
    },
}
