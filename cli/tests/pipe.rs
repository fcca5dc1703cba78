//! `steadfast show x | head -1`: a reader that goes away early is no error
//! and no panic; the command stops quietly.
#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
mod desk_workflow;
#[allow(dead_code)]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::process::{Command, Stdio};

use desk_workflow::desk;
use redis_server::RedisServer;
use steadfast::RedisStore;
use steadfast::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_output_quietly() {
    let server = RedisServer::start();
    let url = server.url();
    let store = RedisStore::builder(url.as_str())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects");
    let client = Client::new(store);
    client
        .start::<desk>("piped", ("piped".into(), true))
        .await
        .expect("starts");
    for args in [
        &["show", "piped"][..],
        &["history", "piped"],
        &["runs"],
        &["--json", "show", "piped"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(["--redis-url", &url])
            .args(args)
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs the steadfast binary");
        // The reader goes away before the command writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("waits");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "`steadfast {args:?}` panicked: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "`steadfast {args:?}`: {stderr}");
    }
}
