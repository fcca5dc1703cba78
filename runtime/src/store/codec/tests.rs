use super::*;
use crate::core::{CompensationEntry, ParkKind};

fn sample() -> RunRecord {
    let start = StateSnapshot::new(
        "start",
        "abc",
        serde_json::json!({"start": {"order_id": "o-42"}}),
    );
    let mut r = RunRecord::new_run(
        "order-42",
        "order",
        "orders",
        serde_json::json!("o-42"),
        start,
        1_000,
    );
    r.compensations.push(CompensationEntry {
        step: "charge_card#0".into(),
        activity: "refund".into(),
        input: serde_json::json!({"payment": "pay-1"}),
        key: "order-42/charge_card#0/1/undo".into(),
    });
    r.last_error = Some("timeout".into());
    r.queries
        .insert("status".into(), serde_json::json!("charging"));
    r.patches.push("new-step".into());
    r.deadline_ms = Some(9_000);
    r.signal_bound = Some(10);
    r
}

fn as_map(fields: Vec<(String, String)>) -> Fields {
    fields.into_iter().collect()
}

/// The record after a transition writes its fields over `before`'s.
fn written(before: &Fields, record: &RunRecord) -> Fields {
    let mut map = before.clone();
    let (set, delete) = transition_fields(record, false);
    for d in delete {
        map.remove(d);
    }
    map.extend(set);
    map
}

fn phases() -> Vec<Phase> {
    let state = StateSnapshot::new("ship#0", "f1", serde_json::json!({"ship#0": {}}));
    let activity = Work::Activity {
        activity: "ship".into(),
        step: "ship#0".into(),
        input: serde_json::json!(1),
        key: "k".into(),
        queue: Some("printers".into()),
        outcome: Some(serde_json::json!({"Ok": 1})),
    };
    let compensating = Phase::Compensating {
        ending: Ending::Cancelled {
            reason: "asked".into(),
        },
    };
    vec![
        Phase::Running {
            state: state.clone(),
            work: activity,
        },
        Phase::Waiting {
            state: state.clone(),
            wait: Wait::Signal {
                step: "ship#0".into(),
                name: "go".into(),
                deadline_ms: Some(5),
            },
        },
        Phase::Waiting {
            state: state.clone(),
            wait: Wait::Timer {
                step: "ship#0".into(),
                until_ms: 7,
            },
        },
        Phase::Compensating {
            ending: Ending::Failed {
                error: serde_json::json!({"code": 1}),
                message: "declined".into(),
            },
        },
        compensating.clone(),
        Phase::Compensating {
            ending: Ending::TimedOut,
        },
        Phase::Settled {
            outcome: Outcome::Completed {
                output: serde_json::json!("done"),
            },
        },
        Phase::Settled {
            outcome: Outcome::Failed {
                error: serde_json::json!(1),
                message: "m".into(),
            },
        },
        Phase::Settled {
            outcome: Outcome::Terminated {
                reason: "dup".into(),
            },
        },
        Phase::Settled {
            outcome: Outcome::TimedOut,
        },
        Phase::Parked {
            kind: ParkKind::Stuck,
            reason: "state does not decode".into(),
            resume_to: Some(Box::new(Phase::Waiting {
                state,
                wait: Wait::Timer {
                    step: "ship#0".into(),
                    until_ms: 7,
                },
            })),
        },
        Phase::Parked {
            kind: ParkKind::CompensationFailed,
            reason: "refund failed".into(),
            resume_to: Some(Box::new(compensating)),
        },
    ]
}

#[test]
fn every_phase_round_trips_through_hash_fields_and_a_transition_clears_the_last() {
    let mut before = as_map(creation_fields(&sample()));
    assert_eq!(parse(&before), Ok(sample()));
    for phase in phases() {
        let mut record = sample();
        record.phase = phase.clone();
        record.seq += 1;
        let map = written(&before, &record);
        let back = parse(&map).unwrap_or_else(|e| panic!("{phase:?} reads back: {e}"));
        assert_eq!(back.phase, phase);
        assert_eq!(back.reason(), record.reason());
        before = map;
    }
}

