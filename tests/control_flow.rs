//! The workflow compiler's control flow, run on the in-memory store and
//! compared with the same code written without activities.

mod support;

use support::Harness;
use support::workflows::*;

#[tokio::test]
async fn branchy_matches_plain_rust_for_every_path() {
    let h = Harness::start();
    for n in 0..7u64 {
        let run = h
            .client
            .start::<branchy>(format!("branchy-{n}"), n)
            .await
            .expect("starts");
        let got = run.result().await.expect("completes");
        assert_eq!(got, branchy_expected(n), "n = {n}");
    }
    h.stop().await;
}

#[tokio::test]
async fn hoisted_awaits_run_in_written_order() {
    let h = Harness::start();
    let run = h
        .client
        .start::<hoisting>("hoist", (2, 3))
        .await
        .expect("starts");
    let got = run.result().await.expect("completes");
    // sum = 3 + 4 = 7; pair = [17, 27]; 44; 7; chosen = 5 + 5 = 10
    assert_eq!(got, vec![44, 7, 10]);
    assert_eq!(
        h.journal.lines(),
        vec![
            "add 2 1",
            "add 3 1",
            "add 7 10",
            "add 7 20",
            "add 17 27",
            "add 0 0",
            "add 2 3",
            "add 5 5"
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn outcomes_are_values_without_question_mark() {
    let h = Harness::start();
    let a = h
        .client
        .start::<outcomes>("out-a", true)
        .await
        .expect("starts");
    assert_eq!(
        a.result().await.expect("completes"),
        "err after 1 attempt(s): first; then second"
    );
    let b = h
        .client
        .start::<outcomes>("out-b", false)
        .await
        .expect("starts");
    assert_eq!(b.result().await.expect("completes"), "ok 2; then second");
    h.stop().await;
}

#[tokio::test]
async fn shadowing_of_dead_locals_is_allowed() {
    let h = Harness::start();
    let run = h
        .client
        .start::<shadowing_ok>("shadow", 4)
        .await
        .expect("starts");
    assert_eq!(run.result().await.expect("completes"), (4 + 1) * 2 + 6);
    h.stop().await;
}

#[tokio::test]
async fn labeled_breaks_and_continues_cross_awaits() {
    let h = Harness::start();
    let run = h
        .client
        .start::<nested_loops>("loops", (3, 4))
        .await
        .expect("starts");
    assert_eq!(
        run.result().await.expect("completes"),
        vec!["11", "12", "13", "14", "21", "22", "stop"]
    );
    h.stop().await;
}

#[tokio::test]
async fn deferred_initialisation_across_branches() {
    let h = Harness::start();
    let yes = h
        .client
        .start::<deferred_init>("d-yes", true)
        .await
        .expect("starts");
    assert_eq!(yes.result().await.expect("completes"), "yes 5");
    let no = h
        .client
        .start::<deferred_init>("d-no", false)
        .await
        .expect("starts");
    assert_eq!(no.result().await.expect("completes"), "no");
    h.stop().await;
}
