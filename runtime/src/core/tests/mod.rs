//! Tests of the rules: examples of each transition here, properties over
//! random input sequences in `properties`.

mod properties;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::*;

const NOW: u64 = 1_000_000;

fn fresh() -> RunRecord {
    let start = StateSnapshot::new("start", "fp0", json!({"start": {"order": "o-1"}}));
    RunRecord::new_run("o-1", "order", "orders", json!("o-1"), start, NOW)
}

fn apply(record: &RunRecord, decision: &Decision) -> RunRecord {
    match &decision.write {
        Write::Record(r) => (**r).clone(),
        _ => record.clone(),
    }
}

fn step(cause: Cause, outcome: StepOutcome) -> Input {
    Input::Stepped {
        cause,
        step: outcome,
        queries: BTreeMap::new(),
    }
}

fn suspend(name: &str, command: Command) -> StepOutcome {
    StepOutcome::Suspend {
        step: name.into(),
        fingerprint: format!("fp-{name}"),
        json: json!({ name: {} }),
        command,
    }
}

fn activity(name: &str) -> Command {
    Command::Activity {
        activity: name.into(),
        input: json!({"order": "o-1"}),
        queue: None,
    }
}

fn succeeded(refund: bool) -> Cause {
    Cause::ActivitySucceeded {
        outcome: json!({"Ok": "pay-1"}),
        compensation: refund.then(|| ("refund".to_owned(), json!("pay-1"))),
    }
}

/// Starts the run and runs `charge` (pushing `refund`), waiting on `ship`.
fn charged() -> RunRecord {
    let r = fresh();
    let d = decide(
        &r,
        step(Cause::Started, suspend("charge#0", activity("charge"))),
        NOW,
    )
    .expect("starts");
    let r = apply(&r, &d);
    let d = decide(
        &r,
        step(succeeded(true), suspend("ship#0", activity("ship"))),
        NOW + 1,
    )
    .expect("charge completes");
    apply(&r, &d)
}

#[test]
fn an_activity_gets_its_idempotency_key_once_and_its_compensation_the_undo_key() {
    let r = fresh();
    let d = decide(
        &r,
        step(Cause::Started, suspend("charge#0", activity("charge"))),
        NOW,
    )
    .expect("starts");
    assert!(d.keeps_lease());
    let r = apply(&r, &d);
    assert_eq!(r.seq, 1);
    let Some(Work::Activity { key, .. }) = r.work() else {
        panic!("waits for the charge: {r:?}");
    };
    assert_eq!(key, "o-1/charge#0/1");
    let h = d.history.expect("a transition has an entry");
    assert_eq!((h.seq, h.step.as_str()), (1, "charge#0"));
    assert_eq!(h.event, "started; next charge#0");

    let r = charged();
    assert_eq!(r.compensations.len(), 1);
    assert_eq!(r.compensations[0].key, "o-1/charge#0/1/undo");
    assert_eq!(r.compensations[0].activity, "refund");
}

#[test]
fn a_failed_workflow_unwinds_its_compensations_then_settles_failed() {
    let r = charged();
    let gave_up = Cause::ActivityGaveUp {
        outcome: json!({"Err": {}}),
        attempts: 3,
        message: "no stock".into(),
    };
    let failed = StepOutcome::Failed {
        error: json!("out of stock"),
        message: "out of stock".into(),
    };
    let d = decide(&r, step(gave_up, failed), NOW).expect("ship gives up");
    let r = apply(&r, &d);
    assert_eq!(r.status(), Status::Compensating);
    assert!(d.keeps_lease());
    assert_eq!(
        d.history.expect("entry").event,
        "ship#0 failed after 3 attempt(s): no stock; returned an error: out of stock"
    );
    let d = decide(&r, Input::Compensated, NOW).expect("refund ran");
    let r = apply(&r, &d);
    assert_eq!(r.status(), Status::Failed);
    assert_eq!(
        r.error().map(|(e, _)| e.clone()),
        Some(json!("out of stock"))
    );
    assert!(d.effects.contains(&Effect::Release));
    assert!(d.effects.iter().any(|e| matches!(
        e,
        Effect::Index {
            index: RunIndex::Done,
            ..
        }
    )));
    assert!(decide(&r, Input::Compensated, NOW).is_err(), "never twice");
}