#[test]
fn the_fields_stay_the_ones_operators_read() {
    let mut record = sample();
    record.phase = phases().remove(1);
    let map = as_map(creation_fields(&record));
    assert_eq!(map["status"], "running");
    assert_eq!(map["waiting"], "signal:go");
    assert_eq!(map["step"], "ship#0");
    assert_eq!(map["query:status"], "\"charging\"");
    assert!(map["pending"].contains(r#""kind":"signal""#));
    record.phase = phases().remove(11);
    let map = as_map(creation_fields(&record));
    assert_eq!(map["status"], "compensation_failed");
    assert_eq!(map["reason"], "refund failed");
    assert_eq!(map["stopped"], "cancelled: asked");
    assert_eq!(map["ending"], "cancelled");
}

#[test]
fn records_written_before_the_typed_phase_still_read() {
    // A parked run from an earlier version: `ending` set, no phase field.
    let mut map = as_map(creation_fields(&sample()));
    map.insert("status".into(), "parked".into());
    map.insert("reason".into(), "state does not decode".into());
    map.insert("ending".into(), "failed".into());
    map.insert("error".into(), "\"declined\"".into());
    let r = parse(&map).expect("reads");
    let Phase::Parked {
        resume_to: Some(inner),
        ..
    } = &r.phase
    else {
        panic!("{r:?}");
    };
    assert!(matches!(
        **inner,
        Phase::Compensating {
            ending: Ending::Failed { .. }
        }
    ));
}

#[test]
fn a_parked_record_that_does_not_read_is_shown_with_no_phase_to_resume_to() {
    let mut map = as_map(creation_fields(&sample()));
    map.insert("state".into(), "{not json".into());
    map.insert("seq".into(), "x".into());
    assert!(
        parse_for_display(&map).is_err(),
        "a running record stays strict"
    );
    map.insert("status".into(), "parked".into());
    map.insert("reason".into(), "hand edit".into());
    let r = parse_for_display(&map).expect("a parked record reads");
    assert!(matches!(
        r.phase,
        Phase::Parked {
            resume_to: None,
            ..
        }
    ));
    assert_eq!(r.seq, 0);
    // Writing it back touches only status, seq, reason and time.
    let (set, delete) = transition_fields(&r, false);
    assert!(delete.is_empty());
    let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["status", "seq", "updated_at", "reason"]);
}

#[test]
fn bad_fields_are_named() {
    let mut map = as_map(creation_fields(&sample()));
    map.insert("state".into(), "{not json".into());
    assert!(
        parse(&map)
            .expect_err("does not read")
            .contains("field `state` is not JSON")
    );
    let mut map = as_map(creation_fields(&sample()));
    map.insert("status".into(), "sleeping".into());
    assert!(
        parse(&map)
            .expect_err("does not read")
            .contains("`sleeping`, not a known status")
    );
    let mut map = as_map(creation_fields(&sample()));
    map.remove("seq");
    assert_eq!(
        parse(&map).expect_err("does not read"),
        "field `seq` is missing"
    );
}

#[test]
fn the_trace_context_is_written_at_creation_and_kept_by_transitions() {
    let mut record = sample();
    record.trace = Some(
        crate::telemetry::TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("congo=t61rcWkgMzE"),
        )
        .expect("valid"),
    );
    let created = as_map(creation_fields(&record));
    assert_eq!(
        created.get("traceparent").map(String::as_str),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(
        created.get("tracestate").map(String::as_str),
        Some("congo=t61rcWkgMzE")
    );
    let after = written(&created, &record);
    assert_eq!(parse(&after).expect("reads").trace, record.trace);
    // Stored without one: none.
    let plain = as_map(creation_fields(&sample()));
    assert!(!plain.contains_key("traceparent"));
    assert_eq!(parse(&plain).expect("reads").trace, None);
}

#[test]
fn a_malformed_trace_context_is_ignored_not_an_error() {
    let mut fields = as_map(creation_fields(&sample()));
    for bad in [
        "",
        "garbage",
        "00-zz-00f067aa0ba902b7-01",
        "0é-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        fields.insert("traceparent".into(), bad.into());
        fields.insert("tracestate".into(), "\u{1}".into());
        let record = parse(&fields).expect("the record still reads");
        assert_eq!(record.trace, None, "{bad:?}");
        assert_eq!(parse_for_display(&fields).expect("shows").trace, None);
    }
}
