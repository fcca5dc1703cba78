//! `docs/redis-layout.md` tells operators what is in Redis and how to look
//! at it with `redis-cli`. This test runs every command of its `sh` blocks
//! against a real server holding runs in every state, and checks the shapes
//! the page describes.

mod support;

#[path = "../examples/order_saga.rs"]
#[allow(dead_code, unreachable_pub)]
mod order_saga;

use std::time::Duration;

use steadfast::{Client, Status, Store, Worker};
use support::redis_server::RedisServer;

/// The `redis-cli` commands of the page's `sh` blocks, split into arguments
/// (single quotes group words, as in a shell).
fn documented_commands() -> Vec<Vec<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/redis-layout.md"))
        .expect("docs/redis-layout.md exists");
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if let (true, Some(rest)) = (in_sh, line.strip_prefix("redis-cli ")) {
            out.push(shell_words(rest));
        }
    }
    out
}

fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[tokio::test]
async fn the_documented_redis_cli_commands_show_what_the_page_says() {
    let server = RedisServer::start();
    let store = support::redis_store(&server).await;
    let client = Client::new(store.clone());

    // order-42 completes; order-43 waits in the queue; order-44 is parked.
    client
        .start::<order_saga::order>("order-42", "order-42".into())
        .await
        .expect("starts");
    client
        .start::<order_saga::order>("order-44", "order-44".into())
        .await
        .expect("starts");
    server.cli(&["HSET", &store.run_key("order-44"), "state", "{broken"]);
    let worker = order_saga::configure(Worker::builder(store.clone()), Vec::new())
        .poll_wait(Duration::from_millis(100))
        .build()
        .expect("builds")
        .spawn();
    let done = client
        .handle::<order_saga::order>("order-42")
        .result()
        .await
        .expect("completes");
    assert!(done.contains("trk-order-42"));
    let _ = client
        .handle::<order_saga::order>("order-44")
        .result()
        .await;
    worker.shutdown().await.expect("stops");
    client
        .start::<order_saga::order>("order-43", "order-43".into())
        .await
        .expect("starts");
    waiting_runs(&store, &client).await;
    assert_eq!(
        store
            .load("order-44")
            .await
            .expect("loads")
            .expect("exists")
            .status(),
        Status::Parked
    );

    let commands = documented_commands();
    assert!(
        commands.len() >= 10,
        "the page documents its commands: {commands:?}"
    );
    for args in &commands {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = server.cli(&argv);
        assert!(
            !out.starts_with("ERR") && !out.contains("(error)"),
            "`redis-cli {}` failed: {out}",
            args.join(" ")
        );
        let expect: &[&str] = match (argv[0], argv.get(1).copied()) {
            ("ZRANGE", Some(k)) if k.ends_with(":active") => &["order-43", "signup-7"],
            ("ZRANGE", Some(k)) if k.ends_with(":timers") => &["default\nsignup-7", "order-45"],
            ("ZRANGE", Some(k)) if k.ends_with(":due") => &["weekly-report"],
            ("LRANGE", _) => &["\"name\":\"decision\"", "\"approved\":true"],
            ("HGETALL", Some(k)) if k.ends_with(":schedules") => &[
                "weekly-report",
                "\"cron\":\"0 9 * * 1\"",
                "Europe/Berlin",
                "\"queue\":\"reports\"",
            ],
            ("HMGET", Some(k)) if k.ends_with("signup-7") => {
                &["running", "sleep#0", "timer:20", "\"sleeping\""]
            }
            ("HKEYS", Some(k)) if k.ends_with(":catalog") => &["order", "reminder", "approval"],
            ("HGET", Some(k)) if k.ends_with(":catalog") => &[
                "\"workflow\":\"order\"",
                "\"fingerprint\"",
                "\"name\":\"charge_card#0\"",
                "\"kind\":\"compensation\"",
                "\"registered_at_ms\"",
            ],
            ("ZRANGE", Some(k)) if k.ends_with(":attention") => &["order-44"],
            ("ZREVRANGE", Some(k)) if k.ends_with(":done") => &["order-42"],
            ("HGETALL", _) => &[
                "id",
                "workflow",
                "queue",
                "status",
                "completed",
                "seq",
                "step",
                "state",
                "state_fp",
                "compensations",
                "input",
                "output",
                "attempts",
                "created_at",
                "updated_at",
                "fence",
            ],
            ("HMGET", _) => &["completed"],
            ("HGET", _) => &["[]"],
            ("XRANGE", _) => &[
                "seq",
                "step",
                "status",
                "event",
                "at",
                "created",
                "charge_card#0 completed",
            ],
            ("XLEN", _) => &["1"],
            ("XINFO", Some("GROUPS")) => &["steadfast", "pending"],
            ("XINFO", Some("CONSUMERS")) => &["name", "idle"],
            ("XPENDING", _) => &[],
            (other, _) => panic!("the test does not know what `{other}` should show; add it"),
        };
        for word in expect {
            assert!(
                out.contains(word),
                "`redis-cli {}` should show `{word}`:\n{out}",
                args.join(" ")
            );
        }
    }
    // The hash's JSON fields are JSON, as the page says.
    for field in ["state", "input", "output", "compensations"] {
        let raw = server.cli(&["HGET", &store.run_key("order-42"), field]);
        serde_json::from_str::<serde_json::Value>(raw.trim())
            .unwrap_or_else(|e| panic!("field `{field}` is not JSON ({e}): {raw}"));
    }
    let pending = server.cli(&["HGET", &store.run_key("order-43"), "pending"]);
    let pending: serde_json::Value = serde_json::from_str(pending.trim()).expect("pending is JSON");
    assert_eq!(pending["kind"], "start");
}

/// `signup-7` sleeps (a week), `order-45` waits for a decision with a
/// signal in its buffer, and the schedule `weekly-report` exists.
async fn waiting_runs(store: &steadfast::RedisStore, client: &Client) {
    use support::lifecycle::{Decision, approval, reminder, report};
    let worker = support::lifecycle::register(Worker::builder(store.clone()))
        .resource(support::Journal::default())
        .poll_wait(Duration::from_millis(100))
        .build()
        .expect("builds")
        .spawn();
    client
        .start::<reminder>("signup-7", "ada".into())
        .await
        .expect("starts");
    client
        .start::<approval>("order-45", "o-45".into())
        .await
        .expect("starts");
    for id in ["signup-7", "order-45"] {
        for _ in 0..500 {
            let env = client
                .describe(id)
                .await
                .expect("describes")
                .expect("exists");
            if env.wait().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    worker.shutdown().await.expect("stops");
    client
        .signal(
            "order-45",
            Decision {
                approved: true,
                by: "kim".into(),
            },
        )
        .await
        .expect("buffered");
    client
        .schedule::<report>(
            steadfast::ScheduleOptions::new("weekly-report", "0 9 * * 1")
                .timezone("Europe/Berlin")
                .queue("reports"),
            "platform".into(),
        )
        .await
        .expect("schedules");
}
