//! What went wrong talking to Redis, sorted by what to do about it: a bad
//! password or a missing permission is not fixed by retrying, a server that
//! is away may come back.

use std::path::PathBuf;

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::url::RedisTarget;
use crate::store::StoreError;

/// What kind of failure a Redis error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The server refused the credentials (`WRONGPASS`, `NOAUTH`, a command
    /// sent before authenticating). Fix the URL's user or password.
    Auth,
    /// The user may not run a command or touch a key or channel
    /// (`NOPERM`). Fix the user's ACL.
    Permission,
    /// The servers are not what the URL says (a cluster URL for a single
    /// server, an unknown Sentinel master name, a TLS certificate that does
    /// not verify, a database that does not exist). Fix the URL or the
    /// servers.
    Misconfigured,
    /// The server is away, loading, or failing over: retrying later helps.
    Unavailable,
    /// Any other error answered by the server (a script error, a wrong
    /// type): retrying will not help.
    Other,
}

impl FailureKind {
    /// Whether retrying later may succeed.
    pub fn is_transient(self) -> bool {
        self == FailureKind::Unavailable
    }
}

/// Sorts a Redis error by what to do about it.
pub fn classify(e: &RedisError) -> FailureKind {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    match (e.kind(), e.code()) {
        (ErrorKind::AuthenticationFailed, _) | (_, Some("WRONGPASS" | "NOAUTH")) => {
            return FailureKind::Auth;
        }
        (ErrorKind::Server(ServerErrorKind::NoPerm), _) | (_, Some("NOPERM")) => {
            return FailureKind::Permission;
        }
        _ => {}
    }
    // Redis answers a client that sends a large command before `AUTH`
    // with "Protocol error: unauthenticated multibulk length" and closes
    // the connection: that is a missing password, not an outage.
    if lower.contains("unauthenticated")
        || lower.contains("invalid username-password")
        || lower.contains("invalid password")
        || lower.contains("authentication required")
    {
        return FailureKind::Auth;
    }
    if is_misconfiguration(e, &lower) {
        return FailureKind::Misconfigured;
    }
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound | ErrorKind::NoValidReplicasFoundBySentinel
        )
        || matches!(
            e.code(),
            Some("LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "BUSY")
        )
    {
        return FailureKind::Unavailable;
    }
    FailureKind::Other
}

/// [`classify`], knowing the topology: a redirection (`MOVED`, `ASK`)
/// that reaches the caller of a cluster connection means the slots were
/// moving (a failover, a resharding) faster than the client followed, which
/// passes; from a single server it means the URL should name a cluster.
pub fn classify_on(target: &RedisTarget, e: &RedisError) -> FailureKind {
    use super::url::Topology;
    let kind = classify(e);
    let redirected = matches!(e.code(), Some("MOVED" | "ASK"));
    if redirected && matches!(target.topology(), Topology::Cluster { .. }) {
        FailureKind::Unavailable
    } else {
        kind
    }
}

fn is_misconfiguration(e: &RedisError, lower: &str) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidClientConfig
            | ErrorKind::MasterNameNotFoundBySentinel
            | ErrorKind::EmptySentinelList
    ) || e.code() == Some("MOVED")
        || e.code() == Some("ASK")
        // A TLS handshake that failed on the certificate, or TLS spoken to
        // a plain port (and the reverse), fails the same way every time.
        || lower.contains("certificate")
        || lower.contains("unknownissuer")
        || lower.contains("invalid peer")
        || lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
        || lower.contains("received corrupt")
        || lower.contains("cluster support disabled")
        || lower.contains("db index is out of range")
        || lower.contains("select is not allowed in cluster mode")
        || lower.contains("no master named")
}

