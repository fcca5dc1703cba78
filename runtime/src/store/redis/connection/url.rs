//! `REDIS_URL` parsed into a typed [`RedisTarget`]: which servers, in which
//! topology, with which credentials and TLS files.
//!
//! ```text
//! redis://[user[:password]@]host[:port][/db][?params]              one server
//! rediss://...                                                    the same over TLS
//! redis+cluster://[user[:password]@]host:port[,host:port...][?params]   Redis Cluster (seed nodes)
//! rediss+cluster://...
//! redis+sentinel://[user[:password]@]host:port[,host:port...]/master-name[/db][?params]
//! rediss+sentinel://...                                           TLS to the Sentinels and the master
//! ```
//!
//! Parameters (TLS ones only with a `rediss` scheme): `ca_file` (PEM file of
//! the CAs to trust instead of the system's), `cert_file` and `key_file`
//! (PEM client certificate and key, both or neither), `sentinel_username`
//! and `sentinel_password` (when the Sentinels require their own
//! credentials). The user and password are those of the data nodes.
//! Characters `@ : / ? # % &` in a user name, password or value are
//! percent-encoded (`%40` for `@`).

use std::fmt;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::error::ConnectError;
use super::redact::{REDACTED, Secret, Userinfo, redact_url, split_userinfo};

/// The default port of a Redis server.
pub const DEFAULT_PORT: u16 = 6379;
/// The default port of a Redis Sentinel.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// The query parameters a URL may carry.
const PARAMS: [&str; 5] = [
    "ca_file",
    "cert_file",
    "key_file",
    "sentinel_username",
    "sentinel_password",
];

/// A host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NodeAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl NodeAddr {
    /// A node address.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        NodeAddr {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How the Redis servers are arranged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// One server (or a proxy in front of several).
    Single {
        /// The server.
        node: NodeAddr,
        /// The database number (`SELECT`).
        db: i64,
    },
    /// A Redis Cluster, found from any of its seed nodes. Only database 0.
    Cluster {
        /// Nodes to ask for the cluster's layout.
        seeds: Vec<NodeAddr>,
    },
    /// A master found through Sentinels, which follow it across failovers.
    Sentinel {
        /// The Sentinels to ask.
        sentinels: Vec<NodeAddr>,
        /// The name the Sentinels monitor the master under.
        master: String,
        /// The database number on the master.
        db: i64,
    },
}

/// TLS files. The server's certificate is checked against `ca_file` when
/// given, else against the system's trusted CAs; a client certificate is
/// sent when the server asks for one and both files are given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM file of the CA certificates to trust (instead of the system's).
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client's private key.
    pub key_file: Option<PathBuf>,
}

/// Where and how to connect: a parsed Redis URL.
///
/// `Display` prints the URL with its passwords as `***`, and `Debug` never
/// shows them either: both are safe to log.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    topology: Topology,
    tls: Option<TlsOptions>,
    username: Option<String>,
    password: Option<Secret>,
    sentinel_username: Option<String>,
    sentinel_password: Option<Secret>,
}

