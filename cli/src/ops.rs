//! Carrying out one command against the store; returns what to print.

use std::sync::Arc;

use serde::Serialize;
use steadfast_runtime::{
    AccessCheck, Client, ClientError, RedisStore, ResumeError, RunList, RunRecord, SendError,
    Store, StoreError,
};

use crate::args::{Cli, Command, Connection, ScheduleAction};
use crate::{doctor, render};

/// Why a command failed. No message shows a password: the store's errors
/// print the URL with `***` in its place.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Redis could not be reached.
    #[error(
        "{0}\n\
         Is the server running? Point --redis-url (or REDIS_URL) at the one your workers use."
    )]
    Unreachable(StoreError),
    /// Redis refused the credentials.
    #[error(
        "{0}\n\
         Check the user name and password in --redis-url (or REDIS_URL); percent-encode \
         `@ : / ? # %` in them."
    )]
    Refused(StoreError),
    /// The user may not do what the command needs, or the servers are not
    /// what the URL says: the store's error says what to fix.
    #[error("{0}")]
    Setup(StoreError),
    /// The store cannot list or delete runs.
    #[error("this store has no administration side (listing, deleting runs)")]
    NoAdmin,
    /// No run has this id.
    #[error("no run with id `{0}` (check --prefix and --shards if the workers use others)")]
    NotFound(String),
    /// No workflow type of this name is in the catalog.
    #[error(
        "no workflow `{0}` in the catalog (workers register theirs as they start; \
         check --prefix if the workers use another)"
    )]
    NoWorkflow(String),
    /// No schedule has this id.
    #[error("no schedule with id `{0}`")]
    NoSchedule(String),
    /// The signal payload is not JSON.
    #[error("the signal payload is not JSON: {0}")]
    Payload(serde_json::Error),
    /// `steadfast doctor` found a problem (already printed).
    #[error("{0}")]
    Check(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A client call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A message could not be delivered.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A run could not be resumed.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// The console cannot start or stopped.
    #[error(transparent)]
    Ui(#[from] crate::ui::UiError),
}

impl From<StoreError> for CliError {
    /// Sorts a store error by what the operator should do about it:
    /// start or point at the server, fix the credentials, or fix the ACL
    /// or URL (the error says which).
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => CliError::Unreachable(e),
            StoreError::Auth(_) => CliError::Refused(e),
            StoreError::Permission(_) | StoreError::Misconfigured(_) => CliError::Setup(e),
            other => CliError::Store(other),
        }
    }
}

/// Whether a command only reads (the read-only user may run it).
fn reads_only(command: &Command) -> bool {
    matches!(
        command,
        Command::Runs { .. }
            | Command::Show { .. }
            | Command::History { .. }
            | Command::Schedules { action: None }
            | Command::Workflows { .. }
            | Command::Doctor { .. }
    )
}

/// Connects as the command needs: reading commands check only the
/// read-only user's permissions, the others the worker's (they run the
/// store's scripts).
async fn connect(conn: &Connection, access: AccessCheck) -> Result<RedisStore, CliError> {
    Ok(RedisStore::builder(conn.redis_url.as_str())
        .prefix(conn.prefix.as_str())
        .shards(conn.shards)
        .check_persistence(false)
        .access_check(access)
        .connect()
        .await?)
}

/// A run as JSON for scripts: the record, with its status, step, state and
/// reason at the top as well (they are derived from its phase).
fn run_json(record: &RunRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(record).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("status".into(), record.status().as_str().into());
        map.insert("step".into(), record.step().into());
        map.insert(
            "state".into(),
            record
                .phase
                .state()
                .map_or(serde_json::Value::Null, |s| s.json.clone()),
        );
        if let Some(reason) = record.reason() {
            map.insert("reason".into(), reason.into());
        }
    }
    v
}

fn json(v: &impl Serialize) -> String {
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("\"does not encode: {e}\""));
    s.push('\n');
    s
}

/// Where a run's record is kept, for people who look with other tools.
type KeyOf = dyn Fn(&str) -> String + Send + Sync;

/// Runs the command; returns its output.
pub(crate) async fn run(cli: Cli) -> Result<String, CliError> {
    if let Command::Doctor { read_only } = cli.command {
        return doctor::run(&cli.conn, read_only).await;
    }
    if let Command::Ui(args) = cli.command {
        return crate::ui::serve(&cli.conn, args).await;
    }
    let access = if reads_only(&cli.command) {
        AccessCheck::ReadOnly
    } else {
        AccessCheck::Worker
    };
    let redis = connect(&cli.conn, access).await?;
    let keys = redis.clone();
    let key_of: Box<KeyOf> = Box::new(move |id| keys.run_key(id));
    execute(Arc::new(redis), &key_of, cli).await
}