/// Why connecting to, or talking to, Redis failed. Every message has the
/// URL's passwords replaced by `***`, and says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("invalid Redis URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A TLS file named by the URL cannot be read or does not hold what it
    /// should.
    #[error("TLS {what} file `{}`: {reason}", path.display())]
    TlsFile {
        /// Which file: `CA`, `client certificate`, `client key`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The server refused the credentials.
    #[error(
        "Redis at {target} refused to authenticate user `{user}`: {message} \
         (check the user name and password of the URL)"
    )]
    Auth {
        /// The URL, redacted.
        target: String,
        /// The user the client authenticated as (`default` when none).
        user: String,
        /// The server's or client's words, redacted.
        message: String,
    },
    /// The user lacks a permission steadfast needs.
    #[error(
        "Redis user `{user}` at {target} is not allowed to {missing}: {message} \
         (grant it with the ACL lines in docs/operations.md)"
    )]
    Permission {
        /// The URL, redacted.
        target: String,
        /// The user.
        user: String,
        /// What it may not do (`run scripts (EVALSHA, SCRIPT LOAD)`, ...).
        missing: String,
        /// The server's words, redacted.
        message: String,
    },
    /// The servers are not what the URL says.
    #[error("Redis at {target} does not match the URL: {message}")]
    Misconfigured {
        /// The URL, redacted.
        target: String,
        /// What does not match, redacted.
        message: String,
    },
    /// The servers are less durable than the store was told to require
    /// ([`RedisStoreBuilder::require`](crate::store::redis::RedisStoreBuilder::require)).
    #[error(
        "Redis at {target} is less durable than required ({required}): {shortfall} \
         (change the servers' settings, or the requirement)"
    )]
    BelowFloor {
        /// The URL, redacted.
        target: String,
        /// What was required.
        required: String,
        /// What falls short, one clause per master.
        shortfall: String,
    },
    /// The servers cannot be reached now; retrying later may help.
    #[error("cannot reach Redis at {target}: {message}")]
    Unavailable {
        /// The URL, redacted.
        target: String,
        /// The client's words, redacted.
        message: String,
    },
    /// The server answered with another error.
    #[error("Redis at {target} answered with an error: {message}")]
    Server {
        /// The URL, redacted.
        target: String,
        /// The server's words, redacted.
        message: String,
    },
}

impl ConnectError {
    /// The error of a failed Redis call on `target`, sorted and redacted.
    pub fn from_redis(target: &RedisTarget, e: &RedisError) -> Self {
        let message = target.scrub(&e.to_string());
        let target_text = target.to_string();
        match classify_on(target, e) {
            FailureKind::Auth => ConnectError::Auth {
                target: target_text,
                user: target.user_label().to_owned(),
                message,
            },
            FailureKind::Permission => ConnectError::Permission {
                target: target_text,
                user: target.user_label().to_owned(),
                missing: what_is_refused(&message),
                message,
            },
            FailureKind::Misconfigured => ConnectError::Misconfigured {
                target: target_text,
                message: explain_misconfiguration(target, &message),
            },
            FailureKind::Unavailable => ConnectError::Unavailable {
                target: target_text,
                message,
            },
            FailureKind::Other => ConnectError::Server {
                target: target_text,
                message,
            },
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            ConnectError::Auth { .. } => FailureKind::Auth,
            ConnectError::Permission { .. } => FailureKind::Permission,
            ConnectError::InvalidUrl { .. }
            | ConnectError::TlsFile { .. }
            | ConnectError::Misconfigured { .. }
            | ConnectError::BelowFloor { .. } => FailureKind::Misconfigured,
            ConnectError::Unavailable { .. } => FailureKind::Unavailable,
            ConnectError::Server { .. } => FailureKind::Other,
        }
    }