impl RedisTarget {
    /// Parses a Redis URL (see the module documentation for the forms).
    /// Errors name what is wrong without quoting the URL's secrets.
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        parse(url).map_err(|reason| ConnectError::InvalidUrl {
            url: redact_url(url),
            reason,
        })
    }

    /// The servers and how they are arranged.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The TLS files, when the URL asks for TLS (`rediss...`).
    pub fn tls(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// The user name for the data nodes (`None`: the `default` user).
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password for the data nodes.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The user name for the Sentinels.
    pub fn sentinel_username(&self) -> Option<&str> {
        self.sentinel_username.as_deref()
    }

    /// The password for the Sentinels.
    pub fn sentinel_password(&self) -> Option<&Secret> {
        self.sentinel_password.as_ref()
    }

    /// The name of the user the server will see (`default` when none).
    pub fn user_label(&self) -> &str {
        self.username.as_deref().unwrap_or("default")
    }

    /// Every secret of this target, as given: for [`super::scrub`].
    pub fn secrets(&self) -> Vec<&str> {
        [&self.password, &self.sentinel_password]
            .into_iter()
            .flatten()
            .map(Secret::expose)
            .collect()
    }

    /// `text` with this target's secrets, and any URL's credentials,
    /// replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        super::redact::scrub(text, &self.secrets())
    }

    /// A copy with other credentials for the data nodes (for tools and
    /// tests that connect as several users).
    pub fn with_credentials(mut self, username: Option<&str>, password: Option<&str>) -> Self {
        self.username = username.map(str::to_owned);
        self.password = password.map(Secret::new);
        self
    }

    /// A copy with TLS files set outside the URL (a configuration file,
    /// say): the CA file to trust, and a client certificate and key. Files
    /// the URL names already are replaced. Only for `rediss` targets: on a
    /// plain text one this is a [`ConnectError::InvalidUrl`] that says so.
    pub fn with_tls_files(
        mut self,
        ca_file: Option<PathBuf>,
        client: Option<(PathBuf, PathBuf)>,
    ) -> Result<Self, ConnectError> {
        if ca_file.is_none() && client.is_none() {
            return Ok(self);
        }
        let shown = self.to_string();
        let Some(tls) = self.tls.as_mut() else {
            return Err(ConnectError::InvalidUrl {
                url: shown,
                reason: "TLS files are given but the URL is not a TLS one: use a rediss:// \
                         scheme (rediss+cluster://, rediss+sentinel://)"
                    .into(),
            });
        };
        if let Some(ca) = ca_file {
            tls.ca_file = Some(ca);
        }
        if let Some((cert, key)) = client {
            tls.cert_file = Some(cert);
            tls.key_file = Some(key);
        }
        Ok(self)
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = if self.tls.is_some() { "s" } else { "" };
        let kind = match self.topology {
            Topology::Single { .. } => "",
            Topology::Cluster { .. } => "+cluster",
            Topology::Sentinel { .. } => "+sentinel",
        };
        write!(f, "redis{tls}{kind}://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{}:{REDACTED}@", encode_component(u))?,
            (None, Some(_)) => write!(f, ":{REDACTED}@")?,
            (Some(u), None) => write!(f, "{}@", encode_component(u))?,
            (None, None) => {}
        }
        let list = |nodes: &[NodeAddr]| {
            nodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match &self.topology {
            Topology::Single { node, db } => write!(f, "{node}/{db}")?,
            Topology::Cluster { seeds } => write!(f, "{}", list(seeds))?,
            Topology::Sentinel {
                sentinels,
                master,
                db,
            } => write!(f, "{}/{}/{db}", list(sentinels), encode_component(master))?,
        }
        let mut params = Vec::new();
        if let Some(tls) = &self.tls {
            for (key, path) in [
                ("ca_file", &tls.ca_file),
                ("cert_file", &tls.cert_file),
                ("key_file", &tls.key_file),
            ] {
                if let Some(p) = path {
                    params.push(format!("{key}={}", p.display()));
                }
            }
        }
        if let Some(u) = &self.sentinel_username {
            params.push(format!("sentinel_username={}", encode_component(u)));
        }
        if self.sentinel_password.is_some() {
            params.push(format!("sentinel_password={REDACTED}"));
        }
        if !params.is_empty() {
            write!(f, "?{}", params.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("topology", &self.topology)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &self.sentinel_password)
            .finish()
    }
}

impl std::str::FromStr for RedisTarget {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RedisTarget::parse(s)
    }
}

/// Characters escaped in a URL component.
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'@')
    .add(b':')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'=')
    .add(b',');