/// Runs the command on any store with an administration side.
async fn execute(store: Arc<dyn Store>, key_of: &KeyOf, cli: Cli) -> Result<String, CliError> {
    let admin = store.admin().ok_or(CliError::NoAdmin)?;
    let client = Client::new_shared(Arc::clone(&store));
    let as_json = cli.conn.json;
    match cli.command {
        Command::Runs {
            attention,
            finished,
            limit,
        } => {
            let list = if attention {
                RunList::Attention
            } else if finished {
                RunList::Finished
            } else {
                RunList::Active
            };
            let ids = admin.list_runs(list, limit).await?;
            runs(store.as_ref(), &ids, as_json).await
        }
        Command::Show { id } => match store.load(&id).await {
            Ok(Some(env)) => Ok(if as_json {
                json(&run_json(&env))
            } else {
                render::run(&env, &key_of(&id))
            }),
            Ok(None) => Err(CliError::NotFound(id)),
            Err(StoreError::Corrupt { reason, .. }) => {
                let fields = admin
                    .raw_record(&id)
                    .await?
                    .ok_or_else(|| CliError::NotFound(id.clone()))?;
                Ok(render::raw(&id, &reason, &fields, &key_of(&id)))
            }
            Err(e) => Err(e.into()),
        },
        Command::History { id } => {
            load(store.as_ref(), &id).await?;
            let history = store.history(&id).await?;
            Ok(if as_json {
                json(&history)
            } else {
                render::history(&history)
            })
        }
        Command::Resume { id, note } => {
            let status = client.resume(&id, &note).await?;
            Ok(format!("resumed `{id}`: {status}\n"))
        }
        Command::Cancel { id, reason } => {
            client.cancel(&id, reason).await?;
            Ok(format!(
                "asked `{id}` to cancel; it stops at its next suspension point and compensates\n"
            ))
        }
        Command::Terminate { id, reason } => {
            client.terminate(&id, reason).await?;
            Ok(format!("asked `{id}` to terminate\n"))
        }
        Command::Signal { id, name, payload } => {
            let payload = match payload {
                Some(text) => serde_json::from_str(&text).map_err(CliError::Payload)?,
                None => serde_json::Value::Null,
            };
            client.signal_json(&id, &name, payload).await?;
            Ok(format!("sent `{name}` to `{id}`\n"))
        }
        Command::RemoveSignal { id, nonce, note } => {
            client.remove_signal(&id, nonce, &note).await?;
            Ok(format!("removed signal {nonce} from `{id}`\n"))
        }
        Command::Delete { id } => {
            if admin.delete_run(&id).await? {
                Ok(format!("deleted run `{id}`\n"))
            } else {
                Err(CliError::NotFound(id))
            }
        }
        Command::Schedules { action } => schedules(&client, action, as_json).await,
        Command::Workflows { name } => crate::catalog::run(admin, name.as_deref(), as_json).await,
        Command::Doctor { read_only } => doctor::run(&cli.conn, read_only).await,
        Command::Ui(args) => crate::ui::serve(&cli.conn, args).await,
    }
}

async fn load(store: &dyn Store, id: &str) -> Result<RunRecord, CliError> {
    store
        .load(id)
        .await?
        .ok_or_else(|| CliError::NotFound(id.to_owned()))
}

/// One line per run; a run whose record does not read is listed with why.
async fn runs(store: &dyn Store, ids: &[String], as_json: bool) -> Result<String, CliError> {
    let mut envelopes = Vec::new();
    let mut rows = Vec::new();
    for id in ids {
        match store.load(id).await {
            Ok(Some(env)) => {
                rows.push(render::run_row(&env));
                envelopes.push(env);
            }
            // Listed, but its record is gone: expired between the listing
            // and the read, or deleted by hand.
            Ok(None) => rows.push(vec![
                id.clone(),
                "?".into(),
                "missing".into(),
                String::new(),
                String::new(),
                format!("no record; `steadfast delete {id}` removes what is left"),
            ]),
            Err(StoreError::Corrupt { reason, .. }) => {
                rows.push(vec![
                    id.clone(),
                    "?".into(),
                    "unreadable".into(),
                    String::new(),
                    String::new(),
                    reason,
                ]);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if as_json {
        let views: Vec<serde_json::Value> = envelopes.iter().map(run_json).collect();
        return Ok(json(&views));
    }
    if rows.is_empty() {
        return Ok("no runs\n".to_owned());
    }
    Ok(render::table(&render::RUN_HEADER, &rows))
}

async fn schedules(
    client: &Client,
    action: Option<ScheduleAction>,
    as_json: bool,
) -> Result<String, CliError> {
    let known = |id: &str, specs: &[steadfast_runtime::ScheduleSpec]| {
        if specs.iter().any(|s| s.id == id) {
            Ok(())
        } else {
            Err(CliError::NoSchedule(id.to_owned()))
        }
    };
    let specs = client.schedules().await?;
    match action {
        None if as_json => Ok(json(&specs)),
        None if specs.is_empty() => Ok("no schedules\n".to_owned()),
        None => Ok(render::schedules(&specs)),
        Some(ScheduleAction::Pause { id }) => {
            known(&id, &specs)?;
            client.pause_schedule(&id).await?;
            Ok(format!("paused schedule `{id}`\n"))
        }
        Some(ScheduleAction::Resume { id }) => {
            known(&id, &specs)?;
            client.resume_schedule(&id).await?;
            Ok(format!("resumed schedule `{id}`\n"))
        }
        Some(ScheduleAction::Delete { id }) => {
            if client.delete_schedule(&id).await? {
                Ok(format!("deleted schedule `{id}`\n"))
            } else {
                Err(CliError::NoSchedule(id))
            }
        }
    }
}