    /// Whether retrying later may succeed (only when Redis is away).
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

/// What a `NOPERM` message says the user may not do: "this user has no
/// permissions to run the 'xadd' command", "... to access one of the keys
/// used as arguments", "... to access one of the channels ...".
fn what_is_refused(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if let Some(rest) = lower.split("run the '").nth(1)
        && let Some(command) = rest.split('\'').next()
    {
        return format!("run `{}`", command.to_ascii_uppercase());
    }
    if lower.contains("keys") {
        "access the store's keys (the ACL's key pattern must cover the prefix)".to_owned()
    } else if lower.contains("channel") {
        "use the store's channels (the ACL needs `&<prefix>*` and `&<prefix>{s*}:settled`)"
            .to_owned()
    } else {
        "run a command the store needs".to_owned()
    }
}

/// Adds the likely fix to a misconfiguration the server reported.
fn explain_misconfiguration(target: &RedisTarget, message: &str) -> String {
    use super::url::Topology;
    let lower = message.to_ascii_lowercase();
    let hint = if lower.contains("moved") || lower.contains("select is not allowed in cluster") {
        Some("the server is a Redis Cluster node: use a redis+cluster:// URL")
    } else if lower.contains("cluster support disabled") {
        Some("the server is not a Redis Cluster node: use a redis:// URL")
    } else if lower.contains("certificate") || lower.contains("unknownissuer") {
        Some("the server's certificate does not verify: check `ca_file` and the host name")
    } else if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        Some("TLS and plain text mixed: rediss:// needs a TLS port, redis:// a plain one")
    } else {
        match target.topology() {
            Topology::Sentinel { .. } if lower.contains("master") => {
                Some("check the master name after the Sentinel hosts")
            }
            _ => None,
        }
    };
    match hint {
        Some(h) => format!("{message} ({h})"),
        None => message.to_owned(),
    }
}

/// The store's error for a connection error: authentication, permission
/// and configuration failures keep their kind (a worker stops on them
/// instead of retrying), an unreachable server is transient, everything
/// else is not.
impl From<ConnectError> for StoreError {
    fn from(e: ConnectError) -> Self {
        let text = e.to_string();
        match e.kind() {
            FailureKind::Auth => StoreError::Auth(text),
            FailureKind::Permission => StoreError::Permission(text),
            FailureKind::Unavailable => StoreError::Unavailable(text),
            FailureKind::Misconfigured => StoreError::Misconfigured(text),
            FailureKind::Other => StoreError::Backend(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_what_to_do() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&io), FailureKind::Unavailable);
        let auth = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        assert_eq!(classify(&auth), FailureKind::Auth);
        let config = RedisError::from((ErrorKind::InvalidClientConfig, "bad"));
        assert_eq!(classify(&config), FailureKind::Misconfigured);
        let proto = RedisError::from((
            ErrorKind::Client,
            "Protocol error",
            "unauthenticated multibulk length".to_owned(),
        ));
        assert_eq!(classify(&proto), FailureKind::Auth);
    }

    #[test]
    fn a_redirection_passes_on_a_cluster_and_is_a_wrong_url_elsewhere() {
        let moved = RedisError::from((
            ErrorKind::Server(ServerErrorKind::Moved),
            "Moved",
            "11097 127.0.0.1:7001".to_owned(),
        ));
        let target = |url: &str| match RedisTarget::parse(url) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            classify_on(&target("redis+cluster://127.0.0.1:7000"), &moved),
            FailureKind::Unavailable
        );
        let single = ConnectError::from_redis(&target("redis://127.0.0.1:7000"), &moved);
        assert_eq!(single.kind(), FailureKind::Misconfigured);
        assert!(single.to_string().contains("redis+cluster://"), "{single}");
    }

    #[test]
    fn refusals_name_what_is_refused() {
        assert_eq!(
            what_is_refused("NOPERM: this user has no permissions to run the 'xadd' command"),
            "run `XADD`"
        );
        assert!(
            what_is_refused(
                "NOPERM this user has no permissions to access one of the keys used as arguments"
            )
            .contains("key pattern")
        );
        assert!(
            what_is_refused("NOPERM this user has no permissions to access one of the channels used as arguments")
                .contains("channels")
        );
    }

    #[test]
    fn store_errors_keep_the_kind_and_no_password() {
        let target = RedisTarget::parse("redis://u:hunter2@h:1").map_err(|e| e.to_string());
        let Ok(target) = target else {
            panic!("{target:?}")
        };
        let e = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "WRONGPASS",
            "redis://u:hunter2@h:1 said no to hunter2".to_owned(),
        ));
        let connect = ConnectError::from_redis(&target, &e);
        assert_eq!(connect.kind(), FailureKind::Auth);
        let shown = format!("{connect} {connect:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let store = StoreError::from(connect);
        assert!(matches!(store, StoreError::Auth(_)), "{store:?}");
        assert!(!store.is_transient());
        assert!(!store.to_string().contains("hunter2"));
    }
}