/// `text` percent-encoded for a URL's user, password or parameter value.
pub(crate) fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Parses; the error is a reason that never quotes the input (it may hold
/// a password).
fn parse(url: &str) -> Result<RedisTarget, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(
            "expected `redis://`, `rediss://`, `redis+cluster://` or `redis+sentinel://` \
                    followed by host:port"
                .into(),
        );
    };
    let (tls, kind) = match scheme.to_ascii_lowercase().as_str() {
        "redis" => (false, Kind::Single),
        "rediss" => (true, Kind::Single),
        "redis+cluster" => (false, Kind::Cluster),
        "rediss+cluster" => (true, Kind::Cluster),
        "redis+sentinel" => (false, Kind::Sentinel),
        "rediss+sentinel" => (true, Kind::Sentinel),
        "unix" | "redis+unix" => {
            return Err("Unix sockets are not supported; use redis://host:port".into());
        }
        _ => {
            return Err(
                "unknown scheme; expected one of: `redis`, `rediss`, `redis+cluster`, \
                        `rediss+cluster`, `redis+sentinel`, `rediss+sentinel`"
                    .into(),
            );
        }
    };
    let (userinfo, rest) = match split_userinfo(rest) {
        (Userinfo::Ambiguous, _) => {
            return Err(
                "an `@` follows a `?`: percent-encode `?` in the password as `%3F` \
                        (and `@` as `%40`)"
                    .into(),
            );
        }
        (Userinfo::Known(info), rest) => (Some(info), rest),
        (Userinfo::None, rest) => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let user = decode(user, "the user name")?;
            let pass = pass.map(|p| decode(p, "the password")).transpose()?;
            (
                Some(user).filter(|u| !u.is_empty()),
                pass.filter(|p| !p.is_empty()).map(Secret::new),
            )
        }
    };
    if rest.contains('#') {
        return Err("fragments (`#...`) are not supported; percent-encode `#` as `%23`".into());
    }
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (hosts, path) = match main.split_once('/') {
        Some((h, p)) => (h, p),
        None => (main, ""),
    };
    let default_port = match kind {
        Kind::Sentinel => DEFAULT_SENTINEL_PORT,
        _ => DEFAULT_PORT,
    };
    let nodes = parse_hosts(hosts, default_port)?;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let topology = match kind {
        Kind::Single => {
            let [node] = <[NodeAddr; 1]>::try_from(nodes).map_err(|_| {
                "one host expected; for several use redis+cluster:// or redis+sentinel://"
                    .to_owned()
            })?;
            let db = match segments.as_slice() {
                [] => 0,
                [db] => parse_db(db)?,
                _ => return Err("the path is the database number only (`/0`)".into()),
            };
            Topology::Single { node, db }
        }
        Kind::Cluster => match segments.as_slice() {
            [] | ["0"] => Topology::Cluster { seeds: nodes },
            _ => return Err("Redis Cluster has database 0 only; remove the path".into()),
        },
        Kind::Sentinel => {
            let (master, db) = match segments.as_slice() {
                [master] => (*master, 0),
                [master, db] => (*master, parse_db(db)?),
                [] => {
                    return Err("a Sentinel URL names its master after the hosts: \
                                redis+sentinel://host:26379/mymaster"
                        .into());
                }
                _ => return Err("the path is the master name and, optionally, the database".into()),
            };
            Topology::Sentinel {
                sentinels: nodes,
                master: decode(master, "the master name")?,
                db,
            }
        }
    };
    let mut target = RedisTarget {
        topology,
        tls: tls.then(TlsOptions::default),
        username,
        password,
        sentinel_username: None,
        sentinel_password: None,
    };
    if let Some(query) = query {
        apply_params(&mut target, query)?;
    }
    if let Some(t) = &target.tls
        && t.cert_file.is_some() != t.key_file.is_some()
    {
        return Err("`cert_file` and `key_file` go together: give both or neither".into());
    }
    Ok(target)
}

#[derive(Clone, Copy)]
enum Kind {
    Single,
    Cluster,
    Sentinel,
}

fn apply_params(target: &mut RedisTarget, query: &str) -> Result<(), String> {
    let sentinel = matches!(target.topology, Topology::Sentinel { .. });
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let Some(&key) = PARAMS.iter().find(|k| **k == key) else {
            return Err(format!(
                "unknown URL parameter; expected one of: {}",
                PARAMS.map(|p| format!("`{p}`")).join(", ")
            ));
        };
        let value = decode(value, "a parameter value")?;
        if value.is_empty() {
            return Err(format!("`{key}` needs a value"));
        }
        if key.starts_with("sentinel_") && !sentinel {
            return Err(format!("`{key}` applies to redis+sentinel:// URLs only"));
        }
        let tls = target.tls.as_mut();
        match (key, tls) {
            ("sentinel_username", _) => target.sentinel_username = Some(value),
            ("sentinel_password", _) => target.sentinel_password = Some(Secret::new(value)),
            (_, None) => {
                return Err(format!(
                    "`{key}` needs TLS: use a rediss:// scheme (rediss+cluster://, rediss+sentinel://)"
                ));
            }
            ("ca_file", Some(t)) => t.ca_file = Some(value.into()),
            ("cert_file", Some(t)) => t.cert_file = Some(value.into()),
            (_, Some(t)) => t.key_file = Some(value.into()),
        }
    }
    Ok(())
}

fn parse_hosts(hosts: &str, default_port: u16) -> Result<Vec<NodeAddr>, String> {
    if hosts.is_empty() {
        return Err("no host".into());
    }
    hosts
        .split(',')
        .enumerate()
        .map(|(i, h)| parse_host(h, default_port).map_err(|e| format!("address {}: {e}", i + 1)))
        .collect()
}

fn parse_host(text: &str, default_port: u16) -> Result<NodeAddr, String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address lacks its closing `]`")?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("`:` expected after `]`")?),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.contains(['@', ' ', '%']) {
        return Err("invalid character in the host".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("the port is not a number from 1 to 65535".into()),
            Ok(p) => p,
        },
    };
    Ok(NodeAddr::new(host, port))
}

fn parse_db(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .ok()
        .filter(|db| *db >= 0)
        .ok_or_else(|| "the database is not a number (`/0`, `/1`, ...)".into())
}

fn decode(text: &str, what: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("{what} is not valid percent-encoded UTF-8"))
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