#[test]
fn a_compensation_that_gives_up_parks_and_an_operator_resumes_it() {
    let r = charged();
    let d = decide(
        &r,
        Input::Stop(Stop::Cancel {
            reason: "customer asked".into(),
        }),
        NOW,
    )
    .expect("cancels");
    let r = apply(&r, &d);
    assert_eq!(r.status(), Status::Compensating);
    let d = decide(
        &r,
        Input::CompensationGaveUp {
            attempts: 3,
            message: "bank down".into(),
        },
        NOW,
    )
    .expect("parks");
    let r = apply(&r, &d);
    assert_eq!(r.status(), Status::CompensationFailed);
    assert_eq!(r.stopped().as_deref(), Some("cancelled: customer asked"));
    assert!(
        r.reason()
            .is_some_and(|s| s.starts_with("compensation `refund` for step `charge#0`")),
        "{r:?}"
    );
    let d = decide(
        &r,
        Input::Resume {
            note: "bank back".into(),
        },
        NOW,
    )
    .expect("resumes");
    assert!(d.exclusive, "refused while a worker holds the run");
    assert_eq!(
        d.history.as_ref().expect("entry").event,
        "resumed by an operator: bank back"
    );
    let r = apply(&r, &d);
    assert_eq!(r.status(), Status::Compensating);
    assert_eq!(r.attempts, 0);
    let d = decide(&r, Input::Compensated, NOW).expect("refund ran");
    assert_eq!(apply(&r, &d).status(), Status::Cancelled);
}

#[test]
fn parked_runs_take_signals_can_lose_one_and_can_be_terminated_but_not_cancelled() {
    let r = fresh();
    let d = decide(
        &r,
        Input::Park {
            reason: "bad".into(),
        },
        NOW,
    )
    .expect("parks");
    let mut r = apply(&r, &d);
    let signal = SignalEntry {
        name: "approve".into(),
        payload: json!(1),
        sent_at_ms: NOW,
        nonce: 7,
    };
    let d = decide(
        &r,
        Input::SendSignal {
            signal: signal.clone(),
            bound: 10,
        },
        NOW,
    )
    .expect("a parked run takes signals");
    assert!(d.history.is_none() && matches!(d.write, Write::Nothing));
    r.signals.push(signal);
    let d = decide(
        &r,
        Input::RemoveSignal {
            nonce: 7,
            note: "wrong type".into(),
        },
        NOW,
    )
    .expect("removes");
    assert_eq!(d.effects, vec![Effect::ConsumeSignal { nonce: 7 }]);
    let r = apply(&r, &d);
    assert!(r.signals.is_empty());
    assert!(matches!(
        decide(
            &r,
            Input::RequestStop(Interrupt::Cancel { reason: "x".into() }),
            NOW
        ),
        Err(Refusal::CannotCancel { .. })
    ));
    let d = decide(
        &r,
        Input::RequestStop(Interrupt::Terminate {
            reason: "give up".into(),
        }),
        NOW,
    )
    .expect("terminates");
    assert_eq!(apply(&r, &d).status(), Status::Terminated);
}

#[test]
fn an_unreadable_record_parks_one_past_the_last_seq_it_shows() {
    let d = park_unreadable("field `seq` is `x`", None, Some(4), NOW);
    assert_eq!(d.history.as_ref().map(|h| h.seq), Some(5));
    assert!(matches!(d.write, Write::Status { seq: 5, .. }));
    let d = park_unreadable("field `state` is not JSON", Some(9), Some(4), NOW);
    assert!(matches!(d.write, Write::Status { seq: 10, .. }));
}

#[test]
fn waits_arm_a_timer_no_later_than_the_execution_deadline() {
    let mut r = fresh();
    r.deadline_ms = Some(NOW + 500);
    let sleep = Command::Sleep {
        duration: Duration::from_secs(60),
    };
    let d = decide(&r, step(Cause::Started, suspend("nap#0", sleep)), NOW).expect("sleeps");
    assert!(d.effects.contains(&Effect::ArmTimer {
        queue: "orders".into(),
        at_ms: NOW + 500
    }));
    let forever = Command::Signal {
        name: "go".into(),
        timeout: None,
    };
    let d = decide(&r, step(Cause::Started, suspend("wait#0", forever)), NOW).expect("waits");
    assert!(
        d.effects
            .contains(&Effect::AwaitSignal { name: "go".into() })
    );
    assert!(d.effects.contains(&Effect::ArmTimer {
        queue: "orders".into(),
        at_ms: NOW + 500
    }));
}

#[test]
fn a_signal_wakes_the_run_if_it_waits_for_it_when_applied_and_a_settled_run_refuses_it() {
    let r = fresh();
    let wait = Command::Signal {
        name: "go".into(),
        timeout: None,
    };
    let d = decide(&r, step(Cause::Started, suspend("wait#0", wait)), NOW).expect("waits");
    let r = apply(&r, &d);
    let send = |name: &str| Input::SendSignal {
        signal: SignalEntry {
            name: name.into(),
            payload: json!(null),
            sent_at_ms: NOW,
            nonce: 1,
        },
        bound: 5,
    };
    // Whether it waits is the store's to see when applying: the sender
    // does not hold the run, which may start or stop waiting meanwhile.
    let d = decide(&r, send("go"), NOW).expect("sends");
    assert!(d.effects.contains(&Effect::WakeIfWaiting {
        queue: "orders".into(),
        signal: "go".into()
    }));
    assert!(matches!(d.write, Write::Nothing) && d.history.is_none());
    let done = decide(
        &r,
        Input::RequestStop(Interrupt::Terminate { reason: "x".into() }),
        NOW,
    )
    .expect("records the request");
    assert!(matches!(done.write, Write::Nothing));
    let mut settled = r.clone();
    settled.phase = Phase::Settled {
        outcome: Outcome::TimedOut,
    };
    assert!(matches!(
        decide(&settled, send("go"), NOW),
        Err(Refusal::Settled { .. })
    ));
}

