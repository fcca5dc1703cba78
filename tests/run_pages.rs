//! Paging the run indexes with a hundred thousand runs: a page is read from
//! where the last ended (a score range of the sorted set), so it reads
//! about `limit` entries however large the index; walking every page sees
//! each run once, in order, also where many runs share a millisecond.
//! (How long a page takes is printed, not asserted: times belong to
//! benchmarks.)

mod support;

use std::collections::HashSet;
use std::time::Instant;

use steadfast::{Cursor, PageQuery, RunList, Store};
use support::redis_server::RedisServer;

const RUNS: usize = 100_000;
/// Runs created in the same millisecond.
const SAME_MS: usize = 3;
const BASE_MS: u64 = 1_800_000_000_000;

fn score(i: usize) -> u64 {
    BASE_MS + (i / SAME_MS) as u64
}

#[tokio::test]
async fn a_page_of_a_hundred_thousand_runs_reads_about_one_page_of_the_index() {
    let server = RedisServer::start();
    let store = support::redis_store(&server).await;
    let admin = store.admin().expect("the Redis store has an admin side");
    let key = store.run_key("x").replace("wf:x", "active");

    // The index entries, written directly in a few pipelined commands.
    let client = redis::Client::open(server.url()).expect("opens");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let started = Instant::now();
    for chunk in (0..RUNS).collect::<Vec<_>>().chunks(10_000) {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&key);
        for i in chunk {
            cmd.arg(score(*i)).arg(format!("run-{i:06}"));
        }
        let _: i64 = cmd.query_async(&mut conn).await.expect("adds");
    }
    println!("{RUNS} index entries written in {:?}", started.elapsed());
    assert_eq!(
        admin.count_runs(RunList::Active).await.expect("counts"),
        RUNS as u64
    );

    // The first page, and one deep in the index.
    let t = Instant::now();
    let first = admin
        .page_runs(&PageQuery::new(RunList::Active, 50))
        .await
        .expect("pages");
    let first_took = t.elapsed();
    assert_eq!(first.runs.len(), 50);
    assert_eq!(first.runs[0].id, "run-000000");
    assert!(
        first.entries_read <= 51,
        "read {} entries",
        first.entries_read
    );
    let deep = Cursor::new(score(90_000), "run-090000");
    let t = Instant::now();
    let page = admin
        .page_runs(&PageQuery::new(RunList::Active, 50).after(Some(deep)))
        .await
        .expect("pages");
    let deep_took = t.elapsed();
    assert_eq!(page.runs[0].id, "run-090001");
    assert!(
        page.entries_read <= 51 + SAME_MS,
        "read {} entries",
        page.entries_read
    );
    println!("a page of 50 of {RUNS} runs: first {first_took:?}, at 90 000 {deep_took:?}");

    // Walking every page sees every run once, in order.
    let t = Instant::now();
    let mut seen = HashSet::new();
    let mut last = String::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = admin
            .page_runs(&PageQuery::new(RunList::Active, 1000).after(cursor))
            .await
            .expect("pages");
        pages += 1;
        assert!(
            page.entries_read <= 1001 + SAME_MS,
            "read {} entries",
            page.entries_read
        );
        for r in &page.runs {
            assert!(r.id > last, "{} after {last}", r.id);
            last = r.id.clone();
            assert!(seen.insert(r.id.clone()), "{} seen twice", r.id);
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), RUNS);
    println!(
        "all {RUNS} runs in {pages} pages of 1000: {:?}",
        t.elapsed()
    );

    // A time range: the runs of ten milliseconds.
    let ranged = admin
        .page_runs(
            &PageQuery::new(RunList::Active, 100).between(Some(score(300)), Some(score(300) + 9)),
        )
        .await
        .expect("pages");
    assert_eq!(ranged.runs.len(), 10 * SAME_MS);
    assert_eq!(ranged.runs[0].id, "run-000300");
    assert!(ranged.next.is_none());
}

#[tokio::test]
async fn finished_runs_are_paged_newest_first() {
    let server = RedisServer::start();
    let store = support::redis_store(&server).await;
    let admin = store.admin().expect("admin side");
    let key = store.run_key("x").replace("wf:x", "done");
    server.cli(&["ZADD", &key, "10", "a", "20", "b", "20", "c", "30", "d"]);
    let first = admin
        .page_runs(&PageQuery::new(RunList::Finished, 2))
        .await
        .expect("pages");
    let ids: Vec<&str> = first.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["d", "c"]);
    let rest = admin
        .page_runs(&PageQuery::new(RunList::Finished, 2).after(first.next))
        .await
        .expect("pages");
    let ids: Vec<&str> = rest.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert!(rest.next.is_none());
}
