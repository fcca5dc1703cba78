//! Unit tests of URL parsing.

use super::*;

fn parse_ok(url: &str) -> RedisTarget {
    match RedisTarget::parse(url) {
        Ok(t) => t,
        Err(e) => panic!("{url}: {e}"),
    }
}

fn parse_err(url: &str) -> String {
    match RedisTarget::parse(url) {
        Ok(t) => panic!("{url} parsed as {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn single_servers() {
    let t = parse_ok("redis://127.0.0.1:6380/2");
    assert_eq!(
        t.topology(),
        &Topology::Single {
            node: NodeAddr::new("127.0.0.1", 6380),
            db: 2
        }
    );
    assert!(t.tls().is_none() && t.username().is_none() && t.password().is_none());
    let t = parse_ok("redis://localhost");
    assert_eq!(
        t.topology(),
        &Topology::Single {
            node: NodeAddr::new("localhost", DEFAULT_PORT),
            db: 0
        }
    );
    let t = parse_ok("redis://[::1]:7000/");
    assert_eq!(t.to_string(), "redis://[::1]:7000/0");
}

#[test]
fn credentials_are_percent_decoded_and_never_printed() {
    let t = parse_ok("redis://worker:p%40ss%3Aw%2Frd@h:1/0");
    assert_eq!(t.username(), Some("worker"));
    assert_eq!(t.password().map(Secret::expose), Some("p@ss:w/rd"));
    assert_eq!(t.to_string(), "redis://worker:***@h:1/0");
    let debug = format!("{t:?}");
    assert!(
        !debug.contains("p@ss") && !debug.contains("p%40ss"),
        "{debug}"
    );
    let t = parse_ok("redis://:only-password@h");
    assert_eq!(t.username(), None);
    assert_eq!(t.user_label(), "default");
    assert_eq!(t.to_string(), "redis://:***@h:6379/0");
    // An unencoded `@` or `/` in the password still parses: the last
    // `@` before the query ends the credentials.
    let t = parse_ok("redis://u:a@b/c@h:2");
    assert_eq!(t.password().map(Secret::expose), Some("a@b/c"));
}

#[test]
fn tls_with_files() {
    let t = parse_ok("rediss://h:6380?ca_file=/etc/ca.pem&cert_file=/c.pem&key_file=/k%20ey.pem");
    let tls = t.tls().cloned().unwrap_or_default();
    assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(tls.key_file, Some(PathBuf::from("/k ey.pem")));
    assert!(
        t.to_string()
            .starts_with("rediss://h:6380/0?ca_file=/etc/ca.pem")
    );
    assert!(parse_ok("rediss://h").tls().is_some());
}

#[test]
fn clusters() {
    let t = parse_ok("rediss+cluster://u:pw@a:7000,b:7001,[::1]:7002?ca_file=/ca");
    assert_eq!(
        t.topology(),
        &Topology::Cluster {
            seeds: vec![
                NodeAddr::new("a", 7000),
                NodeAddr::new("b", 7001),
                NodeAddr::new("::1", 7002)
            ]
        }
    );
    assert_eq!(
        t.to_string(),
        "rediss+cluster://u:***@a:7000,b:7001,[::1]:7002?ca_file=/ca"
    );
    assert!(parse_err("redis+cluster://a:1/3").contains("database 0 only"));
}

#[test]
fn sentinels() {
    let t = parse_ok("redis+sentinel://:pw@s1:1,s2/mymaster/3?sentinel_password=sp");
    assert_eq!(
        t.topology(),
        &Topology::Sentinel {
            sentinels: vec![
                NodeAddr::new("s1", 1),
                NodeAddr::new("s2", DEFAULT_SENTINEL_PORT)
            ],
            master: "mymaster".into(),
            db: 3
        }
    );
    assert_eq!(t.sentinel_password().map(Secret::expose), Some("sp"));
    assert_eq!(t.secrets(), vec!["pw", "sp"]);
    assert_eq!(
        t.to_string(),
        "redis+sentinel://:***@s1:1,s2:26379/mymaster/3?sentinel_password=***"
    );
    assert!(parse_err("redis+sentinel://s1:1").contains("names its master"));
    assert!(
        parse_ok("rediss+sentinel://s:1/m?ca_file=/ca")
            .tls()
            .is_some()
    );
}

#[test]
fn malformed_urls_are_explained_without_their_password() {
    for (url, says) in [
        ("localhost:6379", "expected `redis://`"),
        ("http://:pw@h", "unknown scheme"),
        ("redis://:pw@a:1,b:2", "one host expected"),
        ("redis://:pw@h:notaport", "the port is not a number"),
        ("redis://:pw@h:0", "the port is not a number"),
        ("redis://:pw@h:1/x", "the database is not a number"),
        ("redis://:pw@h?ca_file=/x", "needs TLS"),
        ("rediss://:pw@h?cert_file=/x", "go together"),
        ("redis://:pw@h?pasword=pw", "unknown URL parameter"),
        (
            "redis://:pw@h?sentinel_password=pw",
            "redis+sentinel:// URLs only",
        ),
        ("redis://:p?w@h", "percent-encode `?`"),
        ("redis://:pw@", "no host"),
        ("redis://:pw%ff@h", "not valid percent-encoded"),
        ("unix:///tmp/redis.sock", "not supported"),
    ] {
        let e = parse_err(url);
        assert!(e.contains(says), "{url}: {e}");
        assert!(!e.contains("pw"), "{url} leaks its password: {e}");
    }
}