#[test]
fn stopping_a_parent_stops_the_child_it_waits_for() {
    let r = fresh();
    let child = Command::Child {
        workflow: "pack".into(),
        id: "c-1".into(),
        input: json!(null),
        start_state: json!({"start": {}}),
        start_fp: "f".into(),
        queue: "packing".into(),
        patches: Vec::new(),
    };
    let d = decide(&r, step(Cause::Started, suspend("pack#0", child)), NOW).expect("waits");
    let r = apply(&r, &d);
    let d = decide(&r, Input::Stop(Stop::DeadlinePassed), NOW).expect("times out");
    assert_eq!(
        d.follow_ups,
        vec![FollowUp::StopChild {
            child: "c-1".into(),
            interrupt: Interrupt::Cancel {
                reason: "parent `o-1` timed out".into()
            }
        }]
    );
    assert_eq!(apply(&r, &d).status(), Status::TimedOut);
}

#[test]
fn continue_as_new_starts_a_generation_and_trims_the_history() {
    let r = fresh();
    let again = StepOutcome::ContinueAsNew {
        input: json!("o-2"),
        step: "start".into(),
        fingerprint: "fp0".into(),
        json: json!({"start": {"order": "o-2"}}),
        patches: vec!["p".into()],
    };
    let d = decide(&r, step(Cause::Started, again), NOW).expect("continues");
    assert!(d.effects.contains(&Effect::TrimHistory) && d.new_generation());
    let r = apply(&r, &d);
    assert_eq!((r.generation, r.input.clone()), (1, json!("o-2")));
    assert!(matches!(r.work(), Some(Work::Start)));
}

#[test]
fn an_outcome_recorded_on_another_queue_goes_back_to_the_workflows_queue() {
    let r = fresh();
    let remote = Command::Activity {
        activity: "print".into(),
        input: json!(1),
        queue: Some("printers".into()),
    };
    let r = apply(
        &r,
        &decide(&r, step(Cause::Started, suspend("print#0", remote)), NOW).expect("suspends"),
    );
    let caps = Capabilities {
        knows_workflow: true,
        queues: &["orders".to_owned()],
        task_queue: "orders",
        known_workflows: &["order"],
    };
    assert!(matches!(
        plan(&r, &caps, NOW),
        Action::Decide(Input::Yield { dispatch: Some(q), .. }) if q == "printers"
    ));
    let d = decide(
        &r,
        Input::OutcomeRecorded {
            cause: succeeded(false),
        },
        NOW,
    )
    .expect("records");
    assert!(d.effects.contains(&Effect::Dispatch {
        queue: "orders".into()
    }));
    let r = apply(&r, &d);
    assert!(matches!(
        plan(&r, &caps, NOW),
        Action::Step {
            cause: Cause::OutcomeDelivered,
            ..
        }
    ));
}

#[test]
fn a_run_given_up_while_it_waits_for_a_signal_is_kept_if_one_came_meanwhile() {
    let r = fresh();
    let wait = Command::Signal {
        name: "go".into(),
        timeout: Some(Duration::from_secs(30)),
    };
    let r = apply(
        &r,
        &decide(&r, step(Cause::Started, suspend("wait#0", wait)), NOW).expect("waits"),
    );
    let caps = Capabilities {
        knows_workflow: true,
        queues: &["orders".to_owned()],
        task_queue: "orders",
        known_workflows: &["order"],
    };
    let Action::Decide(input) = plan(&r, &caps, NOW + 1) else {
        panic!("nothing to do but give the run up");
    };
    let d = decide(&r, input, NOW + 1).expect("yields");
    assert_eq!(
        d.effects,
        vec![
            Effect::AwaitSignal { name: "go".into() },
            Effect::Release,
            Effect::ArmTimer {
                queue: "orders".into(),
                at_ms: NOW + 30_000
            }
        ]
    );
    // Leaving the wait clears its timer.
    let mut with_signal = r.clone();
    with_signal.signals.push(SignalEntry {
        name: "go".into(),
        payload: json!(1),
        sent_at_ms: NOW,
        nonce: 9,
    });
    let d = decide(
        &with_signal,
        step(
            Cause::SignalReceived { nonce: 9 },
            StepOutcome::Completed { output: json!(1) },
        ),
        NOW + 2,
    )
    .expect("steps");
    assert!(d.effects.contains(&Effect::ClearTimer {
        queue: "orders".into()
    }));
}
